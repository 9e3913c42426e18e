//! The burn models.
//!
//! * [`SelectorModel`]: the built-in scorer. Hashed ids of each text field go through one
//!   shared [`Embedding`] table and a masked mean (burn has no EmbeddingBag), the bags are
//!   concatenated with the normalised dense signals (image statistics replaced by a learned
//!   "no image" vector when a figure has none) and optional precomputed embeddings, then an
//!   MLP gives one scalar.
//! * [`EmbeddingHead`]: the MLP alone; with 512-512-512 hidden units over 1024-d
//!   BiomedCLIP features it is the paper's selector.
//!
//! Scores are raw (no sigmoid): ranking only needs the order, and a hinge with margin 1 on
//! sigmoid outputs in (0, 1) could never be satisfied, so it would keep pushing forever.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::features::FeatureBatch;
use crate::stable::SplitMix64;

/// MLP from a feature vector to one score.
#[derive(Config, Debug)]
pub struct EmbeddingHeadConfig {
    pub d_input: usize,
    #[config(default = "vec![512, 512, 512]")]
    pub hidden: Vec<usize>,
    /// Seed of the initial weights (our own generator, so inits never depend on other threads).
    #[config(default = 42)]
    pub seed: u64,
}

#[derive(Module, Debug)]
pub struct EmbeddingHead<B: Backend> {
    hidden: Vec<Linear<B>>,
    output: Linear<B>,
}

/// PyTorch-style uniform(±1/√fan_in) init from our generator.
fn linear<B: Backend>(
    rng: &mut SplitMix64,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Linear<B> {
    let limit = 1.0 / (d_in.max(1) as f32).sqrt();
    let weight: Vec<f32> = (0..d_in * d_out).map(|_| rng.uniform(limit)).collect();
    let bias: Vec<f32> = (0..d_out).map(|_| rng.uniform(limit)).collect();
    Linear {
        weight: Param::from_data(TensorData::new(weight, [d_in, d_out]), device),
        bias: Some(Param::from_data(TensorData::new(bias, [d_out]), device)),
    }
}

impl EmbeddingHeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> EmbeddingHead<B> {
        let mut rng = SplitMix64::new(self.seed);
        let mut d_in = self.d_input;
        let mut hidden = Vec::with_capacity(self.hidden.len());
        for &d_out in &self.hidden {
            hidden.push(linear(&mut rng, d_in, d_out, device));
            d_in = d_out;
        }
        EmbeddingHead {
            hidden,
            output: linear(&mut rng, d_in, 1, device),
        }
    }
}

impl<B: Backend> EmbeddingHead<B> {
    /// The same head with its output layer at zero: it scores 0 until trained.
    pub fn with_zero_output(mut self) -> Self {
        let [d_in, d_out] = self.output.weight.dims();
        let device = self.output.weight.device();
        self.output.weight = Param::from_data(
            TensorData::new(vec![0f32; d_in * d_out], [d_in, d_out]),
            &device,
        );
        self.output.bias = Some(Param::from_data(
            TensorData::new(vec![0f32; d_out], [d_out]),
            &device,
        ));
        self
    }

    /// `[n, d_input]` → `[n]`.
    pub fn forward(&self, mut x: Tensor<B, 2>) -> Tensor<B, 1> {
        for layer in &self.hidden {
            x = relu(layer.forward(x));
        }
        let n = x.dims()[0];
        self.output.forward(x).reshape([n])
    }
}

