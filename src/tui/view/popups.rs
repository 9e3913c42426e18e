//! Popups and side panels: help, selection preview, export form, agreement, guidelines, training
//! panel.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Sparkline};
use ratatui::Frame;

use crate::tui::app::{App, EditState, ExportForm, NoteState, ReasonTarget, SelectionPreview};
use crate::tui::keymap::{Action, Scope};
use crate::tui::wrap::pad;

/// A centred popup with plain lines.
pub(super) fn draw_popup(frame: &mut Frame, title: &str, lines: &[String]) {
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

pub(super) fn draw_export_form(frame: &mut Frame, form: &ExportForm) {
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

/// `vital team status` and the review screen's `S` panel: a row per reviewer, then overall
/// progress and the ETA.
pub fn team_status_lines(status: &crate::store::TeamStatus, planned: bool) -> Vec<String> {
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut lines = vec![format!(
        "{:<20} {:>8} {:>7} {:>9} {:>8} {:>9} {:>6} {:>13}  {}",
        "reviewer",
        "finished",
        "leased",
        "decisions",
        "per hour",
        "median s",
        "κ",
        "gold accuracy",
        "last active"
    )];
    for r in &status.reviewers {
        lines.push(format!(
            "{:<20} {:>8} {:>7} {:>9} {:>8} {:>9} {:>6} {:>13}  {}",
            r.reviewer,
            r.samples_done,
            r.leased_now,
            r.decisions,
            opt(r.decisions_per_hour, 0),
            opt(r.median_seconds_per_decision, 1),
            opt(r.kappa_with_others, 2),
            gold_cell(r),
            r.last_active.as_deref().unwrap_or("–"),
        ));
    }
    if status.reviewers.is_empty() {
        lines.push("(no reviewer has decided or leased anything yet)".into());
    }
    if !status.everyone {
        lines.push("(your own row: reviewers see only their own decisions)".into());
    }
    let eta = match status.eta_hours {
        Some(h) if h < 48.0 => format!(", about {h:.1} h at the current pace"),
        Some(h) => format!(", about {:.1} days at the current pace", h / 24.0),
        None => "; no pace yet for an ETA".into(),
    };
    lines.push(format!(
        "complete: {} of {} samples{}; {} reviewer places left{eta}",
        status.complete,
        status.planned,
        if planned {
            ""
        } else {
            " (no plan: one reviewer each)"
        },
        status.places_left
    ));
    lines
}

/// A reviewer's accuracy on gold answers: "90% of 10" (matching the known verdict, of the gold
/// answers they decided), "–" with none decided.
fn gold_cell(r: &crate::store::ReviewerStatus) -> String {
    match r.gold_accuracy {
        Some(share) => format!("{:.0}% of {}", share * 100.0, r.gold_decided),
        None => "–".into(),
    }
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

pub(super) fn draw_training(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.training;
    let block = Block::bordered().title(" Selector (T train · Esc cancel) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut first = if t.running {
        let loss = t
            .loss
            .map(|l| format!(" · loss {l:.4}"))
            .unwrap_or_default();
        if t.epoch == 0 && t.loss.is_none() && t.backend != "cpu" {
            // The first batch on a GPU backend compiles its kernels, which can take a while.
            format!(
                "{} · preparing (the first run compiles GPU kernels)",
                t.backend
            )
        } else {
            format!("{} · epoch {}/{}{loss}", t.backend, t.epoch, t.epochs)
        }
    } else {
        t.status.clone()
    };
    if t.queued {
        first.push_str(" · 1 queued");
    }
    // During a run its own validation, said to be that; after it, the held-out clinician pairs
    // and the pairs that run trained on: the numbers on the panel are always of one run.
    let second = match (&t.epoch_validation, &t.validation) {
        (Some(m), _) if t.running => format!(
            "this run, validation so far: alignment {:.3} · AUC {:.3} ({} pairs)",
            m.alignment_rate, m.auc, m.pairs
        ),
        (_, Some(m)) => format!(
            "held-out alignment {:.3} · AUC {:.3} ({} clinician pairs)",
            m.alignment_rate, m.auc, m.pairs
        ),
        (_, None) if t.human_pairs > 0 => format!(
            "held-out: none yet (all {} clinician pairs trained; more decisions make a held-out set)",
            t.human_pairs
        ),
        (_, None) => "held-out: no clinician pairs yet".into(),
    };
    let third = match t.last_run {
        Some(run) => format!(
            "run {run} trained on {} clinician + {} judge pairs{}",
            t.human_pairs,
            t.judge_pairs,
            if t.running {
                " (this run counts its own)"
            } else {
                ""
            }
        ),
        None if t.running => "pairs: counted when this run ends".into(),
        None => "pairs: none trained yet".into(),
    };
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

pub(super) fn draw_preview(frame: &mut Frame, p: &SelectionPreview) {
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

/// The group a key is listed under in the help.
fn help_group(action: Action) -> &'static str {
    use Action::*;
    match action {
        Accept | Reject | Prefer1 | Prefer2 | Tie | Rate => "Decide",
        Edit | EditExternal | Reason | ShowOriginal => "Correct",
        Flag | Note | Undo | Redo | Demo => "The sample and your decisions",
        NextRound | PrevRound | NextAnswer | PrevAnswer | NextSample | PrevSample | ScrollDown
        | ScrollUp => "Move",
        Goto | Search | Filter | Order => "Find",
        Train | Preview | Export | Agreement | FinalAccept | FinalReject => {
            "Selector, export and team"
        }
        Help | Quit | Zoom => "Screen",
        _ => "On the full-screen figure (its keys first; the sheet's decision keys work there too)",
    }
}

/// Every key, grouped; scrolled by `app.help_scroll` (j/k, arrows, PgUp/PgDn, Space).
pub(super) fn draw_help(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let width = area.width.min(100);
    let height = area.height.min(Action::ALL.len() as u16 + 20);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let line = |a: Action| {
        Line::from(vec![
            Span::styled(
                format!("{:>18}  ", app.keymap.keys_label(a)),
                Style::default().fg(Color::Yellow),
            ),
            Span::raw(a.description()),
        ])
    };
    let in_scope = |scope| {
        Action::ALL
            .iter()
            .copied()
            .filter(move |a| a.scope() == scope)
    };
    let mut actions: Vec<Action> = in_scope(Scope::Sheet).collect();
    // Grouped in the order groups first appear, each group's keys in keymap order.
    let mut groups: Vec<&str> = Vec::new();
    for a in &actions {
        if !groups.contains(&help_group(*a)) {
            groups.push(help_group(*a));
        }
    }
    actions.sort_by_key(|a| groups.iter().position(|g| *g == help_group(*a)));
    actions.extend(in_scope(Scope::Figure));
    let mut lines: Vec<Line> = Vec::new();
    let mut group = "";
    for a in actions {
        if help_group(a) != group {
            group = help_group(a);
            lines.push(Line::from(Span::styled(
                format!("  {group}"),
                Style::default().fg(Color::Cyan),
            )));
        }
        lines.push(line(a));
    }
    let total = lines.len() as u16;
    let visible = height.saturating_sub(2);
    let scroll = app.help_scroll.min(total.saturating_sub(visible));
    let more = if scroll + visible < total {
        format!(
            " {}-{} of {total} · j/↓ more ",
            scroll + 1,
            scroll + visible
        )
    } else {
        format!(" end · {total} lines ")
    };
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Keys (j/k scroll, any other key closes; rebind in config.toml [keys]) ")
        .title_bottom(Line::from(more).right_aligned());
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll, 0)).block(block),
        popup,
    );
}

/// The in-place editor: most of the screen, the wrapped text with the cursor's cell reversed,
/// scrolled so the cursor's row is in view.
pub(super) fn draw_editor(frame: &mut Frame, state: &EditState) {
    let t = &state.target;
    let title = format!(
        " Edit Q{} answer {} ({} characters) ",
        t.round + 1,
        t.display + 1,
        state.editor.len()
    );
    draw_text_box(frame, &state.editor, &title);
}

/// The note editor: the same box as an answer's, for the sample's note.
pub(super) fn draw_note(frame: &mut Frame, state: &NoteState) {
    let title = format!(
        " Note on {} ({} characters) ",
        state.sample_id,
        state.editor.len()
    );
    draw_text_box(frame, &state.editor, &title);
}

fn draw_text_box(frame: &mut Frame, editor: &crate::tui::editor::TextEditor, title: &str) {
    let area = frame.area();
    let width = crate::tui::editor::popup_width(area.width);
    let height = area.height.saturating_sub(4).max(6);
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + (area.height.saturating_sub(height)) / 2,
        width: width.min(area.width),
        height: height.min(area.height),
    };
    let text_width = popup.width.saturating_sub(2) as usize;
    let text_height = popup.height.saturating_sub(3) as usize;
    let rows = editor.rows_at(crate::tui::editor::text_width(area.width));
    let (cursor_row, cursor_col) = editor.cursor_position_in(&rows);
    let first = cursor_row.saturating_sub(text_height.saturating_sub(1));
    let chars = editor.chars();
    let mut lines: Vec<Line> = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(first).take(text_height) {
        let text: String = chars[row.start..row.end]
            .iter()
            .map(|&c| if c == '\t' { ' ' } else { c })
            .collect();
        if i != cursor_row {
            lines.push(Line::from(text));
            continue;
        }
        // Split the row at the cursor's column; the cell under it is drawn reversed.
        let (mut before, mut used) = (String::new(), 0);
        let mut rest = text.chars().peekable();
        while let Some(&c) = rest.peek() {
            let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + w > cursor_col {
                break;
            }
            before.push(c);
            used += w;
            rest.next();
        }
        let under = rest.next().map_or(" ".to_string(), |c| c.to_string());
        let after: String = rest.collect();
        lines.push(Line::from(vec![
            Span::raw(before),
            Span::styled(
                under,
                Style::default().add_modifier(ratatui::style::Modifier::REVERSED),
            ),
            Span::raw(after),
        ]));
    }
    let help =
        " Ctrl-S save · Esc cancel · Ctrl-Z undo · Ctrl-Y redo · arrows, Home/End, PgUp/PgDn ";
    let mut body = lines;
    while body.len() < text_height {
        body.push(Line::from(""));
    }
    body.push(Line::from(Span::styled(
        pad(help, text_width),
        Style::default().fg(Color::DarkGray),
    )));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(body).block(Block::bordered().title(title.to_string())),
        popup,
    );
}

