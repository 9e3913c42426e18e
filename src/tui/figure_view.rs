//! How a reviewer looks at one sample's figure on the full-screen view: zoom, pan, contrast,
//! brightness, invert. Plain data, kept per sample for the session and never saved as a
//! decision; [`render`] turns the decoded figure into what is shown, on a worker thread (the
//! app asks for it with an effect), and [`AdjustedCache`] keeps recent results.

use std::collections::VecDeque;
use std::sync::Arc;

use image::DynamicImage;

/// One sample's view of its figure. Positions are in thousandths of the figure's width and
/// height, so the view does not depend on the decoded size or the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FigureView {
    /// 0: the whole figure fitted to the screen; n: 2ⁿ× that (up to [`FigureView::MAX_ZOOM`]).
    pub zoom: u8,
    /// The centre of what is shown (x, y), in thousandths; 500 is the middle.
    pub center: (u16, u16),
    /// Contrast steps of [`FigureView::CONTRAST_STEP`] percent, negative for less.
    pub contrast: i8,
    /// Brightness steps of [`FigureView::BRIGHTNESS_STEP`] grey levels, negative for darker.
    pub brightness: i8,
    pub invert: bool,
}

impl Default for FigureView {
    fn default() -> Self {
        Self {
            zoom: 0,
            center: (500, 500),
            contrast: 0,
            brightness: 0,
            invert: false,
        }
    }
}

/// Which way to pan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pan {
    Left,
    Right,
    Up,
    Down,
}

impl FigureView {
    /// 8× the fitted figure.
    pub const MAX_ZOOM: u8 = 3;
    pub const CONTRAST_STEP: f32 = 20.0;
    pub const BRIGHTNESS_STEP: i32 = 16;
    /// Steps either way for contrast and brightness.
    pub const MAX_STEPS: i8 = 5;

    /// How many times the fitted figure is magnified: 1, 2, 4 or 8.
    pub fn scale(&self) -> u16 {
        1 << self.zoom.min(Self::MAX_ZOOM)
    }

    /// The figure as decoded: nothing to compute.
    pub fn is_plain(&self) -> bool {
        self.zoom == 0 && self.contrast == 0 && self.brightness == 0 && !self.invert
    }

    /// One zoom step in (`+1`) or out (`-1`); false when already at the end. Zooming out to the
    /// fitted figure recentres it.
    pub fn zoom_by(&mut self, delta: i8) -> bool {
        let zoom = (self.zoom as i8 + delta).clamp(0, Self::MAX_ZOOM as i8) as u8;
        let changed = zoom != self.zoom;
        self.zoom = zoom;
        self.clamp_center();
        changed
    }

    /// The whole figure again, with the same contrast, brightness and inversion.
    pub fn fit(&mut self) {
        self.zoom = 0;
        self.center = (500, 500);
    }

    /// Moves a quarter of what is shown; false when already at that edge (or not zoomed).
    pub fn pan(&mut self, direction: Pan) -> bool {
        let step = (250 / self.scale()) as i32;
        let (dx, dy) = match direction {
            Pan::Left => (-step, 0),
            Pan::Right => (step, 0),
            Pan::Up => (0, -step),
            Pan::Down => (0, step),
        };
        let before = self.center;
        self.center = (
            (self.center.0 as i32 + dx).clamp(0, 1000) as u16,
            (self.center.1 as i32 + dy).clamp(0, 1000) as u16,
        );
        self.clamp_center();
        self.center != before
    }

    pub fn contrast_by(&mut self, delta: i8) -> bool {
        step(&mut self.contrast, delta)
    }

    pub fn brightness_by(&mut self, delta: i8) -> bool {
        step(&mut self.brightness, delta)
    }

    /// Keeps what is shown inside the figure: at scale s the view is 1000/s wide.
    fn clamp_center(&mut self) {
        let half = 500 / self.scale();
        let clamp = |c: u16| c.clamp(half, 1000 - half);
        self.center = (clamp(self.center.0), clamp(self.center.1));
    }

    /// The part of a `width`×`height` figure shown: (x, y, width, height) in pixels.
    pub fn crop(&self, width: u32, height: u32) -> (u32, u32, u32, u32) {
        let scale = u32::from(self.scale());
        let (w, h) = ((width / scale).max(1), (height / scale).max(1));
        let start = |center: u16, full: u32, part: u32| {
            (u64::from(center) * u64::from(full) / 1000)
                .saturating_sub(u64::from(part / 2))
                .min(u64::from(full - part)) as u32
        };
        (
            start(self.center.0, width, w),
            start(self.center.1, height, h),
            w,
            h,
        )
    }

    /// One line for the full-screen view's title: what differs from the plain figure.
    pub fn describe(&self) -> String {
        let mut parts = vec![if self.zoom == 0 {
            "fitted".to_string()
        } else {
            format!("zoom {}×", self.scale())
        }];
        if self.contrast != 0 {
            parts.push(format!("contrast {:+}", self.contrast));
        }
        if self.brightness != 0 {
            parts.push(format!("brightness {:+}", self.brightness));
        }
        if self.invert {
            parts.push("inverted".into());
        }
        parts.join(" · ")
    }
}

fn step(value: &mut i8, delta: i8) -> bool {
    let next = (*value + delta).clamp(-FigureView::MAX_STEPS, FigureView::MAX_STEPS);
    let changed = next != *value;
    *value = next;
    changed
}

