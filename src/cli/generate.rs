//! `vital generate`: candidate Q&A about figures from a vision LLM (GUIDE steps 1–3).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::{exit, Context};
use crate::data::warnings::Warnings;
use crate::data::Sample;
use crate::image_files::{ImageRoots, Lookup};
use crate::llm::ledger;
use crate::llm::prompt::{self, GenerationSettings};
use crate::llm::{self, demos, figures, reply, Client, Job, Progress};
use crate::store::{GeneratedOutcome, LlmRequest, Workspace};

/// Endpoint and request-control flags shared by `generate` and `judge`.
#[derive(Debug, Args, Clone)]
pub struct LlmArgs {
    /// Chat-completions endpoint (base `…/v1` or the full URL) [default: config llm.endpoint].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Model name sent to the endpoint [default: config llm.model].
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Requests in flight at once [default: config llm.concurrency].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Requests per minute, 0 = no limit [default: config llm.requests_per_minute].
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,

    /// Tokens per minute, 0 = no limit [default: config llm.tokens_per_minute].
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,

    /// Retries of one request [default: config llm.max_retries].
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Seconds one request may take [default: config llm.timeout_secs].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Print each request's exact JSON (one per line) instead of sending it; writes nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Ask again for replies an earlier run kept as unparseable.
    #[arg(long)]
    pub retry_unparseable: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub batch: super::batch::BatchFlags,
}

impl LlmArgs {
    pub fn overrides(&self) -> llm::Overrides {
        llm::Overrides {
            endpoint: self.endpoint.clone(),
            concurrency: self.concurrency,
            requests_per_minute: self.rpm,
            tokens_per_minute: self.tpm,
            max_retries: self.max_retries,
            timeout_secs: self.timeout,
        }
    }

    pub fn model(&self, ctx: &Context) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| ctx.config.llm.model.clone())
    }
}

/// The method's settings for `generate` and `judge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LlmPreset {
    /// The endpoint's default temperature (not sent), 4096 reply tokens; generate draws the
    /// demonstrations per request, judge puts the rubric in the user message and judges round 1.
    Paper,
}

/// The reply budget of the method's requests.
pub const PAPER_MAX_TOKENS: u32 = 4096;

/// How the demonstrations are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoDraw {
    /// Chosen once for the whole run (one per domain, or --per-prompt K), sent as one text block.
    Once,
    /// The method's: one per modality drawn afresh for every request (seeded by --seed and
    /// the figure), each sent as its own user/assistant turns.
    PerRequest,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Fig-caption records (JSON array or JSON Lines): {pair_id, fig_caption, in_text_mention, domain, image?}.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,

    /// Directory holding the figures' images (repeatable); also registered with the workspace.
    #[arg(long = "images", value_name = "DIR")]
    pub images: Vec<PathBuf>,

    /// Demonstrations: a clinician_demos.json-shaped file, or `workspace` for the imported ones;
    /// `per-request` = the imported ones drawn per request (`--demo-draw per-request`).
    #[arg(long, value_name = "FILE|workspace", default_value = "workspace")]
    pub demos: String,

    /// Answers per question: 1 (User/Assistant) or 2 (User/Answer 1/Answer 2, for clinician review).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub answers: u8,

    /// Demonstrations per prompt [default: one per domain].
    #[arg(long, value_name = "K")]
    pub per_prompt: Option<usize>,

    /// once (chosen for the whole run, one text block) | per-request (the method's: one per
    /// modality drawn afresh for each figure, each as its own turns) [default: once, or
    /// per-request with --preset paper]
    #[arg(long, value_enum)]
    pub demo_draw: Option<DemoDraw>,

    /// Seed of the per-request draws (the same seed sends the same requests, so runs resume).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// The method's settings: demonstrations per request, the endpoint's default temperature
    /// (not sent) and 4096 reply tokens.
    #[arg(long, value_enum)]
    pub preset: Option<LlmPreset>,

    /// Use only the first N figures of the input.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    figures: usize,
    #[serde(flatten)]
    run: crate::llm::runner::RunTotals,
    samples_added: u64,
    rounds_added: u64,
    unparseable: u64,
    without_image: u64,
    /// Figures whose image file was refused (outside the image folders, not an image, too large):
    /// not sent, listed in the warnings.
    images_refused: u64,
    /// Each figure whose image was refused, and why.
    refused_images: Vec<String>,
    demonstrations: Vec<String>,
    unparseable_replies: Vec<String>,
    warnings: std::collections::BTreeMap<String, usize>,
}

