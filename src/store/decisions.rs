//! Clinician decisions as an append-only event log. Nothing is updated or deleted: a later event
//! in the same slot supersedes an earlier one and an `undo` event withdraws one, so undo is
//! unlimited and every past decision stays on record.

use super::db::{params, Db};
use super::{Workspace, NOW};

/// What a decision says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// The answer is acceptable (✓).
    Accept,
    /// The answer is not acceptable (✗).
    Reject,
    /// One answer of the round is preferred; `value` holds its answer id.
    Prefer,
    /// The round's answers are equally good.
    Tie,
    /// The round is rated 1–5; `value` holds the rating.
    Rate,
    /// The sample is flagged (`value` "1") or unflagged ("0").
    Flag,
    /// A free-text note on the sample.
    Note,
    /// The sample is (`value` "1") or is not ("0") a demonstration for the generator.
    Demo,
    /// The reviewer's corrected text of an answer (`value`); the edited text counts as their ✓,
    /// and the original keeps the verdict recorded with it (a ✗ unless they marked it).
    Edit,
    /// Why the reviewer rejected an answer (`value`: one of `review.reasons`, or `other: TEXT`).
    Reason,
}

/// The longest edited answer stored (characters): a bound on what a paste can put in the log.
pub const MAX_EDIT_CHARS: usize = crate::data::fields::MAX_FIELD_CHARS;
/// The longest reason stored (characters).
pub const MAX_REASON_CHARS: usize = crate::data::fields::MAX_REASON_CHARS;

/// SQL condition on a reason row `c` of `current_judgments`: its reviewer has accepted the answer
/// since. A reason explains a ✗, so such a reason no longer counts (the event stays in the log).
///
/// The reviewer's verdict in force on the answer is the latest effective event in its verdict
/// slot, found through the (reviewer, slot, id) index: an `EXISTS` over `current_judgments` read
/// the whole view for every reason, and `stats` took 2.5 minutes at 20 000 reasons (issue 34).
pub(super) const REASON_OVERRULED: &str = "COALESCE((SELECT v.kind FROM effective_judgments v
     WHERE v.reviewer_id = c.reviewer_id AND v.slot = 'verdict:' || CAST(c.answer_id AS TEXT)
     ORDER BY v.id DESC LIMIT 1), '') = 'accept'";

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Accept => "accept",
            DecisionKind::Reject => "reject",
            DecisionKind::Prefer => "prefer",
            DecisionKind::Tie => "tie",
            DecisionKind::Rate => "rate",
            DecisionKind::Flag => "flag",
            DecisionKind::Note => "note",
            DecisionKind::Demo => "demo",
            DecisionKind::Edit => "edit",
            DecisionKind::Reason => "reason",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accept" => DecisionKind::Accept,
            "reject" => DecisionKind::Reject,
            "prefer" => DecisionKind::Prefer,
            "tie" => DecisionKind::Tie,
            "rate" => DecisionKind::Rate,
            "flag" => DecisionKind::Flag,
            "note" => DecisionKind::Note,
            "demo" => DecisionKind::Demo,
            "edit" => DecisionKind::Edit,
            "reason" => DecisionKind::Reason,
            _ => return None,
        })
    }

    /// The slot a decision occupies: a later decision in the same slot replaces it.
    pub(super) fn slot(
        self,
        sample: i64,
        round: Option<i64>,
        answer: Option<i64>,
    ) -> anyhow::Result<String> {
        let need = |id: Option<i64>, what: &str| {
            id.ok_or_else(|| anyhow::anyhow!("a {} decision needs {what}", self.as_str()))
        };
        Ok(match self {
            DecisionKind::Accept | DecisionKind::Reject => {
                format!("verdict:{}", need(answer, "an answer")?)
            }
            DecisionKind::Prefer | DecisionKind::Tie => {
                format!("preference:{}", need(round, "a round")?)
            }
            DecisionKind::Rate => format!("rating:{}", need(round, "a round")?),
            DecisionKind::Flag => format!("flag:{sample}"),
            DecisionKind::Note => format!("note:{sample}"),
            DecisionKind::Demo => format!("demo:{sample}"),
            DecisionKind::Edit => format!("edit:{}", need(answer, "an answer")?),
            DecisionKind::Reason => format!("reason:{}", need(answer, "an answer")?),
        })
    }

    /// Refuses a value this kind cannot hold: an edit or reason without text, or longer than
    /// its bound.
    pub(super) fn check_value(self, value: Option<&str>) -> anyhow::Result<()> {
        let bound = match self {
            DecisionKind::Edit => MAX_EDIT_CHARS,
            DecisionKind::Reason => MAX_REASON_CHARS,
            _ => return Ok(()),
        };
        let text =
            value.ok_or_else(|| anyhow::anyhow!("a {} decision needs its text", self.as_str()))?;
        let chars = text.chars().count();
        anyhow::ensure!(
            chars <= bound,
            "a {} decision holds at most {bound} characters; this one has {chars}",
            self.as_str()
        );
        Ok(())
    }
}

