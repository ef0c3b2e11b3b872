//! osprofiler's Redis store as a log (feature `redis`): [`RedisSource`]
//! reads the events osprofiler's `redis` driver (and tracing-osprofiler's
//! Redis sink) stored, and hands them to the reports as the Mistral lines
//! a log file would hold, so every report reads a store as it reads a file.
//!
//! # What is read
//!
//! * `osprofiler_opt:<base_id>`: osprofiler 4.4's layout, one list per
//!   request, one JSON document per start and stop, newest first. Each list
//!   is read from its tail (oldest first) in slices of [`SLICE`] entries,
//!   so events pushed meanwhile never shift what is read.
//! * `osprofiler:<base_id>_<trace_id>_<timestamp>`: the older layout, one
//!   string per event. Its events of one request are spread over the whole
//!   keyspace, so they are gathered in memory, at most
//!   [`LEGACY_EVENTS_MAX`] of them (more are counted as not read).
//!
//! A whole store (`rank`, `list`) is walked with `SCAN` (never `KEYS`), a
//! page of keys at a time, the first entries of every list of the page
//! fetched in one pipelined round trip; one request (`show`) is one
//! `LRANGE` of its key, and only when that key holds nothing, a `SCAN` for
//! its legacy keys (as osprofiler's own `get_report` does).
//!
//! # Memory
//!
//! One `SCAN` page's first slices (at most 256 × 128 entries), one slice
//! of a longer list, and per request the starts still waiting for their
//! stop; besides, the ids of the requests read so far
//! (16 bytes each), because `SCAN` may return a key twice; and the legacy
//! events, bounded as above.
//!
//! # Time
//!
//! Every round trip with the store (a command, or a pipeline of them:
//! written, and its whole answer read) and the connection with its login
//! get one total deadline each ([`RedisSource::with_timeout`], 10 s by
//! default), not a timeout per read: a store (or a proxy) that answers a
//! byte at a time fails the read with an error that names the store and
//! the timeout, instead of holding the report for as long as it trickles.
//!
//! # From documents to lines
//!
//! A start becomes a start line with the document's timestamp, ids and
//! name. A stop's duration is, in this order: `info.duration` (what the
//! Rust sink writes: the log line's own duration, so a report from the
//! store equals a report from the log), or its timestamp minus its start's
//! (osprofiler's Python services write no duration), or 0 when the start
//! is not in the store (osprofiler's own rule for a point missing its
//! start). A stop's `info.busy` (the Rust sink's) becomes the line's busy
//! time; without it the busy time is unknown.
//!
//! # Hostile stores
//!
//! An entry that is not a JSON object with the fields above, a key of
//! another type, an error from Redis on one key: each is reported on
//! standard error, naming the key (and the entry) and why, and skipped;
//! the rest of the store is still read. A list full of bad entries gets
//! [`ENTRIES_SHOWN_PER_KEY`] messages and a count; after [`PROBLEMS_SHOWN`]
//! messages in all, only a count. Nothing in a store makes
//! the reader panic. A value longer than the per-value limit
//! ([`RedisSource::with_max_value_bytes`], 1 MiB by default; Redis allows
//! 512 MB) is not kept: its bytes are read and dropped, and the entry is
//! named with its length and the limit, and skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing_osprofiler::format::{
    check_duration, parse_timestamp, write_start, write_stop_with_busy, PointIds, PointName,
    Timestamp,
};
use tracing_osprofiler::Id;

use crate::Error;

#[path = "resp.rs"]
mod resp;

use resp::Value as Reply;

/// Entries of one list read at once.
pub(crate) const SLICE: usize = 1_000;

/// Legacy events (one key each) gathered in memory at most.
pub(crate) const LEGACY_EVENTS_MAX: usize = 1_000_000;

/// Problems printed in full; the rest are counted.
pub(crate) const PROBLEMS_SHOWN: usize = 1_000;

/// Bad entries of one list printed in full; the rest of that list's are
/// counted in one more message.
pub(crate) const ENTRIES_SHOWN_PER_KEY: u64 = 5;

/// Starts of one request waiting for their stop, at most; a stop whose
/// start was not kept gets `info.duration` or 0.
const OPEN_STARTS_MAX: usize = 1_000_000;

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 256;

/// Entries of each list of a `SCAN` page fetched with the page; a longer
/// list is read on in slices of [`SLICE`].
const FIRST_SLICE: usize = 128;

/// The prefix of osprofiler 4.4's lists.
const OPT_PREFIX: &str = "osprofiler_opt:";

