//! The selector through the CLI: train, score, eval; and its quality on the real qa50 fixture.

use crate::common::{fixtures, stats, stderr, vital, vital_ok, write};
use crate::quality_data;

#[test]
fn train_scores_everything_and_reloads_for_eval() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let out = vital_ok(dir.path(), &["train", "--epochs", "3", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["run_id"], 1);
    assert_eq!(report["human_pairs"], 4);
    assert!(report["judge_pairs"].as_i64().unwrap() > 10);
    assert_eq!(report["scored_answers"], 46);
    let s = stats(dir.path());
    assert_eq!(s["scored_answers"], 46);
    assert_eq!(s["selector_runs"], 1);
    // Evaluate the saved run on a pairs file it never saw, with baselines beside it.
    let pairs = write(
        dir.path(),
        "held_out.jsonl",
        r#"{"img": "x.png", "fig_caption": "Axial CT of the chest shows a nodule in the right upper lobe.", "inline_mention": "", "question": "Where is the nodule?", "answer_positive": "The nodule is in the right upper lobe.", "answer_negative": "I'm sorry, as an AI I cannot determine this. Please consult a doctor."}
{"img": "y.png", "fig_caption": "Frontal chest radiograph shows a small left pleural effusion.", "inline_mention": "", "question": "Which side is the effusion on?", "answer_positive": "On the left side.", "answer_negative": "It may possibly be anywhere; it is not possible to tell."}
"#,
    );
    let out = vital_ok(
        dir.path(),
        &["eval", "--pairs", pairs.to_str().unwrap(), "--json"],
    );
    let eval: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(eval["pairs"], 2);
    for key in ["alignment_rate", "auc", "mean_rank", "map"] {
        assert!(eval[key].is_f64(), "{key} missing: {eval}");
        assert!(eval["baselines"]["answer_length"][key].is_f64());
    }
    let shown = vital_ok(dir.path(), &["show", "demo-ct-1", "--no-image"]);
    assert!(
        shown.contains("selector "),
        "selector scores shown: {shown}"
    );
    // Rescoring with the saved checkpoint gives the same scores.
    let before: Vec<f64> = scores(dir.path());
    vital_ok(dir.path(), &["score"]);
    let after: Vec<f64> = scores(dir.path());
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        assert!(
            (a - b).abs() < 1e-5,
            "reloaded checkpoint scores differ: {a} vs {b}"
        );
    }
}

fn scores(ws: &std::path::Path) -> Vec<f64> {
    let ws = vital::store::Workspace::open_existing(ws).unwrap();
    ws.selector_answer_scores()
        .unwrap()
        .into_iter()
        .map(|s| s.score)
        .collect()
}

#[test]
fn train_without_pairs_and_unknown_backend_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.jsonl",
        r#"{"id": "a", "fig_caption": "c", "rounds": [{"question": "q", "answers": ["x", "y"]}]}"#,
    );
    vital_ok(dir.path(), &["import", file.to_str().unwrap()]);
    let out = vital(dir.path(), &["train"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no preference pairs yet"),
        "{}",
        stderr(&out)
    );
    vital_ok(dir.path(), &["demo", "--quiet"]);
    let out = vital(dir.path(), &["train", "--backend", "tpu"]);
    assert!(
        stderr(&out).contains("unknown backend `tpu`"),
        "{}",
        stderr(&out)
    );
    if !cfg!(feature = "cuda") {
        let out = vital(dir.path(), &["train", "--backend", "cuda"]);
        assert!(stderr(&out).contains("not compiled in"), "{}", stderr(&out));
    }
    let out = vital(dir.path(), &["eval"]);
    assert!(
        stderr(&out).contains("no selector run yet"),
        "{}",
        stderr(&out)
    );
}

