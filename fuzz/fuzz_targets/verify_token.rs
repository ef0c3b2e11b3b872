//! `cargo +nightly fuzz run verify_token`: verifying arbitrary header bytes
//! must never panic, must reject oversized values before any HMAC work, and
//! must accept only tokens that really verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracing_osprofiler::token::MAX_TRACE_INFO_LEN;
use tracing_osprofiler::{HmacKeys, Rejection};

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into the two header values.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (hmac, info) = rest.split_at(at);
    let keys = HmacKeys::new(["SECRET_KEY", "other"]);
    match keys.verify(info, hmac) {
        Ok(profile) => {
            // Only a real signature gets here: re-signing must reproduce it.
            let again = profile.signer().sign(profile.trace_info());
            assert!(keys.verify(again.trace_info(), again.trace_hmac()).is_ok());
        }
        Err(Rejection::Oversized) => assert!(info.len() > MAX_TRACE_INFO_LEN || hmac.len() > 128),
        Err(_) => {}
    }
});
