//! `vital export`: the curated dataset (LLaVA), preference pairs (DPO, clinician pairs),
//! demonstrations and scores, streamed from one pass over the workspace into an atomic file with a
//! manifest beside it. No UI here: the CLI and the review screen's export form both call [`run`].
//!
//! Rules (README, "Export"):
//! - An answer's verdict is resolved over reviewers: a final decision wins, else the majority; a
//!   tie counts as undecided (see [`crate::store::agreement`]).
//! - Per round the accepted answer (the best-scored if several), else the best-scored answer no
//!   one rejected (selector score, then judge score, then the first). Rounds whose answers are all
//!   rejected, unanswered rounds, and samples left without rounds are dropped and counted.
//! - `--select accepted` keeps only rounds with an accepted answer.
//! - Each written answer's provenance (single, unanimous, majority, adjudicated, unresolved;
//!   [`provenance`]) is counted in the manifest and written in `dpo` records.

mod include;
pub mod provenance;
mod rank;
mod records;
mod scan;
pub mod spec;

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

pub use crate::atomic_write::AtomicFile;
pub use include::IncludeReport;
pub use provenance::{Provenance, ProvenanceCounts};
pub use rank::{resolve_run, sample_scores};
pub use spec::{ExportFormat, PairSource, ScoreSource, Selection};

use crate::data::display_text;
use crate::store::{AnswerScoreSource, Resolution, Verdicts, Workspace};
use scan::{choose, RoundChoice, SampleRows};

/// Everything one export needs (the CLI's flags, or the review screen's export form).
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub select: Selection,
    pub format: ExportFormat,
    pub out: PathBuf,
    /// Whose scores rank samples, and which scores a `scores` export writes. Default: selector.
    pub by: ScoreSource,
    /// LLaVA files merged into a `llava` export.
    pub include: Vec<PathBuf>,
    /// Use this judge's scores only (default: the mean over judges).
    pub judge: Option<String>,
    /// Use this selector run (default: the latest).
    pub run: Option<i64>,
    /// Where `dpo` pairs come from. Default: human only.
    pub pairs_from: Vec<PairSource>,
    /// `llava`, `demos`: export the original answers, not reviewers' corrections of them.
    pub keep_originals: bool,
    /// Leave out verdicts given while the figure was not on the reviewer's screen.
    pub with_figure_only: bool,
}

impl ExportRequest {
    pub fn new(select: Selection, format: ExportFormat, out: impl Into<PathBuf>) -> Self {
        Self {
            select,
            format,
            out: out.into(),
            by: ScoreSource::Selector,
            include: Vec::new(),
            judge: None,
            run: None,
            pairs_from: vec![PairSource::Human],
            keep_originals: false,
            with_figure_only: false,
        }
    }

    /// `<out>.manifest.json`
    pub fn manifest_path(&self) -> PathBuf {
        let mut name = self.out.as_os_str().to_owned();
        name.push(".manifest.json");
        PathBuf::from(name)
    }
}

/// What the export is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading verdicts and scores, choosing samples.
    Selecting,
    /// Writing samples: `done` of `total` samples read.
    Writing,
    /// Merging an included file: `done` of `total` bytes.
    Including,
    /// Syncing and renaming.
    Finishing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// Counts of what was kept and left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Samples in the workspace.
    pub samples_total: usize,
    /// Samples the selection kept.
    pub samples_selected: usize,
    /// Samples written (with at least one round, or one pair / score line).
    pub samples_written: usize,
    /// Selected samples written without anything (no round left, no pair, not approved).
    pub samples_dropped: usize,
    pub rounds_written: usize,
    pub rounds_dropped_unanswered: usize,
    pub rounds_dropped_rejected: usize,
    /// `--select accepted`: rounds without an accepted answer.
    pub rounds_dropped_not_accepted: usize,
    /// Records (array elements or lines) in the output, included ones too.
    pub records: usize,
    /// `dpo`: pairs of an edited answer (chosen) against its original (rejected).
    pub edit_pairs: usize,
    /// `llava`, `demos`: rounds written with a reviewer's corrected answer.
    pub rounds_edited: usize,
}

