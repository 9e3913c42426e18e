//! Clinician-selected demonstrations (`clinician_demos.json`): LLaVA-like conversations with the
//! figure's caption, label and token-object mentions. Ids are namespaced `demo-N`.

use serde_json::Value;

use super::{conversation_rounds, figure_fields, required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::Record;

pub struct DemosParser;

impl RecordParser for DemosParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let id = required_id(&fields, &["id", "pair_id"])?;
        let id = if id.starts_with("demo-") {
            id
        } else {
            format!("demo-{id}")
        };
        let mut sample = figure_fields(&fields, id, warnings);
        sample.rounds = conversation_rounds(&fields, warnings)?;
        sample.is_demo = true;
        if sample.domains.len() > 1 {
            warnings.add(
                "several domains set",
                format!("{loc}: {}", sample.domains.join(", ")),
            );
        }
        Ok(vec![Record::Sample {
            sample,
            verdicts: Vec::new(),
        }])
    }
}
