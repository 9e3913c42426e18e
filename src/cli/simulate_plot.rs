//! `vital simulate --plot`: held-out alignment against decisions, one colour per order, one line
//! per seed, as SVG (text) or PNG (pixels). Both drawings share one frame, so the two files show
//! the same picture; the PNG's text is embedded-graphics' built-in bitmap font, so drawing needs no
//! font on the machine.

use std::fmt::Write as _;
use std::path::Path;

use embedded_graphics::mono_font::{ascii::FONT_7X13, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, Polyline, PrimitiveStyle};
use embedded_graphics::text::{Alignment, Text};

use super::simulate::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlotFormat {
    Svg,
    Png,
}

impl PlotFormat {
    /// The format a file's extension names; any other extension is refused before the run starts.
    pub fn of_file(path: &Path) -> anyhow::Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(PlotFormat::Svg),
            Some("png") => Ok(PlotFormat::Png),
            _ => anyhow::bail!(
                "{}: --plot writes SVG or PNG (name the file .svg or .png)",
                path.display()
            ),
        }
    }
}

/// `--plot`'s value, refused on the command line (exit 2) unless it names SVG or PNG.
pub(super) fn plot_file(value: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(value);
    PlotFormat::of_file(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// The file's bytes.
pub(super) fn draw(report: &Report, format: PlotFormat) -> anyhow::Result<Vec<u8>> {
    let frame = Frame::of(report);
    match format {
        PlotFormat::Svg => Ok(svg(report, &frame).into_bytes()),
        PlotFormat::Png => png(report, &frame),
    }
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const M: f64 = 56.0;
const COLOURS: [(u8, u8, u8); 5] = [
    (0x1f, 0x77, 0xb4),
    (0xd6, 0x27, 0x28),
    (0x2c, 0xa0, 0x2c),
    (0x94, 0x67, 0xbd),
    (0xff, 0x7f, 0x0e),
];

/// Where things go: both axes, shared by the two drawings.
struct Frame {
    max_decisions: f64,
}

impl Frame {
    fn of(report: &Report) -> Self {
        let max = report
            .orders
            .iter()
            .flat_map(|o| o.curves.iter().flat_map(|c| c.points.iter()))
            .map(|p| p.decisions)
            .max()
            .unwrap_or(1)
            .max(1);
        Self {
            max_decisions: max as f64,
        }
    }

    fn x(&self, decisions: f64) -> f64 {
        M + decisions / self.max_decisions * (W - 2.0 * M)
    }

    fn y(&self, alignment: f64) -> f64 {
        H - M - alignment.clamp(0.0, 1.0) * (H - 2.0 * M)
    }

    /// Each curve's points in the drawing's coordinates, with the order's index.
    fn curves<'r>(
        &'r self,
        report: &'r Report,
    ) -> impl Iterator<Item = (usize, Vec<(f64, f64)>)> + 'r {
        report
            .orders
            .iter()
            .enumerate()
            .flat_map(move |(i, order)| {
                order.curves.iter().map(move |curve| {
                    let points = curve
                        .points
                        .iter()
                        .map(|p| (self.x(p.decisions as f64), self.y(p.alignment)))
                        .collect();
                    (i, points)
                })
            })
    }
}

/// The legend sits bottom right, below where learning curves climb to.
fn legend_x() -> f64 {
    W - M - 120.0
}

fn legend_y(report: &Report, i: usize) -> f64 {
    H - M - 12.0 - 16.0 * (report.orders.len() - 1 - i) as f64
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn svg(report: &Report, frame: &Frame) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    for tick in 0..=5 {
        let a = f64::from(tick) / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{M}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{a:.1}</text>"##,
            W - M,
            M - 6.0,
            frame.y(a) + 4.0,
            y = frame.y(a)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{M}" x2="{}" y1="{y}" y2="{y}" stroke="#888" stroke-dasharray="4 3"/>"##,
        W - M,
        y = frame.y(report.target)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">decisions (retraining every {})</text>"#,
        W / 2.0,
        H - 16.0,
        report.retrain_every
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">held-out alignment</text>"#,
        H / 2.0,
        H / 2.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
        W - M,
        H - M + 16.0,
        frame.max_decisions
    );
    for (i, points) in frame.curves(report) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" stroke-opacity="0.8" points="{}"/>"#,
            hex(COLOURS[i % COLOURS.len()]),
            points.join(" ")
        );
    }
    for (i, order) in report.orders.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{}">{}</text>"#,
            legend_x(),
            legend_y(report, i),
            hex(COLOURS[i % COLOURS.len()]),
            order.order
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An RGB image embedded-graphics draws on; pixels outside it are dropped.
struct Canvas(image::RgbImage);

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        for Pixel(at, colour) in pixels {
            if let (Ok(x), Ok(y)) = (u32::try_from(at.x), u32::try_from(at.y)) {
                if x < self.0.width() && y < self.0.height() {
                    self.0
                        .put_pixel(x, y, image::Rgb([colour.r(), colour.g(), colour.b()]));
                }
            }
        }
        Ok(())
    }
}

