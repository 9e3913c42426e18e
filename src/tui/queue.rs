//! The review queue: every sample's compact index entry, the filter and search in force, and the
//! position. All operations are linear scans over small structs, instant at 210K samples.

use std::collections::{HashMap, HashSet};

use crate::store::{IndexEntry, RankSignals};

/// The order samples are reviewed in; `o` cycles through them. Defined with the settings, since
/// `review.order` names the one the queue opens in.
pub use crate::config::ReviewOrder as Order;

impl Order {
    pub fn label(self) -> &'static str {
        match self {
            Order::File => "file",
            Order::ScoreHigh => "score ↓",
            Order::ScoreLow => "score ↑",
            Order::Uncertainty => "uncertainty",
            Order::Random => "random",
        }
    }

    pub fn next(self) -> Self {
        match self {
            Order::File => Order::ScoreHigh,
            Order::ScoreHigh => Order::ScoreLow,
            Order::ScoreLow => Order::Uncertainty,
            Order::Uncertainty => Order::Random,
            Order::Random => Order::File,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Unreviewed,
    Flagged,
    Disagreements,
    Domain(String),
}

impl Filter {
    pub fn label(&self) -> String {
        match self {
            Filter::All => "all".into(),
            Filter::Unreviewed => "unreviewed".into(),
            Filter::Flagged => "flagged".into(),
            Filter::Disagreements => "disagreements".into(),
            Filter::Domain(d) => format!("domain {d}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    entries: Vec<IndexEntry>,
    /// Every domain present, for cycling the domain filter.
    domains: Vec<String>,
    filter: Filter,
    search: Option<(String, HashSet<i64>)>,
    order: Order,
    /// Selector signals per entry (parallel to `entries`).
    signals: Vec<RankSignals>,
    /// `rank[i]`: where entry `i` stands in the current order.
    rank: Vec<u32>,
    /// Indices into `entries` that pass the filter and search, in queue order.
    visible: Vec<usize>,
    /// The random order's seed (never zero: the shuffle's state must not be).
    random_seed: u64,
    /// Position inside `visible`.
    pos: usize,
    /// The sample the reviewer was last on: a filter that shows nothing keeps it, so cycling
    /// back to `all` returns there instead of to the first sample.
    anchor: Option<i64>,
    /// Samples the team plan no longer serves this reviewer (others took or finished them):
    /// hidden under every filter.
    gone: HashSet<i64>,
}

impl Queue {
    pub fn new(entries: Vec<IndexEntry>) -> Self {
        let mut domains: Vec<String> = entries
            .iter()
            .flat_map(|e| e.domains.iter().cloned())
            .collect();
        domains.sort();
        domains.dedup();
        let n = entries.len();
        let mut queue = Self {
            entries,
            domains,
            filter: Filter::All,
            search: None,
            order: Order::File,
            signals: vec![RankSignals::default(); n],
            rank: (0..n as u32).collect(),
            visible: Vec::new(),
            random_seed: 0x005e_ed0f_7e57,
            pos: 0,
            anchor: None,
            gone: HashSet::new(),
        };
        queue.refresh(None);
        queue
    }

    pub fn current(&self) -> Option<i64> {
        self.visible.get(self.pos).map(|&i| self.entries[i].key)
    }

    /// The keys of up to `n` samples after the one on screen, in queue order.
    pub fn upcoming(&self, n: usize) -> Vec<i64> {
        self.visible
            .iter()
            .skip(self.pos + 1)
            .take(n)
            .map(|&i| self.entries[i].key)
            .collect()
    }

    pub fn current_entry(&self) -> Option<&IndexEntry> {
        self.visible.get(self.pos).map(|&i| &self.entries[i])
    }

    /// Samples whose id holds `part` (ignoring case), in file order: the exact id alone when it
    /// is one.
    pub fn ids_matching(&self, part: &str) -> Vec<(i64, &str)> {
        if let Some(e) = self.entries.iter().find(|e| e.ext_id == part) {
            return vec![(e.key, e.ext_id.as_str())];
        }
        let part = part.to_lowercase();
        self.entries
            .iter()
            .filter(|e| e.ext_id.to_lowercase().contains(&part))
            .map(|e| (e.key, e.ext_id.as_str()))
            .collect()
    }

    /// Sample `key`'s entry, in view or not.
    pub fn entry_for(&self, key: i64) -> Option<&IndexEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// 1-based position and the number of samples in view.
    pub fn position(&self) -> (usize, usize) {
        (
            if self.visible.is_empty() {
                0
            } else {
                self.pos + 1
            },
            self.visible.len(),
        )
    }

    pub fn total(&self) -> usize {
        self.entries.len()
    }

    pub fn reviewed(&self) -> usize {
        self.entries.iter().filter(|e| e.decided).count()
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn order(&self) -> Order {
        self.order
    }

    /// Signals of the sample on screen.
    pub fn current_signals(&self) -> Option<&RankSignals> {
        self.visible.get(self.pos).map(|&i| &self.signals[i])
    }

    /// How many samples have a selector score.
    pub fn scored(&self) -> usize {
        self.signals.iter().filter(|s| s.score.is_some()).count()
    }

    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Selector signals, parallel to [`Self::entries`].
    pub fn signals(&self) -> &[RankSignals] {
        &self.signals
    }

    /// Reorders; the sample on screen stays on screen.
    pub fn set_order(&mut self, order: Order) {
        let keep = self.current();
        self.order = order;
        self.sort();
        self.refresh_pinned(keep);
    }

    /// New selector results: re-sorts, and the sample on screen stays put.
    pub fn set_signals(&mut self, signals: &HashMap<i64, RankSignals>) {
        let keep = self.current();
        for (entry, slot) in self.entries.iter().zip(self.signals.iter_mut()) {
            *slot = signals.get(&entry.key).copied().unwrap_or_default();
        }
        self.sort();
        self.refresh_pinned(keep);
    }

    fn sort(&mut self) {
        let mut sequence: Vec<usize> = (0..self.entries.len()).collect();
        let score = |i: usize| self.signals[i].score;
        match self.order {
            Order::File => {}
            // Unscored samples go last in both score orders.
            Order::ScoreHigh => sequence.sort_by(|&a, &b| match (score(a), score(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (x, y) => y.is_some().cmp(&x.is_some()),
            }),
            Order::ScoreLow => sequence.sort_by(|&a, &b| match (score(a), score(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => y.is_some().cmp(&x.is_some()),
            }),
            // Ties keep file order (a random cold start was measured and not kept: BENCHMARKS.md).
            Order::Uncertainty => sequence.sort_by(|&a, &b| {
                let (sa, sb) = (&self.signals[a], &self.signals[b]);
                sb.judge_conflicts.cmp(&sa.judge_conflicts).then_with(|| {
                    match (sa.margin, sb.margin) {
                        (Some(x), Some(y)) => x.total_cmp(&y),
                        (x, y) => y.is_some().cmp(&x.is_some()),
                    }
                })
            }),
            Order::Random => sequence = self.shuffled(),
        }
        for (rank, &i) in sequence.iter().enumerate() {
            self.rank[i] = rank as u32;
        }
    }

    /// Entry indices in the seeded shuffle (Fisher-Yates on xorshift: the same for a seed).
    fn shuffled(&self) -> Vec<usize> {
        let mut sequence: Vec<usize> = (0..self.entries.len()).collect();
        let mut state: u64 = self.random_seed;
        for i in (1..sequence.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            sequence.swap(i, (state % (i as u64 + 1)) as usize);
        }
        sequence
    }

    /// Why the sample on screen is where it is in this order: the signal the order ranks by
    /// (none for file and random order).
    pub fn why_here(&self) -> Option<String> {
        let signals = self.current_signals()?;
        match self.order {
            Order::File | Order::Random => None,
            Order::ScoreHigh | Order::ScoreLow => Some(match signals.score {
                Some(score) => format!("score {score:.3}"),
                None => "not scored yet".into(),
            }),
            Order::Uncertainty => {
                let margin = match signals.margin {
                    Some(m) => format!("answers {m:.3} apart"),
                    None => "not scored yet".into(),
                };
                Some(match signals.judge_conflicts {
                    0 => margin,
                    1 => format!("{margin}, 1 round against the judge"),
                    n => format!("{margin}, {n} rounds against the judge"),
                })
            }
        }
    }

    /// The samples shown, in the queue's order.
    pub fn in_order(&self) -> impl Iterator<Item = &IndexEntry> {
        self.visible.iter().map(|&i| &self.entries[i])
    }

    /// The seed of the random order (a simulation draws one per run; the screen keeps its own).
    pub fn set_random_seed(&mut self, seed: u64) {
        self.random_seed = (seed ^ 0x005e_ed0f_7e57).max(1);
        self.set_order(self.order);
    }

    pub fn search_text(&self) -> Option<&str> {
        self.search.as_ref().map(|(q, _)| q.as_str())
    }

    pub fn advance(&mut self) -> bool {
        self.anchor = None;
        if self.pos + 1 < self.visible.len() {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn back(&mut self) -> bool {
        self.anchor = None;
        if self.pos > 0 {
            self.pos -= 1;
            true
        } else {
            false
        }
    }

    /// Moves to the first sample this reviewer has not decided (where work resumes).
    pub fn to_first_undecided(&mut self) {
        self.anchor = None;
        if let Some(p) = self.visible.iter().position(|&i| !self.entries[i].decided) {
            self.pos = p;
        }
    }

    /// Moves to `key`; when the filter or search hides it, they are cleared first.
    pub fn jump_to(&mut self, key: i64) -> bool {
        self.anchor = None;
        if !self.entries.iter().any(|e| e.key == key) {
            return false;
        }
        if !self.visible.iter().any(|&i| self.entries[i].key == key) {
            self.filter = Filter::All;
            self.search = None;
            self.refresh(None);
        }
        match self
            .visible
            .iter()
            .position(|&i| self.entries[i].key == key)
        {
            Some(p) => {
                self.pos = p;
                true
            }
            None => false,
        }
    }

    pub fn set_filter(&mut self, filter: Filter) {
        // The sample the reviewer chose stays the anchor through a run of filter changes.
        let keep = self.anchor.or(self.current());
        self.anchor = keep;
        self.filter = filter;
        self.refresh(keep);
    }

    /// all → unreviewed → flagged → disagreements → each domain → all.
    pub fn cycle_filter(&mut self) {
        let next = match &self.filter {
            Filter::All => Filter::Unreviewed,
            Filter::Unreviewed => Filter::Flagged,
            Filter::Flagged => Filter::Disagreements,
            Filter::Disagreements => self
                .domains
                .first()
                .cloned()
                .map_or(Filter::All, Filter::Domain),
            Filter::Domain(d) => {
                let i = self
                    .domains
                    .iter()
                    .position(|x| x == d)
                    .map_or(usize::MAX, |i| i + 1);
                self.domains
                    .get(i)
                    .cloned()
                    .map_or(Filter::All, Filter::Domain)
            }
        };
        self.set_filter(next);
    }

    /// The filter before this one in [`Self::cycle_filter`]'s order.
    pub fn cycle_filter_back(&mut self) {
        let previous = match &self.filter {
            Filter::All => self
                .domains
                .last()
                .cloned()
                .map_or(Filter::Disagreements, Filter::Domain),
            Filter::Unreviewed => Filter::All,
            Filter::Flagged => Filter::Unreviewed,
            Filter::Disagreements => Filter::Flagged,
            Filter::Domain(d) => match self.domains.iter().position(|x| x == d) {
                Some(i) if i > 0 => Filter::Domain(self.domains[i - 1].clone()),
                _ => Filter::Disagreements,
            },
        };
        self.set_filter(previous);
    }

    /// Restricts the queue to `keys` (a search result); `None` clears the search.
    pub fn set_search(&mut self, search: Option<(String, Vec<i64>)>) {
        let keep = self.current();
        self.search = search.map(|(q, keys)| (q, keys.into_iter().collect()));
        self.refresh(keep);
    }

    /// Updates one sample's state after a decision. The sample stays in view even if the filter
    /// would now hide it (it disappears on the next filter change), so the screen never jumps.
    pub fn update(&mut self, key: i64, decided: bool, flagged: bool) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.decided = decided;
            e.flagged = flagged;
        }
    }

    /// Takes sample `key` out of the queue (the team plan serves it to others now); the queue
    /// moves on to the sample after it.
    pub fn leave(&mut self, key: i64) {
        self.gone.insert(key);
        let keep = self.current();
        self.refresh(keep);
    }

    /// Puts `entry` (a sample the team plan serves in place of `asked`: a gold check, a split
    /// sample) in the queue just before `asked`, in every order, and moves there; `asked` comes
    /// next. An entry for the same sample elsewhere in the queue moves (so finishing it does not
    /// skip the samples between).
    pub fn serve_before(&mut self, asked: i64, entry: IndexEntry) {
        let key = entry.key;
        let mut signals = RankSignals::default();
        if let Some(j) = self.entries.iter().position(|e| e.key == key) {
            self.entries.remove(j);
            signals = self.signals.remove(j);
            self.rank.remove(j);
        }
        let at = self
            .entries
            .iter()
            .position(|e| e.key == asked)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
        self.signals.insert(at, signals);
        self.rank.insert(at, 0);
        self.gone.remove(&key);
        self.sort();
        // Just before `asked` in whatever order is in force.
        let asked_rank = self.rank.get(at + 1).copied().unwrap_or(u32::MAX);
        if asked_rank != u32::MAX {
            for (i, r) in self.rank.iter_mut().enumerate() {
                if i != at && *r >= asked_rank {
                    *r += 1;
                }
            }
            self.rank[at] = asked_rank;
        }
        self.anchor = None;
        self.refresh_pinned(Some(key));
    }

    /// Marks whether a sample still has an unresolved disagreement (after a final decision).
    pub fn set_disagreement(&mut self, key: i64, disagreement: bool) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            e.disagreement = disagreement;
        }
    }

    /// Sample `key` has no unresolved disagreement left: under the disagreements filter it is
    /// no longer counted, and leaves the view when the queue is next rebuilt (it stays while on
    /// screen, so the screen never jumps).
    pub fn resolve(&mut self, key: i64) {
        self.set_disagreement(key, false);
        if self.filter == Filter::Disagreements {
            let keep = self.current();
            self.refresh_pinned(keep);
        }
    }

    /// Sets every sample's disagreement flag from `keys` (the samples with unresolved
    /// disagreements now, other reviewers' latest decisions included). The view is rebuilt only
    /// when a flag changed under the disagreements filter; the sample on screen stays.
    pub fn set_disagreements(&mut self, keys: &std::collections::HashSet<i64>) -> bool {
        let mut changed = false;
        for e in &mut self.entries {
            let now = keys.contains(&e.key);
            changed |= e.disagreement != now;
            e.disagreement = now;
        }
        if changed && self.filter == Filter::Disagreements {
            let keep = self.current();
            self.refresh(keep);
        }
        changed
    }

    fn passes(&self, e: &IndexEntry) -> bool {
        let by_filter = match &self.filter {
            Filter::All => true,
            Filter::Unreviewed => !e.decided,
            Filter::Flagged => e.flagged,
            Filter::Disagreements => e.disagreement,
            Filter::Domain(d) => e.domains.iter().any(|x| x == d),
        };
        by_filter
            && !self.gone.contains(&e.key)
            && self
                .search
                .as_ref()
                .is_none_or(|(_, keys)| keys.contains(&e.key))
    }

    /// Recomputes the visible list, staying on `keep` when it is still visible, else on the next
    /// visible sample after it.
    fn refresh(&mut self, keep: Option<i64>) {
        self.refresh_with(keep, false);
    }

    /// As [`Self::refresh`], but `keep` stays in view even if the filter would now hide it: a
    /// re-rank must never move the queue off the sample on screen (or it would skip samples).
    fn refresh_pinned(&mut self, keep: Option<i64>) {
        self.refresh_with(keep, true);
    }

    fn refresh_with(&mut self, keep: Option<i64>, pin: bool) {
        let keep_index = keep.and_then(|k| self.entries.iter().position(|e| e.key == k));
        let keep_rank = keep_index.map(|i| self.rank[i]);
        let pinned = keep_index.filter(|_| pin);
        let mut visible: Vec<usize> = (0..self.entries.len())
            .filter(|&i| Some(i) == pinned || self.passes(&self.entries[i]))
            .collect();
        visible.sort_unstable_by_key(|&i| self.rank[i]);
        self.visible = visible;
        self.pos = match keep_rank {
            Some(r) => self
                .visible
                .partition_point(|&i| self.rank[i] < r)
                .min(self.visible.len().saturating_sub(1)),
            None => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        key: i64,
        domain: &str,
        decided: bool,
        flagged: bool,
        disagreement: bool,
    ) -> IndexEntry {
        IndexEntry {
            key,
            ext_id: format!("s{key}"),
            domains: vec![domain.into()],
            decided,
            flagged,
            disagreement,
            rounds: 2,
        }
    }

    #[test]
    fn the_filter_cycles_both_ways() {
        let mut q = queue();
        let mut forward = vec![q.filter().clone()];
        for _ in 0..6 {
            q.cycle_filter();
            forward.push(q.filter().clone());
        }
        assert_eq!(forward.first(), forward.last(), "a full cycle: {forward:?}");
        let mut backward = vec![q.filter().clone()];
        for _ in 0..6 {
            q.cycle_filter_back();
            backward.push(q.filter().clone());
        }
        backward.reverse();
        assert_eq!(forward, backward);
    }

    #[test]
    fn cycling_the_filter_back_to_all_returns_to_the_sample_the_reviewer_was_on() {
        let mut q = queue();
        q.jump_to(3);
        assert_eq!(q.current(), Some(3));
        // Through filters, some of which show nothing.
        for _ in 0..12 {
            q.cycle_filter();
            if q.filter() == &Filter::All {
                break;
            }
        }
        assert_eq!(q.filter(), &Filter::All);
        assert_eq!(q.current(), Some(3), "back where the reviewer was");
    }

    fn queue() -> Queue {
        Queue::new(vec![
            entry(1, "ct_scan", true, false, false),
            entry(2, "mri", false, true, false),
            entry(3, "ct_scan", false, false, true),
            entry(4, "mri", true, true, false),
        ])
    }

    #[test]
    fn the_queue_says_why_a_sample_is_where_it_is() {
        let mut q = queue();
        assert_eq!(q.why_here(), None, "file order needs no reason");
        let signals: HashMap<i64, RankSignals> = [
            (
                1,
                RankSignals {
                    score: Some(0.25),
                    margin: Some(0.5),
                    judge_conflicts: 0,
                },
            ),
            (
                2,
                RankSignals {
                    score: Some(0.75),
                    margin: Some(0.02),
                    judge_conflicts: 2,
                },
            ),
        ]
        .into_iter()
        .collect();
        q.set_signals(&signals);
        q.set_order(Order::Uncertainty);
        q.jump_to(2);
        assert_eq!(
            q.why_here().as_deref(),
            Some("answers 0.020 apart, 2 rounds against the judge")
        );
        q.set_order(Order::ScoreHigh);
        assert_eq!(q.why_here().as_deref(), Some("score 0.750"));
        q.jump_to(3);
        assert_eq!(q.why_here().as_deref(), Some("not scored yet"));
        q.set_order(Order::Random);
        assert_eq!(q.why_here(), None);
    }

    #[test]
    fn moves_and_resumes_at_first_undecided() {
        let mut q = queue();
        assert_eq!(q.current(), Some(1));
        assert!(q.advance() && q.advance() && q.advance());
        assert!(!q.advance(), "stops at the end");
        assert_eq!(q.position(), (4, 4));
        q.to_first_undecided();
        assert_eq!(q.current(), Some(2));
        assert!(q.back());
        assert!(!q.back());
        assert_eq!(q.reviewed(), 2);
    }

    #[test]
    fn filters_cycle_and_keep_the_current_sample_when_visible() {
        let mut q = queue();
        q.jump_to(3);
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::Unreviewed);
        assert_eq!(q.current(), Some(3), "3 is unreviewed: stays");
        assert_eq!(q.position(), (2, 2));
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::Flagged);
        assert_eq!(
            q.current(),
            Some(4),
            "3 is not flagged: the next flagged one"
        );
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::Disagreements);
        assert_eq!(q.current(), Some(3));
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::Domain("ct_scan".into()));
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::Domain("mri".into()));
        assert_eq!(q.position().1, 2);
        q.cycle_filter();
        assert_eq!(q.filter(), &Filter::All);
    }

    #[test]
    fn search_restricts_and_jump_clears_what_hides_the_target() {
        let mut q = queue();
        q.set_search(Some(("chest".into(), vec![2, 4])));
        assert_eq!(q.current(), Some(2));
        assert_eq!(q.position(), (1, 2));
        assert!(q.jump_to(1));
        assert_eq!(q.search_text(), None);
        assert_eq!(q.position(), (1, 4));
        assert!(!q.jump_to(99));
    }

    #[test]
    fn orders_by_signals_and_keeps_the_sample_on_screen() {
        let mut q = queue();
        q.jump_to(2);
        let signals = HashMap::from([
            (
                1,
                RankSignals {
                    score: Some(0.1),
                    margin: Some(0.9),
                    judge_conflicts: 0,
                },
            ),
            (
                2,
                RankSignals {
                    score: Some(0.9),
                    margin: Some(0.01),
                    judge_conflicts: 0,
                },
            ),
            (
                3,
                RankSignals {
                    score: Some(0.5),
                    margin: Some(0.5),
                    judge_conflicts: 2,
                },
            ),
        ]);
        q.set_signals(&signals);
        assert_eq!(q.current(), Some(2), "a refresh does not move the reviewer");
        assert_eq!(q.position(), (2, 4), "file order: still second");
        q.set_order(Order::ScoreHigh);
        assert_eq!(q.current(), Some(2));
        assert_eq!(q.position(), (1, 4));
        let keys = |q: &mut Queue| {
            let mut out = Vec::new();
            let (_, n) = q.position();
            while q.back() {}
            for i in 0..n {
                out.push(q.current().unwrap());
                if i + 1 < n {
                    q.advance();
                }
            }
            out
        };
        assert_eq!(keys(&mut q), vec![2, 3, 1, 4], "unscored last");
        q.set_order(Order::ScoreLow);
        assert_eq!(keys(&mut q), vec![1, 3, 2, 4]);
        q.set_order(Order::Uncertainty);
        assert_eq!(
            keys(&mut q),
            vec![3, 2, 1, 4],
            "judge conflicts first, then small margins"
        );
        q.set_order(Order::Random);
        let mut shuffled = keys(&mut q);
        assert_eq!(shuffled, keys(&mut q), "seeded");
        shuffled.sort();
        assert_eq!(shuffled, vec![1, 2, 3, 4]);
        assert_eq!(q.scored(), 3);
        q.set_filter(Filter::Unreviewed);
        q.set_order(Order::ScoreHigh);
        assert_eq!(keys(&mut q), vec![2, 3]);
    }

    #[test]
    fn a_re_rank_keeps_the_sample_on_screen_even_when_the_filter_no_longer_shows_it() {
        let mut q = queue();
        q.set_filter(Filter::Unreviewed);
        q.jump_to(3);
        q.update(3, true, false); // decided while on screen
        q.set_signals(&HashMap::from([(
            2,
            RankSignals {
                score: Some(1.0),
                margin: None,
                judge_conflicts: 0,
            },
        )]));
        assert_eq!(q.current(), Some(3), "still on the sample shown");
        q.set_order(Order::ScoreHigh);
        assert_eq!(q.current(), Some(3));
        assert!(q.back(), "sample 2 is before it and not skipped");
        assert_eq!(q.current(), Some(2));
    }

    #[test]
    fn empty_filter_result_has_no_current() {
        let mut q = Queue::new(vec![entry(1, "ct", true, false, false)]);
        q.set_filter(Filter::Unreviewed);
        assert_eq!(q.current(), None);
        assert_eq!(q.position(), (0, 0));
    }
}
