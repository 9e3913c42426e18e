//! The figure beside the Q&A and the full-screen view: which image to ask for as focus moves, and what a decoded or failed image changes.

use super::*;

impl App {
    /// When the sample on screen changes, asks for its figure (or says why there is none).
    pub(super) fn follow_image(&mut self) -> Vec<Effect> {
        let key = self.current.as_ref().map(SampleView::key);
        if key == self.image.key {
            return vec![];
        }
        self.image.key = key;
        let Some(view) = &self.current else {
            self.image.status = ImageStatus::Placeholder(String::new());
            return vec![];
        };
        if let Some(img) = self.decoded.get(view.key()) {
            self.image.status = ImageStatus::Ready(img.clone());
            return vec![];
        }
        match view.stored.sample.image.as_deref() {
            None => {
                self.image.status =
                    ImageStatus::Placeholder("no image in the data for this figure".into());
                vec![]
            }
            Some(reference) => {
                self.image.status = ImageStatus::Loading(reference.to_string());
                vec![Effect::LoadImage {
                    key: view.key(),
                    sample_id: view.stored.sample.id.clone(),
                    reference: reference.to_string(),
                }]
            }
        }
    }

    /// On the full-screen view, shows the current view of the figure: at once when it is plain
    /// or was rendered before, else asks a worker to render it (once).
    pub(super) fn follow_zoom(&mut self) -> Vec<Effect> {
        let (true, Some(key), ImageStatus::Ready(figure)) =
            (self.zoomed, self.image.key, &self.image.status)
        else {
            return vec![];
        };
        let view = self.figure_view(key);
        let shown = &self.zoom_image.shown;
        if shown
            .as_ref()
            .is_some_and(|(k, v, _)| (*k, *v) == (key, view))
        {
            return vec![];
        }
        let ready = if view.is_plain() {
            Some(figure.clone())
        } else {
            self.adjusted.get(key, &view).cloned()
        };
        if let Some(img) = ready {
            self.zoom_image.shown = Some((key, view, img));
            return vec![];
        }
        if self.zoom_image.requested == Some((key, view)) {
            return vec![];
        }
        self.zoom_image.requested = Some((key, view));
        vec![Effect::AdjustFigure {
            key,
            view,
            figure: figure.clone(),
        }]
    }

    pub(super) fn on_image(&mut self, key: i64, update: ImageUpdate) -> Vec<Effect> {
        // A decoded figure is kept even when the reviewer has moved on: going back shows it.
        if let ImageUpdate::Decoded(Ok(img)) = &update {
            self.decoded.insert(key, img.clone());
        }
        if let ImageUpdate::Adjusted { view, image } = update {
            // Shown by `follow_zoom` if it is still the view asked for; kept for stepping back.
            self.adjusted.insert(key, view, image);
            if self.zoom_image.requested == Some((key, view)) {
                self.zoom_image.requested = None;
            }
            return vec![];
        }
        if self.image.key != Some(key) {
            return vec![];
        }
        let (status, effects) = match update {
            ImageUpdate::Downloading(reference) => (
                ImageStatus::Loading(format!("downloading {reference}")),
                vec![],
            ),
            ImageUpdate::NotFound(reference) => (
                ImageStatus::Placeholder(format!("image not found: {reference}")),
                vec![],
            ),
            ImageUpdate::Downloaded(Ok(path)) => (
                ImageStatus::Loading("the downloaded image".into()),
                vec![Effect::DecodeImage { key, path }],
            ),
            ImageUpdate::Downloaded(Err(why)) => (
                ImageStatus::Placeholder(format!("download failed: {why}")),
                vec![],
            ),
            ImageUpdate::Decoded(Ok(img)) => (ImageStatus::Ready(img), vec![]),
            ImageUpdate::Decoded(Err(why)) => (ImageStatus::Placeholder(why), vec![]),
            ImageUpdate::Adjusted { .. } => return vec![],
        };
        self.image.status = status;
        effects
    }
}
