//! The terminal's input bytes as keys, pastes and the terminal's own replies. Rules: only a key
//! the reviewer pressed becomes a [`Input::Key`]; every reply a terminal sends to a query (APC,
//! DCS, OSC, SOS/PM strings and the CSI replies: device attributes, cursor and status reports,
//! DECRPM, window reports, XTSMGRAPHICS, focus) is consumed whole, however it is split across
//! reads, and comes out as an [`Input::Reply`] that nothing decides on.
//!
//! Why our own decoder: crossterm's reader knows CSI and SS3 only, so the payload of an APC, DCS
//! or OSC reply came out as characters: kitty's `ESC _ G i=1;OK ESC \` typed `=` (tie) and `1`
//! (prefer answer 1) with no key pressed (issue 32). The decoder is a byte-at-a-time state
//! machine (ECMA-48's grammar: strings end at ST or BEL; an ESC inside a string ends it and starts
//! the next sequence), so a reply split at any byte is still one reply.
//!
//! A lone Esc cannot be told from the start of a sequence until the next byte or a silence:
//! [`Decoder::idle`] turns a pending ESC into the Esc key once the reader has seen
//! [`ESC_KEY_SILENCE`] with no byte, and drops a sequence left unfinished for
//! [`ABANDON_SILENCE`] (its bytes are never replayed as keys).

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Silence after an ESC that makes it the Esc key. Terminals send a sequence in one write, so
/// its bytes arrive together; a person pressing Esc and then `[` within this time is unlikely.
pub const ESC_KEY_SILENCE: Duration = Duration::from_millis(40);
/// Silence inside an unfinished sequence after which it is dropped, so a string a terminal
/// never ends cannot swallow the reviewer's keys for long.
pub const ABANDON_SILENCE: Duration = Duration::from_millis(600);
/// Longest string payload kept (kitty's replies, XTVERSION); the rest is read and dropped.
const MAX_KEPT: usize = 4096;
/// Longest paste taken (the answer editor caps an answer far below this).
const MAX_PASTE: usize = 4 << 20;
/// Longest CSI: longer is not a reply or a key, and is dropped.
const MAX_CSI: usize = 64;

/// What the reviewer or the terminal sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    Paste(String),
    Reply(Reply),
}

/// A terminal's reply to a query: what capability detection reads; never an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// DA1 `CSI ? a;b;… c`: the attributes (4 = sixel graphics).
    DeviceAttributes(Vec<u16>),
    /// XTWINOPS `CSI 6;h;w t`: one cell in pixels.
    CellSize { width: u16, height: u16 },
    /// XTWINOPS `CSI 4;h;w t`: the text area in pixels.
    WindowPixels { width: u16, height: u16 },
    /// DSR `CSI 0 n`: the answer to the status query every terminal implements (sent last).
    Status,
    /// kitty graphics `APC G …;OK ST` (or an error message).
    KittyGraphics { ok: bool },
    /// XTVERSION `DCS > | name(version) ST`: the text between `>|` and ST.
    Version(String),
    /// Any other reply (DA2, DA3, OSC colours, cursor reports, DECRPM, focus, XTSMGRAPHICS…),
    /// by its kind, for logs.
    Other(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Osc,
    Dcs,
    Apc,
    /// SOS and PM: read and dropped.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// After `ESC [`: parameter and intermediate bytes so far.
    Csi(Vec<u8>),
    /// After `ESC O`.
    Ss3,
    /// Inside a string; `escape` when its last byte was ESC (ST's first half).
    Text { kind: Kind, escape: bool },
    /// Inside a bracketed paste.
    Paste,
}