/// The manifest written beside the output (`<out>.manifest.json`), and the result of [`run`].
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub vital_version: &'static str,
    pub created_at: String,
    pub output: PathBuf,
    pub manifest: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub format: ExportFormat,
    pub select: Selection,
    pub by: ScoreSource,
    pub judge: Option<String>,
    /// The selector run whose scores were used (ranking and answer choice), if any.
    pub selector_run: Option<i64>,
    pub pairs_from: Vec<PairSource>,
    pub ranking: rank::Chosen,
    pub counts: Counts,
    /// Where the verdicts of the written answers came from (see [`provenance`]).
    pub provenance: ProvenanceCounts,
    pub include: Vec<IncludeReport>,
    /// Include conflicts (same id, different content), the first 100.
    pub conflicts: Vec<String>,
    pub conflicts_total: usize,
    pub workspace: PathBuf,
    pub seconds: f64,
}

/// Exports from the workspace in `dir`, opening its own connection: for a background thread.
pub fn run_in_dir(
    dir: &Path,
    req: &ExportRequest,
    progress: &dyn Fn(Progress),
    cancel: &AtomicBool,
) -> anyhow::Result<ExportSummary> {
    let ws = Workspace::open_existing(dir)?;
    run(&ws, req, progress, cancel)
}

