//! `vital show ID`: one sample in a plain shell — the image through viuer, then the Q&A with
//! every reviewer's decisions and the judges' scores.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use clap::Args;

use super::{exit, Context};
use crate::data::display_text;
use crate::image_files::Lookup;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The sample's id (as in its source file).
    pub id: String,
    /// Do not print the image even on a terminal.
    #[arg(long)]
    pub no_image: bool,
    /// Image width in terminal columns.
    #[arg(long, default_value_t = 60)]
    pub width: u32,
}

pub fn run(ctx: &Context, args: ShowArgs) -> anyhow::Result<i32> {
    match show(ctx, &args) {
        // `vital show ID | head -3`: the reader has gone, which is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(exit::OK)
        }
        other => other,
    }
}

fn show(ctx: &Context, args: &ShowArgs) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    let ws = ctx.open_existing_workspace()?;
    let Some(stored) = ws.load_sample_by_ext_id(&args.id)? else {
        anyhow::bail!("no sample with id `{}` in {}", args.id, ws.describe());
    };
    let s = &stored.sample;
    writeln!(
        out,
        "{}{}",
        s.id,
        if s.is_demo { "  [demonstration]" } else { "" }
    )?;
    if let Some(label) = &s.fig_label {
        writeln!(out, "label:    {label}")?;
    }
    if !s.domains.is_empty() {
        writeln!(out, "domain:   {}", s.domains.join(", "))?;
    }
    if let Some(source) = &stored.source {
        writeln!(out, "source:   {source}")?;
    }
    match s.image.as_deref() {
        None => writeln!(out, "image:    (none)")?,
        Some(reference) => match ws.locate_image(reference) {
            Lookup::Missing => writeln!(out, "image:    {reference} (file not found)")?,
            Lookup::Outside(_) => writeln!(
                out,
                "image:    {reference} (refused: outside the workspace's image folders)"
            )?,
            Lookup::Found(path) => {
                writeln!(out, "image:    {}", path.display())?;
                if !args.no_image && std::io::stdout().is_terminal() {
                    let config = viuer::Config {
                        width: Some(args.width),
                        absolute_offset: false,
                        ..Default::default()
                    };
                    let shown = image::open(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|img| {
                            viuer::print(&img, &config)
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        });
                    if let Err(e) = shown {
                        writeln!(out, "          (cannot display: {e})")?;
                    }
                }
            }
        },
    }
    writeln!(out, "\ncaption:  {}", s.caption)?;
    for mention in &s.mentions {
        writeln!(out, "mention:  {mention}")?;
    }
    let decisions = decisions_by_answer(&ws, stored.key)?;
    let mut scores = scores_by_answer(&ws, stored.key)?;
    // The latest selector run's scores, beside the judges'.
    for (answer, score) in ws.selector_scores(stored.key)? {
        scores
            .entry(answer)
            .or_default()
            .push(format!("selector {score:.2}"));
    }
    for (r, round) in s.rounds.iter().enumerate() {
        writeln!(out, "\nQ{}: {}", r + 1, display_text(&round.question))?;
        if round.answers.is_empty() {
            writeln!(out, "    (unanswered)")?;
        }
        for (a, answer) in round.answers.iter().enumerate() {
            let id = stored.answer_ids[r][a];
            let mut marks: Vec<String> = decisions.get(&id).cloned().unwrap_or_default();
            marks.extend(scores.get(&id).cloned().unwrap_or_default());
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("  [{}]", marks.join(", "))
            };
            writeln!(out, "  Answer {}{marks}: {}", a + 1, display_text(answer))?;
        }
    }
    Ok(exit::OK)
}

/// "reviewer ✓" / "reviewer ✗" per answer, from the decisions in force.
fn decisions_by_answer(
    ws: &crate::store::Workspace,
    key: i64,
) -> anyhow::Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for d in ws.answer_decisions(key)? {
        let mark = if d.accepted { "✓" } else { "✗" };
        out.entry(d.answer_id)
            .or_default()
            .push(format!("{} {mark}", d.reviewer));
    }
    Ok(out)
}

/// "judge 7" per answer.
fn scores_by_answer(
    ws: &crate::store::Workspace,
    key: i64,
) -> anyhow::Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for s in ws.sample_model_scores(key)? {
        out.entry(s.answer_id)
            .or_default()
            .push(format!("{} {}", s.judge, s.score));
    }
    Ok(out)
}
