//! Team work: the curator's plan spreads samples over reviewer processes running at once — on a
//! team server and on a directory — each sample to as many reviewers as planned, never more,
//! a killed reviewer's sample served again once its lease lapses; and on a server a reviewer's
//! own login reads no other reviewer's decisions and touches no other reviewer's lease.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::{vital_binary, vital_env, vital_env_ok, ServerDb};
use vital::store::{TeamPlan, Workspace};

/// A LLaVA release of `n` one-round samples (one answer each).
fn release(n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id": "tw-{i}", "image": "tw-{i}.png", "conversations": [{{"from": "human", "value": "<image>\nWhat does figure {i} show?"}}, {{"from": "gpt", "value": "Finding {i}."}}]}}"#
            )
        })
        .collect();
    format!("[{}]", records.join(",\n"))
}

/// One reviewer process: `vital team work` as `reviewer` on `ws` (a directory or a connection
/// string), its JSON lines on stdout.
fn worker(ws: &str, reviewer: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(vital_binary());
    command
        .args(["-w", ws, "team", "work", "--reviewer", reviewer])
        .args(extra)
        .env("VITAL_CONFIG", "")
        .env_remove("VITAL_WORKSPACE")
        .env_remove("VITAL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("the vital binary runs")
}

#[derive(Debug, Clone)]
struct Event {
    what: String,
    sample: i64,
    reviewer: String,
    at_ms: u64,
}

fn events_of(output: &[u8]) -> Vec<Event> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            Event {
                what: v["event"].as_str().unwrap().to_string(),
                sample: v["sample"].as_i64().unwrap(),
                reviewer: v["reviewer"].as_str().unwrap().to_string(),
                at_ms: v["at_ms"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// A directory workspace holding `release(n)`: (its temp dir, the workspace, a temp dir for
/// the test's data files).
fn directory_with_release(n: usize) -> (tempfile::TempDir, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let data = tempfile::tempdir().unwrap();
    let file = crate::common::write(data.path(), "release.json", &release(n));
    vital_env_ok(&ws, &["import", file.to_str().unwrap(), "-q"], &[]);
    (dir, ws, data)
}

/// A team server database holding `release(n)`, and what a test does there: the curator's
/// commands, reviewer roles (dropped with it), their commands and direct connections.
struct TeamServer {
    server: ServerDb,
    /// A temp dir for the test's data files.
    data: tempfile::TempDir,
    roles: Vec<String>,
}

impl TeamServer {
    /// None: no test server (the test skips, or fails under CI).
    fn with_release(n: usize) -> Option<Self> {
        let server = ServerDb::create()?;
        let data = tempfile::tempdir().unwrap();
        let file = crate::common::write(data.path(), "release.json", &release(n));
        let url = Path::new(&server.url);
        vital_env_ok(
            url,
            &["import", file.to_str().unwrap(), "-q"],
            &server.env(),
        );
        Some(Self {
            server,
            data,
            roles: Vec::new(),
        })
    }

    fn url(&self) -> &Path {
        Path::new(&self.server.url)
    }

    /// `vital ARGS` as the curator (the database's owner): its stdout.
    fn curator_ok(&self, args: &[&str]) -> String {
        vital_env_ok(self.url(), args, &self.server.env())
    }

    /// The workspace, opened as the curator in this process.
    fn curator(&self) -> Workspace {
        Workspace::open_existing_with_files(self.url(), self.server.files.path()).unwrap()
    }

    /// Makes reviewer role `name` (`vital store add-reviewer`): its password.
    fn add_reviewer(&mut self, name: &str) -> String {
        let password = self
            .curator_ok(&["store", "add-reviewer", name])
            .lines()
            .find_map(|l| l.strip_prefix("password: "))
            .unwrap()
            .to_string();
        self.roles.push(name.to_string());
        password
    }

    /// The environment of a `vital` run as a reviewer with `password`.
    fn reviewer_env<'a>(&'a self, password: &'a str) -> [(&'a str, &'a str); 2] {
        [
            (
                "VITAL_SERVER_FILES",
                self.server.files.path().to_str().unwrap(),
            ),
            ("PGPASSWORD", password),
        ]
    }

    /// `vital ARGS` on reviewer `name`'s own login.
    fn reviewer(&self, name: &str, password: &str, args: &[&str]) -> std::process::Output {
        let url = self.server.url_as(name);
        vital_env(Path::new(&url), args, &self.reviewer_env(password))
    }

    /// As [`Self::reviewer`], which must succeed: its stdout.
    fn reviewer_ok(&self, name: &str, password: &str, args: &[&str]) -> String {
        let url = self.server.url_as(name);
        vital_env_ok(Path::new(&url), args, &self.reviewer_env(password))
    }

    /// A direct connection as reviewer `name`, as psql would make it (not through vital).
    fn direct(&self, name: &str, password: &str) -> postgres::Client {
        let mut config: postgres::Config = self.server.url_as(name).parse().unwrap();
        config.password(password);
        config.connect(postgres::NoTls).unwrap()
    }
}

impl Drop for TeamServer {
    fn drop(&mut self) {
        let mut admin = self.server.admin();
        for r in &self.roles {
            let _ = admin.batch_execute(&format!("DROP OWNED BY {r}; DROP ROLE {r}"));
        }
    }
}

/// Starts a reviewer that takes one sample and holds it, waits for it to say so, and kills it
/// (SIGKILL: nothing lets its place go). Returns the sample it held.
fn killed_mid_sample(ws: &str, reviewer: &str, env: &[(&str, &str)]) -> i64 {
    let mut child = worker(ws, reviewer, &["--hold-ms", "600000"], env);
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let event = &events_of(line.as_bytes())[0];
    assert_eq!(event.what, "served", "{line}");
    event.sample
}

/// Runs the reviewers to the end and checks what the plan promised: every sample finished by
/// exactly its planned reviewers, never held by more than that at once, the killed reviewer's
/// sample finished by others, and every reviewer given a share.
fn run_and_check(
    ws_of: &dyn Fn(&str) -> String,
    env_of: &dyn Fn(&str) -> Vec<(String, String)>,
    reviewers: &[String],
    curator: &Workspace,
    killed: (&str, i64),
) {
    let children: Vec<Child> = reviewers
        .iter()
        .map(|r| {
            let env = env_of(r);
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            worker(
                &ws_of(r),
                r,
                &["--hold-ms", "15", "--wait", "--seconds", "50"],
                &env,
            )
        })
        .collect();
    let mut events = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a reviewer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        events.extend(events_of(&out.stdout));
    }
    let plan = curator.team_plan().unwrap().unwrap();
    let keys = curator.sample_keys().unwrap();
    // Every planned sample complete, by exactly its planned number of reviewers.
    let mut finishers: HashMap<i64, BTreeSet<String>> = HashMap::new();
    for e in events.iter().filter(|e| e.what == "finished") {
        assert!(
            finishers
                .entry(e.sample)
                .or_default()
                .insert(e.reviewer.clone()),
            "{} finished sample {} twice",
            e.reviewer,
            e.sample
        );
    }
    for &key in &keys {
        let planned = plan.reviewers_for(key) as usize;
        let got = finishers.get(&key).map_or(0, BTreeSet::len);
        assert_eq!(
            got, planned,
            "sample {key}: {got} reviewers, planned {planned}"
        );
    }
    assert_eq!(curator.plan_progress().unwrap().2, 0, "no place left");
    // The decision log agrees: each sample's decisions come from its planned reviewers only.
    let log = curator.decision_events().unwrap();
    for &key in &keys {
        let deciders: BTreeSet<i64> = log
            .iter()
            .filter(|d| d.sample_key == key)
            .map(|d| d.reviewer_id)
            .collect();
        assert_eq!(
            deciders.len(),
            plan.reviewers_for(key) as usize,
            "sample {key}"
        );
    }
    // No moment when more reviewers held a sample than it has places.
    let mut spans: HashMap<i64, Vec<(u64, u64)>> = HashMap::new();
    let mut opened: HashMap<(String, i64), u64> = HashMap::new();
    for e in &events {
        match e.what.as_str() {
            "served" => {
                opened.insert((e.reviewer.clone(), e.sample), e.at_ms);
            }
            _ => {
                let start = opened.remove(&(e.reviewer.clone(), e.sample)).unwrap();
                spans.entry(e.sample).or_default().push((start, e.at_ms));
            }
        }
    }
    for (key, spans) in &spans {
        for &(start, _) in spans {
            let holding = spans
                .iter()
                .filter(|(s, f)| *s <= start && start < *f)
                .count();
            assert!(
                holding <= plan.reviewers_for(*key) as usize,
                "sample {key} held by {holding} at once"
            );
        }
    }
    // The killed reviewer's sample went to others, and was finished.
    let (killed_reviewer, killed_sample) = killed;
    assert!(!finishers[&killed_sample].contains(killed_reviewer));
    // Nobody starved: each reviewer finished a fair part of the places.
    let places: usize = keys.iter().map(|&k| plan.reviewers_for(k) as usize).sum();
    let mut per_reviewer: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.what == "finished") {
        *per_reviewer.entry(e.reviewer.as_str()).or_default() += 1;
    }
    for r in reviewers {
        let done = per_reviewer.get(r.as_str()).copied().unwrap_or(0);
        assert!(
            done * reviewers.len() * 4 >= places,
            "{r} finished {done} of {places} places: {per_reviewer:?}"
        );
    }
}

