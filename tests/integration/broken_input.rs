//! Hand-broken and odd inputs: each gives a clear error or a counted warning, never a crash,
//! and a failed file leaves the workspace exactly as it was.

use crate::common::{stats, stderr, vital, vital_ok, write};

const GOOD: &str = r#"{"id": "a", "image": "a.png", "fig_caption": "CT of the chest.", "rounds": [{"question": "Modality?", "answers": ["CT.", "MRI."]}]}
{"id": "b", "image": "b.png", "fig_caption": "MRI of the brain.", "rounds": [{"question": "Sequence?", "answers": ["T2.", "T1."]}, {"question": "Side?", "answers": []}]}
"#;

#[test]
fn candidates_import_with_unanswered_round() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "good.jsonl", GOOD);
    let out = vital_ok(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        out.contains("(candidates): 2 records, 2 samples added, 3 rounds, 4 answers"),
        "{out}"
    );
    assert!(out.contains("image file not found"), "{out}");
    let s = stats(dir.path());
    assert_eq!(s["unanswered_rounds"], 1);
}

#[test]
fn broken_line_names_file_line_column_and_record_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", GOOD);
    vital_ok(dir.path(), &["import", good.to_str().unwrap()]);
    let before = stats(dir.path());
    let broken = write(
        dir.path(),
        "broken.jsonl",
        "{\"id\": \"c\", \"fig_caption\": \"x\", \"rounds\": [{\"question\": \"q\", \"answers\": [\"a\"]}]}\n{\"id\": \"d\", \"rounds\": [ oops ]}\n",
    );
    let out = vital(dir.path(), &["import", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("broken.jsonl"), "{err}");
    assert!(err.contains("line 2:"), "{err}");
    assert!(err.contains("record 1"), "{err}");
    assert_eq!(
        stats(dir.path()),
        before,
        "record c of the broken file was not kept"
    );
}

#[test]
fn conflicting_id_fails_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", GOOD);
    vital_ok(dir.path(), &["import", good.to_str().unwrap()]);
    let changed = GOOD.replace("\"CT.\"", "\"Ultrasound.\"")
        + r#"{"id": "c", "fig_caption": "New.", "rounds": [{"question": "q", "answers": ["x"]}]}"#;
    let file = write(dir.path(), "changed.jsonl", &changed);
    let out = vital(dir.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("sample id `a` is already stored with different content"),
        "{err}"
    );
    assert!(err.contains("record 0 (line 1)"), "{err}");
    assert_eq!(stats(dir.path())["samples"], 2);
    let out = vital_ok(
        dir.path(),
        &["import", file.to_str().unwrap(), "--on-conflict", "skip"],
    );
    assert!(
        out.contains("1 conflicting record(s) kept as stored"),
        "{out}"
    );
    assert_eq!(stats(dir.path())["samples"], 3);
    let shown = vital_ok(dir.path(), &["show", "a", "--no-image"]);
    assert!(
        shown.contains("Answer 1: CT."),
        "the stored version is untouched: {shown}"
    );
}