/// Hyper-parameters of the built-in model; the input sizes come from the featurizer layout.
#[derive(Config, Debug)]
pub struct SelectorModelConfig {
    /// Rows of the shared id table (fields × buckets); 0 disables the hashed bags.
    #[config(default = 0)]
    pub id_rows: usize,
    /// Number of id fields, each pooled into its own bag.
    #[config(default = 3)]
    pub id_fields: usize,
    #[config(default = 16)]
    pub embed_dim: usize,
    /// Dense text signals (before the image part).
    #[config(default = 0)]
    pub text_dense: usize,
    /// Image statistics after the "has image" flag; 0 = no image part.
    #[config(default = 0)]
    pub image_stats: usize,
    /// Width of precomputed encoder embeddings appended to the input; 0 = none.
    #[config(default = 0)]
    pub precomputed_dim: usize,
    /// With a projection: the first this many precomputed columns (e.g. cosine similarities)
    /// reach the MLP as they are. `None` (older checkpoints) = 0.
    pub precomputed_raw: Option<usize>,
    /// Width of a learned linear projection of the precomputed columns after the raw ones
    /// (e.g. an answer's sentence embedding); `None` or 0 = no projection, columns used as is.
    pub precomputed_projection: Option<usize>,
    /// A precomputed column added to the score as it is: a zero-shot signal (the encoder's
    /// cos(question, answer)) that the head starts from (its output layer starts at zero) and
    /// corrects only as far as the pairs show. `None` (older checkpoints): no prior.
    pub prior_column: Option<usize>,
    #[config(default = "vec![128, 64]")]
    pub hidden: Vec<usize>,
    #[config(default = 42)]
    pub seed: u64,
}

impl SelectorModelConfig {
    /// The paper's selector over precomputed embeddings: d → 512-512-512 → 1.
    pub fn paper_embedding_head(precomputed_dim: usize) -> Self {
        SelectorModelConfig::new()
            .with_id_fields(0)
            .with_precomputed_dim(precomputed_dim)
            .with_hidden(vec![512, 512, 512])
    }

    /// The few-pairs model over an encoder's signals (see `EncoderInputs::Signals`): a linear
    /// head on a handful of columns, starting from column 0 (cos(question, answer)) as its prior.
    pub fn signals_head() -> Self {
        SelectorModelConfig::new()
            .with_id_fields(0)
            .with_hidden(Vec::new())
            .with_prior_column(Some(0))
    }

    /// The same linear head on the signals without a prior: a plain regularised logistic
    /// regression on the standardised columns, starting from zero.
    pub fn linear_head() -> Self {
        SelectorModelConfig::new()
            .with_id_fields(0)
            .with_hidden(Vec::new())
    }

    /// A linear head on precomputed columns alone (no ids, no hidden layer, no projection): its
    /// columns are standardised like a prior's (signals of different scales).
    pub fn is_linear_on_columns(&self) -> bool {
        self.hidden.is_empty()
            && self.id_fields == 0
            && self.text_dense == 0
            && self.image_stats == 0
            && self.projection().is_none()
    }

    fn mlp_input(&self) -> usize {
        let bags = if self.id_rows > 0 {
            self.id_fields * self.embed_dim
        } else {
            0
        };
        let image = if self.image_stats > 0 {
            1 + self.image_stats
        } else {
            0
        };
        let precomputed = match self.projection() {
            Some((raw, _, out)) => raw + out,
            None => self.precomputed_dim,
        };
        bags + self.text_dense + image + precomputed
    }

