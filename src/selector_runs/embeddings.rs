//! Stage 1 of a run: the run's encoder has a vector of every text it reads — questions, answers,
//! captions + mentions, the paper's joined texts — and, with an open_clip encoder, of every
//! figure; what the cache lacks (new imports) is embedded now, batch by batch, each batch
//! committed, so a cancelled or killed fill keeps what it finished. Without the encoder's folder
//! the cache alone must serve (training says so if it cannot).

use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::{answer_inputs_for, for_each_answer_chunk, RunSettings};
use crate::embed::{self, FillReport, ImageFillReport};

/// What the fill found and did.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct EmbedReport {
    pub texts: Option<FillReport>,
    pub images: Option<ImageFillReport>,
    /// The paper's joined texts embedded now.
    pub joined: usize,
    /// Texts of reviewers' corrected answers embedded now.
    pub corrected: usize,
    /// Seconds the fill took, the encoder's loading included.
    pub seconds: f64,
}

/// Answers read per chunk for the joined texts (bounded memory).
const JOINED_CHUNK: usize = 20_000;

/// Embeds what the cache lacks for `settings`' encoder, `batch` texts per forward pass;
/// `progress(what, done, total)` as it goes ("texts", "figures", "joined texts"). Nothing to do
/// for a run without an encoder.
pub fn ensure_embeddings(
    ws: &crate::store::Workspace,
    settings: &RunSettings,
    batch: usize,
    progress: &mut dyn FnMut(&str, usize, usize),
    cancel: &AtomicBool,
) -> anyhow::Result<EmbedReport> {
    let started = std::time::Instant::now();
    let mut report = EmbedReport::default();
    let Some(encoder) = &settings.encoder else {
        return Ok(report);
    };
    if !encoder.folder.exists() {
        return Ok(report);
    }
    // Loading hashes the folder once; that identity must still be the run's.
    let mut model = embed::open_encoder(&encoder.folder, settings.backend)?;
    encoder.check_identity(model.identity())?;
    report.texts = Some(embed::fill_cache(
        ws,
        model.as_mut(),
        batch,
        &mut |done, total| progress("texts", done, total),
        cancel,
    )?);
    if model.embeds_images() {
        report.images = Some(embed::fill_image_cache(
            ws,
            model.as_mut(),
            batch,
            &mut |done, total| progress("figures", done, total),
            cancel,
        )?);
    }
    // Reviewers' corrected answers train as answers of their own (clinician pairs from edits):
    // their texts are embedded too. There are few; all at once.
    let corrected: std::collections::HashSet<i64> = ws
        .edit_pairs()?
        .into_iter()
        .map(|(edited, _)| edited)
        .collect();
    if !corrected.is_empty() {
        let mut inputs = answer_inputs_for(ws, &corrected)?.inputs;
        settings.prepare_inputs(&mut inputs);
        let texts: Vec<String> = inputs
            .iter()
            .flat_map(crate::selector::encoder_features::texts_of)
            .collect();
        report.corrected = embed::ensure_cached(ws, model.as_mut(), &texts, batch)?;
    }
    // The paper's joined caption + mention + question + answer are texts of their own.
    if settings.paper_text {
        for_each_answer_chunk(ws, JOINED_CHUNK, &mut |inputs, _| {
            anyhow::ensure!(
                !cancel.load(std::sync::atomic::Ordering::SeqCst),
                crate::selector::Cancelled
            );
            let mut prepared = inputs.to_vec();
            settings.prepare_inputs(&mut prepared);
            let texts: Vec<String> = prepared
                .iter()
                .flat_map(crate::selector::encoder_features::texts_of)
                .collect();
            report.joined += embed::ensure_cached(ws, model.as_mut(), &texts, batch)?;
            progress("joined texts", report.joined, report.joined);
            Ok(())
        })?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
