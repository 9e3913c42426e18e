//! The settings of one selector run, resolved from config, preset and flags, and saved with the
//! run so that scoring and evaluation read the same inputs again.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{encoded, JudgePairs, LevelDraw, SelectorSettings};
use crate::selector::{self, BackendKind, PairLoss, TrainConfig};
use crate::store::Workspace;

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
    /// With an encoder: which model trains. A recorded run holds the resolved choice (never
    /// `auto`); runs recorded before the choice existed trained the full model.
    #[serde(default = "defaults::full_head", with = "crate::as_text")]
    pub head: Head,
}

/// With an encoder, the model a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Chosen per run by validation on the run's training pairs, folds by figure (see
    /// `choose.rs`): the signals head, the full model, or a zero-shot signal.
    Auto,
    /// A linear head on the encoder's zero-shot signals, starting from cos(question, answer).
    Signals,
    /// The same linear head on the same (standardised) signals starting from zero instead of a
    /// prior: a plain L2-regularised logistic regression. `auto` takes it where cos(question,
    /// answer) orders the validation pairs no better than chance (a prior pointing the wrong
    /// way, as on GPT-4 judge preferences, which favour long answers that stray from the
    /// question's words).
    Linear,
    /// Similarities, a projection of the answer vector and the built-in features into an MLP.
    Full,
    /// Zero-shot signal N of the signals table as it is (0 = cos(question, answer)): what `auto`
    /// falls back on when no trained head validates above it. An untrained signals head whose
    /// prior is that column.
    Signal(usize),
}

/// The signals head's L2 penalty on its weights (Adam's weight decay), step size and epochs:
/// on a task where one signal separates the answers, 10 pairs teach it (see the selector's
/// `ten_pairs_teach_the_signals_head…` test).
const SIGNALS_L2: f32 = 1e-2;
const SIGNALS_LR: f64 = 5e-2;
const SIGNALS_EPOCHS: usize = 200;

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Head::Auto => f.write_str("auto"),
            Head::Signals => f.write_str("signals"),
            Head::Linear => f.write_str("linear"),
            Head::Full => f.write_str("full"),
            Head::Signal(k) => write!(f, "signal-{k}"),
        }
    }
}

impl std::str::FromStr for Head {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Head::Auto),
            "signals" => Ok(Head::Signals),
            "linear" => Ok(Head::Linear),
            "full" => Ok(Head::Full),
            other => match other.strip_prefix("signal-").map(str::parse::<usize>) {
                Some(Ok(k)) if k < 8 => Ok(Head::Signal(k)),
                _ => anyhow::bail!(
                    "unknown head `{other}`: expected auto, signals, linear, full or signal-N (N < 8)"
                ),
            },
        }
    }
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
    pub fn full_head() -> super::Head {
        super::Head::Full
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
            head: s.head,
        }
    }

    /// Whether the run trains the few-pairs signals head (an encoder, not the paper's head).
    pub fn signals_head(&self) -> bool {
        self.encoder.is_some()
            && !self.paper_head
            && matches!(self.head, Head::Signals | Head::Linear | Head::Signal(_))
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
            (false, _) if self.signals_head() => selector::EncoderInputs::Signals,
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

    /// The trainer's configuration for these settings (checked: a bad setting is an error).
    pub fn train_config(&self) -> anyhow::Result<TrainConfig> {
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
            // Few pairs: a linear head on the signals, from cos(question, answer), its
            // weights pulled back towards that prior (L2).
            (true, false) if self.signals_head() => config
                .with_features(None)
                .with_model(match self.head {
                    Head::Signal(k) => selector::model::SelectorModelConfig::signals_head()
                        .with_prior_column(Some(k)),
                    Head::Linear => selector::model::SelectorModelConfig::linear_head(),
                    _ => selector::model::SelectorModelConfig::signals_head(),
                })
                .with_optimizer(burn::optim::AdamConfig::new().with_weight_decay(Some(
                    burn::optim::decay::WeightDecayConfig::new(SIGNALS_L2),
                ))),
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
        // The signals head is a regularised logistic regression: a fixed, longer schedule at a
        // larger step (a handful of weights; the L2 penalty, not early stopping, holds it).
        if matches!(self.head, Head::Signal(_)) && self.signals_head() {
            // The signal as it is: one pass at step 0 leaves the head at its prior.
            return Ok(config
                .with_early_stopping(None)
                .with_epochs(1)
                .with_batch_size(self.batch_size)
                .with_lr(0.0)
                .with_seed(self.seed)
                .with_human_weight(self.human_weight as f32)
                .with_loss(PairLoss::Logistic)
                .with_validation_share(if self.human_train_pairs.is_some() {
                    0.0
                } else {
                    self.validation_fraction
                }));
        }
        if self.signals_head() {
            let epochs = if self.fixed_epochs {
                self.epochs
            } else {
                SIGNALS_EPOCHS
            };
            return Ok(config
                .with_early_stopping(None)
                .with_epochs(epochs)
                .with_batch_size(self.batch_size)
                .with_lr(SIGNALS_LR)
                .with_seed(self.seed)
                .with_human_weight(self.human_weight as f32)
                .with_loss(PairLoss::Logistic)
                .with_margin(self.margin as f32)
                .with_validation_share(if self.human_train_pairs.is_some() {
                    0.0
                } else {
                    self.validation_fraction
                }));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector_runs::SampleScore;

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
