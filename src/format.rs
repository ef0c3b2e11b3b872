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
//! * A stop line slower than the configured threshold ends with Mistral's
//!   `  <- !!!` marker.
//! * Span fields, when enabled, follow the name on the start line as one JSON
//!   object whose strings are escaped so that it contains no line break.
//! * **Names are sanitized** ([`sanitize_name`]): every whitespace or control
//!   character becomes `_`, and an empty name becomes `unnamed`. So no span
//!   name can split a line, add a token, or start a forged line.
//!
//! # Reading
//!
//! [`parse_line`] accepts every line this crate writes and every line Mistral
//! writes, and is lenient where real logs differ: any run of whitespace
//! between tokens, every float form Python's `str(float)` produces (`9.4e-05`),
//! durations of 1000 s and more, a trailing `\r`, any text after the name, a
//! timestamp without fraction or with a `Z`, and a logging prefix before the
//! timestamp (only when the rest is a complete, valid line). It never panics,
//! and bad input yields a [`ParseError`].

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;
use std::time::Duration;

use time::OffsetDateTime;

use crate::Id;

/// The suffix Mistral appends to a slow stop line.
pub const SLOW_MARKER: &str = " <- !!!";

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
        let micros = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp(micros)
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
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
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
    let mut buf = [0u8; Id::TEXT_LEN];
    for id in [ids.base_id, ids.parent_id, ids.trace_id] {
        out.extend_from_slice(id.encode(&mut buf).as_bytes());
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

/// Appends a `-stop` line (with its `\n`) to `out`.
pub fn write_stop(
    out: &mut Vec<u8>,
    timestamp: Timestamp,
    duration: Duration,
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
    out.push(b'\n');
}

/// Seconds with 6 decimals, rounded to the nearest microsecond.
fn write_duration(out: &mut Vec<u8>, duration: Duration) {
    let micros = duration.as_nanos().saturating_add(500) / 1000;
    let secs = micros / 1_000_000;
    let frac = (micros % 1_000_000) as u32;
    let _ = write!(out, "{secs}");
    out.push(b'.');
    push_digits(out, frac, 6);
}

/// Writes span fields as a one-line JSON object.
///
/// Strings are escaped so that no control character, and none of the Unicode
/// line separators U+0085, U+2028 and U+2029, appears raw: the object can
/// neither break the line nor forge another.
#[derive(Debug, Default)]
pub struct JsonFields {
    out: String,
}

impl JsonFields {
    /// An empty object.
    #[must_use]
    pub fn new() -> Self {
        JsonFields::default()
    }

    fn key(&mut self, name: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.out, name);
        self.out.push(':');
    }

    /// Adds a string value.
    pub fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        push_json_string(&mut self.out, value);
    }

    /// Adds a raw JSON value (a number, `true`, `false`, `null`).
    fn raw(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.key(name);
        let _ = fmt::Write::write_fmt(&mut self.out, value);
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

    /// The finished object, or `None` when no field was added.
    #[must_use]
    pub fn finish(mut self) -> Option<String> {
        if self.out.is_empty() {
            None
        } else {
            self.out.push('}');
            Some(self.out)
        }
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    /// as JSON, Mistral's database statement info, or nothing.
    pub extra: Cow<'a, str>,
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
        let d = parse_duration(token).ok_or(ParseError::Duration)?;
        token = tokens.next().ok_or(ParseError::Truncated)?;
        Some(d)
    };
    let base_id = Id::parse_bytes(token).map_err(|_| ParseError::Id)?;
    let parent_id =
        Id::parse_bytes(tokens.next().ok_or(ParseError::Truncated)?).map_err(|_| ParseError::Id)?;
    let trace_id =
        Id::parse_bytes(tokens.next().ok_or(ParseError::Truncated)?).map_err(|_| ParseError::Id)?;
    let full_name = tokens.next().ok_or(ParseError::Truncated)?;
    let (name, phase) = if let Some(n) = full_name.strip_suffix(b"-start") {
        (n, Phase::Start)
    } else if let Some(n) = full_name.strip_suffix(b"-stop") {
        (n, Phase::Stop)
    } else {
        return Err(ParseError::Name);
    };
    if phase == Phase::Stop && duration.is_none() {
        return Err(ParseError::Duration);
    }
    let mut extra = tokens.0.trim_ascii();
    let slow_marker = SLOW_MARKER.trim_start().as_bytes();
    let slow = extra.starts_with(slow_marker);
    if slow {
        extra = extra[slow_marker.len()..].trim_ascii();
    }
    Ok(Line {
        timestamp,
        duration: if phase == Phase::Stop { duration } else { None },
        ids: PointIds {
            base_id,
            parent_id,
            trace_id,
        },
        name: String::from_utf8_lossy(name),
        phase,
        slow,
        extra: String::from_utf8_lossy(extra),
    })
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

fn looks_like_id(token: &[u8]) -> bool {
    token.len() >= 32 && token.iter().filter(|b| b.is_ascii_hexdigit()).count() >= 32
}

/// Any finite, non-negative number Python's `str(float)` may have written.
fn parse_duration(token: &[u8]) -> Option<f64> {
    if token.len() > 32
        || !token
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z]`, followed by whitespace or the end.
fn parse_timestamp(line: &[u8]) -> Option<(Timestamp, &[u8])> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    }
    if line.len() < 19
        || line[4] != b'-'
        || line[7] != b'-'
        || line[10] != b'T'
        || line[13] != b':'
        || line[16] != b':'
    {
        return None;
    }
    let year = num(&line[0..4])? as i32;
    let month = time::Month::try_from(num(&line[5..7])? as u8).ok()?;
    let day = num(&line[8..10])? as u8;
    let hour = num(&line[11..13])? as u8;
    let minute = num(&line[14..16])? as u8;
    let second = num(&line[17..19])? as u8;
    let mut rest = &line[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let mut value = num(&frac[..digits])?;
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
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let dt = date
        .with_hms_micro(hour, minute, second, micros)
        .ok()?
        .assume_utc();
    Some((Timestamp::from(dt), rest))
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
}
