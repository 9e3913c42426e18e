//! Gold checks: answers whose verdict is known (`vital import --format verdicts --gold FILE`),
//! mixed into each reviewer's queue by the team plan (`--gold-every N`, `--onboarding N`), and
//! each reviewer's accuracy on them (`vital team status`).
//!
//! Rules: a known answer is not a decision. It is stored in `team_gold` (answer, its sample,
//! the known verdict, who set it and when), never in the decision log, so it is no reviewer's
//! verdict, counts in no agreement figure and makes no training pair. A reviewer's decisions on
//! a gold sample are ordinary decisions (real verdicts on real samples): they count wherever
//! their other decisions count. A sample is gold when any of its answers is.
//!
//! Blind: on a server only a curator reads `team_gold` (row-level security, migration 13). A
//! reviewer's claim asks `vital_gold_next` (run with the owner's rights) for the one gold sample
//! due for that reviewer now, and `vital_gold_accuracy` for their own figures; the screen never
//! says which samples are gold. A directory workspace is one person's files: nothing there is
//! hidden from anyone.

use serde::Serialize;

use super::db::{params, Db, Dialect};
use super::team_plan::{route_sql, TeamPlan};
use super::{Workspace, NOW};

/// One known verdict, as read from a gold file (1-based round and answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldLine {
    /// Where it was read, for messages (`FILE line N`).
    pub at: String,
    pub sample_id: String,
    pub round: usize,
    pub answer: usize,
    pub accepted: bool,
    /// Who set the known verdict (the file's `reviewer`).
    pub source: String,
}

/// What storing gold lines did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GoldStored {
    pub added: usize,
    /// Known verdicts stored before with another verdict or source, replaced.
    pub changed: usize,
    pub unchanged: usize,
    /// Gold samples in the workspace after the import.
    pub gold_samples: i64,
}

/// A reviewer's accuracy on gold answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoldAccuracy {
    pub reviewer: String,
    /// Gold answers with this reviewer's verdict in force (a ✓/✗, or a preference: ✓ for the
    /// preferred answer, ✗ for the others).
    pub decided: i64,
    /// Of those, the ones matching the known verdict.
    pub correct: i64,
}

impl GoldAccuracy {
    pub fn share(&self) -> Option<f64> {
        (self.decided > 0).then(|| self.correct as f64 / self.decided as f64)
    }
}

