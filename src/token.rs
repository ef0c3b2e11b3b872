//! The signed profile token: the `X-Trace-Info` / `X-Trace-HMAC` header pair.
//!
//! This module owns signing and verifying the two headers exactly as
//! osprofiler does (docs/protocol.md, *The signed headers*), the secret keys, and the two HMAC
//! algorithms. It knows nothing of HTTP types: headers are plain name/value
//! text, so the same code serves tower, reqwest, a message queue or a test.
//!
//! * `X-Trace-Info` is URL-safe base64 (with `=` padding) of the JSON object
//!   `{"base_id": "…", "parent_id": "…"}`, written with Python's `json.dumps`
//!   separators.
//! * `X-Trace-HMAC` is the lower-case hex HMAC of the base64 text *as sent*.
//!   HMAC-SHA1 (40 hex digits) is what osprofiler speaks; HMAC-SHA256 (64 hex
//!   digits) is offered for fleets where every peer runs this crate. The
//!   verifier tells them apart by length and accepts the algorithms enabled on
//!   [`HmacKeys`].
//!
//! Verification never fails loudly: every invalid token is a [`Rejection`]
//! that callers turn into "serve unprofiled". Size limits are checked before
//! any HMAC work, and signatures are compared in constant time.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::Id;

/// Name of the header that carries the base64 trace info.
pub const X_TRACE_INFO: &str = "X-Trace-Info";
/// Name of the header that carries the hex HMAC of `X-Trace-Info`.
pub const X_TRACE_HMAC: &str = "X-Trace-HMAC";

/// The longest `X-Trace-Info` value that is looked at. A real one is about
/// 150 bytes; anything over this limit is rejected before any HMAC work.
pub const MAX_TRACE_INFO_LEN: usize = 4096;
/// The longest `X-Trace-HMAC` value that is looked at (64 hex digits plus
/// room for surrounding whitespace).
pub const MAX_TRACE_HMAC_LEN: usize = 128;

/// Accepts padded and unpadded input: the signature covers the exact text,
/// so leniency here cannot let a forged token through.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An HMAC algorithm for `X-Trace-HMAC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HmacAlgorithm {
    /// HMAC-SHA1, 40 hex digits: what osprofiler (Python) signs and accepts.
    Sha1,
    /// HMAC-SHA256, 64 hex digits: for fleets where every peer runs this crate.
    Sha256,
}

impl HmacAlgorithm {
    /// Number of hex digits of a signature.
    #[must_use]
    pub const fn hex_len(self) -> usize {
        match self {
            HmacAlgorithm::Sha1 => 40,
            HmacAlgorithm::Sha256 => 64,
        }
    }

    fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            40 => Some(HmacAlgorithm::Sha1),
            64 => Some(HmacAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// One shared secret. Its bytes never appear in `Debug` output.
///
/// osprofiler uses the UTF-8 bytes of the configured string as the HMAC key.
///
/// # Blank secrets
///
/// A secret that is empty, or made only of whitespace and NUL bytes, is
/// *blank*: HMAC pads a short key with zero bytes, so `""`, `"\0"` and
/// `"\0\0"` are one and the same key, and `" "` is one anybody would try.
/// A token signed with such a key is a forgery anyone can make, so
/// [`HmacKeys`] never verifies with a blank key: [`HmacKeys::new`] leaves it
/// out and counts it ([`HmacKeys::ignored_blank_keys`]),
/// [`HmacKeys::try_new`] and [`HmacKey::try_new`] refuse it with a
/// [`BlankKeyError`]. [`HmacKey::new`] still makes the key (so that code
/// reading a secret from a file stays infallible) and
/// [`is_blank`](Self::is_blank) tells.
///
/// ```
/// use tracing_osprofiler::{HmacKey, HmacKeys};
///
/// assert!(HmacKey::new(" \n").is_blank());
/// assert!(HmacKey::try_new("").is_err());
/// let keys = HmacKeys::new(["", "SECRET_KEY"]);
/// assert_eq!((keys.keys().len(), keys.ignored_blank_keys()), (1, 1));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HmacKey(Arc<[u8]>);

impl HmacKey {
    /// A key from its secret bytes (for a string key, its UTF-8 bytes).
    ///
    /// A blank secret makes a key that [`HmacKeys`] never verifies with (see
    /// [Blank secrets](Self#blank-secrets)); [`try_new`](Self::try_new)
    /// refuses it instead.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        HmacKey(Arc::from(secret.as_ref()))
    }

    /// A key from its secret bytes, or an error if the secret is blank: empty
    /// or only whitespace and NUL bytes.
    ///
    /// # Errors
    ///
    /// [`BlankKeyError`] for a blank secret.
    ///
    /// ```
    /// use tracing_osprofiler::HmacKey;
    ///
    /// assert!(HmacKey::try_new("SECRET_KEY").is_ok());
    /// let error = HmacKey::try_new("  ").unwrap_err();
    /// assert_eq!(error.position(), None);
    /// ```
    pub fn try_new(secret: impl AsRef<[u8]>) -> Result<Self, BlankKeyError> {
        let key = HmacKey::new(secret);
        if key.is_blank() {
            return Err(BlankKeyError { position: None });
        }
        Ok(key)
    }

    /// Whether the secret is empty or only whitespace and NUL bytes: a key
    /// anyone can guess, never used to verify.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        // Only text can be whitespace; a secret that is not UTF-8 has other
        // bytes in it.
        std::str::from_utf8(&self.0)
            .is_ok_and(|text| text.chars().all(|c| c.is_whitespace() || c == '\0'))
    }

    fn mac(&self, algorithm: HmacAlgorithm, message: &[u8]) -> MacState {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match algorithm {
            HmacAlgorithm::Sha1 => {
                let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&self.0)
                    .expect("HMAC takes keys of any length");
                mac.update(message);
                MacState::Sha1(mac)
            }
            HmacAlgorithm::Sha256 => {
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
                    .expect("HMAC takes keys of any length");
                mac.update(message);
                MacState::Sha256(mac)
            }
        }
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl From<&str> for HmacKey {
    fn from(secret: &str) -> Self {
        HmacKey::new(secret)
    }
}

impl From<String> for HmacKey {
    fn from(secret: String) -> Self {
        HmacKey::new(secret)
    }
}

enum MacState {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
}

impl MacState {
    fn verify(self, expected: &[u8]) -> bool {
        // `verify_slice` compares in constant time.
        match self {
            MacState::Sha1(mac) => mac.verify_slice(expected).is_ok(),
            MacState::Sha256(mac) => mac.verify_slice(expected).is_ok(),
        }
    }

