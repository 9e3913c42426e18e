//! `vital review`: the clinician's review screen. One loop: every input — keys, signals, and the
//! answers of background work — is a [`app::Msg`] on one channel; only the pure [`app`] update
//! changes the app, and it returns [`app::Effect`]s that an [`executor::Executor`] carries out
//! (slow ones on worker threads). Drawing is in [`view`].

pub mod app;
pub mod editor;
pub mod executor;
pub mod external_editor;
pub mod figure_view;
pub mod keymap;
mod placed;
pub mod queue;
pub mod sample_view;
pub mod score_rank;
pub mod session;
pub mod simulate;
pub mod trainer;
pub mod view;
mod workers;
pub mod wrap;

use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use anyhow::Context;
use ratatui_image::thread::ThreadProtocol;

use self::app::{ImageStatus, Msg};
use self::session::{Session, SessionOptions};
use self::view::{Drawing, ImagePane, ImageState, ShownImage};
use self::workers::Resizer;
use crate::store::Workspace;

pub use crate::config::ImageProtocol;
pub use workers::decode_image;

pub struct ReviewOptions {
    pub workspace: PathBuf,
    pub session: SessionOptions,
    pub trainer: trainer::TrainerSettings,
    pub protocol: ImageProtocol,
    pub max_image_side: u32,
    /// Download limits for figures fetched from the workspace's URL list.
    pub llm: crate::llm::LlmConfig,
}

/// Runs the review screen until the reviewer quits; returns the folder of its decision journal
/// (the caller reports what still waits there). The terminal is restored on every exit path:
/// return, error, panic (ratatui's hook) and SIGTERM/SIGHUP (handled as a quit).
pub fn run(options: ReviewOptions) -> anyhow::Result<PathBuf> {
    let ws = Workspace::open_existing(&options.workspace)?;
    let journal_dir = ws.dir().to_path_buf();
    // One screen per reviewer: a second one would share this machine's journal (and its undo).
    let _one_screen = crate::store::Journal::lock_reviewer(ws.dir(), &options.session.reviewer)?;
    let emptied = crate::store::Journal::was_emptied(ws.dir())
        .then(|| ws.dir().join(crate::store::JOURNAL_FILE));
    let fetch = crate::config::fetch_settings(&options.llm, ws.image_cache_dir());
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut session = Session::start_threaded(
        ws,
        options.session,
        options.trainer,
        fetch,
        options.max_image_side,
        tx.clone(),
    )?;

    // ratatui's set-up (raw mode, the alternate screen, a panic hook that restores the terminal),
    // drawn through a backend that never asks the terminal where its cursor is.
    drop(ratatui::try_init().context("cannot set up the terminal")?);
    let mut terminal = ratatui::Terminal::new(crate::terminal::backend::ScreenBackend::stdout())
        .context("cannot set up the terminal")?;
    // One reader takes every input byte from here to the end: a reply to a query, however late,
    // is consumed by its decoder and never read as keys. Keys typed while the terminal is asked
    // reach the app in order, ahead of every later key.
    let gate = Arc::new(external_editor::InputGate::default());
    let (reply_tx, reply_rx) = mpsc::channel();
    workers::spawn_terminal_input(tx.clone(), reply_tx, gate.clone());
    let mut detection = crate::terminal::Detection::ask(options.protocol);
    let mut choice = detection.wait(&reply_rx);
    let mut picker = crate::terminal::picker(&choice);
    session.dispatch(Msg::Notice(choice.why.clone()));
    if let Some(journal) = emptied {
        session.dispatch(Msg::Notice(format!(
            "the decision journal {} was found empty (0 bytes): decisions that waited in it, if any, are lost (restore it from a backup)",
            journal.display()
        )));
    }
    // Pastes arrive as one text (into the answer editor), not as keys.
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::event::EnableBracketedPaste
    );
    if let Ok(size) = terminal.size() {
        session.dispatch(Msg::Resized(size.width, size.height));
    }
    let scratch = session_scratch_dir(&options.workspace);
    workers::spawn_signal_watch(tx.clone());
    let placer = tx.clone();
    let resizer = Resizer::spawn(tx);
    let mut placed = placed::Placements::default();

    let result = (|| -> anyhow::Result<()> {
        let mut pane = ImagePane {
            graphics: choice.graphics,
            ..ImagePane::default()
        };
        let mut shown = None;
        let mut layer = None;
        let mut drawn_size = None;
        loop {
            // The terminal's answers after the first frame (a slow link): the best it offers
            // from then on, the figure made again with it.
            for reply in reply_rx.try_iter() {
                let Some(late) = detection.late(&reply) else {
                    continue;
                };
                if (late.graphics, late.cell) != (choice.graphics, choice.cell) {
                    choice = late;
                    picker = crate::terminal::picker(&choice);
                    pane.graphics = choice.graphics;
                    pane.state = ImageState::Placeholder(String::new());
                    shown = None;
                    terminal.clear()?;
                    placed.screen_cleared();
                    session.dispatch(Msg::Notice(choice.why.clone()));
                }
            }
            for response in resizer.resized.try_iter() {
                if let (ImageState::Ready(shown), Ok(response)) = (&mut pane.state, response) {
                    if let Drawing::Cells(protocol) = &mut shown.drawing {
                        protocol.update_resized_protocol(response);
                    }
                }
            }
            let status = session.app.figure_on_screen();
            show_image(
                &mut pane,
                &mut shown,
                session.app.image.key,
                status,
                |img| {
                    let drawing = if choice.graphics == crate::terminal::Graphics::KittyDirect {
                        Drawing::Placed(placed.prepare(img.clone(), &choice, placer.clone()))
                    } else {
                        Drawing::Cells(ThreadProtocol::new(
                            resizer.requests.clone(),
                            Some(picker.new_resize_protocol(img.as_ref().clone())),
                        ))
                    };
                    ShownImage {
                        drawing,
                        image: img,
                        font: picker.font_size(),
                    }
                },
            );
            // A figure drawn at the terminal's resolution is not cells: when an overlay opens or
            // closes, or the zoom view comes or goes, the whole screen is drawn again, figure
            // included (else sixel keeps a pop-up's text painted on it).
            let now = view::layer(&session.app);
            if layer.is_some_and(|was| was != now) {
                terminal.clear()?;
                placed.screen_cleared();
            }
            layer = Some(now);
            // A resize clears the screen inside ratatui's draw (and kitty drops its images).
            let size = terminal.size().ok();
            if size != drawn_size {
                placed.screen_cleared();
                drawn_size = size;
            }
            terminal.draw(|frame| view::draw(frame, &session.app, &mut pane))?;
            placed.sync(&pane, &mut std::io::stdout())?;
            if session.app.quitting {
                placed.clear_all(&mut std::io::stdout());
                return Ok(());
            }
            // Wait for one message, then take whatever else is queued before redrawing.
            let first = rx.recv().context("the input thread stopped")?;
            let drawn = session.app.current.as_ref().map(|v| v.key());
            for msg in std::iter::once(first).chain(rx.try_iter()) {
                session.dispatch(msg);
                // A new sample is drawn before the next message is handled: keys typed ahead
                // land on what the reviewer has seen.
                if session.app.current.as_ref().map(|v| v.key()) != drawn {
                    break;
                }
            }
            if let Some(edit) = session.app.external_edit.take() {
                let result = hand_terminal_to_editor(&mut terminal, &gate, &edit.text, &scratch);
                placed.screen_cleared();
                session.dispatch(Msg::ExternalEditDone {
                    target: edit.target,
                    result: result.map_err(|e| format!("{e:#}")),
                });
            }
        }
    })();
    placed.clear_all(&mut std::io::stdout());
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::event::DisableBracketedPaste
    );
    ratatui::restore();
    result.map(|()| journal_dir)
}

