//! Which samples an export keeps: ranking by selector, judge or clinician scores, and the
//! clinician-based selections.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::spec::{ScoreSource, Selection};
use crate::store::{Resolution, Verdicts, Workspace};

/// The selector run whose scores an export uses: `requested`, or the latest one (None if none).
pub fn resolve_run(ws: &Workspace, requested: Option<i64>) -> anyhow::Result<Option<i64>> {
    match requested {
        Some(id) => {
            if ws.selector_run_exists(id)? {
                Ok(Some(id))
            } else {
                anyhow::bail!(
                    "no selector run {id} (see `vital stats` for the runs this workspace has)"
                )
            }
        }
        // The latest run whose scores are complete, not one still training or scoring.
        None => ws.latest_selector_run(),
    }
}

/// Each sample's score from `by`; samples without one are absent. Fails, saying what to run,
/// when no score of that kind exists at all.
pub fn sample_scores(
    ws: &Workspace,
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
            let scores = ws.run_sample_scores(run)?;
            if scores.is_empty() {
                anyhow::bail!("selector run {run} has no sample scores: run `vital score`");
            }
            scores
        }
        ScoreSource::Judge => {
            let scores = ws.judge_sample_scores(judge)?;
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

/// How many of `n` ranked samples `p` percent keeps: `round(p·N)`, or the method's
/// `floor(p·N)` (1e-9 absorbs float error such as 0.3·10 = 2.9999…).
fn percent_cut(n: usize, p: f64, floor: bool) -> usize {
    let exact = n as f64 * p / 100.0;
    let keep = if floor {
        (exact + 1e-9).floor()
    } else {
        exact.round()
    };
    (keep as usize).min(n)
}

pub fn select(
    ws: &Workspace,
    selection: Selection,
    scores: Option<&HashMap<i64, f64>>,
    verdicts: &Verdicts,
) -> anyhow::Result<Chosen> {
    let total = ws.sample_count()?;
    Ok(match selection {
        Selection::All => Chosen::default(),
        Selection::Reviewed => {
            let keys = ws.reviewed_sample_keys()?;
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
        Selection::TopPercent(_)
        | Selection::TopPercentFloor(_)
        | Selection::TopN(_)
        | Selection::Threshold(_) => {
            let scores = scores.expect("ranked selections come with scores");
            let mut ranked: Vec<(i64, f64)> = scores
                .iter()
                .filter(|(_, s)| !s.is_nan())
                .map(|(k, s)| (*k, *s))
                .collect();
            // Best first; equal scores in import order, so the cut is reproducible.
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let keep = match selection {
                Selection::TopPercent(p) => percent_cut(ranked.len(), p, false),
                Selection::TopPercentFloor(p) => percent_cut(ranked.len(), p, true),
                Selection::TopN(n) => n.min(ranked.len()),
                Selection::Threshold(x) => ranked.iter().take_while(|(_, s)| *s >= x).count(),
                _ => unreachable!(),
            };
            ranked.truncate(keep);
            Chosen {
                cutoff: ranked.last().map(|(_, s)| *s),
                keys: Some(ranked.iter().map(|(k, _)| *k).collect()),
                ranked: Some(scores.len()),
                unscored: Some(total.saturating_sub(scores.len())),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::percent_cut;

    #[test]
    fn a_floor_cut_keeps_floor_of_p_times_n_where_the_default_rounds() {
        assert_eq!(percent_cut(7, 40.0, false), 3);
        assert_eq!(percent_cut(7, 40.0, true), 2);
        assert_eq!(percent_cut(9, 90.0, true), 8);
        assert_eq!(percent_cut(10, 30.0, true), 3, "0.3 · 10 is 3, not 2.999…");
        assert_eq!(percent_cut(5, 100.0, true), 5);
    }
}
