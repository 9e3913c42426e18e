//! The terminal vital draws in, in one place for the review screen and `vital show`: its input
//! decoded into keys and replies ([`input`]), read by one reader ([`reader`]); what it can draw
//! and the protocol chosen ([`detect`]); and kitty's placed images ([`kitty`]). Rules: knows
//! nothing of the review screen's state; only key presses leave here as keys.

pub mod backend;
pub mod detect;
pub mod input;
pub mod kitty;
pub mod reader;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::FontSize;

pub use detect::{Choice, Graphics};
use input::{Input, Reply};

use crate::config::ImageProtocol;

/// Capability detection in progress: the query is out; answers are taken as they come, before
/// the first frame ([`Detection::wait`], at most [`detect::QUIET`] of silence) and after it
/// ([`Detection::late`]): over a slow link (SSH, a loaded machine) the terminal's answers come
/// after the first frame, and the screen then switches to what they offer.
pub struct Detection {
    forced: ImageProtocol,
    env: detect::Environment,
    answers: detect::Answers,
    /// The query went out (nothing is asked when half blocks are forced or tmux blocks images).
    asked: bool,
    /// Every status report expected has come: later replies change nothing.
    settled: bool,
}

impl Detection {
    /// Writes the query to stdout when the choice depends on the terminal's answers.
    pub fn ask(forced: ImageProtocol) -> Self {
        Self::ask_in(forced, detect::Environment::current())
    }

    fn ask_in(forced: ImageProtocol, env: detect::Environment) -> Self {
        let blocked = matches!(env.tmux, Some(detect::Passthrough::Off(_)));
        let needed =
            !(forced == ImageProtocol::Halfblocks || (blocked && forced == ImageProtocol::Auto));
        let asked = needed && {
            use std::io::Write;
            let mut out = std::io::stdout();
            out.write_all(detect::query(env.tmux.is_some()).as_bytes())
                .and_then(|()| out.flush())
                .is_ok()
        };
        Self {
            forced,
            env,
            answers: detect::Answers::default(),
            asked,
            settled: !asked,
        }
    }

    /// Takes the replies that come within the silence limit, and chooses.
    pub fn wait(&mut self, replies: &mpsc::Receiver<Reply>) -> Choice {
        if self.asked {
            let tmux = self.env.tmux.is_some();
            self.answers =
                detect::collect(tmux, |left| replies.recv_timeout(left).ok(), detect::QUIET);
            self.settled = self.answers.statuses >= detect::statuses_expected(tmux);
        }
        self.choice()
    }

    /// A reply after [`Self::wait`]: the new choice once the terminal has answered everything,
    /// else None.
    pub fn late(&mut self, reply: &Reply) -> Option<Choice> {
        if self.settled {
            return None;
        }
        self.answers.take(reply);
        if self.answers.statuses < detect::statuses_expected(self.env.tmux.is_some()) {
            return None;
        }
        self.settled = true;
        Some(self.choice())
    }

    pub fn choice(&self) -> Choice {
        detect::choose(self.forced, &self.env, &self.answers)
    }
}

/// Detection for a program with no input loop of its own (`vital show`): raw mode and a reader
/// only while the terminal is asked; the reader is stopped and joined before this returns, so
/// nothing is left reading stdin. Keys typed meanwhile are dropped.
pub fn detect_once(forced: ImageProtocol) -> Choice {
    use std::io::IsTerminal;
    let env = detect::Environment::current();
    if !std::io::stdin().is_terminal() || crossterm::terminal::enable_raw_mode().is_err() {
        return detect::choose(forced, &env, &detect::Answers::default());
    }
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let reading = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            reader::run(
                |event| match event {
                    reader::Event::Input(Input::Reply(reply)) => tx.send(reply).is_ok(),
                    _ => true,
                },
                || !stop.load(Ordering::Relaxed),
            )
        })
    };
    let choice = Detection::ask_in(forced, env).wait(&rx);
    // A reply still on its way (the query's last answer is in, so there should be none).
    while rx.recv_timeout(Duration::from_millis(30)).is_ok() {}
    stop.store(true, Ordering::Relaxed);
    let _ = reading.join();
    let _ = crossterm::terminal::disable_raw_mode();
    choice
}

/// ratatui-image's picker for a choice (half blocks for kitty's placed images, which vital
/// draws itself).
pub fn picker(choice: &Choice) -> Picker {
    let Some((width, height)) = choice.cell else {
        return Picker::halfblocks();
    };
    // kitty's placed images are sized with this picker's cell size (a figure's cells keep its
    // aspect only with the real one), though vital draws them itself.
    let protocol = match (choice.graphics, protocol_type(choice.graphics)) {
        (Graphics::KittyDirect, _) => ProtocolType::Halfblocks,
        (_, Some(protocol)) => protocol,
        (_, None) => return Picker::halfblocks(),
    };
    // `from_fontsize` is deprecated in favour of `from_query_stdio`, whose reader thread takes
    // the reviewer's keys (ratatui-image #202); it adds the environment's tmux wrapping.
    #[allow(deprecated)]
    let mut picker = Picker::from_fontsize(FontSize::new(width, height));
    picker.set_protocol_type(protocol);
    picker
}

fn protocol_type(graphics: Graphics) -> Option<ProtocolType> {
    match graphics {
        Graphics::KittyPlaceholders => Some(ProtocolType::Kitty),
        Graphics::Sixel => Some(ProtocolType::Sixel),
        Graphics::Iterm2 => Some(ProtocolType::Iterm2),
        Graphics::KittyDirect | Graphics::Halfblocks => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_come_after_the_first_frame_switch_to_what_the_terminal_offers() {
        let mut detection = Detection {
            forced: ImageProtocol::Auto,
            env: detect::Environment::default(),
            answers: detect::Answers::default(),
            asked: true,
            settled: false,
        };
        // Nothing within the silence limit (the link is slow): half blocks first.
        let (tx, rx) = mpsc::channel();
        drop(tx);
        assert_eq!(detection.wait(&rx).graphics, Graphics::Halfblocks);
        let replies = input::Decoder::new()
            .decode(b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[6;17;7t\x1b[?62;c\x1b[0n");
        let mut chosen = Vec::new();
        for reply in replies {
            if let Input::Reply(reply) = reply {
                chosen.extend(detection.late(&reply));
            }
        }
        assert_eq!(chosen.len(), 1, "one new choice, at the status report");
        assert_eq!(chosen[0].graphics, Graphics::KittyDirect);
        assert_eq!(chosen[0].cell, Some((7, 17)));
        // Settled: a reply after that changes nothing.
        assert_eq!(detection.late(&Reply::Status), None);
    }
}
