//! Joins the workspace and the selector: reads answers and preference pairs from the store,
//! trains, scores every answer and sample, and records runs. The CLI (`vital train/score/eval`)
//! and the review screen's background trainer both call this.

pub mod baselines;
pub mod encoded;
mod eval;
mod pairs;
mod settings;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::selector::{
    self, BackendKind, Metrics, PairLoss, PreferencePair, TrainConfig, TrainData, TrainProgress,
    TrainedSelector,
};
use crate::shard::Shard;
use crate::store::{RunRecord, Workspace};

pub use crate::answer_inputs::{answer_inputs_for, for_each_answer_chunk, AnswerIndex};
pub use eval::{evaluate, evaluate_with, pairs_from_file, EvalReport};
pub use pairs::{
    across_level_pairs, human_pairs, judge_level_pairs, judge_pairs, JudgePairs, LevelDraw,
    LevelPairs,
};
pub use settings::SelectorSettings;

/// Settings of one training run, resolved from config and flags; saved with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    #[serde(with = "crate::as_text")]
    pub backend: BackendKind,
    pub human_weight: f64,
    #[serde(with = "crate::as_text")]
    pub loss: PairLoss,
    pub margin: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub validation_fraction: f64,
    pub seed: u64,
    pub judge_min_gap: f64,
    /// Which judge pairs: within a round, across score levels (the method's), or both.
    #[serde(default, with = "crate::as_text")]
    pub judge_pairs: JudgePairs,
    #[serde(default = "defaults::judge_train_pairs")]
    pub judge_train_pairs: usize,
    #[serde(default = "defaults::judge_test_pairs")]
    pub judge_test_pairs: usize,
    #[serde(default = "defaults::judge_level_split")]
    pub judge_level_split: f64,
    #[serde(default = "defaults::judge_pairs_seed")]
    pub judge_pairs_seed: u64,
    /// Precomputed answer embeddings (.npy + ids, or .safetensors) from an outside encoder,
    /// keyed by answer id (see `vital answers`).
    #[serde(default)]
    pub embeddings: Option<PathBuf>,
    /// Train the paper's head on the embeddings alone (concat → MLP 512-512-512 → 1) instead of
    /// adding them to the built-in features.
    #[serde(default)]
    pub paper_head: bool,
    /// A sentence encoder whose cached vectors feed the model (see `vital embed`).
    #[serde(default)]
    pub encoder: Option<crate::embed::EncoderRef>,
    /// The preset the settings came from (`paper`), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The paper's text input: one text per answer, caption + mentions + "Question:" q +
    /// "Answer:" a (the separate question and caption fields are left empty).
    #[serde(default)]
    pub paper_text: bool,
    /// With the paper's text and head, the encoder's rows hold the joined text's vector alone
    /// (not the empty question's and caption's vectors beside it).
    #[serde(default)]
    pub joined_vector: bool,
    /// Train on sigmoid(score) (the paper's output layer).
    #[serde(default)]
    pub sigmoid_scores: bool,
    /// Weighted loss divided by the number of pairs (the paper's mean), not the total weight.
    #[serde(default)]
    pub mean_loss: bool,
    /// Only the first N clinician pairs (in import order) train; the rest are held out for
    /// evaluation, instead of holding out a share of the figures (the paper: 50).
    #[serde(default)]
    pub human_train_pairs: Option<usize>,
    /// Train exactly `epochs` epochs, never stopping early (with an encoder too).
    #[serde(default)]
    pub fixed_epochs: bool,
    /// Hidden layer sizes of the built-in model's MLP (default: the model's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
}

/// The paper's text for one answer: caption, inline mentions, then "Question:" and "Answer:".
pub fn paper_text(input: &selector::AnswerInput) -> String {
    let mut parts: Vec<&str> = vec![input.caption.trim()];
    parts.extend(input.mentions.iter().map(|m| m.trim()));
    parts.retain(|p| !p.is_empty());
    let context = parts.join(" ");
    format!(
        "{context} Question: {} Answer: {}",
        input.question.trim(),
        input.answer.trim()
    )
    .trim_start()
    .to_string()
}

