//! The review screen end to end: the session against a real workspace, and the real binary in
//! tmux, killed with SIGKILL mid-review.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use vital::store::Workspace;
use vital::tui::app::Msg;
use vital::tui::executor::Executor;
use vital::tui::keymap::Keymap;
use vital::tui::queue::Order;
use vital::tui::session::{Session, SessionOptions};

use crate::common::{stats, vital_ok};

fn session(dir: &Path, reviewer: &str) -> Session {
    let ws = Workspace::open_existing(dir).unwrap();
    Session::start(ws, options(reviewer)).unwrap()
}

pub fn options(reviewer: &str) -> SessionOptions {
    SessionOptions {
        reviewer: reviewer.into(),
        keymap: Keymap::default(),
        auto_advance: true,
        shuffle: true,
        train_after: 0,
        top_percent: 40.0,
        export_defaults: ["top:40%".into(), "llava".into(), "selection.json".into()],
        export_dir: std::path::PathBuf::new(),
        order: Order::File,
        reasons: vital::config::Config::defaults().review.reasons,
        require_figure: false,
        adjudicate: false,
    }
}

fn keys(session: &mut Session<impl Executor>, keys: &str) {
    for c in keys.chars() {
        let code = if c == '\n' {
            KeyCode::Enter
        } else {
            KeyCode::Char(c)
        };
        session.dispatch(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }
}

fn current_id(session: &Session<impl Executor>) -> String {
    session
        .app
        .current
        .as_ref()
        .expect("a sample on screen")
        .stored
        .sample
        .id
        .clone()
}

#[test]
fn decisions_are_stored_as_made_and_the_reviewer_resumes_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let imported = stats(dir.path())["judgments"].as_i64().unwrap();
    {
        let mut s = session(dir.path(), "ana");
        assert_eq!(current_id(&s), "demo-ct-1");
        keys(&mut s, "axax");
        assert_eq!(
            stats(dir.path())["judgments"].as_i64().unwrap(),
            imported + 4,
            "committed as made"
        );
        keys(&mut s, "ax");
        assert_eq!(
            current_id(&s),
            "demo-ct-2",
            "auto-advance after the last round"
        );
        keys(&mut s, "a");
    }
    let s = session(dir.path(), "ana");
    assert_eq!(
        current_id(&s),
        "demo-ct-2",
        "resumes at the first undecided sample"
    );
    assert_eq!(s.app.queue.reviewed(), 1);
    // Another reviewer has their own queue state.
    let b = session(dir.path(), "ben");
    assert_eq!(current_id(&b), "demo-ct-1");
    assert_eq!(
        stats(dir.path())["reviewers"],
        2,
        "imported and ana: ben has decided nothing yet"
    );
}

#[test]
fn undo_walks_back_through_the_log_across_samples() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let base = stats(dir.path())["judgments"].as_i64().unwrap();
    let mut s = session(dir.path(), "ana");
    keys(&mut s, "axaxax");
    assert_eq!(current_id(&s), "demo-ct-2");
    keys(&mut s, "u");
    assert_eq!(
        current_id(&s),
        "demo-ct-1",
        "undo returns to the sample it changed"
    );
    assert!(!s.app.current.as_ref().unwrap().decided());
    keys(&mut s, "uuuuu");
    assert_eq!(stats(dir.path())["judgments"].as_i64().unwrap(), base);
    keys(&mut s, "u");
    assert_eq!(s.app.message.as_deref(), Some("nothing to undo"));
    assert_eq!(
        stats(dir.path())["judgments"].as_i64().unwrap(),
        base,
        "imported decisions are not this reviewer's"
    );
}

#[test]
fn shown_order_is_recorded_with_the_true_answer() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let mut s = session(dir.path(), "ana");
    let view = s.app.current.clone().unwrap();
    keys(&mut s, "1");
    let events = s.ws().decision_events().unwrap();
    let prefer = events.iter().find(|e| e.kind == "prefer").unwrap();
    let (value, shown): (String, String) = (
        prefer.value.clone().unwrap(),
        prefer.shown_order.clone().unwrap(),
    );
    assert_eq!(
        value,
        view.answer_at(0, 0).unwrap().to_string(),
        "answer 1 on screen"
    );
    assert_eq!(shown, serde_json::to_string(&view.shown_order(0)).unwrap());
}

