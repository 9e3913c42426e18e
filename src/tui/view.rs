//! Drawing. Reads the app state, never changes it; the image pane's protocol state is the one
//! mutable input because ratatui-image renders through it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Sparkline, Wrap};
use ratatui::Frame;
use ratatui_image::thread::ThreadProtocol;
use ratatui_image::{Resize, StatefulImage};

use super::app::{App, ExportForm, InputKind, Mode, SelectionPreview};
use super::keymap::Action;
use super::queue::Filter;
use super::sample_view::SampleView;
use super::wrap::{pad, wrap};
use crate::data::display_text;
use crate::store::DecisionKind;

/// The image pane's state: owned by the runtime, drawn here.
pub enum ImageState {
    /// Nothing to show, and why (no image in the data, file not found…).
    Placeholder(String),
    Loading(String),
    Ready(Box<ThreadProtocol>),
}

pub struct ImagePane {
    /// The sample whose image this is.
    pub key: Option<i64>,
    pub state: ImageState,
}

impl Default for ImagePane {
    fn default() -> Self {
        Self {
            key: None,
            state: ImageState::Placeholder(String::new()),
        }
    }
}

/// Panes wider than this put the image and context beside the rounds; narrower ones stack them.
const WIDE: u16 = 110;
/// Below this rounds-pane width, answers are stacked instead of side by side.
const SIDE_BY_SIDE: u16 = 60;

pub fn draw(frame: &mut Frame, app: &App, image: &mut ImagePane) {
    let [bar, main, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(1),
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
    draw_image(frame, image, image_area);
    if show_training {
        draw_training(frame, app, training_area);
    }
    match &app.current {
        Some(view) => {
            draw_context(frame, view, context_area);
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
    draw_hints(frame, app, hints);
    match &app.mode {
        Mode::Help => draw_help(frame, app),
        Mode::Preview(preview) => draw_preview(frame, preview),
        Mode::Export(form) => draw_export_form(frame, form),
        Mode::Agreement(lines) => {
            draw_popup(frame, " Reviewers and agreement (any key closes) ", lines)
        }
        _ => {}
    }
}

/// A centred popup with plain lines.
fn draw_popup(frame: &mut Frame, title: &str, lines: &[String]) {
    let area = frame.area();
    let width = area.width.min(90);
    let height = area.height.min(lines.len() as u16 + 2);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(title.to_string())),
        popup,
    );
}

fn draw_export_form(frame: &mut Frame, form: &ExportForm) {
    let mut lines: Vec<String> = ExportForm::LABELS
        .iter()
        .zip(&form.fields)
        .enumerate()
        .map(|(i, (label, value))| {
            let cursor = if i == form.focus { "█" } else { "" };
            format!(
                "{} {label:<12} {value}{cursor}",
                if i == form.focus { "▶" } else { " " }
            )
        })
        .collect();
    lines.push(String::new());
    lines.push("selection: all, top:40%, top:N, threshold:X, reviewed, accepted".into());
    lines.push(
        "format: llava, dpo, demos, pairs, scores · relative files go to the export folder".into(),
    );
    lines.push(match &form.error {
        Some(e) => format!("⚠ {e}"),
        None => "Tab: next field · Enter: export in the background · Esc: cancel".into(),
    });
    draw_popup(frame, " Export ", &lines);
}

/// The agreement panel's text, from the store's report.
pub fn agreement_lines(report: &crate::store::AgreementReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<16}{:>8}{:>8}{:>8}{:>6}{:>8}",
        "reviewer", "accept", "reject", "prefer", "tie", "total"
    )];
    for d in &report.decisions {
        lines.push(format!(
            "{:<16}{:>8}{:>8}{:>8}{:>6}{:>8}",
            d.reviewer, d.accept, d.reject, d.prefer, d.tie, d.total
        ));
    }
    let a = &report.agreement;
    lines.push(String::new());
    if a.items == 0 {
        lines.push("No answer has been decided by two reviewers yet.".into());
    } else {
        let fmt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        lines.push(format!(
            "{} answers decided by 2+ reviewers · agreement {}% · Cohen's κ {} · Krippendorff's α {}",
            a.items,
            fmt(a.percent_agreement, 1),
            fmt(a.cohen_kappa, 3),
            fmt(a.krippendorff_alpha, 3)
        ));
        lines.push(format!(
            "{} conflicts, {} resolved by a final decision (filter F → disagreements; A/X decide)",
            a.conflicts, a.resolved_conflicts
        ));
    }
    for c in report.conflicts.iter().take(8) {
        lines.push(format!(
            "  {} Q{} answer {}: ✓ {} · ✗ {}",
            c.sample_id,
            c.round,
            c.answer,
            c.accepted_by.join(", "),
            c.rejected_by.join(", ")
        ));
    }
    lines
}