pub fn run(ctx: &Context, args: GenerateArgs) -> anyhow::Result<i32> {
    let cfg = &ctx.config.llm;
    let model = args.llm.model(ctx);
    let answers = args.answers as usize;
    let mut warnings = Warnings::default();
    let mut figures = figures::read_figures(&args.input, &mut warnings)?;
    if let Some(limit) = args.limit {
        figures.truncate(limit);
    }
    // A dry run writes nothing: it reads an existing workspace, never creates one.
    let ws = if args.llm.dry_run {
        ctx.open_existing_workspace().ok()
    } else {
        let ws = ctx.open_workspace()?;
        ws.ensure_curator("generating")?;
        Some(ws)
    };
    // `--demos per-request`: the workspace's demonstrations, drawn the method's way.
    let shorthand = args.demos == "per-request";
    let from_workspace = args.demos == "workspace" || shorthand;
    let pool = if from_workspace {
        match &ws {
            Some(ws) => workspace_demos(ws)?,
            None => Vec::new(),
        }
    } else {
        figures::read_demos(std::path::Path::new(&args.demos), &mut warnings)?
    };
    if pool.is_empty() {
        eprintln!(
            "warning: no demonstrations ({}); prompts carry none",
            if from_workspace {
                "none imported: `vital import clinician_demos.json`, or --demos FILE"
            } else {
                "the file has none"
            }
        );
    }
    let paper = args.preset == Some(LlmPreset::Paper);
    let per_request = match args.demo_draw {
        Some(draw) => draw == DemoDraw::PerRequest,
        None => paper || shorthand,
    };
    anyhow::ensure!(
        !(per_request && args.per_prompt.is_some()),
        "--per-prompt chooses the demonstrations once; per-request draws take one per modality"
    );
    let chosen = if per_request {
        Vec::new()
    } else {
        demos::choose(&pool, args.per_prompt)
    };
    let demos_text = if chosen.is_empty() {
        String::new()
    } else {
        prompt::demonstrations_text(&chosen)
    };
    let mut dirs: Vec<PathBuf> = args.images.clone();
    if let Some(ws) = &ws {
        if !args.llm.dry_run {
            for dir in &args.images {
                ws.add_image_dir(dir)?;
            }
            if args.llm.retry_unparseable {
                ws.forget_unparseable_llm_requests("generate")?;
            }
        }
        dirs.extend(ws.image_dirs()?);
        dirs.push(ws.image_cache_dir());
    }
    let roots = ImageRoots::new(dirs);
    let max_image_bytes = crate::config::fetch_settings(cfg, PathBuf::new()).max_image_bytes;
    let settings = GenerationSettings {
        model: model.clone(),
        answers,
        temperature: (!paper).then_some(cfg.temperature),
        max_tokens: if paper {
            PAPER_MAX_TOKENS
        } else {
            cfg.max_tokens
        },
    };
    let demonstrations = if per_request {
        demos::modality_pools(&pool)
            .into_iter()
            .map(|(modality, n)| format!("per request: 1 of {n} {modality}"))
            .collect()
    } else {
        chosen.iter().map(|d| d.id.clone()).collect()
    };
    let mut summary = Summary {
        figures: figures.len(),
        demonstrations,
        ..Default::default()
    };

    // Builds the request of one figure: None when it has no image (counted) or is done.
    let ws = ws.as_ref();
    let mut without_image = 0u64;
    let mut refused_images: Vec<String> = Vec::new();
    let mut build = |figure: &Sample, warnings: &mut Warnings| -> anyhow::Result<Build<String>> {
        let path = match figures::find_image(figure, &roots) {
            Lookup::Found(path) => path,
            Lookup::Missing => {
                warnings.add("figure without an image file skipped", figure.id.clone());
                without_image += 1;
                return Ok(Build::Pass);
            }
            Lookup::Outside(path) => {
                refused_images.push(format!(
                    "figure {}: {} is outside the image folders",
                    figure.id,
                    path.display()
                ));
                return Ok(Build::Pass);
            }
        };
        let url = match prompt::image_data_url(&path, max_image_bytes) {
            Ok(url) => url,
            Err(e) => {
                refused_images.push(format!("figure {}: {e}", figure.id));
                return Ok(Build::Pass);
            }
        };
        let body = if per_request {
            let drawn = demos::draw_per_request(&pool, args.seed, &figure.id);
            prompt::generation_request_with_turns(&settings, &drawn, figure, &url)
        } else {
            prompt::generation_request(&settings, &demos_text, figure, &url)
        };
        let key = ledger::request_key(&body);
        if let Some(ws) = ws {
            if ws.llm_request_outcome(&key)?.is_some() {
                return Ok(Build::Done);
            }
            if ws.llm_request_in_open_batch(&key)? {
                return Ok(Build::InBatch);
            }
        }
        let image_ref = figure.image.clone().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(Build::Send(Job {
            estimated_tokens: prompt::estimate_tokens(&body, cfg.image_tokens),
            key,
            body,
            subject: figure.id.clone(),
            meta: image_ref,
        }))
    };

    if args.llm.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for figure in &figures {
            if let Build::Send(job) = build(figure, &mut warnings)? {
                serde_json::to_writer(&mut out, &job.body)?;
                writeln!(out)?;
            }
        }
        if !warnings.is_empty() && !ctx.quiet {
            eprint!("warnings:\n{warnings}");
        }
        for r in &refused_images {
            eprintln!("image refused, not sent: {r}");
        }
        return Ok(exit::OK);
    }
    let ws = ws.expect("opened above when not a dry run");
    if args.llm.batch.is_batch() {
        let mut queue = figures.iter();
        let mut in_batch = 0u64;
        let mut done_before = 0u64;
        let plan = super::batch::Plan {
            task: "generate",
            model: &model,
            judge: None,
        };
        let code = super::batch::submit(ctx, ws, &args.llm, &plan, || loop {
            let Some(figure) = queue.next() else {
                return Ok(None);
            };
            match build(figure, &mut warnings)? {
                Build::Send(job) => {
                    return Ok(Some(super::batch::BatchJob::from_job(job, |image| {
                        super::batch::GenerateMeta {
                            figure: figure.clone(),
                            image,
                            answers,
                        }
                    })?));
                }
                Build::Done => done_before += 1,
                Build::InBatch => in_batch += 1,
                Build::Pass => {}
            }
        })?;
        super::batch::print_left_out(ctx, done_before, in_batch, &refused_images, &warnings);
        return Ok(code);
    }
    let client = Arc::new(Client::new(llm::client_settings(
        cfg,
        &args.llm.overrides(),
    )?)?);
    warn_without_key(ctx, &client);
    let hidden = ctx.quiet || !std::io::stderr().is_terminal();
    let mut progress = Progress::new(figures.len() as u64, "generate", llm::prices(cfg), hidden);
    let by_id: std::collections::HashMap<&str, &Sample> =
        figures.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut queue = figures.iter();
    let mut notes = Warnings::default();
    let rt = llm::runtime()?;
    let result = rt.block_on(llm::runner::run(
        client,
        llm::concurrency(cfg, &args.llm.overrides()),
        &mut progress,
        |progress| loop {
            let Some(figure) = queue.next() else {
                return Ok(None);
            };
            match build(figure, &mut warnings)? {
                Build::Send(job) => return Ok(Some(job)),
                Build::Done => progress.skip(),
                Build::InBatch => progress.pass(),
                Build::Pass => progress.pass(),
            }
        },
        |job, reply| {
            let figure = by_id[job.subject.as_str()];
            let sample = generated_sample(
                figure,
                &job.key,
                &job.meta,
                &reply.content,
                answers,
                &mut notes,
            );
            let outcome = ws.store_generated_reply(
                &LlmRequest {
                    key: &job.key,
                    task: "generate",
                    subject: &figure.id,
                    model: &model,
                    reply: &reply.content,
                    prompt_tokens: reply.prompt_tokens,
                    completion_tokens: reply.completion_tokens,
                },
                sample.as_ref().map_err(String::clone),
            )?;
            match outcome {
                GeneratedOutcome::Inserted => {
                    summary.samples_added += 1;
                    if let Ok(sample) = &sample {
                        summary.rounds_added += sample.rounds.len() as u64;
                    }
                }
                GeneratedOutcome::Unchanged => {}
                GeneratedOutcome::Unparseable(reason) => {
                    summary.unparseable += 1;
                    if summary.unparseable_replies.len() < 20 {
                        summary
                            .unparseable_replies
                            .push(format!("{}: {reason}", figure.id));
                    }
                }
            }
            Ok(())
        },
    ));
    summary.run = progress.run_totals();
    summary.without_image = without_image;
    summary.images_refused = refused_images.len() as u64;
    summary.refused_images = refused_images;
    summary.warnings = warnings.counts();
    summary.warnings.extend(notes.counts());
    result?;
    print_summary(ctx, &summary, args.llm.json, &warnings)?;
    if !notes.is_empty() && !ctx.quiet && !args.llm.json {
        print!("{notes}");
    }
    Ok(exit_code(
        summary.run.interrupted,
        summary.run.failed + summary.images_refused,
        summary.unparseable,
        summary.run.requests_answered + summary.run.skipped_done_before,
    ))
}

