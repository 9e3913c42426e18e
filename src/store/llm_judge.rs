//! What `vital judge` (the LLM judge, not the clinicians) reads and writes: the backlog of answers
//! or rounds a judge has not scored yet, the text it is shown, and its scores (`model_scores`)
//! stored with the ledger entry of the request, in one transaction.

use super::db::{params, Db};
use anyhow::Context;

use super::llm_ledger::{record, LlmOutcome, LlmRequest};
use super::samples::parse_list;
use super::{Workspace, NOW};

/// Answers to show the judge in one request, with the round they belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeTarget {
    pub round_id: i64,
    /// The sample's row id.
    pub sample_key: i64,
    pub question: String,
    /// (answer id, text), in answer order.
    pub answers: Vec<(i64, String)>,
}

/// The figure a judged answer is about, as text plus the image reference.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureText {
    /// The sample's id as in its source file.
    pub ext_id: String,
    pub caption: String,
    pub mentions: Vec<String>,
    pub image: Option<String>,
}

impl Workspace {
    /// Answers that `judge` has not scored yet, in sample, round and answer order.
    pub fn llm_judge_backlog(&self, judge: &str) -> anyhow::Result<Vec<i64>> {
        self.ids_for_judge(
            "SELECT a.id FROM answers a JOIN rounds r ON r.id = a.round_id
             WHERE NOT EXISTS (SELECT 1 FROM model_scores m WHERE m.answer_id = a.id AND m.judge = ?1)
             ORDER BY r.sample_id, r.position, a.position",
            judge,
        )
    }

    /// [`Self::llm_judge_backlog`] or [`Self::llm_judge_pairwise_backlog`] restricted to each
    /// sample's first round (the method's selector reads round 1 only).
    pub fn llm_judge_first_round_backlog(
        &self,
        judge: &str,
        pairwise: bool,
    ) -> anyhow::Result<Vec<i64>> {
        let ids = if pairwise {
            self.llm_judge_pairwise_backlog(judge)?
        } else {
            self.llm_judge_backlog(judge)?
        };
        let first: std::collections::HashSet<i64> = self
            .db
            .query_vec(
                if pairwise {
                    "SELECT id FROM rounds WHERE position = 0"
                } else {
                    "SELECT a.id FROM answers a JOIN rounds r ON r.id = a.round_id WHERE r.position = 0"
                },
                params![],
                |r| r.get(0),
            )
            .context("cannot read the first rounds")?
            .into_iter()
            .collect();
        Ok(ids.into_iter().filter(|id| first.contains(id)).collect())
    }

    /// Rounds with two or more answers where `judge` lacks the score of answer 1 or 2 (pairwise
    /// judging sends those two together), in sample and round order.
    pub fn llm_judge_pairwise_backlog(&self, judge: &str) -> anyhow::Result<Vec<i64>> {
        self.ids_for_judge(
            "SELECT r.id FROM rounds r
             WHERE (SELECT count(*) FROM answers a WHERE a.round_id = r.id) >= 2
               AND EXISTS (SELECT 1 FROM answers a WHERE a.round_id = r.id AND a.position < 2
                   AND NOT EXISTS (SELECT 1 FROM model_scores m WHERE m.answer_id = a.id AND m.judge = ?1))
             ORDER BY r.sample_id, r.position",
            judge,
        )
    }

    /// Rounds with a single answer that `judge` has not scored: pairwise judging leaves them out.
    pub fn rounds_left_out_of_pairwise(&self, judge: &str) -> anyhow::Result<u64> {
        self.db
            .query_value(
                "SELECT count(*) FROM rounds r WHERE (SELECT count(*) FROM answers a WHERE a.round_id = r.id) = 1
                   AND NOT EXISTS (SELECT 1 FROM answers a JOIN model_scores m ON m.answer_id = a.id
                                   WHERE a.round_id = r.id AND m.judge = ?1)",
                params![judge],
            )
            .with_context(|| format!("cannot count the single-answer rounds left for judge {judge}"))
    }

