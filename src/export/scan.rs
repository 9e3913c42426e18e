//! One ordered pass over every sample with its rounds, answers and answer scores (read by the
//! store, sample by sample, never whole), and which answer each round is exported with.

use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::store::{AnswerRow, RoundRows, SampleRows};
use crate::store::{Resolution, Verdicts, Workspace};

/// Calls `each` with every sample `keep` accepts, in import order. Checks `cancel` as it goes.
pub fn for_each_sample(
    ws: &Workspace,
    run: Option<i64>,
    judge: Option<&str>,
    full: bool,
    keep: &dyn Fn(i64) -> bool,
    cancel: &AtomicBool,
    mut each: impl FnMut(&SampleRows) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut seen = 0u64;
    ws.for_each_export_sample(
        run,
        judge,
        full,
        &mut |key| {
            seen += 1;
            if seen.is_multiple_of(4096) && cancel.load(Ordering::Relaxed) {
                anyhow::bail!("export cancelled");
            }
            Ok(keep(key))
        },
        &mut each,
    )?;
    if cancel.load(Ordering::Relaxed) {
        anyhow::bail!("export cancelled");
    }
    Ok(())
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
