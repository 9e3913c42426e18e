//! The runtime against a real workspace: effects carried out by the synchronous executor and by
//! the threaded one, whose answers arrive over the channel and are applied by the app's update.

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{ImageStatus, Msg};
use super::executor::{Executor, ThreadedExecutor};
use super::keymap::Keymap;
use super::queue::Order;
use super::session::{Session, SessionOptions};
use super::trainer::TrainerSettings;
use crate::store::Workspace;

/// The bundled demo workspace: 11 samples, their figures in demo-data/images.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::demo::open(dir.path()).unwrap();
    dir
}

fn options(reviewer: &str) -> SessionOptions {
    SessionOptions {
        reviewer: reviewer.into(),
        keymap: Keymap::default(),
        auto_advance: true,
        shuffle: false,
        train_after: 0,
        top_percent: 40.0,
        export_defaults: ["all".into(), "llava".into(), "out/selection.json".into()],
        export_dir: std::path::PathBuf::new(),
        order: Order::File,
        reasons: crate::config::Config::defaults().review.reasons,
        require_figure: false,
        adjudicate: false,
    }
}

fn key(session: &mut Session<impl Executor>, code: KeyCode) {
    session.dispatch(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn threaded(dir: &Path) -> (Session<ThreadedExecutor>, Receiver<Msg>) {
    threaded_with(dir, options("ana"))
}

fn threaded_with(
    dir: &Path,
    options: SessionOptions,
) -> (Session<ThreadedExecutor>, Receiver<Msg>) {
    let config = crate::config::Config::defaults();
    let ws = Workspace::open_existing(dir).unwrap();
    let fetch = crate::config::fetch_settings(&config.llm, ws.image_cache_dir());
    let trainer = TrainerSettings {
        workspace: dir.to_path_buf(),
        run: crate::selector_runs::RunSettings::from_config(&config.selector),
        sample_score: crate::selector_runs::SampleScore::MeanBest,
    };
    let (tx, rx) = mpsc::channel();
    let session = Session::start_threaded(ws, options, trainer, fetch, 64, tx).unwrap();
    (session, rx)
}

/// Applies what the workers send until `done` holds (the UI loop's job); fails after 30 s.
fn pump(
    session: &mut Session<ThreadedExecutor>,
    rx: &Receiver<Msg>,
    done: impl Fn(&Session<ThreadedExecutor>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(session) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = rx
            .recv_timeout(left)
            .expect("the background answer arrives within 30 s");
        session.dispatch(msg);
    }
}

fn export_message(session: &Session<impl Executor>) -> String {
    let message = session.app.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("exported ") && message.ends_with("out/selection.json"),
        "{message}"
    );
    message
}

#[test]
fn the_synchronous_executor_decodes_the_figure_and_exports_inline() {
    let dir = workspace();
    let ws = Workspace::open_existing(dir.path()).unwrap();
    let mut session = Session::start(ws, options("ana")).unwrap();
    assert_eq!(session.app.image.key, Some(1));
    let ImageStatus::Ready(img) = &session.app.image.status else {
        panic!("decoded at once: {:?}", session.app.image.status)
    };
    assert!(img.width().max(img.height()) <= 1024);

    // With the figures gone, the next sample's pane says so.
    std::fs::remove_dir_all(dir.path().join("demo-data/images")).unwrap();
    key(&mut session, KeyCode::Char(' '));
    assert_eq!(session.app.image.key, Some(2));
    assert!(
        matches!(&session.app.image.status, ImageStatus::Placeholder(why) if why.starts_with("image not found: ")),
        "{:?}",
        session.app.image.status
    );

    key(&mut session, KeyCode::Char('E'));
    key(&mut session, KeyCode::Enter);
    export_message(&session);
    assert!(dir.path().join("exports/out/selection.json").is_file());
    assert_eq!(session.app.export_status, None);
}

#[test]
fn the_threaded_executor_answers_over_the_channel_and_update_applies_it() {
    let dir = workspace();
    let (mut session, rx) = threaded(dir.path());
    // The figure is decoded on the decode worker, downscaled to the session's 64 pixels.
    assert!(
        matches!(session.app.image.status, ImageStatus::Loading(_)),
        "{:?}",
        session.app.image.status
    );
    pump(&mut session, &rx, |s| {
        matches!(s.app.image.status, ImageStatus::Ready(_))
    });
    let ImageStatus::Ready(img) = &session.app.image.status else {
        unreachable!("pumped until ready")
    };
    assert!(img.width().max(img.height()) <= 64);
    assert!(session.app.decoded.get(1).is_some(), "kept for going back");

    // The export runs on its own thread; the status line says so until it is done.
    key(&mut session, KeyCode::Char('E'));
    key(&mut session, KeyCode::Enter);
    assert!(
        session.app.export_status.is_some(),
        "running in the background"
    );
    pump(&mut session, &rx, |s| s.app.export_status.is_none());
    export_message(&session);
    assert!(dir.path().join("exports/out/selection.json").is_file());

    // The agreement panel is computed on another connection and opens when it arrives.
    key(&mut session, KeyCode::Char('S'));
    assert_eq!(session.app.message.as_deref(), Some("computing agreement…"));
    pump(&mut session, &rx, |s| {
        matches!(s.app.mode, super::app::Mode::Agreement(_))
    });

    // A search runs on the search worker; its matches become the queue.
    key(&mut session, KeyCode::Esc);
    key(&mut session, KeyCode::Char('/'));
    for c in "demo-cxr".chars() {
        key(&mut session, KeyCode::Char(c));
    }
    key(&mut session, KeyCode::Enter);
    assert_eq!(
        session.app.message.as_deref(),
        Some("searching \"demo-cxr\"…")
    );
    pump(&mut session, &rx, |s| s.app.queue.search_text().is_some());
    let message = session.app.message.clone().unwrap_or_default();
    assert!(message.ends_with("match \"demo-cxr\""), "{message}");
    assert_ne!(message, "0 sample(s) match \"demo-cxr\"");
}

#[test]
fn an_export_whose_folder_cannot_be_made_ends_with_a_failure_not_a_stuck_status() {
    let dir = workspace();
    // The export folder would have to be made inside a plain file.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let mut opts = options("ana");
    opts.export_dir = blocker.join("exports");
    let (mut session, rx) = threaded_with(dir.path(), opts.clone());
    key(&mut session, KeyCode::Char('E'));
    key(&mut session, KeyCode::Enter);
    pump(&mut session, &rx, |s| {
        s.app
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("export"))
    });
    let message = session.app.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("export failed: cannot create the folder"),
        "{message}"
    );
    assert_eq!(session.app.export_status, None);

    let ws = Workspace::open_existing(dir.path()).unwrap();
    let mut inline = Session::start(ws, opts).unwrap();
    key(&mut inline, KeyCode::Char('E'));
    key(&mut inline, KeyCode::Enter);
    let message = inline.app.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("export failed: cannot create the folder"),
        "{message}"
    );
    assert_eq!(inline.app.export_status, None);
}

