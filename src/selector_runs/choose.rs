//! Stage 3b of a run with an encoder and `head = auto`: the model chosen by measurement. The run's
//! training pairs (what the run's own validation split leaves) are cut into folds by figure; each
//! candidate — the signals head, the same linear head without its prior, the full model, and
//! each of the encoder's zero-shot signals taken as it is — trains on all folds but one and is
//! measured on the one left, fold by fold. The signals head (or, where its prior cos(question,
//! answer) orders the validation pairs no better than chance, the head without the prior)
//! trains the run unless another candidate orders the validation pairs better beyond chance (McNemar's test on the pairs one orders right and the other wrong, z > 1.96; the
//! best such by alignment, then AUC), and a zero-shot signal replaces the choice when it beats it
//! beyond chance: a run never ranks its own validation pairs measurably below the best zero-shot
//! signal. (With 10 pairs a fold validates three or four: picking the plain best there swapped
//! the model on one pair's luck and lost 4–11 points of alignment on held-out qa50 figures.)
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
    /// The run's training pairs when the head was chosen (older records: 0).
    #[serde(default)]
    pub training_pairs: usize,
    /// The run whose choice this run reused without validating again (the review screen's
    /// background trainer, while the training pairs have grown less than half since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from_run: Option<i64>,
}

/// Training pairs must grow by this factor since a choice before a background run measures the
/// candidates again: validating trains each candidate once a fold (about seven models for one).
pub const REVALIDATE_GROWTH: f64 = 1.5;

/// A choice a later run may reuse instead of validating again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlierChoice {
    pub run_id: i64,
    /// The head chosen (never `auto`).
    pub head: Head,
    /// The training pairs it was chosen on.
    pub training_pairs: usize,
}

impl EarlierChoice {
    /// The choice a run measured (not one it reused), to be reused by the next runs.
    pub fn measured_by(report: &super::RunReport) -> Option<Self> {
        let choice = report.head_choice.as_ref()?;
        (choice.reused_from_run.is_none() && choice.folds > 0 && report.settings.head != Head::Auto)
            .then_some(EarlierChoice {
                run_id: report.run_id,
                head: report.settings.head,
                training_pairs: choice.training_pairs,
            })
    }

    /// Whether a run with `training_pairs` may reuse this choice.
    pub fn still_holds(&self, training_pairs: usize) -> bool {
        self.head != Head::Auto
            && (training_pairs as f64) < self.training_pairs as f64 * REVALIDATE_GROWTH
    }
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
    earlier: Option<EarlierChoice>,
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
    if let Some(earlier) = earlier.filter(|e| e.still_holds(training.len())) {
        let choice = HeadChoice {
            folds: 0,
            measured_on: measured_on.to_string(),
            candidates: Vec::new(),
            chosen: earlier.head.to_string(),
            training_pairs: training.len(),
            reused_from_run: Some(earlier.run_id),
        };
        let (chosen, inputs) = match earlier.head {
            Head::Full => (full, full_inputs),
            head => (with_head(head), signal_inputs),
        };
        return Ok((chosen, Some(choice), inputs));
    }
    let folds = fold_figures(&training, settings.seed);
    let fold_count = folds.iter().copied().collect::<BTreeSet<usize>>().len();

