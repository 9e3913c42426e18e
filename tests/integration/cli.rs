//! The command line as scripts meet it: exit codes, JSON output, the demo.

use crate::common::{stats, stderr, vital, vital_ok};

#[test]
fn stats_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let s = stats(dir.path());
    for key in [
        "samples",
        "rounds",
        "answers",
        "judgments",
        "human_pairs",
        "model_scores",
        "scored_answers",
        "reviewers",
    ] {
        assert!(s[key].is_i64(), "missing {key}: {s}");
    }
    assert_eq!(s["samples"], 11);
    assert_eq!(s["human_pairs"], 4);
}

#[test]
fn demo_prints_stats_and_show_prints_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = vital_ok(dir.path(), &["demo"]);
    assert!(out.contains("samples") && out.contains("11"), "{out}");
    let shown = vital_ok(dir.path(), &["show", "demo-ct-1"]);
    assert!(
        shown.contains("Q2: Where is the nodule located?"),
        "{shown}"
    );
    assert!(
        shown.contains("demo-judge 1"),
        "judge scores shown: {shown}"
    );
    assert!(shown.contains("ct_chest_nodule.png"), "{shown}");
    assert!(!shown.contains("file not found"), "{shown}");
}

#[test]
fn usage_errors_exit_2_and_missing_things_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(vital(dir.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(vital(dir.path(), &["import"]).status.code(), Some(2));
    let out = vital(dir.path(), &["stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no workspace"), "{}", stderr(&out));
    vital_ok(dir.path(), &["demo", "--quiet"]);
    let out = vital(dir.path(), &["show", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no sample with id `nope`"));
}

#[test]
fn unknown_config_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[review]\nreviwer = \"typo\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
        .args(["-w", dir.path().to_str().unwrap(), "demo", "--quiet"])
        .env("VITAL_CONFIG", &config)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("unknown key `review.reviwer`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn log_records_each_command_in_the_file_and_nothing_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--quiet"]);
    let log = dir.path().join("vital.log");
    let quiet = vital(dir.path(), &["stats"]);
    let logged = vital(dir.path(), &["--log", log.to_str().unwrap(), "stats"]);
    assert_eq!(logged.status.code(), Some(0));
    assert_eq!(logged.stdout, quiet.stdout, "the log changes no output");
    assert_eq!(logged.stderr, quiet.stderr, "the log changes no output");
    let failed = vital(
        dir.path(),
        &["--log", log.to_str().unwrap(), "show", "nope"],
    );
    assert_eq!(failed.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("command=\"Stats\"") || text.contains("command=Stats"),
        "{text}"
    );
    assert!(
        text.contains("finished") && text.contains("code=0"),
        "{text}"
    );
    assert!(
        text.contains("failed") && text.contains("no sample with id"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("started")).count(),
        2,
        "{text}"
    );
}

#[test]
fn the_demo_hint_runs_as_typed_and_stats_labels_never_touch_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = vital_ok(dir.path(), &["demo"]);
    let hint = out
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in backticks: {out}"));
    assert!(hint.ends_with(" review"), "{hint}");
    // The same command with `stats` instead of the review screen (no terminal here).
    let typed = format!("{} stats", hint.trim_end_matches(" review"));
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(&typed)
        .env("VITAL_CONFIG", "")
        .output()
        .unwrap();
    assert!(run.status.success(), "{typed}: {}", stderr(&run));
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    let block: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    assert!(block.len() > 5, "{text}");
    let column = |line: &str| line.trim_end().rfind("  ").map(|i| i + 2);
    let first = column(block[1]).unwrap();
    for line in &block[1..] {
        assert_eq!(column(line), Some(first), "values line up: {text}");
    }
    assert!(text.contains("  demonstrations  "), "{text}");
}

#[test]
fn show_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    // `vital show ID | head -0`: the reader is gone before vital writes a line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
        .arg("-w")
        .arg(dir.path())
        .args(["show", "demo-ct-1", "--no-image"])
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_WORKSPACE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// Runs one test of this very binary with `env`, returning whether it passed.
fn run_own_test(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads", "1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out),
    )
}

