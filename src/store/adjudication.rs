//! The curator's adjudication queue (`vital review --adjudicate`): samples whose reviewers
//! contradict each other on an answer that has no final decision yet, lowest agreement first.
//! A sample's agreement is the mean, over its answers decided by two or more reviewers, of the
//! majority's share of their verdicts: 1.0 when every such answer is unanimous, 0.5 when every
//! one is split evenly.
//!
//! Beside each answer the adjudicator sees every reviewer's verdict in force with its time, the
//! reviewer's reason for a ✗ and their correction of the answer ([`Workspace::answer_reviews`]).
//! On a server these reads go through the decision views, so a reviewer's role sees only its own
//! rows (blind review): only a curator's screen shows the others.

use std::collections::BTreeMap;

use super::agreement::Verdicts;
use super::db::params;
use super::Workspace;

/// One reviewer's verdict in force on one answer, with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerReview {
    pub answer_id: i64,
    /// The reviewer's name ([`super::FINAL_REVIEWER`] for a final decision).
    pub reviewer: String,
    pub accepted: bool,
    /// When the verdict was recorded (the log's `created_at`, UTC).
    pub at: String,
    /// Why they rejected it, when they said (none once accepted, as on the review screen).
    pub reason: Option<String>,
    /// Their corrected text of the answer, when they edited it.
    pub correction: Option<String>,
    /// A final decision's adjudicator (the event's value).
    pub by: Option<String>,
}

impl Workspace {
    /// (sample key, agreement) of every sample awaiting adjudication, lowest agreement first
    /// (ties in key order). A curator's: it reads every reviewer's verdicts.
    pub fn adjudication_queue(&self) -> anyhow::Result<Vec<(i64, f64)>> {
        self.ensure_curator("adjudication")?;
        let verdicts = Verdicts::load(&self.db)?;
        // sample → (sum of majority shares, answers counted, an unresolved conflict)
        let mut samples: BTreeMap<i64, (f64, usize, bool)> = BTreeMap::new();
        for votes in verdicts.answers.values() {
            let n = votes.votes.len();
            if n < 2 {
                continue;
            }
            let majority = votes.accepts().max(votes.rejects()) as f64 / n as f64;
            let entry = samples.entry(votes.sample_key).or_default();
            entry.0 += majority;
            entry.1 += 1;
            entry.2 |= votes.is_conflict() && votes.final_decision.is_none();
        }
        let mut queue: Vec<(i64, f64)> = samples
            .into_iter()
            .filter(|(_, (_, _, open))| *open)
            .map(|(key, (sum, n, _))| (key, sum / n as f64))
            .collect();
        queue.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        Ok(queue)
    }

