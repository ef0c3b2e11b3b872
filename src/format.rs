//! The Mistral profiler log line: writing it and reading it back.
//!
//! Both directions live in this one module so that the contract with the
//! peers (docs/protocol.md, *The Mistral log line*) is stated once:
//!
//! ```text
//! <timestamp> <duration> <base_id> <parent_id> <trace_id> <name>-start|-stop [extra]
//! 2020-02-27T08:04:25.954502          f12e…dd7 603f…416 b1d0…77a workflow-set-state-start
//! 2020-02-27T08:04:25.961298 0.006782 f12e…dd7 603f…416 b1d0…77a workflow-set-state-stop
//! ```
//!
//! # Writing
//!
//! * The timestamp is UTC with microseconds and no zone.
//! * A start line has 8 spaces in place of the duration; a stop line has the
//!   duration in seconds with 6 decimals (`0.006782`), which Python's
//!   `float()` reads and which is at most 10 characters for any duration
//!   under 1000 s.
//! * A stop line whose duration reaches the configured threshold ends with
//!   Mistral's `  <- !!!` marker.
//! * Span fields, when enabled, follow the name on the start line as one JSON
//!   object whose strings are escaped so that it contains no line break.
//! * A stop line whose busy time is known ends with `{"busy":0.000123}`
//!   (after the slow marker, if any): seconds with 6 decimals, never more
//!   than the duration. Mistral's tools read only the first six tokens, so
//!   they read such a line as before (docs/protocol.md, *Busy time*).
//! * **Names are sanitized** ([`sanitize_name`]): every whitespace or control
//!   character becomes `_`, and an empty name becomes `unnamed`. So no span
//!   name can split a line, add a token, or start a forged line.
//!
//! # Reading
//!
//! [`parse_line`] accepts every line this crate writes and every line Mistral
//! writes, and is lenient where real logs differ: any run of whitespace
//! between tokens, every float form Python's `str(float)` produces (`9.4e-05`),
//! durations of 1000 s and more (up to [`MAX_DURATION_SECS`], 100 years), a
//! trailing `\r`, any text after the name, a
//! timestamp without fraction or with a `Z`, and a logging prefix before the
//! timestamp (only when the rest is a complete, valid line). It never panics,
//! and bad input yields a [`ParseError`]. A stop line's busy time is read by
//! [`parse_busy`]; a busy object that does not read leaves the busy time
//! unknown and the line readable.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::Id;

/// The suffix Mistral appends to a slow stop line.
pub const SLOW_MARKER: &str = " <- !!!";

/// How a stop line's busy time begins: a JSON object after the name (and
/// after the slow marker), `{"busy":0.000123}`, in seconds with 6 decimals.
/// Mistral's tools read the first six tokens of a line and osprofiler's
/// reader takes what follows the name as free text, so neither sees it;
/// [`parse_busy`] reads it back.
pub const BUSY_PREFIX: &str = "{\"busy\":";

/// The name written for a span whose name sanitizes to nothing.
pub const UNNAMED: &str = "unnamed";

/// A point in time, in microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    #[must_use]
    pub fn now() -> Self {
        // Straight from `SystemTime`: building a calendar date for every
        // line would cost more than reading the clock.
        // Whole seconds and microseconds apart, in 64 bits: `as_micros` is a
        // 128-bit division, on the path of every profiled span.
        fn micros(since: std::time::Duration) -> i64 {
            let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX / 1_000_000);
            secs.saturating_mul(1_000_000)
                .saturating_add(i64::from(since.subsec_micros()))
        }
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => Timestamp(micros(since)),
            Err(before) => Timestamp(-micros(before.duration())),
        }
    }

    /// From microseconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffff` (26 bytes).
    fn write_to(self, out: &mut Vec<u8>) {
        thread_local! {
            /// The date and time of the last second written on this thread:
            /// consecutive lines almost always share it.
            static LAST_SECOND: std::cell::Cell<(i64, [u8; 19])> =
                const { std::cell::Cell::new((i64::MIN, [0; 19])) };
        }
        let second = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000) as u32;
        let (cached_second, mut prefix) = LAST_SECOND.with(std::cell::Cell::get);
        if cached_second != second {
            prefix = format_second(second);
            LAST_SECOND.with(|cell| cell.set((second, prefix)));
        }
        out.extend_from_slice(&prefix);
        out.push(b'.');
        push_digits(out, micros, 6);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second.
fn format_second(second: i64) -> [u8; 19] {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp(second) else {
        // Outside time's range: cannot come from a clock; write the epoch
        // rather than a malformed line.
        return *b"1970-01-01T00:00:00";
    };
    let mut out = Vec::with_capacity(19);
    push_digits(&mut out, dt.year().clamp(0, 9999) as u32, 4);
    out.push(b'-');
    push_digits(&mut out, u32::from(u8::from(dt.month())), 2);
    out.push(b'-');
    push_digits(&mut out, u32::from(dt.day()), 2);
    out.push(b'T');
    push_digits(&mut out, u32::from(dt.hour()), 2);
    out.push(b':');
    push_digits(&mut out, u32::from(dt.minute()), 2);
    out.push(b':');
    push_digits(&mut out, u32::from(dt.second()), 2);
    let mut prefix = [0u8; 19];
    prefix.copy_from_slice(&out);
    prefix
}

