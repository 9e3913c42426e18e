//! `vital show ID`: one sample in a plain shell — the image, then the Q&A with every reviewer's
//! decisions and the judges' scores. The image protocol is chosen as the review screen chooses
//! it ([`crate::terminal`]): kitty images are placed at the cursor, sixel and iTerm2 come from
//! the review screen's encoders, half blocks from viuer.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use clap::Args;

use super::{exit, Context};
use crate::data::{display_text, plain_text};
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
    /// How the image is drawn [default: config review.image_protocol, "auto"]
    #[arg(long, value_enum)]
    pub image_protocol: Option<crate::config::ImageProtocol>,
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
        plain_text(&s.id),
        if s.is_demo { "  [demonstration]" } else { "" }
    )?;
    if let Some(label) = &s.fig_label {
        writeln!(out, "label:    {}", plain_text(label))?;
    }
    if !s.domains.is_empty() {
        writeln!(out, "domain:   {}", plain_text(&s.domains.join(", ")))?;
    }
    if let Some(source) = &stored.source {
        writeln!(out, "source:   {}", plain_text(source))?;
    }
    match s.image.as_deref() {
        None => writeln!(out, "image:    (none)")?,
        Some(reference) => match ws.locate_image(reference) {
            Lookup::Missing => {
                writeln!(out, "image:    {} (file not found)", plain_text(reference))?
            }
            Lookup::Outside(_) => writeln!(
                out,
                "image:    {} (refused: outside the workspace's image folders)",
                plain_text(reference)
            )?,
            Lookup::Found(path) => {
                writeln!(out, "image:    {}", plain_text(&path.display().to_string()))?;
                if !args.no_image && std::io::stdout().is_terminal() {
                    let forced = args
                        .image_protocol
                        .unwrap_or(ctx.config.review.image_protocol);
                    let shown = crate::tui::decode_image(&path, ctx.config.review.max_image_side)
                        .and_then(|img| {
                            out.flush().map_err(|e| e.to_string())?;
                            print_image(&img, args.width, forced)
                        });
                    if let Err(e) = shown {
                        writeln!(out, "          (cannot display: {e})")?;
                    }
                }
            }
        },
    }
    writeln!(out, "\ncaption:  {}", plain_text(&s.caption))?;
    for mention in &s.mentions {
        writeln!(out, "mention:  {}", plain_text(mention))?;
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
        writeln!(
            out,
            "\nQ{}: {}",
            r + 1,
            plain_text(&display_text(&round.question))
        )?;
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
            writeln!(
                out,
                "  Answer {}{}: {}",
                a + 1,
                plain_text(&marks),
                plain_text(&display_text(answer))
            )?;
        }
    }
    Ok(exit::OK)
}

/// Prints `img` `width` columns wide in the protocol the terminal is detected to draw best.
fn print_image(
    img: &image::DynamicImage,
    width: u32,
    forced: crate::config::ImageProtocol,
) -> Result<(), String> {
    use crate::terminal::{self, Graphics};
    let choice = terminal::detect_once(forced);
    let width = u16::try_from(width.clamp(1, 1000)).unwrap_or(60);
    let (cell_w, cell_h) = choice.cell.unwrap_or((1, 2));
    // Rows that keep the aspect ratio, given the cell's shape.
    let rows = (f64::from(width) * f64::from(cell_w) * f64::from(img.height())
        / (f64::from(img.width().max(1)) * f64::from(cell_h)))
    .ceil()
    .clamp(1.0, 500.0) as u16;
    let mut stdout = std::io::stdout();
    match choice.graphics {
        Graphics::KittyDirect | Graphics::KittyPlaceholders if !choice.tmux => {
            let max = (
                u32::from(width) * u32::from(cell_w),
                u32::from(rows) * u32::from(cell_h),
            );
            let png = terminal::kitty::png(img, max).map_err(|e| format!("{e:#}"))?;
            let shown = terminal::kitty::show_at_cursor(0x5653_0001, &png, width, rows);
            writeln!(stdout, "{shown}").map_err(|e| e.to_string())?;
        }
        Graphics::Halfblocks => {
            let config = viuer::Config {
                width: Some(u32::from(width)),
                absolute_offset: false,
                use_kitty: false,
                use_iterm: false,
                ..Default::default()
            };
            viuer::print(img, &config).map_err(|e| e.to_string())?;
        }
        _ => print_cells(img, &choice, width, rows).map_err(|e| format!("{e:#}"))?,
    }
    stdout.flush().map_err(|e| e.to_string())
}

/// The review screen's encoder (sixel, iTerm2, kitty placeholders) drawn below the cursor in an
/// inline viewport of `rows` lines.
fn print_cells(
    img: &image::DynamicImage,
    choice: &crate::terminal::Choice,
    width: u16,
    rows: u16,
) -> anyhow::Result<()> {
    use ratatui::layout::Size;
    use ratatui::{Terminal, TerminalOptions, Viewport};
    let picker = crate::terminal::picker(choice);
    let protocol = picker
        .new_protocol(
            img.clone(),
            Size::new(width, rows),
            ratatui_image::Resize::Fit(None),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Inline(rows),
        },
    )?;
    terminal.draw(|frame| {
        let area = frame.area();
        frame.render_widget(ratatui_image::Image::new(&protocol), area);
    })?;
    let bottom = terminal.get_frame().area().bottom();
    terminal.set_cursor_position((0, bottom))?;
    terminal.show_cursor()?;
    Ok(())
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
