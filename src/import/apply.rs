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
use crate::store::{DecisionKind, ImageUrl, ImportBatch, InsertOutcome, NewDecision, NewSample};

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

/// Samples waiting to be stored together: a server takes them in a few statements, a
/// directory one at a time (what is done with each outcome is the same on both).
const SAMPLES_PER_WRITE: usize = 2000;

/// Fewer samples are waiting when their texts reach this (samples of megabytes each): memory
/// stays bounded whatever the file holds.
const PENDING_BYTES: usize = 32 << 20;

/// The bytes of a sample's texts, roughly what it holds in memory.
fn text_bytes(sample: &Sample) -> usize {
    sample.caption.len()
        + sample.mentions.iter().map(String::len).sum::<usize>()
        + sample
            .rounds
            .iter()
            .map(|r| r.question.len() + r.answers.iter().map(String::len).sum::<usize>())
            .sum::<usize>()
}

/// A parsed sample waiting for [`Applier::flush`].
pub struct Pending {
    sample: Sample,
    prepared: Prepared,
    verdicts: Vec<ImportedVerdict>,
    loc: RecordLoc,
}

/// Samples stored and done with, on their way back to the thread that parsed them: freed there,
/// their memory goes back to the allocator's pool of that thread, which allocates the next
/// samples from it (freed on the writer, every block went back under a lock the parser was
/// taking at the same time: a tenth of the import's time was the allocator's).
pub struct Spent(#[allow(dead_code)] Vec<Pending>);

pub struct Applier<'b, 'w> {
    batch: &'b ImportBatch<'w>,
    /// Where stored samples go to be freed; `None`, or a full or closed channel: freed here.
    spent: Option<std::sync::mpsc::SyncSender<Spent>>,
    /// Samples parsed but not yet stored; stored before any other record, so a record that
    /// refers to a sample earlier in the file finds it.
    pending: Vec<Pending>,
    /// The pending samples' texts, in bytes.
    pending_bytes: usize,
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
        spent: Option<std::sync::mpsc::SyncSender<Spent>>,
    ) -> Self {
        Self {
            batch,
            spent,
            pending: Vec::with_capacity(SAMPLES_PER_WRITE),
            pending_bytes: 0,
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
        prepared: Vec<Prepared>,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        let mut prepared = prepared.into_iter();
        for record in records {
            match record {
                Record::Sample { sample, verdicts } => {
                    let prepared = prepared
                        .next()
                        .context("a sample without its content hash")?;
                    if sample.caption.trim().is_empty() {
                        warnings.add("empty caption", format!("{loc}: sample {}", sample.id));
                    }
                    self.pending_bytes += text_bytes(&sample);
                    self.pending.push(Pending {
                        sample,
                        prepared,
                        verdicts,
                        loc,
                    });
                    if self.pending.len() >= SAMPLES_PER_WRITE
                        || self.pending_bytes >= PENDING_BYTES
                    {
                        self.flush()?;
                    }
                }
                Record::Score(score) => {
                    self.flush()?;
                    self.score(&score, loc, warnings)?
                }
                Record::ImageUrl(url) => {
                    self.flush()?;
                    self.url(&url, loc)?
                }
                Record::Edit(edit) => {
                    self.flush()?;
                    self.edit(&edit, loc)?
                }
                Record::Verdict(verdict) => {
                    self.flush()?;
                    self.verdict(&verdict, loc)?
                }
            }
        }
        Ok(())
    }

    /// Stores the pending samples, then does with each what its outcome asks, in file order.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let offered: Vec<NewSample<'_>> = pending
            .iter()
            .map(|p| NewSample {
                sample: &p.sample,
                content_hash: &p.prepared.content_hash,
                lists: &p.prepared.lists,
            })
            .collect();
        let outcomes = self
            .batch
            .insert_samples(&offered, Some(self.source_id))
            .map_err(|refused| match refused.index.and_then(|i| pending.get(i)) {
                Some(p) => refused
                    .error
                    .context(format!("{}: sample `{}`", p.loc, p.sample.id)),
                None => refused.error.context(format!(
                    "the samples of records {} to {}",
                    pending[0].loc,
                    pending[pending.len() - 1].loc
                )),
            })?;
        drop(offered);
        for (p, outcome) in pending.iter().zip(outcomes) {
            self.sample(p, outcome)?;
        }
        match &self.spent {
            Some(spent) => {
                // A full or closed channel hands the samples back, to be freed here.
                let _ = spent.try_send(Spent(pending));
                self.pending = Vec::with_capacity(SAMPLES_PER_WRITE);
            }
            None => {
                // The buffer's memory is kept for the next samples.
                let mut pending = pending;
                pending.clear();
                self.pending = pending;
            }
        }
        Ok(())
    }

    pub fn finish(mut self, warnings: &mut Warnings) -> anyhow::Result<Counts> {
        self.flush()?;
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

    fn sample(&mut self, pending: &Pending, outcome: InsertOutcome) -> anyhow::Result<()> {
        let Pending {
            sample,
            prepared,
            verdicts,
            loc,
        } = pending;
        let loc = *loc;
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