impl From<OffsetDateTime> for Timestamp {
    fn from(dt: OffsetDateTime) -> Self {
        let micros = dt.unix_timestamp_nanos().div_euclid(1000);
        Timestamp(micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(26);
        self.write_to(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

fn push_digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    // Made on the stack and appended once: growing the vector digit by
    // digit (`resize`, then indexing) cost twice as many instructions.
    let mut digits = [b'0'; 10];
    let width = width.min(digits.len());
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// Whether a trace point begins or ends on this line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `NAME-start`.
    Start,
    /// `NAME-stop`.
    Stop,
}

impl Phase {
    /// The name suffix, `-start` or `-stop`.
    #[must_use]
    pub const fn suffix(self) -> &'static str {
        match self {
            Phase::Start => "-start",
            Phase::Stop => "-stop",
        }
    }
}

/// The three ids of a trace point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointIds {
    /// The request.
    pub base_id: Id,
    /// The enclosing point (or `base_id` for a request's first point).
    pub parent_id: Id,
    /// This point.
    pub trace_id: Id,
}

/// Replaces every character that could split a whitespace-separated line
/// (whitespace and control characters, Unicode ones included) with `_`;
/// an empty name becomes [`UNNAMED`]. Borrows when nothing needs replacing.
///
/// ```
/// use tracing_osprofiler::format::sanitize_name;
/// assert_eq!(sanitize_name("db query\n2020-01-01"), "db_query_2020-01-01");
/// assert_eq!(sanitize_name("engine-start-workflow"), "engine-start-workflow");
/// assert_eq!(sanitize_name(""), "unnamed");
/// ```
#[must_use]
pub fn sanitize_name(name: &str) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(UNNAMED);
    }
    if !name.chars().any(is_breaking_char) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|c| if is_breaking_char(c) { '_' } else { c })
            .collect(),
    )
}

fn is_breaking_char(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

fn push_sanitized(out: &mut Vec<u8>, name: &str) {
    // Span names are almost always plain ASCII identifiers: copy them whole.
    if name.bytes().all(|b| b.is_ascii_graphic()) {
        out.extend_from_slice(name.as_bytes());
    } else {
        out.extend_from_slice(sanitize_name(name).as_bytes());
    }
}

/// How a point's name is written: one or more parts joined by `::`, each
/// sanitized.
#[derive(Debug, Clone, Copy)]
pub struct PointName<'a> {
    target: Option<&'a str>,
    name: &'a str,
}

impl<'a> PointName<'a> {
    /// Just a name.
    #[must_use]
    pub const fn new(name: &'a str) -> Self {
        PointName { target: None, name }
    }

    /// `target::name`.
    #[must_use]
    pub const fn with_target(target: &'a str, name: &'a str) -> Self {
        PointName {
            target: Some(target),
            name,
        }
    }

    /// Appends the name as the log writes it (sanitized).
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(target) = self.target {
            push_sanitized(out, target);
            out.extend_from_slice(b"::");
        }
        if self.name.is_empty() && self.target.is_none() {
            out.extend_from_slice(UNNAMED.as_bytes());
        } else {
            push_sanitized(out, self.name);
        }
    }
}

fn write_ids(out: &mut Vec<u8>, ids: &PointIds) {
    for id in [ids.base_id, ids.parent_id, ids.trace_id] {
        out.extend_from_slice(&id.to_ascii());
        out.push(b' ');
    }
}

/// Appends a `-start` line (with its `\n`) to `out`.
///
/// `fields`, when given, must be a one-line JSON object as written by
/// [`JsonFields`].
pub fn write_start(
    out: &mut Vec<u8>,
    timestamp: Timestamp,
    ids: &PointIds,
    name: PointName<'_>,
    fields: Option<&str>,
) {
    timestamp.write_to(out);
    out.extend_from_slice(b"          ");
    write_ids(out, ids);
    name.write_to(out);
    out.extend_from_slice(b"-start");
    if let Some(fields) = fields {
        out.push(b' ');
        out.extend_from_slice(fields.as_bytes());
    }
    out.push(b'\n');
}

/// Appends a `-stop` line (with its `\n`) to `out`, without busy time.
pub fn write_stop(
    out: &mut Vec<u8>,
    timestamp: Timestamp,
    duration: Duration,
    ids: &PointIds,
    name: PointName<'_>,
    slow: bool,
) {
    write_stop_with_busy(out, timestamp, duration, None, ids, name, slow);
}

/// Appends a `-stop` line (with its `\n`) to `out`; a known `busy` time is
/// written after the name (and after the slow marker) as
/// `{"busy":0.000123}` (see [`BUSY_PREFIX`]). An unknown one writes
/// nothing: unknown is not zero.
pub fn write_stop_with_busy(
    out: &mut Vec<u8>,
    timestamp: Timestamp,
    duration: Duration,
    busy: Option<Duration>,
    ids: &PointIds,
    name: PointName<'_>,
    slow: bool,
) {
    timestamp.write_to(out);
    out.push(b' ');
    write_duration(out, duration);
    out.push(b' ');
    write_ids(out, ids);
    name.write_to(out);
    out.extend_from_slice(b"-stop");
    if slow {
        out.push(b' ');
        out.extend_from_slice(SLOW_MARKER.as_bytes());
    }
    if let Some(busy) = busy {
        out.push(b' ');
        out.extend_from_slice(BUSY_PREFIX.as_bytes());
        // Never more than the duration, even where a caller's rounding
        // would say so: both are rounded the same way below.
        write_duration(out, busy.min(duration));
        out.push(b'}');
    }
    out.push(b'\n');
}