/// The sample a generation reply gives (the direct path and a batch's replies alike), or why
/// there is none; the parser's notes go to `notes`.
pub(super) fn generated_sample(
    figure: &Sample,
    key: &str,
    image: &str,
    content: &str,
    answers: usize,
    notes: &mut Warnings,
) -> Result<Sample, String> {
    reply::parse_conversation(content, answers).map(|parsed| {
        for note in parsed.notes {
            notes.add(&note, figure.id.clone());
        }
        Sample {
            id: format!("gen-{}-{}", figure.id, &key[..8.min(key.len())]),
            image: Some(image.to_string()),
            rounds: parsed.rounds,
            is_demo: false,
            ..figure.clone()
        }
    })
}

pub(super) enum Build<M> {
    Send(Job<M>),
    /// Finished by an earlier run.
    Done,
    /// Waiting in an open batch: not sent until that batch ends.
    InBatch,
    /// Nothing to send (no image).
    Pass,
}

fn workspace_demos(ws: &Workspace) -> anyhow::Result<Vec<Sample>> {
    Ok(ws
        .demo_samples()?
        .into_iter()
        .map(|stored| stored.sample)
        .filter(|demo| demo.rounds.iter().any(|r| !r.answers.is_empty()))
        .collect())
}

pub(super) fn warn_without_key(ctx: &Context, client: &Client) {
    if llm::api_key(&ctx.config.llm).is_none() && !ctx.quiet {
        eprintln!(
            "note: no API key in ${}; sending requests to {} without one",
            ctx.config.llm.api_key_env,
            client.url()
        );
    }
}

