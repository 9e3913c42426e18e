//! Preference pairs from the workspace, built the method's way.

use std::collections::BTreeSet;

use crate::selector::{PairSource, PreferencePair};
use crate::store::Workspace;

/// Clinician pairs in force: a ✓ and a ✗ answer to the same question, or an explicit preference.
/// The same (winner, loser) from several reviewers counts once; when reviewers contradict each
/// other (one says A > B, another B > A) neither pair is used until a final decision settles it
/// (final decisions are recorded under their own reviewer and make their own pair).
pub fn human_pairs(ws: &Workspace) -> anyhow::Result<Vec<PreferencePair>> {
    Ok(ws
        .human_training_pairs()?
        .into_iter()
        .map(|(winner, loser)| PreferencePair {
            winner,
            loser,
            source: PairSource::Human,
        })
        .collect())
}

/// Judge pairs: two answers to the same question whose mean judge scores differ by at least
/// `min_gap`; the higher one wins. Answers the clinicians already paired are left to them.
pub fn judge_pairs(ws: &Workspace, min_gap: f64) -> anyhow::Result<Vec<PreferencePair>> {
    let human: BTreeSet<(i64, i64)> = human_pairs(ws)?
        .into_iter()
        .flat_map(|p| [(p.winner, p.loser), (p.loser, p.winner)])
        .collect();
    let pairs = ws
        .judge_score_pairs(min_gap)?
        .into_iter()
        .filter(|p| !human.contains(p))
        .map(|(winner, loser)| PreferencePair {
            winner,
            loser,
            source: PairSource::Judge,
        })
        .collect();
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DecisionKind, NewDecision};

    #[test]
    fn contradicting_reviewers_give_no_pair_until_a_final_decision() {
        let (_dir, ws, stored) =
            crate::store::test_support::workspace_with_rounds(&[("q", &["a", "b"])]);
        let key = stored.key;
        let (a, b) = (stored.answer_ids[0][0], stored.answer_ids[0][1]);
        let verdict = |answer, kind| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[0]),
            answer_id: Some(answer),
            kind,
            value: None,
            shown_order: None,
        };
        ws.record("ana", &verdict(a, DecisionKind::Accept)).unwrap();
        ws.record("ana", &verdict(b, DecisionKind::Reject)).unwrap();
        let pairs = human_pairs(&ws).unwrap();
        assert_eq!(
            pairs,
            vec![PreferencePair {
                winner: a,
                loser: b,
                source: PairSource::Human
            }]
        );
        ws.record("ben", &verdict(a, DecisionKind::Reject)).unwrap();
        ws.record("ben", &verdict(b, DecisionKind::Accept)).unwrap();
        assert!(
            human_pairs(&ws).unwrap().is_empty(),
            "a contradiction trains nothing"
        );
        ws.record_final("chief", b, true).unwrap();
        ws.record_final("chief", a, false).unwrap();
        let pairs = human_pairs(&ws).unwrap();
        assert_eq!(
            pairs,
            vec![PreferencePair {
                winner: b,
                loser: a,
                source: PairSource::Human
            }]
        );
    }

    /// One rule for training pairs and agreement: a reviewer's latest decision on a round wins
    /// (a preference accepts the preferred answer and rejects the others).
    #[test]
    fn the_latest_decision_of_a_reviewer_on_a_round_wins_for_pairs_and_agreement() {
        let (_dir, ws, stored) = crate::store::test_support::workspace_with_rounds(&[
            ("q1", &["a", "b"]),
            ("q2", &["c", "d", "e"]),
        ]);
        let key = stored.key;
        let ids = &stored.answer_ids;
        let (a, b) = (ids[0][0], ids[0][1]);
        let (c, d, e) = (ids[1][0], ids[1][1], ids[1][2]);
        let verdict = |round: usize, answer, kind| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[round]),
            answer_id: Some(answer),
            kind,
            value: None,
            shown_order: None,
        };
        let prefer = |round: usize, answer: i64| NewDecision {
            sample_key: key,
            round_id: Some(stored.round_ids[round]),
            answer_id: None,
            kind: DecisionKind::Prefer,
            value: Some(answer.to_string()),
            shown_order: None,
        };
        // ✓A ✗B, then prefer B: B > A.
        ws.record("ana", &verdict(0, a, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(0, b, DecisionKind::Reject))
            .unwrap();
        ws.record("ana", &prefer(0, b)).unwrap();
        // Prefer C, then ✓D: C and D accepted, E rejected.
        ws.record("ana", &prefer(1, c)).unwrap();
        ws.record("ana", &verdict(1, d, DecisionKind::Accept))
            .unwrap();
        let pairs: Vec<(i64, i64)> = human_pairs(&ws)
            .unwrap()
            .into_iter()
            .map(|p| (p.winner, p.loser))
            .collect();
        let mut expected = vec![(b, a), (c, e), (d, e)];
        expected.sort();
        assert_eq!(pairs, expected);
        // The agreement figures read the same verdicts.
        let verdicts = ws.verdicts().unwrap();
        use crate::store::Resolution::{Accepted, Rejected};
        assert_eq!(
            [a, b, c, d, e].map(|x| verdicts.resolution(x)),
            [Rejected, Accepted, Accepted, Accepted, Rejected]
        );
        assert_eq!(ws.stats().unwrap().human_pairs, pairs.len() as i64);
    }
}
