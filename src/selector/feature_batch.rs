//! Features of many answers in flat, padded, row-major arrays, built on all cores.

use super::features::{FeatureLayout, FeatureRow, Featurizer};
use super::AnswerInput;

/// Features of many answers in flat, padded arrays (row-major).
#[derive(Debug, Clone, Default)]
pub struct FeatureBatch {
    pub rows: usize,
    pub field_caps: Vec<usize>,
    /// Per field: `rows * cap` ids, padded with 0 past the row's length.
    pub field_ids: Vec<Vec<u32>>,
    /// Per field: number of real ids in each row.
    pub field_lens: Vec<Vec<u32>>,
    pub dense_dim: usize,
    pub dense: Vec<f32>,
    /// Optional embeddings from an external encoder, `rows * precomputed_dim` (see `embeddings`).
    pub precomputed_dim: usize,
    pub precomputed: Vec<f32>,
}

impl FeatureBatch {
    pub fn new(layout: &FeatureLayout, capacity: usize) -> Self {
        FeatureBatch {
            rows: 0,
            field_caps: layout.field_caps.clone(),
            field_ids: layout
                .field_caps
                .iter()
                .map(|c| Vec::with_capacity(c * capacity))
                .collect(),
            field_lens: layout
                .field_caps
                .iter()
                .map(|_| Vec::with_capacity(capacity))
                .collect(),
            dense_dim: layout.dense_dim,
            dense: Vec::with_capacity(layout.dense_dim * capacity),
            precomputed_dim: 0,
            precomputed: Vec::new(),
        }
    }

    /// Appends one row, truncating each field to its cap.
    pub fn push(&mut self, row: &FeatureRow) {
        for (field, &cap) in self.field_caps.iter().enumerate() {
            let ids = row.field_ids.get(field).map(Vec::as_slice).unwrap_or(&[]);
            let kept = &ids[..ids.len().min(cap)];
            let out = &mut self.field_ids[field];
            out.extend_from_slice(kept);
            out.resize(out.len() + cap - kept.len(), 0);
            self.field_lens[field].push(kept.len() as u32);
        }
        let mut dense = row.dense.clone();
        dense.resize(self.dense_dim, 0.0);
        self.dense.extend_from_slice(&dense);
        self.rows += 1;
    }

    pub fn append(&mut self, other: FeatureBatch) {
        for field in 0..self.field_caps.len() {
            self.field_ids[field].extend_from_slice(&other.field_ids[field]);
            self.field_lens[field].extend_from_slice(&other.field_lens[field]);
        }
        self.dense.extend_from_slice(&other.dense);
        self.precomputed.extend_from_slice(&other.precomputed);
        self.rows += other.rows;
    }

    /// A new batch with the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> FeatureBatch {
        let mut out = FeatureBatch {
            rows: rows.len(),
            field_caps: self.field_caps.clone(),
            field_ids: vec![Vec::new(); self.field_caps.len()],
            field_lens: vec![Vec::new(); self.field_caps.len()],
            dense_dim: self.dense_dim,
            dense: Vec::with_capacity(rows.len() * self.dense_dim),
            precomputed_dim: self.precomputed_dim,
            precomputed: Vec::with_capacity(rows.len() * self.precomputed_dim),
        };
        for (field, &cap) in self.field_caps.iter().enumerate() {
            for &r in rows {
                out.field_ids[field]
                    .extend_from_slice(&self.field_ids[field][r * cap..(r + 1) * cap]);
                out.field_lens[field].push(self.field_lens[field][r]);
            }
        }
        for &r in rows {
            out.dense
                .extend_from_slice(&self.dense[r * self.dense_dim..(r + 1) * self.dense_dim]);
            let width = self.precomputed_dim;
            if width > 0 {
                out.precomputed
                    .extend_from_slice(&self.precomputed[r * width..(r + 1) * width]);
            }
        }
        out
    }
}

/// Featurizes `inputs` on all cores, keeping input order.
pub fn featurize_batch(featurizer: &dyn Featurizer, inputs: &[AnswerInput]) -> FeatureBatch {
    let refs: Vec<&AnswerInput> = inputs.iter().collect();
    featurize_refs(featurizer, &refs)
}

/// [`featurize_batch`] over borrowed answers (e.g. the subset a training run uses).
pub fn featurize_refs(featurizer: &dyn Featurizer, inputs: &[&AnswerInput]) -> FeatureBatch {
    let layout = featurizer.layout();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = inputs.len().div_ceil(threads).max(512);
    let parts: Vec<FeatureBatch> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut batch = FeatureBatch::new(layout, part.len());
                    let mut row = FeatureRow::default();
                    for input in part {
                        featurizer.featurize(input, &mut row);
                        batch.push(&row);
                    }
                    batch
                })
            })
            .collect();
        // A panic in a worker is a bug in a featurizer; re-raise it on the caller's thread.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut out = FeatureBatch::new(layout, inputs.len());
    for part in parts {
        out.append(part);
    }
    out
}
