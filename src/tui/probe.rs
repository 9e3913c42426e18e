//! Asks the terminal how it draws images (kitty, sixel) and how many pixels a cell has, before
//! the review screen's input thread starts. Rules: the probe reads stdin only while it runs (no
//! thread, nothing left blocked in `read`), never changes the terminal mode (the caller has it in
//! raw mode already), and a terminal that never answers costs at most [`QUIET`] of start-up.
//!
//! Why not ratatui-image 11.1's `Picker::from_query_stdio`: it reads the reply on a thread that,
//! when the terminal stays silent, is still blocked in `read(stdin)` after the query's timeout, so
//! it takes the reviewer's first keys (ratatui-image issue #202; here issue 16: a lost `a` turned
//! `a x` into ✗ on answer 1). Upstream fixed it by polling instead (PR #203), released only in the 12.0 release
//! candidates; doing the same poll here keeps the review screen off a pre-release, reuses the
//! crate's own query and reply parser, and lets us choose a short silence limit.
//!
//! A key typed before the first frame, while the probe still waits (a silent terminal waits
//! [`QUIET`]), is read by the probe: it is kept ([`Answer::typed`]) and handed to the review
//! screen ahead of every later key, so `a x` typed blind still means accept, then reject. Keys
//! typed right behind the terminal's answer stay unread for the input thread. Limit: a key that
//! sends an escape sequence (arrows, F-keys, Esc itself) during the probe cannot be told from the
//! terminal's answer and is dropped.
//!
//! Inside tmux ($TMUX set), images reach the outer terminal only when tmux passes escape
//! sequences through: `allow-passthrough` on (tmux 3.3+). The probe asks tmux for the global
//! setting before anything else (ratatui-image's pickers turn it on for the pane by
//! themselves); when it is off, or this tmux has none, figures are drawn in half blocks and the
//! reviewer is told why.

use std::io::Write;
use std::time::{Duration, Instant};

use ratatui_image::picker::cap_parser::{Parser, QueryStdioOptions, Response};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::FontSize;

/// The longest the probe waits with no byte from the terminal. Terminals answer in well under a
/// millisecond locally and within a round trip over SSH; a silent one (a bare pseudo-terminal,
/// some serial consoles) costs this much before the first frame.
pub const QUIET: Duration = Duration::from_millis(300);
/// The longest the probe runs, however slowly a terminal trickles its answer.
const TOTAL: Duration = Duration::from_secs(2);

/// What the terminal said: the best image protocol it offers and its cell size, if it told.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub protocol: Option<ProtocolType>,
    pub cell: Option<(u16, u16)>,
    /// Bytes the reviewer typed while the probe read (outside the terminal's escape sequences).
    pub typed: Vec<u8>,
}

/// Where the probe is in the terminal's byte stream: the reviewer's keys arrive between the
/// terminal's escape sequences (CSI `ESC [ … final`, and `ESC _ … ESC \` / `ESC P … ESC \`
/// strings), never inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stream {
    #[default]
    Ground,
    Escape,
    Csi,
    Text,
    TextEscape,
}

impl Stream {
    /// The state after `byte`, and whether the byte was typed by the reviewer.
    fn next(self, byte: u8) -> (Stream, bool) {
        match (self, byte) {
            (Stream::Ground, 0x1b) => (Stream::Escape, false),
            (Stream::Ground, _) => (Stream::Ground, true),
            (Stream::Escape, 0x1b) => (Stream::Escape, false),
            (Stream::Escape, b'[') => (Stream::Csi, false),
            (Stream::Escape, b'_' | b'P' | b']') => (Stream::Text, false),
            (Stream::Escape, _) => (Stream::Ground, false),
            (Stream::Csi, 0x40..=0x7e) => (Stream::Ground, false),
            (Stream::Csi, _) => (Stream::Csi, false),
            (Stream::Text, 0x1b) => (Stream::TextEscape, false),
            (Stream::Text, 0x07) => (Stream::Ground, false),
            (Stream::Text, _) => (Stream::Text, false),
            (Stream::TextEscape, b'\\') => (Stream::Ground, false),
            (Stream::TextEscape, _) => (Stream::Text, false),
        }
    }
}

