//! The rounds pane: each question with its answers side by side (or stacked), their states and
//! scores, scrolled so the focused round stays in view.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::SIDE_BY_SIDE;
use crate::data::display_text;
use crate::store::DecisionKind;
use crate::tui::app::App;
use crate::tui::queue::Filter;
use crate::tui::sample_view::SampleView;
use crate::tui::wrap::{pad, wrap};

pub(super) fn verdict_mark(kind: Option<DecisionKind>) -> (&'static str, Style) {
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
            format!("  {}", super::selector_label(app, *score)),
            Style::default().fg(Color::Magenta),
        ));
    }
    if let Some(reason) = view.reason(answer_id) {
        title.push(Span::styled(
            format!("  why: {reason}"),
            Style::default().fg(Color::Red),
        ));
    }
    let original = view
        .answer_text_at(r, d)
        .map(display_text)
        .unwrap_or_default();
    let mut lines = vec![Line::from(title)];
    // Other reviewers' verdicts only when adjudicating: elsewhere each reviewer judges blind.
    if app.adjudicating || app.queue.filter() == &Filter::Disagreements {
        lines.extend(other_reviews(view, answer_id, width));
    }
    match view.edit(answer_id) {
        None => lines.extend(wrap(&original, width).into_iter().map(Line::from)),
        Some(edited) => {
            // The reviewer's text is what they see; the original is one key (D) away.
            let note = Style::default().fg(Color::Yellow);
            lines.push(Line::from(Span::styled(
                format!("✎ edited by {} (✓)", app.reviewer),
                note,
            )));
            lines.extend(
                wrap(&display_text(edited), width)
                    .into_iter()
                    .map(Line::from),
            );
            if app.show_original {
                lines.push(Line::from(Span::styled("original:", note)));
                let dim = Style::default().fg(Color::DarkGray);
                lines.extend(
                    wrap(&original, width)
                        .into_iter()
                        .map(|l| Line::from(Span::styled(l, dim))),
                );
            } else {
                lines.push(Line::from(Span::styled(
                    "D shows the original",
                    Style::default().fg(Color::DarkGray),
                )));
            }
        }
    }
    lines
}

/// Each other reviewer's verdict on an answer with its time, then their reason for a ✗ and
/// their correction of the answer, wrapped to the column.
fn other_reviews(view: &SampleView, answer_id: i64, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let inner = width.saturating_sub(4).max(10);
    for review in view.others.get(&answer_id).into_iter().flatten() {
        let kind = if review.accepted {
            DecisionKind::Accept
        } else {
            DecisionKind::Reject
        };
        let (mark, style) = verdict_mark(Some(kind));
        let who = if review.reviewer == crate::store::FINAL_REVIEWER {
            match &review.by {
                Some(by) => format!("final ({by})"),
                None => "final".to_string(),
            }
        } else {
            review.reviewer.clone()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {who} "), Style::default().fg(Color::Blue)),
            Span::styled(mark, style),
            Span::styled(
                format!(" {}", short_time(&review.at)),
                Style::default().fg(Color::DarkGray),
            ),
        ]));
        for (text, color) in [
            (
                review.reason.as_deref().map(|r| format!("why: {r}")),
                Color::Red,
            ),
            (
                review.correction.as_deref().map(|c| format!("✎ {c}")),
                Color::Yellow,
            ),
        ] {
            let Some(text) = text else { continue };
            lines.extend(
                wrap(&display_text(&text), inner).into_iter().map(|l| {
                    Line::from(Span::styled(format!("    {l}"), Style::default().fg(color)))
                }),
            );
        }
    }
    lines
}

/// `2026-12-08T01:30:12.345Z` → `12-08 01:30` (UTC, as stored); other text as it is.
fn short_time(at: &str) -> String {
    match (at.get(5..10), at.get(11..16)) {
        (Some(day), Some(time)) if at.get(10..11) == Some("T") => format!("{day} {time}"),
        _ => at.to_string(),
    }
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

pub(super) fn draw_rounds(frame: &mut Frame, app: &App, view: &SampleView, area: Rect) {
    let mut block = Block::bordered().title(format!(" Rounds ({}) ", view.rounds()));
    // The figure is the evidence: a decision made without it is marked, and said so here.
    if let Some(why) = app.figure_not_shown() {
        block = block.title(
            Line::from(format!(" {why} "))
                .style(Style::default().fg(Color::Black).bg(Color::Yellow)),
        );
    }
    let inner = block.inner(area);
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
    // A long answer is never cut without a word: what is above and below says so.
    let below = lines.len().saturating_sub(offset + height);
    let marker = Style::default().fg(Color::Black).bg(Color::Cyan);
    if below > 0 {
        block = block.title_bottom(
            Line::from(format!(" ▼ {below} more lines · PgDn "))
                .style(marker)
                .right_aligned(),
        );
    }
    if offset > 0 {
        block = block.title_bottom(
            Line::from(format!(" ▲ {offset} above · PgUp "))
                .style(marker)
                .left_aligned(),
        );
    }
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(lines).scroll((offset as u16, 0)), inner);
}
