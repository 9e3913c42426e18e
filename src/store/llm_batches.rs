//! Batches of LLM requests (`vital generate|judge --batch`, `--batch-file`, `vital batch …`): one
//! row per input file in `llm_batches`, each of its requests in `llm_batch_requests` with what
//! storing its reply needs (`meta`, JSON the caller writes and reads).
//!
//! The rules that make every step safe to repeat after a kill -9:
//! - a batch and its requests are recorded (status `prepared`, or `file` for a file run
//!   elsewhere) in one transaction BEFORE anything is sent; the uploaded file's id and the
//!   created batch's id are recorded as soon as they are known;
//! - a request `pending` in a batch is not sent again, directly or in another batch
//!   ([`Workspace::llm_request_in_open_batch`]), until the batch ends;
//! - a reply is stored with its ledger entry and its request marked `answered` in one
//!   transaction, and a reply whose key the ledger already holds is not stored again;
//! - a request that failed (an error line, or left unanswered by an expired or cancelled batch)
//!   is marked `failed`: it is no longer pending and not in the ledger, so the next run sends it.

use anyhow::Context;

use super::db::params;
use super::llm_generation::write_generated_reply;
use super::llm_judge::write_judge_reply;
use super::llm_ledger::LlmRequest;
use super::{GeneratedOutcome, Workspace, NOW};
use crate::data::Sample;

/// The status of a batch whose every request is answered or failed.
pub const COLLECTED: &str = "collected";

/// A batch to record.
#[derive(Debug, Clone)]
pub struct NewLlmBatch<'a> {
    pub tag: &'a str,
    pub task: &'a str,
    pub model: &'a str,
    pub judge: Option<&'a str>,
    pub endpoint: &'a str,
    pub input_path: &'a str,
    /// `prepared` (to be uploaded) or `file` (run elsewhere, read back by `vital batch import`).
    pub status: &'a str,
}

/// One request of a batch to record.
#[derive(Debug, Clone)]
pub struct NewLlmBatchRequest {
    pub key: String,
    pub subject: String,
    pub meta: String,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlmBatch {
    pub id: i64,
    pub tag: String,
    pub task: String,
    pub model: String,
    pub judge: Option<String>,
    pub endpoint: String,
    pub input_path: String,
    pub requests: i64,
    pub input_file_id: Option<String>,
    pub remote_id: Option<String>,
    pub status: String,
    pub completed: i64,
    pub failed: i64,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl LlmBatch {
    pub fn is_open(&self) -> bool {
        self.status != COLLECTED
    }
}

/// What the API last said of a batch.
#[derive(Debug, Clone, Default)]
pub struct LlmBatchProgress<'a> {
    pub status: &'a str,
    pub completed: i64,
    pub failed: i64,
    pub output_file_id: Option<&'a str>,
    pub error_file_id: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// A request waiting in an open batch, with its batch's task, model and judge.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingLlmBatchRequest {
    pub batch_id: i64,
    pub key: String,
    pub subject: String,
    pub meta: String,
    pub task: String,
    pub model: String,
    pub judge: Option<String>,
}

/// A batch reply to store, parsed by the same code as a direct reply.
#[derive(Debug, Clone)]
pub enum LlmBatchReply<'a> {
    Judge {
        request: LlmRequest<'a>,
        judge: &'a str,
        scores: Result<Vec<(i64, f64)>, String>,
    },
    Generate {
        request: LlmRequest<'a>,
        sample: Result<Sample, String>,
    },
}

impl LlmBatchReply<'_> {
    fn request(&self) -> &LlmRequest<'_> {
        match self {
            LlmBatchReply::Judge { request, .. } | LlmBatchReply::Generate { request, .. } => {
                request
            }
        }
    }
}

/// What storing one batch reply did.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmBatchStored {
    /// Judge scores added (0 when the reply was unparseable or the scores existed).
    Scores {
        added: u64,
        unparseable: Option<String>,
    },
    Sample(GeneratedOutcome),
    /// The ledger already held this request (a collect run before a kill): nothing stored again.
    AlreadyStored,
}

const BATCH_COLUMNS: &str = "id, tag, task, model, judge, endpoint, input_path, requests, input_file_id,
     remote_id, status, completed, failed, output_file_id, error_file_id, message, created_at, updated_at";

