//! Selector quality on the real qa50 fixture (../shared/fixtures): clinician-style pairs built
//! from its 193 questions (see tests/integration/quality_data.rs), trained on the pairs of half
//! of the 50 figures and evaluated on the other half, beside answer length and word overlap.
//!
//! With a sentence-encoder folder in `VITAL_TEST_MINILM` (e.g. all-MiniLM-L6-v2), the same
//! splits are also trained on its cached vectors (`vital train --encoder`), with the built-in
//! head and with the paper's head.
//!
//! Run: `VITAL_TEST_MINILM=/path/to/all-MiniLM-L6-v2 cargo bench --bench quality`

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
    // The encoder's vectors of every text, cached once for all seeds.
    let encoder = match std::env::var_os("VITAL_TEST_MINILM") {
        Some(dir) => {
            let dir = std::path::absolute(std::path::PathBuf::from(dir))?;
            let mut model = vital::embed::open_encoder(&dir, vital::selector::BackendKind::Cpu)?;
            let started = std::time::Instant::now();
            let fill = vital::embed::fill_cache(
                &ws,
                model.as_mut(),
                32,
                &mut |_, _| {},
                &AtomicBool::new(false),
            )?;
            println!(
                "encoder {}: {} texts embedded in {:.1}s",
                dir.display(),
                fill.embedded,
                started.elapsed().as_secs_f64()
            );
            Some(vital::embed::EncoderRef {
                identity: model.identity().to_string(),
                folder: dir,
                dim: model.dim(),
                images: false,
            })
        }
        None => {
            println!("VITAL_TEST_MINILM unset: the selector without an encoder only");
            None
        }
    };
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
        let mut rows = vec![
            ("selector".to_string(), eval.selector),
            ("length".to_string(), eval.baselines.answer_length),
            ("overlap".to_string(), eval.baselines.word_overlap),
        ];
        if let Some(encoder) = &encoder {
            for paper_head in [false, true] {
                let mut with = settings.clone();
                with.encoder = Some(encoder.clone());
                with.paper_head = paper_head;
                let (report, selector) =
                    selector_runs::train(&ws, &with, &mut |_| {}, &AtomicBool::new(false))?;
                let eval = selector_runs::evaluate(&ws, report.run_id, &report, &selector, None)?;
                let name = if paper_head { "paper+enc" } else { "sel+enc" };
                rows.insert(1 + paper_head as usize, (name.to_string(), eval.selector));
            }
        }
        for (name, m) in &rows {
            println!(
                "{seed:<10}{:>7}{name:>10}{:>8.3}{:>8.3}{:>11.3}{:>8.3}",
                m.pairs, m.alignment_rate, m.auc, m.mean_rank, m.map
            );
        }
    }
    Ok(())
}
