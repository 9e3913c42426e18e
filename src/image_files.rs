//! Which image files vital may read for a sample, and whether a file is one it may send.
//!
//! Rules: an image reference from the data resolves only to a file inside the registered image
//! folders or the workspace's download cache, after `..` and symlinks are resolved (canonical
//! paths), so a dataset cannot make vital read, show or upload any other file (`/etc/passwd`,
//! `../../secret`, a link in an image folder pointing out of it). A file goes to an LLM endpoint
//! only when it is under the size cap and decodes as an image.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Where an image reference led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A file inside an allowed folder (its canonical path).
    Found(PathBuf),
    /// A file exists for the reference, but outside every allowed folder: refused.
    Outside(PathBuf),
    Missing,
}

impl Lookup {
    pub fn found(self) -> Option<PathBuf> {
        match self {
            Lookup::Found(path) => Some(path),
            _ => None,
        }
    }
}

/// The folders image files may come from, canonicalised once.
#[derive(Debug, Clone, Default)]
pub struct ImageRoots {
    roots: Vec<PathBuf>,
}

impl ImageRoots {
    /// Folders that do not exist (yet) are left out: nothing can be inside them.
    pub fn new(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut roots: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if let Ok(canonical) = std::fs::canonicalize(&dir) {
                if canonical.is_dir() && !roots.contains(&canonical) {
                    roots.push(canonical);
                }
            }
        }
        Self { roots }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Finds an image reference: as an absolute path, or relative to each folder, then by its
    /// file name in each folder.
    pub fn lookup(&self, reference: &str) -> Lookup {
        let given = Path::new(reference);
        let mut names: Vec<PathBuf> = Vec::new();
        if !given.is_absolute() {
            names.push(given.to_path_buf());
        }
        if let Some(name) = given.file_name() {
            names.push(PathBuf::from(name));
        }
        let absolute = given.is_absolute().then(|| given.to_path_buf());
        self.lookup_names(absolute, &names)
    }

    /// Finds the first of `names` (relative) in the folders, in folder order; `absolute`, when
    /// given, is tried first and accepted only inside a folder.
    pub fn lookup_names(&self, absolute: Option<PathBuf>, names: &[PathBuf]) -> Lookup {
        let mut outside = None;
        let candidates = absolute.into_iter().chain(
            self.roots
                .iter()
                .flat_map(|root| names.iter().map(move |n| root.join(n))),
        );
        for candidate in candidates {
            if !candidate.is_file() {
                continue;
            }
            let Ok(canonical) = std::fs::canonicalize(&candidate) else {
                continue;
            };
            if self.roots.iter().any(|root| canonical.starts_with(root)) {
                return Lookup::Found(canonical);
            }
            outside.get_or_insert(candidate);
        }
        match outside {
            Some(path) => Lookup::Outside(path),
            None => Lookup::Missing,
        }
    }
}

/// Decoding limits for a file about to be sent: a small file that claims a huge canvas is refused
/// rather than decoded.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// Reads `path` for sending: at most `max_bytes`, and only if it decodes as an image. The error
/// says why not, naming the file.
pub fn read_sendable_image(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!(
            "{} is over the image size limit of {max_bytes} bytes (llm.fetch_max_image_mb)",
            path.display()
        ));
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if reader.format().is_none() {
        return Err(format!("{} is not an image file", path.display()));
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("{} does not decode as an image: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(2, 2)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn references_resolve_only_inside_the_folders_links_included() {
        let tmp = tempfile::tempdir().unwrap();
        let images = tmp.path().join("images");
        std::fs::create_dir_all(images.join("sub")).unwrap();
        std::fs::write(images.join("sub/a.png"), png()).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "password").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), images.join("link.png")).unwrap();
        let roots = ImageRoots::new([images.clone(), tmp.path().join("not-there")]);
        let canonical = std::fs::canonicalize(images.join("sub/a.png")).unwrap();
        assert_eq!(roots.lookup("sub/a.png"), Lookup::Found(canonical.clone()));
        std::fs::write(images.join("b.png"), png()).unwrap();
        assert_eq!(
            roots.lookup("elsewhere/b.png").found(),
            Some(std::fs::canonicalize(images.join("b.png")).unwrap()),
            "by file name"
        );
        assert_eq!(
            roots.lookup(canonical.to_str().unwrap()),
            Lookup::Found(canonical),
            "an absolute path inside a folder is fine"
        );
        let secret = tmp.path().join("secret.txt");
        assert!(matches!(
            roots.lookup(secret.to_str().unwrap()),
            Lookup::Outside(_)
        ));
        assert!(matches!(roots.lookup("../secret.txt"), Lookup::Outside(_)));
        assert!(matches!(
            roots.lookup("sub/../../secret.txt"),
            Lookup::Outside(_)
        ));
        assert_eq!(roots.lookup("/etc/passwd").found(), None);
        #[cfg(unix)]
        assert!(matches!(roots.lookup("link.png"), Lookup::Outside(_)));
        assert_eq!(roots.lookup("nope.png"), Lookup::Missing);
    }

    #[test]
    fn only_decodable_images_under_the_cap_are_sendable() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("a.png");
        std::fs::write(&good, png()).unwrap();
        assert_eq!(read_sendable_image(&good, 1 << 20).unwrap(), png());
        let err = read_sendable_image(&good, 10).unwrap_err();
        assert!(err.contains("size limit"), "{err}");
        let text = tmp.path().join("b.png");
        std::fs::write(&text, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        assert!(read_sendable_image(&text, 1 << 20).is_err());
        let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
        fake.extend_from_slice(b"root:x:0:0:root:/root:/bin/bash\n");
        std::fs::write(&text, fake).unwrap();
        let err = read_sendable_image(&text, 1 << 20).unwrap_err();
        assert!(err.contains("does not decode"), "{err}");
    }
}
