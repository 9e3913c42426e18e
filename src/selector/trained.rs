//! A trained selector on the CPU: batched scoring, evaluation, and save/load as a folder of
//! `model.mpk` (burn weights, full precision) + `selector.json` (model, featurizer and
//! normalisation settings), like burn's examples keep the config beside the weights.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use burn::backend::NdArray;
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::backend::BackendKind;
use super::embeddings::EmbeddingTable;
use super::features::{
    featurize_refs, FeatureBatch, FeatureLayout, Featurizer, HashedFeaturizer,
    HashedFeaturizerConfig,
};
use super::metrics::Metrics;
use super::model::{pool_bags_cpu, ModelInput, SelectorModel, SelectorModelConfig};
use super::{AnswerInput, PreferencePair};

const FORMAT_VERSION: u32 = 1;
const META_FILE: &str = "selector.json";
const WEIGHTS_STEM: &str = "model"; // the recorder adds ".mpk"
/// Answers per scoring batch: large enough to keep the matrix products efficient.
const SCORE_CHUNK: usize = 8192;

/// Per-column standardisation of the dense signals, fitted on training answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseNorm {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// The 0/1 "has image" column: left as is (the model uses it as a mask); the image
    /// columns after it are fitted on rows that have an image.
    pub image_flag: Option<usize>,
}

impl DenseNorm {
    pub fn identity(dim: usize) -> Self {
        DenseNorm {
            mean: vec![0.0; dim],
            std: vec![1.0; dim],
            image_flag: None,
        }
    }

    pub fn fit(batch: &FeatureBatch, rows: &[usize], image_flag: Option<usize>) -> Self {
        let dim = batch.dense_dim;
        let (mut sum, mut sq, mut n) = (vec![0f64; dim], vec![0f64; dim], vec![0usize; dim]);
        for &r in rows {
            let row = &batch.dense[r * dim..(r + 1) * dim];
            let has_image = image_flag.is_none_or(|f| row[f] > 0.5);
            for (c, &v) in row.iter().enumerate() {
                if image_flag.is_some_and(|f| c > f) && !has_image {
                    continue;
                }
                sum[c] += v as f64;
                sq[c] += (v as f64) * (v as f64);
                n[c] += 1;
            }
        }
        let mut norm = DenseNorm::identity(dim);
        norm.image_flag = image_flag;
        for c in 0..dim {
            if n[c] == 0 || Some(c) == image_flag {
                continue;
            }
            let mean = sum[c] / n[c] as f64;
            let std = (sq[c] / n[c] as f64 - mean * mean).max(0.0).sqrt();
            norm.mean[c] = mean as f32;
            // A constant column stays centred but unscaled.
            norm.std[c] = if std > 1e-6 { std as f32 } else { 1.0 };
        }
        norm
    }

    /// Fits on the first `cols` columns of the `width`-wide rows `rows` of `values`.
    pub fn fit_leading(values: &[f32], width: usize, cols: usize, rows: &[usize]) -> Self {
        let batch = FeatureBatch {
            rows: values.len() / width.max(1),
            dense_dim: cols,
            dense: values
                .chunks_exact(width.max(1))
                .flat_map(|row| row[..cols].iter().copied())
                .collect(),
            ..FeatureBatch::default()
        };
        Self::fit(&batch, rows, None)
    }

    /// Standardises the first `mean.len()` columns of each `width`-wide row of `values`.
    pub fn apply_leading(&self, values: &mut [f32], width: usize) {
        for row in values.chunks_exact_mut(width.max(1)) {
            for (c, v) in row.iter_mut().take(self.mean.len()).enumerate() {
                *v = (*v - self.mean[c]) / self.std[c];
            }
        }
    }

    pub fn apply(&self, batch: &mut FeatureBatch) {
        let dim = batch.dense_dim;
        if dim == 0 {
            return;
        }
        for row in batch.dense.chunks_exact_mut(dim) {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[c]) / self.std[c];
            }
        }
    }
}

/// Everything besides the weights that is needed to rebuild and feed the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelectorMeta {
    pub format_version: u32,
    pub model: SelectorModelConfig,
    /// `None`: the model reads precomputed embeddings only.
    pub features: Option<HashedFeaturizerConfig>,
    pub norm: DenseNorm,
    /// Validation metrics at the end of training, when there was a validation split.
    pub validation: Option<Metrics>,
    /// Standardisation of the raw leading precomputed columns (encoder similarities), when the
    /// model projects the rest.
    #[serde(default)]
    pub precomputed_norm: Option<DenseNorm>,
}

