//! Points of Python services, written by osprofiler's own `redis` driver:
//! `osprof` reads them in osprofiler 4.4's layout and in the older one, and
//! shows the tree and the times osprofiler's own CLI shows.

use serde_json::Value;

use crate::osprof;
use crate::python_support::run_python;
use crate::redis_support::RedisServer;

const WRITER: &str = include_str!("../../../tests/python/osprofiler_redis_requests.py");

fn python_requests(server: &RedisServer, n: usize) -> Vec<String> {
    let output = run_python(WRITER, &[&server.url(), &n.to_string()]);
    let bases: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(bases.len(), n);
    bases
}

/// `osprofiler trace show --json` for `base`.
fn osprofiler_show(url: &str, base: &str) -> Value {
    let output = run_python(
        "import sys\nfrom osprofiler.cmd.shell import main\nsys.exit(main())",
        &["trace", "show", "--json", "--connection-string", url, base],
    );
    serde_json::from_slice(&output.stdout).expect("osprofiler's JSON")
}

/// A tree as (name cut at the first '-' as osprofiler cuts it, started,
/// finished), depth first.
fn outline(node: &Value, depth: usize, out: &mut Vec<(usize, String, i64, i64)>) {
    for child in node["children"].as_array().expect("children") {
        let info = &child["info"];
        let name = info["name"].as_str().expect("name");
        out.push((
            depth,
            name.split('-').next().unwrap_or(name).to_owned(),
            info["started"].as_i64().expect("started"),
            info["finished"].as_i64().expect("finished"),
        ));
        outline(child, depth + 1, out);
    }
}

#[test]
fn python_points_read_as_osprofiler_reads_them_in_both_layouts() {
    let server = RedisServer::start();
    let bases = python_requests(&server, 3);
    let url = server.url();

    let list = osprof(&["list", "--connection-string", &url, "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let rows = list["requests"].as_array().expect("requests");
    assert_eq!(rows.len(), 3, "{list}");
    for row in rows {
        assert_eq!(row["points"], 4, "{row}");
        assert!(bases.contains(&row["base_id"].as_str().unwrap().to_owned()));
    }

    for base in &bases {
        let ours = osprof(&["show", base, "--connection-string", &url, "--json"]);
        let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
        let theirs = osprofiler_show(&url, base);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        outline(&ours, 0, &mut a);
        outline(&theirs, 0, &mut b);
        assert_eq!(a, b, "osprof's tree and times against osprofiler's");
        assert_eq!(a.len(), 4);
    }

    // The older layout: the same events, one key each.
    let base = &bases[1];
    let before = osprof(&["show", base, "--connection-string", &url]).stdout;
    let before_list = osprof(&["list", "--connection-string", &url]).stdout;
    let key = format!("osprofiler_opt:{base}");
    for doc in server.lrange(&key) {
        let v: Value = serde_json::from_str(&doc).unwrap();
        let legacy_key = format!(
            "osprofiler:{}_{}_{}",
            v["base_id"].as_str().unwrap(),
            v["trace_id"].as_str().unwrap(),
            v["timestamp"].as_str().unwrap()
        );
        assert_eq!(server.command(&["SET", &legacy_key, &doc]), "+OK");
    }
    assert_eq!(server.command(&["DEL", &key]), ":1");
    let after = osprof(&["show", base, "--connection-string", &url]).stdout;
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&before)
    );
    let after_list = osprof(&["list", "--connection-string", &url]).stdout;
    assert_eq!(
        String::from_utf8_lossy(&after_list),
        String::from_utf8_lossy(&before_list)
    );
    // osprofiler reads the older layout too, and agrees.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let ours: Value = serde_json::from_slice(
        &osprof(&["show", base, "--connection-string", &url, "--json"]).stdout,
    )
    .unwrap();
    outline(&ours, 0, &mut a);
    outline(&osprofiler_show(&url, base), 0, &mut b);
    assert_eq!(a, b);
}