fn draw_training(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.training;
    let block = Block::bordered().title(" Selector (T train · Esc cancel) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut first = if t.running {
        let loss = t
            .loss
            .map(|l| format!(" · loss {l:.4}"))
            .unwrap_or_default();
        format!("{} · epoch {}/{}{loss}", t.backend, t.epoch, t.epochs)
    } else {
        t.status.clone()
    };
    if t.queued {
        first.push_str(" · 1 queued");
    }
    let second = match &t.validation {
        Some(m) => format!(
            "held-out alignment {:.3} · AUC {:.3} ({} pairs)",
            m.alignment_rate, m.auc, m.pairs
        ),
        None => "held-out: no clinician pairs yet".into(),
    };
    let third = format!(
        "pairs: {} clinician + {} judge",
        t.human_pairs, t.judge_pairs
    );
    let [text, spark] = Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(first),
            Line::from(second),
            Line::from(third),
        ]),
        text,
    );
    let history: Vec<u64> = t.history.iter().map(|a| (a * 1000.0) as u64).collect();
    frame.render_widget(
        Sparkline::default()
            .data(&history)
            .max(1000)
            .style(Style::default().fg(Color::Green)),
        spark,
    );
}

fn draw_preview(frame: &mut Frame, p: &SelectionPreview) {
    let area = frame.area();
    let width = area.width.min(64);
    let height = area.height.min(p.by_domain.len() as u16 + 8);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut lines = if p.scored == 0 {
        vec![Line::from(
            "No selector scores yet: press T to train, then p again.",
        )]
    } else {
        vec![
            Line::from(format!(
                "top {}% of {} scored samples",
                p.top_percent, p.scored
            )),
            Line::from(format!(
                "keep {} samples ({} rounds)",
                p.kept_samples, p.kept_rounds
            )),
            Line::from(format!(
                "drop {} samples ({} rounds)",
                p.dropped_samples, p.dropped_rounds
            )),
            Line::from(format!("{:<20}{:>10}{:>10}", "domain", "kept", "dropped")),
        ]
    };
    if p.scored > 0 {
        for (domain, kept, dropped) in &p.by_domain {
            lines.push(Line::from(format!("{domain:<20}{kept:>10}{dropped:>10}")));
        }
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" Selection preview (any key closes) ")),
        popup,
    );
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

