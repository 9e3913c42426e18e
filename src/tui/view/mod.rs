//! Drawing. Reads the app state, never changes it; the image pane's protocol state is the one
//! mutable input because ratatui-image renders through it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use ratatui_image::thread::ThreadProtocol;
use ratatui_image::{FilterType, FontSize, Resize, StatefulImage};

mod popups;
mod rounds;
mod zoom;

pub use popups::{agreement_lines, team_status_lines};
use popups::{draw_export_form, draw_help, draw_popup, draw_preview, draw_training};
use rounds::draw_rounds;

use super::app::{App, ImageStatus, InputKind, Mode};
use super::keymap::Action;
use super::sample_view::SampleView;

/// The image pane's state: owned by the runtime, drawn here.
pub enum ImageState {
    /// Nothing to show, and why (no image in the data, file not found…).
    Placeholder(String),
    Loading(String),
    Ready(Box<ShownImage>),
}

/// A figure made into terminal graphics: how it is drawn, and the figure and cell size it was
/// made for (to size and centre it in the pane).
pub struct ShownImage {
    pub drawing: Drawing,
    pub image: std::sync::Arc<image::DynamicImage>,
    /// Pixels per cell of the terminal (the protocol's resolution).
    pub font: FontSize,
}

/// Figures are scaled up as well as down to fill their pane, keeping their aspect ratio, with
/// a filter that keeps edges sharp when enlarging (Catmull-Rom; ratatui-image's default is
/// nearest-neighbour, blocky on a 256-pixel figure).
const FILL: Resize = Resize::Scale(Some(FilterType::CatmullRom));

/// How a figure reaches the screen (one per figure shown: the size difference costs nothing).
#[allow(clippy::large_enum_variant)]
pub enum Drawing {
    /// In text cells, through ratatui-image (kitty placeholders, sixel, iTerm2, half blocks).
    Cells(ThreadProtocol),
    /// kitty's placed image: the view leaves its cells blank and records where it goes
    /// ([`ImagePane::placed_at`]); the runtime places it after the frame.
    Placed(super::placed::PlacedImage),
}

pub struct ImagePane {
    /// The sample whose image this is.
    pub key: Option<i64>,
    pub state: ImageState,
    /// The protocol figures are drawn with (named in the pane's title).
    pub graphics: crate::terminal::Graphics,
    /// Where this frame wants a placed figure; None when none is shown or an overlay covers it.
    pub placed_at: Option<Rect>,
    /// A pop-up is open: a figure in pixels (sixel, iTerm2, kitty) is not drawn under it, since
    /// some terminals let its pixels show through the pop-up's blank cells.
    pub covered: bool,
}

impl Default for ImagePane {
    fn default() -> Self {
        Self {
            key: None,
            state: ImageState::Placeholder(String::new()),
            graphics: crate::terminal::Graphics::Halfblocks,
            placed_at: None,
            covered: false,
        }
    }
}

/// What covers the screen: an overlay, the zoom view, or neither. A change of layer redraws
/// the whole screen, figure included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub overlay: bool,
    pub zoomed: bool,
}

pub fn layer(app: &App) -> Layer {
    Layer {
        overlay: overlay_open(app),
        zoomed: app.zoomed,
    }
}

/// Whether a pop-up is drawn over the screen (prompts on the status line cover no figure).
fn overlay_open(app: &App) -> bool {
    matches!(
        app.mode,
        Mode::Help
            | Mode::Preview(_)
            | Mode::Export(_)
            | Mode::Agreement(_)
            | Mode::Guidelines
            | Mode::Edit(_)
            | Mode::Note(_)
            | Mode::Reason(_)
    )
}

/// Panes wider than this put the image and context beside the rounds; narrower ones stack them.
const WIDE: u16 = 110;
/// Below this rounds-pane width, answers are stacked instead of side by side.
pub(super) const SIDE_BY_SIDE: u16 = 60;

pub fn draw(frame: &mut Frame, app: &App, image: &mut ImagePane) {
    image.placed_at = None;
    image.covered = overlay_open(app);
    draw_screen(frame, app, image);
    if overlay_open(app) {
        // A placed figure sits above the text: it is taken off while a pop-up is open.
        image.placed_at = None;
    }
    draw_popups(frame, app);
}

