//! Where each imported sample's image file is, decided on the parsing thread.
//!
//! Looking a reference up costs a few `stat` calls per folder (six for a missing figure), which on
//! a 210K-sample release is seconds of system time; the writer thread is the slower side of the
//! import, so the lookups happen beside the parsing and the writer only registers folders.
//! Search order is fixed: the registered folders, then the imported file's `images/`, then its own
//! folder. Every lookup is confined to its folder ([`ImageRoots`]), so a reference from the data
//! never reaches outside it.

use std::path::{Path, PathBuf};

use crate::image_files::ImageRoots;

/// Where a sample's image reference led.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageAt {
    /// No image, or a URL (fetched later by `vital fetch-images`).
    NotLocal,
    /// No file inside any folder vital may read.
    Missing,
    /// Inside a folder already registered with the workspace.
    Registered,
    /// Inside the folder at this index of [`ImageSearch::beside_file`], which is not registered yet.
    BesideFile(usize),
}

/// The folders a sample's image may be in, canonicalised once per import.
pub struct ImageSearch {
    registered: Vec<ImageRoots>,
    beside: Vec<ImageRoots>,
}

impl ImageSearch {
    /// `registered`: the workspace's image folders (and those the import adds); `file_dir`: the
    /// folder of the imported file, searched in `images/` and then itself.
    pub fn new(registered: &[PathBuf], file_dir: &Path) -> Self {
        let roots = |dir: &PathBuf| ImageRoots::new([dir.clone()]);
        Self {
            registered: registered.iter().map(roots).collect(),
            beside: [file_dir.join("images"), file_dir.to_path_buf()]
                .iter()
                .map(roots)
                .collect(),
        }
    }

    /// The canonical folders beside the imported file, in search order ([`ImageAt::BesideFile`]
    /// indexes them); `None` for a folder that does not exist.
    pub fn beside_file(&self) -> Vec<Option<PathBuf>> {
        self.beside
            .iter()
            .map(|r| r.roots().first().cloned())
            .collect()
    }

    pub fn locate(&self, image: Option<&str>) -> ImageAt {
        let Some(image) = image else {
            return ImageAt::NotLocal;
        };
        if image.starts_with("http://") || image.starts_with("https://") {
            return ImageAt::NotLocal;
        }
        let found = |roots: &ImageRoots| roots.lookup(image).found().is_some();
        if self.registered.iter().any(found) {
            ImageAt::Registered
        } else if let Some(i) = self.beside.iter().position(found) {
            ImageAt::BesideFile(i)
        } else {
            ImageAt::Missing
        }
    }
}
