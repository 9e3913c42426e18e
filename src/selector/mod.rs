//! The selector: a burn model that learns clinician and judge preferences over
//! (figure, question, answer) triples and scores every answer.
//!
//! This module knows nothing of the store or the UI: callers hand it
//! [`AnswerInput`]s and [`PreferencePair`]s and get scores and metrics back.

use std::path::PathBuf;

/// One candidate answer with everything the featurizer may look at.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerInput {
    /// Stable id of the answer (the store's answer row id).
    pub answer_id: i64,
    /// The figure this answer is about; train/validation splits are by figure.
    pub figure_key: String,
    pub caption: String,
    pub mentions: Vec<String>,
    pub question: String,
    pub answer: String,
    /// 0-based position of the round inside its sample.
    pub round_position: usize,
    /// Resolved image file, when one exists on disk.
    pub image_path: Option<PathBuf>,
    /// The figure's statistics when the caller already has them (the workspace keeps them per
    /// file content), so the featurizer does not decode `image_path` again.
    pub figure_stats: FigureStats,
}

/// What the caller knows of an answer's figure statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum FigureStats {
    /// Not known: the featurizer decodes `image_path`, if any (once per path and featurizer).
    #[default]
    Unknown,
    /// Computed before; `None` when the file does not decode as an image.
    Known(Option<image_stats::ImageStats>),
}

/// Where a training pair came from; clinician pairs are weighted by the mixture weight w.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairSource {
    Human,
    Judge,
}

/// `winner` should score higher than `loser`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferencePair {
    pub winner: i64,
    pub loser: i64,
    pub source: PairSource,
}

// Layers, bottom up: text + image statistics → features → model → train/trained → backend.
pub mod backend;
pub mod embeddings;
pub mod encoder_features;
mod feature_batch;
pub mod features;
pub mod image_stats;
pub mod metrics;
pub mod model;
pub mod synthetic;
mod text;
pub mod train;
pub mod trained;

pub use backend::{train_on, BackendKind};
pub use embeddings::EmbeddingTable;
pub use encoder_features::EncoderInputs;
pub use features::{
    featurize_batch, FeatureBatch, FeatureLayout, FeatureRow, Featurizer, HashedFeaturizer,
    HashedFeaturizerConfig,
};
pub use metrics::Metrics;
pub use train::{
    split_by_figure, train, Cancelled, PairLoss, TrainConfig, TrainData, TrainProgress,
};
pub use trained::TrainedSelector;
