//! Keystroke-to-frame time of the review screen on a 210K-sample workspace: each key goes
//! through the real session (state update, SQLite reads and committed writes) and a full redraw
//! on a 200×60 TestBackend. Image decode is excluded (it runs on a worker thread).
//!
//! The same keys are pressed under every filter `F` reaches (all, unreviewed, flagged,
//! disagreements, each domain). A decision key (a/x/u) is timed only when it acted, that is when
//! it appended a decision event; the ones that found nothing to decide are counted apart. The
//! workspace holds seeded disagreements between two reviewers, and the script flags samples, so
//! neither filter is empty.
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
use vital::store::{DecisionKind, NewDecision, Workspace};
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
        let outcome = batch.insert_sample(&sample, None)?;
        // Every 100th sample: two reviewers disagree on its first answer (the disagreements
        // filter then holds 1% of the queue).
        if let (vital::store::InsertOutcome::Inserted(key), 0) = (outcome, i % 100) {
            let slot = batch.answer_slots(key)?[0];
            for (reviewer, kind) in [
                ("seed-a", DecisionKind::Accept),
                ("seed-b", DecisionKind::Reject),
            ] {
                let reviewer = batch.reviewer_id(reviewer)?;
                let decision = NewDecision {
                    sample_key: key,
                    round_id: Some(slot.round_id),
                    answer_id: Some(slot.answer_id),
                    kind,
                    value: None,
                    shown_order: None,
                    figure_shown: None,
                };
                batch.append_decision(reviewer, &decision)?;
            }
        }
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
    vital::process::tune_allocator(); // as `vital` itself runs
    let samples: usize = std::env::var("VITAL_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(210_000);
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("target"));
    // v2: with seeded disagreements (an older workspace under the first name has none).
    let dir = target.join(format!("bench-review-v2-{samples}"));
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
        order: vital::tui::queue::Order::File,
        reasons: Vec::new(),
        require_figure: false,
        adjudicate: false,
    };
    let mut session = Session::start(ws, options)?;
    eprintln!(
        "opened the review queue ({samples} samples) in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    let mut terminal = Terminal::new(TestBackend::new(200, 60))?;
    let mut image = ImagePane::default();
    // Under each filter: movement, decisions (committed with fsync), undo, a flag (so the
    // flagged filter has samples when F reaches it).
    let script: Vec<(&str, KeyCode)> = vec![
        ("j round", KeyCode::Char('j')),
        ("k round", KeyCode::Char('k')),
        ("l answer", KeyCode::Char('l')),
        ("Space next sample", KeyCode::Char(' ')),
        ("Backspace prev sample", KeyCode::Backspace),
        ("a accept", KeyCode::Char('a')),
        ("x reject", KeyCode::Char('x')),
        ("Space next sample", KeyCode::Char(' ')),
        ("a accept", KeyCode::Char('a')),
        ("u undo", KeyCode::Char('u')),
        ("f flag", KeyCode::Char('f')),
        ("Space next sample", KeyCode::Char(' ')),
    ];
    let decision_key = |code: KeyCode| matches!(code, KeyCode::Char('a' | 'x' | 'u'));
    let events = |session: &Session| session.ws().decision_event_count();
    let mut all = Vec::new();
    let mut by_key: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    // Decision keys that appended nothing, per key: not timed.
    let mut idle: std::collections::BTreeMap<String, usize> = Default::default();
    // Per filter: samples in view, time of the F that reached it, decisions made under it.
    let mut filters: Vec<(String, usize, Duration, usize)> = Vec::new();
    let cycles = 6;
    let mut cycle = 0;
    while cycle < cycles {
        let label = session.app.queue.filter().label();
        let in_view = session.app.queue.position().1;
        let mut decided = 0;
        for (class, code) in &script {
            let before = if decision_key(*code) {
                events(&session)?
            } else {
                0
            };
            let t = Instant::now();
            session.dispatch(Msg::Key(KeyEvent::new(*code, KeyModifiers::NONE)));
            terminal.draw(|f| draw(f, &session.app, &mut image))?;
            let elapsed = t.elapsed();
            if decision_key(*code) && events(&session)? == before {
                *idle.entry(class.to_string()).or_default() += 1;
                continue;
            }
            decided += decision_key(*code) as usize;
            all.push(elapsed);
            by_key.entry(class.to_string()).or_default().push(elapsed);
        }
        let t = Instant::now();
        session.dispatch(Msg::Key(KeyEvent::new(
            KeyCode::Char('F'),
            KeyModifiers::NONE,
        )));
        terminal.draw(|f| draw(f, &session.app, &mut image))?;
        let elapsed = t.elapsed();
        all.push(elapsed);
        by_key.entry("F filter".into()).or_default().push(elapsed);
        if let Some(row) = filters.iter_mut().find(|r| r.0 == label) {
            row.1 = row.1.max(in_view);
            row.3 += decided;
        } else {
            filters.push((label, in_view, Duration::ZERO, decided));
        }
        let next = session.app.queue.filter().label();
        match filters.iter_mut().find(|r| r.0 == next) {
            Some(row) => row.2 = row.2.max(elapsed),
            None => filters.push((next.clone(), 0, elapsed, 0)),
        }
        if next == "all" {
            cycle += 1;
        }
    }
    let t = Instant::now();
    let hits = session.ws().search("lesion measuring 17 mm")?;
    let search = t.elapsed();

    println!("review screen, {samples} samples, 200x60 frame, keystroke to frame:");
    println!(
        "{:<24}{:>8}{:>12}{:>12}{:>12}{:>10}",
        "key", "n", "p50 ms", "p99 ms", "max ms", "idle"
    );
    let mut rows: Vec<(String, Vec<Duration>)> = by_key.into_iter().collect();
    rows.push(("all timed keys".into(), all));
    for (class, mut times) in rows {
        times.sort();
        println!(
            "{class:<24}{:>8}{:>12.3}{:>12.3}{:>12.3}{:>10}",
            times.len(),
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().expect("timed").as_secs_f64() * 1e3,
            idle.get(&class).copied().unwrap_or(0),
        );
    }
    println!("(idle: decision keys that appended no decision event, not timed)");
    println!();
    println!(
        "{:<28}{:>10}{:>16}{:>12}",
        "filter", "in view", "F max ms", "decisions"
    );
    for (label, in_view, f_time, decided) in &filters {
        println!(
            "{label:<28}{in_view:>10}{:>16.3}{decided:>12}",
            f_time.as_secs_f64() * 1e3
        );
    }
    println!(
        "background search over all text: {} hits in {:.0} ms (off the UI thread)",
        hits.len(),
        search.as_secs_f64() * 1e3
    );
    Ok(())
}