#[test]
fn the_full_screen_figures_views_are_cut_from_the_decoded_figure_inline_or_on_a_worker() {
    let half = |img: &image::DynamicImage| ((img.width() / 2).max(1), (img.height() / 2).max(1));
    let on_screen = |app: &super::app::App| match app.figure_on_screen() {
        ImageStatus::Ready(img) => (img.width(), img.height()),
        other => panic!("a figure on screen: {other:?}"),
    };

    let dir = workspace();
    let ws = Workspace::open_existing(dir.path()).unwrap();
    let mut session = Session::start(ws, options("ana")).unwrap();
    let ImageStatus::Ready(decoded) = session.app.image.status.clone() else {
        panic!("decoded at once")
    };
    key(&mut session, KeyCode::Char('z'));
    key(&mut session, KeyCode::Char('+'));
    assert!(!session.app.zoom_pending(), "rendered inline");
    assert_eq!(on_screen(&session.app), half(&decoded));

    let (mut session, rx) = threaded(dir.path());
    pump(&mut session, &rx, |s| {
        matches!(s.app.image.status, ImageStatus::Ready(_))
    });
    let ImageStatus::Ready(decoded) = session.app.image.status.clone() else {
        unreachable!("pumped until ready")
    };
    key(&mut session, KeyCode::Char('z'));
    key(&mut session, KeyCode::Char('+'));
    key(&mut session, KeyCode::Char(']'));
    assert!(session.app.zoom_pending(), "rendered on the worker");
    assert_eq!(on_screen(&session.app), (decoded.width(), decoded.height()));
    pump(&mut session, &rx, |s| !s.app.zoom_pending());
    assert_eq!(on_screen(&session.app), half(&decoded));
    assert_eq!(session.app.figure_view(1).contrast, 1);
}

