//! The Hugging Face `BertModel` in burn, field names following the checkpoint's keys so
//! loading needs only three renames (`bert.` prefix, `LayerNorm`, `self`).
//!
//! embeddings (word + position + token type) → LayerNorm → N post-LN layers of
//! [masked multi-head self-attention → add & LayerNorm → GELU feed-forward → add & LayerNorm].
//! Padded positions are masked out of every softmax, so a text's vector does not depend on
//! what it is batched with. Inference only: no dropout.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::config::{BertConfig, Pooling};

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Embedding<B>,
    pub layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    heads: usize,
    head_dim: usize,
}

/// A dense layer, then LayerNorm over (its output + the residual).
#[derive(Module, Debug)]
pub struct DenseAddNorm<B: Backend> {
    pub dense: Linear<B>,
    pub layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `attention.self` in the checkpoint (`self` is a Rust keyword).
    pub self_attn: SelfAttention<B>,
    pub output: DenseAddNorm<B>,
}

#[derive(Module, Debug)]
pub struct Intermediate<B: Backend> {
    pub dense: Linear<B>,
}

#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub attention: Attention<B>,
    pub intermediate: Intermediate<B>,
    pub output: DenseAddNorm<B>,
}

#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    pub layer: Vec<BertLayer<B>>,
}

#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub encoder: BertEncoder<B>,
}

/// One padded batch: `ids` and `mask` are `[batch, seq]`; `mask` is true on real tokens.
pub struct TokenBatch<B: Backend> {
    pub ids: Tensor<B, 2, Int>,
    pub mask: Tensor<B, 2, Bool>,
}

impl<B: Backend> TokenBatch<B> {
    /// Token sequences padded to the longest (at least 1) with id 0, masked out.
    pub fn padded(sequences: &[Vec<u32>], device: &B::Device) -> Self {
        let b = sequences.len();
        let s = sequences.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; b * s];
        let mut mask = vec![false; b * s];
        for (row, seq) in sequences.iter().enumerate() {
            for (col, &id) in seq.iter().enumerate() {
                ids[row * s + col] = i64::from(id);
                mask[row * s + col] = true;
            }
        }
        TokenBatch {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, s]), device),
        }
    }
}

impl BertConfig {
    /// A model with untrained weights (the loader overwrites every one of them).
    pub fn init<B: Backend>(&self, device: &B::Device) -> BertModel<B> {
        let h = self.hidden_size;
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        let layer = |_| BertLayer {
            attention: Attention {
                self_attn: SelfAttention {
                    query: linear(h, h),
                    key: linear(h, h),
                    value: linear(h, h),
                    heads: self.num_attention_heads,
                    head_dim: h / self.num_attention_heads,
                },
                output: DenseAddNorm {
                    dense: linear(h, h),
                    layer_norm: norm(),
                },
            },
            intermediate: Intermediate {
                dense: linear(h, self.intermediate_size),
            },
            output: DenseAddNorm {
                dense: linear(self.intermediate_size, h),
                layer_norm: norm(),
            },
        };
        BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: EmbeddingConfig::new(self.vocab_size, h).init(device),
                position_embeddings: EmbeddingConfig::new(self.max_position_embeddings, h)
                    .init(device),
                token_type_embeddings: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
                layer_norm: norm(),
            },
            encoder: BertEncoder {
                layer: (0..self.num_hidden_layers).map(layer).collect(),
            },
        }
    }
}

/// `x · W + b` for `[b, s, in]` as one 2-D matrix product over all `b·s` rows. burn's
/// `Linear` multiplies batch by batch, repacking the weight matrix for every text of the batch,
/// which cost more than the product itself on CPU.
pub(crate) fn dense<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d_in] = x.dims();
    let y = x.reshape([b * s, d_in]).matmul(layer.weight.val());
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    };
    let d_out = y.dims()[1];
    y.reshape([b, s, d_out])
}

