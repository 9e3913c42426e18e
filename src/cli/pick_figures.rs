//! `vital pick-figures`: the method's first step, diverse figures to generate for: caption +
//! first inline mention embedded (hashed TF-IDF words, or a sentence encoder; with an open_clip
//! encoder the figure's image vector joins its text vector, as the method clusters on both),
//! k-means++ into k clusters (seeded), N figures drawn across the clusters; gross and histology
//! left out unless kept. The output holds the chosen input records unchanged, as JSON Lines: `vital generate
//! --input` reads it.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{exit, Context};
use crate::data::warnings::Warnings;
use crate::figure_pick;
use crate::image_files::{ImageRoots, Lookup};
use crate::selector::BackendKind;

#[derive(Debug, Args)]
pub struct PickFiguresArgs {
    /// Fig-caption records (JSON array or JSON Lines): {pair_id, fig_caption, in_text_mention, domain, …}.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Clusters (the method: 60).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Figures to draw across the clusters.
    #[arg(long, value_name = "N")]
    pub n: usize,
    /// A sentence-encoder model folder for the text vectors [default: hashed TF-IDF words].
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// Folders holding the figures' images, for an open_clip --encoder (repeatable) [default:
    /// the input file's folder]. A figure whose image is not found clusters on its text alone.
    #[arg(long = "images", value_name = "DIR")]
    pub images: Vec<PathBuf>,
    /// cpu | wgpu | cuda, for --encoder [default: config selector.backend]
    #[arg(long, env = "VITAL_BACKEND")]
    pub backend: Option<BackendKind>,
    /// Seed of the k-means++ centres and of the draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep gross and histology figures (the authors left them out).
    #[arg(long)]
    pub keep_gross_histology: bool,
    /// Where to write the chosen records (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    figures: usize,
    left_out_gross_histology: usize,
    clustered: usize,
    clusters: usize,
    picked: usize,
    features: String,
    out: PathBuf,
    /// Figures picked from each cluster.
    per_cluster: Vec<usize>,
}

/// Appends each figure's image vector to its text vector (both unit length, so they weigh the
/// same; zeros for a figure whose image is not found or does not decode). Returns how many
/// figures had one.
fn add_image_vectors(
    ctx: &Context,
    args: &PickFiguresArgs,
    kept: &[&(crate::data::Sample, serde_json::Value)],
    encoder: &mut dyn crate::embed::SentenceEncoder,
    points: &mut [Vec<f32>],
) -> anyhow::Result<usize> {
    let mut dirs = args.images.clone();
    if dirs.is_empty() {
        let folder = args.input.parent().filter(|p| !p.as_os_str().is_empty());
        dirs.push(folder.map_or_else(|| PathBuf::from("."), PathBuf::from));
    }
    let roots = ImageRoots::new(dirs);
    let paths: Vec<Option<PathBuf>> = kept
        .iter()
        .map(
            |(figure, _)| match crate::llm::figures::find_image(figure, &roots) {
                Lookup::Found(path) => Some(path),
                Lookup::Missing | Lookup::Outside(_) => None,
            },
        )
        .collect();
    let present: Vec<&std::path::Path> = paths.iter().flatten().map(PathBuf::as_path).collect();
    let bar = ctx.count_bar(present.len() as u64, "embedding figure images");
    let mut vectors = Vec::with_capacity(present.len());
    for chunk in present.chunks(16 * encoder.batches_at_once()) {
        vectors.extend(encoder.embed_images(chunk)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let dim = encoder.dim();
    let mut vectors = vectors.into_iter();
    let mut found = 0;
    for (point, path) in points.iter_mut().zip(&paths) {
        let vector = path.as_ref().and_then(|_| vectors.next().flatten());
        found += usize::from(vector.is_some());
        point.extend(vector.unwrap_or_else(|| vec![0.0; dim]));
    }
    Ok(found)
}

pub fn run(ctx: &Context, args: PickFiguresArgs) -> anyhow::Result<i32> {
    let mut warnings = Warnings::default();
    let records = crate::llm::figures::read_figure_records(&args.input, &mut warnings)?;
    let figures = records.len();
    let kept: Vec<&(crate::data::Sample, serde_json::Value)> = records
        .iter()
        .filter(|(f, _)| args.keep_gross_histology || !figure_pick::left_out(&f.domains))
        .collect();
    let texts: Vec<String> = kept
        .iter()
        .map(|(f, _)| figure_pick::figure_text(&f.caption, &f.mentions))
        .collect();
    let (points, features) = match &args.encoder {
        Some(dir) => {
            let backend = args.backend.unwrap_or(ctx.config.selector.backend);
            let mut encoder = crate::embed::open_encoder(dir, backend)?;
            let bar = ctx.count_bar(texts.len() as u64, "embedding figures");
            let mut points = Vec::with_capacity(texts.len());
            // Batches of 16, as many at once as the encoder computes, between bar updates.
            for chunk in texts.chunks(16 * encoder.batches_at_once()) {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                points.extend(encoder.embed(&refs, 16)?);
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
            if encoder.embeds_images() {
                let found = add_image_vectors(ctx, &args, &kept, encoder.as_mut(), &mut points)?;
                let what = format!(
                    "encoder {} + figure images ({found} of {} found)",
                    dir.display(),
                    kept.len()
                );
                (points, what)
            } else {
                (points, format!("encoder {}", dir.display()))
            }
        }
        None => (
            figure_pick::hashed_features(&texts),
            "hashed TF-IDF words".to_string(),
        ),
    };
    let clusters = figure_pick::kmeans(&points, args.k as usize, args.seed, 100);
    let picked = figure_pick::draw_across(&clusters, args.n, args.seed);
    let k = clusters.iter().copied().max().map_or(0, |m| m + 1);
    let mut per_cluster = vec![0usize; k];
    for &i in &picked {
        per_cluster[clusters[i]] += 1;
    }
    let mut out = crate::atomic_write::AtomicFile::create(&args.out)?;
    for &i in &picked {
        serde_json::to_writer(&mut out, &kept[i].1)?;
        out.write_all(b"\n")?;
    }
    out.commit()?;
    let summary = Summary {
        figures,
        left_out_gross_histology: figures - kept.len(),
        clustered: kept.len(),
        clusters: k,
        picked: picked.len(),
        features,
        out: args.out.clone(),
        per_cluster,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !ctx.quiet {
        println!(
            "picked {} of {} figures across {} clusters ({}; {} gross/histology left out) into {}",
            summary.picked,
            summary.clustered,
            summary.clusters,
            summary.features,
            summary.left_out_gross_histology,
            args.out.display()
        );
        if !warnings.is_empty() {
            print!("warnings:\n{warnings}");
        }
    }
    Ok(exit::OK)
}