/// A decision on the first answer of sample `key`'s round `round` of `ws`.
fn accept(ws: &Workspace, key: i64, answer: usize) -> crate::store::NewDecision {
    let s = ws.load_sample(key).unwrap().unwrap();
    crate::store::NewDecision {
        sample_key: key,
        round_id: Some(s.round_ids[0]),
        answer_id: Some(s.answer_ids[0][answer]),
        kind: crate::store::DecisionKind::Accept,
        value: None,
        shown_order: None,
        figure_shown: None,
    }
}

fn store_for(ws: Workspace) -> super::executor::SyncExecutor {
    super::executor::SyncExecutor {
        store: super::executor::SessionStore::new(ws, "ana".into(), false, Default::default(), 64)
            .unwrap(),
    }
}

fn note_of(msg: &Msg) -> Option<String> {
    match msg {
        Msg::SavedLocally { note, .. } => Some(note.clone()),
        Msg::Journal { note, .. } => note.clone(),
        _ => None,
    }
}

#[test]
fn decisions_made_while_the_server_is_away_are_kept_on_this_machine_and_sent_once() {
    use super::app::Effect;
    use crate::store::test_support::{test_server, TestDb, TestWorkspace};
    if test_server().is_none() {
        return;
    }
    let demo = workspace();
    let server = TestWorkspace::new(TestDb::Postgres);
    Workspace::open_existing(demo.path())
        .unwrap()
        .copy_into(&server, &mut |_, _| Ok(()))
        .unwrap();
    let keys = server.sample_keys().unwrap();
    let events = |server: &TestWorkspace| server.reopen().unwrap().decision_event_count().unwrap();
    let before = events(&server);
    let mut exec = store_for(server.reopen().unwrap());
    let online = exec.run(Effect::Record(accept(&server, keys[0], 0)));
    assert!(matches!(online, Some(Msg::Saved { .. })), "{online:?}");

    server.set_server_reachable(false);
    for (i, key) in keys[1..4].iter().enumerate() {
        let msg = exec
            .run(Effect::Record(accept(&demo_ws(&demo), *key, 0)))
            .unwrap();
        let note = note_of(&msg).unwrap_or_else(|| panic!("kept locally: {msg:?}"));
        assert!(note.starts_with("offline"), "{note}");
        assert!(note.contains(&format!("{} decision", i + 1)), "{note}");
        let Msg::SavedLocally { decisions, .. } = msg else {
            unreachable!()
        };
        assert_eq!(decisions.len(), 1, "the waiting decision is on screen");
    }
    // An undo while away takes back the last waiting decision; it is never sent.
    let undone = exec.run(Effect::Undo).unwrap();
    assert!(
        matches!(undone, Msg::Undone { key: Some(k), .. } if k == keys[3]),
        "{undone:?}"
    );
    // Killed while away: the journal is on disk; nothing is flushed on the way out.
    drop(exec);

    server.set_server_reachable(true);
    let mut exec = store_for(server.reopen().unwrap());
    assert_eq!(events(&server), before + 3, "sent at start, each once");
    let retried = exec.run(Effect::RetryJournal).unwrap();
    assert_eq!(note_of(&retried), None);
    assert_eq!(events(&server), before + 3);

    // Away and back within one session: the timer's retry reconnects and sends.
    server.set_server_reachable(false);
    let msg = exec
        .run(Effect::Record(accept(&demo_ws(&demo), keys[4], 0)))
        .unwrap();
    assert!(
        note_of(&msg).is_some_and(|n| n.contains("1 decision kept")),
        "{msg:?}"
    );
    let still = exec.run(Effect::RetryJournal).unwrap();
    assert!(note_of(&still).is_some(), "still away: {still:?}");
    server.set_server_reachable(true);
    let back = exec.run(Effect::RetryJournal).unwrap();
    assert_eq!(note_of(&back), None, "{back:?}");
    assert_eq!(events(&server), before + 4);
    let ws = server.reopen().unwrap();
    let d = ws.current_decisions("ana", keys[4]).unwrap();
    assert_eq!(d.len(), 1);
}