    fn ids_for_judge(&self, sql: &str, judge: &str) -> anyhow::Result<Vec<i64>> {
        self.db
            .query_vec(sql, params![judge], |r| r.get(0))
            .with_context(|| format!("cannot read the backlog of judge {judge}"))
    }

    /// One answer to judge on its own.
    pub fn answer_to_judge(&self, answer_id: i64) -> anyhow::Result<JudgeTarget> {
        let (round_id, text): (i64, String) = self
            .db
            .query_row(
                "SELECT round_id, text FROM answers WHERE id = ?1",
                params![answer_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .with_context(|| format!("cannot read answer {answer_id}"))?;
        self.judge_target(round_id, vec![(answer_id, text)])
    }

    /// Answers 1 and 2 of a round, to judge together.
    pub fn round_to_judge(&self, round_id: i64) -> anyhow::Result<JudgeTarget> {
        let answers = self
            .db
            .query_vec(
                "SELECT id, text FROM answers WHERE round_id = ?1 ORDER BY position LIMIT 2",
                params![round_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .with_context(|| format!("cannot read the answers of round {round_id}"))?;
        self.judge_target(round_id, answers)
    }

    fn judge_target(
        &self,
        round_id: i64,
        answers: Vec<(i64, String)>,
    ) -> anyhow::Result<JudgeTarget> {
        let (question, sample_key): (String, i64) = self
            .db
            .query_row(
                "SELECT question, sample_id FROM rounds WHERE id = ?1",
                params![round_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .with_context(|| format!("cannot read round {round_id}"))?;
        Ok(JudgeTarget {
            round_id,
            sample_key,
            question,
            answers,
        })
    }

    /// The caption, mentions and image reference of one sample.
    pub fn figure_text(&self, sample_key: i64) -> anyhow::Result<FigureText> {
        let (ext_id, caption, mentions, image): (String, String, String, Option<String>) = self
            .db
            .query_row(
                "SELECT ext_id, caption, mentions, image FROM samples WHERE id = ?1",
                params![sample_key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .with_context(|| format!("cannot read the figure of sample row {sample_key}"))?;
        Ok(FigureText {
            ext_id,
            caption,
            mentions: parse_list(mentions),
            image,
        })
    }

    /// Stores `judge`'s scores parsed from a reply, (answer id, score), or for `Err(reason)`
    /// none, and records the request with its outcome, in one transaction. A score the judge
    /// already has is kept. Returns how many scores were added.
    pub fn store_llm_judge_reply(
        &self,
        request: &LlmRequest,
        judge: &str,
        scores: Result<&[(i64, f64)], &str>,
    ) -> anyhow::Result<u64> {
        let tx = self.db.begin_write()?;
        let added = write_judge_reply(&tx, request, judge, scores)?;
        tx.commit().with_context(|| {
            format!(
                "cannot commit judge {judge}'s reply about {}",
                request.subject
            )
        })?;
        Ok(added)
    }
}

/// [`Workspace::store_llm_judge_reply`] inside the caller's transaction (a batch's replies are
/// stored many to a transaction: see `store::llm_batches`).
pub(super) fn write_judge_reply(
    tx: &Db,
    request: &LlmRequest,
    judge: &str,
    scores: Result<&[(i64, f64)], &str>,
) -> anyhow::Result<u64> {
    let mut added = 0u64;
    let insert = format!(
        "INSERT OR IGNORE INTO model_scores (answer_id, judge, score, created_at)
                     VALUES (?1, ?2, ?3, {NOW})"
    );
    let (outcome, reason) = match scores {
        Ok(scores) => {
            for (answer_id, score) in scores {
                added += tx
                    .execute(&insert, params![answer_id, judge, score])
                    .with_context(|| {
                        format!("cannot store judge {judge}'s score of answer {answer_id}")
                    })? as u64;
            }
            (LlmOutcome::Stored, None)
        }
        Err(reason) => (LlmOutcome::Unparseable, Some(reason)),
    };
    record(tx, request, outcome, reason)?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};

    fn request<'a>(key: &'a str, subject: &'a str) -> LlmRequest<'a> {
        LlmRequest {
            key,
            task: "judge",
            subject,
            model: "m",
            reply: "7",
            prompt_tokens: 1,
            completion_tokens: 1,
        }
    }

    fn the_first_round_backlog_leaves_later_rounds_out(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("Q1?", &["a", "b"]), ("Q2?", &["c", "d"])]);
        assert_eq!(
            ws.llm_judge_first_round_backlog("j", false).unwrap(),
            s.answer_ids[0]
        );
        assert_eq!(
            ws.llm_judge_first_round_backlog("j", true).unwrap(),
            vec![s.round_ids[0]]
        );
    }

    fn the_backlog_shrinks_as_a_judge_scores_and_other_judges_keep_theirs(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("Q1?", &["a", "b"]), ("Q2?", &["c"])]);
        let all: Vec<i64> = s.answer_ids.concat();
        assert_eq!(ws.llm_judge_backlog("j").unwrap(), all);
        assert_eq!(
            ws.llm_judge_pairwise_backlog("j").unwrap(),
            vec![s.round_ids[0]]
        );
        assert_eq!(ws.rounds_left_out_of_pairwise("j").unwrap(), 1);

        let scores = [(all[0], 7.0), (all[1], 3.0)];
        let added = ws
            .store_llm_judge_reply(&request("k1", "answers"), "j", Ok(&scores))
            .unwrap();
        assert_eq!(added, 2);
        assert_eq!(
            ws.llm_request_outcome("k1").unwrap(),
            Some(LlmOutcome::Stored)
        );
        // Scored again: kept, nothing added.
        let again = ws
            .store_llm_judge_reply(&request("k2", "answers"), "j", Ok(&[(all[0], 1.0)]))
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(ws.llm_judge_backlog("j").unwrap(), vec![all[2]]);
        assert!(ws.llm_judge_pairwise_backlog("j").unwrap().is_empty());
        assert_eq!(ws.llm_judge_backlog("other").unwrap(), all);

        let none = ws
            .store_llm_judge_reply(&request("k3", "answer"), "j", Err("no score"))
            .unwrap();
        assert_eq!(none, 0);
        assert_eq!(
            ws.llm_request_outcome("k3").unwrap(),
            Some(LlmOutcome::Unparseable)
        );
        assert_eq!(
            ws.model_scores_by_judge("j").unwrap(),
            vec![(all[0], 7.0), (all[1], 3.0)]
        );
    }

    fn a_judge_target_carries_its_round_and_figure(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("Q1?", &["a", "b", "c"])]);
        let single = ws.answer_to_judge(s.answer_ids[0][1]).unwrap();
        assert_eq!(single.round_id, s.round_ids[0]);
        assert_eq!(single.sample_key, s.key);
        assert_eq!(single.question, "Q1?");
        assert_eq!(single.answers, vec![(s.answer_ids[0][1], "b".to_string())]);
        let pair = ws.round_to_judge(s.round_ids[0]).unwrap();
        assert_eq!(
            pair.answers,
            vec![
                (s.answer_ids[0][0], "a".to_string()),
                (s.answer_ids[0][1], "b".to_string())
            ]
        );
        let figure = ws.figure_text(s.key).unwrap();
        assert_eq!(figure.caption, s.sample.caption);
        assert_eq!(figure.mentions, s.sample.mentions);
        assert!(ws.answer_to_judge(9_999).is_err());
    }

    on_both_databases!(
        the_first_round_backlog_leaves_later_rounds_out,
        the_backlog_shrinks_as_a_judge_scores_and_other_judges_keep_theirs,
        a_judge_target_carries_its_round_and_figure
    );
}
