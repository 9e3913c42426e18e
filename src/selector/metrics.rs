//! Agreement metrics between a scorer and preference pairs (paper step 7).
//!
//! Every function takes `(score_pos, score_neg)` pairs: the score given to the preferred
//! (positive) answer and to the rejected (negative) one. The ranking metrics pool all
//! positives and negatives into one global list, as the paper does.

use serde::{Deserialize, Serialize};

/// All metrics for one evaluation set. Empty input gives zeros with `pairs == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub pairs: usize,
    /// Share of pairs with `score_pos > score_neg`; ties are misses.
    pub alignment_rate: f64,
    /// ROC-AUC with positives labelled 1 and negatives 0 (ties count one half).
    pub auc: f64,
    /// Mean 1-based rank of the positives in the pooled list (descending), divided by
    /// the list length `2 * pairs`. Lower is better; the best possible is `(pairs + 1) / (4 * pairs)`.
    pub mean_rank: f64,
    /// Average precision of the positives in the pooled list (one query, so MAP = AP).
    pub map: f64,
}

impl Metrics {
    pub fn from_pairs(pairs: &[(f32, f32)]) -> Self {
        Metrics {
            pairs: pairs.len(),
            alignment_rate: alignment_rate(pairs),
            auc: auc(pairs),
            mean_rank: mean_rank(pairs),
            map: map(pairs),
        }
    }
}

/// Share of pairs where the positive strictly beats the negative.
pub fn alignment_rate(pairs: &[(f32, f32)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let hits = pairs.iter().filter(|(p, n)| p > n).count();
    hits as f64 / pairs.len() as f64
}

/// One pooled item: score and whether it is a positive.
fn pooled_descending(pairs: &[(f32, f32)]) -> Vec<(f32, bool)> {
    let mut items: Vec<(f32, bool)> = pairs
        .iter()
        .flat_map(|&(p, n)| [(p, true), (n, false)])
        .collect();
    // Descending by score; among equal scores negatives come first, so ties never flatter
    // the positives in MAP. NaN sorts last (treated as the lowest score).
    items.sort_by(|a, b| {
        let by_score =
            b.0.partial_cmp(&a.0)
                .unwrap_or_else(|| a.0.is_nan().cmp(&b.0.is_nan()));
        by_score.then(a.1.cmp(&b.1))
    });
    items
}

/// Average 1-based ranks (ties share the mean of their ranks) of each item of a descending list.
fn tie_averaged_ranks(items: &[(f32, bool)]) -> Vec<f64> {
    let mut ranks = vec![0.0; items.len()];
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        while end < items.len() && items[end].0 == items[start].0 {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean = (start + 1 + end) as f64 / 2.0;
        ranks[start..end].iter_mut().for_each(|r| *r = mean);
        start = end;
    }
    ranks
}

/// ROC-AUC via the Mann–Whitney U statistic over the pooled scores.
pub fn auc(pairs: &[(f32, f32)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let items = pooled_descending(pairs);
    let ranks = tie_averaged_ranks(&items);
    let n = pairs.len() as f64;
    let total = items.len() as f64;
    // Convert descending ranks to ascending ones: asc = total + 1 - desc.
    let rank_sum_pos: f64 = items
        .iter()
        .zip(&ranks)
        .filter(|(item, _)| item.1)
        .map(|(_, r)| total + 1.0 - r)
        .sum();
    (rank_sum_pos - n * (n + 1.0) / 2.0) / (n * n)
}

/// Mean rank of positives in the pooled descending list, divided by its length (ties averaged).
pub fn mean_rank(pairs: &[(f32, f32)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let items = pooled_descending(pairs);
    let ranks = tie_averaged_ranks(&items);
    let sum: f64 = items
        .iter()
        .zip(&ranks)
        .filter(|(item, _)| item.1)
        .map(|(_, r)| r)
        .sum();
    sum / pairs.len() as f64 / items.len() as f64
}

/// Average precision of the positives over the pooled descending list:
/// mean over positives of (positives at or above its position) / (its position).
pub fn map(pairs: &[(f32, f32)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let items = pooled_descending(pairs);
    let mut seen_pos = 0usize;
    let mut precision_sum = 0.0;
    for (index, item) in items.iter().enumerate() {
        if item.1 {
            seen_pos += 1;
            precision_sum += seen_pos as f64 / (index + 1) as f64;
        }
    }
    precision_sum / pairs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_separation() {
        let pairs = [(3.0, 0.0), (2.0, 1.0)];
        let m = Metrics::from_pairs(&pairs);
        assert_eq!(m.pairs, 2);
        assert!(close(m.alignment_rate, 1.0));
        assert!(close(m.auc, 1.0));
        // Positives at ranks 1 and 2 of 4: mean 1.5 / 4.
        assert!(close(m.mean_rank, 1.5 / 4.0));
        assert!(close(m.map, 1.0));
    }

    #[test]
    fn paired_and_global_metrics_differ() {
        // Each pair is won, but globally the second positive (1.0) sits below the first negative (2.0).
        let pairs = [(3.0, 2.0), (1.0, 0.0)];
        assert!(close(alignment_rate(&pairs), 1.0));
        // Positive 3 beats both negatives, positive 1 beats one of two: U = 3 of 4.
        assert!(close(auc(&pairs), 0.75));
        // Ranks of positives: 1 and 3 → mean 2 / 4.
        assert!(close(mean_rank(&pairs), 0.5));
        // AP = (1/1 + 2/3) / 2.
        assert!(close(map(&pairs), (1.0 + 2.0 / 3.0) / 2.0));
    }

    #[test]
    fn ties_are_misses_and_half_in_auc() {
        let pairs = [(1.0, 1.0), (1.0, 1.0)];
        assert!(close(alignment_rate(&pairs), 0.0));
        assert!(close(auc(&pairs), 0.5));
        // All four tied: every rank is 2.5.
        assert!(close(mean_rank(&pairs), 2.5 / 4.0));
        // Pessimistic tie order: negatives first → positives at 3 and 4: (1/3 + 2/4) / 2.
        assert!(close(map(&pairs), (1.0 / 3.0 + 0.5) / 2.0));
    }

    #[test]
    fn inverted_scores_are_worst() {
        let pairs = [(0.0, 3.0), (1.0, 2.0)];
        let m = Metrics::from_pairs(&pairs);
        assert!(close(m.alignment_rate, 0.0));
        assert!(close(m.auc, 0.0));
        assert!(close(m.mean_rank, 3.5 / 4.0));
    }

    #[test]
    fn empty_input_is_zero() {
        let m = Metrics::from_pairs(&[]);
        assert_eq!(m.pairs, 0);
        assert_eq!(m.auc, 0.0);
    }

    #[test]
    fn metrics_round_trip_through_json() {
        let m = Metrics::from_pairs(&[(1.0, 0.5)]);
        let json = serde_json::to_string(&m).expect("serialize");
        let back: Metrics = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(m, back);
    }
}
