//! `vital judge`: a judge LLM scores every answer it has not scored yet, 0–10 (GUIDE step 5).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::generate::{exit_code, warn_without_key, Build, LlmArgs};
use super::Context;
use crate::data::warnings::Warnings;
use crate::image_files::Lookup;
use crate::llm::judge::{self, JudgeItem, JudgeSettings};
use crate::llm::{self, prompt, reply, Client, Job, Progress};
use crate::store::LlmRequest;

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// The rubric (the judge's instructions) [default: the method's rubric].
    #[arg(long, value_name = "FILE")]
    pub rubric: Option<PathBuf>,

    /// Name the scores are stored under [default: the model name].
    #[arg(long, value_name = "NAME")]
    pub judge_name: Option<String>,

    /// Send answers 1 and 2 of a round together and ask for two scores.
    #[arg(long)]
    pub pairwise: bool,

    /// Judge only each sample's first round (the method's selector reads round 1).
    #[arg(long)]
    pub first_round: bool,

    /// Put the rubric in the user message after a short system role, as the method does
    /// (default: the rubric is the system message).
    #[arg(long)]
    pub rubric_in_user: bool,

    /// The method's judging: the rubric in the user message, the first round only, the
    /// endpoint's default temperature (not sent) and 4096 reply tokens.
    #[arg(long)]
    pub preset: Option<super::generate::LlmPreset>,

    /// Judge at most N requests' worth of answers.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    judge: String,
    pending: usize,
    #[serde(flatten)]
    run: crate::llm::runner::RunTotals,
    scores_added: u64,
    unparseable: u64,
    rounds_with_one_answer: u64,
    without_image: u64,
    /// Requests not sent because their sample's image file was refused (listed in the warnings).
    images_refused: u64,
    /// Each sample whose image was refused, and why.
    refused_images: Vec<String>,
    unparseable_replies: Vec<String>,
}

/// The figure of the last sample loaded, with its image as a data URL (answers come in sample order).
struct FigureCache {
    key: i64,
    caption: String,
    mentions: Vec<String>,
    image_url: Option<String>,
    /// The sample's image was refused: its answers are not judged.
    refused: bool,
}