/// Runs one export. On any error or cancellation neither the output nor the manifest is
/// touched (a previous file of that name stays as it was).
pub fn run(
    ws: &Workspace,
    req: &ExportRequest,
    progress: &dyn Fn(Progress),
    cancel: &AtomicBool,
) -> anyhow::Result<ExportSummary> {
    let started = Instant::now();
    anyhow::ensure!(
        req.include.is_empty() || req.format == ExportFormat::Llava,
        "--include merges LLaVA files: it needs --format llava"
    );
    // One read transaction: the export sees one consistent snapshot while reviewers keep working.
    let snapshot = ws.read_snapshot()?;
    progress(Progress {
        phase: Phase::Selecting,
        done: 0,
        total: 0,
    });
    let verdicts = if req.with_figure_only {
        ws.verdicts_with_figure()?
    } else {
        ws.verdicts()?
    };
    let run = resolve_run(ws, req.run)?;
    let judge = req.judge.as_deref();
    let scores = if req.select.needs_ranking() {
        Some(sample_scores(ws, req.by, run, judge, &verdicts)?)
    } else {
        None
    };
    if req.format == ExportFormat::Scores {
        check_scores_exist(ws, req.by, run, judge)?;
    }
    if req.format == ExportFormat::Dpo
        && req.pairs_from.contains(&PairSource::Selector)
        && run.is_none()
    {
        anyhow::bail!(
            "--pairs-from selector: no selector run yet: run `vital train` and `vital score`"
        );
    }
    let chosen = rank::select(ws, req.select, scores.as_ref(), &verdicts)?;
    let samples_total = ws.sample_count()?;
    let demo_marks = if req.format == ExportFormat::Demos {
        ws.demo_marks()?
    } else {
        Default::default()
    };
    let created_at = ws.db_now()?;
    let edits = if matches!(
        req.format,
        ExportFormat::Llava | ExportFormat::Demos | ExportFormat::Dpo
    ) && !(req.keep_originals && req.format != ExportFormat::Dpo)
    {
        ws.latest_edits()?
    } else {
        Default::default()
    };

    let keys = chosen.keys.as_ref();
    let keep = |k: i64| keys.is_none_or(|set| set.contains(&k));
    let mut out = AtomicFile::create(&req.out)?;
    let mut counts = Counts {
        samples_total,
        samples_selected: chosen.keys.as_ref().map_or(samples_total, HashSet::len),
        ..Default::default()
    };
    if req.format == ExportFormat::Verdicts {
        for row in ws.verdict_rows()? {
            if keep(row.sample_key) {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")?;
                counts.records += 1;
            }
        }
    }
    if req.format == ExportFormat::Edits {
        for record in ws.edits()? {
            if keep(record.sample_key) {
                serde_json::to_writer(&mut out, &record)?;
                out.write_all(b"\n")?;
                counts.records += 1;
            }
        }
    }
    let array = matches!(req.format, ExportFormat::Llava | ExportFormat::Demos);
    if array {
        out.write_all(b"[\n")?;
    }
    let mut seen = (!req.include.is_empty()).then(include::Seen::new);
    let mut first = true;

    let full = !matches!(req.format, ExportFormat::Llava | ExportFormat::Scores);
    let total = counts.samples_selected as u64;
    let mut done = 0u64;
    let mut provenance = ProvenanceCounts::default();
    let mut writer = Writer {
        req,
        verdicts: &verdicts,
        provenance: &mut provenance,
        demo_marks: &demo_marks,
        edits: &edits,
        counts: &mut counts,
        first: &mut first,
        seen: seen.as_mut(),
    };
    scan::for_each_sample(ws, run, judge, full, &keep, cancel, |s| {
        writer.sample(s, &mut out)?;
        done += 1;
        if done.is_multiple_of(8192) {
            progress(Progress {
                phase: Phase::Writing,
                done,
                total,
            });
        }
        Ok(())
    })?;
    if req.format == ExportFormat::Scores {
        // Scores are one line per (answer, judge): a second, score-ordered pass.
        write_scores(ws, req, run, &verdicts, &keep, &mut counts, &mut out)?;
    }

    let mut includes = Vec::new();
    let mut conflicts = Vec::new();
    if let Some(seen) = seen.as_mut() {
        for path in &req.include {
            let report = include::merge(
                path,
                seen,
                &mut out,
                &mut first,
                &mut conflicts,
                cancel,
                &|done, total| {
                    progress(Progress {
                        phase: Phase::Including,
                        done,
                        total,
                    })
                },
            )?;
            counts.records += report.added;
            includes.push(report);
        }
    }
    if array {
        out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    }
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        anyhow::bail!("export cancelled");
    }
    progress(Progress {
        phase: Phase::Finishing,
        done: total,
        total,
    });
    let conflicts_total = conflicts.len();
    conflicts.truncate(100);
    let manifest_path = req.manifest_path();
    let mut manifest = AtomicFile::create(&manifest_path)?;
    let out = out.finish()?;
    let (bytes, sha256) = (out.bytes, out.sha256.clone());
    let summary = ExportSummary {
        vital_version: env!("CARGO_PKG_VERSION"),
        created_at,
        output: final_path(&req.out),
        manifest: manifest_path,
        bytes,
        sha256,
        format: req.format,
        select: req.select,
        by: req.by,
        judge: req.judge.clone(),
        selector_run: run,
        pairs_from: if req.format == ExportFormat::Dpo {
            req.pairs_from.clone()
        } else {
            Vec::new()
        },
        ranking: chosen,
        counts,
        provenance,
        include: includes,
        conflicts,
        conflicts_total,
        workspace: if ws.is_server() {
            ws.location().to_path_buf()
        } else {
            std::fs::canonicalize(ws.dir()).unwrap_or_else(|_| ws.dir().to_path_buf())
        },
        seconds: started.elapsed().as_secs_f64(),
    };
    serde_json::to_writer_pretty(&mut manifest, &summary)?;
    manifest.write_all(b"\n")?;
    let manifest = manifest.finish()?;
    crate::atomic_write::commit_pair(out, manifest)
        .with_context(|| "cannot put the export and its manifest in place")?;
    snapshot.finish()?;
    Ok(summary)
}

/// The absolute path `out` will have once renamed into place (its folder exists already).
fn final_path(out: &std::path::Path) -> PathBuf {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    match (std::fs::canonicalize(dir), out.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => out.to_path_buf(),
    }
}