fn draw_image(frame: &mut Frame, image: &mut ImagePane, area: Rect) {
    let block = Block::bordered().title(" Image ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match &mut image.state {
        ImageState::Ready(protocol) => {
            frame.render_stateful_widget(
                StatefulImage::default().resize(Resize::Fit(None)),
                inner,
                protocol.as_mut(),
            );
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

fn draw_context(frame: &mut Frame, view: &SampleView, area: Rect) {
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

fn verdict_mark(kind: Option<DecisionKind>) -> (&'static str, Style) {
    match kind {
        Some(DecisionKind::Accept) => (
            "✓",
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
        ),
        Some(DecisionKind::Reject) => (
            "✗",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        _ => ("·", Style::default().fg(Color::DarkGray)),
    }
}

/// Lines of one answer column: a title with its state and scores, then the wrapped text.
fn answer_block(
    app: &App,
    view: &SampleView,
    r: usize,
    d: usize,
    width: usize,
) -> Vec<Line<'static>> {
    let answer_id = view
        .answer_at(r, d)
        .expect("display positions come from the view");
    let (mark, mark_style) = verdict_mark(view.verdict(answer_id));
    let focused = app.focus_round == r && app.focus_answer == d;
    let mut title = vec![
        Span::styled(
            format!("{}Answer {}", if focused { "▶ " } else { "" }, d + 1),
            if focused {
                Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
            } else {
                Style::default().add_modifier(Modifier::BOLD)
            },
        ),
        Span::raw(" "),
        Span::styled(mark, mark_style),
    ];
    if let Some((DecisionKind::Prefer, Some(winner))) = view.preference(r) {
        if winner == answer_id {
            title.push(Span::styled(
                " preferred",
                Style::default().fg(Color::Green),
            ));
        }
    }
    if let Some(score) = view.judge_scores.get(&answer_id) {
        title.push(Span::styled(
            format!("  judge {score:.1}"),
            Style::default().fg(Color::Cyan),
        ));
    }
    if let Some(score) = view.selector_scores.get(&answer_id) {
        title.push(Span::styled(
            format!("  sel {score:.2}"),
            Style::default().fg(Color::Magenta),
        ));
    }
    // Other reviewers' verdicts only when adjudicating: elsewhere each reviewer judges blind.
    if app.queue.filter() == &Filter::Disagreements {
        for (name, accepted) in view.others.get(&answer_id).into_iter().flatten() {
            let kind = if *accepted {
                DecisionKind::Accept
            } else {
                DecisionKind::Reject
            };
            let (mark, style) = verdict_mark(Some(kind));
            title.push(Span::raw(format!("  {name} ")));
            title.push(Span::styled(mark, style));
        }
    }
    let text = view
        .answer_text_at(r, d)
        .map(display_text)
        .unwrap_or_default();
    std::iter::once(Line::from(title))
        .chain(wrap(&text, width).into_iter().map(Line::from))
        .collect()
}

/// All rounds as lines, plus the line range of the focused round (to keep it in view).
fn round_lines(app: &App, view: &SampleView, width: u16) -> (Vec<Line<'static>>, (usize, usize)) {
    let width = width as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut focus = (0, 0);
    for r in 0..view.rounds() {
        let start = lines.len();
        let focused = r == app.focus_round;
        let mut tail = Vec::new();
        match view.preference(r) {
            Some((DecisionKind::Tie, _)) => tail.push("tie".to_string()),
            Some((DecisionKind::Prefer, Some(winner))) => {
                let d = view
                    .shown_order(r)
                    .iter()
                    .position(|&a| a == winner)
                    .map_or(0, |d| d + 1);
                tail.push(format!("prefers {d}"));
            }
            _ => {}
        }
        if let Some(rating) = view.rating(r) {
            tail.push(format!("rated {rating}/5"));
        }
        if view.stored.answer_ids[r].is_empty() {
            tail.push("unanswered".into());
        } else if view.round_decided(r) {
            tail.push("decided".into());
        }
        let question = display_text(&view.stored.sample.rounds[r].question);
        let prefix = format!("{}Q{} ", if focused { "▶ " } else { "  " }, r + 1);
        let q_style = if focused {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        for (i, line) in wrap(&question, width.saturating_sub(prefix.len()).max(10))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 {
                prefix.clone()
            } else {
                " ".repeat(prefix.len())
            };
            lines.push(Line::from(Span::styled(format!("{lead}{line}"), q_style)));
        }
        if !tail.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("   [{}]", tail.join(" · ")),
                Style::default().fg(Color::Green),
            )));
        }
        let n = view.order[r].len();
        if n > 0 && width as u16 >= SIDE_BY_SIDE && n <= 3 {
            let gap = 3;
            let col = (width - gap * (n - 1)) / n;
            let blocks: Vec<Vec<Line>> =
                (0..n).map(|d| answer_block(app, view, r, d, col)).collect();
            let height = blocks.iter().map(Vec::len).max().unwrap_or(0);
            for row in 0..height {
                let mut spans: Vec<Span> = Vec::new();
                for (d, block) in blocks.iter().enumerate() {
                    if d > 0 {
                        spans.push(Span::styled(" │ ", Style::default().fg(Color::DarkGray)));
                    }
                    match block.get(row) {
                        Some(line) => {
                            let used: usize = line
                                .spans
                                .iter()
                                .map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref()))
                                .sum();
                            spans.extend(line.spans.iter().cloned());
                            if d + 1 < n {
                                spans.push(Span::raw(pad("", col.saturating_sub(used))));
                            }
                        }
                        None if d + 1 < n => spans.push(Span::raw(pad("", col))),
                        None => {}
                    }
                }
                lines.push(Line::from(spans));
            }
        } else {
            for d in 0..n {
                lines.extend(
                    answer_block(app, view, r, d, width.saturating_sub(2))
                        .into_iter()
                        .map(|mut l| {
                            l.spans.insert(0, Span::raw("  "));
                            l
                        }),
                );
            }
        }
        lines.push(Line::from(""));
        if focused {
            focus = (start, lines.len());
        }
    }
    (lines, focus)
}

