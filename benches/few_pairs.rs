//! How many clinician pairs does the selector need? On the real qa50 fixture (../shared/fixtures)
//! with all-MiniLM-L6-v2's cached vectors (`VITAL_TEST_MINILM`): the clinician-style pairs of
//! tests/integration/quality_data.rs, split by figure (half the figures held out, seeded), the
//! training side cut to its first 10, 20 and 50 pairs (in a seeded order) or kept whole. Each
//! model trains on exactly those pairs and is measured on the same held-out pairs, beside the
//! zero-shot signals it has:
//!
//! * `signals`: the few-pairs head (`--head signals`): a regularised logistic regression on the
//!   encoder's signals that starts from cos(question, answer);
//! * `full`: the full encoder model (`--head full`: similarities, a projection of the answer
//!   vector, the built-in features, an MLP);
//! * `cos(q,a)`: the encoder's cosine alone; `LR`: a plain L2-regularised logistic regression on
//!   [cos(q,a), cos(caption,a), ln(1 + words)], fitted here by gradient descent (the reference
//!   the issue names); `length`, `overlap`: the answer-length and word-overlap rules.
//!
//! Run: `VITAL_TEST_MINILM=/path/to/all-MiniLM-L6-v2 cargo bench --profile dev --bench few_pairs`
//! (the dev profile builds in minutes; the numbers are quality, not speed).

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector::{
    split_by_figure, train_on, AnswerInput, EncoderInputs, Metrics, PreferencePair, TrainData,
};
use vital::selector_runs::{self, baselines, encoded, Head, RunSettings};
use vital::stable::SplitMix64;
use vital::store::Workspace;

const SIZES: [Option<usize>; 4] = [Some(10), Some(20), Some(50), None];
const SEEDS: [u64; 3] = [42, 7, 1234];

fn metrics(pairs: &[PreferencePair], score: &HashMap<i64, f32>) -> Metrics {
    let scored: Vec<(f32, f32)> = pairs
        .iter()
        .map(|p| (score[&p.winner], score[&p.loser]))
        .collect();
    Metrics::from_pairs(&scored)
}

