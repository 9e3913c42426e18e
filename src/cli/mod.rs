//! The command line: raw arguments are resolved once into a [`Context`], each command lives in
//! its own file, errors are printed once by `main`, and exit codes are documented.

mod answers;
mod batch;
mod demo;
mod embed;
mod encode;
mod eval;
mod export;
mod fetch_images;
mod generate;
mod import;
mod judge;
mod log;
mod pick_figures;
mod review;
mod score;
mod show;
mod simulate;
mod simulate_plot;
mod stats;
mod store;
mod team;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::Workspace;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Everything asked for was done.
    pub const OK: i32 = 0;
    /// Nothing (or not everything) could be done; the message says why.
    pub const FAILURE: i32 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// Several inputs were given and some of them failed; the others were processed.
    pub const PARTIAL: i32 = 3;
}

/// vital: build clinician-aligned biomedical visual instruction data at the terminal.
#[derive(Debug, Parser)]
#[command(name = "vital", version, about, long_about = None)]
pub struct Cli {
    /// Workspace directory, or a team server as postgresql://ROLE@HOST:PORT/DB (passwords from
    /// PGPASSWORD, ~/.pgpass or a prompt) [default: the platform data dir, e.g.
    /// ~/.local/share/vital/default]
    #[arg(short, long, global = true, env = "VITAL_WORKSPACE")]
    pub workspace: Option<PathBuf>,

    /// Print only errors (no progress bars or summaries).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Append a log of what the command did (retries, failures) to FILE; never shown on screen.
    #[arg(long, global = true, env = "VITAL_LOG", value_name = "FILE")]
    pub log: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import data files (LLaVA JSON/JSONL, candidates, clinician pairs, eval Q&A, demos, scores, URL lists).
    Import(import::ImportArgs),
    /// Counts of what the workspace holds.
    Stats(stats::StatsArgs),
    /// Train the selector on clinician and judge pairs, then score every answer.
    Train(train::TrainArgs),
    /// Train one selector run per mixture weight w on the same split; held-out metrics per w.
    Sweep(train::SweepArgs),
    /// Every answer with its figure context as JSON Lines (input for an outside encoder).
    Answers(answers::AnswersArgs),
    /// Score every answer and sample with a trained selector run.
    Score(score::ScoreArgs),
    /// The selector's alignment rate, AUC, mean rank and MAP on held-out clinician pairs.
    Eval(eval::EvalArgs),
    /// Export the curated dataset (LLaVA), DPO/clinician pairs, demonstrations or scores.
    Export(export::ExportArgs),
    /// Print one sample (image and Q&A) in a plain shell.
    Show(show::ShowArgs),
    /// The review screen: image, context and Q&A rounds; keyboard-only decisions.
    Review(review::ReviewArgs),
    /// Open the bundled demo workspace (the review screen on a terminal, else its stats).
    Demo(demo::DemoArgs),
    /// Generate candidate Q&A about figures with a vision LLM (OpenAI-compatible endpoint).
    Generate(generate::GenerateArgs),
    /// Score answers 0-10 with a judge LLM.
    Judge(judge::JudgeArgs),
    /// Batches of generate/judge requests: status, collect, cancel, import an output file.
    Batch(batch::BatchArgs),
    /// Pick diverse figures to generate for: k-means over caption + first mention, drawn across clusters.
    PickFigures(pick_figures::PickFiguresArgs),
    /// Download figure images (direct URLs or PMC open-access .tar.gz packages).
    FetchImages(fetch_images::FetchImagesArgs),
    /// Cache a sentence encoder's vectors of every question, answer and caption (resumable).
    Embed(embed::EmbedArgs),
    /// Embed texts (JSON Lines of strings) with a pretrained BERT-family encoder folder.
    Encode(encode::EncodeArgs),
    /// The workspace itself: copy it to or from a team server, add reviewer roles.
    Store(store::StoreArgs),
    /// Team work: the plan that spreads samples over reviewers, and how the team is doing.
    Team(team::TeamArgs),
    /// How many decisions does it take? A simulated reviewer in each queue order, on a copy.
    Simulate(simulate::SimulateArgs),
}

/// Everything a command needs, resolved once from flags, environment and config files.
pub struct Context {
    pub config: Config,
    pub workspace_dir: PathBuf,
    /// `-w` was given (or VITAL_WORKSPACE): commands with their own default dir must honour it.
    pub workspace_given: bool,
    pub quiet: bool,
}

