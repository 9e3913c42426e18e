//! The team server: a PostgreSQL workspace answers like a directory, copies both ways without
//! loss, holds reviewers to their own role, and takes four reviewers' decisions during an import.

use std::path::Path;

use crate::common::{stderr, vital_env, vital_env_ok, vital_ok, ServerDb};
use vital::store::{DecisionKind, NewDecision, Workspace};

/// Makes reviewer `role` on the server at `url` (a curator's command); returns the password it
/// printed on a line of its own.
fn add_reviewer(url: &Path, role: &str, env: &[(&str, &str)]) -> String {
    let printed = vital_env_ok(url, &["store", "add-reviewer", role], env);
    printed
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the password on a line of its own")
        .to_string()
}

/// What two workspaces must agree on: the counts and every export that does not need training.
fn same_data(a: &Path, a_env: &[(&str, &str)], b: &Path, b_env: &[(&str, &str)], formats: &[&str]) {
    let stats = |w: &Path, env: &[(&str, &str)]| vital_env_ok(w, &["stats", "--json"], env);
    assert_eq!(stats(a, a_env), stats(b, b_env), "stats --json");
    let out = tempfile::tempdir().unwrap();
    for format in formats {
        let export = |w: &Path, env: &[(&str, &str)], name: &str| {
            let file = out.path().join(format!("{name}.{format}"));
            vital_env_ok(
                w,
                &[
                    "export",
                    "--format",
                    format,
                    "--out",
                    file.to_str().unwrap(),
                    "-q",
                ],
                env,
            );
            std::fs::read(file).unwrap()
        };
        assert!(
            export(a, a_env, "a") == export(b, b_env, "b"),
            "the {format} exports differ"
        );
    }
}

