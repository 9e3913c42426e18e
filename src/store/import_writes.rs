//! The write side of `vital import` (and of the benches' synthetic workspaces): one transaction
//! for a whole file, behind [`ImportBatch`], so a broken file leaves nothing behind. Callers see
//! typed methods only; the transaction and its cached statements stay in the store.
//!
//! On a directory (SQLite) the per-sample statements go to rusqlite directly ([`lite`]): the
//! shared database layer's `INSERT … RETURNING id` is, to SQLite, a statement with a trigger, and
//! with `foreign_keys=ON` every such statement opens a statement journal and copies each page it
//! changes into it; its rows are read back through the shared value type. A plain cached `INSERT`
//! and `last_insert_rowid()` do neither (issue 35: the import had become 2.5–3× slower).

use std::path::Path;

use super::db::{params, Dialect, Tx};
use super::decisions::{append, reviewer_id};
use super::image_urls::ImageUrl;
use super::samples::{insert_hashed_sample, insert_sample};
use super::{InsertOutcome, NewDecision, Workspace, NOW};
use crate::data::Sample;

/// One answer of a stored sample, located by its positions (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerSlot {
    pub round_position: i64,
    pub answer_position: i64,
    pub round_id: i64,
    pub answer_id: i64,
}

/// An open write transaction. Nothing is visible to other connections until [`commit`];
/// dropping the batch without committing rolls everything back.
///
/// [`commit`]: ImportBatch::commit
pub struct ImportBatch<'w> {
    tx: Tx<'w>,
}

impl Workspace {
    /// The format recorded for an already imported file with these contents, if any.
    pub fn imported_source_format(&self, sha256: &str) -> anyhow::Result<Option<String>> {
        self.db.query_opt(
            "SELECT format FROM sources WHERE sha256 = ?1",
            params![sha256],
            |r| r.get(0),
        )
    }

    /// Settings for one bulk import on this connection, on (`true`) or back to the usual ones:
    /// a 64 MiB page cache (a 400 MB import spills fewer pages and reads none back), and
    /// `synchronous=NORMAL`, which in WAL mode keeps every transaction atomic and the database
    /// intact on a crash, and skips the WAL's fsync at commit (a power cut right after an import
    /// may roll the whole import back; the checkpoint that follows syncs it). On a server, the
    /// same bargain is `synchronous_commit = off` for this connection.
    pub fn set_bulk_import(&self, on: bool) -> anyhow::Result<()> {
        match self.db.sqlite_conn() {
            Some(conn) => {
                let (cache, synchronous) = if on {
                    (-65536, "NORMAL")
                } else {
                    (-2000, "FULL")
                };
                conn.pragma_update(None, "cache_size", cache)?;
                conn.pragma_update(None, "synchronous", synchronous)?;
            }
            None => {
                debug_assert_eq!(self.db.dialect(), Dialect::Postgres);
                self.db.execute_batch(if on {
                    "SET synchronous_commit = off"
                } else {
                    "SET synchronous_commit = on"
                })?;
            }
        }
        Ok(())
    }

    /// Starts a write transaction for many inserts (one imported file, one synthetic workspace).
    pub fn import_batch(&mut self) -> anyhow::Result<ImportBatch<'_>> {
        // The write lock first: a batch always writes, and waiting for it up front (busy timeout)
        // beats failing when a read snapshot cannot be upgraded.
        Ok(ImportBatch {
            tx: self.db.begin_write()?,
        })
    }
}

