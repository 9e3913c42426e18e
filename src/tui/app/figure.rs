//! Which figure the image pane shows and how far it got: plain data, changed only by the app's
//! update function. Turning a decoded image into terminal graphics is the view's business.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use image::DynamicImage;

use crate::tui::figure_view::FigureView;

/// The image pane's sample and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSlot {
    /// The sample whose figure this is (None: no sample on screen).
    pub key: Option<i64>,
    pub status: ImageStatus,
}

impl Default for ImageSlot {
    fn default() -> Self {
        Self {
            key: None,
            status: ImageStatus::Placeholder(String::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageStatus {
    /// Decoded and downscaled, ready to draw.
    Ready(Arc<DynamicImage>),
    /// Being read or downloaded (what, for the pane).
    Loading(String),
    /// No image to show, and why.
    Placeholder(String),
}

/// How the work on one sample's figure went; answers [`super::Effect::LoadImage`] and
/// [`super::Effect::DecodeImage`].
#[derive(Debug, Clone, PartialEq)]
pub enum ImageUpdate {
    /// The reference is not a local file but is in the URL list: it is being downloaded.
    Downloading(String),
    /// Neither a local file nor in the URL list.
    NotFound(String),
    /// The download finished (the file) or failed (why).
    Downloaded(Result<PathBuf, String>),
    /// The decode finished or failed (why).
    Decoded(Result<Arc<DynamicImage>, String>),
    /// The figure rendered as `view` shows it (answers [`super::Effect::AdjustFigure`]).
    Adjusted {
        view: FigureView,
        image: Arc<DynamicImage>,
    },
}

/// The full-screen figure: the view last shown (kept while a newer one renders) and the render
/// asked for, so a view is asked for once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZoomImage {
    pub shown: Option<(i64, FigureView, Arc<DynamicImage>)>,
    pub requested: Option<(i64, FigureView)>,
}

/// Recently decoded (already downscaled) images, so going back to a sample shows it at once.
#[derive(Debug, Default)]
pub struct DecodedCache {
    entries: VecDeque<(i64, Arc<DynamicImage>)>,
}

impl DecodedCache {
    /// At most 1024² × 4 bytes each: 16 entries stay under about 64 MiB.
    pub const CAPACITY: usize = 16;

    pub fn get(&self, key: i64) -> Option<&Arc<DynamicImage>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, img)| img)
    }

    pub fn insert(&mut self, key: i64, img: Arc<DynamicImage>) {
        self.entries.retain(|(k, _)| *k != key);
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back((key, img));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_cache_keeps_the_most_recent_images() {
        let mut cache = DecodedCache::default();
        for key in 0..(DecodedCache::CAPACITY as i64 + 2) {
            cache.insert(key, Arc::new(DynamicImage::new_luma8(2, 2)));
        }
        assert!(
            cache.get(0).is_none() && cache.get(1).is_none(),
            "the oldest are dropped"
        );
        assert!(cache.get(2).is_some());
        assert_eq!(cache.entries.len(), DecodedCache::CAPACITY);
        cache.insert(2, Arc::new(DynamicImage::new_luma8(3, 3)));
        assert_eq!(cache.entries.back().unwrap().0, 2, "re-inserting refreshes");
        assert_eq!(cache.entries.len(), DecodedCache::CAPACITY);
    }
}
