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

/// Asks the terminal on stdout and decides how to draw figures; `replies` are the terminal's
/// replies as the running reader decodes them. Sends nothing when nothing needs asking (half
/// blocks forced, or tmux blocking every image).
pub fn detect(forced: ImageProtocol, replies: &mpsc::Receiver<Reply>) -> Choice {
    detect_in(forced, &detect::Environment::current(), replies)
}

fn detect_in(
    forced: ImageProtocol,
    env: &detect::Environment,
    replies: &mpsc::Receiver<Reply>,
) -> Choice {
    let blocked = matches!(env.tmux, Some(detect::Passthrough::Off(_)));
    if forced == ImageProtocol::Halfblocks || (blocked && forced == ImageProtocol::Auto) {
        return detect::choose(forced, env, &detect::Answers::default());
    }
    let tmux = env.tmux.is_some();
    let asked = {
        use std::io::Write;
        let mut out = std::io::stdout();
        out.write_all(detect::query(tmux).as_bytes())
            .and_then(|()| out.flush())
            .is_ok()
    };
    let answers = if asked {
        detect::collect(tmux, |left| replies.recv_timeout(left).ok(), detect::QUIET)
    } else {
        detect::Answers::default()
    };
    detect::choose(forced, env, &answers)
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
    let choice = detect_in(forced, &env, &rx);
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
