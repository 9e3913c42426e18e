//! Reviewers' ✓/✗ verdicts in force, one row per reviewer and answer: the rows of `vital export
//! --format verdicts`, which `vital import --format verdicts` reads back.
//!
//! A verdict is the rule the agreement figures and training use ([`Verdicts`]): a reviewer's
//! latest ✓/✗ on the answer or preference on its round (a preference accepts the preferred answer
//! and rejects the others). The reserved reviewers are left out: `final` (adjudications, which
//! `vital resolve` makes) and `imported` (marks carried by pair files, which those files carry).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::agreement::Verdicts;
use super::db::params;
use super::Workspace;

/// The reviewer `vital import` records the marks of pair files under (`import::IMPORTED_REVIEWER`;
/// the store does not depend on the importer).
const IMPORTED: &str = "imported";

/// One reviewer's verdict in force on one answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRow {
    #[serde(skip)]
    pub sample_key: i64,
    /// The sample's id.
    pub sample_id: String,
    /// 1-based.
    pub round: i64,
    /// 1-based ("Answer 1").
    pub answer: i64,
    /// `accept` or `reject`.
    pub verdict: &'static str,
    pub reviewer: String,
    /// When the decision in force was recorded (UTC, RFC 3339).
    pub time: String,
}

impl Workspace {
    /// Every reviewer's verdict in force (the reserved reviewers left out), in sample, round,
    /// answer, reviewer order.
    pub fn verdict_rows(&self) -> anyhow::Result<Vec<VerdictRow>> {
        let verdicts = Verdicts::load(&self.db)?;
        let decided: HashSet<i64> = verdicts.answers.keys().copied().collect();
        // (sample key, sample id, round position, answer position) of each decided answer.
        let mut places: HashMap<i64, (i64, String, i64, i64)> = HashMap::new();
        self.db.for_each_row(
            "SELECT a.id, s.id, s.ext_id, r.position, a.position FROM answers a
             JOIN rounds r ON r.id = a.round_id JOIN samples s ON s.id = r.sample_id
             WHERE a.round_id IN (SELECT round_id FROM current_judgments
                                  WHERE kind IN ('accept', 'reject', 'prefer'))",
            params![],
            |r| {
                let id: i64 = r.get(0)?;
                if decided.contains(&id) {
                    places.insert(id, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
                }
                Ok(())
            },
        )?;
        let mut times: HashMap<i64, String> = HashMap::new();
        self.db.for_each_row(
            "SELECT j.id, j.created_at FROM judgments j
             WHERE j.id IN (SELECT id FROM current_judgments WHERE kind IN ('accept', 'reject', 'prefer'))",
            params![],
            |r| {
                times.insert(r.get(0)?, r.get(1)?);
                Ok(())
            },
        )?;
        let reserved = [super::FINAL_REVIEWER, IMPORTED];
        let mut rows = Vec::new();
        for (answer, votes) in &verdicts.answers {
            let Some((sample_key, sample_id, round, position)) = places.get(answer) else {
                continue;
            };
            for vote in &votes.votes {
                let Some(name) = verdicts.reviewers.get(&vote.reviewer) else {
                    continue;
                };
                if reserved.contains(&name.as_str()) {
                    continue;
                }
                rows.push(VerdictRow {
                    sample_key: *sample_key,
                    sample_id: sample_id.clone(),
                    round: round + 1,
                    answer: position + 1,
                    verdict: if vote.accepted { "accept" } else { "reject" },
                    reviewer: name.clone(),
                    time: times.get(&vote.event_id).cloned().unwrap_or_default(),
                });
            }
        }
        rows.sort_by(|a, b| {
            (a.sample_key, a.round, a.answer, &a.reviewer).cmp(&(
                b.sample_key,
                b.round,
                b.answer,
                &b.reviewer,
            ))
        });
        Ok(rows)
    }
}
