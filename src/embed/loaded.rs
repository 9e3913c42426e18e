//! The real encoder behind [`SentenceEncoder`]: a model folder loaded on a burn backend — a
//! BERT-family text encoder, or an open_clip model (texts through its text tower, figures
//! through its image tower).

use std::path::Path;

use anyhow::{bail, Result};
use burn::tensor::backend::Backend;

use super::{folder_identity, SentenceEncoder};
use crate::encoder::open_clip::{OpenClipEncoder, OpenClipFolder};
use crate::encoder::{batch_workers, TextEncoder};
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

    fn embed(&mut self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.encoder.encode(texts, batch_size, &mut |_| {})
    }

    fn batches_at_once(&self) -> usize {
        batch_workers::<B>()
    }
}

/// A loaded [`OpenClipEncoder`] with the identity of its folder.
struct LoadedClip<B: Backend> {
    encoder: OpenClipEncoder<B>,
    identity: String,
}

impl<B: Backend> SentenceEncoder for LoadedClip<B> {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn dim(&self) -> usize {
        self.encoder.dim()
    }

    fn embed(&mut self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.encoder.encode_texts(texts, batch_size, &mut |_| {})
    }

    fn batches_at_once(&self) -> usize {
        batch_workers::<B>()
    }

    fn embeds_images(&self) -> bool {
        true
    }

    fn embed_images(&mut self, images: &[&Path]) -> Result<Vec<Option<Vec<f32>>>> {
        // Decoding is per file (a bad file is that figure's problem, not the batch's); the
        // forward pass is one batch.
        let inputs: Vec<Option<Vec<f32>>> = self
            .encoder
            .image_inputs(images)
            .into_iter()
            .map(|input| match input {
                Ok(values) => Some(values),
                Err(e) => {
                    tracing::warn!("{e:#}");
                    None
                }
            })
            .collect();
        let present: Vec<Vec<f32>> = inputs.iter().flatten().cloned().collect();
        let mut vectors = self.encoder.embed_inputs(&present)?.into_iter();
        Ok(inputs
            .iter()
            .map(|i| i.as_ref().and_then(|_| vectors.next()))
            .collect())
    }
}

fn load<B: Backend>(dir: &Path, identity: String) -> Result<Box<dyn SentenceEncoder>> {
    if OpenClipFolder::is_open_clip(dir) {
        let encoder = OpenClipEncoder::<B>::load(dir, &Default::default())?;
        return Ok(Box::new(LoadedClip { encoder, identity }));
    }
    let encoder = TextEncoder::<B>::load(dir, &Default::default())?;
    Ok(Box::new(Loaded { encoder, identity }))
}

/// Loads the encoder in `dir` on `backend`; its identity is [`folder_identity`] of `dir`.
pub fn open_encoder(dir: &Path, backend: BackendKind) -> Result<Box<dyn SentenceEncoder>> {
    backend.probe()?;
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
