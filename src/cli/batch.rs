//! Batches: `vital generate|judge --batch` (and `--batch-file`) hand their requests here, and
//! `vital batch status|collect|cancel|import` follow them to the end.
//!
//! Each step is recorded as soon as it is done and looked up before it is done again, so a run
//! killed at any point is finished by `vital batch collect` without a second batch and without a
//! reply stored twice: the batch and its requests are recorded before the upload; the file id
//! after it; before creating a batch the API is asked for one carrying this batch's tag; a reply
//! is stored with its ledger entry and its request marked answered in one transaction.
//!
//! Replies are read by the same code as direct replies ([`super::judge::judge_scores`],
//! [`super::generate::generated_sample`]), redacted the same way, and stored under the same
//! request keys.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::generate::LlmArgs;
use super::{exit, Context};
use crate::data::warnings::Warnings;
use crate::data::Sample;
use crate::llm::batch::api::{BatchApi, BatchInfo};
use crate::llm::batch::{self, BatchLimits, InputFile, OutputLine};
use crate::llm::{self, ApiKey};
use crate::store::{
    LlmBatch, LlmBatchProgress, LlmBatchReply, LlmBatchStored, LlmRequest, NewLlmBatch,
    NewLlmBatchRequest, Workspace,
};

/// The batch flags of `generate` and `judge`.
#[derive(Debug, Args, Clone, Default)]
pub struct BatchFlags {
    /// Send the requests through the provider's batch API (OpenAI, Azure OpenAI): half the
    /// price, done within 24 hours; `vital batch collect` stores the replies.
    #[arg(long, conflicts_with_all = ["dry_run", "batch_file"])]
    pub batch: bool,

    /// Write the request lines to FILE without contacting anything (for `vllm run-batch` or a
    /// provider's web console); `vital batch import OUTPUT` reads the replies back.
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    pub batch_file: Option<PathBuf>,

    /// With --batch: wait until the batches end and store their replies.
    #[arg(long, requires = "batch")]
    pub wait: bool,

    /// Seconds between two looks at the batches while waiting.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub poll_secs: f64,
}

