//! The real encoder behind [`SentenceEncoder`]: a model folder loaded on a burn backend.

use std::path::Path;

use anyhow::{bail, Result};
use burn::tensor::backend::Backend;

use super::{folder_identity, SentenceEncoder};
use crate::encoder::TextEncoder;
use crate::selector::BackendKind;

/// A loaded [`TextEncoder`] with the identity of its folder.
struct Loaded<B: Backend> {
    encoder: TextEncoder<B>,
    identity: String,
}

impl<B: Backend> SentenceEncoder for Loaded<B> {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        // One call is one batch: the caller sizes (and length-sorts) it.
        self.encoder.encode(texts, texts.len().max(1), &mut |_| {})
    }
}

fn load<B: Backend>(dir: &Path, identity: String) -> Result<Box<dyn SentenceEncoder>> {
    let encoder = TextEncoder::<B>::load(dir, &Default::default())?;
    Ok(Box::new(Loaded { encoder, identity }))
}

/// Loads the encoder in `dir` on `backend`; its identity is [`folder_identity`] of `dir`.
pub fn open_encoder(dir: &Path, backend: BackendKind) -> Result<Box<dyn SentenceEncoder>> {
    let identity = folder_identity(dir)?;
    match backend {
        BackendKind::Cpu => load::<burn::backend::NdArray>(dir, identity),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => load::<burn::backend::Wgpu>(dir, identity),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => load::<burn::backend::Cuda>(dir, identity),
        #[allow(unreachable_patterns)] // reachable only when a GPU feature is off
        other => bail!("backend {other} is not compiled in: rebuild with --features {other}"),
    }
}