/// The key events of bytes typed during the probe (see [`Answer::typed`]): characters, Enter,
/// Tab and Backspace; other control bytes are dropped.
pub fn typed_keys(bytes: &[u8]) -> Vec<crossterm::event::KeyEvent> {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    String::from_utf8_lossy(bytes)
        .chars()
        .filter_map(|c| {
            let (code, modifiers) = match c {
                '\r' | '\n' => (KeyCode::Enter, KeyModifiers::NONE),
                '\t' => (KeyCode::Tab, KeyModifiers::NONE),
                '\u{7f}' | '\u{8}' => (KeyCode::Backspace, KeyModifiers::NONE),
                c if c.is_control() || c == char::REPLACEMENT_CHARACTER => return None,
                // As crossterm reports them: an upper-case letter comes with Shift.
                c if c.is_uppercase() => (KeyCode::Char(c), KeyModifiers::SHIFT),
                c => (KeyCode::Char(c), KeyModifiers::NONE),
            };
            Some(KeyEvent::new(code, modifiers))
        })
        .collect()
}

/// How tmux passes images to the outer terminal, when vital runs inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tmux {
    /// Not inside tmux.
    Outside,
    /// `allow-passthrough` is on (or `all`): image sequences reach the terminal.
    Passthrough,
    /// Image sequences would be swallowed; why.
    Blocked(String),
}

