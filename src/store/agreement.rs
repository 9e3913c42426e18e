//! Several reviewers on the same answers: each reviewer's verdicts in force, how they resolve into
//! one verdict per answer, agreement figures (percent, Cohen's κ, Krippendorff's α) and the list of
//! conflicts.
//!
//! Rules (documented in README, "Agreement"):
//! - A reviewer's verdict on an answer is their latest `accept`/`reject` in force on it; a `prefer`
//!   in force on the round counts as accepting the preferred answer and rejecting the others
//!   (whichever of the two events is later wins). `tie`, ratings, flags and notes are not verdicts.
//! - Every reviewer counts, `imported` (clinician marks carried by pair files) included, except
//!   [`FINAL_REVIEWER`]: its decisions are adjudications, not votes. A final decision is an ordinary
//!   `accept`/`reject` event appended under that reviewer with the adjudicator's name as `value`,
//!   so it is kept in the log, undoable (`undo_last("final")`) and never overwrites anything.
//! - Resolution of one answer: a final decision in force wins; otherwise the majority of verdicts;
//!   equal numbers of ✓ and ✗ are a tie (the export then picks by score, as if undecided).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::db::{params, Db};
use serde::Serialize;

use super::decisions::{append, reviewer_id, DecisionKind, NewDecision, REASON_OVERRULED};
use super::Workspace;

/// The reviewer under which resolving (final) decisions are recorded.
pub const FINAL_REVIEWER: &str = "final";

/// One answer's verdict once every reviewer's vote is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Accepted,
    Rejected,
    /// As many ✓ as ✗ and no final decision.
    Tied,
    /// Nobody decided.
    Undecided,
}

/// One reviewer's verdict in force on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub reviewer: i64,
    pub accepted: bool,
    pub event_id: i64,
}

/// A resolving decision in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalDecision {
    pub accepted: bool,
    pub event_id: i64,
    /// The adjudicator's name (the event's `value`), when given.
    pub by: Option<String>,
}

/// Every verdict in force on one answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerVotes {
    pub sample_key: i64,
    pub round_id: i64,
    /// One per reviewer (not the final reviewer), in reviewer id order.
    pub votes: Vec<Vote>,
    pub final_decision: Option<FinalDecision>,
}

impl AnswerVotes {
    pub fn accepts(&self) -> usize {
        self.votes.iter().filter(|v| v.accepted).count()
    }

    pub fn rejects(&self) -> usize {
        self.votes.iter().filter(|v| !v.accepted).count()
    }

    /// Reviewers' verdicts contradict each other (whether or not a final decision resolved it).
    pub fn is_conflict(&self) -> bool {
        self.accepts() > 0 && self.rejects() > 0
    }

    pub fn resolution(&self) -> Resolution {
        if let Some(f) = &self.final_decision {
            return if f.accepted {
                Resolution::Accepted
            } else {
                Resolution::Rejected
            };
        }
        let (a, r) = (self.accepts(), self.rejects());
        match a.cmp(&r) {
            std::cmp::Ordering::Greater => Resolution::Accepted,
            std::cmp::Ordering::Less => Resolution::Rejected,
            std::cmp::Ordering::Equal if a > 0 => Resolution::Tied,
            std::cmp::Ordering::Equal => Resolution::Undecided,
        }
    }
}

/// The verdicts in force of every reviewer on every answer.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    /// answer id → votes.
    pub answers: HashMap<i64, AnswerVotes>,
    /// reviewer id → name (every reviewer with a vote; the final reviewer excluded).
    pub reviewers: BTreeMap<i64, String>,
}

impl Verdicts {
    /// Reads the verdicts in force (one query over `current_judgments`).
    pub fn load(db: &Db) -> anyhow::Result<Self> {
        Self::load_where(db, false)
    }