fn draw_screen(frame: &mut Frame, app: &App, image: &mut ImagePane) {
    if app.zoomed {
        zoom::draw_zoomed(frame, app, image);
        return;
    }
    let [bar, main, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(status_rows(app, frame.area().width)),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_queue_bar(frame, app, bar);
    let show_training =
        app.training.running || app.training.last_run.is_some() || !app.training.status.is_empty();
    let panel_height = if show_training { 6 } else { 0 };
    let (image_area, context_area, training_area, rounds_area) = if main.width >= WIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(62)])
                .areas(main);
        let [img, ctx, panel] = Layout::vertical([
            Constraint::Percentage(55),
            Constraint::Min(3),
            Constraint::Length(panel_height),
        ])
        .areas(left);
        (img, ctx, panel, right)
    } else {
        let top_height = (main.height / 3).clamp(4, 10);
        let [top, panel, rounds] = Layout::vertical([
            Constraint::Length(top_height),
            Constraint::Length(panel_height.min(4)),
            Constraint::Min(3),
        ])
        .areas(main);
        let [img, ctx] = Layout::horizontal([
            Constraint::Length((top.width / 3).max(16)),
            Constraint::Min(10),
        ])
        .areas(top);
        (img, ctx, panel, rounds)
    };
    let block = Block::bordered().title(format!(" Image · {} ", image.graphics.label()));
    let inner = block.inner(image_area);
    frame.render_widget(block, image_area);
    draw_image(frame, image, inner);
    if show_training {
        draw_training(frame, app, training_area);
    }
    match &app.current {
        Some(view) => {
            draw_context(frame, app, view, context_area);
            draw_rounds(frame, app, view, rounds_area);
        }
        None => {
            let text = if app.queue.position().1 == 0 {
                "No samples in view. Press F to change the filter, Esc to clear the search."
            } else {
                "Loading…"
            };
            frame.render_widget(
                Paragraph::new(text).block(Block::bordered().title(" Context ")),
                context_area,
            );
            frame.render_widget(Block::bordered().title(" Rounds "), rounds_area);
        }
    }
    draw_status(frame, app, status);
    draw_hints(frame, app, hints, HINTS);
}

fn draw_popups(frame: &mut Frame, app: &App) {
    match &app.mode {
        Mode::Help => draw_help(frame, app),
        Mode::Preview(preview) => draw_preview(frame, preview),
        Mode::Export(form) => draw_export_form(frame, form),
        Mode::Agreement(lines) => {
            draw_popup(frame, " Reviewers and agreement (any key closes) ", lines)
        }
        Mode::Guidelines => popups::draw_guidelines(frame, app),
        Mode::Edit(state) => popups::draw_editor(frame, state),
        Mode::Note(state) => popups::draw_note(frame, state),
        Mode::Reason(target) => popups::draw_reasons(frame, app, target),
        _ => {}
    }
}

fn draw_queue_bar(frame: &mut Frame, app: &App, area: Rect) {
    let (pos, shown) = app.queue.position();
    let mut text = format!(
        " {pos}/{shown}  reviewed {}/{}  filter: {}",
        app.queue.reviewed(),
        app.queue.total(),
        app.queue.filter().label()
    );
    if let Some(q) = app.queue.search_text() {
        text.push_str(&format!("  search: \"{q}\""));
    }
    text.push_str(&format!("  order: {}", app.queue.order().label()));
    // Why this sample is next: the signal the order ranks by.
    if let Some(why) = app.queue.why_here() {
        text.push_str(&format!(" ({why})"));
    }
    if let Some(entry) = app.queue.current_entry() {
        text.push_str(&format!("  │ {}", entry.ext_id));
        if entry.decided {
            text.push_str(" ✓decided");
        }
        if entry.flagged {
            text.push_str(" ⚑flagged");
        }
    }
    let style = Style::default().bg(Color::Blue).fg(Color::White);
    frame.render_widget(Paragraph::new(text).style(style), area);
}

