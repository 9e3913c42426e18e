//! Selector runs and their scores: writing a run's results, and reading the per-sample signals
//! the review queue orders by (score, and how uncertain the selector is).

use std::collections::HashMap;

use super::db::params;

use super::{Workspace, NOW};

/// SQL for the latest run whose scores are complete.
pub const LATEST_SCORED_RUN: &str = "SELECT max(run_id) FROM sample_scores";

/// Answer scores written per transaction.
const SCORE_WRITE_CHUNK: usize = 50_000;

/// What the queue can order a sample by, from the latest selector run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RankSignals {
    /// The sample's score (sample_scores of the run).
    pub score: Option<f64>,
    /// Smallest gap between the two best answers of any round: small = the selector can hardly
    /// tell them apart.
    pub margin: Option<f64>,
    /// Rounds where the selector's order of two answers contradicts the judge's.
    pub judge_conflicts: u32,
}

impl Workspace {
    /// Records a new selector run; returns its id.
    pub fn create_selector_run(
        &self,
        backend: &str,
        config_json: &str,
        metrics_json: Option<&str>,
        checkpoint: Option<&str>,
    ) -> anyhow::Result<i64> {
        self.db.query_value(
            &format!(
                "INSERT INTO selector_runs (created_at, backend, config, metrics, checkpoint) VALUES ({NOW}, ?1, ?2, ?3, ?4) RETURNING id"
            ),
            params![backend, config_json, metrics_json, checkpoint],
        )
    }

    /// Stores a run's answer scores, then its sample scores. Answers go in chunks of short
    /// transactions, so reviewers' decisions never wait long for the write lock; the sample
    /// scores come last, in one transaction, and publish the run (see
    /// [`Workspace::latest_selector_run`]).
    pub fn store_selector_scores(
        &mut self,
        run: i64,
        answers: &[(i64, f32)],
        samples: &[(i64, f32)],
    ) -> anyhow::Result<()> {
        self.store_answer_scores(run, answers)?;
        let tx = self.db.begin_write()?;
        for (sample, score) in samples {
            tx.execute(
                "INSERT INTO sample_scores (run_id, sample_id, score) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, sample_id) DO UPDATE SET score = excluded.score",
                params![run, sample, f64::from(*score)],
            )?;
        }
        tx.commit()
    }

    /// Stores answer scores of run `run` in chunks of short transactions (they show nowhere
    /// until the run's sample scores are written).
    pub(super) fn store_answer_scores(
        &self,
        run: i64,
        answers: &[(i64, f32)],
    ) -> anyhow::Result<()> {
        for chunk in answers.chunks(SCORE_WRITE_CHUNK) {
            let tx = self.db.begin_write()?;
            for (answer, score) in chunk {
                tx.execute(
                    "INSERT INTO selector_scores (run_id, answer_id, score) VALUES (?1, ?2, ?3)
                     ON CONFLICT (run_id, answer_id) DO UPDATE SET score = excluded.score",
                    params![run, answer, f64::from(*score)],
                )?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// The latest run whose scores are complete (its sample scores are written last), if any.
    /// A run that trained but was never scored, or is being scored now, is not it.
    pub fn latest_selector_run(&self) -> anyhow::Result<Option<i64>> {
        self.db.query_value(LATEST_SCORED_RUN, params![])
    }

    /// Per-sample ranking signals of the latest selector run (empty when there is none).
    pub fn rank_signals(&self) -> anyhow::Result<HashMap<i64, RankSignals>> {
        let Some(run) = self.latest_selector_run()? else {
            return Ok(HashMap::new());
        };
        let mut out: HashMap<i64, RankSignals> = HashMap::new();
        self.db.for_each_row(
            "SELECT sample_id, score FROM sample_scores WHERE run_id = ?1",
            params![run],
            |r| {
                out.entry(r.get(0)?).or_default().score = Some(r.get(1)?);
                Ok(())
            },
        )?;
        let rows = self.db.query_vec(
            "SELECT r.sample_id, a.round_id, s.score, j.score
             FROM selector_scores s JOIN answers a ON a.id = s.answer_id JOIN rounds r ON r.id = a.round_id
             LEFT JOIN (SELECT answer_id, avg(score) AS score FROM model_scores GROUP BY answer_id) j ON j.answer_id = a.id
             WHERE s.run_id = ?1 ORDER BY r.sample_id, a.round_id",
            params![run],
            |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<i64>(1)?,
                    r.get::<f64>(2)?,
                    r.get::<Option<f64>>(3)?,
                ))
            },
        )?;
        // Walk rounds in order, collecting (selector, judge) per answer of the round.
        let mut round: Option<(i64, i64)> = None;
        let mut answers: Vec<(f64, Option<f64>)> = Vec::new();
        let flush = |key: (i64, i64),
                     answers: &mut Vec<(f64, Option<f64>)>,
                     out: &mut HashMap<i64, RankSignals>| {
            let signals = out.entry(key.0).or_default();
            if answers.len() >= 2 {
                let mut sorted: Vec<f64> = answers.iter().map(|a| a.0).collect();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let gap = sorted[0] - sorted[1];
                signals.margin = Some(signals.margin.map_or(gap, |m: f64| m.min(gap)));
                let conflicts = answers.iter().enumerate().any(|(i, a)| {
                    answers[i + 1..].iter().any(|b| match (a.1, b.1) {
                        (Some(ja), Some(jb)) if ja != jb => {
                            (a.0 - b.0).signum() != (ja - jb).signum()
                        }
                        _ => false,
                    })
                });
                signals.judge_conflicts += u32::from(conflicts);
            }
            answers.clear();
        };
        for (sample, round_id, selector, judge) in rows {
            if round != Some((sample, round_id)) {
                if let Some(previous) = round {
                    flush(previous, &mut answers, &mut out);
                }
                round = Some((sample, round_id));
            }
            answers.push((selector, judge));
        }
        if let Some(previous) = round {
            flush(previous, &mut answers, &mut out);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb};

    fn signals_find_small_margins_and_judge_conflicts(db: TestDb) {
        let (mut ws, stored) = crate::store::test_support::workspace_with_rounds_on(
            db,
            &[("q1", &["a", "b"]), ("q2", &["c", "d"])],
        );
        let key = stored.key;
        let ids = &stored.answer_ids;
        for (answer, score) in [
            (ids[0][0], 9.0),
            (ids[0][1], 2.0),
            (ids[1][0], 3.0),
            (ids[1][1], 8.0),
        ] {
            ws.db
                .execute("INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES (?1, 'j', ?2, 'now')", params![answer, score])
                .unwrap();
        }
        assert!(ws.rank_signals().unwrap().is_empty(), "no run yet");
        let run = ws.create_selector_run("cpu", "{}", None, None).unwrap();
        // Round 1 agrees with the judge by a wide margin; round 2 contradicts it by a hair.
        let answers = [
            (ids[0][0], 2.0),
            (ids[0][1], -1.0),
            (ids[1][0], 0.55),
            (ids[1][1], 0.5),
        ];
        ws.store_selector_scores(run, &answers, &[(key, 1.25)])
            .unwrap();
        let signals = ws.rank_signals().unwrap()[&key];
        assert_eq!(signals.score, Some(1.25));
        assert!((signals.margin.unwrap() - 0.05).abs() < 1e-6, "{signals:?}");
        assert_eq!(signals.judge_conflicts, 1);
        assert_eq!(ws.stats().unwrap().scored_answers, 4);
    }

    on_both_databases!(signals_find_small_margins_and_judge_conflicts);
}
