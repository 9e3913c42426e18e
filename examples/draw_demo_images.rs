//! Draws the synthetic figures of the bundled demo (`assets/demo/images/*.png`). They are simple
//! phantoms, not patient data: enough to exercise the image pane, thumbnails and image features.
//!
//! Run: `cargo run --example draw_demo_images`

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

use image::{GrayImage, Luma, Rgb, RgbImage};

const SIDE: u32 = 256;

fn ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32) -> bool {
    let dx = (x - cx) / rx;
    let dy = (y - cy) / ry;
    dx * dx + dy * dy <= 1.0
}

/// Cheap deterministic noise so the phantoms have texture.
fn noise(x: u32, y: u32, seed: u32) -> f32 {
    let mut h = x.wrapping_mul(374_761_393)
        ^ y.wrapping_mul(668_265_263)
        ^ seed.wrapping_mul(2_246_822_519);
    h = (h ^ (h >> 13)).wrapping_mul(1_274_126_177);
    ((h ^ (h >> 16)) & 0xff) as f32 / 255.0 - 0.5
}

fn ct_chest(nodule: bool) -> GrayImage {
    GrayImage::from_fn(SIDE, SIDE, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut v = 10.0;
        if ellipse(fx, fy, 128.0, 132.0, 110.0, 85.0) {
            v = 110.0;
        }
        if ellipse(fx, fy, 85.0, 125.0, 38.0, 55.0) || ellipse(fx, fy, 171.0, 125.0, 38.0, 55.0) {
            v = 25.0;
        }
        if ellipse(fx, fy, 128.0, 195.0, 14.0, 14.0) {
            v = 235.0;
        }
        if ellipse(fx, fy, 128.0, 140.0, 18.0, 22.0) {
            v = 150.0;
        }
        if nodule && ellipse(fx, fy, 170.0, 105.0, 9.0, 8.0) {
            v = 140.0;
        }
        Luma([(v + 12.0 * noise(x, y, 1)).clamp(0.0, 255.0) as u8])
    })
}

fn mri_brain(lesion: bool) -> GrayImage {
    GrayImage::from_fn(SIDE, SIDE, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut v = 5.0;
        if ellipse(fx, fy, 128.0, 128.0, 92.0, 112.0) {
            v = 200.0;
        }
        if ellipse(fx, fy, 128.0, 128.0, 84.0, 104.0) {
            v = 120.0;
        }
        if ellipse(fx, fy, 112.0, 120.0, 9.0, 26.0) || ellipse(fx, fy, 144.0, 120.0, 9.0, 26.0) {
            v = 30.0;
        }
        if lesion && ellipse(fx, fy, 165.0, 85.0, 16.0, 13.0) {
            v = 240.0;
        }
        Luma([(v + 10.0 * noise(x, y, 2)).clamp(0.0, 255.0) as u8])
    })
}

fn chest_xray(effusion: bool) -> GrayImage {
    GrayImage::from_fn(SIDE, SIDE, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut v = 200.0;
        if ellipse(fx, fy, 80.0, 125.0, 48.0, 90.0) || ellipse(fx, fy, 176.0, 125.0, 48.0, 90.0) {
            v = 45.0;
        }
        if ellipse(fx, fy, 140.0, 160.0, 45.0, 40.0) {
            v = 185.0;
        }
        if effusion && fy > 175.0 && ellipse(fx, fy, 176.0, 125.0, 48.0, 90.0) {
            v = 190.0;
        }
        // Ribs: faint bright arcs.
        if ((fy as i32 + (fx as i32 - 128).abs() / 4) % 28) < 3 && v < 100.0 {
            v += 40.0;
        }
        Luma([(v + 10.0 * noise(x, y, 3)).clamp(0.0, 255.0) as u8])
    })
}

fn histology(atypia: bool) -> RgbImage {
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let n = noise(x / 3, y / 3, 4);
        let mut px = [236.0, 190.0 + 20.0 * n, 214.0];
        for i in 0..40u32 {
            let cx = (noise(i, 1, 9) + 0.5) * SIDE as f32;
            let cy = (noise(i, 2, 9) + 0.5) * SIDE as f32;
            let r = if atypia && i % 3 == 0 { 11.0 } else { 5.0 };
            if ellipse(x as f32, y as f32, cx, cy, r, r * 0.8) {
                px = [95.0, 60.0, 150.0 + 30.0 * n];
            }
        }
        Rgb(px.map(|c| c.clamp(0.0, 255.0) as u8))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/images");
    std::fs::create_dir_all(&out)?;
    ct_chest(true).save(out.join("ct_chest_nodule.png"))?;
    ct_chest(false).save(out.join("ct_chest_normal.png"))?;
    mri_brain(true).save(out.join("mri_brain_lesion.png"))?;
    chest_xray(true).save(out.join("cxr_effusion.png"))?;
    chest_xray(false).save(out.join("cxr_normal.png"))?;
    histology(true).save(out.join("histology_atypia.png"))?;
    println!("wrote demo images to {}", out.display());
    Ok(())
}
