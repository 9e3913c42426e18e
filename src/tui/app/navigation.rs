//! Moving through the queue and the sample: loading the current sample, the focused round and answer.

use super::*;

impl App {
    pub(super) fn load_current(&mut self) -> Vec<Effect> {
        match self.queue.current() {
            Some(key) if self.current.as_ref().map(SampleView::key) != Some(key) => {
                self.current = None;
                vec![Effect::Load(key)]
            }
            Some(_) => vec![],
            None => {
                self.current = None;
                vec![]
            }
        }
    }

    pub(super) fn move_round(&mut self, delta: isize) {
        let Some(view) = &self.current else { return };
        let last = view.rounds().saturating_sub(1);
        self.focus_round = (self.focus_round as isize + delta).clamp(0, last as isize) as usize;
        self.focus_answer = self
            .focus_answer
            .min(view.order[self.focus_round].len().saturating_sub(1));
        self.scroll = 0;
    }

    pub(super) fn move_answer(&mut self, delta: isize) {
        let Some(view) = &self.current else { return };
        let n = view.order.get(self.focus_round).map_or(0, Vec::len);
        if n > 0 {
            self.focus_answer =
                (self.focus_answer as isize + delta).rem_euclid(n as isize) as usize;
        }
    }

    pub(super) fn focused_round_has_answers(&mut self) -> bool {
        let has = self
            .current
            .as_ref()
            .is_some_and(|v| !v.order[self.focus_round].is_empty());
        if !has {
            self.message = Some("this question has no answer to judge".into());
        }
        has
    }
}