#[test]
fn under_ci_a_missing_fixture_or_tmux_fails_the_test_instead_of_skipping() {
    let nowhere = "/nonexistent/vital-fixtures";
    let fixture_test = "real_fixtures::qa50_groups_193_questions_into_50_figures";
    let tmux_test = "review::tmux_review_survives_sigkill_with_every_decision_on_screen_stored";
    for (test, env) in [
        (fixture_test, vec![("VITAL_FIXTURES_DIR", nowhere)]),
        (tmux_test, vec![("PATH", "/nonexistent")]),
    ] {
        let mut with_ci = env.clone();
        with_ci.push(("CI", "true"));
        let (passed, log) = run_own_test(test, &with_ci);
        assert!(
            !passed,
            "{test} passed under CI=true without its prerequisite:\n{log}"
        );
        assert!(log.contains("CI=true and"), "{log}");
        let mut without_ci = env;
        without_ci.push(("CI", "false"));
        let (passed, log) = run_own_test(test, &without_ci);
        assert!(
            passed && log.contains("skipping:"),
            "{test} skips off CI:\n{log}"
        );
    }
}

#[test]
fn two_first_imports_into_a_new_workspace_at_once_both_succeed() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let children: Vec<_> = (0..2)
            .map(|i| {
                let file = crate::common::write(
                    dir.path(),
                    &format!("f{i}.jsonl"),
                    &format!(
                        r#"{{"id": "s{i}", "fig_caption": "CT.", "rounds": [{{"question": "Q?", "answers": ["A{i}."]}}]}}"#
                    ),
                );
                std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
                    .arg("-w")
                    .arg(&ws)
                    .args(["import", file.to_str().unwrap()])
                    .env("VITAL_CONFIG", "")
                    .env_remove("VITAL_WORKSPACE")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        assert_eq!(stats(&ws)["samples"], 2);
    }
}

/// `vital` with no `-w`, its platform folders under `home`.
fn vital_at_home(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(crate::common::vital_binary())
        .args(args)
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_WORKSPACE")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("VITAL_REVIEWER", "tester")
        .output()
        .unwrap()
}

#[test]
fn review_after_demo_without_a_workspace_names_the_demos() {
    let home = tempfile::tempdir().unwrap();
    let demo = vital_at_home(home.path(), &["demo", "--stats"]);
    assert!(demo.status.success(), "{}", crate::common::stderr(&demo));
    let review = vital_at_home(home.path(), &["review"]);
    assert_eq!(review.status.code(), Some(1));
    let err = crate::common::stderr(&review);
    assert!(err.contains("the demo workspace is at"), "{err}");
    assert!(err.contains("pass `-w"), "{err}");
}

#[test]
fn review_without_a_reviewer_name_or_user_refuses_to_guess() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::vital_ok(dir.path(), &["demo", "--stats"]);
    let out = std::process::Command::new(crate::common::vital_binary())
        .arg("-w")
        .arg(dir.path())
        .arg("review")
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_REVIEWER")
        .env_remove("USER")
        .env_remove("USERNAME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = crate::common::stderr(&out);
    assert!(err.contains("who is reviewing?"), "{err}");
}

#[test]
fn show_prints_no_escape_sequence_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::write(
        dir.path(),
        "hostile.jsonl",
        "{\"id\": \"evil\\u001b[2J\", \"image\": \"x.png\", \"fig_caption\": \"Chest\\u001b]0;pwned\\u0007 X-ray\\u001b[31m\", \"rounds\": [{\"question\": \"Q\\u001b[1A?\", \"answers\": [\"A\\u009b2J.\"]}]}\n",
    );
    crate::common::vital_ok(dir.path(), &["import", input.to_str().unwrap()]);
    let out = crate::common::vital_ok(dir.path(), &["show", "evil\u{1b}[2J", "--no-image"]);
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{9b}') && !out.contains('\u{7}'),
        "{out:?}"
    );
    assert!(out.contains("caption:  Chest X-ray"), "{out}");
    assert!(out.contains("Q1: Q?"), "{out}");
}
