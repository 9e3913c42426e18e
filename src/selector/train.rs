//! The hand-written pairwise training loop (burn's custom-training-loop pattern), reporting
//! into the caller's callback instead of burn's dashboard.
//!
//! Loss per pair on `d = score(winner) - score(loser)`: hinge `max(0, margin - d)` (the
//! paper's) or logistic `ln(1 + e^-d)` (Bradley–Terry). Clinician pairs weigh `human_weight`,
//! judge pairs 1; a batch's loss is the weighted sum divided by the batch's total weight, or
//! (`mean_loss`, the paper's code) by the number of pairs. With `sigmoid_scores` (the paper's
//! output layer) `d` is taken between the sigmoids of the scores; ranks are unchanged by it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{ensure, Context, Result};
use burn::backend::NdArray;
use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{relu, softplus};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::embeddings::EmbeddingTable;
use super::features::{FeatureBatch, Featurizer, HashedFeaturizer, HashedFeaturizerConfig};
use super::metrics::Metrics;
use super::model::{move_model, ModelInput, SelectorModel, SelectorModelConfig};
use super::trained::{encode, DenseNorm, TrainedSelector};
use super::{AnswerInput, PairSource, PreferencePair};
use crate::stable::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PairLoss {
    /// `max(0, margin - d)`, the method's loss.
    Hinge,
    /// `ln(1 + e^-d)`, Bradley–Terry.
    Logistic,
}

impl std::fmt::Display for PairLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PairLoss::Hinge => "hinge",
            PairLoss::Logistic => "logistic",
        })
    }
}

impl std::str::FromStr for PairLoss {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hinge" => Ok(PairLoss::Hinge),
            "logistic" | "bradley-terry" => Ok(PairLoss::Logistic),
            other => anyhow::bail!("unknown loss `{other}`: expected hinge or logistic"),
        }
    }
}

#[derive(Config, Debug)]
pub struct TrainConfig {
    #[config(default = 6)]
    pub epochs: usize,
    /// Pairs per step.
    #[config(default = 64)]
    pub batch_size: usize,
    #[config(default = 1e-3)]
    pub lr: f64,
    #[config(default = 42)]
    pub seed: u64,
    /// Weight w of each clinician pair; judge pairs weigh 1.
    #[config(default = 100.0)]
    pub human_weight: f32,
    #[config(default = "PairLoss::Hinge")]
    pub loss: PairLoss,
    #[config(default = 1.0)]
    pub margin: f32,
    /// Share of figures held out for validation (0 = none).
    #[config(default = 0.2)]
    pub validation_share: f64,
    /// Hashed featurizer settings; `None` = precomputed embeddings only (the paper's setup).
    #[config(default = "Some(HashedFeaturizerConfig::default())")]
    pub features: Option<HashedFeaturizerConfig>,
    /// Hidden sizes, embedding width and init seed; input sizes are filled in from the data.
    #[config(default = "SelectorModelConfig::new()")]
    pub model: SelectorModelConfig,
    #[config(default = "AdamConfig::new()")]
    pub optimizer: AdamConfig,
    /// Train on sigmoid(score), as the paper's head does (scoring stays on the raw score, which
    /// ranks the same).
    #[config(default = false)]
    pub sigmoid_scores: bool,
    /// Divide the weighted loss by the number of pairs (the paper's mean) instead of by the
    /// total weight.
    #[config(default = false)]
    pub mean_loss: bool,
    /// Early stopping: a quarter of the training figures become a stopping set; training stops
    /// after this many epochs without a better alignment there (AUC breaks ties), `epochs` is
    /// then the most it runs, and the best epoch's weights are kept. `None`: fixed `epochs`.
    pub early_stopping: Option<usize>,
}

/// Reported after every batch (`val: None`) and at the end of every epoch (`val` when there
/// is a validation split).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// Mean weighted loss over the epoch's batches so far.
    pub loss: f32,
    pub val: Option<Metrics>,
}

