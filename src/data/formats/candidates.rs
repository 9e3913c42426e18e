//! vital's own shape for generated data with several candidate answers per question:
//!
//! ```json
//! {"id": "fig-1", "image": "fig-1.png", "fig_caption": "…", "in_text_mention": "…",
//!  "domain": "ct_scan", "fig_label": "Figure 1",
//!  "rounds": [{"question": "…", "answers": ["first answer", "second answer"]}]}
//! ```
//! Answers may also be objects `{"text": "…"}`. A round with no answers is an unanswered question.

use serde_json::Value;

use super::{figure_fields, required_id, RecordParser};
use crate::data::fields::{type_name, Fields};
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{Record, Round};

pub struct CandidatesParser;

impl RecordParser for CandidatesParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let id = required_id(&fields, &["id", "pair_id"])?;
        let mut sample = figure_fields(&fields, id, warnings);
        let rounds = match fields.get(&["rounds"]) {
            Some((_, Value::Array(rounds))) => rounds,
            Some((_, other)) => {
                anyhow::bail!("{loc}: `rounds` is {}, expected an array", type_name(other))
            }
            None => anyhow::bail!("{loc}: missing field `rounds`"),
        };
        for (r, round) in rounds.iter().enumerate() {
            let round_fields = Fields::new(round, loc).map_err(|_| {
                anyhow::anyhow!(
                    "{loc}: round {} is {}, expected an object",
                    r + 1,
                    type_name(round)
                )
            })?;
            let Some(question) = round_fields
                .text(&["question", "q"], warnings)
                .filter(|q| !q.trim().is_empty())
            else {
                warnings.add(
                    "round without question skipped",
                    format!("{loc}: round {}", r + 1),
                );
                continue;
            };
            let answers = match round_fields.get(&["answers"]) {
                Some((_, Value::Array(items))) => items.clone(),
                Some((_, single)) => vec![single.clone()],
                None => Vec::new(),
            };
            let mut texts = Vec::new();
            for item in &answers {
                let text = match item {
                    Value::Object(o) => o
                        .get("text")
                        .and_then(|t| round_fields.coerce_text("answers.text", t, warnings)),
                    other => round_fields.coerce_text("answers", other, warnings),
                };
                match text {
                    Some(t) => {
                        // An empty answer is an answer (real judge data has them).
                        if t.trim().is_empty() {
                            warnings.add("empty answer kept", format!("{loc}: round {}", r + 1));
                        }
                        texts.push(t)
                    }
                    None => warnings.add(
                        "answer without text skipped",
                        format!("{loc}: round {}", r + 1),
                    ),
                }
            }
            if texts.is_empty() {
                warnings.add(
                    "unanswered question kept",
                    format!("{loc}: round {}", r + 1),
                );
            }
            sample.rounds.push(Round {
                question,
                answers: texts,
            });
        }
        if sample.rounds.is_empty() {
            warnings.add("record without questions skipped", loc.to_string());
            return Ok(Vec::new());
        }
        Ok(vec![Record::Sample {
            sample,
            verdicts: Vec::new(),
        }])
    }
}