    fn hex(self) -> String {
        let bytes = match self {
            MacState::Sha1(mac) => mac.finalize().into_bytes().to_vec(),
            MacState::Sha256(mac) => mac.finalize().into_bytes().to_vec(),
        };
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes lower-case hex only: osprofiler compares hex text, so an upper-case
/// signature is not the same signature.
fn decode_lower_hex(text: &[u8], out: &mut [u8; 32]) -> Option<usize> {
    if text.len() % 2 != 0 || text.len() / 2 > out.len() {
        return None;
    }
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(text.len() / 2)
}

/// The accepted secrets and algorithms of a service: what verifies incoming
/// tokens.
///
/// Several keys may be accepted at once, so a key can be rotated without a
/// flag day: the first key that verifies a token becomes that request's key,
/// and downstream calls are signed with it.
///
/// | setting | default |
/// |---|---|
/// | keys | none (no token verifies) |
/// | blank keys (empty, whitespace, NUL bytes) | never used: left out by [`new`](Self::new) and counted ([`ignored_blank_keys`](Self::ignored_blank_keys)), refused by [`try_new`](Self::try_new) |
/// | HMAC-SHA1 accepted | yes |
/// | HMAC-SHA256 accepted | yes |
///
/// ```
/// use tracing_osprofiler::HmacKeys;
///
/// // osprofiler's `hmac_keys` option: comma separated, whitespace stripped.
/// let keys = HmacKeys::from_comma_separated("SECRET_KEY, older-key");
/// let profile = keys
///     .verify(
///         "eyJiYXNlX2lkIjogIjZmOWUzYzFhLTJiNGQtNGU4Zi05YTBiLTFjMmQzZTRmNWE2YiJ9",
///         "d29648d0dacbf236f51755e51cc054eb5350b57a",
///     )
///     .expect("signed with SECRET_KEY");
/// assert_eq!(profile.trace_info().base_id().to_string(), "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b");
/// ```
#[derive(Clone, Debug)]
pub struct HmacKeys {
    /// Never holds a blank key: every constructor leaves them out.
    keys: Arc<[HmacKey]>,
    ignored_blank: usize,
    sha1: bool,
    sha256: bool,
}

impl Default for HmacKeys {
    fn default() -> Self {
        HmacKeys {
            keys: Arc::from(Vec::new()),
            ignored_blank: 0,
            sha1: true,
            sha256: true,
        }
    }
}

impl HmacKeys {
    /// Accepts tokens signed with any of `keys`, tried in order.
    ///
    /// Blank keys (empty, or only whitespace and NUL bytes: see
    /// [`HmacKey`]) are left out, since a token signed with one is a
    /// forgery anyone can make; [`ignored_blank_keys`](Self::ignored_blank_keys)
    /// says how many were. [`try_new`](Self::try_new) refuses them instead.
    ///
    /// ```
    /// use tracing_osprofiler::HmacKeys;
    ///
    /// // A secret read from an unset variable is an empty string.
    /// let keys = HmacKeys::new([String::new()]);
    /// assert!(keys.is_empty());
    /// assert_eq!(keys.ignored_blank_keys(), 1);
    /// ```
    pub fn new<I>(keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<HmacKey>,
    {
        let mut ignored_blank = 0;
        let keys = keys
            .into_iter()
            .map(Into::into)
            .filter(|key: &HmacKey| {
                let blank = key.is_blank();
                ignored_blank += usize::from(blank);
                !blank
            })
            .collect();
        HmacKeys {
            keys,
            ignored_blank,
            ..HmacKeys::default()
        }
    }

    /// Accepts tokens signed with any of `keys`, tried in order, or says
    /// which key is blank (empty, or only whitespace and NUL bytes).
    ///
    /// # Errors
    ///
    /// [`BlankKeyError`] with the position of the first blank key.
    ///
    /// ```
    /// use tracing_osprofiler::HmacKeys;
    ///
    /// assert!(HmacKeys::try_new(["SECRET_KEY", "older-key"]).is_ok());
    /// let error = HmacKeys::try_new(["SECRET_KEY", " "]).unwrap_err();
    /// assert_eq!(error.position(), Some(1));
    /// assert_eq!(
    ///     error.to_string(),
    ///     "HMAC key at position 1 (counting from 0) is blank: empty or only whitespace \
    ///      and NUL bytes, a key anyone could sign with"
    /// );
    /// ```
    pub fn try_new<I>(keys: I) -> Result<Self, BlankKeyError>
    where
        I: IntoIterator,
        I::Item: Into<HmacKey>,
    {
        let keys = keys
            .into_iter()
            .map(Into::into)
            .enumerate()
            .map(|(position, key): (usize, HmacKey)| {
                if key.is_blank() {
                    Err(BlankKeyError {
                        position: Some(position),
                    })
                } else {
                    Ok(key)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(HmacKeys {
            keys,
            ..HmacKeys::default()
        })
    }

    /// Parses osprofiler's `hmac_keys` option: keys separated by commas, the
    /// whitespace around each one stripped, empty entries ignored (as
    /// osprofiler does; they are not counted in
    /// [`ignored_blank_keys`](Self::ignored_blank_keys), since an unset option
    /// or a trailing comma is the option's own syntax). An entry made only of
    /// NUL bytes is blank too and left out, and that one is counted.
    #[must_use]
    pub fn from_comma_separated(keys: &str) -> Self {
        HmacKeys::new(
            keys.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(HmacKey::new),
        )
    }

    /// How many blank keys [`new`](Self::new) left out. Not 0 almost always
    /// means a secret was not set where it was read from; check it at
    /// startup.
    #[must_use]
    pub fn ignored_blank_keys(&self) -> usize {
        self.ignored_blank
    }

    /// Whether HMAC-SHA1 signatures are accepted (default: yes).
    #[must_use]
    pub fn with_sha1(mut self, accept: bool) -> Self {
        self.sha1 = accept;
        self
    }

    /// Whether HMAC-SHA256 signatures are accepted (default: yes).
    #[must_use]
    pub fn with_sha256(mut self, accept: bool) -> Self {
        self.sha256 = accept;
        self
    }

    /// Whether tokens signed with `algorithm` are accepted.
    #[must_use]
    pub fn accepts(&self, algorithm: HmacAlgorithm) -> bool {
        match algorithm {
            HmacAlgorithm::Sha1 => self.sha1,
            HmacAlgorithm::Sha256 => self.sha256,
        }
    }

    /// The configured keys, in the order they are tried.
    #[must_use]
    pub fn keys(&self) -> &[HmacKey] {
        &self.keys
    }

    /// Whether no key is configured (then no token verifies).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies the two header values as docs/protocol.md (*The signed
    /// headers*) says and returns the [`Profile`] to start, or why the request
    /// is to be served unprofiled.
    ///
    /// Takes bytes or text, since header values are not always UTF-8.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] that sends the request on unprofiled.
    pub fn verify(
        &self,
        trace_info: impl AsRef<[u8]>,
        trace_hmac: impl AsRef<[u8]>,
    ) -> Result<Profile, Rejection> {
        let info = trace_info.as_ref();
        let hmac = trace_hmac.as_ref();
        if info.is_empty() || hmac.is_empty() {
            return Err(Rejection::Missing);
        }
        if info.len() > MAX_TRACE_INFO_LEN || hmac.len() > MAX_TRACE_HMAC_LEN {
            return Err(Rejection::Oversized);
        }
        let hmac = hmac.trim_ascii();
        if hmac.is_empty() {
            return Err(Rejection::Missing);
        }
        let algorithm = HmacAlgorithm::from_hex_len(hmac.len()).ok_or(Rejection::BadSignature)?;
        if !self.accepts(algorithm) {
            return Err(Rejection::BadSignature);
        }
        let mut expected = [0u8; 32];
        let n = decode_lower_hex(hmac, &mut expected).ok_or(Rejection::BadSignature)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.mac(algorithm, info).verify(&expected[..n]))
            .ok_or(Rejection::BadSignature)?;
        let trace_info = TraceInfo::decode(info).ok_or(Rejection::Malformed)?;
        Ok(Profile {
            trace_info,
            signer: Signer {
                key: key.clone(),
                algorithm,
            },
        })
    }
}

/// A blank key was given where a secret was expected: empty, or only
/// whitespace and NUL bytes, which HMAC treats as the empty key.
///
/// Returned by [`HmacKey::try_new`] and [`HmacKeys::try_new`]; it never
/// holds any key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlankKeyError {
    position: Option<usize>,
}

impl BlankKeyError {
    /// The position of the blank key in the list given to
    /// [`HmacKeys::try_new`], counting from 0; `None` from
    /// [`HmacKey::try_new`].
    #[must_use]
    pub const fn position(&self) -> Option<usize> {
        self.position
    }
}

impl fmt::Display for BlankKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(
                f,
                "HMAC key at position {position} (counting from 0) is blank: "
            )?,
            None => f.write_str("HMAC key is blank: ")?,
        }
        f.write_str("empty or only whitespace and NUL bytes, a key anyone could sign with")
    }
}

impl std::error::Error for BlankKeyError {}

/// Why a token was not accepted. Every case means "serve the request
/// unprofiled"; the reason is for counters, never for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// A header is absent or empty.
    Missing,
    /// A header is longer than [`MAX_TRACE_INFO_LEN`] / [`MAX_TRACE_HMAC_LEN`].
    Oversized,
    /// The signature does not verify under any accepted key and algorithm
    /// (wrong key, tampered info, upper-case or non-hex text, disabled
    /// algorithm).
    BadSignature,
    /// The signature verifies, but the info is not base64 of a JSON object
    /// with a UUID `base_id`, an optional UUID `parent_id` and no other key.
    Malformed,
}

impl Rejection {
    /// A short stable label, for metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Oversized => "oversized",
            Rejection::BadSignature => "bad_signature",
            Rejection::Malformed => "malformed",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Missing => "profile token headers missing or empty",
            Rejection::Oversized => "profile token header too long",
            Rejection::BadSignature => "profile token signature does not verify",
            Rejection::Malformed => "profile token is signed but malformed",
        })
    }
}

