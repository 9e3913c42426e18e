//! Writes parsed records into the open import transaction and counts what happened.

use std::path::PathBuf;

use anyhow::Context;

use super::images::ImageAt;
use super::{ConflictPolicy, Prepared};
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{
    EditImport, ImageUrlRecord, ImportedVerdict, Record, Sample, ScoreRecord, VerdictImport,
};
use crate::store::{DecisionKind, ImageUrl, ImportBatch, InsertOutcome, NewDecision};

/// The reviewer that judgments carried by data files are recorded under.
pub const IMPORTED_REVIEWER: &str = "imported";

#[derive(Debug, Default)]
pub struct Counts {
    pub samples_added: usize,
    pub samples_unchanged: usize,
    pub rounds_added: usize,
    pub answers_added: usize,
    pub verdicts_added: usize,
    pub scores_added: usize,
    pub urls_added: usize,
    /// Edits and reasons recorded (an edit already in force is not counted again).
    pub edits_added: usize,
    pub reasons_added: usize,
    pub conflicts: Vec<String>,
}

pub struct Applier<'b, 'w> {
    batch: &'b ImportBatch<'w>,
    source_id: i64,
    policy: ConflictPolicy,
    /// The folders beside the imported file ([`ImageAt::BesideFile`] indexes them), taken out
    /// once registered.
    beside_file: Vec<Option<PathBuf>>,
    missing_images: usize,
    counts: Counts,
}

impl<'b, 'w> Applier<'b, 'w> {
    pub fn new(
        batch: &'b ImportBatch<'w>,
        source_id: i64,
        beside_file: Vec<Option<PathBuf>>,
        policy: ConflictPolicy,
    ) -> Self {
        Self {
            batch,
            source_id,
            policy,
            beside_file,
            missing_images: 0,
            counts: Counts::default(),
        }
    }

    /// Applies the records parsed from the record at `loc`; `prepared` holds what the parsing
    /// thread worked out for each of their samples, in order.
    pub fn apply_all(
        &mut self,
        records: Vec<Record>,
        prepared: &[Prepared],
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        let mut prepared = prepared.iter();
        for record in records {
            match record {
                Record::Sample { sample, verdicts } => {
                    let prepared = prepared
                        .next()
                        .context("a sample without its content hash")?;
                    self.sample(&sample, prepared, &verdicts, loc, warnings)?
                }
                Record::Score(score) => self.score(&score, loc, warnings)?,
                Record::ImageUrl(url) => self.url(&url, loc)?,
                Record::Edit(edit) => self.edit(&edit, loc)?,
                Record::Verdict(verdict) => self.verdict(&verdict, loc)?,
            }
        }
        Ok(())
    }

    pub fn finish(self, warnings: &mut Warnings) -> anyhow::Result<Counts> {
        if self.missing_images > 0 {
            warnings.add(
                "image file not found (in the --images folders, beside the file or in the download cache; fetch missing ones with `vital fetch-images`)",
                format!("{} sample(s)", self.missing_images),
            );
        }
        Ok(self.counts)
    }

    fn conflict(&mut self, loc: RecordLoc, what: String) -> anyhow::Result<()> {
        self.counts.conflicts.push(format!("{loc}: {what}"));
        // Fail fast on huge files: the first few conflicts say enough.
        if self.policy == ConflictPolicy::Fail && self.counts.conflicts.len() >= 10 {
            anyhow::bail!(
                "{} conflicts with stored samples (same id, different content), e.g.:\n  {}\n(use --on-conflict skip to keep the stored versions and import the rest)",
                self.counts.conflicts.len(),
                self.counts.conflicts.join("\n  ")
            );
        }
        Ok(())
    }

    fn sample(
        &mut self,
        sample: &Sample,
        prepared: &Prepared,
        verdicts: &[ImportedVerdict],
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        if sample.caption.trim().is_empty() {
            warnings.add("empty caption", format!("{loc}: sample {}", sample.id));
        }
        let outcome = self
            .batch
            .insert_hashed_sample(sample, &prepared.content_hash, Some(self.source_id))
            .with_context(|| format!("{loc}: sample `{}`", sample.id))?;
        match outcome {
            InsertOutcome::Unchanged(_) => self.counts.samples_unchanged += 1,
            InsertOutcome::Conflict { .. } => self.conflict(
                loc,
                format!(
                    "sample id `{}` is already stored with different content",
                    sample.id
                ),
            )?,
            InsertOutcome::Inserted(key) => {
                self.counts.samples_added += 1;
                self.counts.rounds_added += sample.rounds.len();
                self.counts.answers_added +=
                    sample.rounds.iter().map(|r| r.answers.len()).sum::<usize>();
                self.image_found(prepared.image)?;
                if !verdicts.is_empty() {
                    self.verdicts(key, verdicts)?;
                }
            }
        }
        Ok(())
    }

