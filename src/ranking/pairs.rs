//! Preference pairs from the workspace, built the method's way.

use std::collections::BTreeSet;

use crate::selector::{PairSource, PreferencePair};
use crate::store::Workspace;

/// Clinician pairs in force: a ✓ and a ✗ answer to the same question, or an explicit preference.
/// The same (winner, loser) from several reviewers counts once.
pub fn human_pairs(ws: &Workspace) -> anyhow::Result<Vec<PreferencePair>> {
    let mut stmt = ws
        .conn()
        .prepare("SELECT DISTINCT winner, loser FROM human_pairs ORDER BY winner, loser")?;
    let pairs = stmt
        .query_map([], |r| {
            Ok(PreferencePair {
                winner: r.get(0)?,
                loser: r.get(1)?,
                source: PairSource::Human,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(pairs)
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
