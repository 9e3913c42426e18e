//! What the selector's training, scoring and evaluation read and write: answers with their
//! question and figure, preference pairs from clinicians and judges, mean judge scores, and the
//! record of a selector run.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::Workspace;

/// One answer with its question and figure, as stored (text not yet cleaned for display).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    pub answer_id: i64,
    pub text: String,
    /// 0-based.
    pub round_position: usize,
    pub question: String,
    pub sample_key: i64,
    pub ext_id: String,
    /// The image reference as imported.
    pub image: Option<String>,
    pub caption: String,
    pub mentions: Vec<String>,
}

/// A selector run's stored record.
#[derive(Debug, Clone, PartialEq)]
pub enum RunRecord {
    /// No such run.
    Missing,
    /// The run exists but did not finish training.
    Unfinished,
    /// The run's report (JSON), written when training finished.
    Finished(String),
}

const ANSWER_SELECT: &str =
    "SELECT a.id, a.text, r.position, r.question, s.id, s.ext_id, s.image, s.caption, s.mentions
     FROM answers a JOIN rounds r ON r.id = a.round_id JOIN samples s ON s.id = r.sample_id";

fn read_answer(row: &rusqlite::Row) -> rusqlite::Result<AnswerRecord> {
    let mentions: String = row.get(8)?;
    Ok(AnswerRecord {
        answer_id: row.get(0)?,
        text: row.get(1)?,
        round_position: row.get::<_, i64>(2)? as usize,
        question: row.get(3)?,
        sample_key: row.get(4)?,
        ext_id: row.get(5)?,
        image: row.get(6)?,
        caption: row.get(7)?,
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
    })
}

impl Workspace {
    /// Answer `answer_id` with its question and figure (an error if there is no such answer).
    pub fn answer_record(&self, answer_id: i64) -> anyhow::Result<AnswerRecord> {
        Ok(self
            .conn
            .prepare_cached(&format!("{ANSWER_SELECT} WHERE a.id = ?1"))?
            .query_row([answer_id], read_answer)?)
    }

    /// Every answer, in sample, round, answer order, one row at a time (1.7M answers at 210K
    /// samples are never held at once).
    pub fn for_each_answer_record(
        &self,
        each: &mut dyn FnMut(AnswerRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut stmt = self.conn.prepare(&format!(
            "{ANSWER_SELECT} ORDER BY s.id, r.position, a.position"
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            each(read_answer(row)?)?;
        }
        Ok(())
    }

    /// Every distinct (winner, loser) answer pair some reviewer's decisions in force make
    /// (the `human_pairs` view), ordered.
    pub fn human_pair_votes(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT winner, loser FROM human_pairs ORDER BY winner, loser")?;
        let pairs = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(pairs)
    }

    /// The distinct (winner, loser) pairs reviewer `name`'s decisions in force make.
    pub fn human_pairs_by(&self, name: &str) -> anyhow::Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT h.winner, h.loser FROM human_pairs h JOIN reviewers r ON r.id = h.reviewer_id
             WHERE r.name = ?1",
        )?;
        let pairs = stmt
            .query_map([name], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(pairs)
    }

    /// (winner, loser) pairs of answers to the same question whose mean judge scores differ by
    /// at least `min_gap` (at least 1e-9), ordered.
    pub fn judge_score_pairs(&self, min_gap: f64) -> anyhow::Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare(
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
            .collect::<Result<_, _>>()?;
        Ok(pairs)
    }

    /// The mean judge score of each answer in `ids` that has one.
    pub fn mean_judge_scores_of(&self, ids: &HashSet<i64>) -> anyhow::Result<HashMap<i64, f64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT answer_id, avg(score) FROM model_scores GROUP BY answer_id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, score) = row?;
            if ids.contains(&id) {
                out.insert(id, score);
            }
        }
        Ok(out)
    }

    /// Records that run `run_id` finished training: its report (JSON) and checkpoint path.
    pub fn finish_selector_run(
        &self,
        run_id: i64,
        report_json: &str,
        checkpoint: &str,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE selector_runs SET metrics = ?1, checkpoint = ?2 WHERE id = ?3",
            params![report_json, checkpoint, run_id],
        )?;
        Ok(())
    }

    /// The latest run that finished training (scored or not), if any.
    pub fn latest_trained_run(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT max(id) FROM selector_runs WHERE metrics IS NOT NULL",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )?)
    }

    /// Run `run_id`'s record.
    pub fn selector_run_record(&self, run_id: i64) -> anyhow::Result<RunRecord> {
        let metrics: Option<Option<String>> =
            rusqlite::OptionalExtension::optional(self.conn.query_row(
                "SELECT metrics FROM selector_runs WHERE id = ?1",
                [run_id],
                |r| r.get(0),
            ))?;
        Ok(match metrics {
            None => RunRecord::Missing,
            Some(None) => RunRecord::Unfinished,
            Some(Some(json)) => RunRecord::Finished(json),
        })
    }
}
