//! What the review screen reads besides samples and decisions: the finished selector runs that
//! seed its training panel, and the database's local clock for "saved 14:03:07". Named queries
//! only; the screen never sees SQL.

use super::db::{params, Dialect};
use super::Workspace;

/// A selector run that finished, with its report as stored (JSON, read by `selector_runs`).
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub id: i64,
    pub metrics_json: String,
}

impl Workspace {
    /// Selector runs that finished (have a report), oldest first.
    pub fn finished_runs(&self) -> anyhow::Result<Vec<FinishedRun>> {
        self.db.query_vec(
            "SELECT id, metrics FROM selector_runs WHERE metrics IS NOT NULL ORDER BY id",
            params![],
            |r| {
                Ok(FinishedRun {
                    id: r.get(0)?,
                    metrics_json: r.get(1)?,
                })
            },
        )
    }

    /// Local wall-clock time of day, `HH:MM:SS`, on this machine (a server's clock may stand in
    /// another time zone than its reviewers).
    pub fn local_time(&self) -> anyhow::Result<String> {
        match self.db.dialect() {
            Dialect::Sqlite => self
                .db
                .query_value("SELECT time('now', 'localtime')", params![]),
            Dialect::Postgres => local_time_of_day(),
        }
    }
}

/// This machine's local time of day, as SQLite's `time('now', 'localtime')` reads it.
fn local_time_of_day() -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into the `tm` we own and reads only `now`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    anyhow::ensure!(ok, "the local time is unknown");
    Ok(format!(
        "{:02}:{:02}:{:02}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn finished_runs_are_those_with_a_report_oldest_first_and_the_clock_reads(db: TestDb) {
        let ws = TestWorkspace::new(db);
        assert!(ws.finished_runs().expect("runs").is_empty());
        let first = ws
            .create_selector_run("ndarray", "{}", Some("{\"a\":1}"), None)
            .expect("run");
        ws.create_selector_run("ndarray", "{}", None, None)
            .expect("unfinished run");
        let third = ws
            .create_selector_run("ndarray", "{}", Some("{\"a\":3}"), None)
            .expect("run");
        let runs = ws.finished_runs().expect("runs");
        assert_eq!(
            runs,
            vec![
                FinishedRun {
                    id: first,
                    metrics_json: "{\"a\":1}".into()
                },
                FinishedRun {
                    id: third,
                    metrics_json: "{\"a\":3}".into()
                },
            ]
        );
        let time = ws.local_time().expect("time");
        assert_eq!(time.len(), 8, "HH:MM:SS: {time}");
        assert_eq!(time.matches(':').count(), 2, "{time}");
    }

    on_both_databases!(finished_runs_are_those_with_a_report_oldest_first_and_the_clock_reads);
}
