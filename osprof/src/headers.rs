//! `osprof headers`: the two headers that ask a service to profile one
//! request, signed with a shared key, written so they paste into `curl`.
//!
//! ```
//! use osprof::headers::{curl_args, sign};
//! use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id};
//!
//! let base = Id::parse("6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b")?;
//! let headers = sign("SECRET_KEY", Some(base), None, HmacAlgorithm::Sha1);
//! let args = curl_args(&headers);
//! assert!(args.starts_with("-H 'X-Trace-Info: "));
//! // The service holding the key accepts them.
//! let profile = HmacKeys::from_comma_separated("SECRET_KEY")
//!     .verify(headers.trace_info(), headers.trace_hmac())
//!     .unwrap();
//! assert_eq!(profile.trace_info().base_id(), base);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use tracing_osprofiler::token::{HmacAlgorithm, Signer, TraceHeaders, TraceInfo};
use tracing_osprofiler::Id;

/// Signs a trace info for `base_id` (a fresh one when `None`) and
/// `parent_id` (none: the service's first point is a root) with `key`.
#[must_use]
pub fn sign(
    key: &str,
    base_id: Option<Id>,
    parent_id: Option<Id>,
    algorithm: HmacAlgorithm,
) -> TraceHeaders {
    let info = match base_id {
        Some(base) => TraceInfo::new(base, parent_id),
        None => TraceInfo::new(Id::new_v4(), parent_id),
    };
    Signer::new(key, algorithm).sign(&info)
}

/// `-H 'X-Trace-Info: …' -H 'X-Trace-HMAC: …'`: both values are base64 and
/// hex, so single quotes need no escaping.
#[must_use]
pub fn curl_args(headers: &TraceHeaders) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("-H '{name}: {value}'"))
        .collect::<Vec<_>>()
        .join(" ")
}
