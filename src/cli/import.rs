//! `vital import FILE...`

use std::path::PathBuf;

use clap::Args;

use super::{exit, Context};
use crate::data::formats::Format;
use crate::import::{import_file, ConflictPolicy, ImportOptions, ImportReport};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import (JSON arrays or JSON Lines). Each is imported whole or not at all.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// The files' shape; `auto` tells it from the first record.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,

    /// Directory holding the images the records refer to (repeatable).
    #[arg(long = "images", value_name = "DIR")]
    pub images: Vec<PathBuf>,

    /// What to do when a sample id is already stored with different content.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_conflict: ConflictPolicy,

    /// Print one JSON report per file instead of a summary.
    #[arg(long)]
    pub json: bool,

    /// With `--format verdicts`: store the lines as gold, the known verdicts of the team
    /// plan's gold checks, not as any reviewer's decisions (`reviewer` names who set each).
    #[arg(long)]
    pub gold: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Auto,
    Llava,
    Candidates,
    Pairs,
    Qa,
    Demos,
    Scores,
    Urls,
    /// Reviewers' corrections, as `export --format edits` writes them.
    Edits,
    /// Reviewers' ✓/✗ verdicts, as `export --format verdicts` writes them.
    Verdicts,
}

impl FormatArg {
    fn format(self) -> Option<Format> {
        Some(match self {
            FormatArg::Auto => return None,
            FormatArg::Llava => Format::Llava,
            FormatArg::Candidates => Format::Candidates,
            FormatArg::Pairs => Format::Pairs,
            FormatArg::Qa => Format::Qa,
            FormatArg::Demos => Format::Demos,
            FormatArg::Scores => Format::Scores,
            FormatArg::Urls => Format::Urls,
            FormatArg::Edits => Format::Edits,
            FormatArg::Verdicts => Format::Verdicts,
        })
    }
}

pub fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<i32> {
    if args.gold {
        return import_gold(ctx, &args);
    }
    let mut ws = ctx.open_workspace()?;
    ws.ensure_curator("importing")?;
    let options = ImportOptions {
        format: args.format.format(),
        image_dirs: args.images.clone(),
        on_conflict: args.on_conflict,
    };
    let mut failed = 0;
    for file in &args.files {
        let bar = ctx.progress_bar(0, &file.display().to_string());
        let result = import_file(&mut ws, file, &options, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        match result {
            Ok(report) => print_report(ctx, &report, args.json),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(exit_for(failed, args.files.len()))
}

fn print_report(ctx: &Context, report: &ImportReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("reports serialise")
        );
        return;
    }
    if ctx.quiet {
        return;
    }
    let file = report.file.display();
    if report.already_imported {
        println!("{file}: already imported, nothing to do");
        return;
    }
    if let Some(note) = &report.note {
        println!("{file}: note: {note}");
        return;
    }
    let format = report.format.map_or("?", |f| f.name());
    let mut parts = vec![format!("{} records", report.records)];
    let mut add = |n: usize, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    add(report.samples_added, "samples added");
    add(report.samples_unchanged, "unchanged");
    add(report.rounds_added, "rounds");
    add(report.answers_added, "answers");
    add(report.verdicts_added, "clinician verdicts");
    add(report.scores_added, "judge scores");
    add(report.urls_added, "image URLs");
    add(report.edits_added, "edited answers");
    add(report.reasons_added, "reasons");
    println!("{file} ({format}): {}", parts.join(", "));
    if !report.conflicts.is_empty() {
        println!(
            "  {} conflicting record(s) kept as stored:",
            report.conflicts.len()
        );
        for c in report.conflicts.iter().take(10) {
            println!("    {c}");
        }
    }
    if !report.warning_details.is_empty() {
        print!("  warnings:\n{}", report.warning_details);
    }
}

/// The largest gold file read (64 MiB: a million known verdicts).
const MAX_GOLD_FILE_BYTES: u64 = 64 << 20;

/// `vital import --format verdicts --gold FILE...`: each file's lines stored as known verdicts,
/// each file whole or not at all.
fn import_gold(ctx: &Context, args: &ImportArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        args.format == FormatArg::Verdicts,
        "--gold reads verdicts files: add --format verdicts"
    );
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("storing gold answers")?;
    let mut failed = 0;
    for file in &args.files {
        match read_gold(file).and_then(|lines| ws.store_gold(&lines)) {
            Ok(stored) => {
                if args.json {
                    println!("{}", serde_json::json!({"file": file, "gold": stored}));
                } else if !ctx.quiet {
                    println!(
                        "{} (gold): {} known verdicts added, {} changed, {} unchanged; {} gold samples in the workspace",
                        file.display(),
                        stored.added,
                        stored.changed,
                        stored.unchanged,
                        stored.gold_samples
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(exit_for(failed, args.files.len()))
}

/// The known verdicts of one verdicts file (the shape `export --format verdicts` writes; every
/// field checked as for an ordinary verdicts import, `reviewer` included: it names who set the
/// known verdict). At most [`MAX_GOLD_FILE_BYTES`] are read.
fn read_gold(path: &std::path::Path) -> anyhow::Result<Vec<crate::store::GoldLine>> {
    use anyhow::Context as _;
    use std::io::Read;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read {name}"))?
        .len();
    anyhow::ensure!(
        size <= MAX_GOLD_FILE_BYTES,
        "{name}: {size} bytes; a gold file is at most {MAX_GOLD_FILE_BYTES} bytes"
    );
    let source = crate::data::json_stream::JsonSource::new(std::io::BufReader::new(
        file.take(MAX_GOLD_FILE_BYTES + 1),
    ))
    .with_context(|| format!("cannot read {name}"))?;
    let mut parser = Format::Verdicts.parser();
    let mut warnings = crate::data::warnings::Warnings::default();
    let mut lines = Vec::new();
    source
        .for_each(|loc, value| {
            for record in parser.parse(&value, loc, &mut warnings)? {
                if let crate::data::Record::Verdict(v) = record {
                    lines.push(crate::store::GoldLine {
                        at: format!("{name} {loc}"),
                        sample_id: v.sample_id,
                        round: v.round,
                        answer: v.answer,
                        accepted: v.accepted,
                        source: v.reviewer,
                    });
                }
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    // An empty file is data: it stores nothing.
    Ok(lines)
}

/// The exit code of an import of `files` files, `failed` of which failed.
fn exit_for(failed: usize, files: usize) -> i32 {
    match failed {
        0 => exit::OK,
        n if n == files => exit::FAILURE,
        _ => exit::PARTIAL,
    }
}
