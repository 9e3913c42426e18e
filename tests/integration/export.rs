//! `vital export` and the agreement part of `vital stats`, through the real binary.

use std::path::Path;

use serde_json::{json, Value};
use vital::store::{DecisionKind, NewDecision, StoredSample, Workspace};

use crate::common::{stats, stderr, vital, vital_ok, write};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `vital export --format FORMAT --out OUT`, then `more`.
fn export_args<'a>(format: &'a str, out: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["export", "--format", format, "--out", out.to_str().unwrap()];
    args.extend_from_slice(more);
    args
}

/// A reviewer's `kind` on answer `a` of round `r` of sample `s` (0-based).
fn verdict(s: &StoredSample, r: usize, a: usize, kind: DecisionKind) -> NewDecision {
    NewDecision {
        sample_key: s.key,
        round_id: Some(s.round_ids[r]),
        answer_id: Some(s.answer_ids[r][a]),
        kind,
        value: None,
        shown_order: None,
        figure_shown: None,
    }
}

fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--quiet"]);
    dir
}

/// Files in `dir` other than the workspace's own.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("vital.db") && n != "demo-data" && n != "images")
        .collect();
    names.sort();
    names
}

const LLAVA: &str = r#"[
 {"id": "a1", "image": "a1.jpg", "conversations": [
   {"from": "human", "value": "<image>\nWhat modality is this?"}, {"from": "gpt", "value": "A CT scan."},
   {"from": "human", "value": "Which organ?"}, {"from": "gpt", "value": "The liver."}]},
 {"id": "a2", "image": "a2.jpg", "conversations": [
   {"from": "human", "value": "What is shown?\n<image>"}, {"from": "gpt", "value": "A chest X-ray."}]},
 {"id": 17, "image": "x/a3.png", "conversations": [
   {"from": "human", "value": "Describe the lesion."}, {"from": "gpt", "value": "A 2 cm mass."},
   {"from": "human", "value": "Is it benign?"}, {"from": "gpt", "value": "It cannot be told from the image."}]}
]"#;

#[test]
fn llava_import_then_export_all_gives_back_the_same_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let input = write(dir.path(), "in.json", LLAVA);
    vital_ok(&ws, &["import", input.to_str().unwrap()]);
    let out = dir.path().join("out.json");
    vital_ok(&ws, &export_args("llava", &out, &["--select", "all"]));
    let got = read_json(&out);
    let mut want: Value = serde_json::from_str(LLAVA).unwrap();
    // Ids come back as text; a question without the token gets `<image>\n` in front.
    want[2]["id"] = json!("17");
    want[2]["conversations"][0]["value"] = json!("<image>\nDescribe the lesion.");
    assert_eq!(got, want);
    // Exporting what the export re-imports gives the same file again.
    let fresh = dir.path().join("fresh");
    vital_ok(&fresh, &["import", out.to_str().unwrap()]);
    let again = dir.path().join("again.json");
    vital_ok(&fresh, &export_args("llava", &again, &[]));
    assert_eq!(read_json(&again), got);
}

