//! `vital train`: trains the selector on the workspace's clinician and judge pairs, then scores
//! every answer with it. `vital sweep`: one run per mixture weight w on the same split.

use std::sync::atomic::AtomicBool;

use clap::Args;
use serde::Serialize;

use super::{exit, Context};
use crate::embed::EncoderRef;
use crate::selector::{BackendKind, Metrics, PairLoss};
use crate::selector_runs::{
    self, Head, JudgePairs, RunOptions, RunOutcome, RunProgress, RunSettings, SampleScore,
};
use crate::store::Workspace;

/// A named set of settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The paper's selector: lr 1e-5, 6 epochs, batch 64, hinge margin 1 on sigmoid outputs
    /// with the mean weighted loss, judge pairs across score levels (30,000/10,000), the first
    /// 50 clinician pairs, text = caption + mention + question + answer, a 512-512-512 head,
    /// samples scored by their first round.
    Paper,
}

/// Options `train` and `sweep` share.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("embedding_source").args(["embeddings", "encoder"])))]
pub struct TrainOptions {
    /// Start from a named set of settings; flags given beside it still win.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// cpu | wgpu | cuda [default: config selector.backend]
    #[arg(long, env = "VITAL_BACKEND")]
    pub backend: Option<BackendKind>,
    /// Passes over the training pairs [default: config selector.epochs]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// hinge (margin 1, the method's) | logistic (Bradley–Terry) [default: config selector.loss]
    #[arg(long)]
    pub loss: Option<PairLoss>,
    /// Seed for the split, the shuffles and the initial weights [default: config selector.seed]
    #[arg(long)]
    pub seed: Option<u64>,
    /// within-round | across-levels (the method's: first-round judge score levels) | both
    /// [default: config selector.judge_pairs]
    #[arg(long)]
    pub judge_pairs: Option<JudgePairs>,
    /// Judge pairs drawn across levels for training [default: config selector.judge_train_pairs]
    #[arg(long, value_name = "N")]
    pub judge_train_pairs: Option<usize>,
    /// Judge pairs drawn across levels for the judge test [default: config selector.judge_test_pairs]
    #[arg(long, value_name = "N")]
    pub judge_test_pairs: Option<usize>,
    /// Precomputed answer embeddings from an outside encoder (e.g. BiomedCLIP): a .npy matrix
    /// with a `<name>.ids.txt` of answer ids beside it, or a .safetensors file (see `vital answers`).
    #[arg(long, value_name = "FILE")]
    pub embeddings: Option<std::path::PathBuf>,
    /// A sentence-encoder model folder: texts the embeddings cache lacks are embedded first, then
    /// the selector reads question·answer, caption·answer and answer·round similarities and a
    /// learned projection of the answer vector, and stops on held-out pairs
    /// [default: config selector.encoder, env VITAL_ENCODER]
    #[arg(long, value_name = "DIR", env = "VITAL_ENCODER")]
    pub encoder: Option<std::path::PathBuf>,
    /// Texts per encoder forward pass, with --encoder [default: 8 on the CPU backend, 64 on a
    /// GPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub encoder_batch_size: Option<u32>,
    /// Train the paper's head on the embeddings alone: concat → MLP 512-512-512 → 1 (with
    /// --encoder: the question, caption and answer vectors concatenated).
    #[arg(long, requires = "embedding_source")]
    pub paper_head: bool,
    /// With an encoder: signals (a linear head starting from cos(question, answer), for few
    /// clinician pairs) | full (the MLP) | signal-N (zero-shot signal N as it is) | auto (chosen
    /// per run by validation on folds of the training pairs)
    /// [default: config selector.head]
    #[arg(long)]
    pub head: Option<Head>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub options: TrainOptions,
    /// Mixture weight w on clinician pairs [default: config selector.human_weight]
    #[arg(long)]
    pub human_weight: Option<f64>,
    /// Only train and save the checkpoint; score later with `vital score`.
    #[arg(long)]
    pub no_score: bool,
    /// Print the run report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub options: TrainOptions,
    /// The mixture weights w to train with, comma-separated (the paper: 1,10,100,200,300,400).
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub human_weight: Vec<f64>,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The run settings from config, preset and flags, and the encoder's batch size.
fn resolve(ctx: &Context, options: &TrainOptions) -> anyhow::Result<(RunSettings, usize)> {
    let mut settings = RunSettings::from_config(&ctx.config.selector);
    // Absolute (for `vital score` from anywhere) but not through symlinks: the ids file is
    // looked for beside the path as given.
    settings.embeddings = options
        .embeddings
        .clone()
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    if let Some(b) = options.backend {
        settings.backend = b;
    }
    // An embeddings file on the command line wins over a configured encoder.
    let encoder_dir = match &settings.embeddings {
        Some(_) => None,
        None => super::embed::encoder_dir(ctx, options.encoder.clone())?,
    };
    let batch = settings
        .backend
        .encoder_batch_size_or(options.encoder_batch_size);
    if let Some(dir) = &encoder_dir {
        settings.encoder = Some(EncoderRef::of_folder(dir)?);
    }
    if options.preset == Some(Preset::Paper) {
        settings.apply_paper_preset();
    }
    settings.paper_head |= options.paper_head;
    if let Some(head) = options.head {
        settings.head = head;
    }
    if let Some(e) = options.epochs {
        settings.epochs = e;
    }
    if let Some(l) = options.loss {
        settings.loss = l;
    }
    if let Some(s) = options.seed {
        settings.seed = s;
    }
    if let Some(j) = options.judge_pairs {
        settings.judge_pairs = j;
    }
    if let Some(n) = options.judge_train_pairs {
        settings.judge_train_pairs = n;
    }
    if let Some(n) = options.judge_test_pairs {
        settings.judge_test_pairs = n;
    }
    Ok((settings, batch))
}

/// One run through the pipeline, with a progress bar per step (embedding, training, scoring).
fn run_one(
    ctx: &Context,
    ws: &mut Workspace,
    settings: &RunSettings,
    options: &RunOptions,
    label: &str,
) -> anyhow::Result<RunOutcome> {
    let mut bar: Option<(String, indicatif::ProgressBar)> = None;
    // One bar per step: a new step clears the last one's.
    let mut step = |name: &str, make: &dyn Fn() -> indicatif::ProgressBar| match &bar {
        Some((current, b)) if current == name => b.clone(),
        _ => {
            if let Some((_, old)) = bar.take() {
                old.finish_and_clear();
            }
            let b = make();
            bar = Some((name.to_string(), b.clone()));
            b
        }
    };
    let outcome = selector_runs::run(
        ws,
        settings,
        options,
        &mut |p| match p {
            RunProgress::Embedding { what, done, total } => {
                let b = step(what, &|| {
                    super::embed::rate_bar(ctx, &format!("embedding {what}"))
                });
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
            RunProgress::Training(p) => {
                let b = step("training", &|| ctx.count_bar(0, label));
                b.set_length((p.epochs * p.batches) as u64);
                b.set_position(((p.epoch.saturating_sub(1)) * p.batches + p.batch) as u64);
                let val = p
                    .val
                    .as_ref()
                    .map(|m| format!(" · held-out alignment {:.3}", m.alignment_rate))
                    .unwrap_or_default();
                b.set_message(format!(
                    "epoch {}/{} loss {:.4}{val}",
                    p.epoch, p.epochs, p.loss
                ));
            }
            RunProgress::Scoring { done } => {
                step("scoring", &|| ctx.count_bar(0, "scoring answers")).set_position(done as u64);
            }
        },
        &AtomicBool::new(false),
    );
    if let Some((_, b)) = bar {
        b.finish_and_clear();
    }
    let outcome = outcome?;
    let embedded = &outcome.embedded;
    let texts = embedded.texts.map_or(0, |t| t.embedded) + embedded.joined;
    if texts > 0 && !ctx.quiet {
        let secs = embedded.seconds.max(1e-9);
        eprintln!(
            "embedded {texts} texts in {secs:.1}s ({:.1} texts/s)",
            texts as f64 / secs
        );
    }
    Ok(outcome)
}

pub fn run(ctx: &Context, args: TrainArgs) -> anyhow::Result<i32> {
    let mut ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("training")?;
    let (mut settings, encoder_batch) = resolve(ctx, &args.options)?;
    if let Some(w) = args.human_weight {
        settings.human_weight = w;
    }
    let how = match args.options.preset {
        Some(Preset::Paper) => SampleScore::FirstRound,
        None => ctx.config.selector.sample_score,
    };
    let options = RunOptions {
        embed: true,
        encoder_batch,
        score: (!args.no_score).then_some(how),
        earlier_choice: None,
    };
    let outcome = run_one(ctx, &mut ws, &settings, &options, "training")?;
    let (report, scored) = (outcome.report, outcome.scored);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some((answers, samples)) = scored {
            value["scored_answers"] = answers.into();
            value["scored_samples"] = samples.into();
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if !ctx.quiet {
        println!(
            "run {} on {}: {} clinician + {} judge pairs ({} used for training) in {:.1}s",
            report.run_id,
            report.backend,
            report.human_pairs,
            report.judge_pairs,
            report.train_pairs,
            report.seconds
        );
        if let Some(choice) = &report.head_choice {
            let candidates: Vec<String> = choice
                .candidates
                .iter()
                .map(|c| format!("{} {:.3}", c.head, c.alignment_rate))
                .collect();
            println!(
                "head: {} (validated on {} folds of {} pairs: {})",
                choice.chosen,
                choice.folds,
                choice.measured_on,
                candidates.join(", ")
            );
        }
        if report.human_pairs > 0 {
            let kinds: Vec<String> = report
                .human_pairs_by_kind
                .iter()
                .filter(|(_, &n)| n > 0)
                .map(|(kind, n)| format!("{n} {kind}"))
                .collect();
            println!("clinician pairs: {}", kinds.join(", "));
        }
        if report.judge_pairs_across_levels + report.judge_test_pairs > 0 {
            println!(
                "judge pairs: {} within rounds + {} across score levels; {} judge test pairs{}",
                report.judge_pairs_within_round,
                report.judge_pairs_across_levels,
                report.judge_test_pairs,
                report
                    .judge_test
                    .as_ref()
                    .map(|m| format!(
                        " (agreement with the judge {:.3}, AUC {:.3})",
                        m.alignment_rate, m.auc
                    ))
                    .unwrap_or_default()
            );
        }
        match &report.validation {
            Some(m) => println!(
                "held-out clinician pairs: {}  alignment {:.3}  AUC {:.3}  mean rank {:.3}  MAP {:.3}",
                m.pairs, m.alignment_rate, m.auc, m.mean_rank, m.map
            ),
            None => println!("no clinician pairs held out: no validation metrics"),
        }
        println!(
            "checkpoint: {}",
            ws.dir().join(&report.checkpoint).display()
        );
        if let Some((answers, samples)) = scored {
            println!("scored {answers} answers and {samples} samples (sample score: {how})");
        }
    }
    Ok(exit::OK)
}

/// One row of the sweep: the run trained with weight w and its held-out metrics.
#[derive(Debug, Serialize)]
struct SweepRow {
    human_weight: f64,
    run_id: i64,
    human_pairs: usize,
    judge_pairs: usize,
    held_out_human_pairs: usize,
    validation: Option<Metrics>,
}

/// `vital sweep`: the same settings and seed (so the same split and pairs) for every w; runs
/// are saved but not scored (`vital score --run ID` scores the one you keep).
pub fn sweep(ctx: &Context, args: SweepArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("training")?;
    for &w in &args.human_weight {
        anyhow::ensure!(
            w > 0.0 && w.is_finite(),
            "--human-weight: every weight must be positive, not {w}"
        );
    }
    let mut ws = ws;
    let (base, encoder_batch) = resolve(ctx, &args.options)?;
    let mut rows = Vec::new();
    for (k, &w) in args.human_weight.iter().enumerate() {
        let settings = RunSettings {
            human_weight: w,
            ..base.clone()
        };
        let label = format!("w = {w} ({}/{})", k + 1, args.human_weight.len());
        // The first run embeds what the cache lacks; the same texts serve the others.
        let options = RunOptions {
            embed: k == 0,
            encoder_batch,
            score: None,
            earlier_choice: None,
        };
        let report = run_one(ctx, &mut ws, &settings, &options, &label)?.report;
        rows.push(SweepRow {
            human_weight: w,
            run_id: report.run_id,
            human_pairs: report.human_pairs,
            judge_pairs: report.judge_pairs,
            held_out_human_pairs: report.held_out_human_pairs,
            validation: report.validation,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if !ctx.quiet {
        println!(
            "{:>8}  {:>4}  {:>9}  {:>6}  {:>9}  {:>6}",
            "w", "run", "alignment", "AUC", "mean rank", "MAP"
        );
        for row in &rows {
            match &row.validation {
                Some(m) => println!(
                    "{:>8}  {:>4}  {:>9.3}  {:>6.3}  {:>9.3}  {:>6.3}",
                    row.human_weight, row.run_id, m.alignment_rate, m.auc, m.mean_rank, m.map
                ),
                None => println!(
                    "{:>8}  {:>4}  no clinician pairs held out",
                    row.human_weight, row.run_id
                ),
            }
        }
        if let Some(first) = rows.first() {
            println!(
                "{} clinician pairs held out of {}; {} judge pairs per run; score one with `vital score --run ID`",
                first.held_out_human_pairs, first.human_pairs, first.judge_pairs
            );
        }
    }
    Ok(exit::OK)
}
