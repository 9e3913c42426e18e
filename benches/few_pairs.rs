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
//! * `auto`: what `head = auto` (the default) trains: the head chosen by validation on the
//!   training pairs (folds by figure; src/selector_runs/choose.rs), the choice in brackets.
//!
//! Two more cases, on the same workspace and encoder:
//!
//! * one-answer: the same qa50 figures made one-answer (each question keeps either its real
//!   answer, accepted, or its ✗ answer, rejected, alternately) under another reviewer; their
//!   verdicts pair across the questions of a figure (`same-figure`). The figures held out are
//!   those of the clinician case (same seed); measured on the clinician case's held-out pairs
//!   and on the held-out figures' one-answer pairs. `same-collection` pairs every ✓ with every ✗
//!   of the training figures instead, the alternative pairing measured beside it.
//! * judge-only: real GPT-4 judge preferences (benches/data/vicuna_gpt4_reviews.jsonl: 80 Vicuna
//!   questions, five assistants, GPT-4's scores; a review's higher score wins, ties dropped),
//!   split by question (half held out, seeded), trained as judge pairs only.
//!
//! Run: `VITAL_TEST_MINILM=/path/to/all-MiniLM-L6-v2 cargo bench --profile dev --bench few_pairs`
//! (the dev profile builds in minutes; the numbers are quality, not speed). `FEW_PAIRS_ONLY` =
//! `clinician`, `one-answer` or `judge` runs one case.

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde_json::{json, Value};

use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector::{
    split_by_figure, train_on, AnswerInput, EncoderInputs, Metrics, PairSource, PreferencePair,
    TrainData,
};
use vital::selector_runs::{self, baselines, encoded, Head, RunSettings};
use vital::stable::SplitMix64;
use vital::store::{DecisionKind, NewDecision, Workspace};

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

/// A table row's cells after its first columns: each of `heads` trained on `train`, then `auto`
/// (its choice in brackets), then `baselines` (scores fitted or read beforehand), each measured
/// on `held_out`.
fn row_of(
    ws: &Workspace,
    settings: &mut RunSettings,
    inputs: &[AnswerInput],
    train: &[PreferencePair],
    held_out: &[PreferencePair],
    heads: &[Head],
    baselines: &[HashMap<i64, f32>],
) -> anyhow::Result<Vec<String>> {
    let mut row = Vec::new();
    for &head in heads {
        settings.head = head;
        let scores = trained_scores(ws, settings, inputs, train)?;
        row.push(cell(&metrics(held_out, &scores)));
    }
    let (auto, chosen) = auto_scores(ws, settings, inputs, train)?;
    row.push(format!("{} ({chosen})", cell(&metrics(held_out, &auto))));
    for scores in baselines {
        row.push(cell(&metrics(held_out, scores)));
    }
    Ok(row)
}

fn cell(m: &Metrics) -> String {
    format!("{:.3} / {:.3}", m.alignment_rate, m.auc)
}

