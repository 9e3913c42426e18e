//! BiomedCLIP-style open_clip models in burn: an open_clip hub folder in, L2-normalised image
//! and text vectors in one shared space out, no Python. open_clip's own source is the
//! specification (`timm_model.py`, `hf_model.py`, `tokenizer.py`, `transform.py`):
//!
//! * [`config`]: `open_clip_config.json` and the folder's files;
//! * [`vit`]: the timm ViT image tower and its projection; [`preprocess`]: the eval transform;
//! * [`text`]: the BERT text tower's pooling, projection and text cleaning;
//! * [`weights`]: checkpoint loading.
//!
//! Like the rest of `encoder`, a library: no store, no UI. A vector never depends on the other
//! inputs of its batch.

pub mod config;
pub mod preprocess;
pub mod text;
pub mod vit;
pub mod weights;

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

pub use config::OpenClipFolder;
use preprocess::Pixels;

use super::config::BertConfig;
use super::model::TokenBatch;
use super::tokenizer::TextTokenizer;
use super::{batch_workers, ids_of, in_length_order};

/// Both towers, named as open_clip's `CustomTextCLIP` names them (`visual`, `text`).
#[derive(Module, Debug)]
pub struct OpenClipModel<B: Backend> {
    pub visual: vit::VisualTower<B>,
    pub text: text::TextTower<B>,
}

/// A loaded open_clip model on one burn backend and device.
pub struct OpenClipEncoder<B: Backend> {
    folder: OpenClipFolder,
    bert: BertConfig,
    tokenizer: TextTokenizer,
    model: OpenClipModel<B>,
    device: B::Device,
}

