//! Joins sentence encoders and the workspace: an encoder folder's identity, and filling the
//! workspace's embeddings cache with every question, answer and caption+mention text (each
//! distinct text once), batch by batch so that an interrupted run resumes where it stopped.
//!
//! The encoder is seen through [`SentenceEncoder`], so this module (and its tests) need no model;
//! the store does the SQL, `selector::encoder_features` turns cached vectors into model inputs.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod loaded;
pub use loaded::open_encoder;

use crate::selector::encoder_features::texts_of;
use crate::selector::Cancelled;
use crate::selector_runs::for_each_answer_chunk;
use crate::store::{TextHash, Workspace};

/// A sentence encoder: L2-normalised vectors, one per text, in order.
pub trait SentenceEncoder {
    /// What the vectors depend on (see [`folder_identity`]): the cache key of the encoder.
    fn identity(&self) -> &str;
    fn dim(&self) -> usize;
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// The encoder a selector run was trained with: saved with the run, so scoring and evaluation
/// read the same vectors, and notice when the folder's content changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderRef {
    pub identity: String,
    /// The model folder, absolute.
    pub folder: PathBuf,
    pub dim: usize,
}

impl EncoderRef {
    /// Fails when the folder is there but its content is no longer the one the run used.
    /// A missing folder is fine as long as the cache has every vector needed.
    pub fn check_folder(&self) -> Result<()> {
        if !self.folder.exists() {
            return Ok(());
        }
        let now = folder_identity(&self.folder)?;
        ensure!(
            now == self.identity,
            "the encoder folder {} changed since this run was trained (identity {} then, {} now): its vectors would not match the run's; restore the folder or train a new run with `vital train --encoder {}`",
            self.folder.display(),
            short(&self.identity),
            short(&now),
            self.folder.display()
        );
        Ok(())
    }
}

/// The first 12 hex digits of an identity, for messages.
pub fn short(identity: &str) -> &str {
    identity.get(..12).unwrap_or(identity)
}