fn batch_from(r: &super::db::Row<'_>) -> anyhow::Result<LlmBatch> {
    Ok(LlmBatch {
        id: r.get(0)?,
        tag: r.get(1)?,
        task: r.get(2)?,
        model: r.get(3)?,
        judge: r.get(4)?,
        endpoint: r.get(5)?,
        input_path: r.get(6)?,
        requests: r.get(7)?,
        input_file_id: r.get(8)?,
        remote_id: r.get(9)?,
        status: r.get(10)?,
        completed: r.get(11)?,
        failed: r.get(12)?,
        output_file_id: r.get(13)?,
        error_file_id: r.get(14)?,
        message: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
    })
}

impl Workspace {
    /// Records a batch and its requests in one transaction; returns the batch's id. Refuses a
    /// request already pending in another open batch (it must not be sent twice).
    pub fn record_llm_batch(
        &self,
        batch: &NewLlmBatch,
        requests: &[NewLlmBatchRequest],
    ) -> anyhow::Result<i64> {
        let tx = self.db.begin_write()?;
        let id: i64 = tx
            .query_value(
                &format!(
                    "INSERT INTO llm_batches (tag, task, model, judge, endpoint, input_path, requests,
                     status, completed, failed, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, {NOW}, {NOW}) RETURNING id"
                ),
                params![
                    batch.tag,
                    batch.task,
                    batch.model,
                    batch.judge,
                    batch.endpoint,
                    batch.input_path,
                    requests.len() as i64,
                    batch.status,
                ],
            )
            .with_context(|| format!("cannot record batch {}", batch.tag))?;
        for r in requests {
            let taken: Option<i64> = tx.query_opt(
                "SELECT batch_id FROM llm_batch_requests WHERE key = ?1 AND state = 'pending'",
                params![r.key],
                |row| row.get(0),
            )?;
            if let Some(other) = taken {
                anyhow::bail!(
                    "request {} ({}) is already pending in batch {other}",
                    r.key,
                    r.subject
                );
            }
            tx.execute(
                "INSERT INTO llm_batch_requests (batch_id, key, subject, meta, state)
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
                params![id, r.key, r.subject, r.meta],
            )
            .with_context(|| format!("cannot record request {} of batch {id}", r.subject))?;
        }
        tx.commit()
            .with_context(|| format!("cannot commit batch {}", batch.tag))?;
        Ok(id)
    }

    /// Whether request `key` waits in an open batch (and so must not be sent now).
    pub fn llm_request_in_open_batch(&self, key: &str) -> anyhow::Result<bool> {
        let found: Option<i64> = self
            .db
            .query_opt(
                "SELECT batch_id FROM llm_batch_requests WHERE key = ?1 AND state = 'pending'",
                params![key],
                |r| r.get(0),
            )
            .with_context(|| format!("cannot look up request {key} in the open batches"))?;
        Ok(found.is_some())
    }

    /// The request `key` pending in an open batch, if one is.
    pub fn pending_llm_batch_request(
        &self,
        key: &str,
    ) -> anyhow::Result<Option<PendingLlmBatchRequest>> {
        self.db
            .query_opt(
                "SELECT r.batch_id, r.key, r.subject, r.meta, b.task, b.model, b.judge
                 FROM llm_batch_requests r JOIN llm_batches b ON b.id = r.batch_id
                 WHERE r.key = ?1 AND r.state = 'pending'",
                params![key],
                |r| {
                    Ok(PendingLlmBatchRequest {
                        batch_id: r.get(0)?,
                        key: r.get(1)?,
                        subject: r.get(2)?,
                        meta: r.get(3)?,
                        task: r.get(4)?,
                        model: r.get(5)?,
                        judge: r.get(6)?,
                    })
                },
            )
            .with_context(|| format!("cannot look up request {key} in the open batches"))
    }

    /// Every batch, oldest first.
    pub fn llm_batches(&self) -> anyhow::Result<Vec<LlmBatch>> {
        self.db
            .query_vec(
                &format!("SELECT {BATCH_COLUMNS} FROM llm_batches ORDER BY id"),
                params![],
                batch_from,
            )
            .context("cannot read the batches")
    }

    /// One batch by its id.
    pub fn llm_batch(&self, id: i64) -> anyhow::Result<Option<LlmBatch>> {
        self.db
            .query_opt(
                &format!("SELECT {BATCH_COLUMNS} FROM llm_batches WHERE id = ?1"),
                params![id],
                batch_from,
            )
            .with_context(|| format!("cannot read batch {id}"))
    }

    /// (pending, answered, failed) requests of a batch.
    pub fn llm_batch_request_counts(&self, id: i64) -> anyhow::Result<(i64, i64, i64)> {
        let mut counts = (0, 0, 0);
        self.db.for_each_row(
            "SELECT state, count(*) FROM llm_batch_requests WHERE batch_id = ?1 GROUP BY state",
            params![id],
            |r| {
                let n: i64 = r.get(1)?;
                match r.get::<String>(0)?.as_str() {
                    "pending" => counts.0 = n,
                    "answered" => counts.1 = n,
                    _ => counts.2 = n,
                }
                Ok(())
            },
        )?;
        Ok(counts)
    }

    /// The keys of a batch's requests still pending, in key order.
    pub fn pending_llm_batch_keys(&self, id: i64) -> anyhow::Result<Vec<String>> {
        self.db.query_vec(
            "SELECT key FROM llm_batch_requests WHERE batch_id = ?1 AND state = 'pending' ORDER BY key",
            params![id],
            |r| r.get(0),
        )
    }

    /// The input file was uploaded as `file_id`.
    pub fn set_llm_batch_uploaded(&self, id: i64, file_id: &str) -> anyhow::Result<()> {
        self.update_batch("input_file_id = ?2, status = 'uploaded'", id, &[&file_id])
    }

    /// The batch was created (or found) at the API as `remote_id`.
    pub fn set_llm_batch_created(
        &self,
        id: i64,
        remote_id: &str,
        status: &str,
    ) -> anyhow::Result<()> {
        self.update_batch("remote_id = ?2, status = ?3", id, &[&remote_id, &status])
    }

    /// What the API last said of the batch.
    pub fn set_llm_batch_progress(
        &self,
        id: i64,
        progress: &LlmBatchProgress,
    ) -> anyhow::Result<()> {
        self.update_batch(
            "status = ?2, completed = ?3, failed = ?4, output_file_id = ?5, error_file_id = ?6,
             message = ?7",
            id,
            &[
                &progress.status,
                &progress.completed,
                &progress.failed,
                &progress.output_file_id,
                &progress.error_file_id,
                &progress.message,
            ],
        )
    }

    fn update_batch(
        &self,
        set: &str,
        id: i64,
        values: &[&dyn super::db::Param],
    ) -> anyhow::Result<()> {
        let mut all: Vec<&dyn super::db::Param> = vec![&id];
        all.extend_from_slice(values);
        self.db
            .execute(
                &format!("UPDATE llm_batches SET {set}, updated_at = {NOW} WHERE id = ?1"),
                &all,
            )
            .with_context(|| format!("cannot update batch {id}"))?;
        Ok(())
    }

    /// Stores batch replies, many to one transaction: each with its ledger entry, its request
    /// marked answered. A key the ledger already holds is only marked (never stored twice).
    pub fn store_llm_batch_replies(
        &self,
        replies: &[(i64, LlmBatchReply)],
    ) -> anyhow::Result<Vec<LlmBatchStored>> {
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(replies.len());
        for (batch_id, reply) in replies {
            let request = reply.request();
            let known: Option<String> = tx.query_opt(
                "SELECT outcome FROM llm_requests WHERE key = ?1",
                params![request.key],
                |r| r.get(0),
            )?;
            let stored = if known.is_some() {
                LlmBatchStored::AlreadyStored
            } else {
                match reply {
                    LlmBatchReply::Judge {
                        request,
                        judge,
                        scores,
                    } => {
                        let added = write_judge_reply(
                            &tx,
                            request,
                            judge,
                            scores.as_deref().map_err(String::as_str),
                        )?;
                        LlmBatchStored::Scores {
                            added,
                            unparseable: scores.as_ref().err().cloned(),
                        }
                    }
                    LlmBatchReply::Generate { request, sample } => {
                        LlmBatchStored::Sample(write_generated_reply(
                            &tx,
                            request,
                            sample.as_ref().map_err(String::clone),
                        )?)
                    }
                }
            };
            tx.execute(
                "UPDATE llm_batch_requests SET state = 'answered', reason = NULL
                 WHERE batch_id = ?1 AND key = ?2 AND state = 'pending'",
                params![batch_id, request.key],
            )?;
            out.push(stored);
        }
        tx.commit().context("cannot commit the batch replies")?;
        Ok(out)
    }

    /// Marks requests failed, with the reason: they are sent again by the next run. Returns how
    /// many were pending.
    pub fn fail_llm_batch_requests(&self, failed: &[(i64, &str, &str)]) -> anyhow::Result<u64> {
        let tx = self.db.begin_write()?;
        let mut changed = 0u64;
        for (batch_id, key, reason) in failed {
            changed += tx.execute(
                "UPDATE llm_batch_requests SET state = 'failed', reason = ?3
                 WHERE batch_id = ?1 AND key = ?2 AND state = 'pending'",
                params![batch_id, key, reason],
            )? as u64;
        }
        tx.commit()
            .context("cannot commit the failed batch requests")?;
        Ok(changed)
    }

    /// Ends a batch: whatever of it is still pending is marked failed with `reason` (sent again
    /// by the next run), and the batch becomes `collected` with `message`. Returns how many
    /// requests were still pending.
    pub fn finish_llm_batch(&self, id: i64, reason: &str, message: &str) -> anyhow::Result<u64> {
        let tx = self.db.begin_write()?;
        let rest = tx.execute(
            "UPDATE llm_batch_requests SET state = 'failed', reason = ?2
             WHERE batch_id = ?1 AND state = 'pending'",
            params![id, reason],
        )? as u64;
        tx.execute(
            &format!(
                "UPDATE llm_batches SET status = '{COLLECTED}', message = ?2, updated_at = {NOW}
                 WHERE id = ?1"
            ),
            params![id, message],
        )?;
        tx.commit()
            .with_context(|| format!("cannot commit the end of batch {id}"))?;
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, workspace_with_rounds_on, TestDb};
    use crate::store::LlmOutcome;

    fn batch<'a>(tag: &'a str) -> NewLlmBatch<'a> {
        NewLlmBatch {
            tag,
            task: "judge",
            model: "m",
            judge: Some("j"),
            endpoint: "http://127.0.0.1:1/v1",
            input_path: "/tmp/x.jsonl",
            status: "prepared",
        }
    }

    fn request(key: &str) -> NewLlmBatchRequest {
        NewLlmBatchRequest {
            key: key.into(),
            subject: format!("answer {key}"),
            meta: "{}".into(),
        }
    }

    fn a_pending_request_is_held_until_its_batch_answers_or_fails_it(db: TestDb) {
        let (ws, s) = workspace_with_rounds_on(db, &[("Q?", &["a", "b"])]);
        let answers = s.answer_ids.concat();
        let id = ws
            .record_llm_batch(&batch("t1"), &[request("k1"), request("k2")])
            .unwrap();
        assert!(ws.llm_request_in_open_batch("k1").unwrap());
        let refused = ws.record_llm_batch(&batch("t2"), &[request("k2")]);
        assert!(
            refused.unwrap_err().to_string().contains("already pending"),
            "a pending request is not batched twice"
        );
        assert_eq!(ws.llm_batches().unwrap().len(), 1, "nothing half-written");
        ws.set_llm_batch_uploaded(id, "file-1").unwrap();
        ws.set_llm_batch_created(id, "batch_1", "validating")
            .unwrap();
        let pending = ws.pending_llm_batch_request("k1").unwrap().unwrap();
        assert_eq!(
            (pending.batch_id, pending.judge.as_deref()),
            (id, Some("j"))
        );
        let reply = |key| LlmBatchReply::Judge {
            request: LlmRequest {
                key,
                task: "judge",
                subject: "answer",
                model: "m",
                reply: "7",
                prompt_tokens: 1,
                completion_tokens: 1,
            },
            judge: "j",
            scores: Ok(vec![(answers[0], 7.0)]),
        };
        let stored = ws.store_llm_batch_replies(&[(id, reply("k1"))]).unwrap();
        assert_eq!(
            stored,
            vec![LlmBatchStored::Scores {
                added: 1,
                unparseable: None
            }]
        );
        // A second collect of the same line stores nothing again.
        let again = ws.store_llm_batch_replies(&[(id, reply("k1"))]).unwrap();
        assert_eq!(again, vec![LlmBatchStored::AlreadyStored]);
        assert_eq!(
            ws.llm_request_outcome("k1").unwrap(),
            Some(LlmOutcome::Stored)
        );
        assert!(!ws.llm_request_in_open_batch("k1").unwrap());
        assert_eq!(ws.finish_llm_batch(id, "expired", "expired").unwrap(), 1);
        assert!(!ws.llm_request_in_open_batch("k2").unwrap());
        assert_eq!(ws.llm_request_outcome("k2").unwrap(), None, "sent again");
        assert_eq!(ws.llm_batch_request_counts(id).unwrap(), (0, 1, 1));
        let stored = ws.llm_batch(id).unwrap().unwrap();
        assert_eq!(stored.status, COLLECTED);
        assert_eq!(stored.remote_id.as_deref(), Some("batch_1"));
        // Once failed, the request may go in a new batch.
        ws.record_llm_batch(&batch("t3"), &[request("k2")]).unwrap();
    }

    on_both_databases!(a_pending_request_is_held_until_its_batch_answers_or_fails_it);
}