    /// Every reviewer's verdict in force on the answers of one sample, with its time, reason
    /// and correction; by answer, then reviewer. A preference in force counts as ✓ for the
    /// preferred answer and ✗ for the others of its round (as the agreement figures count it).
    pub fn answer_reviews(&self, sample_key: i64) -> anyhow::Result<Vec<AnswerReview>> {
        // (answer, reviewer, kind, value, created_at): verdicts, then reasons and corrections.
        let rows: Vec<(i64, String, String, Option<String>, String)> = self.db.query_vec(
            "SELECT c.answer_id, rv.name, c.kind, c.value, c.created_at FROM current_judgments c
               JOIN reviewers rv ON rv.id = c.reviewer_id
              WHERE c.sample_id = ?1 AND c.answer_id IS NOT NULL
                AND c.kind IN ('accept', 'reject', 'reason', 'edit')
             UNION ALL
             SELECT a.id, rv.name,
                    CASE WHEN CAST(a.id AS TEXT) = c.value THEN 'accept' ELSE 'reject' END,
                    NULL, c.created_at
               FROM current_judgments c JOIN reviewers rv ON rv.id = c.reviewer_id
               JOIN answers a ON a.round_id = c.round_id
              WHERE c.sample_id = ?1 AND c.kind = 'prefer'",
            params![sample_key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let mut by_answer: BTreeMap<(i64, String), AnswerReview> = BTreeMap::new();
        let mut extras: Vec<(i64, String, String, Option<String>)> = Vec::new();
        for (answer_id, reviewer, kind, value, at) in rows {
            match kind.as_str() {
                "accept" | "reject" => {
                    let review = AnswerReview {
                        answer_id,
                        reviewer: reviewer.clone(),
                        accepted: kind == "accept",
                        by: value.filter(|_| reviewer == super::FINAL_REVIEWER),
                        at,
                        reason: None,
                        correction: None,
                    };
                    // A verdict and a preference on one answer: the later one is in force.
                    let slot = by_answer
                        .entry((answer_id, reviewer))
                        .or_insert(review.clone());
                    if slot.at < review.at {
                        *slot = review;
                    }
                }
                _ => extras.push((answer_id, reviewer, kind, value)),
            }
        }
        for (answer_id, reviewer, kind, value) in extras {
            if let Some(review) = by_answer.get_mut(&(answer_id, reviewer)) {
                let value = value.filter(|v| !v.trim().is_empty());
                if kind == "reason" {
                    review.reason = value.filter(|_| !review.accepted);
                } else {
                    review.correction = value;
                }
            }
        }
        Ok(by_answer.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{
        insert, on_both_databases, sample_with_rounds, TestDb, TestWorkspace,
    };
    use crate::store::{DecisionKind, NewDecision};

    fn verdict(key: i64, round: i64, answer: i64, accept: bool) -> NewDecision {
        NewDecision {
            sample_key: key,
            round_id: Some(round),
            answer_id: Some(answer),
            kind: if accept {
                DecisionKind::Accept
            } else {
                DecisionKind::Reject
            },
            value: None,
            shown_order: None,
            figure_shown: None,
        }
    }

    fn the_queue_holds_open_conflicts_lowest_agreement_first(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let mut stored = Vec::new();
        for id in ["mild", "split", "agreed"] {
            let mut sample = sample_with_rounds(&[("q", &["a", "b"])]);
            sample.id = id.into();
            let key = insert(&ws, &sample);
            stored.push(ws.load_sample(key).unwrap().unwrap());
        }
        let (mild, split, agreed) = (&stored[0], &stored[1], &stored[2]);
        // mild: 2 of 3 accept answer a, all accept b → (2/3 + 1) / 2.
        for (who, a) in [("ana", true), ("ben", true), ("cy", false)] {
            ws.record(
                who,
                &verdict(mild.key, mild.round_ids[0], mild.answer_ids[0][0], a),
            )
            .unwrap();
            ws.record(
                who,
                &verdict(mild.key, mild.round_ids[0], mild.answer_ids[0][1], true),
            )
            .unwrap();
        }
        // split: 1 against 1 on both answers → 0.5.
        for (who, a) in [("ana", true), ("ben", false)] {
            for answer in &split.answer_ids[0] {
                ws.record(who, &verdict(split.key, split.round_ids[0], *answer, a))
                    .unwrap();
            }
        }
        // agreed: unanimous, not in the queue.
        for who in ["ana", "ben"] {
            ws.record(
                who,
                &verdict(
                    agreed.key,
                    agreed.round_ids[0],
                    agreed.answer_ids[0][0],
                    true,
                ),
            )
            .unwrap();
        }
        let queue = ws.adjudication_queue().unwrap();
        assert_eq!(queue.len(), 2, "{queue:?}");
        assert_eq!(queue[0], (split.key, 0.5));
        assert_eq!(queue[1].0, mild.key);
        assert!((queue[1].1 - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        // A final decision on the split answers takes the sample out.
        for answer in &split.answer_ids[0] {
            ws.record_final("curator", *answer, true).unwrap();
        }
        let queue = ws.adjudication_queue().unwrap();
        assert_eq!(
            queue.iter().map(|q| q.0).collect::<Vec<_>>(),
            vec![mild.key]
        );
    }

    fn note(key: i64, round: i64, answer: i64, kind: DecisionKind, text: &str) -> NewDecision {
        NewDecision {
            kind,
            value: Some(text.into()),
            ..verdict(key, round, answer, true)
        }
    }

    fn each_reviewer_s_verdict_comes_with_its_time_reason_and_correction(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let key = insert(&ws, &sample_with_rounds(&[("q", &["a", "b"])]));
        let s = ws.load_sample(key).unwrap().unwrap();
        let (round, a, b) = (s.round_ids[0], s.answer_ids[0][0], s.answer_ids[0][1]);
        ws.record("ana", &verdict(key, round, a, true)).unwrap();
        ws.record(
            "ana",
            &note(key, round, a, DecisionKind::Edit, "a, corrected"),
        )
        .unwrap();
        ws.record("ben", &verdict(key, round, a, false)).unwrap();
        ws.record(
            "ben",
            &note(key, round, a, DecisionKind::Reason, "wrong organ"),
        )
        .unwrap();
        // Cy rejected b with a reason, then accepted it: the reason no longer explains anything.
        ws.record("cy", &verdict(key, round, b, false)).unwrap();
        ws.record("cy", &note(key, round, b, DecisionKind::Reason, "vague"))
            .unwrap();
        ws.record("cy", &verdict(key, round, b, true)).unwrap();
        // Dan preferred b: ✓ for b, ✗ for a.
        ws.record(
            "dan",
            &NewDecision {
                kind: DecisionKind::Prefer,
                value: Some(b.to_string()),
                answer_id: None,
                ..verdict(key, round, b, true)
            },
        )
        .unwrap();
        ws.record_final("lead", a, false).unwrap();
        let reviews = ws.answer_reviews(key).unwrap();
        type Row<'a> = (
            i64,
            &'a str,
            bool,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let got: Vec<Row> = reviews
            .iter()
            .map(|r| {
                (
                    r.answer_id,
                    r.reviewer.as_str(),
                    r.accepted,
                    r.reason.as_deref(),
                    r.correction.as_deref(),
                    r.by.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (a, "ana", true, None, Some("a, corrected"), None),
                (a, "ben", false, Some("wrong organ"), None, None),
                (a, "dan", false, None, None, None),
                (a, "final", false, None, None, Some("lead")),
                (b, "cy", true, None, None, None),
                (b, "dan", true, None, None, None),
            ]
        );
        for r in &reviews {
            assert!(
                r.at.len() >= 16 && r.at.as_bytes()[10] == b'T',
                "a UTC time as stored: {}",
                r.at
            );
        }
    }

    on_both_databases!(the_queue_holds_open_conflicts_lowest_agreement_first);
    on_both_databases!(each_reviewer_s_verdict_comes_with_its_time_reason_and_correction);
}
