//! What `vital export` reads: a consistent snapshot, the scores that rank samples, and one
//! ordered, streaming pass over every sample with its rounds, answers and answer scores (the
//! export never loads the workspace whole: 210K samples go through one prepared statement).

use std::collections::{HashMap, HashSet};

use super::db::{params, Row, Tx, Value};
use super::{Verdicts, Workspace, NOW};

/// A read transaction: everything read while it is open sees one snapshot of the workspace,
/// while reviewers keep writing. Ends (without writing anything) at [`ReadSnapshot::finish`]
/// or when dropped.
pub struct ReadSnapshot<'w> {
    tx: Tx<'w>,
}

impl ReadSnapshot<'_> {
    pub fn finish(self) -> anyhow::Result<()> {
        self.tx.rollback()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerRow {
    pub id: i64,
    /// 0-based.
    pub position: i64,
    pub text: String,
    /// The chosen selector run's score.
    pub selector: Option<f64>,
    /// The mean judge score (or the named judge's score).
    pub judge: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct RoundRows {
    pub id: i64,
    /// 0-based.
    pub position: i64,
    pub question: String,
    pub answers: Vec<AnswerRow>,
}

/// A sample as the export sees it. Figure fields beyond id and image are only read when `full`.
#[derive(Debug, Clone, Default)]
pub struct SampleRows {
    pub key: i64,
    pub ext_id: String,
    pub image: Option<String>,
    pub caption: String,
    pub mentions: Vec<String>,
    pub fig_label: Option<String>,
    pub domains: Vec<String>,
    pub is_demo: bool,
    pub rounds: Vec<RoundRows>,
}

/// Whose answer scores [`Workspace::for_each_answer_score`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnswerScoreSource<'a> {
    /// Each judge's own score (only this judge's when named), ordered by judge within an answer.
    Judge(Option<&'a str>),
    /// The run's score (none when there is no run).
    SelectorRun(Option<i64>),
    /// Every answer, without a score: clinicians' verdicts are resolved by the caller.
    Clinicians,
}

/// One answer score, as a `scores` export writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerScoreLine {
    pub sample_key: i64,
    pub sample_id: String,
    /// 0-based.
    pub round_position: i64,
    /// 0-based.
    pub answer_position: i64,
    pub answer_id: i64,
    /// None for [`AnswerScoreSource::Clinicians`].
    pub score: Option<f64>,
    /// The judge's name, `selector-run-N`, or `clinicians`.
    pub judge: String,
}

impl Workspace {
    /// Opens a read snapshot (see [`ReadSnapshot`]).
    pub fn read_snapshot(&self) -> anyhow::Result<ReadSnapshot<'_>> {
        Ok(ReadSnapshot {
            tx: self.db.begin()?,
        })
    }

    /// Number of samples in the workspace.
    pub fn sample_count(&self) -> anyhow::Result<usize> {
        self.db
            .query_value("SELECT count(*) FROM samples", params![])
    }

    /// The verdicts in force over all reviewers.
    pub fn verdicts(&self) -> anyhow::Result<Verdicts> {
        Verdicts::load(&self.db)
    }

    /// The verdicts in force, without those made while the figure was not on screen.
    pub fn verdicts_with_figure(&self) -> anyhow::Result<Verdicts> {
        Verdicts::load_where(&self.db, true)
    }

    /// Whether selector run `id` exists (scored or not).
    pub fn selector_run_exists(&self, id: i64) -> anyhow::Result<bool> {
        Ok(self
            .db
            .query_opt(
                "SELECT id FROM selector_runs WHERE id = ?1",
                params![id],
                |r| r.get::<i64>(0),
            )?
            .is_some())
    }

    /// Run `run`'s score per sample key.
    pub fn run_sample_scores(&self, run: i64) -> anyhow::Result<HashMap<i64, f64>> {
        let scores = self.db.query_vec(
            "SELECT sample_id, score FROM sample_scores WHERE run_id = ?1",
            params![run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(scores.into_iter().collect())
    }

    /// Judge score per sample key: per answer the mean over judges (or `judge`'s score), per
    /// round the best answer, per sample the mean over scored rounds.
    pub fn judge_sample_scores(&self, judge: Option<&str>) -> anyhow::Result<HashMap<i64, f64>> {
        let scores = self.db.query_vec(
            "WITH per_answer AS (
                 SELECT answer_id, avg(score) AS s FROM model_scores
                 WHERE CAST(?1 AS TEXT) IS NULL OR judge = ?1 GROUP BY answer_id),
             per_round AS (
                 SELECT a.round_id, max(p.s) AS best FROM per_answer p JOIN answers a ON a.id = p.answer_id
                 GROUP BY a.round_id)
             SELECT r.sample_id, avg(pr.best) FROM per_round pr JOIN rounds r ON r.id = pr.round_id
             GROUP BY r.sample_id",
            params![judge],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(scores.into_iter().collect())
    }

    /// Samples with a reviewer's decision in force on them (accept, reject, prefer, tie, rate).
    pub fn reviewed_sample_keys(&self) -> anyhow::Result<HashSet<i64>> {
        let keys = self.db.query_vec(
            "SELECT DISTINCT c.sample_id FROM current_judgments c
             WHERE c.kind IN ('accept', 'reject', 'prefer', 'tie', 'rate')",
            params![],
            |r| r.get(0),
        )?;
        Ok(keys.into_iter().collect())
    }

    /// Number of answer scores run `run` has.
    pub fn selector_answer_score_count(&self, run: i64) -> anyhow::Result<usize> {
        self.db.query_value(
            "SELECT count(*) FROM selector_scores WHERE run_id = ?1",
            params![run],
        )
    }

    /// Number of judge scores (by `judge` when named).
    pub fn judge_score_count(&self, judge: Option<&str>) -> anyhow::Result<usize> {
        self.db.query_value(
            "SELECT count(*) FROM model_scores WHERE CAST(?1 AS TEXT) IS NULL OR judge = ?1",
            params![judge],
        )
    }

    /// The latest `demo` decision in force per sample, across reviewers: true = marked, false =
    /// unmarked (which overrides an imported demonstration flag).
    pub fn demo_marks(&self) -> anyhow::Result<HashMap<i64, bool>> {
        let mut out = HashMap::new();
        self.db.for_each_row(
            "SELECT sample_id, value FROM current_judgments WHERE kind = 'demo' ORDER BY id",
            params![],
            |row| {
                let value: Option<String> = row.get(1)?;
                out.insert(row.get(0)?, value.as_deref() == Some("1"));
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The database's clock now, as the RFC 3339 UTC timestamp stored with every record.
    pub fn db_now(&self) -> anyhow::Result<String> {
        self.db.query_value(&format!("SELECT {NOW}"), params![])
    }

    /// Every sample in import order with its rounds and answers, each answer with run `run`'s
    /// score and the mean judge score (or `judge`'s). `keep(key)` is asked once per sample,
    /// before its rows are read; `each` gets the samples kept. One statement, one pass.
    pub fn for_each_export_sample(
        &self,
        run: Option<i64>,
        judge: Option<&str>,
        full: bool,
        keep: &mut dyn FnMut(i64) -> anyhow::Result<bool>,
        each: &mut dyn FnMut(&SampleRows) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut current = SampleRows {
            key: i64::MIN,
            ..Default::default()
        };
        let mut skipping = i64::MIN;
        self.db.stream_rows(
            "SELECT s.id, s.ext_id, s.image, s.caption, s.mentions, s.fig_label, s.domains, s.is_demo,
                    r.id, r.position, r.question, a.id, a.position, a.text,
                    (SELECT score FROM selector_scores WHERE run_id = ?1 AND answer_id = a.id),
                    (SELECT avg(m.score) FROM model_scores m WHERE m.answer_id = a.id AND (CAST(?2 AS TEXT) IS NULL OR m.judge = ?2))
             FROM samples s LEFT JOIN rounds r ON r.sample_id = s.id LEFT JOIN answers a ON a.round_id = r.id
             ORDER BY s.id, r.position NULLS FIRST, a.position NULLS FIRST",
            params![run, judge],
            |row| {
            let key: i64 = row.get(0)?;
            if key == skipping {
                return Ok(());
            }
            if key != current.key {
                if current.key != i64::MIN {
                    each(&current)?;
                }
                current.key = i64::MIN;
                current.rounds.clear();
                if !keep(key)? {
                    skipping = key;
                    return Ok(());
                }
                current.key = key;
                current.ext_id = row.get(1)?;
                current.image = row.get(2)?;
                if full {
                    current.caption = row.get(3)?;
                    current.mentions = parse_list(&row.get::<String>(4)?);
                    current.fig_label = row.get(5)?;
                    current.domains = parse_list(&row.get::<String>(6)?);
                    current.is_demo = row.get(7)?;
                }
            }
            push_row(&mut current, row)
        })?;
        if current.key != i64::MIN {
            each(&current)?;
        }
        Ok(())
    }

    /// Every answer score from `source`, ordered by sample, round, answer (and judge). Rows of
    /// samples `keep` refuses are skipped before they are decoded.
    pub fn for_each_answer_score(
        &self,
        source: AnswerScoreSource<'_>,
        keep: &dyn Fn(i64) -> bool,
        each: &mut dyn FnMut(AnswerScoreLine) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // The one parameter: the judge's name or the run id (NULL for all judges / no run).
        let (sql, arg) = match source {
            AnswerScoreSource::Judge(judge) => (
                "SELECT s.id, s.ext_id, r.position, a.position, m.score, m.judge, a.id
                 FROM model_scores m JOIN answers a ON a.id = m.answer_id JOIN rounds r ON r.id = a.round_id
                 JOIN samples s ON s.id = r.sample_id WHERE CAST(?1 AS TEXT) IS NULL OR m.judge = ?1
                 ORDER BY s.id, r.position, a.position, m.judge",
                Some(judge.map_or(Value::Null, Value::Text)),
            ),
            AnswerScoreSource::SelectorRun(run) => (
                "SELECT s.id, s.ext_id, r.position, a.position, x.score, 'selector-run-' || x.run_id, a.id
                 FROM selector_scores x JOIN answers a ON a.id = x.answer_id JOIN rounds r ON r.id = a.round_id
                 JOIN samples s ON s.id = r.sample_id WHERE x.run_id = ?1
                 ORDER BY s.id, r.position, a.position",
                Some(run.map_or(Value::Null, Value::Int)),
            ),
            AnswerScoreSource::Clinicians => (
                "SELECT s.id, s.ext_id, r.position, a.position, NULL, 'clinicians', a.id
                 FROM answers a JOIN rounds r ON r.id = a.round_id JOIN samples s ON s.id = r.sample_id
                 ORDER BY s.id, r.position, a.position",
                None,
            ),
        };
        let arg = arg.as_ref().map(|a| vec![a as &dyn super::db::Param]);
        self.db
            .stream_rows(sql, arg.as_deref().unwrap_or(&[]), |row| {
                let sample_key: i64 = row.get(0)?;
                if !keep(sample_key) {
                    return Ok(());
                }
                each(AnswerScoreLine {
                    sample_key,
                    sample_id: row.get(1)?,
                    round_position: row.get(2)?,
                    answer_position: row.get(3)?,
                    score: row.get(4)?,
                    judge: row.get(5)?,
                    answer_id: row.get(6)?,
                })
            })
    }
}

fn push_row(current: &mut SampleRows, row: &Row<'_>) -> anyhow::Result<()> {
    let Some(round_id) = row.get::<Option<i64>>(8)? else {
        return Ok(());
    };
    if current.rounds.last().is_none_or(|r| r.id != round_id) {
        current.rounds.push(RoundRows {
            id: round_id,
            position: row.get(9)?,
            question: row.get(10)?,
            answers: Vec::new(),
        });
    }
    if let Some(answer_id) = row.get::<Option<i64>>(11)? {
        let round = current.rounds.last_mut().expect("pushed above");
        round.answers.push(AnswerRow {
            id: answer_id,
            position: row.get(12)?,
            text: row.get(13)?,
            selector: row.get(14)?,
            judge: row.get(15)?,
        });
    }
    Ok(())
}

fn parse_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}
