//! Stage 3b of a run with an encoder and `head = auto`: the model chosen by measurement. The run's
//! training pairs (what the run's own validation split leaves) are cut into folds by figure; each
//! candidate — the signals head, the full model, and each of the encoder's zero-shot signals
//! taken as it is — trains on all folds but one and is measured on the one left, fold by fold.
//! The best (alignment, then AUC, over every fold's pairs) trains the run. Zero-shot signals are
//! candidates so that a run never ranks its own validation pairs below the best of them.
//!
//! Measured on clinician pairs when the run has any (judge pairs then only train: the
//! clinicians are who the selection must agree with), on judge pairs otherwise. Below two
//! training figures nothing can be measured: the signals head (the safe choice for few pairs).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::inputs::{gather_inputs, RunInputs};
use super::pairs::RunPairs;
use super::run_settings::Head;
use super::RunSettings;
use crate::selector::{self, Cancelled, Metrics, PairSource, PreferencePair, TrainData};
use crate::stable::SplitMix64;
use crate::store::Workspace;

/// Folds the training figures are cut into (fewer when there are fewer figures).
pub const FOLDS: usize = 3;

/// One candidate's validation figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadCandidate {
    /// `signals`, `full`, or `signal-N` (zero-shot signal N, e.g. `signal-0` = cos(q, a)).
    pub head: String,
    /// What the head is, in words.
    pub about: String,
    /// Validation pairs ordered right / all (over every fold).
    pub alignment_rate: f64,
    /// The mean of the folds' AUCs, each weighed by its pairs.
    pub auc: f64,
    pub pairs: usize,
}

/// How `auto` chose the run's head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadChoice {
    /// Folds by figure the training pairs were cut into (0: too few figures to measure).
    pub folds: usize,
    /// `clinician` or `judge`: which pairs validated.
    pub measured_on: String,
    pub candidates: Vec<HeadCandidate>,
    /// The head that trains the run.
    pub chosen: String,
}

/// The names of the signals table's columns (see `EncoderInputs::Signals`), `None` for a column
/// that ranks nothing (the "has image" flag).
fn signal_names(width: usize) -> Vec<Option<&'static str>> {
    if width > selector::encoder_features::SIMILARITIES + 1 {
        vec![
            Some("cos(question, answer)"),
            Some("cos(caption, answer)"),
            Some("mean cos(answer, the round's other answers)"),
            None,
            Some("cos(image, answer)"),
            Some("cos(image, question)"),
            Some("ln(1 + answer words)"),
        ]
    } else {
        vec![
            Some("cos(question, answer)"),
            Some("cos(caption, answer)"),
            Some("mean cos(answer, the round's other answers)"),
            Some("ln(1 + answer words)"),
        ]
    }
}

