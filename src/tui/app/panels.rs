//! State of the review screen's panels and forms: the selection preview, the export form and the
//! training panel. Plain data, changed only by the app's update function.

use std::path::PathBuf;

use crate::export::{ExportFormat, Selection};
use crate::selector::Metrics;
use crate::tui::queue::Queue;

/// The selection preview: what the top share of samples by selector score keeps and drops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectionPreview {
    pub top_percent: f64,
    /// Samples with a score (only they can be ranked).
    pub scored: usize,
    pub kept_samples: usize,
    pub kept_rounds: usize,
    pub dropped_samples: usize,
    pub dropped_rounds: usize,
    /// (domain, kept samples, dropped samples), by domain name.
    pub by_domain: Vec<(String, usize, usize)>,
}

impl SelectionPreview {
    pub fn compute(queue: &Queue, top_percent: f64) -> Self {
        let mut scored: Vec<(f64, &crate::store::IndexEntry)> = queue
            .entries()
            .iter()
            .zip(queue.signals())
            .filter_map(|(e, s)| Some((s.score?, e)))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Rounded like `vital export --select top:P%`, so the preview matches the export.
        let keep =
            (((scored.len() as f64) * top_percent / 100.0).round() as usize).min(scored.len());
        let mut preview = SelectionPreview {
            top_percent,
            scored: scored.len(),
            ..Default::default()
        };
        let mut domains: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for (i, (_, entry)) in scored.iter().enumerate() {
            let kept = i < keep;
            if kept {
                preview.kept_samples += 1;
                preview.kept_rounds += entry.rounds;
            } else {
                preview.dropped_samples += 1;
                preview.dropped_rounds += entry.rounds;
            }
            let names = if entry.domains.is_empty() {
                vec!["(none)".to_string()]
            } else {
                entry.domains.clone()
            };
            for d in names {
                let slot = domains.entry(d).or_default();
                if kept {
                    slot.0 += 1;
                } else {
                    slot.1 += 1;
                }
            }
        }
        preview.by_domain = domains.into_iter().map(|(d, (k, x))| (d, k, x)).collect();
        preview
    }
}

/// The export form: selection, format and output path, prefilled from config.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportForm {
    /// Selection, format, path.
    pub fields: [String; 3],
    /// The field being edited.
    pub focus: usize,
    pub error: Option<String>,
}

impl ExportForm {
    pub const LABELS: [&'static str; 3] = ["selection", "format", "output file"];

    /// The export the fields describe, parsed once here; or what is wrong with them.
    pub fn request(&self) -> Result<ExportJob, String> {
        let [select, format, out] = self.fields.clone().map(|f| f.trim().to_string());
        let select = select.parse::<Selection>()?;
        let format = <ExportFormat as clap::ValueEnum>::from_str(&format, true).map_err(|_| {
            format!("`{format}` is not a format: llava, dpo, demos, pairs or scores")
        })?;
        if out.is_empty() {
            return Err("the output file is empty".to_string());
        }
        Ok(ExportJob {
            select,
            format,
            out: out.into(),
        })
    }
}

/// An export asked for on the review screen. `out` is as typed: a relative path is taken from
/// the session's export directory when the export runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportJob {
    pub select: Selection,
    pub format: ExportFormat,
    pub out: PathBuf,
}

/// What the training panel shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingView {
    pub running: bool,
    pub queued: bool,
    pub backend: String,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: Option<f32>,
    pub validation: Option<Metrics>,
    /// The running run's validation after its latest epoch (not the held-out figures, which
    /// are measured once it ends).
    pub epoch_validation: Option<Metrics>,
    /// Held-out alignment rate of each finished run this session, for the sparkline.
    pub history: Vec<f64>,
    pub human_pairs: usize,
    pub judge_pairs: usize,
    pub last_run: Option<i64>,
    pub status: String,
}
