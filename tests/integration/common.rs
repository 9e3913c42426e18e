//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the real `vital` binary on workspace `ws`, with no user config and a fixed reviewer.
pub fn vital(ws: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vital"))
        .arg("-w")
        .arg(ws)
        .args(args)
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_WORKSPACE")
        .env_remove("VITAL_LOG")
        .env("VITAL_REVIEWER", "tester")
        .output()
        .expect("the vital binary runs")
}

/// `vital` that must succeed; returns stdout.
pub fn vital_ok(ws: &Path, args: &[&str]) -> String {
    let out = vital(ws, args);
    assert!(
        out.status.success(),
        "vital {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stats(ws: &Path) -> serde_json::Value {
    serde_json::from_str(&vital_ok(ws, &["stats", "--json"])).expect("stats --json is JSON")
}

/// `../shared/fixtures`, when this checkout has it; tests using it skip (with a message) when not.
pub fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.join("llava_med_qa50.jsonl").is_file() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/fixtures is absent (it is only on the project's machines)");
        None
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file written");
    path
}