/// The prefix of the older one-key-per-event layout.
const LEGACY_PREFIX: &str = "osprofiler:";

/// A Redis store holding osprofiler's events, read as one log.
///
/// | setting | default | setter |
/// |---|---|---|
/// | server | the connection string given to [`new`](Self::new) | |
/// | only one request | no: the whole store | [`with_request`](Self::with_request) |
/// | longest value read | 1 MiB ([`DEFAULT_MAX_VALUE_BYTES`](Self::DEFAULT_MAX_VALUE_BYTES)) | [`with_max_value_bytes`](Self::with_max_value_bytes) |
/// | longest round trip (a command or a pipeline, written and its whole answer read; the connection and login together) | 10 s ([`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT)) | [`with_timeout`](Self::with_timeout) |
///
/// ```no_run
/// use osprof::source::{Inputs, RedisSource, Source};
///
/// let store = RedisSource::new("redis://127.0.0.1:6379")?;
/// let inputs = Inputs::new(vec![Source::Redis(store)])?;
/// let report = osprof::rank::rank(&inputs, &osprof::rank::RankOptions::default())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisSource {
    /// The connection string without its password.
    shown: String,
    client: redis::Client,
    /// Only this request, or the whole store.
    request: Option<Id>,
    max_value_bytes: u64,
    timeout: Duration,
    problems: Arc<Problems>,
    /// What the reports read of it, for `check_logs` (`sniff.rs`).
    seen: Arc<crate::sniff::Seen>,
}

impl RedisSource {
    /// The longest value kept by default: 1 MiB. An event document is a
    /// few hundred bytes, a few KiB with fields or a traceback.
    pub const DEFAULT_MAX_VALUE_BYTES: u64 = 1024 * 1024;

    /// The longest round trip by default: 10 s. The longest round trip is
    /// a whole `SCAN` page: up to 256 keys with the first 128 entries of
    /// each list, every entry up to `max_value_bytes`; a few MiB of
    /// ordinary events, read in well under a second from a healthy store,
    /// but easily tens of MiB with large values, so a distant or slow
    /// store may need more ([`with_timeout`](Self::with_timeout)).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The store at `redis://[:password@]host[:port][/db]`; nothing is
    /// connected yet.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the string is not such a URL (`rediss://`, TLS,
    /// is not supported by this build). The message never shows a
    /// password.
    pub fn new(connection_string: &str) -> Result<Self, Error> {
        let shown = tracing_osprofiler::writer::redact_password(connection_string);
        let open_error = |why: String| Error::Open {
            name: shown.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, why),
        };
        let scheme = connection_string
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("redis") => {}
            Some("rediss") => {
                return Err(open_error(
                    "TLS (rediss://) is not supported by this build; use redis:// \
                     through a local TLS tunnel"
                        .into(),
                ))
            }
            _ => {
                return Err(open_error(
                    "not a redis://[:password@]host[:port][/db] connection string".into(),
                ))
            }
        }
        let client = redis::Client::open(connection_string)
            .map_err(|e| open_error(hide_password(&e.to_string(), connection_string)))?;
        Ok(RedisSource {
            shown,
            client,
            request: None,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            problems: Arc::default(),
            seen: Arc::default(),
        })
    }

    /// Reads only the request `base_id` (its one key), not the whole store.
    #[must_use]
    pub fn with_request(mut self, base_id: Id) -> Self {
        self.request = Some(base_id);
        self
    }

    /// The longest value (an event document) read from the store, in
    /// bytes (at least 1). A longer one is not kept in memory: it is named
    /// on standard error with its length and this limit, counted in
    /// [`problems`](Self::problems), and skipped.
    #[must_use]
    pub fn with_max_value_bytes(mut self, bytes: u64) -> Self {
        self.max_value_bytes = bytes.max(1);
        self
    }

    /// What the reports read of the store, over every read so far.
    pub(crate) fn seen(&self) -> &Arc<crate::sniff::Seen> {
        &self.seen
    }

    /// Whether only one request is read ([`with_request`](Self::with_request)).
    pub(crate) fn one_request(&self) -> bool {
        self.request.is_some()
    }

    /// The longest a round trip with the store may take (at least 1 ms):
    /// a command (or a pipeline of them) written and its whole answer
    /// read; the connection and its login (`AUTH`, `SELECT`) together.
    /// Past it, reading fails with an [`io::ErrorKind::TimedOut`] error
    /// that names the timeout, so a store that answers a byte at a time
    /// cannot hold a report for longer.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many entries could not be read, over every read so far.
    #[must_use]
    pub fn problems(&self) -> u64 {
        self.problems.lock().count
    }

    /// Connects, and returns the store's events as Mistral lines.
    pub(crate) fn open(&self) -> Result<Box<dyn Read>, Error> {
        let connection = resp::Connection::open(
            self.client.get_connection_info(),
            self.timeout,
            self.max_value_bytes,
        )
        .map_err(|e| Error::Open {
            name: self.shown.clone(),
            source: io::Error::new(e.kind(), hide_password(&e.to_string(), &self.shown)),
        })?;
        let walk = match self.request {
            Some(base_id) => Walk::One(base_id),
            None => Walk::Store(Scan {
                cursor: 0,
                started: false,
                pending: VecDeque::new(),
                seen: HashSet::new(),
                seen_names: HashSet::new(),
            }),
        };
        Ok(Box::new(StoreReader {
            connection,
            max_value_bytes: self.max_value_bytes,
            shown: self.shown.clone(),
            problems: Arc::clone(&self.problems),
            walk,
            list: None,
            legacy: None,
            out: Vec::with_capacity(256 * 1024),
            pos: 0,
            finished: false,
        }))
    }
}

