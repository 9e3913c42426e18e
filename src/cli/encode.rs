//! `vital encode`: texts (JSON Lines, one JSON string per line) → one L2-normalised vector
//! per line (a JSON array of floats), in input order, with a pretrained encoder folder; with
//! `--images` each line is an image path and an open_clip folder (BiomedCLIP) embeds the images
//! into the space its text tower embeds texts in. Vectors go to stdout, progress and the summary
//! to stderr.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use burn::tensor::backend::Backend;
use clap::Args;

use super::{exit, Context};
use crate::encoder::open_clip::{OpenClipEncoder, OpenClipFolder};
use crate::encoder::{batch_workers, TextEncoder};
use crate::selector::BackendKind;

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// A Hugging Face model folder (BERT, BiomedBERT/PubMedBERT, MiniLM; sentence-transformers
    /// folders use their own pooling), or an open_clip folder (BiomedCLIP: open_clip_config.json).
    #[arg(long, value_name = "DIR", env = "VITAL_ENCODER")]
    pub encoder: PathBuf,
    /// JSON Lines of texts, one JSON string per line; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// FILE's lines are image paths (JSON strings, relative to the current folder); needs an
    /// open_clip encoder folder.
    #[arg(long)]
    pub images: bool,
    /// Texts per forward pass [default: 8 on the CPU backend, one batch per core at a time;
    /// 64 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,
    /// cpu | wgpu | cuda
    #[arg(long, default_value = "cpu")]
    pub backend: String,
}

/// Texts handed to the encoder at once: sorted by length inside such a window, printed after it.
const WINDOW: usize = 4096;

pub fn run(ctx: &Context, args: EncodeArgs) -> Result<i32> {
    let kind: BackendKind = args.backend.parse()?;
    let texts = read_texts(&args.file)?;
    let device = kind.probe()?;
    if !ctx.quiet && kind != BackendKind::Cpu {
        eprintln!("backend {kind}: {device}");
    }
    match kind {
        BackendKind::Cpu => {
            encode_on::<burn::backend::NdArray>(ctx, &args, &texts, &Default::default())
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            encode_on::<burn::backend::Wgpu>(ctx, &args, &texts, &Default::default())
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            encode_on::<burn::backend::Cuda>(ctx, &args, &texts, &Default::default())
        }
        #[allow(unreachable_patterns)] // reachable only when a GPU feature is off
        other => bail!("backend {other} is not compiled in: rebuild with --features {other}"),
    }
}

/// `--batch-size`, else the backend's default.
fn batch_size(args: &EncodeArgs) -> usize {
    let backend: BackendKind = args.backend.parse().unwrap_or_default();
    backend.encoder_batch_size_or(args.batch_size)
}

