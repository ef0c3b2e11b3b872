//! The sink's own small Redis client: the connection string, one TCP
//! connection, `AUTH` and `SELECT`, pipelined commands out and their
//! replies in (RESP2).
//!
//! Why not a general client: the sink sends `LPUSH`, `EXPIRE`, `AUTH` and
//! `SELECT`, whose replies are an integer, `+OK` or an error line. A
//! general client buffers a bulk reply of whatever length the peer
//! announces, and its read timeout applies to each `read(2)`, so a hostile
//! or broken peer streaming a huge reply slowly grows the service's memory
//! without limit. Here:
//!
//! * a reply line or bulk string longer than [`MAX_REPLY`] bytes, an
//!   array, or any byte that is not RESP2, is a broken connection; the
//!   whole read buffer is [`BUFFER`] bytes;
//! * each exchange has one deadline (for all the replies of a batch, not
//!   for each read);
//! * an [`Abort`] time, set when the sink shuts down, ends any read or
//!   write within [`POLL`] of it.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest reply line (or bulk string) read. The replies the sink
/// expects are a few bytes; Redis' longest error messages a few hundred.
pub(super) const MAX_REPLY: usize = 4096;

/// The read buffer: one full reply line, and room to read past it.
const BUFFER: usize = 2 * MAX_REPLY;

/// The longest single blocking read or write, so that an abort is seen
/// within this.
pub(super) const POLL: Duration = Duration::from_millis(25);

/// The default port of `redis://` strings.
const DEFAULT_PORT: u16 = 6379;

/// Where to connect and how to log in, from a
/// `redis://[[user]:password@]host[:port][/db]` string.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Target {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    db: u32,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

impl Target {
    /// Parses a `redis://` connection string (the scheme is checked by the
    /// caller). The error never quotes the userinfo.
    ///
    /// The userinfo ends at the last `@`, so a password with an unescaped
    /// `/` (common in base64 secrets) is read whole; `%XX` escapes are
    /// decoded in the user name and the password.
    pub(super) fn parse(connection_string: &str) -> Result<Target, String> {
        let rest = connection_string
            .split_once("://")
            .map(|(_, rest)| rest)
            .ok_or_else(|| "not a redis://[:password@]host[:port][/db] string".to_owned())?;
        let (userinfo, server) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                let user = percent_decode(user)
                    .ok_or_else(|| "the user name has a bad %-escape".to_owned())?;
                let password = password
                    .map(|p| {
                        percent_decode(p)
                            .ok_or_else(|| "the password has a bad %-escape".to_owned())
                    })
                    .transpose()?;
                (
                    Some(user).filter(|u| !u.is_empty()),
                    password.filter(|p| !p.is_empty()),
                )
            }
        };
        if server.contains(['?', '#']) {
            return Err(
                "query parameters and fragments are not understood by this sink: \
                 use redis://[[user]:password@]host[:port][/db]"
                    .to_owned(),
            );
        }
        let (authority, path) = match server.find('/') {
            Some(slash) => (&server[..slash], &server[slash + 1..]),
            None => (server, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| "an IPv6 address without its closing `]`".to_owned())?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("unexpected {after:?} after the IPv6 address")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        if host.contains(':') && !authority.starts_with('[') {
            return Err("an IPv6 address goes in brackets: redis://[::1]:6379".to_owned());
        }
        if host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err("the host name holds spaces or control characters".to_owned());
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("the port {port:?} is not a number from 1 to 65535"))?,
        };
        let db = match path {
            "" => 0,
            db => db
                .parse::<u32>()
                .map_err(|_| format!("the database {db:?} is not a number"))?,
        };
        Ok(Target {
            host: host.to_owned(),
            port,
            username,
            password,
            db,
        })
    }
}

/// `%XX` decoded; `None` on a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A time after which every read and write gives up: the sink sets it when
/// it shuts down. Shared between the sink and its export thread.
#[derive(Debug)]
pub(super) struct Abort {
    base: Instant,
    /// Nanoseconds after `base`; `u64::MAX`: not set.
    at: AtomicU64,
}

impl Default for Abort {
    fn default() -> Self {
        Abort {
            base: Instant::now(),
            at: AtomicU64::new(u64::MAX),
        }
    }
}