/// Returned (inside `anyhow::Error`) when the cancel flag stopped training.
#[derive(Debug, thiserror::Error)]
#[error("training cancelled")]
pub struct Cancelled;

/// What to train on: all answers the pairs refer to, and optional encoder embeddings.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    pub answers: &'a [AnswerInput],
    pub pairs: &'a [PreferencePair],
    pub embeddings: Option<&'a EmbeddingTable>,
}

/// Pairs as row indices into the encoded batch.
#[derive(Debug, Clone, Copy)]
struct RowPair {
    winner: usize,
    loser: usize,
    weight: f32,
    human: bool,
}

/// Splits pair indices by the winner's figure; no figure is on both sides.
pub fn split_by_figure(figures: &[&str], share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut unique: Vec<&str> = figures.to_vec();
    unique.sort_unstable();
    unique.dedup();
    SplitMix64::new(seed ^ 0xf16).shuffle(&mut unique);
    let held = if unique.len() < 2 {
        0
    } else {
        ((unique.len() as f64 * share).round() as usize).min(unique.len() - 1)
    };
    let held_out: std::collections::HashSet<&str> = unique[..held].iter().copied().collect();
    (0..figures.len()).partition(|&i| !held_out.contains(figures[i]))
}

/// Trains a selector on backend `B` and returns it moved to the CPU for scoring.
pub fn train<B: AutodiffBackend>(
    data: TrainData<'_>,
    config: &TrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> Result<TrainedSelector> {
    ensure!(!data.pairs.is_empty(), "no preference pairs to train on");
    ensure!(
        config.batch_size > 0 && config.epochs > 0,
        "batch size and epochs must be positive"
    );
    let by_id: HashMap<i64, usize> = data
        .answers
        .iter()
        .enumerate()
        .map(|(i, a)| (a.answer_id, i))
        .collect();
    // Encode only the answers the pairs use, each once.
    let mut rows_of: HashMap<usize, usize> = HashMap::new();
    let mut used: Vec<&AnswerInput> = Vec::new();
    let mut row_for = |id: i64| -> Result<usize> {
        let index = *by_id
            .get(&id)
            .with_context(|| format!("pair refers to unknown answer id {id}"))?;
        Ok(*rows_of.entry(index).or_insert_with(|| {
            used.push(&data.answers[index]);
            used.len() - 1
        }))
    };
    let mut pairs = Vec::with_capacity(data.pairs.len());
    for p in data.pairs {
        let human = p.source == PairSource::Human;
        let weight = if human { config.human_weight } else { 1.0 };
        pairs.push(RowPair {
            winner: row_for(p.winner)?,
            loser: row_for(p.loser)?,
            weight,
            human,
        });
    }
    let figures: Vec<&str> = pairs
        .iter()
        .map(|p| used[p.winner].figure_key.as_str())
        .collect();
    let (train_idx, val_idx) = split_by_figure(&figures, config.validation_share, config.seed);
    let (train_idx, stop_idx) = stopping_split(&figures, train_idx, config);

    let featurizer = config.features.clone().map(HashedFeaturizer::new);
    let dyn_featurizer = featurizer.as_ref().map(|f| f as &dyn Featurizer);
    let precomputed_dim = data.embeddings.map_or(0, EmbeddingTable::dim);
    let mut batch = encode(dyn_featurizer, &used, data.embeddings, precomputed_dim)?;
    let layout = dyn_featurizer.map(|f| f.layout().clone());
    let image_flag = layout.as_ref().and_then(|l| l.image_flag);
    let train_rows: Vec<usize> = train_idx
        .iter()
        .flat_map(|&i| [pairs[i].winner, pairs[i].loser])
        .collect();
    let norm = DenseNorm::fit(&batch, &train_rows, image_flag);
    norm.apply(&mut batch);
    let precomputed_norm = model_config_raw(&config.model, precomputed_dim).map(|raw| {
        let norm = DenseNorm::fit_leading(&batch.precomputed, precomputed_dim, raw, &train_rows);
        norm.apply_leading(&mut batch.precomputed, precomputed_dim);
        norm
    });

    let mut model_config = config.model.clone().with_precomputed_dim(precomputed_dim);
    model_config = match &layout {
        Some(l) => model_config
            .with_id_rows(l.field_caps.len() * l.buckets)
            .with_id_fields(l.field_caps.len())
            .with_text_dense(l.image_flag.unwrap_or(l.dense_dim))
            .with_image_stats(if l.image_flag.is_some() {
                l.image_stats
            } else {
                0
            }),
        None => model_config
            .with_id_rows(0)
            .with_text_dense(0)
            .with_image_stats(0),
    };
    let mut model: SelectorModel<B> = model_config.init(device);
    let mut optim = config.optimizer.init::<B, SelectorModel<B>>();
    let mut rng = SplitMix64::new(config.seed);
    let mut order = train_idx.clone();
    let batches = order.len().div_ceil(config.batch_size);
    let mut last_val = None;
    // (epoch, stopping-set metrics, weights) of the best epoch so far, when stopping early.
    let mut best: Option<(usize, Metrics, SelectorModel<B>)> = None;

    for epoch in 1..=config.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0f32;
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return Err(Cancelled.into());
            }
            let rows: Vec<usize> = chunk
                .iter()
                .map(|&i| pairs[i].winner)
                .chain(chunk.iter().map(|&i| pairs[i].loser))
                .collect();
            let weights: Vec<f32> = chunk.iter().map(|&i| pairs[i].weight).collect();
            let n = chunk.len();
            let scores = model.forward(ModelInput::from_batch(
                &batch.select(&rows),
                &model_config,
                device,
            ));
            let scores = if config.sigmoid_scores {
                burn::tensor::activation::sigmoid(scores)
            } else {
                scores
            };
            let diff = scores.clone().narrow(0, 0, n) - scores.narrow(0, n, n);
            let loss = pair_loss_normalised(
                diff,
                weights,
                (config.loss, config.margin),
                config.mean_loss,
                device,
            );
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            loss_sum += loss.into_data().to_vec::<f32>().map_or(f32::NAN, |v| v[0]);
            model = optim.step(config.lr, model, grads);
            progress(TrainProgress {
                epoch,
                epochs: config.epochs,
                batch: b + 1,
                batches,
                loss: loss_sum / (b + 1) as f32,
                val: None,
            });
        }
        if !val_idx.is_empty() {
            let val = validate(&model.valid(), &model_config, &batch, &pairs, &val_idx)?;
            last_val = Some(val);
            progress(TrainProgress {
                epoch,
                epochs: config.epochs,
                batch: batches,
                batches,
                loss: loss_sum / batches.max(1) as f32,
                val: Some(val),
            });
        }
        if let (Some(patience), false) = (config.early_stopping, stop_idx.is_empty()) {
            let stop = validate(&model.valid(), &model_config, &batch, &pairs, &stop_idx)?;
            let better = best.as_ref().is_none_or(|(_, b, _)| {
                (stop.alignment_rate, stop.auc) > (b.alignment_rate, b.auc)
            });
            if better {
                best = Some((epoch, stop, model.clone()));
            }
            if best.as_ref().is_some_and(|(e, _, _)| epoch - e >= patience) {
                break;
            }
        }
    }
    if let Some((_, _, weights)) = best {
        model = weights;
        if !val_idx.is_empty() {
            last_val = Some(validate(
                &model.valid(),
                &model_config,
                &batch,
                &pairs,
                &val_idx,
            )?);
        }
    }

    let cpu_model =
        move_model::<B::InnerBackend, NdArray>(model.valid(), &model_config, &Default::default())?;
    let mut meta = TrainedSelector::new_meta(model_config, config.features.clone(), norm);
    meta.validation = last_val;
    meta.precomputed_norm = precomputed_norm;
    Ok(TrainedSelector::from_parts(cpu_model, meta))
}

