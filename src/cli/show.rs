//! `vital show ID`: one sample in a plain shell — the image through viuer, then the Q&A with
//! every reviewer's decisions and the judges' scores.

use std::collections::HashMap;
use std::io::IsTerminal;

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
    let ws = ctx.open_existing_workspace()?;
    let Some(stored) = ws.load_sample_by_ext_id(&args.id)? else {
        anyhow::bail!("no sample with id `{}` in {}", args.id, ws.dir().display());
    };
    let s = &stored.sample;
    println!(
        "{}{}",
        s.id,
        if s.is_demo { "  [demonstration]" } else { "" }
    );
    if let Some(label) = &s.fig_label {
        println!("label:    {label}");
    }
    if !s.domains.is_empty() {
        println!("domain:   {}", s.domains.join(", "));
    }
    if let Some(source) = &stored.source {
        println!("source:   {source}");
    }
    match s.image.as_deref() {
        None => println!("image:    (none)"),
        Some(reference) => match ws.locate_image(reference) {
            Lookup::Missing => println!("image:    {reference} (file not found)"),
            Lookup::Outside(_) => {
                println!("image:    {reference} (refused: outside the workspace's image folders)")
            }
            Lookup::Found(path) => {
                println!("image:    {}", path.display());
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
                        println!("          (cannot display: {e})");
                    }
                }
            }
        },
    }
    println!("\ncaption:  {}", s.caption);
    for mention in &s.mentions {
        println!("mention:  {mention}");
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
        println!("\nQ{}: {}", r + 1, display_text(&round.question));
        if round.answers.is_empty() {
            println!("    (unanswered)");
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
            println!("  Answer {}{marks}: {}", a + 1, display_text(answer));
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
