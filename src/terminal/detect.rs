//! What the terminal can draw, from its own answers, and the one protocol vital draws figures
//! with there. Rules: the review screen and `vital show` both choose here; the choice rests on
//! replies (kitty's graphics answer, DA1's sixel attribute, XTVERSION's name and version, the
//! cell size), with the environment consulted only where a terminal has no reply for it (iTerm2,
//! tmux's passthrough setting); every choice comes with the words the screen shows for it.

use std::time::{Duration, Instant};

use super::input::Reply;
use crate::config::ImageProtocol;

/// The longest the query waits with no reply. Terminals answer in well under a millisecond
/// locally and within a round trip over SSH; a silent one (a bare pseudo-terminal, some serial
/// consoles) costs this much before the first frame. Replies later than this are still consumed
/// by the input decoder, never taken for keys.
pub const QUIET: Duration = Duration::from_millis(300);
/// The longest the query runs, however slowly a terminal trickles its answers.
pub const TOTAL: Duration = Duration::from_secs(2);
/// kitty draws images in text cells (Unicode placeholders, which also pass through tmux) from
/// this version on; before it only placed ones.
const KITTY_PLACEHOLDERS: (u32, u32) = (0, 28);

/// How figures are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    /// kitty's graphics protocol with Unicode placeholders: the image lives in text cells.
    KittyPlaceholders,
    /// kitty's graphics protocol, placed at a cell position (kitty before 0.28, WezTerm,
    /// Konsole): vital removes and places it again around every overlay.
    KittyDirect,
    Sixel,
    Iterm2,
    /// Unicode half blocks: two pixels a cell, any terminal with colour.
    Halfblocks,
}

impl Graphics {
    pub fn label(self) -> &'static str {
        match self {
            Graphics::KittyPlaceholders => "kitty",
            Graphics::KittyDirect => "kitty, placed",
            Graphics::Sixel => "sixel",
            Graphics::Iterm2 => "iTerm2",
            Graphics::Halfblocks => "half blocks",
        }
    }
}

/// The protocol chosen, the cell size it draws with, and why (shown to the reviewer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub graphics: Graphics,
    /// Pixels per cell (width, height); None only with half blocks.
    pub cell: Option<(u16, u16)>,
    /// One line: what was chosen, and for half blocks what would give a sharp figure.
    pub why: String,
    /// Inside tmux (images and queries are wrapped for its passthrough).
    pub tmux: bool,
}

/// Where vital runs, as far as the environment tells what replies cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// Inside tmux ($TMUX), and tmux's global `allow-passthrough`.
    pub tmux: Option<Passthrough>,
    /// iTerm2 or a terminal that speaks its protocol (TERM_PROGRAM / LC_TERMINAL).
    pub iterm2: bool,
    /// WezTerm or Konsole: their kitty support is partial (ratatui-image avoids it too).
    pub partial_kitty: bool,
    /// The cell size from the kernel's window size, where the terminal fills it in.
    pub window_cell: Option<(u16, u16)>,
}

/// tmux's `allow-passthrough`, as `tmux show -gv allow-passthrough` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passthrough {
    On,
    /// Off, or a tmux before 3.3 (which has no such option): why.
    Off(String),
}

impl Environment {
    /// The environment of this process.
    pub fn current() -> Self {
        let var = |name| std::env::var(name).unwrap_or_default();
        let in_tmux = !var("TMUX").is_empty();
        Environment {
            tmux: in_tmux.then(tmux_passthrough),
            iterm2: var("TERM_PROGRAM") == "iTerm.app" || var("LC_TERMINAL") == "iTerm2",
            partial_kitty: !var("WEZTERM_EXECUTABLE").is_empty()
                || !var("KONSOLE_VERSION").is_empty(),
            window_cell: window_cell(),
        }
    }
}