#[test]
fn a_server_workspace_answers_like_a_directory_and_copies_both_ways_byte_for_byte() {
    let Some(server) = ServerDb::create() else {
        return;
    };
    let Some(copy) = ServerDb::create() else {
        return;
    };
    let files = server.files.path().to_str().unwrap().to_string();
    let env = [("VITAL_SERVER_FILES", files.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let url = Path::new(&server.url);
    vital_env_ok(url, &["demo", "--stats"], &env);
    vital_ok(dir.path(), &["demo", "--stats"]);
    same_data(
        url,
        &env,
        dir.path(),
        &[],
        &["llava", "dpo", "pairs", "demos"],
    );

    // A trained directory, up to a server and back down: every row, scores included.
    vital_ok(dir.path(), &["train", "-q"]);
    let copy_files = copy.files.path().to_str().unwrap().to_string();
    let copy_env = [("VITAL_SERVER_FILES", copy_files.as_str())];
    let dir_text = dir.path().to_str().unwrap();
    vital_env_ok(
        dir.path(),
        &["store", "copy", dir_text, &copy.url],
        &copy_env,
    );
    let down = tempfile::tempdir().unwrap();
    let down_dir = down.path().join("ws");
    vital_env_ok(
        dir.path(),
        &["store", "copy", &copy.url, down_dir.to_str().unwrap()],
        &copy_env,
    );
    let formats = ["llava", "dpo", "pairs", "demos", "scores"];
    same_data(dir.path(), &[], Path::new(&copy.url), &copy_env, &formats);
    same_data(dir.path(), &[], &down_dir, &[], &formats);

    // The server's events are the directory's, each with its time, reviewer, order and id.
    let events = |ws: &Workspace| format!("{:?}", ws.decision_events().unwrap());
    let from_dir = Workspace::open_existing(dir.path()).unwrap();
    let from_down = Workspace::open_existing(&down_dir).unwrap();
    assert_eq!(events(&from_dir), events(&from_down));

    // Copying into a workspace that holds data is refused, and changes nothing.
    let refused = vital_env(dir.path(), &["store", "copy", dir_text, &server.url], &env);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
}

#[test]
fn a_reviewer_role_reviews_as_itself_and_the_server_refuses_the_rest() {
    let Some(server) = ServerDb::with_demo() else {
        return;
    };
    let files = server.files.path().to_str().unwrap().to_string();
    let env = server.env();
    let url = Path::new(&server.url);
    let role = format!("dr_lee_{}", std::process::id());
    let password = add_reviewer(url, &role, &env);
    assert_eq!(password.len(), 48);
    let second = format!("dr_kim_{}", std::process::id());
    let json: serde_json::Value = serde_json::from_str(&vital_env_ok(
        url,
        &["store", "add-reviewer", &second, "--json"],
        &env,
    ))
    .unwrap();
    assert_eq!(json["role"], second.as_str());

    let as_reviewer = server.url_as(&role);
    let reviewer_env = [
        ("VITAL_SERVER_FILES", files.as_str()),
        ("PGPASSWORD", password.as_str()),
    ];
    let reviewer_url = Path::new(&as_reviewer);
    let before = vital_env_ok(url, &["stats", "--json"], &env);
    let theirs: serde_json::Value = serde_json::from_str(&vital_env_ok(
        reviewer_url,
        &["stats", "--json"],
        &reviewer_env,
    ))
    .unwrap();
    let all: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        theirs["samples"], all["samples"],
        "a reviewer reads the samples"
    );
    assert!(all["judgments"].as_i64().unwrap() > 0);
    assert_eq!(
        theirs["judgments"], 0,
        "and none of the others' decisions (blind review)"
    );
    let data = tempfile::tempdir().unwrap();
    let file = crate::common::write(
        data.path(),
        "more.json",
        r#"[{"id": "z1", "image": "z.png", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}]"#,
    );
    let out = tempfile::tempdir().unwrap();
    let export_to = out.path().join("x.json");
    for args in [
        vec!["import", file.to_str().unwrap()],
        vec!["train", "-q"],
        vec![
            "export",
            "--format",
            "llava",
            "--out",
            export_to.to_str().unwrap(),
        ],
        vec!["store", "add-reviewer", "mallory"],
    ] {
        let refused = vital_env(reviewer_url, &args, &reviewer_env);
        assert_eq!(refused.status.code(), Some(1), "{args:?} is refused");
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(message.contains("curator"), "{args:?}: {message}");
    }
    assert!(!export_to.exists());
    assert_eq!(vital_env_ok(url, &["stats", "--json"], &env), before);

    // A wrong password is refused by the server, and the message names no secret.
    let wrong = vital_env(
        reviewer_url,
        &["stats"],
        &[
            ("VITAL_SERVER_FILES", files.as_str()),
            ("PGPASSWORD", "nope"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    let message = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        message.contains("cannot connect") && !message.contains("nope"),
        "{message}"
    );

    let mut admin = server.admin();
    for r in [&role, &second] {
        admin
            .batch_execute(&format!("DROP OWNED BY {r}; DROP ROLE {r}"))
            .unwrap();
    }
}

/// A LLaVA release of `n` one-round samples.
fn release(n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "bulk-{i}", "image": "bulk-{i}.png", "conversations": [{{"from": "human", "value": "<image>\nWhat is shown in figure {i}?"}}, {{"from": "gpt", "value": "A finding number {i}."}}]}}"#
            )
        })
        .collect();
    format!("[{}]", records.join(",\n"))
}

/// The decisions reviewer `r` makes: 200, over the demo's answers, accept and reject in turn.
fn decisions(ws: &Workspace, r: usize) -> Vec<NewDecision> {
    let mut answers = Vec::new();
    for key in ws.sample_keys().unwrap() {
        let s = ws.load_sample(key).unwrap().unwrap();
        for (round, ids) in s.round_ids.iter().zip(&s.answer_ids) {
            for id in ids {
                answers.push((key, *round, *id));
            }
        }
    }
    (0..200)
        .map(|i| {
            let (sample_key, round, answer) = answers[(i * 7 + r * 3) % answers.len()];
            NewDecision {
                sample_key,
                round_id: Some(round),
                answer_id: Some(answer),
                kind: if (i + r).is_multiple_of(3) {
                    DecisionKind::Reject
                } else {
                    DecisionKind::Accept
                },
                value: None,
                shown_order: None,
                figure_shown: None,
            }
        })
        .collect()
}