impl Context {
    pub fn open_workspace(&self) -> anyhow::Result<Workspace> {
        Workspace::open(&self.workspace_dir)
    }

    pub fn open_existing_workspace(&self) -> anyhow::Result<Workspace> {
        Workspace::open_existing(&self.workspace_dir).map_err(|e| {
            // After `vital demo`, the default workspace is empty and the demo is beside it.
            let demo = crate::config::project_dirs().map(|d| d.data_dir().join("demo"));
            match demo {
                Some(demo)
                    if !self.workspace_given
                        && demo.join(crate::store::DB_FILE).is_file()
                        && !self.workspace_dir.join(crate::store::DB_FILE).is_file() =>
                {
                    e.context(format!(
                        "the demo workspace is at {}: pass `-w {}` to use it",
                        demo.display(),
                        demo.display()
                    ))
                }
                _ => e,
            }
        })
    }

    /// A counting progress bar (items, not bytes) on stderr, hidden like [`Self::progress_bar`].
    pub fn count_bar(&self, len: u64, message: &str) -> indicatif::ProgressBar {
        let bar = self.progress_bar(len, message);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:40!} [{bar:30}] {pos}/{len} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    }

    /// A progress bar on stderr, hidden with --quiet or when stderr is not a terminal.
    pub fn progress_bar(&self, len: u64, message: &str) -> indicatif::ProgressBar {
        use std::io::IsTerminal;
        if self.quiet || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }
}

/// Process-wide settings that must be made before any thread starts (call first in `main`):
/// the allocator's ([`crate::process::tune_allocator`]), and the matrix products' threads.
///
/// `encode` and `embed` on the CPU backend run one batch per core
/// ([`crate::encoder::batch_workers`]); matrixmultiply's own matrix-product threads, which
/// burn-ndarray turns on, would then only contend with them (they spin and yield): with one
/// thread per product, embedding ran 15% faster on two cores. Other commands keep its threads
/// (the selector trains one batch at a time). A value the user set is kept.
pub fn prepare_process(cli: &Cli) {
    crate::process::tune_allocator();
    let batches_per_core = matches!(cli.command, Command::Encode(_) | Command::Embed(_));
    if batches_per_core && std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // Sound here: no other thread exists yet to read the environment concurrently.
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let Some(path) = &cli.log {
        log::start(path)?;
    }
    // Only the command's name: its arguments may carry URLs with credentials.
    let debug = format!("{:?}", cli.command);
    let command = debug.split(['(', ' ']).next().unwrap_or_default();
    tracing::info!(command, "started");
    let started = std::time::Instant::now();
    let result = run_command(cli);
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(code) => tracing::info!(code, seconds, "finished"),
        Err(e) => tracing::error!(seconds, error = %format!("{e:#}"), "failed"),
    }
    result
}

fn run_command(cli: Cli) -> anyhow::Result<i32> {
    let loaded = Config::load()?;
    for unknown in &loaded.unknown_keys {
        eprintln!("warning: {unknown}");
    }
    let config = loaded.config;
    let workspace_given = cli.workspace.is_some();
    let workspace_dir = match &cli.workspace {
        Some(dir) => dir.clone(),
        None => config.workspace_dir()?,
    };
    let ctx = Context {
        config,
        workspace_dir,
        workspace_given,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Import(args) => import::run(&ctx, args),
        Command::Stats(args) => stats::run(&ctx, args),
        Command::Train(args) => train::run(&ctx, args),
        Command::Sweep(args) => train::sweep(&ctx, args),
        Command::Score(args) => score::run(&ctx, args),
        Command::Answers(args) => answers::run(&ctx, args),
        Command::Eval(args) => eval::run(&ctx, args),
        Command::Export(args) => export::run(&ctx, args),
        Command::Show(args) => show::run(&ctx, args),
        Command::Review(args) => review::run(&ctx, args),
        Command::Demo(args) => demo::run(&ctx, args),
        Command::Generate(args) => generate::run(&ctx, args),
        Command::Judge(args) => judge::run(&ctx, args),
        Command::Batch(args) => batch::run(&ctx, args),
        Command::PickFigures(args) => pick_figures::run(&ctx, args),
        Command::FetchImages(args) => fetch_images::run(&ctx, args),
        Command::Embed(args) => embed::run(&ctx, args),
        Command::Simulate(args) => simulate::run(&ctx, args),
        Command::Encode(args) => encode::run(&ctx, args),
        Command::Store(args) => store::run(&ctx, args),
        Command::Team(args) => team::run(&ctx, args),
    }
}
