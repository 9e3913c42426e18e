//! How the team is doing (`vital team status`): per reviewer, samples finished and leased now,
//! pace, agreement with the others and when they were last active; overall, complete samples
//! against planned ones and when the rest will be done at the current pace.
//!
//! Pace is measured over time spent deciding: the gaps between a reviewer's consecutive
//! decisions, a gap longer than [`BREAK_SECONDS`] counting as a break (not as work). On a team
//! server a reviewer's role reads only its own decisions (blind review), so a reviewer's status
//! holds their own row; a curator's holds everyone's.

use serde::Serialize;

use super::agreement::Verdicts;
use super::db::{params, Dialect};
use super::Workspace;

/// A pause longer than this between two decisions is a break, not time spent on the second.
pub const BREAK_SECONDS: f64 = 600.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerStatus {
    pub reviewer: String,
    /// Samples whose answered rounds all carry this reviewer's decision (their place is done).
    pub samples_done: i64,
    /// Places held now.
    pub leased_now: i64,
    /// Decision events (undos excluded).
    pub decisions: i64,
    pub decisions_per_hour: Option<f64>,
    pub median_seconds_per_decision: Option<f64>,
    /// Cohen's κ with each other reviewer, averaged over shared answers (None: no shared ones).
    pub kappa_with_others: Option<f64>,
    /// Answers this reviewer shares with another reviewer.
    pub shared_answers: usize,
    /// The time of their latest decision (as stored, UTC).
    pub last_active: Option<String>,
    /// Gold answers they decided (`vital import --gold`), and how many matched the known
    /// verdict.
    pub gold_decided: i64,
    pub gold_correct: i64,
    /// `gold_correct / gold_decided` (None: no gold answer decided).
    pub gold_accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamStatus {
    pub reviewers: Vec<ReviewerStatus>,
    /// Samples with their planned number of reviewers finished.
    pub complete: i64,
    /// Samples with something to decide.
    pub planned: i64,
    /// Places still to finish (a sample planned for K needs K).
    pub places_left: i64,
    /// Places finished per hour, the team's reviewers' paces added.
    pub places_per_hour: Option<f64>,
    /// Hours until every place is finished at that pace.
    pub eta_hours: Option<f64>,
    /// Whether the status holds every reviewer (false: a reviewer's own row only).
    pub everyone: bool,
}

impl Workspace {
    /// The team's status; on a server a reviewer's connection sees its own row only.
    pub fn team_status(&self) -> anyhow::Result<TeamStatus> {
        let everyone = self.is_curator()?;
        let me = self.role()?;
        let times = self.decision_times()?;
        let places = self.places_by_reviewer()?;
        let pairs = Verdicts::load(&self.db)?.agreement().pairs;
        let gold = self.gold_accuracy()?;
        let mut names: Vec<String> = times
            .iter()
            .map(|(n, _, _)| n.clone())
            .chain(places.iter().map(|p| p.reviewer.clone()))
            .chain(gold.iter().map(|g| g.reviewer.clone()))
            .filter(|n| n != super::FINAL_REVIEWER && n != "imported")
            .collect();
        names.sort();
        names.dedup();
        if !everyone {
            names.retain(|n| Some(n) == me.as_ref());
        }
        let mut reviewers = Vec::new();
        for name in names {
            let mine: Vec<i64> = times
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, ms, _)| *ms)
                .collect();
            let last_active = times
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, _, at)| at.clone())
                .max();
            let (per_hour, median) = pace(&mine);
            let (mut weighted, mut shared) = (0.0, 0usize);
            for pair in pairs.iter().filter(|p| p.a == name || p.b == name) {
                if let Some(k) = pair.cohen_kappa {
                    weighted += k * pair.items as f64;
                    shared += pair.items;
                }
            }
            let place = places.iter().find(|p| p.reviewer == name);
            let on_gold = gold.iter().find(|g| g.reviewer == name);
            reviewers.push(ReviewerStatus {
                samples_done: place.map_or(0, |p| p.done),
                leased_now: place.map_or(0, |p| p.leased),
                decisions: mine.len() as i64,
                decisions_per_hour: per_hour,
                median_seconds_per_decision: median,
                kappa_with_others: (shared > 0).then(|| weighted / shared as f64),
                shared_answers: shared,
                last_active,
                gold_decided: on_gold.map_or(0, |g| g.decided),
                gold_correct: on_gold.map_or(0, |g| g.correct),
                gold_accuracy: on_gold.and_then(|g| g.share()),
                reviewer: name,
            });
        }
        let (complete, planned, places_left) = self.plan_progress()?;
        // Places finished per hour: each reviewer's samples per hour of work, added.
        let mut places_per_hour = None;
        for r in &reviewers {
            if let (Some(per_hour), true) = (r.decisions_per_hour, r.decisions > 0) {
                let places = r.samples_done as f64 * per_hour / r.decisions as f64;
                *places_per_hour.get_or_insert(0.0) += places;
            }
        }
        let places_per_hour = places_per_hour.filter(|p: &f64| *p > 0.0);
        Ok(TeamStatus {
            eta_hours: places_per_hour.map(|p| places_left as f64 / p),
            places_per_hour,
            complete,
            planned,
            places_left,
            everyone,
            reviewers,
        })
    }

    /// Every decision event this connection may read (undos excluded): (reviewer, ms since
    /// 1970, time as stored), oldest first per reviewer. Rows whose time is not in the stored
    /// form are left out.
    fn decision_times(&self) -> anyhow::Result<Vec<(String, i64, String)>> {
        let ms = match self.db.dialect() {
            Dialect::Sqlite => {
                "CAST((julianday(j.created_at) - 2440587.5) * 86400000.0 AS INTEGER)"
            }
            Dialect::Postgres => {
                "CAST(extract(epoch FROM CAST(j.created_at AS timestamptz)) * 1000 AS BIGINT)"
            }
        };
        let shaped = match self.db.dialect() {
            Dialect::Sqlite => "j.created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'",
            Dialect::Postgres => "j.created_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$'",
        };
        self.db
            .query_vec(
                &format!(
                    "SELECT rv.name, CASE WHEN {shaped} THEN {ms} END, j.created_at
                 FROM judgments j JOIN reviewers rv ON rv.id = j.reviewer_id
                 WHERE j.kind <> 'undo' ORDER BY rv.name, j.created_at, j.id"
                ),
                params![],
                |r| Ok((r.get(0)?, r.get::<Option<i64>>(1)?, r.get(2)?)),
            )
            .map(|rows| {
                rows.into_iter()
                    .filter_map(|(name, ms, at)| ms.map(|ms| (name, ms, at)))
                    .collect()
            })
    }
}

