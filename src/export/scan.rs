//! One ordered pass over every sample with its rounds, answers and answer scores: the export
//! reads the workspace once, sample by sample, and never loads it whole.

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{params, Connection};

use crate::store::{Resolution, Verdicts};

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

/// Calls `each` with every sample `keep` accepts, in import order. Checks `cancel` as it goes.
pub fn for_each_sample(
    conn: &Connection,
    run: Option<i64>,
    judge: Option<&str>,
    full: bool,
    keep: &dyn Fn(i64) -> bool,
    cancel: &AtomicBool,
    mut each: impl FnMut(&SampleRows) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT s.id, s.ext_id, s.image, s.caption, s.mentions, s.fig_label, s.domains, s.is_demo,
                r.id, r.position, r.question, a.id, a.position, a.text,
                (SELECT score FROM selector_scores WHERE run_id = ?1 AND answer_id = a.id),
                (SELECT avg(m.score) FROM model_scores m WHERE m.answer_id = a.id AND (?2 IS NULL OR m.judge = ?2))
         FROM samples s LEFT JOIN rounds r ON r.sample_id = s.id LEFT JOIN answers a ON a.round_id = r.id
         ORDER BY s.id, r.position, a.position",
    )?;
    let mut rows = stmt.query(params![run, judge])?;
    let mut current = SampleRows {
        key: i64::MIN,
        ..Default::default()
    };
    let mut skipping = i64::MIN;
    let mut seen = 0u64;
    while let Some(row) = rows.next()? {
        let key: i64 = row.get(0)?;
        if key == skipping {
            continue;
        }
        if key != current.key {
            if current.key != i64::MIN {
                each(&current)?;
            }
            current.key = i64::MIN;
            current.rounds.clear();
            seen += 1;
            if seen.is_multiple_of(4096) && cancel.load(Ordering::Relaxed) {
                anyhow::bail!("export cancelled");
            }
            if !keep(key) {
                skipping = key;
                continue;
            }
            current.key = key;
            current.ext_id = row.get(1)?;
            current.image = row.get(2)?;
            if full {
                current.caption = row.get(3)?;
                current.mentions = parse_list(row.get_ref(4)?.as_str()?);
                current.fig_label = row.get(5)?;
                current.domains = parse_list(row.get_ref(6)?.as_str()?);
                current.is_demo = row.get(7)?;
            }
        }
        push_row(&mut current, row)?;
    }
    if current.key != i64::MIN {
        each(&current)?;
    }
    if cancel.load(Ordering::Relaxed) {
        anyhow::bail!("export cancelled");
    }
    Ok(())
}

fn push_row(current: &mut SampleRows, row: &rusqlite::Row<'_>) -> anyhow::Result<()> {
    let Some(round_id) = row.get::<_, Option<i64>>(8)? else {
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
    if let Some(answer_id) = row.get::<_, Option<i64>>(11)? {
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

/// What happens to one round in an export.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RoundChoice<'a> {
    /// Kept with this answer.
    Kept(&'a AnswerRow),
    Unanswered,
    /// Every answer was rejected.
    AllRejected,
    /// `accepted` selection and no answer was accepted.
    NotAccepted,
}

/// The answer a round is exported with: an accepted one (best-scored among several), else the
/// best-scored answer nobody rejected; best-scored means selector score, then judge score, then
/// the first answer.
pub fn choose<'a>(
    round: &'a RoundRows,
    verdicts: &Verdicts,
    accepted_only: bool,
) -> RoundChoice<'a> {
    if round.answers.is_empty() {
        return RoundChoice::Unanswered;
    }
    let status: Vec<Resolution> = round
        .answers
        .iter()
        .map(|a| verdicts.resolution(a.id))
        .collect();
    let accepted: Vec<&AnswerRow> = round
        .answers
        .iter()
        .zip(&status)
        .filter(|(_, s)| **s == Resolution::Accepted)
        .map(|(a, _)| a)
        .collect();
    let candidates = if !accepted.is_empty() {
        accepted
    } else if accepted_only {
        return RoundChoice::NotAccepted;
    } else {
        round
            .answers
            .iter()
            .zip(&status)
            .filter(|(_, s)| **s != Resolution::Rejected)
            .map(|(a, _)| a)
            .collect()
    };
    match best_scored(&candidates) {
        Some(a) => RoundChoice::Kept(a),
        None => RoundChoice::AllRejected,
    }
}

/// Highest selector score if any candidate has one, else highest judge score, else the first.
/// Ties go to the earlier answer.
pub fn best_scored<'a>(candidates: &[&'a AnswerRow]) -> Option<&'a AnswerRow> {
    for score in [|a: &AnswerRow| a.selector, |a: &AnswerRow| a.judge] {
        let mut best: Option<(&AnswerRow, f64)> = None;
        for a in candidates {
            if let Some(s) = score(a).filter(|s| !s.is_nan()) {
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((a, s));
                }
            }
        }
        if let Some((a, _)) = best {
            return Some(a);
        }
    }
    candidates.first().copied()
}
