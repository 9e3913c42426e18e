//! Reviewers' corrected answers (edit decisions in force) with what they corrected and why: the
//! rows of `export --format edits`, the `chosen` side of DPO pairs from edits, and the text a
//! `llava` export puts in place of an original.

use serde::Serialize;

use super::db::params;
use super::decisions::REASON_OVERRULED;
use super::Workspace;

/// One edit in force, with the answer it corrects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditRecord {
    #[serde(skip)]
    pub event_id: i64,
    #[serde(skip)]
    pub sample_key: i64,
    #[serde(skip)]
    pub answer_id: i64,
    /// The sample's id.
    pub id: String,
    /// 1-based round.
    pub round: i64,
    /// 1-based answer ("Answer 1").
    pub answer: i64,
    pub question: String,
    pub original: String,
    pub edited: String,
    pub reviewer: String,
    /// The reviewer's reason for rejecting the original, if given (at most one in force).
    pub reasons: Vec<String>,
    /// When the edit was recorded (UTC, ISO 8601).
    pub time: String,
}

impl Workspace {
    /// Every edit in force (all reviewers), in sample, round, answer, then recording order. An
    /// "edit" back to the original text (which the screen and import refuse) is no correction.
    pub fn edits(&self) -> anyhow::Result<Vec<EditRecord>> {
        self.db.query_vec(
            &format!("SELECT j.id, s.id, a.id, s.ext_id, r.position, a.position, r.question, a.text, j.value,
                    rv.name, j.created_at,
                    (SELECT c.value FROM current_judgments c
                     WHERE c.kind = 'reason' AND c.answer_id = j.answer_id AND c.reviewer_id = j.reviewer_id
                       AND NOT {REASON_OVERRULED})
             FROM current_judgments j
             JOIN answers a ON a.id = j.answer_id
             JOIN rounds r ON r.id = a.round_id
             JOIN samples s ON s.id = r.sample_id
             JOIN reviewers rv ON rv.id = j.reviewer_id
             WHERE j.kind = 'edit' AND j.value IS NOT NULL AND j.value <> a.text
             ORDER BY s.id, r.position, a.position, j.id"),
            params![],
            |r| {
                let reason: Option<String> = r.get(11)?;
                Ok(EditRecord {
                    event_id: r.get(0)?,
                    sample_key: r.get(1)?,
                    answer_id: r.get(2)?,
                    id: r.get(3)?,
                    round: r.get::<i64>(4)? + 1,
                    answer: r.get::<i64>(5)? + 1,
                    question: r.get(6)?,
                    original: r.get(7)?,
                    edited: r.get(8)?,
                    reviewer: r.get(9)?,
                    reasons: reason.into_iter().collect(),
                    time: r.get(10)?,
                })
            },
        )
    }

    /// The latest edit in force of each edited answer (several reviewers: the last recorded).
    pub fn latest_edits(&self) -> anyhow::Result<std::collections::HashMap<i64, EditRecord>> {
        let mut out: std::collections::HashMap<i64, EditRecord> = Default::default();
        for edit in self.edits()? {
            match out.get(&edit.answer_id) {
                Some(kept) if kept.event_id > edit.event_id => {}
                _ => {
                    out.insert(edit.answer_id, edit);
                }
            }
        }
        Ok(out)
    }
}
