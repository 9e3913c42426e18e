//! An answer's selector score as a person reads it: its place among all answers of the latest
//! run ("top 12%"), not a raw value whose scale changes from run to run. Plain data, built once
//! per run from the store's ascending score spread; the raw value stays in the context pane.

/// The spread of one run's answer scores, kept as at most [`ScoreRanks::KEPT`] order statistics
/// so a 210K-sample workspace (some 2M answers) costs a few kilobytes on the UI thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreRanks {
    /// Ascending order statistics at evenly spaced ranks (all scores when there are few).
    kept: Vec<f64>,
    /// How many answers the run scored.
    total: usize,
}

impl ScoreRanks {
    /// Order statistics kept: ranks are exact below this many answers, within 0.1% above.
    pub const KEPT: usize = 1001;

    /// From every answer score of a run, ascending (what `Workspace::selector_score_spread`
    /// returns).
    pub fn from_ascending(scores: &[f64]) -> Self {
        let total = scores.len();
        let kept = if total <= Self::KEPT {
            scores.to_vec()
        } else {
            (0..Self::KEPT)
                .map(|i| scores[i * (total - 1) / (Self::KEPT - 1)])
                .collect()
        };
        Self { kept, total }
    }

    /// Answers the run scored.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The share of answers scoring at least `score`, in whole percent rounded up (the best
    /// answer is "top 1%", never "top 0%"); `None` before any run.
    pub fn top_percent(&self, score: f64) -> Option<u32> {
        let n = self.kept.len();
        if n == 0 {
            return None;
        }
        // Kept values below `score`: the share of answers scoring at least it is what is left.
        let below = self.kept.partition_point(|&k| k < score);
        // Integer shares, rounded up: 6 of 50 is exactly 12%, not 12.000000000000002%.
        let (above, of) = if self.total <= Self::KEPT {
            (n - below, n)
        } else {
            // The kept values sit at ranks i/(n-1) of the run: the share between them.
            ((n - 1).saturating_sub(below), n - 1)
        };
        let percent = (100 * above).div_ceil(of.max(1));
        Some(u32::try_from(percent).unwrap_or(100).clamp(1, 100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_scores_give_exact_ranks_from_the_top() {
        let scores: Vec<f64> = (1..=50).map(f64::from).collect();
        let ranks = ScoreRanks::from_ascending(&scores);
        assert_eq!(ranks.total(), 50);
        assert_eq!(ranks.top_percent(50.0), Some(2), "best of 50: top 2%");
        assert_eq!(
            ranks.top_percent(45.0),
            Some(12),
            "6 of 50 score at least 45"
        );
        assert_eq!(ranks.top_percent(1.0), Some(100));
        assert_eq!(
            ranks.top_percent(99.0),
            Some(1),
            "above all: top 1%, never 0%"
        );
        assert_eq!(ranks.top_percent(-5.0), Some(100));
        assert_eq!(ScoreRanks::default().top_percent(1.0), None, "no run yet");
    }

    #[test]
    fn many_scores_are_summarised_within_a_tenth_of_a_percent() {
        let scores: Vec<f64> = (0..200_000).map(|i| f64::from(i) / 1000.0).collect();
        let ranks = ScoreRanks::from_ascending(&scores);
        assert_eq!(ranks.kept.len(), ScoreRanks::KEPT);
        assert_eq!(ranks.total(), 200_000);
        // 24,000 of 200,000 answers score at least 176.0: top 12%.
        assert_eq!(ranks.top_percent(176.0), Some(12));
        assert_eq!(ranks.top_percent(199.999), Some(1));
        assert_eq!(ranks.top_percent(0.0), Some(100));
        assert_eq!(ranks.top_percent(100.0), Some(50));
    }
}
