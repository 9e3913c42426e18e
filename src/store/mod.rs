//! The workspace: one directory holding one SQLite database (WAL) plus caches and checkpoints.
//! Knows the data model, nothing of the UI.

pub mod agreement;
mod answer_decisions;
mod embedding_cache;
mod export_reads;
mod history;
mod image_urls;
mod import_writes;
mod judgments;
mod llm_generation;
mod llm_judge;
mod llm_ledger;
mod model_scores;
mod ranking_inputs;
mod review;
mod sample_lookup;
mod samples;
mod schema;
mod scores;
mod stats;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

pub use agreement::{AgreementReport, Conflict, Resolution, Verdicts, FINAL_REVIEWER};
pub use answer_decisions::AnswerDecision;
pub use embedding_cache::TextHash;
pub use export_reads::{
    AnswerRow, AnswerScoreLine, AnswerScoreSource, ReadSnapshot, RoundRows, SampleRows,
};
pub use history::{JudgmentEvent, SelectorAnswerScore};
pub use image_urls::ImageUrl;
pub use import_writes::{AnswerSlot, ImportBatch, StoredImageUrl};
pub use judgments::{
    append as append_judgment, reviewer_id, CurrentDecision, DecisionKind, NewJudgment,
};
pub use llm_generation::GeneratedOutcome;
pub use llm_judge::{FigureText, JudgeTarget};
pub use llm_ledger::{LedgerEntry, LlmOutcome, LlmRequest};
pub use model_scores::ModelScore;
pub use ranking_inputs::{AnswerRecord, RunRecord};
pub use review::IndexEntry;
pub use samples::{insert_sample, InsertOutcome, StoredSample};
pub use scores::{RankSignals, LATEST_SCORED_RUN};
pub use stats::Stats;

/// The database file's name inside a workspace directory.
pub const DB_FILE: &str = "vital.db";

/// SQL for "now" as an RFC 3339 UTC timestamp with milliseconds.
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

pub struct Workspace {
    dir: PathBuf,
    conn: Connection,
}

impl Workspace {
    /// Opens the workspace in `dir`, creating the directory and the database if needed, and brings
    /// the schema up to date.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create workspace directory {}", dir.display()))?;
        let db = dir.join(DB_FILE);
        let conn = Connection::open(&db)
            .with_context(|| format!("cannot open workspace database {}", db.display()))?;
        // WAL lets several reviewers and a background trainer work at once; FULL sync makes each
        // committed judgment survive a crash of the machine, not only of the process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut ws = Self {
            dir: dir.to_path_buf(),
            conn,
        };
        ws.migrate()
            .with_context(|| format!("cannot upgrade workspace {}", db.display()))?;
        Ok(ws)
    }

    /// Opens an existing workspace, failing (without creating anything) if there is none.
    pub fn open_existing(dir: &Path) -> anyhow::Result<Self> {
        if !dir.join(DB_FILE).is_file() {
            anyhow::bail!(
                "no workspace at {} (create one with `vital import`, or pick one with -w)",
                dir.display()
            );
        }
        Self::open(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::MIGRATIONS.len() as i64
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let current: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let latest = Self::schema_version();
        if current > latest {
            anyhow::bail!(
                "the workspace has schema version {current}, newer than this vital understands ({latest}); upgrade vital"
            );
        }
        for (version, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("migration {} failed", version + 1))?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Directories searched for image files, in the order they were added.
    pub fn image_dirs(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM image_dirs ORDER BY rowid")?;
        let dirs = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(dirs.into_iter().map(PathBuf::from).collect())
    }

    pub fn add_image_dir(&self, dir: &Path) -> anyhow::Result<()> {
        let abs = std::fs::canonicalize(dir)
            .with_context(|| format!("image directory {} does not exist", dir.display()))?;
        self.conn.execute(
            "INSERT OR IGNORE INTO image_dirs (path) VALUES (?1)",
            [abs.to_string_lossy()],
        )?;
        Ok(())
    }

    /// Finds the file for an image reference: as given (absolute or relative to the workspace),
    /// then by file name in each image directory, then in the download cache.
    pub fn resolve_image(&self, reference: &str) -> Option<PathBuf> {
        ImageFinder::new(self).ok()?.find(reference)
    }

    /// Where downloaded images are kept.
    pub fn image_cache_dir(&self) -> PathBuf {
        self.dir.join("images")
    }
}

/// Resolves many image references against the workspace's image directories, read once (for
/// scoring 210K samples without a query per image).
pub struct ImageFinder {
    workspace: PathBuf,
    dirs: Vec<PathBuf>,
}

impl ImageFinder {
    pub fn new(ws: &Workspace) -> anyhow::Result<Self> {
        let mut dirs = ws.image_dirs()?;
        dirs.push(ws.image_cache_dir());
        Ok(Self {
            workspace: ws.dir.clone(),
            dirs,
        })
    }

    pub fn find(&self, reference: &str) -> Option<PathBuf> {
        let given = Path::new(reference);
        if given.is_absolute() && given.is_file() {
            return Some(given.to_path_buf());
        }
        let in_workspace = self.workspace.join(given);
        if in_workspace.is_file() {
            return Some(in_workspace);
        }
        let name = given.file_name()?;
        self.dirs
            .iter()
            .flat_map(|d| [d.join(given), d.join(name)])
            .find(|p| p.is_file())
    }
}

/// Test fixtures shared by the store's and its callers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{insert_sample, InsertOutcome, StoredSample, Workspace};
    use crate::data::{Round, Sample};

    /// A fresh workspace holding one sample `s` with the given (question, answers) rounds.
    pub(crate) fn workspace_with_rounds(
        rounds: &[(&str, &[&str])],
    ) -> (tempfile::TempDir, Workspace, StoredSample) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let sample = Sample {
            id: "s".into(),
            rounds: rounds
                .iter()
                .map(|(question, answers)| Round {
                    question: question.to_string(),
                    answers: answers.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
            ..Default::default()
        };
        let InsertOutcome::Inserted(key) = insert_sample(ws.conn(), &sample, None).unwrap() else {
            panic!("a fresh workspace inserts the sample")
        };
        let stored = ws.load_sample(key).unwrap().unwrap();
        (dir, ws, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_and_reopens_at_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws");
        {
            let ws = Workspace::open(&path).unwrap();
            let v: i64 = ws
                .conn()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, Workspace::schema_version());
        }
        let ws = Workspace::open_existing(&path).unwrap();
        let mode: String = ws
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn open_existing_refuses_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = Workspace::open_existing(dir.path()).err().unwrap();
        assert!(err.to_string().contains("no workspace"));
        assert!(!dir.path().join(DB_FILE).exists());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ws = Workspace::open(dir.path()).unwrap();
            ws.conn().pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Workspace::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("newer"));
    }
}
