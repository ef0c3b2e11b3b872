//! The reports' fast path over [`parse_line`]: the same result, computed
//! faster for the lines a log is made of.
//!
//! Almost every line of a log starts with a timestamp in the canonical
//! `YYYY-MM-DDTHH:MM:SS.ffffff` form, and consecutive lines mostly share its
//! first 19 bytes (the same second). [`LineParser`] remembers the last
//! second it converted, so a line costs a comparison and six digits instead
//! of a calendar conversion; the rest of the line is read as `parse_line`
//! reads it. Any line not in that form goes to [`parse_line`] itself, and a
//! property test checks both agree on valid, mangled and random lines.
//!
//! | module | owns |
//! |---|---|
//! | this one | [`LineParser`] and [`Fields`]: a line split and read, the timestamp cache; [`for_each_parsed`] (lines of inputs) and [`for_each_chunk_line`] (lines of a chunk, with their ids as keys) |
//! | `swar` | eight bytes at a time: word readers, digits, the first whitespace |
//! | `ids` | the three ids: checked at once, decoded, keyed |
//! | `sse2` | the 16-byte versions of the whitespace search and the id check |
//! | `hash` | the keyed multiply-rotate hash and the maps built on it |
//! | `names` | the name interner every report uses, with a small cache that finds a name's index without hashing |
//! | `chunk_ids` | the trace ids a chunk touched: a small map of the open points and a Bloom-filtered list of the stopped ones |
//!
//! The rules of a line (durations and their bound, the calendar, the
//! `-start`/`-stop` suffix, what makes a stop line, the slow marker) are
//! `tracing_osprofiler::format`'s functions, called here: the fast path
//! only reads the fixed layout faster.

use std::borrow::Cow;

use tracing_osprofiler::format::{
    looks_like_id, parse_busy, parse_duration, parse_extra, parse_line, parse_name, parse_second,
    Line, ParseError, Phase, PointIds, Timestamp,
};

use crate::source::{Inputs, MAX_LINE_LEN};
use crate::{Error, Unreadable};

pub(crate) mod chunk_ids;
mod hash;
mod ids;
pub(crate) mod names;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
// The intrinsics are safe functions from Rust 1.87 on, `unsafe` before.
#[allow(unused_unsafe)]
mod sse2;
mod swar;

pub(crate) use hash::U128Map;
use ids::{checked_id_key, checked_id_value, ids_ok, IDS_LEN};
pub(crate) use ids::{id, id_key, key_id};
use swar::{all_digits, eight_digits, first_whitespace, word_at, HIGH, ONES};

/// Why a line of a chunk was not read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unread {
    /// Longer than [`MAX_LINE_LEN`].
    TooLong,
    /// What [`parse_line`] said.
    Parse(ParseError),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooLong => f.write_str("line too long"),
            Unread::Parse(e) => e.fmt(f),
        }
    }
}

/// A readable line with its ids as [`id_key`]s: what the reports that
/// match starts, stops, parents and requests need of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedLine<'a> {
    /// As [`Line::timestamp`].
    pub(crate) timestamp: Timestamp,
    /// As [`Line::duration`].
    pub(crate) duration: Option<f64>,
    /// As [`Line::phase`].
    pub(crate) phase: Phase,
    /// As [`Line::busy`].
    pub(crate) busy: Option<f64>,
    /// The name's bytes (as read on the fast path, lossy-converted UTF-8
    /// on the other).
    pub(crate) name: &'a [u8],
    /// The `trace_id`'s key.
    pub(crate) trace: u128,
    /// The `parent_id`'s key.
    pub(crate) parent: u128,
    /// The `base_id`'s key.
    pub(crate) base: u128,
    /// Whether `parent_id` is `base_id`: the request's first point.
    /// (Compared where the keys are made: comparing them later, once
    /// stored in halves, stalls on the load.)
    pub(crate) parent_is_base: bool,
    /// Whether `parent_id` is `trace_id`.
    pub(crate) parent_is_trace: bool,
}

