//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the real `vital` binary on workspace `ws`, with no user config and a fixed reviewer.
pub fn vital(ws: &Path, args: &[&str]) -> Output {
    vital_env(ws, args, &[])
}

/// `vital` that must succeed; returns stdout.
pub fn vital_ok(ws: &Path, args: &[&str]) -> String {
    vital_env_ok(ws, args, &[])
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

/// A fresh database on the test server (`VITAL_TEST_PG`, an administrator's connection string,
/// started by `tools/test_postgres.sh`), dropped with this value. None (the test skips, or fails
/// under CI) when no server is set.
pub struct ServerDb {
    admin: String,
    name: String,
    /// The new database's connection string, as the administrator.
    pub url: String,
    /// Where vital keeps this server's local files during the test (`VITAL_SERVER_FILES`).
    pub files: tempfile::TempDir,
}

impl ServerDb {
    pub fn create() -> Option<Self> {
        let Some(admin) = std::env::var("VITAL_TEST_PG")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            missing("VITAL_TEST_PG is not set (eval \"$(tools/test_postgres.sh start)\")");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "vital_it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut client = admin_client(&admin);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("the test server creates a database");
        Some(Self {
            url: with_dbname(&admin, &name),
            admin,
            name,
            files: tempfile::tempdir().unwrap(),
        })
    }

    /// The connection string of this database for role `user`.
    pub fn url_as(&self, user: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{user}@{host}")
    }

    /// A new database holding the demo workspace.
    pub fn with_demo() -> Option<Self> {
        let server = Self::create()?;
        vital_env_ok(Path::new(&server.url), &["demo", "--stats"], &server.env());
        Some(server)
    }

    /// `VITAL_SERVER_FILES` for a `vital` run on this database.
    pub fn env(&self) -> [(&'static str, &str); 1] {
        [(
            "VITAL_SERVER_FILES",
            self.files.path().to_str().expect("a UTF-8 temp path"),
        )]
    }

    /// A direct connection (not through vital) as the administrator.
    pub fn admin(&self) -> postgres::Client {
        admin_client(&self.url)
    }
}

impl Drop for ServerDb {
    fn drop(&mut self) {
        let mut client = admin_client(&self.admin);
        // The reviewer group is named by the database's OID.
        let oid: Option<u32> = client
            .query_opt(
                "SELECT oid FROM pg_database WHERE datname = $1",
                &[&self.name],
            )
            .ok()
            .flatten()
            .map(|row| row.get(0));
        let _ = client.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Some(oid) = oid {
            let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS vital_reviewers_db{oid}"));
        }
        let _ = client.batch_execute(&format!(
            "DROP ROLE IF EXISTS vital_reviewers_{}",
            self.name
        ));
    }
}

/// A direct client of the test server at `url` (the administrator's), as psql would connect.
pub fn server_client(url: &str) -> postgres::Client {
    admin_client(url)
}

fn admin_client(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().expect("a connection string");
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
    }
    config
        .connect(postgres::NoTls)
        .expect("the test server accepts its administrator")
}

fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    let mut out = format!("{scheme}://{authority}/{db}");
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The `vital` binary under test: cargo's, or `VITAL_TEST_BIN` where this test binary was carried
/// to another machine with a binary beside it (tools/gpu_check.sh).
pub fn vital_binary() -> PathBuf {
    std::env::var_os("VITAL_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vital")))
}

/// The checkout's root (for tests/fixtures): where this was built, or `VITAL_REPO_ROOT` on a
/// machine the test binary was carried to.
pub fn repo_root() -> PathBuf {
    std::env::var_os("VITAL_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// [`vital`] with extra environment variables.
pub fn vital_env(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(vital_binary());
    command
        .arg("-w")
        .arg(ws)
        .args(args)
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_WORKSPACE")
        .env_remove("VITAL_LOG")
        .env("VITAL_REVIEWER", "tester");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the vital binary runs")
}

/// `vital_env` that must succeed; returns stdout.
pub fn vital_env_ok(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = vital_env(ws, args, env);
    assert!(
        out.status.success(),
        "vital {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
