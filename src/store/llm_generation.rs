//! Writing what `vital generate` got back: the generated sample and the ledger entry of the
//! request that produced it, in one transaction, so a crash never leaves one without the other.

use anyhow::Context;

use super::db::Db;

use super::llm_ledger::{record, LlmOutcome, LlmRequest};
use super::samples::insert_sample;
use super::{InsertOutcome, Workspace};
use crate::data::Sample;

/// What became of a generation reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratedOutcome {
    /// The sample is new and now stored.
    Inserted,
    /// The same sample was stored before (same id, same content).
    Unchanged,
    /// Nothing stored; the ledger keeps the reply with this reason.
    Unparseable(String),
}

impl Workspace {
    /// Stores the sample parsed from a generation reply (or, for `Err(reason)`, nothing) and
    /// records the request with its outcome, in one transaction. A sample id already stored with
    /// other content makes the reply unparseable, with a reason saying so.
    pub fn store_generated_reply(
        &self,
        request: &LlmRequest,
        parsed: Result<&Sample, String>,
    ) -> anyhow::Result<GeneratedOutcome> {
        let tx = self.db.begin_write()?;
        let outcome = write_generated_reply(&tx, request, parsed)?;
        tx.commit().with_context(|| {
            format!(
                "cannot commit the generation reply about {}",
                request.subject
            )
        })?;
        Ok(outcome)
    }
}

/// [`Workspace::store_generated_reply`] inside the caller's transaction (a batch's replies are
/// stored many to a transaction: see `store::llm_batches`).
pub(super) fn write_generated_reply(
    tx: &Db,
    request: &LlmRequest,
    parsed: Result<&Sample, String>,
) -> anyhow::Result<GeneratedOutcome> {
    let outcome = match parsed {
        Ok(sample) => match insert_sample(tx, sample, None)
            .with_context(|| format!("cannot store generated sample {}", sample.id))?
        {
            InsertOutcome::Inserted(_) => GeneratedOutcome::Inserted,
            InsertOutcome::Unchanged(_) => GeneratedOutcome::Unchanged,
            InsertOutcome::Conflict { .. } => GeneratedOutcome::Unparseable(format!(
                "sample {} is already stored with other content",
                sample.id
            )),
        },
        Err(reason) => GeneratedOutcome::Unparseable(reason),
    };
    let (ledger_outcome, reason) = match &outcome {
        GeneratedOutcome::Inserted | GeneratedOutcome::Unchanged => (LlmOutcome::Stored, None),
        GeneratedOutcome::Unparseable(reason) => (LlmOutcome::Unparseable, Some(reason.as_str())),
    };
    record(tx, request, ledger_outcome, reason)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Round;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn request<'a>(key: &'a str) -> LlmRequest<'a> {
        LlmRequest {
            key,
            task: "generate",
            subject: "fig",
            model: "m",
            reply: "User: Q?\nAssistant: A.",
            prompt_tokens: 1,
            completion_tokens: 1,
        }
    }

    fn sample(answer: &str) -> Sample {
        Sample {
            id: "gen-fig".into(),
            rounds: vec![Round {
                question: "Q?".into(),
                answers: vec![answer.into()],
            }],
            ..Default::default()
        }
    }

    fn a_reply_stores_its_sample_once_and_a_clash_is_kept_as_unparseable(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let first = ws.store_generated_reply(&request("k1"), Ok(&sample("A.")));
        assert_eq!(first.unwrap(), GeneratedOutcome::Inserted);
        assert_eq!(
            ws.llm_request_outcome("k1").unwrap(),
            Some(LlmOutcome::Stored)
        );
        let again = ws.store_generated_reply(&request("k2"), Ok(&sample("A.")));
        assert_eq!(again.unwrap(), GeneratedOutcome::Unchanged);
        let clash = ws
            .store_generated_reply(&request("k3"), Ok(&sample("B.")))
            .unwrap();
        assert!(
            matches!(&clash, GeneratedOutcome::Unparseable(r) if r.contains("other content")),
            "{clash:?}"
        );
        assert_eq!(
            ws.llm_request_outcome("k3").unwrap(),
            Some(LlmOutcome::Unparseable)
        );
        let junk = ws
            .store_generated_reply(&request("k4"), Err("no `User:` line".into()))
            .unwrap();
        assert_eq!(
            junk,
            GeneratedOutcome::Unparseable("no `User:` line".into())
        );
        assert_eq!(ws.stats().unwrap().samples, 1);
    }

    on_both_databases!(a_reply_stores_its_sample_once_and_a_clash_is_kept_as_unparseable);
}