/// The figure as `view` shows it: the zoomed part cut out of the decoded figure, then contrast,
/// brightness and inversion. Slow for a large figure: the executor runs it off the UI thread.
pub fn render(figure: &DynamicImage, view: &FigureView) -> DynamicImage {
    let (x, y, w, h) = view.crop(figure.width(), figure.height());
    let mut out = if view.zoom == 0 {
        figure.clone()
    } else {
        figure.crop_imm(x, y, w, h)
    };
    if view.contrast != 0 {
        out = out.adjust_contrast(f32::from(view.contrast) * FigureView::CONTRAST_STEP);
    }
    if view.brightness != 0 {
        out = out.brighten(i32::from(view.brightness) * FigureView::BRIGHTNESS_STEP);
    }
    if view.invert {
        out.invert();
    }
    out
}

/// Recently rendered views, so stepping back and forth (`+`, `-`) shows them at once.
#[derive(Debug, Default)]
pub struct AdjustedCache {
    entries: VecDeque<((i64, FigureView), Arc<DynamicImage>)>,
}

impl AdjustedCache {
    /// Each at most the decoded figure's size (1024² × 4 bytes): 8 stay under about 32 MiB.
    pub const CAPACITY: usize = 8;

    pub fn get(&self, key: i64, view: &FigureView) -> Option<&Arc<DynamicImage>> {
        self.entries
            .iter()
            .find(|(k, _)| *k == (key, *view))
            .map(|(_, img)| img)
    }

    pub fn insert(&mut self, key: i64, view: FigureView, img: Arc<DynamicImage>) {
        self.entries.retain(|(k, _)| *k != (key, view));
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(((key, view), img));
    }
}

#[cfg(test)]
mod tests {
    use image::{GenericImageView, GrayImage, Luma};

    use super::*;

    /// 100×40 grey ramp: a pixel's level is its x coordinate.
    fn ramp() -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(100, 40, |x, _| Luma([x as u8])))
    }

    #[test]
    fn zoom_steps_double_up_to_eight_and_back_to_the_fitted_figure() {
        let mut view = FigureView::default();
        assert!(view.is_plain());
        assert_eq!(view.scale(), 1);
        assert!(view.zoom_by(1) && view.zoom_by(1) && view.zoom_by(1));
        assert_eq!(view.scale(), 8);
        assert!(!view.zoom_by(1), "8× is the last step");
        assert_eq!(view.describe(), "zoom 8×");
        assert!(view.pan(Pan::Right));
        view.fit();
        assert_eq!(view, FigureView::default());
        assert!(!view.zoom_by(-1), "fitted is the first step");
    }

    #[test]
    fn panning_moves_a_quarter_of_the_view_and_stops_at_the_edges() {
        let mut view = FigureView::default();
        assert!(!view.pan(Pan::Left), "the fitted figure does not pan");
        view.zoom_by(1);
        assert!(view.pan(Pan::Left));
        assert_eq!(view.center, (375, 500));
        assert!(view.pan(Pan::Left));
        assert_eq!(
            view.center,
            (250, 500),
            "the left edge: half the view from 0"
        );
        assert!(!view.pan(Pan::Left));
        assert!(view.pan(Pan::Down) && view.pan(Pan::Down));
        assert_eq!(view.center, (250, 750));
        view.zoom_by(-1);
        assert_eq!(view.center, (500, 500), "fitted again: centred");
    }

    #[test]
    fn render_cuts_the_zoomed_part_and_adjusts_its_grey_levels() {
        let figure = ramp();
        let mut view = FigureView::default();
        view.zoom_by(1);
        view.pan(Pan::Right);
        view.pan(Pan::Right);
        let out = render(&figure, &view);
        assert_eq!(out.dimensions(), (50, 20));
        assert_eq!(out.get_pixel(0, 0)[0], 50, "the right half");
        assert_eq!(view.crop(100, 40), (50, 10, 50, 20));

        view.fit();
        view.invert = true;
        let inverted = render(&figure, &view);
        assert_eq!(inverted.dimensions(), (100, 40));
        assert_eq!(inverted.get_pixel(10, 5)[0], 255 - 10);

        let mut brighter = FigureView::default();
        assert!(brighter.brightness_by(1));
        assert_eq!(render(&figure, &brighter).get_pixel(10, 5)[0], 10 + 16);
        let mut contrast = FigureView::default();
        assert!(contrast.contrast_by(2));
        let out = render(&figure, &contrast);
        assert!(out.get_pixel(10, 0)[0] < 10, "darks darker");
        assert!(out.get_pixel(99, 0)[0] <= 99, "the ramp is below mid-grey");
        for _ in 0..10 {
            contrast.contrast_by(1);
        }
        assert_eq!(contrast.contrast, FigureView::MAX_STEPS);
        assert_eq!(contrast.describe(), "fitted · contrast +5");
    }

    #[test]
    fn the_cache_keeps_recent_views_per_sample() {
        let mut cache = AdjustedCache::default();
        let img = Arc::new(ramp());
        let mut view = FigureView::default();
        for zoom in 0..(AdjustedCache::CAPACITY as u8 + 1) {
            view.zoom = zoom;
            cache.insert(1, view, img.clone());
        }
        view.zoom = 0;
        assert!(cache.get(1, &view).is_none(), "the oldest is dropped");
        view.zoom = 1;
        assert!(cache.get(1, &view).is_some());
        assert!(cache.get(2, &view).is_none(), "per sample");
    }
}
