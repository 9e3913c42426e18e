//! The review screen's local journal: every decision is first committed to a small SQLite file on
//! this machine (`journal.db` in the workspace's folder, synced), then sent to the workspace
//! under its client-made id. While the workspace cannot take it — the server is away, or an
//! import holds a directory's write lock — the decision waits here, durable; it is sent when the
//! workspace is back, oldest first, and removed once stored. Sending twice is harmless (the id
//! makes a resend a no-op), so a kill at any moment loses nothing and doubles nothing.

use std::path::Path;

use anyhow::Context;

use super::db::{params, Db};
use super::decisions::{CurrentDecision, DecisionKind, NewDecision};
use super::Workspace;

/// File name of the journal inside the workspace's folder.
pub const JOURNAL_FILE: &str = "journal.db";

/// Decisions made on this machine that the workspace has not stored yet.
pub struct Journal {
    db: Db,
    file: std::path::PathBuf,
}

/// One waiting decision.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDecision {
    pub seq: i64,
    pub uid: String,
    pub reviewer: String,
    pub decision: NewDecision,
    /// When the reviewer made it (UTC, the workspace's timestamp format).
    pub made_at: Option<String>,
}

impl Journal {
    /// Whether the journal in `dir` was emptied outside vital: its file is there with 0 bytes and
    /// no write-ahead log beside it. SQLite never leaves it so once the journal has been opened
    /// (its table is written at once), so decisions that waited in it, if any, are gone: the
    /// reviewer is told instead of losing them without a word.
    pub fn was_emptied(dir: &Path) -> bool {
        let file = dir.join(JOURNAL_FILE);
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        size(&file) == Some(0) && size(Path::new(&wal)).unwrap_or(0) == 0
    }

    /// Opens (creating if needed) the journal in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let file = dir.join(JOURNAL_FILE);
        let conn = rusqlite::Connection::open(&file)
            .with_context(|| format!("cannot open the decision journal {}", file.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Each decision is on this machine's disk before the screen says "saved".
        conn.pragma_update(None, "synchronous", "FULL")?;
        let db = Db::sqlite(conn);
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS pending (
                 seq INTEGER PRIMARY KEY,
                 uid TEXT NOT NULL UNIQUE,
                 reviewer TEXT NOT NULL,
                 sample_id INTEGER NOT NULL,
                 round_id INTEGER,
                 answer_id INTEGER,
                 kind TEXT NOT NULL,
                 value TEXT,
                 shown_order TEXT
             )",
        )
        .with_context(|| format!("cannot set up the decision journal {}", file.display()))?;
        // Journals written before decisions recorded whether the figure was shown, and when
        // they were made.
        for (column, kind) in [
            ("figure_shown", "INTEGER"),
            ("made_at", "TEXT"),
            ("set_aside", "TEXT"),
        ] {
            let has: i64 = db.query_value(
                "SELECT count(*) FROM pragma_table_info('pending') WHERE name = ?1",
                params![column],
            )?;
            if has == 0 {
                db.execute_batch(&format!("ALTER TABLE pending ADD COLUMN {column} {kind}"))
                    .with_context(|| {
                        format!("cannot update the decision journal {}", file.display())
                    })?;
            }
        }
        restrict_to_owner(&file);
        Ok(Self { db, file })
    }