/// Seconds with 6 decimals, rounded to the nearest microsecond.
///
/// In 64-bit arithmetic, without `fmt`, made on the stack and appended
/// once: a stop line writes two of these (the duration and the busy time),
/// on the writer's thread, and a 128-bit division or a formatter call cost
/// more than the rest of the line.
fn write_duration(out: &mut Vec<u8>, duration: Duration) {
    let mut secs = duration.as_secs();
    let mut frac = (duration.subsec_nanos() + 500) / 1000;
    if frac == 1_000_000 {
        secs = secs.saturating_add(1);
        frac = 0;
    }
    // Up to 20 digits of seconds, the point, 6 of microseconds.
    let mut text = [0u8; 27];
    let mut at = text.len();
    for _ in 0..6 {
        at -= 1;
        text[at] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    at -= 1;
    text[at] = b'.';
    loop {
        at -= 1;
        text[at] = b'0' + (secs % 10) as u8;
        secs /= 10;
        if secs == 0 {
            break;
        }
    }
    out.extend_from_slice(&text[at..]);
}

/// Writes span fields as a one-line JSON object.
///
/// Strings are escaped so that no control character, and none of the Unicode
/// line separators U+0085, U+2028 and U+2029, appears raw: the object can
/// neither break the line nor forge another.
///
/// A string value longer than the cap (16 KiB by default, measured as
/// written, escapes included) is cut at a character boundary and ends with
/// `…[cut from N bytes]`, N its length before the cut; the object stays
/// valid JSON, and [`values_cut`](Self::values_cut) counts it. So a span
/// field holding a whole request body costs the queues and the sinks at
/// most the cap.
///
/// The whole object can be capped too
/// ([`with_max_object_bytes`](Self::with_max_object_bytes)): a member that
/// would make it longer is left out, counted in
/// [`members_left_out`](Self::members_left_out), and the object ends with
/// the member `"fields_left_out":true` (beyond the cap), so that a reader
/// knows it is not whole.
///
/// ```
/// use tracing_osprofiler::format::JsonFields;
///
/// let mut fields = JsonFields::with_max_value_bytes(8);
/// fields.str("body", "0123456789abcdef");
/// fields.str("short", "ok");
/// assert_eq!(fields.values_cut(), 1);
/// assert_eq!(
///     fields.finish().unwrap(),
///     r#"{"body":"01234567…[cut from 16 bytes]","short":"ok"}"#
/// );
/// ```
#[derive(Debug)]
pub struct JsonFields {
    out: String,
    max_value_bytes: usize,
    max_object_bytes: usize,
    cut: u64,
    left_out: u64,
}

/// The member that ends an object some members were left out of.
pub(crate) const LEFT_OUT_MEMBER: &str = "\"fields_left_out\":true";

impl Default for JsonFields {
    fn default() -> Self {
        JsonFields::with_max_value_bytes(JsonFields::DEFAULT_MAX_VALUE_BYTES)
    }
}

impl JsonFields {
    /// The default cap of one string value: 16 KiB.
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024;

    /// An empty object, with string values capped at
    /// [`DEFAULT_MAX_VALUE_BYTES`](Self::DEFAULT_MAX_VALUE_BYTES).
    #[must_use]
    pub fn new() -> Self {
        JsonFields::default()
    }

    /// An empty object whose string values are cut past `max` bytes (as
    /// written, escapes included).
    #[must_use]
    pub fn with_max_value_bytes(max: usize) -> Self {
        JsonFields {
            out: String::new(),
            max_value_bytes: max,
            max_object_bytes: usize::MAX,
            cut: 0,
            left_out: 0,
        }
    }

    /// Caps the whole object at `max` bytes, braces included (default: no
    /// cap): a member that would make it longer is left out and counted,
    /// and the finished object ends with `"fields_left_out":true`, which
    /// the cap does not count. Any other value may be given; below 2, every
    /// member is left out.
    ///
    /// ```
    /// use tracing_osprofiler::format::JsonFields;
    ///
    /// let mut fields = JsonFields::new().with_max_object_bytes(16);
    /// fields.u64("a", 1);
    /// fields.str("long", "does not fit");
    /// fields.u64("b", 2);
    /// assert_eq!(fields.members_left_out(), 1);
    /// assert_eq!(fields.finish().unwrap(), r#"{"a":1,"b":2,"fields_left_out":true}"#);
    /// ```
    #[must_use]
    pub fn with_max_object_bytes(mut self, max: usize) -> Self {
        self.max_object_bytes = max;
        self
    }

    /// How many values were cut so far.
    #[must_use]
    pub fn values_cut(&self) -> u64 {
        self.cut
    }

    /// How many members were left out for the object's cap.
    #[must_use]
    pub fn members_left_out(&self) -> u64 {
        self.left_out
    }

    /// Adds one member, written by `value` after its key, unless it makes
    /// the object (closed) longer than its cap.
    fn member(&mut self, name: &str, value: impl FnOnce(&mut String) -> bool) {
        let before = self.out.len();
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.out, name);
        self.out.push(':');
        let cut = value(&mut self.out);
        if self.out.len() + 1 > self.max_object_bytes {
            self.out.truncate(before);
            self.left_out += 1;
        } else if cut {
            self.cut += 1;
        }
    }

    /// Adds a string value (cut past the cap).
    pub fn str(&mut self, name: &str, value: &str) {
        let max = self.max_value_bytes;
        self.member(name, |out| push_json_string_capped(out, value, max));
    }

    /// Adds a raw JSON value (a number, `true`, `false`, `null`).
    fn raw(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.member(name, |out| {
            let _ = fmt::Write::write_fmt(out, value);
            false
        });
    }

    /// Adds a signed integer.
    pub fn i64(&mut self, name: &str, value: i64) {
        self.raw(name, format_args!("{value}"));
    }

    /// Adds an unsigned integer.
    pub fn u64(&mut self, name: &str, value: u64) {
        self.raw(name, format_args!("{value}"));
    }

    /// Adds a float (non-finite values are written as strings, which JSON
    /// has no number for).
    pub fn f64(&mut self, name: &str, value: f64) {
        if value.is_finite() {
            self.raw(name, format_args!("{value}"));
        } else {
            self.str(name, &value.to_string());
        }
    }

    /// Adds a boolean.
    pub fn bool(&mut self, name: &str, value: bool) {
        self.raw(name, format_args!("{value}"));
    }

    /// The finished object, or `None` when no field was added (nor left
    /// out).
    #[must_use]
    pub fn finish(mut self) -> Option<String> {
        if self.left_out > 0 {
            self.out.push(if self.out.is_empty() { '{' } else { ',' });
            self.out.push_str(LEFT_OUT_MEMBER);
        }
        if self.out.is_empty() {
            None
        } else {
            self.out.push('}');
            Some(self.out)
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending with
/// the same `…[cut from N bytes]` marker as [`JsonFields`]; `None` when it
/// fits. For texts kept as they are rather than as JSON (an error message).
pub(crate) fn cut_text(text: &str, max: usize) -> Option<String> {
    if text.len() <= max {
        return None;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}…[cut from {} bytes]", &text[..end], text.len()))
}

fn push_json_string(out: &mut String, s: &str) {
    push_json_string_capped(out, s, usize::MAX);
}

/// Writes `s` as a JSON string of at most `max` bytes between its quotes
/// (plus the cut marker); whether it was cut.
fn push_json_string_capped(out: &mut String, s: &str, max: usize) -> bool {
    out.push('"');
    let start = out.len();
    let mut cut = false;
    for c in s.chars() {
        let mut escaped = [0u8; 6];
        let piece: &str = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let hex = b"0123456789abcdef";
                let code = c as u32;
                escaped = [
                    b'\\',
                    b'u',
                    hex[(code >> 12) as usize & 15],
                    hex[(code >> 8) as usize & 15],
                    hex[(code >> 4) as usize & 15],
                    hex[code as usize & 15],
                ];
                // Only ASCII was written.
                std::str::from_utf8(&escaped).unwrap_or_default()
            }
            c => c.encode_utf8(&mut escaped),
        };
        if out.len() - start + piece.len() > max {
            cut = true;
            break;
        }
        out.push_str(piece);
    }
    if cut {
        let _ = fmt::Write::write_fmt(out, format_args!("…[cut from {} bytes]", s.len()));
    }
    out.push('"');
    cut
}

/// One line read back from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// When the event happened (UTC).
    pub timestamp: Timestamp,
    /// The point's wall-clock duration in seconds: `Some` on stop lines.
    pub duration: Option<f64>,
    /// The point's ids.
    pub ids: PointIds,
    /// The point's name, without `-start` / `-stop`.
    pub name: Cow<'a, str>,
    /// Start or stop.
    pub phase: Phase,
    /// Whether Mistral's slow marker ` <- !!!` follows the name.
    pub slow: bool,
    /// Whatever follows the name (and the slow marker), trimmed: span fields
    /// as JSON, Mistral's database statement info, the busy time, or
    /// nothing.
    pub extra: Cow<'a, str>,
    /// The point's busy time in seconds (the time it was entered on at
    /// least one thread), when the stop line gives it ([`parse_busy`]);
    /// `None` on start lines and on lines without it (Python services,
    /// older logs): unknown, not zero.
    pub busy: Option<f64>,
}