/// The demo directory's workspace (same ids as its copy on the server).
fn demo_ws(dir: &tempfile::TempDir) -> Workspace {
    Workspace::open_existing(dir.path()).unwrap()
}

#[test]
fn a_decision_never_waits_behind_an_import_it_is_kept_and_stored_after() {
    use super::app::Effect;
    let dir = workspace();
    let ws = Workspace::open_existing(dir.path()).unwrap();
    let key = ws.sample_keys().unwrap()[0];
    let before = ws.decision_event_count().unwrap();
    let mut exec = store_for(Workspace::open_existing(dir.path()).unwrap());
    // Another process's import holds the write lock.
    let mut importer = Workspace::open_existing(dir.path()).unwrap();
    let batch = importer.import_batch().unwrap();
    // Answered while the import still holds the lock: the key did not wait for it to end.
    let msg = exec.run(Effect::Record(accept(&ws, key, 0))).unwrap();
    let note = note_of(&msg).unwrap_or_else(|| panic!("kept locally: {msg:?}"));
    assert!(note.starts_with("workspace busy — 1 decision"), "{note}");
    drop(batch);
    let done = exec.run(Effect::RetryJournal).unwrap();
    assert_eq!(note_of(&done), None);
    assert_eq!(ws.decision_event_count().unwrap(), before + 1);
}

/// A PostgreSQL server of this test's own (tools/test_postgres.sh), with the test server's
/// password, so it can be stopped and started again; stopped and removed when dropped.
struct OwnServer {
    script: std::path::PathBuf,
    dir: String,
    url: String,
}

impl OwnServer {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/test_postgres.sh");
        let out = std::process::Command::new(&script)
            .arg("start")
            .env(
                "VITAL_TEST_PG_PASSWORD",
                std::env::var("PGPASSWORD").expect("the test server's password"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let exports = String::from_utf8(out.stdout).unwrap();
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap()
                .to_string()
        };
        Self {
            script,
            dir: value("VITAL_TEST_PG_DIR"),
            url: value("VITAL_TEST_PG"),
        }
    }

    fn run(&self, what: &str) {
        let ok = std::process::Command::new(&self.script)
            .args([what, &self.dir])
            .status()
            .unwrap()
            .success();
        assert!(ok, "test_postgres.sh {what}");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.script)
            .args(["stop", &self.dir])
            .status();
    }
}

/// The demo workspace copied onto a database of a server of the test's own (which it may stop
/// and start), with the local folder its connections share.
struct DemoOnOwnServer {
    own: OwnServer,
    database: crate::store::test_support::ServerDatabase,
    files: tempfile::TempDir,
    demo: tempfile::TempDir,
}

