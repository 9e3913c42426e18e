//! The reviewers' guidelines (`vital team guidelines FILE.md`): a text the curator stores in
//! versions 1, 2, … and never overwrites. Every decision records the version in force when it
//! was made (the latest stored by its time, journaled decisions included: `decisions.rs`), so
//! a curator can tell which decisions were made under which rules.
//!
//! Rules: only a curator stores a version; a text is at most [`MAX_GUIDELINES_BYTES`] of UTF-8;
//! storing the text in force again stores nothing (the same version stays, and no reviewer is
//! shown it again). The review screen shows the version in force to a reviewer who has made no
//! decision under it yet: at their first start and after each change.

use serde::Serialize;

use super::db::params;
use super::{Workspace, NOW};

/// The largest guidelines text stored (256 KiB: pages of rules, not a manual with figures).
pub const MAX_GUIDELINES_BYTES: usize = 256 * 1024;

/// One stored version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guidelines {
    pub version: i64,
    pub text: String,
    /// When it was stored (UTC, the workspace's timestamp format).
    pub stored_at: String,
    /// Who stored it (the curator's name or role).
    pub stored_by: String,
}

/// What storing a text did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new version.
    New(i64),
    /// The text is the version in force already: nothing stored.
    Unchanged(i64),
}

impl Workspace {
    /// Stores `text` as the next version of the guidelines (a curator's command).
    pub fn store_guidelines(&self, text: &str, by: &str) -> anyhow::Result<Stored> {
        self.ensure_curator("storing the guidelines")?;
        anyhow::ensure!(
            text.len() <= MAX_GUIDELINES_BYTES,
            "the guidelines are {} bytes: at most {MAX_GUIDELINES_BYTES} are stored",
            text.len()
        );
        let tx = self.db.begin_write()?;
        let current: Option<(i64, String)> = tx.query_opt(
            "SELECT version, text FROM team_guidelines ORDER BY version DESC LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some((version, stored)) = &current {
            if stored == text {
                return Ok(Stored::Unchanged(*version));
            }
        }
        let version = current.map_or(1, |(v, _)| v + 1);
        tx.execute(
            &format!(
                "INSERT INTO team_guidelines (version, text, stored_at, stored_by) VALUES (?1, ?2, {NOW}, ?3)"
            ),
            params![version, text, by],
        )?;
        tx.commit()?;
        Ok(Stored::New(version))
    }

    /// The version in force, if any was stored.
    pub fn current_guidelines(&self) -> anyhow::Result<Option<Guidelines>> {
        self.db.query_opt(
            "SELECT version, text, stored_at, stored_by FROM team_guidelines ORDER BY version DESC LIMIT 1",
            params![],
            |r| {
                Ok(Guidelines {
                    version: r.get(0)?,
                    text: r.get(1)?,
                    stored_at: r.get(2)?,
                    stored_by: r.get(3)?,
                })
            },
        )
    }

    /// Whether `reviewer` has made a decision under guidelines `version` (then they have seen
    /// it: the screen does not show it at their start).
    pub fn decided_under_guidelines(&self, reviewer: &str, version: i64) -> anyhow::Result<bool> {
        self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM judgments j JOIN reviewers rv ON rv.id = j.reviewer_id
                             WHERE rv.name = ?1 AND j.guidelines_version = ?2)",
            params![reviewer.trim(), version],
        )
    }

    /// The guidelines version recorded with decision event `event_id` (None: no guidelines were
    /// stored when it was made, or it came from a file).
    pub fn decision_guidelines_version(&self, event_id: i64) -> anyhow::Result<Option<i64>> {
        Ok(self
            .db
            .query_opt(
                "SELECT guidelines_version FROM judgments WHERE id = ?1",
                params![event_id],
                |r| r.get::<Option<i64>>(0),
            )?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};
    use crate::store::{DecisionKind, NewDecision};

    fn versions_are_stored_in_order_and_each_decision_records_the_one_in_force(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("q", &["a", "b"])]);
        let accept = |answer: usize| NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][answer]),
            kind: DecisionKind::Accept,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        assert_eq!(ws.current_guidelines().unwrap(), None);
        let before = ws.record("ana", &accept(0)).unwrap();
        assert_eq!(ws.decision_guidelines_version(before).unwrap(), None);

        assert_eq!(
            ws.store_guidelines("# Rules\nReject guesses.", "lead")
                .unwrap(),
            Stored::New(1)
        );
        assert_eq!(
            ws.store_guidelines("# Rules\nReject guesses.", "lead")
                .unwrap(),
            Stored::Unchanged(1),
            "the same text again stores nothing"
        );
        assert!(!ws.decided_under_guidelines("ana", 1).unwrap());
        let under_one = ws.record("ana", &accept(1)).unwrap();
        assert_eq!(ws.decision_guidelines_version(under_one).unwrap(), Some(1));
        assert!(ws.decided_under_guidelines("ana", 1).unwrap());
        assert!(!ws.decided_under_guidelines("ben", 1).unwrap());

        // A decision made offline before version 2 was stored keeps version 1.
        let made_offline = ws.db_now().unwrap();
        // The clock counts milliseconds: the next version is stored a few later.
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            ws.store_guidelines("# Rules\nReject guesses.\nName the organ.", "lead")
                .unwrap(),
            Stored::New(2)
        );
        let (late, _) = ws
            .record_once_made_at("ben", "uid-offline-1", &accept(0), Some(&made_offline))
            .unwrap();
        assert_eq!(ws.decision_guidelines_version(late).unwrap(), Some(1));
        let now = ws.record("ben", &accept(1)).unwrap();
        assert_eq!(ws.decision_guidelines_version(now).unwrap(), Some(2));
        let current = ws.current_guidelines().unwrap().unwrap();
        assert_eq!(
            (
                current.version,
                current.text.as_str(),
                current.stored_by.as_str()
            ),
            (2, "# Rules\nReject guesses.\nName the organ.", "lead")
        );
        // An empty text is a version too (the curator withdrew the rules).
        assert_eq!(ws.store_guidelines("", "lead").unwrap(), Stored::New(3));
        let too_long = "x".repeat(MAX_GUIDELINES_BYTES + 1);
        let err = ws.store_guidelines(&too_long, "lead").unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        assert_eq!(ws.current_guidelines().unwrap().unwrap().version, 3);
    }

    on_both_databases!(versions_are_stored_in_order_and_each_decision_records_the_one_in_force);
}
