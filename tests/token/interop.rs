//! Token interop with the real Python osprofiler 4.4.0: the recorded test
//! vectors, headers made by osprofiler's client verified here, headers made
//! here accepted by osprofiler's `signed_unpack` and `WsgiMiddleware`, and
//! one table of valid and invalid tokens judged by both sides.
//!
//! Needs Python with osprofiler (see `tests/common/mod.rs`); never skips.

use crate::support::python as common;

use crate::support;

use std::path::{Path, PathBuf};
use support::hmac_sha1_hex;

use base64::Engine as _;
use serde_json::{json, Value};
use tracing_osprofiler::token::MAX_TRACE_INFO_LEN;
use tracing_osprofiler::{HmacAlgorithm, HmacKeys, Id, Rejection, Signer, TraceInfo};

fn vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/trace_headers.json")
}

fn shared_vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/vectors/trace_headers.json")
}

/// The repository's copy, else the shared one beside the clone.
fn vectors() -> Value {
    let path = [vectors_path(), shared_vectors_path()]
        .into_iter()
        .find(|p| p.exists())
        .expect("tests/vectors/trace_headers.json or ../shared/spec/vectors/trace_headers.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn python_json(script: &str, args: &[&str]) -> Value {
    let output = common::run_python(script, args);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

#[test]
fn vector_copy_matches_the_shared_spec() {
    let shared = shared_vectors_path();
    if shared.exists() {
        assert_eq!(
            std::fs::read(vectors_path()).unwrap(),
            std::fs::read(&shared).unwrap(),
            "tests/vectors/trace_headers.json differs from {}",
            shared.display()
        );
    }
    // The copy is what the other tests read: it must be there regardless.
    assert!(vectors_path().exists());
}

#[test]
fn recorded_vectors_verify_and_are_reproduced_byte_for_byte() {
    let v = vectors();
    let valid = v["valid"].as_array().unwrap();
    assert!(valid.len() >= 4);
    for case in valid {
        let key = case["key"].as_str().unwrap();
        let info = case["x_trace_info"].as_str().unwrap();
        let hmac = case["x_trace_hmac"].as_str().unwrap();
        let base = Id::parse(case["base_id"].as_str().unwrap()).unwrap();
        let parent = case["parent_id"].as_str().map(|p| Id::parse(p).unwrap());
        // Alone, and as the second of several keys (rotation).
        for keys in [HmacKeys::new([key]), HmacKeys::new(["unrelated-key", key])] {
            let profile = keys
                .verify(info, hmac)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(profile.trace_info().base_id(), base);
            assert_eq!(profile.trace_info().parent_id(), parent);
            assert_eq!(profile.signer(), &Signer::new(key, HmacAlgorithm::Sha1));
        }
        let ours = Signer::new(key, HmacAlgorithm::Sha1).sign(&TraceInfo::new(base, parent));
        assert_eq!(ours.trace_info(), info);
        assert_eq!(ours.trace_hmac(), hmac);
        assert_eq!(
            TraceInfo::new(base, parent).to_json(),
            case["json"].as_str().unwrap()
        );
    }
    let keys = HmacKeys::new(
        v["invalid_for_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned()),
    );
    let invalid = v["invalid"].as_array().unwrap();
    assert!(!invalid.is_empty());
    for case in invalid {
        let verdict = keys.verify(
            case["x_trace_info"].as_str().unwrap(),
            case["x_trace_hmac"].as_str().unwrap(),
        );
        assert_eq!(verdict.unwrap_err(), Rejection::BadSignature, "{case}");
    }
}

const PY_CLIENT_HEADERS: &str = r#"
import json, sys
from osprofiler import profiler, web
out = []
for case in json.loads(sys.argv[1]):
    profiler.clean()
    p = profiler.init(case["key"], base_id=case["base_id"], parent_id=case["parent_id"])
    if case["nested"]:
        profiler.start("call")
    out.append({"headers": web.get_trace_id_headers(), "current": p.get_id()})
    profiler.clean()
print(json.dumps(out))
"#;

/// (1) Headers from osprofiler's client (`get_trace_id_headers`) verify here
/// with the ids it meant.
#[test]
fn osprofiler_client_headers_are_accepted() {
    let keys = ["SECRET_KEY", "my-hmac-key", "clé-secrète-ключ", " spaced "];
    let mut cases = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        for nested in [false, true] {
            let base = Id::new_v4();
            let parent = (i % 2 == 0).then(Id::new_v4);
            cases.push(json!({
                "key": key,
                "base_id": base.to_string(),
                "parent_id": parent.map(|p| p.to_string()),
                "nested": nested,
            }));
        }
    }
    let results = python_json(
        PY_CLIENT_HEADERS,
        &[&Value::from(cases.clone()).to_string()],
    );
    for (case, result) in cases.iter().zip(results.as_array().unwrap()) {
        let headers = &result["headers"];
        let info = headers["X-Trace-Info"].as_str().expect("osprofiler signed");
        let hmac = headers["X-Trace-HMAC"].as_str().unwrap();
        let key = case["key"].as_str().unwrap();
        // Several keys, the right one last: rotation on the receiving side.
        let profile = HmacKeys::new(["older", key])
            .verify(info, hmac)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            profile.trace_info().base_id().to_string(),
            case["base_id"].as_str().unwrap()
        );
        // osprofiler sends its current point as parent_id: the caller's
        // parent (or base_id) at the top, the started point when nested.
        let expected_parent = result["current"].as_str().unwrap();
        assert_eq!(
            profile.trace_info().parent_id().unwrap().to_string(),
            expected_parent
        );
        if case["nested"] == false {
            let sent = case["parent_id"].as_str().or(case["base_id"].as_str());
            assert_eq!(Some(expected_parent), sent);
        }
        // And our signer, given the same ids, writes the very same headers.
        let ours = Signer::new(key, HmacAlgorithm::Sha1).sign(profile.trace_info());
        assert_eq!((ours.trace_info(), ours.trace_hmac()), (info, hmac));
    }
}

const PY_SIGNED_UNPACK: &str = r#"
import json, sys
from osprofiler import _utils
out = []
for case in json.loads(sys.argv[1]):
    out.append(_utils.signed_unpack(case["info"], case["hmac"], case["keys"]))
print(json.dumps(out))
"#;

/// (2) Headers signed here pass osprofiler's `signed_unpack` (SHA1), which
/// returns our ids and names the key; SHA256 ones it refuses.
#[test]
fn our_headers_pass_signed_unpack() {
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for key in ["SECRET_KEY", "clé-secrète-ключ", "k"] {
        for with_parent in [false, true] {
            for algorithm in [HmacAlgorithm::Sha1, HmacAlgorithm::Sha256] {
                let info = TraceInfo::new(Id::new_v4(), with_parent.then(Id::new_v4));
                let headers = Signer::new(key, algorithm).sign(&info);
                cases.push(json!({
                    "info": headers.trace_info(),
                    "hmac": headers.trace_hmac(),
                    "keys": ["rotated-out", key],
                }));
                expected.push((info, key, algorithm));
            }
        }
    }
    let results = python_json(PY_SIGNED_UNPACK, &[&Value::from(cases).to_string()]);
    for ((info, key, algorithm), result) in expected.iter().zip(results.as_array().unwrap()) {
        match algorithm {
            HmacAlgorithm::Sha1 => {
                let mut want = json!({
                    "base_id": info.base_id().to_string(),
                    "hmac_key": key,
                });
                if let Some(parent) = info.parent_id() {
                    want["parent_id"] = parent.to_string().into();
                }
                assert_eq!(result, &want);
            }
            _ => assert_eq!(result, &Value::Null, "osprofiler has no SHA256"),
        }
    }
}

/// The server's keys on both sides: rotation, the request key second.
const SERVER_KEYS: &str = "NEW_KEY, SECRET_KEY";

const PY_MIDDLEWARE: &str = r#"
import json, sys
import webob
from osprofiler import notifier, profiler, web

cases = json.loads(sys.argv[1])
keys = sys.argv[2]
out = []
for case in cases:
    points = []
    notifier.set(lambda info, context=None: points.append(info))
    seen = {}

    def app(environ, start_response):
        p = profiler.get()
        seen["profiled"] = p is not None
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    mw = web.WsgiMiddleware(app, hmac_keys=keys, enabled=True)
    req = webob.Request.blank("/v2/servers")
    for name, value in (("HTTP_X_TRACE_INFO", case["info"]), ("HTTP_X_TRACE_HMAC", case["hmac"])):
        if value is not None:
            # WSGI carries header bytes as latin-1 text.
            req.environ[name] = bytes.fromhex(value).decode("latin-1")
    result = {"status": None, "error": None, "profiled": False, "points": []}
    try:
        resp = req.get_response(mw)
        result["status"] = resp.status_int
        result["profiled"] = seen.get("profiled", False)
    except Exception as e:
        result["error"] = type(e).__name__ + ": " + str(e)
    finally:
        profiler.clean()
    result["points"] = [
        {k: str(p[k]) for k in ("name", "base_id", "parent_id", "trace_id")} for p in points
    ]
    out.append(result)
print(json.dumps(out))
"#;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Theirs {
    /// Served with a `wsgi` trace point.
    Profiled,
    /// Served normally.
    Unprofiled,
    /// osprofiler's middleware raised (a 500 in a real server).
    Error,
}