    /// Keeps one decision until it is stored in the workspace.
    pub fn add(&self, reviewer: &str, uid: &str, d: &NewDecision) -> anyhow::Result<()> {
        let shown = d
            .shown_order
            .as_ref()
            .map(|o| serde_json::to_string(o).expect("ids serialise"));
        self.db
            .execute(
                "INSERT INTO pending (uid, reviewer, sample_id, round_id, answer_id, kind, value, shown_order, figure_shown, made_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                params![
                    uid,
                    reviewer,
                    d.sample_key,
                    d.round_id,
                    d.answer_id,
                    d.kind.as_str(),
                    d.value,
                    shown,
                    d.figure_shown.map(i64::from)
                ],
            )
            .context("cannot write the decision to the local journal")?;
        // The WAL file appears with the first write: owner-only too.
        restrict_to_owner(&self.file);
        Ok(())
    }

    /// `reviewer`'s waiting decisions, oldest first.
    /// `reviewer`'s waiting decisions, oldest first. An entry that cannot be read (an unknown
    /// kind, a broken display order) is set aside, kept for the curator and counted by
    /// [`Self::set_aside`], instead of blocking every later decision.
    pub fn pending(&self, reviewer: &str) -> anyhow::Result<Vec<PendingDecision>> {
        let rows = self.db.query_vec(
            "SELECT seq, uid, reviewer, sample_id, round_id, answer_id, kind, value, shown_order, figure_shown, made_at
             FROM pending WHERE reviewer = ?1 AND set_aside IS NULL ORDER BY seq",
            params![reviewer],
            |r| {
                let seq: i64 = r.get(0)?;
                let kind: String = r.get(6)?;
                let shown: Option<String> = r.get(8)?;
                let Some(kind) = DecisionKind::parse(&kind) else {
                    return Ok(Err((seq, format!("unknown decision kind `{kind}`"))));
                };
                let Ok(shown_order) = shown.map(|s| serde_json::from_str(&s)).transpose() else {
                    return Ok(Err((seq, "its display order is not JSON".to_string())));
                };
                Ok(Ok(PendingDecision {
                    seq,
                    uid: r.get(1)?,
                    reviewer: r.get(2)?,
                    decision: NewDecision {
                        sample_key: r.get(3)?,
                        round_id: r.get(4)?,
                        answer_id: r.get(5)?,
                        kind,
                        value: r.get(7)?,
                        shown_order,
                        figure_shown: r.get::<Option<i64>>(9)?.map(|v| v != 0),
                    },
                    made_at: r.get(10)?,
                }))
            },
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Ok(p) => out.push(p),
                Err((seq, why)) => {
                    tracing::warn!(seq, why, "a journal entry cannot be read: set aside");
                    self.db.execute(
                        "UPDATE pending SET set_aside = ?1 WHERE seq = ?2",
                        params![why, seq],
                    )?;
                }
            }
        }
        Ok(out)
    }

    /// How many of `reviewer`'s decisions wait to be sent.
    pub fn count(&self, reviewer: &str) -> anyhow::Result<usize> {
        self.db.query_value(
            "SELECT count(*) FROM pending WHERE reviewer = ?1 AND set_aside IS NULL",
            params![reviewer],
        )
    }

    /// How many of `reviewer`'s journal entries could not be read and were set aside (kept in
    /// the journal file for the curator; never sent).
    pub fn set_aside(&self, reviewer: &str) -> anyhow::Result<usize> {
        self.db.query_value(
            "SELECT count(*) FROM pending WHERE reviewer = ?1 AND set_aside IS NOT NULL",
            params![reviewer],
        )
    }

    fn remove(&self, seq: i64) -> anyhow::Result<()> {
        self.db
            .execute("DELETE FROM pending WHERE seq = ?1", params![seq])?;
        Ok(())
    }

    /// Drops `reviewer`'s oldest waiting decision (one the workspace refused outright).
    pub fn take_first(&self, reviewer: &str) -> anyhow::Result<Option<NewDecision>> {
        let Some(first) = self.pending(reviewer)?.into_iter().next() else {
            return Ok(None);
        };
        self.remove(first.seq)?;
        Ok(Some(first.decision))
    }

    /// Takes back `reviewer`'s latest waiting decision (an undo before it was ever sent).
    pub fn take_last(&self, reviewer: &str) -> anyhow::Result<Option<NewDecision>> {
        let Some(last) = self.pending(reviewer)?.pop() else {
            return Ok(None);
        };
        self.remove(last.seq)?;
        Ok(Some(last.decision))
    }
}

/// One review screen per reviewer on a workspace, on this machine: held while the screen runs.
/// Two screens of one reviewer shared the journal, and `u` in one took back the other's
/// decision.
pub struct ReviewerLock {
    _file: std::fs::File,
}

impl Journal {
    /// Takes `reviewer`'s screen lock beside the journal in `dir`, or says that another screen
    /// of theirs holds it.
    pub fn lock_reviewer(dir: &Path, reviewer: &str) -> anyhow::Result<ReviewerLock> {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(reviewer.as_bytes()));
        let path = dir.join(format!("journal.{}.lock", &digest[..16]));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the review lock {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor owned by `file` for the call.
            let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if taken != 0 {
                anyhow::bail!(
                    "another review screen of `{reviewer}` is open on this workspace on this machine: one screen per reviewer (close the other first)"
                );
            }
        }
        Ok(ReviewerLock { _file: file })
    }
}

