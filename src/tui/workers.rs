//! Background threads of the review screen: terminal input, image decode, image resize/encode,
//! search, and termination signals. Each sends one small [`Event`] to the UI loop.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use image::DynamicImage;
use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui_image::thread::{ResizeRequest, ResizeResponse};

use crate::store::Workspace;

pub enum Event {
    Terminal(TermEvent),
    ExportProgress {
        done: u64,
        total: u64,
    },
    ExportDone(Result<String, String>),
    /// The agreement panel's lines (or why they could not be computed).
    Agreement(Result<Vec<String>, String>),
    /// A figure was downloaded from the URL list (or why not).
    ImageDownloaded {
        key: i64,
        result: Result<PathBuf, String>,
    },
    Trainer(super::trainer::TrainerEvent),
    Terminate,
    ImageDecoded {
        key: i64,
        result: Result<DynamicImage, String>,
    },
    ImageResized(Result<ResizeResponse, String>),
    SearchDone {
        query: String,
        result: Result<Vec<i64>, String>,
    },
}

pub struct Workers {
    decode: Sender<(i64, PathBuf, u32)>,
    download: Sender<(i64, crate::figure_fetch::Item)>,
    pub resize: Sender<ResizeRequest>,
    pub search: Sender<String>,
}

/// Largest decoded image accepted, so a corrupt or hostile file cannot exhaust memory.
const MAX_DECODE_BYTES: u64 = 512 << 20;

impl Workers {
    pub fn start(
        events: Sender<Event>,
        search_ws: Workspace,
        fetch: crate::figure_fetch::FetchSettings,
    ) -> Self {
        let tx = events.clone();
        thread::spawn(move || {
            while let Ok(ev) = event::read() {
                if tx.send(Event::Terminal(ev)).is_err() {
                    break;
                }
            }
        });

        let tx = events.clone();
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ]) {
            thread::spawn(move || {
                if signals.forever().next().is_some() {
                    let _ = tx.send(Event::Terminate);
                }
            });
        }

        let (decode, decode_rx) = mpsc::channel::<(i64, PathBuf, u32)>();
        let tx = events.clone();
        thread::spawn(move || {
            while let Some((key, path, max_side)) = latest(&decode_rx) {
                let result = decode_image(&path, max_side);
                if tx.send(Event::ImageDecoded { key, result }).is_err() {
                    break;
                }
            }
        });

        // Downloads, one at a time: the reviewer waits for the figure on screen, not a batch.
        let (download, download_rx) = mpsc::channel::<(i64, crate::figure_fetch::Item)>();
        let tx = events.clone();
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
                if tx.send(Event::ImageDownloaded { key, result }).is_err() {
                    break;
                }
            }
        });

        let (resize, resize_rx) = mpsc::channel::<ResizeRequest>();
        let tx = events.clone();
        thread::spawn(move || {
            while let Ok(request) = resize_rx.recv() {
                let result = request.resize_encode().map_err(|e| e.to_string());
                if tx.send(Event::ImageResized(result)).is_err() {
                    break;
                }
            }
        });

        let (search, search_rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            while let Some(query) = latest(&search_rx) {
                let result = search_ws.search(&query).map_err(|e| format!("{e:#}"));
                if events.send(Event::SearchDone { query, result }).is_err() {
                    break;
                }
            }
        });

        Self {
            decode,
            download,
            resize,
            search,
        }
    }

    pub fn download(&self, key: i64, item: crate::figure_fetch::Item) {
        let _ = self.download.send((key, item));
    }

    pub fn decode(&self, key: i64, path: PathBuf, max_side: u32) {
        let _ = self.decode.send((key, path, max_side));
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