fn check_scores_exist(
    ws: &Workspace,
    by: ScoreSource,
    run: Option<i64>,
    judge: Option<&str>,
) -> anyhow::Result<()> {
    match by {
        ScoreSource::Selector => {
            let Some(run) = run else {
                anyhow::bail!("no selector run yet: run `vital train` and `vital score` (or export --by judge)");
            };
            let n = ws.selector_answer_score_count(run)?;
            anyhow::ensure!(
                n > 0,
                "selector run {run} has no answer scores: run `vital score`"
            );
        }
        ScoreSource::Judge => {
            let n = ws.judge_score_count(judge)?;
            anyhow::ensure!(
                n > 0,
                "no judge scores{}: import them (`vital import scores.jsonl`) or run `vital judge`",
                judge.map(|j| format!(" by `{j}`")).unwrap_or_default()
            );
        }
        ScoreSource::Human => {}
    }
    Ok(())
}

struct Writer<'a> {
    req: &'a ExportRequest,
    verdicts: &'a Verdicts,
    provenance: &'a mut ProvenanceCounts,
    demo_marks: &'a std::collections::HashMap<i64, bool>,
    /// The latest edit in force per answer id (empty with `keep_originals`).
    edits: &'a std::collections::HashMap<i64, crate::store::EditRecord>,
    counts: &'a mut Counts,
    first: &'a mut bool,
    seen: Option<&'a mut include::Seen>,
}

