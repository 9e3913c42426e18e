//! `vital export`: the curated dataset and its by-products, atomically, with a manifest.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;

use super::{exit, Context};
use crate::export::{self, ExportFormat, ExportRequest, PairSource, Phase, ScoreSource, Selection};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which samples: all, top:40%, top:N, threshold:X (by --by scores), reviewed (any clinician
    /// decision), accepted (only rounds with an accepted answer).
    #[arg(long, default_value = "all", value_parser = parse_selection)]
    pub select: Selection,
    /// Output shape.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output file; written atomically, with `<out>.manifest.json` beside it.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Whose scores rank samples for top/threshold, and which scores `--format scores` writes.
    #[arg(long, value_enum, default_value_t = ScoreSource::Selector)]
    pub by: ScoreSource,
    /// LLaVA files to merge into a llava export (dedup by id; conflicts reported).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub include: Vec<PathBuf>,
    /// Use this judge's scores only (default: the mean over judges).
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// Use this selector run (default: the latest).
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// Where DPO pairs come from (comma-separated): human, judge, selector.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "human")]
    pub pairs_from: Vec<PairSource>,
    /// llava, demos: write the original answers, not reviewers' corrections of them.
    #[arg(long)]
    pub keep_originals: bool,
    /// Leave out verdicts given while the figure was not on the reviewer's screen (`vital stats`
    /// counts them as decided without the figure).
    #[arg(long)]
    pub with_figure_only: bool,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_selection(text: &str) -> Result<Selection, String> {
    text.parse()
}

pub fn run(ctx: &Context, args: ExportArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("exporting")?;
    let mut req = ExportRequest::new(args.select, args.format, args.out);
    req.by = args.by;
    req.include = args.include;
    req.judge = args.judge;
    req.run = args.run;
    req.pairs_from = args.pairs_from;
    req.keep_originals = args.keep_originals;
    req.with_figure_only = args.with_figure_only;

    let cancel = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(cancel.clone());
    let bar = ctx.progress_bar(0, "exporting");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:20!} [{bar:30}] {pos}/{len} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let summary = export::run(
        &ws,
        &req,
        &|p| {
            let msg = match p.phase {
                Phase::Selecting => "selecting",
                Phase::Writing => "writing",
                Phase::Including => "merging includes",
                Phase::Finishing => "finishing",
            };
            bar.set_message(msg);
            bar.set_length(p.total);
            bar.set_position(p.done);
        },
        &cancel,
    );
    bar.finish_and_clear();
    let summary = summary.map_err(|e| {
        if cancel.load(Ordering::Relaxed) {
            anyhow::anyhow!("export cancelled: {} was not written", req.out.display())
        } else {
            e.context(format!(
                "export to {} failed: nothing written",
                req.out.display()
            ))
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(exit::OK);
    }
    if ctx.quiet {
        return Ok(exit::OK);
    }
    let c = &summary.counts;
    println!(
        "wrote {} ({} records, {} bytes) in {:.1}s",
        summary.output.display(),
        c.records,
        summary.bytes,
        summary.seconds
    );
    println!(
        "  samples: {} selected of {}, {} written, {} dropped",
        c.samples_selected, c.samples_total, c.samples_written, c.samples_dropped
    );
    if matches!(summary.format, ExportFormat::Llava | ExportFormat::Demos) {
        println!(
            "  rounds:  {} written; dropped {} unanswered, {} all rejected, {} not accepted",
            c.rounds_written,
            c.rounds_dropped_unanswered,
            c.rounds_dropped_rejected,
            c.rounds_dropped_not_accepted
        );
        if c.rounds_edited > 0 {
            println!(
                "  {} rounds written with a reviewer's corrected answer",
                c.rounds_edited
            );
        }
    }
    if summary.format == ExportFormat::Dpo {
        println!(
            "  {} of the pairs from reviewers' edits (edited ≻ original)",
            c.edit_pairs
        );
    }
    if let (Some(ranked), Some(cutoff)) = (summary.ranking.ranked, summary.ranking.cutoff) {
        println!(
            "  ranked by {}: {ranked} scored, {} unscored; lowest kept score {cutoff:.4}",
            summary.by.name(),
            summary.ranking.unscored.unwrap_or(0)
        );
    }
    if let Some(run) = summary.selector_run {
        println!("  selector run {run}");
    }
    for inc in &summary.include {
        println!(
            "  included {}: {} records, {} added, {} duplicates, {} conflicts, {} skipped",
            inc.file.display(),
            inc.records,
            inc.added,
            inc.duplicates,
            inc.conflicts,
            inc.skipped
        );
    }
    if summary.conflicts_total > 0 {
        println!(
            "  {} conflicts (same id, different content; the first written was kept):",
            summary.conflicts_total
        );
        for c in summary.conflicts.iter().take(10) {
            println!("    {c}");
        }
        if summary.conflicts_total > 10 {
            println!(
                "    … all listed (first 100) in {}",
                summary.manifest.display()
            );
        }
    }
    println!("  manifest: {}", summary.manifest.display());
    Ok(exit::OK)
}

/// Ctrl-C sets the cancel flag: the export stops, removes its temporary file and fails.
fn watch_ctrl_c(cancel: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
            cancel.store(true, Ordering::Relaxed);
        }
    });
}
