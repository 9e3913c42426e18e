//! Decisions: ✓/✗ on an answer, a preference between answers, round and sample decisions, and the stored decisions applied to the sample on screen.

use super::*;

impl App {
    pub(super) fn apply_decisions(
        &mut self,
        key: i64,
        decisions: Vec<CurrentDecision>,
        may_advance: bool,
    ) -> Vec<Effect> {
        let Some(view) = self.current.as_mut().filter(|v| v.key() == key) else {
            return vec![];
        };
        let was_decided = view.decided();
        view.decisions = decisions;
        let decided = view.decided();
        let flagged = view.flagged();
        self.queue.update(key, decided, flagged);
        if may_advance && self.auto_advance && decided && !was_decided && self.queue.advance() {
            // What the last key recorded stays readable ("correction saved as your ✓ …").
            self.message = Some(match self.message.take() {
                Some(said) => format!("{said} · sample decided: next"),
                None => "sample decided: next".into(),
            });
            return self.load_current();
        }
        vec![]
    }

    pub(super) fn verdict(&mut self, kind: DecisionKind) -> Vec<Effect> {
        if !self.focused_round_has_answers() {
            return vec![];
        }
        let view = self.current.as_ref().expect("checked above");
        let (r, d) = (self.focus_round, self.focus_answer);
        let decision = NewDecision {
            sample_key: view.key(),
            round_id: Some(view.stored.round_ids[r]),
            answer_id: view.answer_at(r, d),
            kind,
            value: None,
            shown_order: Some(view.shown_order(r)),
            figure_shown: None,
        };
        if kind == DecisionKind::Reject {
            self.last_rejected = decision.answer_id.map(|answer_id| ReasonTarget {
                sample_key: decision.sample_key,
                round_id: view.stored.round_ids[r],
                answer_id,
            });
        }
        // Move on to the next answer, then the next round, so a sheet is marked with a, x, a, x…
        if d + 1 < view.order[r].len() {
            self.focus_answer += 1;
        } else if r + 1 < view.rounds() {
            self.focus_round += 1;
            self.focus_answer = 0;
            self.scroll = 0;
        }
        self.pending_trains = true;
        vec![Effect::Record(decision)]
    }

    pub(super) fn prefer(&mut self, display: usize) -> Vec<Effect> {
        if !self.round_has_answers_to_compare() {
            return vec![];
        }
        let view = self.current.as_ref().expect("checked above");
        match view.answer_at(self.focus_round, display) {
            Some(answer) => {
                let effects = self.round_decision(DecisionKind::Prefer, Some(answer.to_string()));
                // On to the next round, as a and x move on: a preference decides this one.
                self.next_round_after_decision();
                effects
            }
            None => {
                self.message = Some(format!("no answer {} to prefer in this round", display + 1));
                vec![]
            }
        }
    }

    /// `=`: both answers equally good, only where the round has two or more to compare.
    pub(super) fn tie(&mut self) -> Vec<Effect> {
        if !self.round_has_answers_to_compare() {
            return vec![];
        }
        let effects = self.round_decision(DecisionKind::Tie, None);
        self.next_round_after_decision();
        effects
    }

    /// Whether the focused round has two or more answers, so a tie or a preference means
    /// something; else the status line says why nothing is recorded.
    fn round_has_answers_to_compare(&mut self) -> bool {
        if !self.focused_round_has_answers() {
            return false;
        }
        let Some(why) = self
            .current
            .as_ref()
            .and_then(|view| one_answer(view, self.focus_round))
        else {
            return true;
        };
        self.message = Some(why);
        false
    }

    /// The focus moves to the next round's first answer (it stays on the last round).
    fn next_round_after_decision(&mut self) {
        let rounds = self.current.as_ref().map_or(0, SampleView::rounds);
        if self.focus_round + 1 < rounds {
            self.focus_round += 1;
            self.focus_answer = 0;
            self.scroll = 0;
        }
    }

    pub(super) fn round_decision(
        &mut self,
        kind: DecisionKind,
        value: Option<String>,
    ) -> Vec<Effect> {
        let Some(view) = &self.current else {
            return vec![];
        };
        let r = self.focus_round;
        self.pending_trains = matches!(kind, DecisionKind::Prefer | DecisionKind::Tie);
        vec![Effect::Record(NewDecision {
            sample_key: view.key(),
            round_id: Some(view.stored.round_ids[r]),
            answer_id: None,
            kind,
            value,
            shown_order: Some(view.shown_order(r)),
            figure_shown: None,
        })]
    }

    pub(super) fn sample_decision(
        &mut self,
        kind: DecisionKind,
        value: Option<String>,
    ) -> Vec<Effect> {
        let Some(view) = &self.current else {
            return vec![];
        };
        vec![Effect::Record(NewDecision {
            sample_key: view.key(),
            round_id: None,
            answer_id: None,
            kind,
            value,
            shown_order: None,
            figure_shown: None,
        })]
    }
}

pub(super) fn first_undecided_round(view: &SampleView) -> usize {
    (0..view.rounds())
        .find(|&r| !view.stored.answer_ids[r].is_empty() && !view.round_decided(r))
        .unwrap_or(0)
}

/// Why a tie or a preference means nothing on round `r`: it has a single answer (every public
/// release, qa50), so there is nothing to compare it with.
fn one_answer(view: &SampleView, r: usize) -> Option<String> {
    (view.order[r].len() < 2).then(|| {
        "this round has one answer: nothing to compare it with, so no tie or preference is recorded (a accepts it, x rejects it)"
            .to_string()
    })
}
