//! What the selector's training, scoring and evaluation read and write: answers with their
//! question and figure, preference pairs from clinicians and judges, mean judge scores, and the
//! record of a selector run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::agreement::{Verdicts, FINAL_REVIEWER};
use super::db::{params, Row};
use super::Workspace;

/// (reviewer, round) → (accepted answers, rejected answers).
type RoundVerdicts = BTreeMap<(i64, i64), (Vec<i64>, Vec<i64>)>;

/// One reviewer's verdicts on one figure: (reviewer, sample) → (round, answer, accepted).
type FigureVerdicts = BTreeMap<(i64, i64), Vec<(i64, i64, bool)>>;

/// How a clinician pair was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HumanPairKind {
    /// A ✓ and a ✗ answer to the same question (or a preference).
    SameRound,
    /// A ✓ and a ✗ answer to two questions of the same figure, one of them with no answer of the
    /// other verdict in its own round (one-answer rounds: the public releases).
    SameFigure,
    /// A reviewer's corrected text over the answer it corrects.
    Correction,
}

impl HumanPairKind {
    pub const ALL: [HumanPairKind; 3] = [
        HumanPairKind::SameRound,
        HumanPairKind::SameFigure,
        HumanPairKind::Correction,
    ];

    /// The name reports and `stats --json` use.
    pub fn name(self) -> &'static str {
        match self {
            HumanPairKind::SameRound => "same-round",
            HumanPairKind::SameFigure => "same-figure",
            HumanPairKind::Correction => "correction",
        }
    }
}

/// Each reviewer's verdicts per round and per figure (only `only`'s when given), the final
/// reviewer excluded.
fn reviewer_rounds(verdicts: &Verdicts, only: Option<i64>) -> (RoundVerdicts, FigureVerdicts) {
    let mut rounds = RoundVerdicts::new();
    let mut figures = FigureVerdicts::new();
    for (&answer, votes) in &verdicts.answers {
        for vote in votes
            .votes
            .iter()
            .filter(|v| only.is_none_or(|o| o == v.reviewer))
        {
            let entry = rounds.entry((vote.reviewer, votes.round_id)).or_default();
            if vote.accepted {
                entry.0.push(answer);
            } else {
                entry.1.push(answer);
            }
            figures
                .entry((vote.reviewer, votes.sample_key))
                .or_default()
                .push((votes.round_id, answer, vote.accepted));
        }
    }
    (rounds, figures)
}

/// The final decisions in force per round and per figure (under reviewer 0).
fn final_rounds(verdicts: &Verdicts) -> (RoundVerdicts, FigureVerdicts) {
    let mut rounds = RoundVerdicts::new();
    let mut figures = FigureVerdicts::new();
    for (&answer, votes) in &verdicts.answers {
        if let Some(f) = &votes.final_decision {
            let entry = rounds.entry((0, votes.round_id)).or_default();
            if f.accepted {
                entry.0.push(answer);
            } else {
                entry.1.push(answer);
            }
            figures.entry((0, votes.sample_key)).or_default().push((
                votes.round_id,
                answer,
                f.accepted,
            ));
        }
    }
    (rounds, figures)
}

/// Accepted × rejected within each (reviewer, round).
fn pairs_of(rounds: &RoundVerdicts) -> BTreeSet<(i64, i64)> {
    rounds
        .values()
        .flat_map(|(accepted, rejected)| {
            accepted
                .iter()
                .flat_map(move |&w| rejected.iter().map(move |&l| (w, l)))
        })
        .collect()
}

/// Accepted × rejected across two rounds of the same figure by the same reviewer, where at least
/// one of the two answers has no answer of the other verdict in its own round: an answer its
/// round already pairs trains there, and one a one-answer round leaves alone pairs with the
/// figure's other questions. (Fully decided two-answer rounds thus make no pair across rounds.)
fn figure_pairs_of(rounds: &RoundVerdicts, figures: &FigureVerdicts) -> BTreeSet<(i64, i64)> {
    let mut out = BTreeSet::new();
    for (&(reviewer, _), verdicts) in figures {
        let alone = |round: i64, accepted: bool| {
            rounds.get(&(reviewer, round)).is_none_or(|(a, r)| {
                if accepted {
                    r.is_empty()
                } else {
                    a.is_empty()
                }
            })
        };
        for &(w_round, w, _) in verdicts.iter().filter(|v| v.2) {
            for &(l_round, l, _) in verdicts.iter().filter(|v| !v.2) {
                if w_round != l_round && (alone(w_round, true) || alone(l_round, false)) {
                    out.insert((w, l));
                }
            }
        }
    }
    out
}