    /// As [`Verdicts::load`]; with `seen_only`, without the decisions made while the figure was
    /// not on the reviewer's screen.
    pub fn load_where(db: &Db, seen_only: bool) -> anyhow::Result<Self> {
        let mut out = Verdicts::default();
        // Through the table: PostgreSQL expanded the view's columns when it was made.
        let seen = if seen_only {
            " AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.id = c.id AND j.figure_shown = 0)"
        } else {
            ""
        };
        db.for_each_row(
            &format!(
                "SELECT c.id, c.reviewer_id, rv.name, c.sample_id, a.round_id, a.id, c.kind = 'accept', c.value
                 FROM current_judgments c JOIN answers a ON a.id = c.answer_id
                 JOIN reviewers rv ON rv.id = c.reviewer_id
                 WHERE c.kind IN ('accept', 'reject'){seen}
                 UNION ALL
                 SELECT c.id, c.reviewer_id, rv.name, c.sample_id, a.round_id, a.id, CAST(a.id AS TEXT) = c.value, NULL
                 FROM current_judgments c JOIN answers a ON a.round_id = c.round_id
                 JOIN reviewers rv ON rv.id = c.reviewer_id
                 WHERE c.kind = 'prefer'{seen}"
            ),
            params![],
            |row| {
            let event_id: i64 = row.get(0)?;
            let reviewer: i64 = row.get(1)?;
            let name: String = row.get(2)?;
            let accepted: bool = row.get(6)?;
            let entry = out.answers.entry(row.get(5)?).or_default();
            entry.sample_key = row.get(3)?;
            entry.round_id = row.get(4)?;
            if name == FINAL_REVIEWER {
                if entry
                    .final_decision
                    .as_ref()
                    .is_none_or(|f| f.event_id < event_id)
                {
                    entry.final_decision = Some(FinalDecision {
                        accepted,
                        event_id,
                        by: row.get(7)?,
                    });
                }
                return Ok(());
            }
            out.reviewers.entry(reviewer).or_insert(name);
            match entry.votes.iter_mut().find(|v| v.reviewer == reviewer) {
                Some(v) if v.event_id < event_id => {
                    v.accepted = accepted;
                    v.event_id = event_id;
                }
                Some(_) => {}
                None => entry.votes.push(Vote {
                    reviewer,
                    accepted,
                    event_id,
                }),
            }
            Ok(())
        })?;
        for votes in out.answers.values_mut() {
            votes.votes.sort_by_key(|v| v.reviewer);
        }
        Ok(out)
    }

    pub fn resolution(&self, answer_id: i64) -> Resolution {
        self.answers
            .get(&answer_id)
            .map_or(Resolution::Undecided, AnswerVotes::resolution)
    }

