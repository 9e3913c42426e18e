//! `vital review`: the clinician's review screen. State changes live in the pure [`app`] update,
//! drawing in [`view`], and slow work (image decode and resize, search) on worker threads that
//! send small messages back to the one UI loop.

pub mod app;
pub mod keymap;
mod probe;
pub mod queue;
pub mod sample_view;
pub mod session;
pub mod trainer;
pub mod view;
mod workers;
pub mod wrap;

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::Context;
use ratatui::crossterm::event::{Event as TermEvent, KeyEventKind};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::thread::ThreadProtocol;

use self::app::Msg;
use self::session::{Session, SessionOptions};
use self::view::{ImagePane, ImageState};
use self::workers::{Event, Workers};
use crate::store::Workspace;

/// How images are drawn in the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProtocol {
    /// Ask the terminal; fall back to halfblocks.
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks: works everywhere (and in tests).
    Halfblocks,
}

pub struct ReviewOptions {
    pub workspace: PathBuf,
    pub session: SessionOptions,
    pub trainer: trainer::TrainerSettings,
    pub protocol: ImageProtocol,
    pub max_image_side: u32,
    /// Download limits for figures fetched from the workspace's URL list.
    pub llm: crate::config::LlmConfig,
}

/// Runs the review screen until the reviewer quits. The terminal is restored on every exit path:
/// return, error, panic (ratatui's hook) and SIGTERM/SIGHUP (handled as a quit).
pub fn run(options: ReviewOptions) -> anyhow::Result<()> {
    let ws = Workspace::open_existing(&options.workspace)?;
    let search_ws = Workspace::open_existing(&options.workspace)?;
    let mut session = Session::start(ws, options.session)?;

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    // The protocol query reads the terminal's answer from stdin: before the input thread starts.
    let picker = pick_protocol(options.protocol);
    let (tx, rx) = mpsc::channel::<Event>();
    let to_ui = std::sync::Mutex::new(tx.clone());
    session.attach_trainer(trainer::Trainer::spawn(
        options.trainer,
        Box::new(move |event| {
            if let Ok(tx) = to_ui.lock() {
                // The UI may be gone (quitting): nothing to report to then.
                let _ = tx.send(Event::Trainer(event));
            }
        }),
    ));
    let agreement_tx = tx.clone();
    let agreement_ws = options.workspace.clone();
    session.agreement_in_background(Box::new(move || {
        let (tx, dir) = (agreement_tx.clone(), agreement_ws.clone());
        std::thread::spawn(move || {
            let lines = Workspace::open_existing(&dir)
                .and_then(|ws| ws.agreement_report())
                .map(|report| view::agreement_lines(&report))
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send(Event::Agreement(lines));
        });
    }));
    let export_tx = tx.clone();
    let export_ws = options.workspace.clone();
    session.export_in_background(Box::new(move |request| {
        let tx = export_tx.clone();
        let dir = export_ws.clone();
        std::thread::spawn(move || {
            let progress = |p: crate::export::Progress| {
                let _ = tx.send(Event::ExportProgress {
                    done: p.done,
                    total: p.total,
                });
            };
            let cancel = std::sync::atomic::AtomicBool::new(false);
            let result = crate::export::run_in_dir(&dir, &request, &progress, &cancel)
                .map(|summary| session::export_summary(&summary))
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send(Event::ExportDone(result));
        });
    }));
    let fetch =
        crate::llm::fetch::FetchSettings::from_config(&options.llm, search_ws.image_cache_dir());
    let workers = Workers::start(tx, search_ws, fetch);
    session.search_in_background(workers.search.clone());

    let result = (|| -> anyhow::Result<()> {
        let mut image = ImagePane::default();
        let mut decoded = DecodedCache::default();
        loop {
            if let Some(img) = sync_image(
                &session,
                &mut image,
                &workers,
                &decoded,
                options.max_image_side,
            ) {
                image.state = ImageState::Ready(Box::new(ThreadProtocol::new(
                    workers.resize.clone(),
                    Some(picker.new_resize_protocol(img)),
                )));
            }
            terminal.draw(|frame| view::draw(frame, &session.app, &mut image))?;
            if session.app.quitting {
                return Ok(());
            }
            // Wait for one event, then take whatever else is queued before redrawing.
            let first = rx.recv().context("the input thread stopped")?;
            let drawn = session.app.current.as_ref().map(|v| v.key());
            for event in std::iter::once(first).chain(rx.try_iter()) {
                match event {
                    Event::Terminal(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => {
                        session.dispatch(Msg::Key(key));
                    }
                    Event::Terminal(_) => {} // resize and others: the redraw handles them
                    Event::Terminate => session.app.quitting = true,
                    Event::Trainer(event) => session.dispatch(Msg::Trainer(event)),
                    Event::ExportProgress { done, total } => {
                        session.dispatch(Msg::ExportProgress { done, total })
                    }
                    Event::ExportDone(result) => session.dispatch(Msg::ExportDone(result)),
                    Event::Agreement(Ok(lines)) => session.dispatch(Msg::Agreement(lines)),
                    Event::Agreement(Err(e)) => session.dispatch(Msg::Error(e)),
                    Event::ImageDownloaded { key, result } => {
                        if image.key == Some(key) {
                            match result {
                                Ok(path) => {
                                    workers.decode(key, path, options.max_image_side);
                                    image.state =
                                        ImageState::Loading("the downloaded image".into());
                                }
                                Err(why) => {
                                    image.state =
                                        ImageState::Placeholder(format!("download failed: {why}"))
                                }
                            }
                        }
                    }
                    Event::SearchDone { query, result } => match result {
                        Ok(keys) => session.dispatch(Msg::SearchDone { query, keys }),
                        Err(e) => session.dispatch(Msg::Error(e)),
                    },
                    Event::ImageDecoded { key, result } => {
                        if let Ok(img) = &result {
                            decoded.insert(key, img.clone());
                        }
                        if image.key == Some(key) {
                            image.state = match result {
                                Ok(img) => ImageState::Ready(Box::new(ThreadProtocol::new(
                                    workers.resize.clone(),
                                    Some(picker.new_resize_protocol(img)),
                                ))),
                                Err(why) => ImageState::Placeholder(why),
                            };
                        }
                    }
                    Event::ImageResized(response) => {
                        if let (ImageState::Ready(protocol), Ok(response)) =
                            (&mut image.state, response)
                        {
                            protocol.update_resized_protocol(response);
                        }
                    }
                }
                // A new sample is drawn before the next event is handled: keys typed ahead
                // land on what the reviewer has seen.
                if session.app.current.as_ref().map(|v| v.key()) != drawn {
                    break;
                }
            }
        }
    })();
    ratatui::restore();
    result
}

fn pick_protocol(choice: ImageProtocol) -> Picker {
    // Our own probe, not `Picker::from_query_stdio`: its reader thread took the first key (see
    // probe.rs for why and how).
    let queried = probe::picker;
    let forced = |protocol| {
        let mut picker = queried();
        picker.set_protocol_type(protocol);
        picker
    };
    match choice {
        ImageProtocol::Auto => queried(),
        ImageProtocol::Halfblocks => Picker::halfblocks(),
        ImageProtocol::Kitty => forced(ProtocolType::Kitty),
        ImageProtocol::Sixel => forced(ProtocolType::Sixel),
        ImageProtocol::Iterm2 => forced(ProtocolType::Iterm2),
    }
}

/// Recently decoded (already downscaled) images, so going back to a sample shows it at once.
#[derive(Default)]
struct DecodedCache {
    entries: std::collections::VecDeque<(i64, image::DynamicImage)>,
}

impl DecodedCache {
    /// At most 1024² × 4 bytes each: 16 entries stay under about 64 MiB.
    const CAPACITY: usize = 16;

    fn get(&self, key: i64) -> Option<&image::DynamicImage> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, img)| img)
    }

    fn insert(&mut self, key: i64, img: image::DynamicImage) {
        self.entries.retain(|(k, _)| *k != key);
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((key, img));
    }
}

