//! `vital score`: scores every answer and sample with a trained selector run.

use clap::Args;

use super::{exit, Context};
use crate::selector_runs::{self, SampleScore};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The run to score with [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// mean-best | mean | min | first-round (the method's) [default: config selector.sample_score]
    #[arg(long)]
    pub sample_score: Option<SampleScore>,
}

pub fn run(ctx: &Context, args: ScoreArgs) -> anyhow::Result<i32> {
    let mut ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("scoring")?;
    let how = args
        .sample_score
        .unwrap_or(ctx.config.selector.sample_score);
    let (run_id, report, selector) = selector_runs::load_run(&ws, args.run)?;
    // Answers added since the run was trained are embedded by the run's own encoder first.
    if let Some(encoder) = &report.settings.encoder {
        encoder.check_folder()?;
        if encoder.folder.exists() {
            super::embed::fill(ctx, &ws, &encoder.folder, report.settings.backend, 32)?;
            if report.settings.paper_text {
                super::embed::fill_prepared(&ws, &encoder.folder, &report.settings, 32)?;
            }
        }
    }
    let embeddings = report.settings.load_embeddings()?;
    let bar = ctx.count_bar(0, "scoring answers");
    let (answers, samples) = selector_runs::score(
        &mut ws,
        run_id,
        &selector,
        embeddings.as_ref(),
        how,
        &mut |done| bar.set_position(done as u64),
        &std::sync::atomic::AtomicBool::new(false),
    )?;
    bar.finish_and_clear();
    if !ctx.quiet {
        println!("run {run_id}: scored {answers} answers and {samples} samples");
    }
    Ok(exit::OK)
}