    fn verdicts(&mut self, key: i64, verdicts: &[ImportedVerdict]) -> anyhow::Result<()> {
        let reviewer = self.batch.reviewer_id(IMPORTED_REVIEWER)?;
        let slots = self.batch.answer_slots(key)?;
        for v in verdicts {
            let Some(slot) = slots.iter().find(|s| {
                s.round_position == v.round as i64 && s.answer_position == v.answer as i64
            }) else {
                continue;
            };
            let judgment = NewDecision {
                sample_key: key,
                round_id: Some(slot.round_id),
                answer_id: Some(slot.answer_id),
                kind: if v.accepted {
                    DecisionKind::Accept
                } else {
                    DecisionKind::Reject
                },
                value: None,
                shown_order: None,
                figure_shown: None,
            };
            self.batch.append_decision(reviewer, &judgment)?;
            self.counts.verdicts_added += 1;
        }
        Ok(())
    }

    /// Counts a missing image; registers the folder beside the imported file that holds one.
    fn image_found(&mut self, at: ImageAt) -> anyhow::Result<()> {
        match at {
            ImageAt::Missing => self.missing_images += 1,
            ImageAt::BesideFile(i) => {
                if let Some(dir) = self.beside_file.get_mut(i).and_then(Option::take) {
                    self.batch.add_image_dir(&dir)?;
                }
            }
            ImageAt::NotLocal | ImageAt::Registered => {}
        }
        Ok(())
    }

    fn score(
        &mut self,
        s: &ScoreRecord,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        let answer_id =
            self.batch
                .answer_at(&s.sample_id, s.round as i64 - 1, s.answer as i64 - 1)?;
        let Some(answer_id) = answer_id else {
            warnings.add(
                "score for an answer not in the workspace skipped",
                format!(
                    "{loc}: sample {} round {} answer {}",
                    s.sample_id, s.round, s.answer
                ),
            );
            return Ok(());
        };
        let stored = self.batch.model_score(answer_id, &s.judge)?;
        match stored {
            Some(old) if (old - s.score).abs() < 1e-9 => {}
            Some(old) => self.conflict(
                loc,
                format!(
                    "judge `{}` already scored sample {} round {} answer {} as {old}, not {}",
                    s.judge, s.sample_id, s.round, s.answer, s.score
                ),
            )?,
            None => {
                self.batch
                    .insert_model_score(answer_id, &s.judge, s.score)?;
                self.counts.scores_added += 1;
            }
        }
        Ok(())
    }

