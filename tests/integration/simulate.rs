//! `vital simulate`: a simulated reviewer at the review screen, on a copy of the workspace.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vital::store::Workspace;
use vital::tui::app::Msg;
use vital::tui::queue::Order;
use vital::tui::session::Session;
use vital::tui::simulate::{simulate, Labels, Simulation};

use crate::common::{stats, vital_ok, write};

/// `n` one-round samples (a figure-grounded answer and a refusal, in varying order) as
/// candidates, their verdicts as a labels file, and `held_out` more as held-out pairs.
fn task(dir: &Path, n: usize, held_out: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let organs = [
        "liver", "lung", "kidney", "heart", "spleen", "brain", "knee", "spine",
    ];
    let (mut candidates, mut labels, mut eval) = (String::new(), String::new(), String::new());
    for i in 0..n + held_out {
        let organ = organs[i % organs.len()];
        // LLaVA's placeholder in a first question: stored as given, left out of a pairs file's.
        let placeholder = if i == 0 { "\n<image>" } else { "" };
        let question = format!("What does the image of the {organ} show in case {i}?{placeholder}");
        let good = format!("The {organ} shows a lesion in case {i}.");
        let bad = "I'm sorry, I cannot determine this from the image.".to_string();
        let caption = format!("CT image of the {organ}, case {i}.");
        let pair = serde_json::json!({"img": "x.png", "fig_caption": caption, "inline_mention": "",
            "question": question, "answer_positive": good, "answer_negative": bad});
        if i < n {
            let answers = if i % 3 == 0 {
                [&bad, &good]
            } else {
                [&good, &bad]
            };
            candidates.push_str(
                &serde_json::json!({"id": format!("s{i}"), "fig_caption": caption,
                    "rounds": [{"question": question, "answers": answers}]})
                .to_string(),
            );
            candidates.push('\n');
            labels.push_str(&(pair.to_string() + "\n"));
        } else {
            eval.push_str(&(pair.to_string() + "\n"));
        }
    }
    let file = write(dir, "candidates.jsonl", &candidates);
    vital_ok(&dir.join("ws"), &["import", file.to_str().unwrap()]);
    (
        write(dir, "labels.jsonl", &labels),
        write(dir, "eval.jsonl", &eval),
    )
}

#[test]
fn simulate_compares_orders_over_seeds_and_leaves_the_workspace_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (labels, eval) = task(dir.path(), 8, 4);
    let ws = dir.path().join("ws");
    let plot = dir.path().join("curves.svg");
    let args = [
        "simulate",
        "--labels",
        labels.to_str().unwrap(),
        "--eval-pairs",
        eval.to_str().unwrap(),
        "--order",
        "file,random",
        "--retrain-every",
        "8",
        "--seeds",
        "2",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ];
    let first: serde_json::Value = serde_json::from_str(&vital_ok(&ws, &args)).unwrap();
    let orders = first["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2);
    for order in orders {
        let curves = order["curves"].as_array().unwrap();
        assert_eq!(curves.len(), 2, "one curve per seed");
        for curve in curves {
            let decisions: Vec<u64> = curve["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["decisions"].as_u64().unwrap())
                .collect();
            assert_eq!(decisions, [8, 16], "16 labelled answers, retrained every 8");
            assert_eq!(curve["shown"].as_array().unwrap().len(), 8);
        }
    }
    let shown = |o: usize, s: usize| first["orders"][o]["curves"][s]["shown"].clone();
    assert_eq!(
        shown(0, 0),
        serde_json::json!(["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"])
    );
    assert_ne!(shown(1, 0), shown(1, 1), "each seed its own random order");
    // The workspace read is never written; a second run is the same run.
    assert_eq!(stats(&ws)["judgments"], 0);
    assert_eq!(stats(&ws)["selector_runs"], 0);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches("<polyline").count() == 4,
        "{svg}"
    );
    // The same run drawn as PNG: the picture carries each order's colour.
    let png = dir.path().join("curves.png");
    let mut args = args.to_vec();
    *args.last_mut().unwrap() = png.to_str().unwrap();
    let again: serde_json::Value = serde_json::from_str(&vital_ok(&ws, &args)).unwrap();
    assert_eq!(again, first);
    let picture = image::open(&png).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (720, 420));
    let mut curves = 0;
    for (order, colour) in [("file", [0x1f, 0x77, 0xb4]), ("random", [0xd6, 0x27, 0x28])] {
        let drawn = picture.pixels().filter(|p| p.0 == colour).count();
        // At least the legend's name (equal curves are drawn over each other).
        assert!(drawn > 30, "{order}'s colour: {drawn} pixels");
        curves += drawn;
    }
    assert!(curves > 300, "the curves are drawn: {curves} pixels");
    let bad = dir.path().join("curves.pdf");
    *args.last_mut().unwrap() = bad.to_str().unwrap();
    let out = crate::common::vital(&ws, &args);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("curves.pdf") && stderr.contains(".png"),
        "{stderr}"
    );
    assert!(!bad.exists());
}

#[test]
fn the_simulated_reviewer_records_exactly_what_the_screens_keys_record() {
    let dir = tempfile::tempdir().unwrap();
    let (labels_file, eval) = task(dir.path(), 6, 2);
    let source = Workspace::open_existing(&dir.path().join("ws")).unwrap();
    let (inputs, pairs) = vital::selector_runs::pairs_from_file(
        &labels_file,
        &vital::image_files::ImageRoots::new(vec![dir.path().to_path_buf()]),
    )
    .unwrap();
    let labels = Labels::from_pairs(&inputs, &pairs);
    let scratch = tempfile::tempdir().unwrap();
    let sim = Simulation {
        labels: &labels,
        eval_pairs: &eval,
        order: Order::File,
        seed: 1,
        retrain_every: 100,
        max_decisions: None,
        run: vital::selector_runs::RunSettings::from_config(
            &vital::config::Config::defaults().selector,
        ),
        sample_score: vital::selector_runs::SampleScore::MeanBest,
    };
    simulate(
        &source,
        scratch.path(),
        &sim,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    // The same verdicts typed at the screen, in its natural flow (a/x move the focus on, a
    // decided sample moves to the next), on another copy.
    let by_hand = tempfile::tempdir().unwrap();
    let copy = Workspace::open(by_hand.path()).unwrap();
    source.copy_into(&copy, &mut |_, _| Ok(())).unwrap();
    let options = vital::tui::session::SessionOptions {
        shuffle: false,
        ..super::review::options("simulated")
    };
    let mut session = Session::start(copy, options).unwrap();
    for i in 0..6 {
        let verdicts = if i % 3 == 0 { "xa" } else { "ax" };
        for c in verdicts.chars() {
            session.dispatch(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
    }
    type Event = (i64, Option<i64>, Option<i64>, String, Option<String>);
    let events = |path: &Path| -> Vec<Event> {
        Workspace::open_existing(path)
            .unwrap()
            .decision_events()
            .unwrap()
            .into_iter()
            .map(|e| (e.sample_key, e.round_id, e.answer_id, e.kind, e.shown_order))
            .collect()
    };
    let simulated = events(scratch.path());
    assert_eq!(simulated.len(), 12);
    assert_eq!(simulated, events(by_hand.path()));
}