#[test]
fn search_goto_and_filters_against_the_store() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let mut s = session(dir.path(), "ana");
    keys(&mut s, "/hematoxylin\n");
    assert_eq!(
        s.app.queue.position().1,
        2,
        "the histology figure and its clinician pair"
    );
    assert_eq!(current_id(&s), "demo-histo-1");
    keys(&mut s, "gdemo-cxr-2\n");
    assert_eq!(current_id(&s), "demo-cxr-2");
    keys(&mut s, "f");
    keys(&mut s, "FF");
    assert_eq!(
        s.app.queue.position(),
        (1, 1),
        "flagged filter shows the flagged sample"
    );
}

/// The background trainer on the demo workspace: a run's scores reach the screen and the store,
/// and the reviewer keeps deciding meanwhile.
#[test]
fn background_training_applies_scores_while_the_reviewer_works() {
    use std::sync::mpsc;
    use vital::tui::trainer::{TrainerEvent, TrainerSettings};

    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let config = vital::config::Config::defaults();
    let mut run = vital::selector_runs::RunSettings::from_config(&config.selector);
    run.epochs = 2;
    let (tx, rx) = mpsc::channel();
    let fetch = vital::config::fetch_settings(&config.llm, dir.path().join("images"));
    let mut s = Session::start_threaded(
        Workspace::open_existing(dir.path()).unwrap(),
        options("ana"),
        TrainerSettings {
            workspace: dir.path().to_path_buf(),
            run,
            sample_score: vital::selector_runs::SampleScore::MeanBest,
        },
        fetch,
        1024,
        tx,
    )
    .unwrap();
    keys(&mut s, "T");
    keys(&mut s, "ax");
    // The UI loop's job: apply what the workers send (the trainer's events among them).
    let mut done = false;
    let mut trained_on = None;
    while let Ok(msg) = rx.recv_timeout(Duration::from_secs(60)) {
        if let Msg::Trainer(TrainerEvent::Done(outcome)) = &msg {
            done = true;
            trained_on = Some(outcome.human_pairs);
        }
        s.dispatch(msg);
        if done {
            break;
        }
    }
    assert!(done, "the run finished: {}", s.app.training.status);
    assert!(!s.app.training.running);
    // The demo's 4 clinician pairs, and the "ax" pair when it was stored before the run read
    // the pairs (the trainer and the reviewer race; both orders are right).
    let trained_on = trained_on.unwrap();
    assert!((4..=5).contains(&trained_on), "{trained_on}");
    let view = s.app.current.as_ref().unwrap();
    assert_eq!(
        view.stored.sample.id, "demo-ct-1",
        "the sample on screen stayed"
    );
    assert_eq!(
        view.selector_scores.len(),
        6,
        "scores beside every answer on screen"
    );
    assert_eq!(stats(dir.path())["scored_answers"], 46);
    assert_eq!(s.app.queue.scored(), 11);
    // A later session starts with the run on its panel and the queue ranked by it.
    let later = session(dir.path(), "ana");
    assert_eq!(later.app.training.last_run, Some(1));
    assert_eq!(later.app.training.human_pairs, trained_on);
    assert_eq!(later.app.queue.scored(), 11);
}

/// Drives the real binary in tmux: decide, watch the screen, SIGKILL, and check the store.
#[test]
fn tmux_review_survives_sigkill_with_every_decision_on_screen_stored() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let imported = stats(dir.path())["judgments"].as_i64().unwrap();
    let tmux = Tmux::start(dir.path(), "e2e");
    tmux.wait_for("reviewer e2e", "the screen to open");
    assert!(tmux.screen().contains("demo-ct-1"));
    for key in ["a", "x", "a", "x", "a", "x"] {
        tmux.send(key);
    }
    tmux.wait_for("demo-ct-2", "auto-advance to the second sample");
    tmux.send("a");
    tmux.wait_for("✓", "the decision on the second sample to show");
    tmux.kill_9();
    assert_eq!(
        stats(dir.path())["judgments"].as_i64().unwrap(),
        imported + 7,
        "every decision shown was stored"
    );

    let tmux = Tmux::start(dir.path(), "e2e");
    tmux.wait_for("reviewer e2e", "the screen to reopen");
    let screen = tmux.screen();
    assert!(
        screen.contains("demo-ct-2"),
        "resumed at the first undecided sample:\n{screen}"
    );
    assert!(screen.contains("reviewed 1/11"), "{screen}");
    tmux.send("q");
    tmux.wait_gone();
}

