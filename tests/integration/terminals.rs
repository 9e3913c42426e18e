//! The review screen in real terminal emulators under Xvfb (issue 32): xterm as a VT340 and mlterm
//! (sixel), kitty (its graphics protocol), each on an X display of its own, with the real figures
//! of `../shared/fixtures/images`. Screenshots (`import -window root`) are searched for the figure
//! by `tools/terminals/figure_match.py` (OpenCV template matching over scales): `score` says the
//! figure is there whole, `detail` (band-pass correlation) says it is drawn at the terminal's
//! pixel resolution rather than in half blocks, `stretch` that it keeps its aspect ratio.
//!
//! Needs Xvfb, xdotool, ImageMagick's `import`, python3 with cv2, and the terminal (.ci/run
//! installs them): a test skips when one is missing, and fails under CI. The tests run one at a
//! time (each starts an X server and a terminal). A failing test leaves its screenshots in
//! `$CARGO_TARGET_TMPDIR/terminal-shots/<test>/` and names that folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{fixtures, missing, repo_root, stats, vital_binary, vital_ok, write};

/// The least template-match score of a figure drawn whole (sixel ≥ 0.99, half blocks ≈ 0.97;
/// kitty 0.26's grid of boxes ≈ 0.45, a figure half painted over well below 0.9).
const SCORE_MIN: f64 = 0.9;
/// The least fine-detail correlation (figure_match.py's band of 2–6 pixel structures) of a
/// figure drawn by an image protocol. Measured with synpic32933.jpg: sixel 0.995 (xterm, mlterm)
/// in the pane, 0.98 in the grown pane, 0.91–0.95 in the zoom view; Unicode half blocks 0.55 at
/// 214×242 pixels, 0.22 at 360×401, 0.07 full screen (`xterm_in_half_blocks_…` checks the bar
/// tells them apart).
const DETAIL_MIN: f64 = 0.75;
/// How far the figure's aspect ratio on screen may be from its own (cells round it a little).
const STRETCH_MAX: f64 = 0.05;
/// The X screen each terminal runs on.
const SCREEN: (u32, u32) = (1400, 900);
/// The first sample's figure: the first record of the candidates file.
const FIRST_FIGURE: &str = "synpic32933.jpg";

/// One terminal test at a time: each runs an X server, a terminal and OpenCV.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Term {
    XtermVt340,
    Mlterm,
    Kitty,
}

impl Term {
    fn name(self) -> &'static str {
        match self {
            Term::XtermVt340 => "xterm-vt340",
            Term::Mlterm => "mlterm",
            Term::Kitty => "kitty",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Term::XtermVt340 => "xterm",
            Term::Mlterm => "mlterm",
            Term::Kitty => "kitty",
        }
    }

    /// The window's X class, as `xdotool search --class` finds it (case-insensitive).
    fn class(self) -> &'static str {
        self.program()
    }

    /// How long the terminal may take to show a window and the first figure (kitty on a
    /// software OpenGL takes ~5 s for its window).
    fn start_limit(self) -> Duration {
        match self {
            Term::Kitty => Duration::from_secs(40),
            _ => Duration::from_secs(20),
        }
    }

    /// The terminal running `program args…`, 150×42 cells.
    fn command(self, program: &Path, args: &[String]) -> Command {
        let mut command = Command::new(self.program());
        match self {
            Term::XtermVt340 => {
                command.args([
                    "-ti",
                    "vt340",
                    "-xrm",
                    "XTerm*decTerminalID: vt340",
                    "-xrm",
                    "XTerm*numColorRegisters: 256",
                    "-geometry",
                    "150x42",
                    "-e",
                ]);
            }
            // 10-pixel font: 150×42 cells fit the screen; no scroll bar.
            Term::Mlterm => {
                command.args(["-w", "10", "--sb=false", "-g", "150x42", "-e"]);
            }
            Term::Kitty => {
                command
                    .args([
                        "--config",
                        "NONE",
                        "-o",
                        "font_size=9",
                        "-o",
                        "initial_window_width=150c",
                        "-o",
                        "initial_window_height=42c",
                        "-o",
                        "remember_window_size=no",
                    ])
                    .env("LIBGL_ALWAYS_SOFTWARE", "1");
            }
        }
        command.arg(program).args(args);
        command
    }
}

