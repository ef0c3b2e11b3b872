//! A real `redis-server` for one test: started on a free loopback port with
//! persistence off (`--save "" --appendonly no`), in its own temporary
//! directory, killed when dropped; and a few raw commands to look into it
//! or to misbehave (`DEBUG SLEEP`, `CLIENT PAUSE`) without a client crate.
//!
//! Without `redis-server` on the `PATH` (Debian's package `redis-server`;
//! `.ci/test` installs it) the test fails and says so: never a silent pass.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    password: Option<String>,
}

impl RedisServer {
    /// A server on a free port.
    pub fn start() -> RedisServer {
        Self::start_with(None)
    }

    /// A server that wants `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: tempfile::tempdir().expect("tempdir"),
                password: password.clone(),
            };
            if server.launch().is_ok() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// A port nobody listens on (for "Redis is down" tests).
    pub fn unused_port() -> u16 {
        free_port()
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut command = Command::new(binary());
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if self.try_command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("redis-server did not answer PING".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restart: {e}"),
                // The port may linger a moment after the kill.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Runs one command and returns its reply in RESP text (see
    /// [`read_reply`]); panics on a connection error.
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    /// Runs several commands on one connection (for `SELECT`), one reply
    /// each.
    pub fn commands(&self, commands: &[&[&str]]) -> Vec<String> {
        let mut stream = self.connect().expect("connect");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        commands
            .iter()
            .map(|args| {
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                send(&mut stream, &args).expect("send");
                read_reply(&mut reader).expect("reply")
            })
            .collect()
    }

    /// Runs one command with binary arguments.
    pub fn command_bytes(&self, args: &[&[u8]]) -> String {
        let mut stream = self.connect().expect("connect");
        send(&mut stream, args).expect("send");
        read_reply(&mut BufReader::new(stream)).expect("reply")
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = self.connect()?;
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        send(&mut stream, &args)?;
        read_reply(&mut BufReader::new(stream))
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        if let Some(password) = &self.password {
            send(&mut stream, &[b"AUTH", password.as_bytes()])?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let reply = read_reply(&mut reader)?;
            assert_eq!(reply, "+OK", "AUTH");
        }
        Ok(stream)
    }

    /// The elements of a list head first (newest `LPUSH` first), as
    /// `LRANGE key 0 -1` returns them.
    pub fn lrange(&self, key: &str) -> Vec<String> {
        let mut stream = self.connect().expect("connect");
        send(&mut stream, &[b"LRANGE", key.as_bytes(), b"0", b"-1"]).expect("send");
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).expect("reply");
        let n: i64 = header
            .trim_end()
            .strip_prefix('*')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("LRANGE reply {header:?}"));
        (0..n.max(0))
            .map(|_| {
                let bulk = read_reply(&mut reader).expect("element");
                bulk.strip_prefix('$').unwrap_or(&bulk).to_owned()
            })
            .collect()
    }

    /// Every key matching `pattern` (`KEYS`: a test store is small).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut stream = self.connect().expect("connect");
        send(&mut stream, &[b"KEYS", pattern.as_bytes()]).expect("send");
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).expect("reply");
        let n: i64 = header.trim_end()[1..].parse().expect("array");
        let mut keys: Vec<String> = (0..n.max(0))
            .map(|_| {
                let bulk = read_reply(&mut reader).expect("key");
                bulk.strip_prefix('$').unwrap_or(&bulk).to_owned()
            })
            .collect();
        keys.sort();
        keys
    }

    /// Stops the server for `duration` from another thread (`DEBUG SLEEP`
    /// blocks the whole server, as a stuck Redis would).
    pub fn sleep_in_background(&self, duration: Duration) -> std::thread::JoinHandle<()> {
        let port = self.port;
        let password = self.password.clone();
        let secs = format!("{:.3}", duration.as_secs_f64());
        std::thread::spawn(move || {
            let server = RedisServer {
                child: None,
                port,
                dir: tempfile::tempdir().expect("tempdir"),
                password,
            };
            let reply = server.command(&["DEBUG", "SLEEP", &secs]);
            assert_eq!(reply, "+OK", "DEBUG SLEEP");
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn send(stream: &mut TcpStream, args: &[&[u8]]) -> std::io::Result<()> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    stream.write_all(&out)
}

/// Reads one reply: simple strings, errors and integers as their line
/// (`+OK`, `-ERR …`, `:3`), a bulk string as `$` and its text, an array as
/// `*N` followed by its elements, one per line.
pub fn read_reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n").to_owned();
    match line.as_bytes().first() {
        Some(b'$') => {
            let n: i64 = line[1..].parse().unwrap_or(-1);
            if n < 0 {
                return Ok("$nil".into());
            }
            let mut data = vec![0u8; n as usize + 2];
            reader.read_exact(&mut data)?;
            data.truncate(n as usize);
            Ok(format!("${}", String::from_utf8_lossy(&data)))
        }
        Some(b'*') => {
            let n: i64 = line[1..].parse().unwrap_or(-1);
            let mut out = line.clone();
            for _ in 0..n.max(0) {
                out.push('\n');
                out.push_str(&read_reply(reader)?);
            }
            Ok(out)
        }
        _ => Ok(line),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The `redis-server` binary, or a failure that names the package.
fn binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("redis-server"))
            .find(|path| path.is_file())
    });
    match found {
        Some(path) => path,
        None if std::env::var_os("CI").is_some() => {
            panic!(
                "redis-server is missing in CI: .ci/test installs the Debian package redis-server"
            )
        }
        None => panic!(
            "this test needs redis-server on the PATH: install the Debian package \
             `redis-server` (apt-get install redis-server, or run .ci/test, which does); it is not skipped"
        ),
    }
}