/// The journal and its WAL files readable by their owner only: they hold a clinician's decisions
/// before any server's access rules apply.
fn restrict_to_owner(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

impl Workspace {
    /// Sends `reviewer`'s waiting decisions, oldest first, each removed from the journal once the
    /// workspace has stored it. Returns how many were sent; stops at the first failure (the rest
    /// wait for the next try).
    pub fn send_journal(&self, journal: &Journal, reviewer: &str) -> anyhow::Result<usize> {
        let mut sent = 0;
        for p in journal.pending(reviewer)? {
            self.record_once_made_at(&p.reviewer, &p.uid, &p.decision, p.made_at.as_deref())?;
            journal.remove(p.seq)?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// `stored` (the decisions in force as the workspace last reported them) with the waiting
/// decisions applied on top, in order: what the reviewer sees while decisions wait.
pub fn with_pending(
    mut stored: Vec<CurrentDecision>,
    pending: &[PendingDecision],
    sample_key: i64,
) -> Vec<CurrentDecision> {
    for p in pending
        .iter()
        .filter(|p| p.decision.sample_key == sample_key)
    {
        let d = &p.decision;
        let Ok(slot) = d.kind.slot(d.sample_key, d.round_id, d.answer_id) else {
            continue;
        };
        stored.retain(|c| {
            c.kind.slot(c.sample_key, c.round_id, c.answer_id).ok() != Some(slot.clone())
        });
        stored.push(CurrentDecision {
            // Not stored yet: no event id of the workspace's (negative, so never confused).
            event_id: -p.seq,
            sample_key: d.sample_key,
            round_id: d.round_id,
            answer_id: d.answer_id,
            kind: d.kind,
            value: d.value.clone(),
        });
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};

    fn verdict(s: &crate::store::StoredSample, a: usize, kind: DecisionKind) -> NewDecision {
        NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][a]),
            kind,
            value: None,
            shown_order: Some(vec![s.answer_ids[0][1], s.answer_ids[0][0]]),
            figure_shown: None,
        }
    }

    fn waiting_decisions_are_sent_once_in_order_and_survive_a_reopen(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("q", &["a1", "a2"])]);
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let (first, second) = (
            crate::store::new_decision_uid(),
            crate::store::new_decision_uid(),
        );
        journal
            .add("ana", &first, &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        journal
            .add("ana", &second, &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        journal
            .add(
                "ben",
                &crate::store::new_decision_uid(),
                &verdict(&s, 1, DecisionKind::Accept),
            )
            .unwrap();
        // What the reviewer sees meanwhile: the later decision in the slot.
        let shown = with_pending(Vec::new(), &journal.pending("ana").unwrap(), s.key);
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].kind, DecisionKind::Reject);
        drop(journal);
        // A kill here loses nothing: the journal is a file.
        let journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.count("ana").unwrap(), 2);
        // The first was sent before, but its reply was lost: sending it again stores it once.
        ws.record_once("ana", &first, &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        assert_eq!(ws.send_journal(&journal, "ana").unwrap(), 2);
        assert_eq!(journal.count("ana").unwrap(), 0);
        assert_eq!(
            journal.count("ben").unwrap(),
            1,
            "only the reviewer's own are sent"
        );
        assert_eq!(ws.decision_event_count().unwrap(), 2);
        let now = ws.current_decisions("ana", s.key).unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!(now[0].kind, DecisionKind::Reject);
        assert_eq!(ws.send_journal(&journal, "ana").unwrap(), 0);
        assert_eq!(ws.decision_event_count().unwrap(), 2);
        assert!(journal.take_last("ben").unwrap().is_some());
        assert_eq!(journal.count("ben").unwrap(), 0);
    }

    fn an_unreadable_entry_is_set_aside_and_the_decisions_after_it_are_sent_with_their_time(
        db: TestDb,
    ) {
        let (ws, s) = workspace_with_rounds_on(db, &[("q", &["a1", "a2"])]);
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let add = |a, kind| {
            journal
                .add(
                    "ana",
                    &crate::store::new_decision_uid(),
                    &verdict(&s, a, kind),
                )
                .unwrap()
        };
        add(0, DecisionKind::Accept);
        // An entry no version of vital can read (a newer kind, a hand edit).
        journal
            .db
            .execute(
                "UPDATE pending SET kind = 'shrug' WHERE seq = (SELECT min(seq) FROM pending)",
                params![],
            )
            .unwrap();
        add(1, DecisionKind::Reject);
        // Made an hour ago, offline.
        journal
            .db
            .execute(
                "UPDATE pending SET made_at = '2026-01-02T03:04:05.000Z' WHERE kind = 'reject'",
                params![],
            )
            .unwrap();
        assert_eq!(ws.send_journal(&journal, "ana").unwrap(), 1);
        assert_eq!(journal.count("ana").unwrap(), 0);
        assert_eq!(journal.set_aside("ana").unwrap(), 1, "kept for the curator");
        let made: String = ws
            .db
            .query_value(
                "SELECT created_at FROM judgments WHERE kind = 'reject'",
                params![],
            )
            .unwrap();
        assert_eq!(
            made, "2026-01-02T03:04:05.000Z",
            "stored with the time it was made"
        );
    }

    #[test]
    fn a_journal_emptied_outside_vital_is_noticed_and_a_normal_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Journal::was_emptied(dir.path()), "no journal yet");
        let journal = Journal::open(dir.path()).unwrap();
        drop(journal);
        assert!(!Journal::was_emptied(dir.path()), "a journal vital wrote");
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.path().join(format!("{JOURNAL_FILE}{suffix}"));
            if suffix.is_empty() {
                std::fs::write(&path, b"").unwrap();
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
        assert!(Journal::was_emptied(dir.path()));
    }

    #[cfg(unix)]
    #[test]
    fn the_journal_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (_ws, s) = workspace_with_rounds_on(TestDb::Sqlite, &[("q", &["a1", "a2"])]);
        let journal = Journal::open(dir.path()).unwrap();
        journal
            .add(
                "ana",
                &crate::store::new_decision_uid(),
                &verdict(&s, 0, DecisionKind::Accept),
            )
            .unwrap();
        for name in [JOURNAL_FILE, "journal.db-wal"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name}: {mode:o}");
        }
    }

    on_both_databases!(
        waiting_decisions_are_sent_once_in_order_and_survive_a_reopen,
        an_unreadable_entry_is_set_aside_and_the_decisions_after_it_are_sent_with_their_time
    );
}
