//! `vital answers`: every answer with its figure context, one JSON object per line — the input an
//! outside encoder (e.g. BiomedCLIP) needs to compute embeddings for `vital train --embeddings`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{exit, Context};

#[derive(Debug, Args)]
pub struct AnswersArgs {
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: AnswersArgs) -> anyhow::Result<i32> {
    let ws = ctx.open_existing_workspace()?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut ext_ids: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let total =
        crate::selector_runs::for_each_answer_chunk(&ws, 50_000, &mut |inputs, samples| {
            for (input, sample) in inputs.iter().zip(samples) {
                if !ext_ids.contains_key(sample) {
                    ext_ids.insert(*sample, ws.sample_ext_id(*sample)?);
                }
                let line = json!({
                    "answer_id": input.answer_id,
                    "sample_id": ext_ids[sample],
                    "round": input.round_position + 1,
                    "image": input.image_path,
                    "figure": input.figure_key,
                    "caption": input.caption,
                    "mentions": input.mentions,
                    "question": input.question,
                    "answer": input.answer,
                });
                writeln!(out, "{line}")?;
            }
            Ok(())
        })?;
    out.flush()?;
    if let (Some(path), false) = (&args.out, ctx.quiet) {
        eprintln!("wrote {total} answers to {}", path.display());
    }
    Ok(exit::OK)
}
