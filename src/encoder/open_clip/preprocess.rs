//! open_clip's eval transform, pixel for pixel: `Resize(size, bicubic)` of the shorter side
//! (torchvision on a PIL image, i.e. Pillow's resampling), `CenterCrop(size)`, `convert("RGB")`,
//! `ToTensor()`, `Normalize(mean, std)`.
//!
//! Pillow resizes in the image's own mode and converts to RGB afterwards, so this does too:
//! grayscale stays one channel until the end, RGBA and LA are resized with premultiplied alpha
//! (Pillow's `RGBa`/`La`) and the alpha is dropped after un-premultiplying. The resampling is
//! Pillow's 8-bit fixed-point separable convolution (bicubic a = −0.5, support scaled by the
//! reduction factor, 22-bit coefficients, horizontal pass first, each pass rounded and clipped
//! to 8 bits), so 8-bit images give the same crop as open_clip.
//!
//! Where vital differs on purpose (documented in README): 16-bit images keep their high byte
//! (Pillow does this for 16-bit RGB, but clips 16-bit grayscale at 255, turning most figures
//! white); CMYK JPEGs are converted to RGB by the decoder before resizing (Pillow resizes in
//! CMYK, then converts); palette images are decoded to RGB(A) and resized bicubically (Pillow
//! resizes `P` images with nearest neighbour). JPEG decoders may differ by a level here and there.

use std::path::Path;

use anyhow::{Context, Result};
use image::{DynamicImage, ImageReader};

use super::config::PreprocessSettings;

/// An 8-bit image in Pillow's terms: interleaved `channels` per pixel (1 = L, 2 = LA, 3 = RGB,
/// 4 = RGBA), alpha last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    /// The decoded image as Pillow would hold it (16-bit samples keep their high byte).
    pub fn from_image(image: DynamicImage) -> Pixels {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let (channels, data) = match image {
            DynamicImage::ImageLuma8(i) => (1, i.into_raw()),
            DynamicImage::ImageLumaA8(i) => (2, i.into_raw()),
            DynamicImage::ImageRgb8(i) => (3, i.into_raw()),
            DynamicImage::ImageRgba8(i) => (4, i.into_raw()),
            DynamicImage::ImageLuma16(i) => (1, high_bytes(&i.into_raw())),
            DynamicImage::ImageLumaA16(i) => (2, high_bytes(&i.into_raw())),
            DynamicImage::ImageRgb16(i) => (3, high_bytes(&i.into_raw())),
            DynamicImage::ImageRgba16(i) => (4, high_bytes(&i.into_raw())),
            other if other.color().has_alpha() => (4, other.to_rgba8().into_raw()),
            other => (3, other.to_rgb8().into_raw()),
        };
        Pixels {
            width,
            height,
            channels,
            data,
        }
    }

    /// Pillow's `convert("RGB")`: gray is repeated, alpha dropped.
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.width * self.height * 3);
        for px in self.data.chunks_exact(self.channels) {
            match self.channels {
                1 | 2 => out.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => out.extend_from_slice(&px[..3]),
            }
        }
        out
    }
}

fn high_bytes(samples: &[u16]) -> Vec<u8> {
    samples.iter().map(|s| (s >> 8) as u8).collect()
}

/// Pillow's `MULDIV255`: `a * b / 255`, rounded.
fn mul_div_255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// `RGBA` → `RGBa` (and `LA` → `La`): colour channels multiplied by alpha.
fn premultiply(p: &mut Pixels) {
    let c = p.channels;
    for px in p.data.chunks_exact_mut(c) {
        let alpha = px[c - 1];
        for v in &mut px[..c - 1] {
            *v = mul_div_255(*v, alpha);
        }
    }
}