struct Case {
    name: &'static str,
    info: Option<Vec<u8>>,
    hmac: Option<Vec<u8>>,
    ours: Result<(), Rejection>,
    theirs: Theirs,
}

fn signed(key: &str, info: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        Some(info.as_bytes().to_vec()),
        Some(hmac_sha1_hex(key.as_bytes(), info.as_bytes()).into_bytes()),
    )
}

fn signed_json(json: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    signed("SECRET_KEY", &b64(json.as_bytes()))
}

fn case(
    name: &'static str,
    (info, hmac): (Option<Vec<u8>>, Option<Vec<u8>>),
    ours: Result<(), Rejection>,
    theirs: Theirs,
) -> Case {
    Case {
        name,
        info,
        hmac,
        ours,
        theirs,
    }
}

fn table() -> Vec<Case> {
    use Rejection::*;
    use Theirs::*;
    let base = Id::new_v4();
    let parent = Id::new_v4();
    let ours = |key: &str, algorithm, parent| {
        let h = Signer::new(key, algorithm).sign(&TraceInfo::new(base, parent));
        (
            Some(h.trace_info().as_bytes().to_vec()),
            Some(h.trace_hmac().as_bytes().to_vec()),
        )
    };
    let valid = ours("SECRET_KEY", HmacAlgorithm::Sha1, Some(parent));
    let valid_info = String::from_utf8(valid.0.clone().unwrap()).unwrap();
    let valid_hmac = String::from_utf8(valid.1.clone().unwrap()).unwrap();
    let with_hmac = |hmac: Vec<u8>| (valid.0.clone(), Some(hmac));
    let mut tampered = valid_info.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let padding = " ".repeat(MAX_TRACE_INFO_LEN);
    vec![
        // Accepted by both.
        case(
            "valid, with parent_id (ours)",
            valid.clone(),
            Ok(()),
            Profiled,
        ),
        case(
            "valid, no parent_id (ours)",
            ours("SECRET_KEY", HmacAlgorithm::Sha1, None),
            Ok(()),
            Profiled,
        ),
        case(
            "valid, first of two keys",
            ours("NEW_KEY", HmacAlgorithm::Sha1, Some(parent)),
            Ok(()),
            Profiled,
        ),
        case(
            "parent_id null",
            signed_json(&format!(r#"{{"base_id": "{base}", "parent_id": null}}"#)),
            Ok(()),
            Profiled,
        ),
        case(
            "hmac with surrounding whitespace",
            with_hmac(format!(" {valid_hmac}\t").into_bytes()),
            Ok(()),
            Profiled,
        ),
        case(
            "compact JSON, other key order",
            signed_json(&format!(r#"{{"parent_id":"{parent}","base_id":"{base}"}}"#)),
            Ok(()),
            Profiled,
        ),
        // Rejected by both.
        case(
            "wrong key",
            ours("OTHER_KEY", HmacAlgorithm::Sha1, Some(parent)),
            Err(BadSignature),
            Unprofiled,
        ),
        case(
            "tampered info",
            (Some(tampered), valid.1.clone()),
            Err(BadSignature),
            Unprofiled,
        ),
        case(
            "upper-case hex",
            with_hmac(valid_hmac.to_uppercase().into_bytes()),
            Err(BadSignature),
            Unprofiled,
        ),
        case(
            "hmac one digit short",
            with_hmac(valid_hmac.as_bytes()[..39].to_vec()),
            Err(BadSignature),
            Unprofiled,
        ),
        case(
            "hmac not hex",
            with_hmac(b"z".repeat(40)),
            Err(BadSignature),
            Unprofiled,
        ),
        case(
            "bad base64",
            signed("SECRET_KEY", "not*base64!"),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "not JSON",
            signed_json("not json"),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "JSON array",
            signed_json(&format!(r#"["{base}"]"#)),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "JSON string",
            signed_json(r#""base_id""#),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "extra key",
            signed_json(&format!(
                r#"{{"base_id": "{base}", "parent_id": "{parent}", "x": 1}}"#
            )),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "no base_id",
            signed_json(&format!(r#"{{"parent_id": "{parent}"}}"#)),
            Err(Malformed),
            Unprofiled,
        ),
        case(
            "empty info",
            (Some(Vec::new()), valid.1.clone()),
            Err(Missing),
            Unprofiled,
        ),
        case(
            "empty hmac",
            with_hmac(Vec::new()),
            Err(Missing),
            Unprofiled,
        ),
        case(
            "blank hmac",
            with_hmac(b"   ".to_vec()),
            Err(Missing),
            Unprofiled,
        ),
        case("no headers", (None, None), Err(Missing), Unprofiled),
        case(
            "no hmac header",
            (valid.0.clone(), None),
            Err(Missing),
            Unprofiled,
        ),
        case(
            "SHA256 token (this crate only)",
            ours("SECRET_KEY", HmacAlgorithm::Sha256, Some(parent)),
            Ok(()),
            Unprofiled,
        ),
        // osprofiler answers a non-ASCII X-Trace-HMAC with an exception (a
        // 500); we serve unprofiled.
        case(
            "non-ASCII hmac (UTF-8)",
            with_hmac("é".repeat(20).into_bytes()),
            Err(BadSignature),
            Error,
        ),
        case(
            "non-ASCII hmac (latin-1)",
            with_hmac(vec![0xe9; 40]),
            Err(BadSignature),
            Error,
        ),
        // Deliberately stricter than osprofiler.
        case(
            "oversized info, valid signature",
            signed_json(&format!(r#"{{"base_id": "{base}"{padding}}}"#)),
            Err(Oversized),
            Profiled,
        ),
        case(
            "oversized hmac header",
            with_hmac(format!("{valid_hmac}{}", " ".repeat(200)).into_bytes()),
            Err(Oversized),
            Profiled,
        ),
        case(
            "integer base_id",
            signed_json(r#"{"base_id": 42}"#),
            Err(Malformed),
            Profiled,
        ),
        case(
            "non-UUID base_id",
            signed_json(r#"{"base_id": "request-1"}"#),
            Err(Malformed),
            Profiled,
        ),
        case(
            "non-UUID parent_id",
            signed_json(&format!(r#"{{"base_id": "{base}", "parent_id": "x"}}"#)),
            Err(Malformed),
            Profiled,
        ),
        case(
            "empty base_id",
            signed_json(r#"{"base_id": ""}"#),
            Err(Malformed),
            Profiled,
        ),
        // Deliberately more lenient: the signature covers the exact text, so
        // accepting unpadded base64 cannot admit a forged token.
        case(
            "unpadded base64",
            signed("SECRET_KEY", valid_info.trim_end_matches('=')),
            Ok(()),
            Unprofiled,
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (3) and (4): every case through our verifier and through osprofiler's
/// `WsgiMiddleware` in one run; both verdicts must be the ones the table
/// states, and where both profile, with the same ids.
#[test]
fn one_table_two_verifiers() {
    let keys = HmacKeys::from_comma_separated(SERVER_KEYS);
    let table = table();
    let input: Vec<Value> = table
        .iter()
        .map(|c| {
            json!({
                "info": c.info.as_deref().map(hex),
                "hmac": c.hmac.as_deref().map(hex),
            })
        })
        .collect();
    let results = python_json(
        PY_MIDDLEWARE,
        &[&Value::from(input).to_string(), SERVER_KEYS],
    );
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), table.len());
    let mut failures = Vec::new();
    for (c, result) in table.iter().zip(results) {
        let ours = keys.verify(
            c.info.as_deref().unwrap_or_default(),
            c.hmac.as_deref().unwrap_or_default(),
        );
        let ours_verdict = ours.as_ref().map(|_| ()).map_err(|e| *e);
        if ours_verdict != c.ours {
            failures.push(format!(
                "{}: ours {:?}, expected {:?}",
                c.name, ours_verdict, c.ours
            ));
        }
        let theirs = if !result["error"].is_null() {
            Theirs::Error
        } else if result["profiled"] == true {
            Theirs::Profiled
        } else {
            assert_eq!(result["status"], 200, "{}: {result}", c.name);
            Theirs::Unprofiled
        };
        if theirs != c.theirs {
            failures.push(format!(
                "{}: osprofiler {:?}, expected {:?}: {result}",
                c.name, theirs, c.theirs
            ));
        }
        let points = result["points"].as_array().unwrap();
        if theirs == Theirs::Profiled {
            let names: Vec<_> = points.iter().map(|p| p["name"].as_str().unwrap()).collect();
            assert_eq!(names, ["wsgi-start", "wsgi-stop"], "{}", c.name);
            // Where both accept, both see the same request.
            if let Ok(profile) = &ours {
                let info = profile.trace_info();
                assert_eq!(
                    points[0]["base_id"],
                    info.base_id().to_string(),
                    "{}",
                    c.name
                );
                assert_eq!(
                    points[0]["parent_id"],
                    info.root_parent_id().to_string(),
                    "{}",
                    c.name
                );
            }
        } else {
            assert!(points.is_empty(), "{}: {result}", c.name);
        }
    }
    assert!(
        failures.is_empty(),
        "verdicts differ:\n{}",
        failures.join("\n")
    );
}

/// (3) in detail: our headers, as a Rust service would send them to a Python
/// one, start a `wsgi` point there with our base_id and parent_id.
#[test]
fn our_headers_are_profiled_by_the_wsgi_middleware() {
    let base = Id::new_v4();
    let point = Id::new_v4();
    let headers =
        Signer::new("SECRET_KEY", HmacAlgorithm::Sha1).sign(&TraceInfo::new(base, Some(point)));
    let input = json!([{
        "info": hex(headers.trace_info().as_bytes()),
        "hmac": hex(headers.trace_hmac().as_bytes()),
    }]);
    let results = python_json(PY_MIDDLEWARE, &[&input.to_string(), SERVER_KEYS]);
    let result = &results[0];
    assert_eq!(result["status"], 200);
    assert_eq!(result["profiled"], true);
    let points = result["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert_eq!(p["base_id"], base.to_string());
        assert_eq!(p["parent_id"], point.to_string());
    }
    assert_eq!(points[0]["trace_id"], points[1]["trace_id"]);
}

/// serde's derived `Deserialize` accepts a JSON array for a struct (fields
/// in order); docs/protocol.md (*The signed headers*) requires an object. Regression test for that.
#[test]
fn signed_json_arrays_are_malformed() {
    let base = Id::new_v4();
    let parent = Id::new_v4();
    let keys = HmacKeys::new(["SECRET_KEY"]);
    for json in [
        format!(r#"["{base}"]"#),
        format!(r#"["{base}", "{parent}"]"#),
        format!(r#" ["{base}", null]"#),
    ] {
        let info = b64(json.as_bytes());
        let hmac = hmac_sha1_hex(b"SECRET_KEY", info.as_bytes());
        assert_eq!(
            keys.verify(&info, &hmac).unwrap_err(),
            Rejection::Malformed,
            "{json}"
        );
    }
    // Leading whitespace before an object is still JSON.
    let info = b64(format!(" \n{{\"base_id\": \"{base}\"}}").as_bytes());
    let hmac = hmac_sha1_hex(b"SECRET_KEY", info.as_bytes());
    assert_eq!(
        keys.verify(&info, &hmac).unwrap().trace_info().base_id(),
        base
    );
}