/// Whether `program` is an executable file on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                m.is_file()
                    && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        })
    })
}

/// Everything a terminal test needs, or None (after `missing`: a skip, or a failure under CI).
fn prerequisites(term: Term) -> Option<PathBuf> {
    for program in ["Xvfb", "xdotool", "import", term.program()] {
        if !on_path(program) {
            missing(&format!(
                "{program} is not installed (.ci/run installs xvfb xterm mlterm kitty xdotool imagemagick)"
            ));
            return None;
        }
    }
    let cv2 = Command::new("python3")
        .args(["-c", "import cv2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !cv2 {
        missing(
            "python3 with OpenCV is not installed (python3 -m pip install opencv-python-headless)",
        );
        return None;
    }
    Some(fixtures()?.join("images"))
}

/// A workspace of the five real figures, `FIRST_FIGURE` first, each with two questions of two
/// answers; returns (temp dir, workspace path).
fn workspace(images: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let samples = [
        (FIRST_FIGURE, "chest_xray", "Frontal chest radiograph."),
        (
            "synpic42202.jpg",
            "chest_xray",
            "Chest radiograph, second study.",
        ),
        (
            "med_img_1.png",
            "ct_scan",
            "Medical image from the examples.",
        ),
        ("bio_patch.png", "histology", "A histology patch."),
        (
            "xy_chromosome.jpg",
            "gross",
            "A karyotype showing X and Y chromosomes.",
        ),
    ];
    let mut lines = String::new();
    for (i, (image, domain, caption)) in samples.iter().enumerate() {
        let record = serde_json::json!({
            "id": format!("term-{}", i + 1),
            "image": image,
            "fig_caption": caption,
            "in_text_mention": format!("As Figure {} shows.", i + 1),
            "domain": domain,
            "fig_label": format!("Figure {}", i + 1),
            "rounds": [
                {"question": "What imaging modality is shown?",
                 "answers": ["The modality the caption names.", "A photograph of a cat."]},
                {"question": "Is anything abnormal?",
                 "answers": ["Nothing the caption calls abnormal.", "Certainly a large tumour."]}
            ]
        });
        writeln!(lines, "{record}").unwrap();
    }
    let file = write(dir.path(), "candidates.jsonl", &lines);
    let ws = dir.path().join("ws");
    vital_ok(
        &ws,
        &[
            "import",
            file.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ],
    );
    (dir, ws)
}

/// An Xvfb server on a free display, stopped with this value.
struct Display {
    number: u32,
    xvfb: Child,
}

impl Display {
    fn start() -> Display {
        let pid = std::process::id();
        for number in (0..40).map(|i| 300 + (pid + i) % 700) {
            if display_in_use(number) {
                continue;
            }
            let xvfb = Command::new("Xvfb")
                .arg(format!(":{number}"))
                .args(["-screen", "0", &format!("{}x{}x24", SCREEN.0, SCREEN.1)])
                .args(["-nolisten", "tcp", "-noreset"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb starts");
            let mut display = Display { number, xvfb };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if display.xvfb.try_wait().unwrap().is_some() {
                    break; // another server got there first: the next number
                }
                let up = display
                    .xdotool(&["getdisplaygeometry"])
                    .is_some_and(|o| !o.is_empty());
                if up {
                    return display;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "no Xvfb display could be started (tried 40 from :{})",
            300 + pid % 700
        );
    }

    fn name(&self) -> String {
        format!(":{}", self.number)
    }

    /// `xdotool args…` on this display: its stdout when it succeeded.
    fn xdotool(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", self.name())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Display {
    /// SIGTERM, so Xvfb removes its lock file and socket; SIGKILL after 3 s, and its files then.
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.xvfb.id()) {
            // SAFETY: kill(2) on the pid of a child this value owns and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if self.xvfb.try_wait().is_ok_and(|s| s.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
        let lock = format!("/tmp/.X{}-lock", self.number);
        let ours = std::fs::read_to_string(&lock)
            .is_ok_and(|pid| pid.trim() == self.xvfb.id().to_string());
        if ours {
            let _ = std::fs::remove_file(&lock);
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
    }
}

/// Whether X display `number` has a live server: a lock file naming a running process (a lock
/// left by a server that died is not in use; Xvfb takes such a number over).
fn display_in_use(number: u32) -> bool {
    match std::fs::read_to_string(format!("/tmp/.X{number}-lock")) {
        Ok(pid) => pid
            .trim()
            .parse::<u32>()
            .map_or(true, |pid| Path::new(&format!("/proc/{pid}")).exists()),
        Err(_) => Path::new(&format!("/tmp/.X11-unix/X{number}")).exists(),
    }
}

/// What `figure_match.py` found in one screenshot.
#[derive(Debug, Clone, Default)]
struct Match {
    score: f64,
    detail: f64,
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    /// Height/width on screen over the figure's own (from a search that lets it vary ±30%).
    stretch: f64,
    /// The detail where that search found the figure.
    free_detail: f64,
    /// When the screenshot was taken.
    shot_time: f64,
    /// When a screenshot of this wait first showed the figure (score ≥ SCORE_MIN), if one did.
    found_time: Option<f64>,
    /// Whether the condition waited for was met before the time-out.
    reached: bool,
    shot: PathBuf,
}

impl Match {
    fn whole(&self) -> bool {
        self.score >= SCORE_MIN
            && self.detail >= DETAIL_MIN
            && (self.stretch - 1.0).abs() <= STRETCH_MAX
    }
}

impl std::fmt::Display for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "score {:.4} detail {:.4} stretch {:.3} at {},{} {}×{}{} ({})",
            self.score,
            self.detail,
            self.stretch,
            self.x,
            self.y,
            self.w,
            self.h,
            if (self.stretch - 1.0).abs() > STRETCH_MAX {
                format!(
                    " (stretched: detail {:.4} in its drawn shape)",
                    self.free_detail
                )
            } else {
                String::new()
            },
            self.shot.file_name().unwrap().to_string_lossy()
        )
    }
}

/// What a screenshot wait stops on.
enum Until<'a> {
    /// The figure found whole (score and detail over their bars), or 5 s after it was found.
    Whole,
    /// The figure found (score only).
    Found,
    /// The screen differs from this earlier screenshot.
    ChangedFrom(&'a Path),
}

/// A terminal running the review screen on its own X display; the terminal (and with it vital,
/// whose terminal goes away) is killed with this value, then the X server.
struct Session {
    terminal: Child,
    window: String,
    started: SystemTime,
    window_after: Duration,
    shots: PathBuf,
    /// vital's stderr and exit status, as the wrapper writes them.
    stderr: PathBuf,
    taken: usize,
    display: Display,
}

impl Session {
    fn start(term: Term, ws: &Path, reviewer: &str, protocol: &str, shots: &Path) -> Session {
        let args: Vec<String> = [
            "-w",
            ws.to_str().unwrap(),
            "review",
            "--reviewer",
            reviewer,
            "--image-protocol",
            protocol,
        ]
        .map(String::from)
        .to_vec();
        Session::start_with(term, args, false, shots)
    }

    /// vital with `args` in `term`; with `linger`, the window stays open after vital exits (for
    /// `vital show`, which prints and exits).
    fn start_with(term: Term, args: Vec<String>, linger: bool, shots: &Path) -> Session {
        let display = Display::start();
        // vital under `sh`, which keeps its stderr and exit status for the report.
        let stderr = shots.join("vital-stderr.txt");
        let then = if linger { "; sleep 60" } else { "" };
        let mut wrapped = vec![
            "-c".to_string(),
            format!(
                r#""$@" 2>>"$TERMINAL_TEST_STDERR"; echo "vital exited with status $?" >>"$TERMINAL_TEST_STDERR"{then}"#
            ),
            "sh".to_string(),
            vital_binary().to_str().unwrap().to_string(),
        ];
        wrapped.extend(args);
        let mut command = term.command(Path::new("sh"), &wrapped);
        command
            .env("TERMINAL_TEST_STDERR", &stderr)
            .env("DISPLAY", display.name())
            .env("VITAL_CONFIG", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // No hints from the terminal running the tests: the terminal under test says who it is.
        for hint in [
            "VITAL_IMAGE_PROTOCOL",
            "VITAL_WORKSPACE",
            "VITAL_REVIEWER",
            "VITAL_LOG",
            "TMUX",
            "TERM_PROGRAM",
            "TERM_PROGRAM_VERSION",
            "LC_TERMINAL",
            "KITTY_WINDOW_ID",
            "KITTY_PID",
            "ITERM_SESSION_ID",
            "WEZTERM_EXECUTABLE",
            "KONSOLE_VERSION",
            "COLORTERM",
            "WAYLAND_DISPLAY",
        ] {
            command.env_remove(hint);
        }
        let started = SystemTime::now();
        let clock = Instant::now();
        let terminal = command
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", term.program()));
        let mut session = Session {
            terminal,
            window: String::new(),
            started,
            window_after: Duration::ZERO,
            shots: shots.to_path_buf(),
            stderr,
            taken: 0,
            display,
        };
        while clock.elapsed() < term.start_limit() {
            let found =
                session
                    .display
                    .xdotool(&["search", "--onlyvisible", "--class", term.class()]);
            if let Some(window) = found.and_then(|ids| ids.lines().last().map(String::from)) {
                session.window = window;
                session.window_after = clock.elapsed();
                return session;
            }
            if let Some(status) = session.terminal.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before showing a window",
                    term.program()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} showed no window within {:?}",
            term.program(),
            term.start_limit()
        );
    }

    /// Presses `keys` (xdotool key names) in the terminal's window, which gets the focus first.
    fn keys(&mut self, keys: &[&str]) -> Result<(), String> {
        self.gone()?;
        let mut args = vec!["key", "--delay", "40"];
        args.extend_from_slice(keys);
        let pressed = self
            .display
            .xdotool(&["windowfocus", "--sync", &self.window])
            .and_then(|_| self.display.xdotool(&args));
        match pressed {
            Some(_) => Ok(()),
            None => {
                self.gone()?;
                Err(format!("xdotool could not press {keys:?}"))
            }
        }
    }

    /// Err(why) once the terminal has closed (vital exited): what vital wrote on stderr.
    fn gone(&mut self) -> Result<(), String> {
        match self.terminal.try_wait().unwrap() {
            None => Ok(()),
            Some(_) => Err(format!(
                "the terminal closed: vital exited; its stderr: {:?}",
                std::fs::read_to_string(&self.stderr)
                    .unwrap_or_default()
                    .trim()
            )),
        }
    }

    /// Resizes the terminal's window to `w`×`h` pixels.
    fn resize(&mut self, w: u32, h: u32) -> Result<(), String> {
        self.gone()?;
        let (w, h) = (w.to_string(), h.to_string());
        match self
            .display
            .xdotool(&["windowsize", "--sync", &self.window, &w, &h])
        {
            Some(_) => Ok(()),
            None => {
                self.gone()?;
                Err("xdotool could not resize the terminal".into())
            }
        }
    }

    /// Takes screenshots (`NN-label.png` in the shots folder) until `until` holds or `limit`
    /// passes; the last screenshot's match.
    fn shoot(&mut self, label: &str, figure: &Path, until: Until, limit: Duration) -> Match {
        self.taken += 1;
        let shot = self.shots.join(format!("{:02}-{label}.png", self.taken));
        let mut command = Command::new("python3");
        command
            .arg(repo_root().join("tools/terminals/figure_match.py"))
            .args(["--display", &self.display.name()])
            .arg("--shot")
            .arg(&shot)
            .args(["--timeout", &limit.as_secs_f64().to_string()]);
        match until {
            // Once the figure is found, it has 5 s to become whole.
            Until::Whole => {
                command.args([
                    "--until",
                    &SCORE_MIN.to_string(),
                    "--min-detail",
                    &DETAIL_MIN.to_string(),
                    "--settle",
                    "5",
                ]);
            }
            Until::Found => {
                command.args(["--until", &SCORE_MIN.to_string()]);
            }
            Until::ChangedFrom(reference) => {
                command.arg("--changed-from").arg(reference);
            }
        }
        let out = command.arg(figure).output().expect("python3 runs");
        assert!(
            out.status.success(),
            "figure_match.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("figure_match.py printed no JSON ({e}): {out:?}"));
        let number = |key: &str| json[key].as_f64().unwrap_or(f64::NAN);
        let whole = |key: &str| json[key].as_i64().unwrap_or(0);
        Match {
            score: number("score"),
            detail: number("detail"),
            x: whole("x"),
            y: whole("y"),
            w: whole("w"),
            h: whole("h"),
            stretch: number("stretch"),
            free_detail: number("free_detail"),
            shot_time: number("shot_time"),
            found_time: json["found_time"].as_f64(),
            reached: json["reached"].as_bool().unwrap_or(false),
            shot,
        }
    }

    /// Seconds from the terminal's start to `time` (seconds since the epoch).
    fn since_start(&self, time: f64) -> f64 {
        time - self
            .started
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    /// Waits (up to 10 s) for the terminal to exit: vital quit and the window closed.
    fn exits(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.terminal.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.terminal.kill();
        let _ = self.terminal.wait();
        // `display` drops after this: the X server goes last.
    }
}

/// `$CARGO_TARGET_TMPDIR/terminal-shots/<name>/`, emptied: where a test's screenshots stay.
fn shots_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("terminal-shots")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The checks' results: each line printed as it comes; failures asserted together at the end,
/// so one failing check still reports the numbers of all the others.
struct Report {
    term: &'static str,
    shots: PathBuf,
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn new(term: &'static str, shots: &Path) -> Report {
        Report {
            term,
            shots: shots.to_path_buf(),
            lines: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn check(&mut self, what: &str, ok: bool, m: &Match, note: &str) {
        let line = format!(
            "{}: {what}: {} — {m}{note}",
            self.term,
            if ok { "ok" } else { "FAILED" }
        );
        eprintln!("{line}");
        if !ok {
            self.failures.push(line.clone());
        }
        self.lines.push(line);
    }

    /// The checks cannot go on: `why` is a failure of its own.
    fn stopped(&mut self, why: &str) {
        let line = format!("{}: the checks stopped: {why}", self.term);
        eprintln!("{line}");
        self.failures.push(line.clone());
        self.lines.push(line);
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed in {} (bars: score ≥ {SCORE_MIN}, detail ≥ {DETAIL_MIN}); \
             screenshots in {}:\n{}\nall checks:\n{}",
            self.failures.len(),
            self.lines.len(),
            self.term,
            self.shots.display(),
            self.failures.join("\n"),
            self.lines.join("\n")
        );
    }
}

/// The figure whole in its pane at first, after the help overlay, after the reason picker,
/// after a resize and in (and after) the zoom view.
fn figure_stays_whole(term: Term, test: &str) {
    let _serial = serial();
    let Some(images) = prerequisites(term) else {
        return;
    };
    let (_dir, ws) = workspace(&images);
    let figure = images.join(FIRST_FIGURE);
    let shots = shots_dir(test);
    let mut report = Report::new(term.name(), &shots);
    let mut s = Session::start(term, &ws, "pixels", "auto", &shots);

    // 1. The first figure, drawn at the terminal's resolution.
    let first = s.shoot("first-figure", &figure, Until::Whole, term.start_limit());
    let found = first
        .found_time
        .map_or("never".into(), |t| format!("{:.2} s", s.since_start(t)));
    let whole = match (first.reached, first.found_time) {
        (true, _) => format!("{:.2} s", s.since_start(first.shot_time)),
        (false, Some(_)) => "never (waited 5 s more)".into(),
        (false, None) => format!("never (waited {:?})", term.start_limit()),
    };
    eprintln!(
        "{}: time from the terminal's start: window {:.2} s, figure found {found}, whole {whole}",
        term.name(),
        s.window_after.as_secs_f64(),
    );
    report.check(
        "the first figure is whole in its pane",
        first.whole(),
        &first,
        &format!(" (from the terminal's start: found {found}, whole {whole})"),
    );
    if first.score < SCORE_MIN {
        // No figure at all: the overlays cannot be judged against it.
        report.finish();
        return;
    }
    if let Err(why) = overlays(&mut s, &mut report, &figure, first) {
        report.stopped(&why);
    }
    report.finish();
}

/// Steps 2 to 5 of [`figure_stays_whole`]; Err when the terminal cannot be driven any more (vital
/// exited, say).
fn overlays(
    s: &mut Session,
    report: &mut Report,
    figure: &Path,
    first: Match,
) -> Result<(), String> {
    let limit = Duration::from_secs(5);

    // 2. After the help overlay.
    s.keys(&["question"])?;
    let open = s.shoot("help-open", figure, Until::ChangedFrom(&first.shot), limit);
    s.keys(&["Escape"])?;
    let closed = s.shoot("help-closed", figure, Until::Whole, limit);
    s.gone()?;
    report.check(
        "whole after ? then Esc",
        open.reached && closed.whole(),
        &closed,
        if open.reached {
            ""
        } else {
            " (the help overlay never showed)"
        },
    );

    // 3. After the reason picker: `x` rejects the focused answer (and moves to the next one),
    // `R` right after it asks why, for the answer just rejected.
    s.keys(&["x"])?;
    let rejected = s.shoot("rejected", figure, Until::ChangedFrom(&closed.shot), limit);
    s.keys(&["R"])?;
    let picker = s.shoot(
        "reasons-open",
        figure,
        Until::ChangedFrom(&rejected.shot),
        limit,
    );
    s.keys(&["Escape"])?;
    let closed = s.shoot("reasons-closed", figure, Until::Whole, limit);
    s.gone()?;
    report.check(
        "whole after x, R (reason picker) then Esc",
        picker.reached && closed.whole(),
        &closed,
        if picker.reached {
            ""
        } else {
            " (the reason picker never showed)"
        },
    );

    // 4. After a resize: the window grows, the pane with it, and the figure is drawn anew.
    let before = closed;
    s.resize(SCREEN.0 - 40, SCREEN.1 - 40)?;
    let changed = s.shoot("resized", figure, Until::ChangedFrom(&before.shot), limit);
    let resized = s.shoot("resized-settled", figure, Until::Whole, limit);
    s.gone()?;
    report.check(
        "whole, and redrawn larger, after the window grows",
        changed.reached && resized.whole() && resized.h > before.h,
        &resized,
        &format!(" (before: {}×{})", before.w, before.h),
    );

    // 5. The zoom view: the figure over the whole screen, then back in its pane.
    s.keys(&["z"])?;
    let changed = s.shoot(
        "zoom-opening",
        figure,
        Until::ChangedFrom(&resized.shot),
        limit,
    );
    let zoom = s.shoot("zoom", figure, Until::Whole, limit);
    s.gone()?;
    report.check(
        "whole and larger in the zoom view (z)",
        changed.reached && zoom.whole() && zoom.h > resized.h,
        &zoom,
        &format!(" (in the pane: {}×{})", resized.w, resized.h),
    );
    s.keys(&["z"])?;
    let changed = s.shoot(
        "zoom-closing",
        figure,
        Until::ChangedFrom(&zoom.shot),
        limit,
    );
    let back = s.shoot("zoom-closed", figure, Until::Whole, limit);
    s.gone()?;
    report.check(
        "whole in its pane again after z closes the zoom view",
        changed.reached && back.whole() && back.h < zoom.h,
        &back,
        "",
    );
    Ok(())
}

#[test]
fn xterm_as_vt340_shows_the_figure_in_sixel_and_whole_after_every_overlay() {
    figure_stays_whole(
        Term::XtermVt340,
        "xterm_as_vt340_shows_the_figure_in_sixel_and_whole_after_every_overlay",
    );
}

#[test]
fn mlterm_shows_the_figure_in_sixel_and_whole_after_every_overlay() {
    figure_stays_whole(
        Term::Mlterm,
        "mlterm_shows_the_figure_in_sixel_and_whole_after_every_overlay",
    );
}

#[test]
fn kitty_0_26_shows_the_figure_at_full_resolution_and_whole_after_every_overlay() {
    figure_stays_whole(
        Term::Kitty,
        "kitty_0_26_shows_the_figure_at_full_resolution_and_whole_after_every_overlay",
    );
}

/// The harness's own check: half blocks show the whole figure (score) without its fine detail,
/// so the detail bar tells an image protocol from half blocks.
#[test]
fn xterm_in_half_blocks_shows_the_whole_figure_without_the_fine_detail_sixel_keeps() {
    let _serial = serial();
    let term = Term::XtermVt340;
    let Some(images) = prerequisites(term) else {
        return;
    };
    let (_dir, ws) = workspace(&images);
    let shots = shots_dir("xterm_in_half_blocks");
    let mut s = Session::start(term, &ws, "blocks", "halfblocks", &shots);
    let m = s.shoot(
        "half-blocks",
        &images.join(FIRST_FIGURE),
        Until::Found,
        term.start_limit(),
    );
    eprintln!(
        "xterm half blocks: {m}; first figure after {:.2} s",
        s.since_start(m.shot_time)
    );
    assert!(
        m.score >= SCORE_MIN && m.detail < DETAIL_MIN,
        "half blocks: expected the figure found (score ≥ {SCORE_MIN}) without fine detail \
         (detail < {DETAIL_MIN}): {m}; screenshots in {}",
        shots.display()
    );
}

#[test]
fn no_decision_is_recorded_over_five_starts_in_a_real_terminal_when_only_q_is_pressed() {
    let _serial = serial();
    let terms = [Term::XtermVt340, Term::Mlterm, Term::Kitty];
    let mut images = None;
    for term in terms {
        images = prerequisites(term);
        if images.is_none() {
            return;
        }
    }
    let images = images.unwrap();
    let (_dir, ws) = workspace(&images);
    let figure = images.join(FIRST_FIGURE);
    let all_shots = shots_dir("no_decision_over_five_starts");
    let judgments = || stats(&ws)["judgments"].as_i64().unwrap();
    let before = judgments();
    for term in terms {
        let shots = all_shots.join(term.name());
        std::fs::create_dir_all(&shots).unwrap();
        for start in 1..=5 {
            let mut s = Session::start(term, &ws, "quitter", "auto", &shots);
            let m = s.shoot(
                &format!("start-{start}"),
                &figure,
                Until::Found,
                term.start_limit(),
            );
            assert!(
                m.reached,
                "{} start {start}: no figure on screen ({m}); screenshots in {}",
                term.name(),
                shots.display()
            );
            eprintln!(
                "{} start {start}: figure after {:.2} s",
                term.name(),
                s.since_start(m.shot_time)
            );
            s.keys(&["q"])
                .unwrap_or_else(|why| panic!("{} start {start}: {why}", term.name()));
            assert!(
                s.exits(),
                "{} start {start}: vital did not quit on q; screenshots in {}",
                term.name(),
                shots.display()
            );
            assert_eq!(
                judgments(),
                before,
                "{} start {start}: a decision was recorded though only q was pressed \
                 (vital's stderr: {:?}); screenshots in {}",
                term.name(),
                std::fs::read_to_string(&s.stderr).unwrap_or_default(),
                shots.display()
            );
        }
    }
}

/// `vital show` chooses as the review screen does (one detection for both): sixel in xterm as a
/// VT340 and mlterm, kitty's graphics in kitty; viuer's own detection drew half blocks there.
#[test]
fn vital_show_draws_the_figure_at_the_terminals_resolution_in_xterm_mlterm_and_kitty() {
    let _serial = serial();
    for term in [Term::XtermVt340, Term::Mlterm, Term::Kitty] {
        let Some(images) = prerequisites(term) else {
            return;
        };
        let (_dir, ws) = workspace(&images);
        let shots = shots_dir(&format!("vital_show_{}", term.name()));
        let args: Vec<String> = [
            "-w",
            ws.to_str().unwrap(),
            "show",
            "term-1",
            "--width",
            "40",
        ]
        .map(String::from)
        .to_vec();
        let mut s = Session::start_with(term, args, true, &shots);
        let m = s.shoot(
            "show",
            &images.join(FIRST_FIGURE),
            Until::Whole,
            term.start_limit(),
        );
        eprintln!("{}: vital show: {m}", term.name());
        assert!(
            m.score >= SCORE_MIN && m.detail >= DETAIL_MIN,
            "{}: vital show drew the figure without the terminal's resolution: {m}; screenshots in {}",
            term.name(),
            shots.display()
        );
    }
}
