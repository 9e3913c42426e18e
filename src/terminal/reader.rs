//! Reads the terminal's input bytes from stdin and decodes them ([`super::input`]). Rules: the
//! reader is the only code that reads stdin while a screen runs, from its first query to its
//! exit, so a reply that arrives at any time is consumed by the decoder and never reaches a
//! screen as keys; it reads only after a short poll, so a caller can park it between reads
//! while another program (the reviewer's editor) has the terminal.

use std::time::{Duration, Instant};

use super::input::{Decoder, Input};

/// How often the reader wakes with nothing to read: for a pending Esc, the window size, and
/// the park check.
const TICK: Duration = Duration::from_millis(20);

/// What the reader reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Input(Input),
    /// The window changed to this many columns and rows.
    Resized(u16, u16),
}

/// Reads stdin on the calling thread until `deliver` or `park` returns false, or stdin ends.
/// `park` is called between reads (it may block while another program owns the terminal).
#[cfg(unix)]
pub fn run(mut deliver: impl FnMut(Event) -> bool, park: impl Fn() -> bool) {
    use std::os::fd::AsRawFd;

    let fd = std::io::stdin().as_raw_fd();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut size = crossterm::terminal::size().ok();
    let mut last_byte = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        if !park() {
            return;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let wait = libc::c_int::try_from(TICK.as_millis()).unwrap_or(20);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, wait) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if ready > 0 {
            if poll.revents & (libc::POLLIN | libc::POLLHUP) == 0 {
                return;
            }
            // SAFETY: `buf` is writable for its length; poll said the read will not block.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                return; // end of input (the terminal hung up) or an error
            }
            let n = usize::try_from(n).unwrap_or(0);
            decoder.push(&buf[..n], &mut out);
            last_byte = Instant::now();
        } else {
            decoder.idle(last_byte.elapsed(), &mut out);
        }
        for input in out.drain(..) {
            if !deliver(Event::Input(input)) {
                return;
            }
        }
        let now = crossterm::terminal::size().ok();
        if now != size {
            size = now;
            if let Some((columns, rows)) = now {
                if !deliver(Event::Resized(columns, rows)) {
                    return;
                }
            }
        }
    }
}

/// Without unix's poll: crossterm's reader (which cannot tell APC/DCS/OSC replies from keys).
#[cfg(not(unix))]
pub fn run(mut deliver: impl FnMut(Event) -> bool, park: impl Fn() -> bool) {
    use crossterm::event::{self, Event as TermEvent, KeyEventKind};
    loop {
        if !park() {
            return;
        }
        match event::poll(TICK) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(_) => return,
        }
        let Ok(ev) = event::read() else {
            return;
        };
        let event = match ev {
            TermEvent::Key(key) if key.kind == KeyEventKind::Release => continue,
            TermEvent::Key(key) => Event::Input(Input::Key(key)),
            TermEvent::Paste(text) => Event::Input(Input::Paste(text)),
            TermEvent::Resize(w, h) => Event::Resized(w, h),
            _ => continue,
        };
        if !deliver(event) {
            return;
        }
    }
}
