//! LLaVA / LLaVA-Med / BioMed-VITAL instruction records: `{id, image, conversations, domain?}`.

use serde_json::Value;

use super::{conversation_rounds, figure_fields, required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::Record;

pub struct LlavaParser;

impl RecordParser for LlavaParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let id = required_id(&fields, &["id", "pair_id"])?;
        let mut sample = figure_fields(&fields, id, warnings);
        sample.rounds = conversation_rounds(&fields, warnings)?;
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
