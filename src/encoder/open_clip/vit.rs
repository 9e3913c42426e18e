//! The image tower: timm's `VisionTransformer` (as `timm.create_model(name)` builds the ViTs of
//! [`VitShape`]) and open_clip's `TimmModel` head, field names following the checkpoint's keys
//! (`visual.trunk.*`, `visual.head.*`) so that loading needs no renames.
//!
//! patch embedding (16×16 conv, stride 16) → prepend the class token → add the learned position
//! embedding → N pre-norm blocks [x + attn(norm1(x)); x + mlp(norm2(x))] → final LayerNorm →
//! pool (class token, or the mean of the patch tokens) → projection. LayerNorm eps 1e-6, exact
//! GELU, no dropout (inference only).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::config::{ImagePool, Projection, VisionSettings};
use crate::encoder::model::{dense, gelu};

#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    pub proj: Conv2d<B>,
}

#[derive(Module, Debug)]
pub struct VitAttention<B: Backend> {
    pub qkv: Linear<B>,
    pub proj: Linear<B>,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub norm1: LayerNorm<B>,
    pub attn: VitAttention<B>,
    pub norm2: LayerNorm<B>,
    pub mlp: Mlp<B>,
}

#[derive(Module, Debug)]
pub struct VitTrunk<B: Backend> {
    pub patch_embed: PatchEmbed<B>,
    /// `[1, 1, width]`
    pub cls_token: Param<Tensor<B, 3>>,
    /// `[1, 1 + grid², width]` (the class token's position first)
    pub pos_embed: Param<Tensor<B, 3>>,
    pub blocks: Vec<Block<B>>,
    pub norm: LayerNorm<B>,
}

/// open_clip's `TimmModel.head`: `proj` (Linear) or `mlp` (timm `Mlp`), one of the two.
#[derive(Module, Debug)]
pub struct ImageHead<B: Backend> {
    pub proj: Option<Linear<B>>,
    pub mlp: Option<Mlp<B>>,
}

#[derive(Module, Debug)]
pub struct VisualTower<B: Backend> {
    pub trunk: VitTrunk<B>,
    pub head: ImageHead<B>,
    average_pool: bool,
}

impl VisionSettings {
    /// A tower with untrained weights (the loader overwrites every one of them).
    pub fn init<B: Backend>(&self, embed_dim: usize, device: &B::Device) -> VisualTower<B> {
        let s = self.shape;
        let w = s.width;
        let norm = || LayerNormConfig::new(w).with_epsilon(1e-6).init(device);
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        let block = |_| Block {
            norm1: norm(),
            attn: VitAttention {
                qkv: linear(w, 3 * w),
                proj: linear(w, w),
                heads: s.heads,
            },
            norm2: norm(),
            mlp: Mlp {
                fc1: linear(w, 4 * w),
                fc2: linear(4 * w, w),
            },
        };
        let tokens = 1 + s.grid() * s.grid();
        let trunk = VitTrunk {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([3, w], [s.patch, s.patch])
                    .with_stride([s.patch, s.patch])
                    .init(device),
            },
            cls_token: Param::from_tensor(Tensor::zeros([1, 1, w], device)),
            pos_embed: Param::from_tensor(Tensor::zeros([1, tokens, w], device)),
            blocks: (0..s.depth).map(block).collect(),
            norm: norm(),
        };
        let out_linear = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_bias(self.proj_bias)
                .init(device)
        };
        let head = match self.proj {
            Projection::Linear => ImageHead {
                proj: Some(out_linear(w, embed_dim)),
                mlp: None,
            },
            // timm Mlp(prev, 2 * embed_dim, embed_dim, bias=(True, proj_bias))
            Projection::Mlp | Projection::Identity => ImageHead {
                proj: None,
                mlp: Some(Mlp {
                    fc1: linear(w, 2 * embed_dim),
                    fc2: out_linear(2 * embed_dim, embed_dim),
                }),
            },
        };
        VisualTower {
            trunk,
            head,
            average_pool: self.pool == ImagePool::Average,
        }
    }
}

impl<B: Backend> VitAttention<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, n, c] = x.dims();
        let head_dim = c / self.heads;
        // [b, n, 3c] → [3, b, heads, n, head_dim], as timm reshapes and permutes.
        let qkv = dense(&self.qkv, x)
            .reshape([b, n, 3, self.heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| {
            qkv.clone()
                .narrow(0, i, 1)
                .reshape([b, self.heads, n, head_dim])
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q.matmul(k.transpose()) * (head_dim as f64).powf(-0.5);
        let context = softmax(scores, 3).matmul(v);
        dense(&self.proj, context.swap_dims(1, 2).reshape([b, n, c]))
    }
}

impl<B: Backend> Mlp<B> {
    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }

    /// [`Self::forward`] on `[b, n, c]` tokens, each layer one 2-D product (see [`dense`]).
    fn forward_tokens(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        dense(&self.fc2, gelu(dense(&self.fc1, x)))
    }
}

impl<B: Backend> Block<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        x.clone() + self.mlp.forward_tokens(self.norm2.forward(x))
    }
}

impl<B: Backend> VitTrunk<B> {
    /// `[b, 3, size, size]` (normalised pixels) → the final-normed tokens `[b, 1 + patches, width]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, _, h, w] = images.dims();
        let conv = &self.patch_embed.proj;
        let [width, channels, p, _] = conv.weight.dims();
        let (gh, gw) = (h / p, w / p);
        // The stride-p p×p convolution as one matrix product over flattened patches (same sums,
        // far faster on the CPU backend than a generic convolution).
        let patches = images
            .reshape([b, channels, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b * gh * gw, channels * p * p]);
        let kernel = conv
            .weight
            .val()
            .reshape([width, channels * p * p])
            .transpose();
        let mut x = patches.matmul(kernel);
        if let Some(bias) = &conv.bias {
            x = x + bias.val().reshape([1, width]);
        }
        let x = x.reshape([b, gh * gw, width]);
        let cls = self.cls_token.val().expand([b, 1, width]);
        let mut x = Tensor::cat(vec![cls, x], 1) + self.pos_embed.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.norm.forward(x)
    }
}

impl<B: Backend> VisualTower<B> {
    /// `[b, 3, size, size]` → `[b, embed_dim]`, not normalised.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let tokens = self.trunk.forward(images);
        let [b, n, width] = tokens.dims();
        let pooled = if self.average_pool {
            tokens.narrow(1, 1, n - 1).mean_dim(1).reshape([b, width])
        } else {
            tokens.narrow(1, 0, 1).reshape([b, width])
        };
        match (&self.head.proj, &self.head.mlp) {
            (Some(proj), _) => proj.forward(pooled),
            (None, Some(mlp)) => mlp.forward(pooled),
            (None, None) => pooled,
        }
    }
}
