//! The selector's settings (`[selector]` in config.toml), owned here, read by `config`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Head, JudgePairs, SampleScore};
use crate::selector::{BackendKind, PairLoss};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectorSettings {
    #[serde(with = "crate::as_text")]
    pub backend: BackendKind,
    pub human_weight: f64,
    #[serde(with = "crate::as_text")]
    pub loss: PairLoss,
    pub margin: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub validation_fraction: f64,
    pub seed: u64,
    #[serde(with = "crate::as_text")]
    pub sample_score: SampleScore,
    pub judge_min_gap: f64,
    #[serde(with = "crate::as_text")]
    pub judge_pairs: JudgePairs,
    pub judge_train_pairs: usize,
    pub judge_test_pairs: usize,
    pub judge_level_split: f64,
    pub judge_pairs_seed: u64,
    /// A sentence-encoder model folder whose vectors feed the selector; empty = none.
    pub encoder: String,
    /// With an encoder: the few-pairs signals head, the full model, a zero-shot signal, or
    /// chosen per run by validation (`auto`).
    #[serde(with = "crate::as_text")]
    pub head: Head,
}

impl SelectorSettings {
    /// The encoder folder, when one is set.
    pub fn encoder_dir(&self) -> Option<PathBuf> {
        (!self.encoder.trim().is_empty()).then(|| PathBuf::from(self.encoder.trim()))
    }
}