/// The exact (erf) GELU, as BERT and ViT define it. On the CPU backend it is one pass over the
/// values with an f32 erf ([`erf_f32`]): burn-ndarray's GELU takes five passes and computes erf
/// in f64 through libm, which together were 14% of the text encoder's time. Elsewhere, burn's.
pub(crate) fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if !super::computes_on_host::<B>() {
        return burn::tensor::activation::gelu(x);
    }
    let device = x.device();
    let mut data = x.into_data().convert::<f32>();
    if let Ok(values) = data.as_mut_slice::<f32>() {
        for v in values {
            *v = 0.5 * *v * (1.0 + erf_f32(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
        Tensor::from_data(data, &device)
    } else {
        burn::tensor::activation::gelu(Tensor::from_data(data, &device))
    }
}

/// erf in f32 as one rational polynomial (Eigen's and XLA's `generic_fast_erf_float`): at most
/// 4.2e-7 from the exact value (a few f32 ulps), and no calls, so the GELU loop vectorises.
/// Outside [-4, 4] erf is ±1 in f32.
pub(crate) fn erf_f32(x: f32) -> f32 {
    // The published coefficients (f64 digits; rounded to f32 at compile time).
    const ALPHA: [f64; 7] = [
        -1.609_603_332_624_15e-2,
        -2.954_599_808_540_25e-3,
        -7.349_906_303_268_55e-4,
        -5.692_506_394_623_46e-5,
        -2.101_024_020_825_08e-6,
        2.770_681_424_959_02e-8,
        -2.726_142_258_013_06e-10,
    ];
    const BETA: [f64; 5] = [
        -1.426_473_905_141_89e-2,
        -7.373_329_167_204_68e-3,
        -1.682_826_974_382_03e-3,
        -2.133_740_552_789_05e-4,
        -1.456_607_184_649_96e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().rev().fold(0.0, |acc, &a| acc * x2 + a as f32) * x;
    let q = BETA.iter().rev().fold(0.0, |acc, &b| acc * x2 + b as f32);
    p / q
}

impl<B: Backend> SelfAttention<B> {
    /// `[b, s, h]` → `[b, s, h]`; `pad` is `[b, 1, 1, s]`, true on padding.
    fn forward(&self, x: Tensor<B, 3>, pad: Tensor<B, 4, Bool>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let split = |t: Tensor<B, 3>| t.reshape([b, s, self.heads, self.head_dim]).swap_dims(1, 2);
        let q = split(dense(&self.query, x.clone()));
        let k = split(dense(&self.key, x.clone()));
        let v = split(dense(&self.value, x));
        let scores = q.matmul(k.transpose()) / (self.head_dim as f64).sqrt();
        // transformers adds the dtype's minimum to masked scores; exp() of it is exactly 0, as
        // of -inf, which takes expf's quick path (every row has real tokens, so no row is all -inf).
        let scores = scores.mask_fill(pad, f32::NEG_INFINITY);
        let weights = softmax(scores, 3);
        weights.matmul(v).swap_dims(1, 2).reshape([b, s, h])
    }
}

impl<B: Backend> DenseAddNorm<B> {
    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        self.layer_norm.forward(dense(&self.dense, x) + residual)
    }
}

impl<B: Backend> BertLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, pad: Tensor<B, 4, Bool>) -> Tensor<B, 3> {
        let context = self.attention.self_attn.forward(x.clone(), pad);
        let x = self.attention.output.forward(context, x);
        let inner = gelu(dense(&self.intermediate.dense, x.clone()));
        self.output.forward(inner, x)
    }
}

impl<B: Backend> BertModel<B> {
    /// The last layer's token vectors, `[b, s, hidden]`.
    pub fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 3> {
        let [b, s] = batch.ids.dims();
        let device = batch.ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
            .reshape([1, s])
            .expand([b, s]);
        // Single texts only: every token is of type 0.
        let types = Tensor::<B, 2, Int>::zeros([b, s], &device);
        let e = &self.embeddings;
        let x = e.word_embeddings.forward(batch.ids.clone())
            + e.position_embeddings.forward(positions)
            + e.token_type_embeddings.forward(types);
        let mut x = e.layer_norm.forward(x);
        let pad = batch.mask.clone().bool_not().reshape([b, 1, 1, s]);
        for layer in &self.encoder.layer {
            x = layer.forward(x, pad.clone());
        }
        x
    }

    /// One vector per text, `[b, hidden]`, not normalised.
    pub fn embed(&self, batch: &TokenBatch<B>, pooling: Pooling) -> Tensor<B, 2> {
        let tokens = self.forward(batch);
        let [b, s, h] = tokens.dims();
        match pooling {
            Pooling::Cls => tokens.slice([0..b, 0..1, 0..h]).reshape([b, h]),
            Pooling::Mean => {
                let mask = batch.mask.clone().float().reshape([b, s, 1]);
                let count = mask.clone().sum_dim(1).clamp_min(1e-9).reshape([b, 1]);
                (tokens * mask).sum_dim(1).reshape([b, h]) / count
            }
            Pooling::Max => {
                // sentence-transformers sets padded positions to -1e9 before the max.
                let pad = batch
                    .mask
                    .clone()
                    .bool_not()
                    .reshape([b, s, 1])
                    .expand([b, s, h]);
                tokens.mask_fill(pad, -1e9).max_dim(1).reshape([b, h])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_f32_stays_within_a_few_ulps_of_the_exact_erf() {
        let worst = (-600_000..=600_000)
            .map(|i| i as f32 * 1e-5)
            .map(|x| (f64::from(erf_f32(x)) - libm::erf(f64::from(x))).abs())
            .fold(0.0, f64::max);
        assert!(worst < 5e-7, "worst error {worst:e}");
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(-9.0), -erf_f32(9.0));
        assert!(erf_f32(f32::NAN).is_nan());
    }

    #[test]
    fn the_host_gelu_matches_burns_and_autodiff_keeps_burns() {
        use burn::backend::{Autodiff, NdArray};
        assert!(super::super::computes_on_host::<NdArray>());
        assert!(!super::super::computes_on_host::<Autodiff<NdArray>>());
        let values: Vec<f32> = (-80..=80).map(|i| i as f32 / 10.0).collect();
        let x = Tensor::<NdArray, 1>::from_data(
            TensorData::new(values.clone(), [161]),
            &Default::default(),
        );
        let ours = gelu(x.clone()).into_data().to_vec::<f32>().unwrap();
        let burns = burn::tensor::activation::gelu(x)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for ((v, a), b) in values.iter().zip(&ours).zip(&burns) {
            assert!((a - b).abs() < 1e-6, "gelu({v}): {a} against burn's {b}");
        }
    }
}