/// Every pair of `verdicts` (same round, then same figure) with its kind.
fn kinded_pairs(
    (rounds, figures): (RoundVerdicts, FigureVerdicts),
) -> BTreeMap<(i64, i64), HumanPairKind> {
    let mut out: BTreeMap<(i64, i64), HumanPairKind> = figure_pairs_of(&rounds, &figures)
        .into_iter()
        .map(|p| (p, HumanPairKind::SameFigure))
        .collect();
    // Same-round and same-figure pairs never meet (two rounds against one), but should a pair be
    // both, its round names it.
    out.extend(
        pairs_of(&rounds)
            .into_iter()
            .map(|p| (p, HumanPairKind::SameRound)),
    );
    out
}

/// One answer with its question and figure, as stored (text not yet cleaned for display).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    pub answer_id: i64,
    pub text: String,
    /// 0-based.
    pub round_position: usize,
    pub question: String,
    pub sample_key: i64,
    pub ext_id: String,
    /// The image reference as imported.
    pub image: Option<String>,
    pub caption: String,
    pub mentions: Vec<String>,
}

/// A selector run's stored record.
#[derive(Debug, Clone, PartialEq)]
pub enum RunRecord {
    /// No such run.
    Missing,
    /// The run exists but did not finish training.
    Unfinished,
    /// The run's report (JSON), written when training finished.
    Finished(String),
}

const ANSWER_SELECT: &str =
    "SELECT a.id, a.text, r.position, r.question, s.id, s.ext_id, s.image, s.caption, s.mentions
     FROM answers a JOIN rounds r ON r.id = a.round_id JOIN samples s ON s.id = r.sample_id";

fn read_answer(row: &Row<'_>) -> anyhow::Result<AnswerRecord> {
    let mentions: String = row.get(8)?;
    Ok(AnswerRecord {
        answer_id: row.get(0)?,
        text: row.get(1)?,
        round_position: row.get(2)?,
        question: row.get(3)?,
        sample_key: row.get(4)?,
        ext_id: row.get(5)?,
        image: row.get(6)?,
        caption: row.get(7)?,
        mentions: serde_json::from_str(&mentions).unwrap_or_default(),
    })
}

/// A reviewer's corrected answer as an answer of its own: the edit event's text in the place of
/// the answer it corrects, under the id [`edited_answer_id`] gives it.
const EDITED_ANSWER_SELECT: &str =
    "SELECT -j.id, j.value, r.position, r.question, s.id, s.ext_id, s.image, s.caption, s.mentions
     FROM judgments j JOIN answers a ON a.id = j.answer_id JOIN rounds r ON r.id = a.round_id
     JOIN samples s ON s.id = r.sample_id";

/// The answer id a corrected answer trains under: the edit event's id, negated. Stored answers'
/// ids are positive, so the two never meet; a corrected answer trains but is never scored (it
/// is not one of the generator's answers).
pub fn edited_answer_id(edit_event_id: i64) -> i64 {
    -edit_event_id
}

impl Workspace {
    /// Answer `answer_id` with its question and figure (an error if there is no such answer);
    /// a negative id is a corrected answer ([`edited_answer_id`]), read from its edit event
    /// (events are never deleted, so a run that paired it finds it even if it was undone since).
    pub fn answer_record(&self, answer_id: i64) -> anyhow::Result<AnswerRecord> {
        if answer_id < 0 {
            return self.db.query_row(
                &format!("{EDITED_ANSWER_SELECT} WHERE j.id = ?1 AND j.kind = 'edit'"),
                params![-answer_id],
                read_answer,
            );
        }
        self.db.query_row(
            &format!("{ANSWER_SELECT} WHERE a.id = ?1"),
            params![answer_id],
            read_answer,
        )
    }

