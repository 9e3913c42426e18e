//! Reviewers' corrected answers, one per line, as `vital export --format edits` writes them:
//! `{"id": "fig-1", "round": 1, "answer": 2, "question": "…", "original": "…", "edited": "…",
//! "reviewer": "dr_lee", "reasons": ["factual error"], "time": "…"}`. `round` and `answer` are
//! 1-based; without `answer` the original text names the answer.
//!
//! A correction is refused rather than cut: an `edited` text over the field limit, a reason over
//! [`MAX_REASON_CHARS`], more than one reason (a reviewer has one reason in force per answer),
//! an edit equal to its original, and a reviewer name that is not a person's name.

use serde_json::Value;

use super::{required_id, RecordParser};
use crate::data::fields::{Fields, MAX_FIELD_CHARS, MAX_REASON_CHARS};
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{EditImport, Record};

/// The longest reviewer name taken from a file (characters).
const MAX_REVIEWER_CHARS: usize = 100;

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
        if let Some((_, Value::String(raw))) = fields.get(&["edited"]) {
            let chars = raw.chars().count();
            anyhow::ensure!(
                chars <= MAX_FIELD_CHARS,
                "{loc}: `edited` has {chars} characters; a correction holds at most {MAX_FIELD_CHARS}"
            );
        }
        let edited = fields.required_text(&["edited"], warnings)?;
        anyhow::ensure!(
            edited != original,
            "{loc}: `edited` is the original text: no correction"
        );
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
        anyhow::ensure!(
            reasons.len() <= 1,
            "{loc}: `reasons` holds {} reasons; a reviewer gives an answer one",
            reasons.len()
        );
        if let Some(long) = reasons
            .iter()
            .find(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            anyhow::bail!(
                "{loc}: a reason of {} characters; a reason holds at most {MAX_REASON_CHARS}",
                long.chars().count()
            );
        }
        let reviewer = reviewer.trim().to_string();
        anyhow::ensure!(
            reviewer.chars().count() <= MAX_REVIEWER_CHARS
                && !reviewer.chars().any(char::is_control),
            "{loc}: `reviewer` is not a name (at most {MAX_REVIEWER_CHARS} characters, no control characters)"
        );
        Ok(vec![Record::Edit(EditImport {
            sample_id,
            round,
            answer,
            original,
            edited,
            reviewer,
            reasons,
        })])
    }
}
