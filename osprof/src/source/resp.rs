//! The Redis source's connection: the few commands it sends (`SCAN`,
//! `LLEN`, `LRANGE`, `GET`, `TYPE`, pipelined), and their replies read with
//! bounds.
//!
//! A general client buffers a bulk reply of whatever length the server
//! announces (Redis allows 512 MB per value), so one hostile value in a
//! store would cost its size in memory, and a page of them their sum. Here
//! a bulk string longer than the source's per-value limit is not kept: its
//! bytes are read through a small buffer and dropped, and it is handed on
//! as [`Value::TooLong`] with its length, for the reader to name and skip.
//! Lines (status, error, integer) are bounded too, and so are arrays and
//! their nesting: past those bounds the server is not Redis, and the read
//! fails with an error.
//!
//! Every round trip (one command, or one pipeline of commands) has a total
//! deadline, the source's store timeout: a socket timeout alone applies
//! per read, so a peer that trickles a byte now and then could hold a
//! reply for ever. Past the deadline the read fails with
//! [`io::ErrorKind::TimedOut`] and a message that names the timeout.
//! Connecting and logging in (`AUTH`, `SELECT`) share one such deadline.
//!
//! The connection string is parsed by the `redis` crate (the same rules as
//! before, `redis://[[user]:password@]host[:port][/db]`); the crate is not
//! used to talk to the server.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The longest reply line read (a status, an error, an integer, a length).
const MAX_LINE: usize = 64 * 1024;

/// The most elements of one array reply (a `SCAN` page, an `LRANGE` slice
/// are far smaller).
const MAX_ARRAY: i64 = 1 << 20;

/// The deepest array nesting (`SCAN` replies nest two).
const MAX_DEPTH: usize = 4;

/// One reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Nil,
    Int(i64),
    /// `+…`.
    Status(String),
    Bulk(Vec<u8>),
    Array(Vec<Value>),
    /// `-…`: Redis refused the command (its message).
    Error(String),
    /// A bulk string of this many bytes, longer than the limit: read and
    /// dropped, not kept.
    TooLong(u64),
}

/// The socket, read by a deadline: each read waits at most until it.
struct Timed {
    stream: TcpStream,
    deadline: Instant,
    /// The round trip's whole allowance, for the message.
    timeout: Duration,
}

impl Timed {
    /// What is left until the deadline, or the error that says it passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(self.timeout));
        }
        Ok(left)
    }

    /// Writes `bytes` whole by the deadline.
    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let left = self.left()?;
            self.stream.set_write_timeout(Some(left))?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = self.left()?;
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(buf) {
                // Woken early, or the socket's timeout ran out a little
                // before the deadline: `left` says which.
                Err(e) if is_wait(&e) => {}
                other => return other,
            }
        }
    }
}

/// A socket timeout's error (its kind differs between systems), or a
/// signal.
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The error of a round trip past its deadline.
fn timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no whole answer within the store timeout of {} s (--store-timeout)",
            timeout.as_secs_f64()
        ),
    )
}

/// A connection to the store.
pub(crate) struct Connection {
    reader: BufReader<Timed>,
    max_value: u64,
    /// The allowance of each round trip.
    timeout: Duration,
}