    /// Clinician pairs from corrections: (corrected answer, the answer it corrects) for each edit
    /// in force, the corrected answer under [`edited_answer_id`]. The same correction of the same
    /// answer by several reviewers counts once (the earliest event names it).
    pub fn edit_pairs(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        // `edits` lists an answer's events in recording order: the first of equal texts stays.
        let mut seen: HashSet<(i64, String)> = HashSet::new();
        let pairs = self
            .edits()?
            .into_iter()
            .filter(|e| seen.insert((e.answer_id, e.edited.clone())))
            .map(|e| (edited_answer_id(e.event_id), e.answer_id))
            .collect();
        Ok(pairs)
    }

    /// Every answer, in sample, round, answer order, one row at a time (1.7M answers at 210K
    /// samples are never held at once).
    pub fn for_each_answer_record(
        &self,
        each: &mut dyn FnMut(AnswerRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.db.stream_rows(
            &format!("{ANSWER_SELECT} ORDER BY s.id, r.position, a.position"),
            params![],
            |row| each(read_answer(row)?),
        )
    }

    /// Every distinct (winner, loser) answer pair some reviewer's decisions in force make,
    /// ordered, with how it was made. One rule with the agreement figures ([`Verdicts`]): a
    /// reviewer's verdict on an answer is the later of their ✓/✗ on it and their preference on
    /// its round (a preference accepts the preferred answer and rejects the others); each
    /// accepted answer beats each rejected answer of the same round by the same reviewer, and of
    /// another round of the same figure when one of the two has no partner in its own round
    /// ([`HumanPairKind::SameFigure`]). The final reviewer counts too.
    pub fn human_pair_votes(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        Ok(self.human_pair_kinds()?.into_keys().collect())
    }

    fn human_pair_kinds(&self) -> anyhow::Result<BTreeMap<(i64, i64), HumanPairKind>> {
        let verdicts = Verdicts::load(&self.db)?;
        let mut pairs = kinded_pairs(final_rounds(&verdicts));
        // A reviewer's pair of the same kind as a final decision's, or of a closer one, names it.
        for (pair, kind) in kinded_pairs(reviewer_rounds(&verdicts, None)) {
            let entry = pairs.entry(pair).or_insert(kind);
            *entry = (*entry).min(kind);
        }
        Ok(pairs)
    }

    /// The distinct (winner, loser) pairs reviewer `name`'s decisions in force make (same rule).
    pub fn human_pairs_by(&self, name: &str) -> anyhow::Result<Vec<(i64, i64)>> {
        let verdicts = Verdicts::load(&self.db)?;
        if name == FINAL_REVIEWER {
            return Ok(kinded_pairs(final_rounds(&verdicts)).into_keys().collect());
        }
        let Some(&id) = verdicts
            .reviewers
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id)
        else {
            return Ok(Vec::new());
        };
        Ok(kinded_pairs(reviewer_rounds(&verdicts, Some(id)))
            .into_keys()
            .collect())
    }

    /// The clinician pairs training uses (and `stats` counts): every pair some reviewer's
    /// decisions make, the same (winner, loser) from several reviewers once; when reviewers
    /// contradict each other (A > B and B > A) neither is used unless final decisions make one.
    pub fn human_training_pairs(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        Ok(self
            .human_training_pair_kinds()?
            .into_iter()
            .map(|(pair, _)| pair)
            .collect())
    }

    /// [`Workspace::human_training_pairs`], each with how it was made.
    pub fn human_training_pair_kinds(&self) -> anyhow::Result<Vec<((i64, i64), HumanPairKind)>> {
        let all = self.human_pair_kinds()?;
        let finals: BTreeSet<(i64, i64)> =
            self.human_pairs_by(FINAL_REVIEWER)?.into_iter().collect();
        Ok(all
            .iter()
            .filter(|&(&(w, l), _)| {
                // A contradicted pair survives only if a final decision made it; its reverse never.
                let contradicted = all.contains_key(&(l, w));
                !contradicted || (finals.contains(&(w, l)) && !finals.contains(&(l, w)))
            })
            .map(|(&pair, &kind)| (pair, kind))
            .collect())
    }

