//! Selector quality on the real qa50 fixture (../shared/fixtures): clinician-style pairs built
//! from its 193 questions (see tests/integration/quality_data.rs), trained on the pairs of half
//! of the 50 figures and evaluated on the other half, beside answer length and word overlap.
//!
//! Besides the four metrics of `vital eval`, it reports the alignment on each failure kind of
//! the ✗ answer (two kinds are fixed strings, the same in training and evaluation) and a 95%
//! bootstrap interval of the alignment and the AUC: 1000 resamples of the held-out pairs with
//! replacement, seeded, so the same run prints the same interval. With about 96 held-out pairs,
//! one pair is one point of alignment.
//!
//! With a sentence-encoder folder in `VITAL_TEST_MINILM` (e.g. all-MiniLM-L6-v2), the same
//! splits are also trained on its cached vectors (`vital train --encoder`), with the built-in
//! head and with the paper's head.
//!
//! Run: `VITAL_TEST_MINILM=/path/to/all-MiniLM-L6-v2 cargo bench --bench quality`

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

#[path = "../tests/integration/quality_data.rs"]
mod quality_data;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use quality_data::FAILURE_KINDS;
use vital::config::Config;
use vital::import::{import_file, ImportOptions};
use vital::selector::metrics::{alignment_rate, auc};
use vital::selector::{Metrics, TrainedSelector};
use vital::selector_runs::{self, baselines, RunReport, RunSettings};
use vital::stable::SplitMix64;
use vital::store::Workspace;

/// Bootstrap resamples, and the seed of their draws.
const RESAMPLES: usize = 1000;
const BOOTSTRAP_SEED: u64 = 20_261_130;

/// One held-out pair: the failure kind of its ✗ answer and the answers' ids.
struct HeldOutPair {
    kind: usize,
    winner: i64,
    loser: i64,
}

/// The held-out clinician pairs of a run (those `vital eval` scores), with their kinds.
fn held_out_pairs(
    ws: &Workspace,
    report: &RunReport,
    kinds: &HashMap<(String, usize), usize>,
) -> anyhow::Result<(Vec<vital::selector::AnswerInput>, Vec<HeldOutPair>)> {
    let held_out: HashSet<&str> = report.held_out_figures.iter().map(String::as_str).collect();
    let all = selector_runs::human_pairs(ws)?;
    let ids: HashSet<i64> = all.iter().flat_map(|p| [p.winner, p.loser]).collect();
    let index = selector_runs::answer_inputs_for(ws, &ids)?;
    let by_id: HashMap<i64, &vital::selector::AnswerInput> =
        index.inputs.iter().map(|a| (a.answer_id, a)).collect();
    let mut pairs = Vec::new();
    for p in all {
        if !index
            .figure_of(p.winner)
            .is_some_and(|f| held_out.contains(f))
        {
            continue;
        }
        let sample = ws.load_sample(index.sample_of[&p.loser])?.unwrap();
        let round = by_id[&p.loser].round_position;
        let kind = kinds[&(sample.sample.id.clone(), round)];
        pairs.push(HeldOutPair {
            kind,
            winner: p.winner,
            loser: p.loser,
        });
    }
    Ok((index.inputs, pairs))
}

/// (positive, negative) scores of `pairs` under `score`.
fn scored(pairs: &[&HeldOutPair], score: &HashMap<i64, f32>) -> Vec<(f32, f32)> {
    pairs
        .iter()
        .map(|p| (score[&p.winner], score[&p.loser]))
        .collect()
}