impl DemoOnOwnServer {
    fn start() -> Self {
        let own = OwnServer::start();
        let database = crate::store::test_support::ServerDatabase::create(&own.url);
        let files = tempfile::tempdir().unwrap();
        let demo = workspace();
        drop(crate::store::test_support::server_workspace(
            &database.url,
            files.path(),
        ));
        let server = Self {
            own,
            database,
            files,
            demo,
        };
        Workspace::open_existing(server.demo.path())
            .unwrap()
            .copy_into(&server.open().unwrap(), &mut |_, _| Ok(()))
            .unwrap();
        server
    }

    /// A new connection to the server's workspace.
    fn open(&self) -> anyhow::Result<Workspace> {
        Workspace::open_existing_with_files(Path::new(&self.database.url), self.files.path())
    }
}

#[test]
fn a_server_stopped_and_started_again_mid_session_gets_every_decision_exactly_once() {
    use super::app::Effect;
    use crate::store::test_support::test_server;
    if test_server().is_none() {
        return;
    }
    let server = DemoOnOwnServer::start();
    let (own, demo) = (&server.own, &server.demo);
    let open = || server.open();
    let keys = demo_ws(demo).sample_keys().unwrap();
    let before = open().unwrap().decision_event_count().unwrap();
    let mut exec = store_for(open().unwrap());
    let first = exec.run(Effect::Record(accept(&demo_ws(demo), keys[0], 0)));
    assert!(matches!(first, Some(Msg::Saved { .. })), "{first:?}");

    own.run("pause");
    for key in &keys[1..3] {
        let msg = exec
            .run(Effect::Record(accept(&demo_ws(demo), *key, 0)))
            .unwrap();
        assert!(
            note_of(&msg).is_some_and(|n| n.starts_with("offline")),
            "{msg:?}"
        );
    }
    let still = exec.run(Effect::RetryJournal).unwrap();
    assert!(
        note_of(&still).is_some_and(|n| n.contains("2 decisions")),
        "{still:?}"
    );

    own.run("resume");
    let back = exec.run(Effect::RetryJournal).unwrap();
    assert_eq!(note_of(&back), None, "{back:?}");
    assert_eq!(
        exec.run(Effect::RetryJournal).and_then(|m| note_of(&m)),
        None
    );
    assert_eq!(open().unwrap().decision_event_count().unwrap(), before + 3);
}

/// Under a team plan of one reviewer per sample, two screens on one workspace never show the
/// same sample: opening one takes its place, a taken one leaves the other's queue, moving on
/// and quitting let places go.
/// Accepts every answer of sample `sample` (as `ws` stores it) through the session's
/// executor, each decision saved.
fn accept_every_answer(session: &mut Session<impl Executor>, ws: &Workspace, sample: i64) {
    let stored = ws.load_sample(sample).unwrap().unwrap();
    for (round, answers) in stored.round_ids.iter().zip(&stored.answer_ids) {
        for &answer in answers {
            let saved =
                session
                    .executor
                    .run(super::app::Effect::Record(crate::store::NewDecision {
                        sample_key: sample,
                        round_id: Some(*round),
                        answer_id: Some(answer),
                        kind: crate::store::DecisionKind::Accept,
                        value: None,
                        shown_order: None,
                        figure_shown: None,
                    }));
            assert!(matches!(saved, Some(Msg::Saved { .. })), "{saved:?}");
        }
    }
}