/// Why a line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Only whitespace.
    Blank,
    /// No timestamp where one was expected.
    Timestamp,
    /// Fewer tokens than a complete line has.
    Truncated,
    /// A stop line whose duration is missing, negative or not a number.
    Duration,
    /// A duration longer than [`MAX_DURATION_SECS`] (or infinite): no
    /// clock measures that, and no report could add it up.
    DurationTooLong,
    /// An id that is not a UUID.
    Id,
    /// A name that does not end in `-start` or `-stop`.
    Name,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Blank => "blank line",
            ParseError::Timestamp => "no timestamp",
            ParseError::Truncated => "truncated line",
            ParseError::Duration => "bad duration",
            ParseError::DurationTooLong => "duration longer than 100 years",
            ParseError::Id => "bad id",
            ParseError::Name => "name does not end in -start or -stop",
        })
    }
}

impl std::error::Error for ParseError {}

/// Reads one line (without or with its line ending).
///
/// # Errors
///
/// A [`ParseError`] saying what is wrong with the line: blank, no timestamp,
/// cut short, a bad duration or id, or a name without `-start` / `-stop`.
///
/// ```
/// use tracing_osprofiler::format::{parse_line, Phase};
///
/// let line = parse_line(b"2020-02-27T08:04:25.961298 9.4e-05 f12e75d5-5d59-4cbc-b74d-357f19290dd7 \
///     603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d workflow-set-state-stop").unwrap();
/// assert_eq!(line.phase, Phase::Stop);
/// assert_eq!(line.name, "workflow-set-state");
/// assert_eq!(line.duration, Some(9.4e-05));
/// ```
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Err(ParseError::Blank);
    }
    let first = parse_at(line);
    if first.is_ok() {
        return first;
    }
    // A logging prefix: look for a later timestamp that starts a whole line.
    let mut from = 0;
    while let Some(pos) = memchr::memchr(b'T', &line[from..]) {
        let t = from + pos;
        from = t + 1;
        if t >= 10 && (t == 10 || !line[t - 11].is_ascii_digit()) {
            if let Ok(parsed) = parse_at(&line[t - 10..]) {
                return Ok(parsed);
            }
        }
    }
    first
}

