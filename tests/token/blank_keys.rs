//! Blank keys: a key that is empty, only whitespace, or only NUL bytes (HMAC
//! pads a short key with zeros, so those are the empty key) must never verify
//! anything, however the keys were built, or anyone could forge a token.

use tracing_osprofiler::{HmacAlgorithm, HmacKey, HmacKeys, Rejection, Signer, TraceInfo};

/// Secrets that are all equivalent to "no secret at all".
const BLANK: &[&str] = &["", " ", "  ", "\t\n", "\0", "\0\0\0", " \0", "\u{3000}"];

fn forged(secret: &str, algorithm: HmacAlgorithm) -> tracing_osprofiler::TraceHeaders {
    Signer::new(HmacKey::new(secret), algorithm).sign(&TraceInfo::new_request())
}

/// Every way a service can be given keys, each with a blank key in it.
fn keys_with(blank: &str) -> Vec<(String, HmacKeys)> {
    vec![
        (format!("new([{blank:?}])"), HmacKeys::new([blank])),
        (
            format!("new([HmacKey::new({blank:?})])"),
            HmacKeys::new([HmacKey::new(blank)]),
        ),
        (
            format!("new([real, {blank:?}])"),
            HmacKeys::new(["SECRET_KEY", blank]),
        ),
        (
            format!("new([{blank:?}, real]) as bytes"),
            HmacKeys::new([HmacKey::new(blank.as_bytes()), HmacKey::new(b"SECRET_KEY")]),
        ),
        (
            format!("from_comma_separated({blank:?})"),
            HmacKeys::from_comma_separated(blank),
        ),
        (
            format!("from_comma_separated(\"SECRET_KEY,{blank:?}\")"),
            HmacKeys::from_comma_separated(&format!("SECRET_KEY,{blank}")),
        ),
    ]
}

#[test]
fn a_token_signed_with_a_blank_key_never_verifies() {
    for &blank in BLANK {
        for signed_with in ["", blank] {
            for algorithm in [HmacAlgorithm::Sha1, HmacAlgorithm::Sha256] {
                let token = forged(signed_with, algorithm);
                for (how, keys) in keys_with(blank) {
                    assert_eq!(
                        keys.verify(token.trace_info(), token.trace_hmac())
                            .map(|_| ()),
                        Err(Rejection::BadSignature),
                        "keys {how}: a token signed with {signed_with:?} ({algorithm:?}) verified"
                    );
                }
            }
        }
    }
}

#[test]
fn a_real_key_next_to_a_blank_one_still_verifies() {
    let token = forged("SECRET_KEY", HmacAlgorithm::Sha1);
    for &blank in BLANK {
        let keys = HmacKeys::new([blank, "SECRET_KEY"]);
        let profile = keys
            .verify(token.trace_info(), token.trace_hmac())
            .expect("the real key verifies");
        assert_eq!(profile.signer().key(), &HmacKey::new("SECRET_KEY"));
    }
}

#[test]
fn a_blank_key_is_visible_to_the_caller() {
    for &blank in BLANK {
        let keys = HmacKeys::new(["SECRET_KEY", blank]);
        assert_eq!(keys.ignored_blank_keys(), 1, "{blank:?}");
        assert_eq!(keys.keys(), &[HmacKey::new("SECRET_KEY")]);
        let error = HmacKeys::try_new(["SECRET_KEY", blank]).unwrap_err();
        assert_eq!(error.position(), Some(1), "{blank:?}");
        assert!(HmacKey::new(blank).is_blank());
        assert!(HmacKey::try_new(blank).is_err());
    }
}
