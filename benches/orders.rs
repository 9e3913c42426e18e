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

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::sync::atomic::AtomicBool;

use serde_json::{json, Value};
use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector_runs::{RunSettings, SampleScore};
use vital::store::Workspace;
use vital::tui::queue::Order;
use vital::tui::simulate::{simulate, Labels, Simulation};

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
    let (mut reviewed, mut labels, mut held_out) = (String::new(), String::new(), String::new());
    for (i, line) in std::fs::read_to_string(&all)?.lines().enumerate() {
        let record: Value = serde_json::from_str(line)?;
        if i % 2 == fold {
            reviewed.push_str(line);
            reviewed.push('\n');
            labels.push_str(&pairs_lines(&record));
        } else {
            held_out.push_str(&pairs_lines(&record));
        }
    }
    let candidates = dir.path().join("reviewed.jsonl");
    std::fs::write(&candidates, reviewed)?;
    let labels_file = dir.path().join("labels.jsonl");
    std::fs::write(&labels_file, labels)?;
    let eval_file = dir.path().join("held_out.jsonl");
    std::fs::write(&eval_file, held_out)?;

    let ws_dir = dir.path().join("ws");
    let mut ws = Workspace::open(&ws_dir)?;
    import_file(&mut ws, &candidates, &ImportOptions::default(), &|_, _| {})?;
    let folder = std::path::absolute(minilm)?;
    let mut model = vital::embed::open_encoder(&folder, vital::selector::BackendKind::Cpu)?;
    vital::embed::fill_cache(
        &ws,
        model.as_mut(),
        32,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )?;
    let (inputs, pairs) = vital::selector_runs::pairs_from_file(
        &labels_file,
        &vital::image_files::ImageRoots::new(vec![dir.path().to_path_buf()]),
    )?;
    let labels = Labels::from_pairs(&inputs, &pairs);
    let mut run = RunSettings::from_config(&Config::defaults().selector);
    run.encoder = Some(vital::embed::EncoderRef::of_folder(&folder)?);

    let checkpoints: Vec<usize> = (1..=MAX_DECISIONS / RETRAIN_EVERY)
        .map(|k| k * RETRAIN_EVERY)
        .collect();
    println!(
        "fold {fold}: held-out alignment after N decisions ({} labelled answers reviewable, {} held-out pairs; retraining every {RETRAIN_EVERY})",
        labels.len(),
        std::fs::read_to_string(&eval_file)?.lines().count()
    );
    println!(
        "| order | seed | {} | to 0.90 | to 0.95 |",
        checkpoints
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|---:|{}---:|---:|", "---:|".repeat(checkpoints.len()));
    // ORDERS_BENCH_ONLY=uncertainty (or file, random) runs one order.
    let only = std::env::var("ORDERS_BENCH_ONLY").ok();
    for order in [Order::File, Order::Random, Order::Uncertainty] {
        if only.as_deref().is_some_and(|o| o != order.label()) {
            continue;
        }
        for seed in 1..=3u64 {
            let scratch = tempfile::tempdir()?;
            let sim = Simulation {
                labels: &labels,
                eval_pairs: &eval_file,
                order,
                seed,
                retrain_every: RETRAIN_EVERY,
                max_decisions: Some(MAX_DECISIONS),
                run: run.clone(),
                sample_score: SampleScore::MeanBest,
            };
            let curve = simulate(
                &ws,
                scratch.path(),
                &sim,
                &mut |_| {},
                &AtomicBool::new(false),
            )?;
            let at = |n: usize| {
                curve
                    .points
                    .iter()
                    .find(|p| p.decisions == n)
                    .map_or("–".to_string(), |p| format!("{:.3}", p.alignment))
            };
            let to = |t: f64| curve.decisions_to(t).map_or("–".into(), |d| d.to_string());
            println!(
                "| {} | {seed} | {} | {} | {} |",
                order.label(),
                checkpoints
                    .iter()
                    .map(|&n| at(n))
                    .collect::<Vec<_>>()
                    .join(" | "),
                to(0.90),
                to(0.95)
            );
        }
    }
    Ok(())
}