/// A decision to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub sample_key: i64,
    pub round_id: Option<i64>,
    pub answer_id: Option<i64>,
    pub kind: DecisionKind,
    pub value: Option<String>,
    /// Answer ids in the order they were shown, so position bias can be measured.
    pub shown_order: Option<Vec<i64>>,
    /// Whether the figure was on the reviewer's screen when they decided (None: not known, as
    /// for imported decisions and those made before this was recorded).
    pub figure_shown: Option<bool>,
}

/// A decision in force (latest effective event of its slot).
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentDecision {
    pub event_id: i64,
    pub sample_key: i64,
    pub round_id: Option<i64>,
    pub answer_id: Option<i64>,
    pub kind: DecisionKind,
    pub value: Option<String>,
}

/// The reviewer's row id, if the reviewer exists. Read-only: never takes the write lock, so
/// looking at samples never waits for an import or a trainer writing scores.
pub fn find_reviewer(db: &Db, name: &str) -> anyhow::Result<Option<i64>> {
    db.query_opt(
        "SELECT id FROM reviewers WHERE name = ?1",
        params![name.trim()],
        |r| r.get(0),
    )
}

/// The reviewer's row id, creating the reviewer on first use.
pub fn reviewer_id(db: &Db, name: &str) -> anyhow::Result<i64> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "the reviewer name is empty");
    if let Some(id) = find_reviewer(db, name)? {
        return Ok(id);
    }
    db.execute(
        &format!(
            "INSERT INTO reviewers (name, created_at) VALUES (?1, {NOW}) ON CONFLICT(name) DO NOTHING"
        ),
        params![name],
    )?;
    db.query_value("SELECT id FROM reviewers WHERE name = ?1", params![name])
}

/// Appends one decision under a fresh unique id; returns its event id.
pub fn append(db: &Db, reviewer: i64, j: &NewDecision) -> anyhow::Result<i64> {
    let uid = new_decision_uid();
    append_once(db, reviewer, j, &uid, None)?
        .ok_or_else(|| anyhow::anyhow!("decision id {uid} is already taken"))
}

/// A new client-made decision id (UUID v4): what makes a resent decision a no-op.
pub fn new_decision_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Appends one decision with unique id `uid`, unless an event with that id is stored already
/// (a resend): returns the new event's id, or None for a resend.
pub fn append_once(
    db: &Db,
    reviewer: i64,
    j: &NewDecision,
    uid: &str,
    made_at: Option<&str>,
) -> anyhow::Result<Option<i64>> {
    let slot = j.kind.slot(j.sample_key, j.round_id, j.answer_id)?;
    j.kind.check_value(j.value.as_deref())?;
    let shown = j
        .shown_order
        .as_ref()
        .map(|o| serde_json::to_string(o).expect("ids serialise"));
    // The guidelines version in force when the decision was made (`?11`, its time when it was
    // made offline, else now): the latest stored by then, so a journaled decision keeps the
    // version the reviewer decided under (see `team_guidelines.rs`).
    db.query_opt(
        &format!(
            "INSERT INTO judgments (reviewer_id, sample_id, round_id, answer_id, kind, value, slot, shown_order, created_at, uid, figure_shown, guidelines_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?11, {NOW}), ?9, ?10,
                     (SELECT max(g.version) FROM team_guidelines g WHERE g.stored_at <= COALESCE(?11, {NOW}))) ON CONFLICT (uid) DO NOTHING RETURNING id"
        ),
        params![
            reviewer,
            j.sample_key,
            j.round_id,
            j.answer_id,
            j.kind.as_str(),
            j.value,
            slot,
            shown,
            uid,
            j.figure_shown.map(i64::from),
            made_at
        ],
        |r| r.get(0),
    )
}

impl Workspace {
    /// Commits one decision by `reviewer` (durably, before returning).
    pub fn record(&self, reviewer: &str, j: &NewDecision) -> anyhow::Result<i64> {
        let reviewer = reviewer_id(&self.db, reviewer)?;
        append(&self.db, reviewer, j)
    }

    /// Commits one decision with the client-made id `uid` (see [`new_decision_uid`]) exactly
    /// once: sent again (a lost reply, a journal flushed twice) it changes nothing. Returns the
    /// event id and whether this call stored it.
    pub fn record_once(
        &self,
        reviewer: &str,
        uid: &str,
        j: &NewDecision,
    ) -> anyhow::Result<(i64, bool)> {
        self.record_once_made_at(reviewer, uid, j, None)
    }