pub fn run(ctx: &Context, args: JudgeArgs) -> anyhow::Result<i32> {
    let cfg = &ctx.config.llm;
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("judging")?;
    let model = args.llm.model(ctx);
    let judge_name = args.judge_name.clone().unwrap_or_else(|| model.clone());
    let rubric = match &args.rubric {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read rubric {}: {e}", path.display()))?,
        None => judge::DEFAULT_RUBRIC.to_string(),
    };
    anyhow::ensure!(!rubric.trim().is_empty(), "the rubric is empty");
    let task = if args.pairwise {
        "judge-pairwise"
    } else {
        "judge"
    };
    if args.llm.retry_unparseable && !args.llm.dry_run {
        ws.forget_unparseable_llm_requests(task)?;
    }
    let paper = args.preset == Some(super::generate::LlmPreset::Paper);
    let settings = JudgeSettings {
        model: model.clone(),
        rubric,
        temperature: (!paper).then_some(cfg.judge_temperature),
        max_tokens: if paper {
            super::generate::PAPER_MAX_TOKENS
        } else {
            cfg.judge_max_tokens
        },
        rubric_in_user: args.rubric_in_user || paper,
    };
    let first_round = args.first_round || paper;
    let mut summary = Summary {
        judge: judge_name.clone(),
        ..Default::default()
    };
    // Work items: answer ids (single) or round ids (pairwise) still lacking this judge's score.
    let mut pending: Vec<i64> = if first_round {
        if args.pairwise {
            summary.rounds_with_one_answer = ws.rounds_left_out_of_pairwise(&judge_name)?;
        }
        ws.llm_judge_first_round_backlog(&judge_name, args.pairwise)?
    } else if args.pairwise {
        summary.rounds_with_one_answer = ws.rounds_left_out_of_pairwise(&judge_name)?;
        ws.llm_judge_pairwise_backlog(&judge_name)?
    } else {
        ws.llm_judge_backlog(&judge_name)?
    };
    if let Some(limit) = args.limit {
        pending.truncate(limit);
    }
    summary.pending = pending.len();
    if summary.rounds_with_one_answer > 0 && !ctx.quiet {
        eprintln!(
            "note: {} round(s) with a single answer are left out of pairwise judging (judge them without --pairwise)",
            summary.rounds_with_one_answer
        );
    }

    let mut cache: Option<FigureCache> = None;
    let mut warnings = Warnings::default();
    let mut without_image = 0u64;
    let mut images_refused = 0u64;
    let mut refused_images: Vec<String> = Vec::new();
    let max_image_bytes = crate::config::fetch_settings(cfg, PathBuf::new()).max_image_bytes;
    let pairwise = args.pairwise;
    let mut build = |id: i64| -> anyhow::Result<Build<Vec<i64>>> {
        let target = if pairwise {
            ws.round_to_judge(id)?
        } else {
            ws.answer_to_judge(id)?
        };
        let sample_key = target.sample_key;
        if cache.as_ref().is_none_or(|c| c.key != sample_key) {
            let figure = ws.figure_text(sample_key)?;
            // A refused image (outside the image folders, not an image, too large) is reported
            // and the sample is not judged: no text-only request is sent in its place.
            let (image_url, refused) = match figure.image.as_deref() {
                None => (None, None),
                Some(reference) => match ws.locate_image(reference) {
                    Lookup::Found(path) => match prompt::image_data_url(&path, max_image_bytes) {
                        Ok(url) => (Some(url), None),
                        Err(e) => (None, Some(e)),
                    },
                    Lookup::Outside(path) => (
                        None,
                        Some(format!(
                            "{reference}: {} is outside the workspace's image folders",
                            path.display()
                        )),
                    ),
                    Lookup::Missing => {
                        warnings.add("image not found, judged from text", reference.to_string());
                        (None, None)
                    }
                },
            };
            if let Some(reason) = &refused {
                refused_images.push(format!("sample {}: {reason}", figure.ext_id));
            }
            cache = Some(FigureCache {
                key: sample_key,
                caption: figure.caption,
                mentions: figure.mentions,
                image_url,
                refused: refused.is_some(),
            });
        }
        let figure = cache.as_ref().expect("set above");
        if figure.refused {
            images_refused += 1;
            return Ok(Build::Pass);
        }
        if figure.image_url.is_none() {
            without_image += 1;
        }
        let item = JudgeItem {
            caption: figure.caption.clone(),
            mentions: figure.mentions.clone(),
            question: target.question,
            answers: target.answers.iter().map(|(_, t)| t.clone()).collect(),
        };
        let body = judge::judge_request(&settings, &item, figure.image_url.as_deref());
        let key = judge::request_key(&judge_name, task, &body);
        if ws.llm_request_outcome(&key)?.is_some() {
            return Ok(Build::Done);
        }
        if ws.llm_request_in_open_batch(&key)? {
            return Ok(Build::InBatch);
        }
        let answer_ids: Vec<i64> = target.answers.iter().map(|(a, _)| *a).collect();
        Ok(Build::Send(Job {
            estimated_tokens: prompt::estimate_tokens(&body, cfg.image_tokens),
            key,
            body,
            subject: format!(
                "answer{} {}",
                if answer_ids.len() > 1 { "s" } else { "" },
                answer_ids
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            meta: answer_ids,
        }))
    };

    if args.llm.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for &id in &pending {
            if let Build::Send(job) = build(id)? {
                serde_json::to_writer(&mut out, &job.body)?;
                writeln!(out)?;
            }
        }
        for r in &refused_images {
            eprintln!("image refused, not sent: {r}");
        }
        return Ok(super::exit::OK);
    }
    if args.llm.batch.is_batch() {
        let mut queue = pending.iter();
        let (mut in_batch, mut done_before) = (0u64, 0u64);
        let plan = super::batch::Plan {
            task,
            model: &model,
            judge: Some(&judge_name),
        };
        let code = super::batch::submit(ctx, &ws, &args.llm, &plan, || loop {
            let Some(&id) = queue.next() else {
                return Ok(None);
            };
            match build(id)? {
                Build::Send(job) => {
                    return Ok(Some(super::batch::BatchJob::from_job(job, |answers| {
                        super::batch::JudgeMeta { answers }
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
    if !pending.is_empty() {
        warn_without_key(ctx, &client);
    }
    let hidden = ctx.quiet || !std::io::stderr().is_terminal();
    let mut progress = Progress::new(pending.len() as u64, "judge", llm::prices(cfg), hidden);
    let mut queue = pending.iter();
    let rt = llm::runtime()?;
    let result = rt.block_on(llm::runner::run(
        client,
        llm::concurrency(cfg, &args.llm.overrides()),
        &mut progress,
        |progress| loop {
            let Some(&id) = queue.next() else {
                return Ok(None);
            };
            match build(id)? {
                Build::Send(job) => return Ok(Some(job)),
                Build::Done => progress.skip(),
                Build::InBatch => progress.pass(),
                Build::Pass => progress.pass(),
            }
        },
        |job, reply| {
            let parsed = judge_scores(&reply.content, &job.meta);
            if let Err(reason) = &parsed {
                summary.unparseable += 1;
                if summary.unparseable_replies.len() < 20 {
                    summary
                        .unparseable_replies
                        .push(format!("{}: {reason}", job.subject));
                }
            }
            summary.scores_added += ws.store_llm_judge_reply(
                &LlmRequest {
                    key: &job.key,
                    task,
                    subject: &job.subject,
                    model: &model,
                    reply: &reply.content,
                    prompt_tokens: reply.prompt_tokens,
                    completion_tokens: reply.completion_tokens,
                },
                &judge_name,
                parsed.as_deref().map_err(String::as_str),
            )?;
            Ok(())
        },
    ));
    summary.run = progress.run_totals();
    summary.without_image = without_image;
    summary.images_refused = images_refused;
    summary.refused_images = refused_images;
    result?;
    print_summary(ctx, &summary, args.llm.json, &warnings)?;
    Ok(exit_code(
        summary.run.interrupted,
        summary.run.failed + summary.images_refused,
        summary.unparseable,
        summary.run.requests_answered + summary.run.skipped_done_before,
    ))
}

/// The scores a judge reply gives the answers `ids` (the direct path and a batch's replies
/// alike), or why it gives none.
pub(super) fn judge_scores(content: &str, ids: &[i64]) -> Result<Vec<(i64, f64)>, String> {
    reply::parse_scores(content, ids.len()).map(|scores| ids.iter().copied().zip(scores).collect())
}

fn print_summary(
    ctx: &Context,
    s: &Summary,
    json: bool,
    warnings: &Warnings,
) -> anyhow::Result<()> {
    if !super::generate::print_report_head(ctx, &s.run, s, json)? {
        return Ok(());
    }
    println!(
        "judge {}: {} pending: {} answered, {} done before, {} failed, {} image refused; {} scores added, {} unparseable replies kept in llm_requests",
        s.judge, s.pending, s.run.requests_answered, s.run.skipped_done_before, s.run.failed, s.images_refused, s.scores_added, s.unparseable
    );
    println!("  {}", s.run.tokens_line());
    super::generate::print_refused_images(&s.refused_images);
    super::generate::print_report_tail(&s.unparseable_replies, warnings);
    Ok(())
}
