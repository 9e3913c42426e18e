//! Preference pairs from the workspace, built the method's way.

use std::collections::BTreeSet;

use crate::selector::{PairSource, PreferencePair};
use crate::store::Workspace;

/// Clinician pairs in force: a ✓ and a ✗ answer to the same question, or an explicit preference.
/// The same (winner, loser) from several reviewers counts once; when reviewers contradict each
/// other (one says A > B, another B > A) neither pair is used until a final decision settles it
/// (final decisions are recorded under their own reviewer and make their own pair).
pub fn human_pairs(ws: &Workspace) -> anyhow::Result<Vec<PreferencePair>> {
    let all: BTreeSet<(i64, i64)> = ws.human_pair_votes()?.into_iter().collect();
    let finals: BTreeSet<(i64, i64)> = ws
        .human_pairs_by(crate::store::FINAL_REVIEWER)?
        .into_iter()
        .collect();
    Ok(all
        .iter()
        .filter(|&&(w, l)| {
            // A contradicted pair survives only if a final decision made it; its reverse never does.
            let contradicted = all.contains(&(l, w));
            !contradicted || (finals.contains(&(w, l)) && !finals.contains(&(l, w)))
        })
        .map(|&(winner, loser)| PreferencePair {
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
}
