//! Reviewers' corrected answers, one per line, as `vital export --format edits` writes them:
//! `{"id": "fig-1", "round": 1, "answer": 2, "question": "…", "original": "…", "edited": "…",
//! "reviewer": "dr_lee", "reasons": ["factual error"], "time": "…"}`. `round` and `answer` are
//! 1-based; without `answer` the original text names the answer.

use serde_json::Value;

use super::{required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{EditImport, Record};

pub struct EditsParser;

impl RecordParser for EditsParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let sample_id = required_id(&fields, &["id", "sample_id"])?;
        let Some(round) = fields.index(&["round"]) else {
            anyhow::bail!("{loc}: missing or non-numeric field `round` (1-based)");
        };
        let answer = fields.index(&["answer"]);
        if round == 0 || answer == Some(0) {
            anyhow::bail!("{loc}: `round` and `answer` are 1-based");
        }
        let original = fields.present_text(&["original"], warnings)?;
        let edited = fields.required_text(&["edited"], warnings)?;
        let reviewer = fields.required_text(&["reviewer"], warnings)?;
        let reasons = match fields.get(&["reasons"]) {
            None | Some((_, Value::Null)) => Vec::new(),
            Some((_, Value::Array(items))) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    other => anyhow::bail!("{loc}: `reasons` holds {other}, not a reason's text"),
                })
                .collect::<anyhow::Result<_>>()?,
            Some((_, other)) => anyhow::bail!("{loc}: `reasons` is {other}, not a list"),
        };
        Ok(vec![Record::Edit(EditImport {
            sample_id,
            round,
            answer,
            original,
            edited,
            reviewer: reviewer.trim().to_string(),
            reasons,
        })])
    }
}