/// Defaults of settings added after runs were first recorded (older runs load with them).
mod defaults {
    pub fn judge_train_pairs() -> usize {
        30_000
    }
    pub fn judge_test_pairs() -> usize {
        10_000
    }
    pub fn judge_level_split() -> f64 {
        0.8
    }
    pub fn judge_pairs_seed() -> u64 {
        42
    }
}

impl RunSettings {
    /// How pairs across judge score levels are drawn.
    pub fn level_draw(&self) -> LevelDraw {
        LevelDraw {
            train_pairs: self.judge_train_pairs,
            test_pairs: self.judge_test_pairs,
            split: self.judge_level_split,
            seed: self.judge_pairs_seed,
        }
    }

    /// The embeddings table this run uses, if any.
    pub fn load_embeddings(&self) -> anyhow::Result<Option<selector::EmbeddingTable>> {
        self.embeddings
            .as_deref()
            .map(|path| {
                selector::EmbeddingTable::load(path)
                    .with_context(|| format!("cannot load embeddings {}", path.display()))
            })
            .transpose()
    }

    pub fn from_config(s: &SelectorSettings) -> Self {
        Self {
            backend: s.backend,
            human_weight: s.human_weight,
            loss: s.loss,
            margin: s.margin,
            epochs: s.epochs,
            batch_size: s.batch_size,
            learning_rate: s.learning_rate,
            validation_fraction: s.validation_fraction,
            seed: s.seed,
            judge_min_gap: s.judge_min_gap,
            judge_pairs: s.judge_pairs,
            judge_train_pairs: s.judge_train_pairs,
            judge_test_pairs: s.judge_test_pairs,
            judge_level_split: s.judge_level_split,
            judge_pairs_seed: s.judge_pairs_seed,
            embeddings: None,
            paper_head: false,
            encoder: None,
            preset: None,
            paper_text: false,
            joined_vector: false,
            sigmoid_scores: false,
            mean_loss: false,
            human_train_pairs: None,
            fixed_epochs: false,
            hidden: None,
        }
    }

    /// The paper's setup (GUIDE section 1, step 6): Adam lr 1e-5, 6 epochs, batch 64, hinge
    /// margin 1 on sigmoid outputs with the mean weighted loss, judge pairs across score
    /// levels (30,000 / 10,000), the first 50 clinician pairs for training, the text input
    /// caption + mention + question + answer, and the 512-512-512 head when embeddings or an
    /// encoder are given. The mixture weight w stays the caller's (the paper swept it).
    pub fn apply_paper_preset(&mut self) {
        self.preset = Some("paper".to_string());
        self.learning_rate = 1e-5;
        self.epochs = 6;
        self.batch_size = 64;
        self.loss = PairLoss::Hinge;
        self.margin = 1.0;
        self.sigmoid_scores = true;
        self.mean_loss = true;
        self.judge_pairs = JudgePairs::AcrossLevels;
        self.judge_train_pairs = 30_000;
        self.judge_test_pairs = 10_000;
        self.judge_level_split = 0.8;
        self.human_train_pairs = Some(50);
        self.paper_text = true;
        self.joined_vector = true;
        self.fixed_epochs = true;
        self.hidden = Some(vec![512, 512, 512]);
        self.paper_head = self.embeddings.is_some() || self.encoder.is_some();
    }

    /// The selector inputs this run reads for `inputs` (the paper's joined text when set).
    pub fn prepare_inputs(&self, inputs: &mut [selector::AnswerInput]) {
        if self.paper_text {
            for input in inputs {
                input.answer = paper_text(input);
                input.question.clear();
                input.caption.clear();
                input.mentions.clear();
            }
        }
    }

    /// How the run's encoder vectors become model inputs. The paper's joined text reads its one
    /// vector (runs trained before `joined_vector` existed read the three they were trained on).
    pub fn encoder_inputs(&self) -> selector::EncoderInputs {
        match (self.paper_head, self.paper_text && self.joined_vector) {
            (true, true) => selector::EncoderInputs::Joined,
            (true, false) => selector::EncoderInputs::Concat,
            (false, _) => selector::EncoderInputs::Similarities,
        }
    }