/// The reasons to pick from for a ✗.
pub(super) fn draw_reasons(frame: &mut Frame, app: &App, target: &ReasonTarget) {
    let what = match &app.current {
        Some(view) if view.key() == target.sample_key => view
            .stored
            .round_ids
            .iter()
            .position(|&r| r == target.round_id)
            .and_then(|r| {
                let d = view
                    .shown_order(r)
                    .iter()
                    .position(|&a| a == target.answer_id)?;
                Some(format!("Q{} answer {}", r + 1, d + 1))
            })
            .unwrap_or_else(|| "the answer".into()),
        _ => "the answer just rejected (previous sample)".into(),
    };
    let mut lines = vec![format!("Why is {what} ✗?"), String::new()];
    for (i, reason) in app.reason_choices().iter().enumerate() {
        let tail = if i + 1 == app.reason_choices().len() {
            " (type it)"
        } else {
            ""
        };
        lines.push(format!("  {}  {reason}{tail}", i + 1));
    }
    lines.push(String::new());
    lines.push("a number picks · Esc: no reason".into());
    draw_popup(frame, " Reason ", &lines);
}

/// The guidelines in force, wrapped to the pop-up and scrolled (`guidelines_scroll`).
pub(super) fn draw_guidelines(frame: &mut Frame, app: &App) {
    let Some(g) = &app.guidelines else { return };
    let area = frame.area();
    let width = area.width.min(90);
    let inner = usize::from(width.saturating_sub(2)).max(10);
    // A curator's file, printed on every reviewer's terminal: no escape sequences get through.
    let text = crate::data::plain_text(&g.text);
    let mut lines = crate::tui::wrap::wrap(text.trim_end(), inner);
    if text.trim().is_empty() {
        lines.clear();
    }
    if lines.is_empty() {
        lines.push("(empty: the curator withdrew the guidelines)".into());
    }
    let height = area
        .height
        .min(lines.len() as u16 + 3)
        .max(area.height.min(5));
    let visible = usize::from(height.saturating_sub(3));
    let last_start = lines.len().saturating_sub(visible);
    let start = usize::from(app.guidelines_scroll).min(last_start);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut text: Vec<Line> = lines[start..]
        .iter()
        .take(visible)
        .map(|l| Line::from(l.clone()))
        .collect();
    let more = if start + visible < lines.len() {
        format!(
            "▼ {} more lines · j/k/PgDn scroll · ",
            lines.len() - start - visible
        )
    } else {
        String::new()
    };
    text.push(Line::from(Span::styled(
        format!("{more}any other key closes · G shows them again"),
        Style::default().fg(Color::DarkGray),
    )));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text).block(Block::bordered().title(format!(
            " Guidelines · version {} · {} ",
            g.version,
            g.stored_at.get(..10).unwrap_or(&g.stored_at)
        ))),
        popup,
    );
}