/// Asks the tmux server vital runs under for its global `allow-passthrough`.
pub fn tmux() -> Tmux {
    if std::env::var_os("TMUX").is_none_or(|v| v.is_empty()) {
        return Tmux::Outside;
    }
    let answer = std::process::Command::new("tmux")
        .args(["show", "-gv", "allow-passthrough"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
    tmux_from_answer(answer.as_deref())
}

/// `tmux show -gv allow-passthrough`'s answer (None: the command failed, as in tmux before 3.3,
/// which has no such option).
pub fn tmux_from_answer(answer: Option<&str>) -> Tmux {
    match answer.map(str::trim) {
        Some("on" | "all") => Tmux::Passthrough,
        Some(value) => Tmux::Blocked(format!("tmux allow-passthrough is {value}")),
        None => Tmux::Blocked("this tmux cannot pass images through (3.3+ can)".into()),
    }
}

/// What the probe found out, and what it read that was not the terminal's.
pub struct Probed {
    pub picker: Picker,
    /// What the reviewer should know when a graphics protocol is ruled out.
    pub notice: Option<String>,
    /// Keys the reviewer typed while the probe read, in order ([`typed_keys`]).
    pub typed: Vec<crossterm::event::KeyEvent>,
}

/// The picker for the terminal on stdin/stdout: its protocol and font size when it answers,
/// otherwise what the environment says (halfblocks unless the cell size is known); what the
/// reviewer should know when a graphics protocol is ruled out (tmux without passthrough); and the
/// keys typed meanwhile.
pub fn picker() -> Probed {
    // Before any picker: theirs set the pane's passthrough, which would hide the user's choice.
    let tmux = tmux();
    // Also detects tmux from TERM / TERM_PROGRAM: queries and images are then wrapped for it.
    let fallback = Picker::halfblocks();
    match &tmux {
        Tmux::Blocked(why) => {
            let notice = format!(
                "{why}: figures in half blocks (set -g allow-passthrough on for sharp ones)"
            );
            return Probed::untyped(fallback, Some(notice));
        }
        Tmux::Passthrough if !fallback.tmux_detected() => {
            let notice =
                "inside tmux, but TERM and TERM_PROGRAM do not say so: figures in half blocks";
            return Probed::untyped(fallback, Some(notice.into()));
        }
        _ => {}
    }
    let answer = query(fallback.tmux_detected()).unwrap_or_default();
    let typed = typed_keys(&answer.typed);
    let cell = answer.cell.or_else(cell_from_window_size);
    let Some((width, height)) = cell else {
        // No image protocol draws correctly without the real cell size.
        return Probed {
            picker: fallback,
            notice: None,
            typed,
        };
    };
    // `from_fontsize` is deprecated in favour of `from_query_stdio`, whose reader thread is the
    // bug this module avoids; it still adds the environment's hints (iTerm2, tmux).
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(FontSize::new(width, height));
    if let Some(protocol) = answer.protocol {
        picker.set_protocol_type(protocol);
    }
    Probed {
        picker,
        notice: None,
        typed,
    }
}

impl Probed {
    /// No query was sent, so nothing was read.
    pub(super) fn untyped(picker: Picker, notice: Option<String>) -> Self {
        Probed {
            picker,
            notice,
            typed: Vec::new(),
        }
    }
}

/// Writes the queries to stdout and reads the answer from stdin. `None` when stdin is not a
/// terminal or writing fails.
#[cfg(unix)]
fn query(is_tmux: bool) -> Option<Answer> {
    use std::os::fd::AsFd;

    let stdin = std::io::stdin();
    if !std::io::IsTerminal::is_terminal(&stdin) {
        return None;
    }
    let mut options = QueryStdioOptions::default();
    let env_set = |name| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if env_set("WEZTERM_EXECUTABLE") || env_set("KONSOLE_VERSION") {
        // As ratatui-image does: their kitty and sixel support is partial; iTerm2 comes from env.
        options.blacklist_protocols = vec![ProtocolType::Kitty, ProtocolType::Sixel];
    }
    let mut out = std::io::stdout();
    out.write_all(Parser::query(is_tmux, options).as_bytes())
        .ok()?;
    out.flush().ok()?;
    Some(read_answer(stdin.as_fd(), QUIET, TOTAL))
}

#[cfg(not(unix))]
fn query(_is_tmux: bool) -> Option<Answer> {
    None
}

/// Reads the terminal's replies from `fd` until its status report (the last query's answer), a
/// `quiet` stretch with no byte, or `total` in all. Reads only bytes already there (poll first),
/// so nothing is left waiting on `fd` when it returns.
#[cfg(unix)]
pub fn read_answer(fd: std::os::fd::BorrowedFd<'_>, quiet: Duration, total: Duration) -> Answer {
    use std::os::fd::AsRawFd;

    let start = Instant::now();
    let mut parser = Parser::new();
    let mut answer = Answer::default();
    let mut kitty = false;
    let mut stream = Stream::Ground;
    loop {
        let left = total.saturating_sub(start.elapsed()).min(quiet);
        if left.is_zero() {
            return answer;
        }
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up: a silence shorter than `quiet` is never taken for the end.
        let wait_ms =
            libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, wait_ms) };
        if ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if ready <= 0 || poll.revents & libc::POLLIN == 0 {
            return answer; // silence (or an error, or the terminal hung up)
        }
        // One byte per read, raw rather than through std's buffered stdin: the probe never takes
        // a byte past the status report, so a key typed right after the answer stays for the
        // input thread. (The answer is some 40 bytes: the extra calls cost microseconds.)
        let mut byte = 0u8;
        // SAFETY: `byte` is writable for 1 byte; poll said the read will not block.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut byte).cast(), 1) };
        if n != 1 {
            return answer; // end of input or an error
        }
        let typed;
        (stream, typed) = stream.next(byte);
        if typed {
            answer.typed.push(byte);
            continue;
        }
        for response in parser.push(char::from(byte)) {
            match response {
                Response::Status => return answer,
                Response::Kitty => {
                    kitty = true;
                    answer.protocol = Some(ProtocolType::Kitty);
                }
                // Kitty's own protocol is preferred where both are offered.
                Response::Sixel if !kitty => answer.protocol = Some(ProtocolType::Sixel),
                Response::CellSize(Some(cell)) => answer.cell = Some(cell),
                _ => {}
            }
        }
    }
}