/// Asks the tmux server vital runs under for its global `allow-passthrough`.
fn tmux_passthrough() -> Passthrough {
    let answer = std::process::Command::new("tmux")
        .args(["show", "-gv", "allow-passthrough"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
    passthrough_from_answer(answer.as_deref())
}

/// `tmux show -gv allow-passthrough`'s answer (None: the command failed, as in tmux before 3.3).
pub fn passthrough_from_answer(answer: Option<&str>) -> Passthrough {
    match answer.map(str::trim) {
        Some("on" | "all") => Passthrough::On,
        Some(value) => Passthrough::Off(format!("tmux allow-passthrough is {value}")),
        None => Passthrough::Off("this tmux cannot pass images through (3.3+ can)".into()),
    }
}

/// The cell size from the kernel's window size in pixels.
fn window_cell() -> Option<(u16, u16)> {
    let size = crossterm::terminal::window_size().ok()?;
    if size.width == 0 || size.height == 0 || size.columns == 0 || size.rows == 0 {
        return None;
    }
    Some((size.width / size.columns, size.height / size.rows))
}

/// What the terminal answered to [`query`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// kitty's graphics reply to a one-pixel query: Some(true) for OK.
    pub kitty: Option<bool>,
    /// DA1's attributes (4 = sixel); inside tmux, tmux's own.
    pub attributes: Option<Vec<u16>>,
    pub cell: Option<(u16, u16)>,
    pub window_pixels: Option<(u16, u16)>,
    /// XTVERSION: `kitty(0.26.5)`, `XTerm(379)`, `tmux 3.3a`…
    pub version: Option<String>,
    /// Status reports seen (the last query's answer; one per query batch).
    pub statuses: usize,
}

impl Answers {
    /// Takes one reply in.
    pub fn take(&mut self, reply: &Reply) {
        match reply {
            Reply::KittyGraphics { ok } => self.kitty = Some(*ok || self.kitty == Some(true)),
            Reply::DeviceAttributes(a) => self.attributes = Some(a.clone()),
            Reply::CellSize { width, height } if *width > 0 && *height > 0 => {
                self.cell = Some((*width, *height))
            }
            Reply::WindowPixels { width, height } => self.window_pixels = Some((*width, *height)),
            // Inside tmux both tmux and the terminal may answer: the terminal's name is kept.
            Reply::Version(v) if self.version.is_none() || !v.starts_with("tmux") => {
                self.version = Some(v.clone())
            }
            Reply::Status => self.statuses += 1,
            _ => {}
        }
    }

    /// The terminal's name and version from XTVERSION (`kitty(0.26.5)` → kitty, 0.26).
    fn terminal(&self) -> Option<(String, Option<(u32, u32)>)> {
        let text = self.version.as_deref()?;
        let (name, rest) = match text.find(['(', ' ']) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let mut parts = rest
            .trim_end_matches(')')
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u32>().ok());
        let version = match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) => Some((major, minor)),
            _ => None,
        };
        Some((name.to_ascii_lowercase(), version))
    }

    /// kitty's graphics with Unicode placeholders: kitty 0.28+ or ghostty.
    fn has_placeholders(&self) -> bool {
        match self.terminal() {
            Some((name, version)) if name == "kitty" => {
                version.is_some_and(|v| v >= KITTY_PLACEHOLDERS)
            }
            Some((name, _)) => name == "ghostty",
            None => false,
        }
    }

    fn named(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| "this terminal".into())
    }
}