    /// Agreement figures over the answers at least two reviewers decided.
    pub fn agreement(&self) -> Agreement {
        let names: Vec<(i64, &str)> = self
            .reviewers
            .iter()
            .map(|(id, n)| (*id, n.as_str()))
            .collect();
        let mut units: Vec<Vec<u32>> = Vec::new();
        let mut unanimous = 0;
        let mut conflicts = 0;
        let mut resolved = 0;
        // (a, b) → their (verdict a, verdict b) on shared answers.
        let mut shared: BTreeMap<(i64, i64), Vec<(u32, u32)>> = BTreeMap::new();
        let mut sorted: Vec<&AnswerVotes> = self.answers.values().collect();
        sorted.sort_by_key(|v| {
            (
                v.sample_key,
                v.round_id,
                v.votes.first().map(|v| v.event_id),
            )
        });
        for votes in sorted {
            if votes.votes.len() < 2 {
                continue;
            }
            let values: Vec<u32> = votes.votes.iter().map(|v| u32::from(v.accepted)).collect();
            if values.iter().all(|v| *v == values[0]) {
                unanimous += 1;
            } else {
                conflicts += 1;
                resolved += usize::from(votes.final_decision.is_some());
            }
            for (i, a) in votes.votes.iter().enumerate() {
                for b in &votes.votes[i + 1..] {
                    shared
                        .entry((a.reviewer, b.reviewer))
                        .or_default()
                        .push((u32::from(a.accepted), u32::from(b.accepted)));
                }
            }
            units.push(values);
        }
        let name = |id: i64| {
            names
                .iter()
                .find(|(i, _)| *i == id)
                .map_or_else(String::new, |(_, n)| n.to_string())
        };
        let pairs: Vec<PairAgreement> = shared
            .iter()
            .map(|((a, b), ratings)| {
                let agreed = ratings.iter().filter(|(x, y)| x == y).count();
                PairAgreement {
                    a: name(*a),
                    b: name(*b),
                    items: ratings.len(),
                    agreed,
                    percent: percent(agreed, ratings.len()),
                    cohen_kappa: cohen_kappa(ratings),
                }
            })
            .collect();
        let raters: BTreeSet<i64> = shared.keys().flat_map(|(a, b)| [*a, *b]).collect();
        Agreement {
            reviewers: raters.iter().map(|id| name(*id)).collect(),
            items: units.len(),
            unanimous,
            percent_agreement: percent(unanimous, units.len()),
            cohen_kappa: if raters.len() == 2 {
                pairs.first().and_then(|p| p.cohen_kappa)
            } else {
                None
            },
            krippendorff_alpha: krippendorff_alpha_nominal(&units),
            pairs,
            conflicts,
            resolved_conflicts: resolved,
        }
    }
}

/// Agreement between reviewers on the answers several of them decided (✓/✗).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// Reviewers who share at least one answer with another reviewer.
    pub reviewers: Vec<String>,
    /// Answers decided by two or more reviewers.
    pub items: usize,
    /// Of those, answers where every reviewer gave the same verdict.
    pub unanimous: usize,
    /// `unanimous / items`, as a percentage.
    pub percent_agreement: Option<f64>,
    /// Cohen's κ, when exactly two reviewers share answers.
    pub cohen_kappa: Option<f64>,
    /// Krippendorff's α (nominal), over every reviewer; missing verdicts allowed.
    pub krippendorff_alpha: Option<f64>,
    /// Every pair of reviewers that share answers.
    pub pairs: Vec<PairAgreement>,
    /// Answers with contradicting verdicts.
    pub conflicts: usize,
    /// Of those, resolved by a final decision.
    pub resolved_conflicts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    /// Answers both decided.
    pub items: usize,
    pub agreed: usize,
    pub percent: Option<f64>,
    pub cohen_kappa: Option<f64>,
}

/// Decisions in force (and events ever appended) of one reviewer, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewerDecisions {
    pub reviewer: String,
    pub accept: i64,
    pub reject: i64,
    pub prefer: i64,
    pub tie: i64,
    pub rate: i64,
    pub flag: i64,
    pub note: i64,
    pub demo: i64,
    /// Answers the reviewer corrected (edits in force).
    pub edit: i64,
    /// Rejected answers the reviewer gave a reason for.
    pub reason: i64,
    /// Decisions in force, all kinds.
    pub total: i64,
    /// Events ever appended (undo events included).
    pub events: i64,
}

/// Reviewers' verdicts contradicting each other on one answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub sample_key: i64,
    pub sample_id: String,
    pub round_id: i64,
    /// 1-based, as on screen.
    pub round: i64,
    pub answer_id: i64,
    /// 1-based, as on screen ("Answer 1").
    pub answer: i64,
    pub accepted_by: Vec<String>,
    pub rejected_by: Vec<String>,
    /// The final decision in force, if any.
    pub resolution: Option<FinalDecision>,
}

/// What `vital stats` and the review screen's panel show about reviewers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementReport {
    pub decisions: Vec<ReviewerDecisions>,
    pub agreement: Agreement,
    pub conflicts: Vec<Conflict>,
}

