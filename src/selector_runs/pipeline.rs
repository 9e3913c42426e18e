//! A selector run, the method's steps in order. Every caller goes through here — `vital train`
//! and `vital sweep`, the review screen's background trainer, the benchmarks — with their
//! differences as [`RunOptions`]; each step is a function in its own file, handing the next a
//! typed value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::choose::{choose_head, EarlierChoice};
use super::embeddings::{ensure_embeddings, EmbedReport};
use super::fit::fit;
use super::held_out::evaluate_held_out;
use super::pairs::gather_pairs;
use super::record::{record_run, RunReport};
use super::scoring::{score, SampleScore};
use super::RunSettings;
use crate::selector::{Cancelled, TrainProgress, TrainedSelector};
use crate::store::Workspace;

/// What a caller wants of a run besides training it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOptions {
    /// Embed what the cache lacks with the run's encoder first (off for a sweep's later runs,
    /// whose texts the first run embedded).
    pub embed: bool,
    /// Texts per encoder forward pass when embedding.
    pub encoder_batch: usize,
    /// Score every answer and sample afterwards (and publish the run), this way.
    pub score: Option<SampleScore>,
    /// With `head = auto`: an earlier run's choice to reuse while the training pairs have grown
    /// less than half since (the review screen's background trainer), instead of validating.
    pub earlier_choice: Option<EarlierChoice>,
}

/// Where a run is, for a progress bar or the training panel.
#[derive(Debug, Clone, PartialEq)]
pub enum RunProgress<'a> {
    /// Embedding `what` ("texts", "figures", "joined texts"): `done` of `total`.
    Embedding {
        what: &'a str,
        done: usize,
        total: usize,
    },
    Training(TrainProgress),
    /// Answers scored so far.
    Scoring {
        done: usize,
    },
}

/// What a run produced.
pub struct RunOutcome {
    pub report: RunReport,
    pub selector: TrainedSelector,
    pub embedded: EmbedReport,
    /// (answers, samples) scored, when asked.
    pub scored: Option<(usize, usize)>,
}

/// Embeds, trains, evaluates, records and (when asked) scores one run.
pub fn run(
    ws: &mut Workspace,
    settings: &RunSettings,
    options: &RunOptions,
    progress: &mut dyn FnMut(RunProgress<'_>),
    cancel: &AtomicBool,
) -> anyhow::Result<RunOutcome> {
    // 1. The run's encoder has a vector of every text and figure it reads.
    let embedded = if options.embed {
        ensure_embeddings(
            ws,
            settings,
            options.encoder_batch,
            &mut |what, done, total| progress(RunProgress::Embedding { what, done, total }),
            cancel,
        )?
    } else {
        EmbedReport::default()
    };
    // 2–6. Pairs, inputs, fit, held-out measures, the record.
    let (report, selector) = train_reusing(
        ws,
        settings,
        options.earlier_choice,
        &mut |p| progress(RunProgress::Training(p)),
        cancel,
    )?;
    // 7. Every answer and sample scored by the new selector; the run is published.
    let scored = match options.score {
        Some(how) => {
            anyhow::ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
            let embeddings = settings.load_embeddings()?;
            Some(score(
                ws,
                report.run_id,
                &selector,
                embeddings.as_ref(),
                how,
                &mut |done| progress(RunProgress::Scoring { done }),
                cancel,
            )?)
        }
        None => None,
    };
    Ok(RunOutcome {
        report,
        selector,
        embedded,
        scored,
    })
}

/// Steps 2–6 of a run, on vectors already cached: trains a selector on everything the
/// workspace holds and records the run (not yet scored).
pub fn train(
    ws: &Workspace,
    settings: &RunSettings,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> anyhow::Result<(RunReport, TrainedSelector)> {
    train_reusing(ws, settings, None, progress, cancel)
}

/// [`train`], reusing an earlier run's `auto` choice while it still holds (see [`RunOptions`]).
pub fn train_reusing(
    ws: &Workspace,
    settings: &RunSettings,
    earlier: Option<EarlierChoice>,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> anyhow::Result<(RunReport, TrainedSelector)> {
    let started = Instant::now();
    // The settings are checked before anything is read.
    settings.train_config()?;
    // 2. Preference pairs from both sources: the clinicians' decisions and the judge's scores.
    let pairs = gather_pairs(ws, settings)?;
    // 3. The answers those pairs name, as the model reads them; with `head = auto` the model is
    // chosen by validation on the training pairs (the record keeps the choice and its figures).
    let (settings, head_choice, inputs) = choose_head(ws, settings, &pairs, earlier, cancel)?;
    let settings = &settings;
    let config = settings.train_config()?;
    // 4. The selector fitted on the training pairs, figures held out.
    let fitted = fit(settings, &config, &pairs, &inputs, progress, cancel)?;
    // 5. Measured on what it never trained on.
    let held_out = evaluate_held_out(&fitted, &pairs, &inputs)?;
    // 6. Recorded: checkpoint and report.
    let report = record_run(
        ws,
        settings,
        &pairs,
        &fitted,
        held_out,
        head_choice,
        started,
    )?;
    Ok((report, fitted.selector))
}
