//! The optional log file (`--log FILE` or `VITAL_LOG`): what each command did, retries and
//! failures of HTTP calls, for a curator reading back a long unattended run. Never written to the
//! terminal, so it cannot disturb the review screen or a progress bar; without the flag nothing is
//! logged. The detail is set by `VITAL_LOG_LEVEL` (tracing's filter syntax, default `debug`).
//! Secrets never reach it: every event that carries server text is redacted where it is made.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// Starts appending events to `path`.
pub fn start(path: &Path) -> anyhow::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let level = std::env::var("VITAL_LOG_LEVEL").unwrap_or_else(|_| "debug".to_string());
    let filter = EnvFilter::try_new(&level)
        .with_context(|| format!("VITAL_LOG_LEVEL={level:?} is not a valid log filter"))?;
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot start the log: {e}"))?;
    Ok(())
}