#[test]
fn two_screens_under_a_plan_are_served_different_samples() {
    let dir = workspace();
    let curator = Workspace::open_existing(dir.path()).unwrap();
    curator
        .set_team_plan(&crate::store::TeamPlan::default())
        .unwrap();
    let open = |who: &str| {
        Session::start(Workspace::open_existing(dir.path()).unwrap(), options(who)).unwrap()
    };
    let mut ana = open("ana");
    let first = ana.app.queue.current().unwrap();
    assert_eq!(ana.app.current.as_ref().map(|v| v.key()), Some(first));
    let mut ben = open("ben");
    let second = ben.app.queue.current().unwrap();
    assert_ne!(second, first, "Ben is not served Ana's sample");
    assert_eq!(ben.app.current.as_ref().map(|v| v.key()), Some(second));
    assert_eq!(
        ben.app.queue.total(),
        ana.app.queue.total() - 1,
        "Ana's is not in his queue"
    );
    // Ana moves on: Ben's sample (next in her queue, made before he came) leaves her queue, and
    // her first is free again.
    key(&mut ana, KeyCode::Char(' '));
    let third = ana.app.queue.current().unwrap();
    assert!(third != first && third != second, "{third}");
    assert_eq!(ana.app.current.as_ref().map(|v| v.key()), Some(third));
    assert!(
        ana.app
            .message
            .as_deref()
            .is_some_and(|m| m.contains("with other reviewers")),
        "{:?}",
        ana.app.message
    );
    let held = |who: &str| {
        curator
            .places_by_reviewer()
            .unwrap()
            .into_iter()
            .find(|p| p.reviewer == who)
            .map_or(0, |p| p.leased)
    };
    assert_eq!((held("ana"), held("ben")), (1, 1));
    assert_eq!(
        curator.take_lease("cy", first).unwrap(),
        crate::store::Lease::Taken
    );
    // Ben's SSH session hangs up (SIGHUP, as SIGTERM): his place is free at once.
    ben.dispatch(Msg::Terminate);
    assert!(ben.app.quitting);
    assert_eq!(held("ben"), 0);
    // Ana decides every answer of the sample on her screen: her place is done for good, and
    // the sample is complete (no one else is served it).
    accept_every_answer(&mut ana, &curator, third);
    let ana_places = curator
        .places_by_reviewer()
        .unwrap()
        .into_iter()
        .find(|p| p.reviewer == "ana")
        .unwrap();
    assert_eq!((ana_places.done, ana_places.leased), (1, 0));
    assert_eq!(
        curator.take_lease("dan", third).unwrap(),
        crate::store::Lease::NotServed
    );
}

/// `vital review --adjudicate`: the queue holds only samples awaiting a final decision, the
/// lowest agreement first.
#[test]
fn the_adjudication_queue_opens_on_the_lowest_agreement() {
    let dir = workspace();
    let ws = Workspace::open_existing(dir.path()).unwrap();
    let keys = ws.sample_keys().unwrap();
    let verdict = |who: &str, key: i64, nth: usize, accept: bool| {
        let s = ws.load_sample(key).unwrap().unwrap();
        let decision = crate::store::NewDecision {
            sample_key: key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][nth]),
            kind: if accept {
                crate::store::DecisionKind::Accept
            } else {
                crate::store::DecisionKind::Reject
            },
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        ws.record(who, &decision).unwrap();
    };
    // The third sample: 2 against 1. The fifth: 1 against 1.
    for (who, accept) in [("ana", true), ("ben", true), ("cy", false)] {
        verdict(who, keys[2], 0, accept);
    }
    for (who, accept) in [("ana", true), ("ben", false)] {
        verdict(who, keys[4], 0, accept);
    }
    let session = Session::start(
        Workspace::open_existing(dir.path()).unwrap(),
        SessionOptions {
            adjudicate: true,
            ..options("curator")
        },
    )
    .unwrap();
    let mut session = session;
    assert_eq!(session.app.queue.position(), (1, 2));
    assert_eq!(session.app.queue.current(), Some(keys[4]));
    let order: Vec<i64> = session.app.queue.in_order().map(|e| e.key).collect();
    assert_eq!(order, vec![keys[4], keys[2]]);
    // Each reviewer's verdict is beside the answer, for the curator.
    let answer = ws.load_sample(keys[4]).unwrap().unwrap().answer_ids[0][0];
    let others = &session.app.current.as_ref().unwrap().others[&answer];
    let verdicts: Vec<(&str, bool)> = others
        .iter()
        .map(|o| (o.reviewer.as_str(), o.accepted))
        .collect();
    assert_eq!(verdicts, vec![("ana", true), ("ben", false)]);
    // A final decision resolves the sample's only conflict: it leaves the queue.
    key(&mut session, KeyCode::Char('A'));
    assert_eq!(session.app.queue.position().1, 2, "still on screen");
    assert!(
        session
            .app
            .message
            .as_deref()
            .unwrap()
            .contains("1 sample left"),
        "{:?}",
        session.app.message
    );
    key(&mut session, KeyCode::Char(' '));
    assert_eq!(session.app.queue.current(), Some(keys[2]));
    // A conflict that arises meanwhile joins the queue at the next look.
    verdict("ana", keys[0], 0, true);
    verdict("ben", keys[0], 0, false);
    session.dispatch(Msg::Disagreements(
        ws.disagreement_keys(true).unwrap().into_iter().collect(),
    ));
    let open: Vec<i64> = session.app.queue.in_order().map(|e| e.key).collect();
    assert_eq!(open, vec![keys[2], keys[0]]);
}