#[test]
fn unanswered_and_rejected_rounds_are_dropped_and_verdicts_choose_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = dir.path().join("ws");
    let input = write(
        dir.path(),
        "cands.jsonl",
        r#"{"id": "c1", "image": "c1.png", "fig_caption": "cap", "rounds": [
            {"question": "Q1?", "answers": ["first", "second"]},
            {"question": "Q2?", "answers": ["bad one", "bad two"]},
            {"question": "Q3?", "answers": []},
            {"question": "Q4?", "answers": ["low", "high"]}]}
{"id": "c2", "image": "c2.png", "fig_caption": "cap", "rounds": [{"question": "Only?", "answers": ["nope"]}]}
"#,
    );
    vital_ok(&ws_dir, &["import", input.to_str().unwrap()]);
    let scores = write(
        dir.path(),
        "scores.jsonl",
        "{\"sample_id\": \"c1\", \"round\": 4, \"answer\": 1, \"score\": 3, \"judge\": \"j\"}\n\
         {\"sample_id\": \"c1\", \"round\": 4, \"answer\": 2, \"score\": 7, \"judge\": \"j\"}\n",
    );
    vital_ok(&ws_dir, &["import", scores.to_str().unwrap()]);
    {
        let ws = Workspace::open(&ws_dir).unwrap();
        let c1 = ws.load_sample_by_ext_id("c1").unwrap().unwrap();
        let c2 = ws.load_sample_by_ext_id("c2").unwrap().unwrap();
        ws.record("ana", &verdict(&c1, 0, 1, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(&c1, 1, 0, DecisionKind::Reject))
            .unwrap();
        ws.record("ana", &verdict(&c1, 1, 1, DecisionKind::Reject))
            .unwrap();
        ws.record("ana", &verdict(&c2, 0, 0, DecisionKind::Reject))
            .unwrap();
    }
    let out = dir.path().join("out.json");
    let summary: Value =
        serde_json::from_str(&vital_ok(&ws_dir, &export_args("llava", &out, &["--json"]))).unwrap();
    let got = read_json(&out);
    assert_eq!(
        got,
        json!([{"id": "c1", "image": "c1.png", "conversations": [
            {"from": "human", "value": "<image>\nQ1?"}, {"from": "gpt", "value": "second"},
            {"from": "human", "value": "Q4?"}, {"from": "gpt", "value": "high"}]}]),
        "accepted answer, all-rejected and unanswered rounds dropped, best judge score, c2 dropped"
    );
    let c = &summary["counts"];
    assert_eq!(c["samples_written"], 1);
    assert_eq!(c["samples_dropped"], 1);
    assert_eq!(c["rounds_written"], 2);
    assert_eq!(c["rounds_dropped_rejected"], 2);
    assert_eq!(c["rounds_dropped_unanswered"], 1);
    // `accepted` keeps only rounds with an accepted answer.
    vital_ok(
        &ws_dir,
        &export_args("llava", &out, &["--select", "accepted"]),
    );
    let got = read_json(&out);
    assert_eq!(got[0]["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(got[0]["conversations"][1]["value"], "second");
}

#[test]
fn ranked_selections_need_their_scores_and_failures_leave_no_file() {
    let dir = demo();
    let out = dir.path().join("top.json");
    std::fs::write(&out, "previous export").unwrap();
    let run = vital(
        dir.path(),
        &export_args("llava", &out, &["--select", "top:40%"]),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("no selector run yet: run `vital train` and `vital score`"),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous export");
    assert_eq!(
        files_in(dir.path()),
        vec!["top.json"],
        "no temp file or manifest left"
    );

    let summary: Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &export_args(
            "llava",
            &out,
            &["--select", "top:2", "--by", "judge", "--json"],
        ),
    ))
    .unwrap();
    let got = read_json(&out);
    assert_eq!(got.as_array().unwrap().len(), 2);
    assert_eq!(
        summary["ranking"]["unscored"].as_u64().unwrap()
            + summary["ranking"]["ranked"].as_u64().unwrap(),
        11
    );
    let manifest = read_json(&dir.path().join("top.json.manifest.json"));
    assert_eq!(manifest["select"], "top:2");
    assert_eq!(manifest["by"], "judge");
    assert_eq!(manifest["format"], "llava");
    assert_eq!(manifest["counts"]["samples_selected"], 2);
    assert_eq!(manifest["vital_version"], env!("CARGO_PKG_VERSION"));
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&out).unwrap()));
    assert_eq!(manifest["sha256"], sha);
    // A higher threshold keeps fewer samples; every kept one scores at least the threshold.
    let all: Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &export_args(
            "llava",
            &out,
            &["--select", "threshold:8.5", "--by", "judge", "--json"],
        ),
    ))
    .unwrap();
    assert!(all["ranking"]["cutoff"].as_f64().unwrap() >= 8.5);
    assert!(all["counts"]["samples_selected"].as_u64().unwrap() < 11);

    let bad = vital(
        dir.path(),
        &export_args("llava", Path::new("x.json"), &["--select", "best"]),
    );
    assert_eq!(bad.status.code(), Some(2));
    let bad = vital(
        dir.path(),
        &export_args("llava", &dir.path().join("no/such/dir.json"), &[]),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("does not exist"), "{}", stderr(&bad));
    let bad = vital(
        dir.path(),
        &export_args(
            "llava",
            &out,
            &["--by", "judge", "--judge", "nobody", "--select", "top:3"],
        ),
    );
    assert!(
        stderr(&bad).contains("no scores by judge `nobody`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn pairs_and_dpo_come_from_clinician_verdicts_and_pairs_reimport_identically() {
    let dir = demo();
    let pairs = dir.path().join("pairs.jsonl");
    vital_ok(dir.path(), &export_args("pairs", &pairs, &[]));
    let lines = read_lines(&pairs);
    assert_eq!(lines.len(), 4);
    let original = read_lines(&dir.path().join("demo-data/pairs.jsonl"));
    for (got, want) in lines.iter().zip(&original) {
        for key in [
            "img",
            "fig_caption",
            "inline_mention",
            "question",
            "answer_positive",
            "answer_negative",
        ] {
            assert_eq!(got[key], want[key], "{key}");
        }
    }
    // Re-imported elsewhere, they are the same samples (same derived ids) and the same 4 pairs.
    let fresh = tempfile::tempdir().unwrap();
    vital_ok(fresh.path(), &["import", pairs.to_str().unwrap()]);
    assert_eq!(stats(fresh.path())["human_pairs"], 4);
    let ids = |ws: &Path| {
        let w = Workspace::open(ws).unwrap();
        let mut ids: Vec<String> = w
            .sample_keys()
            .unwrap()
            .into_iter()
            .map(|k| w.load_sample(k).unwrap().unwrap().sample.id)
            .filter(|id| id.starts_with("pair-"))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(fresh.path()), ids(dir.path()));

    let dpo = dir.path().join("dpo.jsonl");
    vital_ok(dir.path(), &export_args("dpo", &dpo, &[]));
    let human = read_lines(&dpo);
    assert_eq!(human.len(), 4);
    for (d, p) in human.iter().zip(&lines) {
        assert_eq!(d["chosen"], p["answer_positive"]);
        assert_eq!(d["rejected"], p["answer_negative"]);
        assert_eq!(d["image"], p["img"]);
        assert_eq!(d["source"], "human");
        assert!(d["prompt"].is_string() && d["id"].as_str().unwrap().contains(":r1:a1>a2"));
    }
    vital_ok(
        dir.path(),
        &export_args("dpo", &dpo, &["--pairs-from", "human,judge"]),
    );
    let mixed = read_lines(&dpo);
    let judge: Vec<&Value> = mixed.iter().filter(|d| d["source"] == "judge").collect();
    assert_eq!(mixed.len() - judge.len(), 4);
    assert!(!judge.is_empty(), "the demo's judge scores give pairs");
    let out = vital(
        dir.path(),
        &export_args("dpo", &dpo, &["--pairs-from", "selector"]),
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn demos_export_approved_samples_in_the_demonstration_shape_and_reimports() {
    let dir = demo();
    let out = dir.path().join("demos.json");
    vital_ok(dir.path(), &export_args("demos", &out, &[]));
    let demos = read_json(&out);
    let demos = demos.as_array().unwrap();
    // The imported demonstration plus the four clinician pairs (every round has a ✓ answer).
    assert_eq!(demos.len(), 5, "{demos:#?}");
    let first = demos
        .iter()
        .find(|d| d["id"] == 1)
        .expect("demo 1 keeps its numeric id");
    let original = &read_json(&dir.path().join("demo-data/demos.json"))[0];
    for key in [
        "imgs",
        "domain",
        "conversations",
        "fig_caption",
        "fig_label",
        "in_text_mention",
    ] {
        assert_eq!(first[key], original[key], "{key}");
    }
    assert_eq!(first["pair_id"], "cxr_normal");
    let fresh = tempfile::tempdir().unwrap();
    let report = vital_ok(fresh.path(), &["import", out.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["format"], "demos", "{report}");
    let s = stats(fresh.path());
    assert_eq!(s["samples"], 5);
    assert_eq!(s["demos"], 5);
    let shown = vital_ok(fresh.path(), &["show", "demo-1", "--no-image"]);
    assert!(shown.contains("Is there any pleural fluid?"), "{shown}");
}

#[test]
fn scores_export_reimports_as_the_same_scores() {
    let dir = demo();
    let out = dir.path().join("scores.jsonl");
    vital_ok(dir.path(), &export_args("scores", &out, &["--by", "judge"]));
    let lines = read_lines(&out);
    assert_eq!(
        lines.len() as i64,
        stats(dir.path())["model_scores"].as_i64().unwrap()
    );
    assert!(lines
        .iter()
        .all(|l| l["judge"] == "demo-judge" && l["round"].as_i64() >= Some(1)));
    let fresh = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    vital_ok(
        fresh.path(),
        &[
            "import",
            data.join("candidates.jsonl").to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        stats(fresh.path())["model_scores"],
        stats(dir.path())["model_scores"]
    );
    let out2 = dir.path().join("scores2.jsonl");
    vital_ok(
        fresh.path(),
        &export_args("scores", &out2, &["--by", "judge"]),
    );
    assert_eq!(read_lines(&out2), lines);
    let none = vital(dir.path(), &export_args("scores", &out, &[]));
    assert!(
        stderr(&none).contains("no selector run yet"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn include_merges_releases_with_dedup_and_a_conflict_report() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let input = write(dir.path(), "in.json", LLAVA);
    vital_ok(&ws, &["import", input.to_str().unwrap()]);
    // Same a1 (different key order, extra field): a duplicate. Different a2: a conflict. b1: new.
    let release = write(
        dir.path(),
        "release.jsonl",
        r#"{"conversations": [{"from": "human", "value": "<image>\nWhat modality is this?"}, {"from": "gpt", "value": "A CT scan."}, {"from": "human", "value": "Which organ?"}, {"from": "gpt", "value": "The liver."}], "id": "a1", "image": "a1.jpg", "domain": "ct"}
{"id": "a2", "image": "a2.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "Something else."}]}
{"id": "b1", "image": "b1.jpg", "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}]}
"#,
    );
    let second = write(
        dir.path(),
        "second.json",
        r#"[{"id": "b1", "image": "b1.jpg", "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "B."}]},
            {"id": "c1", "image": "c1.jpg", "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "C."}]}]"#,
    );
    let out = dir.path().join("merged.json");
    let text = vital_ok(
        &ws,
        &export_args(
            "llava",
            &out,
            &[
                "--include",
                release.to_str().unwrap(),
                second.to_str().unwrap(),
            ],
        ),
    );
    assert!(text.contains("2 conflicts"), "{text}");
    let merged = read_json(&out);
    let ids: Vec<&str> = merged
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["a1", "a2", "17", "b1", "c1"]);
    assert_eq!(
        merged[1]["conversations"][1]["value"], "A chest X-ray.",
        "the workspace's a2 wins"
    );
    assert_eq!(
        merged[3]["conversations"][1]["value"], "A.",
        "the first include's b1 wins"
    );
    let manifest = read_json(&dir.path().join("merged.json.manifest.json"));
    let inc = &manifest["include"];
    assert_eq!(
        (
            inc[0]["records"].as_u64(),
            inc[0]["added"].as_u64(),
            inc[0]["duplicates"].as_u64(),
            inc[0]["conflicts"].as_u64()
        ),
        (Some(3), Some(1), Some(1), Some(1))
    );
    assert_eq!(
        (inc[1]["added"].as_u64(), inc[1]["conflicts"].as_u64()),
        (Some(1), Some(1))
    );
    use sha2::Digest;
    assert_eq!(
        inc[1]["sha256"],
        hex::encode(sha2::Sha256::digest(std::fs::read(&second).unwrap()))
    );
    assert_eq!(manifest["conflicts_total"], 2);
    assert!(
        manifest["conflicts"][1]
            .as_str()
            .unwrap()
            .contains("id `b1` differs from the record written from"),
        "{manifest}"
    );
    assert_eq!(manifest["counts"]["records"], 5);
    // A broken include fails the whole export and leaves no output.
    let broken = write(
        dir.path(),
        "broken.json",
        "[{\"id\": \"z\", \"conversations\": [",
    );
    let out2 = dir.path().join("merged2.json");
    let run = vital(
        &ws,
        &export_args("llava", &out2, &["--include", broken.to_str().unwrap()]),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(!out2.exists());
    assert!(!dir.path().join("merged2.json.manifest.json").exists());
    let run = vital(
        &ws,
        &export_args("dpo", &out2, &["--include", second.to_str().unwrap()]),
    );
    assert!(stderr(&run).contains("--format llava"), "{}", stderr(&run));
}

#[test]
fn stats_reports_agreement_conflicts_and_final_decisions_resolve_the_export() {
    let dir = demo();
    let (pair_key, round, answers) = {
        let ws = Workspace::open(dir.path()).unwrap();
        let key = ws
            .sample_keys()
            .unwrap()
            .into_iter()
            .find(|k| {
                ws.load_sample(*k)
                    .unwrap()
                    .unwrap()
                    .sample
                    .id
                    .starts_with("pair-")
            })
            .unwrap();
        let s = ws.load_sample(key).unwrap().unwrap();
        // `imported` said ✓ answer 1, ✗ answer 2; ana agrees on 2 and contradicts on 1.
        for (a, kind) in [(0, DecisionKind::Reject), (1, DecisionKind::Reject)] {
            ws.record("ana", &verdict(&s, 0, a, kind)).unwrap();
        }
        (key, s.round_ids[0], s.answer_ids[0].clone())
    };
    let _ = round;
    let s = stats(dir.path());
    let a = &s["agreement"];
    assert_eq!(a["items"], 2);
    assert_eq!(a["unanimous"], 1);
    assert_eq!(a["percent_agreement"], 50.0);
    assert_eq!(a["conflicts"], 1);
    assert!(a["cohen_kappa"].is_f64() || a["cohen_kappa"].is_null());
    assert_eq!(s["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(s["conflicts"][0]["accepted_by"], json!(["imported"]));
    assert_eq!(s["conflicts"][0]["rejected_by"], json!(["ana"]));
    let ana = s["reviewer_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reviewer"] == "ana")
        .unwrap()
        .clone();
    assert_eq!(ana["reject"], 2);
    let text = vital_ok(dir.path(), &["stats", "--conflicts"]);
    assert!(text.contains("Q1 Answer 1: ✓ imported / ✗ ana"), "{text}");

    // 1 ✓ vs 1 ✗ is a tie; answer 2 is rejected by both: the pair's sample keeps answer 1.
    let out = dir.path().join("o.json");
    let pair_id = s["conflicts"][0]["sample_id"].as_str().unwrap().to_string();
    let answer = |out: &Path| {
        read_json(out)
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == pair_id.as_str())
            .map(|r| r["conversations"][1]["value"].clone())
    };
    vital_ok(dir.path(), &export_args("llava", &out, &[]));
    assert!(answer(&out).is_some());
    // A final ✗ on answer 1 leaves nothing acceptable: the sample is dropped; the conflict shows as resolved.
    Workspace::open(dir.path())
        .unwrap()
        .record_final("dr lead", answers[0], false)
        .unwrap();
    vital_ok(dir.path(), &export_args("llava", &out, &[]));
    assert_eq!(answer(&out), None);
    let s = stats(dir.path());
    assert_eq!(s["agreement"]["resolved_conflicts"], 1);
    assert_eq!(s["conflicts"][0]["resolution"]["by"], "dr lead");
    assert!(!s["agreement"]["reviewers"]
        .as_array()
        .unwrap()
        .contains(&json!("final")));
    let keys = Workspace::open(dir.path())
        .unwrap()
        .disagreement_keys(true)
        .unwrap();
    assert!(keys.is_empty());
    assert_eq!(
        Workspace::open(dir.path())
            .unwrap()
            .disagreement_keys(false)
            .unwrap(),
        vec![pair_key]
    );
}

#[test]
fn a_cancelled_export_writes_nothing() {
    let dir = demo();
    let out = dir.path().join("c.json");
    let cancel = std::sync::atomic::AtomicBool::new(true);
    let req = vital::export::ExportRequest::new(
        vital::export::Selection::All,
        vital::export::ExportFormat::Llava,
        &out,
    );
    let err = vital::export::run_in_dir(dir.path(), &req, &|_| {}, &cancel).unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

/// One sample, "e1": "What is shown?" answered "A left effusion." and "Normal.".
fn effusion_candidates(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "c.jsonl",
        r#"{"id": "e1", "fig_caption": "Chest CT.", "rounds": [{"question": "What is shown?", "answers": ["A left effusion.", "Normal."]}]}
"#,
    )
}

#[test]
fn an_edit_exports_as_a_dpo_pair_an_edits_line_and_the_llava_answer_and_imports_back() {
    let dir = tempfile::tempdir().unwrap();
    let candidates = effusion_candidates(dir.path());
    let ws_dir = dir.path().join("ws");
    vital_ok(&ws_dir, &["import", candidates.to_str().unwrap()]);
    {
        let ws = Workspace::open_existing(&ws_dir).unwrap();
        let s = ws.load_sample_by_ext_id("e1").unwrap().unwrap();
        // What the review screen records for `e`, Ctrl-S, then `r 3`.
        let mut edit = verdict(&s, 0, 0, DecisionKind::Edit);
        edit.value = Some("A small left pleural effusion.".into());
        let mut reason = verdict(&s, 0, 0, DecisionKind::Reason);
        reason.value = Some("factual error".into());
        for d in [verdict(&s, 0, 0, DecisionKind::Reject), edit, reason] {
            ws.record("dr_lee", &d).unwrap();
        }
    }
    let edits = dir.path().join("edits.jsonl");
    vital_ok(&ws_dir, &export_args("edits", &edits, &[]));
    let line = std::fs::read_to_string(&edits).unwrap();
    let time = read_lines(&edits)[0]["time"].as_str().unwrap().to_string();
    assert_eq!(
        line,
        format!(
            "{}\n",
            json!({"id": "e1", "round": 1, "answer": 1, "question": "What is shown?",
                "original": "A left effusion.", "edited": "A small left pleural effusion.",
                "reviewer": "dr_lee", "reasons": ["factual error"], "time": time})
        ),
        "byte for byte"
    );

    let dpo = dir.path().join("dpo.jsonl");
    let summary: Value =
        serde_json::from_str(&vital_ok(&ws_dir, &export_args("dpo", &dpo, &["--json"]))).unwrap();
    assert_eq!(summary["counts"]["edit_pairs"], 1);
    assert_eq!(
        std::fs::read_to_string(&dpo).unwrap(),
        format!(
            "{}\n",
            json!({"prompt": "What is shown?", "chosen": "A small left pleural effusion.",
                "rejected": "A left effusion.", "image": null, "id": "e1:r1:a1:edit", "source": "edit"})
        )
    );

    let llava = dir.path().join("llava.json");
    vital_ok(&ws_dir, &export_args("llava", &llava, &[]));
    assert_eq!(
        read_json(&llava)[0]["conversations"][1]["value"],
        "A small left pleural effusion."
    );
    vital_ok(
        &ws_dir,
        &export_args("llava", &llava, &["--keep-originals"]),
    );
    assert_eq!(read_json(&llava)[0]["conversations"][1]["value"], "Normal.");

    // Into a fresh workspace holding the same samples: the same events, once however often.
    let fresh = dir.path().join("fresh");
    vital_ok(&fresh, &["import", candidates.to_str().unwrap()]);
    vital_ok(&fresh, &["import", edits.to_str().unwrap()]);
    vital_ok(
        &fresh,
        &["import", "--format", "edits", edits.to_str().unwrap()],
    );
    let events = |path: &Path| -> Vec<(String, Option<String>)> {
        Workspace::open_existing(path)
            .unwrap()
            .decision_events()
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.value))
            .collect()
    };
    assert_eq!(events(&fresh), events(&ws_dir));
    let again = dir.path().join("again.jsonl");
    vital_ok(&fresh, &export_args("edits", &again, &[]));
    let strip_time = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|mut l| {
                l["time"] = Value::Null;
                l
            })
            .collect()
    };
    assert_eq!(
        strip_time(read_lines(&again)),
        strip_time(read_lines(&edits))
    );
    let st = stats(&fresh);
    assert_eq!(st["edits"], 1);
    assert_eq!(
        st["reasons"],
        json!([{"reason": "factual error", "count": 1}])
    );
    assert_eq!(st["reviewer_decisions"][0]["edit"], 1);

    // An original that is not the stored answer is refused, naming the line; nothing is stored.
    let wrong = write(
        dir.path(),
        "wrong.jsonl",
        &line.replace("A left effusion.", "A right effusion."),
    );
    let out = vital(&fresh, &["import", wrong.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 1") && stderr(&out).contains("original"),
        "{}",
        stderr(&out)
    );
}

/// An edits file is hostile until proven otherwise: a reserved reviewer name, an "edit" equal to
/// its original, two reasons for one answer, an over-long reason, or a name with control
/// characters is refused, naming the line, and nothing of the file is stored.
#[test]
fn an_edits_file_is_refused_with_its_line_when_it_speaks_for_final_or_corrects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let candidates = effusion_candidates(dir.path());
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["import", candidates.to_str().unwrap()]);
    let good = json!({"id": "e1", "round": 1, "answer": 1, "question": "What is shown?",
        "original": "A left effusion.", "edited": "A small left effusion.", "reviewer": "dr_lee",
        "reasons": ["factual error"], "time": "2026-12-07T10:00:00Z"});
    let long_reason = "x".repeat(1_001);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "final",
            json!({"reviewer": "final"}),
            "reserved reviewer name",
        ),
        (
            "imported",
            json!({"reviewer": "imported"}),
            "reserved reviewer name",
        ),
        (
            "same",
            json!({"edited": "A left effusion."}),
            "is the original text",
        ),
        (
            "two",
            json!({"reasons": ["factual error", "does not answer"]}),
            "one",
        ),
        ("long", json!({"reasons": [long_reason]}), "at most 1000"),
        (
            "control",
            json!({"reviewer": "dr\u{1b}[31mlee"}),
            "not a name",
        ),
    ];
    for (name, change, expect) in cases {
        let mut bad = good.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        // A good line first: the bad second line refuses the whole file.
        let file = write(
            dir.path(),
            &format!("{name}.jsonl"),
            &format!("{good}\n{bad}\n"),
        );
        let out = vital(
            &ws,
            &["import", "--format", "edits", file.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{name}: accepted");
        let err = stderr(&out);
        assert!(
            err.contains("line 2") && err.contains(expect),
            "{name}: {err}"
        );
        assert_eq!(stats(&ws)["edits"], 0, "{name}: nothing stored");
    }
}

#[test]
fn with_figure_only_leaves_out_verdicts_given_while_the_figure_was_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let ws_dir = dir.path().join("ws");
    let input = write(
        dir.path(),
        "cands.jsonl",
        r#"{"id": "c1", "image": "c1.png", "fig_caption": "cap", "rounds": [
            {"question": "Q1?", "answers": ["seen"]},
            {"question": "Q2?", "answers": ["unseen"]}]}
"#,
    );
    vital_ok(&ws_dir, &["import", input.to_str().unwrap()]);
    {
        let ws = Workspace::open(&ws_dir).unwrap();
        let c1 = ws.load_sample_by_ext_id("c1").unwrap().unwrap();
        let with = |figure_shown, r| NewDecision {
            figure_shown: Some(figure_shown),
            ..verdict(&c1, r, 0, DecisionKind::Accept)
        };
        ws.record("ana", &with(true, 0)).unwrap();
        ws.record("ana", &with(false, 1)).unwrap();
    }
    assert_eq!(stats(&ws_dir)["decided_without_figure"], 1);
    let out = dir.path().join("out.json");
    let accepted = |more: &[&str]| {
        let mut args = vec!["--select", "accepted"];
        args.extend_from_slice(more);
        vital_ok(&ws_dir, &export_args("llava", &out, &args));
        read_json(&out)[0]["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|turn| turn["value"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(accepted(&[]), ["<image>\nQ1?", "seen", "Q2?", "unseen"]);
    assert_eq!(
        accepted(&["--with-figure-only"]),
        ["<image>\nQ1?", "seen"],
        "the answer accepted without its figure is not taken as accepted"
    );
}

/// Verdicts gathered elsewhere (a spreadsheet) import as events under the reviewers' own names,
/// at the times given, train as clinician pairs on one-answer rounds, and export back line for
/// line; importing the file again adds nothing.
#[test]
fn verdicts_import_as_the_reviewers_events_train_and_export_back_line_for_line() {
    let dir = tempfile::tempdir().unwrap();
    // One answer per question, as in the public releases.
    let candidates = write(
        dir.path(),
        "c.jsonl",
        r#"{"id": "e1", "fig_caption": "Chest CT.", "rounds": [{"question": "What is shown?", "answers": ["A left effusion."]}, {"question": "Which side?", "answers": ["The right."]}]}
{"id": "e2", "fig_caption": "Knee MRI.", "rounds": [{"question": "What is torn?", "answers": ["The ACL.", "Nothing."]}]}
"#,
    );
    let ws_dir = dir.path().join("ws");
    vital_ok(&ws_dir, &["import", candidates.to_str().unwrap()]);
    let lines = [
        json!({"sample_id": "e1", "round": 1, "answer": 1, "verdict": "accept", "reviewer": "dr_lee", "time": "2026-12-01T09:30:00.000Z"}),
        json!({"sample_id": "e1", "round": 2, "answer": 1, "verdict": "reject", "reviewer": "dr_lee", "time": "2026-12-01T09:31:00.000Z"}),
        json!({"sample_id": "e2", "round": 1, "answer": 1, "verdict": "accept", "reviewer": "dr_kim", "time": "2026-12-02T10:00:00.000Z"}),
        json!({"sample_id": "e2", "round": 1, "answer": 2, "verdict": "reject", "reviewer": "dr_kim", "time": "2026-12-02T10:00:05.000Z"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = write(dir.path(), "verdicts.jsonl", &text);
    let report: Value = serde_json::from_str(&vital_ok(
        &ws_dir,
        &["import", file.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert_eq!(report["format"], "verdicts", "detected from its keys");
    assert_eq!(report["verdicts_added"], 4);
    let st = stats(&ws_dir);
    assert_eq!(st["human_pairs"], 2, "{st}");
    assert_eq!(st["human_pairs_by_kind"]["same-figure"], 1, "{st}");
    assert_eq!(st["human_pairs_by_kind"]["same-round"], 1, "{st}");

    let out = dir.path().join("out.jsonl");
    vital_ok(&ws_dir, &export_args("verdicts", &out, &[]));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        text,
        "byte for byte"
    );

    // Again, same lines in another file: nothing new (each verdict is in force already).
    let again = write(dir.path(), "again.jsonl", &format!("{text}\n"));
    let report: Value = serde_json::from_str(&vital_ok(
        &ws_dir,
        &[
            "import",
            "--format",
            "verdicts",
            again.to_str().unwrap(),
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(report["verdicts_added"], 0);
    assert_eq!(stats(&ws_dir)["judgments"], 4);

    // Into a fresh workspace with the same samples: the same export.
    let fresh = dir.path().join("fresh");
    vital_ok(&fresh, &["import", candidates.to_str().unwrap()]);
    vital_ok(&fresh, &["import", out.to_str().unwrap()]);
    let out2 = dir.path().join("out2.jsonl");
    vital_ok(&fresh, &export_args("verdicts", &out2, &[]));
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), text);
}

/// A verdicts file is refused whole, naming the line and the reason, when a line speaks for a
/// reserved reviewer, names an answer the workspace lacks, or is malformed.
#[test]
fn a_verdicts_file_is_refused_with_its_line_and_reason_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let candidates = effusion_candidates(dir.path());
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["import", candidates.to_str().unwrap()]);
    let good = json!({"sample_id": "e1", "round": 1, "answer": 1, "verdict": "accept", "reviewer": "dr_lee"});
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "final",
            json!({"reviewer": "final"}),
            "reserved reviewer name",
        ),
        (
            "imported",
            json!({"reviewer": "imported"}),
            "reserved reviewer name",
        ),
        ("answer", json!({"answer": 3}), "has no answer 3"),
        ("round", json!({"round": 2}), "has no round 2"),
        ("sample", json!({"sample_id": "nope"}), "has no round 1"),
        ("zero", json!({"answer": 0}), "1-based"),
        (
            "verdict",
            json!({"verdict": "yes"}),
            "\"accept\" or \"reject\"",
        ),
        ("time", json!({"time": "last week"}), "not a UTC time"),
    ];
    for (name, change, expect) in cases {
        let mut bad = good.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let file = write(
            dir.path(),
            &format!("{name}.jsonl"),
            &format!("{good}\n{bad}\n"),
        );
        let out = vital(
            &ws,
            &["import", "--format", "verdicts", file.to_str().unwrap()],
        );
        assert!(!out.status.success(), "{name}: accepted");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{name}.jsonl")),
            "{name}: the file is named: {err}"
        );
        assert!(
            err.contains("line 2") && err.contains(expect),
            "{name}: {err}"
        );
        assert_eq!(stats(&ws)["judgments"], 0, "{name}: nothing stored");
    }
}
