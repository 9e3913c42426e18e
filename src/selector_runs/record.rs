//! What a run leaves behind: its checkpoint folder and its report (the run's `metrics` JSON), and
//! reading them back.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::choose::HeadChoice;
use super::fit::Fitted;
use super::held_out::HeldOut;
use super::pairs::RunPairs;
use super::RunSettings;
use crate::selector::{Metrics, TrainedSelector};
use crate::store::{RunRecord, Workspace};

/// What a run recorded: stored as the run's `metrics` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: i64,
    pub backend: String,
    pub human_pairs: usize,
    /// Those clinician pairs by kind: `same-round`, `same-figure` (verdicts on two questions of
    /// one figure: one-answer rounds), `correction`.
    #[serde(default)]
    pub human_pairs_by_kind: std::collections::BTreeMap<String, usize>,
    /// Judge pairs given to training, from both sources.
    pub judge_pairs: usize,
    /// Of those: two answers of one round.
    #[serde(default)]
    pub judge_pairs_within_round: usize,
    /// Of those: drawn across first-round score levels (the method's).
    #[serde(default)]
    pub judge_pairs_across_levels: usize,
    /// Pairs across levels drawn from the levels' test side (answers never trained on).
    #[serde(default)]
    pub judge_test_pairs: usize,
    /// The selector on those test pairs: how well it reproduces the judge.
    #[serde(default)]
    pub judge_test: Option<Metrics>,
    pub train_pairs: usize,
    /// Held-out clinician pairs (figures never seen in training).
    pub held_out_human_pairs: usize,
    /// The selector on the held-out clinician pairs.
    pub validation: Option<Metrics>,
    /// Figures held out, so `vital eval` can find the same pairs again.
    pub held_out_figures: Vec<String>,
    /// The held-out clinician pairs (winner, loser) when they are not whole figures (the
    /// paper preset's first-N split); `vital eval` then reads exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out_pairs: Vec<(i64, i64)>,
    /// The checkpoint folder, relative to the workspace.
    pub checkpoint: PathBuf,
    /// With `head = auto`: each candidate head's validation figures and the one chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_choice: Option<HeadChoice>,
    /// What the run was trained with (embeddings included, needed again to score).
    pub settings: RunSettings,
    pub seconds: f64,
}

/// Stage 6 of a run: records it — a new run id, the checkpoint saved under
/// `selector/run-N/` (relative to the workspace, so a moved or copied workspace still finds it),
/// and the report. Scoring comes after, and publishes the run.
pub fn record_run(
    ws: &Workspace,
    settings: &RunSettings,
    pairs: &RunPairs,
    fitted: &Fitted,
    held_out: HeldOut,
    head_choice: Option<HeadChoice>,
    started: std::time::Instant,
) -> anyhow::Result<RunReport> {
    let backend = settings.backend;
    let config_json = serde_json::to_string(settings)?;
    let run_id = ws.create_selector_run(backend.name(), &config_json, None, None)?;
    let checkpoint = PathBuf::from("selector").join(format!("run-{run_id}"));
    let checkpoint_dir = ws.dir().join(&checkpoint);
    fitted
        .selector
        .save(&checkpoint_dir)
        .with_context(|| format!("cannot save the selector to {}", checkpoint_dir.display()))?;
    let fixed_held_out = pairs.fixed_held_out.as_deref().unwrap_or_default();
    let report = RunReport {
        run_id,
        backend: backend.name().to_string(),
        // Every clinician pair in force, held-out ones included (as `stats` counts them).
        human_pairs: pairs.humans.len() + fixed_held_out.len(),
        human_pairs_by_kind: pairs.human_kinds.clone(),
        judge_pairs: pairs.judges().len(),
        judge_pairs_within_round: pairs.within.len(),
        judge_pairs_across_levels: pairs.levels.train.len(),
        judge_test_pairs: pairs.levels.test.len(),
        judge_test: held_out.judge_test,
        train_pairs: fitted.train_pairs,
        held_out_human_pairs: held_out.human_pairs.len(),
        validation: held_out.validation,
        held_out_figures: held_out.figures,
        held_out_pairs: fixed_held_out.iter().map(|p| (p.winner, p.loser)).collect(),
        checkpoint: checkpoint.clone(),
        head_choice,
        settings: settings.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    ws.finish_selector_run(
        run_id,
        &serde_json::to_string(&report)?,
        &checkpoint.to_string_lossy(),
    )?;
    Ok(report)
}

/// The record of run `run_id` (or of the latest run that finished training).
pub fn load_run_report(ws: &Workspace, run_id: Option<i64>) -> anyhow::Result<(i64, RunReport)> {
    let run_id = match run_id {
        Some(id) => id,
        // The latest run that finished training (scored or not).
        None => ws
            .latest_trained_run()?
            .context("no selector run yet: run `vital train` first")?,
    };
    let metrics = match ws.selector_run_record(run_id) {
        Ok(RunRecord::Finished(metrics)) => metrics,
        Ok(RunRecord::Unfinished) => anyhow::bail!("run {run_id} did not finish training"),
        Ok(RunRecord::Missing) | Err(_) => {
            anyhow::bail!("no selector run {run_id} in this workspace")
        }
    };
    let report: RunReport = serde_json::from_str(&metrics)
        .with_context(|| format!("run {run_id} has an unreadable record"))?;
    Ok((run_id, report))
}

/// Loads the checkpoint of run `run_id` (or of the latest run that finished training).
pub fn load_run(
    ws: &Workspace,
    run_id: Option<i64>,
) -> anyhow::Result<(i64, RunReport, TrainedSelector)> {
    let (run_id, report) = load_run_report(ws, run_id)?;
    let checkpoint = ws.dir().join(&report.checkpoint);
    let selector = TrainedSelector::load(&checkpoint).with_context(|| {
        format!(
            "cannot load run {run_id}'s checkpoint {}",
            checkpoint.display()
        )
    })?;
    Ok((run_id, report, selector))
}