/// When the sample on screen changes, asks the decode worker for its image (or says why not).
/// Returns the image at once when it was decoded recently.
fn sync_image(
    session: &Session,
    image: &mut ImagePane,
    workers: &Workers,
    decoded: &DecodedCache,
    max_side: u32,
) -> Option<image::DynamicImage> {
    let key = session.app.current.as_ref().map(|v| v.key());
    if key == image.key {
        return None;
    }
    image.key = key;
    let Some(view) = &session.app.current else {
        image.state = ImageState::Placeholder(String::new());
        return None;
    };
    if let Some(img) = decoded.get(view.key()) {
        return Some(img.clone());
    }
    image.state = match view.stored.sample.image.as_deref() {
        None => ImageState::Placeholder("no image in the data for this figure".into()),
        Some(reference) => match session.ws.resolve_image(reference) {
            Some(path) => {
                workers.decode(view.key(), path, max_side);
                ImageState::Loading(reference.to_string())
            }
            None => match session.ws.image_url(&view.stored.sample.id, Some(reference)) {
                Ok(Some((key, url, member))) => {
                    workers.download(view.key(), crate::llm::fetch::Item { key, url, member });
                    ImageState::Loading(format!("downloading {reference}"))
                }
                _ => ImageState::Placeholder(format!(
                    "image not found: {reference}\n(import with --images DIR, or run `vital fetch-images`)"
                )),
            },
        },
    };
    None
}

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod view_tests;

#[cfg(test)]
mod cache_tests {
    use super::DecodedCache;

    #[test]
    fn decoded_cache_keeps_the_most_recent_images() {
        let mut cache = DecodedCache::default();
        for key in 0..(DecodedCache::CAPACITY as i64 + 2) {
            cache.insert(key, image::DynamicImage::new_luma8(2, 2));
        }
        assert!(
            cache.get(0).is_none() && cache.get(1).is_none(),
            "the oldest are dropped"
        );
        assert!(cache.get(2).is_some());
        assert_eq!(cache.entries.len(), DecodedCache::CAPACITY);
        cache.insert(2, image::DynamicImage::new_luma8(3, 3));
        assert_eq!(cache.entries.back().unwrap().0, 2, "re-inserting refreshes");
        assert_eq!(cache.entries.len(), DecodedCache::CAPACITY);
    }
}
