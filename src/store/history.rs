//! The raw record of what was stored, event by event: every clinician decision event (undos included)
//! and every selector answer score of every run. For audits and end-to-end tests; the review
//! screen and exports read the decisions in force instead.

use super::db::params;
use super::Workspace;

/// One judgment event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEvent {
    pub event_id: i64,
    pub reviewer_id: i64,
    pub sample_key: i64,
    pub round_id: Option<i64>,
    pub answer_id: Option<i64>,
    /// accept, reject, prefer, tie, rate, flag, note, demo, or undo.
    pub kind: String,
    pub value: Option<String>,
    /// JSON array of the answer ids in the order they were shown.
    pub shown_order: Option<String>,
    /// The event an `undo` cancels.
    pub undoes: Option<i64>,
    pub created_at: String,
}

/// One answer score of one selector run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectorAnswerScore {
    pub run_id: i64,
    pub answer_id: i64,
    pub score: f64,
}

impl Workspace {
    /// Every judgment event, oldest first.
    pub fn decision_events(&self) -> anyhow::Result<Vec<DecisionEvent>> {
        self.db.query_vec(
            "SELECT id, reviewer_id, sample_id, round_id, answer_id, kind, value, shown_order, undoes, created_at
             FROM judgments ORDER BY id",
            params![],
            |r| {
                Ok(DecisionEvent {
                    event_id: r.get(0)?,
                    reviewer_id: r.get(1)?,
                    sample_key: r.get(2)?,
                    round_id: r.get(3)?,
                    answer_id: r.get(4)?,
                    kind: r.get(5)?,
                    value: r.get(6)?,
                    shown_order: r.get(7)?,
                    undoes: r.get(8)?,
                    created_at: r.get(9)?,
                })
            },
        )
    }

    /// How many decision events are stored (undo events included): grows by one per event.
    pub fn decision_event_count(&self) -> anyhow::Result<i64> {
        self.db
            .query_value("SELECT count(*) FROM judgments", params![])
    }

    /// Every selector answer score of every run, by answer id (then run).
    pub fn selector_answer_scores(&self) -> anyhow::Result<Vec<SelectorAnswerScore>> {
        self.db.query_vec(
            "SELECT run_id, answer_id, score FROM selector_scores ORDER BY answer_id, run_id",
            params![],
            |r| {
                Ok(SelectorAnswerScore {
                    run_id: r.get(0)?,
                    answer_id: r.get(1)?,
                    score: r.get(2)?,
                })
            },
        )
    }
}
