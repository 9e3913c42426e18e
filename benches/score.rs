//! `vital score` at 210K samples with figures on disk: a figure is decoded once.
//!
//! Builds a workspace the size of the 210K release (210K samples × 4 rounds × 2 answers, a
//! clinician's verdicts on one sample in fifty) whose first `SCORE_BENCH_FIGURES` samples (3000)
//! have a textured 1024×1024 JPEG figure of their own, written by this bench (seeded noise over
//! gradients and stripes, so the decoder does real work; ≈0.3 MB each). It trains one run, then
//! scores every answer and sample three times, as `vital score` does:
//!
//!   1. with the figures moved away (no image found: the old "score 210K" setting),
//!   2. with the figures back, first time: each is read, hashed, decoded once and its statistics
//!      stored in the workspace,
//!   3. again: statistics read from the workspace (unchanged files are not even read).
//!
//! Run: `cargo bench --bench score` (`SCORE_BENCH_SAMPLES`, `SCORE_BENCH_FIGURES` to resize,
//! `SCORE_BENCH_DIR` to keep the workspace and figures there; the scores run on every call).

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vital::config::Config;
use vital::selector_runs::{self, RunSettings, SampleScore};
use vital::stable::SplitMix64;
use vital::store::Workspace;

mod common;

fn text(rng: &mut SplitMix64, words: usize) -> String {
    (0..words)
        .map(|_| common::WORDS[rng.below(common::WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn build(ws: &mut Workspace, n: usize) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(7);
    let batch = ws.import_batch()?;
    let reviewer = batch.reviewer_id("bench-clinician")?;
    for i in 0..n {
        let key = common::insert_sample(&batch, i, format!("fig-{i}.jpg"), |words| {
            text(&mut rng, words)
        })?;
        if i % 50 == 0 {
            common::append_verdicts(&batch, reviewer, key, &batch.answer_slots(key)?)?;
        }
    }
    batch.commit()?;
    Ok(())
}

/// A textured 1024×1024 figure: gradients, stripes and seeded noise, JPEG quality 85.
fn write_figure(path: &Path, seed: u64) -> anyhow::Result<()> {
    let mut rng = SplitMix64::new(seed);
    let (fx, fy) = (rng.next_f64() * 0.05 + 0.01, rng.next_f64() * 0.05 + 0.01);
    let tint = [
        rng.below(64) as f64,
        rng.below(64) as f64,
        rng.below(64) as f64,
    ];
    let img = image::RgbImage::from_fn(1024, 1024, |x, y| {
        let base = 96.0 + 60.0 * ((x as f64 * fx).sin() * (y as f64 * fy).cos());
        let noise = rng.below(48) as f64;
        let px = |c: usize| (base + noise + tint[c]).clamp(0.0, 255.0) as u8;
        image::Rgb([px(0), px(1), px(2)])
    });
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 85);
    encoder.encode_image(&img)?;
    Ok(())
}

fn write_figures(dir: &Path, count: usize) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for i in (t..count).step_by(threads) {
                        let path = dir.join(format!("fig-{i}.jpg"));
                        if !path.exists() {
                            write_figure(&path, i as u64)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("figure writer"))
    })?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes)
}

fn score(ws: &mut Workspace, run_id: i64) -> anyhow::Result<f64> {
    let (_, _, selector) = selector_runs::load_run(ws, Some(run_id))?;
    let t = Instant::now();
    selector_runs::score(
        ws,
        run_id,
        &selector,
        None,
        SampleScore::MeanBest,
        &mut |_| {},
        &AtomicBool::new(false),
    )?;
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    vital::process::tune_allocator(); // as `vital` itself runs
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (n, figures) = (
        var("SCORE_BENCH_SAMPLES", 210_000),
        var("SCORE_BENCH_FIGURES", 3000),
    );
    let temp = tempfile::tempdir()?;
    let root = std::env::var_os("SCORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let ws_dir = root.join(format!("ws-{n}"));
    let fig_dir = root.join("figures");
    let hidden = root.join("figures.away");
    if hidden.exists() {
        std::fs::rename(&hidden, &fig_dir)?;
    }
    let t = Instant::now();
    let bytes = write_figures(&fig_dir, figures)?;
    println!(
        "{figures} figures, {:.0} MB, ready in {:.1}s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    // Fresh workspace every call: the first score with figures must find none stored.
    if ws_dir.exists() {
        std::fs::remove_dir_all(&ws_dir)?;
    }
    let mut ws = Workspace::open(&ws_dir)?;
    let t = Instant::now();
    build(&mut ws, n)?;
    ws.add_image_dir(&fig_dir)?;
    println!("built {n} samples in {:.1}s", t.elapsed().as_secs_f64());

    std::fs::rename(&fig_dir, &hidden)?;
    let mut settings = RunSettings::from_config(&Config::defaults().selector);
    settings.epochs = 1;
    let t = Instant::now();
    let (report, _) = selector_runs::train(&ws, &settings, &mut |_| {}, &AtomicBool::new(false))?;
    println!(
        "trained run {} on {} pairs in {:.1}s",
        report.run_id,
        report.human_pairs,
        t.elapsed().as_secs_f64()
    );
    let without = score(&mut ws, report.run_id)?;
    std::fs::rename(&hidden, &fig_dir)?;
    let first = score(&mut ws, report.run_id)?;
    let again = score(&mut ws, report.run_id)?;
    let answers = n * 8;
    println!("score {n} samples ({answers} answers), {figures} figures of 1024x1024:");
    println!("{:<58}{:>10}", "", "seconds");
    println!("{:<58}{without:>10.2}", "figures absent");
    println!(
        "{:<58}{first:>10.2}",
        "figures present, first score (decode once, store)"
    );
    println!(
        "{:<58}{again:>10.2}",
        "figures present, next score (stored statistics)"
    );
    println!(
        "per figure: first use {:.2} ms, later {:.3} ms",
        (first - without) * 1e3 / figures.max(1) as f64,
        (again - without) * 1e3 / figures.max(1) as f64
    );
    Ok(())
}