impl Writer<'_> {
    fn element(
        &mut self,
        out: &mut dyn Write,
        value: &impl Serialize,
        array: bool,
    ) -> anyhow::Result<()> {
        if array && !*self.first {
            out.write_all(b",\n")?;
        }
        *self.first = false;
        serde_json::to_writer(&mut *out, value)?;
        if !array {
            out.write_all(b"\n")?;
        }
        self.counts.records += 1;
        Ok(())
    }

    fn sample(&mut self, s: &SampleRows, out: &mut dyn Write) -> anyhow::Result<()> {
        match self.req.format {
            ExportFormat::Llava => self.llava(s, out),
            ExportFormat::Demos => self.demo(s, out),
            ExportFormat::Dpo | ExportFormat::Pairs => self.pairs(s, out),
            // Written by `write_scores` and before the scan; counted there.
            ExportFormat::Scores | ExportFormat::Edits | ExportFormat::Verdicts => Ok(()),
        }
    }

    /// The rounds kept with their answers; counts the dropped ones. A round with a reviewer's
    /// corrected answer is kept with the correction (the latest, when several answers of the
    /// round were edited), unless the request keeps originals.
    fn kept<'s>(
        &mut self,
        s: &'s SampleRows,
    ) -> Vec<(&'s scan::RoundRows, Cow<'s, scan::AnswerRow>)> {
        let accepted_only = self.req.select == Selection::Accepted;
        let mut kept = Vec::with_capacity(s.rounds.len());
        for round in &s.rounds {
            let edited = round
                .answers
                .iter()
                .filter_map(|a| self.edits.get(&a.id).map(|e| (a, e)))
                .max_by_key(|(_, e)| e.event_id);
            if let Some((answer, edit)) = edited {
                self.counts.rounds_edited += 1;
                kept.push((
                    round,
                    Cow::Owned(scan::AnswerRow {
                        text: edit.edited.clone(),
                        ..answer.clone()
                    }),
                ));
                continue;
            }
            match choose(round, self.verdicts, accepted_only) {
                RoundChoice::Kept(a) => kept.push((round, Cow::Borrowed(a))),
                RoundChoice::Unanswered => self.counts.rounds_dropped_unanswered += 1,
                RoundChoice::AllRejected => self.counts.rounds_dropped_rejected += 1,
                RoundChoice::NotAccepted => self.counts.rounds_dropped_not_accepted += 1,
            }
        }
        kept
    }

    fn llava(&mut self, s: &SampleRows, out: &mut dyn Write) -> anyhow::Result<()> {
        let kept = self.kept(s);
        if kept.is_empty() {
            self.counts.samples_dropped += 1;
            return Ok(());
        }
        let kept_refs: Vec<_> = kept.iter().map(|(r, a)| (*r, a.as_ref())).collect();
        let record = records::Llava {
            id: &s.ext_id,
            image: s.image.as_deref(),
            conversations: records::conversation(s.image.is_some(), &kept_refs, false),
        };
        if let Some(seen) = self.seen.as_deref_mut() {
            let fp = include::fingerprint(
                record.image,
                record
                    .conversations
                    .iter()
                    .map(|t| (t.from, t.value.as_ref())),
            );
            seen.insert_workspace(&s.ext_id, fp);
        }
        for (_, answer) in &kept {
            self.provenance
                .add(provenance::of(self.verdicts, answer.id));
        }
        self.counts.rounds_written += kept.len();
        self.counts.samples_written += 1;
        self.element(out, &record, true)
    }

    /// Approved as a demonstration: a `demo` mark in force, else the imported flag, else every
    /// answered round has an accepted answer.
    fn demo(&mut self, s: &SampleRows, out: &mut dyn Write) -> anyhow::Result<()> {
        let answered: Vec<_> = s.rounds.iter().filter(|r| !r.answers.is_empty()).collect();
        let approved = match self.demo_marks.get(&s.key) {
            Some(mark) => *mark,
            None => {
                s.is_demo
                    || (!answered.is_empty()
                        && answered.iter().all(|r| {
                            r.answers
                                .iter()
                                .any(|a| self.verdicts.resolution(a.id) == Resolution::Accepted)
                        }))
            }
        };
        if !approved {
            self.counts.samples_dropped += 1;
            return Ok(());
        }
        let kept = self.kept(s);
        if kept.is_empty() {
            self.counts.samples_dropped += 1;
            return Ok(());
        }
        let kept_refs: Vec<_> = kept.iter().map(|(r, a)| (*r, a.as_ref())).collect();
        let record = records::demo(s, records::conversation(false, &kept_refs, true));
        for (_, answer) in &kept {
            self.provenance
                .add(provenance::of(self.verdicts, answer.id));
        }
        self.counts.rounds_written += kept.len();
        self.counts.samples_written += 1;
        self.element(out, &record, true)
    }

    fn pairs(&mut self, s: &SampleRows, out: &mut dyn Write) -> anyhow::Result<()> {
        let sources = if self.req.format == ExportFormat::Pairs {
            &[PairSource::Human][..]
        } else {
            &self.req.pairs_from[..]
        };
        let mut written = 0;
        let mention = s.mentions.join(" ");
        for round in &s.rounds {
            let status: Vec<Resolution> = round
                .answers
                .iter()
                .map(|a| self.verdicts.resolution(a.id))
                .collect();
            let mut pairs: Vec<(&scan::AnswerRow, &scan::AnswerRow, &'static str)> = Vec::new();
            // A correction is the best `chosen` there is: the edited text against its original.
            let mut edit_pairs: Vec<(&str, &scan::AnswerRow)> = Vec::new();
            if sources.contains(&PairSource::Human) && self.req.format == ExportFormat::Dpo {
                for a in &round.answers {
                    if let Some(edit) = self.edits.get(&a.id) {
                        edit_pairs.push((&edit.edited, a));
                    }
                }
            }
            if sources.contains(&PairSource::Human) {
                for (w, ws) in round.answers.iter().zip(&status) {
                    for (l, ls) in round.answers.iter().zip(&status) {
                        if *ws == Resolution::Accepted && *ls == Resolution::Rejected {
                            pairs.push((w, l, "human"));
                        }
                    }
                }
            }
            // Model pairs only where clinicians gave none: their verdicts win.
            let human_pair =
                status.contains(&Resolution::Accepted) && status.contains(&Resolution::Rejected);
            for (source, name, score) in [
                (
                    PairSource::Judge,
                    "judge",
                    (|a: &scan::AnswerRow| a.judge) as fn(&scan::AnswerRow) -> Option<f64>,
                ),
                (PairSource::Selector, "selector", |a: &scan::AnswerRow| {
                    a.selector
                }),
            ] {
                if human_pair
                    || !sources.contains(&source)
                    || self.req.format == ExportFormat::Pairs
                {
                    continue;
                }
                let scored: Vec<(&scan::AnswerRow, f64)> = round
                    .answers
                    .iter()
                    .filter_map(|a| score(a).map(|s| (a, s)))
                    .collect();
                let best = scored
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.position.cmp(&a.0.position)));
                let worst = scored
                    .iter()
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.position.cmp(&b.0.position)));
                if let (Some(b), Some(w)) = (best, worst) {
                    if b.1 > w.1 {
                        pairs.push((b.0, w.0, name));
                        break;
                    }
                }
            }
            for (edited, original) in edit_pairs {
                written += 1;
                self.counts.edit_pairs += 1;
                let record = records::Dpo {
                    prompt: Cow::Owned(display_text(&round.question)),
                    chosen: edited,
                    rejected: &original.text,
                    image: s.image.as_deref(),
                    id: format!(
                        "{}:r{}:a{}:edit",
                        s.ext_id,
                        round.position + 1,
                        original.position + 1
                    ),
                    source: "edit",
                    chosen_provenance: None,
                    rejected_provenance: None,
                };
                self.element(out, &record, false)?;
            }
            for (w, l, source) in pairs {
                written += 1;
                let (chosen_provenance, rejected_provenance) = (
                    provenance::of(self.verdicts, w.id),
                    provenance::of(self.verdicts, l.id),
                );
                self.provenance.add(chosen_provenance);
                self.provenance.add(rejected_provenance);
                if self.req.format == ExportFormat::Pairs {
                    let record = records::Pair {
                        img: s.image.as_deref(),
                        fig_caption: &s.caption,
                        inline_mention: mention.clone(),
                        question: Cow::Owned(display_text(&round.question)),
                        answer_positive: &w.text,
                        answer_negative: &l.text,
                    };
                    self.element(out, &record, false)?;
                } else {
                    let record = records::Dpo {
                        prompt: Cow::Owned(display_text(&round.question)),
                        chosen: &w.text,
                        rejected: &l.text,
                        image: s.image.as_deref(),
                        id: format!(
                            "{}:r{}:a{}>a{}",
                            s.ext_id,
                            round.position + 1,
                            w.position + 1,
                            l.position + 1
                        ),
                        source,
                        chosen_provenance,
                        rejected_provenance,
                    };
                    self.element(out, &record, false)?;
                }
            }
        }
        if written > 0 {
            self.counts.samples_written += 1;
        } else {
            self.counts.samples_dropped += 1;
        }
        Ok(())
    }
}

