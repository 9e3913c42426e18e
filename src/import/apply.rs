//! Writes parsed records into the open import transaction and counts what happened.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::ConflictPolicy;
use crate::data::json_stream::RecordLoc;
use crate::data::warnings::Warnings;
use crate::data::{ImageUrlRecord, ImportedVerdict, Record, Sample, ScoreRecord};
use crate::store::{self, DecisionKind, InsertOutcome, NewJudgment, NOW};

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

pub struct Applier<'c> {
    conn: &'c Connection,
    source_id: i64,
    policy: ConflictPolicy,
    /// Registered image directories, then the imported file's own folder and its `images/`.
    image_dirs: Vec<PathBuf>,
    registered_dirs: usize,
    missing_images: usize,
    counts: Counts,
}

impl<'c> Applier<'c> {
    pub fn new(
        conn: &'c Connection,
        source_id: i64,
        file_dir: PathBuf,
        policy: ConflictPolicy,
    ) -> anyhow::Result<Self> {
        let mut image_dirs: Vec<PathBuf> = conn
            .prepare("SELECT path FROM image_dirs ORDER BY rowid")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|p| p.map(PathBuf::from))
            .collect::<Result<_, _>>()?;
        let registered_dirs = image_dirs.len();
        image_dirs.push(file_dir.join("images"));
        image_dirs.push(file_dir);
        Ok(Self {
            conn,
            source_id,
            policy,
            image_dirs,
            registered_dirs,
            missing_images: 0,
            counts: Counts::default(),
        })
    }

    pub fn apply_all(
        &mut self,
        records: Vec<Record>,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        for record in records {
            match record {
                Record::Sample { sample, verdicts } => {
                    self.sample(&sample, &verdicts, loc, warnings)?
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
        verdicts: &[ImportedVerdict],
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<()> {
        if sample.caption.trim().is_empty() {
            warnings.add("empty caption", format!("{loc}: sample {}", sample.id));
        }
        match store::insert_sample(self.conn, sample, Some(self.source_id))? {
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
        let reviewer = store::reviewer_id(self.conn, IMPORTED_REVIEWER)?;
        let ids: Vec<(i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT r.position, a.position, a.id FROM rounds r JOIN answers a ON a.round_id = r.id WHERE r.sample_id = ?1",
            )?
            .query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for v in verdicts {
            let Some(&(_, _, answer_id)) = ids
                .iter()
                .find(|(r, a, _)| *r == v.round as i64 && *a == v.answer as i64)
            else {
                continue;
            };
            let round_id: i64 = self.conn.query_row(
                "SELECT round_id FROM answers WHERE id = ?1",
                [answer_id],
                |r| r.get(0),
            )?;
            let judgment = NewJudgment {
                sample_key: key,
                round_id: Some(round_id),
                answer_id: Some(answer_id),
                kind: if v.accepted {
                    DecisionKind::Accept
                } else {
                    DecisionKind::Reject
                },
                value: None,
                shown_order: None,
            };
            store::append_judgment(self.conn, reviewer, &judgment)?;
            self.counts.verdicts_added += 1;
        }
        Ok(())
    }

    fn check_image(&mut self, image: &str) -> anyhow::Result<()> {
        if image.starts_with("http://") || image.starts_with("https://") {
            return Ok(());
        }
        let name = Path::new(image)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_default();
        let found = self
            .image_dirs
            .iter()
            .position(|dir| dir.join(image).is_file() || dir.join(&name).is_file());
        match found {
            None => self.missing_images += 1,
            Some(i) if i >= self.registered_dirs => {
                // Images beside the imported file: remember the folder for the review screen.
                let dir = self.image_dirs.remove(i);
                let abs = std::fs::canonicalize(&dir).unwrap_or(dir);
                self.conn.execute(
                    "INSERT OR IGNORE INTO image_dirs (path) VALUES (?1)",
                    [abs.to_string_lossy()],
                )?;
                self.image_dirs.insert(self.registered_dirs, abs);
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
        let answer_id: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT a.id FROM samples s JOIN rounds r ON r.sample_id = s.id JOIN answers a ON a.round_id = r.id
                 WHERE s.ext_id = ?1 AND r.position = ?2 AND a.position = ?3",
            )?
            .query_row(params![s.sample_id, s.round as i64 - 1, s.answer as i64 - 1], |r| r.get(0))
            .optional()?;
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
        let stored: Option<f64> = self
            .conn
            .prepare_cached("SELECT score FROM model_scores WHERE answer_id = ?1 AND judge = ?2")?
            .query_row(params![answer_id, s.judge], |r| r.get(0))
            .optional()?;
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
                self.conn
                    .prepare_cached(&format!(
                        "INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES (?1, ?2, ?3, {NOW})"
                    ))?
                    .execute(params![answer_id, s.judge, s.score])?;
                self.counts.scores_added += 1;
            }
        }
        Ok(())
    }

    fn url(&mut self, u: &ImageUrlRecord, loc: RecordLoc) -> anyhow::Result<()> {
        let stored: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT url, member FROM image_urls WHERE key = ?1")?
            .query_row([&u.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match stored {
            Some((url, member)) if url == u.url && member == u.member => {}
            Some((url, _)) => {
                self.conflict(loc, format!("image `{}` already has the URL {url}", u.key))?
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO image_urls (key, url, member) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![u.key, u.url, u.member])?;
                self.counts.urls_added += 1;
            }
        }
        Ok(())
    }
}