/// A copy of the weights on the backend that scores (the CPU copy always stays: it is the one
/// saved and trained from).
enum Placed {
    Cpu,
    #[cfg(feature = "wgpu")]
    Wgpu(SelectorModel<burn::backend::Wgpu>),
    #[cfg(feature = "cuda")]
    Cuda(SelectorModel<burn::backend::Cuda>),
}

/// A trained model ready to score answers: on the CPU (NdArray), or on a GPU backend after
/// [`TrainedSelector::place_on`].
pub struct TrainedSelector {
    model: SelectorModel<NdArray>,
    placed: Placed,
    meta: SelectorMeta,
    featurizer: Option<HashedFeaturizer>,
    /// The id embedding table on the CPU for [`pool_bags_cpu`], and its width.
    id_table: Option<(Vec<f32>, usize)>,
}

impl std::fmt::Debug for TrainedSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedSelector")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Layout of a featurizer-less batch (precomputed embeddings only).
fn empty_layout() -> FeatureLayout {
    FeatureLayout {
        buckets: 1,
        field_caps: Vec::new(),
        dense_dim: 0,
        image_flag: None,
        image_stats: 0,
    }
}

/// Featurizes `answers`, appends their precomputed embeddings when the model reads them.
pub(crate) fn encode(
    featurizer: Option<&dyn Featurizer>,
    answers: &[&AnswerInput],
    embeddings: Option<&EmbeddingTable>,
    precomputed_dim: usize,
) -> Result<FeatureBatch> {
    let mut batch = match featurizer {
        Some(f) => featurize_refs(f, answers),
        None => {
            let mut b = FeatureBatch::new(&empty_layout(), answers.len());
            b.rows = answers.len();
            b
        }
    };
    if precomputed_dim > 0 {
        let table = embeddings
            .context("this selector reads precomputed embeddings: supply an embeddings file")?;
        ensure!(
            table.dim() == precomputed_dim,
            "embeddings are {}-d but the selector expects {precomputed_dim}-d",
            table.dim()
        );
        batch.precomputed_dim = precomputed_dim;
        batch.precomputed.reserve(answers.len() * precomputed_dim);
        for answer in answers {
            let row = table.get(answer.answer_id).with_context(|| {
                format!("answer {} has no precomputed embedding", answer.answer_id)
            })?;
            batch.precomputed.extend_from_slice(row);
        }
    }
    Ok(batch)
}

impl TrainedSelector {
    pub(crate) fn from_parts(model: SelectorModel<NdArray>, meta: SelectorMeta) -> Self {
        let featurizer = meta.features.clone().map(HashedFeaturizer::new);
        let id_table = model.id_table();
        TrainedSelector {
            model,
            placed: Placed::Cpu,
            meta,
            featurizer,
            id_table,
        }
    }

    pub fn meta(&self) -> &SelectorMeta {
        &self.meta
    }

    /// Scores answers (higher = better); for a model without precomputed embeddings.
    pub fn score(&self, answers: &[AnswerInput]) -> Result<Vec<f32>> {
        self.score_with(answers, None)
    }

    /// Scores on `kind` from now on (the weights are copied to its default device). The CPU
    /// needs no copy; a backend this machine cannot run is refused with what is missing.
    pub fn place_on(&mut self, kind: BackendKind) -> Result<()> {
        kind.probe()?;
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        let config = &self.meta.model;
        self.placed = match kind {
            BackendKind::Cpu => Placed::Cpu,
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Placed::Wgpu(super::model::move_model::<
                NdArray,
                burn::backend::Wgpu,
            >(
                self.model.clone(), config, &Default::default()
            )?),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Placed::Cuda(super::model::move_model::<
                NdArray,
                burn::backend::Cuda,
            >(
                self.model.clone(), config, &Default::default()
            )?),
            #[allow(unreachable_patterns)] // reachable only when a GPU feature is off
            other => bail!("backend {other} is not compiled in: rebuild with --features {other}"),
        };
        Ok(())
    }

    /// The backend that scores.
    pub fn backend(&self) -> BackendKind {
        match self.placed {
            Placed::Cpu => BackendKind::Cpu,
            #[cfg(feature = "wgpu")]
            Placed::Wgpu(_) => BackendKind::Wgpu,
            #[cfg(feature = "cuda")]
            Placed::Cuda(_) => BackendKind::Cuda,
        }
    }