/// The figure scaled to fill `area` (centred, aspect kept), or why there is none.
fn draw_image(frame: &mut Frame, image: &mut ImagePane, inner: Rect) {
    let in_pixels = image.graphics != crate::terminal::Graphics::Halfblocks;
    match &mut image.state {
        ImageState::Ready(_) if image.covered && in_pixels => {
            frame.render_widget(
                Paragraph::new("(the figure is back when the pop-up closes)")
                    .style(Style::default().fg(Color::DarkGray))
                    .wrap(Wrap { trim: true }),
                inner,
            );
        }
        ImageState::Ready(shown) => {
            let size = FILL.size_for(&shown.image, shown.font, inner.as_size());
            let (width, height) = (size.width.min(inner.width), size.height.min(inner.height));
            let centred = Rect {
                x: inner.x + (inner.width - width) / 2,
                y: inner.y + (inner.height - height) / 2,
                width,
                height,
            };
            match &mut shown.drawing {
                Drawing::Cells(protocol) => frame.render_stateful_widget(
                    StatefulImage::default().resize(FILL),
                    centred,
                    protocol,
                ),
                Drawing::Placed(placed) => {
                    frame.render_widget(ratatui::widgets::Clear, centred);
                    if !placed.ready() {
                        frame.render_widget(Paragraph::new("drawing the figure…"), centred);
                    }
                    image.placed_at = Some(centred);
                }
            }
        }
        ImageState::Loading(what) => {
            frame.render_widget(
                Paragraph::new(format!("loading {what}…")).wrap(Wrap { trim: true }),
                inner,
            );
        }
        ImageState::Placeholder(why) => {
            let style = Style::default().fg(Color::DarkGray);
            frame.render_widget(
                Paragraph::new(why.as_str())
                    .style(style)
                    .wrap(Wrap { trim: true }),
                inner,
            );
        }
    }
}

fn draw_context(frame: &mut Frame, app: &App, view: &SampleView, area: Rect) {
    let s = &view.stored.sample;
    let label = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::from(vec![
        Span::styled("Caption: ", label),
        Span::raw(s.caption.clone()),
    ])];
    for mention in &s.mentions {
        lines.push(Line::from(vec![
            Span::styled("Mention: ", label),
            Span::raw(mention.clone()),
        ]));
    }
    let mut facts = Vec::new();
    if let Some(l) = &s.fig_label {
        facts.push(l.clone());
    }
    if !s.domains.is_empty() {
        facts.push(s.domains.join(", "));
    }
    if view.is_demo() {
        facts.push("demonstration".into());
    }
    if view.flagged() {
        facts.push("flagged".into());
    }
    if !facts.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("Figure: ", label),
            Span::raw(facts.join(" · ")),
        ]));
    }
    if let Some(source) = &view.stored.source {
        let name = std::path::Path::new(source)
            .file_name()
            .map_or(source.clone(), |n| n.to_string_lossy().into());
        lines.push(Line::from(vec![
            Span::styled("Source: ", label),
            Span::raw(name),
        ]));
    }
    if let Some(scores) = focused_scores(app, view) {
        lines.push(Line::from(vec![
            Span::styled("Scores: ", label),
            Span::raw(scores),
        ]));
    }
    // What the curator can do about a missing figure: here, not in the clinician's image pane.
    if let ImageStatus::Placeholder(why) = app.figure_on_screen() {
        if why.starts_with("image not found") {
            lines.push(Line::from(vec![
                Span::styled("For the curator: ", label.fg(Color::DarkGray)),
                Span::styled(
                    "import with --images DIR, or run `vital fetch-images`",
                    Style::default().fg(Color::DarkGray),
                ),
            ]));
        }
    }
    if let Some(note) = view.note() {
        lines.push(Line::from(vec![
            Span::styled("Note: ", label.fg(Color::Yellow)),
            Span::raw(note.to_string()),
        ]));
    }
    let title = format!(" {} ", s.id);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        area,
    );
}

