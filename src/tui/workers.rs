//! Background threads of the review screen: terminal input, image decode and download, the
//! full-screen figure's views, image resize/encode, search, and termination signals. Each sends a [`Msg`] to the UI loop's one
//! channel.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

use image::DynamicImage;
use ratatui_image::thread::{ResizeRequest, ResizeResponse};

use super::app::{ImageUpdate, Msg};
use super::figure_view::FigureView;
use crate::store::Workspace;

/// The executor's workers: each keeps only the newest request waiting.
pub struct Workers {
    decode: Sender<(i64, PathBuf)>,
    adjust: Sender<(i64, FigureView, Arc<DynamicImage>)>,
    download: Sender<(i64, crate::figure_fetch::Item)>,
    search: Sender<String>,
}

/// Largest decoded image accepted, so a corrupt or hostile file cannot exhaust memory.
const MAX_DECODE_BYTES: u64 = 512 << 20;

impl Workers {
    pub fn start(
        to_ui: Sender<Msg>,
        search_ws: Workspace,
        fetch: crate::figure_fetch::FetchSettings,
        max_side: u32,
    ) -> Self {
        let (decode, decode_rx) = mpsc::channel::<(i64, PathBuf)>();
        let tx = to_ui.clone();
        thread::spawn(move || {
            while let Some((key, path)) = latest(&decode_rx) {
                let update = ImageUpdate::Decoded(decode_image(&path, max_side).map(Arc::new));
                if tx.send(Msg::Image { key, update }).is_err() {
                    break;
                }
            }
        });

        // The full-screen figure's views: cut and adjusted from the decoded figure, only the
        // newest asked for (the reviewer pressed on past the others).
        let (adjust, adjust_rx) = mpsc::channel::<(i64, FigureView, Arc<DynamicImage>)>();
        let tx = to_ui.clone();
        thread::spawn(move || {
            while let Some((key, view, figure)) = latest(&adjust_rx) {
                let image = Arc::new(super::figure_view::render(&figure, &view));
                let update = ImageUpdate::Adjusted { view, image };
                if tx.send(Msg::Image { key, update }).is_err() {
                    break;
                }
            }
        });

        // Downloads, one at a time: the reviewer waits for the figure on screen, not a batch.
        let (download, download_rx) = mpsc::channel::<(i64, crate::figure_fetch::Item)>();
        let tx = to_ui.clone();
        thread::spawn(move || {
            let Ok(runtime) = crate::llm::runtime() else {
                return;
            };
            while let Some((key, item)) = latest(&download_rx) {
                let fetched = runtime.block_on(crate::figure_fetch::fetch_all(
                    vec![item],
                    fetch.clone(),
                    |_, _| {},
                ));
                let result = match fetched.map(|mut v| v.pop()) {
                    Ok(Some((
                        _,
                        crate::figure_fetch::Outcome::Downloaded(p)
                        | crate::figure_fetch::Outcome::Present(p),
                    ))) => Ok(p),
                    Ok(Some((_, crate::figure_fetch::Outcome::Failed(why)))) => Err(why),
                    Ok(None) => Err("nothing was downloaded".into()),
                    Err(e) => Err(format!("{e:#}")),
                };
                let update = ImageUpdate::Downloaded(result);
                if tx.send(Msg::Image { key, update }).is_err() {
                    break;
                }
            }
        });

        let (search, search_rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            while let Some(query) = latest(&search_rx) {
                let msg = match search_ws.search(&query) {
                    Ok(keys) => Msg::SearchDone { query, keys },
                    Err(e) => Msg::Error(format!("{e:#}")),
                };
                if to_ui.send(msg).is_err() {
                    break;
                }
            }
        });

        Self {
            decode,
            adjust,
            download,
            search,
        }
    }

    pub fn download(&self, key: i64, item: crate::figure_fetch::Item) {
        let _ = self.download.send((key, item));
    }

    pub fn decode(&self, key: i64, path: PathBuf) {
        let _ = self.decode.send((key, path));
    }

    pub fn adjust(&self, key: i64, view: FigureView, figure: Arc<DynamicImage>) {
        let _ = self.adjust.send((key, view, figure));
    }

    pub fn search(&self, query: String) {
        let _ = self.search.send(query);
    }
}

/// The terminal's keys as [`Msg::Key`], pastes as [`Msg::Paste`], resizes as
/// [`Msg::Resized`]; the terminal's replies to queries go to `replies` (capability detection
/// listens there at start) and are never keys. It reads only after a short poll, so `gate` can
/// park it between reads while another program (the reviewer's editor) has the terminal.
pub fn spawn_terminal_input(
    to_ui: Sender<Msg>,
    replies: Sender<crate::terminal::input::Reply>,
    gate: Arc<super::external_editor::InputGate>,
) {
    use crate::terminal::input::Input;
    use crate::terminal::reader::{self, Event};
    thread::spawn(move || {
        reader::run(
            |event| {
                let msg = match event {
                    Event::Input(Input::Key(key)) => Msg::Key(key),
                    Event::Input(Input::Paste(text)) => Msg::Paste(text),
                    Event::Input(Input::Reply(reply)) => {
                        tracing::debug!(?reply, "terminal reply consumed");
                        // To detection (a late answer may still change the protocol), never a
                        // key; the loop wakes to take it.
                        let _ = replies.send(reply);
                        Msg::Redraw
                    }
                    Event::Resized(width, height) => Msg::Resized(width, height),
                };
                to_ui.send(msg).is_ok()
            },
            || {
                gate.park_if_paused();
                true
            },
        )
    });
}

/// SIGTERM and SIGHUP as [`Msg::Terminate`].
pub fn spawn_signal_watch(to_ui: Sender<Msg>) {
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]) {
        thread::spawn(move || {
            if signals.forever().next().is_some() {
                let _ = to_ui.send(Msg::Terminate);
            }
        });
    }
}

/// The image pane's resize/encode worker (ratatui-image's threaded protocol). Its answers are
/// terminal graphics for the view, not app state: they wait in `resized` for the next frame,
/// and a [`Msg::Redraw`] wakes the loop to draw it.
pub struct Resizer {
    pub requests: Sender<ResizeRequest>,
    pub resized: Receiver<Result<ResizeResponse, String>>,
}

impl Resizer {
    pub fn spawn(to_ui: Sender<Msg>) -> Self {
        let (requests, requests_rx) = mpsc::channel::<ResizeRequest>();
        let (done, resized) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(request) = requests_rx.recv() {
                let result = request.resize_encode().map_err(|e| e.to_string());
                if done.send(result).is_err() || to_ui.send(Msg::Redraw).is_err() {
                    break;
                }
            }
        });
        Self { requests, resized }
    }
}

/// The newest queued job: a newer request replaces older ones still waiting (the reviewer has
/// already moved on).
fn latest<T>(rx: &Receiver<T>) -> Option<T> {
    let first = rx.recv().ok()?;
    Some(rx.try_iter().last().unwrap_or(first))
}

/// Decodes with memory limits and downscales so no side exceeds `max_side`.
pub fn decode_image(path: &std::path::Path, max_side: u32) -> Result<DynamicImage, String> {
    let name = path.display();
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open {name}: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode {name}: {e}"))?;
    Ok(if img.width().max(img.height()) > max_side {
        img.thumbnail(max_side, max_side)
    } else {
        img
    })
}