    /// (raw columns, projected columns, projection width) when the precomputed part is projected.
    pub fn projection(&self) -> Option<(usize, usize, usize)> {
        let out = self.precomputed_projection.unwrap_or(0);
        let raw = self.precomputed_raw.unwrap_or(0).min(self.precomputed_dim);
        (out > 0 && self.precomputed_dim > raw).then_some((raw, self.precomputed_dim - raw, out))
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> SelectorModel<B> {
        let mut rng = SplitMix64::new(self.seed ^ 0x5e1e_c70e);
        let ids = (self.id_rows > 0).then(|| {
            let weight: Vec<f32> = (0..self.id_rows * self.embed_dim)
                .map(|_| rng.normal(0.1))
                .collect();
            Embedding {
                weight: Param::from_data(
                    TensorData::new(weight, [self.id_rows, self.embed_dim]),
                    device,
                ),
            }
        });
        let no_image = (self.image_stats > 0).then(|| {
            Param::from_data(
                TensorData::new(vec![0.0f32; self.image_stats], [self.image_stats]),
                device,
            )
        });
        let head = EmbeddingHeadConfig::new(self.mlp_input())
            .with_hidden(self.hidden.clone())
            .with_seed(self.seed)
            .init(device);
        let projection = self.projection().map(|(_, d_in, d_out)| {
            let mut rng = SplitMix64::new(self.seed ^ 0x9e0_1ec7);
            linear(&mut rng, d_in, d_out, device)
        });
        // With a prior the model starts as the prior itself.
        let head = match self.prior_column {
            Some(_) => head.with_zero_output(),
            None => head,
        };
        SelectorModel {
            ids,
            no_image,
            head,
            projection,
            prior: self.prior_column,
        }
    }
}

#[derive(Module, Debug)]
pub struct SelectorModel<B: Backend> {
    ids: Option<Embedding<B>>,
    /// Stands in for the image statistics of answers whose figure has no usable image.
    no_image: Option<Param<Tensor<B, 1>>>,
    head: EmbeddingHead<B>,
    /// Learned projection of the precomputed columns after the raw ones (absent in older
    /// checkpoints, which load as `None`).
    projection: Option<Linear<B>>,
    /// The precomputed column added to the score (from the config, not the weights).
    #[module(skip)]
    prior: Option<usize>,
}

/// One batch as tensors; built by [`ModelInput::from_batch`].
#[derive(Debug, Clone)]
pub struct ModelInput<B: Backend> {
    /// Per field: ids `[n, cap]` and a 0/1 mask `[n, cap]`.
    pub bags: Vec<(Tensor<B, 2, Int>, Tensor<B, 2>)>,
    /// The same bags already pooled on the CPU, `[n, fields * dim]` (fast inference path).
    pub pooled: Option<Tensor<B, 2>>,
    /// `[n, text_dense]`, `[n, 1]`, `[n, image_stats]`; `None` when the model has no such part.
    pub text_dense: Option<Tensor<B, 2>>,
    pub image: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    pub precomputed: Option<Tensor<B, 2>>,
}

impl<B: Backend> ModelInput<B> {
    /// Moves an already normalised batch to `device`, split the way `config` expects.
    pub fn from_batch(
        batch: &FeatureBatch,
        config: &SelectorModelConfig,
        device: &B::Device,
    ) -> Self {
        Self::build(batch, config, device, true)
    }

    /// Like [`Self::from_batch`] but leaves the ids out: the caller sets `pooled` instead.
    pub fn from_batch_without_bags(
        batch: &FeatureBatch,
        config: &SelectorModelConfig,
        device: &B::Device,
    ) -> Self {
        Self::build(batch, config, device, false)
    }