    /// The embeddings of `inputs` this run reads: its encoder's cached vectors (the folder's
    /// content checked first), or its precomputed embeddings file, or none.
    pub fn embeddings_for(
        &self,
        ws: &Workspace,
        inputs: &[selector::AnswerInput],
    ) -> anyhow::Result<Option<selector::EmbeddingTable>> {
        match &self.encoder {
            Some(encoder) => {
                encoder.check_folder()?;
                encoded::table_from_cache(ws, encoder, inputs, self.encoder_inputs()).map(Some)
            }
            None => self.load_embeddings(),
        }
    }

    fn train_config(&self) -> anyhow::Result<TrainConfig> {
        let loss = self.loss;
        anyhow::ensure!(
            self.human_weight > 0.0,
            "the human weight must be positive, not {}",
            self.human_weight
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.validation_fraction),
            "validation_fraction must be in [0, 1), not {}",
            self.validation_fraction
        );
        let config = TrainConfig::new();
        let encoder = self.encoder.is_some();
        anyhow::ensure!(
            !(encoder && self.embeddings.is_some()),
            "a run reads either precomputed embeddings (--embeddings) or an encoder (--encoder), not both"
        );
        let config = match (self.embeddings.is_some() || encoder, self.paper_head) {
            (false, true) => {
                anyhow::bail!("the paper's head needs --embeddings FILE or --encoder DIR")
            }
            (true, true) => config.with_features(None).with_model(
                selector::model::SelectorModelConfig::paper_embedding_head(0),
            ),
            (true, false) if encoder => config.with_model(
                selector::model::SelectorModelConfig::new()
                    .with_precomputed_raw(Some(selector::encoder_features::raw_columns(
                        self.encoder.as_ref().is_some_and(|e| e.images),
                    )))
                    .with_precomputed_projection(Some(encoded::PROJECTION)),
            ),
            _ => match &self.hidden {
                Some(hidden) => {
                    let model = config.model.clone().with_hidden(hidden.clone());
                    config.with_model(model)
                }
                None => config,
            },
        };
        // With an encoder, training stops on held-out pairs; `epochs` is then a floor of the cap.
        let (epochs, early_stopping) = if encoder && !self.fixed_epochs {
            (
                self.epochs.max(encoded::MAX_EPOCHS),
                Some(encoded::PATIENCE),
            )
        } else {
            (self.epochs, None)
        };
        Ok(config
            .with_early_stopping(early_stopping)
            .with_epochs(epochs)
            .with_batch_size(self.batch_size)
            .with_lr(self.learning_rate)
            .with_seed(self.seed)
            .with_human_weight(self.human_weight as f32)
            .with_loss(loss)
            .with_margin(self.margin as f32)
            .with_sigmoid_scores(self.sigmoid_scores)
            .with_mean_loss(self.mean_loss)
            // A fixed number of clinician training pairs holds the rest out itself.
            .with_validation_share(if self.human_train_pairs.is_some() {
                0.0
            } else {
                self.validation_fraction
            }))
    }
}

/// What a run recorded: stored as the run's `metrics` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: i64,
    pub backend: String,
    pub human_pairs: usize,
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
    /// What the run was trained with (embeddings included, needed again to score).
    pub settings: RunSettings,
    pub seconds: f64,
}

