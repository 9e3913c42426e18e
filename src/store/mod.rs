//! The workspace: one directory holding one SQLite database (WAL) plus caches and checkpoints.
//! Knows the data model, nothing of the UI.

pub mod agreement;
mod answer_decisions;
mod decisions;
mod embedding_cache;
mod export_reads;
mod figure_stats;
mod history;
mod image_urls;
mod import_writes;
mod llm_generation;
mod llm_judge;
mod llm_ledger;
mod model_scores;
mod review;
pub mod review_session;
mod sample_lookup;
mod samples;
mod schema;
mod scores;
mod selector_inputs;
mod stats;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

use crate::image_files::{ImageRoots, Lookup};

pub use agreement::{AgreementReport, Conflict, Resolution, Verdicts, FINAL_REVIEWER};
pub use answer_decisions::AnswerDecision;
pub use decisions::{CurrentDecision, DecisionKind, NewDecision};
pub use embedding_cache::TextHash;
pub use export_reads::{
    AnswerRow, AnswerScoreLine, AnswerScoreSource, ReadSnapshot, RoundRows, SampleRows,
};
pub use figure_stats::{FigureFile, NewFigure, StoredFigureStats};
pub use history::{DecisionEvent, SelectorAnswerScore};
pub use image_urls::ImageUrl;
pub use import_writes::{AnswerSlot, ImportBatch};
pub use llm_generation::GeneratedOutcome;
pub use llm_judge::{FigureText, JudgeTarget};
pub use llm_ledger::{LedgerEntry, LlmOutcome, LlmRequest};
pub use model_scores::ModelScore;
pub use review::IndexEntry;
pub use samples::{InsertOutcome, StoredSample};
pub use scores::{RankSignals, LATEST_SCORED_RUN};
pub use selector_inputs::{AnswerRecord, RunRecord};
pub use stats::Stats;

/// Whether `e` is SQLite's "busy"/"locked": another connection holds the lock.
fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(f, _))
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    })
}

/// The database file's name inside a workspace directory.
pub const DB_FILE: &str = "vital.db";

/// SQL for "now" as an RFC 3339 UTC timestamp with milliseconds.
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

pub struct Workspace {
    dir: PathBuf,
    /// Never leaves the store: every query is a named method of this folder, so the schema can
    /// change (or another database serve the same methods) without touching the UI or the CLI.
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
        // First, so that everything below (WAL switch, migrations) waits for another process
        // opening the same workspace at the same moment instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut ws = Self {
            dir: dir.to_path_buf(),
            conn,
        };
        // SQLite answers "busy" at once, without waiting, in a few cases the busy timeout does not
        // cover (another process creating the WAL files or recovering them at the same moment):
        // those are retried for a while rather than reported.
        let mut attempt = 0;
        loop {
            match ws.set_up() {
                Ok(()) => break,
                Err(e) if is_busy(&e) && attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot upgrade workspace {}", db.display()))
                }
            }
        }
        Ok(ws)
    }

    /// Connection settings and migrations, once per open.
    fn set_up(&mut self) -> anyhow::Result<()> {
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.migrate()
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

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::MIGRATIONS.len() as i64
    }

    /// Brings the schema up to date. The write lock is taken first (`BEGIN IMMEDIATE`) and the
    /// version read under it, so two processes opening a new workspace at once (two first imports)
    /// migrate it once: the second waits, then finds it up to date.
    fn migrate(&mut self) -> anyhow::Result<()> {
        let latest = Self::schema_version();
        let read_version = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
        };
        let current = read_version(&self.conn)?;
        if current > latest {
            anyhow::bail!(
                "the workspace has schema version {current}, newer than this vital understands ({latest}); upgrade vital"
            );
        }
        if current == latest {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = read_version(&tx)?;
        if current > latest {
            anyhow::bail!(
                "the workspace has schema version {current}, newer than this vital understands ({latest}); upgrade vital"
            );
        }
        for (version, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)
                .with_context(|| format!("migration {} failed", version + 1))?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
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

    /// Finds the file for an image reference, only inside the registered image directories and
    /// the download cache (see [`crate::image_files`]): None when missing or refused.
    pub fn resolve_image(&self, reference: &str) -> Option<PathBuf> {
        self.locate_image(reference).found()
    }

    /// Like [`Workspace::resolve_image`], telling a missing file from one refused because it lies
    /// outside the image directories.
    pub fn locate_image(&self, reference: &str) -> Lookup {
        match ImageFinder::new(self) {
            Ok(finder) => finder.locate(reference),
            Err(_) => Lookup::Missing,
        }
    }

    /// Where downloaded images are kept.
    pub fn image_cache_dir(&self) -> PathBuf {
        self.dir.join("images")
    }
}

/// Resolves many image references against the workspace's image directories, read once (for
/// scoring 210K samples without a query per image). Confined like [`Workspace::resolve_image`].
pub struct ImageFinder {
    roots: ImageRoots,
}

impl ImageFinder {
    pub fn new(ws: &Workspace) -> anyhow::Result<Self> {
        let mut dirs = ws.image_dirs()?;
        dirs.push(ws.image_cache_dir());
        Ok(Self {
            roots: ImageRoots::new(dirs),
        })
    }

    pub fn find(&self, reference: &str) -> Option<PathBuf> {
        self.locate(reference).found()
    }

    pub fn locate(&self, reference: &str) -> Lookup {
        self.roots.lookup(reference)
    }
}

/// Test fixtures shared by the store's and its callers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::samples::insert_sample;
    use super::{InsertOutcome, StoredSample, Workspace};
    use crate::data::{Round, Sample};

    /// Stores `sample` (which must be new) and returns its key.
    pub(crate) fn insert(ws: &Workspace, sample: &Sample) -> i64 {
        let InsertOutcome::Inserted(key) = insert_sample(&ws.conn, sample, None).unwrap() else {
            panic!("a new sample is inserted")
        };
        key
    }

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
        let InsertOutcome::Inserted(key) = insert_sample(&ws.conn, &sample, None).unwrap() else {
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
                .conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, Workspace::schema_version());
        }
        let ws = Workspace::open_existing(&path).unwrap();
        let mode: String = ws
            .conn
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

    /// Two processes' first imports into a new workspace open it at the same moment.
    #[test]
    fn opening_a_new_workspace_twice_at_once_migrates_it_once_and_both_succeed() {
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ws");
            let start = std::sync::Arc::new(std::sync::Barrier::new(3));
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Workspace::open(&path)
                            .map(|_| ())
                            .map_err(|e| format!("{e:#}"))
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let ws = Workspace::open_existing(&path).unwrap();
            let v: i64 = ws
                .conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, Workspace::schema_version());
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ws = Workspace::open(dir.path()).unwrap();
            ws.conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Workspace::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("newer"));
    }
}
