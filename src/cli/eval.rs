//! `vital eval`: the method's metrics on held-out clinician pairs, beside the baselines.

use std::path::PathBuf;

use clap::Args;

use super::{exit, Context};
use crate::selector::Metrics;
use crate::selector_runs;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A clinician pairs file to evaluate on (scored without importing it) [default: the run's
    /// held-out figures in the workspace]
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// The run to evaluate [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// Print JSON: alignment_rate, auc, mean_rank, map, pairs, and the same for each baseline.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: EvalArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    let (run_id, report, selector) = selector_runs::load_run(&ws, args.run)?;
    // A pairs file's texts are not in the cache: the run's encoder embeds them (folder checked).
    let mut encoder = match (&report.settings.encoder, &args.pairs) {
        (Some(used), Some(_)) if used.folder.exists() => {
            used.check_folder()?;
            Some(crate::embed::open_encoder(
                &used.folder,
                report.settings.backend,
            )?)
        }
        _ => None,
    };
    let eval = selector_runs::evaluate_with(
        &ws,
        run_id,
        &report,
        &selector,
        args.pairs.as_deref(),
        encoder
            .as_mut()
            .map(|e| e.as_mut() as &mut dyn crate::embed::SentenceEncoder),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&eval)?);
        return Ok(exit::OK);
    }
    println!(
        "run {run_id} on {} ({} pairs)",
        eval.source, eval.selector.pairs
    );
    println!(
        "{:<16}{:>10}{:>8}{:>11}{:>8}",
        "", "alignment", "AUC", "mean rank", "MAP"
    );
    let row = |name: &str, m: &Metrics| {
        println!(
            "{name:<16}{:>10.3}{:>8.3}{:>11.3}{:>8.3}",
            m.alignment_rate, m.auc, m.mean_rank, m.map
        );
    };
    row("selector", &eval.selector);
    row("answer length", &eval.baselines.answer_length);
    row("word overlap", &eval.baselines.word_overlap);
    if let Some(cosine) = &eval.baselines.encoder_cosine {
        row("cos(q, a)", cosine);
    }
    if let Some(judge) = &eval.baselines.judge {
        row(&format!("judge ({} p.)", judge.pairs), judge);
    }
    Ok(exit::OK)
}