#[test]
fn four_reviewers_deciding_during_an_import_lose_nothing_and_agree_as_on_a_directory() {
    let Some(server) = ServerDb::with_demo() else {
        return;
    };
    let files = server.files.path().to_str().unwrap().to_string();
    let url = server.url.clone();
    let data = tempfile::tempdir().unwrap();
    let big = crate::common::write(data.path(), "release.json", &release(5000));
    // Planned before the import starts, so the bulk samples are not among them.
    let plans: Vec<Vec<NewDecision>> = {
        let ws = Workspace::open_existing_with_files(Path::new(&url), Path::new(&files)).unwrap();
        (0..4).map(|r| decisions(&ws, r)).collect()
    };
    let before = Workspace::open_existing_with_files(Path::new(&url), Path::new(&files))
        .unwrap()
        .decision_event_count()
        .unwrap();
    // The import runs in its own process while four reviewers decide on their own connections.
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
        .args(["-w", &url, "import", big.to_str().unwrap(), "-q"])
        .env("VITAL_CONFIG", "")
        .env("VITAL_SERVER_FILES", &files)
        .spawn()
        .unwrap();
    let reviewers: Vec<_> = plans
        .iter()
        .cloned()
        .enumerate()
        .map(|(r, plan)| {
            let (url, files) = (url.clone(), files.clone());
            std::thread::spawn(move || {
                let ws = Workspace::open_existing_with_files(Path::new(&url), Path::new(&files))
                    .unwrap();
                for d in plan {
                    ws.record(&format!("rev{r}"), &d).unwrap();
                }
            })
        })
        .collect();
    for r in reviewers {
        r.join().unwrap();
    }
    assert!(import.wait_with_output().unwrap().status.success());
    let ws = Workspace::open_existing_with_files(Path::new(&url), Path::new(&files)).unwrap();
    let events = ws.decision_events().unwrap();
    assert_eq!(
        events.len() as i64,
        before + 800,
        "every decision exactly once"
    );
    let uids: std::collections::HashSet<_> = ws
        .decision_events()
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(uids.len(), events.len());
    assert_eq!(ws.stats().unwrap().samples, 11 + 5000);

    // The same decisions on a directory give the same agreement figures.
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--stats"]);
    let local = Workspace::open_existing(dir.path()).unwrap();
    for (r, plan) in plans.iter().enumerate() {
        assert_eq!(&decisions(&local, r), plan, "the same answers on both");
        for d in plan {
            local.record(&format!("rev{r}"), d).unwrap();
        }
    }
    // Reviewer ids follow who came first, which differs between the runs: compare by name.
    let figures = |ws: &Workspace| {
        let mut value = serde_json::to_value(ws.agreement_report().unwrap().agreement).unwrap();
        value["reviewers"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|r| r.to_string());
        let pairs = value["pairs"].as_array_mut().unwrap();
        for pair in pairs.iter_mut() {
            let p = pair.as_object_mut().unwrap();
            if p["a"].as_str() > p["b"].as_str() {
                let (a, b) = (p["a"].clone(), p["b"].clone());
                p.insert("a".into(), b);
                p.insert("b".into(), a);
            }
        }
        pairs.sort_by_key(|p| (p["a"].to_string(), p["b"].to_string()));
        // Sums taken in another reviewer order may differ in the last bit.
        round_floats(&mut value);
        value
    };
    assert_eq!(figures(&ws), figures(&local));
}

fn round_floats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            *value = serde_json::json!((x * 1e9).round() / 1e9);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(round_floats),
        serde_json::Value::Object(map) => map.values_mut().for_each(round_floats),
        _ => {}
    }
}

#[test]
fn two_curators_importing_the_same_file_at_once_store_it_once() {
    let Some(server) = ServerDb::create() else {
        return;
    };
    let files = server.files.path().to_str().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let file = crate::common::write(data.path(), "release.json", &release(2000));
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vital"))
            .args(["-w", &server.url, "import", file.to_str().unwrap(), "-q"])
            .env("VITAL_CONFIG", "")
            .env("VITAL_SERVER_FILES", &files)
            .spawn()
            .unwrap()
    };
    let (a, b) = (run(), run());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() || b.status.success(), "one import wins");
    let ws =
        Workspace::open_existing_with_files(Path::new(&server.url), server.files.path()).unwrap();
    let stats = ws.stats().unwrap();
    assert_eq!((stats.samples, stats.sources), (2000, 1), "nothing doubled");
}