/// Reads the lines of a chunk (split as [`Inputs::for_each_line`] splits
/// them) and calls `f` with each one's index in the chunk, its place
/// (start, length) and what it says; blank lines are counted and skipped.
/// Returns the number of lines.
#[inline(always)]
pub(crate) fn for_each_chunk_line(
    parser: &mut LineParser,
    data: &[u8],
    mut f: impl FnMut(u64, (u32, u32), Result<KeyedLine<'_>, Unread>),
) -> u64 {
    let mut start = 0;
    let mut index = 0u64;
    while let Some(text) = data.get(start..).filter(|t| !t.is_empty()) {
        let at = start as u32;
        if let Some((fields, len)) = parser.fields_at(text) {
            let (trace, parent, base) =
                (fields.trace_key(), fields.parent_key(), fields.base_key());
            let line = KeyedLine {
                timestamp: fields.timestamp,
                duration: fields.duration,
                phase: fields.phase,
                busy: fields.busy(),
                name: fields.name,
                trace,
                parent,
                base,
                parent_is_base: parent == base,
                parent_is_trace: parent == trace,
            };
            f(index, (at, len as u32), Ok(line));
            start += len + 1;
            index += 1;
            continue;
        }
        let len = memchr::memchr(b'\n', text).unwrap_or(text.len());
        let bytes = &text[..len];
        if bytes.len() > MAX_LINE_LEN {
            f(index, (at, len as u32), Err(Unread::TooLong));
        } else {
            match parse_line(bytes) {
                Ok(line) => f(
                    index,
                    (at, len as u32),
                    Ok(KeyedLine {
                        timestamp: line.timestamp,
                        duration: line.duration,
                        phase: line.phase,
                        busy: line.busy,
                        name: line.name.as_bytes(),
                        trace: id_key(line.ids.trace_id),
                        parent: id_key(line.ids.parent_id),
                        base: id_key(line.ids.base_id),
                        parent_is_base: line.ids.parent_id == line.ids.base_id,
                        parent_is_trace: line.ids.parent_id == line.ids.trace_id,
                    }),
                ),
                Err(ParseError::Blank) => {}
                Err(e) => f(index, (at, len as u32), Err(Unread::Parse(e))),
            }
        }
        start += len + 1;
        index += 1;
    }
    index
}

/// The start line at `at` (start, length) of `data`, read again: its
/// name, timestamp and `base_id` key.
pub(crate) fn reread_start<'a>(
    parser: &mut LineParser,
    data: &'a [u8],
    at: (u32, u32),
) -> Option<(std::borrow::Cow<'a, [u8]>, Timestamp, u128)> {
    let bytes = data.get(at.0 as usize..at.0 as usize + at.1 as usize)?;
    if let Some(fields) = parser.fields(bytes) {
        return Some((
            Cow::Borrowed(fields.name),
            fields.timestamp,
            fields.base_key(),
        ));
    }
    let line = parse_line(bytes).ok()?;
    let name = match line.name {
        Cow::Borrowed(name) => Cow::Borrowed(name.as_bytes()),
        Cow::Owned(name) => Cow::Owned(name.into_bytes()),
    };
    Some((name, line.timestamp, id_key(line.ids.base_id)))
}

