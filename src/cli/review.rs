//! `vital review`: the clinician's review screen.

use clap::Args;

use super::{exit, Context};
use crate::export::ExportFormat;
use crate::selector_runs::RunSettings;
use crate::tui::keymap::Keymap;
use crate::tui::session::SessionOptions;
use crate::tui::trainer::TrainerSettings;
use crate::tui::{ImageProtocol, ReviewOptions};

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Name decisions are recorded under [default: config review.reviewer, else $USER]
    #[arg(long, env = "VITAL_REVIEWER")]
    pub reviewer: Option<String>,

    /// How images are drawn [default: config review.image_protocol, "auto"]
    #[arg(long, value_enum, env = "VITAL_IMAGE_PROTOCOL")]
    pub image_protocol: Option<ImageProtocol>,

    /// The order the queue opens in [default: config review.order, "file"]
    #[arg(long, value_enum)]
    pub order: Option<crate::config::ReviewOrder>,

    /// Adjudicate (a curator): only samples whose reviewers disagree on an answer with no
    /// final decision yet, lowest agreement first; `A`/`X` record the final decision.
    #[arg(long)]
    pub adjudicate: bool,
}

pub fn run(ctx: &Context, mut args: ReviewArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    // On a team server a reviewer is who they logged in as: the role names the decisions.
    if let Some(role) = ws.role()? {
        if let Some(given) = args.reviewer.as_deref().filter(|g| g.trim() != role) {
            eprintln!(
                "note: on {} decisions are recorded under your role `{role}`, not `{given}`",
                ws.describe()
            );
        }
        args.reviewer = Some(role);
    }
    review(ctx, ctx.workspace_dir.clone(), args)
}

/// Opens the review screen on `workspace` (also used by `vital demo`).
pub fn review(
    ctx: &Context,
    workspace: std::path::PathBuf,
    args: ReviewArgs,
) -> anyhow::Result<i32> {
    let config = &ctx.config;
    let keymap =
        Keymap::with_overrides(&config.keys).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let protocol = args.image_protocol.unwrap_or(config.review.image_protocol);
    let Some(reviewer) = args.reviewer.or_else(|| config.reviewer()) else {
        anyhow::bail!(
            "who is reviewing? pass --reviewer NAME (or set VITAL_REVIEWER, or review.reviewer in config.toml): $USER is not set"
        );
    };
    let reviewer = reviewer.trim().to_string();
    // These names carry meaning in the log: decisions from files, and adjudications.
    for reserved in [
        crate::import::IMPORTED_REVIEWER,
        crate::store::FINAL_REVIEWER,
    ] {
        anyhow::ensure!(
            reviewer != reserved,
            "`{reserved}` is a reserved reviewer name; review under your own name (--reviewer NAME)"
        );
    }
    anyhow::ensure!(!reviewer.is_empty(), "the reviewer name is empty");
    let who = reviewer.clone();
    let journal_dir = crate::tui::run(ReviewOptions {
        workspace: workspace.clone(),
        trainer: TrainerSettings {
            workspace: workspace.clone(),
            run: background_run_settings(&workspace, &config.selector),
            sample_score: config.selector.sample_score,
        },
        session: SessionOptions {
            reviewer,
            keymap,
            auto_advance: config.review.auto_advance,
            shuffle: config.review.shuffle_answers,
            train_after: config.review.train_after_decisions,
            top_percent: config.selection.top_percent,
            export_defaults: [
                format!("top:{}%", config.selection.top_percent),
                config.selection.export_format.to_string(),
                format!(
                    "selection.{}",
                    if config.selection.export_format == ExportFormat::Llava {
                        "json"
                    } else {
                        "jsonl"
                    }
                ),
            ],
            order: args.order.unwrap_or(config.review.order),
            reasons: ctx.config.review_reasons()?,
            require_figure: ctx.config.review.require_figure,
            adjudicate: args.adjudicate,
            export_dir: std::path::PathBuf::from(&config.selection.export_dir),
        },
        protocol,
        max_image_side: config.review.max_image_side,
        llm: config.llm.clone(),
    })?;
    // Decisions that never reached the workspace are not lost, but the reviewer must know.
    let journal = crate::store::Journal::open(&journal_dir)?;
    let (waiting, aside) = (journal.count(&who)?, journal.set_aside(&who)?);
    if waiting + aside == 0 {
        return Ok(exit::OK);
    }
    let file = journal_dir.join(crate::store::JOURNAL_FILE);
    if waiting > 0 {
        eprintln!(
            "{waiting} decision(s) of `{who}` are kept on this machine ({}), not yet in the workspace: they are sent the next time you open the review screen",
            file.display()
        );
    }
    if aside > 0 {
        eprintln!(
            "{aside} journal entr(ies) of `{who}` could not be read and were set aside in {} for the curator",
            file.display()
        );
    }
    Ok(exit::PARTIAL)
}

/// The background trainer's settings: the config's, keeping the precomputed embeddings or the
/// encoder of the latest run when it used them (so a run trained with `--embeddings` or
/// `--encoder` is not silently replaced by one without). An encoder run reads the workspace's
/// embedding cache, which `vital embed`/`train --encoder` filled; reviewing adds no texts.
fn background_run_settings(
    workspace: &std::path::Path,
    config: &crate::config::SelectorSettings,
) -> RunSettings {
    let mut settings = RunSettings::from_config(config);
    let latest = crate::store::Workspace::open_existing(workspace)
        .ok()
        .and_then(|ws| crate::selector_runs::load_run_report(&ws, None).ok());
    if let Some((_, report)) = latest {
        settings.embeddings = report.settings.embeddings;
        settings.encoder = report.settings.encoder;
        settings.paper_head = report.settings.paper_head;
    }
    settings
}