/// Trains a selector on everything the workspace holds and records the run (not yet scored).
pub fn train(
    ws: &Workspace,
    settings: &RunSettings,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> anyhow::Result<(RunReport, TrainedSelector)> {
    let started = std::time::Instant::now();
    let backend = settings.backend;
    let config = settings.train_config()?;
    let all_humans = human_pairs(ws)?;
    // The paper's protocol: the first N clinician pairs train, the others are held out.
    let (humans, fixed_held_out) = match settings.human_train_pairs {
        Some(n) => {
            let mut train = all_humans;
            let rest = train.split_off(n.min(train.len()));
            (train, Some(rest))
        }
        None => (all_humans, None),
    };
    let within = if settings.judge_pairs.within_round() {
        judge_pairs(ws, settings.judge_min_gap)?
    } else {
        Vec::new()
    };
    let levels = if settings.judge_pairs.across_levels() {
        judge_level_pairs(ws, &settings.level_draw())?
    } else {
        LevelPairs::default()
    };
    let mut judges = within.clone();
    judges.extend(levels.train.iter().cloned());
    anyhow::ensure!(
        !humans.is_empty() || !judges.is_empty(),
        "no preference pairs yet: decide some answers (✓/✗ or a preference) or import judge scores{}",
        if settings.judge_pairs.across_levels() && levels.levels < 2 {
            format!(
                " (judge pairs across levels need first-round judge scores at two levels or more; found {})",
                levels.levels
            )
        } else {
            String::new()
        }
    );
    let mut all: Vec<PreferencePair> = humans.clone();
    all.extend(judges.iter().cloned());
    let mut used: HashSet<i64> = all
        .iter()
        .chain(&levels.test)
        .chain(fixed_held_out.iter().flatten())
        .flat_map(|p| [p.winner, p.loser])
        .collect();
    if settings.encoder.is_some() {
        // Each answer's round-mates, for the answer · other answers similarity.
        used.extend(ws.round_mates_of(&used)?);
    }
    let mut index = answer_inputs_for(ws, &used)?;
    settings.prepare_inputs(&mut index.inputs);

    // The split the trainer makes internally, reproduced to name the held-out figures.
    let figure = |id: i64| index.figure_of(id).unwrap_or_default();
    let figures: Vec<&str> = all.iter().map(|p| figure(p.winner)).collect();
    let (train_idx, val_idx) =
        selector::split_by_figure(&figures, config.validation_share, settings.seed);
    let mut held_out: HashSet<String> = val_idx.iter().map(|&i| figures[i].to_string()).collect();

    let embeddings = settings.embeddings_for(ws, &index.inputs)?;
    let data = TrainData {
        answers: &index.inputs,
        pairs: &all,
        embeddings: embeddings.as_ref(),
    };
    let trained = selector::train_on(backend, data, &config, progress, cancel)?;
    let held_out_humans: Vec<PreferencePair> = match &fixed_held_out {
        Some(rest) => {
            held_out.extend(rest.iter().map(|p| figure(p.winner).to_string()));
            rest.clone()
        }
        None => humans
            .iter()
            .filter(|p| held_out.contains(figure(p.winner)))
            .cloned()
            .collect(),
    };
    let validation = if held_out_humans.is_empty() {
        None
    } else {
        Some(trained.evaluate(&index.inputs, &held_out_humans, embeddings.as_ref())?)
    };
    let judge_test = if levels.test.is_empty() {
        None
    } else {
        Some(trained.evaluate(&index.inputs, &levels.test, embeddings.as_ref())?)
    };

    let config_json = serde_json::to_string(settings)?;
    let run_id = ws.create_selector_run(backend.name(), &config_json, None, None)?;
    // Stored relative to the workspace, so a moved or copied workspace still finds it.
    let checkpoint = PathBuf::from("selector").join(format!("run-{run_id}"));
    let checkpoint_dir = ws.dir().join(&checkpoint);
    trained
        .save(&checkpoint_dir)
        .with_context(|| format!("cannot save the selector to {}", checkpoint_dir.display()))?;
    let mut held_out_figures: Vec<String> = held_out.into_iter().collect();
    held_out_figures.sort();
    let report = RunReport {
        run_id,
        backend: backend.name().to_string(),
        // Every clinician pair in force, held-out ones included (as `stats` counts them).
        human_pairs: humans.len() + fixed_held_out.as_ref().map_or(0, Vec::len),
        judge_pairs: judges.len(),
        judge_pairs_within_round: within.len(),
        judge_pairs_across_levels: levels.train.len(),
        judge_test_pairs: levels.test.len(),
        judge_test,
        train_pairs: train_idx.len(),
        held_out_human_pairs: held_out_humans.len(),
        validation,
        held_out_figures,
        held_out_pairs: fixed_held_out
            .iter()
            .flatten()
            .map(|p| (p.winner, p.loser))
            .collect(),
        checkpoint: checkpoint.clone(),
        settings: settings.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    ws.finish_selector_run(
        run_id,
        &serde_json::to_string(&report)?,
        &checkpoint.to_string_lossy(),
    )?;
    Ok((report, trained))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> selector::AnswerInput {
        selector::AnswerInput {
            answer_id: 1,
            figure_key: "f".into(),
            caption: "Axial CT of the chest. ".into(),
            mentions: vec!["A nodule is seen (Fig. 2).".into(), " ".into()],
            question: "Where is the nodule?".into(),
            answer: "In the right upper lobe.".into(),
            round_position: 0,
            image_path: None,
            figure_stats: Default::default(),
        }
    }

    #[test]
    fn the_papers_text_joins_caption_mentions_question_and_answer() {
        assert_eq!(
            paper_text(&input()),
            "Axial CT of the chest. A nodule is seen (Fig. 2). Question: Where is the nodule? Answer: In the right upper lobe."
        );
        let bare = selector::AnswerInput {
            caption: String::new(),
            mentions: Vec::new(),
            ..input()
        };
        assert_eq!(
            paper_text(&bare),
            "Question: Where is the nodule? Answer: In the right upper lobe."
        );
        let mut settings = RunSettings::from_config(&crate::config::Config::defaults().selector);
        let mut inputs = vec![input()];
        settings.prepare_inputs(&mut inputs);
        assert_eq!(inputs[0], input(), "only the paper's runs join the texts");
        settings.apply_paper_preset();
        settings.prepare_inputs(&mut inputs);
        assert_eq!(inputs[0].answer, paper_text(&input()));
        assert!(inputs[0].question.is_empty() && inputs[0].caption.is_empty());
    }

    #[test]
    fn the_paper_preset_sets_the_papers_training_and_keeps_w() {
        let mut settings = RunSettings::from_config(&crate::config::Config::defaults().selector);
        settings.human_weight = 300.0;
        settings.apply_paper_preset();
        assert_eq!(settings.learning_rate, 1e-5);
        assert_eq!((settings.epochs, settings.batch_size), (6, 64));
        assert_eq!((settings.loss, settings.margin), (PairLoss::Hinge, 1.0));
        assert!(settings.sigmoid_scores && settings.mean_loss && settings.fixed_epochs);
        assert_eq!(settings.judge_pairs, JudgePairs::AcrossLevels);
        assert_eq!(
            (settings.judge_train_pairs, settings.judge_test_pairs),
            (30_000, 10_000)
        );
        assert_eq!(settings.human_train_pairs, Some(50));
        assert_eq!(settings.hidden, Some(vec![512, 512, 512]));
        assert!(!settings.paper_head, "no embeddings: the built-in features");
        let mut encoded = settings.clone();
        encoded.paper_head = true;
        assert_eq!(encoded.encoder_inputs(), selector::EncoderInputs::Joined);
        // A run recorded before the joined vector existed reads the three it was trained on.
        let mut json = serde_json::to_value(&encoded).unwrap();
        json.as_object_mut().unwrap().remove("joined_vector");
        let old: RunSettings = serde_json::from_value(json).unwrap();
        assert_eq!(old.encoder_inputs(), selector::EncoderInputs::Concat);
        assert_eq!(settings.human_weight, 300.0);
        let config = settings.train_config().unwrap();
        assert_eq!(config.validation_share, 0.0, "the first 50 pairs split");
        assert!(config.sigmoid_scores && config.mean_loss);
        assert_eq!(config.model.hidden, vec![512, 512, 512]);
        assert_eq!(config.early_stopping, None);
        assert_eq!(
            "first-round".parse::<SampleScore>().unwrap(),
            SampleScore::FirstRound
        );
    }
}
