//! `vital stats [--json]`

use clap::Args;

use super::{exit, Context};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print a JSON object (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: StatsArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    print_stats(&ws, args.json)?;
    Ok(exit::OK)
}

pub fn print_stats(ws: &crate::store::Workspace, json: bool) -> anyhow::Result<()> {
    let stats = ws.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!("workspace       {}", ws.dir().display());
    let rows = [
        ("samples", stats.samples),
        ("  demonstrations", stats.demos),
        ("rounds", stats.rounds),
        ("  unanswered", stats.unanswered_rounds),
        ("answers", stats.answers),
        ("judgments", stats.judgments),
        ("human pairs", stats.human_pairs),
        ("reviewers", stats.reviewers),
        ("judge scores", stats.model_scores),
        ("selector runs", stats.selector_runs),
        ("scored answers", stats.scored_answers),
        ("image URLs", stats.image_urls),
        ("imported files", stats.sources),
    ];
    for (name, value) in rows {
        println!("{name:<16}{value}");
    }
    Ok(())
}