/// The byte-stream decoder: push bytes as they are read, call [`Decoder::idle`] after a silence.
#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
    /// An incomplete UTF-8 character in the ground state.
    utf8: Vec<u8>,
    /// A string's payload (up to [`MAX_KEPT`]) or a paste's text.
    text: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes`, appending what they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Input>) {
        for &byte in bytes {
            self.byte(byte, out);
        }
    }

    /// Convenience for tests and one-shot reads.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        self.push(bytes, &mut out);
        out
    }

    /// The reader saw `silence` with no byte: a pending ESC is the Esc key (after
    /// [`ESC_KEY_SILENCE`]); an unfinished sequence is dropped (after [`ABANDON_SILENCE`]).
    pub fn idle(&mut self, silence: Duration, out: &mut Vec<Input>) {
        match self.state {
            State::Escape if silence >= ESC_KEY_SILENCE => {
                self.state = State::Ground;
                out.push(key(KeyCode::Esc, KeyModifiers::NONE));
            }
            State::Ground | State::Escape => {}
            // A paste ends when the terminal says so; a pause inside one is the user's.
            State::Paste => {}
            _ if silence >= ABANDON_SILENCE => {
                self.state = State::Ground;
                self.text.clear();
            }
            _ => {}
        }
        if silence >= ABANDON_SILENCE {
            self.utf8.clear();
        }
    }

    /// Whether a byte more may complete something (the reader then waits a little for it).
    pub fn pending(&self) -> bool {
        self.state != State::Ground || !self.utf8.is_empty()
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<Input>) {
        match std::mem::take(&mut self.state) {
            State::Ground => self.ground(byte, out),
            State::Escape => self.escape(byte, out),
            State::Csi(mut params) => {
                match byte {
                    0x40..=0x7e => match csi(&params, byte) {
                        Csi::Input(input) => out.push(input),
                        Csi::PasteStart => {
                            self.text.clear();
                            self.state = State::Paste;
                        }
                        Csi::Nothing => {}
                    },
                    0x20..=0x3f if params.len() < MAX_CSI => {
                        params.push(byte);
                        self.state = State::Csi(params);
                    }
                    // ESC inside a CSI: that one is cut short, a new sequence starts.
                    0x1b => self.state = State::Escape,
                    // Anything else (an over-long CSI, a control byte) ends it, unread.
                    _ => {}
                }
            }
            State::Ss3 => {
                let code = match byte {
                    b'A' => Some(KeyCode::Up),
                    b'B' => Some(KeyCode::Down),
                    b'C' => Some(KeyCode::Right),
                    b'D' => Some(KeyCode::Left),
                    b'H' => Some(KeyCode::Home),
                    b'F' => Some(KeyCode::End),
                    b'P' => Some(KeyCode::F(1)),
                    b'Q' => Some(KeyCode::F(2)),
                    b'R' => Some(KeyCode::F(3)),
                    b'S' => Some(KeyCode::F(4)),
                    b'M' => Some(KeyCode::Enter),
                    _ => None,
                };
                if let Some(code) = code {
                    out.push(key(code, KeyModifiers::NONE));
                }
            }
            State::Text { kind, escape } => self.text_byte(kind, escape, byte, out),
            State::Paste => {
                self.text.push(byte);
                const END: &[u8] = b"\x1b[201~";
                if self.text.ends_with(END) {
                    self.text.truncate(self.text.len() - END.len());
                    let text = String::from_utf8_lossy(&self.text).into_owned();
                    self.text.clear();
                    out.push(Input::Paste(text));
                } else {
                    if self.text.len() > MAX_PASTE + END.len() {
                        // Kept to the bound; the end marker is still looked for.
                        let keep = self.text.split_off(self.text.len() - END.len());
                        self.text.truncate(MAX_PASTE);
                        self.text.extend_from_slice(&keep);
                    }
                    self.state = State::Paste;
                }
            }
        }
    }

    fn ground(&mut self, byte: u8, out: &mut Vec<Input>) {
        if !self.utf8.is_empty() || byte >= 0x80 {
            if byte < 0x80 || (self.utf8.is_empty() && byte < 0xc0) {
                // Not a continuation (or a stray one): what was started is dropped.
                self.utf8.clear();
                if byte >= 0x80 {
                    return;
                }
            } else {
                self.utf8.push(byte);
                match std::str::from_utf8(&self.utf8) {
                    Ok(text) => {
                        if let Some(c) = text.chars().next() {
                            out.push(char_key(c, KeyModifiers::NONE));
                        }
                        self.utf8.clear();
                    }
                    Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => {
                        self.utf8.clear();
                    }
                    Err(_) => {}
                }
                return;
            }
        }
        if byte == 0x1b {
            self.state = State::Escape;
        } else if let Some(k) = single_byte_key(byte) {
            out.push(k);
        }
    }

    fn escape(&mut self, byte: u8, out: &mut Vec<Input>) {
        self.state = match byte {
            b'[' => State::Csi(Vec::new()),
            b'O' => State::Ss3,
            b']' => self.start_text(Kind::Osc),
            b'P' => self.start_text(Kind::Dcs),
            b'_' => self.start_text(Kind::Apc),
            b'X' | b'^' => self.start_text(Kind::Ignored),
            0x1b => {
                // ESC ESC: the first was the Esc key.
                out.push(key(KeyCode::Esc, KeyModifiers::NONE));
                State::Escape
            }
            // A string terminator with nothing to end: read and dropped.
            b'\\' => State::Ground,
            _ => {
                // Alt held with a key: ESC then the key's own byte(s).
                if byte < 0x80 {
                    if let Some(Input::Key(mut k)) = single_byte_key(byte) {
                        k.modifiers |= KeyModifiers::ALT;
                        out.push(Input::Key(k));
                    }
                } else {
                    self.ground(byte, out);
                }
                State::Ground
            }
        };
    }

    fn start_text(&mut self, kind: Kind) -> State {
        self.text.clear();
        State::Text {
            kind,
            escape: false,
        }
    }

    fn text_byte(&mut self, kind: Kind, escape: bool, byte: u8, out: &mut Vec<Input>) {
        let end = match (escape, byte) {
            (true, b'\\') => Some(None),
            // ESC then anything but `\`: the string ends there and a new sequence begins.
            (true, _) => Some(Some(byte)),
            (false, 0x07) => Some(None),
            (false, 0x1b) => {
                self.state = State::Text { kind, escape: true };
                return;
            }
            (false, _) => {
                if self.text.len() < MAX_KEPT {
                    self.text.push(byte);
                }
                None
            }
        };
        match end {
            None => {
                self.state = State::Text {
                    kind,
                    escape: false,
                }
            }
            Some(next) => {
                out.push(Input::Reply(string_reply(kind, &self.text)));
                self.text.clear();
                if let Some(next) = next {
                    self.escape(next, out);
                }
            }
        }
    }
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Input {
    Input::Key(KeyEvent::new(code, modifiers))
}

/// A character as crossterm reports it: an upper-case letter comes with Shift.
fn char_key(c: char, modifiers: KeyModifiers) -> Input {
    let shift = if c.is_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    key(KeyCode::Char(c), modifiers | shift)
}

/// A key sent as one byte (ASCII and the C0 controls), as crossterm decodes it in raw mode.
fn single_byte_key(byte: u8) -> Option<Input> {
    Some(match byte {
        b'\r' | b'\n' => key(KeyCode::Enter, KeyModifiers::NONE),
        b'\t' => key(KeyCode::Tab, KeyModifiers::NONE),
        0x7f | 0x08 => key(KeyCode::Backspace, KeyModifiers::NONE),
        0x00 => key(KeyCode::Char(' '), KeyModifiers::CONTROL),
        0x01..=0x1a => key(
            KeyCode::Char(char::from(byte - 0x01 + b'a')),
            KeyModifiers::CONTROL,
        ),
        0x1c..=0x1f => key(
            KeyCode::Char(char::from(byte - 0x1c + b'4')),
            KeyModifiers::CONTROL,
        ),
        0x20..=0x7e => char_key(char::from(byte), KeyModifiers::NONE),
        _ => return None,
    })
}

/// The xterm modifier parameter (1 + shift 1, alt 2, ctrl 4).
fn modifiers(param: Option<u16>) -> KeyModifiers {
    let bits = param.unwrap_or(1).saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

/// What a whole CSI is.
enum Csi {
    Input(Input),
    /// `CSI 200 ~`: a bracketed paste starts.
    PasteStart,
    /// No key vital knows, or a paste end without a start: dropped rather than guessed.
    Nothing,
}

impl From<Option<Input>> for Csi {
    fn from(input: Option<Input>) -> Self {
        input.map_or(Csi::Nothing, Csi::Input)
    }
}

/// A whole CSI: a key, a reply, a paste's start, or nothing.
fn csi(params: &[u8], fin: u8) -> Csi {
    if (params, fin) == (b"200".as_slice(), b'~') {
        return Csi::PasteStart;
    }
    csi_input(params, fin).into()
}

fn csi_input(params: &[u8], fin: u8) -> Option<Input> {
    let private = params.first().copied().filter(|b| b"?<=>".contains(b));
    let intermediates: Vec<u8> = params
        .iter()
        .copied()
        .filter(|b| (0x20..=0x2f).contains(b))
        .collect();
    let numbers: Vec<Option<u16>> = params
        .strip_prefix(private.as_slice())
        .unwrap_or(params)
        .split(|&b| b == b';')
        .map(|p| {
            let digits: Vec<u8> = p.iter().copied().take_while(u8::is_ascii_digit).collect();
            std::str::from_utf8(&digits).ok()?.parse().ok()
        })
        .collect();
    let n = |i: usize| numbers.get(i).copied().flatten();
    let reply = |what| Some(Input::Reply(Reply::Other(what)));
    if let Some(marker) = private {
        return match (marker, fin) {
            (b'?', b'c') => Some(Input::Reply(Reply::DeviceAttributes(
                numbers.iter().flatten().copied().collect(),
            ))),
            (b'>', b'c') => reply("secondary device attributes"),
            (b'=', b'c') => reply("tertiary device attributes"),
            (b'?', b'S') => reply("graphics attributes (XTSMGRAPHICS)"),
            (b'?', b'y') => reply("mode report (DECRPM)"),
            (b'?', b'u') => reply("keyboard flags"),
            (b'?', b'R') => reply("cursor position"),
            (b'?', b'n') => reply("status report"),
            // SGR mouse reports (vital asks for none).
            (b'<', b'M' | b'm') => reply("mouse report"),
            _ => reply("private report"),
        };
    }
    if !intermediates.is_empty() {
        return match fin {
            b'y' => reply("mode report (DECRPM)"),
            _ => reply("report"),
        };
    }
    let m = modifiers(n(1));
    let code = match fin {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'Z' => return Some(key(KeyCode::BackTab, KeyModifiers::SHIFT)),
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'S' => KeyCode::F(4),
        // `CSI r;c R` is a cursor report; F3 with modifiers says the same bytes, and vital uses
        // no F3, so every one is taken for the report.
        b'R' => return reply("cursor position"),
        b'I' | b'O' if numbers.iter().all(Option::is_none) => return reply("focus"),
        b'n' => {
            return Some(Input::Reply(match n(0) {
                Some(0) => Reply::Status,
                _ => Reply::Other("status report"),
            }))
        }
        b't' => {
            let size = |kind: fn(u16, u16) -> Reply| match (n(1), n(2)) {
                (Some(h), Some(w)) => Some(Input::Reply(kind(w, h))),
                _ => reply("window report"),
            };
            return match n(0) {
                Some(6) => size(|width, height| Reply::CellSize { width, height }),
                Some(4) => size(|width, height| Reply::WindowPixels { width, height }),
                _ => reply("window report"),
            };
        }
        b'~' => match n(0) {
            Some(1 | 7) => KeyCode::Home,
            Some(2) => KeyCode::Insert,
            Some(3) => KeyCode::Delete,
            Some(4 | 8) => KeyCode::End,
            Some(5) => KeyCode::PageUp,
            Some(6) => KeyCode::PageDown,
            Some(f @ 11..=15) => KeyCode::F((f - 10) as u8),
            Some(f @ 17..=21) => KeyCode::F((f - 11) as u8),
            Some(f @ 23..=26) => KeyCode::F((f - 12) as u8),
            Some(f @ 28..=29) => KeyCode::F((f - 13) as u8),
            Some(f @ 31..=34) => KeyCode::F((f - 14) as u8),
            // A paste end without a start, or a code no key sends.
            _ => return None,
        },
        // Anything else: no key vital knows; dropped rather than guessed.
        _ => return None,
    };
    Some(key(code, m))
}

/// A finished string sequence as a reply.
fn string_reply(kind: Kind, payload: &[u8]) -> Reply {
    match kind {
        Kind::Apc if payload.first() == Some(&b'G') => {
            let text = String::from_utf8_lossy(payload);
            let message = text.split_once(';').map(|(_, m)| m).unwrap_or("");
            Reply::KittyGraphics {
                ok: message == "OK",
            }
        }
        Kind::Apc => Reply::Other("application string"),
        Kind::Dcs => match payload.strip_prefix(b">|") {
            Some(version) => Reply::Version(String::from_utf8_lossy(version).into_owned()),
            None => Reply::Other("device control string"),
        },
        Kind::Osc => Reply::Other("operating system command"),
        Kind::Ignored => Reply::Other("privacy or start-of-string message"),
    }
}

#[cfg(test)]
mod tests;