/// (decisions per hour of work, median seconds per decision) from decision times in ms, oldest
/// first: the gaps between consecutive decisions, breaks left out.
pub fn pace(times_ms: &[i64]) -> (Option<f64>, Option<f64>) {
    let mut gaps: Vec<f64> = times_ms
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1000.0)
        .filter(|&s| (0.0..=BREAK_SECONDS).contains(&s))
        .collect();
    if gaps.is_empty() {
        return (None, None);
    }
    let worked: f64 = gaps.iter().sum();
    gaps.sort_by(f64::total_cmp);
    let n = gaps.len();
    let median = if n % 2 == 1 {
        gaps[n / 2]
    } else {
        (gaps[n / 2 - 1] + gaps[n / 2]) / 2.0
    };
    let per_hour = (worked > 0.0).then(|| n as f64 * 3600.0 / worked);
    (per_hour, Some(median))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_counts_work_between_decisions_and_leaves_breaks_out() {
        assert_eq!(pace(&[]), (None, None));
        assert_eq!(pace(&[1_000]), (None, None));
        // 10 s, 20 s, then a 2-hour break, then 30 s.
        let times = [0, 10_000, 30_000, 7_230_000, 7_260_000];
        let (per_hour, median) = pace(&times);
        assert_eq!(median, Some(20.0));
        let per_hour = per_hour.expect("a pace");
        assert!((per_hour - 3.0 * 3600.0 / 60.0).abs() < 1e-9, "{per_hour}");
    }
}
