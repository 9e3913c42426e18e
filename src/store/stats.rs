//! Counts for `vital stats`.

use serde::Serialize;

use super::db::params;
use super::decisions::REASON_OVERRULED;
use super::Workspace;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub samples: i64,
    pub demos: i64,
    pub rounds: i64,
    pub unanswered_rounds: i64,
    pub answers: i64,
    /// Decisions in force (latest per slot, undo applied), all reviewers.
    pub judgments: i64,
    /// Every event ever appended, undo events included. (The JSON key keeps its first name so
    /// scripts reading `stats --json` go on working.)
    #[serde(rename = "judgment_events")]
    pub decision_events: i64,
    /// Clinician (✓, ✗) or preference pairs in force.
    pub human_pairs: i64,
    /// The same pairs by how they were made: `same-round`, `same-figure` (verdicts on two
    /// questions of one figure, what one-answer rounds make), `correction`.
    pub human_pairs_by_kind: std::collections::BTreeMap<&'static str, i64>,
    pub model_scores: i64,
    /// Answers scored by the latest fully scored selector run.
    pub scored_answers: i64,
    pub reviewers: i64,
    pub selector_runs: i64,
    pub image_urls: i64,
    pub sources: i64,
    pub schema_version: i64,
    /// Answers corrected by a reviewer (edits in force, all reviewers).
    pub edits: i64,
    /// Decisions in force made while the figure was not on the reviewer's screen.
    pub decided_without_figure: i64,
    /// Reasons given for rejected answers, by reason, most given first (ties by name).
    pub reasons: Vec<ReasonCount>,
}

/// How often one reason was given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: i64,
}

/// The reason an `other: TEXT` reason counts under: the free text is the reviewer's, the
/// category is what a curator tallies.
pub fn reason_category(value: &str) -> &str {
    match value.split_once(':') {
        Some((head, _)) if head.trim() == "other" => "other",
        _ => value.trim(),
    }
}

impl Workspace {
    pub fn stats(&self) -> anyhow::Result<Stats> {
        let count = |sql: &str| -> anyhow::Result<i64> { self.db.query_value(sql, params![]) };
        // What training uses, by the same rule: verdict pairs and corrections.
        let by_kind = self.human_pair_counts()?;
        Ok(Stats {
            samples: count("SELECT count(*) FROM samples")?,
            demos: count("SELECT count(*) FROM samples WHERE is_demo <> 0")?,
            rounds: count("SELECT count(*) FROM rounds")?,
            unanswered_rounds: count(
                "SELECT count(*) FROM rounds r WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.round_id = r.id)",
            )?,
            answers: count("SELECT count(*) FROM answers")?,
            judgments: count("SELECT count(*) FROM current_judgments")?,
            decision_events: count("SELECT count(*) FROM judgments")?,
            human_pairs: by_kind.values().sum(),
            human_pairs_by_kind: by_kind,
            model_scores: count("SELECT count(*) FROM model_scores")?,
            scored_answers: count(
                "SELECT count(*) FROM selector_scores WHERE run_id = (SELECT max(run_id) FROM sample_scores)",
            )?,
            reviewers: count("SELECT count(*) FROM reviewers")?,
            selector_runs: count("SELECT count(*) FROM selector_runs")?,
            image_urls: count("SELECT count(*) FROM image_urls")?,
            sources: count("SELECT count(*) FROM sources")?,
            schema_version: Workspace::schema_version(),
            edits: count("SELECT count(*) FROM current_judgments WHERE kind = 'edit'")?,
            // Through the table: PostgreSQL expanded the view's columns when it was made.
            decided_without_figure: count(
                "SELECT count(*) FROM current_judgments c JOIN judgments j ON j.id = c.id
                 WHERE j.figure_shown = 0",
            )?,
            reasons: self.reason_counts()?,
        })
    }

    /// Reasons in force for rejected answers, counted by category (a reason whose answer the
    /// reviewer has accepted since explains nothing).
    pub fn reason_counts(&self) -> anyhow::Result<Vec<ReasonCount>> {
        let mut by: std::collections::BTreeMap<String, i64> = Default::default();
        self.db.for_each_row(
            &format!(
                "SELECT c.value FROM current_judgments c WHERE c.kind = 'reason' AND c.value IS NOT NULL
                 AND NOT {REASON_OVERRULED}"
            ),
            params![],
            |r| {
                let value: String = r.get(0)?;
                *by.entry(reason_category(&value).to_string()).or_default() += 1;
                Ok(())
            },
        )?;
        let mut out: Vec<ReasonCount> = by
            .into_iter()
            .map(|(reason, count)| ReasonCount { reason, count })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        Ok(out)
    }
}
