//! Does live ranking save decisions? `vital simulate`'s reviewer on the real qa50 fixture
//! (../shared/fixtures) with all-MiniLM-L6-v2 (`VITAL_TEST_MINILM`): the clinician-style rounds of
//! tests/integration/quality_data.rs, half of the 50 figures in the workspace (their verdicts are
//! the labels), the other half the held-out pairs. For each order (file, random, uncertainty) and
//! seed the reviewer marks answers, the background trainer's job retrains every 10 decisions, and
//! the run is measured on the held-out pairs: held-out alignment after 10, 20, … decisions, and the
//! decisions it took to reach 0.90 and 0.95.
//!
//! Run: `VITAL_TEST_MINILM=/path/to/all-MiniLM-L6-v2 cargo bench --profile dev --bench orders`
//! (`ORDERS_BENCH_FOLD=1`: the other half reviewed, the first held out; `ORDERS_BENCH_ONLY=file`
//! one order).
//!
//! `ORDERS_BENCH_PERMUTATIONS=N` runs the paired design instead: the reviewed figures' file is
//! shuffled N ways (permutation p seeded by p), and on each file the reviewer works once in file
//! order and once in uncertainty order, which opens in file order until the first run has scored
//! the queue. Both sessions of a permutation see the same first samples, so their difference is
//! what the acquisition did; and since a file's order is arbitrary, file order over many
//! permutations is what any order that ignores the selector gets (random order included).

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde_json::{json, Value};
use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector_runs::{RunSettings, SampleScore};
use vital::stable::SplitMix64;
use vital::store::Workspace;
use vital::tui::queue::Order;
use vital::tui::simulate::{simulate, Curve, Labels, Simulation};

const RETRAIN_EVERY: usize = 10;
const MAX_DECISIONS: usize = 100;

/// One pairs-file line per round: answer 1 (the real answer) ✓, answer 2 ✗.
fn pairs_lines(record: &Value) -> String {
    let mut out = String::new();
    for round in record["rounds"].as_array().unwrap() {
        let answers = round["answers"].as_array().unwrap();
        out.push_str(
            &json!({"img": record["image"], "fig_caption": record["fig_caption"], "inline_mention": "",
                "question": round["question"], "answer_positive": answers[0], "answer_negative": answers[1]})
            .to_string(),
        );
        out.push('\n');
    }
    out
}

/// A workspace in `dir` holding `candidates` (JSON lines), its texts embedded by `folder`'s
/// encoder.
fn workspace(dir: &Path, candidates: &str, folder: &Path) -> anyhow::Result<Workspace> {
    let file = dir.join("reviewed.jsonl");
    std::fs::write(&file, candidates)?;
    let mut ws = Workspace::open(&dir.join("ws"))?;
    import_file(&mut ws, &file, &ImportOptions::default(), &|_, _| {})?;
    quality_data::embed_texts(&ws, folder)?;
    Ok(ws)
}

/// One simulated session of 100 decisions on `ws`.
fn session(
    ws: &Workspace,
    labels: &Labels,
    eval_file: &Path,
    run: &RunSettings,
    order: Order,
    seed: u64,
) -> anyhow::Result<Curve> {
    let scratch = tempfile::tempdir()?;
    let sim = Simulation {
        labels,
        eval_pairs: eval_file,
        order,
        seed,
        retrain_every: RETRAIN_EVERY,
        max_decisions: Some(MAX_DECISIONS),
        run: run.clone(),
        sample_score: SampleScore::MeanBest,
    };
    simulate(
        ws,
        scratch.path(),
        &sim,
        &mut |_| {},
        &AtomicBool::new(false),
    )
}

fn checkpoints() -> Vec<usize> {
    (1..=MAX_DECISIONS / RETRAIN_EVERY)
        .map(|k| k * RETRAIN_EVERY)
        .collect()
}