    /// As [`Self::record_once`], stored with the time the decision was made (`made_at`, the
    /// workspace's own timestamp format), not the time it reached the workspace: a decision
    /// made offline keeps its hour.
    pub fn record_once_made_at(
        &self,
        reviewer: &str,
        uid: &str,
        j: &NewDecision,
        made_at: Option<&str>,
    ) -> anyhow::Result<(i64, bool)> {
        let reviewer_key = reviewer_id(&self.db, reviewer)?;
        if let Some(id) = append_once(&self.db, reviewer_key, j, uid, made_at)? {
            return Ok((id, true));
        }
        let (id, stored_reviewer): (i64, i64) = self.db.query_row(
            "SELECT id, reviewer_id FROM judgments WHERE uid = ?1",
            params![uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        anyhow::ensure!(
            stored_reviewer == reviewer_key,
            "decision id {uid} is stored under another reviewer"
        );
        Ok((id, false))
    }

    /// Withdraws the reviewer's latest decision still in effect; returns the sample it was about.
    pub fn undo_last(&self, reviewer: &str) -> anyhow::Result<Option<i64>> {
        let Some(reviewer) = find_reviewer(&self.db, reviewer)? else {
            return Ok(None);
        };
        let last: Option<(i64, i64)> = self.db.query_opt(
            "SELECT id, sample_id FROM effective_judgments WHERE reviewer_id = ?1 ORDER BY id DESC LIMIT 1",
            params![reviewer],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some((event, sample)) = last else {
            return Ok(None);
        };
        self.append_undo(reviewer, sample, event)?;
        Ok(Some(sample))
    }

    /// Withdraws one given event if it is still in effect (used for decisions recorded under
    /// another name, like final decisions); returns the sample it was about.
    pub fn undo_event(&self, event: i64) -> anyhow::Result<Option<i64>> {
        let found: Option<(i64, i64)> = self.db.query_opt(
            "SELECT reviewer_id, sample_id FROM effective_judgments WHERE id = ?1",
            params![event],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some((reviewer, sample)) = found else {
            return Ok(None);
        };
        self.append_undo(reviewer, sample, event)?;
        Ok(Some(sample))
    }

    fn append_undo(&self, reviewer: i64, sample: i64, event: i64) -> anyhow::Result<()> {
        self.db.execute(
            &format!(
                "INSERT INTO judgments (reviewer_id, sample_id, kind, slot, undoes, created_at, uid)
                 VALUES (?1, ?2, 'undo', 'undo', ?3, {NOW}, ?4)"
            ),
            params![reviewer, sample, event, new_decision_uid()],
        )?;
        Ok(())
    }

    /// The reviewer's decisions in force on one sample.
    pub fn current_decisions(
        &self,
        reviewer: &str,
        sample_key: i64,
    ) -> anyhow::Result<Vec<CurrentDecision>> {
        let Some(reviewer) = find_reviewer(&self.db, reviewer)? else {
            return Ok(Vec::new());
        };
        let rows = self.db.query_vec(
            "SELECT id, sample_id, round_id, answer_id, kind, value FROM current_judgments
             WHERE reviewer_id = ?1 AND sample_id = ?2 ORDER BY id",
            params![reviewer, sample_key],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<String>(4)?,
                    r.get(5)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (event_id, sample_key, round_id, answer_id, kind, value) in rows {
            let Some(kind) = DecisionKind::parse(&kind) else {
                continue;
            };
            out.push(CurrentDecision {
                event_id,
                sample_key,
                round_id,
                answer_id,
                kind,
                value,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::workspace_with_rounds_on;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn workspace_with_sample(db: TestDb) -> (TestWorkspace, crate::store::StoredSample) {
        workspace_with_rounds_on(db, &[("q", &["a1", "a2"])])
    }

    fn verdict(s: &crate::store::StoredSample, answer: usize, kind: DecisionKind) -> NewDecision {
        NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][answer]),
            kind,
            value: None,
            shown_order: Some(vec![s.answer_ids[0][1], s.answer_ids[0][0]]),
            figure_shown: None,
        }
    }

    fn later_decision_in_a_slot_wins_and_undo_restores_the_earlier_one(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        ws.record("ana", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ana", &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        ws.record("ana", &verdict(&s, 1, DecisionKind::Accept))
            .unwrap();
        let kinds = |ws: &Workspace| {
            ws.current_decisions("ana", s.key)
                .unwrap()
                .into_iter()
                .map(|d| (d.answer_id, d.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&ws),
            vec![
                (Some(s.answer_ids[0][0]), DecisionKind::Reject),
                (Some(s.answer_ids[0][1]), DecisionKind::Accept)
            ]
        );
        assert_eq!(ws.undo_last("ana").unwrap(), Some(s.key));
        assert_eq!(ws.undo_last("ana").unwrap(), Some(s.key));
        assert_eq!(
            kinds(&ws),
            vec![(Some(s.answer_ids[0][0]), DecisionKind::Accept)]
        );
        assert_eq!(ws.undo_last("ana").unwrap(), Some(s.key));
        assert!(kinds(&ws).is_empty());
        assert_eq!(ws.undo_last("ana").unwrap(), None, "nothing left to undo");
        let events: i64 = ws
            .db
            .query_value("SELECT count(*) FROM judgments", params![])
            .unwrap();
        assert_eq!(events, 6, "every event is kept");
    }

    fn reviewers_see_only_their_own_decisions(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        ws.record("ana", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        ws.record("ben", &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        assert_eq!(
            ws.current_decisions("ana", s.key).unwrap()[0].kind,
            DecisionKind::Accept
        );
        assert_eq!(
            ws.current_decisions("ben", s.key).unwrap()[0].kind,
            DecisionKind::Reject
        );
        ws.undo_last("ben").unwrap();
        assert_eq!(ws.current_decisions("ana", s.key).unwrap().len(), 1);
    }

    fn a_verdict_without_an_answer_is_refused(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        let mut j = verdict(&s, 0, DecisionKind::Accept);
        j.answer_id = None;
        assert!(ws.record("ana", &j).is_err());
    }

    fn a_resent_decision_is_stored_once(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        let uid = new_decision_uid();
        let j = verdict(&s, 0, DecisionKind::Accept);
        let (first, stored) = ws.record_once("ana", &uid, &j).unwrap();
        assert!(stored);
        let (again, stored_again) = ws.record_once("ana", &uid, &j).unwrap();
        assert_eq!((again, stored_again), (first, false));
        assert_eq!(ws.decision_event_count().unwrap(), 1);
        assert!(
            ws.record_once("ben", &uid, &j).is_err(),
            "another reviewer cannot claim the id"
        );
        assert_eq!(ws.decision_event_count().unwrap(), 1);
    }

    fn whether_the_figure_was_shown_is_stored_and_counted(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        let unseen = NewDecision {
            figure_shown: Some(false),
            ..verdict(&s, 0, DecisionKind::Accept)
        };
        ws.record("ana", &unseen).unwrap();
        let seen = NewDecision {
            figure_shown: Some(true),
            ..verdict(&s, 1, DecisionKind::Reject)
        };
        ws.record("ana", &seen).unwrap();
        ws.record("ben", &verdict(&s, 1, DecisionKind::Accept))
            .unwrap();
        assert_eq!(ws.stats().unwrap().decided_without_figure, 1);
        // Decided again with the figure on screen: the decision in force was seen.
        ws.record(
            "ana",
            &NewDecision {
                figure_shown: Some(true),
                ..verdict(&s, 0, DecisionKind::Accept)
            },
        )
        .unwrap();
        assert_eq!(ws.stats().unwrap().decided_without_figure, 0);
    }

    fn a_reason_stops_counting_while_its_answer_is_accepted_and_counts_again_after(db: TestDb) {
        let (ws, s) = workspace_with_sample(db);
        let reasons = |ws: &Workspace| {
            ws.stats()
                .unwrap()
                .reasons
                .iter()
                .map(|r| r.count)
                .sum::<i64>()
        };
        ws.record("ana", &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        ws.record(
            "ana",
            &NewDecision {
                value: Some("factual error".into()),
                ..verdict(&s, 0, DecisionKind::Reason)
            },
        )
        .unwrap();
        // Another reviewer's ✓ on the answer changes nothing of ana's reason.
        ws.record("ben", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        assert_eq!(reasons(&ws), 1);
        ws.record("ana", &verdict(&s, 0, DecisionKind::Accept))
            .unwrap();
        assert_eq!(reasons(&ws), 0, "overruled by ana's own ✓");
        ws.record("ana", &verdict(&s, 0, DecisionKind::Reject))
            .unwrap();
        assert_eq!(reasons(&ws), 1, "the ✗ again: the reason counts again");
        assert_eq!(ws.undo_last("ana").unwrap(), Some(s.key));
        assert_eq!(reasons(&ws), 0, "the undo brings the ✓ back");
    }

    on_both_databases!(
        a_reason_stops_counting_while_its_answer_is_accepted_and_counts_again_after,
        whether_the_figure_was_shown_is_stored_and_counted,
        a_resent_decision_is_stored_once,
        later_decision_in_a_slot_wins_and_undo_restores_the_earlier_one,
        reviewers_see_only_their_own_decisions,
        a_verdict_without_an_answer_is_refused
    );
}
