//! The sample on screen: stored content, the reviewer's decisions in force, the shuffled answer
//! order and the scores shown beside answers.

use std::collections::HashMap;

use crate::stable::{Fnv1a, SplitMix64};
use crate::store::{AnswerReview, CurrentDecision, DecisionKind, StoredSample, Workspace};

#[derive(Debug, Clone, PartialEq)]
pub struct SampleView {
    pub stored: StoredSample,
    pub decisions: Vec<CurrentDecision>,
    /// `order[r][d]` is the true index of the answer shown at display position `d` of round `r`.
    pub order: Vec<Vec<usize>>,
    /// Mean judge score per answer id.
    pub judge_scores: HashMap<i64, f64>,
    /// Latest selector run's score per answer id.
    pub selector_scores: HashMap<i64, f64>,
    /// Other reviewers' verdicts per answer id, with time, reason and correction. Shown only
    /// when adjudicating disagreements, so reviewers otherwise judge blind (on a server their
    /// role cannot read them at all).
    pub others: HashMap<i64, Vec<AnswerReview>>,
}

impl SampleView {
    /// Builds the view; answer order is shuffled per reviewer and sample when `shuffle` is set.
    pub fn new(
        stored: StoredSample,
        decisions: Vec<CurrentDecision>,
        reviewer: &str,
        shuffle: bool,
    ) -> Self {
        let order = stored
            .answer_ids
            .iter()
            .enumerate()
            .map(|(r, answers)| {
                let mut order: Vec<usize> = (0..answers.len()).collect();
                if shuffle {
                    shuffle_in_place(&mut order, seed(reviewer, &stored.sample.id, r));
                }
                order
            })
            .collect();
        Self {
            stored,
            decisions,
            order,
            judge_scores: HashMap::new(),
            selector_scores: HashMap::new(),
            others: HashMap::new(),
        }
    }

    /// Loads sample `key` with `reviewer`'s decisions and the scores.
    pub fn load(
        ws: &Workspace,
        reviewer: &str,
        key: i64,
        shuffle: bool,
    ) -> anyhow::Result<Option<Self>> {
        let Some(stored) = ws.load_sample(key)? else {
            return Ok(None);
        };
        let decisions = ws.current_decisions(reviewer, key)?;
        let mut view = Self::new(stored, decisions, reviewer, shuffle);
        view.judge_scores = ws.judge_scores(key)?;
        view.selector_scores = ws.selector_scores(key)?;
        for review in ws.answer_reviews(key)? {
            if review.reviewer != reviewer {
                view.others
                    .entry(review.answer_id)
                    .or_default()
                    .push(review);
            }
        }
        Ok(Some(view))
    }

    /// Some answer still has contradicting verdicts and no final decision.
    pub fn unresolved_conflict(&self) -> bool {
        self.stored.answer_ids.iter().flatten().any(|id| {
            let others = self.others.get(id).map_or(&[][..], Vec::as_slice);
            if others
                .iter()
                .any(|o| o.reviewer == crate::store::FINAL_REVIEWER)
            {
                return false;
            }
            let mut verdicts: Vec<bool> = others.iter().map(|o| o.accepted).collect();
            if let Some(mine) = self.verdict(*id) {
                verdicts.push(mine == DecisionKind::Accept);
            }
            verdicts.iter().any(|v| *v) && verdicts.iter().any(|v| !*v)
        })
    }

    pub fn key(&self) -> i64 {
        self.stored.key
    }

    pub fn rounds(&self) -> usize {
        self.stored.round_ids.len()
    }

    /// Answer id shown at display position `d` of round `r`.
    pub fn answer_at(&self, r: usize, d: usize) -> Option<i64> {
        let true_index = *self.order.get(r)?.get(d)?;
        self.stored.answer_ids.get(r)?.get(true_index).copied()
    }

    /// Answer text shown at display position `d` of round `r`.
    pub fn answer_text_at(&self, r: usize, d: usize) -> Option<&str> {
        let true_index = *self.order.get(r)?.get(d)?;
        self.stored
            .sample
            .rounds
            .get(r)?
            .answers
            .get(true_index)
            .map(String::as_str)
    }

    /// Answer ids of round `r` in display order (what is recorded as "shown order").
    pub fn shown_order(&self, r: usize) -> Vec<i64> {
        (0..self.order.get(r).map_or(0, Vec::len))
            .filter_map(|d| self.answer_at(r, d))
            .collect()
    }

    fn find(&self, pred: impl Fn(&CurrentDecision) -> bool) -> Option<&CurrentDecision> {
        self.decisions.iter().rev().find(|d| pred(d))
    }

    pub fn verdict(&self, answer_id: i64) -> Option<DecisionKind> {
        self.find(|d| {
            d.answer_id == Some(answer_id)
                && matches!(d.kind, DecisionKind::Accept | DecisionKind::Reject)
        })
        .map(|d| d.kind)
    }

    /// The round's preference: `Some((Prefer, Some(answer id)))` or `Some((Tie, None))`.
    pub fn preference(&self, r: usize) -> Option<(DecisionKind, Option<i64>)> {
        let round = *self.stored.round_ids.get(r)?;
        self.find(|d| {
            d.round_id == Some(round) && matches!(d.kind, DecisionKind::Prefer | DecisionKind::Tie)
        })
        .map(|d| (d.kind, d.value.as_deref().and_then(|v| v.parse().ok())))
    }