/// The queries, in one write: kitty graphics (a one-pixel query kitty answers), XTVERSION, DA1,
/// the cell size, and last the status report every terminal answers. Inside tmux (with
/// passthrough on) the terminal's own queries are wrapped so they reach it; DA1 goes to tmux
/// itself, whose attributes say whether tmux draws sixel.
pub fn query(tmux: bool) -> String {
    const OWN: &str = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[>0q\x1b[16t\x1b[14t";
    if tmux {
        let wrapped = format!("{OWN}\x1b[5n").replace('\x1b', "\x1b\x1b");
        format!("\x1bPtmux;{wrapped}\x1b\\\x1b[c\x1b[5n")
    } else {
        format!("{OWN}\x1b[c\x1b[5n")
    }
}

/// How many status reports end the answers to [`query`]: inside tmux both tmux and the terminal
/// answer one.
pub fn statuses_expected(tmux: bool) -> usize {
    if tmux {
        2
    } else {
        1
    }
}

/// Collects replies from `next` (a wait of at most the given time for the next reply; None on
/// silence or when the reader is gone) until the expected status reports, a [`QUIET`] stretch,
/// or [`TOTAL`].
pub fn collect(
    tmux: bool,
    mut next: impl FnMut(Duration) -> Option<Reply>,
    quiet: Duration,
) -> Answers {
    let start = Instant::now();
    let mut answers = Answers::default();
    while answers.statuses < statuses_expected(tmux) {
        let left = TOTAL.saturating_sub(start.elapsed()).min(quiet);
        if left.is_zero() {
            break;
        }
        match next(left) {
            Some(reply) => answers.take(&reply),
            None => break,
        }
    }
    answers
}

/// The protocol for `forced` (auto: the best the terminal offers) given its answers.
pub fn choose(forced: ImageProtocol, env: &Environment, answers: &Answers) -> Choice {
    let cell = answers.cell.or(env.window_cell);
    let tmux = env.tmux.is_some();
    let half = |why: String| Choice {
        graphics: Graphics::Halfblocks,
        cell: None,
        why,
        tmux,
    };
    let kitty_kind = |answers: &Answers| {
        if tmux || answers.has_placeholders() {
            Graphics::KittyPlaceholders
        } else {
            Graphics::KittyDirect
        }
    };
    let (graphics, why) = match forced {
        ImageProtocol::Halfblocks => {
            return half("figures in half blocks (--image-protocol halfblocks)".into())
        }
        ImageProtocol::Kitty => (kitty_kind(answers), "--image-protocol kitty".to_string()),
        ImageProtocol::Sixel => (Graphics::Sixel, "--image-protocol sixel".to_string()),
        ImageProtocol::Iterm2 => (Graphics::Iterm2, "--image-protocol iterm2".to_string()),
        ImageProtocol::Auto => match auto(env, answers) {
            Ok(chosen) => chosen,
            Err(why) => return half(why),
        },
    };
    match cell {
        Some(cell) => Choice {
            graphics,
            cell: Some(cell),
            why: format!("figures in {} ({why})", graphics.label()),
            tmux,
        },
        None => half(format!(
            "{} did not tell its cell size in pixels: figures in half blocks",
            answers.named()
        )),
    }
}

/// Auto-detection: the protocol and why, or why half blocks.
fn auto(env: &Environment, answers: &Answers) -> Result<(Graphics, String), String> {
    let kitty = answers.kitty == Some(true) && !env.partial_kitty;
    let sixel = answers
        .attributes
        .as_ref()
        .is_some_and(|a| a.iter().skip(1).any(|&x| x == 4));
    if let Some(passthrough) = &env.tmux {
        return match passthrough {
            Passthrough::Off(why) => Err(format!(
                "{why}: figures in half blocks (set -g allow-passthrough on, with kitty 0.28+ outside, for sharp ones)"
            )),
            Passthrough::On if kitty && answers.has_placeholders() => Ok((
                Graphics::KittyPlaceholders,
                format!("{} through tmux", answers.named()),
            )),
            Passthrough::On if kitty => Err(format!(
                "inside tmux only kitty's Unicode placeholders pass through (kitty 0.28+); {} has none: figures in half blocks (run vital outside tmux for a sharp figure)",
                answers.named()
            )),
            Passthrough::On => Err(
                "inside tmux only kitty 0.28+ images pass through, and tmux 3.3 draws no sixel: figures in half blocks (run vital outside tmux, or in kitty 0.28+, for a sharp figure)"
                    .into(),
            ),
        };
    }
    if kitty {
        let graphics = if answers.has_placeholders() {
            Graphics::KittyPlaceholders
        } else {
            Graphics::KittyDirect
        };
        let how = if graphics == Graphics::KittyDirect {
            " has no Unicode placeholders; the figure is placed"
        } else {
            ""
        };
        return Ok((graphics, format!("{}{how}", answers.named())));
    }
    if sixel {
        return Ok((
            Graphics::Sixel,
            format!("{} offers sixel in DA1", answers.named()),
        ));
    }
    if env.iterm2 {
        return Ok((Graphics::Iterm2, "iTerm2 by TERM_PROGRAM".into()));
    }
    if env.partial_kitty && answers.kitty == Some(true) {
        return Ok((Graphics::Iterm2, "WezTerm or Konsole".into()));
    }
    if answers.statuses == 0 && answers.attributes.is_none() {
        return Err(
            "the terminal did not answer vital's queries: figures in half blocks (--image-protocol kitty|sixel|iterm2 forces one)"
                .into(),
        );
    }
    Err(format!(
        "{} offers no image protocol vital draws (kitty, sixel, iTerm2): figures in half blocks",
        answers.named()
    ))
}

#[cfg(test)]
mod tests;
