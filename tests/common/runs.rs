//! Helpers for the tests that run the `telltale` binary on scenarios: paths, a fresh work
//! folder per test, the run's report, its upload findings, and skipping a test that cannot
//! run here (or failing it when `TELLTALE_REQUIRE_ALL_TESTS` is set, as in CI).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_telltale")
}

/// The repository (scenarios, snapshots, demo images).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` is on PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// `true` when the calling test must stop here because `why` says it cannot run (the harness then lists it as
/// ignored with `why`); in CI
/// (`TELLTALE_REQUIRE_ALL_TESTS`) that is a failure instead, since a skip would hide a broken
/// setup.
#[track_caller]
pub fn skip(why: Option<String>) -> bool {
    let Some(why) = why else { return false };
    assert!(
        std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
        "TELLTALE_REQUIRE_ALL_TESTS is set but this test cannot run: {why}"
    );
    super::harness::skipped(why);
    true
}

/// A fresh folder for one test: `<target tmp>/<tag>-<pid>`.
pub fn workdir(tag: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// stdout and stderr of a run, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run's `report.json`.
pub fn report(dir: &Path) -> Value {
    let t = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{}/report.json: {e}", dir.display()));
    serde_json::from_str(&t).unwrap()
}

/// Upload findings as (canary, encoding, destination, "METHOD /path", phase).
pub fn uploads(r: &Value) -> Vec<(String, String, String, String, String)> {
    r["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["direction"] == "up")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (
                s("canary"),
                s("encoding"),
                s("destination"),
                format!("{} {}", s("http_method"), s("http_path")),
                s("phase"),
            )
        })
        .collect()
}
