//! Cheap image statistics for the dense signals: a 32×32 thumbnail's grey mean and spread,
//! the aspect ratio and a colourfulness score. Decoding is the slow part, so results are
//! cached per path (the answers of one figure share one image).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `[gray_mean, gray_std, ln(width / height), colorfulness]`, grey values in 0..1.
pub type ImageStats = [f32; 4];

/// Thread-safe cache of [`image_stats`] by path; `None` = missing or undecodable.
#[derive(Debug, Default)]
pub struct ImageStatsCache {
    entries: Mutex<HashMap<PathBuf, Option<ImageStats>>>,
}

impl ImageStatsCache {
    pub fn get(&self, path: &Path) -> Option<ImageStats> {
        if let Some(hit) = self.lock().get(path) {
            return *hit;
        }
        // Decode outside the lock so other threads keep going; a rare double decode is harmless.
        let stats = image_stats(path).ok();
        self.lock().insert(path.to_path_buf(), stats);
        stats
    }

    /// Preloads statistics computed elsewhere (e.g. persisted by the store).
    pub fn insert(&self, path: PathBuf, stats: Option<ImageStats>) {
        self.lock().insert(path, stats);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Option<ImageStats>>> {
        // The map is always left consistent, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decodes `path` and computes its statistics.
pub fn image_stats(path: &Path) -> anyhow::Result<ImageStats> {
    use anyhow::Context;
    let image = image::ImageReader::open(path)
        .with_context(|| format!("opening image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading image {}", path.display()))?
        .decode()
        .with_context(|| format!("decoding image {}", path.display()))?;
    Ok(stats_of_image(&image))
}

/// Decodes an image file's bytes (format guessed from them) and computes its statistics.
pub fn image_stats_of_bytes(bytes: &[u8]) -> anyhow::Result<ImageStats> {
    let image = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?;
    Ok(stats_of_image(&image))
}

fn stats_of_image(image: &image::DynamicImage) -> ImageStats {
    let (width, height) = (image.width().max(1), image.height().max(1));
    let thumb = image.thumbnail(32, 32).to_rgb8();
    stats_of_rgb(thumb.as_raw(), width, height)
}

/// Statistics of packed RGB8 pixels (Hasler & Süsstrunk colourfulness, scaled to 0..~1).
fn stats_of_rgb(rgb: &[u8], width: u32, height: u32) -> ImageStats {
    let n = (rgb.len() / 3).max(1) as f64;
    let (mut gray_sum, mut gray_sq) = (0.0f64, 0.0f64);
    let (mut rg_sum, mut rg_sq, mut yb_sum, mut yb_sq) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for px in rgb.chunks_exact(3) {
        let (r, g, b) = (
            px[0] as f64 / 255.0,
            px[1] as f64 / 255.0,
            px[2] as f64 / 255.0,
        );
        let gray = 0.299 * r + 0.587 * g + 0.114 * b;
        gray_sum += gray;
        gray_sq += gray * gray;
        let rg = r - g;
        let yb = 0.5 * (r + g) - b;
        rg_sum += rg;
        rg_sq += rg * rg;
        yb_sum += yb;
        yb_sq += yb * yb;
    }
    let mean = |sum: f64| sum / n;
    let var = |sum: f64, sq: f64| (sq / n - (sum / n).powi(2)).max(0.0);
    let colorfulness = (var(rg_sum, rg_sq) + var(yb_sum, yb_sq)).sqrt()
        + 0.3 * (mean(rg_sum).powi(2) + mean(yb_sum).powi(2)).sqrt();
    [
        mean(gray_sum) as f32,
        var(gray_sum, gray_sq).sqrt() as f32,
        (width as f32 / height as f32).ln(),
        colorfulness as f32,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_image_has_no_colour_and_right_aspect() {
        let rgb = [128u8; 3 * 4];
        let [mean, std, aspect, colour] = stats_of_rgb(&rgb, 200, 100);
        assert!((mean - 128.0 / 255.0).abs() < 1e-4);
        assert!(std.abs() < 1e-4);
        assert!((aspect - 2f32.ln()).abs() < 1e-5);
        assert!(colour.abs() < 1e-4);
    }

    #[test]
    fn red_green_checker_is_colourful() {
        let rgb = [255, 0, 0, 0, 255, 0, 255, 0, 0, 0, 255, 0];
        let [_, std, _, colour] = stats_of_rgb(&rgb, 2, 2);
        assert!(colour > 0.5, "colourfulness {colour}");
        assert!(std > 0.1);
    }

    #[test]
    fn decodes_a_png_and_caches_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fig.png");
        let img = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([(x * 4) as u8, 0, 0]));
        img.save(&path).expect("save png");
        let cache = ImageStatsCache::default();
        let stats = cache.get(&path).expect("decodes");
        assert!((stats[2] - 2f32.ln()).abs() < 1e-5);
        assert!(stats[3] > 0.0);
        let missing = dir.path().join("missing.png");
        assert_eq!(cache.get(&missing), None);
        assert_eq!(cache.len(), 2);
        // A corrupt file is "no image", not an error.
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"not a png").expect("write");
        assert!(image_stats(&broken).is_err());
        assert_eq!(cache.get(&broken), None);
        // From the file's bytes: the same numbers.
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(image_stats_of_bytes(&bytes).expect("decodes"), stats);
        assert!(image_stats_of_bytes(b"not a png").is_err());
    }
}