fn encode_on<B: Backend>(
    ctx: &Context,
    args: &EncodeArgs,
    texts: &[String],
    device: &B::Device,
) -> Result<i32> {
    if OpenClipFolder::is_open_clip(&args.encoder) {
        return encode_open_clip::<B>(ctx, args, texts, device);
    }
    if args.images {
        bail!(
            "{}: --images needs an open_clip folder (with open_clip_config.json, e.g. BiomedCLIP); this is a text-only encoder",
            args.encoder.display()
        );
    }
    let loading = Instant::now();
    let encoder = TextEncoder::<B>::load(&args.encoder, device)?;
    if !ctx.quiet {
        let folder = encoder.folder();
        eprintln!(
            "encoder {}: {} layers, {} dims, {} pooling, up to {} tokens (loaded in {:.1}s)",
            args.encoder.display(),
            folder.bert.num_hidden_layers,
            encoder.dim(),
            folder.pooling.name(),
            folder.max_tokens,
            loading.elapsed().as_secs_f64()
        );
    }
    let bar = ctx.count_bar(texts.len() as u64, "encoding");
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let mut tokens = 0usize;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (w, window) in texts.chunks(WINDOW).enumerate() {
        let ids = window
            .iter()
            .enumerate()
            .map(|(i, text)| {
                encoder
                    .token_ids(text)
                    .with_context(|| format!("{}:{}", display(&args.file), w * WINDOW + i + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        tokens += ids.iter().map(Vec::len).sum::<usize>();
        let base = (w * WINDOW) as u64;
        let vectors = encoder.encode_ids(&ids, batch_size(args), &mut |done| {
            bar.set_position(base + done as u64)
        })?;
        write_vectors(&mut out, &vectors)?;
    }
    bar.finish_and_clear();
    if !ctx.quiet {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        // CPU time next to wall time: on a shared machine the wall time says little.
        let cpu = process_cpu_seconds() - cpu_started;
        eprintln!(
            "encoded {} texts ({tokens} tokens) in {secs:.2}s (CPU {cpu:.2}s): {:.1} texts/s, {:.0} tokens/s",
            texts.len(),
            texts.len() as f64 / secs,
            tokens as f64 / secs
        );
    }
    Ok(exit::OK)
}

/// User + system CPU seconds of this process so far, all threads.
#[cfg(unix)]
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

#[cfg(not(unix))]
fn process_cpu_seconds() -> f64 {
    0.0
}

/// Texts or (`--images`) image files through an open_clip model.
fn encode_open_clip<B: Backend>(
    ctx: &Context,
    args: &EncodeArgs,
    lines: &[String],
    device: &B::Device,
) -> Result<i32> {
    let loading = Instant::now();
    let encoder = OpenClipEncoder::<B>::load(&args.encoder, device)?;
    if !ctx.quiet {
        let folder = encoder.folder();
        eprintln!(
            "open_clip encoder {}: {} image tower, {}-layer text tower, {} dims, up to {} tokens (loaded in {:.1}s)",
            args.encoder.display(),
            folder.vision.timm_name,
            encoder.text_config().num_hidden_layers,
            encoder.dim(),
            folder.text.context_length,
            loading.elapsed().as_secs_f64()
        );
    }
    let what = if args.images { "images" } else { "texts" };
    let bar = ctx.count_bar(lines.len() as u64, "encoding");
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let batch = batch_size(args);
    for (w, window) in lines.chunks(WINDOW).enumerate() {
        let base = w * WINDOW;
        let where_ = |i: usize| format!("{}:{}", display(&args.file), base + i + 1);
        let vectors = if args.images {
            let mut vectors = Vec::with_capacity(window.len());
            // `batch` images per forward pass, as many passes at once as there are workers.
            let call = batch * batch_workers::<B>();
            for (c, chunk) in window.chunks(call).enumerate() {
                let paths: Vec<&Path> = chunk.iter().map(Path::new).collect();
                let inputs = encoder
                    .image_inputs(&paths)
                    .into_iter()
                    .enumerate()
                    .map(|(i, input)| input.with_context(|| where_(c * call + i)))
                    .collect::<Result<Vec<_>>>()?;
                vectors.extend(encoder.embed_inputs(&inputs)?);
                bar.set_position((base + vectors.len()) as u64);
            }
            vectors
        } else {
            let ids = window
                .iter()
                .enumerate()
                .map(|(i, text)| encoder.token_ids(text).with_context(|| where_(i)))
                .collect::<Result<Vec<_>>>()?;
            encoder.encode_ids(&ids, batch, &mut |done| {
                bar.set_position((base + done) as u64)
            })?
        };
        write_vectors(&mut out, &vectors)?;
    }
    bar.finish_and_clear();
    if !ctx.quiet {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "encoded {} {what} in {secs:.2}s: {:.2} {what}/s",
            lines.len(),
            lines.len() as f64 / secs
        );
    }
    Ok(exit::OK)
}

/// One JSON array per line, flushed so that a reader sees each window as it is done.
fn write_vectors(out: &mut impl Write, vectors: &[Vec<f32>]) -> Result<()> {
    for vector in vectors {
        serde_json::to_writer(&mut *out, vector).context("writing a vector")?;
        out.write_all(b"\n").context("writing stdout")?;
    }
    out.flush().context("writing stdout")
}

fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Every line must be one JSON string (`""` for an empty text); errors name the file and line.
fn read_texts(path: &Path) -> Result<Vec<String>> {
    let name = display(path);
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("{name}: cannot open"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut texts = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}:{}: cannot read", i + 1))?;
        let text: String = serde_json::from_str(&line).with_context(|| {
            format!(
                "{name}:{}: expected one JSON string per line (e.g. \"text\"), got `{}`",
                i + 1,
                shorten(&line)
            )
        })?;
        texts.push(text);
    }
    Ok(texts)
}

fn shorten(line: &str) -> String {
    const MAX: usize = 60;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
