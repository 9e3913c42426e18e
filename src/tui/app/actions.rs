//! What each keymap action does on the review screen: one arm per action, most of them a call into the file of their family.

use super::*;

impl App {
    pub(super) fn on_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            // Quitting ends a background export (its file is never half-written, but it is not
            // written either): ask once.
            Action::Quit if self.export_status.is_some() && !self.quit_asked => {
                self.quit_asked = true;
                self.message =
                    Some("an export is running: press q again to quit and abandon it".into());
                vec![]
            }
            Action::Quit => {
                self.quitting = true;
                vec![Effect::Quit]
            }
            Action::Help => {
                self.mode = Mode::Help;
                vec![]
            }
            Action::NextSample => {
                if !self.queue.advance() {
                    self.message = Some("last sample in the queue".into());
                }
                self.load_current()
            }
            Action::PrevSample => {
                if !self.queue.back() {
                    self.message = Some("first sample in the queue".into());
                }
                self.load_current()
            }
            Action::Filter | Action::FilterBack => {
                if action == Action::Filter {
                    self.queue.cycle_filter();
                } else {
                    self.queue.cycle_filter_back();
                }
                self.message = Some(format!("filter: {}", self.queue.filter().label()));
                self.load_current()
            }
            Action::Goto => self.input(InputKind::Goto, String::new()),
            Action::Search => self.input(
                InputKind::Search,
                self.queue.search_text().unwrap_or_default().to_string(),
            ),
            Action::Undo => vec![Effect::Undo],
            Action::Redo => vec![Effect::Redo],
            Action::ShowOriginal => {
                self.show_original = !self.show_original;
                self.message = Some(
                    if self.show_original {
                        "edited answers show their original"
                    } else {
                        "edited answers show your text only"
                    }
                    .into(),
                );
                vec![]
            }
            Action::Train => self.request_training(),
            Action::Order => {
                let order = self.queue.order().next();
                self.queue.set_order(order);
                let note = if self.queue.scored() == 0
                    && order != crate::tui::queue::Order::File
                    && order != crate::tui::queue::Order::Random
                {
                    " (no selector scores yet: press T)"
                } else {
                    ""
                };
                self.message = Some(format!("order: {}{note}", order.label()));
                vec![]
            }
            Action::Export => {
                self.mode = Mode::Export(ExportForm {
                    fields: self.export_defaults.clone(),
                    focus: 0,
                    error: None,
                });
                vec![]
            }
            Action::Guidelines => {
                if self.guidelines.is_some() {
                    self.guidelines_scroll = 0;
                    self.mode = Mode::Guidelines;
                } else {
                    self.message = Some(
                        "no guidelines stored: a curator stores them with `vital team guidelines FILE.md`".into(),
                    );
                }
                vec![]
            }
            Action::Agreement => {
                self.agreement = AgreementRequest::Waiting;
                self.message = Some("computing agreement…".into());
                vec![Effect::LoadAgreement]
            }
            Action::Preview => {
                self.mode = Mode::Preview(SelectionPreview::compute(&self.queue, self.top_percent));
                vec![]
            }
            Action::ScrollDown => {
                self.scroll = self.scroll.saturating_add(5);
                vec![]
            }
            Action::ScrollUp => {
                self.scroll = self.scroll.saturating_sub(5);
                vec![]
            }
            Action::ZoomClose => {
                self.zoomed = false;
                vec![]
            }
            Action::Zoom if self.zoomed => {
                self.zoomed = false;
                vec![]
            }
            Action::CaptionOverlay => {
                self.caption_overlay = !self.caption_overlay;
                vec![]
            }
            _ if self.current.is_none() => {
                self.message = Some("no sample on screen".into());
                vec![]
            }
            Action::NextRound => {
                self.move_round(1);
                vec![]
            }
            Action::PrevRound => {
                self.move_round(-1);
                vec![]
            }
            Action::NextAnswer => {
                self.move_answer(1);
                vec![]
            }
            Action::PrevAnswer => {
                self.move_answer(-1);
                vec![]
            }
            Action::Edit => self.open_editor(),
            Action::EditExternal => self.open_external_editor(),
            Action::Reason => self.pick_reason(None),
            Action::Accept => self.verdict(DecisionKind::Accept),
            Action::Reject => self.verdict(DecisionKind::Reject),
            Action::Prefer1 => self.prefer(0),
            Action::Prefer2 => self.prefer(1),
            Action::Tie => self.tie(),
            Action::Rate => {
                if self.focused_round_has_answers() {
                    self.mode = Mode::Rating;
                    self.message = Some("rate the round: 1-5 (any other key cancels)".into());
                }
                vec![]
            }
            Action::Flag => {
                let flagged = self.current.as_ref().is_some_and(SampleView::flagged);
                self.sample_decision(
                    DecisionKind::Flag,
                    Some(if flagged { "0" } else { "1" }.into()),
                )
            }
            Action::FinalAccept | Action::FinalReject => {
                // Final decisions overrule reviewers: only where they are being adjudicated.
                if !self.adjudicating
                    && self.queue.filter() != &crate::tui::queue::Filter::Disagreements
                {
                    self.message = Some(
                        "final decisions resolve disagreements: press F until the filter is disagreements".into(),
                    );
                    return vec![];
                }
                if !self.focused_round_has_answers() {
                    return vec![];
                }
                let view = self.current.as_ref().expect("checked above");
                match view.answer_at(self.focus_round, self.focus_answer) {
                    Some(answer_id) => {
                        vec![Effect::FinalDecision {
                            answer_id,
                            accepted: action == Action::FinalAccept,
                        }]
                    }
                    None => vec![],
                }
            }
            Action::Demo => {
                let demo = self.current.as_ref().is_some_and(SampleView::is_demo);
                self.message = Some(
                    if demo {
                        "no longer a demonstration"
                    } else {
                        "marked as a demonstration"
                    }
                    .into(),
                );
                self.sample_decision(
                    DecisionKind::Demo,
                    Some(if demo { "0" } else { "1" }.into()),
                )
            }
            Action::Zoom => {
                self.zoomed = true;
                vec![]
            }
            Action::ZoomIn => self.change_view(|v| v.zoom_by(1), "8× is the closest view"),
            Action::ZoomOut => self.change_view(|v| v.zoom_by(-1), "the whole figure is shown"),
            Action::ZoomFit => self.change_view(
                |v| {
                    let before = *v;
                    v.fit();
                    *v != before
                },
                "the whole figure is shown",
            ),
            Action::PanLeft => self.pan(Pan::Left),
            Action::PanRight => self.pan(Pan::Right),
            Action::PanUp => self.pan(Pan::Up),
            Action::PanDown => self.pan(Pan::Down),
            Action::ContrastUp => self.change_view(|v| v.contrast_by(1), "most contrast"),
            Action::ContrastDown => self.change_view(|v| v.contrast_by(-1), "least contrast"),
            Action::BrightnessUp => self.change_view(|v| v.brightness_by(1), "brightest"),
            Action::BrightnessDown => self.change_view(|v| v.brightness_by(-1), "darkest"),
            Action::Invert => self.change_view(
                |v| {
                    v.invert = !v.invert;
                    true
                },
                "",
            ),
            Action::Note => self.open_note(),
        }
    }

    /// Changes the figure view of the sample on screen (only on the full-screen view); `limit`
    /// is said when nothing changed. The new view is rendered by `follow_zoom`.
    pub(super) fn change_view(
        &mut self,
        change: impl FnOnce(&mut FigureView) -> bool,
        limit: &str,
    ) -> Vec<Effect> {
        let Some(key) = self
            .current
            .as_ref()
            .map(SampleView::key)
            .filter(|_| self.zoomed)
        else {
            return vec![];
        };
        let mut view = self.figure_view(key);
        if change(&mut view) {
            self.figure_views.insert(key, view);
        } else if !limit.is_empty() {
            self.message = Some(limit.into());
        }
        vec![]
    }

    pub(super) fn pan(&mut self, direction: Pan) -> Vec<Effect> {
        let zoomed_in = self
            .current
            .as_ref()
            .is_some_and(|v| self.figure_view(v.key()).zoom > 0);
        let limit = if zoomed_in {
            "the edge of the figure"
        } else {
            "zoom in (+) to pan"
        };
        self.change_view(|v| v.pan(direction), limit)
    }
}