/// A plan set while a screen is open applies to it at once: the sample another reviewer took
/// meanwhile is not shown.
#[test]
fn a_plan_set_while_the_screen_is_open_applies_at_once() {
    let dir = workspace();
    let mut ana = Session::start(
        Workspace::open_existing(dir.path()).unwrap(),
        options("ana"),
    )
    .unwrap();
    let first = ana.app.queue.current().unwrap();
    let curator = Workspace::open_existing(dir.path()).unwrap();
    curator
        .set_team_plan(&crate::store::TeamPlan::default())
        .unwrap();
    let next = ana.app.queue.in_order().nth(1).unwrap().key;
    assert_eq!(
        curator.take_lease("ben", next).unwrap(),
        crate::store::Lease::Taken
    );
    key(&mut ana, KeyCode::Char(' '));
    let shown = ana.app.current.as_ref().map(|v| v.key()).unwrap();
    assert!(shown != first && shown != next, "{shown}");
    assert_eq!(
        curator.take_lease("cy", shown).unwrap(),
        crate::store::Lease::NotServed,
        "Ana holds the sample on her screen"
    );
}

/// The guidelines open at a reviewer's first start and after each change, not at a start
/// after deciding under them; the decision records the version.
#[test]
fn the_guidelines_open_at_a_reviewer_s_first_start_and_after_each_change() {
    let dir = workspace();
    let curator = Workspace::open_existing(dir.path()).unwrap();
    let open = || {
        Session::start(
            Workspace::open_existing(dir.path()).unwrap(),
            options("ana"),
        )
        .unwrap()
    };
    assert_eq!(open().app.mode, super::app::Mode::Normal, "none stored");
    curator.store_guidelines("Reject guesses.", "lead").unwrap();
    let mut ana = open();
    assert_eq!(ana.app.mode, super::app::Mode::Guidelines);
    key(&mut ana, KeyCode::Esc);
    key(&mut ana, KeyCode::Char('a'));
    assert!(ana.app.last_save.is_some(), "{:?}", ana.app.save_error);
    drop(ana);
    assert_eq!(
        open().app.mode,
        super::app::Mode::Normal,
        "decided under version 1"
    );
    curator
        .store_guidelines("Reject guesses. Name the organ.", "lead")
        .unwrap();
    let ana = open();
    assert_eq!(ana.app.mode, super::app::Mode::Guidelines);
    assert_eq!(ana.app.guidelines.as_ref().unwrap().version, 2);
}