impl std::error::Error for Rejection {}

/// The ids a caller hands to a callee: the request's `base_id` and the
/// `trace_id` of the point making the call (`parent_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceInfo {
    base_id: Id,
    parent_id: Option<Id>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceInfoJson<'a> {
    #[serde(borrow)]
    base_id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    parent_id: Option<std::borrow::Cow<'a, str>>,
}

impl TraceInfo {
    /// Trace info for a request with this `base_id`, called from `parent_id`.
    #[must_use]
    pub const fn new(base_id: Id, parent_id: Option<Id>) -> Self {
        TraceInfo { base_id, parent_id }
    }

    /// Trace info for a brand-new request: a fresh `base_id`, no parent.
    #[must_use]
    pub fn new_request() -> Self {
        TraceInfo::new(Id::new_v4(), None)
    }

    /// The request's id.
    #[must_use]
    pub const fn base_id(&self) -> Id {
        self.base_id
    }

    /// The caller's point, if the caller sent one.
    #[must_use]
    pub const fn parent_id(&self) -> Option<Id> {
        self.parent_id
    }

    /// The `parent_id` of the first point of this request in this service:
    /// the caller's point, or else `base_id` (docs/protocol.md, *The ids*).
    #[must_use]
    pub fn root_parent_id(&self) -> Id {
        self.parent_id.unwrap_or(self.base_id)
    }

