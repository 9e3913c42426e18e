//! Reading answer scores for display: the LLM judges' scores (`model_scores`) one by one, per
//! judge or per sample, and the spread of the latest selector run's answer scores (the review
//! screen's percentiles).

use anyhow::Context;

use super::db::params;
use super::Workspace;

/// One judge's score of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    pub answer_id: i64,
    pub judge: String,
    pub score: f64,
}

impl Workspace {
    /// Every score of the answers of one sample, ordered by judge name.
    pub fn sample_model_scores(&self, sample_key: i64) -> anyhow::Result<Vec<ModelScore>> {
        self.db
            .query_vec(
            "SELECT m.answer_id, m.judge, m.score FROM model_scores m JOIN answers a ON a.id = m.answer_id
             JOIN rounds r ON r.id = a.round_id WHERE r.sample_id = ?1 ORDER BY m.judge",
            params![sample_key],
            |r| {
                Ok(ModelScore {
                    answer_id: r.get(0)?,
                    judge: r.get(1)?,
                    score: r.get(2)?,
                })
            })
            .with_context(|| {
                format!("cannot read the judges' scores of sample row {sample_key}")
            })
    }

    /// (answer id, score) of every answer `judge` scored, by answer id.
    pub fn model_scores_by_judge(&self, judge: &str) -> anyhow::Result<Vec<(i64, f64)>> {
        self.db
            .query_vec(
                "SELECT answer_id, score FROM model_scores WHERE judge = ?1 ORDER BY answer_id",
                params![judge],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .with_context(|| format!("cannot read the scores of judge {judge}"))
    }

    /// Every answer score of the latest selector run whose scores are complete, ascending (empty
    /// when no run has been scored): what an answer's percentile among all answers is read from.
    pub fn selector_score_spread(&self) -> anyhow::Result<Vec<f64>> {
        let Some(run) = self.latest_selector_run()? else {
            return Ok(Vec::new());
        };
        self.db
            .query_vec(
                "SELECT score FROM selector_scores WHERE run_id = ?1 ORDER BY score",
                params![run],
                |r| r.get(0),
            )
            .with_context(|| format!("cannot read the answer scores of selector run {run}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};

    use crate::store::{LlmRequest, ModelScore};

    fn a_samples_scores_come_by_judge_name(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("q", &["a1", "a2"])]);
        let (a1, a2) = (s.answer_ids[0][0], s.answer_ids[0][1]);
        let request = |key| LlmRequest {
            key,
            task: "judge",
            subject: "answers",
            model: "m",
            reply: "",
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        ws.store_llm_judge_reply(&request("k1"), "zed", Ok(&[(a1, 4.0)]))
            .unwrap();
        ws.store_llm_judge_reply(&request("k2"), "amy", Ok(&[(a2, 9.0)]))
            .unwrap();
        let score = |answer_id, judge: &str, score| ModelScore {
            answer_id,
            judge: judge.into(),
            score,
        };
        assert_eq!(
            ws.sample_model_scores(s.key).unwrap(),
            vec![score(a2, "amy", 9.0), score(a1, "zed", 4.0)]
        );
        assert_eq!(ws.model_scores_by_judge("zed").unwrap(), vec![(a1, 4.0)]);
    }

    fn the_score_spread_is_the_latest_scored_runs_answers_ascending(db: TestDb) {
        let (mut ws, s) = workspace_with_rounds_on(db, &[("q", &["a1", "a2", "a3"])]);
        let ids = &s.answer_ids[0];
        assert!(ws.selector_score_spread().unwrap().is_empty(), "no run yet");
        let first = ws.create_selector_run("cpu", "{}", None, None).unwrap();
        ws.store_selector_scores(first, &[(ids[0], 0.9), (ids[1], 0.1)], &[(s.key, 0.5)])
            .unwrap();
        let second = ws.create_selector_run("cpu", "{}", None, None).unwrap();
        ws.store_selector_scores(
            second,
            &[(ids[0], 0.25), (ids[1], -1.5), (ids[2], 2.0)],
            &[(s.key, 0.3)],
        )
        .unwrap();
        assert_eq!(ws.selector_score_spread().unwrap(), vec![-1.5, 0.25, 2.0]);
        // A run being scored (answer scores written, sample scores not yet) is not read.
        let third = ws.create_selector_run("cpu", "{}", None, None).unwrap();
        ws.store_selector_scores(third, &[(ids[0], 7.0)], &[])
            .unwrap();
        assert_eq!(ws.selector_score_spread().unwrap(), vec![-1.5, 0.25, 2.0]);
    }

    on_both_databases!(
        a_samples_scores_come_by_judge_name,
        the_score_spread_is_the_latest_scored_runs_answers_ascending
    );
}
