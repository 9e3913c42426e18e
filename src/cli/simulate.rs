//! `vital simulate`: how many decisions does it take? A simulated reviewer works through the
//! workspace's queue in each order (on a copy: the workspace is only read), marking answers ✓/✗
//! from a labels file with the review screen's own keys; the background trainer's job retrains
//! every K decisions and each run is measured on held-out pairs never shown. Prints, per order,
//! the decisions needed to reach the target alignment over the seeds; `--json` the learning
//! curves; `--plot FILE.svg` draws them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{exit, Context};
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
    #[arg(long, value_delimiter = ',', default_value = "file,random,uncertainty")]
    pub order: Vec<String>,
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
    /// Draw the learning curves (held-out alignment against decisions) into an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

fn parse_order(name: &str) -> anyhow::Result<Order> {
    Ok(match name.trim() {
        "file" => Order::File,
        "random" => Order::Random,
        "uncertainty" => Order::Uncertainty,
        "score-high" => Order::ScoreHigh,
        "score-low" => Order::ScoreLow,
        other => anyhow::bail!(
            "unknown order `{other}`: expected file, random, uncertainty, score-high or score-low"
        ),
    })
}

/// One order's sessions over the seeds.
#[derive(Debug, Serialize)]
struct OrderReport {
    order: String,
    /// Decisions to reach the target, per seed (None: not reached).
    decisions_to_target: Vec<Option<usize>>,
    curves: Vec<Curve>,
}

#[derive(Debug, Serialize)]
struct Report {
    target: f64,
    retrain_every: u32,
    labels: usize,
    orders: Vec<OrderReport>,
}

pub fn run(ctx: &Context, args: SimulateArgs) -> anyhow::Result<i32> {
    if let Some(plot) = &args.plot {
        anyhow::ensure!(
            plot.extension().is_some_and(|e| e == "svg"),
            "{}: --plot writes SVG (name the file .svg)",
            plot.display()
        );
    }
    let orders = args
        .order
        .iter()
        .map(|o| parse_order(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    if let Some(plot) = &args.plot {
        let mut file = crate::atomic_write::AtomicFile::create(plot)?;
        std::io::Write::write_all(&mut file, svg(&report).as_bytes())
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

/// Held-out alignment against decisions, one colour per order, one line per seed.
fn svg(report: &Report) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const M: f64 = 56.0;
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
    let max_x = report
        .orders
        .iter()
        .flat_map(|o| {
            o.curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.decisions))
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |d: f64| M + d / max_x * (W - 2.0 * M);
    let y = |a: f64| H - M - a.clamp(0.0, 1.0) * (H - 2.0 * M);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    for tick in 0..=5 {
        let a = f64::from(tick) / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{M}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{a:.1}</text>"##,
            W - M,
            M - 6.0,
            y(a) + 4.0,
            y = y(a)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{M}" x2="{}" y1="{}" y2="{}" stroke="#888" stroke-dasharray="4 3"/>"##,
        W - M,
        y(report.target),
        y(report.target)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">decisions (retraining every {})</text>"#,
        W / 2.0,
        H - 16.0,
        report.retrain_every
    );
    let _ = writeln!(
        out,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">held-out alignment</text>"#,
        H / 2.0,
        H / 2.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
        W - M,
        H - M + 16.0,
        max_x
    );
    for (i, order) in report.orders.iter().enumerate() {
        let colour = colours[i % colours.len()];
        for curve in &order.curves {
            let points: Vec<String> = curve
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.decisions as f64), y(p.alignment)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" stroke-opacity="0.8" points="{}"/>"#,
                points.join(" ")
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            M + 8.0,
            M + 14.0 + 16.0 * i as f64,
            order.order
        );
    }
    out.push_str("</svg>\n");
    out
}