impl<B: Backend> OpenClipEncoder<B> {
    /// Reads the folder, the tokenizer and the weights.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let folder = OpenClipFolder::open(dir)?;
        let snapshots = weights::snapshots(&folder.weights)?;
        let bert = match &folder.bert {
            Some((path, bert)) => {
                // The tower is built from the config before the weights are applied: its layers
                // must be in the checkpoint first.
                crate::encoder::checkpoint::check_bert_against(
                    bert,
                    &snapshots,
                    "text.transformer.",
                    path,
                    &folder.weights,
                )?;
                bert.clone()
            }
            None => weights::bert_from_shapes(&snapshots, &folder.weights)?,
        };
        let context = folder.text.context_length;
        anyhow::ensure!(
            context <= bert.max_position_embeddings,
            "{}: text_cfg.context_length {context} exceeds the text tower's {} positions",
            dir.join(config::CONFIG_FILE).display(),
            bert.max_position_embeddings
        );
        let proj = text::resolve_projection(folder.text.proj, bert.hidden_size, folder.embed_dim)
            .with_context(|| {
                format!(
                    "{}: text_cfg.hf_proj_type is null but the text width {} differs from embed_dim {} (open_clip builds no projection then)",
                    dir.join(config::CONFIG_FILE).display(),
                    bert.hidden_size,
                    folder.embed_dim
                )
            })?;
        let tokenizer = TextTokenizer::load(&folder.tokenizer, context, false)?;
        let mut model = OpenClipModel {
            visual: folder.vision.init(folder.embed_dim, device),
            text: text::init(&bert, folder.text.pool, proj, folder.embed_dim, device),
        };
        weights::apply(&mut model, snapshots, &folder.weights)?;
        Ok(OpenClipEncoder {
            folder,
            bert,
            tokenizer,
            model,
            device: device.clone(),
        })
    }

    pub fn folder(&self) -> &OpenClipFolder {
        &self.folder
    }

    /// The text tower's BERT shape (from its config.json or the checkpoint).
    pub fn text_config(&self) -> &BertConfig {
        &self.bert
    }

    /// Width of the shared space.
    pub fn dim(&self) -> usize {
        self.folder.embed_dim
    }

    /// Token ids of one text as open_clip's `HFTokenizer` makes them (cleaned, `[CLS]` … `[SEP]`,
    /// truncated at `context_length`), without the padding.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .ids(&text::clean(text, self.folder.text.clean))
    }

    /// One L2-normalised vector per token sequence, in order, in one forward pass.
    pub fn embed_ids(&self, sequences: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        if sequences.is_empty() {
            return Ok(Vec::new());
        }
        let batch = TokenBatch::padded(sequences, &self.device);
        rows(self.model.text.forward(&batch), self.dim())
    }

    /// One L2-normalised vector per text, in order, in batches of at most `batch_size`
    /// (length-sorted inside); `progress` gets the number done so far.
    pub fn encode_texts(
        &self,
        texts: &[&str],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        let ids = ids_of(texts, |t| self.token_ids(t))?;
        self.encode_ids(&ids, batch_size, progress)
    }

    /// [`Self::encode_texts`] on token ids.
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

    /// The model input of one decoded image (`[3, size, size]` values, channel-major).
    pub fn image_input(&self, pixels: &Pixels) -> Vec<f32> {
        self.folder.preprocess.tensor_values(pixels)
    }

    /// [`Self::image_input`] of each image file, decoded and preprocessed on up to as many
    /// threads as the machine has cores (the forward pass then takes them as one batch); each
    /// file's own error in its place.
    pub fn image_inputs(&self, paths: &[&Path]) -> Vec<Result<Vec<f32>>> {
        let prepare = |p: &Path| -> Result<Vec<f32>> {
            Ok(self
                .folder
                .preprocess
                .tensor_values(&preprocess::decode_file(p)?))
        };
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        on_threads(
            paths,
            threads,
            |chunk| chunk.iter().map(|p| prepare(p)).collect::<Vec<_>>(),
            || vec![Err(anyhow!("an image decoding thread panicked"))],
        )
        .into_iter()
        .flatten()
        .collect()
    }

    /// One L2-normalised vector per image input ([`Self::image_input`]), in order: split into
    /// [`batch_workers`] forward passes run at once (one per core on the CPU backend, whose
    /// forward pass is mostly single-threaded; one on a GPU).
    pub fn embed_inputs(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let passes = on_threads(
            inputs,
            batch_workers::<B>(),
            |chunk| self.forward_inputs(chunk),
            || Err(anyhow!("an image encoding thread panicked")),
        );
        let mut out = Vec::with_capacity(inputs.len());
        for pass in passes {
            out.extend(pass?);
        }
        Ok(out)
    }

    /// One forward pass over `inputs`.
    fn forward_inputs(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.folder.preprocess.size;
        let mut values = Vec::with_capacity(inputs.len() * 3 * size * size);
        for input in inputs {
            anyhow::ensure!(
                input.len() == 3 * size * size,
                "an image input has {} values, the model takes 3x{size}x{size}",
                input.len()
            );
            values.extend_from_slice(input);
        }
        let images = Tensor::<B, 4>::from_data(
            TensorData::new(values, [inputs.len(), 3, size, size]),
            &self.device,
        );
        rows(self.model.visual.forward(images), self.dim())
    }

    /// Decodes, preprocesses and embeds image files, `batch_size` per forward pass
    /// ([`batch_workers`] passes at once); `progress` gets the number done so far. The first
    /// unreadable file is an error naming it.
    pub fn encode_image_files(
        &self,
        paths: &[&Path],
        batch_size: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(batch_size.max(1) * batch_workers::<B>()) {
            let inputs = self
                .image_inputs(chunk)
                .into_iter()
                .collect::<Result<Vec<_>>>()?;
            out.extend(self.embed_inputs(&inputs)?);
            progress(out.len());
        }
        Ok(out)
    }
}

/// `per_chunk` over `items` split into at most `threads` contiguous chunks, each on a scoped
/// thread (on this one when a single chunk will do); the chunks' results in order, `panicked()`
/// for a chunk whose thread panicked.
fn on_threads<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    per_chunk: impl Fn(&[T]) -> R + Sync,
    panicked: impl Fn() -> R,
) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return vec![per_chunk(items)];
    }
    let per_chunk = &per_chunk;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || per_chunk(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panicked()))
            .collect()
    })
}

/// `[b, dim]` → b L2-normalised rows.
fn rows<B: Backend>(t: Tensor<B, 2>, dim: usize) -> Result<Vec<Vec<f32>>> {
    let values: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| anyhow!("reading the vectors back: {e:?}"))?;
    Ok(values.chunks(dim).map(super::normalised).collect())
}