/// In tmux: `e` corrects the focused answer, Ctrl-S saves it, `u` takes it back, `U` brings it
/// back, `R` gives the original's ✗ a reason; after SIGKILL the store holds the correction, its
/// ✗ and its reason, and exports them.
#[test]
fn tmux_an_edit_saved_undone_redone_and_given_a_reason_survives_sigkill() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let imported = stats(dir.path())["judgments"].as_i64().unwrap();
    let tmux = Tmux::start(dir.path(), "editor");
    tmux.wait_for("reviewer editor", "the screen to open");
    tmux.send("e");
    tmux.wait_for("Ctrl-S save", "the editor");
    tmux.send("BSpace");
    tmux.send(", with a 4 mm subpleural nodule.");
    tmux.wait_for("subpleural", "the typed text in the editor");
    tmux.send("C-s");
    tmux.wait_for("✎ edited by editor", "the saved correction on the sheet");
    tmux.send("u");
    tmux.wait_gone_from("✎ edited by editor", "undo to take the correction back");
    tmux.send("U");
    tmux.wait_for("✎ edited by editor", "redo to bring it back");
    // The correction left the original without a verdict: the reviewer rejects it, then says why.
    tmux.send("x");
    tmux.send("R");
    tmux.wait_for("✗?", "the reasons for the original's ✗");
    tmux.send("3");
    tmux.wait_for("factual error", "the reason recorded");
    tmux.kill_9();

    let edits = dir.path().join("edits.jsonl");
    vital_ok(
        dir.path(),
        &[
            "export",
            "--format",
            "edits",
            "--out",
            edits.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&edits).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let edit = &lines[0];
    assert_eq!(edit["reviewer"], "editor");
    assert_eq!(edit["reasons"], serde_json::json!(["factual error"]));
    let original = edit["original"].as_str().unwrap();
    assert_eq!(
        edit["edited"].as_str().unwrap(),
        format!(
            "{}, with a 4 mm subpleural nodule.",
            &original[..original.len() - 1]
        )
    );
    let st = stats(dir.path());
    assert_eq!(st["edits"], 1);
    assert_eq!(
        st["reasons"],
        serde_json::json!([{"reason": "factual error", "count": 1}])
    );
    // In force: the original's ✗, the correction and the reason (the undone save is not).
    assert_eq!(st["judgments"].as_i64().unwrap(), imported + 3, "{st}");
}

/// In tmux: press T, keep deciding while it trains, see the scores on screen and in stats.
#[test]
fn tmux_training_shows_scores_while_deciding() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let tmux = Tmux::start(dir.path(), "trainer");
    tmux.wait_for("reviewer trainer", "the screen to open");
    tmux.send("T");
    tmux.send("a");
    tmux.send("x");
    tmux.wait_for("sel ", "selector scores beside the answers");
    let screen = tmux.screen();
    assert!(screen.contains("run 1 scored 46 answers"), "{screen}");
    assert_eq!(stats(dir.path())["scored_answers"], 46);
    tmux.send("o");
    tmux.wait_for("order: score ↓", "the score order");
    tmux.send("q");
    tmux.wait_gone();
}

/// In tmux: `z` shows the demo's figure over the whole screen, `+` and `]` change its view,
/// decisions are made from there, and Esc returns to the sheet; the view is kept for the sample.
#[test]
fn tmux_z_shows_the_figure_full_screen_and_decisions_work_there() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let imported = stats(dir.path())["judgments"].as_i64().unwrap();
    let tmux = Tmux::start(dir.path(), "zoom");
    tmux.wait_for("reviewer zoom", "the screen to open");
    tmux.send("z");
    tmux.wait_for("demo-ct-1 · fitted", "the full-screen figure");
    let screen = tmux.screen();
    assert!(screen.contains("Q1/"), "the focused question:\n{screen}");
    assert!(screen.contains("z sheet"), "its key hints:\n{screen}");
    assert!(
        !screen.contains("Rounds ("),
        "no sheet behind it:\n{screen}"
    );
    tmux.send("+");
    tmux.wait_for("demo-ct-1 · zoom 2×", "the 2× view");
    tmux.send("]");
    tmux.wait_for("zoom 2× · contrast +1", "more contrast");
    tmux.send("a");
    tmux.wait_for("▶ Answer 2/", "focus on the next answer after a decision");
    tmux.send("x");
    tmux.wait_for("Q2/", "the next question after both answers are decided");
    tmux.send("Escape");
    tmux.wait_for("Rounds (", "the sheet again");
    let screen = tmux.screen();
    assert!(
        screen.contains("Answer 1 ✓") && screen.contains("Answer 2 ✗"),
        "the decisions made full screen:\n{screen}"
    );
    tmux.send("z");
    tmux.wait_for("zoom 2× · contrast +1", "the sample's view, kept");
    tmux.send("q");
    tmux.wait_gone();
    assert_eq!(
        stats(dir.path())["judgments"].as_i64().unwrap(),
        imported + 2,
        "two decisions, and the view is not one"
    );
}

