//! Judge scores, one per line: `{"sample_id": "fig-1", "round": 1, "answer": 2, "score": 7,
//! "judge": "gpt-4o"}`. `round` and `answer` are 1-based, as on screen; the score is 0–10.

use serde_json::Value;

use super::{required_id, RecordParser};
use crate::data::fields::Fields;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{Record, ScoreRecord};

pub struct ScoresParser;

impl RecordParser for ScoresParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>> {
        let fields = Fields::new(value, loc)?;
        let sample_id = required_id(&fields, &["sample_id", "id"])?;
        let round = fields.index(&["round"]).unwrap_or(1);
        let answer = fields.index(&["answer"]).unwrap_or(1);
        if round == 0 || answer == 0 {
            anyhow::bail!(
                "{loc}: `round` and `answer` are 1-based; found round {round}, answer {answer}"
            );
        }
        let Some(score) = fields.number(&["score"]) else {
            anyhow::bail!("{loc}: missing or non-numeric field `score`");
        };
        if !(0.0..=10.0).contains(&score) {
            warnings.add("score outside 0–10 skipped", format!("{loc}: {score}"));
            return Ok(Vec::new());
        }
        let judge = fields
            .text(&["judge", "model"], warnings)
            .unwrap_or_else(|| "judge".to_string());
        Ok(vec![Record::Score(ScoreRecord {
            sample_id,
            round,
            answer,
            score,
            judge,
        })])
    }
}