/// Gold checks on the screen: a new reviewer is shown a gold sample first (onboarding), then
/// the sample they opened, and another gold sample after every N others; nothing on the screen
/// says which samples are gold.
#[test]
fn gold_samples_are_shown_in_place_of_the_next_when_due_and_look_like_any_other() {
    let dir = workspace();
    let curator = Workspace::open_existing(dir.path()).unwrap();
    let keys = curator.sample_keys().unwrap();
    let gold_line = |key: i64| {
        let stored = curator.load_sample(key).unwrap().unwrap();
        crate::store::GoldLine {
            at: "test".into(),
            sample_id: stored.sample.id.clone(),
            round: 1,
            answer: 1,
            accepted: true,
            source: "senior".into(),
        }
    };
    curator
        .store_gold(&[gold_line(keys[3]), gold_line(keys[5])])
        .unwrap();
    curator
        .set_team_plan(&crate::store::TeamPlan {
            gold_every: 2,
            onboarding: 1,
            ..Default::default()
        })
        .unwrap();
    let mut ana = Session::start(
        Workspace::open_existing(dir.path()).unwrap(),
        options("ana"),
    )
    .unwrap();
    let on_screen = |s: &Session| s.app.current.as_ref().map(|v| v.key());
    let finish = |s: &mut Session| {
        let sample = s.app.queue.current().unwrap();
        accept_every_answer(s, &curator, sample);
        key(s, KeyCode::Char(' '));
    };
    assert_eq!(on_screen(&ana), Some(keys[3]), "onboarding: gold first");
    assert_eq!(ana.app.queue.position().0, 1, "at the head of the queue");
    assert_eq!(ana.app.message, None, "nothing says it is gold");
    finish(&mut ana);
    assert_eq!(on_screen(&ana), Some(keys[0]), "then the sample opened");
    finish(&mut ana);
    assert_eq!(on_screen(&ana), Some(keys[1]));
    finish(&mut ana);
    // Two others finished: the next gold sample in place of the third.
    assert_eq!(on_screen(&ana), Some(keys[5]));
    assert_eq!(ana.app.message, None);
    finish(&mut ana);
    assert_eq!(on_screen(&ana), Some(keys[2]), "and back to where she was");
}

/// The connection drops (the server stops): the samples read ahead are still shown and decided
/// (decisions kept in the journal), one not read ahead says why it cannot be shown, and once the
/// server is back every decision reaches it exactly once.
#[test]
fn samples_read_ahead_are_shown_and_decided_while_the_server_is_away() {
    use super::app::Effect;
    use crate::store::test_support::test_server;
    if test_server().is_none() {
        return;
    }
    let server = DemoOnOwnServer::start();
    let (own, demo) = (&server.own, &server.demo);
    let open = || server.open();
    let keys = demo_ws(demo).sample_keys().unwrap();
    let before = open().unwrap().decision_event_count().unwrap();
    let mut exec = store_for(open().unwrap());
    let loaded = exec.run(Effect::Load(keys[0]));
    assert!(matches!(loaded, Some(Msg::Loaded(_))), "{loaded:?}");
    assert_eq!(exec.run(Effect::Prefetch(vec![keys[1], keys[2]])), None);

    own.run("pause");
    for &key in &keys[1..3] {
        let shown = exec.run(Effect::Load(key));
        assert!(
            matches!(&shown, Some(Msg::Loaded(v)) if v.key() == key),
            "{shown:?}"
        );
        let saved = exec
            .run(Effect::Record(accept(&demo_ws(demo), key, 0)))
            .unwrap();
        assert!(
            note_of(&saved).is_some_and(|n| n.starts_with("offline")),
            "{saved:?}"
        );
    }
    // Shown again offline: the decision kept on this machine is on it.
    match exec.run(Effect::Load(keys[1])) {
        Some(Msg::Loaded(v)) => assert_eq!(v.decisions.len(), 1, "{:?}", v.decisions),
        other => panic!("{other:?}"),
    }
    let not_read = exec.run(Effect::Load(keys[3]));
    assert!(matches!(not_read, Some(Msg::Error(_))), "{not_read:?}");

    own.run("resume");
    let back = exec.run(Effect::RetryJournal).unwrap();
    assert_eq!(note_of(&back), None, "{back:?}");
    assert_eq!(open().unwrap().decision_event_count().unwrap(), before + 2);
}
