//! Import of the real files in ../shared/fixtures (skipped when absent).

use crate::common::{fixtures, stats, vital, vital_ok};

#[test]
fn qa50_groups_193_questions_into_50_figures() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = fx.join("llava_med_qa50.jsonl");
    let out = vital_ok(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(out.contains("(qa)"), "{out}");
    let s = stats(dir.path());
    assert_eq!(s["samples"], 50);
    assert_eq!(s["rounds"], 193);
    assert_eq!(s["answers"], 193);
    assert_eq!(s["unanswered_rounds"], 0);
    // The first figure's questions, in file order, with <image> hidden on display.
    let shown = vital_ok(dir.path(), &["show", "18063892_F3", "--no-image"]);
    assert!(
        shown.contains("Q1: What is the organ in the image?"),
        "{shown}"
    );
    assert!(!shown.contains("<image>"), "{shown}");
    assert!(shown.contains("conjunctiva"), "{shown}");
}

#[test]
fn demos_keep_consecutive_answers_as_candidates_and_join_token_mentions() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = fx.join("clinician_demos.json");
    let out = vital_ok(dir.path(), &["import", file.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["format"], "demos");
    assert_eq!(report["samples_added"], 58);
    // Records 34 and 49 have two answer turns in a row: both answers are kept as candidates.
    assert_eq!(
        report["warnings"]["consecutive answers kept as candidates of one question"],
        2
    );
    assert_eq!(report["warnings"]["several domains set"], 1);
    let s = stats(dir.path());
    assert_eq!(s["samples"], 58);
    assert_eq!(s["demos"], 58);
    assert_eq!(s["rounds"], 221);
    assert_eq!(s["answers"], 223);
    let shown = vital_ok(dir.path(), &["show", "demo-1", "--no-image"]);
    assert!(
        shown.contains("subfalcine herniation [ Figure 2 ]"),
        "mention tokens joined: {shown}"
    );
    assert!(shown.contains("[demonstration]"));
}

#[test]
fn reimporting_the_same_files_changes_nothing() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = [
        fx.join("llava_med_qa50.jsonl"),
        fx.join("clinician_demos.json"),
    ];
    let args: Vec<&str> = std::iter::once("import")
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    vital_ok(dir.path(), &args);
    let before = stats(dir.path());
    let again = vital_ok(dir.path(), &args);
    assert_eq!(again.matches("already imported").count(), 2, "{again}");
    assert_eq!(stats(dir.path()), before);
    // A copy under another name is recognised by content too.
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(&files[0], &copy).unwrap();
    assert!(vital_ok(dir.path(), &["import", copy.to_str().unwrap()]).contains("already imported"));
}

#[test]
fn truncated_copy_of_a_real_file_imports_nothing_and_says_where() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fx.join("clinician_demos.json")).unwrap();
    let cut = dir.path().join("demos_cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let out = vital(dir.path(), &["import", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::stderr(&out);
    assert!(err.contains("demos_cut.json"), "{err}");
    assert!(err.contains("malformed JSON at line"), "{err}");
    assert!(err.contains("in record"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(stats(dir.path())["samples"], 0);
}

#[test]
fn real_images_are_found_through_images_dir() {
    let Some(fx) = fixtures() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::write(
        dir.path(),
        "c.jsonl",
        r#"{"id": "x", "image": "synpic32933.jpg", "fig_caption": "c", "rounds": [{"question": "q", "answers": ["a"]}]}"#,
    );
    let images = fx.join("images");
    let out = vital_ok(
        dir.path(),
        &[
            "import",
            data.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ],
    );
    assert!(!out.contains("image file not found"), "{out}");
    let shown = vital_ok(dir.path(), &["show", "x", "--no-image"]);
    assert!(shown.contains("fixtures/images/synpic32933.jpg"), "{shown}");
}
