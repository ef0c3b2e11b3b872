//! Hostile tokens: arbitrary header bytes never panic the verifier, and
//! tokens signed with a valid key but carrying odd ids are served unprofiled
//! (`Rejection::Malformed`), as the `ids` module documents.

use crate::support;

use base64::Engine as _;
use proptest::prelude::*;
use support::hmac_sha1_hex;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Rejection, Signer, TraceInfo};

const KEY: &str = "SECRET_KEY";

/// Signs arbitrary JSON text with the valid key, as a key holder could.
fn signed(json: &str) -> (String, String) {
    let info = base64::engine::general_purpose::URL_SAFE.encode(json);
    let hmac = hmac_sha1_hex(KEY.as_bytes(), info.as_bytes());
    (info, hmac)
}

#[test]
fn the_test_signer_agrees_with_the_library() {
    let info = TraceInfo::new_request();
    let headers = Signer::new(KEY, HmacAlgorithm::Sha1).sign(&info);
    assert_eq!(
        hmac_sha1_hex(KEY.as_bytes(), headers.trace_info().as_bytes()),
        headers.trace_hmac()
    );
}

#[test]
fn signed_tokens_with_odd_ids_are_malformed() {
    let keys = HmacKeys::new([KEY]);
    let long = "a".repeat(3000);
    let cases = [
        r#"{"base_id": ""}"#.to_string(),
        r#"{"base_id": 42}"#.to_string(),
        r#"{"base_id": "42"}"#.to_string(),
        r#"{"base_id": " 6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"}"#.to_string(),
        r#"{"base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b "}"#.to_string(),
        format!(r#"{{"base_id": "{long}"}}"#),
        r#"{"base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b", "parent_id": "x"}"#.to_string(),
        r#"{"base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b", "parent_id": 7}"#.to_string(),
        r#"{"base_id": null}"#.to_string(),
        r#"{"base_id": ["6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"]}"#.to_string(),
        r#"{"base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b", "base_id": "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b"}"#.to_string(),
        "\u{0}".to_string(),
    ];
    for json in cases {
        let (info, hmac) = signed(&json);
        assert_eq!(
            keys.verify(&info, &hmac).unwrap_err(),
            Rejection::Malformed,
            "{json}"
        );
    }
}

#[test]
fn accepted_odd_but_valid_forms() {
    let keys = HmacKeys::new([KEY]);
    for (json, base) in [
        (
            r#"{"base_id": "6F9E3C1A-2B4D-4E8F-9A0B-1C2D3E4F5A6B", "parent_id": null}"#,
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
        ),
        (
            r#"{"base_id":"urn:uuid:6f9e3c1a2b4d4e8f9a0b1c2d3e4f5a6b"}"#,
            "6f9e3c1a-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
        ),
    ] {
        let (info, hmac) = signed(json);
        let profile = keys.verify(&info, &hmac).expect(json);
        assert_eq!(profile.trace_info().base_id().to_string(), base);
        assert_eq!(profile.trace_info().parent_id(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_bytes_never_panic(
        info in proptest::collection::vec(any::<u8>(), 0..6000),
        hmac in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let keys = HmacKeys::new([KEY, "other"]);
        let result = keys.verify(&info, &hmac);
        if info.len() > tracing_osprofiler::token::MAX_TRACE_INFO_LEN {
            prop_assert!(matches!(result, Err(Rejection::Oversized | Rejection::Missing)));
        }
    }

    #[test]
    fn arbitrary_signed_json_never_panics(json in ".{0,300}") {
        let keys = HmacKeys::new([KEY]);
        let (info, hmac) = signed(&json);
        // A key holder can send anything; it either verifies into valid ids or is Malformed.
        match keys.verify(&info, &hmac) {
            Ok(profile) => prop_assert_eq!(profile.trace_info().base_id().to_string().len(), 36),
            // The empty JSON text encodes to an empty header.
            Err(Rejection::Missing) => prop_assert!(json.is_empty()),
            Err(rejection) => prop_assert_eq!(rejection, Rejection::Malformed),
        }
    }
}