/// The leading precomputed columns that are standardised: the raw (unprojected) ones when the
/// model projects the rest, and every column of a model with a prior (a linear head on a few
/// signals of different scales; standardising keeps the prior's order) or of a linear head on
/// the columns alone (the same head without a prior).
fn model_config_raw(model: &SelectorModelConfig, precomputed_dim: usize) -> Option<usize> {
    if model.prior_column.is_some() || model.is_linear_on_columns() {
        return Some(precomputed_dim).filter(|&d| d > 0);
    }
    let config = model.clone().with_precomputed_dim(precomputed_dim);
    config
        .projection()
        .map(|(raw, _, _)| raw)
        .filter(|&raw| raw > 0)
}

/// With early stopping, a quarter of the training figures (at least one) become the stopping
/// set; without, or with fewer than two training figures, the training pairs stay whole.
fn stopping_split(
    figures: &[&str],
    train_idx: Vec<usize>,
    config: &TrainConfig,
) -> (Vec<usize>, Vec<usize>) {
    if config.early_stopping.is_none() {
        return (train_idx, Vec::new());
    }
    let inner: Vec<&str> = train_idx.iter().map(|&i| figures[i]).collect();
    let (fit, stop) = split_by_figure(&inner, 0.25, config.seed ^ 0x5709);
    if stop.is_empty() {
        return (train_idx, Vec::new());
    }
    (
        fit.iter().map(|&i| train_idx[i]).collect(),
        stop.iter().map(|&i| train_idx[i]).collect(),
    )
}