fn point(x: f64, y: f64) -> Point {
    Point::new(x.round() as i32, y.round() as i32)
}

fn png(report: &Report, frame: &Frame) -> anyhow::Result<Vec<u8>> {
    let mut canvas = Canvas(image::RgbImage::from_pixel(
        W as u32,
        H as u32,
        image::Rgb([255, 255, 255]),
    ));
    let text = MonoTextStyle::new(&FONT_7X13, Rgb888::BLACK);
    let grid = PrimitiveStyle::with_stroke(Rgb888::new(0xdd, 0xdd, 0xdd), 1);
    // Drawing on memory cannot fail (the canvas's error type is Infallible): results are dropped.
    let c = &mut canvas;
    for tick in 0..=5 {
        let a = f64::from(tick) / 5.0;
        let y = frame.y(a);
        {
            let _ = Line::new(point(M, y), point(W - M, y))
                .into_styled(grid)
                .draw(c);
            let _ = Text::with_alignment(
                &format!("{a:.1}"),
                point(M - 6.0, y + 4.0),
                text,
                Alignment::Right,
            )
            .draw(c);
        }
    }
    // The target, dashed: 4 pixels on, 3 off.
    let target = frame.y(report.target);
    let dash = PrimitiveStyle::with_stroke(Rgb888::new(0x88, 0x88, 0x88), 1);
    let mut x = M;
    while x < W - M {
        let end = (x + 4.0).min(W - M);
        {
            let _ = Line::new(point(x, target), point(end, target))
                .into_styled(dash)
                .draw(c);
        }
        x += 7.0;
    }
    let x_label = format!("decisions (retraining every {})", report.retrain_every);
    let max_label = format!("{}", frame.max_decisions);
    {
        let _ = Text::with_alignment(&x_label, point(W / 2.0, H - 16.0), text, Alignment::Center)
            .draw(c);
        // A bitmap font does not turn: the axis name sits above the axis.
        let _ = Text::with_alignment(
            "held-out alignment",
            point(M, M - 20.0),
            text,
            Alignment::Left,
        )
        .draw(c);
        let _ = Text::with_alignment(
            &max_label,
            point(W - M, H - M + 16.0),
            text,
            Alignment::Right,
        )
        .draw(c);
    }
    for (i, points) in frame.curves(report) {
        let (r, g, b) = COLOURS[i % COLOURS.len()];
        let style = PrimitiveStyle::with_stroke(Rgb888::new(r, g, b), 2);
        let points: Vec<Point> = points.iter().map(|&(x, y)| point(x, y)).collect();
        {
            let _ = Polyline::new(&points).into_styled(style).draw(c);
        }
    }
    for (i, order) in report.orders.iter().enumerate() {
        let (r, g, b) = COLOURS[i % COLOURS.len()];
        let style = MonoTextStyle::new(&FONT_7X13, Rgb888::new(r, g, b));
        let at = point(legend_x(), legend_y(report, i));
        {
            let _ = Text::new(&order.order, at, style).draw(c);
        }
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(canvas.0)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| anyhow::anyhow!("encoding the plot as PNG: {e}"))?;
    Ok(bytes)
}
