//! `vital simulate`: how many decisions does it take? A simulated reviewer works through the
//! workspace's queue in each order (on a copy: the workspace is only read), marking answers ✓/✗
//! from a labels file with the review screen's own keys; the background trainer's job retrains
//! every K decisions and each run is measured on held-out pairs never shown. Prints, per order,
//! the decisions needed to reach the target alignment over the seeds; `--json` the learning
//! curves; `--plot FILE.svg|FILE.png` draws them (simulate_plot.rs).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{exit, simulate_plot, Context};
use crate::embed::EncoderRef;
use crate::image_files::ImageRoots;
use crate::selector_runs::{self, Head, RunSettings};
use crate::tui::queue::Order;
use crate::tui::simulate::{simulate, Curve, Labels, Simulation};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The simulated clinician's verdicts: a pairs file (`vital eval --pairs` format); each
    /// record's positive answer is ✓, its negative ✗, matched to the workspace's answers by
    /// question and answer text.
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Held-out pairs each retrained run is measured on (never shown to the reviewer).
    #[arg(long, value_name = "FILE")]
    pub eval_pairs: PathBuf,
    /// Queue orders to compare: file, random, uncertainty, score-high, score-low.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "file,random,uncertainty"
    )]
    pub order: Vec<Order>,
    /// Retrain after every this many decisions.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub retrain_every: u32,
    /// The held-out alignment whose first reaching is reported.
    #[arg(long, default_value_t = 0.9)]
    pub target: f64,
    /// Seeds per order (1..=N: the training seed and the random order's).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub seeds: u32,
    /// Stop each session after this many decisions.
    #[arg(long)]
    pub max_decisions: Option<usize>,
    /// The encoder whose cached vectors the selector reads [default: config selector.encoder].
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// auto | signals | full [default: config selector.head]
    #[arg(long)]
    pub head: Option<Head>,
    /// Print the curves as JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw the learning curves (held-out alignment against decisions) into an SVG or PNG file
    /// (by its extension).
    #[arg(long, value_name = "FILE.svg|FILE.png", value_parser = simulate_plot::plot_file)]
    pub plot: Option<PathBuf>,
}

/// One order's sessions over the seeds.
#[derive(Debug, Serialize)]
pub(super) struct OrderReport {
    pub order: String,
    /// Decisions to reach the target, per seed (None: not reached).
    pub decisions_to_target: Vec<Option<usize>>,
    pub curves: Vec<Curve>,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub target: f64,
    pub retrain_every: u32,
    pub labels: usize,
    pub orders: Vec<OrderReport>,
}

pub fn run(ctx: &Context, args: SimulateArgs) -> anyhow::Result<i32> {
    let plot_format = args
        .plot
        .as_deref()
        .map(simulate_plot::PlotFormat::of_file)
        .transpose()?;
    let orders = args.order.clone();
    let ws = ctx.open_existing_workspace()?;
    let roots = |file: &std::path::Path| {
        ImageRoots::new(vec![file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)])
    };
    let (inputs, pairs) = selector_runs::pairs_from_file(&args.labels, &roots(&args.labels))?;
    let labels = Labels::from_pairs(&inputs, &pairs);
    anyhow::ensure!(
        !labels.is_empty(),
        "{}: no labelled answers",
        args.labels.display()
    );
    let mut run = RunSettings::from_config(&ctx.config.selector);
    if let Some(dir) = super::embed::encoder_dir(ctx, args.encoder.clone())? {
        run.encoder = Some(EncoderRef::of_folder(&dir)?);
    }
    if let Some(head) = args.head {
        run.head = head;
    }
    let total = labels.len() * orders.len() * args.seeds as usize;
    let bar = ctx.count_bar(total as u64, "simulated decisions");
    let mut reports = Vec::new();
    let mut done_before = 0u64;
    for order in orders {
        let mut curves = Vec::new();
        for seed in 1..=u64::from(args.seeds) {
            let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
            let sim = Simulation {
                labels: &labels,
                eval_pairs: &args.eval_pairs,
                order,
                seed,
                retrain_every: args.retrain_every as usize,
                max_decisions: args.max_decisions,
                run: run.clone(),
                sample_score: ctx.config.selector.sample_score,
            };
            let curve = simulate(
                &ws,
                scratch.path(),
                &sim,
                &mut |n| bar.set_position(done_before + n as u64),
                &AtomicBool::new(false),
            )?;
            done_before += curve.points.last().map_or(0, |p| p.decisions) as u64;
            curves.push(curve);
        }
        reports.push(OrderReport {
            order: order.label().to_string(),
            decisions_to_target: curves.iter().map(|c| c.decisions_to(args.target)).collect(),
            curves,
        });
    }
    bar.finish_and_clear();
    let report = Report {
        target: args.target,
        retrain_every: args.retrain_every,
        labels: labels.len(),
        orders: reports,
    };
    if let (Some(plot), Some(format)) = (&args.plot, plot_format) {
        let bytes = simulate_plot::draw(&report, format)?;
        let mut file = crate::atomic_write::AtomicFile::create(plot)?;
        std::io::Write::write_all(&mut file, &bytes)
            .with_context(|| format!("writing {}", plot.display()))?;
        file.commit()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!(
            "decisions to reach held-out alignment {} ({} labelled answers, retraining every {}):",
            report.target, report.labels, report.retrain_every
        );
        for order in &report.orders {
            let reached: Vec<usize> = order
                .decisions_to_target
                .iter()
                .flatten()
                .copied()
                .collect();
            let last: Vec<f64> = order
                .curves
                .iter()
                .filter_map(|c| c.points.last().map(|p| p.alignment))
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let spread = match (reached.iter().min(), reached.iter().max()) {
                (Some(lo), Some(hi)) => format!(
                    "mean {:.0} (from {lo} to {hi})",
                    mean(&reached.iter().map(|&d| d as f64).collect::<Vec<_>>())
                ),
                _ => "not reached".to_string(),
            };
            println!(
                "  {:<12} {spread}; reached on {} of {} seeds; final alignment {:.3}",
                order.order,
                reached.len(),
                order.decisions_to_target.len(),
                mean(&last)
            );
        }
        if let Some(plot) = &args.plot {
            println!("learning curves: {}", plot.display());
        }
    }
    Ok(exit::OK)
}