impl ImportBatch<'_> {
    /// Records the file being imported (format and record count come with
    /// [`ImportBatch::finish_source`]); returns its source id.
    pub fn add_source(&self, path: &str, sha256: &str) -> anyhow::Result<i64> {
        // Two imports of the same contents at once (two curators on a server): the second
        // waits for the first, then finds the file stored and writes nothing.
        self.tx
            .query_opt(
                &format!("INSERT INTO sources (path, sha256, format, records, imported_at) VALUES (?1, ?2, '', 0, {NOW})
                          ON CONFLICT (sha256) DO NOTHING RETURNING id"),
                params![path, sha256],
                |r| r.get(0),
            )?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "another import of the same contents finished while this one ran: the file is stored once, nothing was imported twice"
                )
            })
    }

    /// Sets the detected format and the record count of source `source_id`.
    pub fn finish_source(
        &self,
        source_id: i64,
        format: &str,
        records: usize,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE sources SET format = ?1, records = ?2 WHERE id = ?3",
            params![format, records, source_id],
        )?;
        Ok(())
    }

    /// Registers an image directory (already absolute); registering it twice is a no-op.
    pub fn add_image_dir(&self, dir: &Path) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT OR IGNORE INTO image_dirs (path) VALUES (?1)",
            params![dir.to_string_lossy()],
        )?;
        Ok(())
    }

    /// Inserts `sample` unless a sample with its id exists (see [`InsertOutcome`]).
    pub fn insert_sample(
        &self,
        sample: &Sample,
        source_id: Option<i64>,
    ) -> anyhow::Result<InsertOutcome> {
        match self.tx.sqlite_conn() {
            Some(conn) => lite::insert_sample(conn, sample, &sample.content_hash(), source_id),
            None => insert_sample(&self.tx, sample, source_id),
        }
    }

    /// [`ImportBatch::insert_sample`] with the sample's [`Sample::content_hash`] already computed
    /// (by another thread).
    pub fn insert_hashed_sample(
        &self,
        sample: &Sample,
        content_hash: &str,
        source_id: Option<i64>,
    ) -> anyhow::Result<InsertOutcome> {
        match self.tx.sqlite_conn() {
            Some(conn) => lite::insert_sample(conn, sample, content_hash, source_id),
            None => insert_hashed_sample(&self.tx, sample, content_hash, source_id),
        }
    }

    /// SQLite's own counters for every statement prepared on this connection, as
    /// `(sql, runs, vm_steps)` for each statement run since the previous call (which sets them
    /// back to zero): how much work an import did, independent of the machine's speed. `None` on
    /// a server. Statements prepared and finalised in between (uncached ones, `BEGIN`, `COMMIT`)
    /// are not seen; every statement of the import's per-record path is cached.
    pub fn take_statement_counts(&self) -> Option<Vec<(String, u64, u64)>> {
        let conn = self.tx.sqlite_conn()?;
        Some(lite::take_statement_counts(conn))
    }

    /// The reviewer's row id, creating the reviewer on first use.
    pub fn reviewer_id(&self, name: &str) -> anyhow::Result<i64> {
        reviewer_id(&self.tx, name)
    }

    /// Appends one decision by `reviewer`; returns its event id.
    pub fn append_decision(&self, reviewer: i64, decision: &NewDecision) -> anyhow::Result<i64> {
        append(&self.tx, reviewer, decision)
    }

    /// [`ImportBatch::append_decision`] made at `made_at` (the log's spelling of a UTC time) when
    /// given: a decision gathered elsewhere keeps the time it was made.
    pub fn append_decision_at(
        &self,
        reviewer: i64,
        decision: &NewDecision,
        made_at: Option<&str>,
    ) -> anyhow::Result<i64> {
        let uid = super::decisions::new_decision_uid();
        super::decisions::append_once(&self.tx, reviewer, decision, &uid, made_at)?
            .ok_or_else(|| anyhow::anyhow!("decision id {uid} is already taken"))
    }

    /// Every answer of sample `sample_key` with its positions, in round then answer order.
    pub fn answer_slots(&self, sample_key: i64) -> anyhow::Result<Vec<AnswerSlot>> {
        self.tx.query_vec(
            "SELECT r.position, a.position, r.id, a.id FROM rounds r JOIN answers a ON a.round_id = r.id
             WHERE r.sample_id = ?1 ORDER BY r.position, a.position",
            params![sample_key],
            |r| {
                Ok(AnswerSlot {
                    round_position: r.get(0)?,
                    answer_position: r.get(1)?,
                    round_id: r.get(2)?,
                    answer_id: r.get(3)?,
                })
            },
        )
    }

    /// The answers of (0-based) `round` of the sample with external id `sample_id`, in answer
    /// order, each as a [`RoundAnswer`].
    pub fn round_answers(&self, sample_id: &str, round: i64) -> anyhow::Result<Vec<RoundAnswer>> {
        self.tx.query_vec(
            "SELECT s.id, r.id, a.id, a.position, a.text FROM samples s JOIN rounds r ON r.sample_id = s.id
             JOIN answers a ON a.round_id = r.id
             WHERE s.ext_id = ?1 AND r.position = ?2 ORDER BY a.position",
            params![sample_id, round],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
    }

    /// The decisions `reviewer` has in force on answer `answer_id`: (kind, value).
    pub fn answer_decisions_in_force(
        &self,
        reviewer: i64,
        answer_id: i64,
    ) -> anyhow::Result<Vec<(String, Option<String>)>> {
        self.tx.query_vec(
            "SELECT kind, value FROM current_judgments WHERE reviewer_id = ?1 AND answer_id = ?2 ORDER BY id",
            params![reviewer, answer_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The answer at (0-based) `round`, `answer` of the sample with external id `sample_id`.
    pub fn answer_at(
        &self,
        sample_id: &str,
        round: i64,
        answer: i64,
    ) -> anyhow::Result<Option<i64>> {
        self.tx.query_opt(
            "SELECT a.id FROM samples s JOIN rounds r ON r.sample_id = s.id JOIN answers a ON a.round_id = r.id
             WHERE s.ext_id = ?1 AND r.position = ?2 AND a.position = ?3",
            params![sample_id, round, answer],
            |r| r.get(0),
        )
    }

    /// The score `judge` gave answer `answer_id`, if any.
    pub fn model_score(&self, answer_id: i64, judge: &str) -> anyhow::Result<Option<f64>> {
        self.tx.query_opt(
            "SELECT score FROM model_scores WHERE answer_id = ?1 AND judge = ?2",
            params![answer_id, judge],
            |r| r.get(0),
        )
    }

    /// Stores `judge`'s score of answer `answer_id`.
    pub fn insert_model_score(
        &self,
        answer_id: i64,
        judge: &str,
        score: f64,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            &format!(
                "INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES (?1, ?2, ?3, {NOW})"
            ),
            params![answer_id, judge, score],
        )?;
        Ok(())
    }

    /// The URL stored for image `key`, if any.
    pub fn image_url(&self, key: &str) -> anyhow::Result<Option<ImageUrl>> {
        self.tx.query_opt(
            "SELECT url, member FROM image_urls WHERE key = ?1",
            params![key],
            |r| {
                Ok(ImageUrl {
                    key: key.to_string(),
                    url: r.get(0)?,
                    member: r.get(1)?,
                })
            },
        )
    }

    /// Stores the URL of image `key`.
    pub fn insert_image_url(
        &self,
        key: &str,
        url: &str,
        member: Option<&str>,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO image_urls (key, url, member) VALUES (?1, ?2, ?3)",
            params![key, url, member],
        )?;
        Ok(())
    }

    /// Records a selector run with a fixed creation time (synthetic workspaces); returns its id.
    pub fn insert_selector_run(
        &self,
        created_at: &str,
        backend: &str,
        config_json: &str,
    ) -> anyhow::Result<i64> {
        self.tx.query_value(
            "INSERT INTO selector_runs (created_at, backend, config) VALUES (?1, ?2, ?3) RETURNING id",
            params![created_at, backend, config_json],
        )
    }

    /// Stores run `run`'s score of sample `sample_key`.
    pub fn insert_sample_score(&self, run: i64, sample_key: i64, score: f64) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO sample_scores (run_id, sample_id, score) VALUES (?1, ?2, ?3)",
            params![run, sample_key, score],
        )?;
        Ok(())
    }

    /// Stores run `run`'s score of answer `answer_id`.
    pub fn insert_selector_score(
        &self,
        run: i64,
        answer_id: i64,
        score: f64,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO selector_scores (run_id, answer_id, score) VALUES (?1, ?2, ?3)",
            params![run, answer_id, score],
        )?;
        Ok(())
    }

    /// Makes everything written in the batch visible at once.
    pub fn commit(self) -> anyhow::Result<()> {
        self.tx.commit()
    }
}