fn parse_at(line: &[u8]) -> Result<Line<'_>, ParseError> {
    let (timestamp, rest) = parse_timestamp(line).ok_or(ParseError::Timestamp)?;
    let mut tokens = Tokens(rest);
    let mut token = tokens.next().ok_or(ParseError::Truncated)?;
    let duration = if looks_like_id(token) {
        None
    } else {
        let d = parse_duration(token)?;
        token = tokens.next().ok_or(ParseError::Truncated)?;
        Some(d)
    };
    let base_id = Id::parse_bytes(token).map_err(|_| ParseError::Id)?;
    let parent_id =
        Id::parse_bytes(tokens.next().ok_or(ParseError::Truncated)?).map_err(|_| ParseError::Id)?;
    let trace_id =
        Id::parse_bytes(tokens.next().ok_or(ParseError::Truncated)?).map_err(|_| ParseError::Id)?;
    let full_name = tokens.next().ok_or(ParseError::Truncated)?;
    let (name, phase, duration) = parse_name(full_name, duration)?;
    let (slow, extra) = parse_extra(tokens.0);
    let busy = duration.and_then(|d| parse_busy(extra, d));
    Ok(Line {
        timestamp,
        duration,
        ids: PointIds {
            base_id,
            parent_id,
            trace_id,
        },
        name: String::from_utf8_lossy(name),
        phase,
        slow,
        extra: String::from_utf8_lossy(extra),
        busy,
    })
}

/// Splits the name token of a line (`NAME-start` or `NAME-stop`) into the
/// name and the phase, and applies the rule of the duration: a stop line
/// must have one ([`ParseError::Duration`] otherwise), a start line's is
/// dropped. Returns the name, the phase and the duration the line keeps.
///
/// ```
/// use tracing_osprofiler::format::{parse_name, ParseError, Phase};
///
/// assert_eq!(parse_name(b"db-query-stop", Some(0.5)), Ok((&b"db-query"[..], Phase::Stop, Some(0.5))));
/// assert_eq!(parse_name(b"db-query-start", Some(0.5)), Ok((&b"db-query"[..], Phase::Start, None)));
/// assert_eq!(parse_name(b"db-query-stop", None), Err(ParseError::Duration));
/// assert_eq!(parse_name(b"db-query", None), Err(ParseError::Name));
/// ```
#[inline]
pub fn parse_name(
    full_name: &[u8],
    duration: Option<f64>,
) -> Result<(&[u8], Phase, Option<f64>), ParseError> {
    if let Some(name) = full_name.strip_suffix(b"-stop") {
        match duration {
            Some(d) => Ok((name, Phase::Stop, Some(d))),
            None => Err(ParseError::Duration),
        }
    } else if let Some(name) = full_name.strip_suffix(b"-start") {
        Ok((name, Phase::Start, None))
    } else {
        Err(ParseError::Name)
    }
}

/// What follows the name on a line: whether it starts with Mistral's slow
/// marker ([`SLOW_MARKER`]), and the rest, trimmed (span fields, database
/// statement info, or nothing).
///
/// ```
/// use tracing_osprofiler::format::parse_extra;
///
/// assert_eq!(parse_extra(b"  <- !!! {\"rows\": 3}\r"), (true, &b"{\"rows\": 3}"[..]));
/// assert_eq!(parse_extra(b" {}"), (false, &b"{}"[..]));
/// assert_eq!(parse_extra(b""), (false, &b""[..]));
/// ```
#[inline]
pub fn parse_extra(rest: &[u8]) -> (bool, &[u8]) {
    let extra = rest.trim_ascii();
    match extra.strip_prefix(SLOW_MARKER.trim_start().as_bytes()) {
        Some(after) => (true, after.trim_ascii()),
        None => (false, extra),
    }
}

/// The busy time a stop line gives, in seconds: `extra` (as
/// [`parse_extra`] returns it) begins with [`BUSY_PREFIX`], then a
/// duration ([`parse_duration`]'s forms, spaces around it allowed), then
/// `}` or `,`. `None` for anything else, and for a busy time longer than
/// the line's `duration`, which no measurement gives: such a line is read
/// as one whose busy time is unknown.
///
/// ```
/// use tracing_osprofiler::format::parse_busy;
///
/// assert_eq!(parse_busy(br#"{"busy":0.000123}"#, 0.5), Some(0.000123));
/// assert_eq!(parse_busy(br#"{"busy": 9.4e-05, "x": 1}"#, 0.5), Some(9.4e-05));
/// assert_eq!(parse_busy(br#"{"busy":0.6}"#, 0.5), None);
/// assert_eq!(parse_busy(br#"{"db": {"busy": 1}}"#, 0.5), None);
/// assert_eq!(parse_busy(b"", 0.5), None);
/// ```
#[inline]
#[must_use]
pub fn parse_busy(extra: &[u8], duration: f64) -> Option<f64> {
    let value = extra.strip_prefix(BUSY_PREFIX.as_bytes())?;
    let end = value.iter().position(|&b| b == b'}' || b == b',')?;
    let busy = parse_duration(value[..end].trim_ascii()).ok()?;
    (busy <= duration).then_some(busy)
}

struct Tokens<'a>(&'a [u8]);

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &self.0[start..];
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

/// Whether the token after the timestamp is an id (a start line, whose
/// duration is blank) rather than a duration: at least 32 hex digits.
///
/// ```
/// use tracing_osprofiler::format::looks_like_id;
///
/// assert!(looks_like_id(b"f12e75d5-5d59-4cbc-b74d-357f19290dd7"));
/// assert!(!looks_like_id(b"0.006782"));
/// ```
#[must_use]
pub fn looks_like_id(token: &[u8]) -> bool {
    token.len() >= 32 && token.iter().filter(|b| b.is_ascii_hexdigit()).count() >= 32
}

