//! The osprofiler ids: [`Id`], a UUID that names a request (`base_id`) or a
//! trace point (`parent_id`, `trace_id`).
//!
//! This module owns which textual forms of an id are accepted and how an id is
//! written. osprofiler itself accepts any string as an id (even integers or the
//! empty string); this crate is deliberately stricter, because an id ends up in
//! a whitespace-separated log line and in the headers of downstream calls:
//!
//! * **Accepted**: every form Python's `uuid.UUID(text)` accepts: 32 hex
//!   digits in either case, with any number of `-` between them, optionally
//!   wrapped in `{...}` and optionally prefixed with `urn:` and/or `uuid:`.
//!   That covers the canonical form, the simple form, the braced form and the
//!   URN form.
//! * **Written**: always the canonical, lower-case, dashed form
//!   (`6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b`), as osprofiler writes it.
//! * **Rejected**: everything else, including the empty string, integers,
//!   surrounding whitespace and text longer than [`Id::MAX_TEXT_LEN`]. A token
//!   carrying such an id is served unprofiled.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// An osprofiler id: a UUID written in canonical lower-case form.
///
/// The same type serves as `base_id`, `parent_id` and `trace_id`, because
/// osprofiler uses one id space for all three: a root point's `parent_id` is
/// the request's `base_id`.
///
/// ```
/// use tracing_osprofiler::Id;
///
/// let id: Id = "{6F9E3C1A2B4D4E8F9A0B1C2D3E4F5A6B}".parse().unwrap();
/// assert_eq!(id.to_string(), "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b");
/// assert!("42".parse::<Id>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Uuid);

impl Id {
    /// Length of the canonical text form.
    pub const TEXT_LEN: usize = 36;

    /// The longest text [`Id::parse`] looks at; longer input is rejected
    /// without further work.
    pub const MAX_TEXT_LEN: usize = 64;

    /// A fresh random (version 4) id.
    #[must_use]
    pub fn new_v4() -> Self {
        Id(Uuid::new_v4())
    }

    /// Wraps a UUID.
    #[must_use]
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Id(uuid)
    }

    /// The UUID behind this id.
    #[must_use]
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The low 64 bits, which osprofiler's OpenTelemetry exporter uses as a
    /// span id.
    #[must_use]
    pub const fn low_u64(&self) -> u64 {
        self.0.as_u128() as u64
    }

    /// Parses any form Python's `uuid.UUID` accepts (see the [module
    /// docs](self)).
    ///
    /// # Errors
    ///
    /// An [`IdError`]: too long, or not a UUID in any accepted form.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        Self::parse_bytes(text.as_bytes())
    }

    /// Like [`Id::parse`], on bytes (log lines are not always UTF-8).
    ///
    /// # Errors
    ///
    /// As [`Id::parse`].
    pub fn parse_bytes(text: &[u8]) -> Result<Self, IdError> {
        if text.len() > Self::MAX_TEXT_LEN {
            return Err(IdError::TooLong);
        }
        // Fast path: the canonical form, which is what every peer writes.
        if text.len() == Self::TEXT_LEN {
            if let Ok(uuid) = Uuid::try_parse_ascii(text) {
                return Ok(Id(uuid));
            }
        }
        // Python: strip "urn:" and "uuid:", then braces, then drop every '-'.
        let mut rest = text;
        if let Some(r) = rest.strip_prefix(b"urn:") {
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b"uuid:") {
            rest = r;
        }
        while let Some(r) = rest.strip_prefix(b"{") {
            rest = r;
        }
        while let Some(r) = rest.strip_suffix(b"}") {
            rest = r;
        }
        let mut value: u128 = 0;
        let mut digits = 0usize;
        for &b in rest {
            if b == b'-' {
                continue;
            }
            let nibble = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(IdError::InvalidCharacter),
            };
            digits += 1;
            if digits > 32 {
                return Err(IdError::WrongLength);
            }
            value = (value << 4) | u128::from(nibble);
        }
        if digits != 32 {
            return Err(IdError::WrongLength);
        }
        Ok(Id(Uuid::from_u128(value)))
    }

    /// Writes the canonical form into `buf` and returns it as text, without
    /// allocating.
    pub fn encode<'b>(&self, buf: &'b mut [u8; Self::TEXT_LEN]) -> &'b str {
        self.0.hyphenated().encode_lower(buf)
    }

    /// The canonical form as bytes, for the line writer: two characters per
    /// byte from a table, at fixed places between fixed dashes, and no
    /// UTF-8 check of the result (which `encode`'s `&str` needs). A line
    /// carries three ids, and the writer's thread spent a third of its time
    /// per point encoding them (126 instructions an id through `encode`,
    /// callgrind).
    pub(crate) fn to_ascii(self) -> [u8; Self::TEXT_LEN] {
        const PLACES: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut text = *b"00000000-0000-0000-0000-000000000000";
        for (byte, at) in self.0.as_bytes().iter().zip(PLACES) {
            text[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
        }
        text
    }
}