/// The cell size from the kernel's window size in pixels, where the terminal fills it in.
fn cell_from_window_size() -> Option<(u16, u16)> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    Some((size.width / size.columns, size.height / size.rows))
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    use super::*;

    fn pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
        std::io::pipe().expect("a pipe")
    }

    #[test]
    fn tmux_passes_images_only_with_allow_passthrough() {
        assert_eq!(tmux_from_answer(Some("on\n")), Tmux::Passthrough);
        assert_eq!(tmux_from_answer(Some("all\n")), Tmux::Passthrough);
        assert_eq!(
            tmux_from_answer(Some("off\n")),
            Tmux::Blocked("tmux allow-passthrough is off".into())
        );
        assert!(matches!(tmux_from_answer(None), Tmux::Blocked(why) if why.contains("3.3")));
    }

    #[test]
    fn a_sixel_terminal_answer_gives_sixel_and_the_cell_size() {
        let (reader, mut writer) = pipe();
        // DA1 with sixel (4), cell size 20×10 (height; width), status OK.
        writer
            .write_all(b"\x1b[?62;4;22c\x1b[6;20;10t\x1b[0n")
            .unwrap();
        let answer = read_answer(reader.as_fd(), QUIET, TOTAL);
        assert_eq!(
            answer,
            Answer {
                protocol: Some(ProtocolType::Sixel),
                cell: Some((10, 20)),
                typed: Vec::new(),
            }
        );
    }

    #[test]
    fn kitty_wins_over_sixel_and_the_probe_stops_at_the_status_report() {
        let (mut reader, mut writer) = pipe();
        writer
            .write_all(b"\x1b_Gi=31;OK\x1b\\\x1b[?62;4c\x1b[6;16;8t\x1b[0nq")
            .unwrap();
        let answer = read_answer(reader.as_fd(), QUIET, TOTAL);
        assert_eq!(answer.protocol, Some(ProtocolType::Kitty));
        assert_eq!(answer.cell, Some((8, 16)));
        // A key typed right behind the answer is left for the input thread.
        drop(writer);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"q");
    }

    #[test]
    fn a_silent_terminal_costs_the_quiet_limit_and_leaves_the_next_key_unread() {
        let (mut reader, mut writer) = pipe();
        let start = Instant::now();
        let answer = read_answer(reader.as_fd(), Duration::from_millis(100), TOTAL);
        let took = start.elapsed();
        assert_eq!(answer, Answer::default());
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        // The reviewer's first key, typed after the probe gave up, is still there to read.
        writer.write_all(b"a").unwrap();
        drop(writer);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"a");
    }

    #[test]
    fn a_trickling_answer_is_read_past_the_quiet_limit_but_not_past_the_total() {
        let (reader, mut writer) = pipe();
        let feeder = std::thread::spawn(move || {
            for chunk in [&b"\x1b[?62;4c"[..], b"\x1b[6;20;10t", b"\x1b[0n"] {
                std::thread::sleep(Duration::from_millis(60));
                writer.write_all(chunk).unwrap();
            }
            writer
        });
        let answer = read_answer(reader.as_fd(), Duration::from_millis(100), TOTAL);
        assert_eq!(answer.protocol, Some(ProtocolType::Sixel));
        assert_eq!(answer.cell, Some((10, 20)));
        drop(feeder.join().unwrap());

        // A terminal that never stops sending (and never sends the status report).
        let (reader, mut writer) = pipe();
        let feeder = std::thread::spawn(move || {
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(25));
                if writer.write_all(b"\x1b[?62").is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        read_answer(
            reader.as_fd(),
            Duration::from_millis(100),
            Duration::from_millis(300),
        );
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        drop(reader);
        feeder.join().unwrap();
    }

    #[test]
    fn keys_typed_while_a_silent_terminal_is_asked_are_kept_in_order() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let (reader, mut writer) = pipe();
        writer.write_all(b"a x").unwrap();
        let answer = read_answer(reader.as_fd(), Duration::from_millis(50), TOTAL);
        assert_eq!(answer.typed, b"a x");
        let char = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(
            typed_keys(&answer.typed),
            vec![char('a'), char(' '), char('x')]
        );
    }

    #[test]
    fn keys_typed_between_the_terminals_answers_are_kept_and_the_answers_still_read() {
        let (mut reader, mut writer) = pipe();
        writer
            .write_all(b"a\x1b[?62;4cx\x1b\x1b[6;20;10t\x1b_Gi=31;OK\x1b\\u\x1b[0nq")
            .unwrap();
        let answer = read_answer(reader.as_fd(), QUIET, TOTAL);
        assert_eq!(
            answer.typed, b"axu",
            "a lone Esc before an answer swallows nothing"
        );
        assert_eq!(answer.protocol, Some(ProtocolType::Kitty));
        assert_eq!(answer.cell, Some((10, 20)));
        drop(writer);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(
            rest, b"q",
            "a key behind the status report is left for the input thread"
        );
    }

    #[test]
    fn typed_bytes_become_the_keys_crossterm_would_report() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let keys = typed_keys("A\r\x7f\t\x01é".as_bytes());
        assert_eq!(
            keys,
            vec![
                KeyEvent::new(KeyCode::Char('A'), KeyModifiers::SHIFT),
                KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE),
                KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE),
                KeyEvent::new(KeyCode::Char('é'), KeyModifiers::NONE),
            ]
        );
    }
}