/// The longest duration a line may give, in seconds: 100 years of 365.25
/// days. No clock measures a longer one, so a line that says so is broken
/// or forged ([`ParseError::DurationTooLong`]); below it, every duration
/// is a whole number of microseconds that `i64` holds with room to add
/// millions of them, and to subtract it from any timestamp.
pub const MAX_DURATION_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// Checks a duration's value: finite, non-negative
/// ([`ParseError::Duration`] otherwise) and at most [`MAX_DURATION_SECS`]
/// ([`ParseError::DurationTooLong`] otherwise, infinity included).
///
/// ```
/// use tracing_osprofiler::format::{check_duration, ParseError};
///
/// assert_eq!(check_duration(0.25), Ok(0.25));
/// assert_eq!(check_duration(-1.0), Err(ParseError::Duration));
/// assert_eq!(check_duration(1e300), Err(ParseError::DurationTooLong));
/// ```
#[inline]
pub fn check_duration(secs: f64) -> Result<f64, ParseError> {
    if secs.is_nan() || secs < 0.0 {
        Err(ParseError::Duration)
    } else if secs > MAX_DURATION_SECS {
        Err(ParseError::DurationTooLong)
    } else {
        Ok(secs)
    }
}

/// Exact powers of ten for [`plain_decimal`].
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A duration token, in any form Python's `str(float)` may have written
/// (`0.006782`, `9.4e-05`, `1234.5`), read as Rust's `f64` parser reads it
/// and then [checked](check_duration). Tokens longer than 32 bytes or with
/// characters no float has are [`ParseError::Duration`].
///
/// ```
/// use tracing_osprofiler::format::{parse_duration, ParseError};
///
/// assert_eq!(parse_duration(b"0.006782"), Ok(0.006782));
/// assert_eq!(parse_duration(b"9.4e-05"), Ok(9.4e-05));
/// assert_eq!(parse_duration(b"nan"), Err(ParseError::Duration));
/// assert_eq!(parse_duration(b"1e300"), Err(ParseError::DurationTooLong));
/// ```
#[inline]
pub fn parse_duration(token: &[u8]) -> Result<f64, ParseError> {
    if token.len() > 32
        || !token
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return Err(ParseError::Duration);
    }
    let value = match plain_decimal(token) {
        Some(value) => value,
        None => std::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or(ParseError::Duration)?,
    };
    check_duration(value)
}

/// Digits with at most one `.` and 1 to 15 digits in all, read directly:
/// the digits as an integer (exact below 2^53) divided by an exact power
/// of ten is the correctly rounded value (one IEEE division; Clinger's fast
/// path), which is what `str::parse` returns. `None` for any other form.
#[inline]
fn plain_decimal(token: &[u8]) -> Option<f64> {
    if token.len() > 16 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut digits = 0usize;
    let mut dot = None;
    for (i, &b) in token.iter().enumerate() {
        if b.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(b - b'0');
            digits += 1;
        } else if b == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return None;
        }
    }
    if !(1..=15).contains(&digits) {
        return None;
    }
    let decimals = dot.map_or(0, |d| token.len() - d - 1);
    Some(mantissa as f64 / POW10[decimals])
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z]`, followed by whitespace or the end:
/// the timestamp (microseconds; further digits are cut) and the rest of
/// the line.
///
/// ```
/// use tracing_osprofiler::format::parse_timestamp;
///
/// let (t, rest) = parse_timestamp(b"2020-02-27T08:04:25.961298 0.5").unwrap();
/// assert_eq!(t.to_string(), "2020-02-27T08:04:25.961298");
/// assert_eq!(rest, b" 0.5");
/// assert!(parse_timestamp(b"2020-02-30T08:04:25 0.5").is_none());
/// ```
#[must_use]
pub fn parse_timestamp(line: &[u8]) -> Option<(Timestamp, &[u8])> {
    let head: &[u8; 19] = line.get(..19)?.try_into().ok()?;
    let second = parse_second(head)?;
    let mut rest = &line[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let mut value = digits_value(&frac[..digits])?;
        for _ in digits..9 {
            value *= 10;
        }
        micros = value / 1000;
        rest = &frac[digits..];
    }
    if let Some(r) = rest.strip_prefix(b"Z") {
        rest = r;
    }
    if !rest.first().is_none_or(u8::is_ascii_whitespace) {
        return None;
    }
    Some((
        Timestamp(second.unix_micros().saturating_add(i64::from(micros))),
        rest,
    ))
}