    fn build(
        batch: &FeatureBatch,
        config: &SelectorModelConfig,
        device: &B::Device,
        with_bags: bool,
    ) -> Self {
        let n = batch.rows;
        let mut bags = Vec::new();
        if config.id_rows > 0 && with_bags {
            for (ids, lens) in batch
                .field_ids
                .iter()
                .zip(&batch.field_lens)
                .take(config.id_fields)
            {
                let cap = ids.len() / n.max(1);
                let ids_i: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
                let mut mask = vec![0f32; n * cap];
                for (row, &len) in lens.iter().enumerate() {
                    mask[row * cap..row * cap + len as usize].fill(1.0);
                }
                bags.push((
                    Tensor::from_data(TensorData::new(ids_i, [n, cap]), device),
                    Tensor::from_data(TensorData::new(mask, [n, cap]), device),
                ));
            }
        }
        let columns = |from: usize, width: usize| -> Tensor<B, 2> {
            let mut out = Vec::with_capacity(n * width);
            for row in batch.dense.chunks_exact(batch.dense_dim.max(1)).take(n) {
                out.extend_from_slice(&row[from..from + width]);
            }
            Tensor::from_data(TensorData::new(out, [n, width]), device)
        };
        let text_dense = (config.text_dense > 0).then(|| columns(0, config.text_dense));
        let image = (config.image_stats > 0).then(|| {
            (
                columns(config.text_dense, 1),
                columns(config.text_dense + 1, config.image_stats),
            )
        });
        let precomputed = (config.precomputed_dim > 0).then(|| {
            Tensor::from_data(
                TensorData::new(batch.precomputed.clone(), [n, config.precomputed_dim]),
                device,
            )
        });
        ModelInput {
            bags,
            pooled: None,
            text_dense,
            image,
            precomputed,
        }
    }
}

/// Masked means of each field's id vectors, computed in plain Rust on all cores: the same
/// numbers as the gather + mask + sum in [`SelectorModel::forward`], without materialising
/// `[n, cap, dim]` (scoring 1.7M answers is dominated by that gather otherwise).
pub fn pool_bags_cpu(batch: &FeatureBatch, fields: usize, table: &[f32], dim: usize) -> Vec<f32> {
    let width = fields * dim;
    let mut out = vec![0f32; batch.rows * width];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows_per = batch.rows.div_ceil(threads).max(256);
    std::thread::scope(|scope| {
        for (part, chunk) in out.chunks_mut(rows_per * width.max(1)).enumerate() {
            scope.spawn(move || {
                for (offset, pooled) in chunk.chunks_exact_mut(width).enumerate() {
                    let row = part * rows_per + offset;
                    for field in 0..fields {
                        let cap = batch.field_caps[field];
                        let len = batch.field_lens[field][row] as usize;
                        let target = &mut pooled[field * dim..(field + 1) * dim];
                        for &id in &batch.field_ids[field][row * cap..row * cap + len] {
                            let vector = &table[id as usize * dim..(id as usize + 1) * dim];
                            target.iter_mut().zip(vector).for_each(|(t, v)| *t += v);
                        }
                        let scale = 1.0 / len.max(1) as f32;
                        target.iter_mut().for_each(|t| *t *= scale);
                    }
                }
            });
        }
    });
    out
}

/// `model`'s weights on another backend's `device`, through burn's own record format (the
/// trained weights go to the CPU for saving, and a loaded checkpoint to a GPU for scoring).
pub fn move_model<From: Backend, To: Backend>(
    model: SelectorModel<From>,
    config: &SelectorModelConfig,
    device: &To::Device,
) -> anyhow::Result<SelectorModel<To>> {
    use anyhow::Context as _;
    use burn::module::Module as _;
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::new();
    let bytes = Recorder::<From>::record(&recorder, model.into_record(), ())
        .context("exporting weights")?;
    let record = Recorder::<To>::load(&recorder, bytes, device).context("importing weights")?;
    Ok(config.init::<To>(device).load_record(record))
}

impl<B: Backend> SelectorModel<B> {
    /// The id embedding table `[rows * dim]` and `dim`, copied to the CPU.
    pub fn id_table(&self) -> Option<(Vec<f32>, usize)> {
        let table = self.ids.as_ref()?;
        let dim = table.weight.dims()[1];
        table
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .ok()
            .map(|v| (v, dim))
    }

    /// Scores `[n]`, higher = better answer.
    pub fn forward(&self, input: ModelInput<B>) -> Tensor<B, 1> {
        let mut parts: Vec<Tensor<B, 2>> = Vec::new();
        if let Some(pooled) = input.pooled {
            parts.push(pooled);
        } else if let Some(table) = &self.ids {
            for (ids, mask) in input.bags {
                let [n, _] = ids.dims();
                let vectors = table.forward(ids); // [n, cap, dim]
                let dim = vectors.dims()[2];
                let summed = (vectors * mask.clone().unsqueeze_dim::<3>(2))
                    .sum_dim(1)
                    .reshape([n, dim]);
                let count = mask.sum_dim(1).clamp_min(1.0); // [n, 1]; empty bags pool to 0
                parts.push(summed / count);
            }
        }
        parts.extend(input.text_dense);
        if let (Some(no_image), Some((has, stats))) = (&self.no_image, input.image) {
            let absent = has.clone().neg().add_scalar(1.0);
            let fallback = no_image.val().unsqueeze_dim::<2>(0); // [1, k], broadcast over rows
            parts.push(has.clone());
            parts.push(stats * has + fallback * absent);
        }
        let prior = match (self.prior, &input.precomputed) {
            (Some(column), Some(pre)) => {
                let n = pre.dims()[0];
                Some(pre.clone().narrow(1, column, 1).reshape([n]))
            }
            _ => None,
        };
        match (input.precomputed, &self.projection) {
            (Some(pre), Some(projection)) => {
                let width = pre.dims()[1];
                let raw = width - projection.weight.dims()[0];
                if raw > 0 {
                    parts.push(pre.clone().narrow(1, 0, raw));
                }
                parts.push(projection.forward(pre.narrow(1, raw, width - raw)));
            }
            (pre, _) => parts.extend(pre),
        }
        let score = self.head.forward(Tensor::cat(parts, 1));
        match prior {
            Some(prior) => score + prior,
            None => score,
        }
    }
}

#[cfg(test)]
mod tests;