    if fold_count < 2 {
        let choice = HeadChoice {
            folds: 0,
            measured_on: measured_on.to_string(),
            candidates: Vec::new(),
            chosen: Head::Signals.to_string(),
            training_pairs: training.len(),
            reused_from_run: None,
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
            Head::Linear,
            "the same linear head on the signals from zero (a regularised logistic regression)"
                .to_string(),
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
            let scored: Vec<(f32, f32)> = match *head {
                Head::Signal(k) => check
                    .iter()
                    .map(|p| {
                        let at = |id: i64| signal_table.get(id).map_or(0.0, |row| row[k]);
                        (at(p.winner), at(p.loser))
                    })
                    .collect(),
                head => {
                    let linear = with_head(Head::Linear);
                    let (candidate, inputs) = match head {
                        Head::Full => (&full, &full_inputs),
                        Head::Linear => (&linear, &signal_inputs),
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
                    let answers = &inputs.index.inputs;
                    let scores = trained.score_with(answers, inputs.embeddings.as_ref())?;
                    let by_id: std::collections::HashMap<i64, f32> =
                        answers.iter().map(|a| a.answer_id).zip(scores).collect();
                    let at = |id: i64| by_id.get(&id).copied().unwrap_or(0.0);
                    check.iter().map(|p| (at(p.winner), at(p.loser))).collect()
                }
            };
            tally.add(&scored);
        }
    }

    let rights: Vec<Vec<bool>> = candidates.iter().map(|(_, _, t)| t.right.clone()).collect();
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
    // The base is the signals head (index 0), or the same head without its prior (index 1)
    // when the prior, cos(question, answer), orders the validation pairs no better than chance:
    // a prior pointing the wrong way is a handicap the L2 pull keeps (judge preferences for
    // long answers: 0.43-0.46 alignment, README "How many decisions?").
    let figure = |i: usize| (candidates[i].1.alignment_rate, candidates[i].1.auc);
    let prior_useless = candidates
        .iter()
        .position(|(h, _)| *h == Head::Signal(0))
        .is_some_and(|i| candidates[i].1.alignment_rate <= 0.5);
    let base = usize::from(prior_useless);
    // The base unless a candidate orders the validation pairs better beyond chance (McNemar's
    // test on the pairs one orders right and the other wrong, z > 1.96): with few pairs a fold
    // holds a handful, and one pair's luck must not swap the model.
    let mut best = base;
    for i in 0..candidates.len() {
        if i != base && beats(&rights[i], &rights[base]) && figure(i) > figure(best) {
            best = i;
        }
    }
    // Never below the best zero-shot signal beyond chance either.
    let zero_shot = (0..candidates.len())
        .filter(|&i| matches!(candidates[i].0, Head::Signal(_)))
        .max_by(|&a, &b| {
            figure(a)
                .partial_cmp(&figure(b))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.cmp(&a))
        });
    if let Some(z) = zero_shot {
        if beats(&rights[z], &rights[best]) {
            best = z;
        }
    }
    let head = candidates[best].0;
    let choice = HeadChoice {
        folds: fold_count,
        measured_on: measured_on.to_string(),
        chosen: head.to_string(),
        candidates: candidates.into_iter().map(|(_, c)| c).collect(),
        training_pairs: training.len(),
        reused_from_run: None,
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
    let (settings, choice, _) = choose_head(ws, settings, &pairs, None, cancel)?;
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

/// Whether the scorer that orders `a` of the validation pairs right (the same pairs, in the
/// same order as `b`) does better than `b` beyond chance: McNemar's test, z > 1.96 on the pairs
/// one of the two orders right and the other wrong.
pub fn beats(a: &[bool], b: &[bool]) -> bool {
    let (mut wins, mut losses) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        match (x, y) {
            (true, false) => wins += 1,
            (false, true) => losses += 1,
            _ => {}
        }
    }
    wins > losses && (wins - losses) as f64 > 1.96 * ((wins + losses) as f64).sqrt()
}

/// Validation figures summed over folds.
#[derive(Debug, Default)]
struct Tally {
    /// Each validation pair, in fold order: ordered right (ties are misses)?
    right: Vec<bool>,
    auc_sum: f64,
    pairs: usize,
}

impl Tally {
    fn add(&mut self, scored: &[(f32, f32)]) {
        let m = Metrics::from_pairs(scored);
        self.right.extend(scored.iter().map(|(w, l)| w > l));
        self.auc_sum += m.auc * m.pairs as f64;
        self.pairs += m.pairs;
    }

    fn alignment(&self) -> f64 {
        if self.pairs == 0 {
            0.0
        } else {
            self.right.iter().filter(|&&r| r).count() as f64 / self.pairs as f64
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_beats_another_only_beyond_chance_on_the_pairs_they_order_differently() {
        let pairs = |right: usize, n: usize| -> Vec<bool> { (0..n).map(|i| i < right).collect() };
        // 10 validation pairs: 10 right against 8 is two pairs of luck, not a better model.
        assert!(!beats(&pairs(10, 10), &pairs(8, 10)));
        // 4 discordant pairs all one way: z = 4 / 2 = 2 > 1.96.
        assert!(beats(&pairs(10, 10), &pairs(6, 10)));
        assert!(!beats(&pairs(6, 10), &pairs(10, 10)), "worse never beats");
        // 100 pairs: 60 against 40, all 20 discordant one way, clearly better.
        assert!(beats(&pairs(60, 100), &pairs(40, 100)));
        // Same count right, different pairs: a draw.
        let a: Vec<bool> = (0..20).map(|i: usize| i.is_multiple_of(2)).collect();
        let b: Vec<bool> = (0..20).map(|i: usize| !i.is_multiple_of(2)).collect();
        assert!(!beats(&a, &b) && !beats(&b, &a));
    }

    #[test]
    fn a_background_run_reuses_the_last_choice_until_the_pairs_grow_by_half() {
        let earlier = EarlierChoice {
            run_id: 7,
            head: Head::Linear,
            training_pairs: 100,
        };
        assert!(earlier.still_holds(100) && earlier.still_holds(149));
        assert!(
            !earlier.still_holds(150),
            "half again as many pairs: measured again"
        );
        let unresolved = EarlierChoice {
            head: Head::Auto,
            ..earlier
        };
        assert!(!unresolved.still_holds(100), "auto is not a choice");
        assert_eq!("linear".parse::<Head>().unwrap(), Head::Linear);
        assert_eq!(Head::Linear.to_string(), "linear");
    }
}