/// Rows the status line takes at `width`: all of its text, up to three rows.
pub(super) fn status_rows(app: &App, width: u16) -> u16 {
    // A pop-up is sized to the screen less one status row, and says what its keys do itself.
    if overlay_open(app) {
        return 1;
    }
    let chars = status_text(app).0.chars().count();
    u16::try_from(chars.div_ceil(usize::from(width.max(1))).clamp(1, 3)).unwrap_or(1)
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let (mut text, style) = status_text(app);
    // Text typed into a prompt keeps its end (where the cursor is) in view.
    let room = usize::from(area.width) * usize::from(area.height);
    let chars = text.chars().count();
    if chars > room && matches!(app.mode, Mode::Input { .. }) {
        text = format!(
            "…{}",
            text.chars().skip(chars - room + 1).collect::<String>()
        );
    }
    frame.render_widget(
        Paragraph::new(text)
            .style(style.add_modifier(Modifier::BOLD))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The status line's text and style: the prompt being typed, or who is reviewing, what was saved
/// and the last message; a failed save in red until a save succeeds.
fn status_text(app: &App) -> (String, Style) {
    let text = match &app.mode {
        Mode::Input { kind, text } => {
            let what = match kind {
                InputKind::Goto => "go to id",
                InputKind::Search => "search",
                InputKind::ReasonOther(_) => "why ✗ (other)",
            };
            format!(" {what}: {text}█   (Enter: done, Esc: cancel)")
        }
        _ => {
            let saved = app
                .last_save
                .as_deref()
                .map_or("no decision yet this session".to_string(), |t| {
                    format!("saved {t}")
                });
            let message = app
                .message
                .as_deref()
                .map(|m| format!(" · {m}"))
                .unwrap_or_default();
            let export = app
                .export_status
                .as_deref()
                .map(|e| format!(" · {e}"))
                .unwrap_or_default();
            let journal = app
                .journal_note
                .as_deref()
                .map(|j| format!(" · {j}"))
                .unwrap_or_default();
            format!(
                " reviewer {} · {saved}{journal}{export}{message}",
                app.reviewer
            )
        }
    };
    // A failed save is shown until a save succeeds, in red: the reviewer must not miss it.
    match &app.save_error {
        Some(why) => (
            format!(" NOT SAVED: {why} (decide again once the workspace is writable)"),
            Style::default().fg(Color::White).bg(Color::Red),
        ),
        None => (text, Style::default()),
    }
}

/// The actions worth a hint, most used first; the bar shows as many as fit.
const HINTS: &[(Action, &str)] = &[
    (Action::Accept, "accept"),
    (Action::Reject, "reject"),
    (Action::Prefer1, "prefer 1"),
    (Action::Prefer2, "prefer 2"),
    (Action::Tie, "tie"),
    (Action::NextRound, "round"),
    (Action::NextAnswer, "answer"),
    (Action::NextSample, "next"),
    (Action::Zoom, "figure"),
    (Action::Undo, "undo"),
    (Action::Help, "help"),
    (Action::Quit, "quit"),
    (Action::Edit, "edit"),
    (Action::Flag, "flag"),
    (Action::Note, "note"),
    (Action::Search, "search"),
    (Action::Filter, "filter"),
    (Action::Goto, "go to"),
    (Action::Train, "train"),
    (Action::Order, "order"),
    (Action::Preview, "preview"),
    (Action::Demo, "demo"),
    (Action::Export, "export"),
    (Action::Agreement, "agreement"),
];

/// The key line: as many hints as fit, and always help and quit at its end, so a reviewer at
/// 80×24 can find every other key.
fn draw_hints(frame: &mut Frame, app: &App, area: Rect, hints: &[(Action, &'static str)]) {
    let always = |action: &Action| matches!(action, Action::Help | Action::Quit);
    let labelled = |(action, label): &(Action, &'static str)| {
        let key = app.keymap.first_key_label(*action)?;
        let len = key.chars().count() + label.len() + 3;
        Some((key, *label, len))
    };
    let tail: Vec<_> = hints
        .iter()
        .filter(|(a, _)| always(a))
        .filter_map(labelled)
        .collect();
    let mut room = (area.width as usize).saturating_sub(tail.iter().map(|t| t.2).sum());
    let mut shown = Vec::new();
    for hint in hints.iter().filter(|(a, _)| !always(a)) {
        let Some(item) = labelled(hint) else {
            continue;
        };
        if item.2 > room {
            break;
        }
        room -= item.2;
        shown.push(item);
    }
    let mut spans = Vec::new();
    for (key, label, _) in shown.into_iter().chain(tail) {
        spans.push(Span::styled(
            format!(" {key}"),
            Style::default().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The focused answer's raw scores, for the details: the judge's mean and the selector's value
/// with its place among all answers ("top 12%" beside the answer comes from it).
fn focused_scores(app: &App, view: &SampleView) -> Option<String> {
    let answer = view.answer_at(app.focus_round, app.focus_answer)?;
    let mut parts = Vec::new();
    if let Some(judge) = view.judge_scores.get(&answer) {
        parts.push(format!("judge {judge:.1}"));
    }
    if let Some(score) = view.selector_scores.get(&answer) {
        let mut text = format!("selector {score:.4}");
        if let Some(top) = app.score_ranks.top_percent(*score) {
            text.push_str(&format!(
                " (beats {}% of {} answers)",
                100 - top,
                app.score_ranks.total()
            ));
        }
        parts.push(text);
    }
    (!parts.is_empty()).then(|| {
        format!(
            "Q{} answer {}: {}",
            app.focus_round + 1,
            app.focus_answer + 1,
            parts.join(" · ")
        )
    })
}

/// The selector's judgement of an answer as the share of the run's answers it beats ("sel
/// beats 88%": a bigger number is better), or the raw value when the run's spread is unknown.
pub(super) fn selector_label(app: &App, score: f64) -> String {
    match app.score_ranks.top_percent(score) {
        Some(top) => format!("sel beats {}%", 100 - top),
        None => format!("sel {score:.2}"),
    }
}