/// `head = auto` on `train`: the head the run would choose, trained, and the choice's name.
fn auto_scores(
    ws: &Workspace,
    settings: &RunSettings,
    inputs: &[AnswerInput],
    train: &[PreferencePair],
) -> anyhow::Result<(HashMap<i64, f32>, String)> {
    let mut auto = settings.clone();
    auto.head = Head::Auto;
    auto.validation_fraction = 0.0;
    let (humans, judges): (Vec<PreferencePair>, Vec<PreferencePair>) = train
        .iter()
        .cloned()
        .partition(|p| p.source == PairSource::Human);
    let started = std::time::Instant::now();
    let (chosen, choice) =
        selector_runs::choose_for_pairs(ws, &auto, humans, judges, &AtomicBool::new(false))?;
    let choosing = started.elapsed().as_secs_f64();
    let name = choice.map_or_else(|| chosen.head.to_string(), |c| c.chosen);
    let started = std::time::Instant::now();
    let scores = trained_scores(ws, &chosen, inputs, train)?;
    // What auto's validation adds to a run (the review screen's background trainer runs it
    // every few decisions): the choice against the one training it leads to.
    eprintln!(
        "timing: {} training pairs, auto's choice ({name}) {choosing:.2} s, then the run's training {:.2} s",
        train.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((scores, name))
}

/// The qa50 candidates made one-answer: each round keeps its real answer (✓) or its ✗ answer,
/// alternately, under the image `one/IMAGE` (a figure of its own: no round-mates shared with the
/// two-answer copy) and the id `one-ID`. Returns (sample id, round, accepted) per round kept.
fn write_one_answer(two_answer: &Path, out: &Path) -> anyhow::Result<Vec<(String, usize, bool)>> {
    let mut text = String::new();
    let mut verdicts = Vec::new();
    let mut k = 0usize;
    for line in std::fs::read_to_string(two_answer)?.lines() {
        let mut record: Value = serde_json::from_str(line)?;
        let id = format!("one-{}", record["id"].as_str().unwrap());
        let image = format!("one/{}", record["image"].as_str().unwrap_or(&id));
        let rounds: Vec<Value> = record["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(r, round)| {
                let accepted = k.is_multiple_of(2);
                k += 1;
                verdicts.push((id.clone(), r, accepted));
                let answer = &round["answers"][usize::from(!accepted)];
                json!({"question": round["question"], "answers": [answer]})
            })
            .collect();
        record["id"] = json!(id);
        record["image"] = json!(image);
        record["rounds"] = json!(rounds);
        text.push_str(&record.to_string());
        text.push('\n');
    }
    std::fs::write(out, text)?;
    Ok(verdicts)
}

/// Records `reviewer`'s verdict on the one answer of each round listed.
fn record_one_answer(
    ws: &Workspace,
    reviewer: &str,
    verdicts: &[(String, usize, bool)],
) -> anyhow::Result<()> {
    for (id, r, accepted) in verdicts {
        let s = ws.load_sample_by_ext_id(id)?.unwrap();
        let decision = NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[*r]),
            answer_id: Some(s.answer_ids[*r][0]),
            kind: if *accepted {
                DecisionKind::Accept
            } else {
                DecisionKind::Reject
            },
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        ws.record(reviewer, &decision)?;
    }
    Ok(())
}

/// The Vicuna questions as candidates (one round of five answers each; no caption), and each
/// review's preference as (sample id, winner position, loser position); ties dropped.
fn write_vicuna(out: &Path) -> anyhow::Result<Vec<(String, usize, usize)>> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/vicuna_gpt4_reviews.jsonl");
    let mut text = String::new();
    let mut prefs = Vec::new();
    for line in std::fs::read_to_string(&data)?.lines() {
        let q: Value = serde_json::from_str(line)?;
        let id = format!("vicuna-q{}", q["question_id"]);
        let answers: Vec<&Value> = q["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["text"])
            .collect();
        let record = json!({"id": id, "fig_caption": "", "rounds": [{"question": q["question"], "answers": answers}]});
        text.push_str(&record.to_string());
        text.push('\n');
        for r in q["reviews"].as_array().unwrap() {
            let (a, b) = (
                r["answer1"].as_u64().unwrap() as usize,
                r["answer2"].as_u64().unwrap() as usize,
            );
            let (sa, sb) = (
                r["scores"][0].as_f64().unwrap(),
                r["scores"][1].as_f64().unwrap(),
            );
            if sa > sb {
                prefs.push((id.clone(), a, b));
            } else if sb > sa {
                prefs.push((id.clone(), b, a));
            }
        }
    }
    std::fs::write(out, text)?;
    Ok(prefs)
}

