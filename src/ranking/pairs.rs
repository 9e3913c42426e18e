//! Preference pairs from the workspace, built the method's way.

use std::collections::BTreeSet;

use crate::selector::{PairSource, PreferencePair};
use crate::store::Workspace;

/// Clinician pairs in force: a ✓ and a ✗ answer to the same question, or an explicit preference.
/// The same (winner, loser) from several reviewers counts once; when reviewers contradict each
/// other (one says A > B, another B > A) neither pair is used until a final decision settles it
/// (final decisions are recorded under their own reviewer and make their own pair).
pub fn human_pairs(ws: &Workspace) -> anyhow::Result<Vec<PreferencePair>> {
    let mut stmt = ws
        .conn()
        .prepare("SELECT DISTINCT winner, loser FROM human_pairs ORDER BY winner, loser")?;
    let all: BTreeSet<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<_, _>>()?;
    let finals: BTreeSet<(i64, i64)> = ws
        .conn()
        .prepare(
            "SELECT DISTINCT h.winner, h.loser FROM human_pairs h JOIN reviewers r ON r.id = h.reviewer_id
             WHERE r.name = ?1",
        )?
        .query_map([crate::store::FINAL_REVIEWER], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<_, _>>()?;
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
    let mut stmt = ws.conn().prepare(
        "WITH scored AS (
             SELECT a.id, a.round_id, avg(m.score) AS score FROM answers a JOIN model_scores m ON m.answer_id = a.id
             GROUP BY a.id)
         SELECT w.id, l.id FROM scored w JOIN scored l ON w.round_id = l.round_id AND w.score - l.score >= ?1
         ORDER BY w.id, l.id",
    )?;
    let pairs = stmt
        .query_map([min_gap.max(1e-9)], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?
        .filter(|p| p.as_ref().map_or(true, |p| !human.contains(p)))
        .map(|p| {
            p.map(|(winner, loser)| PreferencePair {
                winner,
                loser,
                source: PairSource::Judge,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DecisionKind, NewJudgment};

    #[test]
    fn contradicting_reviewers_give_no_pair_until_a_final_decision() {
        let (_dir, ws, stored) =
            crate::store::test_support::workspace_with_rounds(&[("q", &["a", "b"])]);
        let key = stored.key;
        let (a, b) = (stored.answer_ids[0][0], stored.answer_ids[0][1]);
        let verdict = |answer, kind| NewJudgment {
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