/// Files that decide an encoder's vectors, relative to its folder; the weights are one of
/// `model.safetensors` / `pytorch_model.bin`, the rest are hashed when present.
const CONFIG_FILES: [&str; 8] = [
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// SHA-256 (hex) over the names, lengths and bytes of the folder's config, tokenizer, pooling
/// and weights files: two folders with the same content have the same identity wherever they are.
pub fn folder_identity(dir: &Path) -> Result<String> {
    ensure!(
        dir.join("config.json").is_file(),
        "{}: not a model folder (no config.json)",
        dir.display()
    );
    let weights = WEIGHT_FILES
        .iter()
        .find(|w| dir.join(w).is_file())
        .with_context(|| {
            format!(
                "{}: no weights (looked for {})",
                dir.display(),
                WEIGHT_FILES.join(", ")
            )
        })?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for name in CONFIG_FILES.iter().chain(std::iter::once(weights)) {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        let mut file = std::fs::File::open(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let len = file.metadata()?.len();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(len.to_le_bytes());
        loop {
            let n = file
                .read(&mut buffer)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What [`fill_cache`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FillReport {
    /// Distinct texts in the workspace (questions, answers, captions+mentions).
    pub texts: usize,
    /// Of those, already in the cache before this run.
    pub cached: usize,
    /// Embedded by this run.
    pub embedded: usize,
}

/// Answers read per pass step (bounded memory at 1.7M answers).
const READ_CHUNK: usize = 50_000;
/// Texts gathered before sorting them by length into encoder batches.
const GATHER_BATCHES: usize = 16;

/// Embeds every distinct text of the workspace the cache lacks under `encoder`, `batch_size`
/// texts per encoder call and per committed transaction. `progress(done, total)` after each
/// batch; the cancel flag is honoured between batches (what was committed stays).
pub fn fill_cache(
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<FillReport> {
    ensure!(batch_size > 0, "the batch size must be positive");
    let identity = encoder.identity().to_string();
    // Pass 1: the distinct texts, and which of them the cache lacks.
    let mut seen: HashSet<TextHash> = HashSet::new();
    let mut missing: HashSet<TextHash> = HashSet::new();
    for_each_answer_chunk(ws, READ_CHUNK, &mut |inputs, _| {
        let mut new = Vec::new();
        for input in inputs {
            for text in texts_of(input) {
                let hash = TextHash::of(&text);
                if seen.insert(hash) {
                    new.push(hash);
                }
            }
        }
        let cached = ws.cached_text_hashes(&identity, &new)?;
        missing.extend(new.into_iter().filter(|h| !cached.contains(h)));
        Ok(())
    })?;
    let total = missing.len();
    let mut report = FillReport {
        texts: seen.len(),
        cached: seen.len() - total,
        embedded: 0,
    };
    drop(seen);
    progress(0, total);
    if total == 0 {
        return Ok(report);
    }
    // Pass 2: embed them, each once.
    let mut pending: Vec<(TextHash, String)> = Vec::new();
    let mut flush = |pending: &mut Vec<(TextHash, String)>, report: &mut FillReport| {
        let done = embed_batches(
            ws,
            encoder,
            &identity,
            pending,
            batch_size,
            &mut |n| {
                report.embedded += n;
                progress(report.embedded, total);
            },
            cancel,
        );
        pending.clear();
        done
    };
    for_each_answer_chunk(ws, READ_CHUNK, &mut |inputs, _| {
        for input in inputs {
            for text in texts_of(input) {
                let hash = TextHash::of(&text);
                if missing.remove(&hash) {
                    pending.push((hash, text));
                }
            }
            if pending.len() >= GATHER_BATCHES * batch_size {
                flush(&mut pending, &mut report)?;
            }
        }
        Ok(())
    })?;
    flush(&mut pending, &mut report)?;
    Ok(report)
}

/// Embeds `texts` (longest first, so a batch pads little) and commits each batch to the cache.
fn embed_batches(
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    identity: &str,
    texts: &mut [(TextHash, String)],
    batch_size: usize,
    done: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> Result<()> {
    texts.sort_by_key(|(_, t)| std::cmp::Reverse(t.len()));
    let dim = encoder.dim();
    for batch in texts.chunks(batch_size) {
        ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
        let refs: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = encoder.embed(&refs)?;
        ensure!(
            vectors.len() == batch.len() && vectors.iter().all(|v| v.len() == dim),
            "the encoder returned {} vectors for {} texts (expected {dim}-d each)",
            vectors.len(),
            batch.len()
        );
        let rows: Vec<(TextHash, &[f32])> = batch
            .iter()
            .zip(&vectors)
            .map(|((h, _), v)| (*h, v.as_slice()))
            .collect();
        ws.store_text_embeddings(identity, &rows)?;
        done(batch.len());
    }
    Ok(())
}

/// Makes sure every text of `texts` has a vector in the cache, embedding those that do not
/// (e.g. a pairs file's answers, which are not in the workspace). Returns how many it embedded.
pub fn ensure_cached(
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    texts: &[String],
    batch_size: usize,
) -> Result<usize> {
    let identity = encoder.identity().to_string();
    let mut seen = HashSet::new();
    let hashes: Vec<TextHash> = texts
        .iter()
        .map(|t| TextHash::of(t))
        .filter(|h| seen.insert(*h))
        .collect();
    let cached = ws.cached_text_hashes(&identity, &hashes)?;
    let mut queued = HashSet::new();
    let mut missing: Vec<(TextHash, String)> = Vec::new();
    for text in texts {
        let hash = TextHash::of(text);
        if !cached.contains(&hash) && queued.insert(hash) {
            missing.push((hash, text.clone()));
        }
    }
    let n = missing.len();
    embed_batches(
        ws,
        encoder,
        &identity,
        &mut missing,
        batch_size.max(1),
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    Ok(n)
}

#[cfg(test)]
pub(crate) mod tests;