fn as_pairs(pairs: &[(i64, i64)], source: PairSource) -> Vec<PreferencePair> {
    pairs
        .iter()
        .map(|&(winner, loser)| PreferencePair {
            winner,
            loser,
            source,
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let Some((fixture, minilm)) = quality_data::qa50_and_minilm() else {
        return Ok(());
    };
    let only = std::env::var("FEW_PAIRS_ONLY").ok();
    let case = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let dir = tempfile::tempdir()?;
    let candidates = dir.path().join("qa50_pairs.jsonl");
    quality_data::write_candidates(&fixture, &candidates);
    let mut ws = Workspace::open(dir.path())?;
    import_file(&mut ws, &candidates, &ImportOptions::default(), &|_, _| {})?;
    quality_data::record_verdicts(&ws);
    // The one-answer copy and the Vicuna questions join the same workspace (their texts share
    // the embedding cache); each case reads its own pairs.
    let one_answer = dir.path().join("qa50_one_answer.jsonl");
    let solo_verdicts = write_one_answer(&candidates, &one_answer)?;
    import_file(&mut ws, &one_answer, &ImportOptions::default(), &|_, _| {})?;
    record_one_answer(&ws, "solo", &solo_verdicts)?;
    let vicuna = dir.path().join("vicuna.jsonl");
    let vicuna_prefs = if case("judge") {
        let prefs = write_vicuna(&vicuna)?;
        import_file(&mut ws, &vicuna, &ImportOptions::default(), &|_, _| {})?;
        prefs
    } else {
        Vec::new()
    };
    let folder = std::path::absolute(minilm)?;
    quality_data::embed_texts(&ws, &folder)?;
    let encoder = vital::embed::EncoderRef::of_folder(&folder)?;

    let all = as_pairs(&ws.human_pairs_by("clinician")?, PairSource::Human);
    let solo = as_pairs(&ws.human_pairs_by("solo")?, PairSource::Human);
    let mut judge = Vec::new();
    for (id, w, l) in &vicuna_prefs {
        let s = ws.load_sample_by_ext_id(id)?.unwrap();
        judge.push(PreferencePair {
            winner: s.answer_ids[0][*w],
            loser: s.answer_ids[0][*l],
            source: PairSource::Judge,
        });
    }
    // The one-answer verdicts' answers, for the same-collection pairing.
    let mut solo_answers: Vec<(i64, bool)> = Vec::new();
    for (id, r, accepted) in &solo_verdicts {
        let s = ws.load_sample_by_ext_id(id)?.unwrap();
        solo_answers.push((s.answer_ids[*r][0], *accepted));
    }
    let mut ids: HashSet<i64> = all
        .iter()
        .chain(&solo)
        .chain(&judge)
        .flat_map(|p| [p.winner, p.loser])
        .collect();
    ids.extend(solo_answers.iter().map(|(id, _)| *id));
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

    let figure_of = |p: &PreferencePair| index.figure_of(p.winner).unwrap().to_string();
    let figures: Vec<String> = all.iter().map(figure_of).collect();
    let figure_refs: Vec<&str> = figures.iter().map(String::as_str).collect();
    let baselines_of = |train: &[PreferencePair]| {
        [
            cosine.clone(),
            logistic_regression(&signals, train),
            length.clone(),
            overlap.clone(),
        ]
    };

    if case("clinician") {
        println!(
            "alignment / AUC on the held-out figures' clinician pairs (qa50, all-MiniLM-L6-v2)"
        );
        println!(
            "| train pairs | seed | held-out | signals | full | auto (chosen) | cos(q,a) | LR | length | overlap |"
        );
        println!("|---:|---:|---:|---|---|---|---|---|---|---|");
    }
    for size in SIZES.iter().copied().filter(|_| case("clinician")) {
        for seed in SEEDS {
            let (train_idx, test_idx) = split_by_figure(&figure_refs, 0.5, seed);
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
            let row = row_of(
                &ws,
                &mut settings,
                &inputs,
                &train,
                &held_out,
                &[Head::Signals, Head::Full],
                &baselines_of(&train),
            )?;
            println!(
                "| {} | {seed} | {} | {} |",
                size.map_or_else(|| format!("all ({})", train.len()), |n| n.to_string()),
                held_out.len(),
                row.join(" | ")
            );
        }
    }

    if case("one-answer") {
        println!();
        println!("one-answer qa50: verdicts on the training half's figures (one answer per question), alignment / AUC");
        println!("on the held-out figures' clinician pairs (two answers, as above) and on their one-answer pairs (same figure)");
        println!("| pairing | seed | train pairs | held-out on | pairs | signals | full | auto (chosen) | cos(q,a) | LR | length | overlap |");
        println!("|---|---:|---:|---|---:|---|---|---|---|---|---|---|");
        let one_figure = |p: &PreferencePair| figure_of(p).trim_start_matches("one/").to_string();
        for seed in SEEDS {
            let (_, test_idx) = split_by_figure(&figure_refs, 0.5, seed);
            let held: HashSet<&str> = test_idx.iter().map(|&i| figure_refs[i]).collect();
            let held_two: Vec<PreferencePair> = test_idx.iter().map(|&i| all[i].clone()).collect();
            let (held_one, same_figure): (Vec<PreferencePair>, Vec<PreferencePair>) = solo
                .iter()
                .cloned()
                .partition(|p| held.contains(one_figure(p).as_str()));
            // Every ✓ with every ✗ of the training figures (the same collection).
            let side = |accepted: bool| -> Vec<i64> {
                solo_answers
                    .iter()
                    .filter(|(id, ok)| {
                        *ok == accepted
                            && !held
                                .contains(index.figure_of(*id).unwrap().trim_start_matches("one/"))
                    })
                    .map(|(id, _)| *id)
                    .collect()
            };
            let (good, bad) = (side(true), side(false));
            let collection: Vec<PreferencePair> = good
                .iter()
                .flat_map(|&w| {
                    bad.iter().map(move |&l| PreferencePair {
                        winner: w,
                        loser: l,
                        source: PairSource::Human,
                    })
                })
                .collect();
            let mut settings = RunSettings::from_config(&Config::defaults().selector);
            settings.seed = seed;
            settings.encoder = Some(encoder.clone());
            for (pairing, train) in [
                ("same-figure", &same_figure),
                ("same-collection", &collection),
            ] {
                let mut trained: Vec<(HashMap<i64, f32>, Option<String>)> = Vec::new();
                for head in [Head::Signals, Head::Full] {
                    settings.head = head;
                    trained.push((trained_scores(&ws, &settings, &inputs, train)?, None));
                }
                let (auto, chosen) = auto_scores(&ws, &settings, &inputs, train)?;
                trained.push((auto, Some(chosen)));
                for (on, held_out) in [("two-answer", &held_two), ("one-answer", &held_one)] {
                    let mut row: Vec<String> = trained
                        .iter()
                        .map(|(scores, chosen)| {
                            let c = cell(&metrics(held_out, scores));
                            match chosen {
                                Some(name) => format!("{c} ({name})"),
                                None => c,
                            }
                        })
                        .collect();
                    for scores in &baselines_of(train) {
                        row.push(cell(&metrics(held_out, scores)));
                    }
                    println!(
                        "| {pairing} | {seed} | {} | {on} | {} | {} |",
                        train.len(),
                        held_out.len(),
                        row.join(" | ")
                    );
                }
            }
        }
    }

    if case("judge") {
        println!();
        println!("judge-only: real GPT-4 preferences on 80 Vicuna questions (FastChat), split by question, alignment / AUC on the held-out questions' pairs");
        println!("| seed | train pairs | held-out | signals | linear | full | auto (chosen) | cos(q,a) | LR | length | overlap |");
        println!("|---:|---:|---:|---|---|---|---|---|---|---|---|");
        let judge_figures: Vec<String> = judge.iter().map(figure_of).collect();
        let judge_refs: Vec<&str> = judge_figures.iter().map(String::as_str).collect();
        for seed in SEEDS {
            let (train_idx, test_idx) = split_by_figure(&judge_refs, 0.5, seed);
            let train: Vec<PreferencePair> = train_idx.iter().map(|&i| judge[i].clone()).collect();
            let held_out: Vec<PreferencePair> =
                test_idx.iter().map(|&i| judge[i].clone()).collect();
            let mut settings = RunSettings::from_config(&Config::defaults().selector);
            settings.seed = seed;
            settings.encoder = Some(encoder.clone());
            let row = row_of(
                &ws,
                &mut settings,
                &inputs,
                &train,
                &held_out,
                &[Head::Signals, Head::Linear, Head::Full],
                &baselines_of(&train),
            )?;
            println!(
                "| {seed} | {} | {} | {} |",
                train.len(),
                held_out.len(),
                row.join(" | ")
            );
        }
    }
    Ok(())
}
