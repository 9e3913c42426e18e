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
use super::rng::SplitMix64;

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
        bags + self.text_dense + image + self.precomputed_dim
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
        SelectorModel {
            ids,
            no_image,
            head,
        }
    }
}

#[derive(Module, Debug)]
pub struct SelectorModel<B: Backend> {
    ids: Option<Embedding<B>>,
    /// Stands in for the image statistics of answers whose figure has no usable image.
    no_image: Option<Param<Tensor<B, 1>>>,
    head: EmbeddingHead<B>,
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
        parts.extend(input.precomputed);
        self.head.forward(Tensor::cat(parts, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::features::{
        featurize_batch, Featurizer, HashedFeaturizer, HashedFeaturizerConfig,
    };
    use burn::backend::NdArray;

    type B = NdArray;

    fn scores(t: Tensor<B, 1>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().expect("f32 scores")
    }

    #[test]
    fn embedding_head_shapes_and_seeded_init() {
        let device = Default::default();
        let config = EmbeddingHeadConfig::new(8).with_hidden(vec![4, 3]);
        let a = config.init::<B>(&device);
        let b = config.init::<B>(&device);
        let x = Tensor::<B, 2>::from_data(
            TensorData::new((0..24).map(|v| v as f32 / 24.0).collect::<Vec<_>>(), [3, 8]),
            &device,
        );
        let (sa, sb) = (scores(a.forward(x.clone())), scores(b.forward(x)));
        assert_eq!(sa.len(), 3);
        assert_eq!(sa, sb, "same seed, same weights");
        assert_eq!(a.num_params(), 8 * 4 + 4 + 4 * 3 + 3 + 3 + 1);
    }

    #[test]
    fn selector_model_uses_bags_dense_and_no_image_vector() {
        let device = Default::default();
        let featurizer = HashedFeaturizer::new(HashedFeaturizerConfig {
            buckets: 64,
            ..Default::default()
        });
        let layout = featurizer.layout().clone();
        let config = SelectorModelConfig::new()
            .with_id_rows(3 * layout.buckets)
            .with_text_dense(layout.image_flag.unwrap_or(layout.dense_dim))
            .with_image_stats(layout.image_stats)
            .with_hidden(vec![8]);
        let model = config.init::<B>(&device);
        let inputs = [
            crate::selector::features::tests::answer(1, "f", "What is seen?", "A mass."),
            crate::selector::features::tests::answer(
                2,
                "f",
                "What is seen?",
                "I'm sorry, I cannot tell.",
            ),
        ];
        let batch = featurize_batch(&featurizer, &inputs);
        let s = scores(model.forward(ModelInput::from_batch(&batch, &config, &device)));
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|v| v.is_finite()));
        assert_ne!(s[0], s[1]);
        // Row order does not change a row's score (bags are pooled per row).
        let swapped = batch.select(&[1, 0]);
        let t = scores(model.forward(ModelInput::from_batch(&swapped, &config, &device)));
        assert!((t[0] - s[1]).abs() < 1e-6 && (t[1] - s[0]).abs() < 1e-6);
    }

    #[test]
    fn cpu_pooling_matches_the_burn_gather_path() {
        let device = Default::default();
        let featurizer = HashedFeaturizer::new(HashedFeaturizerConfig {
            buckets: 256,
            ..Default::default()
        });
        let layout = featurizer.layout().clone();
        let config = SelectorModelConfig::new()
            .with_id_rows(3 * layout.buckets)
            .with_text_dense(layout.image_flag.unwrap_or(layout.dense_dim))
            .with_image_stats(layout.image_stats)
            .with_hidden(vec![8]);
        let model = config.init::<B>(&device);
        let inputs: Vec<_> = (0..600)
            .map(|i| {
                let answer = if i % 3 == 0 {
                    String::new()
                } else {
                    format!("answer {i} text")
                };
                crate::selector::features::tests::answer(i, "f", "What is seen?", &answer)
            })
            .collect();
        let batch = featurize_batch(&featurizer, &inputs);
        let gathered = scores(model.forward(ModelInput::from_batch(&batch, &config, &device)));
        let (table, dim) = model.id_table().expect("has ids");
        let pooled = pool_bags_cpu(&batch, 3, &table, dim);
        let mut input = ModelInput::from_batch_without_bags(&batch, &config, &device);
        assert!(input.bags.is_empty());
        input.pooled = Some(Tensor::from_data(
            TensorData::new(pooled, [600, 3 * dim]),
            &device,
        ));
        let fast = scores(model.forward(input));
        for (a, b) in gathered.iter().zip(&fast) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn paper_head_preset() {
        let config = SelectorModelConfig::paper_embedding_head(1024);
        assert_eq!(config.mlp_input(), 1024);
        assert_eq!(config.hidden, vec![512, 512, 512]);
    }
}