impl Abort {
    /// Gives up at `when` (or sooner, if an earlier time was set).
    pub(super) fn set(&self, when: Instant) {
        let nanos = when.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.at.fetch_min(nanos, Ordering::SeqCst);
    }

    /// The time set, if any.
    pub(super) fn at(&self) -> Option<Instant> {
        match self.at.load(Ordering::SeqCst) {
            u64::MAX => None,
            nanos => self.base.checked_add(Duration::from_nanos(nanos)),
        }
    }

    /// `deadline`, or the abort time when that is sooner.
    fn cap(&self, deadline: Instant) -> Instant {
        match self.at() {
            Some(at) => deadline.min(at),
            None => deadline,
        }
    }
}

/// What one command was answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// `+…`, `:n`, or a bulk string (whose content the sink never needs).
    Done,
    /// `-CODE message`: the command was refused.
    Refused(String),
}

impl Reply {
    /// The error code of a refusal (`WRONGTYPE`, `OOM`…).
    pub(super) fn code(message: &str) -> &str {
        message.split_whitespace().next().unwrap_or("?")
    }
}

/// Why a connection is no longer usable; the text names no secret.
#[derive(Debug)]
pub(super) struct Broken(String);

impl Broken {
    fn io(what: &str, error: &io::Error) -> Broken {
        Broken(format!("{what}: {error}"))
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One connection to Redis.
pub(super) struct Connection {
    stream: TcpStream,
    buffer: Box<[u8]>,
    /// `buffer[start..end]` is read and not parsed yet.
    start: usize,
    end: usize,
}

impl Connection {
    /// Connects, logs in and selects the database, all by `deadline` (or
    /// the abort time).
    pub(super) fn open(
        target: &Target,
        deadline: Instant,
        abort: &Abort,
    ) -> Result<Connection, Broken> {
        let deadline = abort.cap(deadline);
        let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| Broken::io(&format!("cannot resolve {}", target.host), &e))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = Some(Broken("no connection in time".to_owned()));
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(Broken::io(&format!("cannot connect to {addr}"), &e)),
            }
        }
        let stream = stream.ok_or_else(|| {
            last.unwrap_or_else(|| Broken(format!("{} resolves to no address", target.host)))
        })?;
        // Small pipelined writes go out at once.
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            stream,
            buffer: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
        };
        let mut login = Vec::new();
        let mut commands = 0;
        if let Some(password) = &target.password {
            match &target.username {
                Some(user) => pack(&mut login, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => pack(&mut login, &[b"AUTH", password.as_bytes()]),
            }
            commands += 1;
        }
        if target.db != 0 {
            pack(&mut login, &[b"SELECT", target.db.to_string().as_bytes()]);
            commands += 1;
        }
        if commands > 0 {
            connection.send(&login, deadline, abort)?;
            for _ in 0..commands {
                if let Reply::Refused(message) = connection.reply(deadline, abort)? {
                    // The message of a refused AUTH names no password.
                    return Err(Broken(format!("refused at login: {message}")));
                }
            }
        }
        Ok(connection)
    }

    /// Writes `bytes` whole by `deadline` (or the abort time).
    pub(super) fn send(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        abort: &Abort,
    ) -> Result<(), Broken> {
        self.send_counted(bytes, deadline, abort, &mut 0)
    }

    /// [`send`](Self::send), adding to `sent` the bytes handed to the
    /// kernel as they go: when it fails, the caller knows which commands
    /// went out whole (Redis may have run those) and which did not (Redis
    /// runs no command it has not read whole).
    pub(super) fn send_counted(
        &mut self,
        mut bytes: &[u8],
        deadline: Instant,
        abort: &Abort,
        sent: &mut usize,
    ) -> Result<(), Broken> {
        while !bytes.is_empty() {
            let left = abort
                .cap(deadline)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.late(deadline, abort, "writing"));
            }
            self.stream
                .set_write_timeout(Some(left.min(POLL)))
                .map_err(|e| Broken::io("cannot set a write timeout", &e))?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(Broken("the connection accepts no more bytes".to_owned())),
                Ok(n) => {
                    bytes = &bytes[n..];
                    *sent += n;
                }
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(Broken::io("write failed", &e)),
            }
        }
        Ok(())
    }

    /// Reads one reply by `deadline` (or the abort time).
    pub(super) fn reply(&mut self, deadline: Instant, abort: &Abort) -> Result<Reply, Broken> {
        let line = self.line(deadline, abort)?;
        let (kind, text) = (line[0], &line[1..]);
        match kind {
            b'+' => Ok(Reply::Done),
            b':' => {
                parse_int(text).ok_or_else(|| Broken("a malformed integer reply".to_owned()))?;
                Ok(Reply::Done)
            }
            b'-' => Ok(Reply::Refused(String::from_utf8_lossy(text).into_owned())),
            b'$' => {
                let len =
                    parse_int(text).ok_or_else(|| Broken("a malformed bulk length".to_owned()))?;
                if len < 0 {
                    return Ok(Reply::Done);
                }
                if len > MAX_REPLY as i64 {
                    return Err(Broken(format!(
                        "a reply of {len} bytes announced, more than the {MAX_REPLY} \
                         this sink reads: not a Redis answering LPUSH"
                    )));
                }
                // The value and its CRLF; MAX_REPLY + 2 fits the buffer.
                let need = len as usize + 2;
                self.compact();
                while self.end - self.start < need {
                    self.fill(deadline, abort)?;
                }
                let crlf = &self.buffer[self.start + need - 2..self.start + need];
                if crlf != b"\r\n" {
                    return Err(Broken("a bulk reply not ended by CRLF".to_owned()));
                }
                self.start += need;
                Ok(Reply::Done)
            }
            other => Err(Broken(format!(
                "an unexpected reply type {:?} (the sink's commands get an integer, \
                 OK or an error)",
                char::from(other).escape_default().to_string()
            ))),
        }
    }

    /// The next CRLF-ended line, without its CRLF; at most `MAX_REPLY`
    /// bytes.
    fn line(&mut self, deadline: Instant, abort: &Abort) -> Result<Vec<u8>, Broken> {
        let mut searched = 0;
        loop {
            let window = &self.buffer[self.start..self.end];
            if let Some(at) = memchr::memchr(b'\n', &window[searched..]) {
                let at = searched + at;
                if at < 2 || window[at - 1] != b'\r' {
                    return Err(Broken(
                        "a reply line not ended by CRLF, or empty".to_owned(),
                    ));
                }
                let line = window[..at - 1].to_vec();
                self.start += at + 1;
                return Ok(line);
            }
            searched = window.len();
            if searched > MAX_REPLY {
                return Err(Broken(format!(
                    "a reply line longer than the {MAX_REPLY} bytes this sink reads"
                )));
            }
            if self.end == self.buffer.len() {
                self.compact();
            }
            self.fill(deadline, abort)?;
        }
    }

    /// Moves the unparsed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer (which has room), by `deadline`.
    fn fill(&mut self, deadline: Instant, abort: &Abort) -> Result<(), Broken> {
        loop {
            let left = abort
                .cap(deadline)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.late(deadline, abort, "waiting for an answer"));
            }
            self.stream
                .set_read_timeout(Some(left.min(POLL)))
                .map_err(|e| Broken::io("cannot set a read timeout", &e))?;
            match self.stream.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Err(Broken("the server closed the connection".to_owned())),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(Broken::io("read failed", &e)),
            }
        }
    }

    fn late(&self, deadline: Instant, abort: &Abort, doing: &str) -> Broken {
        if abort.at().is_some_and(|at| at <= deadline) {
            Broken(format!("shutting down while {doing}"))
        } else {
            Broken(format!("timed out {doing}"))
        }
    }
}

fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn parse_int(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Appends one command, a RESP array of bulk strings.
pub(super) fn pack(out: &mut Vec<u8>, args: &[&[u8]]) {
    pack_array(out, args.len());
    for arg in args {
        pack_bulk(out, arg);
    }
}

/// `*n\r\n`: a RESP array of `n` elements follows.
pub(super) fn pack_array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`: one RESP bulk string.
pub(super) fn pack_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connection_strings_parse_as_the_redis_crate_reads_them_and_more() {
        let t = Target::parse("redis://127.0.0.1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("127.0.0.1", 6379, 0));
        assert_eq!((t.username, t.password), (None, None));

        let t = Target::parse("redis://:hunter2@db.internal:6380/3").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("db.internal", 6380, 3));
        assert_eq!(t.password.as_deref(), Some("hunter2"));
        assert_eq!(t.username, None);

        let t = Target::parse("redis://alice:p%40ss@[::1]:7000/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("::1", 7000, 0));
        assert_eq!(t.username.as_deref(), Some("alice"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));

        // A base64 password with `/` and `+`, unescaped.
        let t = Target::parse("redis://:Zm9v/YmFy+cXV4@db:6379/2").unwrap();
        assert_eq!(t.password.as_deref(), Some("Zm9v/YmFy+cXV4"));
        assert_eq!((t.host.as_str(), t.db), ("db", 2));
        assert!(!format!("{t:?}").contains("Zm9v"));

        for bad in [
            "redis://",
            "redis://:pw@",
            "redis://h:notaport",
            "redis://h:0",
            "redis://h/x",
            "redis://[::1",
            "redis://::1:6379",
            "redis://h?protocol=resp3",
            "redis://:p%zz@h",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(!err.contains("pw") && !err.contains("p%zz"), "{bad}: {err}");
        }
    }

    #[test]
    fn abort_keeps_the_earliest_time() {
        let abort = Abort::default();
        assert_eq!(abort.at(), None);
        let soon = Instant::now() + Duration::from_millis(10);
        abort.set(soon + Duration::from_secs(1));
        abort.set(soon);
        abort.set(soon + Duration::from_secs(2));
        let at = abort.at().unwrap();
        assert!(at <= soon && soon - at < Duration::from_micros(1));
    }

    /// A peer that writes `reply` and then keeps the connection open.
    fn peer(reply: &'static [u8]) -> (Connection, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(reply).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let target = Target::parse(&format!("redis://{addr}")).unwrap();
        let abort = Abort::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        (Connection::open(&target, deadline, &abort).unwrap(), server)
    }

    #[test]
    fn replies_are_read_within_their_bounds() {
        let (mut c, server) = peer(b":12\r\n+OK\r\n-WRONGTYPE no\r\n$3\r\nabc\r\n$-1\r\n");
        let abort = Abort::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(c.reply(deadline, &abort).unwrap(), Reply::Done);
        assert_eq!(c.reply(deadline, &abort).unwrap(), Reply::Done);
        assert_eq!(
            c.reply(deadline, &abort).unwrap(),
            Reply::Refused("WRONGTYPE no".into())
        );
        assert_eq!(c.reply(deadline, &abort).unwrap(), Reply::Done);
        assert_eq!(c.reply(deadline, &abort).unwrap(), Reply::Done);
        // Nothing more comes: the deadline ends the wait.
        let err = c
            .reply(Instant::now() + Duration::from_millis(50), &abort)
            .unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn huge_and_foreign_replies_break_the_connection() {
        let abort = Abort::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut c, server) = peer(b"$4294967296\r\n");
        let err = c.reply(deadline, &abort).unwrap_err().to_string();
        assert!(err.contains("4294967296 bytes"), "{err}");
        server.join().unwrap();

        let (mut c, server) = peer(b"*2\r\n:1\r\n:2\r\n");
        assert!(c.reply(deadline, &abort).is_err());
        server.join().unwrap();

        static LONG: [u8; 3 * MAX_REPLY] = [b'+'; 3 * MAX_REPLY];
        let (mut c, server) = peer(&LONG);
        let err = c.reply(deadline, &abort).unwrap_err().to_string();
        assert!(err.contains("longer than"), "{err}");
        server.join().unwrap();
    }

    #[test]
    fn an_abort_ends_a_wait_at_once() {
        let (mut c, server) = peer(b"");
        let abort = Abort::default();
        abort.set(Instant::now() + Duration::from_millis(30));
        let err = c
            .reply(Instant::now() + Duration::from_secs(10), &abort)
            .unwrap_err();
        assert!(err.to_string().contains("shutting down"), "{err}");
        server.join().unwrap();
    }
}
