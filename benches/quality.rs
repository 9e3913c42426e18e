//! Selector quality on the real qa50 fixture (../shared/fixtures): clinician-style pairs built
//! from its 193 questions (see tests/integration/quality_data.rs), trained on the pairs of half
//! of the 50 figures and evaluated on the other half, beside answer length and word overlap.
//!
//! Run: `cargo bench --bench quality`

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector_runs::{self, RunSettings};
use vital::store::Workspace;

fn main() -> anyhow::Result<()> {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/llava_med_qa50.jsonl");
    if !fixture.is_file() {
        println!("skipping: ../shared/fixtures is absent");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let candidates = dir.path().join("qa50_pairs.jsonl");
    quality_data::write_candidates(&fixture, &candidates);
    let mut ws = Workspace::open(dir.path())?;
    import_file(&mut ws, &candidates, &ImportOptions::default(), &|_, _| {})?;
    quality_data::record_verdicts(&ws);
    println!(
        "{:<10}{:>7}{:>10}{:>8}{:>8}{:>11}{:>8}",
        "seed", "pairs", "", "align", "AUC", "mean rank", "MAP"
    );
    for seed in [42, 7, 1234] {
        let mut settings = RunSettings::from_config(&Config::defaults().selector);
        settings.validation_fraction = 0.5;
        settings.epochs = 12;
        settings.seed = seed;
        let (report, selector) =
            selector_runs::train(&ws, &settings, &mut |_| {}, &AtomicBool::new(false))?;
        let eval = selector_runs::evaluate(&ws, report.run_id, &report, &selector, None)?;
        for (name, m) in [
            ("selector", &eval.selector),
            ("length", &eval.baselines.answer_length),
            ("overlap", &eval.baselines.word_overlap),
        ] {
            println!(
                "{seed:<10}{:>7}{name:>10}{:>8.3}{:>8.3}{:>11.3}{:>8.3}",
                m.pairs, m.alignment_rate, m.auc, m.mean_rank, m.map
            );
        }
    }
    Ok(())
}
