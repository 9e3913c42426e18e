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

use anyhow::Context;

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
    /// On a directory: the multi-row inserts of rounds and answers, prepared on first use
    /// ([`lite::MultiRowInserts`]). Declared after `tx`, so dropped after the transaction ends.
    multi_row: std::cell::RefCell<Option<lite::MultiRowInserts>>,
    /// On a server: whether this transaction's staging tables exist yet ([`copy`]).
    staged: std::cell::Cell<bool>,
    /// On a server: [`Db::statements_sent`] at the last [`ImportBatch::take_statement_counts`].
    ///
    /// [`Db::statements_sent`]: super::db::Db::statements_sent
    sent_before: std::cell::Cell<u64>,
}

/// A sample offered to [`ImportBatch::insert_samples`], with its [`Sample::content_hash`] and
/// its lists as stored, both worked out beforehand (by the import's parsing thread).
pub struct NewSample<'a> {
    pub sample: &'a Sample,
    pub content_hash: &'a str,
    pub lists: &'a SampleLists,
}

/// A sample's mentions and domains as the JSON text the `samples` table stores them in.
pub struct SampleLists {
    pub mentions: String,
    pub domains: String,
}

impl SampleLists {
    pub fn of(sample: &Sample) -> anyhow::Result<Self> {
        Ok(Self {
            mentions: serde_json::to_string(&sample.mentions).context("the mentions as JSON")?,
            domains: serde_json::to_string(&sample.domains).context("the domains as JSON")?,
        })
    }
}

/// Why [`ImportBatch::insert_samples`] stored none of the samples it was given.
#[derive(Debug)]
pub struct SamplesRefused {
    /// The sample the database refused, when known (its position among those given).
    pub index: Option<usize>,
    pub error: anyhow::Error,
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

    /// Whether a file of `bytes` bytes may be one imported before: a stored file has that size,
    /// or one stored before sizes were recorded (schema 14) does.
    pub fn may_hold_source_of_size(&self, bytes: u64) -> anyhow::Result<bool> {
        let bytes = i64::try_from(bytes).context("the file's size")?;
        self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM sources WHERE bytes = ?1 OR bytes IS NULL)",
            params![bytes],
        )
    }

    /// Settings for one bulk import on this connection, on (`true`) or back to the usual ones:
    /// a 64 MiB page cache (a 400 MB import spills fewer pages and reads none back), and
    /// `synchronous=NORMAL`, which in WAL mode keeps every transaction atomic and the database
    /// intact on a crash, and skips the WAL's fsync at commit (a power cut right after an import
    /// may roll the whole import back; the checkpoint that follows syncs it). On a server, the
    /// same bargain is `synchronous_commit = off` for this connection.
    ///
    /// On a directory the import also runs with `foreign_keys` off. Checked row by row, a
    /// multi-row `INSERT` of rounds or answers may fail half-way, so SQLite opened a statement
    /// journal for each and copied into it every page the statement touched (a tenth of the
    /// writer's time). The import writes each child row under the id of a parent it wrote (or
    /// looked up) in the same transaction; the tests check every imported workspace with
    /// `PRAGMA foreign_key_check` (`TestWorkspace::foreign_key_violations`). A server keeps its
    /// checks: the client's `COPY`s are set-wise there.
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
                // Outside the import's transaction (inside one the pragma does nothing).
                conn.pragma_update(None, "foreign_keys", !on)?;
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
            multi_row: std::cell::RefCell::new(None),
            staged: std::cell::Cell::new(false),
            sent_before: std::cell::Cell::new(0),
        })
    }
}

