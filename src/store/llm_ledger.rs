//! The record of finished LLM requests (`llm_requests`), which makes runs resumable: a request is
//! keyed by the SHA-256 of its exact body (computed by `llm::ledger::request_key`: the store
//! only keeps keys), and a key found here is never sent again. Replies that could not be used are kept here too, with the
//! reason, so nothing is dropped silently.
//!
//! A reply is recorded in the same transaction as what it produced (a generated sample, a judge's
//! scores): see [`Workspace::store_generated_reply`] and [`Workspace::store_llm_judge_reply`].

use super::db::{params, Db, Dialect};
use anyhow::Context;

use super::{Workspace, NOW};

/// What became of a finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmOutcome {
    /// Parsed and written to the workspace.
    Stored,
    /// The reply could not be used; the entry's reason says why.
    Unparseable,
}

impl LlmOutcome {
    fn name(self) -> &'static str {
        match self {
            LlmOutcome::Stored => "stored",
            LlmOutcome::Unparseable => "unparseable",
        }
    }

    fn parse(name: &str) -> Self {
        if name == "stored" {
            LlmOutcome::Stored
        } else {
            LlmOutcome::Unparseable
        }
    }
}

/// One answered request, as the ledger keeps it (its outcome comes separately: it depends on
/// whether what the reply produced could be stored).
#[derive(Debug, Clone)]
pub struct LlmRequest<'a> {
    pub key: &'a str,
    /// `generate`, `judge` or `judge-pairwise`.
    pub task: &'a str,
    /// What the request was about: the figure id, or the answer ids judged.
    pub subject: &'a str,
    pub model: &'a str,
    pub reply: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One ledger entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub key: String,
    pub task: String,
    pub subject: String,
    pub model: String,
    pub outcome: LlmOutcome,
    pub reason: Option<String>,
}

impl Workspace {
    /// The outcome stored for request `key`, if that request finished before.
    pub fn llm_request_outcome(&self, key: &str) -> anyhow::Result<Option<LlmOutcome>> {
        let outcome: Option<String> = self
            .db
            .query_opt(
                "SELECT outcome FROM llm_requests WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .with_context(|| format!("cannot look up LLM request {key} in the ledger"))?;
        Ok(outcome.as_deref().map(LlmOutcome::parse))
    }

    /// Records a finished request on its own (callers that also store what the reply produced use
    /// [`Workspace::store_generated_reply`] or [`Workspace::store_llm_judge_reply`]).
    pub fn record_llm_request(
        &self,
        request: &LlmRequest,
        outcome: LlmOutcome,
        reason: Option<&str>,
    ) -> anyhow::Result<()> {
        record(&self.db, request, outcome, reason)
    }

    /// Forgets unparseable replies of `task`, so the next run asks again. Returns how many.
    pub fn forget_unparseable_llm_requests(&self, task: &str) -> anyhow::Result<usize> {
        self.db
            .execute(
                "DELETE FROM llm_requests WHERE outcome = 'unparseable' AND task = ?1",
                params![task],
            )
            .with_context(|| format!("cannot forget the unparseable `{task}` replies"))
    }

    /// Every ledger entry, oldest first (without the replies, which can be long).
    pub fn llm_ledger_entries(&self) -> anyhow::Result<Vec<LedgerEntry>> {
        self.db
            .query_vec(
            "SELECT key, task, subject, model, outcome, reason FROM llm_requests ORDER BY rowid",
            params![],
            |r| {
                Ok(LedgerEntry {
                    key: r.get(0)?,
                    task: r.get(1)?,
                    subject: r.get(2)?,
                    model: r.get(3)?,
                    outcome: LlmOutcome::parse(&r.get::<String>(4)?),
                    reason: r.get(5)?,
                })
            })
            .context("cannot read the LLM request ledger")
    }
}

/// Writes a ledger entry on `db` (inside the caller's transaction, with what it produced).
pub(super) fn record(
    db: &Db,
    request: &LlmRequest,
    outcome: LlmOutcome,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    // A replaced entry moves to the end of the ledger in both databases (SQLite's REPLACE gives
    // it a new rowid; PostgreSQL's upsert draws a new one).
    let insert = match db.dialect() {
        Dialect::Sqlite => "INSERT OR REPLACE INTO llm_requests",
        Dialect::Postgres => "INSERT INTO llm_requests",
    };
    let on_conflict = match db.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            "ON CONFLICT (key) DO UPDATE SET rowid = DEFAULT, task = excluded.task,
             subject = excluded.subject, model = excluded.model, outcome = excluded.outcome,
             reason = excluded.reason, reply = excluded.reply, prompt_tokens = excluded.prompt_tokens,
             completion_tokens = excluded.completion_tokens, created_at = excluded.created_at"
        }
    };
    db.execute(
        &format!(
            "{insert}
         (key, task, subject, model, outcome, reason, reply, prompt_tokens, completion_tokens, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {NOW}) {on_conflict}"
        ),
        params![
        request.key,
        request.task,
        request.subject,
        request.model,
        outcome.name(),
        reason,
        request.reply,
        request.prompt_tokens as i64,
        request.completion_tokens as i64,
    ],
    )
    .with_context(|| {
        format!(
            "cannot record the `{}` request about {} in the ledger",
            request.task, request.subject
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn record_then_lookup_and_forget(db: TestDb) {
        let ws = TestWorkspace::new(db);
        // A request key (see `llm::ledger::request_key`, tested there).
        let key = "0".repeat(64);
        assert_eq!(ws.llm_request_outcome(&key).unwrap(), None);
        let f = LlmRequest {
            key: &key,
            task: "generate",
            subject: "fig-1",
            model: "m",
            reply: "hello",
            prompt_tokens: 1,
            completion_tokens: 2,
        };
        ws.record_llm_request(&f, LlmOutcome::Unparseable, Some("no `User:` line"))
            .unwrap();
        assert_eq!(
            ws.llm_request_outcome(&key).unwrap(),
            Some(LlmOutcome::Unparseable)
        );
        assert_eq!(ws.forget_unparseable_llm_requests("judge").unwrap(), 0);
        assert_eq!(ws.forget_unparseable_llm_requests("generate").unwrap(), 1);
        assert_eq!(ws.llm_request_outcome(&key).unwrap(), None);
    }

    fn ledger_entries_carry_the_reason_of_an_unusable_reply(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let request = |key, subject| LlmRequest {
            key,
            task: "judge",
            subject,
            model: "m",
            reply: "?",
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        ws.record_llm_request(&request("k1", "answer 1"), LlmOutcome::Stored, None)
            .unwrap();
        ws.record_llm_request(
            &request("k2", "answer 2"),
            LlmOutcome::Unparseable,
            Some("no score"),
        )
        .unwrap();
        let entries = ws.llm_ledger_entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].subject, "answer 1");
        assert_eq!(entries[0].outcome, LlmOutcome::Stored);
        assert_eq!(entries[0].reason, None);
        assert_eq!(entries[1].outcome, LlmOutcome::Unparseable);
        assert_eq!(entries[1].reason.as_deref(), Some("no score"));
    }

    on_both_databases!(
        record_then_lookup_and_forget,
        ledger_entries_carry_the_reason_of_an_unusable_reply
    );
}
