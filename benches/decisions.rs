//! A reviewer's decision under load: how long it takes to be durable while, on the same
//! workspace, a 200K-sample import, a `vital score` and an export run (each a real `vital`
//! process, started together, score and export repeated until the import ends). On a directory
//! (SQLite) and on a server (PostgreSQL).
//!
//! Each decision goes through the review screen's own path (the session store: the local
//! journal, synced, then the workspace under the decision's id) and is timed from the call to
//! its answer: then it is on disk, in the workspace or in the journal. Decisions that had to wait
//! in the journal (a directory's lock held by the import) are counted, and the time until the
//! workspace stored them (the screen retries every 2 s; here every 50 ms) is a row of its own.
//!
//! Run: `cargo bench --bench decisions`. PostgreSQL too: start a durable server with
//! `eval "$(tools/test_postgres.sh start --durable)"` and set `VITAL_BENCH_PG="$VITAL_TEST_PG"`.
//! `VITAL_BENCH_SAMPLES=N` for another import size (default 200000). The release file is
//! generated once under target/.

#![allow(clippy::unwrap_used)] // a benchmark harness: a failed unwrap is a failed run

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use vital::store::{DecisionKind, NewDecision, Workspace};
use vital::tui::app::{Effect, Msg};
use vital::tui::executor::{Executor, SessionStore, SyncExecutor};

fn vital() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vital"));
    c.env("VITAL_CONFIG", "").env_remove("VITAL_WORKSPACE");
    c
}

