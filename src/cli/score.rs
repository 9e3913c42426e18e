//! `vital score`: scores every answer and sample with a trained selector run; with `--shard K/N`
//! only the samples of one shard (one machine of a job array each), and `--merge` joins a
//! directory workspace's shard files. A run scored in shards shows in the queue when its last
//! shard is in, never half.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;

use super::{exit, Context};
use crate::selector::BackendKind;
use crate::selector_runs::{self, SampleScore};
use crate::shard::Shard;
use crate::store::{RunRecord, ShardContent, ShardFile, Workspace};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The run to score with [default: the latest]
    #[arg(long)]
    pub run: Option<i64>,
    /// mean-best | mean | min | first-round (the method's) [default: config selector.sample_score]
    #[arg(long)]
    pub sample_score: Option<SampleScore>,
    /// cpu | wgpu | cuda: where the model scores [default: config selector.backend]
    #[arg(long, env = "VITAL_BACKEND")]
    pub backend: Option<BackendKind>,
    /// Score only the samples of shard K of N (K from 0 to N-1; samples K, K+N, K+2N, …), so
    /// N machines split the work; needs --run, so every shard scores the same run. The texts
    /// must be embedded already (`vital embed`, sharded or not). On a server the scores go
    /// straight in; on a directory into a shard file (--out) for `--merge`.
    #[arg(long, value_name = "K/N", requires = "run", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// The shard file of a directory workspace [default: WORKSPACE/shards/scores-runR-KofN.db]
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub out: Option<PathBuf>,
    /// Store the scores of finished shard files (each checked against its seal); a run is
    /// published when all its shards are in.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["run", "sample_score", "backend"])]
    pub merge: Vec<PathBuf>,
}

pub fn run(ctx: &Context, args: ScoreArgs) -> anyhow::Result<i32> {
    let mut ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("scoring")?;
    if !args.merge.is_empty() {
        return merge(ctx, &mut ws, &args.merge);
    }
    let how = args
        .sample_score
        .unwrap_or(ctx.config.selector.sample_score);
    let (run_id, report, mut selector) = selector_runs::load_run(&ws, args.run)?;
    selector.place_on(args.backend.unwrap_or(ctx.config.selector.backend))?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    // Answers added since the run was trained are embedded by the run's own encoder first; a
    // shard leaves the workspace's cache to `vital embed` (many shards must not all fill it).
    if shard.is_all() {
        let bar = super::embed::rate_bar(ctx, "embedding new texts");
        selector_runs::ensure_embeddings(
            &ws,
            &report.settings,
            32,
            &mut |_, done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
            &AtomicBool::new(false),
        )?;
        bar.finish_and_clear();
    }
    let embeddings = report.settings.load_embeddings()?;
    let bar = ctx.count_bar(0, "scoring answers");
    let scores = selector_runs::compute_scores(
        &ws,
        run_id,
        &selector,
        embeddings.as_ref(),
        how,
        shard,
        &mut |done| bar.set_position(done as u64),
        &AtomicBool::new(false),
    )?;
    bar.finish_and_clear();
    let (answers, samples) = (scores.answers.len(), scores.samples.len());
    if shard.is_all() {
        ws.store_selector_scores(run_id, &scores.answers, &scores.samples)?;
        if !ctx.quiet {
            println!("run {run_id}: scored {answers} answers and {samples} samples");
        }
    } else if ws.is_server() {
        anyhow::ensure!(
            args.out.is_none(),
            "--out is for a directory workspace: on a server every shard writes its scores in"
        );
        let published = ws.store_score_shard(
            run_id,
            shard.index,
            shard.count,
            &scores.answers,
            &scores.samples,
        )?;
        if !ctx.quiet {
            println!(
                "run {run_id}, shard {shard}: scored {answers} answers and {samples} samples{}",
                published_note(&ws, run_id, shard.count, published)?
            );
        }
    } else {
        let path = args.out.unwrap_or_else(|| {
            ws.dir()
                .join("shards")
                .join(format!("scores-run{run_id}-{}.db", shard.file_tag()))
        });
        let mut file = ShardFile::create_or_resume(
            &path,
            ShardContent::Scores,
            &run_id.to_string(),
            shard.index,
            shard.count,
        )?;
        file.store_scores(&scores.answers, &scores.samples)?;
        let seal = file.seal()?;
        if !ctx.quiet {
            println!(
                "run {run_id}, shard {shard}: scored {answers} answers and {samples} samples into {} (sealed {}); when every shard is done: vital score --merge {}",
                path.display(),
                &seal.digest[..12],
                path.with_file_name(format!("scores-run{run_id}-*of{}.db", shard.count))
                    .display()
            );
        }
    }
    Ok(exit::OK)
}

/// `; run R published` or `; shards 1, 4 of 5 still to come`.
fn published_note(ws: &Workspace, run: i64, count: u32, published: bool) -> anyhow::Result<String> {
    if published {
        return Ok(format!(
            "; all {count} shards are in: run {run} is published"
        ));
    }
    let done: BTreeSet<u32> = ws.score_shards_done(run, count)?.into_iter().collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !done.contains(i))
        .map(|i| i.to_string())
        .collect();
    Ok(format!(
        "; shards {} of {count} still to come",
        missing.join(", ")
    ))
}

/// `vital score --merge FILES…`: every file checked against its seal before any is stored.
fn merge(ctx: &Context, ws: &mut Workspace, files: &[PathBuf]) -> anyhow::Result<i32> {
    let opened = files
        .iter()
        .map(|path| {
            let file = ShardFile::open_sealed(path, ShardContent::Scores)?;
            let run: i64 = file
                .header()
                .key
                .parse()
                .with_context(|| format!("{}: no run id in its header", path.display()))?;
            Ok((run, file))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (run, file) in &opened {
        anyhow::ensure!(
            matches!(ws.selector_run_record(*run)?, RunRecord::Finished(_)),
            "{}: scores of run {run}, which this workspace does not have",
            file.path().display()
        );
        let header = file.header();
        let (answers, samples) = file.scores()?;
        let narrow = |rows: Vec<(i64, f64)>| -> Vec<(i64, f32)> {
            // Written from f32, so the round trip is exact.
            rows.into_iter().map(|(id, s)| (id, s as f32)).collect()
        };
        let (answers, samples) = (narrow(answers), narrow(samples));
        let published =
            ws.store_score_shard(*run, header.index, header.count, &answers, &samples)?;
        if !ctx.quiet {
            println!(
                "{}: run {run}, shard {}/{}: {} answers and {} samples{}",
                file.path().display(),
                header.index,
                header.count,
                answers.len(),
                samples.len(),
                published_note(ws, *run, header.count, published)?
            );
        }
    }
    Ok(exit::OK)
}
