//! The record of finished LLM requests (`llm_requests`), which makes runs resumable: a request is
//! keyed by the SHA-256 of its exact body (for judging, with the task and the judge's name: see
//! [`super::judge::request_key`]), and a key found here is never sent again. Replies that
//! could not be used are kept here too, with the reason, so nothing is dropped silently.

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::NOW;

/// What became of a finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed and written to the workspace.
    Stored,
    /// The reply could not be used; `reason` says why.
    Unparseable,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Unparseable => "unparseable",
        }
    }
}

/// One finished request, as written to the ledger.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub key: &'a str,
    /// `generate`, `judge` or `judge-pairwise`.
    pub task: &'a str,
    /// What the request was about: the figure id, or the answer ids judged.
    pub subject: &'a str,
    pub model: &'a str,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub reply: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The content key of a request body: SHA-256 over its canonical JSON bytes.
pub fn request_key(body: &impl serde::Serialize) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    hex::encode(Sha256::digest(&bytes))
}

/// The outcome stored for `key`, if that request finished before.
pub fn lookup(conn: &Connection, key: &str) -> rusqlite::Result<Option<Outcome>> {
    let outcome: Option<String> = conn
        .prepare_cached("SELECT outcome FROM llm_requests WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(outcome.map(|o| {
        if o == "stored" {
            Outcome::Stored
        } else {
            Outcome::Unparseable
        }
    }))
}

/// Records a finished request (inside the caller's transaction, with what it produced).
pub fn record(conn: &Connection, f: &Finished) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO llm_requests
         (key, task, subject, model, outcome, reason, reply, prompt_tokens, completion_tokens, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {NOW})"
    ))?
    .execute(params![
        f.key,
        f.task,
        f.subject,
        f.model,
        f.outcome.name(),
        f.reason,
        f.reply,
        f.prompt_tokens as i64,
        f.completion_tokens as i64,
    ])?;
    Ok(())
}

/// Forgets unparseable replies of `task`, so the next run asks again. Returns how many.
pub fn forget_unparseable(conn: &Connection, task: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM llm_requests WHERE outcome = 'unparseable' AND task = ?1",
        [task],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_then_lookup_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let ws = crate::store::Workspace::open(dir.path()).unwrap();
        let key = request_key(&serde_json::json!({"model": "m"}));
        assert_eq!(key.len(), 64);
        assert_eq!(lookup(ws.conn(), &key).unwrap(), None);
        let f = Finished {
            key: &key,
            task: "generate",
            subject: "fig-1",
            model: "m",
            outcome: Outcome::Unparseable,
            reason: Some("no `User:` line"),
            reply: "hello",
            prompt_tokens: 1,
            completion_tokens: 2,
        };
        record(ws.conn(), &f).unwrap();
        assert_eq!(lookup(ws.conn(), &key).unwrap(), Some(Outcome::Unparseable));
        assert_eq!(forget_unparseable(ws.conn(), "judge").unwrap(), 0);
        assert_eq!(forget_unparseable(ws.conn(), "generate").unwrap(), 1);
        assert_eq!(lookup(ws.conn(), &key).unwrap(), None);
    }
}