/// In tmux, a reviewer's own role on the server: decisions are stored under the role, a kill -9
/// loses none, and when the server goes away mid-session the screen says so, keeps deciding,
/// and sends them once when it is back.
#[test]
fn tmux_review_on_a_server_survives_a_kill_and_the_server_going_away() {
    if !crate::common::tmux_available() {
        return;
    }
    let Some(server) = ServerDb::with_demo() else {
        return;
    };
    let files = server.files.path().to_str().unwrap().to_string();
    let env = server.env();
    let url = Path::new(&server.url);
    let role = format!("tmux_{}", std::process::id());
    let password = add_reviewer(url, &role, &env);
    // Decision events: each decision appends exactly one.
    let events = || {
        let out = vital_env_ok(url, &["stats", "--json"], &env);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["judgment_events"]
            .as_i64()
            .unwrap()
    };
    let imported = events();
    let as_reviewer = server.url_as(&role);
    let reviewer_env = format!("VITAL_SERVER_FILES='{files}' PGPASSWORD='{password}'");
    // `--reviewer someone_else` is given and ignored: on a server the role is the reviewer.
    let tmux = crate::review::Tmux::start_on_server(&as_reviewer, &reviewer_env, "someone_else");
    tmux.wait_for(
        &format!("reviewer {role}"),
        "the screen under the role's name",
    );
    for key in ["a", "x", "a", "x", "a", "x"] {
        tmux.send(key);
    }
    tmux.wait_for("demo-ct-2", "auto-advance to the second sample");
    tmux.send("a");
    tmux.wait_for("✓", "the decision on the second sample to show");
    tmux.kill_9();
    assert_eq!(events(), imported + 7, "every decision shown was stored");

    let tmux = crate::review::Tmux::start_on_server(&as_reviewer, &reviewer_env, "someone_else");
    tmux.wait_for("reviewed 1/11", "the screen to reopen where it was");
    let name = server
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // From a connection to another database: this one is taken away.
    let set_reachable = |admin: &mut postgres::Client, reachable: bool| {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
            ))
            .unwrap();
        if !reachable {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .unwrap();
        }
    };
    let mut outside = {
        let mut config: postgres::Config = server
            .url
            .replace(&format!("/{name}"), "/postgres")
            .parse()
            .unwrap();
        config.password(std::env::var("PGPASSWORD").unwrap());
        config.connect(postgres::NoTls).unwrap()
    };
    set_reachable(&mut outside, false);
    tmux.send("a");
    tmux.send("x");
    tmux.wait_for(
        "offline — 2 decisions kept on this machine",
        "the screen to say so",
    );
    set_reachable(&mut outside, true);
    tmux.wait_for(
        "every decision is stored in the workspace",
        "the journal to be sent",
    );
    assert_eq!(events(), imported + 9, "each sent once");
    tmux.send("q");
    tmux.wait_gone();
    outside
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();
    outside.batch_execute(&format!("DROP ROLE {role}")).unwrap();
}

#[test]
fn add_reviewer_refuses_sql_keywords_and_never_prints_the_password_verifier() {
    let Some(server) = ServerDb::with_demo() else {
        return;
    };
    let url = Path::new(&server.url);
    for name in [
        "current_user",
        "session_user",
        "user",
        "all",
        "none",
        "select",
    ] {
        let out = vital_env(url, &["store", "add-reviewer", name], &server.env());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains("SQL keyword") || err.contains("reserved"),
            "{name}: {err}"
        );
        assert!(!err.contains("SCRAM-SHA-256"), "{name}: {err}");
    }
}

#[test]
fn a_password_in_any_spelling_of_the_server_url_is_refused_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgresql://u@127.0.0.1:1/db?pass%77ord=s3cr3t",
        "postgresql://u@127.0.0.1:1/db?PASSWORD=s3cr3t",
        "postgresql://u@127.0.0.1:1/db?sslpassword=s3cr3t",
        "postgresql://u%3As3cr3t@127.0.0.1:1/db",
        "POSTGRESQL://u:s3cr3t@127.0.0.1:1/db",
        "host=127.0.0.1 dbname=db password=s3cr3t",
    ] {
        let out = std::process::Command::new(crate::common::vital_binary())
            .current_dir(dir.path())
            .args(["-w", url, "stats"])
            .env("VITAL_CONFIG", "")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(!err.contains("s3cr3t"), "{url} echoed the password: {err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{url}: no folder was made"
        );
    }
}