/// Each byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    pairs
};

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; Self::TEXT_LEN];
        f.write_str(self.encode(&mut buf))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

impl FromStr for Id {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::parse(s)
    }
}

impl From<Uuid> for Id {
    fn from(uuid: Uuid) -> Self {
        Id(uuid)
    }
}

impl From<Id> for Uuid {
    fn from(id: Id) -> Self {
        id.0
    }
}

/// Why a text is not an [`Id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// Longer than [`Id::MAX_TEXT_LEN`].
    TooLong,
    /// A character that is not a hex digit, `-`, or part of the accepted
    /// `urn:uuid:{...}` wrapping.
    InvalidCharacter,
    /// Not exactly 32 hex digits.
    WrongLength,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::TooLong => "id text is too long",
            IdError::InvalidCharacter => "id contains a character that is not a hex digit",
            IdError::WrongLength => "id does not have exactly 32 hex digits",
        })
    }
}

impl std::error::Error for IdError {}

#[cfg(test)]
mod tests {
    use super::*;

    const CANON: &str = "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b";

    #[test]
    fn accepts_every_python_form() {
        for text in [
            CANON,
            "6F9E3C1A-2B4D-4E8F-9A0B-1C2D3E4F5A6B",
            "6f9e3c1a2b4d4e8f9a0b1c2d3e4f5a6b",
            "{6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b}",
            "urn:uuid:6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
            "uuid:6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
            "6f-9e3c1a2b4d4e8f9a0b1c2d3e4f5a6b",
        ] {
            assert_eq!(Id::parse(text).unwrap().to_string(), CANON, "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_uuid() {
        for text in [
            "",
            "42",
            " 6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6",
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6bb",
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6g",
            "not an id",
            "----------------------------------------------------------------------",
        ] {
            assert!(Id::parse(text).is_err(), "{text:?}");
        }
    }

    proptest::proptest! {
        /// The line writer's table encoder writes what `encode` does.
        #[test]
        fn to_ascii_is_encode(value in proptest::num::u128::ANY) {
            let id = Id(Uuid::from_u128(value));
            let mut buf = [0u8; Id::TEXT_LEN];
            proptest::prop_assert_eq!(&id.to_ascii()[..], id.encode(&mut buf).as_bytes());
        }
    }

    #[test]
    fn both_encoders_write_the_edges() {
        assert_eq!(
            &Id(Uuid::nil()).to_ascii(),
            b"00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            &Id(Uuid::max()).to_ascii(),
            b"ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert_eq!(&Id::parse(CANON).unwrap().to_ascii(), CANON.as_bytes());
        let mut buf = [0u8; Id::TEXT_LEN];
        assert_eq!(
            Id(Uuid::nil()).encode(&mut buf),
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            Id(Uuid::max()).encode(&mut buf),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert_eq!(Id::parse(CANON).unwrap().encode(&mut buf), CANON);
    }

    #[test]
    fn low_bits_match_otel_mapping() {
        let id = Id::parse("00000000-0000-4000-8000-000000000002").unwrap();
        assert_eq!(id.low_u64(), 0x8000_0000_0000_0002);
    }
}