/// The 2.5th and 97.5th percentiles of `metric` over bootstrap resamples of `pairs`.
fn bootstrap(pairs: &[(f32, f32)], metric: fn(&[(f32, f32)]) -> f64) -> (f64, f64) {
    let mut rng = SplitMix64::new(BOOTSTRAP_SEED);
    let mut values: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let sample: Vec<(f32, f32)> = (0..pairs.len())
                .map(|_| pairs[rng.below(pairs.len())])
                .collect();
            metric(&sample)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((RESAMPLES - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// One scorer's line: the four metrics, their bootstrap intervals and the alignment per kind.
fn report_line(
    seed: u64,
    name: &str,
    pairs: &[HeldOutPair],
    score: &HashMap<i64, f32>,
    expected: &Metrics,
) {
    let all: Vec<&HeldOutPair> = pairs.iter().collect();
    let both = scored(&all, score);
    let m = Metrics::from_pairs(&both);
    // The same pairs `vital eval` scored: the same numbers, or this table reports something else.
    assert_eq!(
        m.pairs, expected.pairs,
        "{name}: held-out pairs differ from eval's"
    );
    assert!(
        (m.alignment_rate - expected.alignment_rate).abs() < 1e-9
            && (m.auc - expected.auc).abs() < 1e-9,
        "{name}: metrics differ from eval's ({m:?} vs {expected:?})"
    );
    let (align_lo, align_hi) = bootstrap(&both, alignment_rate);
    let (auc_lo, auc_hi) = bootstrap(&both, auc);
    let per_kind: Vec<String> = (0..FAILURE_KINDS.len())
        .map(|k| {
            let of_kind: Vec<&HeldOutPair> = pairs.iter().filter(|p| p.kind == k).collect();
            let s = scored(&of_kind, score);
            let hits = s.iter().filter(|(p, n)| p > n).count();
            format!("{hits}/{}", s.len())
        })
        .collect();
    println!(
        "{seed:<6}{:>6}{name:>11}  {:.3} [{:.3}, {:.3}]  {:.3} [{:.3}, {:.3}]  {:>6.3}{:>7.3}   {}",
        m.pairs,
        m.alignment_rate,
        align_lo,
        align_hi,
        m.auc,
        auc_lo,
        auc_hi,
        m.mean_rank,
        m.map,
        per_kind
            .iter()
            .map(|s| format!("{s:>7}"))
            .collect::<String>()
    );
}

/// Scores of every input under the run's selector (its embeddings, if any).
fn selector_scores(
    ws: &Workspace,
    report: &RunReport,
    selector: &TrainedSelector,
    inputs: &[vital::selector::AnswerInput],
) -> anyhow::Result<HashMap<i64, f32>> {
    let embeddings = report.settings.embeddings_for(ws, inputs)?;
    let scores = selector.score_with(inputs, embeddings.as_ref())?;
    Ok(inputs.iter().map(|a| a.answer_id).zip(scores).collect())
}

fn main() -> anyhow::Result<()> {
    vital::process::tune_allocator(); // as `vital` itself runs
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/llava_med_qa50.jsonl");
    if !fixture.is_file() {
        println!("skipping: ../shared/fixtures is absent");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let candidates = dir.path().join("qa50_pairs.jsonl");
    let kinds: HashMap<(String, usize), usize> =
        quality_data::write_candidates_with_kinds(&fixture, &candidates)
            .into_iter()
            .flat_map(|(figure, kinds)| {
                kinds
                    .into_iter()
                    .enumerate()
                    .map(move |(round, kind)| ((figure.clone(), round), kind))
            })
            .collect();
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
        "alignment and AUC with 95% bootstrap intervals ({RESAMPLES} resamples of the held-out pairs, seed {BOOTSTRAP_SEED});"
    );
    println!(
        "mean rank: lower is better, perfect = (n+1)/(4n), 0.253 at n = 96; ✓ above ✗ per failure kind:"
    );
    for (k, kind) in FAILURE_KINDS.iter().enumerate() {
        println!("  kind {k}: {kind}");
    }
    println!(
        "{:<6}{:>6}{:>11}  {:<21}  {:<21}  {:>6}{:>7}   {:>7}{:>7}{:>7}{:>7}",
        "seed",
        "pairs",
        "",
        "alignment [95%]",
        "AUC [95%]",
        "mrank",
        "MAP",
        "kind 0",
        "kind 1",
        "kind 2",
        "kind 3"
    );
    for seed in [42, 7, 1234] {
        let mut settings = RunSettings::from_config(&Config::defaults().selector);
        settings.validation_fraction = 0.5;
        settings.epochs = 12;
        settings.seed = seed;
        let mut runs = vec![("selector", settings.clone())];
        if let Some(encoder) = &encoder {
            for paper_head in [false, true] {
                let mut with = settings.clone();
                with.encoder = Some(encoder.clone());
                with.paper_head = paper_head;
                runs.push((if paper_head { "paper+enc" } else { "sel+enc" }, with));
            }
        }
        for (i, (name, settings)) in runs.iter().enumerate() {
            let (report, selector) =
                selector_runs::train(&ws, settings, &mut |_| {}, &AtomicBool::new(false))?;
            let eval = selector_runs::evaluate(&ws, report.run_id, &report, &selector, None)?;
            let (inputs, pairs) = held_out_pairs(&ws, &report, &kinds)?;
            let scores = selector_scores(&ws, &report, &selector, &inputs)?;
            report_line(seed, name, &pairs, &scores, &eval.selector);
            if i == 0 {
                // The baselines do not train: the same for every run of this seed's split.
                for (name, f, expected) in [
                    (
                        "length",
                        baselines::answer_length as fn(&vital::selector::AnswerInput) -> f32,
                        &eval.baselines.answer_length,
                    ),
                    (
                        "overlap",
                        baselines::word_overlap,
                        &eval.baselines.word_overlap,
                    ),
                ] {
                    let scores: HashMap<i64, f32> =
                        inputs.iter().map(|a| (a.answer_id, f(a))).collect();
                    report_line(seed, name, &pairs, &scores, expected);
                }
            }
        }
    }
    Ok(())
}