impl Connection {
    /// Connects to the server `info` names, logs in and selects the
    /// database, all within `timeout` (name resolution aside: the system's
    /// resolver has no deadline); each later round trip gets `timeout`
    /// too. `max_value`: the longest bulk string kept.
    pub(crate) fn open(
        info: &redis::ConnectionInfo,
        timeout: Duration,
        max_value: u64,
    ) -> io::Result<Connection> {
        let redis::ConnectionAddr::Tcp(host, port) = &info.addr else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "only redis://host:port stores are supported",
            ));
        };
        // Resolve first: the lookup has no deadline of its own, and a slow
        // one must neither eat the store's allowance nor be blamed on it.
        let addrs: Vec<_> = (host.as_str(), *port).to_socket_addrs()?.collect();
        let deadline = Instant::now() + timeout;
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(timed_out(timeout));
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            last.unwrap_or_else(|| io::Error::other(format!("{host} resolves to no address")))
        })?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            reader: BufReader::with_capacity(
                64 * 1024,
                Timed {
                    stream,
                    deadline,
                    timeout,
                },
            ),
            max_value,
            timeout,
        };
        // The login within the connection's deadline: no `query`, which
        // would start a new one.
        let redis = &info.redis;
        if let Some(password) = &redis.password {
            let reply = match &redis.username {
                Some(user) => {
                    connection.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?
                }
                None => connection.command(&[b"AUTH", password.as_bytes()])?,
            };
            if let Value::Error(message) = reply {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("AUTH refused: {message}"),
                ));
            }
        }
        if redis.db != 0 {
            let db = redis.db.to_string();
            if let Value::Error(message) = connection.command(&[b"SELECT", db.as_bytes()])? {
                return Err(io::Error::other(format!("SELECT {db} refused: {message}")));
            }
        }
        Ok(connection)
    }

    /// Sends one command and reads its reply, within the timeout.
    pub(crate) fn query(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.start_round_trip();
        self.command(args)
    }

    /// Sends several commands at once (packed with [`pack`]) and reads
    /// their `n` replies, each on its own (an error stays with its
    /// command), all within the timeout.
    pub(crate) fn pipeline(&mut self, packed: &[u8], n: usize) -> io::Result<Vec<Value>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.start_round_trip();
        self.reader.get_mut().write_all(packed)?;
        (0..n).map(|_| self.reply()).collect()
    }

    /// The next round trip's deadline: the timeout from now.
    fn start_round_trip(&mut self) {
        self.reader.get_mut().deadline = Instant::now() + self.timeout;
    }

    /// Sends one command and reads its reply, by the current deadline.
    fn command(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let mut packed = Vec::new();
        pack(&mut packed, args);
        self.reader.get_mut().write_all(&packed)?;
        self.reply()
    }

    /// Reads one reply.
    pub(crate) fn reply(&mut self) -> io::Result<Value> {
        self.value(0)
    }

    fn value(&mut self, depth: usize) -> io::Result<Value> {
        let line = self.line()?;
        let (kind, text) = line
            .split_first()
            .ok_or_else(|| not_redis("an empty reply line"))?;
        let text_str = || String::from_utf8_lossy(text).into_owned();
        let int = || -> io::Result<i64> {
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| not_redis("a malformed number"))
        };
        match kind {
            b'+' => Ok(Value::Status(text_str())),
            b'-' => Ok(Value::Error(text_str())),
            b':' => Ok(Value::Int(int()?)),
            b'$' => {
                let len = int()?;
                if len < 0 {
                    return Ok(Value::Nil);
                }
                let len = len as u64;
                if len > self.max_value {
                    self.skip(len + 2)?;
                    return Ok(Value::TooLong(len));
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(not_redis("a bulk string not ended by CRLF"));
                }
                data.truncate(len as usize);
                Ok(Value::Bulk(data))
            }
            b'*' => {
                let n = int()?;
                if n < 0 {
                    return Ok(Value::Nil);
                }
                if n > MAX_ARRAY || depth >= MAX_DEPTH {
                    return Err(not_redis("an array too long or too deep"));
                }
                let mut items = Vec::with_capacity((n as usize).min(1024));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            other => Err(not_redis(&format!(
                "an unknown reply type {}",
                char::from(*other).escape_default()
            ))),
        }
    }

    /// The next line without its CRLF, at most [`MAX_LINE`] bytes.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        if !line.ends_with(b"\r\n") {
            return Err(not_redis(&format!(
                "a reply line longer than {MAX_LINE} bytes, or cut"
            )));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    /// Reads and drops `n` bytes.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            self.reader.consume(take);
            n -= take as u64;
        }
        Ok(())
    }
}

fn not_redis(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a Redis reply: {what}"),
    )
}

/// Appends one command, a RESP array of bulk strings.
pub(crate) fn pack(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connection to a peer that writes `replies` and then waits.
    fn peer(replies: Vec<u8>, max_value: u64) -> Connection {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(&replies).unwrap();
            std::thread::sleep(Duration::from_secs(2));
        });
        let info =
            redis::IntoConnectionInfo::into_connection_info(format!("redis://127.0.0.1:{port}"))
                .unwrap();
        Connection::open(&info, Duration::from_secs(5), max_value).unwrap()
    }

    #[test]
    fn values_past_the_limit_are_skipped_and_the_connection_goes_on() {
        let mut replies = b"*3\r\n$3\r\nabc\r\n$10\r\n0123456789\r\n$-1\r\n".to_vec();
        replies.extend_from_slice(b"-WRONGTYPE Operation\r\n:42\r\n+list\r\n");
        let mut c = peer(replies, 5);
        assert_eq!(
            c.reply().unwrap(),
            Value::Array(vec![
                Value::Bulk(b"abc".to_vec()),
                Value::TooLong(10),
                Value::Nil
            ])
        );
        assert_eq!(
            c.reply().unwrap(),
            Value::Error("WRONGTYPE Operation".into())
        );
        assert_eq!(c.reply().unwrap(), Value::Int(42));
        assert_eq!(c.reply().unwrap(), Value::Status("list".into()));
    }

    #[test]
    fn a_trickled_reply_ends_at_the_round_trips_deadline() {
        // A byte every 20 ms: every read gets one, so only a deadline for
        // the whole reply ends it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut first = [0u8; 64];
            let _ = stream.read(&mut first);
            let _ = stream.write_all(b"*");
            while stream.write_all(b"1").is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let info =
            redis::IntoConnectionInfo::into_connection_info(format!("redis://127.0.0.1:{port}"))
                .unwrap();
        let timeout = Duration::from_millis(300);
        let mut c = Connection::open(&info, timeout, 1024).unwrap();
        let started = Instant::now();
        let err = c.query(&[b"PING"]).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("0.3 s"), "{err}");
        assert!(took >= timeout && took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn replies_that_are_not_redis_are_errors_not_allocations() {
        for reply in [
            b"*4294967296\r\n".to_vec(),
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n".to_vec(),
            vec![b'+'; MAX_LINE + 10],
            b"?\r\n".to_vec(),
        ] {
            let mut c = peer(reply, 1024);
            let err = c.reply().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        }
    }
}