/// Parses each line of `inputs`, counting the unreadable ones, and calls `f`
/// with the readable ones.
pub(crate) fn for_each_parsed(
    inputs: &Inputs,
    unreadable: &mut Unreadable,
    mut f: impl FnMut(usize, Line<'_>),
) -> Result<(), Error> {
    let mut parser = LineParser::default();
    inputs.for_each_line(|line| {
        if line.oversized {
            unreadable.note(inputs, &line, &"line too long");
            return;
        }
        match parser.parse(line.bytes) {
            Ok(parsed) => f(line.source, parsed),
            Err(ParseError::Blank) => {}
            Err(e) => unreadable.note(inputs, &line, &e),
        }
    })
}

/// A line parser with a one-second timestamp cache.
#[derive(Debug, Default)]
pub(crate) struct LineParser {
    /// The last `YYYY-MM-DDTHH:MM:SS` converted (as three overlapping
    /// little-endian words, see [`second_key`]) and its microseconds.
    second: Option<((u64, u64, u64), i64)>,
}

/// A line in the writers' layout, split but not yet converted: what both
/// [`LineParser::parse`] and the rank report's scan ([`LineParser::fields`])
/// start from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fields<'a> {
    /// As [`Line::timestamp`].
    pub(crate) timestamp: Timestamp,
    /// As [`Line::duration`]: `Some` exactly on stop lines.
    pub(crate) duration: Option<f64>,
    /// `base_id`, `parent_id` and `trace_id` in the canonical form,
    /// checked; decoded on demand by [`base_id`](Self::base_id) and the
    /// others (the rank report needs one or two of them per line).
    ids: &'a [u8; IDS_LEN],
    /// The name's bytes, without `-start`/`-stop` (as [`Line::name`] before
    /// its lossy UTF-8 conversion).
    pub(crate) name: &'a [u8],
    /// As [`Line::phase`].
    pub(crate) phase: Phase,
    /// Everything after the name, untrimmed.
    pub(crate) rest: &'a [u8],
}

impl Fields<'_> {
    /// As [`Line::busy`]: what [`parse_busy`] reads after the slow marker
    /// of a stop line (nothing to read on most lines of older logs).
    #[inline]
    pub(crate) fn busy(&self) -> Option<f64> {
        let duration = self.duration?;
        if self.rest.is_empty() {
            return None;
        }
        parse_busy(parse_extra(self.rest).1, duration)
    }

    /// The `base_id`'s value, as [`tracing_osprofiler::Id`] reads it.
    #[inline]
    pub(crate) fn base_id(&self) -> u128 {
        checked_id_value(&self.ids[..36])
    }

    /// The `parent_id`'s value.
    #[inline]
    pub(crate) fn parent_id(&self) -> u128 {
        checked_id_value(&self.ids[37..73])
    }

    /// The `trace_id`'s value.
    #[inline]
    pub(crate) fn trace_id(&self) -> u128 {
        checked_id_value(&self.ids[74..110])
    }

    /// The `trace_id`'s [`id_key`].
    #[inline]
    pub(crate) fn trace_key(&self) -> u128 {
        checked_id_key(&self.ids[74..110])
    }

    /// The `parent_id`'s [`id_key`].
    #[inline]
    pub(crate) fn parent_key(&self) -> u128 {
        checked_id_key(&self.ids[37..73])
    }

    /// The `base_id`'s [`id_key`].
    #[inline]
    pub(crate) fn base_key(&self) -> u128 {
        checked_id_key(&self.ids[..36])
    }
}