/// Decisions per reviewer (every reviewer with an event, `final` and `imported` included).
pub fn reviewer_decisions(db: &Db) -> anyhow::Result<Vec<ReviewerDecisions>> {
    let mut out: BTreeMap<String, ReviewerDecisions> = BTreeMap::new();
    db.for_each_row(
        // A reason whose answer the reviewer accepted since is no longer a reason for a ✗.
        &format!(
            "SELECT rv.name, c.kind, count(*) FROM current_judgments c JOIN reviewers rv ON rv.id = c.reviewer_id
             WHERE NOT (c.kind = 'reason' AND {REASON_OVERRULED})
             GROUP BY rv.name, c.kind"
        ),
        params![],
        |row| {
        let name: String = row.get(0)?;
        let kind: String = row.get(1)?;
        let n: i64 = row.get(2)?;
        let d = out
            .entry(name.clone())
            .or_insert_with(|| ReviewerDecisions {
                reviewer: name,
                ..Default::default()
            });
        d.total += n;
        match DecisionKind::parse(&kind) {
            Some(DecisionKind::Accept) => d.accept += n,
            Some(DecisionKind::Reject) => d.reject += n,
            Some(DecisionKind::Prefer) => d.prefer += n,
            Some(DecisionKind::Tie) => d.tie += n,
            Some(DecisionKind::Rate) => d.rate += n,
            Some(DecisionKind::Flag) => d.flag += n,
            Some(DecisionKind::Note) => d.note += n,
            Some(DecisionKind::Demo) => d.demo += n,
            Some(DecisionKind::Edit) => d.edit += n,
            Some(DecisionKind::Reason) => d.reason += n,
            None => {}
        }
        Ok(())
    })?;
    db.for_each_row(
        "SELECT rv.name, count(*) FROM judgments j JOIN reviewers rv ON rv.id = j.reviewer_id GROUP BY rv.name",
        params![],
        |row| {
        let name: String = row.get(0)?;
        out.entry(name.clone())
            .or_insert_with(|| ReviewerDecisions {
                reviewer: name,
                ..Default::default()
            })
            .events = row.get(1)?;
        Ok(())
    })?;
    Ok(out.into_values().collect())
}

