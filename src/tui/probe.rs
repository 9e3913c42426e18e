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
//! Limit: a key typed before the first frame, while the probe still waits, is read by the probe
//! and dropped; keys typed right behind the terminal's answer, and every key after it, are not.

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
}

/// The picker for the terminal on stdin/stdout: its protocol and font size when it answers,
/// otherwise what the environment says (halfblocks unless the cell size is known).
pub fn picker() -> Picker {
    // Also detects tmux and turns on its passthrough, which the kitty query needs.
    let fallback = Picker::halfblocks();
    let answer = query(fallback.tmux_detected()).unwrap_or_default();
    let cell = answer.cell.or_else(cell_from_window_size);
    let Some((width, height)) = cell else {
        // No image protocol draws correctly without the real cell size.
        return fallback;
    };
    // `from_fontsize` is deprecated in favour of `from_query_stdio`, whose reader thread is the
    // bug this module avoids; it still adds the environment's hints (iTerm2, tmux).
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(FontSize::new(width, height));
    if let Some(protocol) = answer.protocol {
        picker.set_protocol_type(protocol);
    }
    picker
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
}