    /// A reviewer's correction, recorded as the review screen records one: the edit, the ✗ of
    /// the original unless the reviewer has a verdict on it, and the reasons. The sample must be
    /// in the workspace and the original must be the stored answer; an edit already in force is
    /// left alone, so importing a file twice adds nothing.
    fn edit(&mut self, e: &EditImport, loc: RecordLoc) -> anyhow::Result<()> {
        let answers = self.batch.round_answers(&e.sample_id, e.round as i64 - 1)?;
        anyhow::ensure!(
            !answers.is_empty(),
            "{loc}: sample `{}` has no round {} in the workspace (import the samples first)",
            e.sample_id,
            e.round
        );
        let found = match e.answer {
            Some(n) => answers.iter().find(|a| a.3 == n as i64 - 1),
            None => answers.iter().find(|a| a.4 == e.original),
        };
        let Some((sample_key, round_id, answer_id, position, text)) = found else {
            anyhow::bail!(
                "{loc}: sample `{}` round {} has no answer {}",
                e.sample_id,
                e.round,
                e.answer
                    .map_or_else(|| "with the original text".to_string(), |n| n.to_string())
            );
        };
        anyhow::ensure!(
            *text == e.original,
            "{loc}: sample `{}` round {} answer {}: `original` is not the stored answer",
            e.sample_id,
            e.round,
            position + 1
        );
        // These names carry meaning in the log (decisions from files, adjudications): a file
        // may not speak for them.
        anyhow::ensure!(
            e.reviewer != IMPORTED_REVIEWER && e.reviewer != crate::store::FINAL_REVIEWER,
            "{loc}: `{}` is a reserved reviewer name, not a person's",
            e.reviewer
        );
        let reviewer = self.batch.reviewer_id(&e.reviewer)?;
        let in_force = self.batch.answer_decisions_in_force(reviewer, *answer_id)?;
        let has = |kind: &str, value: Option<&str>| {
            in_force
                .iter()
                .any(|(k, v)| k == kind && value.is_none_or(|value| v.as_deref() == Some(value)))
        };
        let decision = |kind, value| NewDecision {
            sample_key: *sample_key,
            round_id: Some(*round_id),
            answer_id: Some(*answer_id),
            kind,
            value,
            shown_order: None,
            figure_shown: None,
        };
        if !has("edit", Some(&e.edited)) {
            if !has("accept", None) && !has("reject", None) {
                self.batch
                    .append_decision(reviewer, &decision(DecisionKind::Reject, None))?;
            }
            self.batch.append_decision(
                reviewer,
                &decision(DecisionKind::Edit, Some(e.edited.clone())),
            )?;
            self.counts.edits_added += 1;
        }
        for reason in &e.reasons {
            if !has("reason", Some(reason)) {
                self.batch.append_decision(
                    reviewer,
                    &decision(DecisionKind::Reason, Some(reason.clone())),
                )?;
                self.counts.reasons_added += 1;
            }
        }
        Ok(())
    }

    /// A reviewer's ✓ or ✗ from a verdicts file, appended to the log under the reviewer's name
    /// (at the time the file gives, if any). The answer must be in the workspace; a verdict the
    /// reviewer already has in force on it is left alone, so importing it again adds nothing.
    fn verdict(&mut self, v: &VerdictImport, loc: RecordLoc) -> anyhow::Result<()> {
        // These names carry meaning in the log (decisions from data files, adjudications): a
        // file may not speak for them.
        anyhow::ensure!(
            v.reviewer != IMPORTED_REVIEWER && v.reviewer != crate::store::FINAL_REVIEWER,
            "{loc}: `{}` is a reserved reviewer name, not a person's",
            v.reviewer
        );
        let answers = self.batch.round_answers(&v.sample_id, v.round as i64 - 1)?;
        anyhow::ensure!(
            !answers.is_empty(),
            "{loc}: sample `{}` has no round {} in the workspace (import the samples first)",
            v.sample_id,
            v.round
        );
        let Some((sample_key, round_id, answer_id, _, _)) =
            answers.iter().find(|a| a.3 == v.answer as i64 - 1)
        else {
            anyhow::bail!(
                "{loc}: sample `{}` round {} has no answer {} (it has {})",
                v.sample_id,
                v.round,
                v.answer,
                answers.len()
            );
        };
        let kind = if v.accepted {
            DecisionKind::Accept
        } else {
            DecisionKind::Reject
        };
        let reviewer = self.batch.reviewer_id(&v.reviewer)?;
        let in_force = self.batch.answer_decisions_in_force(reviewer, *answer_id)?;
        if in_force.iter().any(|(k, _)| k == kind.as_str()) {
            return Ok(());
        }
        let decision = NewDecision {
            sample_key: *sample_key,
            round_id: Some(*round_id),
            answer_id: Some(*answer_id),
            kind,
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        self.batch
            .append_decision_at(reviewer, &decision, v.time.as_deref())?;
        self.counts.verdicts_added += 1;
        Ok(())
    }

    fn url(&mut self, u: &ImageUrlRecord, loc: RecordLoc) -> anyhow::Result<()> {
        let stored = self.batch.image_url(&u.key)?;
        match stored {
            Some(ImageUrl { url, member, .. }) if url == u.url && member == u.member => {}
            Some(ImageUrl { url, .. }) => {
                self.conflict(loc, format!("image `{}` already has the URL {url}", u.key))?
            }
            None => {
                self.batch
                    .insert_image_url(&u.key, &u.url, u.member.as_deref())?;
                self.counts.urls_added += 1;
            }
        }
        Ok(())
    }
}