/// Every answer with contradicting verdicts, in sample / round / answer order.
pub fn conflicts(db: &Db, verdicts: &Verdicts) -> anyhow::Result<Vec<Conflict>> {
    let mut out = Vec::new();
    for (answer_id, votes) in &verdicts.answers {
        if !votes.is_conflict() {
            continue;
        }
        let (sample_id, round, answer): (String, i64, i64) = db.query_row(
            "SELECT s.ext_id, r.position, a.position FROM answers a JOIN rounds r ON r.id = a.round_id
             JOIN samples s ON s.id = r.sample_id WHERE a.id = ?1",
            params![answer_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let names = |accepted: bool| {
            votes
                .votes
                .iter()
                .filter(|v| v.accepted == accepted)
                .filter_map(|v| verdicts.reviewers.get(&v.reviewer).cloned())
                .collect()
        };
        out.push(Conflict {
            sample_key: votes.sample_key,
            sample_id,
            round_id: votes.round_id,
            round: round + 1,
            answer_id: *answer_id,
            answer: answer + 1,
            accepted_by: names(true),
            rejected_by: names(false),
            resolution: votes.final_decision.clone(),
        });
    }
    out.sort_by_key(|c| (c.sample_key, c.round, c.answer));
    Ok(out)
}

/// Sample keys (sorted) with reviewer disagreements, for the review screen's `disagreements`
/// filter; `unresolved_only` leaves out samples whose every conflict has a final decision.
pub fn disagreement_keys(db: &Db, unresolved_only: bool) -> anyhow::Result<Vec<i64>> {
    let verdicts = Verdicts::load(db)?;
    let keys: BTreeSet<i64> = verdicts
        .answers
        .values()
        .filter(|v| v.is_conflict() && !(unresolved_only && v.final_decision.is_some()))
        .map(|v| v.sample_key)
        .collect();
    Ok(keys.into_iter().collect())
}

/// Records a final decision on one answer: an `accept`/`reject` event by [`FINAL_REVIEWER`]
/// whose value is the adjudicator's name. Returns the event id.
pub fn record_final(
    db: &Db,
    adjudicator: &str,
    answer_id: i64,
    accepted: bool,
) -> anyhow::Result<i64> {
    let adjudicator = adjudicator.trim();
    anyhow::ensure!(!adjudicator.is_empty(), "the adjudicator's name is empty");
    let (sample_key, round_id): (i64, i64) = db
        .query_opt(
            "SELECT r.sample_id, r.id FROM answers a JOIN rounds r ON r.id = a.round_id WHERE a.id = ?1",
            params![answer_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .ok_or_else(|| anyhow::anyhow!("no answer with id {answer_id}"))?;
    let reviewer = reviewer_id(db, FINAL_REVIEWER)?;
    append(
        db,
        reviewer,
        &NewDecision {
            sample_key,
            round_id: Some(round_id),
            answer_id: Some(answer_id),
            kind: if accepted {
                DecisionKind::Accept
            } else {
                DecisionKind::Reject
            },
            value: Some(adjudicator.to_string()),
            shown_order: None,
            figure_shown: None,
        },
    )
}

impl Workspace {
    /// Decisions per reviewer, agreement and conflicts (for `vital stats` and the review screen).
    pub fn agreement_report(&self) -> anyhow::Result<AgreementReport> {
        // Blind review: a reviewer's role reads only its own decisions, so agreement is a
        // curator's figure.
        self.ensure_curator("agreement between reviewers")?;
        let verdicts = Verdicts::load(&self.db)?;
        Ok(AgreementReport {
            decisions: reviewer_decisions(&self.db)?,
            agreement: verdicts.agreement(),
            conflicts: conflicts(&self.db, &verdicts)?,
        })
    }

    /// See [`disagreement_keys`].
    pub fn disagreement_keys(&self, unresolved_only: bool) -> anyhow::Result<Vec<i64>> {
        self.ensure_curator("the disagreements view")?;
        disagreement_keys(&self.db, unresolved_only)
    }

    /// See [`record_final`].
    pub fn record_final(
        &self,
        adjudicator: &str,
        answer_id: i64,
        accepted: bool,
    ) -> anyhow::Result<i64> {
        record_final(&self.db, adjudicator, answer_id, accepted)
    }
}

fn percent(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

/// Cohen's κ for two raters over the items both rated: (p_o − p_e) / (1 − p_e). `None` when
/// there are no items or chance agreement is certain (both used one and the same category only).
pub fn cohen_kappa(ratings: &[(u32, u32)]) -> Option<f64> {
    if ratings.is_empty() {
        return None;
    }
    let n = ratings.len() as f64;
    let mut a: BTreeMap<u32, f64> = BTreeMap::new();
    let mut b: BTreeMap<u32, f64> = BTreeMap::new();
    let mut agree = 0.0;
    for (x, y) in ratings {
        *a.entry(*x).or_default() += 1.0;
        *b.entry(*y).or_default() += 1.0;
        if x == y {
            agree += 1.0;
        }
    }
    let p_o = agree / n;
    let p_e: f64 = a
        .iter()
        .map(|(c, na)| na / n * b.get(c).copied().unwrap_or(0.0) / n)
        .sum();
    if (1.0 - p_e).abs() < 1e-12 {
        return None;
    }
    Some((p_o - p_e) / (1.0 - p_e))
}

/// Krippendorff's α for nominal data. Each unit lists the values its raters gave (missing ones
/// left out); units with fewer than two values are not pairable and are ignored. `None` when no
/// unit is pairable or only one value occurs (no expected disagreement).
pub fn krippendorff_alpha_nominal(units: &[Vec<u32>]) -> Option<f64> {
    // Coincidence matrix o[c][k] = Σ_u (pairs of c and k in u) / (m_u − 1).
    let mut o: BTreeMap<(u32, u32), f64> = BTreeMap::new();
    for unit in units.iter().filter(|u| u.len() >= 2) {
        let weight = 1.0 / (unit.len() - 1) as f64;
        for (i, c) in unit.iter().enumerate() {
            for (j, k) in unit.iter().enumerate() {
                if i != j {
                    *o.entry((*c, *k)).or_default() += weight;
                }
            }
        }
    }
    let mut n_c: BTreeMap<u32, f64> = BTreeMap::new();
    for ((c, _), v) in &o {
        *n_c.entry(*c).or_default() += v;
    }
    let n: f64 = n_c.values().sum();
    if n <= 1.0 {
        return None;
    }
    let observed: f64 = o.iter().filter(|((c, k), _)| c != k).map(|(_, v)| v).sum();
    let mut expected = 0.0;
    for (c, nc) in &n_c {
        for (k, nk) in &n_c {
            if c != k {
                expected += nc * nk;
            }
        }
    }
    if expected == 0.0 {
        return None;
    }
    Some(1.0 - (n - 1.0) * observed / expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 5e-4)
    }

    #[test]
    fn kappa_matches_textbook_values() {
        // Wikipedia, "Cohen's kappa", first example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
        let mut r = vec![(1, 1); 20];
        r.extend(vec![(1, 0); 5]);
        r.extend(vec![(0, 1); 10]);
        r.extend(vec![(0, 0); 15]);
        assert!(close(cohen_kappa(&r), 0.4), "{:?}", cohen_kappa(&r));
        // Second example: 45 / 15 / 25 / 15 → κ = 0.1304.
        let mut r = vec![(1, 1); 45];
        r.extend(vec![(1, 0); 15]);
        r.extend(vec![(0, 1); 25]);
        r.extend(vec![(0, 0); 15]);
        assert!(close(cohen_kappa(&r), 0.1304), "{:?}", cohen_kappa(&r));
        // Perfect agreement on two categories is 1; one category only is undefined.
        assert_eq!(cohen_kappa(&[(0, 0), (1, 1)]), Some(1.0));
        assert_eq!(cohen_kappa(&[(1, 1), (1, 1)]), None);
        assert_eq!(cohen_kappa(&[]), None);
    }

    #[test]
    fn alpha_matches_krippendorffs_examples() {
        // Krippendorff (2011), "Computing Krippendorff's alpha-reliability": binary data, two
        // observers, ten units → α = 0.095.
        let a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0];
        let b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        let units: Vec<Vec<u32>> = a.iter().zip(b).map(|(x, y)| vec![*x, y]).collect();
        assert!(close(krippendorff_alpha_nominal(&units), 0.095));
        // Same paper: nominal data, four observers, twelve units, missing values → α = 0.743.
        let table: [[Option<u32>; 12]; 4] = [
            [
                Some(1),
                Some(2),
                Some(3),
                Some(3),
                Some(2),
                Some(1),
                Some(4),
                Some(1),
                Some(2),
                None,
                None,
                None,
            ],
            [
                Some(1),
                Some(2),
                Some(3),
                Some(3),
                Some(2),
                Some(2),
                Some(4),
                Some(1),
                Some(2),
                Some(5),
                None,
                Some(3),
            ],
            [
                None,
                Some(3),
                Some(3),
                Some(3),
                Some(2),
                Some(3),
                Some(4),
                Some(2),
                Some(2),
                Some(5),
                Some(1),
                None,
            ],
            [
                Some(1),
                Some(2),
                Some(3),
                Some(3),
                Some(2),
                Some(4),
                Some(4),
                Some(1),
                Some(2),
                Some(5),
                Some(1),
                None,
            ],
        ];
        let units: Vec<Vec<u32>> = (0..12)
            .map(|u| table.iter().filter_map(|row| row[u]).collect())
            .collect();
        assert!(
            close(krippendorff_alpha_nominal(&units), 0.743),
            "{:?}",
            krippendorff_alpha_nominal(&units)
        );
        assert_eq!(krippendorff_alpha_nominal(&[vec![1, 1], vec![1, 1]]), None);
        assert_eq!(krippendorff_alpha_nominal(&[vec![1]]), None);
    }

    fn workspace(db: TestDb) -> (TestWorkspace, crate::store::StoredSample) {
        crate::store::test_support::workspace_with_rounds_on(db, &[("q", &["a1", "a2", "a3"])])
    }

    fn verdict(s: &crate::store::StoredSample, a: usize, kind: DecisionKind) -> NewDecision {
        NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][a]),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        }
    }

    fn majority_ties_prefer_and_final_decisions_resolve_verdicts(db: TestDb) {
        let (ws, s) = workspace(db);
        let [a1, a2, a3] = [s.answer_ids[0][0], s.answer_ids[0][1], s.answer_ids[0][2]];
        ws.record("ana", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ben", &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        ws.record("cy", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(&s, 1, DecisionKind::Accept))
            .unwrap();
        ws.record("ben", &verdict(&s, 1, DecisionKind::Reject))
            .unwrap();
        // A later preference of answer 3 by cy: ✓ a3, ✗ a1 and a2 (replacing cy's ✓ on a1).
        let mut prefer = verdict(&s, 2, DecisionKind::Prefer);
        prefer.answer_id = None;
        prefer.value = Some(a3.to_string());
        ws.record("cy", &prefer).unwrap();
        let v = Verdicts::load(&ws.db).unwrap();
        assert_eq!(v.resolution(a1), Resolution::Rejected, "ana ✓, ben ✗, cy ✗");
        assert_eq!(v.resolution(a2), Resolution::Rejected, "ana ✓, ben ✗, cy ✗");
        assert_eq!(v.resolution(a3), Resolution::Accepted);
        ws.undo_last("cy").unwrap();
        let v = Verdicts::load(&ws.db).unwrap();
        assert_eq!(v.resolution(a1), Resolution::Accepted, "2 ✓ to 1 ✗");
        assert_eq!(v.resolution(a2), Resolution::Tied);
        assert_eq!(v.resolution(a3), Resolution::Undecided);
        assert_eq!(disagreement_keys(&ws.db, true).unwrap(), vec![s.key]);

        ws.record_final("dr lead", a2, false).unwrap();
        ws.record_final("dr lead", a1, false).unwrap();
        let v = Verdicts::load(&ws.db).unwrap();
        assert_eq!(v.resolution(a2), Resolution::Rejected);
        assert_eq!(
            v.resolution(a1),
            Resolution::Rejected,
            "final beats majority"
        );
        assert!(disagreement_keys(&ws.db, true).unwrap().is_empty());
        assert_eq!(disagreement_keys(&ws.db, false).unwrap(), vec![s.key]);
        let report = ws.agreement_report().unwrap();
        assert_eq!(report.conflicts.len(), 2);
        let c = &report.conflicts[0];
        assert_eq!((c.round, c.answer), (1, 1));
        assert_eq!(c.accepted_by, vec!["ana", "cy"]);
        assert_eq!(c.rejected_by, vec!["ben"]);
        assert_eq!(
            c.resolution.as_ref().unwrap().by.as_deref(),
            Some("dr lead")
        );
        assert!(!report.agreement.reviewers.contains(&"final".to_string()));
        // Undo of the final decision brings the majority back; the events stay.
        ws.undo_last(FINAL_REVIEWER).unwrap();
        let v = Verdicts::load(&ws.db).unwrap();
        assert_eq!(v.resolution(a1), Resolution::Accepted);
    }

    fn agreement_counts_shared_answers_only(db: TestDb) {
        let (ws, s) = workspace(db);
        ws.record("ana", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ben", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(&s, 1, DecisionKind::Reject))
            .unwrap();
        ws.record("ben", &verdict(&s, 1, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(&s, 2, DecisionKind::Reject))
            .unwrap();
        let report = ws.agreement_report().unwrap();
        let a = &report.agreement;
        assert_eq!(a.items, 2);
        assert_eq!(a.unanimous, 1);
        assert!(close(a.percent_agreement, 50.0));
        assert_eq!(a.reviewers, vec!["ana", "ben"]);
        assert_eq!(a.pairs.len(), 1);
        assert_eq!((a.pairs[0].items, a.pairs[0].agreed), (2, 1));
        // ana (1,0) vs ben (1,1): p_o = .5, p_e = .5·1 + .5·0 = .5 → κ = 0.
        assert!(close(a.cohen_kappa, 0.0));
        let ana = report
            .decisions
            .iter()
            .find(|d| d.reviewer == "ana")
            .unwrap();
        assert_eq!(
            (ana.accept, ana.reject, ana.total, ana.events),
            (1, 2, 3, 3)
        );
    }

    mod properties {
        use super::super::{cohen_kappa, krippendorff_alpha_nominal};
        use proptest::prelude::*;

        fn ratings() -> impl Strategy<Value = Vec<(u32, u32)>> {
            proptest::collection::vec((0u32..4, 0u32..4), 0..60)
        }

        fn units() -> impl Strategy<Value = Vec<Vec<u32>>> {
            proptest::collection::vec(proptest::collection::vec(0u32..4, 0..5), 0..40)
        }

        fn same(a: Option<f64>, b: Option<f64>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (None, None) => true,
                _ => false,
            }
        }

        proptest! {
            #[test]
            fn kappa_is_at_most_one_symmetric_and_blind_to_category_names(r in ratings()) {
                let k = cohen_kappa(&r);
                prop_assert!(k.is_none_or(|k| k <= 1.0 + 1e-12), "{k:?}");
                let swapped: Vec<_> = r.iter().map(|&(a, b)| (b, a)).collect();
                prop_assert!(same(k, cohen_kappa(&swapped)));
                let renamed: Vec<_> = r.iter().map(|&(a, b)| (90 - a, 90 - b)).collect();
                prop_assert!(same(k, cohen_kappa(&renamed)));
                if r.iter().all(|(a, b)| a == b) {
                    prop_assert!(k.is_none_or(|k| (k - 1.0).abs() < 1e-12), "{k:?}");
                }
            }

            #[test]
            fn alpha_is_at_most_one_and_blind_to_unit_order_and_names(u in units()) {
                let a = krippendorff_alpha_nominal(&u);
                prop_assert!(a.is_none_or(|a| a <= 1.0 + 1e-12), "{a:?}");
                let mut reversed = u.clone();
                reversed.reverse();
                for unit in &mut reversed {
                    unit.reverse();
                }
                prop_assert!(same(a, krippendorff_alpha_nominal(&reversed)));
                let renamed: Vec<Vec<u32>> =
                    u.iter().map(|unit| unit.iter().map(|c| c * 3 + 1).collect()).collect();
                prop_assert!(same(a, krippendorff_alpha_nominal(&renamed)));
                if u.iter().all(|unit| unit.windows(2).all(|w| w[0] == w[1])) {
                    prop_assert!(a.is_none_or(|a| (a - 1.0).abs() < 1e-9), "{a:?}");
                }
            }

            #[test]
            fn units_nobody_can_pair_change_nothing(u in units(), lone in 0u32..4) {
                let mut with_lone = u.clone();
                with_lone.push(vec![lone]);
                with_lone.push(vec![]);
                prop_assert!(same(
                    krippendorff_alpha_nominal(&u),
                    krippendorff_alpha_nominal(&with_lone)
                ));
            }
        }
    }

    on_both_databases!(
        majority_ties_prefer_and_final_decisions_resolve_verdicts,
        agreement_counts_shared_answers_only
    );
}
