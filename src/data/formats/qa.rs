//! One-question-per-line evaluation records (`llava_med_qa50.jsonl`): `{question_id, image, pair_id,
//! text, gpt4_answer, fig_caption, in_text_mention, domain, type, fig_label}`. Lines sharing a
//! `pair_id` become one multi-round sample, rounds in file order.

use std::collections::HashMap;

use serde_json::Value;

use super::{figure_fields, required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{Record, Round, Sample};

#[derive(Default)]
pub struct QaParser {
    /// Samples in order of first appearance; grouping needs the whole file (eval sets are small).
    samples: Vec<Sample>,
    by_id: HashMap<String, usize>,
}

impl RecordParser for QaParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let id = required_id(&fields, &["pair_id", "image", "question_id"])?;
        let question = fields.required_text(&["text", "question"], warnings)?;
        let answer = fields.text(&["gpt4_answer", "answer", "gpt_answer"], warnings);
        let slot = match self.by_id.get(&id) {
            Some(&slot) => slot,
            None => {
                let sample = figure_fields(&fields, id.clone(), warnings);
                self.samples.push(sample);
                self.by_id.insert(id, self.samples.len() - 1);
                self.samples.len() - 1
            }
        };
        let answers = match answer {
            Some(a) if !a.trim().is_empty() => vec![a],
            _ => {
                warnings.add("unanswered question kept", loc.to_string());
                Vec::new()
            }
        };
        self.samples[slot].rounds.push(Round { question, answers });
        Ok(Vec::new())
    }

    fn finish(&mut self, _warnings: &mut Warnings) -> anyhow::Result<Vec<Record>> {
        self.by_id.clear();
        Ok(std::mem::take(&mut self.samples)
            .into_iter()
            .map(|sample| Record::Sample {
                sample,
                verdicts: Vec::new(),
            })
            .collect())
    }
}