impl fmt::Display for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)?;
        if let Some(base_id) = self.request {
            write!(f, " ({OPT_PREFIX}{base_id})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSource")
            .field("connection_string", &self.shown)
            .field("request", &self.request)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RedisSource {
    fn eq(&self, other: &Self) -> bool {
        self.shown == other.shown && self.request == other.request
    }
}

impl Eq for RedisSource {}

/// The entries that could not be read: printed once each (the first
/// [`PROBLEMS_SHOWN`]), however many times the store is read.
#[derive(Debug, Default)]
struct Problems(Mutex<ProblemLog>);

#[derive(Debug, Default)]
struct ProblemLog {
    count: u64,
    shown: HashSet<String>,
    hidden: u64,
}

impl Problems {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProblemLog> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn report(&self, store: &str, what: String) {
        let mut log = self.lock();
        if log.shown.contains(&what) {
            return;
        }
        log.count += 1;
        if log.shown.len() < PROBLEMS_SHOWN {
            eprintln!("osprof: {store}: {what}: skipped");
            log.shown.insert(what);
        } else {
            log.hidden += 1;
        }
    }

    /// At the end of a read: how many were not printed.
    fn summary(&self, store: &str) {
        let mut log = self.lock();
        if log.hidden > 0 {
            eprintln!(
                "osprof: {store}: {} more entries could not be read and were skipped",
                log.hidden
            );
            log.hidden = 0;
        }
    }
}

/// Which keys are left to read.
enum Walk {
    /// One request's key (and, if it is empty, its legacy keys).
    One(Id),
    /// Every `osprofiler_opt:*` key, then the legacy keys.
    Store(Scan),
    /// Every key was read (what is being read is in `list` or `legacy`).
    Done,
}

struct Scan {
    cursor: u64,
    started: bool,
    /// Keys of the current page, each with its first slice.
    pending: VecDeque<(Vec<u8>, Reply)>,
    /// Requests read, for the keys `SCAN` returns twice.
    seen: HashSet<Id>,
    /// Keys read whose name holds no id (rare: a foreign key).
    seen_names: HashSet<Vec<u8>>,
}

/// The list being read: from its tail, a slice at a time.
struct ListRead {
    key: Vec<u8>,
    /// Entries not read yet (as counted by `LLEN` when it began).
    left: usize,
    /// Entries already read, from the tail.
    read: usize,
    /// Starts waiting for their stop.
    open: HashMap<Id, Timestamp>,
    /// Entries that could not be read.
    bad: u64,
}

/// The legacy events, gathered by request, then emitted one request at a
/// time.
struct LegacyRead {
    pattern: String,
    cursor: u64,
    /// Every key matching `pattern` was gathered.
    scanned: bool,
    events: HashMap<Id, Vec<(u64, Value)>>,
    gathered: usize,
    not_gathered: u64,
}

struct StoreReader {
    connection: resp::Connection,
    max_value_bytes: u64,
    shown: String,
    problems: Arc<Problems>,
    walk: Walk,
    list: Option<ListRead>,
    legacy: Option<LegacyRead>,
    out: Vec<u8>,
    pos: usize,
    finished: bool,
}

impl Read for StoreReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.finished {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            self.fill()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl StoreReader {
    /// Adds the next lines to `out` (or finishes).
    fn fill(&mut self) -> io::Result<()> {
        if let Some(list) = self.list.take() {
            return self.read_slice(list);
        }
        if let Some(legacy) = self.legacy.take() {
            return self.read_legacy(legacy);
        }
        match std::mem::replace(&mut self.walk, Walk::Done) {
            Walk::Done => {
                self.finish();
                Ok(())
            }
            Walk::One(base_id) => {
                let key = format!("{OPT_PREFIX}{base_id}").into_bytes();
                if !self.begin_list(key)? {
                    // Nothing in the list: perhaps the older layout.
                    self.legacy = Some(LegacyRead::new(format!("{LEGACY_PREFIX}{base_id}_*")));
                }
                Ok(())
            }
            Walk::Store(mut scan) => {
                if let Some((key, reply)) = scan.pending.pop_front() {
                    self.walk = Walk::Store(scan);
                    return self.take_first_slice(key, reply);
                }
                if scan.started && scan.cursor == 0 {
                    // Every list read: the older layout's keys now.
                    self.legacy = Some(LegacyRead::new(format!("{LEGACY_PREFIX}*")));
                    return Ok(());
                }
                self.scan_page(&mut scan)?;
                self.walk = Walk::Store(scan);
                Ok(())
            }
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        self.problems.summary(&self.shown);
    }

    fn io_error(&self, e: &io::Error) -> io::Error {
        io::Error::new(e.kind(), hide_password(&e.to_string(), &self.shown))
    }

    /// One command's reply; an I/O error names no password.
    fn query(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.connection.query(args).map_err(|e| self.io_error(&e))
    }

    /// Why a value was not read: longer than the limit.
    fn too_long(&self, len: u64) -> String {
        format!(
            "a value of {len} bytes, longer than the {} bytes read per value \
             (--max-value-bytes)",
            self.max_value_bytes
        )
    }

    fn report(&self, what: String) {
        self.problems.report(&self.shown, what);
    }

    /// One `SCAN` page of keys matching `pattern`.
    fn scan(&mut self, cursor: u64, pattern: &str) -> io::Result<(u64, Vec<Vec<u8>>)> {
        let cursor = cursor.to_string();
        let count = SCAN_COUNT.to_string();
        let reply = self.query(&[
            b"SCAN",
            cursor.as_bytes(),
            b"MATCH",
            pattern.as_bytes(),
            b"COUNT",
            count.as_bytes(),
        ])?;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let (next, keys) = match reply {
            Reply::Array(mut parts) if parts.len() == 2 => {
                let keys = parts.pop();
                (parts.pop(), keys)
            }
            Reply::Error(e) => return Err(bad(format!("SCAN refused: {e}"))),
            _ => return Err(bad("SCAN: not a cursor and keys".into())),
        };
        let next = match next {
            Some(Reply::Bulk(cursor)) => std::str::from_utf8(&cursor)
                .ok()
                .and_then(|c| c.parse().ok()),
            _ => None,
        }
        .ok_or_else(|| bad("SCAN: a cursor that is not a number".into()))?;
        let Some(Reply::Array(keys)) = keys else {
            return Err(bad("SCAN: no array of keys".into()));
        };
        let mut names = Vec::with_capacity(keys.len());
        for key in keys {
            match key {
                Reply::Bulk(key) => names.push(key),
                Reply::TooLong(len) => self.report(format!("a key name: {}", self.too_long(len))),
                _ => {}
            }
        }
        Ok((next, names))
    }

    /// Starts reading the list `key`; whether it holds anything.
    fn begin_list(&mut self, key: Vec<u8>) -> io::Result<bool> {
        let len = match self.query(&[b"LLEN", &key])? {
            Reply::Int(len) => usize::try_from(len).unwrap_or(0),
            // WRONGTYPE: a key of another type under the prefix.
            Reply::Error(_) => {
                self.report_not_a_list(&key);
                return Ok(false);
            }
            _ => return Ok(false),
        };
        if len == 0 {
            return Ok(false);
        }
        self.list = Some(ListRead {
            key,
            left: len,
            read: 0,
            open: HashMap::new(),
            bad: 0,
        });
        Ok(true)
    }

    /// Reads the next slice of `list`, oldest first.
    fn read_slice(&mut self, mut list: ListRead) -> io::Result<()> {
        let n = list.left.min(SLICE);
        // From the tail: LPUSH adds at the head, so these indexes do not
        // move while the list grows.
        let start = -isize::try_from(list.read + n).unwrap_or(isize::MAX);
        let stop = -isize::try_from(list.read + 1).unwrap_or(isize::MAX);
        let (start, stop) = (start.to_string(), stop.to_string());
        let reply = self.query(&[b"LRANGE", &list.key, start.as_bytes(), stop.as_bytes()])?;
        let key = String::from_utf8_lossy(&list.key).into_owned();
        let entries = match reply {
            Reply::Array(entries) => entries,
            // The key changed type meanwhile.
            Reply::Error(e) => {
                self.report(format!("{key}: {e}"));
                return Ok(());
            }
            _ => Vec::new(),
        };
        let first_index = list.read;
        list.read += n;
        list.left -= n;
        let emptied = entries.is_empty();
        self.take_entries(&mut list, first_index, entries);
        // An empty answer: the list was cut or removed meanwhile.
        if list.left > 0 && !emptied {
            self.list = Some(list);
        } else {
            self.end_list(&list);
        }
        Ok(())
    }

    /// Turns a slice of `list` (as `LRANGE` gives it, newest first) whose
    /// oldest entry is `first_index` from the tail into lines, oldest first.
    fn take_entries(&mut self, list: &mut ListRead, first_index: usize, entries: Vec<Reply>) {
        let key = String::from_utf8_lossy(&list.key).into_owned();
        for (k, entry) in entries.iter().rev().enumerate() {
            let result = match entry {
                Reply::Bulk(entry) => serde_json::from_slice::<Value>(entry)
                    .map_err(|e| format!("not JSON ({e})"))
                    .and_then(|doc| write_event(&doc, &mut list.open, &mut self.out)),
                Reply::TooLong(len) => Err(self.too_long(*len)),
                _ => Err("not a string".to_owned()),
            };
            if let Err(why) = result {
                list.bad += 1;
                if list.bad <= ENTRIES_SHOWN_PER_KEY {
                    // Counted from the tail, 0-based: `LINDEX key -(n+1)`.
                    self.report(format!(
                        "{key} entry {} from the tail: {why}",
                        first_index + k
                    ));
                }
            }
        }
    }

    /// The list is read: the count of its bad entries not shown.
    fn end_list(&self, list: &ListRead) {
        if list.bad > ENTRIES_SHOWN_PER_KEY {
            self.report(format!(
                "{}: {} more entries that cannot be read",
                String::from_utf8_lossy(&list.key),
                list.bad - ENTRIES_SHOWN_PER_KEY
            ));
        }
    }

    /// One `SCAN` page of lists, with the first [`FIRST_SLICE`] entries of
    /// each fetched in one pipelined round trip (a request's events mostly
    /// fit: one round trip per page, not two per request).
    fn scan_page(&mut self, scan: &mut Scan) -> io::Result<()> {
        let (next, keys) = self.scan(scan.cursor, &format!("{OPT_PREFIX}*"))?;
        scan.started = true;
        scan.cursor = next;
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|key| match key_id(key, OPT_PREFIX) {
                Some(id) => scan.seen.insert(id),
                None => scan.seen_names.insert(key.clone()),
            })
            .collect();
        let first = (-isize::try_from(FIRST_SLICE).unwrap_or(isize::MAX)).to_string();
        let mut packed = Vec::new();
        for key in &keys {
            resp::pack(&mut packed, &[b"LRANGE", key, first.as_bytes(), b"-1"]);
        }
        let replies = self.each_reply(&packed, keys.len())?;
        scan.pending.extend(keys.into_iter().zip(replies));
        Ok(())
    }

    /// A key of the page with its first slice: lines, and the rest of the
    /// list to read if it is longer.
    fn take_first_slice(&mut self, key: Vec<u8>, reply: Reply) -> io::Result<()> {
        let entries: Vec<Reply> = match reply {
            Reply::Array(items) => items,
            Reply::Error(_) => {
                // WRONGTYPE: a key of another type under the prefix.
                self.report_not_a_list(&key);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let full = entries.len() == FIRST_SLICE;
        let mut list = ListRead {
            key,
            left: 0,
            read: entries.len(),
            open: HashMap::new(),
            bad: 0,
        };
        self.take_entries(&mut list, 0, entries);
        if full {
            match self.query(&[b"LLEN", &list.key])? {
                Reply::Int(len) if usize::try_from(len).is_ok_and(|len| len > list.read) => {
                    list.left = usize::try_from(len).unwrap_or(0) - list.read;
                    self.list = Some(list);
                    return Ok(());
                }
                Reply::Error(_) => self.report_not_a_list(&list.key),
                _ => {}
            }
        }
        self.end_list(&list);
        Ok(())
    }

    fn report_not_a_list(&mut self, key: &[u8]) {
        let kind = match self.connection.query(&[b"TYPE", key]) {
            Ok(Reply::Status(kind)) => kind,
            _ => "key of another type".into(),
        };
        self.report(format!(
            "{}: a {kind}, not a list",
            String::from_utf8_lossy(key)
        ));
    }

    /// Gathers the legacy events (one `SCAN` page per call), then emits
    /// them a request per call.
    fn read_legacy(&mut self, mut legacy: LegacyRead) -> io::Result<()> {
        if !legacy.scanned {
            let (next, keys) = self.scan(legacy.cursor, &legacy.pattern.clone())?;
            legacy.cursor = next;
            legacy.scanned = next == 0;
            for (key, value) in keys.iter().zip(self.get_each(&keys)?) {
                legacy.gather(key, value, self);
            }
            self.legacy = Some(legacy);
            return Ok(());
        }
        let Some(&base_id) = legacy.events.keys().next() else {
            if legacy.not_gathered > 0 {
                self.report(format!(
                    "{} events of the older layout ({LEGACY_PREFIX}*) past the first \
                     {LEGACY_EVENTS_MAX}: not read",
                    legacy.not_gathered
                ));
            }
            return Ok(());
        };
        let mut events = legacy.events.remove(&base_id).unwrap_or_default();
        // Timestamps in one format sort as text; starts before the stops of
        // the same moment; then the order found.
        events.sort_by_cached_key(|(order, doc)| {
            let time = doc
                .get("timestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (time, is_stop(doc), *order)
        });
        let mut open = HashMap::new();
        for (_, doc) in &events {
            if let Err(why) = write_event(doc, &mut open, &mut self.out) {
                self.report(format!("{LEGACY_PREFIX}{base_id}_…: {why}"));
            }
        }
        self.legacy = Some(legacy);
        Ok(())
    }

    /// `GET` of each key, pipelined; each reply on its own, so that one
    /// key of another type spoils nothing else.
    fn get_each(&mut self, keys: &[Vec<u8>]) -> io::Result<Vec<Reply>> {
        let mut packed = Vec::new();
        for key in keys {
            resp::pack(&mut packed, &[b"GET", key]);
        }
        self.each_reply(&packed, keys.len())
    }

    /// Sends `packed` (`n` commands) and reads the `n` replies one by one:
    /// an error reply stays with its command.
    fn each_reply(&mut self, packed: &[u8], n: usize) -> io::Result<Vec<Reply>> {
        self.connection
            .pipeline(packed, n)
            .map_err(|e| self.io_error(&e))
    }
}

impl LegacyRead {
    fn new(pattern: String) -> Self {
        LegacyRead {
            pattern,
            cursor: 0,
            scanned: false,
            events: HashMap::new(),
            gathered: 0,
            not_gathered: 0,
        }
    }

    /// Keeps one legacy event, or reports why it cannot be read.
    fn gather(&mut self, key: &[u8], value: Reply, reader: &StoreReader) {
        let name = String::from_utf8_lossy(key);
        let bytes = match value {
            Reply::Bulk(bytes) => bytes,
            // Removed meanwhile.
            Reply::Nil => return,
            Reply::Error(e) => {
                reader.report(format!("{name}: {e}"));
                return;
            }
            Reply::TooLong(len) => {
                reader.report(format!("{name}: {}", reader.too_long(len)));
                return;
            }
            _ => {
                reader.report(format!("{name}: not a string"));
                return;
            }
        };
        let doc = match serde_json::from_slice::<Value>(&bytes) {
            Ok(doc) => doc,
            Err(e) => {
                reader.report(format!("{name}: not JSON ({e})"));
                return;
            }
        };
        let Some(base_id) = doc
            .get("base_id")
            .and_then(Value::as_str)
            .and_then(|b| Id::parse(b).ok())
        else {
            reader.report(format!("{name}: no base_id that is a UUID"));
            return;
        };
        if self.gathered >= LEGACY_EVENTS_MAX {
            self.not_gathered += 1;
            return;
        }
        let order = self.gathered as u64;
        self.gathered += 1;
        self.events.entry(base_id).or_default().push((order, doc));
    }
}

fn is_stop(doc: &Value) -> bool {
    doc.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.ends_with("-stop"))
}

/// The id in a key `PREFIX<uuid>`.
fn key_id(key: &[u8], prefix: &str) -> Option<Id> {
    Id::parse_bytes(key.strip_prefix(prefix.as_bytes())?).ok()
}

/// Appends the Mistral line of one event document.
fn write_event(
    doc: &Value,
    open: &mut HashMap<Id, Timestamp>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let object = doc.as_object().ok_or("not a JSON object")?;
    let text = |field: &str| -> Result<&str, String> {
        object
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no {field} string"))
    };
    let id = |field: &str| -> Result<Id, String> {
        Id::parse(text(field)?).map_err(|_| format!("{field} is not a UUID"))
    };
    let full_name = text("name")?;
    let ids = PointIds {
        base_id: id("base_id")?,
        parent_id: id("parent_id")?,
        trace_id: id("trace_id")?,
    };
    let stamp = text("timestamp")?;
    let timestamp = match parse_timestamp(stamp.as_bytes()) {
        Some((timestamp, [])) => timestamp,
        _ => return Err(format!("timestamp {stamp:?} is not %Y-%m-%dT%H:%M:%S.%f")),
    };
    if let Some(name) = full_name.strip_suffix("-start") {
        if open.len() < OPEN_STARTS_MAX {
            open.insert(ids.trace_id, timestamp);
        }
        // A root kept by tail capture says why in `info.capture`: carried
        // over as the line's fields, where the log writer puts it.
        let kept = object
            .get("info")
            .and_then(|info| info.get("capture"))
            .and_then(|capture| capture.get("kept"))
            .and_then(Value::as_str)
            .and_then(|why| ["slow", "error"].into_iter().find(|k| *k == why))
            .map(|why| format!("{{\"capture.kept\":\"{why}\"}}"));
        write_start(out, timestamp, &ids, PointName::new(name), kept.as_deref());
        Ok(())
    } else if let Some(name) = full_name.strip_suffix("-stop") {
        let started = open.remove(&ids.trace_id);
        let recorded = object
            .get("info")
            .and_then(|info| info.get("duration"))
            .and_then(Value::as_f64)
            .and_then(|secs| check_duration(secs).ok());
        let duration = match (recorded, started) {
            (Some(secs), _) => Duration::from_secs_f64(secs),
            (None, Some(start)) => Duration::from_micros(
                u64::try_from(timestamp.unix_micros().saturating_sub(start.unix_micros()))
                    .unwrap_or(0),
            ),
            // osprofiler: a point missing its start lasted nothing.
            (None, None) => Duration::ZERO,
        };
        // The Rust sink's `info.busy`, as the log line's `{"busy":…}`:
        // kept only within the duration, and absent means unknown.
        let busy = object
            .get("info")
            .and_then(|info| info.get("busy"))
            .and_then(Value::as_f64)
            .and_then(|secs| check_duration(secs).ok())
            .map(Duration::from_secs_f64)
            .filter(|busy| *busy <= duration);
        write_stop_with_busy(
            out,
            timestamp,
            duration,
            busy,
            &ids,
            PointName::new(name),
            false,
        );
        Ok(())
    } else {
        Err(format!(
            "name {full_name:?} ends in neither -start nor -stop"
        ))
    }
}

/// `text` with the secrets of `connection_string` replaced, in case an
/// error message quotes them: the password (one holding `/` included) and
/// query values, as `redact_password` hides them.
fn hide_password(text: &str, connection_string: &str) -> String {
    tracing_osprofiler::writer::hide_connection_secrets(text, connection_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(doc: &str, open: &mut HashMap<Id, Timestamp>) -> Result<String, String> {
        let mut out = Vec::new();
        write_event(&serde_json::from_str(doc).unwrap(), open, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const IDS: &str = r#""base_id": "f12e75d5-5d59-4cbc-b74d-357f19290dd7", "parent_id": "603f1fab-be78-438d-af13-d94ed3b7e416", "trace_id": "b1d0a77a-52f5-4415-a6c4-f16b3591a47d""#;

    #[test]
    fn a_start_kept_by_capture_says_so_in_its_fields_and_nothing_else_is_carried() {
        let mut open = HashMap::new();
        let kept = line(
            &format!(r#"{{"name": "wsgi-start", {IDS}, "timestamp": "2020-02-27T08:04:25.954502", "info": {{"host": "h", "capture": {{"kept": "slow", "truncated": 0}}}}}}"#),
            &mut open,
        )
        .unwrap();
        assert!(
            kept.ends_with(" wsgi-start {\"capture.kept\":\"slow\"}\n"),
            "{kept}"
        );
        assert_eq!(crate::list::kept_by_capture(kept.as_bytes()), Some("slow"));
        // Only the two reasons are carried: another value is no JSON to inject.
        let other = line(
            &format!(r#"{{"name": "wsgi-start", {IDS}, "timestamp": "2020-02-27T08:04:25.954502", "info": {{"capture": {{"kept": "x\"}}"}}}}}}"#),
            &mut open,
        )
        .unwrap();
        assert!(other.ends_with(" wsgi-start\n"), "{other}");
    }

    #[test]
    fn python_stops_take_their_duration_from_their_start_rust_stops_from_info() {
        let mut open = HashMap::new();
        let start = line(
            &format!(r#"{{"name": "db-start", {IDS}, "timestamp": "2020-02-27T08:04:25.954502", "info": {{"host": "h"}}}}"#),
            &mut open,
        )
        .unwrap();
        assert_eq!(start, "2020-02-27T08:04:25.954502          f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d db-start\n");
        let stop = line(
            &format!(r#"{{"name": "db-stop", {IDS}, "timestamp": "2020-02-27T08:04:25.961298"}}"#),
            &mut open,
        )
        .unwrap();
        assert!(
            stop.starts_with("2020-02-27T08:04:25.961298 0.006796 "),
            "{stop}"
        );

        let stop = line(
            &format!(r#"{{"name": "db-stop", {IDS}, "timestamp": "2020-02-27T08:04:25.961298", "info": {{"duration": 0.006782}}}}"#),
            &mut open,
        )
        .unwrap();
        assert!(
            stop.starts_with("2020-02-27T08:04:25.961298 0.006782 "),
            "{stop}"
        );

        // The Rust sink's busy time, within the duration; absent otherwise.
        let stop = line(
            &format!(r#"{{"name": "db-stop", {IDS}, "timestamp": "2020-02-27T08:04:25.961298", "info": {{"duration": 0.006782, "busy": 0.000123}}}}"#),
            &mut open,
        )
        .unwrap();
        assert!(stop.ends_with(" db-stop {\"busy\":0.000123}\n"), "{stop}");
        for busy in ["0.5", "-1", "\"x\""] {
            let stop = line(
                &format!(r#"{{"name": "db-stop", {IDS}, "timestamp": "2020-02-27T08:04:25.961298", "info": {{"duration": 0.006782, "busy": {busy}}}}}"#),
                &mut open,
            )
            .unwrap();
            assert!(stop.ends_with(" db-stop\n"), "{stop}");
        }

        // No start, no duration: osprofiler's rule, 0.
        let stop = line(
            &format!(r#"{{"name": "db-stop", {IDS}, "timestamp": "2020-02-27T08:04:25.961298", "info": {{"duration": "x"}}}}"#),
            &mut open,
        )
        .unwrap();
        assert!(
            stop.starts_with("2020-02-27T08:04:25.961298 0.000000 "),
            "{stop}"
        );
    }

    #[test]
    fn hostile_documents_are_refused_with_a_reason() {
        let mut open = HashMap::new();
        let cases = [
            ("[1, 2]", "not a JSON object"),
            (r#"{"name": 3}"#, "no name string"),
            (
                r#"{"name": "a-start", "base_id": "x", "parent_id": "x", "trace_id": "x"}"#,
                "base_id is not a UUID",
            ),
            (
                &format!(r#"{{"name": "a-start", {IDS}, "timestamp": "yesterday"}}"#),
                "timestamp \"yesterday\"",
            ),
            (
                &format!(
                    r#"{{"name": "a-begin", {IDS}, "timestamp": "2020-02-27T08:04:25.961298"}}"#
                ),
                "neither -start nor -stop",
            ),
        ];
        for (doc, why) in cases {
            let err = line(doc, &mut open).unwrap_err();
            assert!(err.contains(why), "{doc}: {err}");
        }
        // A name that would split the line is sanitized, not trusted.
        let ok = line(
            &format!(
                r#"{{"name": "a b\nc-start", {IDS}, "timestamp": "2020-02-27T08:04:25.961298"}}"#
            ),
            &mut open,
        )
        .unwrap();
        assert!(ok.ends_with(" a_b_c-start\n"), "{ok}");
    }

    #[test]
    fn connection_strings_are_checked_and_shown_without_password() {
        let source = RedisSource::new("redis://:pw123@db:6379/2").unwrap();
        assert_eq!(source.to_string(), "redis://***@db:6379/2");
        assert!(!format!("{source:?}").contains("pw123"));
        let err = RedisSource::new("rediss://:pw123@db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLS") && !err.contains("pw123"), "{err}");
        let err = RedisSource::new("http://db").unwrap_err().to_string();
        assert!(err.contains("not a redis://"), "{err}");
    }
}
