//! The curator's adjudication queue (`vital review --adjudicate`): samples whose reviewers
//! contradict each other on an answer that has no final decision yet, lowest agreement first.
//! A sample's agreement is the mean, over its answers decided by two or more reviewers, of the
//! majority's share of their verdicts: 1.0 when every such answer is unanimous, 0.5 when every
//! one is split evenly.

use std::collections::BTreeMap;

use super::agreement::Verdicts;
use super::Workspace;

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

    on_both_databases!(the_queue_holds_open_conflicts_lowest_agreement_first);
}