#[test]
fn a_server_import_leaves_fresh_planner_statistics() {
    let Some(server) = ServerDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = crate::common::write(
        dir.path(),
        "two.jsonl",
        "{\"id\": \"p1\", \"image\": \"p1.png\", \"fig_caption\": \"c\", \"rounds\": [{\"question\": \"Q?\", \"answers\": [\"A\"]}]}\n{\"id\": \"p2\", \"image\": \"p2.png\", \"fig_caption\": \"c\", \"rounds\": [{\"question\": \"Q?\", \"answers\": [\"B\"]}]}\n",
    );
    vital_env_ok(
        Path::new(&server.url),
        &["import", input.to_str().unwrap()],
        &server.env(),
    );
    let mut client = crate::common::server_client(&server.url);
    // A table never analysed has reltuples -1; ANALYZE sets it, in the same transaction.
    let tuples: f32 = client
        .query_one(
            "SELECT reltuples FROM pg_class WHERE relname = 'samples'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!((tuples - 2.0).abs() < 0.5, "samples analysed: {tuples}");
}

/// Databases whose names fold to the same text (`north-a`, `north_a`) once shared one reviewer
/// group: a reviewer of one read the other. Each database has its own group now.
#[test]
fn a_reviewer_of_one_database_cannot_read_another_whose_name_folds_the_same() {
    let Some(admin) = std::env::var("VITAL_TEST_PG")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        crate::common::missing("VITAL_TEST_PG is not set");
        return;
    };
    let mut client = crate::common::server_client(&admin);
    let pid = std::process::id();
    let names = [
        format!("vital_fold_{pid}_north-a"),
        format!("vital_fold_{pid}_north_a"),
    ];
    for name in &names {
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
    }
    let url_of = |db: &str| {
        let (base, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
        let base = base.rsplit_once('/').unwrap().0;
        format!("{base}/{db}?{query}")
    };
    let files = tempfile::tempdir().unwrap();
    let env = [("VITAL_SERVER_FILES", files.path().to_str().unwrap())];
    vital_env_ok(Path::new(&url_of(&names[0])), &["demo", "--stats"], &env);
    let role = format!("fold_{pid}");
    let password = add_reviewer(Path::new(&url_of(&names[0])), &role, &env);
    // The other database set up after the reviewer exists (its curator's migration grants
    // its reviewer group the right to read).
    vital_env_ok(Path::new(&url_of(&names[1])), &["demo", "--stats"], &env);
    // As psql would: the reviewer's own role on the other database.
    let other = {
        let mut config: postgres::Config = url_of(&names[1]).parse().unwrap();
        config.user(&role);
        config.password(&password);
        config.connect(postgres::NoTls)
    };
    let read = other.and_then(|mut c| c.query_one("SELECT count(*) FROM samples", &[]));
    // Clean up before asserting.
    for name in &names {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    }
    let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
    assert!(read.is_err(), "the reviewer read the other database");
}

/// A directory imported before NULs were removed at import: copied to a server without them
/// (the copy failed on the raw SQLSTATE).
#[test]
fn a_directory_holding_a_nul_copies_to_a_server_without_it() {
    let Some(server) = ServerDb::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--stats"]);
    {
        let db = rusqlite::Connection::open(dir.path().join("vital.db")).unwrap();
        db.execute(
            "UPDATE samples SET caption = 'Axial' || char(0) || ' CT' WHERE id = (SELECT min(id) FROM samples)",
            [],
        )
        .unwrap();
    }
    let out = vital_env(
        dir.path(),
        &["store", "copy", dir.path().to_str().unwrap(), &server.url],
        &server.env(),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("NUL characters removed"), "{err}");
    let mut client = crate::common::server_client(&server.url);
    let caption: String = client
        .query_one(
            "SELECT caption FROM samples WHERE id = (SELECT min(id) FROM samples)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(caption, "Axial CT");
}
