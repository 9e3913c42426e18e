//! Where an exported answer's verdict came from (README, "Team work"): `single` (one reviewer),
//! `unanimous` (two or more, all agreeing), `majority` (two or more, more on one side),
//! `adjudicated` (a final decision in force, whatever the reviewers said) and `unresolved`
//! (reviewers split evenly, no final decision). An answer no reviewer decided has none.
//!
//! Read from the same verdicts the export resolves answers with, so a record's provenance and
//! the verdict that put it there never disagree.

use serde::Serialize;

use crate::store::Verdicts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    Single,
    Unanimous,
    Majority,
    Adjudicated,
    Unresolved,
}

/// The provenance of answer `answer_id`'s verdict; `None` when no reviewer decided it.
pub fn of(verdicts: &Verdicts, answer_id: i64) -> Option<Provenance> {
    let votes = verdicts.answers.get(&answer_id)?;
    if votes.final_decision.is_some() {
        return Some(Provenance::Adjudicated);
    }
    let (accepts, rejects) = (votes.accepts(), votes.rejects());
    Some(match (accepts + rejects, accepts.cmp(&rejects)) {
        (0, _) => return None,
        (1, _) => Provenance::Single,
        (_, std::cmp::Ordering::Equal) => Provenance::Unresolved,
        _ if accepts == 0 || rejects == 0 => Provenance::Unanimous,
        _ => Provenance::Majority,
    })
}

/// How many exported answers had each provenance (the manifest's `provenance`): the kept
/// answer of each written round (`llava`, `demos`), the chosen and rejected answer of each
/// written pair (`dpo`, `pairs`; a correction against its original is counted in
/// `counts.edit_pairs` instead). Other formats count nothing here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProvenanceCounts {
    pub single: usize,
    pub unanimous: usize,
    pub majority: usize,
    pub adjudicated: usize,
    pub unresolved: usize,
    /// No reviewer decided the answer (chosen by score, or a model pair).
    pub undecided: usize,
}

impl ProvenanceCounts {
    pub fn add(&mut self, provenance: Option<Provenance>) {
        *match provenance {
            Some(Provenance::Single) => &mut self.single,
            Some(Provenance::Unanimous) => &mut self.unanimous,
            Some(Provenance::Majority) => &mut self.majority,
            Some(Provenance::Adjudicated) => &mut self.adjudicated,
            Some(Provenance::Unresolved) => &mut self.unresolved,
            None => &mut self.undecided,
        } += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::agreement::{AnswerVotes, FinalDecision, Vote};

    fn votes(accepts: &[bool], adjudicated: bool) -> Verdicts {
        let mut verdicts = Verdicts::default();
        verdicts.answers.insert(
            7,
            AnswerVotes {
                sample_key: 1,
                round_id: 2,
                votes: accepts
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Vote {
                        reviewer: i as i64,
                        accepted: *a,
                        event_id: i as i64,
                    })
                    .collect(),
                final_decision: adjudicated.then(|| FinalDecision {
                    accepted: true,
                    event_id: 99,
                    by: Some("lead".into()),
                }),
            },
        );
        verdicts
    }

    #[test]
    fn each_kind_of_verdict_has_its_provenance() {
        use Provenance::*;
        for (accepts, adjudicated, want) in [
            (&[][..], false, None),
            (&[true][..], false, Some(Single)),
            (&[false][..], false, Some(Single)),
            (&[true, true][..], false, Some(Unanimous)),
            (&[false, false, false][..], false, Some(Unanimous)),
            (&[true, true, false][..], false, Some(Majority)),
            (&[true, false][..], false, Some(Unresolved)),
            (&[true, false][..], true, Some(Adjudicated)),
            (&[true][..], true, Some(Adjudicated)),
        ] {
            assert_eq!(
                of(&votes(accepts, adjudicated), 7),
                want,
                "{accepts:?} adjudicated {adjudicated}"
            );
        }
        assert_eq!(
            of(&Verdicts::default(), 7),
            None,
            "an answer nobody decided"
        );
        let mut counts = ProvenanceCounts::default();
        for p in [Some(Single), Some(Single), Some(Adjudicated), None] {
            counts.add(p);
        }
        assert_eq!(
            (counts.single, counts.adjudicated, counts.undecided),
            (2, 1, 1)
        );
    }

    use std::sync::atomic::AtomicBool;

    use crate::export::{run, ExportFormat, ExportRequest, Selection};
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};
    use crate::store::{DecisionKind, NewDecision};

    fn exports_carry_each_answer_s_provenance(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(
            db,
            &[
                ("q1", &["a1", "b1"]),
                ("q2", &["a2", "b2"]),
                ("q3", &["a3", "b3"]),
            ],
        );
        let vote = |who: &str, r: usize, a: usize, accept: bool| {
            let decision = NewDecision {
                sample_key: s.key,
                round_id: Some(s.round_ids[r]),
                answer_id: Some(s.answer_ids[r][a]),
                kind: if accept {
                    DecisionKind::Accept
                } else {
                    DecisionKind::Reject
                },
                value: None,
                shown_order: None,
                figure_shown: None,
            };
            ws.record(who, &decision).unwrap();
        };
        // q1: a1 by a majority, b1 rejected by all. q2: a2 by one reviewer, b2 split then
        // adjudicated ✗. q3: a3 split evenly, b3 undecided.
        for (who, a, b) in [
            ("ana", true, false),
            ("ben", true, false),
            ("cy", false, false),
        ] {
            vote(who, 0, 0, a);
            if who != "cy" {
                vote(who, 0, 1, b);
            }
        }
        vote("ana", 1, 0, true);
        vote("ana", 1, 1, false);
        vote("ben", 1, 1, true);
        ws.record_final("lead", s.answer_ids[1][1], false).unwrap();
        vote("ana", 2, 0, true);
        vote("ben", 2, 0, false);

        let dir = tempfile::tempdir().unwrap();
        let export = |format, name: &str| {
            let req = ExportRequest::new(Selection::All, format, dir.path().join(name));
            let summary = run(&ws, &req, &|_| {}, &AtomicBool::new(false)).unwrap();
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&summary.manifest).unwrap()).unwrap();
            let text = std::fs::read_to_string(&summary.output).unwrap();
            (manifest["provenance"].clone(), text)
        };
        let (counts, text) = export(ExportFormat::Dpo, "dpo.jsonl");
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<(&str, &str)> = records
            .iter()
            .map(|r| {
                (
                    r["chosen_provenance"].as_str().unwrap(),
                    r["rejected_provenance"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![("majority", "unanimous"), ("single", "adjudicated")]
        );
        assert_eq!(
            counts,
            serde_json::json!({"single": 1, "unanimous": 1, "majority": 1, "adjudicated": 1,
                "unresolved": 0, "undecided": 0})
        );
        // LLaVA: the kept answer of each round (q3: a3, split evenly, is no one's ✗).
        let (counts, _) = export(ExportFormat::Llava, "all.json");
        assert_eq!(
            counts,
            serde_json::json!({"single": 1, "unanimous": 0, "majority": 1, "adjudicated": 0,
                "unresolved": 1, "undecided": 0})
        );
    }

    on_both_databases!(exports_carry_each_answer_s_provenance);
}
