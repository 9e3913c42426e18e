//! `vital fetch-images`: download figure images (direct, or from PMC open-access `.tar.gz`
//! packages) into a directory that the workspace then searches.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::{exit, Context};
use crate::data::formats::Format;
use crate::data::json_stream::JsonSource;
use crate::data::warnings::Warnings;
use crate::data::Record;
use crate::figure_fetch::{self as fetch, Item, Outcome};

#[derive(Debug, Args)]
pub struct FetchImagesArgs {
    /// URL list (JSON/JSONL: {pair_id | id, url | pmc_tar_url, im_path?}) [default: the workspace's imported URLs].
    #[arg(long, value_name = "FILE")]
    pub urls: Option<PathBuf>,

    /// Where the images go [default: the workspace's image cache].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Downloads at once [default: config llm.fetch_concurrency].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Fetch only the first N images of the list.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    items: usize,
    downloaded: usize,
    already_present: usize,
    failed: usize,
    dir: String,
    failures: Vec<String>,
}

pub fn run(ctx: &Context, args: FetchImagesArgs) -> anyhow::Result<i32> {
    let cfg = &ctx.config.llm;
    let ws = ctx.open_workspace()?;
    ws.ensure_curator("fetching images")?;
    let mut warnings = Warnings::default();
    let mut items = match &args.urls {
        Some(path) => read_urls(path, &mut warnings)?,
        None => ws
            .image_urls()?
            .into_iter()
            .map(|u| Item {
                key: u.key,
                url: u.url,
                member: u.member,
            })
            .collect(),
    };
    if let Some(limit) = args.limit {
        items.truncate(limit);
    }
    if items.is_empty() {
        anyhow::bail!(
            "no image URLs to fetch{}",
            if args.urls.is_none() {
                " (import a URL list, or pass --urls FILE)"
            } else {
                ""
            }
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| ws.image_cache_dir());
    std::fs::create_dir_all(&dir)?;
    ws.add_image_dir(&dir)?;
    let mut settings = crate::config::fetch_settings(cfg, dir.clone());
    if let Some(n) = args.concurrency {
        settings.concurrency = n.max(1);
    }
    let bar = if ctx.quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(items.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("fetch [{bar:25}] {pos}/{len} eta {eta} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    };
    let mut summary = Summary {
        items: items.len(),
        dir: dir.display().to_string(),
        ..Default::default()
    };
    let rt = crate::llm::runtime()?;
    let results = rt.block_on(fetch::fetch_all(items, settings, |_, outcome| {
        bar.inc(1);
        if let Outcome::Failed(_) = outcome {
            bar.set_message("some failed");
        }
    }))?;
    bar.finish_and_clear();
    for (item, outcome) in &results {
        match outcome {
            Outcome::Downloaded(_) => summary.downloaded += 1,
            Outcome::Present(_) => summary.already_present += 1,
            Outcome::Failed(reason) => {
                summary.failed += 1;
                summary.failures.push(format!("{}: {reason}", item.key));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for f in summary.failures.iter().take(20) {
            eprintln!("failed: {f}");
        }
        if summary.failures.len() > 20 {
            eprintln!("… and {} more", summary.failures.len() - 20);
        }
        if !ctx.quiet {
            println!(
                "fetch-images: {} images: {} downloaded, {} already present, {} failed, into {}",
                summary.items,
                summary.downloaded,
                summary.already_present,
                summary.failed,
                summary.dir
            );
            if !warnings.is_empty() {
                print!("  warnings:\n{warnings}");
            }
        }
    }
    Ok(match summary.failed {
        0 => exit::OK,
        n if n == summary.items => exit::FAILURE,
        _ => exit::PARTIAL,
    })
}

fn read_urls(path: &std::path::Path, warnings: &mut Warnings) -> anyhow::Result<Vec<Item>> {
    use anyhow::Context as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let source =
        JsonSource::new(file).with_context(|| format!("cannot read {}", path.display()))?;
    let mut parser = Format::Urls.parser();
    let mut items = Vec::new();
    source
        .for_each(|loc, value| {
            for record in parser.parse(&value, loc, warnings)? {
                if let Record::ImageUrl(u) = record {
                    items.push(Item {
                        key: u.key,
                        url: u.url,
                        member: u.member,
                    });
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot read image URLs from {}", path.display()))?;
    Ok(items)
}