/// Held-out alignment at each checkpoint ("–" where the session stopped before it).
fn at_checkpoints(curve: &Curve) -> Vec<Option<f64>> {
    checkpoints()
        .into_iter()
        .map(|n| {
            curve
                .points
                .iter()
                .find(|p| p.decisions == n)
                .map(|p| p.alignment)
        })
        .collect()
}

/// The table row of one session after its first cells.
fn row_cells(curve: &Curve) -> String {
    let cells: Vec<String> = at_checkpoints(curve)
        .into_iter()
        .map(|a| a.map_or("–".to_string(), |a| format!("{a:.3}")))
        .collect();
    let to = |t: f64| curve.decisions_to(t).map_or("–".into(), |d| d.to_string());
    format!("{} | {} | {}", cells.join(" | "), to(0.90), to(0.95))
}

/// Mean held-out alignment over the checkpoints: the area under the learning curve, per
/// checkpoint.
fn mean_alignment(curve: &Curve) -> f64 {
    let values: Vec<f64> = at_checkpoints(curve).into_iter().flatten().collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn main() -> anyhow::Result<()> {
    let Some((fixture, minilm)) = quality_data::qa50_and_minilm() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let all = dir.path().join("qa50_candidates.jsonl");
    quality_data::write_candidates(&fixture, &all);
    // Alternate figures: one half reviewed, the other held out; ORDERS_BENCH_FOLD=1 swaps them.
    let fold: usize = match std::env::var("ORDERS_BENCH_FOLD").as_deref() {
        Ok("1") => 1,
        _ => 0,
    };
    let (mut reviewed, mut labels, mut held_out) = (Vec::new(), String::new(), String::new());
    for (i, line) in std::fs::read_to_string(&all)?.lines().enumerate() {
        let record: Value = serde_json::from_str(line)?;
        if i % 2 == fold {
            reviewed.push(line.to_string());
            labels.push_str(&pairs_lines(&record));
        } else {
            held_out.push_str(&pairs_lines(&record));
        }
    }
    let labels_file = dir.path().join("labels.jsonl");
    std::fs::write(&labels_file, labels)?;
    let eval_file = dir.path().join("held_out.jsonl");
    std::fs::write(&eval_file, held_out)?;

    let folder = std::path::absolute(minilm)?;
    let (inputs, pairs) = vital::selector_runs::pairs_from_file(
        &labels_file,
        &vital::image_files::ImageRoots::new(vec![dir.path().to_path_buf()]),
    )?;
    let labels = Labels::from_pairs(&inputs, &pairs);
    let mut run = RunSettings::from_config(&Config::defaults().selector);
    run.encoder = Some(vital::embed::EncoderRef::of_folder(&folder)?);

    println!(
        "fold {fold}: held-out alignment after N decisions ({} labelled answers reviewable, {} held-out pairs; retraining every {RETRAIN_EVERY})",
        labels.len(),
        std::fs::read_to_string(&eval_file)?.lines().count()
    );
    let header = checkpoints()
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    let rule = "---:|".repeat(checkpoints().len());

    if let Ok(n) = std::env::var("ORDERS_BENCH_PERMUTATIONS") {
        return paired(
            n.parse()?,
            &reviewed,
            &folder,
            &labels,
            &eval_file,
            &run,
            (&header, &rule),
        );
    }

    let ws_dir = tempfile::tempdir()?;
    let ws = workspace(ws_dir.path(), &(reviewed.join("\n") + "\n"), &folder)?;
    println!("| order | seed | {header} | to 0.90 | to 0.95 |");
    println!("|---|---:|{rule}---:|---:|");
    // ORDERS_BENCH_ONLY=uncertainty (or file, random) runs one order.
    let only = std::env::var("ORDERS_BENCH_ONLY").ok();
    for order in [Order::File, Order::Random, Order::Uncertainty] {
        if only
            .as_deref()
            .is_some_and(|o| o.parse::<Order>().ok() != Some(order))
        {
            continue;
        }
        for seed in 1..=3u64 {
            let curve = session(&ws, &labels, &eval_file, &run, order, seed)?;
            println!("| {} | {seed} | {} |", order.label(), row_cells(&curve));
        }
    }
    Ok(())
}

/// What one session of the paired design came to.
#[derive(Clone, Copy)]
struct Outcome {
    /// Mean held-out alignment over the checkpoints.
    mean: f64,
    /// Decisions to 0.90 and to 0.95 (None: not within the session).
    to_90: Option<usize>,
    to_95: Option<usize>,
}

/// The paired design: file and uncertainty order on `n` shuffles of the reviewed figures.
fn paired(
    n: u64,
    reviewed: &[String],
    folder: &Path,
    labels: &Labels,
    eval_file: &Path,
    run: &RunSettings,
    (header, rule): (&str, &str),
) -> anyhow::Result<()> {
    println!("| file shuffle | order | {header} | to 0.90 | to 0.95 | mean |");
    println!("|---:|---|{rule}---:|---:|---:|");
    // ORDERS_BENCH_ONLY=uncertainty (a list: file,uncertainty) runs those orders.
    let only = std::env::var("ORDERS_BENCH_ONLY").ok();
    let orders: Vec<Order> = [Order::File, Order::Uncertainty]
        .into_iter()
        .filter(|o| {
            only.as_deref()
                .is_none_or(|list| list.split(',').any(|n| n.parse::<Order>().ok() == Some(*o)))
        })
        .collect();
    // Per order: mean alignment, decisions to 0.90 and to 0.95 (None: not within 100).
    let mut results: Vec<Vec<Outcome>> = vec![Vec::new(); orders.len()];
    for p in 1..=n {
        let mut lines = reviewed.to_vec();
        SplitMix64::new(p).shuffle(&mut lines);
        let ws_dir = tempfile::tempdir()?;
        let ws = workspace(ws_dir.path(), &(lines.join("\n") + "\n"), folder)?;
        for (k, order) in orders.iter().enumerate() {
            let curve = session(&ws, labels, eval_file, run, *order, 1)?;
            let mean = mean_alignment(&curve);
            println!(
                "| {p} | {} | {} | {mean:.3} |",
                order.label(),
                row_cells(&curve)
            );
            results[k].push(Outcome {
                mean,
                to_90: curve.decisions_to(0.90),
                to_95: curve.decisions_to(0.95),
            });
        }
    }
    println!();
    println!("| order | mean alignment over 10..100 (sd) | to 0.90: mean of reached (reached) | to 0.95: mean of reached (reached) |");
    println!("|---|---:|---:|---:|");
    for (k, order) in orders.iter().enumerate() {
        let means: Vec<f64> = results[k].iter().map(|r| r.mean).collect();
        let (m, sd) = mean_and_sd(&means);
        let reached = |pick: &dyn Fn(&Outcome) -> Option<usize>| {
            let got: Vec<f64> = results[k]
                .iter()
                .filter_map(pick)
                .map(|d| d as f64)
                .collect();
            format!(
                "{:.0} ({}/{})",
                mean_and_sd(&got).0,
                got.len(),
                results[k].len()
            )
        };
        println!(
            "| {} | {m:.3} ({sd:.3}) | {} | {} |",
            order.label(),
            reached(&|r| r.to_90),
            reached(&|r| r.to_95)
        );
    }
    // Each order against the first (file order), paired by shuffle.
    for k in 1..orders.len() {
        let diffs: Vec<f64> = results[k]
            .iter()
            .zip(&results[0])
            .map(|(u, f)| u.mean - f.mean)
            .collect();
        let (d, sd) = mean_and_sd(&diffs);
        let wins = diffs.iter().filter(|&&x| x > 1e-9).count();
        let losses = diffs.iter().filter(|&&x| x < -1e-9).count();
        println!(
            "\n{} − {}, mean alignment per shuffle: {d:+.3} (sd {sd:.3}; higher on {wins}, lower on {losses}, equal on {} of {})",
            orders[k].label(),
            orders[0].label(),
            diffs.len() - wins - losses,
            diffs.len()
        );
    }
    Ok(())
}
