//! Queries the review screen needs: a compact index of every sample for the queue (filters stay
//! instant at 210K samples), text search, and the scores shown beside answers.

use std::collections::{HashMap, HashSet};

use super::db::{params, Dialect};
use super::Workspace;

/// One queue entry: what filtering and ordering need, nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub key: i64,
    pub ext_id: String,
    pub domains: Vec<String>,
    /// Every answered round has a decision from this reviewer.
    pub decided: bool,
    pub flagged: bool,
    /// Reviewers' decisions in force contradict each other on some answer.
    pub disagreement: bool,
    /// Rounds with at least one answer.
    pub rounds: usize,
}

impl Workspace {
    /// The queue index for `reviewer`, in import order.
    pub fn review_index(&self, reviewer: &str) -> anyhow::Result<Vec<IndexEntry>> {
        // A reviewer not yet in the workspace has decided nothing (id -1 matches no row).
        let reviewer = super::decisions::find_reviewer(&self.db, reviewer)?.unwrap_or(-1);
        let decided = self.id_set(
            "WITH answered AS (
                 SELECT r.id, r.sample_id, count(a.id) AS n FROM rounds r JOIN answers a ON a.round_id = r.id
                 GROUP BY r.id),
             mine AS (
                 SELECT round_id, kind FROM current_judgments
                 WHERE reviewer_id = ?1 AND kind IN ('accept', 'reject', 'prefer', 'tie')),
             verdicts AS (SELECT round_id, count(*) AS v FROM mine WHERE kind IN ('accept', 'reject') GROUP BY round_id),
             preferences AS (SELECT DISTINCT round_id FROM mine WHERE kind IN ('prefer', 'tie'))
             SELECT answered.sample_id FROM answered
             LEFT JOIN verdicts ON verdicts.round_id = answered.id
             LEFT JOIN preferences ON preferences.round_id = answered.id
             GROUP BY answered.sample_id
             HAVING sum(CASE WHEN coalesce(verdicts.v, 0) >= answered.n OR preferences.round_id IS NOT NULL THEN 1 ELSE 0 END) = count(*)",
            reviewer,
        )?;
        let flagged = self.id_set(
            "SELECT sample_id FROM current_judgments WHERE reviewer_id = ?1 AND kind = 'flag' AND value = '1'",
            reviewer,
        )?;
        // Blind review: only a curator sees where reviewers disagree.
        let disagreement: HashSet<i64> = if self.is_curator()? {
            self.disagreement_keys(true)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        let mut out = Vec::new();
        self.db.for_each_row(
            "SELECT s.id, s.ext_id, s.domains,
                    (SELECT count(*) FROM rounds r WHERE r.sample_id = s.id
                       AND EXISTS (SELECT 1 FROM answers a WHERE a.round_id = r.id))
             FROM samples s ORDER BY s.id",
            params![],
            |r| {
                let (key, ext_id, domains, rounds): (i64, String, String, usize) =
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                out.push(IndexEntry {
                    key,
                    ext_id,
                    domains: serde_json::from_str(&domains).unwrap_or_default(),
                    decided: decided.contains(&key),
                    flagged: flagged.contains(&key),
                    disagreement: disagreement.contains(&key),
                    rounds,
                });
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn id_set(&self, sql: &str, reviewer: i64) -> anyhow::Result<HashSet<i64>> {
        let ids = self.db.query_vec(sql, params![reviewer], |r| r.get(0))?;
        Ok(ids.into_iter().collect())
    }

    /// Samples whose caption, mentions, questions or answers contain `text` (case-insensitive
    /// for ASCII), in import order.
    pub fn search(&self, text: &str) -> anyhow::Result<Vec<i64>> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        // SQLite's LIKE ignores ASCII case; PostgreSQL's needs ILIKE for the same.
        let like = match self.db.dialect() {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        self.db.query_vec(
            &format!(
                "SELECT id FROM samples s WHERE s.caption {like} ?1 ESCAPE '\\' OR s.mentions {like} ?1 ESCAPE '\\' OR s.ext_id {like} ?1 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM rounds r WHERE r.sample_id = s.id AND (r.question {like} ?1 ESCAPE '\\'
                        OR EXISTS (SELECT 1 FROM answers a WHERE a.round_id = r.id AND a.text {like} ?1 ESCAPE '\\')))
                 ORDER BY id"
            ),
            params![pattern],
            |r| r.get(0),
        )
    }

    /// Every reviewer's verdict in force on the answers of one sample: (answer id, reviewer,
    /// accepted). Final decisions come under reviewer `final`.
    pub fn sample_verdicts(&self, sample_key: i64) -> anyhow::Result<Vec<(i64, String, bool)>> {
        // A preference counts as ✓ for the preferred answer and ✗ for the others of its round,
        // as the agreement figures count it.
        self.db.query_vec(
            "SELECT c.answer_id, rv.name, c.kind = 'accept' FROM current_judgments c
               JOIN reviewers rv ON rv.id = c.reviewer_id
              WHERE c.sample_id = ?1 AND c.kind IN ('accept', 'reject')
             UNION ALL
             SELECT a.id, rv.name, CAST(a.id AS TEXT) = c.value FROM current_judgments c
               JOIN reviewers rv ON rv.id = c.reviewer_id JOIN answers a ON a.round_id = c.round_id
              WHERE c.sample_id = ?1 AND c.kind = 'prefer'
             ORDER BY 2",
            params![sample_key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Where a figure's image can be downloaded from: the URL list entry whose key is the
    /// sample id, the image reference or its file stem.
    pub fn image_url(
        &self,
        sample_id: &str,
        image: Option<&str>,
    ) -> anyhow::Result<Option<(String, String, Option<String>)>> {
        let stem = image
            .and_then(|i| std::path::Path::new(i).file_stem())
            .map(|s| s.to_string_lossy().into_owned());
        for key in [Some(sample_id.to_string()), image.map(str::to_string), stem]
            .into_iter()
            .flatten()
        {
            if let Some(row) = self.db.query_opt(
                "SELECT key, url, member FROM image_urls WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )? {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// Mean judge score per answer of one sample.
    pub fn judge_scores(&self, sample_key: i64) -> anyhow::Result<HashMap<i64, f64>> {
        let scores = self.db.query_vec(
            "SELECT m.answer_id, avg(m.score) FROM model_scores m JOIN answers a ON a.id = m.answer_id
             JOIN rounds r ON r.id = a.round_id WHERE r.sample_id = ?1 GROUP BY m.answer_id",
            params![sample_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(scores.into_iter().collect())
    }

    /// The latest selector run's score per answer of one sample.
    pub fn selector_scores(&self, sample_key: i64) -> anyhow::Result<HashMap<i64, f64>> {
        let scores = self.db.query_vec(
            "SELECT s.answer_id, s.score FROM selector_scores s JOIN answers a ON a.id = s.answer_id
             JOIN rounds r ON r.id = a.round_id
             WHERE r.sample_id = ?1 AND s.run_id = (SELECT max(run_id) FROM sample_scores)",
            params![sample_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(scores.into_iter().collect())
    }
}