/// 0 all done; 1 interrupted or nothing could be done; 3 some failed or could not be parsed.
pub(super) fn exit_code(interrupted: bool, failed: u64, unparseable: u64, succeeded: u64) -> i32 {
    if interrupted {
        eprintln!("interrupted: what finished is saved; run the same command again to continue");
        exit::FAILURE
    } else if failed > 0 && succeeded == 0 {
        exit::FAILURE
    } else if failed > 0 || unparseable > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

fn print_summary(
    ctx: &Context,
    s: &Summary,
    json: bool,
    warnings: &Warnings,
) -> anyhow::Result<()> {
    if !print_report_head(ctx, &s.run, s, json)? {
        return Ok(());
    }
    println!(
        "generate: {} figures: {} answered, {} done before, {} failed, {} without image, {} image refused",
        s.figures,
        s.run.requests_answered,
        s.run.skipped_done_before,
        s.run.failed,
        s.without_image,
        s.images_refused
    );
    println!(
        "  {} samples added ({} rounds), {} unparseable replies kept in llm_requests",
        s.samples_added, s.rounds_added, s.unparseable
    );
    println!(
        "  {}; demonstrations: {}",
        s.run.tokens_line(),
        if s.demonstrations.is_empty() {
            "none".to_string()
        } else {
            s.demonstrations.join(", ")
        }
    );
    print_refused_images(&s.refused_images);
    print_report_tail(&s.unparseable_replies, warnings);
    Ok(())
}

/// Images refused for sending (outside the image folders, not an image, too large), one a line:
/// their samples were not sent, not even as text.
pub(super) fn print_refused_images(refused: &[String]) {
    for r in refused {
        println!("  image refused, not sent: {r}");
    }
}

/// What generate and judge print first: failed requests (stderr), then the JSON report with
/// `--json`. Returns whether the human summary should follow.
pub(super) fn print_report_head<S: serde::Serialize>(
    ctx: &Context,
    run: &crate::llm::runner::RunTotals,
    summary: &S,
    json: bool,
) -> anyhow::Result<bool> {
    if !run.failures.is_empty() {
        eprintln!("failed requests (sent again by the next run):");
        for f in &run.failures {
            eprintln!("  {f}");
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(false);
    }
    Ok(!ctx.quiet)
}

/// What generate and judge print last: the unparseable replies and the warnings.
pub(super) fn print_report_tail(unparseable: &[String], warnings: &Warnings) {
    for u in unparseable {
        println!("  unparseable: {u}");
    }
    if !warnings.is_empty() {
        print!("  warnings:\n{warnings}");
    }
}