    /// The JSON text osprofiler's client writes (`json.dumps` separators).
    #[must_use]
    pub fn to_json(&self) -> String {
        match self.parent_id {
            Some(parent) => format!(
                r#"{{"base_id": "{}", "parent_id": "{}"}}"#,
                self.base_id, parent
            ),
            None => format!(r#"{{"base_id": "{}"}}"#, self.base_id),
        }
    }

    /// Decodes an `X-Trace-Info` value (no signature check).
    fn decode(info: &[u8]) -> Option<TraceInfo> {
        let json = URL_SAFE_LENIENT.decode(info).ok()?;
        // serde's derived struct also accepts a JSON array of the fields in
        // order (`["<base_id>"]`); osprofiler wants an object.
        if json.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let parsed: TraceInfoJson<'_> = serde_json::from_slice(&json).ok()?;
        let base_id = Id::parse(&parsed.base_id).ok()?;
        let parent_id = match parsed.parent_id {
            Some(text) => Some(Id::parse(&text).ok()?),
            None => None,
        };
        Some(TraceInfo { base_id, parent_id })
    }
}

/// The two header values of a signed token.
///
/// Its `Debug` output shows the info but not the signature, since a valid
/// signature can be replayed.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    trace_info: String,
    trace_hmac: String,
}

impl TraceHeaders {
    /// The `X-Trace-Info` value.
    #[must_use]
    pub fn trace_info(&self) -> &str {
        &self.trace_info
    }

    /// The `X-Trace-HMAC` value.
    #[must_use]
    pub fn trace_hmac(&self) -> &str {
        &self.trace_hmac
    }

