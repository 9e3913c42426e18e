//! Keystroke-to-frame time of the review screen on a 210K-sample workspace: each key goes
//! through the real session (state update, SQLite reads and committed writes) and a full redraw
//! on a 200×60 TestBackend. Image decode is excluded (it runs on a worker thread).
//!
//! Run: `cargo bench --bench review` (VITAL_BENCH_SAMPLES=N for another size). The workspace is
//! built once under target/ and reused.

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use vital::data::{Round, Sample};
use vital::store::Workspace;
use vital::tui::app::Msg;
use vital::tui::keymap::Keymap;
use vital::tui::session::{Session, SessionOptions};
use vital::tui::view::{draw, ImagePane};

fn build_workspace(dir: &std::path::Path, samples: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut ws = Workspace::open(dir)?;
    let batch = ws.import_batch()?;
    let domains = ["ct_scan", "mri", "chest_xray", "histology", "gross"];
    for i in 0..samples {
        let sample = Sample {
            id: format!("PMC{i:07}_F1"),
            image: Some(format!("PMC{i:07}_F1.jpg")),
            caption: format!(
                "Figure {i}: axial contrast-enhanced CT shows a {} mm lesion in segment {}.",
                i % 40 + 3,
                i % 8 + 1
            ),
            mentions: vec![format!(
                "As shown in Figure {i}, the lesion enhanced in the arterial phase."
            )],
            fig_label: Some("Figure 1".into()),
            domains: vec![domains[i % domains.len()].into()],
            rounds: (0..4)
                .map(|r| Round {
                    question: format!("Question {r} about figure {i}: what does the image show?"),
                    answers: vec![
                        format!(
                            "The image shows an enhancing lesion measuring {} mm (round {r}).",
                            i % 40 + 3
                        ),
                        format!("It may possibly be something; consult a doctor (round {r})."),
                    ],
                })
                .collect(),
            is_demo: false,
        };
        batch.insert_sample(&sample, None)?;
    }
    batch.commit()?;
    eprintln!(
        "built a {samples}-sample workspace in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let samples: usize = std::env::var("VITAL_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(210_000);
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("target"));
    let dir = target.join(format!("bench-review-{samples}"));
    if !dir.join("vital.db").exists() {
        build_workspace(&dir, samples)?;
    }
    // A fresh reviewer each run, so every run starts from the same state.
    let reviewer = format!("bench-{}", std::process::id());
    let started = Instant::now();
    let ws = Workspace::open_existing(&dir)?;
    let options = SessionOptions {
        reviewer,
        keymap: Keymap::default(),
        auto_advance: true,
        shuffle: true,
        train_after: 0,
        top_percent: 40.0,
        export_defaults: ["top:40%".into(), "llava".into(), "selection.json".into()],
        export_dir: std::path::PathBuf::new(),
    };
    let mut session = Session::start(ws, options)?;
    eprintln!(
        "opened the review queue ({samples} samples) in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let mut terminal = Terminal::new(TestBackend::new(200, 60))?;
    let mut image = ImagePane::default();
    // Key classes, each pressed many times: movement, decisions (committed with fsync), undo,
    // filter changes over the whole queue.
    let script: Vec<(&str, KeyCode)> = vec![
        ("j/k round", KeyCode::Char('j')),
        ("j/k round", KeyCode::Char('k')),
        ("l answer", KeyCode::Char('l')),
        ("Space next sample", KeyCode::Char(' ')),
        ("Backspace prev sample", KeyCode::Backspace),
        ("Space next sample", KeyCode::Char(' ')),
        ("a/x decide", KeyCode::Char('a')),
        ("a/x decide", KeyCode::Char('x')),
        ("u undo", KeyCode::Char('u')),
        ("F filter", KeyCode::Char('F')),
    ];
    let mut all = Vec::new();
    let mut by_class: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    for _ in 0..60 {
        for (class, code) in &script {
            let t = Instant::now();
            session.dispatch(Msg::Key(KeyEvent::new(*code, KeyModifiers::NONE)));
            terminal.draw(|f| draw(f, &session.app, &mut image))?;
            let elapsed = t.elapsed();
            all.push(elapsed);
            by_class.entry(class).or_default().push(elapsed);
        }
    }
    let t = Instant::now();
    let hits = session.ws().search("lesion measuring 17 mm")?;
    let search = t.elapsed();

    println!("review screen, {samples} samples, 200x60 frame, keystroke to frame:");
    println!(
        "{:<24}{:>8}{:>12}{:>12}{:>12}",
        "key", "n", "p50 ms", "p99 ms", "max ms"
    );
    let mut rows: Vec<(&str, Vec<Duration>)> = by_class.into_iter().collect();
    rows.push(("all keys", all));
    for (class, mut times) in rows {
        times.sort();
        println!(
            "{class:<24}{:>8}{:>12.3}{:>12.3}{:>12.3}",
            times.len(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().expect("timed").as_secs_f64() * 1e3
        );
    }
    println!(
        "background search over all text: {} hits in {:.0} ms (off the UI thread)",
        hits.len(),
        search.as_secs_f64() * 1e3
    );
    Ok(())
}