#[test]
fn five_reviewers_on_a_server_finish_the_plan_without_taking_each_others_places() {
    let Some(mut team) = TeamServer::with_release(150) else {
        return;
    };
    team.curator_ok(&[
        "team",
        "plan",
        "--per-sample",
        "2",
        "--overlap",
        "30%",
        "--lease-minutes",
        "0.05",
    ]);
    let suffix = std::process::id();
    let reviewers: Vec<String> = (0..6).map(|i| format!("tw{i}_{suffix}")).collect();
    let passwords: HashMap<String, String> = reviewers
        .iter()
        .map(|r| (r.clone(), team.add_reviewer(r)))
        .collect();
    let env_of = |r: &str| {
        team.reviewer_env(&passwords[r])
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let ws_of = |r: &str| team.server.url_as(r);
    // The sixth reviewer takes a sample and is killed holding it.
    let victim = &reviewers[5];
    let env: Vec<(String, String)> = env_of(victim);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let held = killed_mid_sample(&ws_of(victim), victim, &env);
    run_and_check(
        &ws_of,
        &env_of,
        &reviewers[..5],
        &team.curator(),
        (victim.as_str(), held),
    );
}

#[test]
fn three_reviewers_on_a_directory_finish_the_plan_without_taking_each_others_places() {
    let (_dir, ws, _data) = directory_with_release(90);
    vital_env_ok(
        &ws,
        &[
            "team",
            "plan",
            "--per-sample",
            "2",
            "--overlap",
            "30%",
            "--lease-minutes",
            "0.05",
        ],
        &[],
    );
    let shown = vital_env_ok(&ws, &["team", "plan"], &[]);
    assert!(
        shown.contains("reviewers per sample: 2 on 30% of samples")
            && shown.contains("lease: 0.05 minutes"),
        "{shown}"
    );
    let ws_text = ws.to_str().unwrap().to_string();
    let held = killed_mid_sample(&ws_text, "r_killed", &[]);
    let reviewers: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
    let curator = Workspace::open_existing(&ws).unwrap();
    run_and_check(
        &|_| ws_text.clone(),
        &|_| Vec::new(),
        &reviewers,
        &curator,
        ("r_killed", held),
    );
    // The status names each reviewer with what they finished, and the plan as complete.
    let status: serde_json::Value =
        serde_json::from_str(&vital_env_ok(&ws, &["team", "status", "--json"], &[])).unwrap();
    assert_eq!(status["complete"], status["planned"], "{status}");
    assert_eq!(status["places_left"], 0);
    let rows = status["reviewers"].as_array().unwrap();
    let finished: i64 = rows
        .iter()
        .map(|r| r["samples_done"].as_i64().unwrap())
        .sum();
    let plan: TeamPlan = curator.team_plan().unwrap().unwrap();
    let places: i64 = curator
        .sample_keys()
        .unwrap()
        .iter()
        .map(|&k| i64::from(plan.reviewers_for(k)))
        .sum();
    assert_eq!(finished, places);
    assert!(rows.iter().all(|r| r["leased_now"] == 0), "{status}");
}

#[test]
fn a_plan_is_checked_printed_and_removed() {
    let (_dir, ws, _data) = directory_with_release(3);
    let none = vital_env_ok(&ws, &["team", "plan"], &[]);
    assert!(none.starts_with("no team plan"), "{none}");
    for (args, says) in [
        (vec!["--per-sample", "0"], "--per-sample"),
        (vec!["--overlap", "130%"], "0% to 100%"),
        (vec!["--overlap", "lots"], "a share such as 30%"),
        (vec!["--route", "ana"], "REVIEWER=DOMAIN"),
        (vec!["--cap", "ana=many"], "not a number"),
        (
            vec!["--order", "alphabetical"],
            "file, random or uncertainty",
        ),
        (vec!["--lease-minutes", "0"], "positive"),
    ] {
        let mut full = vec!["team", "plan"];
        full.extend(&args);
        let out = vital_env(&ws, &full, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(says), "{args:?}: {message}");
    }
    assert!(vital_env_ok(&ws, &["team", "plan"], &[]).starts_with("no team plan"));
    vital_env_ok(
        &ws,
        &[
            "team",
            "plan",
            "--route",
            "ana=radiology, pathology",
            "--cap",
            "ben=40",
            "--order",
            "random",
        ],
        &[],
    );
    // A change keeps what it does not name.
    let shown = vital_env_ok(
        &ws,
        &["team", "plan", "--per-sample", "3", "--overlap", "12.5%"],
        &[],
    );
    for part in [
        "reviewers per sample: 3 on 12.5% of samples",
        "route: ana → radiology, pathology",
        "cap: ben finishes at most 40 samples",
        "order: random",
        "lease: 30 minutes",
    ] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&vital_env_ok(&ws, &["team", "plan", "--json"], &[])).unwrap();
    assert_eq!(json["per_sample"], 3);
    assert_eq!(json["overlap_basis_points"], 1250);
    vital_env_ok(
        &ws,
        &["team", "plan", "--route", "ana=", "--cap", "ben=none"],
        &[],
    );
    let shown = vital_env_ok(&ws, &["team", "plan"], &[]);
    assert!(!shown.contains("ana") && !shown.contains("ben"), "{shown}");
    vital_env_ok(&ws, &["team", "plan", "--off", "-q"], &[]);
    assert!(vital_env_ok(&ws, &["team", "plan"], &[]).starts_with("no team plan"));
}

