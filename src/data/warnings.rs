//! Non-fatal problems met while reading a file, counted by kind with a few examples each.

use std::collections::BTreeMap;
use std::fmt;

/// How many examples of each kind are kept for the report.
const EXAMPLES_PER_KIND: usize = 3;

#[derive(Debug, Default, Clone)]
pub struct Warnings {
    kinds: BTreeMap<String, (usize, Vec<String>)>,
}

impl Warnings {
    /// Count one warning of `kind`; `detail` says where (record, field) and what.
    pub fn add(&mut self, kind: &str, detail: impl Into<String>) {
        let entry = self.kinds.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES_PER_KIND {
            entry.1.push(detail.into());
        }
    }

    /// Adds `other`'s counts and examples (up to the usual number of examples per kind).
    pub fn merge(&mut self, other: Warnings) {
        for (kind, (count, examples)) in other.kinds {
            let entry = self.kinds.entry(kind).or_default();
            entry.0 += count;
            let room = EXAMPLES_PER_KIND.saturating_sub(entry.1.len());
            entry.1.extend(examples.into_iter().take(room));
        }
    }

    pub fn count(&self, kind: &str) -> usize {
        self.kinds.get(kind).map_or(0, |e| e.0)
    }

    pub fn total(&self) -> usize {
        self.kinds.values().map(|e| e.0).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// (kind, count) pairs, for JSON reports.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.kinds.iter().map(|(k, v)| (k.clone(), v.0)).collect()
    }
}

impl fmt::Display for Warnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, (count, examples)) in &self.kinds {
            writeln!(f, "  {count} × {kind}")?;
            for example in examples {
                writeln!(f, "      e.g. {example}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_warning_but_keeps_few_examples() {
        let mut w = Warnings::default();
        for i in 0..10 {
            w.add("empty answer", format!("record {i}"));
        }
        w.add("wrong type", "record 3: caption is a number");
        assert_eq!(w.count("empty answer"), 10);
        assert_eq!(w.total(), 11);
        let text = w.to_string();
        assert!(text.contains("10 × empty answer"));
        assert_eq!(text.matches("e.g.").count(), EXAMPLES_PER_KIND + 1);
    }

    #[test]
    fn merging_adds_counts_and_keeps_few_examples() {
        let mut a = Warnings::default();
        a.add("empty answer", "record 1");
        a.add("empty answer", "record 2");
        let mut b = Warnings::default();
        b.add("empty answer", "record 7");
        b.add("empty answer", "record 8");
        b.add("missing image", "record 9");
        a.merge(b);
        assert_eq!(a.count("empty answer"), 4);
        assert_eq!(a.count("missing image"), 1);
        assert_eq!(
            a.kinds["empty answer"].1,
            ["record 1", "record 2", "record 7"]
        );
    }
}
