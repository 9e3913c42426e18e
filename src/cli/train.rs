//! `vital train`: trains the selector on the workspace's clinician and judge pairs, then scores
//! every answer with it.

use std::sync::atomic::AtomicBool;

use clap::Args;

use super::{exit, Context};
use crate::selector::{BackendKind, PairLoss};
use crate::selector_runs::{self, RunSettings};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("embedding_source").args(["embeddings", "encoder"])))]
pub struct TrainArgs {
    /// cpu | wgpu | cuda [default: config selector.backend]
    #[arg(long, env = "VITAL_BACKEND")]
    pub backend: Option<BackendKind>,
    /// Mixture weight w on clinician pairs [default: config selector.human_weight]
    #[arg(long)]
    pub human_weight: Option<f64>,
    /// Passes over the training pairs [default: config selector.epochs]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// hinge (margin 1, the method's) | logistic (Bradley–Terry) [default: config selector.loss]
    #[arg(long)]
    pub loss: Option<PairLoss>,
    /// Seed for the split, the shuffles and the initial weights [default: config selector.seed]
    #[arg(long)]
    pub seed: Option<u64>,
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
    /// Texts per encoder forward pass, with --encoder.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub encoder_batch_size: u32,
    /// Train the paper's head on the embeddings alone: concat → MLP 512-512-512 → 1 (with
    /// --encoder: the question, caption and answer vectors concatenated).
    #[arg(long, requires = "embedding_source")]
    pub paper_head: bool,
    /// Only train and save the checkpoint; score later with `vital score`.
    #[arg(long)]
    pub no_score: bool,
    /// Print the run report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: TrainArgs) -> anyhow::Result<i32> {
    let mut ws = ctx.open_existing_workspace()?;
    let mut settings = RunSettings::from_config(&ctx.config.selector);
    if let Some(b) = args.backend {
        settings.backend = b;
    }
    if let Some(w) = args.human_weight {
        settings.human_weight = w;
    }
    if let Some(e) = args.epochs {
        settings.epochs = e;
    }
    if let Some(l) = args.loss {
        settings.loss = l;
    }
    if let Some(s) = args.seed {
        settings.seed = s;
    }
    // Absolute (for `vital score` from anywhere) but not through symlinks: the ids file is
    // looked for beside the path as given.
    settings.embeddings = args
        .embeddings
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    settings.paper_head = args.paper_head;
    // An embeddings file on the command line wins over a configured encoder.
    let encoder_dir = match &settings.embeddings {
        Some(_) => None,
        None => super::embed::encoder_dir(ctx, args.encoder)?,
    };
    if let Some(dir) = encoder_dir {
        let batch = args.encoder_batch_size as usize;
        let (used, _, _) = super::embed::fill(ctx, &ws, &dir, settings.backend, batch)?;
        settings.encoder = Some(used);
    }
    let how = ctx.config.selector.sample_score;
    let bar = ctx.count_bar(0, "training");
    let cancel = AtomicBool::new(false);
    let (report, selector) = selector_runs::train(
        &ws,
        &settings,
        &mut |p| {
            bar.set_length((p.epochs * p.batches) as u64);
            bar.set_position(((p.epoch.saturating_sub(1)) * p.batches + p.batch) as u64);
            let val = p
                .val
                .as_ref()
                .map(|m| format!(" · held-out alignment {:.3}", m.alignment_rate))
                .unwrap_or_default();
            bar.set_message(format!(
                "epoch {}/{} loss {:.4}{val}",
                p.epoch, p.epochs, p.loss
            ));
        },
        &cancel,
    )?;
    bar.finish_and_clear();
    let scored = if args.no_score {
        None
    } else {
        let bar = ctx.count_bar(0, "scoring answers");
        let embeddings = settings.load_embeddings()?;
        let result = selector_runs::score(
            &mut ws,
            report.run_id,
            &selector,
            embeddings.as_ref(),
            how,
            &mut |done| bar.set_position(done as u64),
            &cancel,
        )?;
        bar.finish_and_clear();
        Some(result)
    };
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
        match &report.validation {
            Some(m) => println!(
                "held-out clinician pairs: {}  alignment {:.3}  AUC {:.3}  mean rank {:.3}  MAP {:.3}",
                m.pairs, m.alignment_rate, m.auc, m.mean_rank, m.map
            ),
            None => println!("no clinician pairs in the held-out figures: no validation metrics"),
        }
        println!(
            "checkpoint: {}",
            ws.dir().join(&report.checkpoint).display()
        );
        if let Some((answers, samples)) = scored {
            println!("scored {answers} answers and {samples} samples");
        }
    }
    Ok(exit::OK)
}
