//! Stage 4 of a run: the selector fitted on every training pair (clinician pairs weighted by w,
//! the hinge loss), on the run's backend, with the split the trainer makes by figure reproduced
//! here to name the held-out figures.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use super::inputs::RunInputs;
use super::pairs::RunPairs;
use super::RunSettings;
use crate::selector::{self, TrainConfig, TrainData, TrainProgress, TrainedSelector};

/// A fitted selector and what its split held out.
pub struct Fitted {
    pub selector: TrainedSelector,
    /// Pairs the model trained on (the rest of the training pairs validated).
    pub train_pairs: usize,
    /// Figures whose pairs were held out for validation.
    pub held_out_figures: HashSet<String>,
}

pub fn fit(
    settings: &RunSettings,
    config: &TrainConfig,
    pairs: &RunPairs,
    inputs: &RunInputs,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> anyhow::Result<Fitted> {
    let all = pairs.training();
    let figure = |id: i64| inputs.index.figure_of(id).unwrap_or_default();
    let figures: Vec<&str> = all.iter().map(|p| figure(p.winner)).collect();
    let (train_idx, val_idx) =
        selector::split_by_figure(&figures, config.validation_share, settings.seed);
    let held_out_figures = val_idx.iter().map(|&i| figures[i].to_string()).collect();
    let data = TrainData {
        answers: &inputs.index.inputs,
        pairs: &all,
        embeddings: inputs.embeddings.as_ref(),
    };
    let selector = selector::train_on(settings.backend, data, config, progress, cancel)?;
    Ok(Fitted {
        selector,
        train_pairs: train_idx.len(),
        held_out_figures,
    })
}
