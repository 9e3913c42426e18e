//! Export throughput (`cargo bench --bench export`): builds a synthetic workspace the size of the
//! 210K release (210K samples × 4 rounds × 2 candidate answers, a selector run scoring every
//! sample and answer, some clinician verdicts), then times what
//! `vital export --select top:40% --format llava` and `--select all` do. Target: under 10 s.
//!
//! `EXPORT_BENCH_SAMPLES` overrides the sample count; `EXPORT_BENCH_DIR` keeps the workspace in
//! that directory (reused when it already holds the same number of samples).

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use vital::export::{self, ExportFormat, ExportRequest, Selection};
use vital::store::Workspace;

mod common;

fn text(rng: &mut u64, words: usize) -> String {
    let mut out = String::with_capacity(words * 8);
    for i in 0..words {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        if i > 0 {
            out.push(' ');
        }
        out.push_str(common::WORDS[(*rng % common::WORDS.len() as u64) as usize]);
    }
    out
}

fn build(ws: &mut Workspace, n: usize) -> anyhow::Result<()> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let batch = ws.import_batch()?;
    let run = batch.insert_selector_run("2025-01-01T00:00:00Z", "bench", "{}")?;
    let reviewer = batch.reviewer_id("bench-clinician")?;
    for i in 0..n {
        let key = common::insert_sample(&batch, i, format!("PMC{i:07}_F1.jpg"), |words| {
            text(&mut rng, words)
        })?;
        batch.insert_sample_score(run, key, (rng % 10_000) as f64 / 10_000.0)?;
        let slots = batch.answer_slots(key)?;
        for (a, slot) in slots.iter().enumerate() {
            batch.insert_selector_score(
                run,
                slot.answer_id,
                ((rng >> (a * 3)) % 1000) as f64 / 1000.0,
            )?;
        }
        // One sample in fifty has a clinician's verdicts on its first round.
        if i % 50 == 0 {
            common::append_verdicts(&batch, reviewer, key, &slots)?;
        }
    }
    batch.commit()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    vital::process::tune_allocator(); // as `vital` itself runs
    let n: usize = std::env::var("EXPORT_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(210_000);
    let temp = tempfile::tempdir()?;
    let dir = std::env::var_os("EXPORT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("ws"));
    let mut ws = Workspace::open(&dir)?;
    let have = ws.sample_count()?;
    if have != n {
        anyhow::ensure!(have == 0, "{} holds {have} samples, not {n}", dir.display());
        let t = Instant::now();
        build(&mut ws, n)?;
        println!(
            "built {n} samples in {:.1}s ({})",
            t.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    let out_dir = tempfile::tempdir()?;
    let cancel = AtomicBool::new(false);
    println!(
        "{:<44} {:>9} {:>9} {:>10} {:>8}",
        "export", "samples", "rounds", "MB", "seconds"
    );
    for (name, select) in [
        (
            "--select top:40% --format llava",
            Selection::TopPercent(40.0),
        ),
        ("--select all --format llava", Selection::All),
        ("--select accepted --format llava", Selection::Accepted),
    ] {
        let req = ExportRequest::new(select, ExportFormat::Llava, out_dir.path().join("out.json"));
        let t = Instant::now();
        let summary = export::run(&ws, &req, &|_| {}, &cancel)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name:<44} {:>9} {:>9} {:>10.1} {secs:>8.2}",
            summary.counts.samples_written,
            summary.counts.rounds_written,
            summary.bytes as f64 / 1e6
        );
    }
    let req = ExportRequest::new(
        Selection::All,
        ExportFormat::Dpo,
        out_dir.path().join("dpo.jsonl"),
    );
    let t = Instant::now();
    let summary = export::run(&ws, &req, &|_| {}, &cancel)?;
    println!(
        "{:<44} {:>9} {:>9} {:>10.1} {:>8.2}",
        "--select all --format dpo",
        summary.counts.samples_written,
        summary.counts.records,
        summary.bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
