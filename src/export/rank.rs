//! Which samples an export keeps: ranking by selector, judge or clinician scores, and the
//! clinician-based selections.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::spec::{ScoreSource, Selection};
use crate::store::{Resolution, Verdicts};

/// The selector run whose scores an export uses: `requested`, or the latest one (None if none).
pub fn resolve_run(conn: &Connection, requested: Option<i64>) -> anyhow::Result<Option<i64>> {
    match requested {
        Some(id) => {
            let found: Option<i64> = conn
                .query_row("SELECT id FROM selector_runs WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            match found {
                Some(id) => Ok(Some(id)),
                None => anyhow::bail!(
                    "no selector run {id} (see `vital stats` for the runs this workspace has)"
                ),
            }
        }
        // The latest run whose scores are complete, not one still training or scoring.
        None => Ok(conn.query_row(crate::store::LATEST_SCORED_RUN, [], |r| r.get(0))?),
    }
}

/// Each sample's score from `by`; samples without one are absent. Fails, saying what to run,
/// when no score of that kind exists at all.
pub fn sample_scores(
    conn: &Connection,
    by: ScoreSource,
    run: Option<i64>,
    judge: Option<&str>,
    verdicts: &Verdicts,
) -> anyhow::Result<HashMap<i64, f64>> {
    let scores: HashMap<i64, f64> = match by {
        ScoreSource::Selector => {
            let Some(run) = run else {
                anyhow::bail!("no selector run yet: run `vital train` and `vital score` (or rank with --by judge or --by human)");
            };
            let mut stmt =
                conn.prepare("SELECT sample_id, score FROM sample_scores WHERE run_id = ?1")?;
            let scores = stmt
                .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<HashMap<_, _>, _>>()?;
            if scores.is_empty() {
                anyhow::bail!("selector run {run} has no sample scores: run `vital score`");
            }
            scores
        }
        ScoreSource::Judge => {
            let mut stmt = conn.prepare(
                "WITH per_answer AS (
                     SELECT answer_id, avg(score) AS s FROM model_scores
                     WHERE ?1 IS NULL OR judge = ?1 GROUP BY answer_id),
                 per_round AS (
                     SELECT a.round_id, max(p.s) AS best FROM per_answer p JOIN answers a ON a.id = p.answer_id
                     GROUP BY a.round_id)
                 SELECT r.sample_id, avg(pr.best) FROM per_round pr JOIN rounds r ON r.id = pr.round_id
                 GROUP BY r.sample_id",
            )?;
            let scores = stmt
                .query_map([judge], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<HashMap<_, _>, _>>()?;
            if scores.is_empty() {
                match judge {
                    Some(j) => anyhow::bail!(
                        "no scores by judge `{j}`: import them (`vital import scores.jsonl`) or run `vital judge`"
                    ),
                    None => anyhow::bail!(
                        "no judge scores yet: import them (`vital import scores.jsonl`) or run `vital judge`"
                    ),
                }
            }
            scores
        }
        ScoreSource::Human => {
            let mut counts: HashMap<i64, (u32, u32)> = HashMap::new();
            for votes in verdicts.answers.values() {
                let c = counts.entry(votes.sample_key).or_default();
                match votes.resolution() {
                    Resolution::Accepted => c.0 += 1,
                    Resolution::Rejected => c.1 += 1,
                    _ => {}
                }
            }
            let scores: HashMap<i64, f64> = counts
                .into_iter()
                .filter(|(_, (a, r))| a + r > 0)
                .map(|(k, (a, r))| (k, f64::from(a) / f64::from(a + r)))
                .collect();
            if scores.is_empty() {
                anyhow::bail!(
                    "no clinician verdicts yet: review answers first (or rank with --by selector or --by judge)"
                );
            }
            scores
        }
    };
    Ok(scores)
}

/// The outcome of a selection.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Chosen {
    /// Sample keys kept; `None` means every sample.
    #[serde(skip)]
    pub keys: Option<HashSet<i64>>,
    /// Samples with a score (ranked selections only).
    pub ranked: Option<usize>,
    /// Samples without a score, left out by a ranked selection.
    pub unscored: Option<usize>,
    /// The lowest score kept (ranked selections only).
    pub cutoff: Option<f64>,
}

pub fn select(
    conn: &Connection,
    selection: Selection,
    scores: Option<&HashMap<i64, f64>>,
    verdicts: &Verdicts,
) -> anyhow::Result<Chosen> {
    let total: i64 = conn.query_row("SELECT count(*) FROM samples", [], |r| r.get(0))?;
    Ok(match selection {
        Selection::All => Chosen::default(),
        Selection::Reviewed => {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT c.sample_id FROM current_judgments c
                 WHERE c.kind IN ('accept', 'reject', 'prefer', 'tie', 'rate')",
            )?;
            let keys = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<HashSet<i64>, _>>()?;
            Chosen {
                keys: Some(keys),
                ..Default::default()
            }
        }
        Selection::Accepted => Chosen {
            keys: Some(
                verdicts
                    .answers
                    .values()
                    .filter(|v| v.resolution() == Resolution::Accepted)
                    .map(|v| v.sample_key)
                    .collect(),
            ),
            ..Default::default()
        },
        Selection::TopPercent(_) | Selection::TopN(_) | Selection::Threshold(_) => {
            let scores = scores.expect("ranked selections come with scores");
            let mut ranked: Vec<(i64, f64)> = scores
                .iter()
                .filter(|(_, s)| !s.is_nan())
                .map(|(k, s)| (*k, *s))
                .collect();
            // Best first; equal scores in import order, so the cut is reproducible.
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let keep = match selection {
                Selection::TopPercent(p) => {
                    ((ranked.len() as f64 * p / 100.0).round() as usize).min(ranked.len())
                }
                Selection::TopN(n) => n.min(ranked.len()),
                Selection::Threshold(x) => ranked.iter().take_while(|(_, s)| *s >= x).count(),
                _ => unreachable!(),
            };
            ranked.truncate(keep);
            Chosen {
                cutoff: ranked.last().map(|(_, s)| *s),
                keys: Some(ranked.iter().map(|(k, _)| *k).collect()),
                ranked: Some(scores.len()),
                unscored: Some((total as usize).saturating_sub(scores.len())),
            }
        }
    })
}