/// On the real qa50 figures: train on clinician pairs from half of the figures, evaluate on the
/// other half. The selector must clearly beat answer length and word overlap.
#[test]
fn selector_beats_length_and_overlap_on_held_out_qa50_figures() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let candidates = dir.path().join("qa50_pairs.jsonl");
    assert_eq!(
        quality_data::write_candidates(&fx.join("llava_med_qa50.jsonl"), &candidates),
        50
    );
    vital_ok(dir.path(), &["import", candidates.to_str().unwrap()]);
    let ws = vital::store::Workspace::open_existing(dir.path()).unwrap();
    assert!(quality_data::record_verdicts(&ws) > 150);
    drop(ws);
    let config = write(
        dir.path(),
        "config.toml",
        "[selector]\nvalidation_fraction = 0.5\nepochs = 12\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
        .args(["-w", dir.path().to_str().unwrap(), "train", "--json"])
        .env("VITAL_CONFIG", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value =
        serde_json::from_str(&vital_ok(dir.path(), &["eval", "--json"])).unwrap();
    let selector = eval["alignment_rate"].as_f64().unwrap();
    let length = eval["baselines"]["answer_length"]["alignment_rate"]
        .as_f64()
        .unwrap();
    let overlap = eval["baselines"]["word_overlap"]["alignment_rate"]
        .as_f64()
        .unwrap();
    eprintln!("held-out alignment: selector {selector:.3}, length {length:.3}, overlap {overlap:.3} ({} pairs)", eval["pairs"]);
    assert!(
        eval["pairs"].as_i64().unwrap() > 60,
        "about half of the 193 questions are held out"
    );
    // "Clearly beats": at least 5 points better, and at most 60% of the baseline's errors.
    for (name, baseline) in [("answer length", length), ("word overlap", overlap)] {
        assert!(
            selector >= baseline + 0.05,
            "selector {selector:.3} vs {name} {baseline:.3}"
        );
        assert!(
            1.0 - selector <= 0.6 * (1.0 - baseline),
            "selector errs {:.3}, {name} {:.3}",
            1.0 - selector,
            1.0 - baseline
        );
    }
}

/// Writes a float32 .npy matrix (the format numpy.save writes) and its ids file.
fn write_npy(path: &std::path::Path, ids: &[i64], rows: &[Vec<f32>]) {
    let dim = rows[0].len();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}",
        rows.len()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for row in rows {
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
    let ids_text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    let name = path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .strip_suffix(".npy")
        .unwrap();
    std::fs::write(path.with_file_name(format!("{name}.ids.txt")), ids_text).unwrap();
}

#[test]
fn paper_head_trains_on_precomputed_embeddings_keyed_by_answer_id() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let listing = vital_ok(dir.path(), &["answers"]);
    let answers: Vec<serde_json::Value> = listing
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 46);
    assert!(answers[0]["caption"].is_string() && answers[0]["question"].is_string());
    // A stand-in encoder: a few features of the text, as an outside model's vectors would be.
    let ids: Vec<i64> = answers
        .iter()
        .map(|a| a["answer_id"].as_i64().unwrap())
        .collect();
    let rows: Vec<Vec<f32>> = answers
        .iter()
        .map(|a| {
            let text = a["answer"].as_str().unwrap().to_lowercase();
            vec![
                text.len() as f32 / 100.0,
                f32::from(u8::from(text.contains("sorry") || text.contains("may"))),
                f32::from(u8::from(text.contains("caption"))),
                1.0,
            ]
        })
        .collect();
    // A dotted name: the ids file is `emb.v1.ids.txt`, beside it.
    let npy = dir.path().join("emb.v1.npy");
    write_npy(&npy, &ids, &rows);
    let out = vital_ok(
        dir.path(),
        &[
            "train",
            "--embeddings",
            npy.to_str().unwrap(),
            "--paper-head",
            "--epochs",
            "2",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["scored_answers"], 46);
    assert_eq!(report["settings"]["paper_head"], true);
    // The run reloads with its embeddings for rescoring.
    vital_ok(dir.path(), &["score"]);
    // Without the embeddings file the paper head cannot score: a clear error.
    std::fs::remove_file(&npy).unwrap();
    let out = vital(dir.path(), &["score"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("emb.v1.npy"), "{}", stderr(&out));
    let out = vital(dir.path(), &["train", "--paper-head"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--paper-head requires --embeddings"
    );
}

#[test]
fn a_cancelled_scoring_stores_nothing() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    vital_ok(dir.path(), &["train", "--epochs", "1", "--no-score"]);
    let mut ws = vital::store::Workspace::open_existing(dir.path()).unwrap();
    let (run, report, selector) = vital::selector_runs::load_run(&ws, None).unwrap();
    let err = vital::selector_runs::score(
        &mut ws,
        run,
        &selector,
        report.settings.load_embeddings().unwrap().as_ref(),
        vital::selector_runs::SampleScore::MeanBest,
        &mut |_| {},
        &AtomicBool::new(true),
    )
    .unwrap_err();
    assert!(
        err.downcast_ref::<vital::selector::Cancelled>().is_some(),
        "{err:#}"
    );
    assert_eq!(stats(dir.path())["scored_answers"], 0);
    assert_eq!(
        ws.latest_selector_run().unwrap(),
        None,
        "an unscored run is not the latest scored run"
    );
}

#[test]
fn empty_answers_are_answers_for_import_training_and_eval_pairs() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let pairs = write(
        dir.path(),
        "with_empty.jsonl",
        r#"{"img": "x.png", "fig_caption": "Axial CT of the chest.", "inline_mention": "", "question": "Where is the nodule?", "answer_positive": "In the right upper lobe.", "answer_negative": ""}
{"img": "y.png", "fig_caption": "Chest radiograph.", "inline_mention": "", "question": "Which side?", "answer_positive": "", "answer_negative": "Both, probably."}
"#,
    );
    let before = stats(dir.path())["human_pairs"].as_i64().unwrap();
    vital_ok(dir.path(), &["import", pairs.to_str().unwrap()]);
    let s = stats(dir.path());
    assert_eq!(s["human_pairs"].as_i64().unwrap(), before + 2, "{s}");
    let out = vital_ok(
        dir.path(),
        &["train", "--epochs", "1", "--no-score", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["human_pairs"], s["human_pairs"],
        "stats counts what train uses"
    );
    let out = vital_ok(
        dir.path(),
        &["eval", "--pairs", pairs.to_str().unwrap(), "--json"],
    );
    let eval: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(eval["pairs"], 2, "{eval}");
}

/// One answer per question (the method's generation) gives no within-round judge pairs; the
/// method's pairs across first-round score levels train the selector and test it on answers of
/// each level it never saw.
#[test]
fn one_answer_data_trains_on_judge_pairs_across_score_levels() {
    let dir = tempfile::tempdir().unwrap();
    let (mut samples, mut scores) = (String::new(), String::new());
    for k in 0..60 {
        let level = k % 6;
        let answer = if level >= 3 {
            format!("The lesion lies in the right upper lobe and measures {k} mm on this axial CT.")
        } else {
            "I cannot tell from this image.".to_string()
        };
        samples.push_str(&format!(
            r#"{{"id": "s{k}", "fig_caption": "Axial CT of the chest, case {k}.", "rounds": [{{"question": "Where is the lesion?", "answers": ["{answer}"]}}, {{"question": "Anything else?", "answers": ["No."]}}]}}"#
        ));
        samples.push('\n');
        scores.push_str(&format!(
            r#"{{"sample_id": "s{k}", "round": 1, "answer": 1, "score": {}, "judge": "gpt"}}"#,
            level + 4
        ));
        scores.push('\n');
        // A second-round score never makes a level.
        scores.push_str(&format!(
            r#"{{"sample_id": "s{k}", "round": 2, "answer": 1, "score": 0, "judge": "gpt"}}"#
        ));
        scores.push('\n');
    }
    let samples = write(dir.path(), "c.jsonl", &samples);
    let scores = write(dir.path(), "scores.jsonl", &scores);
    vital_ok(
        dir.path(),
        &[
            "import",
            samples.to_str().unwrap(),
            scores.to_str().unwrap(),
        ],
    );
    let out = vital(dir.path(), &["train"]);
    assert!(
        stderr(&out).contains("no preference pairs yet"),
        "one answer per question: no pairs within a round: {}",
        stderr(&out)
    );
    let out = vital_ok(
        dir.path(),
        &[
            "train",
            "--judge-pairs",
            "across-levels",
            "--judge-train-pairs",
            "300",
            "--judge-test-pairs",
            "80",
            "--epochs",
            "10",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["judge_pairs_within_round"], 0);
    assert_eq!(report["judge_pairs_across_levels"], 300);
    assert_eq!(report["judge_pairs"], 300);
    assert_eq!(report["judge_test_pairs"], 80);
    assert_eq!(report["settings"]["judge_pairs"], "across-levels");
    let test = &report["judge_test"];
    assert_eq!(test["pairs"], 80);
    assert!(
        test["alignment_rate"].as_f64().unwrap() > 0.6,
        "the selector learns the judge's levels: {test}"
    );
    let out = vital_ok(
        dir.path(),
        &[
            "train",
            "--judge-pairs",
            "both",
            "--judge-train-pairs",
            "100",
            "--judge-test-pairs",
            "80",
            "--epochs",
            "1",
        ],
    );
    assert!(
        out.contains("judge pairs: 0 within rounds + 100 across score levels; 80 judge test pairs"),
        "{out}"
    );
}

/// Clinician pairs (60) and one-answer samples with first-round judge scores at six levels.
fn paper_workspace(dir: &std::path::Path) {
    let (mut pairs, mut samples, mut scores) = (String::new(), String::new(), String::new());
    for k in 0..60 {
        pairs.push_str(&format!(
            r#"{{"img": "f{k}.png", "fig_caption": "Axial CT of the chest, case {k}.", "inline_mention": "", "question": "Where is the lesion?", "answer_positive": "The lesion lies in the right upper lobe, {k} mm.", "answer_negative": "I cannot tell from this image."}}"#
        ));
        pairs.push('\n');
    }
    for k in 0..30 {
        let level = k % 6;
        samples.push_str(&format!(
            r#"{{"id": "s{k}", "fig_caption": "Chest CT {k}.", "rounds": [{{"question": "Where?", "answers": ["Answer of quality {level}."]}}]}}"#
        ));
        samples.push('\n');
        scores.push_str(&format!(
            r#"{{"sample_id": "s{k}", "round": 1, "answer": 1, "score": {level}, "judge": "gpt"}}"#
        ));
        scores.push('\n');
    }
    let files = [
        write(dir, "pairs.jsonl", &pairs),
        write(dir, "c.jsonl", &samples),
        write(dir, "scores.jsonl", &scores),
    ];
    let args: Vec<&str> = std::iter::once("import")
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    vital_ok(dir, &args);
}

#[test]
fn the_paper_preset_trains_on_the_first_fifty_clinician_pairs_and_evaluates_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    paper_workspace(dir.path());
    let out = vital_ok(
        dir.path(),
        &[
            "train",
            "--preset",
            "paper",
            "--judge-train-pairs",
            "300",
            "--judge-test-pairs",
            "60",
            "--epochs",
            "2",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let settings = &report["settings"];
    assert_eq!(settings["preset"], "paper");
    assert_eq!(settings["learning_rate"], 1e-5);
    assert_eq!(settings["epochs"], 2, "a flag beside the preset wins");
    assert_eq!(settings["judge_pairs"], "across-levels");
    assert_eq!(settings["paper_text"], true);
    assert_eq!(report["human_pairs"], 60);
    assert_eq!(
        report["held_out_human_pairs"], 10,
        "the first 50 clinician pairs train"
    );
    assert_eq!(report["train_pairs"], 350, "50 clinician + 300 judge pairs");
    assert_eq!(report["judge_pairs_across_levels"], 300);
    assert_eq!(report["validation"]["pairs"], 10);
    assert_eq!(report["scored_samples"], 90);
    // `vital eval` finds exactly the ten held-out pairs again.
    let eval: serde_json::Value =
        serde_json::from_str(&vital_ok(dir.path(), &["eval", "--json"])).unwrap();
    assert_eq!(eval["pairs"], 10);
    assert_eq!(
        eval["alignment_rate"],
        report["validation"]["alignment_rate"]
    );
    // The sweep: one run per w, the same held-out pairs for each.
    let out = vital_ok(
        dir.path(),
        &[
            "sweep",
            "--preset",
            "paper",
            "--human-weight",
            "1,100",
            "--judge-train-pairs",
            "100",
            "--judge-test-pairs",
            "10",
            "--epochs",
            "1",
            "--json",
        ],
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 2);
    for (row, w) in rows.iter().zip([1.0, 100.0]) {
        assert_eq!(row["human_weight"], w);
        assert_eq!(row["held_out_human_pairs"], 10);
        for key in ["alignment_rate", "auc", "mean_rank", "map"] {
            assert!(row["validation"][key].is_f64(), "{key}: {row}");
        }
    }
    assert_eq!(
        (rows[0]["run_id"].as_i64(), rows[1]["run_id"].as_i64()),
        (Some(2), Some(3))
    );
    let table = vital_ok(
        dir.path(),
        &["sweep", "--human-weight", "10", "--epochs", "1"],
    );
    assert!(
        table.contains("alignment") && table.contains("MAP"),
        "{table}"
    );
    let out = vital(dir.path(), &["sweep", "--human-weight", "0"]);
    assert!(
        stderr(&out).contains("must be positive"),
        "{}",
        stderr(&out)
    );
}

/// A reviewer's correction trains as a clinician pair (the corrected text beats the original),
/// with and without an encoder: the corrected text is embedded like the answers, and the run
/// still scores only the generator's answers.
#[test]
fn a_correction_trains_as_one_more_clinician_pair_with_and_without_an_encoder() {
    use vital::store::{DecisionKind, NewDecision, Workspace};
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    {
        let ws = Workspace::open_existing(dir.path()).unwrap();
        let s = ws.load_sample_by_ext_id("demo-ct-1").unwrap().unwrap();
        let decision = |kind, value: Option<&str>| NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][1]),
            kind,
            value: value.map(String::from),
            shown_order: None,
            figure_shown: None,
        };
        ws.record("dr_lee", &decision(DecisionKind::Reject, None))
            .unwrap();
        ws.record(
            "dr_lee",
            &decision(
                DecisionKind::Edit,
                Some("A chest CT at the level of the carina, with a 9 mm right upper lobe nodule."),
            ),
        )
        .unwrap();
    }
    let report: serde_json::Value =
        serde_json::from_str(&vital_ok(dir.path(), &["train", "--epochs", "3", "--json"])).unwrap();
    assert_eq!(
        report["human_pairs"], 5,
        "the demo's 4 and the correction: {report}"
    );
    assert_eq!(report["scored_answers"], 46);
    let tiny_bert = crate::common::repo_root().join("tests/fixtures/encoder/tiny-bert");
    let report: serde_json::Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &[
            "train",
            "--encoder",
            tiny_bert.to_str().unwrap(),
            "--epochs",
            "3",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(report["human_pairs"], 5, "{report}");
    assert_eq!(report["scored_answers"], 46);
}