impl LineParser {
    /// Exactly [`parse_line`]'s result.
    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Line<'a>, ParseError> {
        match self.fast(line) {
            Some(parsed) => Ok(parsed),
            None => parse_line(line),
        }
    }

    fn fast<'a>(&mut self, line: &'a [u8]) -> Option<Line<'a>> {
        let f = self.fields(line)?;
        let (slow, extra) = parse_extra(f.rest);
        let busy = f.busy();
        Some(Line {
            timestamp: f.timestamp,
            duration: f.duration,
            ids: PointIds {
                base_id: id(f.base_id()),
                parent_id: id(f.parent_id()),
                trace_id: id(f.trace_id()),
            },
            name: lossy(f.name),
            phase: f.phase,
            slow,
            extra: lossy(extra),
            busy,
        })
    }

    /// A line in the canonical form, split; `None` for anything else, which
    /// must go to [`parse`](Self::parse) (also for every line `parse_line`
    /// would reject, so that its error is the one reported). When `Some`,
    /// `parse_line` accepts the line with these timestamp, duration, ids,
    /// phase and (lossy-converted) name.
    #[inline]
    pub(crate) fn fields<'a>(&mut self, line: &'a [u8]) -> Option<Fields<'a>> {
        match self.fields_at(line) {
            Some((fields, len)) if len == line.len() => Some(fields),
            _ => None,
        }
    }

    /// [`fields`](Self::fields) of the line that starts `text` and ends at
    /// its first `\n` (or the end of `text`), and that line's length,
    /// without looking for the `\n` first: the fixed-layout checks fail on
    /// any `\n`, and the name ends at the first whitespace, which a `\n`
    /// is. So a chunk of lines is split and read in one pass. `None` also
    /// for a line longer than [`MAX_LINE_LEN`].
    #[inline(always)]
    pub(crate) fn fields_at<'a>(&mut self, text: &'a [u8]) -> Option<(Fields<'a>, usize)> {
        let line = text;
        let head: &[u8; 27] = line.get(..27)?.try_into().ok()?;
        let key = second_key(head);
        let second = match self.second {
            Some((cached, micros)) if cached == key => micros,
            _ => {
                let micros = parse_second(head[..19].try_into().ok()?)?.unix_micros();
                self.second = Some((key, micros));
                micros
            }
        };
        let timestamp = Timestamp::from_unix_micros(second + i64::from(fraction(head)?));
        // The writers' layout: 8 spaces or a duration, then the three ids
        // at fixed offsets, each followed by one space.
        let (duration, at) = if line.len() >= 36
            && word_at(line, 27) == ONES * u64::from(b' ')
            && line[35] == b' '
        {
            (None, 36)
        } else if let Some((value, len)) = writers_duration(&line[27..]) {
            // At most 7 digits of seconds: always a duration `check_duration`
            // takes (asserted below), so its result is not waited for.
            (Some(value), 28 + len)
        } else {
            let len = line[27..].iter().take(32).position(|&b| b == b' ')?;
            let token = &line[27..27 + len];
            if looks_like_id(token) {
                return None;
            }
            (Some(parse_duration(token).ok()?), 28 + len)
        };
        let ids: &[u8; IDS_LEN] = line.get(at..at + IDS_LEN)?.try_into().ok()?;
        if !ids_ok(ids) {
            return None;
        }
        let tail = &line[at + IDS_LEN - 1..];
        let end = first_whitespace(tail);
        let full_name = &tail[..end];
        let line_len = at + IDS_LEN - 1 + end;
        let line_len = match tail.get(end) {
            Some(b'\n') | None => line_len,
            Some(_) => memchr::memchr(b'\n', &tail[end..]).map_or(text.len(), |p| line_len + p),
        };
        if line_len > MAX_LINE_LEN {
            return None;
        }
        let (name, phase, duration) = parse_name(full_name, duration).ok()?;
        let fields = Fields {
            timestamp,
            duration,
            ids,
            name,
            phase,
            rest: &text[at + IDS_LEN - 1 + end..line_len],
        };
        Some((fields, line_len))
    }
}

/// The bytes of `YYYY-MM-DDTHH:MM:SS` as three overlapping words, to
/// compare with the cached second in three comparisons.
#[inline(always)]
fn second_key(head: &[u8; 27]) -> (u64, u64, u64) {
    (word_at(head, 0), word_at(head, 8), word_at(head, 11))
}

/// The microseconds of `.ffffff ` (bytes 19 to 26): six digits between a
/// `.` and a space, read at once (SWAR).
#[inline(always)]
fn fraction(head: &[u8; 27]) -> Option<u32> {
    let w = word_at(head, 19);
    // `.`, six digits, a space (first byte lowest).
    if w & 0xff00_0000_0000_00ff != 0x2000_0000_0000_002e {
        return None;
    }
    // `00ffffff`, first digit lowest.
    let digits = ((w << 8) & !0xffff) | 0x3030;
    all_digits(digits).then(|| eight_digits(digits))
}

/// The writers' form holds at most 7 digits of seconds: always within
/// [`MAX_DURATION_SECS`](tracing_osprofiler::format::MAX_DURATION_SECS).
const _: () = assert!(9_999_999.999_999 < tracing_osprofiler::format::MAX_DURATION_SECS);

