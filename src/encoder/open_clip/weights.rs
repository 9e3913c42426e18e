//! `open_clip_model.safetensors` / `open_clip_pytorch_model.bin` → [`OpenClipModel`] through
//! burn-store, with the PyTorch adapter (Linear weights transposed, LayerNorm renamed) and
//! half-precision weights cast to f32. The image tower's keys already match; the text tower
//! needs BERT's two renames plus the pooler's and the projection's. When the folder has no
//! text-tower `config.json`, the BERT's shape is read from the checkpoint's tensors.

use anyhow::{ensure, Context, Result};
use burn::tensor::backend::Backend;
use burn_store::TensorSnapshot;

use super::OpenClipModel;
use crate::encoder::checkpoint;
use crate::encoder::config::{BertConfig, WeightsFile};
use crate::encoder::weights;

/// Checkpoint key pattern → our key, applied in order.
const RENAMES: [(&str, &str); 6] = [
    (r"^text\.transformer\.pooler\.dense\.", "text.pooler."),
    (r"^text\.proj\.0\.", "text.head.fc1."),
    (r"^text\.proj\.2\.", "text.head.fc2."),
    (r"^text\.proj\.(weight|bias)$", "text.head.linear.$1"),
    (r"(^|\.)LayerNorm\.", "${1}layer_norm."),
    (r"\.attention\.self\.", ".attention.self_attn."),
];

/// Every tensor of the checkpoint, keys renamed (nothing is read until a tensor is applied).
pub fn snapshots(file: &WeightsFile) -> Result<Vec<TensorSnapshot>> {
    weights::renamed_snapshots(file, &RENAMES)
}

fn shape_of<'s>(snapshots: &'s [TensorSnapshot], key: &str, file: &str) -> Result<&'s [usize]> {
    snapshots
        .iter()
        .find(|s| s.full_path() == key)
        .map(|s| &s.shape[..])
        .with_context(|| {
            format!("{file}: has no tensor `{key}` (not an open_clip BERT text tower?)")
        })
}

/// The text tower's BERT shape from the checkpoint: layers, hidden and intermediate sizes,
/// vocabulary, positions and token types; heads = hidden / 64; transformers' other defaults.
pub fn bert_from_shapes(snapshots: &[TensorSnapshot], file: &WeightsFile) -> Result<BertConfig> {
    let name = file.path().display().to_string();
    let prefix = "text.transformer.";
    let two = |key: &str| -> Result<[usize; 2]> {
        let shape = shape_of(snapshots, &format!("{prefix}{key}"), &name)?;
        <[usize; 2]>::try_from(shape)
            .ok()
            .with_context(|| format!("{name}: `{prefix}{key}` is not a matrix"))
    };
    let [vocab_size, hidden_size] = two("embeddings.word_embeddings.weight")?;
    let [max_position_embeddings, _] = two("embeddings.position_embeddings.weight")?;
    let [type_vocab_size, _] = two("embeddings.token_type_embeddings.weight")?;
    let [intermediate_size, _] = two("encoder.layer.0.intermediate.dense.weight")?;
    let layer_prefix = format!("{prefix}encoder.layer.");
    let num_hidden_layers = snapshots
        .iter()
        .filter_map(|s| {
            let path = s.full_path();
            let rest = path.strip_prefix(&layer_prefix)?;
            rest.split('.').next()?.parse::<usize>().ok()
        })
        .max()
        .map_or(0, |last| last + 1);
    ensure!(
        hidden_size.is_multiple_of(64),
        "{name}: the text tower's hidden size {hidden_size} is not a multiple of 64, so its head count cannot be inferred; put its config.json in the hf_model_name sub-folder"
    );
    let config = BertConfig {
        hidden_size,
        num_hidden_layers,
        num_attention_heads: hidden_size / 64,
        intermediate_size,
        max_position_embeddings,
        type_vocab_size,
        vocab_size,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
        position_embedding_type: "absolute".into(),
        model_type: Some("bert".into()),
    };
    ensure!(
        num_hidden_layers > 0,
        "{name}: the text tower has no layers"
    );
    // The shapes are the checkpoint's claims: the same bounds as a config.json's, and every
    // layer up to the highest index must be there, before a model is built from them.
    config.check(file.path())?;
    checkpoint::check_bert_against(&config, snapshots, prefix, file.path(), file)?;
    Ok(config)
}

/// Overwrites every weight of `model` with the checkpoint's.
pub fn apply<B: Backend>(
    model: &mut OpenClipModel<B>,
    snapshots: Vec<TensorSnapshot>,
    file: &WeightsFile,
) -> Result<()> {
    weights::apply(model, snapshots, file, "open_clip_config.json")
}
