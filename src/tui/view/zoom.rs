//! The full-screen figure (`z`): the figure over the whole screen as its view shows it, a title
//! with what the view changed, the focused question and answer (decision keys work here), and
//! on `c` the caption and mention. The caption takes the lower rows and the figure refits above
//! it, rather than text drawn over graphics, which sixel terminals do not all redraw.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::rounds::verdict_mark;
use super::{draw_hints, draw_image, draw_status, selector_label, ImagePane};
use crate::data::display_text;
use crate::tui::app::App;
use crate::tui::keymap::Action;
use crate::tui::sample_view::SampleView;

/// The full-screen view's hints, most used first.
const HINTS: &[(Action, &str)] = &[
    (Action::ZoomClose, "sheet"),
    (Action::ZoomIn, "zoom in"),
    (Action::ZoomOut, "out"),
    (Action::ZoomFit, "fit"),
    (Action::PanLeft, "pan"),
    (Action::Accept, "accept"),
    (Action::Reject, "reject"),
    (Action::ContrastUp, "contrast"),
    (Action::BrightnessUp, "brighter"),
    (Action::Invert, "invert"),
    (Action::CaptionOverlay, "caption"),
    (Action::Help, "help"),
];

pub(super) fn draw_zoomed(frame: &mut Frame, app: &App, image: &mut ImagePane) {
    let caption = match (&app.current, app.caption_overlay) {
        (Some(view), true) => caption_lines(view),
        _ => Vec::new(),
    };
    let area = frame.area();
    // The caption takes at most a third of the screen; the figure keeps the rest.
    let caption_height = if caption.is_empty() {
        0
    } else {
        (caption.len() as u16 + 2).min(area.height / 3)
    };
    // The focused question and answer in full (wrapped), up to half the screen: a clinician
    // decides from here without going back to the sheet.
    let focus_text = app
        .current
        .as_ref()
        .map(|view| focus_lines(app, view))
        .unwrap_or_default();
    let focus_rows: usize = focus_text
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            crate::tui::wrap::wrap(&text, usize::from(area.width.max(1)))
                .len()
                .max(1)
        })
        .sum();
    let focus_height = u16::try_from(focus_rows)
        .unwrap_or(u16::MAX)
        .clamp(2, (area.height / 2).max(2));
    let [bar, figure, caption_area, focus, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(caption_height),
        Constraint::Length(focus_height),
        Constraint::Length(super::status_rows(app, area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(frame, app, bar);
    draw_image(frame, image, figure);
    if caption_height > 0 {
        frame.render_widget(
            Paragraph::new(caption)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Caption (c hides) ")),
            caption_area,
        );
    }
    if !focus_text.is_empty() {
        frame.render_widget(Paragraph::new(focus_text).wrap(Wrap { trim: false }), focus);
    }
    draw_status(frame, app, status);
    draw_hints(frame, app, hints, HINTS);
}

fn draw_title(frame: &mut Frame, app: &App, area: Rect) {
    let (pos, shown) = app.queue.position();
    let mut text = match &app.current {
        Some(view) => format!(
            " {} · {}",
            view.stored.sample.id,
            app.figure_view(view.key()).describe()
        ),
        None => " no sample".to_string(),
    };
    if app.zoom_pending() {
        text.push_str(" · rendering…");
    }
    text.push_str(&format!(
        "  │ {pos}/{shown}  reviewed {}/{}",
        app.queue.reviewed(),
        app.queue.total()
    ));
    let style = Style::default().bg(Color::Blue).fg(Color::White);
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn caption_lines(view: &SampleView) -> Vec<Line<'static>> {
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
    lines
}

/// The focused question, and the focused answer with its state and scores: what the decision
/// keys act on.
fn focus_lines(app: &App, view: &SampleView) -> Vec<Line<'static>> {
    let r = app.focus_round;
    let Some(round) = view.stored.sample.rounds.get(r) else {
        return Vec::new();
    };
    let question = Line::from(Span::styled(
        format!(
            "Q{}/{} {}",
            r + 1,
            view.rounds(),
            display_text(&round.question)
        ),
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
    ));
    let Some(answer_id) = view.answer_at(r, app.focus_answer) else {
        return vec![
            question,
            Line::from("  this question has no answer to judge"),
        ];
    };
    let (mark, mark_style) = verdict_mark(view.verdict(answer_id));
    let mut spans = vec![
        Span::styled(
            format!("▶ Answer {}/{}", app.focus_answer + 1, view.order[r].len()),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(mark, mark_style),
    ];
    if let Some(score) = view.judge_scores.get(&answer_id) {
        spans.push(Span::styled(
            format!(" judge {score:.1}"),
            Style::default().fg(Color::Cyan),
        ));
    }
    if let Some(score) = view.selector_scores.get(&answer_id) {
        spans.push(Span::styled(
            format!(" {}", selector_label(app, *score)),
            Style::default().fg(Color::Magenta),
        ));
    }
    if let Some(reason) = view.reason(answer_id) {
        spans.push(Span::styled(
            format!(" why: {reason}"),
            Style::default().fg(Color::Red),
        ));
    }
    let original = view
        .answer_text_at(r, app.focus_answer)
        .map(display_text)
        .unwrap_or_default();
    // As on the sheet: the reviewer's correction is what they see, the original one key away.
    match view.edit(answer_id) {
        Some(edited) => {
            let note = Style::default().fg(Color::Yellow);
            spans.push(Span::styled(
                format!(" ✎ edited by {}:", app.reviewer),
                note,
            ));
            spans.push(Span::raw(format!(" {}", display_text(edited))));
            if app.show_original {
                spans.push(Span::styled(" original:", note));
                spans.push(Span::styled(
                    format!(" {original}"),
                    Style::default().fg(Color::DarkGray),
                ));
            }
        }
        None => spans.push(Span::raw(format!(" {original}"))),
    }
    vec![question, Line::from(spans)]
}
