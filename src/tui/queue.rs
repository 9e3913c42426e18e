//! The review queue: every sample's compact index entry, the filter and search in force, and the
//! position. All operations are linear scans over small structs, instant at 210K samples.

use std::collections::HashSet;

use crate::store::IndexEntry;

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
    /// Indices into `entries` that pass the filter and search, in queue order.
    visible: Vec<usize>,
    /// Position inside `visible`.
    pos: usize,
}

impl Queue {
    pub fn new(entries: Vec<IndexEntry>) -> Self {
        let mut domains: Vec<String> = entries.iter().flat_map(|e| e.domains.iter().cloned()).collect();
        domains.sort();
        domains.dedup();
        let mut queue = Self { entries, domains, filter: Filter::All, search: None, visible: Vec::new(), pos: 0 };
        queue.refresh(None);
        queue
    }

    pub fn current(&self) -> Option<i64> {
        self.visible.get(self.pos).map(|&i| self.entries[i].key)
    }

    pub fn current_entry(&self) -> Option<&IndexEntry> {
        self.visible.get(self.pos).map(|&i| &self.entries[i])
    }

    /// 1-based position and the number of samples in view.
    pub fn position(&self) -> (usize, usize) {
        (if self.visible.is_empty() { 0 } else { self.pos + 1 }, self.visible.len())
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

    pub fn search_text(&self) -> Option<&str> {
        self.search.as_ref().map(|(q, _)| q.as_str())
    }

    pub fn next(&mut self) -> bool {
        if self.pos + 1 < self.visible.len() {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn prev(&mut self) -> bool {
        if self.pos > 0 {
            self.pos -= 1;
            true
        } else {
            false
        }
    }

    /// Moves to the first sample this reviewer has not decided (where work resumes).
    pub fn to_first_undecided(&mut self) {
        if let Some(p) = self.visible.iter().position(|&i| !self.entries[i].decided) {
            self.pos = p;
        }
    }

    /// Moves to `key`; when the filter or search hides it, they are cleared first.
    pub fn jump_to(&mut self, key: i64) -> bool {
        if !self.entries.iter().any(|e| e.key == key) {
            return false;
        }
        if !self.visible.iter().any(|&i| self.entries[i].key == key) {
            self.filter = Filter::All;
            self.search = None;
            self.refresh(None);
        }
        match self.visible.iter().position(|&i| self.entries[i].key == key) {
            Some(p) => {
                self.pos = p;
                true
            }
            None => false,
        }
    }

    pub fn set_filter(&mut self, filter: Filter) {
        let keep = self.current();
        self.filter = filter;
        self.refresh(keep);
    }

    /// all → unreviewed → flagged → disagreements → each domain → all.
    pub fn cycle_filter(&mut self) {
        let next = match &self.filter {
            Filter::All => Filter::Unreviewed,
            Filter::Unreviewed => Filter::Flagged,
            Filter::Flagged => Filter::Disagreements,
            Filter::Disagreements => self.domains.first().cloned().map_or(Filter::All, Filter::Domain),
            Filter::Domain(d) => {
                let i = self.domains.iter().position(|x| x == d).map_or(usize::MAX, |i| i + 1);
                self.domains.get(i).cloned().map_or(Filter::All, Filter::Domain)
            }
        };
        self.set_filter(next);
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

    fn passes(&self, e: &IndexEntry) -> bool {
        let by_filter = match &self.filter {
            Filter::All => true,
            Filter::Unreviewed => !e.decided,
            Filter::Flagged => e.flagged,
            Filter::Disagreements => e.disagreement,
            Filter::Domain(d) => e.domains.iter().any(|x| x == d),
        };
        by_filter && self.search.as_ref().is_none_or(|(_, keys)| keys.contains(&e.key))
    }

    /// Recomputes the visible list, staying on `keep` when it is still visible, else on the next
    /// visible sample after it.
    fn refresh(&mut self, keep: Option<i64>) {
        let keep_index = keep.and_then(|k| self.entries.iter().position(|e| e.key == k));
        self.visible = (0..self.entries.len()).filter(|&i| self.passes(&self.entries[i])).collect();
        self.pos = match keep_index {
            Some(k) => self.visible.partition_point(|&i| i < k).min(self.visible.len().saturating_sub(1)),
            None => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: i64, domain: &str, decided: bool, flagged: bool, disagreement: bool) -> IndexEntry {
        IndexEntry { key, ext_id: format!("s{key}"), domains: vec![domain.into()], decided, flagged, disagreement }
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
    fn moves_and_resumes_at_first_undecided() {
        let mut q = queue();
        assert_eq!(q.current(), Some(1));
        assert!(q.next() && q.next() && q.next());
        assert!(!q.next(), "stops at the end");
        assert_eq!(q.position(), (4, 4));
        q.to_first_undecided();
        assert_eq!(q.current(), Some(2));
        assert!(q.prev());
        assert!(!q.prev());
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
        assert_eq!(q.current(), Some(4), "3 is not flagged: the next flagged one");
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
    fn empty_filter_result_has_no_current() {
        let mut q = Queue::new(vec![entry(1, "ct", true, false, false)]);
        q.set_filter(Filter::Unreviewed);
        assert_eq!(q.current(), None);
        assert_eq!(q.position(), (0, 0));
    }
}