/// The settings the run trains with (`auto` resolved), how it was chosen (when it was), and the
/// run's inputs for that head.
pub fn choose_head(
    ws: &Workspace,
    settings: &RunSettings,
    pairs: &RunPairs,
    cancel: &AtomicBool,
) -> anyhow::Result<(RunSettings, Option<HeadChoice>, RunInputs)> {
    let with_head = |head: Head| RunSettings {
        head,
        ..settings.clone()
    };
    if settings.head != Head::Auto {
        return Ok((settings.clone(), None, gather_inputs(ws, settings, pairs)?));
    }
    if settings.encoder.is_none() || settings.paper_head {
        // No encoder (or the paper's head): the built-in model, whatever the head says.
        let chosen = with_head(Head::Full);
        let inputs = gather_inputs(ws, &chosen, pairs)?;
        return Ok((chosen, None, inputs));
    }
    let signals = with_head(Head::Signals);
    let full = with_head(Head::Full);
    let signal_inputs = gather_inputs(ws, &signals, pairs)?;
    let full_inputs = gather_inputs(ws, &full, pairs)?;

    // The run's own training pairs: what fit's split by figure leaves (same share, same seed).
    let all = pairs.training();
    let figure_of = |p: &PreferencePair| {
        signal_inputs
            .index
            .figure_of(p.winner)
            .unwrap_or_default()
            .to_string()
    };
    let figures: Vec<String> = all.iter().map(figure_of).collect();
    let figure_refs: Vec<&str> = figures.iter().map(String::as_str).collect();
    let share = full.train_config()?.validation_share;
    let (train_idx, _) = selector::split_by_figure(&figure_refs, share, settings.seed);
    let training: Vec<(PreferencePair, &str)> = train_idx
        .iter()
        .map(|&i| (all[i].clone(), figure_refs[i]))
        .collect();
    let humans = training.iter().any(|(p, _)| p.source == PairSource::Human);
    let measured_on = if humans { "clinician" } else { "judge" };
    let folds = fold_figures(&training, settings.seed);
    let fold_count = folds.iter().copied().collect::<BTreeSet<usize>>().len();

    if fold_count < 2 {
        let choice = HeadChoice {
            folds: 0,
            measured_on: measured_on.to_string(),
            candidates: Vec::new(),
            chosen: Head::Signals.to_string(),
        };
        return Ok((signals, Some(choice), signal_inputs));
    }

    let signal_table = signal_inputs
        .embeddings
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the encoder gave no signals table"))?;
    let names = signal_names(signal_table.dim());
    let mut candidates: Vec<(Head, String, Tally)> = vec![
        (
            Head::Signals,
            "a linear head on the signals, from cos(question, answer)".to_string(),
            Tally::default(),
        ),
        (
            Head::Full,
            "similarities, a projection of the answer vector and the built-in features into an MLP"
                .to_string(),
            Tally::default(),
        ),
    ];
    for (k, name) in names.iter().enumerate() {
        if let Some(name) = name {
            candidates.push((
                Head::Signal(k),
                format!("{name}, zero-shot"),
                Tally::default(),
            ));
        }
    }

    for fold in 0..fold_count {
        let fit: Vec<PreferencePair> = training
            .iter()
            .zip(&folds)
            .filter(|(_, &f)| f != fold)
            .map(|((p, _), _)| p.clone())
            .collect();
        let check: Vec<PreferencePair> = training
            .iter()
            .zip(&folds)
            .filter(|((p, _), &f)| f == fold && (p.source == PairSource::Human) == humans)
            .map(|((p, _), _)| p.clone())
            .collect();
        if fit.is_empty() || check.is_empty() {
            continue;
        }
        for (head, _, tally) in &mut candidates {
            anyhow::ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
            let metrics = match *head {
                Head::Signal(k) => {
                    let scored: Vec<(f32, f32)> = check
                        .iter()
                        .map(|p| {
                            let at = |id: i64| signal_table.get(id).map_or(0.0, |row| row[k]);
                            (at(p.winner), at(p.loser))
                        })
                        .collect();
                    Metrics::from_pairs(&scored)
                }
                head => {
                    let (candidate, inputs) = match head {
                        Head::Full => (&full, &full_inputs),
                        _ => (&signals, &signal_inputs),
                    };
                    let config = candidate.train_config()?.with_validation_share(0.0);
                    let data = TrainData {
                        answers: &inputs.index.inputs,
                        pairs: &fit,
                        embeddings: inputs.embeddings.as_ref(),
                    };
                    let trained =
                        selector::train_on(settings.backend, data, &config, &mut |_| {}, cancel)?;
                    trained.evaluate(&inputs.index.inputs, &check, inputs.embeddings.as_ref())?
                }
            };
            tally.add(&metrics);
        }
    }

    let candidates: Vec<(Head, HeadCandidate)> = candidates
        .into_iter()
        .map(|(head, about, tally)| {
            let c = HeadCandidate {
                head: head.to_string(),
                about,
                alignment_rate: tally.alignment(),
                auc: tally.auc(),
                pairs: tally.pairs,
            };
            (head, c)
        })
        .collect();
    // The first of the best: trained heads come before the zero-shot signals, so a tie keeps the
    // model that learned.
    let mut best = 0;
    for (i, (_, c)) in candidates.iter().enumerate() {
        let b = &candidates[best].1;
        if (c.alignment_rate, c.auc) > (b.alignment_rate, b.auc) {
            best = i;
        }
    }
    let head = candidates[best].0;
    let choice = HeadChoice {
        folds: fold_count,
        measured_on: measured_on.to_string(),
        chosen: head.to_string(),
        candidates: candidates.into_iter().map(|(_, c)| c).collect(),
    };
    let (chosen, inputs) = match head {
        Head::Full => (full, full_inputs),
        head => (with_head(head), signal_inputs),
    };
    Ok((chosen, Some(choice), inputs))
}

/// The head `settings` (with `head = auto`) would choose for these training pairs, as a run
/// chooses it: for the benchmarks, which hold their own pairs out. With `validation_fraction = 0`
/// every pair given is a training pair.
pub fn choose_for_pairs(
    ws: &Workspace,
    settings: &RunSettings,
    humans: Vec<PreferencePair>,
    judges: Vec<PreferencePair>,
    cancel: &AtomicBool,
) -> anyhow::Result<(RunSettings, Option<HeadChoice>)> {
    let pairs = RunPairs {
        humans,
        within: judges,
        ..RunPairs::default()
    };
    let (settings, choice, _) = choose_head(ws, settings, &pairs, cancel)?;
    Ok((settings, choice))
}

/// The fold of each training pair: its figure's, figures shuffled (seeded) and dealt in turn.
fn fold_figures(training: &[(PreferencePair, &str)], seed: u64) -> Vec<usize> {
    let mut unique: Vec<&str> = training.iter().map(|(_, f)| *f).collect();
    unique.sort_unstable();
    unique.dedup();
    SplitMix64::new(seed ^ 0xf01d).shuffle(&mut unique);
    let folds = FOLDS.min(unique.len()).max(1);
    let fold_of: std::collections::HashMap<&str, usize> = unique
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, i % folds))
        .collect();
    training.iter().map(|(_, f)| fold_of[f]).collect()
}

/// Validation figures summed over folds.
#[derive(Debug, Default)]
struct Tally {
    right: f64,
    auc_sum: f64,
    pairs: usize,
}

impl Tally {
    fn add(&mut self, m: &Metrics) {
        self.right += m.alignment_rate * m.pairs as f64;
        self.auc_sum += m.auc * m.pairs as f64;
        self.pairs += m.pairs;
    }

    fn alignment(&self) -> f64 {
        if self.pairs == 0 {
            0.0
        } else {
            self.right / self.pairs as f64
        }
    }

    fn auc(&self) -> f64 {
        if self.pairs == 0 {
            0.0
        } else {
            self.auc_sum / self.pairs as f64
        }
    }
}
