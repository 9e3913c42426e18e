//! `vital embed`: caches a sentence encoder's vector of every question, answer and
//! caption+mention of the workspace (each distinct text once); with an open_clip folder
//! (BiomedCLIP) also every figure's image vector (each distinct image file once, by content). Batches are committed as they
//! finish, so a killed run loses at most one batch and the next run continues from there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::Args;

use super::{exit, Context};
use crate::embed::{self, EncoderRef, FillReport, FillTarget, ImageFillReport, SentenceEncoder};
use crate::selector::BackendKind;
use crate::shard::Shard;
use crate::store::{ShardContent, ShardFile, Workspace};

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
    /// Embed only shard K of N (K from 0 to N-1), chosen by each text's and image's content
    /// hash, so N machines split the work with no coordinator (a Slurm array:
    /// `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT` with `--array=0-(N-1)`). On a
    /// server the vectors go straight into its cache; on a directory into a shard file (--out)
    /// for `--merge`.
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// The shard file of a directory workspace [default: WORKSPACE/shards/vectors-ENCODER-KofN.db]
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub out: Option<PathBuf>,
    /// Add the vectors of finished shard files to the workspace's cache (each checked against
    /// its seal; vectors the cache has are kept; merging twice adds nothing).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["encoder", "batch_size"])]
    pub merge: Vec<PathBuf>,
}

pub fn run(ctx: &Context, args: EmbedArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    ws.ensure_curator("embedding")?;
    if !args.merge.is_empty() {
        return merge(ctx, &ws, &args.merge);
    }
    let dir = encoder_dir(ctx, args.encoder)?.context(
        "no encoder: pass --encoder DIR, or set selector.encoder in config.toml (or VITAL_ENCODER)",
    )?;
    let backend = args.backend.unwrap_or(ctx.config.selector.backend);
    let batch_size = backend.encoder_batch_size_or(args.batch_size);
    let shard = args.shard.unwrap_or(Shard::ALL);
    // A directory's shard writes a file of its own; a server takes every shard's vectors.
    let mut file = match (args.shard, ws.is_server()) {
        (Some(_), true) if args.out.is_some() => anyhow::bail!(
            "--out is for a directory workspace: on a server every shard writes into its cache"
        ),
        (Some(shard), false) => {
            let identity = embed::folder_identity(&dir)?;
            let path = args.out.clone().unwrap_or_else(|| {
                ws.dir().join("shards").join(format!(
                    "vectors-{}-{}.db",
                    embed::short(&identity),
                    shard.file_tag()
                ))
            });
            let file = ShardFile::create_or_resume(
                &path,
                ShardContent::Vectors,
                &identity,
                shard.index,
                shard.count,
            )?;
            Some(file)
        }
        _ => None,
    };
    let target = FillTarget {
        shard,
        file: file.as_ref(),
    };
    let (used, report, images) = fill_to(ctx, &ws, target, &dir, backend, batch_size)?;
    if let (Some(images), false) = (images, ctx.quiet) {
        println!(
            "figures{}: {} image files, {} already cached, {} embedded, {} unreadable",
            shard_label(shard),
            images.images,
            images.cached,
            images.embedded,
            images.unreadable
        );
    }
    if !ctx.quiet {
        println!(
            "encoder {} ({}){}: {} distinct texts, {} already cached, {} embedded",
            used.folder.display(),
            embed::short(&used.identity),
            shard_label(shard),
            report.texts,
            report.cached,
            report.embedded
        );
    }
    if let Some(file) = file.as_mut() {
        let seal = file.seal()?;
        if !ctx.quiet {
            println!(
                "shard {shard}: {} vectors in {} (sealed {}); when every shard is done: vital embed --merge {}",
                seal.rows,
                file.path().display(),
                &seal.digest[..12],
                file.path()
                    .with_file_name(format!(
                        "vectors-{}-*of{}.db",
                        embed::short(&used.identity),
                        shard.count
                    ))
                    .display()
            );
        }
    }
    Ok(exit::OK)
}

/// ` (shard 2/10)`, or nothing for an unsharded run.
fn shard_label(shard: Shard) -> String {
    if shard.is_all() {
        String::new()
    } else {
        format!(" (shard {shard})")
    }
}

/// `vital embed --merge FILES…`: each file checked against its seal, then added; says which
/// shards of each encoder's split are still missing.
fn merge(ctx: &Context, ws: &Workspace, files: &[PathBuf]) -> anyhow::Result<i32> {
    // Every file is checked before any is merged: one bad file stops the merge up front.
    let opened = files
        .iter()
        .map(|path| ShardFile::open_sealed(path, ShardContent::Vectors))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut splits: BTreeMap<(String, u32), BTreeSet<u32>> = BTreeMap::new();
    for file in &opened {
        let merged = ws.merge_vector_shard(file)?;
        let header = file.header();
        splits
            .entry((header.key.clone(), header.count))
            .or_default()
            .insert(header.index);
        if !ctx.quiet {
            println!(
                "{}: shard {}/{} of encoder {}: {} vectors, {} added, {} already cached{}",
                file.path().display(),
                header.index,
                header.count,
                embed::short(&header.key),
                merged.rows,
                merged.added,
                merged.rows - merged.added,
                if merged.differing > 0 {
                    format!(
                        " ({} of those hold other values; the cache's are kept)",
                        merged.differing
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    for ((key, count), have) in &splits {
        if !ctx.quiet {
            let (rows, digest) = ws.text_embeddings_digest(key)?;
            println!(
                "encoder {}: the cache holds {rows} vectors (digest {})",
                embed::short(key),
                &digest[..12]
            );
        }
        let missing: Vec<String> = (0..*count)
            .filter(|i| !have.contains(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "note: encoder {}: shards {} of {count} are not merged yet",
                embed::short(key),
                missing.join(", ")
            );
        }
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

/// Loads the encoder in `dir` and embeds what `target` lacks of its shard (texts; figures too
/// with an open_clip encoder), with a progress bar.
fn fill_to(
    ctx: &Context,
    ws: &Workspace,
    target: FillTarget<'_>,
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
        |ws, encoder, batch, progress, cancel| {
            embed::fill_cache_to(target, ws, encoder, batch, progress, cancel)
        },
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
            |ws, encoder, batch, progress, cancel| {
                embed::fill_image_cache_to(target, ws, encoder, batch, progress, cancel)
            },
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
pub(super) fn rate_bar(ctx: &Context, label: &str) -> indicatif::ProgressBar {
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