fn digits_value(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) to the timestamp of that second, with the
/// calendar checks (month 1 to 12, the month's days, leap years, hours
/// below 24); `None` for anything else.
///
/// ```
/// use tracing_osprofiler::format::parse_second;
///
/// assert_eq!(parse_second(b"1970-01-01T00:00:01").unwrap().unix_micros(), 1_000_000);
/// assert!(parse_second(b"2021-02-29T00:00:00").is_none());
/// assert!(parse_second(b"2020-02-27 08:04:25").is_none());
/// ```
#[must_use]
pub fn parse_second(head: &[u8; 19]) -> Option<Timestamp> {
    if head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(digits_value(&head[0..4])?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits_value(&head[5..7])?).ok()?).ok()?;
    let day = u8::try_from(digits_value(&head[8..10])?).ok()?;
    let hour = u8::try_from(digits_value(&head[11..13])?).ok()?;
    let minute = u8::try_from(digits_value(&head[14..16])?).ok()?;
    let second = u8::try_from(digits_value(&head[17..19])?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let dt = date.with_hms(hour, minute, second).ok()?.assume_utc();
    Some(Timestamp::from(dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> PointIds {
        PointIds {
            base_id: Id::parse("f12e75d5-5d59-4cbc-b74d-357f19290dd7").unwrap(),
            parent_id: Id::parse("603f1fab-be78-438d-af13-d94ed3b7e416").unwrap(),
            trace_id: Id::parse("b1d0a77a-52f5-4415-a6c4-f16b3591a47d").unwrap(),
        }
    }

    fn ts() -> Timestamp {
        parse_timestamp(b"2020-02-27T08:04:25.961298").unwrap().0
    }

    #[test]
    fn writes_the_mistral_layout() {
        let mut out = Vec::new();
        write_start(
            &mut out,
            ts(),
            &ids(),
            PointName::new("workflow-set-state"),
            None,
        );
        write_stop(
            &mut out,
            ts(),
            Duration::from_micros(6782),
            &ids(),
            PointName::new("workflow-set-state"),
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2020-02-27T08:04:25.961298          f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d workflow-set-state-start\n\
             2020-02-27T08:04:25.961298 0.006782 f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d workflow-set-state-stop\n"
        );
    }

    #[test]
    fn busy_time_follows_the_name_and_the_slow_marker() {
        let mut out = Vec::new();
        let name = PointName::new("db");
        let d = Duration::from_micros(700_000);
        write_stop_with_busy(
            &mut out,
            ts(),
            d,
            Some(Duration::from_nanos(123_456)),
            &ids(),
            name,
            true,
        );
        write_stop_with_busy(&mut out, ts(), d, Some(Duration::ZERO), &ids(), name, false);
        write_stop_with_busy(&mut out, ts(), d, None, &ids(), name, false);
        // A busy time a caller got wrong is never written above the duration.
        write_stop_with_busy(
            &mut out,
            ts(),
            d,
            Some(Duration::from_secs(2)),
            &ids(),
            name,
            false,
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(r#" db-stop  <- !!! {"busy":0.000123}"#),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(r#" db-stop {"busy":0.000000}"#),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(" db-stop"), "{}", lines[2]);
        assert!(
            lines[3].ends_with(r#" db-stop {"busy":0.700000}"#),
            "{}",
            lines[3]
        );
        let busy: Vec<Option<f64>> = lines
            .iter()
            .map(|l| parse_line(l.as_bytes()).unwrap().busy)
            .collect();
        assert_eq!(busy, [Some(0.000123), Some(0.0), None, Some(0.7)]);
        // What Mistral's rank script takes from each line is unchanged: the
        // second token is the duration, the sixth the name.
        for line in &lines {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(tokens[1], "0.700000");
            assert_eq!(&tokens[5][..tokens[5].len() - 5], "db");
        }
    }

    #[test]
    fn busy_time_is_read_only_where_it_is_believable() {
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";
        for (text, busy) in [
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":0.25}}"#),
                Some(0.25),
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy": 2.5e-05 }}"#),
                Some(2.5e-05),
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":0.5,"x":1}}"#),
                Some(0.5),
            ),
            // Longer than the point lasted, negative, not a number, cut.
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":0.6}}"#),
                None,
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":-1}}"#),
                None,
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":"0.1"}}"#),
                None,
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"busy":0.1"#),
                None,
            ),
            // Mistral's own JSON, and a span field on a start line.
            (
                format!(
                    r#"2020-02-27T08:04:25.961298 0.5 {base} a-stop {{"db": {{"busy": 0.1}}}}"#
                ),
                None,
            ),
            (
                format!(r#"2020-02-27T08:04:25.961298          {base} a-start {{"busy":0.1}}"#),
                None,
            ),
        ] {
            let line = parse_line(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(line.busy, busy, "{text}");
        }
    }

    #[test]
    fn durations_are_written_as_the_rounded_microseconds() {
        for nanos in [
            0u64,
            499,
            500,
            999_999_499,
            999_999_500,
            9_999_999_999_500,
            999_999_999_999_999_999,
            u64::MAX,
        ] {
            let d = Duration::from_nanos(nanos);
            let micros = (d.as_nanos() + 500) / 1000;
            let mut out = Vec::new();
            write_duration(&mut out, d);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000),
                "{nanos}"
            );
        }
        // The one duration whose rounding would pass u64 seconds saturates.
        let mut out = Vec::new();
        write_duration(&mut out, Duration::MAX);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "18446744073709551615.000000"
        );
    }

    #[test]
    fn duration_is_at_most_ten_chars_under_1000s() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(400),
            Duration::from_nanos(999_999_999_499),
            Duration::from_secs(999),
        ] {
            let mut out = Vec::new();
            write_duration(&mut out, d);
            assert!(out.len() <= 10, "{}", String::from_utf8_lossy(&out));
            let back: f64 = std::str::from_utf8(&out).unwrap().parse().unwrap();
            assert!((back - d.as_secs_f64()).abs() < 1e-6);
        }
    }

    #[test]
    fn long_field_values_are_cut_on_a_character_and_counted() {
        // 512 KiB of a 3-byte character: the cut falls inside none.
        let value = "€".repeat(512 * 1024 / 3);
        let mut fields = JsonFields::new();
        fields.str("body", &value);
        fields.str("escapes", &"\u{1}".repeat(10));
        fields.u64("n", 7);
        assert_eq!(fields.values_cut(), 1);
        let json = fields.finish().unwrap();
        assert!(
            json.len() < JsonFields::DEFAULT_MAX_VALUE_BYTES + 200,
            "{}",
            json.len()
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let body = parsed["body"].as_str().unwrap();
        let kept = body.strip_suffix(&format!("…[cut from {} bytes]", value.len()));
        let kept = kept.expect("the cut marker");
        assert!(kept.chars().all(|c| c == '€'));
        assert_eq!(kept.len(), JsonFields::DEFAULT_MAX_VALUE_BYTES / 3 * 3);
        assert_eq!(parsed["escapes"].as_str().unwrap(), "\u{1}".repeat(10));

        // Escapes count as written: 6 bytes each, so 3 fit in 20.
        let mut fields = JsonFields::with_max_value_bytes(20);
        fields.str("c", &"\u{1}".repeat(4));
        assert_eq!(fields.values_cut(), 1);
        let parsed: serde_json::Value = serde_json::from_str(&fields.finish().unwrap()).unwrap();
        assert_eq!(
            parsed["c"].as_str().unwrap(),
            format!("{}…[cut from 4 bytes]", "\u{1}".repeat(3))
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_character() {
        assert_eq!(cut_text("short", 5), None);
        assert_eq!(cut_text("ééé", 3).unwrap(), "é…[cut from 6 bytes]");
        assert_eq!(cut_text("ab", 0).unwrap(), "…[cut from 2 bytes]");
    }

    #[test]
    fn round_trip_with_slow_marker_and_fields() {
        let mut fields = JsonFields::new();
        fields.str("sql", "select *\nfrom t\u{2028}");
        fields.i64("rows", -3);
        let fields = fields.finish().unwrap();
        assert!(!fields.contains('\n') && !fields.contains('\u{2028}'));
        let mut out = Vec::new();
        write_start(
            &mut out,
            ts(),
            &ids(),
            PointName::with_target("my_app::db", "query x"),
            Some(&fields),
        );
        write_stop(
            &mut out,
            ts(),
            Duration::from_secs(1200),
            &ids(),
            PointName::new("q"),
            true,
        );
        let mut lines = out.split(|b| *b == b'\n');
        let start = parse_line(lines.next().unwrap()).unwrap();
        assert_eq!(start.name, "my_app::db::query_x");
        assert_eq!(start.phase, Phase::Start);
        let parsed: serde_json::Value = serde_json::from_str(&start.extra).unwrap();
        assert_eq!(parsed["sql"], "select *\nfrom t\u{2028}");
        let stop = parse_line(lines.next().unwrap()).unwrap();
        assert_eq!(stop.duration, Some(1200.0));
        assert!(stop.slow);
        assert_eq!(stop.extra, "");
    }

    #[test]
    fn reads_real_world_variants() {
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";
        for (text, duration) in [
            (format!("2020-02-27T08:04:25.961298 1e-06 {base} a-stop\r"), Some(1e-6)),
            (format!("2020-02-27T08:04:25 0.0 {base} a-stop  <- !!! {{\"db\": 1}}"), Some(0.0)),
            (format!("2020-02-27 08:04:25,123 INFO profiler 2020-02-27T08:04:25.961298 12.5 {base} a-stop"), Some(12.5)),
            (format!("2020-02-27T08:04:25.961298          {base} a-start"), None),
        ] {
            let line = parse_line(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(line.duration, duration, "{text}");
            assert_eq!(line.name, "a");
        }
    }

    #[test]
    fn rejects_broken_lines() {
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";
        for (text, err) in [
            (String::new(), ParseError::Blank),
            (
                "2020-02-27T08:04:25.961298 0.1 f12e75d5".to_string(),
                ParseError::Id,
            ),
            (
                format!("2020-02-27T08:04:25.961298 -1 {base} a-stop"),
                ParseError::Duration,
            ),
            (
                format!("2020-02-27T08:04:25.961298 nan {base} a-stop"),
                ParseError::Duration,
            ),
            (
                format!("2020-02-27T08:04:25.961298          {base} a-stop"),
                ParseError::Duration,
            ),
            (
                format!("2020-02-27T08:04:25.961298 0.1 {base} a"),
                ParseError::Name,
            ),
            (
                format!("2020-02-27T08:04:25.961298 0.1 {base}"),
                ParseError::Truncated,
            ),
            (
                format!("2020-13-27T08:04:25.961298 0.1 {base} a-stop"),
                ParseError::Timestamp,
            ),
        ] {
            assert_eq!(parse_line(text.as_bytes()).unwrap_err(), err, "{text}");
        }
    }

    #[test]
    fn durations_past_100_years_are_too_long() {
        let base = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";
        for token in ["1e300", "1e400", "3155760000.000001", "99999999999999"] {
            let text = format!("2020-02-27T08:04:25.961298 {token} {base} a-stop");
            assert_eq!(
                parse_line(text.as_bytes()).unwrap_err(),
                ParseError::DurationTooLong,
                "{text}"
            );
        }
        let text = format!("2020-02-27T08:04:25.961298 3155760000 {base} a-stop");
        assert_eq!(
            parse_line(text.as_bytes()).unwrap().duration,
            Some(MAX_DURATION_SECS)
        );
    }

    proptest::proptest! {
        #[test]
        fn durations_read_as_str_parse_reads_them(
            digits in "[0-9]{1,17}",
            dot in 0usize..18,
            with_dot in proptest::bool::ANY,
        ) {
            let mut token = digits.clone();
            if with_dot {
                token.insert(dot.min(digits.len()), '.');
            }
            let expected = token
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0 && *v <= MAX_DURATION_SECS);
            proptest::prop_assert_eq!(parse_duration(token.as_bytes()).ok(), expected, "{}", token);
        }
    }
}