    pub fn rating(&self, r: usize) -> Option<u8> {
        let round = *self.stored.round_ids.get(r)?;
        self.find(|d| d.round_id == Some(round) && d.kind == DecisionKind::Rate)
            .and_then(|d| d.value.as_deref()?.parse().ok())
    }

    pub fn flagged(&self) -> bool {
        self.find(|d| d.kind == DecisionKind::Flag)
            .is_some_and(|d| d.value.as_deref() == Some("1"))
    }

    /// A demonstration for the generator: marked `d` by this reviewer, else as imported.
    pub fn is_demo(&self) -> bool {
        match self.find(|d| d.kind == DecisionKind::Demo) {
            Some(d) => d.value.as_deref() == Some("1"),
            None => self.stored.sample.is_demo,
        }
    }

    /// This reviewer's corrected text of an answer, if they edited it.
    pub fn edit(&self, answer_id: i64) -> Option<&str> {
        self.find(|d| d.answer_id == Some(answer_id) && d.kind == DecisionKind::Edit)
            .and_then(|d| d.value.as_deref())
    }

    /// Why this reviewer rejected an answer, if they said; none once they accepted it since
    /// (a reason explains a ✗, and is kept in the log should the ✗ come back).
    pub fn reason(&self, answer_id: i64) -> Option<&str> {
        if self.verdict(answer_id) == Some(DecisionKind::Accept) {
            return None;
        }
        self.find(|d| d.answer_id == Some(answer_id) && d.kind == DecisionKind::Reason)
            .and_then(|d| d.value.as_deref())
    }

    pub fn note(&self) -> Option<&str> {
        self.find(|d| d.kind == DecisionKind::Note)
            .and_then(|d| d.value.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// A round is decided when each answer has a verdict, or a preference / tie was given.
    pub fn round_decided(&self, r: usize) -> bool {
        let answers = &self.stored.answer_ids[r];
        self.preference(r).is_some() || answers.iter().all(|&a| self.verdict(a).is_some())
    }

    /// Every answered round is decided (unanswered rounds have nothing to decide).
    pub fn decided(&self) -> bool {
        let answered: Vec<usize> = (0..self.rounds())
            .filter(|&r| !self.stored.answer_ids[r].is_empty())
            .collect();
        !answered.is_empty() && answered.into_iter().all(|r| self.round_decided(r))
    }
}

/// FNV-1a of reviewer, sample id and round: stable across runs and platforms.
fn seed(reviewer: &str, sample: &str, round: usize) -> u64 {
    Fnv1a::new()
        .write(reviewer.bytes().chain([0]))
        .write(sample.bytes().chain([0]))
        .write((round as u64).to_le_bytes())
        .finish()
}

/// Fisher–Yates with a SplitMix64 stream.
fn shuffle_in_place(items: &mut [usize], state: u64) {
    SplitMix64::new(state).shuffle(items);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Round, Sample};

    pub(crate) fn stored(id: &str, answers_per_round: &[usize]) -> StoredSample {
        let mut next_id = 100;
        let mut sample = Sample {
            id: id.into(),
            caption: "cap".into(),
            ..Default::default()
        };
        let mut round_ids = Vec::new();
        let mut answer_ids = Vec::new();
        for (r, &n) in answers_per_round.iter().enumerate() {
            round_ids.push(10 + r as i64);
            let ids: Vec<i64> = (0..n)
                .map(|_| {
                    next_id += 1;
                    next_id
                })
                .collect();
            sample.rounds.push(Round {
                question: format!("Question {}?", r + 1),
                answers: (0..n)
                    .map(|a| format!("Answer text {}.{}", r + 1, a + 1))
                    .collect(),
            });
            answer_ids.push(ids);
        }
        StoredSample {
            key: 1,
            sample,
            round_ids,
            answer_ids,
            source: None,
        }
    }

    #[test]
    fn shuffle_is_stable_per_reviewer_and_differs_between_reviewers() {
        let s = stored("fig", &[2, 2, 2, 2, 2, 2, 2, 2]);
        let a1 = SampleView::new(s.clone(), vec![], "ana", true);
        let a2 = SampleView::new(s.clone(), vec![], "ana", true);
        let b = SampleView::new(s.clone(), vec![], "ben", true);
        assert_eq!(a1.order, a2.order);
        assert_ne!(
            a1.order, b.order,
            "8 rounds: different reviewers see different orders"
        );
        assert!(
            a1.order.iter().any(|o| o == &vec![1, 0]),
            "some rounds are swapped"
        );
        let plain = SampleView::new(s, vec![], "ana", false);
        assert!(plain.order.iter().all(|o| o == &vec![0, 1]));
        // Display positions map to the true answers.
        let r = a1.order.iter().position(|o| o == &vec![1, 0]).unwrap();
        assert_eq!(a1.answer_at(r, 0), Some(a1.stored.answer_ids[r][1]));
        assert_eq!(
            a1.answer_text_at(r, 0),
            Some(format!("Answer text {}.2", r + 1).as_str())
        );
        assert_eq!(
            a1.shown_order(r),
            vec![a1.stored.answer_ids[r][1], a1.stored.answer_ids[r][0]]
        );
    }
}