impl BatchFlags {
    pub fn is_batch(&self) -> bool {
        self.batch || self.batch_file.is_some()
    }
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(subcommand)]
    pub command: BatchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// The workspace's batches, with what the API says of the open ones.
    Status {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Carry every open batch forward (upload, create, look at it) and store the replies of
    /// those that ended; failed requests are sent again by the next `--batch` run.
    Collect {
        /// Wait until every batch has ended.
        #[arg(long)]
        wait: bool,
        /// Seconds between two looks at the batches while waiting.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        poll_secs: f64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel batch ID (or every open one): what it answered is still collected, the rest is
    /// sent again by the next run.
    Cancel {
        /// The batch's number in `vital batch status`.
        id: Option<i64>,
    },
    /// Read an output file back (`vllm run-batch`'s, or one downloaded from a provider), lines
    /// matched to requests by custom_id; lines about unknown requests are refused and listed.
    Import {
        file: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What a judge request's reply is stored with.
#[derive(Debug, Serialize, Deserialize)]
pub struct JudgeMeta {
    pub answers: Vec<i64>,
}

/// What a generation request's reply is stored with.
#[derive(Debug, Serialize, Deserialize)]
pub struct GenerateMeta {
    pub figure: Sample,
    pub image: String,
    pub answers: usize,
}

/// What a batch is for.
pub struct Plan<'a> {
    pub task: &'a str,
    pub model: &'a str,
    pub judge: Option<&'a str>,
}

/// One request for a batch.
pub struct BatchJob {
    pub key: String,
    pub body: Value,
    pub subject: String,
    pub meta: String,
    pub estimated_tokens: u64,
}

impl BatchJob {
    /// A direct-path job bound for a batch, with what storing its reply needs (`meta`, made from
    /// the job's own).
    pub(super) fn from_job<M, T: Serialize>(
        job: llm::Job<M>,
        meta: impl FnOnce(M) -> T,
    ) -> anyhow::Result<Self> {
        Ok(BatchJob {
            meta: serde_json::to_string(&meta(job.meta))?,
            key: job.key,
            body: job.body,
            subject: job.subject,
            estimated_tokens: job.estimated_tokens,
        })
    }
}

#[derive(Debug, Default, Serialize)]
struct SubmitSummary {
    requests: u64,
    /// Requests whose line alone is larger than llm.batch_max_mb: not sent.
    too_large: Vec<String>,
    batches: Vec<i64>,
    files: Vec<String>,
    estimated_prompt_tokens: u64,
    /// The prompt tokens at the batch price (llm.batch_price_factor).
    estimated_prompt_cost: f64,
    collect: Option<CollectSummary>,
}

/// What collecting (or importing) did.
#[derive(Debug, Default, Serialize)]
pub struct CollectSummary {
    batches_ended: u64,
    batches_open: u64,
    replies_stored: u64,
    already_stored: u64,
    scores_added: u64,
    samples_added: u64,
    unparseable: u64,
    /// Requests that failed (error lines, inline errors, left unanswered): sent again next run.
    failed: u64,
    /// Lines refused (not an output line, or about no request of ours): `line N: reason`.
    refused: Vec<String>,
    refused_count: u64,
    failures: Vec<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// At the batch price.
    cost_estimate: f64,
    errors: Vec<String>,
    /// What the conversation parser noted about usable replies (e.g. a cut-off last round).
    notes: std::collections::BTreeMap<String, usize>,
}

const SHOWN: usize = 20;

impl CollectSummary {
    fn refuse(&mut self, what: String) {
        self.refused_count += 1;
        if self.refused.len() < SHOWN {
            self.refused.push(what);
        }
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < SHOWN {
            self.failures.push(what);
        }
    }
}

/// Writes the requests `next` yields into batch files (under `llm.batch_max_requests` and
/// `llm.batch_max_mb`), records each batch, and with `--batch` uploads and creates them (and
/// with `--wait` collects them). Returns the exit code.
pub fn submit(
    ctx: &Context,
    ws: &Workspace,
    llm_args: &LlmArgs,
    plan: &Plan,
    mut next: impl FnMut() -> anyhow::Result<Option<BatchJob>>,
) -> anyhow::Result<i32> {
    let cfg = &ctx.config.llm;
    let flags = &llm_args.batch;
    let limits = BatchLimits::from_config(cfg)?;
    let file_run = flags.batch_file.clone();
    let endpoint = llm_args
        .endpoint
        .clone()
        .unwrap_or_else(|| cfg.endpoint.clone());
    let dir = ws.dir().join("batches");
    if file_run.is_none() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    // A file run is one file (vLLM has no limits; split it yourself for a web console).
    let limits = match file_run {
        Some(_) => BatchLimits {
            max_requests: usize::MAX,
            max_bytes: u64::MAX,
            ..limits
        },
        None => limits,
    };
    let mut summary = SubmitSummary::default();
    let mut open: Option<(InputFile, String, Vec<NewLlmBatchRequest>)> = None;
    let record = |summary: &mut SubmitSummary,
                  (file, tag, requests): (InputFile, String, Vec<NewLlmBatchRequest>)|
     -> anyhow::Result<()> {
        let path = file.finish()?;
        let path_text = path.to_string_lossy().into_owned();
        let id = ws.record_llm_batch(
            &NewLlmBatch {
                tag: &tag,
                task: plan.task,
                model: plan.model,
                judge: plan.judge,
                endpoint: if file_run.is_some() { "" } else { &endpoint },
                input_path: &path_text,
                status: if file_run.is_some() {
                    "file"
                } else {
                    "prepared"
                },
            },
            &requests,
        )?;
        summary.batches.push(id);
        summary.files.push(path_text);
        Ok(())
    };
    while let Some(job) = next()? {
        let line = serde_json::to_vec(&batch::request_line(
            &job.key,
            &job.body,
            batch::chat_url(cfg.auth),
        ))?;
        let len = line.len() as u64 + 1;
        if len > limits.max_bytes {
            summary.too_large.push(format!(
                "{}: its line is {len} bytes, over llm.batch_max_mb",
                job.subject
            ));
            continue;
        }
        if open.as_ref().is_some_and(|(f, _, _)| !f.fits(len, &limits)) {
            let full = open.take().expect("checked above");
            record(&mut summary, full)?;
        }
        if open.is_none() {
            let tag = format!("vital-{}", uuid::Uuid::new_v4().simple());
            let path = match &file_run {
                Some(path) => path.clone(),
                None => dir.join(format!("{tag}.jsonl")),
            };
            open = Some((InputFile::create(&path)?, tag, Vec::new()));
        }
        let (file, _, requests) = open.as_mut().expect("opened above");
        file.push(&line)?;
        requests.push(NewLlmBatchRequest {
            key: job.key,
            subject: job.subject,
            meta: job.meta,
        });
        summary.requests += 1;
        summary.estimated_prompt_tokens += job.estimated_tokens;
    }
    if let Some(last) = open.take() {
        record(&mut summary, last)?;
    }
    summary.estimated_prompt_cost =
        llm::prices(cfg).cost(summary.estimated_prompt_tokens, 0) * limits.price_factor;
    let mut code = exit::OK;
    if flags.batch && !summary.batches.is_empty() {
        let collect = carry_forward(ctx, ws, Some(&summary.batches), flags.wait, flags.poll_secs)?;
        // The batches are recorded either way: `vital batch collect` carries them on.
        if !collect.errors.is_empty() || collect.failed > 0 || collect.unparseable > 0 {
            code = exit::PARTIAL;
        }
        summary.collect = Some(collect);
    }
    if !summary.too_large.is_empty() {
        code = exit::PARTIAL;
    }
    if llm_args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !ctx.quiet {
        println!(
            "{} {} request(s) in {} batch file(s), prompt ≈ {} tokens, ≈ ${:.4} at the batch price (×{})",
            plan.task,
            summary.requests,
            summary.batches.len(),
            summary.estimated_prompt_tokens,
            summary.estimated_prompt_cost,
            limits.price_factor
        );
        for (id, file) in summary.batches.iter().zip(&summary.files) {
            println!("  batch {id}: {file}");
        }
        if let Some(file) = &file_run {
            println!(
                "  run it elsewhere (e.g. `vllm run-batch -i {} -o OUT.jsonl --model …`), then `vital batch import OUT.jsonl`",
                file.display()
            );
        }
        for t in &summary.too_large {
            println!("  not sent: {t}");
        }
        if let Some(c) = &summary.collect {
            print_collect(c);
        }
    }
    Ok(code)
}

/// What generate and judge left out of a batch (finished before, waiting in a batch, refused).
pub fn print_left_out(
    ctx: &Context,
    done_before: u64,
    in_batch: u64,
    refused_images: &[String],
    warnings: &Warnings,
) {
    if ctx.quiet {
        return;
    }
    if done_before > 0 || in_batch > 0 {
        eprintln!("{done_before} done before, {in_batch} waiting in open batches (not sent again)");
    }
    for r in refused_images {
        eprintln!("image refused, not sent: {r}");
    }
    if !warnings.is_empty() {
        eprint!("warnings:\n{warnings}");
    }
}

pub fn run(ctx: &Context, args: BatchArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    match args.command {
        BatchCommand::Status { json } => status(ctx, &ws, json),
        BatchCommand::Collect {
            wait,
            poll_secs,
            json,
        } => {
            ws.ensure_curator("collecting batches")?;
            let summary = carry_forward(ctx, &ws, None, wait, poll_secs)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if !ctx.quiet {
                print_collect(&summary);
            }
            Ok(collect_code(&summary))
        }
        BatchCommand::Cancel { id } => {
            ws.ensure_curator("cancelling batches")?;
            cancel(ctx, &ws, id)
        }
        BatchCommand::Import { file, json } => {
            ws.ensure_curator("importing batch output")?;
            let summary = import(ctx, &ws, &file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else if !ctx.quiet {
                print_collect(&summary);
            }
            Ok(collect_code(&summary))
        }
    }
}

fn collect_code(s: &CollectSummary) -> i32 {
    if !s.errors.is_empty() {
        exit::FAILURE
    } else if s.failed > 0 || s.unparseable > 0 || s.refused_count > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    }
}

fn print_collect(s: &CollectSummary) {
    println!(
        "batches: {} ended, {} still open; {} replies stored ({} scores, {} samples, {} unparseable), {} stored before, {} failed (sent again by the next run), {} lines refused",
        s.batches_ended, s.batches_open, s.replies_stored, s.scores_added, s.samples_added, s.unparseable, s.already_stored, s.failed, s.refused_count
    );
    println!(
        "  tokens {} in / {} out, cost ≈ ${:.4} at the batch price",
        s.prompt_tokens, s.completion_tokens, s.cost_estimate
    );
    for (note, n) in &s.notes {
        println!("  note: {note}: {n}");
    }
    for f in &s.failures {
        println!("  failed: {f}");
    }
    for r in &s.refused {
        println!("  refused: {r}");
    }
    for e in &s.errors {
        eprintln!("error: {e}");
    }
    if !s.errors.is_empty() {
        eprintln!("what was done is recorded: run `vital batch collect` to go on");
    }
}

fn api_for(ctx: &Context, batch: &LlmBatch) -> anyhow::Result<(BatchApi, Option<ApiKey>)> {
    let settings = llm::client_settings(
        &ctx.config.llm,
        &llm::Overrides {
            endpoint: Some(batch.endpoint.clone()),
            ..Default::default()
        },
    )?;
    let key = settings.api_key.clone();
    Ok((BatchApi::new(&settings)?, key))
}

/// The longest output line read: a reply body (llm.max_reply_mb) and its wrapping.
fn max_line(ctx: &Context) -> usize {
    (ctx.config.llm.max_reply_mb.max(0.0) * 1024.0 * 1024.0) as usize + (64 << 10)
}

fn status(ctx: &Context, ws: &Workspace, json: bool) -> anyhow::Result<i32> {
    let rt = llm::runtime()?;
    let mut errors = Vec::new();
    for b in ws.llm_batches()? {
        let Some(remote) = b.remote_id.as_deref().filter(|_| b.is_open()) else {
            continue;
        };
        let looked = api_for(ctx, &b).and_then(|(api, _)| rt.block_on(api.get(remote)));
        match looked {
            Ok(info) => record_progress(ws, &b, &info)?,
            Err(e) => errors.push(format!("batch {}: {e:#}", b.id)),
        }
    }
    #[derive(Serialize)]
    struct Row {
        #[serde(flatten)]
        batch: LlmBatch,
        pending: i64,
        answered: i64,
        failed_requests: i64,
    }
    let mut rows = Vec::new();
    for b in ws.llm_batches()? {
        let (pending, answered, failed_requests) = ws.llm_batch_request_counts(b.id)?;
        rows.push(Row {
            batch: b,
            pending,
            answered,
            failed_requests,
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        if rows.is_empty() {
            println!("no batches");
        }
        for r in &rows {
            let b = &r.batch;
            println!(
                "batch {} ({}, {}{}): {} — {} requests: {} pending, {} answered, {} failed{}{}",
                b.id,
                b.task,
                b.model,
                b.judge
                    .as_deref()
                    .map(|j| format!(", judge {j}"))
                    .unwrap_or_default(),
                b.status,
                b.requests,
                r.pending,
                r.answered,
                r.failed_requests,
                b.remote_id
                    .as_deref()
                    .map(|id| format!("; API {id}: {} done, {} failed", b.completed, b.failed))
                    .unwrap_or_default(),
                b.message
                    .as_deref()
                    .map(|m| format!("; {m}"))
                    .unwrap_or_default(),
            );
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}

fn record_progress(ws: &Workspace, b: &LlmBatch, info: &BatchInfo) -> anyhow::Result<()> {
    let counts = info.counts();
    let message = info.errors_text();
    ws.set_llm_batch_progress(
        b.id,
        &LlmBatchProgress {
            status: &info.status,
            completed: counts.completed,
            failed: counts.failed,
            output_file_id: info.output_file_id.as_deref(),
            error_file_id: info.error_file_id.as_deref(),
            message: message.as_deref(),
        },
    )
}

/// Carries the open API batches (all, or `only`) forward until they end (`wait`) or once.
fn carry_forward(
    ctx: &Context,
    ws: &Workspace,
    only: Option<&[i64]>,
    wait: bool,
    poll_secs: f64,
) -> anyhow::Result<CollectSummary> {
    anyhow::ensure!(
        poll_secs.is_finite() && poll_secs >= 0.0,
        "--poll-secs must be a number of seconds, 0 or more"
    );
    let rt = llm::runtime()?;
    let mut summary = CollectSummary::default();
    let hidden = ctx.quiet || !std::io::stderr().is_terminal();
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "batches [{bar:25}] {pos}/{len} requests done {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    };
    loop {
        let open: Vec<LlmBatch> = ws
            .llm_batches()?
            .into_iter()
            .filter(|b| b.is_open() && b.status != "file")
            .filter(|b| only.is_none_or(|ids| ids.contains(&b.id)))
            .collect();
        summary.batches_open = open.len() as u64;
        if open.is_empty() {
            break;
        }
        let mut errors = false;
        for b in &open {
            match rt.block_on(advance(ctx, ws, b, &mut summary)) {
                Ok(ended) => {
                    if ended {
                        summary.batches_ended += 1;
                        summary.batches_open -= 1;
                    }
                }
                Err(e) => {
                    errors = true;
                    summary.errors.push(format!("batch {}: {e:#}", b.id));
                }
            }
        }
        let (mut total, mut done, mut statuses) = (0u64, 0u64, Vec::new());
        for b in ws.llm_batches()? {
            if only.is_none_or(|ids| ids.contains(&b.id)) && b.status != "file" {
                total += b.requests as u64;
                done += if b.is_open() {
                    (b.completed + b.failed) as u64
                } else {
                    b.requests as u64
                };
                if b.is_open() {
                    statuses.push(format!("{}: {}", b.id, b.status));
                }
            }
        }
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(statuses.join(", "));
        if !wait || errors || summary.batches_open == 0 {
            break;
        }
        // No Ctrl-C handler: every step is recorded as it is done, so Ctrl-C (or a kill) at any
        // point leaves what `vital batch collect` finishes, and it stops a long download at once.
        std::thread::sleep(Duration::from_secs_f64(poll_secs));
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// One step (or several) of one batch: upload, create, look, and when it ended, collect.
/// Returns whether the batch is collected now.
async fn advance(
    ctx: &Context,
    ws: &Workspace,
    batch: &LlmBatch,
    summary: &mut CollectSummary,
) -> anyhow::Result<bool> {
    let (api, key) = api_for(ctx, batch)?;
    let mut b = batch.clone();
    if b.status == "prepared" {
        let path = input_file(ws, &b)?;
        let file_id = api.upload(&path, &format!("{}.jsonl", b.tag)).await?;
        ws.set_llm_batch_uploaded(b.id, &file_id)?;
        b.input_file_id = Some(file_id);
        b.status = "uploaded".into();
    }
    if b.status == "uploaded" {
        let file_id = b
            .input_file_id
            .clone()
            .ok_or_else(|| anyhow::anyhow!("uploaded without a file id"))?;
        // A create whose reply a kill lost: the batch exists, tagged; never make a second.
        let info = match api.find_by_tag(&b.tag).await? {
            Some(info) => info,
            None => api.create(&file_id, &b.tag).await?,
        };
        ws.set_llm_batch_created(b.id, &info.id, &info.status)?;
        b.remote_id = Some(info.id);
    }
    let remote = b
        .remote_id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no batch id at the API"))?;
    let info = api.get(&remote).await?;
    record_progress(ws, &b, &info)?;
    if !info.is_done() {
        return Ok(false);
    }
    let mut collector = Collector::new(ws, key, Some(b.id), summary, ctx);
    for file_id in [&info.output_file_id, &info.error_file_id]
        .into_iter()
        .flatten()
    {
        let mut splitter = batch::LineSplitter::new(max_line(ctx));
        let mut on_line = |(n, line): batch::Line<'_>| collector.line(file_id, n, line);
        api.download(file_id, |chunk| splitter.push(chunk, &mut on_line))
            .await?;
        splitter.finish(&mut on_line)?;
        collector.flush()?;
    }
    let reason = match info.errors_text() {
        Some(errors) => format!(
            "the batch ended {} without answering it: {errors}",
            info.status
        ),
        None => format!("the batch ended {} without answering it", info.status),
    };
    let rest = ws.finish_llm_batch(b.id, &reason, &format!("ended {}", info.status))?;
    for _ in 0..rest {
        summary.fail(format!("batch {}: {reason}", b.id));
    }
    // The input file has served its purpose; the workspace keeps what the batch produced.
    if let Ok(path) = input_file(ws, &b) {
        let _ = std::fs::remove_file(path);
    }
    Ok(true)
}

/// The input file of an API batch: `WORKSPACE/batches/TAG.jsonl`, from the tag, never from the
/// stored path (a row of a shared server must not make this machine upload or remove any other
/// file).
fn input_file(ws: &Workspace, b: &LlmBatch) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !b.tag.is_empty()
            && b.tag.len() <= 64
            && b.tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "batch {} has a malformed tag {:?}",
        b.id,
        b.tag
    );
    Ok(ws.dir().join("batches").join(format!("{}.jsonl", b.tag)))
}

/// One answered line waiting to be stored.
struct Answered {
    batch_id: i64,
    key: String,
    task: String,
    subject: String,
    model: String,
    judge: Option<String>,
    meta: String,
    content: String,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// Stores output lines, many to a transaction.
struct Collector<'a> {
    ws: &'a Workspace,
    key: Option<ApiKey>,
    /// Collecting one batch: lines about other requests are refused.
    batch: Option<i64>,
    summary: &'a mut CollectSummary,
    answered: Vec<Answered>,
    failed: Vec<(i64, String, String)>,
    /// The keys of `answered` and `failed`.
    buffered: std::collections::HashSet<String>,
    price: (llm::Prices, f64),
}

const PER_TRANSACTION: usize = 500;

impl<'a> Collector<'a> {
    fn new(
        ws: &'a Workspace,
        key: Option<ApiKey>,
        batch: Option<i64>,
        summary: &'a mut CollectSummary,
        ctx: &Context,
    ) -> Self {
        let factor = ctx.config.llm.batch_price_factor;
        Self {
            ws,
            key,
            batch,
            summary,
            answered: Vec::new(),
            failed: Vec::new(),
            buffered: Default::default(),
            price: (llm::prices(&ctx.config.llm), factor),
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.redact(text),
            None => text.to_string(),
        }
    }

    fn line(&mut self, file: &str, n: u64, line: Result<&str, String>) -> anyhow::Result<()> {
        let parsed = line.and_then(batch::parse_output_line);
        let parsed = match parsed {
            Ok(p) => p,
            Err(reason) => {
                let reason = self.redact(&reason);
                self.summary.refuse(format!("{file} line {n}: {reason}"));
                return Ok(());
            }
        };
        let custom_id = parsed.custom_id().to_string();
        if self.buffered.contains(&custom_id) {
            // A second line about a request still in the buffer: store the first one before
            // deciding about this one.
            self.flush()?;
        }
        let pending = self.ws.pending_llm_batch_request(&custom_id)?;
        let pending = match pending {
            Some(p) if self.batch.is_none_or(|b| b == p.batch_id) => p,
            _ => {
                if self.ws.llm_request_outcome(&custom_id)?.is_some() {
                    // Stored by an earlier collect (or import) of the same line.
                    self.summary.already_stored += 1;
                } else {
                    self.summary.refuse(format!(
                        "{file} line {n}: custom_id {} is not a request waiting in {}",
                        self.redact(&custom_id),
                        match self.batch {
                            Some(b) => format!("batch {b}"),
                            None => "any open batch of this workspace".into(),
                        }
                    ));
                }
                return Ok(());
            }
        };
        self.buffered.insert(pending.key.clone());
        match parsed {
            OutputLine::Answered { reply, .. } => {
                self.answered.push(Answered {
                    batch_id: pending.batch_id,
                    key: pending.key,
                    task: pending.task,
                    subject: pending.subject,
                    model: pending.model,
                    judge: pending.judge,
                    meta: pending.meta,
                    // As the direct path does: a key echoed in a reply is neither stored nor shown.
                    content: self.redact(&reply.content),
                    prompt_tokens: reply.prompt_tokens,
                    completion_tokens: reply.completion_tokens,
                });
            }
            OutputLine::Failed { reason, .. } => {
                let reason = self.redact(&reason);
                self.summary.fail(format!("{}: {reason}", pending.subject));
                self.failed.push((pending.batch_id, pending.key, reason));
            }
        }
        if self.answered.len() + self.failed.len() >= PER_TRANSACTION {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let mut notes = Warnings::default();
        let mut parsed: Vec<Parsed> = Vec::with_capacity(self.answered.len());
        for a in &self.answered {
            let broken = || {
                format!(
                    "the workspace's record of batch request {} is broken",
                    a.subject
                )
            };
            parsed.push(match a.task.as_str() {
                "generate" => {
                    let meta: GenerateMeta = serde_json::from_str(&a.meta).with_context(broken)?;
                    Parsed::Sample(super::generate::generated_sample(
                        &meta.figure,
                        &a.key,
                        &meta.image,
                        &a.content,
                        meta.answers,
                        &mut notes,
                    ))
                }
                _ => {
                    let meta: JudgeMeta = serde_json::from_str(&a.meta).with_context(broken)?;
                    Parsed::Scores(super::judge::judge_scores(&a.content, &meta.answers))
                }
            });
        }
        let mut replies = Vec::with_capacity(self.answered.len());
        for (a, p) in self.answered.iter().zip(&parsed) {
            let request = LlmRequest {
                key: &a.key,
                task: &a.task,
                subject: &a.subject,
                model: &a.model,
                reply: &a.content,
                prompt_tokens: a.prompt_tokens,
                completion_tokens: a.completion_tokens,
            };
            let reply = match p {
                Parsed::Sample(sample) => LlmBatchReply::Generate {
                    request,
                    sample: sample.clone(),
                },
                Parsed::Scores(scores) => LlmBatchReply::Judge {
                    request,
                    judge: a.judge.as_deref().unwrap_or(&a.model),
                    scores: scores.clone(),
                },
            };
            replies.push((a.batch_id, reply));
        }
        let stored = self.ws.store_llm_batch_replies(&replies)?;
        for (note, n) in notes.counts() {
            *self.summary.notes.entry(note).or_default() += n;
        }
        for (a, s) in self.answered.iter().zip(stored) {
            match s {
                LlmBatchStored::AlreadyStored => {
                    self.summary.already_stored += 1;
                    continue;
                }
                LlmBatchStored::Scores { added, unparseable } => {
                    self.summary.scores_added += added;
                    if unparseable.is_some() {
                        self.summary.unparseable += 1;
                    }
                }
                LlmBatchStored::Sample(outcome) => match outcome {
                    crate::store::GeneratedOutcome::Inserted => self.summary.samples_added += 1,
                    crate::store::GeneratedOutcome::Unchanged => {}
                    crate::store::GeneratedOutcome::Unparseable(_) => self.summary.unparseable += 1,
                },
            }
            self.summary.replies_stored += 1;
            self.summary.prompt_tokens += a.prompt_tokens;
            self.summary.completion_tokens += a.completion_tokens;
        }
        self.answered.clear();
        let failed: Vec<(i64, &str, &str)> = self
            .failed
            .iter()
            .map(|(b, k, r)| (*b, k.as_str(), r.as_str()))
            .collect();
        self.ws.fail_llm_batch_requests(&failed)?;
        self.failed.clear();
        self.buffered.clear();
        let (prices, factor) = self.price;
        self.summary.cost_estimate =
            prices.cost(self.summary.prompt_tokens, self.summary.completion_tokens) * factor;
        Ok(())
    }
}

enum Parsed {
    Sample(Result<Sample, String>),
    Scores(Result<Vec<(i64, f64)>, String>),
}

fn import(ctx: &Context, ws: &Workspace, file: &Path) -> anyhow::Result<CollectSummary> {
    let mut summary = CollectSummary::default();
    let key = llm::api_key(&ctx.config.llm);
    BatchLimits::from_config(&ctx.config.llm)?;
    let name = file.display().to_string();
    {
        let mut collector = Collector::new(ws, key, None, &mut summary, ctx);
        batch::read_lines(file, max_line(ctx), |(n, line)| {
            collector.line(&name, n, line)
        })?;
        collector.flush()?;
    }
    // A file batch whose every request is now answered or failed has ended.
    for b in ws.llm_batches()? {
        if b.is_open() && b.status == "file" {
            let (pending, _, _) = ws.llm_batch_request_counts(b.id)?;
            if pending == 0 {
                ws.finish_llm_batch(b.id, "", "imported")?;
                summary.batches_ended += 1;
            } else {
                summary.batches_open += 1;
            }
        }
    }
    Ok(summary)
}

fn cancel(ctx: &Context, ws: &Workspace, id: Option<i64>) -> anyhow::Result<i32> {
    let batches: Vec<LlmBatch> = match id {
        Some(id) => vec![ws.llm_batch(id)?.ok_or_else(|| {
            anyhow::anyhow!("no batch {id} in this workspace (see `vital batch status`)")
        })?],
        None => ws
            .llm_batches()?
            .into_iter()
            .filter(LlmBatch::is_open)
            .collect(),
    };
    let rt = llm::runtime()?;
    let mut code = exit::OK;
    for b in batches {
        if !b.is_open() {
            println!(
                "batch {}: already ended ({})",
                b.id,
                b.message.as_deref().unwrap_or("")
            );
            continue;
        }
        match &b.remote_id {
            None => {
                // Never created at the API (or a file run elsewhere): its requests go back.
                let rest = ws.finish_llm_batch(
                    b.id,
                    "the batch was cancelled before it ran",
                    "cancelled",
                )?;
                if b.status != "file" {
                    if let Ok(path) = input_file(ws, &b) {
                        let _ = std::fs::remove_file(path);
                    }
                }
                println!(
                    "batch {}: cancelled; its {rest} request(s) will be sent again by the next run",
                    b.id
                );
            }
            Some(remote) => {
                let cancelled =
                    api_for(ctx, &b).and_then(|(api, _)| rt.block_on(api.cancel(remote)));
                match cancelled {
                    Ok(info) => {
                        record_progress(ws, &b, &info)?;
                        println!(
                            "batch {} ({remote}): {}; `vital batch collect` stores what it answered, the rest is sent again by the next run",
                            b.id, info.status
                        );
                    }
                    Err(e) => {
                        eprintln!("error: batch {}: {e:#}", b.id);
                        code = exit::PARTIAL;
                    }
                }
            }
        }
    }
    Ok(code)
}