fn draw_rounds(frame: &mut Frame, app: &App, view: &SampleView, area: Rect) {
    let block = Block::bordered().title(format!(" Rounds ({}) ", view.rounds()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (lines, (focus_start, focus_end)) = round_lines(app, view, inner.width);
    let height = inner.height as usize;
    // Keep the focused round in view (its top, when it is taller than the pane); PageUp and
    // PageDown scroll further from there.
    let base = if focus_end <= height {
        0
    } else if focus_end - focus_start > height {
        focus_start
    } else {
        focus_end - height
    };
    let offset = (base + app.scroll as usize).min(lines.len().saturating_sub(height).max(base));
    frame.render_widget(Paragraph::new(lines).scroll((offset as u16, 0)), inner);
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let text = match &app.mode {
        Mode::Input { kind, text } => {
            let what = match kind {
                InputKind::Goto => "go to id",
                InputKind::Search => "search",
                InputKind::Note(_) => "note",
            };
            format!(" {what}: {text}█   (Enter: done, Esc: cancel)")
        }
        _ => {
            let saved = app
                .last_save
                .as_deref()
                .map_or("nothing yet".to_string(), |t| format!("saved {t}"));
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
            format!(" reviewer {} · {saved}{export}{message}", app.reviewer)
        }
    };
    // A failed save is shown until a save succeeds, in red: the reviewer must not miss it.
    let (text, style) = match &app.save_error {
        Some(why) => (
            format!(" NOT SAVED: {why} (decide again once the workspace is writable)"),
            Style::default().fg(Color::White).bg(Color::Red),
        ),
        None => (text, Style::default()),
    };
    frame.render_widget(
        Paragraph::new(text).style(style.add_modifier(Modifier::BOLD)),
        area,
    );
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
    (Action::Undo, "undo"),
    (Action::Help, "help"),
    (Action::Quit, "quit"),
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

fn draw_hints(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (action, label) in HINTS {
        let Some(key) = app.keymap.first_key_label(*action) else {
            continue;
        };
        let len = key.chars().count() + label.len() + 3;
        if used + len > area.width as usize {
            break;
        }
        used += len;
        spans.push(Span::styled(
            format!(" {key}"),
            Style::default().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {label} ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let width = area.width.min(100);
    let height = area.height.min(Action::ALL.len() as u16 + 4);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = Action::ALL
        .iter()
        .map(|&a| {
            Line::from(vec![
                Span::styled(
                    format!("{:>18}  ", app.keymap.keys_label(a)),
                    Style::default().fg(Color::Yellow),
                ),
                Span::raw(a.description()),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Keys (any key closes; rebind them in config.toml [keys]) ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
