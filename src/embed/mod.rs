//! Joins sentence encoders and the workspace: an encoder folder's identity, and filling the
//! workspace's embeddings cache with every question, answer and caption+mention text (each
//! distinct text once), batch by batch so that an interrupted run resumes where it stopped.
//!
//! An open_clip encoder (BiomedCLIP) also embeds the figures ([`fill_image_cache`]): each image
//! file decoded and embedded once, keyed by its content ([`TextHash::of_image_bytes`]).
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

use crate::answer_inputs::for_each_answer_chunk;
use crate::selector::encoder_features::texts_of;
use crate::selector::Cancelled;
use crate::shard::Shard;
use crate::store::{ShardFile, TextHash, Workspace};

/// Where a fill's vectors go and which it computes: the texts and figures of one shard (all of
/// them by default), into the workspace's cache or into a shard file. A shard file's fill also
/// skips what the workspace's cache already holds.
#[derive(Clone, Copy)]
pub struct FillTarget<'a> {
    pub shard: Shard,
    pub file: Option<&'a ShardFile>,
}

impl FillTarget<'_> {
    /// Every text and figure, into the workspace.
    pub const WORKSPACE: FillTarget<'static> = FillTarget {
        shard: Shard::ALL,
        file: None,
    };

    fn cached(
        &self,
        ws: &Workspace,
        identity: &str,
        hashes: &[TextHash],
    ) -> Result<HashSet<TextHash>> {
        let mut cached = ws.cached_text_hashes(identity, hashes)?;
        if let Some(file) = self.file {
            let rest: Vec<TextHash> = hashes
                .iter()
                .filter(|h| !cached.contains(h))
                .copied()
                .collect();
            cached.extend(file.vector_hashes(&rest)?);
        }
        Ok(cached)
    }

    fn store(&self, ws: &Workspace, identity: &str, rows: &[(TextHash, &[f32])]) -> Result<()> {
        match self.file {
            Some(file) => file.store_vectors(rows),
            None => ws.store_text_embeddings(identity, rows),
        }
    }
}

/// A sentence encoder: L2-normalised vectors, one per text, in order.
pub trait SentenceEncoder {
    /// What the vectors depend on (see [`folder_identity`]): the cache key of the encoder.
    fn identity(&self) -> &str;
    fn dim(&self) -> usize;
    /// One L2-normalised vector per text, in order, computed in batches of at most
    /// `batch_size` texts, [`Self::batches_at_once`] of them at a time.
    fn embed(&mut self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>>;

    /// How many batches [`Self::embed`] computes at once (one per core on the CPU backend): a
    /// caller that wants every core busy hands it that many batches' worth of texts per call.
    fn batches_at_once(&self) -> usize {
        1
    }

    /// Whether [`Self::embed_images`] works: an open_clip encoder, whose image vectors share
    /// the texts' space.
    fn embeds_images(&self) -> bool {
        false
    }

    /// One L2-normalised vector per image file, in order; None for a file that cannot be
    /// decoded (its figure then counts as having no image).
    fn embed_images(&mut self, _images: &[&Path]) -> Result<Vec<Option<Vec<f32>>>> {
        anyhow::bail!("this encoder embeds texts only (image vectors need an open_clip folder)")
    }
}

/// The encoder a selector run was trained with: saved with the run, so scoring and evaluation
/// read the same vectors, and notice when the folder's content changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderRef {
    pub identity: String,
    /// The model folder, absolute.
    pub folder: PathBuf,
    pub dim: usize,
    /// The run also reads the figures' image vectors (an open_clip encoder).
    #[serde(default)]
    pub images: bool,
}

impl EncoderRef {
    /// The encoder in `dir` as a run records it, read from the folder's settings and files
    /// (its identity hashes them; no weights are loaded).
    pub fn of_folder(dir: &Path) -> Result<Self> {
        let identity = folder_identity(dir)?;
        let (dim, images) = if crate::encoder::open_clip::OpenClipFolder::is_open_clip(dir) {
            let folder = crate::encoder::open_clip::OpenClipFolder::open(dir)?;
            (folder.embed_dim, true)
        } else {
            (
                crate::encoder::config::ModelFolder::open(dir)?
                    .bert
                    .hidden_size,
                false,
            )
        };
        Ok(EncoderRef {
            identity,
            folder: dir.to_path_buf(),
            dim,
            images,
        })
    }