    /// Both headers as `(name, value)` pairs, for any transport.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (X_TRACE_INFO, self.trace_info.as_str()),
            (X_TRACE_HMAC, self.trace_hmac.as_str()),
        ]
        .into_iter()
    }
}

impl fmt::Debug for TraceHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceHeaders")
            .field("trace_info", &self.trace_info)
            .field("trace_hmac", &"<redacted>")
            .finish()
    }
}

/// A key and an algorithm to sign tokens with.
///
/// A [blank](HmacKey#blank-secrets) key signs tokens that no [`HmacKeys`]
/// accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    key: HmacKey,
    algorithm: HmacAlgorithm,
}

impl Signer {
    /// Signs with `key` using `algorithm`.
    pub fn new(key: impl Into<HmacKey>, algorithm: HmacAlgorithm) -> Self {
        Signer {
            key: key.into(),
            algorithm,
        }
    }

    /// The algorithm used.
    #[must_use]
    pub const fn algorithm(&self) -> HmacAlgorithm {
        self.algorithm
    }

    /// The key used.
    #[must_use]
    pub const fn key(&self) -> &HmacKey {
        &self.key
    }

    /// Signs `info` as osprofiler's `signed_pack` does.
    #[must_use]
    pub fn sign(&self, info: &TraceInfo) -> TraceHeaders {
        let trace_info = URL_SAFE.encode(info.to_json());
        let trace_hmac = self.key.mac(self.algorithm, trace_info.as_bytes()).hex();
        TraceHeaders {
            trace_info,
            trace_hmac,
        }
    }
}

/// The right to profile one request: its [`TraceInfo`] and the [`Signer`]
/// for the calls it makes downstream.
///
/// A `Profile` comes from [`HmacKeys::verify`] (an incoming token) or is made
/// by trusted code with [`Profile::new`] (a batch job, a queue consumer, a
/// test). [`Profile::start`] then makes a new span the request's root trace
/// point.
#[derive(Clone, Debug)]
pub struct Profile {
    trace_info: TraceInfo,
    signer: Signer,
}

impl Profile {
    /// A profile of a new request: a fresh `base_id`, no parent. Downstream
    /// calls are signed by `signer`.
    #[must_use]
    pub fn new(signer: Signer) -> Self {
        Profile::with_trace_info(TraceInfo::new_request(), signer)
    }

    /// A profile that continues a request described by `trace_info` (for
    /// example taken from a message's headers by trusted code).
    #[must_use]
    pub const fn with_trace_info(trace_info: TraceInfo, signer: Signer) -> Self {
        Profile { trace_info, signer }
    }

    /// The request's ids as received.
    #[must_use]
    pub const fn trace_info(&self) -> &TraceInfo {
        &self.trace_info
    }