    /// Scores answers, looking up precomputed embeddings in `embeddings` when the model uses them.
    pub fn score_with(
        &self,
        answers: &[AnswerInput],
        embeddings: Option<&EmbeddingTable>,
    ) -> Result<Vec<f32>> {
        match &self.placed {
            Placed::Cpu => self.score_on(&self.model, &Default::default(), answers, embeddings),
            #[cfg(feature = "wgpu")]
            Placed::Wgpu(model) => self.score_on(model, &Default::default(), answers, embeddings),
            #[cfg(feature = "cuda")]
            Placed::Cuda(model) => self.score_on(model, &Default::default(), answers, embeddings),
        }
    }

    fn score_on<B: Backend>(
        &self,
        model: &SelectorModel<B>,
        device: &B::Device,
        answers: &[AnswerInput],
        embeddings: Option<&EmbeddingTable>,
    ) -> Result<Vec<f32>> {
        let refs: Vec<&AnswerInput> = answers.iter().collect();
        let mut scores = Vec::with_capacity(answers.len());
        for chunk in refs.chunks(SCORE_CHUNK) {
            let featurizer = self.featurizer.as_ref().map(|f| f as &dyn Featurizer);
            let mut batch = encode(
                featurizer,
                chunk,
                embeddings,
                self.meta.model.precomputed_dim,
            )?;
            self.meta.norm.apply(&mut batch);
            if let Some(norm) = &self.meta.precomputed_norm {
                norm.apply_leading(&mut batch.precomputed, batch.precomputed_dim);
            }
            let mut input = ModelInput::from_batch_without_bags(&batch, &self.meta.model, device);
            if let Some((table, dim)) = &self.id_table {
                let fields = self.meta.model.id_fields;
                let pooled = pool_bags_cpu(&batch, fields, table, *dim);
                let data = burn::tensor::TensorData::new(pooled, [batch.rows, fields * dim]);
                input.pooled = Some(burn::tensor::Tensor::from_data(data, device));
            }
            let out = model.forward(input).into_data();
            scores.extend(
                out.to_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("reading scores: {e:?}"))?,
            );
        }
        Ok(scores)
    }

    /// Metrics of this selector on `pairs` (every id must be among `answers`).
    pub fn evaluate(
        &self,
        answers: &[AnswerInput],
        pairs: &[PreferencePair],
        embeddings: Option<&EmbeddingTable>,
    ) -> Result<Metrics> {
        let scores = self.score_with(answers, embeddings)?;
        let by_id: std::collections::HashMap<i64, f32> =
            answers.iter().map(|a| a.answer_id).zip(scores).collect();
        let scored = pairs
            .iter()
            .map(|p| match (by_id.get(&p.winner), by_id.get(&p.loser)) {
                (Some(&w), Some(&l)) => Ok((w, l)),
                _ => bail!(
                    "pair {} > {} refers to an answer that was not given",
                    p.winner,
                    p.loser
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Metrics::from_pairs(&scored))
    }

    /// Writes `model.mpk` and `selector.json` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json =
            serde_json::to_string_pretty(&self.meta).context("serializing selector settings")?;
        std::fs::write(dir.join(META_FILE), json)
            .with_context(|| format!("writing {}", dir.join(META_FILE).display()))?;
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        self.model
            .clone()
            .save_file(dir.join(WEIGHTS_STEM), &recorder)
            .with_context(|| format!("writing weights into {}", dir.display()))?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path)
            .with_context(|| format!("reading {}", meta_path.display()))?;
        let meta: SelectorMeta = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a selector settings file", meta_path.display()))?;
        ensure!(
            meta.format_version == FORMAT_VERSION,
            "{}: format version {} (this program reads {FORMAT_VERSION})",
            meta_path.display(),
            meta.format_version
        );
        let device = Default::default();
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        let model = meta
            .model
            .init::<NdArray>(&device)
            .load_file(dir.join(WEIGHTS_STEM), &recorder, &device)
            .with_context(|| format!("reading weights from {}", dir.display()))?;
        Ok(Self::from_parts(model, meta))
    }

    pub(crate) fn new_meta(
        model: SelectorModelConfig,
        features: Option<HashedFeaturizerConfig>,
        norm: DenseNorm,
    ) -> SelectorMeta {
        SelectorMeta {
            format_version: FORMAT_VERSION,
            model,
            features,
            norm,
            validation: None,
            precomputed_norm: None,
        }
    }
}
