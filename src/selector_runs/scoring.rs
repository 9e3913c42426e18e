//! Scoring: every answer (or one shard's samples' answers) through a trained selector, and each
//! sample's score from its answers'.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use super::{encoded, for_each_answer_chunk, load_run_report};
use crate::selector::{self, TrainedSelector};
use crate::shard::Shard;
use crate::store::Workspace;

/// How a sample's score is made from its answers' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleScore {
    /// Mean over rounds of the round's best answer (the default).
    MeanBest,
    /// Mean over all answers.
    Mean,
    /// The worst round's best answer: a sample is as good as its weakest round.
    Min,
    /// The first round's best answer: the method scores a sample by its first round.
    FirstRound,
}

impl std::fmt::Display for SampleScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SampleScore::MeanBest => "mean-best",
            SampleScore::Mean => "mean",
            SampleScore::Min => "min",
            SampleScore::FirstRound => "first-round",
        })
    }
}

impl std::str::FromStr for SampleScore {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "mean-best" => SampleScore::MeanBest,
            "mean" => SampleScore::Mean,
            "min" => SampleScore::Min,
            "first-round" => SampleScore::FirstRound,
            other => {
                anyhow::bail!(
                    "unknown sample_score `{other}`: expected mean-best, mean or min (or first-round, the method's)"
                )
            }
        })
    }
}

/// Answers scored per chunk: bounds memory at 210K samples (1.7M answers).
const SCORE_CHUNK: usize = 50_000;

/// Scores every answer with `selector` and stores answer and sample scores under `run_id`.
/// `progress(done)` is called after each chunk. Returns (answers scored, samples scored).
pub fn score(
    ws: &mut Workspace,
    run_id: i64,
    selector: &TrainedSelector,
    embeddings: Option<&selector::EmbeddingTable>,
    how: SampleScore,
    progress: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> anyhow::Result<(usize, usize)> {
    let scores = compute_scores(
        ws,
        run_id,
        selector,
        embeddings,
        how,
        Shard::ALL,
        progress,
        cancel,
    )?;
    ws.store_selector_scores(run_id, &scores.answers, &scores.samples)?;
    Ok((scores.answers.len(), scores.samples.len()))
}

/// A run's scores of the answers and samples of one shard, not yet stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShardScores {
    pub answers: Vec<(i64, f32)>,
    pub samples: Vec<(i64, f32)>,
}

/// Scores the answers of `shard`'s samples (every sample with [`Shard::ALL`]) with `selector`,
/// and each of those samples as `how` says; stores nothing.
#[allow(clippy::too_many_arguments)] // the run, its model and inputs, and the shard
pub fn compute_scores(
    ws: &Workspace,
    run_id: i64,
    selector: &TrainedSelector,
    embeddings: Option<&selector::EmbeddingTable>,
    how: SampleScore,
    shard: Shard,
    progress: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> anyhow::Result<ShardScores> {
    let mut answers: Vec<(i64, f32)> = Vec::new();
    // Per sample: (round position, best so far) per round, and the sum and count of all answers.
    let mut rounds: HashMap<i64, Vec<(usize, f32)>> = HashMap::new();
    let mut all: HashMap<i64, (f32, usize)> = HashMap::new();
    // A run trained with an encoder reads its vectors from the cache, chunk by chunk.
    let run_settings = load_run_report(ws, Some(run_id))
        .ok()
        .map(|(_, report)| report.settings);
    let encoder_run = run_settings
        .clone()
        .filter(|settings| settings.encoder.is_some());
    if let Some(encoder) = encoder_run.as_ref().and_then(|s| s.encoder.as_ref()) {
        encoder.check_folder()?;
    }
    let reader: &Workspace = ws;
    let mut mine: (Vec<selector::AnswerInput>, Vec<i64>) = (Vec::new(), Vec::new());
    for_each_answer_chunk(reader, SCORE_CHUNK, &mut |inputs, samples| {
        // Between chunks: a cancelled run stores nothing (scores are written at the end).
        anyhow::ensure!(
            !cancel.load(std::sync::atomic::Ordering::SeqCst),
            selector::Cancelled
        );
        let (inputs, samples) = if shard.is_all() {
            (inputs, samples)
        } else {
            mine.0.clear();
            mine.1.clear();
            for (input, &sample) in inputs.iter().zip(samples) {
                if shard.has_sample(sample) {
                    mine.0.push(input.clone());
                    mine.1.push(sample);
                }
            }
            (&mine.0[..], &mine.1[..])
        };
        let prepared: Vec<selector::AnswerInput>;
        let inputs = match &run_settings {
            Some(settings) if settings.paper_text => {
                let mut copy = inputs.to_vec();
                settings.prepare_inputs(&mut copy);
                prepared = copy;
                &prepared[..]
            }
            _ => inputs,
        };
        let scores = match &encoder_run {
            Some(settings) => {
                let encoder = settings.encoder.as_ref().context("an encoder run")?;
                let table =
                    encoded::table_from_cache(reader, encoder, inputs, settings.encoder_inputs())?;
                selector.score_with(inputs, Some(&table))?
            }
            None => selector.score_with(inputs, embeddings)?,
        };
        for ((input, &sample), &s) in inputs.iter().zip(samples).zip(&scores) {
            answers.push((input.answer_id, s));
            let best = rounds.entry(sample).or_default();
            match best.iter_mut().find(|(r, _)| *r == input.round_position) {
                Some((_, b)) => *b = b.max(s),
                None => best.push((input.round_position, s)),
            }
            let total = all.entry(sample).or_default();
            total.0 += s;
            total.1 += 1;
        }
        progress(answers.len());
        Ok(())
    })?;
    let samples: Vec<(i64, f32)> = rounds
        .into_iter()
        .map(|(sample, best)| {
            let value = match how {
                SampleScore::MeanBest => best.iter().map(|b| b.1).sum::<f32>() / best.len() as f32,
                SampleScore::Mean => all[&sample].0 / all[&sample].1 as f32,
                SampleScore::Min => best.iter().map(|b| b.1).fold(f32::MAX, f32::min),
                // The earliest answered round (round 1 unless it has no answer).
                SampleScore::FirstRound => {
                    best.iter().min_by_key(|b| b.0).map_or(f32::NAN, |b| b.1)
                }
            };
            (sample, value)
        })
        .collect();
    Ok(ShardScores { answers, samples })
}
