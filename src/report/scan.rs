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

use std::borrow::Cow;

use crate::format::{parse_line, Line, ParseError, Phase, PointIds, Timestamp, SLOW_MARKER};
use crate::Id;

/// A line parser with a one-second timestamp cache.
#[derive(Debug, Default)]
pub(crate) struct LineParser {
    second: Option<([u8; 19], i64)>,
}

impl LineParser {
    /// Exactly [`parse_line`]'s result.
    pub(crate) fn parse<'a>(&mut self, line: &'a [u8]) -> Result<Line<'a>, ParseError> {
        match self.fast(line) {
            Some(parsed) => Ok(parsed),
            None => parse_line(line),
        }
    }

    /// The canonical form only; `None` sends the line to `parse_line`
    /// (also every line `parse_line` would reject, so that its error is the
    /// one reported).
    fn fast<'a>(&mut self, line: &'a [u8]) -> Option<Line<'a>> {
        if line.len() < 27 || line[19] != b'.' || line[26] != b' ' {
            return None;
        }
        let prefix: &[u8; 19] = line[..19].try_into().ok()?;
        let second = match self.second {
            Some((cached, micros)) if &cached == prefix => micros,
            _ => {
                let micros = second_micros(prefix)?;
                self.second = Some((*prefix, micros));
                micros
            }
        };
        let mut frac = 0i64;
        for &d in &line[20..26] {
            if !d.is_ascii_digit() {
                return None;
            }
            frac = frac * 10 + i64::from(d - b'0');
        }
        let timestamp = Timestamp::from_unix_micros(second + frac);
        // The writers' layout: 8 spaces or a duration, then the three ids
        // at fixed offsets, each followed by one space.
        let (duration, at) = if line[27..].starts_with(&[b' '; 9]) {
            (None, 36)
        } else {
            let len = line[27..].iter().take(32).position(|&b| b == b' ')?;
            (Some(parse_duration(&line[27..27 + len])?), 28 + len)
        };
        let ids = line.get(at..at + 111)?;
        if ids[36] != b' ' || ids[73] != b' ' || ids[110] != b' ' {
            return None;
        }
        let base_id = canonical_id(&ids[..36])?;
        let parent_id = canonical_id(&ids[37..73])?;
        let trace_id = canonical_id(&ids[74..110])?;
        let mut tokens = Tokens(&line[at + 111..]);
        if line.get(at + 111).is_none_or(u8::is_ascii_whitespace) {
            return None;
        }
        let full_name = tokens.next()?;
        let (name, phase) = if let Some(n) = full_name.strip_suffix(b"-start") {
            (n, Phase::Start)
        } else if let Some(n) = full_name.strip_suffix(b"-stop") {
            (n, Phase::Stop)
        } else {
            return None;
        };
        if phase == Phase::Stop && duration.is_none() {
            return None;
        }
        let mut extra = tokens.0.trim_ascii();
        let slow_marker = SLOW_MARKER.trim_start().as_bytes();
        let slow = extra.starts_with(slow_marker);
        if slow {
            extra = extra[slow_marker.len()..].trim_ascii();
        }
        Some(Line {
            timestamp,
            duration: if phase == Phase::Stop { duration } else { None },
            ids: PointIds {
                base_id,
                parent_id,
                trace_id,
            },
            name: lossy(name),
            phase,
            slow,
            extra: lossy(extra),
        })
    }
}

/// A hasher for maps keyed by [`Id`]: ids are random UUIDs, so a
/// multiply-and-rotate over their bytes, keyed per process so that a
/// crafted log cannot aim at collisions it cannot see, is enough and much
/// cheaper than SipHash.
#[derive(Clone)]
pub(crate) struct IdHashBuilder(u64);

impl Default for IdHashBuilder {
    fn default() -> Self {
        use std::hash::BuildHasher;
        IdHashBuilder(std::collections::hash_map::RandomState::new().hash_one(0u64) | 1)
    }
}

impl std::hash::BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

/// See [`IdHashBuilder`].
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 31)
    }
}

/// A map keyed by [`Id`] with [`IdHashBuilder`].
pub(crate) type IdMap<V> = std::collections::HashMap<Id, V, IdHashBuilder>;

