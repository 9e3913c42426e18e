//! kitty's placed figures on the review screen (kitty before 0.28, WezTerm, Konsole): the view
//! leaves the figure's cells blank and says where it goes ([`ImagePane::placed_at`]); after each
//! frame, [`Placements::sync`] makes the terminal show exactly that: the figure placed there,
//! or taken off while an overlay covers it. Rules: the PNG is made on a worker thread, never on
//! the UI thread; an image is sent once and placed by id; every command asks for no reply.

use std::collections::HashSet;
use std::io::Write;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use image::DynamicImage;
use ratatui::layout::Rect;

use super::app::Msg;
use super::view::{Drawing, ImagePane, ImageState};
use crate::terminal::{kitty, Choice};

/// The largest side sent: kitty scales the figure to its cells, so more only costs bytes.
const MAX_SIDE: u32 = 2048;

/// One figure for placement: its id and, once the worker has made it, the commands that send it.
pub struct PlacedImage {
    pub id: u32,
    commands: Arc<Mutex<Option<String>>>,
}

impl PlacedImage {
    /// Whether the figure is ready to be placed.
    pub fn ready(&self) -> bool {
        self.commands.lock().is_ok_and(|c| c.is_some())
    }
}

/// What the terminal shows of placed figures, and what it has been sent.
#[derive(Default)]
pub struct Placements {
    next_id: u32,
    /// Ids the terminal holds.
    sent: HashSet<u32>,
    /// The placement on screen now.
    shown: Option<(u32, Rect)>,
}

impl Placements {
    /// Starts making `image`'s PNG on a worker; a [`Msg::Redraw`] says when it is ready.
    pub fn prepare(
        &mut self,
        image: Arc<DynamicImage>,
        choice: &Choice,
        wake: Sender<Msg>,
    ) -> PlacedImage {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = 0x5654_0000 | (self.next_id & 0xffff);
        let commands = Arc::new(Mutex::new(None));
        let (cell_w, cell_h) = choice.cell.unwrap_or((10, 20));
        let (cols, rows) = crossterm::terminal::size().unwrap_or((200, 60));
        let max = (
            (u32::from(cols) * u32::from(cell_w)).min(MAX_SIDE),
            (u32::from(rows) * u32::from(cell_h)).min(MAX_SIDE),
        );
        let out = commands.clone();
        std::thread::spawn(move || {
            let made = match kitty::png(&image, max) {
                Ok(png) => kitty::transmit(id, &png),
                Err(e) => {
                    tracing::warn!("cannot make the figure's PNG: {e:#}");
                    return;
                }
            };
            if let Ok(mut slot) = out.lock() {
                *slot = Some(made);
            }
            let _ = wake.send(Msg::Redraw);
        });
        PlacedImage { id, commands }
    }

    /// Makes the terminal show what the pane says: the figure at `placed_at`, or none.
    pub fn sync(&mut self, pane: &ImagePane, out: &mut impl Write) -> std::io::Result<()> {
        let placed = match &pane.state {
            ImageState::Ready(shown) => match &shown.drawing {
                Drawing::Placed(placed) if placed.ready() => Some(placed),
                _ => None,
            },
            _ => None,
        };
        let want = placed.and_then(|p| pane.placed_at.map(|rect| (p.id, rect)));
        if want == self.shown {
            return Ok(());
        }
        let mut commands = String::new();
        if let Some((id, _)) = self.shown.take() {
            commands.push_str(&kitty::remove(id));
        }
        // Figures no longer on the pane are freed.
        let keep = placed.map(|p| p.id);
        for id in self.sent.iter().filter(|&&id| Some(id) != keep) {
            commands.push_str(&kitty::free(*id));
        }
        self.sent.retain(|&id| Some(id) == keep);
        if let (Some(placed), Some((id, rect))) = (placed, want) {
            if self.sent.insert(id) {
                if let Ok(Some(data)) = placed.commands.lock().as_deref() {
                    commands.push_str(data);
                }
            }
            commands.push_str(&kitty::place(id, rect.x, rect.y, rect.width, rect.height));
            self.shown = want;
        }
        out.write_all(commands.as_bytes())?;
        out.flush()
    }

    /// The screen was cleared: kitty (0.26 at least) drops the images on it with their data, so
    /// the figure is sent again, not only placed, next frame.
    pub fn screen_cleared(&mut self) {
        self.shown = None;
        self.sent.clear();
    }

    /// Takes every figure off and frees it (on exit).
    pub fn clear_all(&mut self, out: &mut impl Write) {
        let mut commands = String::new();
        for id in self.sent.drain() {
            commands.push_str(&kitty::free(id));
        }
        self.shown = None;
        let _ = out.write_all(commands.as_bytes());
        let _ = out.flush();
    }
}