/// In a tmux that does not pass images through, `auto` draws half blocks and says why; with
/// `allow-passthrough on` it probes the terminal and says nothing.
#[test]
fn tmux_without_allow_passthrough_draws_half_blocks_and_says_so() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let tmux = Tmux::start_with(dir.path(), "blocked", "auto", false);
    tmux.wait_for("reviewer blocked", "the screen to open");
    tmux.wait_for(
        "tmux allow-passthrough is off: figures in half blocks",
        "the reason in the status line",
    );
    tmux.send("q");
    tmux.wait_gone();
    drop(tmux);

    let tmux = Tmux::start_with(dir.path(), "passing", "auto", true);
    tmux.wait_for("reviewer passing", "the screen to open");
    let screen = tmux.screen();
    assert!(!screen.contains("allow-passthrough"), "{screen}");
    tmux.send("q");
    tmux.wait_gone();
}

/// The real binary in a tmux server of its own (its own socket, no user config), so a test sees
/// tmux's defaults whatever the machine's tmux.conf says, and tests never share a server.
pub(crate) struct Tmux {
    name: String,
    /// The server's socket file, removed with the server.
    socket: Option<std::path::PathBuf>,
}

impl Tmux {
    pub(crate) fn start(ws: &Path, reviewer: &str) -> Tmux {
        Tmux::start_with_protocol(ws, reviewer, "halfblocks")
    }

    /// `protocol` as for `--image-protocol`; `auto` runs the terminal probe, in a tmux that
    /// passes images through (`allow-passthrough on`), so the probe queries the terminal.
    pub(crate) fn start_with_protocol(ws: &Path, reviewer: &str, protocol: &str) -> Tmux {
        Tmux::start_with(ws, reviewer, protocol, true)
    }

    /// As [`Tmux::start_with_protocol`], with tmux's global `allow-passthrough` on or off.
    pub(crate) fn start_with(ws: &Path, reviewer: &str, protocol: &str, passthrough: bool) -> Tmux {
        Tmux::start_raw(
            &ws.display().to_string(),
            "",
            reviewer,
            protocol,
            passthrough,
        )
    }

    /// The review screen on a team server: `env` is `NAME='value' …` for the command line (the
    /// reviewer's password, where the server's files go).
    pub(crate) fn start_on_server(url: &str, env: &str, reviewer: &str) -> Tmux {
        Tmux::start_raw(&format!("'{url}'"), env, reviewer, "halfblocks", true)
    }