/// `RGBa` → `RGBA`: Pillow's `rgba2rgbA`.
fn unpremultiply(p: &mut Pixels) {
    let c = p.channels;
    for px in p.data.chunks_exact_mut(c) {
        let alpha = u32::from(px[c - 1]);
        if alpha == 0 || alpha == 255 {
            continue;
        }
        for v in &mut px[..c - 1] {
            *v = ((255 * u32::from(*v)) / alpha).min(255) as u8;
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output index, the first
/// input index and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    if w < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `ImagingResample` with `BICUBIC` on an 8-bit image.
fn resize(p: &Pixels, width: usize, height: usize) -> Pixels {
    let c = p.channels;
    let mut current = p.clone();
    if width != p.width {
        let coeffs = coefficients(p.width, width);
        let mut data = vec![0u8; width * p.height * c];
        for y in 0..p.height {
            let row = &p.data[y * p.width * c..(y + 1) * p.width * c];
            for (x, (xmin, k)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let mut sum = 1i64 << (PRECISION_BITS - 1);
                    for (i, w) in k.iter().enumerate() {
                        sum += i64::from(row[(xmin + i) * c + ch]) * i64::from(*w);
                    }
                    data[(y * width + x) * c + ch] = clip8(sum);
                }
            }
        }
        current = Pixels {
            width,
            height: p.height,
            channels: c,
            data,
        };
    }
    if height != p.height {
        let coeffs = coefficients(p.height, height);
        let w = current.width;
        let mut data = vec![0u8; w * height * c];
        for (y, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..w {
                for ch in 0..c {
                    let mut sum = 1i64 << (PRECISION_BITS - 1);
                    for (i, weight) in k.iter().enumerate() {
                        sum += i64::from(current.data[((ymin + i) * w + x) * c + ch])
                            * i64::from(*weight);
                    }
                    data[(y * w + x) * c + ch] = clip8(sum);
                }
            }
        }
        current = Pixels {
            width: w,
            height,
            channels: c,
            data,
        };
    }
    current
}

/// Python's `round` (half to even) of `n / 2`.
fn half_rounded_even(n: usize) -> usize {
    if n.is_multiple_of(2) || (n / 2).is_multiple_of(2) {
        n / 2
    } else {
        n / 2 + 1
    }
}

/// torchvision's `Resize(size)` (shorter side to `size`, the longer truncated as torchvision
/// computes it) then `CenterCrop(size)`, in Pillow's arithmetic; the result keeps its channels.
pub fn resize_and_crop(p: &Pixels, size: usize) -> Pixels {
    let (w, h) = (p.width, p.height);
    let (new_w, new_h) = if w <= h {
        (size, (size as f64 * h as f64 / w as f64) as usize)
    } else {
        ((size as f64 * w as f64 / h as f64) as usize, size)
    };
    let resized = if (new_w, new_h) == (w, h) {
        p.clone()
    } else if p.channels == 2 || p.channels == 4 {
        let mut pre = p.clone();
        premultiply(&mut pre);
        let mut out = resize(&pre, new_w, new_h);
        unpremultiply(&mut out);
        out
    } else {
        resize(p, new_w, new_h)
    };
    // torchvision: top = int(round((h - size) / 2.0)), Python's round halves to even.
    let top = half_rounded_even(resized.height.saturating_sub(size));
    let left = half_rounded_even(resized.width.saturating_sub(size));
    let c = resized.channels;
    let mut data = Vec::with_capacity(size * size * c);
    for y in top..top + size.min(resized.height) {
        let start = (y * resized.width + left) * c;
        data.extend_from_slice(&resized.data[start..start + size.min(resized.width) * c]);
    }
    Pixels {
        width: size.min(resized.width),
        height: size.min(resized.height),
        channels: c,
        data,
    }
}

/// The decoded, converted image file, as Pillow's `Image.open` gives it to open_clip.
pub fn decode_file(path: &Path) -> Result<Pixels> {
    let image = ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?
        .decode()
        .with_context(|| format!("{}: not a readable image", path.display()))?;
    Ok(Pixels::from_image(image))
}

impl PreprocessSettings {
    /// The model input, `[3, size, size]` channel-major: `(rgb / 255 − mean) / std`.
    pub fn tensor_values(&self, pixels: &Pixels) -> Vec<f32> {
        let crop = resize_and_crop(pixels, self.size);
        let rgb = crop.to_rgb();
        let n = crop.width * crop.height;
        let mut out = vec![0f32; 3 * self.size * self.size];
        for c in 0..3 {
            for i in 0..n {
                let v = f32::from(rgb[i * 3 + c]) / 255.0;
                out[c * n + i] = (v - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_halves_to_even() {
        // round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(3.5) = 4
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6, 7].map(half_rounded_even),
            [0, 0, 1, 2, 2, 2, 3, 4]
        );
    }

    #[test]
    fn coefficients_sum_to_one_in_fixed_point() {
        for (n_in, n_out) in [(300, 224), (41, 224), (1024, 224), (224, 224)] {
            for (_, k) in coefficients(n_in, n_out) {
                let sum: i64 = k.iter().map(|w| i64::from(*w)).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{n_in}->{n_out}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_through_resize_and_crop() {
        let p = Pixels {
            width: 50,
            height: 37,
            channels: 3,
            data: [10u8, 200, 99].repeat(50 * 37),
        };
        let out = resize_and_crop(&p, 24);
        assert_eq!((out.width, out.height), (24, 24));
        assert!(out.data.chunks(3).all(|px| px == [10, 200, 99]));
    }

    #[test]
    fn transparent_pixels_keep_no_colour_in_the_premultiplied_resize() {
        // Fully transparent red next to opaque blue: Pillow's premultiplied resize lets no red
        // bleed into the blue.
        let mut data = Vec::new();
        for x in 0..8 {
            data.extend_from_slice(if x < 4 {
                &[255, 0, 0, 0]
            } else {
                &[0, 0, 255, 255]
            });
        }
        let p = Pixels {
            width: 8,
            height: 1,
            channels: 4,
            data: data.repeat(8),
        };
        let out = resize(
            &{
                let mut pre = p.clone();
                premultiply(&mut pre);
                pre
            },
            4,
            8,
        );
        assert!(out.data.chunks(4).all(|px| px[0] == 0), "{:?}", out.data);
    }
}