/// An id in the canonical 8-4-4-4-12 form, as [`Id::parse_bytes`] reads
/// it; `None` for anything else (which then goes to `parse_line`).
fn canonical_id(text: &[u8]) -> Option<Id> {
    const HEX: [u8; 256] = {
        let mut table = [0xff; 256];
        let mut i = 0;
        while i < 256 {
            table[i] = match i as u8 {
                b @ b'0'..=b'9' => b - b'0',
                b @ b'a'..=b'f' => b - b'a' + 10,
                b @ b'A'..=b'F' => b - b'A' + 10,
                _ => 0xff,
            };
            i += 1;
        }
        table
    };
    if text.len() != Id::TEXT_LEN
        || text[8] != b'-'
        || text[13] != b'-'
        || text[18] != b'-'
        || text[23] != b'-'
    {
        return None;
    }
    // Two 64-bit halves; an invalid digit sets the high bits of `bad`.
    fn hex(digits: &[u8], mut acc: u64, bad: &mut u8) -> u64 {
        for &b in digits {
            let nibble = HEX[usize::from(b)];
            *bad |= nibble;
            acc = (acc << 4) | u64::from(nibble & 0x0f);
        }
        acc
    }
    let mut bad = 0u8;
    let high = hex(&text[..8], 0, &mut bad);
    let high = hex(&text[9..13], high, &mut bad);
    let high = hex(&text[14..18], high, &mut bad);
    let low = hex(&text[19..23], 0, &mut bad);
    let low = hex(&text[24..36], low, &mut bad);
    if bad & 0xf0 != 0 {
        return None;
    }
    let value = (u128::from(high) << 64) | u128::from(low);
    Some(Id::from_uuid(uuid::Uuid::from_u128(value)))
}

/// `String::from_utf8_lossy`, with a faster check for the valid case.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Whitespace-separated tokens, as `parse_line` splits them.
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

/// As `parse_line` reads a duration: finite, non-negative, in any form
/// Rust's `f64` parser takes from these characters.
fn parse_duration(token: &[u8]) -> Option<f64> {
    if !token
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    }
    let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// `YYYY-MM-DDTHH:MM:SS` to microseconds since the epoch, with the
/// calendar checks `parse_line` makes.
fn second_micros(p: &[u8; 19]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    }
    if p[4] != b'-' || p[7] != b'-' || p[10] != b'T' || p[13] != b':' || p[16] != b':' {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(num(&p[5..7])?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(&p[0..4])?).ok()?,
        month,
        u8::try_from(num(&p[8..10])?).ok()?,
    )
    .ok()?;
    let dt = date
        .with_hms(
            u8::try_from(num(&p[11..13])?).ok()?,
            u8::try_from(num(&p[14..16])?).ok()?,
            u8::try_from(num(&p[17..19])?).ok()?,
        )
        .ok()?
        .assume_utc();
    dt.unix_timestamp().checked_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: &str = "f12e75d5-5d59-4cbc-b74d-357f19290dd7 603f1fab-be78-438d-af13-d94ed3b7e416 b1d0a77a-52f5-4415-a6c4-f16b3591a47d";

    #[test]
    fn agrees_with_parse_line() {
        let mut parser = LineParser::default();
        for line in [
            format!("2020-02-27T08:04:25.961298 9.4e-05 {IDS} a-stop"),
            format!("2020-02-27T08:04:25.961299          {IDS} a-start {{\"x\": 1}}"),
            format!("2020-02-27T08:04:26.000000 1234.567891 {IDS} b-stop  <- !!! {{}}\r"),
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
            prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..4),
        )
            .prop_map(|(stop, micros, name, edits)| {
                let duration = if stop {
                    format!("{}", f64::from(micros) / 1e6)
                } else {
                    " ".repeat(8)
                };
                let phase = if stop { "stop" } else { "start" };
                let mut line = format!(
                    "2020-02-2{}T08:04:25.961298 {duration} {IDS} {name}-{phase}",
                    micros % 10
                )
                .into_bytes();
                for (at, byte, op) in edits {
                    let at = at % (line.len() + 1);
                    match op {
                        0 => line.insert(at, byte),
                        1 if at < line.len() => line[at] = byte,
                        _ => line.truncate(at),
                    }
                }
                line
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
            }
        }
    }
}