#[test]
fn guidelines_are_stored_in_versions_printed_and_bounded() {
    let (_dir, ws, data) = directory_with_release(2);
    let out = vital_env(&ws, &["team", "guidelines"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no guidelines stored yet"));
    assert_eq!(
        vital_env_ok(&ws, &["team", "guidelines", "--json"], &[]).trim(),
        "null"
    );

    let rules = crate::common::write(
        data.path(),
        "rules.md",
        "\u{feff}# Rules\n\nReject guesses.\n",
    );
    let stored = vital_env_ok(&ws, &["team", "guidelines", rules.to_str().unwrap()], &[]);
    assert!(
        stored.starts_with("stored guidelines version 1 (25 bytes)"),
        "{stored}"
    );
    let again = vital_env_ok(&ws, &["team", "guidelines", rules.to_str().unwrap()], &[]);
    assert!(again.contains("is guidelines version 1 already"), "{again}");
    let out = vital_env(&ws, &["team", "guidelines"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# Rules\n\nReject guesses.\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("guidelines version 1, stored 20"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&rules, "# Rules\n\nReject guesses.\nName the organ.\n").unwrap();
    let stored = vital_env_ok(&ws, &["team", "guidelines", rules.to_str().unwrap()], &[]);
    assert!(
        stored.starts_with("stored guidelines version 2"),
        "{stored}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&vital_env_ok(&ws, &["team", "guidelines", "--json"], &[])).unwrap();
    assert_eq!(json["version"], 2);

    // Too large, not UTF-8, missing: named, and nothing stored.
    let big = data.path().join("big.md");
    std::fs::write(&big, "x".repeat(256 * 1024 + 1)).unwrap();
    let binary = data.path().join("binary.md");
    std::fs::write(&binary, b"# Rules\n\xff\xfe").unwrap();
    for (path, says) in [
        (big.clone(), "at most 262144 bytes"),
        (binary, "not UTF-8 text (byte 9"),
        (data.path().join("absent.md"), "cannot read the guidelines"),
    ] {
        let out = vital_env(&ws, &["team", "guidelines", path.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains(says), "{message}");
        assert!(
            message.contains(path.file_name().unwrap().to_str().unwrap()),
            "{message}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&vital_env_ok(&ws, &["team", "guidelines", "--json"], &[])).unwrap();
    assert_eq!(json["version"], 2, "nothing stored by the refused files");
}

/// As psql would: the reviewer's own login, straight to the server.
#[test]
fn a_reviewer_reads_no_other_reviewers_decisions_and_touches_no_other_reviewers_lease() {
    let Some(mut team) = TeamServer::with_release(4) else {
        return;
    };
    team.curator_ok(&["team", "plan", "--per-sample", "2", "--overlap", "100%"]);
    let suffix = std::process::id();
    let (ana, ben) = (format!("bl_ana_{suffix}"), format!("bl_ben_{suffix}"));
    let (ana_password, ben_password) = (team.add_reviewer(&ana), team.add_reviewer(&ben));
    // Each decides one sample through vital, on their own login.
    for (r, password) in [(&ana, &ana_password), (&ben, &ben_password)] {
        team.reviewer_ok(
            r,
            password,
            &["team", "work", "--reviewer", r, "--samples", "1"],
        );
    }
    // Ben holds a lease on a sample he has not finished.
    let curator = team.curator();
    let open_sample = curator.sample_keys().unwrap()[3];
    let mut admin = team.server.admin();
    admin
        .execute(
            "INSERT INTO team_leases (sample_id, reviewer, until_ms, done) VALUES ($1, $2, 9999999999999, 0)",
            &[&open_sample, &ben],
        )
        .unwrap();

    let mut direct = team.direct(&ana, &ana_password);
    let count = |client: &mut postgres::Client, sql: &str| -> i64 {
        client.query_one(sql, &[]).unwrap().get(0)
    };
    let all: i64 = count(&mut admin, "SELECT count(*) FROM judgments");
    assert_eq!(all, 2, "one decision each");
    for table in ["judgments", "effective_judgments", "current_judgments"] {
        let seen = count(
            &mut direct,
            &format!(
                "SELECT count(*) FROM {table} t JOIN reviewers r ON r.id = t.reviewer_id WHERE r.name <> current_user"
            ),
        );
        assert_eq!(seen, 0, "{table}: another reviewer's rows read");
        let own = count(&mut direct, &format!("SELECT count(*) FROM {table}"));
        assert_eq!(own, 1, "{table}: her own row");
    }
    // Leases: others' are visible (who holds what) but cannot be taken over or let go.
    let affected = direct
        .execute("DELETE FROM team_leases WHERE reviewer = $1", &[&ben])
        .unwrap();
    assert_eq!(affected, 0, "letting go of Ben's places");
    let affected = direct
        .execute(
            "UPDATE team_leases SET until_ms = 0, reviewer = current_user WHERE reviewer = $1",
            &[&ben],
        )
        .unwrap();
    assert_eq!(affected, 0, "taking over Ben's places");
    let refused = direct
        .execute(
            "INSERT INTO team_leases (sample_id, reviewer, until_ms, done) VALUES ($1, $2, 1, 1)",
            &[&open_sample, &ben],
        )
        .expect_err("a place under Ben's name");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");
    let bens: i64 = admin
        .query_one(
            "SELECT count(*) FROM team_leases WHERE reviewer = $1",
            &[&ben],
        )
        .unwrap()
        .get(0);
    assert_eq!(bens, 2, "Ben's finished place and his lease are untouched");
    // Her own: taken and let go.
    direct
        .execute(
            "INSERT INTO team_leases (sample_id, reviewer, until_ms, done) VALUES ($1, current_user, 1, 0)",
            &[&open_sample],
        )
        .unwrap();
    assert_eq!(
        direct
            .execute(
                "DELETE FROM team_leases WHERE reviewer = current_user AND done = 0",
                &[]
            )
            .unwrap(),
        1
    );
    drop(direct);

    // Through vital: her stats count her own decisions; agreement and disagreements are the
    // curator's; her status is her own row.
    let as_ana = |args: &[&str]| team.reviewer_ok(&ana, &ana_password, args);
    let stats: serde_json::Value = serde_json::from_str(&as_ana(&["stats", "--json"])).unwrap();
    assert_eq!(stats["judgments"], 1, "{stats}");
    assert!(stats.get("agreement").is_none(), "{stats}");
    let text = as_ana(&["stats"]);
    assert!(
        text.contains("agreement between reviewers is the curator's"),
        "{text}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&as_ana(&["team", "status", "--json"])).unwrap();
    let rows = status["reviewers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{status}");
    assert_eq!(rows[0]["reviewer"], ana.as_str());
    assert_eq!(status["everyone"], false);
    let curator_status: serde_json::Value =
        serde_json::from_str(&team.curator_ok(&["team", "status", "--json"])).unwrap();
    assert_eq!(curator_status["reviewers"].as_array().unwrap().len(), 2);
    // A reviewer cannot change the plan.
    let refused = team.reviewer(&ana, &ana_password, &["team", "plan", "--per-sample", "1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("curator"));
}

/// On a server: the curator stores the guidelines; a reviewer reads them, cannot store any
/// (through vital or psql), and each of their decisions records the version in force, which
/// must be one that was stored.
#[test]
fn on_a_server_only_the_curator_stores_guidelines_and_decisions_record_the_version() {
    let Some(mut team) = TeamServer::with_release(2) else {
        return;
    };
    let rules = crate::common::write(team.data.path(), "rules.md", "Reject guesses.\n");
    let stored = team.curator_ok(&["team", "guidelines", rules.to_str().unwrap()]);
    assert!(
        stored.starts_with("stored guidelines version 1"),
        "{stored}"
    );
    let ana = format!("gl_ana_{}", std::process::id());
    let password = team.add_reviewer(&ana);
    let shown = team.reviewer_ok(&ana, &password, &["team", "guidelines"]);
    assert_eq!(shown, "Reject guesses.\n");
    let out = team.reviewer(
        &ana,
        &password,
        &["team", "guidelines", rules.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a curator's role"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    team.reviewer_ok(
        &ana,
        &password,
        &["team", "work", "--reviewer", &ana, "--samples", "1"],
    );
    let mut admin = team.server.admin();
    let versions: Vec<Option<i64>> = admin
        .query("SELECT guidelines_version FROM judgments", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!versions.is_empty());
    assert!(versions.iter().all(|v| *v == Some(1)), "{versions:?}");

    let mut direct = team.direct(&ana, &password);
    let refused = direct
        .execute(
            "INSERT INTO team_guidelines (version, text, stored_at, stored_by) VALUES (2, 'mine', '2026-01-01T00:00:00.000Z', current_user)",
            &[],
        )
        .expect_err("a reviewer storing guidelines");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");
    let refused = direct
        .execute(
            "INSERT INTO judgments (reviewer_id, sample_id, kind, value, slot, created_at, guidelines_version)
             SELECT r.id, (SELECT min(id) FROM samples), 'note', 'n', 'note', '2026-01-01T00:00:00.000Z', 99
               FROM reviewers r WHERE r.name = current_user",
            &[],
        )
        .expect_err("a decision under guidelines never stored");
    assert!(
        refused
            .to_string()
            .contains("guidelines version 99 was never stored")
            || format!("{refused:?}").contains("guidelines version 99 was never stored"),
        "{refused:?}"
    );
}

/// Gold checks on a server: the curator imports known verdicts (`--gold`), a reviewer is
/// served a gold sample first (onboarding) and after every N others, their accuracy on gold is
/// in their status; connected directly, the reviewer reads no gold row, stores none, and is
/// told no other reviewer's gold sample.
#[test]
fn on_a_server_gold_is_served_as_planned_scored_and_unreadable_to_reviewers() {
    let Some(mut team) = TeamServer::with_release(8) else {
        return;
    };
    // tw-5's answer is right, tw-6's is wrong: `team work` accepts every answer.
    let gold = crate::common::write(
        team.data.path(),
        "gold.jsonl",
        "{\"sample_id\": \"tw-5\", \"round\": 1, \"answer\": 1, \"verdict\": \"accept\", \"reviewer\": \"dr_senior\"}\n\
         {\"sample_id\": \"tw-6\", \"round\": 1, \"answer\": 1, \"verdict\": \"reject\", \"reviewer\": \"dr_senior\"}\n",
    );
    let stored = team.curator_ok(&[
        "import",
        "--format",
        "verdicts",
        "--gold",
        gold.to_str().unwrap(),
    ]);
    assert!(stored.contains("2 known verdicts added"), "{stored}");
    team.curator_ok(&["team", "plan", "--gold-every", "2", "--onboarding", "1"]);
    let ana = format!("gd_ana_{}", std::process::id());
    let password = team.add_reviewer(&ana);
    let as_ana = |args: &[&str]| team.reviewer_ok(&ana, &password, args);
    let out = as_ana(&["team", "work", "--reviewer", &ana, "--samples", "4"]);
    let curator = team.curator();
    let keys = curator.sample_keys().unwrap();
    let served: Vec<i64> = events_of(out.as_bytes())
        .iter()
        .filter(|e| e.what == "served")
        .map(|e| e.sample)
        .collect();
    assert_eq!(
        served,
        vec![keys[5], keys[0], keys[1], keys[6]],
        "gold first, then two others, then gold"
    );
    let status: serde_json::Value =
        serde_json::from_str(&as_ana(&["team", "status", "--json"])).unwrap();
    let row = &status["reviewers"][0];
    assert_eq!(row["reviewer"], ana.as_str(), "{status}");
    assert_eq!(
        (
            &row["gold_decided"],
            &row["gold_correct"],
            &row["gold_accuracy"]
        ),
        (
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(0.5)
        ),
        "{status}"
    );
    let text = as_ana(&["team", "status"]);
    assert!(
        text.contains("gold accuracy") && text.contains("50% of 2"),
        "{text}"
    );

    let mut direct = team.direct(&ana, &password);
    let rows: i64 = direct
        .query_one("SELECT count(*) FROM team_gold", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "a reviewer reads no gold row");
    let mut admin = team.server.admin();
    let all: i64 = admin
        .query_one("SELECT count(*) FROM team_gold", &[])
        .unwrap()
        .get(0);
    assert_eq!(all, 2);
    let refused = direct
        .execute(
            "INSERT INTO team_gold (answer_id, sample_id, accepted, source, stored_at)
             SELECT a.id, r.sample_id, 1, 'me', '2026-01-01T00:00:00.000Z'
             FROM answers a JOIN rounds r ON r.id = a.round_id LIMIT 1",
            &[],
        )
        .expect_err("a reviewer storing gold");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");
    let refused = direct
        .query_one("SELECT vital_gold_next('someone_else')", &[])
        .expect_err("another reviewer's gold sample");
    assert_eq!(refused.code().map(|c| c.code()), Some("42501"), "{refused}");
    let accuracy = direct
        .query("SELECT reviewer FROM vital_gold_accuracy()", &[])
        .unwrap();
    assert!(
        accuracy.iter().all(|r| r.get::<_, String>(0) == ana),
        "only her own accuracy"
    );
}

/// On a directory: `--gold` needs `--format verdicts`, a line naming a missing answer stores
/// nothing and names the line, the plan prints its gold settings, and `team work` is served
/// the gold samples as planned.
#[test]
fn on_a_directory_gold_is_checked_stored_whole_and_served_as_planned() {
    let (_dir, ws, data) = directory_with_release(6);
    let line = |id: &str, answer: usize, verdict: &str| {
        format!(
            "{{\"sample_id\": \"{id}\", \"round\": 1, \"answer\": {answer}, \"verdict\": \"{verdict}\", \"reviewer\": \"dr_senior\"}}\n"
        )
    };
    let broken = crate::common::write(
        data.path(),
        "broken.jsonl",
        &format!("{}{}", line("tw-2", 1, "accept"), line("tw-3", 2, "accept")),
    );
    let out = vital_env(&ws, &["import", "--gold", broken.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--format verdicts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = vital_env(
        &ws,
        &[
            "import",
            "--format",
            "verdicts",
            "--gold",
            broken.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.jsonl record 1 (line 2)")
            && err.contains("no round 1 answer 2")
            && err.contains("nothing stored"),
        "{err}"
    );
    let good = crate::common::write(data.path(), "gold.jsonl", &line("tw-2", 1, "accept"));
    let stored = vital_env_ok(
        &ws,
        &[
            "import",
            "--format",
            "verdicts",
            "--gold",
            good.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stored.contains("1 known verdicts added") && stored.contains("1 gold samples"),
        "{stored}"
    );
    let plan = vital_env_ok(
        &ws,
        &["team", "plan", "--gold-every", "3", "--onboarding", "1"],
        &[],
    );
    assert!(
        plan.contains("a gold sample after every 3 samples")
            && plan.contains("onboarding: 1 gold samples before any other"),
        "{plan}"
    );
    // Not a decision: the export of verdicts holds none.
    let verdicts = data.path().join("verdicts.jsonl");
    vital_env_ok(
        &ws,
        &[
            "export",
            "--format",
            "verdicts",
            "--out",
            verdicts.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(std::fs::read_to_string(&verdicts).unwrap(), "");
    let out = vital_env_ok(
        &ws,
        &["team", "work", "--reviewer", "ana", "--samples", "2"],
        &[],
    );
    let curator = Workspace::open_existing(&ws).unwrap();
    let keys = curator.sample_keys().unwrap();
    let served: Vec<i64> = events_of(out.as_bytes())
        .iter()
        .filter(|e| e.what == "served")
        .map(|e| e.sample)
        .collect();
    assert_eq!(served, vec![keys[2], keys[0]], "the gold sample first");
    let status: serde_json::Value =
        serde_json::from_str(&vital_env_ok(&ws, &["team", "status", "--json"], &[])).unwrap();
    assert_eq!(status["reviewers"][0]["gold_accuracy"], 1.0, "{status}");
}

/// Extra reviewers on a server: a sample whose two planned reviewers split is served to a third
/// reviewer's own login before the next sample in line, though that role reads neither
/// reviewer's verdict; `vital team plan` prints the setting.
#[test]
fn on_a_server_a_split_sample_is_served_to_an_extra_reviewer_first() {
    let Some(mut team) = TeamServer::with_release(3) else {
        return;
    };
    let shown = team.curator_ok(&[
        "team",
        "plan",
        "--per-sample",
        "2",
        "--overlap",
        "100%",
        "--extra-when-split",
        "1",
    ]);
    assert!(
        shown.contains("split samples: up to 1 more reviewers before adjudication"),
        "{shown}"
    );
    let suffix = std::process::id();
    let (ana, cy) = (format!("ex_ana_{suffix}"), format!("ex_cy_{suffix}"));
    let (ana_password, cy_password) = (team.add_reviewer(&ana), team.add_reviewer(&cy));
    let work_as = |r: &str, password: &str| {
        let out = team.reviewer_ok(
            r,
            password,
            &["team", "work", "--reviewer", r, "--samples", "1"],
        );
        events_of(out.as_bytes())[0].sample
    };
    let curator = team.curator();
    let keys = curator.sample_keys().unwrap();
    // Ana accepts the first sample; Ben (recorded by the curator) rejects it.
    assert_eq!(work_as(&ana, &ana_password), keys[0]);
    let stored = curator.load_sample(keys[0]).unwrap().unwrap();
    curator
        .record(
            "ben",
            &vital::store::NewDecision {
                sample_key: keys[0],
                round_id: Some(stored.round_ids[0]),
                answer_id: Some(stored.answer_ids[0][0]),
                kind: vital::store::DecisionKind::Reject,
                value: None,
                shown_order: None,
                figure_shown: None,
            },
        )
        .unwrap();
    curator.settle_lease("ben", keys[0]).unwrap();
    assert_eq!(
        work_as(&cy, &cy_password),
        keys[0],
        "the split sample, before the next in line"
    );
    let (complete, _, _) = curator.plan_progress().unwrap();
    assert_eq!(complete, 1, "three reviewers finished the split sample");
}
