//! kitty's graphics protocol with placed images, for terminals that draw kitty images but not in
//! text cells (kitty before 0.28 has no Unicode placeholders; WezTerm and Konsole only place).
//! Rules: every command asks for no reply (`q=2`), so nothing comes back to be read as keys;
//! an image is sent once as PNG and then placed, removed and placed again by id, so an overlay
//! costs a few bytes, not the image; the figure is sent at most at the size it will be shown.

use std::fmt::Write as _;
use std::io::Cursor;

use base64::Engine as _;
use image::DynamicImage;

/// The payload per escape sequence, as kitty asks (4096 bytes of base64).
const CHUNK: usize = 4096;

/// The figure as PNG, scaled down (never up: kitty scales to the cells) to fit `max` pixels.
pub fn png(image: &DynamicImage, max: (u32, u32)) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (max.0.max(1), max.1.max(1));
    let fitted;
    let image = if image.width() > w || image.height() > h {
        fitted = image.resize(w, h, image::imageops::FilterType::CatmullRom);
        &fitted
    } else {
        image
    };
    let mut out = Vec::new();
    image
        .to_rgba8()
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)?;
    Ok(out)
}

/// `id`'s PNG sent to the terminal (`a=t`: stored, not shown), in chunks.
pub fn transmit(id: u32, png: &[u8]) -> String {
    commands(&format!("a=t,f=100,i={id},q=2"), png)
}

/// `png` shown at the cursor over `cols`×`rows` cells, the cursor moved past it (`vital show`).
pub fn show_at_cursor(id: u32, png: &[u8], cols: u16, rows: u16) -> String {
    commands(&format!("a=T,f=100,i={id},c={cols},r={rows},q=2"), png)
}

fn commands(keys: &str, png: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let mut out = String::with_capacity(data.len() + data.len() / CHUNK * 16 + 64);
    let chunks: Vec<&[u8]> = data.as_bytes().chunks(CHUNK).collect();
    if chunks.is_empty() {
        let _ = write!(out, "\x1b_G{keys};\x1b\\");
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        let chunk = String::from_utf8_lossy(chunk);
        if i == 0 {
            let _ = write!(out, "\x1b_G{keys},m={more};{chunk}\x1b\\");
        } else {
            let _ = write!(out, "\x1b_Gm={more},q=2;{chunk}\x1b\\");
        }
    }
    out
}

/// `id` placed over `cols`×`rows` cells at column `x`, row `y` (0-based), the cursor left where
/// it was (`C=1`; saved and restored around the move).
pub fn place(id: u32, x: u16, y: u16, cols: u16, rows: u16) -> String {
    format!(
        "\x1b7\x1b[{};{}H\x1b_Ga=p,i={id},p=1,c={cols},r={rows},C=1,q=2\x1b\\\x1b8",
        u32::from(y) + 1,
        u32::from(x) + 1
    )
}

/// Takes `id`'s placements off the screen; the image stays stored for the next placement.
pub fn remove(id: u32) -> String {
    format!("\x1b_Ga=d,d=i,i={id},q=2\x1b\\")
}

/// Takes `id` off the screen and frees it.
pub fn free(id: u32) -> String {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_asks_for_no_reply_and_big_images_are_chunked() {
        let png = vec![7u8; 10_000];
        let sent = transmit(5, &png);
        let commands: Vec<&str> = sent.split("\x1b\\").filter(|c| !c.is_empty()).collect();
        assert!(commands.len() > 1, "chunked: {}", commands.len());
        assert!(commands
            .iter()
            .all(|c| c.starts_with("\x1b_G") && c.contains("q=2")));
        assert!(commands[0].contains("a=t,f=100,i=5"));
        assert!(commands.last().unwrap().contains("m=0"));
        assert!(commands[..commands.len() - 1]
            .iter()
            .all(|c| c.contains("m=1")));
        for command in [place(5, 2, 3, 10, 8), remove(5), free(5)] {
            assert!(command.contains("q=2"), "{command:?}");
        }
        assert!(place(5, 2, 3, 10, 8).contains("\x1b[4;3H"));
    }

    #[test]
    fn the_png_is_scaled_down_to_fit_and_never_up() {
        let big = DynamicImage::new_rgb8(1000, 500);
        let data = png(&big, (200, 200)).unwrap();
        let back = image::load_from_memory(&data).unwrap();
        assert_eq!((back.width(), back.height()), (200, 100));
        let small = DynamicImage::new_rgb8(50, 40);
        let back = image::load_from_memory(&png(&small, (200, 200)).unwrap()).unwrap();
        assert_eq!((back.width(), back.height()), (50, 40));
    }
}
