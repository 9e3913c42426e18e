//! Writes parsed records into the open import transaction and counts what happened.

use std::path::PathBuf;

use anyhow::Context;

use super::ConflictPolicy;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{ImageUrlRecord, ImportedVerdict, Record, Sample, ScoreRecord};
use crate::image_files::ImageRoots;
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
    pub conflicts: Vec<String>,
}

pub struct Applier<'b, 'w> {
    batch: &'b ImportBatch<'w>,
    source_id: i64,
    policy: ConflictPolicy,
    /// Registered image directories, then the imported file's own folder and its `images/`.
    image_dirs: Vec<PathBuf>,
    /// `image_dirs`, each canonicalised once for the confined lookup.
    image_roots: Vec<ImageRoots>,
    registered_dirs: usize,
    missing_images: usize,
    counts: Counts,
}

impl<'b, 'w> Applier<'b, 'w> {
    pub fn new(
        batch: &'b ImportBatch<'w>,
        source_id: i64,
        file_dir: PathBuf,
        policy: ConflictPolicy,
    ) -> anyhow::Result<Self> {
        let mut image_dirs = batch.image_dirs()?;
        let registered_dirs = image_dirs.len();
        image_dirs.push(file_dir.join("images"));
        image_dirs.push(file_dir);
        let image_roots = image_dirs
            .iter()
            .map(|d| ImageRoots::new([d.clone()]))
            .collect();
        Ok(Self {
            batch,
            source_id,
            policy,
            image_dirs,
            image_roots,
            registered_dirs,
            missing_images: 0,
            counts: Counts::default(),
        })
    }

    /// Applies the records parsed from the record at `loc`; `hashes` holds the content hash of
    /// each of their samples, in order (computed by the parsing thread).
    pub fn apply_all(
        &mut self,
        records: Vec<Record>,
        hashes: &[String],
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        let mut hashes = hashes.iter();
        for record in records {
            match record {
                Record::Sample { sample, verdicts } => {
                    let hash = hashes.next().context("a sample without its content hash")?;
                    self.sample(&sample, hash, &verdicts, loc, warnings)?
                }
                Record::Score(score) => self.score(&score, loc, warnings)?,
                Record::ImageUrl(url) => self.url(&url, loc)?,
            }
        }
        Ok(())
    }

    pub fn finish(self, warnings: &mut Warnings) -> anyhow::Result<Counts> {
        if self.missing_images > 0 {
            warnings.add(
                "image file not found (pass --images DIR, or fetch them with `vital fetch-images`)",
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
        hash: &str,
        verdicts: &[ImportedVerdict],
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        if sample.caption.trim().is_empty() {
            warnings.add("empty caption", format!("{loc}: sample {}", sample.id));
        }
        match self
            .batch
            .insert_hashed_sample(sample, hash, Some(self.source_id))?
        {
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
                if let Some(image) = &sample.image {
                    self.check_image(image)?;
                }
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
            };
            self.batch.append_decision(reviewer, &judgment)?;
            self.counts.verdicts_added += 1;
        }
        Ok(())
    }

    fn check_image(&mut self, image: &str) -> anyhow::Result<()> {
        if image.starts_with("http://") || image.starts_with("https://") {
            return Ok(());
        }
        // Only a file inside a folder counts (after `..` and links): an absolute or escaping
        // reference must not get the imported file's folder registered.
        let found = self
            .image_roots
            .iter()
            .position(|root| root.lookup(image).found().is_some());
        match found {
            None => self.missing_images += 1,
            Some(i) if i >= self.registered_dirs => {
                // Images beside the imported file: remember the folder for the review screen.
                let dir = self.image_dirs.remove(i);
                let root = self.image_roots.remove(i);
                let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
                self.batch.add_image_dir(&abs)?;
                self.image_dirs.insert(self.registered_dirs, abs);
                self.image_roots.insert(self.registered_dirs, root);
                self.registered_dirs += 1;
            }
            Some(_) => {}
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