#[test]
fn byte_order_mark_wrong_types_empty_and_huge_strings_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "x".repeat(150_000);
    let text = format!(
        "\u{feff}[{{\"id\": 7, \"image\": \"i.png\", \"conversations\": [{{\"from\": \"human\", \"value\": \"<image>\\nQ?\"}}, {{\"from\": \"gpt\", \"value\": 42}}, {{\"from\": \"human\", \"value\": \"\"}}, {{\"from\": \"gpt\", \"value\": \"{huge}\"}}, {{\"from\": \"human\", \"value\": \"Last?\"}}], \"fig_caption\": [\"odd\"]}}]"
    );
    let file = write(dir.path(), "odd.json", &text);
    let out = vital_ok(dir.path(), &["import", file.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let warnings = &report["warnings"];
    assert_eq!(report["format"], "llava");
    assert_eq!(warnings["byte-order mark skipped"], 1, "{warnings}");
    assert_eq!(warnings["number where text was expected"], 1, "{warnings}");
    assert_eq!(warnings["empty turn skipped"], 1, "{warnings}");
    assert_eq!(warnings["huge field cut"], 1, "{warnings}");
    assert_eq!(warnings["wrong type (field ignored)"], 1, "{warnings}");
    assert_eq!(warnings["unanswered last question kept"], 1, "{warnings}");
    let s = stats(dir.path());
    assert_eq!(s["samples"], 1);
    assert_eq!(s["rounds"], 2);
    // The numeric answer and the cut huge answer both answer round 1.
    assert_eq!(s["answers"], 2);
}

#[test]
fn empty_files_import_nothing_and_unrecognised_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Scripts import empty batches: an empty array or JSON Lines file is a note, not a failure.
    for (name, text) in [
        ("empty.jsonl", "  \n"),
        ("empty.json", "[\n]\n"),
        ("none.jsonl", ""),
    ] {
        let empty = write(dir.path(), name, text);
        let out = vital(dir.path(), &["import", empty.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(stdout.contains("holds no records"), "{name}: {stdout}");
        let out = vital(dir.path(), &["import", "--json", empty.to_str().unwrap()]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["records"], 0, "{report}");
        assert_eq!(report["samples_added"], 0, "{report}");
    }
    assert_eq!(stats(dir.path())["samples"], 0);
    let odd = write(dir.path(), "odd.jsonl", "{\"colour\": \"blue\"}\n");
    let out = vital(dir.path(), &["import", odd.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(
        err.contains("cannot tell the file's format")
            && err.contains("colour")
            && err.contains("--format"),
        "{err}"
    );
    let scalar = write(dir.path(), "scalars.json", "[1, 2]");
    let out = vital(
        dir.path(),
        &["import", scalar.to_str().unwrap(), "--format", "llava"],
    );
    assert!(
        stderr(&out).contains("record 0 (line 1): expected an object, found a number"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_bad_file_among_several_gives_partial_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.jsonl", GOOD);
    let bad = write(dir.path(), "bad.jsonl", "{\"id\": ");
    let out = vital(
        dir.path(),
        &["import", bad.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stats(dir.path())["samples"], 2);
    let missing = vital(dir.path(), &["import", "/no/such/file.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("/no/such/file.json"));
}

#[test]
fn pairs_scores_and_urls_land_where_they_belong() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write(
        dir.path(),
        "pairs.jsonl",
        r#"{"img": "p.png", "fig_caption": "c", "inline_mention": "m", "question": "q1", "answer_positive": "good", "answer_negative": "bad"}
{"img": "p.png", "fig_caption": "c", "inline_mention": "m", "question": "q2", "answer_positive": "good2", "answer_negative": "bad2"}
"#,
    );
    vital_ok(dir.path(), &["import", pairs.to_str().unwrap()]);
    let s = stats(dir.path());
    assert_eq!(s["samples"], 2);
    assert_eq!(s["human_pairs"], 2);
    assert_eq!(s["judgments"], 4);
    assert_eq!(s["reviewers"], 1);

    let cands = write(dir.path(), "c.jsonl", GOOD);
    vital_ok(dir.path(), &["import", cands.to_str().unwrap()]);
    let scores = write(
        dir.path(),
        "scores.jsonl",
        r#"{"sample_id": "a", "round": 1, "answer": 1, "score": 9, "judge": "gpt-4"}
{"sample_id": "a", "round": 1, "answer": 2, "score": "3", "judge": "gpt-4"}
{"sample_id": "zzz", "round": 1, "answer": 1, "score": 5, "judge": "gpt-4"}
{"sample_id": "a", "round": 1, "answer": 2, "score": 11, "judge": "gpt-4"}
"#,
    );
    let out = vital_ok(dir.path(), &["import", scores.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["scores_added"], 2);
    assert_eq!(
        report["warnings"]["score for an answer not in the workspace skipped"],
        1
    );
    assert_eq!(report["warnings"]["score outside 0–10 skipped"], 1);
    assert_eq!(stats(dir.path())["model_scores"], 2);
    let conflict = write(
        dir.path(),
        "scores2.jsonl",
        r#"{"sample_id": "a", "round": 1, "answer": 1, "score": 2, "judge": "gpt-4"}"#,
    );
    let out = vital(dir.path(), &["import", conflict.to_str().unwrap()]);
    assert!(stderr(&out).contains("already scored"), "{}", stderr(&out));

    let urls = write(
        dir.path(),
        "urls.jsonl",
        r#"{"pair_id": "1_F1", "pmc_tar_url": "https://example.org/a.tar.gz", "im_path": "a/F1.jpg"}"#,
    );
    vital_ok(dir.path(), &["import", urls.to_str().unwrap()]);
    assert_eq!(stats(dir.path())["image_urls"], 1);
}

#[test]
fn large_array_streams_through() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[\n");
    for i in 0..5000 {
        if i > 0 {
            text.push_str(",\n");
        }
        text.push_str(&format!(
            r#"{{"id": "s{i}", "image": "s{i}.jpg", "conversations": [{{"from": "human", "value": "<image>\nWhat is shown in figure {i}?"}}, {{"from": "gpt", "value": "Figure {i} shows a CT scan."}}]}}"#
        ));
    }
    text.push_str("\n]\n");
    let file = write(dir.path(), "big.json", &text);
    vital_ok(dir.path(), &["import", file.to_str().unwrap(), "--quiet"]);
    let s = stats(dir.path());
    assert_eq!(s["samples"], 5000);
    assert_eq!(s["answers"], 5000);
}

/// A NUL byte in a caption: the same text on both databases, with a warning naming the record
/// (the server refused the whole file with a raw SQLSTATE).
#[test]
fn a_nul_character_is_removed_with_a_warning_in_a_directory_and_on_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::write(
        dir.path(),
        "nul.jsonl",
        "{\"id\": \"n1\", \"image\": \"n1.png\", \"fig_caption\": \"Axial\\u0000 CT\", \"rounds\": [{\"question\": \"Q?\", \"answers\": [\"A\\u0000.\"]}]}\n",
    );
    let check = |location: &std::path::Path, env: &[(&str, &str)]| {
        let out = crate::common::vital_env(location, &["import", input.to_str().unwrap()], env);
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            crate::common::stderr(&out)
        );
        assert!(out.status.success(), "{err}");
        assert!(err.contains("NUL character removed"), "{err}");
        assert!(err.contains("line 1"), "the record is named: {err}");
        let shown = String::from_utf8(
            crate::common::vital_env(location, &["show", "n1", "--no-image"], env).stdout,
        )
        .unwrap();
        assert!(shown.contains("caption:  Axial CT"), "{shown}");
        assert!(shown.contains("Answer 1: A."), "{shown}");
    };
    check(&dir.path().join("ws"), &[]);
    if let Some(server) = crate::common::ServerDb::create() {
        check(std::path::Path::new(&server.url), &server.env());
    }
}