/// How a [`FakeRedis`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers every command with `:1` (an `LPUSH` length), as Redis does.
    Answer,
    /// Reads everything, answers nothing.
    Silent,
    /// Reads the first bytes of each connection and closes it: a batch
    /// breaks mid-pipeline every time.
    CloseAfterRead,
    /// Reads everything sent until nothing comes for `quiet`, counts the
    /// whole commands in it (`commands`), and closes the connection
    /// without an answer: every command was read, none answered.
    ReadThenClose { quiet: Duration },
    /// Answers the first command with a bulk string announced as
    /// `announced` bytes, then streams up to `at_most` bytes of it.
    HugeBulk { announced: u64, at_most: u64 },
    /// Answers with `:` and then one digit every `every`, never ending the
    /// line: each read gets a byte well within any read timeout.
    Trickle { every: Duration },
}

/// What a [`FakeRedis`] has seen.
#[derive(Debug, Default)]
pub struct FakeStats {
    pub connections: std::sync::atomic::AtomicU64,
    pub commands: std::sync::atomic::AtomicU64,
    /// Bytes of replies written.
    pub bytes_sent: std::sync::atomic::AtomicU64,
    /// Bytes read by a silent fake.
    pub bytes_received: std::sync::atomic::AtomicU64,
    /// When the client closed a connection (read 0 or a write failed).
    pub closed: std::sync::Mutex<Vec<Instant>>,
}