/// Where `$EDITOR`'s temporary file goes: the workspace's folder when it is one (the answer
/// stays beside the data it came from), else the system's temporary folder.
fn session_scratch_dir(workspace: &std::path::Path) -> PathBuf {
    if workspace.is_dir() {
        workspace.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Runs the reviewer's editor on `text` with the terminal handed over, and takes it back.
fn hand_terminal_to_editor(
    terminal: &mut ratatui::Terminal<crate::terminal::backend::ScreenBackend>,
    gate: &external_editor::InputGate,
    text: &str,
    scratch: &std::path::Path,
) -> anyhow::Result<String> {
    use ratatui::crossterm::terminal::{
        disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
    };
    gate.pause();
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        ratatui::crossterm::event::DisableBracketedPaste,
        LeaveAlternateScreen
    );
    let _ = disable_raw_mode();
    let command = external_editor::editor_command(
        std::env::var("VISUAL").ok().as_deref(),
        std::env::var("EDITOR").ok().as_deref(),
    );
    let result = external_editor::edit_in(&command, text, scratch);
    // Back, whatever the editor did.
    let _ = enable_raw_mode();
    let _ = ratatui::crossterm::execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        ratatui::crossterm::event::EnableBracketedPaste
    );
    let _ = terminal.clear();
    gate.resume();
    result
}

/// Mirrors the figure the app shows into the pane, making terminal graphics once per image
/// (the decoded figure, or a view of it on the full-screen figure).
fn show_image(
    pane: &mut ImagePane,
    shown: &mut Option<Arc<image::DynamicImage>>,
    key: Option<i64>,
    status: ImageStatus,
    make: impl FnOnce(Arc<image::DynamicImage>) -> ShownImage,
) {
    pane.key = key;
    match status {
        ImageStatus::Ready(img) => {
            if !shown.as_ref().is_some_and(|s| Arc::ptr_eq(s, &img)) {
                *shown = Some(img.clone());
                pane.state = ImageState::Ready(Box::new(make(img)));
            }
        }
        ImageStatus::Loading(what) => {
            pane.state = ImageState::Loading(what);
            *shown = None;
        }
        ImageStatus::Placeholder(why) => {
            pane.state = ImageState::Placeholder(why);
            *shown = None;
        }
    }
}

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod edit_tests;
#[cfg(test)]
mod executor_tests;
#[cfg(test)]
mod view_tests;