/// The duration as the writers of this crate write it, seconds, `.`,
/// six digits, then a space (`0.000268 `), for up to 7 digits of seconds:
/// the value [`parse_duration`] gives for the token and the token's length,
/// read a word at a time; `None` for any other form.
#[inline(always)]
fn writers_duration(bytes: &[u8]) -> Option<(f64, usize)> {
    const ZEROS: u64 = ONES * 0x30;
    if bytes.len() < 16 {
        return None;
    }
    let w = word_at(bytes, 0);
    // The first `.` (a zero byte of `w ^ "........"`; the lowest flag is
    // exact).
    let x = w ^ (ONES * b'.' as u64);
    let dots = x.wrapping_sub(ONES) & !x & HIGH;
    let secs_len = (dots.trailing_zeros() / 8) as usize;
    if !(1..=7).contains(&secs_len) {
        return None;
    }
    // The seconds' digits right-aligned in eight digits.
    let secs = (w << (8 * (8 - secs_len))) | (ZEROS >> (8 * secs_len));
    let frac_word = word_at(bytes, secs_len + 1);
    if frac_word >> 48 & 0xff != u64::from(b' ') {
        return None;
    }
    let frac = ((frac_word << 16) & !0xffff) | 0x3030;
    if !all_digits(secs) || !all_digits(frac) {
        return None;
    }
    let mantissa = u64::from(eight_digits(secs)) * 1_000_000 + u64::from(eight_digits(frac));
    Some((mantissa as f64 / 1e6, secs_len + 7))
}

/// `String::from_utf8_lossy`, with a faster check for the valid case.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

// Written for the integration tests, which mangle lines the same way
// and where its items are public.
#[cfg(test)]
#[allow(unreachable_pub)]
#[path = "../../tests/support/mangle.rs"]
mod mangle;

#[cfg(test)]
mod tests {
    use super::ids::{canonical_id, ids_ok_portable};
    use super::mangle;
    use super::*;
    use tracing_osprofiler::Id;

    const IDS: &str = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";

    #[test]
    fn agrees_with_parse_line() {
        let mut parser = LineParser::default();
        for line in [
            format!("2020-02-27T08:04:25.961298 9.4e-05 {IDS} a-stop"),
            format!("2020-02-27T08:04:25.961299          {IDS} a-start {{\"x\": 1}}"),
            format!("2020-02-27T08:04:26.000000 1234.567891 {IDS} b-stop  <- !!! {{}}\r"),
            format!(
                "2020-02-27T08:04:26.000000 0.500000 {IDS} b-stop  <- !!! {{\"busy\":0.125000}}"
            ),
            format!("2020-02-27T08:04:26.000000 0.100000 {IDS} b-stop {{\"busy\":0.125000}}"),
            format!("2020-02-27T08:04:26.000000 0.100000 {IDS} b-stop {{\"busy\":0.000001}}\r"),
            format!("2020-02-27T08:04:26.000000 0.1 {IDS} caf\u{e9}-stop"),
            format!("2020-02-30T08:04:26.000000 0.1 {IDS} a-stop"),
            format!("2020-02-27T08:04:26.000000 -1 {IDS} a-stop"),
            format!("2020-02-27T08:04:26.000000          {IDS} a-stop"),
            format!("2020-02-27T08:04:26.000000 0.1 {IDS} a"),
            format!("2020-02-27T08:04:26.000000 0.1 {IDS}"),
            format!("x 2020-02-27T08:04:26.000000 0.1 {IDS} a-stop"),
            format!("2020-02-27T08:04:26.000000 12345678901234567890123456789012 {IDS} a-stop"),
            format!("1969-12-31T23:59:59.999999 0.1 {IDS} a-stop"),
        ] {
            assert_eq!(
                parser.parse(line.as_bytes()),
                parse_line(line.as_bytes()),
                "{line}"
            );
        }
        // The fast path does take the writers' lines.
        for line in [
            format!("2020-02-27T08:04:25.961298 9.4e-05 {IDS} a-stop"),
            format!("2020-02-27T08:04:25.961299          {IDS} a-start {{\"x\": 1}}"),
            format!("2020-02-27T08:04:26.000000 1234.567891 {IDS} b-stop  <- !!!\r"),
        ] {
            assert!(parser.fast(line.as_bytes()).is_some(), "{line}");
        }
        let mut bad = format!("2020-02-27T08:04:26.000000 0.1 {IDS} ").into_bytes();
        bad.extend_from_slice(b"\xff\xfe-stop");
        assert_eq!(parser.parse(&bad), parse_line(&bad));
    }