fn run_ok(args: &[&str]) {
    let out = vital().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vital {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A LLaVA-Med-shaped release: `n` figures, 2-4 rounds each, PMC-style ids and image names,
/// questions and answers of the lengths such releases have.
fn release(path: &Path, n: usize) {
    if path.is_file() {
        return;
    }
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let organs = ["liver", "lung", "kidney", "brain", "heart", "spleen"];
    let modalities = ["CT", "MRI", "chest X-ray", "ultrasound", "histology"];
    writeln!(out, "[").unwrap();
    for i in 0..n {
        let organ = organs[i % organs.len()];
        let modality = modalities[i % modalities.len()];
        let mut turns = vec![format!(
            r#"{{"from": "human", "value": "<image>\nWhat imaging modality was used for figure {i}?"}}, {{"from": "gpt", "value": "The image is a {modality} of the {organ}, showing the region described in the caption with the lesion marked by an arrow."}}"#
        )];
        for r in 1..(2 + i % 3) {
            turns.push(format!(
                r#"{{"from": "human", "value": "What abnormality is visible in the {organ} (question {r})?"}}, {{"from": "gpt", "value": "There is a well-circumscribed {} mm hypodense lesion in the {organ}, consistent with the finding described in the text; no other abnormality is seen."}}"#,
                3 + (i * r) % 40
            ));
        }
        let comma = if i + 1 < n { "," } else { "" };
        writeln!(
            out,
            r#"{{"id": "PMC{i:07}_F1", "image": "PMC{i:07}_F1.jpg", "domain": "{}", "conversations": [{}]}}{comma}"#,
            modality.to_lowercase().replace(' ', "_"),
            turns.join(", ")
        )
        .unwrap();
    }
    writeln!(out, "]").unwrap();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Outcome {
    durable_ms: Vec<f64>,
    kept_locally: usize,
    stored_after_wait_ms: Vec<f64>,
    import_s: f64,
    scores: usize,
    exports: usize,
}

/// Whether a load process ended: `Some(true)` finished well (and the slot is free again),
/// `None` still running or never started. A failed run is a failed benchmark.
fn finished(child: &mut Option<Child>) -> Option<bool> {
    let status = child.as_mut()?.try_wait().unwrap()?;
    assert!(status.success(), "a load process failed: {status}");
    *child = None;
    Some(true)
}

/// Starts the load on `location` (the import alone, or with score and export), decides until
/// the import ends, and measures.
fn measure(location: &str, data: &Path, files: &Path, full_load: bool) -> Outcome {
    run_ok(&["-w", location, "demo", "--stats"]);
    run_ok(&["-w", location, "train", "-q"]);
    let ws = Workspace::open_existing(Path::new(location)).unwrap();
    let mut answers = Vec::new();
    for key in ws.sample_keys().unwrap() {
        let s = ws.load_sample(key).unwrap().unwrap();
        for (round, ids) in s.round_ids.iter().zip(&s.answer_ids) {
            for id in ids {
                answers.push((key, *round, *id));
            }
        }
    }
    let store = SessionStore::new(ws, "bench".into(), false, files.join("exports"), 256).unwrap();
    let mut exec = SyncExecutor { store };

    let started = Instant::now();
    let mut import: Child = vital()
        .args(["-w", location, "import", data.to_str().unwrap(), "-q"])
        .spawn()
        .unwrap();
    let mut score: Option<Child> = None;
    let mut export: Option<Child> = None;
    let (mut scores, mut exports) = (0, 0);
    let export_to = files.join("bench-export.json");
    let mut outcome = Outcome {
        durable_ms: Vec::new(),
        kept_locally: 0,
        stored_after_wait_ms: Vec::new(),
        import_s: 0.0,
        scores: 0,
        exports: 0,
    };
    let mut waiting_since: Option<Instant> = None;
    let mut i = 0usize;
    loop {
        // Score and export again each time they finish, as long as the import runs.
        let import_done = match import.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "the import failed");
                true
            }
            None => false,
        };
        if import_done && outcome.import_s == 0.0 {
            outcome.import_s = started.elapsed().as_secs_f64();
        }
        if !import_done && full_load {
            if let Some(done) = finished(&mut score) {
                scores += usize::from(done);
            }
            if score.is_none() {
                score = Some(
                    vital()
                        .args(["-w", location, "score", "-q"])
                        .spawn()
                        .unwrap(),
                );
            }
            if let Some(done) = finished(&mut export) {
                exports += usize::from(done);
            }
            if export.is_none() {
                export = Some(
                    vital()
                        .args(["-w", location, "export", "--format", "llava", "-q", "--out"])
                        .arg(&export_to)
                        .spawn()
                        .unwrap(),
                );
            }
        } else if import_done && waiting_since.is_none() {
            break;
        }
        let (key, round, answer) = answers[(i * 7) % answers.len()];
        let decision = NewDecision {
            sample_key: key,
            round_id: Some(round),
            answer_id: Some(answer),
            kind: if i.is_multiple_of(3) {
                DecisionKind::Reject
            } else {
                DecisionKind::Accept
            },
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        let t = Instant::now();
        let msg = exec.run(Effect::Record(decision)).unwrap();
        outcome.durable_ms.push(t.elapsed().as_secs_f64() * 1e3);
        match msg {
            Msg::Saved { .. } => {}
            Msg::SavedLocally { .. } => {
                outcome.kept_locally += 1;
                waiting_since.get_or_insert_with(Instant::now);
            }
            other => panic!("decision {i}: {other:?}"),
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
        if waiting_since.is_some() {
            if let Some(Msg::Journal { note: None, .. }) = exec.run(Effect::RetryJournal) {
                let since = waiting_since.take().unwrap();
                outcome
                    .stored_after_wait_ms
                    .push(since.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for child in [score, export].into_iter().flatten() {
        let mut child = child;
        let status = child.wait().unwrap();
        assert!(status.success(), "a load process failed: {status}");
    }
    outcome.scores = scores;
    outcome.exports = exports;
    outcome
}

fn report(name: &str, load: &str, o: &mut Outcome) {
    o.durable_ms.sort_by(f64::total_cmp);
    o.stored_after_wait_ms.sort_by(f64::total_cmp);
    println!(
        "| {name} | {load} | {} | {:.1} | {:.1} | {:.1} | {} |",
        o.durable_ms.len(),
        percentile(&o.durable_ms, 0.5),
        percentile(&o.durable_ms, 0.99),
        o.durable_ms.last().copied().unwrap_or(f64::NAN),
        o.kept_locally
    );
    if !o.stored_after_wait_ms.is_empty() {
        println!(
            "| {name}: waited, then stored in the workspace | | {} | {:.0} | {:.0} | {:.0} | |",
            o.stored_after_wait_ms.len(),
            percentile(&o.stored_after_wait_ms, 0.5),
            percentile(&o.stored_after_wait_ms, 0.99),
            o.stored_after_wait_ms.last().unwrap()
        );
    }
}

fn main() {
    let n: usize = std::env::var("VITAL_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-decisions");
    std::fs::create_dir_all(&root).unwrap();
    let data = root.join(format!("release-{n}.json"));
    release(&data, n);
    let files = root.join("server-files");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).unwrap();
    // Before any thread starts: this process and the `vital` ones keep a server's files here.
    std::env::set_var("VITAL_SERVER_FILES", &files);

    println!("| workspace | load | decisions | p50 ms | p99 ms | max ms | kept in the journal |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let server = std::env::var("VITAL_BENCH_PG").ok();
    if server.is_none() {
        eprintln!("PostgreSQL skipped: set VITAL_BENCH_PG (see the header)");
    }
    for full_load in [false, true] {
        let dir = root.join("dir");
        let _ = std::fs::remove_dir_all(&dir);
        let mut o = measure(dir.to_str().unwrap(), &data, &dir, full_load);
        report("directory (SQLite)", &load_name(n, &o, full_load), &mut o);
        if let Some(admin) = &server {
            let name = format!("vital_bench_{}", std::process::id());
            let mut client = vital::store::ServerUrl::parse(admin)
                .unwrap()
                .connect()
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            let url = vital::store::server::with_dbname(admin, &name);
            let mut o = measure(&url, &data, &files, full_load);
            report("server (PostgreSQL)", &load_name(n, &o, full_load), &mut o);
            client
                .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .unwrap();
        }
    }
}

fn load_name(n: usize, o: &Outcome, full_load: bool) -> String {
    if full_load {
        format!(
            "import {n} ({:.0} s), score ×{}, export ×{}",
            o.import_s, o.scores, o.exports
        )
    } else {
        format!("import {n} ({:.0} s) alone", o.import_s)
    }
}