/// A tiny fake Redis on a free loopback port, written for hostile-peer
/// tests: it misbehaves as told ([`Behaviour`], changeable while it runs),
/// and counts what it saw. Stopped when dropped.
pub struct FakeRedis {
    port: u16,
    behaviour: std::sync::Arc<std::sync::Mutex<Behaviour>>,
    pub stats: std::sync::Arc<FakeStats>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRedis {
    pub fn start(behaviour: Behaviour) -> FakeRedis {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let stats = Arc::new(FakeStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (behaviour, stats, stop) = (behaviour.clone(), stats.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stats.connections.fetch_add(1, Ordering::SeqCst);
                            let now = *behaviour.lock().unwrap();
                            let (stats, stop) = (stats.clone(), stop.clone());
                            std::thread::spawn(move || serve(stream, now, &stats, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        FakeRedis {
            port,
            behaviour,
            stats,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// New connections get this behaviour.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn connections(&self) -> u64 {
        self.stats
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whole commands read (answered, or read by `ReadThenClose`).
    pub fn commands(&self) -> u64 {
        self.stats
            .commands
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn bytes_sent(&self) -> u64 {
        self.stats
            .bytes_sent
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits up to `within` for a silent fake to receive bytes; whether
    /// it did.
    pub fn wait_received(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self
            .stats
            .bytes_received
            .load(std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    pub fn closed(&self) -> Vec<Instant> {
        self.stats.closed.lock().unwrap().clone()
    }

    /// Waits up to `within` for the client to close a connection; when.
    pub fn wait_closed(&self, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(first) = self.closed().first() {
                return Some(*first);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection of a [`FakeRedis`].
fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    stats: &FakeStats,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::io::Read;
    use std::sync::atomic::Ordering;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let closed = |stats: &FakeStats| stats.closed.lock().unwrap().push(Instant::now());
    let sent = |n: usize| stats.bytes_sent.fetch_add(n as u64, Ordering::SeqCst);
    let mut buf = vec![0u8; 64 * 1024];
    // Waits for the first bytes of a request; false when the client left.
    let mut first_read = |stream: &mut TcpStream| loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(e) if is_wait(&e) => {}
            Err(_) => return false,
        }
    };
    match behaviour {
        Behaviour::Answer => {
            // Blocking reads: a command may arrive in pieces.
            let _ = stream.set_read_timeout(None);
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            while let Ok(Some(_)) = read_command(&mut reader) {
                stats.commands.fetch_add(1, Ordering::SeqCst);
                if stream.write_all(b":1\r\n").is_err() {
                    break;
                }
                sent(4);
            }
            closed(stats);
        }
        Behaviour::Silent => loop {
            match stream.read(&mut buf) {
                Ok(0) => return closed(stats),
                Ok(n) => {
                    stats.bytes_received.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(e) if is_wait(&e) && !stop.load(Ordering::Relaxed) => {}
                Err(_) => return closed(stats),
            }
        },
        Behaviour::CloseAfterRead => {
            first_read(&mut stream);
            // Dropped here: closed mid-pipeline.
        }
        Behaviour::ReadThenClose { quiet } => {
            let mut received = Vec::new();
            // The first bytes, however long they take; then until quiet.
            let _ = stream.set_read_timeout(None);
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return closed(stats),
                    Ok(n) => {
                        received.extend_from_slice(&buf[..n]);
                        if stream.set_read_timeout(Some(quiet)).is_err() {
                            return closed(stats);
                        }
                    }
                    Err(e) if is_wait(&e) => break,
                    Err(_) => return closed(stats),
                }
            }
            stats
                .bytes_received
                .fetch_add(received.len() as u64, Ordering::SeqCst);
            let mut reader = &received[..];
            while let Ok(Some(_)) = read_command(&mut reader) {
                stats.commands.fetch_add(1, Ordering::SeqCst);
            }
            // Dropped here: closed, nothing answered.
        }
        Behaviour::HugeBulk { announced, at_most } => {
            if !first_read(&mut stream) {
                return closed(stats);
            }
            let header = format!("${announced}\r\n");
            if stream.write_all(header.as_bytes()).is_err() {
                return closed(stats);
            }
            sent(header.len());
            let chunk = vec![b'x'; 64 * 1024];
            let mut total = 0u64;
            while total < at_most && !stop.load(Ordering::Relaxed) {
                match stream.write(&chunk) {
                    Ok(n) => {
                        total += n as u64;
                        sent(n);
                    }
                    Err(e) if is_wait(&e) => {}
                    Err(_) => return closed(stats),
                }
            }
            // Streamed all it was allowed to: wait for the client to leave.
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut buf) {
                    Ok(0) => return closed(stats),
                    Err(e) if !is_wait(&e) => return closed(stats),
                    _ => {}
                }
            }
        }
        Behaviour::Trickle { every } => {
            if !first_read(&mut stream) {
                return closed(stats);
            }
            let mut byte: &[u8] = b":";
            while !stop.load(Ordering::Relaxed) {
                if stream.write_all(byte).is_err() {
                    return closed(stats);
                }
                sent(1);
                byte = b"1";
                std::thread::sleep(every);
            }
        }
    }
}

fn is_wait(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Reads one command (a RESP array of bulk strings); `None` at the end of
/// the connection.
fn read_command(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let n: usize = line
        .trim_end()
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not a command: {line:?}")))?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        reader.read_line(&mut line)?;
        let len: usize = line
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not a bulk: {line:?}")))?;
        let mut data = vec![0u8; len + 2];
        reader.read_exact(&mut data)?;
        data.truncate(len);
        args.push(data);
    }
    Ok(Some(args))
}

/// A loopback port where a connection never completes: a listener that
/// never accepts, its accept queue filled (the kernel then drops the SYNs
/// of further connections, which wait until their timeout). Nothing
/// leaves the machine.
pub struct HangingListener {
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
    port: u16,
}

impl HangingListener {
    pub fn start() -> HangingListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut fillers = Vec::new();
        // The accept queue holds `somaxconn`-bounded backlog + 1 (129 with
        // std's backlog of 128); stop at the first connection that hangs.
        for _ in 0..4096 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
                Ok(stream) => fillers.push(stream),
                Err(_) => {
                    return HangingListener {
                        _listener: listener,
                        _fillers: fillers,
                        port: addr.port(),
                    }
                }
            }
        }
        panic!("4096 connections were accepted by a listener that never accepts");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
