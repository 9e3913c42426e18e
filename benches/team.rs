//! Serving the next sample under a team plan, at the release's scale (`cargo bench --bench
//! team`): a workspace of 210K samples shaped as the release (4 rounds × 2 candidate answers,
//! built as `benches/common` builds them), a plan of 2 reviewers on 30% of the samples, and 20
//! reviewers working at once, each on its own connection and thread. Each reviewer loops: take
//! the next place (`claim_next`, timed: the one statement that checks and takes, under the lease
//! lock), read for 0.5-1.5 × `VITAL_BENCH_HOLD_MS` (default 2000 ms; a clinician takes far
//! longer: 8 decisions a sample), accept both
//! answers of each of the 4 rounds (8 decisions), and settle the place (`settle_lease`). Also
//! timed: what the review screen does when it opens a sample (`take_lease` on one key) and at
//! start under a plan (`servable_keys`: its queue). Target: serving p99 < 50 ms.
//!
//! A directory by default; a team server with `VITAL_BENCH_PG=postgresql://…` (a fresh
//! database: the bench builds it). `VITAL_BENCH_SAMPLES=N` (default 210000),
//! `VITAL_BENCH_REVIEWERS=N` (default 20), `VITAL_BENCH_SECONDS=S` (default 30).

#![allow(clippy::unwrap_used)] // a benchmark harness: a failed unwrap is a failed run

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vital::store::{DecisionKind, NewDecision, TeamPlan, Workspace};

#[allow(dead_code)] // the sample builder only, not the verdicts
mod common;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

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
    let mut rng = 0x7EA3_5EED_0000_0001u64;
    let batch = ws.import_batch()?;
    for i in 0..n {
        common::insert_sample(&batch, i, format!("PMC{i:07}_F1.jpg"), |words| {
            text(&mut rng, words)
        })?;
    }
    batch.commit()?;
    Ok(())
}

fn percentiles(mut ms: Vec<f64>) -> String {
    if ms.is_empty() {
        return "no samples".into();
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "n={} p50 {:.2} ms · p95 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
        ms.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        ms[ms.len() - 1]
    )
}

fn main() -> anyhow::Result<()> {
    vital::process::tune_allocator();
    let n: usize = env_or("VITAL_BENCH_SAMPLES", 210_000);
    let reviewers: usize = env_or("VITAL_BENCH_REVIEWERS", 20);
    let seconds: f64 = env_or("VITAL_BENCH_SECONDS", 30.0);
    let hold = Duration::from_millis(env_or("VITAL_BENCH_HOLD_MS", 2000));
    let temp = tempfile::tempdir()?;
    let location: PathBuf = match std::env::var("VITAL_BENCH_PG") {
        Ok(url) if !url.trim().is_empty() => PathBuf::from(url),
        _ => temp.path().join("ws"),
    };
    let mut ws = Workspace::open(&location)?;
    anyhow::ensure!(
        ws.sample_count()? == 0,
        "the bench builds its own workspace: {} is not empty",
        ws.describe()
    );
    let t = Instant::now();
    build(&mut ws, n)?;
    ws.analyze_after_bulk_write()?;
    println!(
        "built {n} samples in {:.1} s on {}",
        t.elapsed().as_secs_f64(),
        ws.describe()
    );
    ws.set_team_plan(&TeamPlan {
        per_sample: 2,
        overlap_basis_points: 3000,
        ..Default::default()
    })?;
    let t = Instant::now();
    let queue = ws.servable_keys("r0")?;
    println!(
        "screen start (servable_keys, the queue under a plan): {} samples in {:.0} ms",
        queue.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(ws);

    let start = Arc::new(Barrier::new(reviewers));
    let threads: Vec<_> = (0..reviewers)
        .map(|r| {
            let (location, start) = (location.clone(), start.clone());
            std::thread::spawn(move || reviewer_loop(&location, r, seconds, hold, &start))
        })
        .collect();
    let (mut serve, mut open, mut finished) = (Vec::new(), Vec::new(), 0usize);
    for t in threads {
        let (s, o, f) = t.join().unwrap()?;
        serve.extend(s);
        open.extend(o);
        finished += f;
    }
    let ws = Workspace::open(&location)?;
    let (complete, planned, left) = ws.plan_progress()?;
    println!(
        "{reviewers} reviewers, {seconds} s, hold {} ms: {finished} places finished ({complete} of {planned} samples complete, {left} places left)",
        hold.as_millis()
    );
    println!(
        "serving the next sample (claim_next): {}",
        percentiles(serve)
    );
    println!("opening a given sample (take_lease): {}", percentiles(open));
    Ok(())
}

/// One reviewer: (serving times, opening times in ms, places finished).
fn reviewer_loop(
    location: &Path,
    r: usize,
    seconds: f64,
    hold: Duration,
    start: &Barrier,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, usize)> {
    let ws = Workspace::open_existing(location)?;
    ws.set_write_wait(Duration::from_secs(30))?;
    let name = format!("r{r}");
    let (mut serve, mut open, mut finished) = (Vec::new(), Vec::new(), 0);
    let mut last = None;
    // Reviewers do not work in step: each starts at its own moment and reads each sample for
    // 0.5-1.5 × the hold, drawn from its own stream.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (r as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
    let mut draw = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1000) as f64 / 1000.0
    };
    start.wait();
    std::thread::sleep(hold.mul_f64(draw()));
    let began = Instant::now();
    while began.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        let Some(key) = ws.claim_next(&name, last)? else {
            break;
        };
        serve.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(key);
        // The screen opening the sample it is on (a renewal of the same place).
        let t = Instant::now();
        ws.take_lease(&name, key)?;
        open.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(hold.mul_f64(0.5 + draw()));
        let stored = ws.load_sample(key)?.unwrap();
        for (round, answers) in stored.round_ids.iter().zip(&stored.answer_ids) {
            for &answer in answers {
                ws.record(
                    &name,
                    &NewDecision {
                        sample_key: key,
                        round_id: Some(*round),
                        answer_id: Some(answer),
                        kind: DecisionKind::Accept,
                        value: None,
                        shown_order: None,
                        figure_shown: None,
                    },
                )?;
            }
        }
        ws.settle_lease(&name, key)?;
        finished += 1;
    }
    Ok((serve, open, finished))
}
