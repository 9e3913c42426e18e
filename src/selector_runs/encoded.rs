//! Runs trained with a sentence encoder: their model inputs are built from the workspace's
//! embeddings cache (never from a live model), so training, scoring and evaluation read the very
//! vectors `vital embed` stored under the run's encoder identity.

use crate::embed::EncoderRef;
use std::collections::HashMap;

use crate::selector::encoder_features::{encoder_table, encoder_table_with_images, texts_of};
use crate::selector::{AnswerInput, EmbeddingTable, EncoderInputs};
use crate::store::{TextHash, Workspace};

/// Width of the learned projection of the answer vector.
pub const PROJECTION: usize = 16;
/// Epochs without a better stopping-set alignment before an encoder run stops.
pub const PATIENCE: usize = 8;
/// The most epochs an encoder run may take (it stops earlier on the stopping set).
pub const MAX_EPOCHS: usize = 150;

/// The encoder inputs of `inputs` (every text, and each round's other answers, must be cached).
pub fn table_from_cache(
    ws: &Workspace,
    encoder: &EncoderRef,
    inputs: &[AnswerInput],
    kind: EncoderInputs,
) -> anyhow::Result<EmbeddingTable> {
    let texts: Vec<String> = inputs.iter().flat_map(texts_of).collect();
    let hashes: Vec<TextHash> = texts.iter().map(|t| TextHash::of(t)).collect();
    let vectors = ws.text_embeddings(&encoder.identity, &hashes)?;
    let lookup = |text: &str| vectors.get(&TextHash::of(text)).map(Vec::as_slice);
    let table = if encoder.images {
        // Figures by content: each image file read once to find its key.
        let mut keys: HashMap<&std::path::Path, Option<TextHash>> = HashMap::new();
        for input in inputs {
            if let Some(path) = &input.image_path {
                keys.entry(path.as_path())
                    .or_insert_with(|| crate::embed::image_key(path));
            }
        }
        let wanted: Vec<TextHash> = keys.values().flatten().copied().collect();
        let images = ws.text_embeddings(&encoder.identity, &wanted)?;
        let image = |input: &AnswerInput| {
            let path = input.image_path.as_deref()?;
            let key = keys.get(path).copied().flatten()?;
            images.get(&key).map(Vec::as_slice)
        };
        encoder_table_with_images(inputs, kind, encoder.dim, &lookup, &image)
    } else {
        encoder_table(inputs, kind, encoder.dim, &lookup)
    };
    table.map_err(|e| {
        e.context(format!(
            "the embeddings cache lacks texts for encoder {} ({}): run `vital embed --encoder {}`",
            crate::embed::short(&encoder.identity),
            encoder.folder.display(),
            encoder.folder.display()
        ))
    })
}

#[cfg(test)]
mod tests;