    /// The clinician pairs training uses, counted by kind (corrections included), every kind
    /// named even at 0.
    pub fn human_pair_counts(&self) -> anyhow::Result<BTreeMap<&'static str, i64>> {
        let mut counts: BTreeMap<&'static str, i64> =
            HumanPairKind::ALL.iter().map(|k| (k.name(), 0)).collect();
        for (_, kind) in self.human_training_pair_kinds()? {
            *counts.entry(kind.name()).or_default() += 1;
        }
        *counts.entry(HumanPairKind::Correction.name()).or_default() +=
            self.edit_pairs()?.len() as i64;
        Ok(counts)
    }

    /// (winner, loser) pairs of answers to the same question whose mean judge scores differ by
    /// at least `min_gap` (at least 1e-9), ordered.
    pub fn judge_score_pairs(&self, min_gap: f64) -> anyhow::Result<Vec<(i64, i64)>> {
        self.db.query_vec(
            "WITH scored AS (
                 SELECT a.id, a.round_id, avg(m.score) AS score FROM answers a JOIN model_scores m ON m.answer_id = a.id
                 GROUP BY a.id)
             SELECT w.id, l.id FROM scored w JOIN scored l ON w.round_id = l.round_id AND w.score - l.score >= ?1
             ORDER BY w.id, l.id",
            params![min_gap.max(1e-9)],
            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )
    }

    /// Every first-round answer that has a judge score: (answer id, mean judge score), in
    /// answer order. The method groups samples by this score to pair them across levels.
    pub fn first_round_judge_scores(&self) -> anyhow::Result<Vec<(i64, f64)>> {
        self.db.query_vec(
            "SELECT a.id, avg(m.score) FROM answers a JOIN rounds r ON r.id = a.round_id
             JOIN model_scores m ON m.answer_id = a.id
             WHERE r.position = 0 GROUP BY a.id ORDER BY a.id",
            params![],
            |r| Ok((r.get::<i64>(0)?, r.get::<f64>(1)?)),
        )
    }

    /// The mean judge score of each answer in `ids` that has one.
    pub fn mean_judge_scores_of(&self, ids: &HashSet<i64>) -> anyhow::Result<HashMap<i64, f64>> {
        let mut out = HashMap::new();
        self.db.for_each_row(
            "SELECT answer_id, avg(score) FROM model_scores GROUP BY answer_id",
            params![],
            |r| {
                let id: i64 = r.get(0)?;
                if ids.contains(&id) {
                    out.insert(id, r.get(1)?);
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Records that run `run_id` finished training: its report (JSON) and checkpoint path.
    pub fn finish_selector_run(
        &self,
        run_id: i64,
        report_json: &str,
        checkpoint: &str,
    ) -> anyhow::Result<()> {
        self.db.execute(
            "UPDATE selector_runs SET metrics = ?1, checkpoint = ?2 WHERE id = ?3",
            params![report_json, checkpoint, run_id],
        )?;
        Ok(())
    }

    /// The latest run that finished training (scored or not), if any.
    pub fn latest_trained_run(&self) -> anyhow::Result<Option<i64>> {
        self.db.query_value(
            "SELECT max(id) FROM selector_runs WHERE metrics IS NOT NULL",
            params![],
        )
    }

    /// Run `run_id`'s record.
    pub fn selector_run_record(&self, run_id: i64) -> anyhow::Result<RunRecord> {
        let metrics: Option<Option<String>> = self.db.query_opt(
            "SELECT metrics FROM selector_runs WHERE id = ?1",
            params![run_id],
            |r| r.get(0),
        )?;
        Ok(match metrics {
            None => RunRecord::Missing,
            Some(None) => RunRecord::Unfinished,
            Some(Some(json)) => RunRecord::Finished(json),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::db::params;
    use crate::store::test_support::{on_both_databases, TestDb};

    fn only_first_round_answers_with_a_judge_score_are_levelled(db: TestDb) {
        let (ws, stored) = crate::store::test_support::workspace_with_rounds_on(
            db,
            &[("q1", &["a", "b", "unscored"]), ("q2", &["c"])],
        );
        let ids = &stored.answer_ids;
        for (answer, judge, score) in [
            (ids[0][0], "j", 8.0),
            (ids[0][0], "k", 6.0),
            (ids[0][1], "j", 3.0),
            (ids[1][0], "j", 9.0),
        ] {
            ws.db
                .execute(
                    "INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES (?1, ?2, ?3, 'now')",
                    params![answer, judge, score],
                )
                .unwrap();
        }
        assert_eq!(
            ws.first_round_judge_scores().unwrap(),
            vec![(ids[0][0], 7.0), (ids[0][1], 3.0)],
            "the mean over judges, round 1 only"
        );
    }

    on_both_databases!(only_first_round_answers_with_a_judge_score_are_levelled);
}