impl ImportBatch<'_> {
    /// Records the file being imported (format, record count, size and a SHA-256 computed
    /// while parsing come with [`ImportBatch::finish_source`]); returns its source id.
    ///
    /// `sha256` may wait for the parse only on a directory: its batch holds the write lock
    /// from start to end, so no other import can store the same contents meanwhile.
    pub fn add_source(&self, path: &str, sha256: Option<&str>) -> anyhow::Result<i64> {
        let Some(sha256) = sha256 else {
            anyhow::ensure!(
                !self.is_server(),
                "a server import needs the file's SHA-256 before it starts"
            );
            // Unique until `finish_source` writes the real one; never committed as it is.
            return self.tx.query_value(
                &format!("INSERT INTO sources (path, sha256, format, records, imported_at) VALUES (?1, 'hashing', '', 0, {NOW}) RETURNING id"),
                params![path],
            );
        };
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

    /// The format of a stored file with these contents other than `source_id`, if any.
    pub fn stored_source_format(
        &self,
        sha256: &str,
        source_id: i64,
    ) -> anyhow::Result<Option<String>> {
        self.tx.query_opt(
            "SELECT format FROM sources WHERE sha256 = ?1 AND id <> ?2",
            params![sha256, source_id],
            |r| r.get(0),
        )
    }

    /// Sets the detected format, the record count, the size and the contents' SHA-256 of
    /// source `source_id`.
    pub fn finish_source(
        &self,
        source_id: i64,
        format: &str,
        records: usize,
        bytes: u64,
        sha256: &str,
    ) -> anyhow::Result<()> {
        let bytes = i64::try_from(bytes).context("the file's size")?;
        self.tx.execute(
            "UPDATE sources SET format = ?1, records = ?2, bytes = ?3, sha256 = ?4 WHERE id = ?5",
            params![format, records, bytes, sha256, source_id],
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

    /// Inserts each sample unless a sample with its id is stored (or comes earlier in
    /// `samples`); returns what happened to each, in order (see [`InsertOutcome`]). The rows
    /// and ids are those [`ImportBatch::insert_hashed_sample`] would write one sample at a
    /// time. On a server the samples go in with a few `COPY`s and set-wise inserts ([`copy`]);
    /// when the server refuses them, nothing of them is kept and the refused sample is named.
    pub fn insert_samples(
        &self,
        samples: &[NewSample<'_>],
        source_id: Option<i64>,
    ) -> Result<Vec<InsertOutcome>, SamplesRefused> {
        match self.tx.sqlite_conn() {
            Some(conn) => lite::insert_samples(conn, &self.multi_row, samples, source_id),
            None => copy::insert_samples(&self.tx, &self.staged, samples, source_id),
        }
    }

    /// Whether the batch writes to a team server (PostgreSQL).
    pub fn is_server(&self) -> bool {
        self.tx.dialect() == Dialect::Postgres
    }

    /// The work the import did since the previous call (which sets the counters back to
    /// zero), independent of the machine's speed, as `(what, runs, vm_steps)`.
    ///
    /// On SQLite, its own counters for each statement prepared on this connection (its SQL,
    /// runs, virtual-machine steps). Statements prepared and finalised in between (uncached
    /// ones, `BEGIN`, `COMMIT`) are not seen; every statement of the import's per-record path
    /// is cached. On a server, one line: the statements and COPYs sent, each a round trip.
    pub fn take_statement_counts(&self) -> Vec<(String, u64, u64)> {
        match self.tx.sqlite_conn() {
            Some(conn) => lite::take_statement_counts(conn),
            None => {
                let sent = self.tx.statements_sent().unwrap_or(0);
                let before = self.sent_before.replace(sent);
                vec![(
                    "statements and COPYs sent to the server".to_string(),
                    sent - before,
                    0,
                )]
            }
        }
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

/// The import's writes on SQLite, straight through rusqlite: cached statements, parameters bound
/// from the sample's own strings. A batch of samples ([`insert_samples`]) takes one statement
/// per sample (its outcome decides the rest) and one per [`ROWS_PER_INSERT`] rows of their
/// rounds and answers, under the ids SQLite gives rows inserted one at a time (one more than the
/// largest stored: the batch holds the write lock, so nobody else takes one meanwhile).
mod lite {
    use anyhow::Context;
    use std::cell::RefCell;
    use std::ffi::c_int;

    use rusqlite::{ffi, params, Connection};

    use super::super::InsertOutcome;
    use super::{NewSample, SampleLists, SamplesRefused};
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
    const INSERT_ROUND_WITH_ID: &str =
        "INSERT INTO rounds (id, sample_id, position, question) VALUES (?,?,?,?)";
    const INSERT_ANSWER_WITH_ID: &str =
        "INSERT INTO answers (id, round_id, position, text) VALUES (?,?,?,?)";
    const NEXT_ROUND_ID: &str = "SELECT coalesce(max(id), 0) + 1 FROM rounds";
    const NEXT_ANSWER_ID: &str = "SELECT coalesce(max(id), 0) + 1 FROM answers";

    /// Rows of `rounds` or `answers` per multi-row `INSERT`: a statement's fixed work (its
    /// start, the cursors on the table, its unique index and the parent table the foreign key
    /// checks) is shared by this many rows (4 parameters each, far under SQLite's limit).
    pub const ROWS_PER_INSERT: usize = 64;

    /// [`super::super::samples::insert_hashed_sample`] on SQLite: the same rows and outcomes.
    pub fn insert_sample(
        conn: &Connection,
        sample: &Sample,
        hash: &str,
        source_id: Option<i64>,
    ) -> anyhow::Result<InsertOutcome> {
        let outcome = insert_sample_row(conn, sample, hash, &SampleLists::of(sample)?, source_id)?;
        let InsertOutcome::Inserted(key) = outcome else {
            return Ok(outcome);
        };
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

    /// [`super::ImportBatch::insert_samples`] on SQLite: for each sample in turn, the rows, ids
    /// and outcome [`insert_sample`] gives it, in a statement per sample and a few for all their
    /// rounds and answers. A refused sample is named by its index; the import's transaction,
    /// rolled back, keeps nothing of the batch.
    pub fn insert_samples(
        conn: &Connection,
        multi_row: &RefCell<Option<MultiRowInserts>>,
        samples: &[NewSample<'_>],
        source_id: Option<i64>,
    ) -> Result<Vec<InsertOutcome>, SamplesRefused> {
        let whole = |error: anyhow::Error| SamplesRefused { index: None, error };
        let mut multi_row = multi_row.borrow_mut();
        if multi_row.is_none() {
            *multi_row = Some(MultiRowInserts::prepare(conn).map_err(whole)?);
        }
        let multi_row = multi_row.as_mut().expect("prepared above");
        let next_id = |sql: &str| -> anyhow::Result<i64> {
            Ok(conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?)
        };
        let mut next_round = next_id(NEXT_ROUND_ID).map_err(whole)?;
        let mut next_answer = next_id(NEXT_ANSWER_ID).map_err(whole)?;
        let mut waiting = Waiting {
            rounds: Vec::with_capacity(2 * ROWS_PER_INSERT),
            answers: Vec::with_capacity(2 * ROWS_PER_INSERT),
        };
        let mut outcomes = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            let outcome = insert_sample_row(conn, s.sample, s.content_hash, s.lists, source_id)
                .map_err(|error| SamplesRefused {
                    index: Some(i),
                    error,
                })?;
            if let InsertOutcome::Inserted(key) = outcome {
                for (position, round) in s.sample.rounds.iter().enumerate() {
                    let round_id = next_round;
                    next_round += 1;
                    let row = (round_id, key, position as i64, round.question.as_str());
                    waiting.rounds.push(row);
                    for (a, text) in round.answers.iter().enumerate() {
                        waiting
                            .answers
                            .push((next_answer, round_id, a as i64, text.as_str()));
                        next_answer += 1;
                    }
                }
                if waiting.rounds.len() >= ROWS_PER_INSERT
                    || waiting.answers.len() >= ROWS_PER_INSERT
                {
                    waiting.insert(conn, multi_row).map_err(whole)?;
                }
            }
            outcomes.push(outcome);
        }
        waiting.insert(conn, multi_row).map_err(whole)?;
        Ok(outcomes)
    }

    /// The sample's own row unless its id is stored: [`InsertOutcome::Inserted`] with the new
    /// row's id, or what the stored sample is to this one.
    fn insert_sample_row(
        conn: &Connection,
        sample: &Sample,
        hash: &str,
        lists: &SampleLists,
        source_id: Option<i64>,
    ) -> anyhow::Result<InsertOutcome> {
        let inserted = conn
            .prepare_cached(INSERT_SAMPLE)?
            .execute(params![
                sample.id,
                sample.image,
                sample.caption,
                lists.mentions,
                sample.fig_label,
                lists.domains,
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
        Ok(InsertOutcome::Inserted(conn.last_insert_rowid()))
    }

    /// A row of `rounds` (id, sample id, position, question) or of `answers` (id, round id,
    /// position, text).
    type Row<'a> = (i64, i64, i64, &'a str);

    /// `INSERT INTO table (id, parent, position, text)` with [`ROWS_PER_INSERT`] rows. `OR
    /// ROLLBACK`: a row refused here (a bug: every id is new) ends the whole import's
    /// transaction, as any error does, so SQLite needs no statement journal to undo half a
    /// statement (with `ABORT` it keeps one for each: see `Workspace::set_bulk_import`).
    fn multi_row_insert(table: &str, parent: &str, text: &str) -> String {
        let rows = vec!["(?,?,?,?)"; ROWS_PER_INSERT].join(",");
        format!("INSERT OR ROLLBACK INTO {table} (id, {parent}, position, {text}) VALUES {rows}")
    }

    /// The two multi-row inserts, as statements of the import's own (not rusqlite's), so that
    /// their texts are bound where they lie (`SQLITE_STATIC`): rusqlite binds every text with
    /// `SQLITE_TRANSIENT`, and SQLite then allocated and copied each answer and question once
    /// more before storing it (a tenth of the writer thread's time). Prepared once per import,
    /// finalised when the batch is dropped; each run binds, steps, then resets and clears its
    /// bindings, so no pointer to a text outlives the call that lent it.
    pub struct MultiRowInserts {
        rounds: RawStatement,
        answers: RawStatement,
    }

    impl MultiRowInserts {
        fn prepare(conn: &Connection) -> anyhow::Result<Self> {
            Ok(Self {
                rounds: RawStatement::prepare(
                    conn,
                    &multi_row_insert("rounds", "sample_id", "question"),
                )?,
                answers: RawStatement::prepare(
                    conn,
                    &multi_row_insert("answers", "round_id", "text"),
                )?,
            })
        }
    }

    /// A prepared statement owned here: its connection outlives it (the batch borrows the
    /// workspace), and it is used on the batch's thread only.
    struct RawStatement {
        db: *mut ffi::sqlite3,
        stmt: *mut ffi::sqlite3_stmt,
    }

    impl RawStatement {
        fn prepare(conn: &Connection, sql: &str) -> anyhow::Result<Self> {
            let len = c_int::try_from(sql.len()).context("the statement's length")?;
            let mut stmt = std::ptr::null_mut();
            // SAFETY: the handle is the live connection's; SQLite reads `len` bytes of `sql`
            // (no terminator needed) and writes the new statement to `stmt`.
            let (db, rc) = unsafe {
                let db = conn.handle();
                let rc = ffi::sqlite3_prepare_v3(
                    db,
                    sql.as_ptr().cast(),
                    len,
                    ffi::SQLITE_PREPARE_PERSISTENT,
                    &mut stmt,
                    std::ptr::null_mut(),
                );
                (db, rc)
            };
            let statement = Self { db, stmt };
            if rc != ffi::SQLITE_OK || stmt.is_null() {
                anyhow::bail!("cannot prepare the insert: {}", statement.error_message());
            }
            Ok(statement)
        }

        /// Binds `rows` (exactly [`ROWS_PER_INSERT`]) and runs the statement once.
        fn run(&mut self, rows: &[Row<'_>]) -> anyhow::Result<()> {
            debug_assert_eq!(rows.len(), ROWS_PER_INSERT);
            // SAFETY: the statement is live (finalised only on drop); each text is bound as
            // SQLITE_STATIC, borrowed from `rows`, which outlive this call; the bindings are
            // cleared before returning, so SQLite keeps no pointer into them.
            let rc = unsafe {
                let mut rc = ffi::SQLITE_OK;
                for (i, &(id, parent, position, text)) in rows.iter().enumerate() {
                    let at = 4 * i as c_int;
                    for (column, value) in [(1, id), (2, parent), (3, position)] {
                        if rc == ffi::SQLITE_OK {
                            rc = ffi::sqlite3_bind_int64(self.stmt, at + column, value);
                        }
                    }
                    if rc == ffi::SQLITE_OK {
                        rc = ffi::sqlite3_bind_text64(
                            self.stmt,
                            at + 4,
                            text.as_ptr().cast(),
                            text.len() as u64,
                            ffi::SQLITE_STATIC(),
                            ffi::SQLITE_UTF8 as u8,
                        );
                    }
                }
                if rc == ffi::SQLITE_OK {
                    rc = ffi::sqlite3_step(self.stmt);
                }
                ffi::sqlite3_reset(self.stmt);
                ffi::sqlite3_clear_bindings(self.stmt);
                rc
            };
            if rc != ffi::SQLITE_DONE {
                anyhow::bail!("{}", self.error_message());
            }
            Ok(())
        }

        fn error_message(&self) -> String {
            // SAFETY: the handle is live; SQLite's message is copied before any other call.
            unsafe {
                let message = ffi::sqlite3_errmsg(self.db);
                if message.is_null() {
                    "unknown SQLite error".to_string()
                } else {
                    std::ffi::CStr::from_ptr(message)
                        .to_string_lossy()
                        .into_owned()
                }
            }
        }
    }

    impl Drop for RawStatement {
        fn drop(&mut self) {
            // SAFETY: prepared by `prepare`, finalised once, here.
            unsafe {
                ffi::sqlite3_finalize(self.stmt);
            }
        }
    }

    /// Rows of rounds and answers waiting for their statements.
    struct Waiting<'a> {
        rounds: Vec<Row<'a>>,
        answers: Vec<Row<'a>>,
    }

    impl Waiting<'_> {
        /// Inserts the waiting rows, rounds first (the answers refer to them).
        fn insert(
            &mut self,
            conn: &Connection,
            multi_row: &mut MultiRowInserts,
        ) -> anyhow::Result<()> {
            insert_rows(
                conn,
                &mut multi_row.rounds,
                INSERT_ROUND_WITH_ID,
                &self.rounds,
            )
            .context("cannot insert the samples' rounds")?;
            self.rounds.clear();
            insert_rows(
                conn,
                &mut multi_row.answers,
                INSERT_ANSWER_WITH_ID,
                &self.answers,
            )
            .context("cannot insert the samples' answers")?;
            self.answers.clear();
            Ok(())
        }
    }

    /// `rows` in statements of [`ROWS_PER_INSERT`] rows (`many`), the rest one at a time (`one`).
    fn insert_rows(
        conn: &Connection,
        many: &mut RawStatement,
        one: &str,
        rows: &[Row<'_>],
    ) -> anyhow::Result<()> {
        let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
        for chunk in chunks.by_ref() {
            many.run(chunk)?;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut stmt = conn.prepare_cached(one)?;
            for &(id, parent, position, text) in rest {
                stmt.execute(params![id, parent, position, text])?;
            }
        }
        Ok(())
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

/// The import's samples on a server, a batch at a time: the samples go into a staging table
/// (TEMP, dropped at commit) with one `COPY`, one join finds those already stored, one
/// `INSERT … SELECT` moves the new ones in and returns their ids, and their rounds and answers
/// follow the same way — about ten round trips for a batch of thousands of samples, where a
/// statement per row made a 210K release take two minutes (issue 35). Ids come out in the
/// order one-at-a-time inserts give them (a batch is inserted in file order). Everything runs
/// under a savepoint: when the server refuses the batch (a sample that another import stored
/// meanwhile, a value it cannot take), the batch is rolled back to it and the samples go in one
/// at a time, which stores them after all or names the one refused.
mod copy {
    use std::cell::Cell;
    use std::collections::HashMap;

    use anyhow::Context;

    use super::super::db::{params, CopyRows, Db};
    use super::super::samples::insert_hashed_sample;
    use super::super::InsertOutcome;
    use super::{NewSample, SamplesRefused};

    const STAGE: &str = r#"
        CREATE TEMP TABLE vital_import_samples (
            seq BIGINT NOT NULL,
            ext_id TEXT COLLATE "C" NOT NULL,
            image TEXT COLLATE "C",
            caption TEXT COLLATE "C" NOT NULL,
            mentions TEXT COLLATE "C" NOT NULL,
            fig_label TEXT COLLATE "C",
            domains TEXT COLLATE "C" NOT NULL,
            is_demo BIGINT NOT NULL,
            content_hash TEXT COLLATE "C" NOT NULL
        ) ON COMMIT DROP;
        CREATE TEMP TABLE vital_import_rounds (
            sample_id BIGINT NOT NULL,
            position BIGINT NOT NULL,
            question TEXT COLLATE "C" NOT NULL
        ) ON COMMIT DROP"#;
    const EMPTY_STAGE: &str = "TRUNCATE vital_import_samples, vital_import_rounds";
    const COPY_SAMPLES: &str = "COPY vital_import_samples
        (seq, ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash) FROM STDIN";
    const STORED: &str = "SELECT st.seq, s.id, s.content_hash
        FROM vital_import_samples st JOIN samples s ON s.ext_id = st.ext_id";
    const COPY_ROUNDS: &str = "COPY vital_import_rounds (sample_id, position, question) FROM STDIN";
    const INSERT_ROUNDS: &str = "INSERT INTO rounds (sample_id, position, question)
        SELECT sample_id, position, question FROM vital_import_rounds ORDER BY sample_id, position
        RETURNING id, sample_id, position";
    const COPY_ANSWERS: &str = "COPY answers (round_id, position, text) FROM STDIN";
    const SAVEPOINT: &str = "SAVEPOINT vital_import_batch";

    /// The new samples of the staging table into `samples`, in file order, with their ids.
    fn insert_new(source_id: Option<i64>) -> String {
        let source = source_id.map_or_else(|| "NULL".to_string(), |id| id.to_string());
        format!(
            "INSERT INTO samples (ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash, source_id)
             SELECT ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash, {source}::BIGINT
             FROM vital_import_samples st
             WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.ext_id = st.ext_id)
             ORDER BY seq RETURNING id, ext_id"
        )
    }

    /// See [`super::ImportBatch::insert_samples`].
    pub fn insert_samples(
        db: &Db,
        staged: &Cell<bool>,
        samples: &[NewSample<'_>],
        source_id: Option<i64>,
    ) -> Result<Vec<InsertOutcome>, SamplesRefused> {
        if samples.is_empty() {
            return Ok(Vec::new());
        }
        let whole = |error| SamplesRefused { index: None, error };
        db.execute_batch(SAVEPOINT).map_err(whole)?;
        let was_staged = staged.get();
        let refusal = match set_wise(db, staged, samples, source_id) {
            Ok(outcomes) => {
                db.execute_batch("RELEASE SAVEPOINT vital_import_batch")
                    .map_err(whole)?;
                return Ok(outcomes);
            }
            Err(e) => e,
        };
        // Staging tables made since the savepoint are gone with it.
        staged.set(was_staged);
        if let Err(e) = db.execute_batch("ROLLBACK TO SAVEPOINT vital_import_batch") {
            return Err(whole(refusal.context(format!("and then: {e:#}"))));
        }
        tracing::warn!(error = %format!("{refusal:#}"), "the server refused a batch of samples; inserting them one at a time");
        let outcomes = samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                insert_hashed_sample(db, s.sample, s.content_hash, source_id).map_err(|error| {
                    SamplesRefused {
                        index: Some(i),
                        error,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        db.execute_batch("RELEASE SAVEPOINT vital_import_batch")
            .map_err(whole)?;
        Ok(outcomes)
    }

    fn set_wise(
        db: &Db,
        staged: &Cell<bool>,
        samples: &[NewSample<'_>],
        source_id: Option<i64>,
    ) -> anyhow::Result<Vec<InsertOutcome>> {
        if staged.get() {
            db.execute_batch(EMPTY_STAGE)?;
        } else {
            db.execute_batch(STAGE)
                .context("cannot create the import's staging tables")?;
            staged.set(true);
        }
        // The first sample with each id goes to the stage; a later one is compared with it.
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(samples.len());
        let mut rows = CopyRows::default();
        for (i, s) in samples.iter().enumerate() {
            let sample = s.sample;
            if first.contains_key(sample.id.as_str()) {
                continue;
            }
            first.insert(&sample.id, i);
            rows.int(i as i64)
                .text(&sample.id)
                .opt_text(sample.image.as_deref())
                .text(&sample.caption)
                .text(&s.lists.mentions)
                .opt_text(sample.fig_label.as_deref())
                .text(&s.lists.domains)
                .int(sample.is_demo as i64)
                .text(s.content_hash)
                .end_row();
        }
        db.copy_in(COPY_SAMPLES, &rows)?;
        let stored: HashMap<usize, (i64, String)> = db
            .query_vec(STORED, params![], |r| {
                Ok((r.get::<usize>(0)?, (r.get(1)?, r.get(2)?)))
            })?
            .into_iter()
            .collect();
        let new: Vec<usize> = (0..samples.len())
            .filter(|&i| first.get(samples[i].sample.id.as_str()) == Some(&i))
            .filter(|i| !stored.contains_key(i))
            .collect();
        let mut keys = vec![0i64; samples.len()];
        if !new.is_empty() {
            let inserted: HashMap<String, i64> = db
                .query_vec(&insert_new(source_id), params![], |r| {
                    Ok((r.get(1)?, r.get(0)?))
                })?
                .into_iter()
                .collect();
            anyhow::ensure!(
                inserted.len() == new.len(),
                "another import stored some of these samples meanwhile"
            );
            for &i in &new {
                keys[i] = *inserted
                    .get(&samples[i].sample.id)
                    .context("a new sample's id did not come back")?;
            }
            insert_rounds(db, samples, &new, &keys, &mut rows)?;
        }
        Ok(samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let f = first[s.sample.id.as_str()];
                let (key, stored_hash) = match stored.get(&f) {
                    Some((key, hash)) => (*key, hash.as_str()),
                    None if f == i => return InsertOutcome::Inserted(keys[i]),
                    None => (keys[f], samples[f].content_hash),
                };
                if stored_hash == s.content_hash {
                    InsertOutcome::Unchanged(key)
                } else {
                    InsertOutcome::Conflict { key }
                }
            })
            .collect())
    }

    /// The rounds of the new samples (`new`, their row ids in `keys`), then their answers.
    fn insert_rounds(
        db: &Db,
        samples: &[NewSample<'_>],
        new: &[usize],
        keys: &[i64],
        rows: &mut CopyRows,
    ) -> anyhow::Result<()> {
        rows.clear();
        for &i in new {
            for (position, round) in samples[i].sample.rounds.iter().enumerate() {
                rows.int(keys[i])
                    .int(position as i64)
                    .text(&round.question)
                    .end_row();
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        db.copy_in(COPY_ROUNDS, rows)?;
        let index_of: HashMap<i64, usize> = new.iter().map(|&i| (keys[i], i)).collect();
        let mut round_ids: Vec<Vec<i64>> = vec![Vec::new(); samples.len()];
        for &i in new {
            round_ids[i] = vec![0; samples[i].sample.rounds.len()];
        }
        db.for_each_row(INSERT_ROUNDS, params![], |r| {
            let (id, sample_key, position): (i64, i64, usize) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let slot = index_of
                .get(&sample_key)
                .and_then(|&i| round_ids[i].get_mut(position))
                .context("a new round's id came back for no round sent")?;
            *slot = id;
            Ok(())
        })?;
        rows.clear();
        for &i in new {
            for (round, ids) in samples[i].sample.rounds.iter().zip(&round_ids[i]) {
                for (position, text) in round.answers.iter().enumerate() {
                    rows.int(*ids).int(position as i64).text(text).end_row();
                }
            }
        }
        if !rows.is_empty() {
            db.copy_in(COPY_ANSWERS, rows)?;
        }
        Ok(())
    }
}