    /// Fails when the folder is there but its content is no longer the one the run used.
    /// A missing folder is fine as long as the cache has every vector needed.
    pub fn check_folder(&self) -> Result<()> {
        if !self.folder.exists() {
            return Ok(());
        }
        self.check_identity(&folder_identity(&self.folder)?)
    }

    /// Fails when `now` (the folder's identity, e.g. of an encoder just loaded from it) is not
    /// the one the run used.
    pub fn check_identity(&self, now: &str) -> Result<()> {
        ensure!(
            now == self.identity,
            "the encoder folder {} changed since this run was trained (identity {} then, {} now): its vectors would not match the run's; restore the folder or train a new run with `vital train --encoder {}`",
            self.folder.display(),
            short(&self.identity),
            short(now),
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

/// An open_clip folder's files that decide its vectors (the text tower's `config.json` sits in
/// the `hf_model_name` sub-folder and is added when present).
const OPEN_CLIP_FILES: [&str; 5] = [
    crate::encoder::open_clip::config::CONFIG_FILE,
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// SHA-256 (hex) over the names, lengths and bytes of the folder's config, tokenizer, pooling
/// and weights files: two folders with the same content have the same identity wherever they are.
pub fn folder_identity(dir: &Path) -> Result<String> {
    if crate::encoder::open_clip::OpenClipFolder::is_open_clip(dir) {
        let weights = crate::encoder::open_clip::config::WEIGHT_FILES
            .iter()
            .find(|w| dir.join(w).is_file())
            .with_context(|| format!("{}: no open_clip weights", dir.display()))?;
        let mut names: Vec<String> = OPEN_CLIP_FILES.iter().map(|s| s.to_string()).collect();
        if let Ok(folder) = crate::encoder::open_clip::OpenClipFolder::open(dir) {
            names.push(format!("{}/config.json", folder.text.hf_model_name));
        }
        names.push(weights.to_string());
        return hash_files(dir, &names);
    }
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
    let names: Vec<String> = CONFIG_FILES
        .iter()
        .chain(std::iter::once(weights))
        .map(|s| s.to_string())
        .collect();
    hash_files(dir, &names)
}

/// SHA-256 (hex) over the names, lengths and bytes of those of `names` that exist in `dir`.
fn hash_files(dir: &Path, names: &[String]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for name in names {
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
    fill_cache_to(
        FillTarget::WORKSPACE,
        ws,
        encoder,
        batch_size,
        progress,
        cancel,
    )
}

/// [`fill_cache`] for the texts of `target`'s shard, into `target`.
pub fn fill_cache_to(
    target: FillTarget<'_>,
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
                if target.shard.has_hash(&hash) && seen.insert(hash) {
                    new.push(hash);
                }
            }
        }
        let cached = target.cached(ws, &identity, &new)?;
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
            target,
            ws,
            encoder,
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

/// Embeds `texts` (longest first, so a batch pads little) and commits each call's batches (one
/// per core on the CPU backend) to the cache.
fn embed_batches(
    target: FillTarget<'_>,
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    texts: &mut [(TextHash, String)],
    batch_size: usize,
    done: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> Result<()> {
    texts.sort_by_key(|(_, t)| std::cmp::Reverse(t.len()));
    let identity = encoder.identity().to_string();
    let dim = encoder.dim();
    for batch in texts.chunks(batch_size * encoder.batches_at_once().max(1)) {
        ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
        let refs: Vec<&str> = batch.iter().map(|(_, t)| t.as_str()).collect();
        let vectors = encoder.embed(&refs, batch_size)?;
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
        target.store(ws, &identity, &rows)?;
        done(batch.len());
    }
    Ok(())
}

/// What [`fill_image_cache`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImageFillReport {
    /// Distinct figure files of the workspace that exist (by path).
    pub images: usize,
    /// Of those, already in the cache before this run (by content).
    pub cached: usize,
    /// Embedded by this run.
    pub embedded: usize,
    /// Files that could not be decoded (their figures count as having no image).
    pub unreadable: usize,
}

/// The cache key of an image file: its content's hash; None when the file cannot be read.
pub fn image_key(path: &Path) -> Option<TextHash> {
    std::fs::read(path)
        .ok()
        .map(|b| TextHash::of_image_bytes(&b))
}

/// Embeds every figure of the workspace whose image file the cache lacks under `encoder` (an
/// open_clip encoder), `batch_size` images per call and per committed transaction;
/// `progress(done, total)` after each batch; the cancel flag is honoured between batches.
pub fn fill_image_cache(
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<ImageFillReport> {
    fill_image_cache_to(
        FillTarget::WORKSPACE,
        ws,
        encoder,
        batch_size,
        progress,
        cancel,
    )
}

/// [`fill_image_cache`] for the figures of `target`'s shard (by file content), into `target`.
pub fn fill_image_cache_to(
    target: FillTarget<'_>,
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<ImageFillReport> {
    // One entry per figure path, not per answer (1.7M answers share 210K figures).
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for_each_answer_chunk(ws, READ_CHUNK, &mut |inputs, _| {
        for path in inputs.iter().filter_map(|i| i.image_path.as_ref()) {
            if seen.insert(path.clone()) {
                paths.push(path.clone());
            }
        }
        Ok(())
    })?;
    embed_image_files_to(target, ws, encoder, &paths, batch_size, progress, cancel)
}

/// Embeds the image files among `paths` (repeats and missing files skipped) whose content the
/// cache lacks under `encoder`, `batch_size` per forward pass, committing each call's batches;
/// `progress(done, total)` after each call, the cancel flag honoured between calls.
pub fn embed_image_files(
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    paths: &[PathBuf],
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<ImageFillReport> {
    let target = FillTarget::WORKSPACE;
    embed_image_files_to(target, ws, encoder, paths, batch_size, progress, cancel)
}

fn embed_image_files_to(
    target: FillTarget<'_>,
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    paths: &[PathBuf],
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<ImageFillReport> {
    ensure!(batch_size > 0, "the batch size must be positive");
    ensure!(
        encoder.embeds_images(),
        "this encoder embeds texts only (image vectors need an open_clip folder)"
    );
    let identity = encoder.identity().to_string();
    let mut seen_paths: HashSet<&Path> = HashSet::new();
    let paths: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| seen_paths.insert(p.as_path()) && p.is_file())
        .collect();
    // Each file's content hash; one path per distinct content.
    let mut keyed: Vec<(TextHash, PathBuf)> = Vec::new();
    let mut seen_keys = HashSet::new();
    for path in &paths {
        if let Some(key) = image_key(path).filter(|k| target.shard.has_hash(k)) {
            if seen_keys.insert(key) {
                keyed.push((key, path.to_path_buf()));
            }
        }
    }
    let keys: Vec<TextHash> = keyed.iter().map(|(k, _)| *k).collect();
    let cached = target.cached(ws, &identity, &keys)?;
    let missing: Vec<(TextHash, PathBuf)> = keyed
        .into_iter()
        .filter(|(k, _)| !cached.contains(k))
        .collect();
    let total = missing.len();
    let mut report = ImageFillReport {
        // A shard counts the distinct files (by content) that are its own.
        images: if target.shard.is_all() {
            paths.len()
        } else {
            keys.len()
        },
        cached: cached.len(),
        embedded: 0,
        unreadable: 0,
    };
    progress(0, total);
    let dim = encoder.dim();
    let mut done = 0;
    // As many forward passes at once as the encoder runs (one per core on the CPU backend).
    for batch in missing.chunks(batch_size * encoder.batches_at_once().max(1)) {
        ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
        let files: Vec<&Path> = batch.iter().map(|(_, p)| p.as_path()).collect();
        let vectors = encoder.embed_images(&files)?;
        ensure!(
            vectors.len() == batch.len(),
            "the encoder returned {} vectors for {} images",
            vectors.len(),
            batch.len()
        );
        let mut rows: Vec<(TextHash, &[f32])> = Vec::new();
        for ((key, path), vector) in batch.iter().zip(&vectors) {
            match vector {
                Some(v) => {
                    ensure!(
                        v.len() == dim,
                        "{}: a {}-d vector, expected {dim}",
                        path.display(),
                        v.len()
                    );
                    rows.push((*key, v.as_slice()));
                }
                None => report.unreadable += 1,
            }
        }
        target.store(ws, &identity, &rows)?;
        report.embedded += rows.len();
        done += batch.len();
        progress(done, total);
    }
    Ok(report)
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
        FillTarget::WORKSPACE,
        ws,
        encoder,
        &mut missing,
        batch_size.max(1),
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    Ok(n)
}

#[cfg(test)]
pub(crate) mod tests;
