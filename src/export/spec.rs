//! The raw choices of an export: which samples (`--select`), which shape (`--format`), whose
//! scores rank them (`--by`), which pairs go into DPO files (`--pairs-from`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Which samples an export keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// Every sample.
    All,
    /// The best `p` percent of the ranked samples (0 < p ≤ 100), `round(p·N)` of them.
    TopPercent(f64),
    /// The best `floor(p·N)` ranked samples (`top:40%:floor`): the method's cut, for exact
    /// reproduction.
    TopPercentFloor(f64),
    /// The best `n` ranked samples.
    TopN(usize),
    /// Ranked samples scoring at least `x`.
    Threshold(f64),
    /// Samples with at least one clinician decision in force (verdict, preference, tie, rating).
    Reviewed,
    /// Samples with at least one accepted answer; rounds without one are left out.
    Accepted,
}

impl Selection {
    /// The selection ranks samples by score (and so needs scores).
    pub fn needs_ranking(self) -> bool {
        matches!(
            self,
            Selection::TopPercent(_)
                | Selection::TopPercentFloor(_)
                | Selection::TopN(_)
                | Selection::Threshold(_)
        )
    }
}

impl FromStr for Selection {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || {
            format!("`{text}` is not a selection: use all, top:40%, top:N, threshold:X, reviewed or accepted")
        };
        Ok(match text {
            "all" => Selection::All,
            "reviewed" => Selection::Reviewed,
            "accepted" => Selection::Accepted,
            _ => {
                if let Some(rest) = text.strip_prefix("top:") {
                    if let Some(p) = rest.strip_suffix("%:floor") {
                        let p: f64 = p.trim().parse().map_err(|_| bad())?;
                        if !(p > 0.0 && p <= 100.0) {
                            return Err(format!("top:{p}%:floor is out of range (0 < p ≤ 100)"));
                        }
                        Selection::TopPercentFloor(p)
                    } else if let Some(p) = rest.strip_suffix('%') {
                        let p: f64 = p.trim().parse().map_err(|_| bad())?;
                        if !(p > 0.0 && p <= 100.0) {
                            return Err(format!("top:{p}% is out of range (0 < p ≤ 100)"));
                        }
                        Selection::TopPercent(p)
                    } else {
                        let n: usize = rest.trim().parse().map_err(|_| bad())?;
                        Selection::TopN(n)
                    }
                } else if let Some(rest) = text.strip_prefix("threshold:") {
                    let x: f64 = rest.trim().parse().map_err(|_| bad())?;
                    if !x.is_finite() {
                        return Err(bad());
                    }
                    Selection::Threshold(x)
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => write!(f, "all"),
            Selection::TopPercent(p) => write!(f, "top:{p}%"),
            Selection::TopPercentFloor(p) => write!(f, "top:{p}%:floor"),
            Selection::TopN(n) => write!(f, "top:{n}"),
            Selection::Threshold(x) => write!(f, "threshold:{x}"),
            Selection::Reviewed => write!(f, "reviewed"),
            Selection::Accepted => write!(f, "accepted"),
        }
    }
}

impl Serialize for Selection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The shape of the output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// LLaVA training JSON: `[{id, image, conversations}]`, one answer per question.
    Llava,
    /// Preference pairs, JSON Lines: `{prompt, chosen, rejected, image, id, source}`.
    Dpo,
    /// Clinician-approved samples in the demonstration shape (`clinician_demos.json`).
    Demos,
    /// Clinician pairs, JSON Lines: `{img, fig_caption, inline_mention, question, answer_positive, answer_negative}`.
    Pairs,
    /// Per-answer scores, JSON Lines: `{sample_id, round, answer, score, judge, source}`.
    Scores,
    /// Reviewers' corrected answers, JSON Lines:
    /// `{id, round, question, original, edited, reviewer, reasons, time}` (re-importable).
    Edits,
    /// Reviewers' ✓/✗ verdicts in force, JSON Lines:
    /// `{sample_id, round, answer, verdict, reviewer, time}` (re-importable).
    Verdicts,
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExportFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        clap::ValueEnum::from_str(s.trim(), true).map_err(|_| {
            anyhow::anyhow!(
                "unknown export format `{s}`: expected llava, dpo, demos, pairs, scores or edits"
            )
        })
    }
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Llava => "llava",
            ExportFormat::Dpo => "dpo",
            ExportFormat::Demos => "demos",
            ExportFormat::Pairs => "pairs",
            ExportFormat::Scores => "scores",
            ExportFormat::Edits => "edits",
            ExportFormat::Verdicts => "verdicts",
        }
    }
}

/// Whose scores rank samples (and which scores a `scores` export writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreSource {
    /// The selector's sample scores (latest run, or --run).
    #[default]
    Selector,
    /// Mean over rounds of the round's best judge score.
    Judge,
    /// Share of the sample's decided answers that clinicians accepted.
    Human,
}

impl ScoreSource {
    pub fn name(self) -> &'static str {
        match self {
            ScoreSource::Selector => "selector",
            ScoreSource::Judge => "judge",
            ScoreSource::Human => "human",
        }
    }
}

/// Where DPO pairs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PairSource {
    /// Clinicians' ✓/✗ (and preferences) in force, conflicts resolved.
    Human,
    /// The round's best and worst judge-scored answers (rounds without a clinician pair).
    Judge,
    /// The round's best and worst selector-scored answers (rounds without a clinician pair).
    Selector,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse_and_print_back() {
        for text in [
            "all",
            "top:40%",
            "top:12",
            "threshold:0.5",
            "reviewed",
            "accepted",
        ] {
            let s: Selection = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        assert_eq!("top:40%".parse(), Ok(Selection::TopPercent(40.0)));
        assert_eq!(
            "top:40%:floor".parse(),
            Ok(Selection::TopPercentFloor(40.0))
        );
        assert_eq!(
            Selection::TopPercentFloor(12.5).to_string(),
            "top:12.5%:floor"
        );
        assert!("top:0%:floor".parse::<Selection>().is_err());
        assert_eq!("top:7".parse(), Ok(Selection::TopN(7)));
        assert!("top:0%".parse::<Selection>().is_err());
        assert!("top:150%".parse::<Selection>().is_err());
        assert!("top:x".parse::<Selection>().is_err());
        assert!("best".parse::<Selection>().unwrap_err().contains("top:40%"));
        assert!("threshold:nan".parse::<Selection>().is_err());
    }
}