/// Weighted pairwise loss of score differences `diff = s(winner) - s(loser)`, divided by the
/// total weight (so w scales clinician pairs against judge pairs, not the learning rate).
pub fn pair_loss<B: burn::tensor::backend::Backend>(
    diff: Tensor<B, 1>,
    weights: Vec<f32>,
    loss: PairLoss,
    margin: f32,
    device: &B::Device,
) -> Tensor<B, 1> {
    pair_loss_normalised(diff, weights, (loss, margin), false, device)
}

/// [`pair_loss`], divided by the number of pairs instead when `mean` (the paper's
/// `mean(w · loss)`: w then scales the learning rate too).
pub fn pair_loss_normalised<B: burn::tensor::backend::Backend>(
    diff: Tensor<B, 1>,
    weights: Vec<f32>,
    (loss, margin): (PairLoss, f32),
    mean: bool,
    device: &B::Device,
) -> Tensor<B, 1> {
    let per_pair = match loss {
        PairLoss::Hinge => relu(diff.neg().add_scalar(margin)),
        PairLoss::Logistic => softplus(diff.neg(), 1.0),
    };
    let n = weights.len();
    let total: f32 = if mean { n as f32 } else { weights.iter().sum() };
    let w = Tensor::<B, 1>::from_data(TensorData::new(weights, [n]), device);
    (per_pair * w)
        .sum()
        .div_scalar(total.max(f32::MIN_POSITIVE))
}

/// Metrics on held-out clinician pairs, or on all held-out pairs when there are none.
fn validate<B: burn::tensor::backend::Backend>(
    model: &SelectorModel<B>,
    config: &SelectorModelConfig,
    batch: &FeatureBatch,
    pairs: &[RowPair],
    val_idx: &[usize],
) -> Result<Metrics> {
    let human: Vec<usize> = val_idx
        .iter()
        .copied()
        .filter(|&i| pairs[i].human)
        .collect();
    let chosen = if human.is_empty() {
        val_idx.to_vec()
    } else {
        human
    };
    let rows: Vec<usize> = chosen
        .iter()
        .flat_map(|&i| [pairs[i].winner, pairs[i].loser])
        .collect();
    let device = model.devices().into_iter().next().unwrap_or_default();
    let mut scores = Vec::with_capacity(rows.len());
    for part in rows.chunks(8192) {
        let out = model.forward(ModelInput::from_batch(&batch.select(part), config, &device));
        scores.extend(
            out.into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading scores: {e:?}"))?,
        );
    }
    let scored: Vec<(f32, f32)> = scores.chunks_exact(2).map(|s| (s[0], s[1])).collect();
    Ok(Metrics::from_pairs(&scored))
}

#[cfg(test)]
mod tests;
