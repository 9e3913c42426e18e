//! `vital embed`: caches a sentence encoder's vector of every question, answer and
//! caption+mention of the workspace (each distinct text once); with an open_clip folder
//! (BiomedCLIP) also every figure's image vector (each distinct image file once, by content). Batches are committed as they
//! finish, so a killed run loses at most one batch and the next run continues from there.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;

use super::{exit, Context};
use crate::embed::{self, EncoderRef, FillReport, ImageFillReport, SentenceEncoder};
use crate::selector::BackendKind;
use crate::store::Workspace;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The encoder's model folder [default: config selector.encoder, env VITAL_ENCODER]
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// Texts per forward pass [default: 8 on the CPU backend, one batch per core at a time;
    /// 64 on a GPU]. Each call's batches are committed together.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// cpu | wgpu | cuda [default: config selector.backend]
    #[arg(long, env = "VITAL_BACKEND")]
    pub backend: Option<BackendKind>,
}

pub fn run(ctx: &Context, args: EmbedArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("embedding")?;
    let dir = encoder_dir(ctx, args.encoder)?.context(
        "no encoder: pass --encoder DIR, or set selector.encoder in config.toml (or VITAL_ENCODER)",
    )?;
    let backend = args.backend.unwrap_or(ctx.config.selector.backend);
    let batch_size = backend.encoder_batch_size_or(args.batch_size);
    let (used, report, images) = fill(ctx, &ws, &dir, backend, batch_size)?;
    if let (Some(images), false) = (images, ctx.quiet) {
        println!(
            "figures: {} image files, {} already cached, {} embedded, {} unreadable",
            images.images, images.cached, images.embedded, images.unreadable
        );
    }
    if !ctx.quiet {
        println!(
            "encoder {} ({}): {} distinct texts, {} already cached, {} embedded",
            used.folder.display(),
            embed::short(&used.identity),
            report.texts,
            report.cached,
            report.embedded
        );
    }
    Ok(exit::OK)
}

/// The encoder folder from the flag, else the config (absolute, so a run can find it again).
pub(super) fn encoder_dir(ctx: &Context, flag: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    flag.or_else(|| ctx.config.selector.encoder_dir())
        .map(|dir| {
            std::path::absolute(&dir)
                .with_context(|| format!("cannot resolve the encoder folder {}", dir.display()))
        })
        .transpose()
}

/// Loads the encoder in `dir` and embeds what the cache lacks (texts; figures too with an
/// open_clip encoder), with a progress bar.
pub(super) fn fill(
    ctx: &Context,
    ws: &Workspace,
    dir: &Path,
    backend: BackendKind,
    batch_size: usize,
) -> anyhow::Result<(EncoderRef, FillReport, Option<ImageFillReport>)> {
    let mut encoder = embed::open_encoder(dir, backend)?;
    let used = EncoderRef {
        identity: encoder.identity().to_string(),
        folder: dir.to_path_buf(),
        dim: encoder.dim(),
        images: encoder.embeds_images(),
    };
    let (report, secs) = timed_fill(
        ctx,
        "embedding texts",
        ws,
        encoder.as_mut(),
        batch_size,
        embed::fill_cache,
    )?;
    if !ctx.quiet && report.embedded > 0 {
        eprintln!(
            "embedded {} texts in {secs:.1}s ({:.1} texts/s)",
            report.embedded,
            report.embedded as f64 / secs
        );
    }
    let images = if encoder.embeds_images() {
        let (images, secs) = timed_fill(
            ctx,
            "embedding figures",
            ws,
            encoder.as_mut(),
            batch_size,
            embed::fill_image_cache,
        )?;
        if !ctx.quiet && images.embedded > 0 {
            eprintln!(
                "embedded {} figures in {secs:.1}s ({:.2} images/s)",
                images.embedded,
                images.embedded as f64 / secs
            );
        }
        Some(images)
    } else {
        None
    };
    Ok((used, report, images))
}

/// Embeds the texts a run's prepared inputs have that the cache lacks (the paper preset's
/// joined caption + mention + question + answer), a chunk of answers at a time.
pub(super) fn fill_prepared(
    ws: &Workspace,
    dir: &Path,
    settings: &crate::selector_runs::RunSettings,
    batch_size: usize,
) -> anyhow::Result<usize> {
    let mut encoder = embed::open_encoder(dir, settings.backend)?;
    let mut embedded = 0;
    crate::selector_runs::for_each_answer_chunk(ws, 20_000, &mut |inputs, _| {
        let mut prepared = inputs.to_vec();
        settings.prepare_inputs(&mut prepared);
        let texts: Vec<String> = prepared
            .iter()
            .flat_map(crate::selector::encoder_features::texts_of)
            .collect();
        embedded += embed::ensure_cached(ws, encoder.as_mut(), &texts, batch_size)?;
        Ok(())
    })?;
    Ok(embedded)
}

/// One cache fill (`embed::fill_cache` or `embed::fill_image_cache`) behind a rate bar labelled
/// `label`; returns its report and the seconds it took (never zero, so a rate can divide by it).
fn timed_fill<R>(
    ctx: &Context,
    label: &str,
    ws: &Workspace,
    encoder: &mut dyn SentenceEncoder,
    batch_size: usize,
    fill: impl FnOnce(
        &Workspace,
        &mut dyn SentenceEncoder,
        usize,
        &mut dyn FnMut(usize, usize),
        &AtomicBool,
    ) -> anyhow::Result<R>,
) -> anyhow::Result<(R, f64)> {
    let bar = rate_bar(ctx, label);
    let started = std::time::Instant::now();
    let report = fill(
        ws,
        encoder,
        batch_size,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
        &AtomicBool::new(false),
    )?;
    bar.finish_and_clear();
    Ok((report, started.elapsed().as_secs_f64().max(1e-9)))
}

/// A progress bar with the rate and the time left (the length is set as the fill learns it).
fn rate_bar(ctx: &Context, label: &str) -> indicatif::ProgressBar {
    let bar = ctx.progress_bar(0, label);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
