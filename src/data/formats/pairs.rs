//! Clinician pairs from the reference code: `{img, fig_caption, inline_mention, question,
//! answer_positive, answer_negative}`. Each becomes a one-round sample with both answers and the
//! clinician's ✓/✗ as imported verdicts. Pairs carry no id, so the id is derived from the content.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{figure_fields, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{ImportedVerdict, Record, Round};

pub struct PairsParser;

impl RecordParser for PairsParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let question = fields.required_text(&["question"], warnings)?;
        // Real judge data has empty answers: they are answers (and pairs) like any other.
        let positive = fields.present_text(&["answer_positive", "chosen"], warnings)?;
        let negative = fields.present_text(&["answer_negative", "rejected"], warnings)?;
        for (text, key) in [
            (&positive, "answer_positive"),
            (&negative, "answer_negative"),
        ] {
            if text.trim().is_empty() {
                warnings.add("empty answer kept", format!("{loc}: `{key}`"));
            }
        }
        let mut sample = figure_fields(&fields, String::new(), warnings);
        let mut hasher = Sha256::new();
        for part in [
            sample.image.as_deref().unwrap_or(""),
            &question,
            &positive,
            &negative,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        sample.id = format!("pair-{}", hex::encode(&hasher.finalize()[..8]));
        sample.rounds.push(Round {
            question,
            answers: vec![positive, negative],
        });
        let verdicts = vec![
            ImportedVerdict {
                round: 0,
                answer: 0,
                accepted: true,
            },
            ImportedVerdict {
                round: 0,
                answer: 1,
                accepted: false,
            },
        ];
        Ok(vec![Record::Sample { sample, verdicts }])
    }
}