/// One answer of a round, for matching an imported edit: (sample key, round id, answer id,
/// 0-based position, text).
pub type RoundAnswer = (i64, i64, i64, i64, String);

/// The import's per-sample writes on SQLite, straight through rusqlite: cached statements run
/// with `execute`, the new row's id from `last_insert_rowid()`, parameters bound from the
/// sample's own strings.
mod lite {
    use anyhow::Context;
    use rusqlite::{ffi, params, Connection};

    use super::super::InsertOutcome;
    use crate::data::Sample;

    /// A new `ext_id` is inserted; a stored one changes nothing and is looked up after (a fresh
    /// import runs one statement per sample instead of a lookup and an insert).
    const INSERT_SAMPLE: &str =
        "INSERT INTO samples (ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash, source_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (ext_id) DO NOTHING";
    const FIND_SAMPLE: &str = "SELECT id, content_hash FROM samples WHERE ext_id = ?1";
    const INSERT_ROUND: &str =
        "INSERT INTO rounds (sample_id, position, question) VALUES (?1, ?2, ?3)";
    const INSERT_ANSWER: &str =
        "INSERT INTO answers (round_id, position, text) VALUES (?1, ?2, ?3)";

    /// [`super::super::samples::insert_hashed_sample`] on SQLite: the same rows and outcomes.
    pub fn insert_sample(
        conn: &Connection,
        sample: &Sample,
        hash: &str,
        source_id: Option<i64>,
    ) -> anyhow::Result<InsertOutcome> {
        let mentions = serde_json::to_string(&sample.mentions).context("the mentions as JSON")?;
        let domains = serde_json::to_string(&sample.domains).context("the domains as JSON")?;
        let inserted = conn
            .prepare_cached(INSERT_SAMPLE)?
            .execute(params![
                sample.id,
                sample.image,
                sample.caption,
                mentions,
                sample.fig_label,
                domains,
                sample.is_demo,
                hash,
                source_id,
            ])
            .context("cannot insert the sample")?;
        if inserted == 0 {
            let (key, stored_hash): (i64, String) = conn
                .prepare_cached(FIND_SAMPLE)?
                .query_row([&sample.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .context("cannot read the stored sample with this id")?;
            return Ok(if stored_hash == hash {
                InsertOutcome::Unchanged(key)
            } else {
                InsertOutcome::Conflict { key }
            });
        }
        let key = conn.last_insert_rowid();
        let mut insert_round = conn.prepare_cached(INSERT_ROUND)?;
        let mut insert_answer = conn.prepare_cached(INSERT_ANSWER)?;
        for (position, round) in sample.rounds.iter().enumerate() {
            insert_round
                .execute(params![key, position as i64, round.question])
                .with_context(|| format!("cannot insert round {}", position + 1))?;
            let round_id = conn.last_insert_rowid();
            for (a, text) in round.answers.iter().enumerate() {
                insert_answer
                    .execute(params![round_id, a as i64, text])
                    .with_context(|| {
                        format!("cannot insert answer {} of round {}", a + 1, position + 1)
                    })?;
            }
        }
        Ok(InsertOutcome::Inserted(key))
    }

    /// See [`super::ImportBatch::take_statement_counts`].
    pub fn take_statement_counts(conn: &Connection) -> Vec<(String, u64, u64)> {
        let mut counts = Vec::new();
        // SAFETY: the handle is this live connection's, used on this thread only while `conn`
        // is borrowed; sqlite3_next_stmt walks the statements it has prepared (none is
        // finalised meanwhile: nothing else runs on the connection during this loop), and
        // sqlite3_sql's text belongs to its statement, copied before the next one.
        unsafe {
            let db = conn.handle();
            let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !stmt.is_null() {
                let runs = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_RUN, 1);
                let steps = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_VM_STEP, 1);
                if runs > 0 || steps > 0 {
                    let sql = ffi::sqlite3_sql(stmt);
                    let sql = if sql.is_null() {
                        String::new()
                    } else {
                        std::ffi::CStr::from_ptr(sql).to_string_lossy().into_owned()
                    };
                    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
                    counts.push((sql, runs.max(0) as u64, steps.max(0) as u64));
                }
                stmt = ffi::sqlite3_next_stmt(db, stmt);
            }
        }
        counts.sort();
        counts
    }
}