/// `scores`: one line per answer score from `by` (each judge's own score; the selector run's
/// score; clinicians' resolved verdict as 10 or 0).
fn write_scores(
    ws: &Workspace,
    req: &ExportRequest,
    run: Option<i64>,
    verdicts: &Verdicts,
    keep: &dyn Fn(i64) -> bool,
    counts: &mut Counts,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let source = match req.by {
        ScoreSource::Judge => AnswerScoreSource::Judge(req.judge.as_deref()),
        ScoreSource::Selector => AnswerScoreSource::SelectorRun(run),
        ScoreSource::Human => AnswerScoreSource::Clinicians,
    };
    let mut samples: HashSet<i64> = HashSet::new();
    ws.for_each_answer_score(source, keep, &mut |line| {
        let score: f64 = match (req.by, line.score) {
            (ScoreSource::Human, _) => match verdicts.resolution(line.answer_id) {
                Resolution::Accepted => 10.0,
                Resolution::Rejected => 0.0,
                _ => return Ok(()),
            },
            (_, Some(score)) => score,
            (_, None) => anyhow::bail!(
                "sample {} round {} answer {}: a {} score without a value",
                line.sample_id,
                line.round_position + 1,
                line.answer_position + 1,
                req.by.name()
            ),
        };
        let record = records::Score {
            sample_id: &line.sample_id,
            round: line.round_position + 1,
            answer: line.answer_position + 1,
            score,
            judge: Cow::Owned(line.judge),
            source: req.by.name(),
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        counts.records += 1;
        samples.insert(line.sample_key);
        Ok(())
    })?;
    counts.samples_written = samples.len();
    counts.samples_dropped = counts.samples_selected.saturating_sub(samples.len());
    Ok(())
}