    /// The signer for downstream calls: the key and algorithm that verified
    /// the incoming token.
    #[must_use]
    pub const fn signer(&self) -> &Signer {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_keys() -> HmacKeys {
        HmacKeys::new(["SECRET_KEY"])
    }

    const INFO: &str = "eyJiYXNlX2lkIjogIjZmOWUzYzFhLTJiNGQtNGU4Zi05YTBiLTFjMmQzZTRmNWE2YiIsICJwYXJlbnRfaWQiOiAiNmY5ZTNjMWEtMmI0ZC00ZThmLTlhMGItMWMyZDNlNGY1YTZiIn0=";
    const HMAC: &str = "190b54c21acd03e98cde818c86b92ea47a31fefe";

    #[test]
    fn signing_reproduces_osprofiler_bytes() {
        let base = Id::parse("6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b").unwrap();
        let headers =
            Signer::new("SECRET_KEY", HmacAlgorithm::Sha1).sign(&TraceInfo::new(base, Some(base)));
        assert_eq!(headers.trace_info(), INFO);
        assert_eq!(headers.trace_hmac(), HMAC);
    }

    #[test]
    fn hmac_whitespace_is_trimmed_but_case_is_not() {
        assert!(vector_keys().verify(INFO, format!("  {HMAC}\t")).is_ok());
        assert_eq!(
            vector_keys().verify(INFO, HMAC.to_uppercase()).unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn sha256_round_trip_and_can_be_disabled() {
        let signer = Signer::new("k", HmacAlgorithm::Sha256);
        let headers = signer.sign(&TraceInfo::new_request());
        assert_eq!(headers.trace_hmac().len(), 64);
        let keys = HmacKeys::new(["other", "k"]);
        let profile = keys
            .verify(headers.trace_info(), headers.trace_hmac())
            .unwrap();
        assert_eq!(profile.signer(), &signer);
        assert_eq!(
            keys.with_sha256(false)
                .verify(headers.trace_info(), headers.trace_hmac())
                .unwrap_err(),
            Rejection::BadSignature
        );
    }

    #[test]
    fn oversized_is_rejected_before_hmac() {
        let long = "A".repeat(MAX_TRACE_INFO_LEN + 1);
        assert_eq!(
            vector_keys().verify(&long, HMAC).unwrap_err(),
            Rejection::Oversized
        );
    }

    #[test]
    fn signed_but_malformed_is_rejected() {
        let signer = Signer::new("SECRET_KEY", HmacAlgorithm::Sha1);
        for json in [
            "[1, 2]",
            "not json",
            r#"{"base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b", "extra": 1}"#,
            r#"{"base_id": 42}"#,
            r#"{"base_id": ""}"#,
            r#"{"parent_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"}"#,
        ] {
            let info = URL_SAFE.encode(json);
            let hmac = signer.key.mac(HmacAlgorithm::Sha1, info.as_bytes()).hex();
            assert_eq!(
                vector_keys().verify(&info, &hmac).unwrap_err(),
                Rejection::Malformed,
                "{json}"
            );
        }
    }

    #[test]
    fn blank_means_empty_whitespace_or_nul_only() {
        for blank in [
            &b""[..],
            b" ",
            b"\t\r\n",
            b"\0",
            b"\0 \0",
            "\u{3000}".as_bytes(),
        ] {
            assert!(HmacKey::new(blank).is_blank(), "{blank:?}");
            assert_eq!(
                HmacKey::try_new(blank),
                Err(BlankKeyError { position: None })
            );
        }
        for secret in [&b"k"[..], b" k ", b"\0k", &[0xff], &[0x20, 0xa0]] {
            assert!(!HmacKey::new(secret).is_blank(), "{secret:?}");
            assert!(HmacKey::try_new(secret).is_ok(), "{secret:?}");
        }
    }

    #[test]
    fn blank_keys_are_left_out_and_counted_or_refused() {
        let keys = HmacKeys::new(["", "a", " ", "b", "\0"]);
        assert_eq!(keys.keys(), &[HmacKey::new("a"), HmacKey::new("b")]);
        assert_eq!(keys.ignored_blank_keys(), 3);
        assert_eq!(HmacKeys::new(["a"]).ignored_blank_keys(), 0);
        assert_eq!(
            HmacKeys::try_new(["a", "b", "\t"]).unwrap_err().position(),
            Some(2)
        );
        assert_eq!(HmacKeys::try_new(["a", "b"]).unwrap().keys().len(), 2);
        // The option's own syntax is not a mistake; a NUL entry is.
        assert_eq!(
            HmacKeys::from_comma_separated(" , a,").ignored_blank_keys(),
            0
        );
        assert_eq!(
            HmacKeys::from_comma_separated("a,\0").ignored_blank_keys(),
            1
        );
        let error = HmacKeys::try_new(["hunter2", ""]).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let keys = HmacKeys::new(["hunter2"]);
        assert!(!format!("{keys:?}").contains("hunter2"));
        let headers = Signer::new("hunter2", HmacAlgorithm::Sha1).sign(&TraceInfo::new_request());
        assert!(!format!("{headers:?}").contains(headers.trace_hmac()));
    }
}
