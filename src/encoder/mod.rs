//! Pretrained BERT-family sentence encoders (BERT, BiomedBERT/PubMedBERT, MiniLM) in burn:
//! a Hugging Face model folder in, one L2-normalised vector per text out, no Python.
//!
//! * [`config`]: what the folder says (model shape, pooling, length limit, which files);
//! * [`tokenizer`]: text → token ids; [`model`]: the network; [`weights`]: checkpoint loading;
//!   `checkpoint`: what a checkpoint or config claims, checked against the files before any of
//!   it is allocated.
//!
//! Like `selector`, this is a library: it knows nothing of the store or the UI. A text's
//! vector never depends on the other texts of its batch (padding is masked), and empty or
//! over-long texts are data: `[CLS] [SEP]`, or truncated at the model's limit.

pub(crate) mod checkpoint;
pub mod config;
pub mod model;
pub mod open_clip;
pub mod tokenizer;
pub mod weights;

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::backend::Backend;

pub use config::{ModelFolder, Pooling};
use model::{BertModel, TokenBatch};
use tokenizer::TextTokenizer;

/// A loaded encoder on one burn backend and device.
pub struct TextEncoder<B: Backend> {
    folder: ModelFolder,
    tokenizer: TextTokenizer,
    model: BertModel<B>,
    device: B::Device,
}

impl<B: Backend> TextEncoder<B> {
    /// Reads the folder, the tokenizer and the weights. The model is built only once its config
    /// has been checked against the checkpoint (its layers are there, the file is big enough):
    /// building it allocates every weight.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let folder = ModelFolder::open(dir)?;
        let tokenizer =
            TextTokenizer::load(&folder.tokenizer, folder.max_tokens, folder.lowercase_input)?;
        let snapshots = weights::snapshots(&folder.weights)?;
        checkpoint::check_bert_against(
            &folder.bert,
            &snapshots,
            "",
            &folder.transformer_dir.join("config.json"),
            &folder.weights,
        )?;
        let mut model = folder.bert.init::<B>(device);
        weights::load_weights(&mut model, snapshots, &folder.weights)?;
        Ok(TextEncoder {
            folder,
            tokenizer,
            model,
            device: device.clone(),
        })
    }

    pub fn folder(&self) -> &ModelFolder {
        &self.folder
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.folder.bert.hidden_size
    }

    /// Token ids of one text, `[CLS]` and `[SEP]` included, truncated at the model's limit.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.ids(text)
    }

    /// One L2-normalised vector per token sequence, in order (one forward pass: pad to the
    /// longest, mask the padding).
    pub fn embed_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let batch = TokenBatch::padded(sequences, &self.device);
        let pooled = self.model.embed(&batch, self.folder.pooling);
        let h = self.dim();
        let values: Vec<f32> = pooled
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| anyhow::anyhow!("reading the vectors back: {e:?}"))?;
        Ok(values.chunks(h).map(normalised).collect())
    }

    /// One L2-normalised vector per text, in order, in batches of at most `batch_size` texts;
    /// `progress` gets the number of texts done so far.
    pub fn encode(
        &self,
        texts: &[&str],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        let ids = ids_of(texts, |t| self.token_ids(t))?;
        self.encode_ids(&ids, batch_size, progress)
    }

    /// [`Self::encode`] on token ids ([`Self::token_ids`]). Sequences are grouped by length so
    /// that little padding is computed; the result is in input order.
    pub fn encode_ids(
        &self,
        ids: &[Vec<u32>],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        in_length_order(ids, batch_size, batch_workers::<B>(), progress, &|batch| {
            self.embed_ids(batch)
        })
    }
}

/// The token ids of each text by `token_ids`; an error names the text's place (1-based).
pub(crate) fn ids_of(
    texts: &[&str],
    token_ids: impl Fn(&str) -> Result<Vec<u32>>,
) -> Result<Vec<Vec<u32>>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| token_ids(t).with_context(|| format!("text {}", i + 1)))
        .collect()
}

/// One forward pass: token sequences in, one vector per sequence out. Called from several
/// threads at once on the CPU backend ([`batch_workers`]).
pub(crate) type EmbedBatch<'a> = dyn Fn(&[Vec<u32>]) -> Result<Vec<Vec<f32>>> + Sync + 'a;

/// How many batches to run at once on backend `B`. burn-ndarray runs most element-wise
/// operations of a forward pass on one thread (only large matrix products use every core), so
/// one batch at a time kept about 1.3 of 2 cores busy; a batch per core keeps them all busy.
/// GPU backends queue work on one device: one batch at a time.
/// `RAYON_NUM_THREADS`, which caps burn's own threads, caps the batches too (benchmarks compare
/// at equal threads).
pub fn batch_workers<B: Backend>() -> usize {
    if !computes_on_host::<B>() {
        return 1;
    }
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether `B` is the CPU backend (burn-ndarray), whose tensors live in this process's memory:
/// reading one back is a copy, not a device transfer. Not under autodiff: a tensor read back
/// and rebuilt would leave the graph, so there burn's own operations stay.
pub(crate) fn computes_on_host<B: Backend>() -> bool {
    let name = std::any::type_name::<B>();
    name.contains("burn_ndarray") && !name.contains("burn_autodiff")
}

/// Embeds `ids` with `embed`, in batches of at most `batch_size` sequences grouped by length so
/// that little padding is computed, `workers` batches at a time; the result is in input order
/// (whatever the number of workers: each vector depends on its own sequence only), and
/// `progress` gets the number done so far, from the calling thread.
pub(crate) fn in_length_order(
    ids: &[Vec<u32>],
    batch_size: usize,
    workers: usize,
    progress: &mut dyn FnMut(usize),
    embed: &EmbedBatch<'_>,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
    let chunks: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut out = vec![Vec::new(); ids.len()];
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..workers.clamp(1, chunks.len().max(1)) {
            let tx = tx.clone();
            let (chunks, next, failed) = (&chunks, &next, &failed);
            scope.spawn(move || loop {
                let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if c >= chunks.len() || failed.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let batch: Vec<Vec<u32>> = chunks[c].iter().map(|&i| ids[i].clone()).collect();
                let result = embed(&batch);
                if result.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                if tx.send((c, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (c, result) in rx {
            // The first error stops the workers after their current batch.
            for (&i, vector) in chunks[c].iter().zip(result?) {
                out[i] = vector;
            }
            done += chunks[c].len();
            progress(done);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(out)
}

/// `v / max(‖v‖, 1e-12)`, as torch's `F.normalize`.
fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let scale = 1.0 / norm.max(1e-12);
    v.iter().map(|x| (f64::from(*x) * scale) as f32).collect()
}
