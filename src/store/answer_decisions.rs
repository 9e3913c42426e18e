//! The clinicians' ✓/✗ decisions in force on each answer of a sample, by reviewer (what
//! `vital show` prints beside every answer).

use anyhow::Context;

use super::db::params;
use super::Workspace;

/// One reviewer's accept or reject of one answer, in force now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerDecision {
    pub answer_id: i64,
    pub reviewer: String,
    pub accepted: bool,
}

impl Workspace {
    /// Accepts and rejects in force on the answers of one sample (preferences and round or
    /// sample decisions left out), in the order they were made.
    pub fn answer_decisions(&self, sample_key: i64) -> anyhow::Result<Vec<AnswerDecision>> {
        self.db
            .query_vec(
                "SELECT c.answer_id, r.name, c.kind FROM current_judgments c JOIN reviewers r ON r.id = c.reviewer_id
                 WHERE c.sample_id = ?1 AND c.answer_id IS NOT NULL AND c.kind IN ('accept', 'reject') ORDER BY c.id",
                params![sample_key],
                |r| {
                    Ok(AnswerDecision {
                        answer_id: r.get(0)?,
                        reviewer: r.get(1)?,
                        accepted: r.get::<String>(2)? == "accept",
                    })
                },
            )
            .with_context(|| format!("cannot read the decisions on sample row {sample_key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};

    use crate::store::{DecisionKind, NewDecision};

    fn only_accepts_and_rejects_in_force_are_listed(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("q", &["a1", "a2"])]);
        let on = |answer: usize, kind| NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][answer]),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        ws.record("ana", &on(0, DecisionKind::Accept)).unwrap();
        ws.record("ana", &on(0, DecisionKind::Reject)).unwrap();
        ws.record("ben", &on(1, DecisionKind::Accept)).unwrap();
        assert_eq!(
            ws.answer_decisions(s.key).unwrap(),
            vec![
                AnswerDecision {
                    answer_id: s.answer_ids[0][0],
                    reviewer: "ana".into(),
                    accepted: false,
                },
                AnswerDecision {
                    answer_id: s.answer_ids[0][1],
                    reviewer: "ben".into(),
                    accepted: true,
                },
            ]
        );
    }

    on_both_databases!(only_accepts_and_rejects_in_force_are_listed);
}