/// Trains `settings`' model on `train` and scores every input.
fn trained_scores(
    ws: &Workspace,
    settings: &RunSettings,
    inputs: &[AnswerInput],
    train: &[PreferencePair],
) -> anyhow::Result<HashMap<i64, f32>> {
    let encoder = settings.encoder.as_ref().unwrap();
    let table = encoded::table_from_cache(ws, encoder, inputs, settings.encoder_inputs())?;
    // The pairs given are the training pairs: nothing more is held out inside.
    let config = settings.train_config()?.with_validation_share(0.0);
    let data = TrainData {
        answers: inputs,
        pairs: train,
        embeddings: Some(&table),
    };
    let selector = train_on(
        settings.backend,
        data,
        &config,
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    let scores = selector.score_with(inputs, Some(&table))?;
    Ok(inputs.iter().map(|a| a.answer_id).zip(scores).collect())
}

/// A plain logistic regression on standardised [cos(q,a), cos(caption,a), ln(1 + words)] over
/// the pair differences, L2 1e-2, full-batch gradient descent.
fn logistic_regression(
    signals: &HashMap<i64, [f32; 3]>,
    train: &[PreferencePair],
) -> HashMap<i64, f32> {
    let rows: Vec<[f32; 3]> = train
        .iter()
        .flat_map(|p| [signals[&p.winner], signals[&p.loser]])
        .collect();
    let mut mean = [0f64; 3];
    let mut std = [0f64; 3];
    for c in 0..3 {
        mean[c] = rows.iter().map(|r| f64::from(r[c])).sum::<f64>() / rows.len() as f64;
        let var = rows
            .iter()
            .map(|r| (f64::from(r[c]) - mean[c]).powi(2))
            .sum::<f64>()
            / rows.len() as f64;
        std[c] = var.sqrt().max(1e-6);
    }
    let z = |r: &[f32; 3]| -> [f64; 3] { [0, 1, 2].map(|c| (f64::from(r[c]) - mean[c]) / std[c]) };
    let mut w = [0f64; 3];
    for _ in 0..2000 {
        let mut grad = w.map(|wi| 1e-2 * wi);
        for p in train {
            let (a, b) = (z(&signals[&p.winner]), z(&signals[&p.loser]));
            let d: [f64; 3] = [0, 1, 2].map(|c| a[c] - b[c]);
            let margin: f64 = (0..3).map(|c| w[c] * d[c]).sum();
            let g = -1.0 / (1.0 + margin.exp()); // d/dm of ln(1 + e^-m)
            for c in 0..3 {
                grad[c] += g * d[c] / train.len() as f64;
            }
        }
        for c in 0..3 {
            w[c] -= 0.5 * grad[c];
        }
    }
    signals
        .iter()
        .map(|(&id, r)| {
            let x = z(r);
            (id, (0..3).map(|c| w[c] * x[c]).sum::<f64>() as f32)
        })
        .collect()
}

fn cell(m: &Metrics) -> String {
    format!("{:.3} / {:.3}", m.alignment_rate, m.auc)
}

fn main() -> anyhow::Result<()> {
    let Some((fixture, minilm)) = quality_data::qa50_and_minilm() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let candidates = dir.path().join("qa50_pairs.jsonl");
    quality_data::write_candidates(&fixture, &candidates);
    let mut ws = Workspace::open(dir.path())?;
    import_file(&mut ws, &candidates, &ImportOptions::default(), &|_, _| {})?;
    quality_data::record_verdicts(&ws);
    let folder = std::path::absolute(minilm)?;
    quality_data::embed_texts(&ws, &folder)?;
    let encoder = vital::embed::EncoderRef::of_folder(&folder)?;

    let all = selector_runs::human_pairs(&ws)?;
    let ids = all.iter().flat_map(|p| [p.winner, p.loser]).collect();
    let index = selector_runs::answer_inputs_for(&ws, &ids)?;
    let inputs = index.inputs.clone();
    // cos(q,a), cos(caption,a), ln(1 + words) of every answer, from the signals table.
    let signal_rows = encoded::table_from_cache(&ws, &encoder, &inputs, EncoderInputs::Signals)?;
    let signals: HashMap<i64, [f32; 3]> = inputs
        .iter()
        .map(|a| {
            let r = signal_rows.get(a.answer_id).unwrap();
            (a.answer_id, [r[0], r[1], r[3]])
        })
        .collect();
    let cosine: HashMap<i64, f32> = signals.iter().map(|(&id, r)| (id, r[0])).collect();
    let length: HashMap<i64, f32> = inputs
        .iter()
        .map(|a| (a.answer_id, baselines::answer_length(a)))
        .collect();
    let overlap: HashMap<i64, f32> = inputs
        .iter()
        .map(|a| (a.answer_id, baselines::word_overlap(a)))
        .collect();

    println!("alignment / AUC on the held-out figures' clinician pairs (qa50, all-MiniLM-L6-v2)");
    println!(
        "| train pairs | seed | held-out | signals | full | cos(q,a) | LR | length | overlap |"
    );
    println!("|---:|---:|---:|---|---|---|---|---|---|");
    for size in SIZES {
        for seed in SEEDS {
            let figures: Vec<&str> = all
                .iter()
                .map(|p| index.figure_of(p.winner).unwrap())
                .collect();
            let (train_idx, test_idx) = split_by_figure(&figures, 0.5, seed);
            let mut train: Vec<PreferencePair> =
                train_idx.iter().map(|&i| all[i].clone()).collect();
            let held_out: Vec<PreferencePair> = test_idx.iter().map(|&i| all[i].clone()).collect();
            // A seeded order, then the first n: a clinician's first n decisions.
            let mut rng = SplitMix64::new(seed ^ 0x5eed);
            for i in (1..train.len()).rev() {
                train.swap(i, rng.below(i + 1));
            }
            if let Some(n) = size {
                train.truncate(n);
            }
            let mut settings = RunSettings::from_config(&Config::defaults().selector);
            settings.seed = seed;
            settings.encoder = Some(encoder.clone());
            let mut row = Vec::new();
            for head in [Head::Signals, Head::Full] {
                settings.head = head;
                let scores = trained_scores(&ws, &settings, &inputs, &train)?;
                row.push(cell(&metrics(&held_out, &scores)));
            }
            for scores in [
                &cosine,
                &logistic_regression(&signals, &train),
                &length,
                &overlap,
            ] {
                row.push(cell(&metrics(&held_out, scores)));
            }
            println!(
                "| {} | {seed} | {} | {} |",
                size.map_or_else(|| format!("all ({})", train.len()), |n| n.to_string()),
                held_out.len(),
                row.join(" | ")
            );
        }
    }
    Ok(())
}
