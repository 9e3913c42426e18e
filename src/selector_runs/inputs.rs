//! Stage 3 of a run: the answers its pairs name, as the model reads them — their figure's
//! statistics, the paper's joined text when set, and the encoder's rows (or a precomputed
//! embeddings file's) — plus, with an encoder, each answer's round-mates for the answer · other
//! answers similarity.

use super::pairs::RunPairs;
use super::{answer_inputs_for, AnswerIndex, RunSettings};
use crate::selector::EmbeddingTable;
use crate::store::Workspace;

/// The inputs of one run's answers.
pub struct RunInputs {
    pub index: AnswerIndex,
    pub embeddings: Option<EmbeddingTable>,
}

pub fn gather_inputs(
    ws: &Workspace,
    settings: &RunSettings,
    pairs: &RunPairs,
) -> anyhow::Result<RunInputs> {
    let mut used = pairs.answer_ids();
    if settings.encoder.is_some() {
        used.extend(ws.round_mates_of(&used)?);
    }
    let mut index = answer_inputs_for(ws, &used)?;
    settings.prepare_inputs(&mut index.inputs);
    let embeddings = settings.embeddings_for(ws, &index.inputs)?;
    Ok(RunInputs { index, embeddings })
}
