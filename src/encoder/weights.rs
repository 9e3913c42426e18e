//! Checkpoint → [`BertModel`] through burn-store: the PyTorch adapter transposes Linear weights
//! and maps LayerNorm `weight`/`bias` (or old `gamma`/`beta`) to burn's names; three key
//! renames bridge the checkpoint's names and ours; half-precision weights become f32. Every
//! tensor of the model must be found with the right shape; extra tensors (pooler, MLM head,
//! `position_ids`) are ignored. Reading a checkpoint with renames and applying it are shared with
//! the open_clip loader ([`renamed_snapshots`], [`apply`]). Nothing is read from a checkpoint
//! before [`super::checkpoint`] has checked what it claims against what the file holds.

use std::rc::Rc;

use anyhow::{anyhow, bail, Result};
use burn::tensor::backend::Backend;
use burn::tensor::DType;
use burn_store::{
    ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore, TensorSnapshot,
};

use super::checkpoint;
use super::config::WeightsFile;
use super::model::BertModel;

/// Checkpoint key pattern → our key, applied in order.
const RENAMES: [(&str, &str); 3] = [
    // BertForPreTraining / BertForMaskedLM checkpoints (BiomedBERT, PubMedBERT) nest the encoder.
    (r"^bert\.", ""),
    (r"(^|\.)LayerNorm\.", "${1}layer_norm."),
    (r"\.attention\.self\.", ".attention.self_attn."),
];

/// Casts F16/BF16/F64 tensors to the f32 the model computes in.
#[derive(Debug, Clone)]
pub(crate) struct ToF32;

impl ModuleAdapter for ToF32 {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64) {
            return snapshot.clone();
        }
        let data = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Every tensor of a BERT checkpoint, keys renamed to ours; nothing is read until a tensor is
/// applied ([`load_weights`]).
pub fn snapshots(file: &WeightsFile) -> Result<Vec<TensorSnapshot>> {
    renamed_snapshots(file, &RENAMES)
}

/// Overwrites every weight of `model` with the checkpoint's `snapshots` ([`snapshots`]).
pub fn load_weights<B: Backend>(
    model: &mut BertModel<B>,
    snapshots: Vec<TensorSnapshot>,
    file: &WeightsFile,
) -> Result<()> {
    apply(model, snapshots, file, "config.json")
}

/// Every tensor of the checkpoint (safetensors or `pytorch_model.bin`), keys renamed by
/// `renames` (checkpoint key pattern → our key, applied in order); nothing is read until a
/// tensor is applied, and what each tensor claims has been checked against the file
/// ([`checkpoint::check_file`], [`checkpoint::check_snapshots`]). The BERT and open_clip
/// encoders both read their checkpoints here.
pub(crate) fn renamed_snapshots(
    file: &WeightsFile,
    renames: &[(&str, &str)],
) -> Result<Vec<TensorSnapshot>> {
    let path = file.path();
    checkpoint::check_file(file)?;
    // The two stores share no trait for these calls, so one macro reads either the same way.
    macro_rules! renamed_snapshots {
        ($store:expr) => {{
            let mut store = $store;
            for (from, to) in renames {
                store = store.with_key_remapping(from, *to);
            }
            store
                .get_all_snapshots()
                .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?
                .values()
                .cloned()
                .collect()
        }};
    }
    let snapshots: Vec<TensorSnapshot> = match file {
        WeightsFile::Safetensors(_) => renamed_snapshots!(SafetensorsStore::from_file(path)),
        WeightsFile::Pytorch(_) => renamed_snapshots!(PytorchStore::from_file(path)),
    };
    checkpoint::check_snapshots(&snapshots, file)?;
    Ok(snapshots)
}

/// Overwrites every weight of `model` with `snapshots` through the PyTorch adapter, in f32;
/// every tensor of the model must be found with the right shape, or the error names `file` and
/// `config_file` (the file the model's shape came from) and lists what did not fit.
pub(crate) fn apply<B: Backend, M: ModuleSnapshot<B>>(
    model: &mut M,
    snapshots: Vec<TensorSnapshot>,
    file: &WeightsFile,
    config_file: &str,
) -> Result<()> {
    let adapter = PyTorchToBurnAdapter.chain(ToF32);
    let result = model.apply(snapshots, None, Some(Box::new(adapter)), true);
    if !result.errors.is_empty() || !result.missing.is_empty() {
        bail!(
            "{}: does not fit {config_file}'s model:\n{result}",
            file.path().display()
        );
    }
    Ok(())
}