    fn mangled() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (
            prop::bool::ANY,
            0u32..100_000_000,
            "[a-z:.-]{0,12}",
            mangle::edits(4),
        )
            .prop_map(|(stop, micros, name, edits)| {
                let duration = if stop {
                    format!("{}", f64::from(micros) / 1e6)
                } else {
                    " ".repeat(8)
                };
                let phase = if stop { "stop" } else { "start" };
                // Some stop lines with a busy time, some of it too long.
                let busy = match micros % 4 {
                    0 => format!(" {{\"busy\":{}}}", f64::from(micros / 2) / 1e6),
                    1 => format!("  <- !!! {{\"busy\":{}}}", f64::from(micros) / 1e5),
                    _ => String::new(),
                };
                let line = format!(
                    "2020-02-2{}T08:04:25.961298 {duration} {IDS} {name}-{phase}{busy}",
                    micros % 10
                );
                mangle::mangle(line.into_bytes(), edits)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn agrees_with_parse_line_on_mangled_lines(lines in proptest::collection::vec(mangled(), 1..4)) {
            // Several lines through one parser, so that the cache is used.
            let mut parser = LineParser::default();
            for line in &lines {
                proptest::prop_assert_eq!(parser.parse(line), parse_line(line));
                check_fields(&mut parser, line);
            }
        }

        #[test]
        fn fields_at_splits_a_chunk_as_memchr_does(lines in proptest::collection::vec(mangled(), 1..6), crlf in proptest::bool::ANY) {
            let mut chunk = Vec::new();
            for line in &lines {
                chunk.extend_from_slice(line);
                if crlf {
                    chunk.push(b'\r');
                }
                chunk.push(b'\n');
            }
            let mut by_line = LineParser::default();
            let mut at_once = LineParser::default();
            let mut start = 0;
            for line in chunk.split(|&b| b == b'\n') {
                if start >= chunk.len() {
                    break;
                }
                let expected = by_line.fields(line);
                match at_once.fields_at(&chunk[start..]) {
                    Some((fields, len)) => {
                        proptest::prop_assert_eq!(len, line.len());
                        proptest::prop_assert_eq!(Some(fields), expected);
                    }
                    None => proptest::prop_assert_eq!(expected, None),
                }
                start += line.len() + 1;
            }
        }

        #[test]
        fn first_whitespace_is_position(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let expected = bytes.iter().position(u8::is_ascii_whitespace).unwrap_or(bytes.len());
            proptest::prop_assert_eq!(first_whitespace(&bytes), expected);
        }

        #[test]
        fn writers_durations_read_as_parse_duration_reads_them(secs in 0u64..100_000_000, frac in 0u32..1_000_000, tail in "[ -~]{0,9}", edit in proptest::option::of((0usize..16, proptest::prelude::any::<u8>()))) {
            let mut token = format!("{secs}.{frac:06} {tail}").into_bytes();
            token.resize(token.len().max(16), b'x');
            if let Some((at, byte)) = edit {
                token[at] = byte;
            }
            if let Some((value, len)) = writers_duration(&token) {
                proptest::prop_assert_eq!(token[len], b' ');
                proptest::prop_assert_eq!(Ok(value), parse_duration(&token[..len]));
            } else if edit.is_none() && secs < 10_000_000 {
                proptest::prop_assert!(false, "the writers' form not taken");
            }
        }

        #[test]
        fn ids_read_as_id_parse_reads_them(value in proptest::prelude::any::<u128>(), upper in proptest::bool::ANY, at in 0usize..36, byte in proptest::prelude::any::<u8>()) {
            let mut text = uuid::Uuid::from_u128(value).hyphenated().to_string();
            if upper {
                text = text.to_uppercase();
            }
            proptest::prop_assert_eq!(canonical_id(text.as_bytes()), Some(value));
            let mut bytes = text.into_bytes();
            bytes[at] = byte;
            let expected = Id::parse_bytes(&bytes).ok().map(|i| i.as_uuid().as_u128());
            proptest::prop_assert_eq!(canonical_id(&bytes), expected);
        }
    }

    /// When [`LineParser::fields`] takes a line, its fields are
    /// `parse_line`'s.
    fn check_fields(parser: &mut LineParser, line: &[u8]) {
        if let Some(f) = parser.fields(line) {
            let parsed = parse_line(line).expect("fields took a line parse_line rejects");
            assert_eq!(f.timestamp, parsed.timestamp);
            assert_eq!(f.duration, parsed.duration);
            assert_eq!(id(f.base_id()), parsed.ids.base_id);
            assert_eq!(id(f.parent_id()), parsed.ids.parent_id);
            assert_eq!(id(f.trace_id()), parsed.ids.trace_id);
            assert_eq!(String::from_utf8_lossy(f.name), parsed.name);
            assert_eq!(f.phase, parsed.phase);
            assert_eq!(f.busy(), parsed.busy);
        }
    }

    #[test]
    fn ids_checked_at_once_as_one_by_one() {
        let mut region = [0u8; IDS_LEN];
        region[..110].copy_from_slice(IDS.as_bytes());
        region[110] = b' ';
        region[111] = b'a';
        assert!(ids_ok(&region));
        for at in 0..IDS_LEN {
            for byte in 0..=255u8 {
                let mut bytes = region;
                bytes[at] = byte;
                assert_eq!(ids_ok(&bytes), ids_ok_portable(&bytes), "{at} {byte}");
                if ids_ok(&bytes) {
                    for (i, text) in [&bytes[..36], &bytes[37..73], &bytes[74..110]]
                        .into_iter()
                        .enumerate()
                    {
                        assert_eq!(Some(checked_id_value(text)), canonical_id(text), "{i}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn id_keys_tell_ids_apart_as_values_do(a in proptest::prelude::any::<u128>(), b in proptest::prelude::any::<u128>(), flip in 0u32..128, upper in proptest::bool::ANY) {
            let id = |v: u128| Id::from_uuid(uuid::Uuid::from_u128(v));
            let text = |v: u128| {
                let t = uuid::Uuid::from_u128(v).hyphenated().to_string();
                if upper { t.to_uppercase() } else { t }
            };
            for (x, y) in [(a, b), (a, a ^ (1 << flip))] {
                proptest::prop_assert_eq!(id_key(id(x)) == id_key(id(y)), x == y);
                proptest::prop_assert_eq!(checked_id_key(text(x).as_bytes()), id_key(id(x)));
                proptest::prop_assert_eq!(key_id(id_key(id(x))), id(x));
            }
        }
    }

    #[test]
    fn fraction_is_six_digits_between_dot_and_space() {
        let head = *b"2020-02-27T08:04:25.961298 ";
        assert_eq!(fraction(&head), Some(961_298));
        assert_eq!(fraction(b"2020-02-27T08:04:25.000000 "), Some(0));
        assert_eq!(fraction(b"2020-02-27T08:04:25.999999 "), Some(999_999));
        for at in 19..27 {
            for byte in 0..=255u8 {
                let mut bytes = head;
                bytes[at] = byte;
                let expected = (bytes[19] == b'.'
                    && bytes[26] == b' '
                    && bytes[20..26].iter().all(u8::is_ascii_digit))
                .then(|| {
                    bytes[20..26]
                        .iter()
                        .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
                });
                assert_eq!(fraction(&bytes), expected, "{at} {byte}");
            }
        }
    }

    #[test]
    fn every_byte_in_every_id_position() {
        let text = *b"f12e75d5-5d59-4cbc-b74d-357f19290dd7";
        for at in 0..36 {
            for byte in 0..=255u8 {
                let mut bytes = text;
                bytes[at] = byte;
                let expected = Id::parse_bytes(&bytes).ok().map(|i| i.as_uuid().as_u128());
                assert_eq!(canonical_id(&bytes), expected, "{at} {byte}");
            }
        }
    }
}