impl Workspace {
    /// Stores known verdicts (a curator's command), all or none: every line must name an
    /// answer in the workspace, else nothing is stored and the error names the line. A line
    /// for an answer already gold replaces its known verdict and source (the curator's latest
    /// word); the same line again changes nothing.
    pub fn store_gold(&self, lines: &[GoldLine]) -> anyhow::Result<GoldStored> {
        self.ensure_curator("storing gold answers")?;
        let tx = self.db.begin_write()?;
        let mut stored = GoldStored::default();
        for line in lines {
            let found: Option<(i64, i64)> = tx.query_opt(
                "SELECT s.id, a.id FROM samples s JOIN rounds r ON r.sample_id = s.id
                 JOIN answers a ON a.round_id = r.id
                 WHERE s.ext_id = ?1 AND r.position = ?2 AND a.position = ?3",
                params![
                    line.sample_id,
                    line.round as i64 - 1,
                    line.answer as i64 - 1
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some((sample, answer)) = found else {
                anyhow::bail!(
                    "{}: sample `{}` has no round {} answer {} in the workspace (import the samples first); nothing stored",
                    line.at,
                    line.sample_id,
                    line.round,
                    line.answer
                );
            };
            let before: Option<(i64, String)> = tx.query_opt(
                "SELECT accepted, source FROM team_gold WHERE answer_id = ?1",
                params![answer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let accepted = i64::from(line.accepted);
            match before {
                Some((a, s)) if a == accepted && s == line.source => {
                    stored.unchanged += 1;
                    continue;
                }
                Some(_) => stored.changed += 1,
                None => stored.added += 1,
            }
            tx.execute(
                &format!(
                    "INSERT INTO team_gold (answer_id, sample_id, accepted, source, stored_at)
                     VALUES (?1, ?2, ?3, ?4, {NOW})
                     ON CONFLICT (answer_id) DO UPDATE SET accepted = excluded.accepted,
                         source = excluded.source, stored_at = excluded.stored_at"
                ),
                params![answer, sample, accepted, line.source],
            )?;
        }
        stored.gold_samples =
            tx.query_value("SELECT count(DISTINCT sample_id) FROM team_gold", params![])?;
        tx.commit()?;
        Ok(stored)
    }

    /// Each reviewer's accuracy on gold answers, by name: everyone's for a curator, a reviewer's
    /// own on a server. Reviewers with no gold answer decided are left out.
    pub fn gold_accuracy(&self) -> anyhow::Result<Vec<GoldAccuracy>> {
        let sql = match self.db.dialect() {
            Dialect::Postgres => "SELECT reviewer, decided, correct FROM vital_gold_accuracy()",
            Dialect::Sqlite => {
                "WITH v AS (
                     SELECT c.reviewer_id, c.answer_id, c.kind = 'accept' AS accepted
                     FROM current_judgments c WHERE c.kind IN ('accept', 'reject')
                     UNION ALL
                     SELECT c.reviewer_id, a.id, CAST(a.id AS TEXT) = c.value
                     FROM current_judgments c JOIN answers a ON a.round_id = c.round_id
                     WHERE c.kind = 'prefer')
                 SELECT rv.name, count(*), sum(CASE WHEN (g.accepted = 1) = v.accepted THEN 1 ELSE 0 END)
                 FROM v JOIN team_gold g ON g.answer_id = v.answer_id
                 JOIN reviewers rv ON rv.id = v.reviewer_id
                 WHERE rv.name NOT IN ('final', 'imported')
                 GROUP BY rv.name ORDER BY rv.name"
            }
        };
        self.db.query_vec(sql, params![], |r| {
            Ok(GoldAccuracy {
                reviewer: r.get(0)?,
                decided: r.get(1)?,
                correct: r.get(2)?,
            })
        })
    }
}

/// The gold sample due for `reviewer` now under `plan`, if any: while they have finished fewer
/// gold samples than `onboarding + regular / gold_every` (regular: the other samples they
/// finished), the first gold sample routed to them that they have not finished. On a server
/// the owner's function answers (a reviewer's role reads no gold); its rule is the same.
pub(super) fn gold_due(db: &Db, plan: &TeamPlan, reviewer: &str) -> anyhow::Result<Option<i64>> {
    if plan.gold_every == 0 && plan.onboarding == 0 {
        return Ok(None);
    }
    if db.dialect() == Dialect::Postgres {
        return db.query_value("SELECT vital_gold_next(?1)", params![reviewer]);
    }
    let (gold, regular): (i64, i64) = db.query_row(
        "SELECT coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = l.sample_id) THEN 1 ELSE 0 END), 0),
                coalesce(sum(CASE WHEN EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = l.sample_id) THEN 0 ELSE 1 END), 0)
         FROM team_leases l WHERE l.reviewer = ?1 AND l.done = 1",
        params![reviewer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let due = i64::from(plan.onboarding)
        + match plan.gold_every {
            0 => 0,
            every => regular / i64::from(every),
        };
    if gold >= due {
        return Ok(None);
    }
    let (route, _) = super::team_plan::route_of(plan, reviewer);
    db.query_opt(
        &format!(
            "SELECT s.id FROM samples s
             WHERE EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = s.id)
               AND NOT EXISTS (SELECT 1 FROM team_leases m
                               WHERE m.sample_id = s.id AND m.reviewer = ?1 AND m.done = 1)
               AND {route}
             ORDER BY s.id LIMIT 1",
            route = route_sql(Dialect::Sqlite, 2),
        ),
        params![reviewer, route],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::team_plan::tests::{finish, team_workspace};
    use crate::store::test_support::{on_both_databases, TestDb};
    use crate::store::{DecisionKind, Lease, NewDecision};

    fn gold(sample: usize, answer: usize, accepted: bool) -> GoldLine {
        GoldLine {
            at: format!("gold.jsonl line {sample}"),
            sample_id: format!("s{sample}"),
            round: 1,
            answer,
            accepted,
            source: "dr_senior".into(),
        }
    }

    fn gold_is_served_first_to_a_new_reviewer_then_every_n_samples(db: TestDb) {
        let (ws, keys) = team_workspace(db, 12);
        // Samples 3, 7 and 10 are gold (both answers of 3 known, one of the others).
        let stored = ws
            .store_gold(&[
                gold(3, 1, true),
                gold(3, 2, false),
                gold(7, 1, false),
                gold(10, 2, true),
            ])
            .unwrap();
        assert_eq!(
            stored,
            GoldStored {
                added: 4,
                changed: 0,
                unchanged: 0,
                gold_samples: 3
            }
        );
        ws.set_team_plan(&TeamPlan {
            gold_every: 2,
            onboarding: 1,
            ..Default::default()
        })
        .unwrap();
        let golden = [keys[3], keys[7], keys[10]];
        let mut served = Vec::new();
        let mut last = None;
        while let Some(key) = ws.claim_next("ana", last).unwrap() {
            served.push(golden.contains(&key));
            finish(&ws, "ana", key);
            last = Some(key);
        }
        // One gold sample to start, then one after every two others, until the gold runs
        // out; then the rest. Each sample served once.
        assert_eq!(
            served,
            [true, false, false, true, false, false, true, false, false, false, false, false],
            "gold (true) and other samples in the order served"
        );
    }

    fn the_screen_is_sent_to_the_gold_sample_due_and_back(db: TestDb) {
        let (ws, keys) = team_workspace(db, 6);
        ws.store_gold(&[gold(4, 1, true), gold(5, 1, true)])
            .unwrap();
        ws.set_team_plan(&TeamPlan {
            onboarding: 2,
            ..Default::default()
        })
        .unwrap();
        // A new reviewer opening the first sample is sent to the first gold one, which is
        // then theirs; opening it is an ordinary take.
        assert_eq!(
            ws.take_lease("ben", keys[0]).unwrap(),
            Lease::Instead(keys[4])
        );
        assert_eq!(ws.take_lease("ben", keys[4]).unwrap(), Lease::Taken);
        finish(&ws, "ben", keys[4]);
        assert_eq!(
            ws.take_lease("ben", keys[0]).unwrap(),
            Lease::Instead(keys[5])
        );
        finish(&ws, "ben", keys[5]);
        // Onboarding done: the sample asked for is served.
        assert_eq!(ws.take_lease("ben", keys[0]).unwrap(), Lease::Taken);
        // Gold places are not planned places: another reviewer is served the same gold.
        assert_eq!(
            ws.take_lease("cy", keys[1]).unwrap(),
            Lease::Instead(keys[4])
        );
        // No plan with gold settings, no gold served.
        ws.set_team_plan(&TeamPlan::default()).unwrap();
        assert_eq!(ws.take_lease("dan", keys[1]).unwrap(), Lease::Taken);
    }

    fn accuracy_on_gold_counts_verdicts_in_force_against_the_known_ones(db: TestDb) {
        let (ws, keys) = team_workspace(db, 3);
        ws.store_gold(&[gold(0, 1, true), gold(0, 2, false), gold(1, 1, true)])
            .unwrap();
        let verdict = |reviewer: &str, key: i64, answer: usize, kind: DecisionKind| {
            let stored = ws.load_sample(key).unwrap().unwrap();
            ws.record(
                reviewer,
                &NewDecision {
                    sample_key: key,
                    round_id: Some(stored.round_ids[0]),
                    answer_id: Some(stored.answer_ids[0][answer]),
                    kind,
                    value: None,
                    shown_order: None,
                    figure_shown: None,
                },
            )
            .unwrap();
        };
        // Ana: right, right, wrong (3 gold answers decided, 2 right); her verdict on a
        // sample that is not gold does not count.
        verdict("ana", keys[0], 0, DecisionKind::Accept);
        verdict("ana", keys[0], 1, DecisionKind::Reject);
        verdict("ana", keys[1], 0, DecisionKind::Reject);
        verdict("ana", keys[2], 0, DecisionKind::Reject);
        // Ben changes his mind: only the verdict in force counts.
        verdict("ben", keys[1], 0, DecisionKind::Reject);
        verdict("ben", keys[1], 0, DecisionKind::Accept);
        let accuracy = ws.gold_accuracy().unwrap();
        assert_eq!(
            accuracy,
            vec![
                GoldAccuracy {
                    reviewer: "ana".into(),
                    decided: 3,
                    correct: 2
                },
                GoldAccuracy {
                    reviewer: "ben".into(),
                    decided: 1,
                    correct: 1
                },
            ]
        );
        let status = ws.team_status().unwrap();
        let ana = status
            .reviewers
            .iter()
            .find(|r| r.reviewer == "ana")
            .unwrap();
        assert_eq!((ana.gold_decided, ana.gold_correct), (3, 2));
        assert!((ana.gold_accuracy.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // The known verdicts are nobody's decisions: nothing in the log.
        let events: i64 = ws
            .db
            .query_value("SELECT count(*) FROM judgments", params![])
            .unwrap();
        assert_eq!(events, 6);
    }

    fn a_gold_line_for_a_missing_answer_stores_nothing_and_names_the_line(db: TestDb) {
        let (ws, _) = team_workspace(db, 2);
        let mut bad = gold(1, 3, true);
        bad.at = "gold.jsonl record 1 (line 2)".into();
        let e = ws.store_gold(&[gold(0, 1, true), bad]).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("gold.jsonl record 1 (line 2)") && text.contains("no round 1 answer 3"),
            "{text}"
        );
        let n: i64 = ws
            .db
            .query_value("SELECT count(*) FROM team_gold", params![])
            .unwrap();
        assert_eq!(n, 0, "nothing stored");
        // The same line twice is stored once; a changed verdict replaces it.
        ws.store_gold(&[gold(0, 1, true)]).unwrap();
        let again = ws
            .store_gold(&[gold(0, 1, true), gold(0, 1, false)])
            .unwrap();
        assert_eq!((again.unchanged, again.changed), (1, 1));
    }

    on_both_databases!(
        gold_is_served_first_to_a_new_reviewer_then_every_n_samples,
        the_screen_is_sent_to_the_gold_sample_due_and_back,
        accuracy_on_gold_counts_verdicts_in_force_against_the_known_ones,
        a_gold_line_for_a_missing_answer_stores_nothing_and_names_the_line,
    );
}