    fn start_raw(
        location: &str,
        env: &str,
        reviewer: &str,
        protocol: &str,
        passthrough: bool,
    ) -> Tmux {
        let name = format!("vital-test-{}-{}", std::process::id(), reviewer);
        let mut tmux = Tmux { name, socket: None };
        let _ = tmux.tmux(&["kill-server"]).output();
        let command = format!(
            "VITAL_CONFIG= {env} {} -w {location} review --reviewer {reviewer} --image-protocol {protocol}",
            env!("CARGO_BIN_EXE_vital"),
        );
        let passthrough = if passthrough { "on" } else { "off" };
        // One command line: the option is set before the session's program starts.
        let ok = tmux
            .tmux(&[
                "start-server",
                ";",
                "set",
                "-g",
                "allow-passthrough",
                passthrough,
                ";",
            ])
            .args([
                "new-session",
                "-d",
                "-s",
                &tmux.name,
                "-x",
                "120",
                "-y",
                "40",
                &command,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux session starts");
        let socket = tmux
            .tmux(&["display-message", "-p", "#{socket_path}"])
            .output()
            .unwrap();
        tmux.socket = Some(String::from_utf8_lossy(&socket.stdout).trim().into())
            .filter(|p: &std::path::PathBuf| p.is_absolute());
        tmux
    }

    /// A tmux command on this test's own server.
    fn tmux(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command
            .args(["-L", &self.name, "-f", "/dev/null"])
            .args(args);
        command
    }

    pub(crate) fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The window resized to `columns`×`rows`, as a reviewer drags it.
    pub(crate) fn resize(&self, columns: u16, rows: u16) {
        let ok = self
            .tmux(&[
                "resize-window",
                "-t",
                &self.name,
                "-x",
                &columns.to_string(),
                "-y",
                &rows.to_string(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux resizes the window");
    }

    pub(crate) fn send(&self, key: &str) {
        self.tmux(&["send-keys", "-t", &self.name, key])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }

    pub(crate) fn wait_for(&self, text: &str, what: &str) {
        self.wait_until(
            |screen| screen.contains(text),
            &format!("{what} ({text:?})"),
        );
    }

    pub(crate) fn wait_gone_from(&self, text: &str, what: &str) {
        self.wait_until(
            |screen| !screen.contains(text),
            &format!("{what} ({text:?} still shown)"),
        );
    }

    /// Polls the screen until `done(screen)`, for up to 20 seconds.
    fn wait_until(&self, done: impl Fn(&str) -> bool, what: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if done(&self.screen()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; screen:\n{}", self.screen());
    }

    pub(crate) fn kill_9(&self) {
        let out = self
            .tmux(&["display-message", "-p", "-t", &self.name, "#{pane_pid}"])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // The pane runs `sh -c …` or vital itself; kill vital wherever it is.
        let _ = Command::new("pkill").args(["-9", "-P", &pid]).status();
        let _ = Command::new("kill").args(["-9", &pid]).status();
        let _ = self.tmux(&["kill-server"]).output();
    }

    pub(crate) fn wait_gone(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let alive = self
                .tmux(&["has-session", "-t", &self.name])
                .output()
                .unwrap()
                .status
                .success();
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.tmux(&["kill-server"]).output();
        panic!("vital did not quit on q");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).output();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

#[test]
fn disagreements_are_adjudicated_with_final_decisions_and_exports_run_from_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    // Two reviewers disagree on the first answer of the first sample they see.
    for (reviewer, key) in [("ana", "a"), ("ben", "x")] {
        let mut s = session(dir.path(), reviewer);
        // Focus the display position that holds the stored first answer.
        if s.app.current.as_ref().unwrap().order[0][0] != 0 {
            keys(&mut s, "l");
        }
        keys(&mut s, key);
    }
    let mut judge = session(dir.path(), "chief");
    keys(&mut judge, "FFF");
    assert_eq!(
        judge.app.queue.filter(),
        &vital::tui::queue::Filter::Disagreements
    );
    assert_eq!(judge.app.queue.position().1, 1, "one sample in conflict");
    let view = judge.app.current.clone().unwrap();
    assert!(view.unresolved_conflict());
    // Adjudicate every answer with others' verdicts on it: accept.
    for d in 0..view.order[0].len() {
        let answer = view.answer_at(0, d).unwrap();
        if view.others.get(&answer).is_some_and(|v| v.len() >= 2) {
            if d == 1 {
                keys(&mut judge, "l");
            }
            keys(&mut judge, "A");
        }
    }
    assert!(
        !judge.app.current.as_ref().unwrap().unresolved_conflict(),
        "resolved"
    );
    assert!(judge.ws().disagreement_keys(true).unwrap().is_empty());
    // u withdraws exactly that final decision (recorded under `final`, not the judge's name).
    keys(&mut judge, "u");
    assert_eq!(
        judge.ws().disagreement_keys(true).unwrap().len(),
        1,
        "unresolved again"
    );
    assert!(judge.app.current.as_ref().unwrap().unresolved_conflict());
    keys(&mut judge, "A");
    assert!(judge.ws().disagreement_keys(true).unwrap().is_empty());
    let stats_out = vital_ok(dir.path(), &["stats", "--json"]);
    let s: serde_json::Value = serde_json::from_str(&stats_out).unwrap();
    assert_eq!(
        s["agreement"]["resolved_conflicts"], 1,
        "{}",
        s["agreement"]
    );
    // The agreement panel.
    keys(&mut judge, "S");
    let vital::tui::app::Mode::Agreement(lines) = &judge.app.mode else {
        panic!("agreement panel")
    };
    assert!(lines.iter().any(|l| l.contains("Cohen's κ")), "{lines:?}");
    keys(&mut judge, "q");
    // Export from the screen (inline here; the terminal runs it on a thread).
    keys(&mut judge, "E");
    for _ in 0.."top:40%".len() {
        judge.dispatch(Msg::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    keys(&mut judge, "all\n");
    let message = judge.app.message.clone().unwrap_or_default();
    assert!(message.starts_with("exported 11 samples"), "{message}");
    let out = dir.path().join("exports/selection.json");
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 11);
}

#[test]
fn tmux_a_resize_redraws_the_whole_screen_and_the_review_goes_on() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let imported = stats(dir.path())["judgments"].as_i64().unwrap();
    let tmux = Tmux::start(dir.path(), "resizer");
    tmux.wait_for("reviewer resizer", "the screen to open");
    // A resize once asked the terminal for its cursor (ratatui's clear), a reply the input
    // reader takes: the screen waited 2 s and quit.
    for (columns, rows) in [(80, 24), (160, 45), (100, 30)] {
        tmux.resize(columns, rows);
        std::thread::sleep(Duration::from_millis(300));
        tmux.wait_for(
            "Image · half blocks",
            "the screen drawn again at the new size",
        );
    }
    tmux.send("a");
    tmux.wait_for("Answer 1 ✓", "a decision after the resizes");
    assert_eq!(
        stats(dir.path())["judgments"].as_i64().unwrap(),
        imported + 1
    );
    tmux.send("q");
    tmux.wait_gone();
}

#[test]
fn tmux_at_80x24_a_one_answer_sample_without_its_figure_refuses_a_tie_counts_the_missing_figure_and_corrects_without_a_reject(
) {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = super::common::write(
        dir.path(),
        "qa.jsonl",
        r#"{"id": "qa-1", "image": "18063892_F3.jpg", "fig_caption": "Axial CT of the abdomen.", "rounds": [{"question": "What is the organ in the image?", "answers": ["The liver."]}, {"question": "Is there a lesion?", "answers": ["No."]}]}
"#,
    );
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["import", input.to_str().unwrap()]);
    let tmux = Tmux::start(&ws, "solo");
    tmux.resize(80, 24);
    tmux.wait_for("reviewer solo", "the screen to open");
    tmux.wait_for(
        "figure not shown",
        "the rounds pane saying the figure is missing",
    );
    // A tie on a round with one answer records nothing.
    tmux.send("=");
    tmux.wait_for("one answer", "the refusal");
    // A sentence added to the answer: the correction is the reviewer's ✓, no ✗ on the original.
    tmux.send("e");
    tmux.wait_for("Ctrl-S save", "the editor");
    tmux.send("End");
    tmux.send(" Normal size.");
    tmux.send("C-s");
    tmux.wait_for("correction saved", "the correction's notice");
    // The help, paged to its end at 80×24.
    tmux.send("?");
    tmux.wait_for("Decide", "the help");
    for _ in 0..8 {
        tmux.send("PageDown");
    }
    tmux.wait_for(" end · ", "the end of the help");
    assert!(
        tmux.screen().contains("caption"),
        "the last keys are listed:\n{}",
        tmux.screen()
    );
    tmux.send("Escape");
    tmux.wait_gone_from(" end · ", "the help to close");
    assert!(
        tmux.screen().contains("? help  q quit"),
        "help and quit on the key line at 80×24:\n{}",
        tmux.screen()
    );
    tmux.send("q");
    tmux.wait_gone();
    let st = stats(&ws);
    assert_eq!(
        st["judgments"].as_i64().unwrap(),
        1,
        "only the correction: {st}"
    );
    assert_eq!(st["edits"], 1);
    assert_eq!(st["decided_without_figure"], 1, "{st}");
    let solo = st["reviewer_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reviewer"] == "solo")
        .cloned()
        .unwrap_or_default();
    assert_eq!(solo["reject"].as_i64().unwrap_or(0), 0, "{st}");
}

#[test]
fn tmux_a_second_review_screen_of_the_same_reviewer_is_refused_with_a_reason() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    let tmux = Tmux::start(dir.path(), "twice");
    tmux.wait_for("reviewer twice", "the first screen");
    let second = super::common::vital_env(dir.path(), &["review", "--reviewer", "twice"], &[]);
    let err = super::common::stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains("another review screen of `twice`"), "{err}");
    tmux.send("q");
    tmux.wait_gone();
}

#[test]
fn tmux_a_journal_emptied_outside_vital_is_reported_on_the_screen() {
    if !super::common::tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo"]);
    // As a sync tool or a full disk might leave it: the file there, 0 bytes, no log beside it.
    std::fs::write(dir.path().join("journal.db"), b"").unwrap();
    let tmux = Tmux::start(dir.path(), "emptied");
    tmux.wait_for("was found empty", "the notice about the emptied journal");
    tmux.send("q");
    tmux.wait_gone();
}
