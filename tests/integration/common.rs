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

/// Whether this is a CI run (`CI=true`, as CI services set it): there a test whose prerequisite is
/// missing fails instead of skipping, so CI cannot go green by skipping.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "yes"))
}

/// Says a prerequisite is missing: under CI the test fails here; on a user's machine it skips
/// with a message (the caller returns).
pub fn missing(what: &str) {
    if on_ci() {
        panic!("CI=true and {what}: this test cannot run, and CI must not pass by skipping it");
    }
    eprintln!("skipping: {what}");
}

/// `../shared/fixtures` (or `VITAL_FIXTURES_DIR`), when this checkout has it; tests using it skip
/// (with a message) when not, and fail under CI.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("VITAL_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    if dir.join("llava_med_qa50.jsonl").is_file() {
        Some(dir)
    } else {
        missing("../shared/fixtures is absent (it is only on the project's machines)");
        None
    }
}

/// Whether tmux runs here; skips (or fails under CI) when not.
pub fn tmux_available() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("tmux is not installed (.ci/run installs it)");
    }
    ok
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file written");
    path
}

/// The cosine of two vectors of the same width (in f64).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "vector widths differ");
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The largest element-wise difference of two vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// What `vital encode` printed: one JSON array of floats per line.
pub fn printed_vectors(stdout: &str) -> Vec<Vec<f32>> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON array of floats"))
        .collect()
}
