//! Keys, by the mode they arrive in: the review screen's keymap, the rating prompt, the export form, and the text inputs (search, go to id, notes).

use super::*;

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        // Any key after `S` means the reviewer moved on: the panel no longer opens by itself.
        self.agreement = AgreementRequest::NotAsked;
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => {
                // The help scrolls (at 80×24 it is longer than the screen); other keys close it.
                let step = match key.code {
                    KeyCode::Char('j') | KeyCode::Down => Some(1i32),
                    KeyCode::Char('k') | KeyCode::Up => Some(-1),
                    KeyCode::PageDown | KeyCode::Char(' ') => Some(10),
                    KeyCode::PageUp => Some(-10),
                    KeyCode::End | KeyCode::Char('G') => Some(1000),
                    KeyCode::Home => Some(-1000),
                    _ => None,
                };
                match step {
                    Some(step) => {
                        let next = (i32::from(self.help_scroll) + step).clamp(0, 1000);
                        self.help_scroll = u16::try_from(next).unwrap_or(0);
                        self.mode = Mode::Help;
                    }
                    None => self.help_scroll = 0,
                }
                vec![]
            }
            Mode::Guidelines => {
                let step = match key.code {
                    KeyCode::Char('j') | KeyCode::Down => Some(1i32),
                    KeyCode::Char('k') | KeyCode::Up => Some(-1),
                    KeyCode::PageDown | KeyCode::Char(' ') => Some(10),
                    KeyCode::PageUp => Some(-10),
                    _ => None,
                };
                match step {
                    Some(step) => {
                        let next = (i32::from(self.guidelines_scroll) + step).clamp(0, 10_000);
                        self.guidelines_scroll = u16::try_from(next).unwrap_or(0);
                        self.mode = Mode::Guidelines;
                    }
                    None => self.guidelines_scroll = 0,
                }
                vec![]
            }
            Mode::Preview(_) | Mode::Agreement(_) => vec![],
            Mode::Export(form) => self.on_export_key(form, key),
            Mode::Rating => self.on_rating_key(key),
            Mode::Input { kind, text } => self.on_input_key(kind, text, key),
            Mode::Edit(state) => self.on_editor_key(state, key),
            Mode::Note(state) => self.on_note_key(state, key),
            Mode::Reason(target) => self.on_reason_key(target, key),
            Mode::Normal => {
                self.message = None;
                // Only the very next key may give the rejected answer its reason.
                let just_rejected = self.last_rejected.take();
                let scope = if self.zoomed {
                    Scope::Figure
                } else {
                    Scope::Sheet
                };
                let figure = self.figure_shown();
                match self.keymap.action_in(scope, &key) {
                    Some(action) if self.require_figure && action.judges_content() && !figure => {
                        self.message = Some(format!(
                            "{}: review.require_figure keeps decisions for when the figure is shown (f flags the sample, n notes why)",
                            self.figure_not_shown().unwrap_or_default()
                        ));
                        vec![]
                    }
                    // One key, one meaning: `r` always rates; `R` gives a reason, right after `x`
                    // to the answer just rejected (auto-advance has moved the focus on).
                    Some(Action::Reason) => self.pick_reason(just_rejected),
                    Some(action) => self.on_action(action),
                    None if key.code == KeyCode::Esc && self.queue.search_text().is_some() => {
                        self.queue.set_search(None);
                        self.message = Some("search cleared".into());
                        self.load_current()
                    }
                    None if key.code == KeyCode::Esc && self.training.running => {
                        self.training.status = "cancelling…".into();
                        vec![Effect::CancelTraining]
                    }
                    None => vec![],
                }
            }
        }
    }

    pub(super) fn on_rating_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Char(c @ '1'..='5') => {
                self.message = Some(format!("round rated {c} of 5"));
                self.round_decision(DecisionKind::Rate, Some(c.to_string()))
            }
            _ => {
                self.message = Some("rating cancelled".into());
                vec![]
            }
        }
    }

    pub(super) fn on_export_key(&mut self, mut form: ExportForm, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => return vec![],
            KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + 2) % 3,
            KeyCode::Backspace => {
                form.fields[form.focus].pop();
            }
            KeyCode::Char(c) => form.fields[form.focus].push(c),
            KeyCode::Enter => {
                let job = form.request().and_then(|job| match self.export_status {
                    Some(_) => Err("an export is already running".to_string()),
                    None => Ok(job),
                });
                match job {
                    Ok(job) => {
                        self.export_defaults = form.fields.clone();
                        self.export_status = Some("exporting…".into());
                        return vec![Effect::Export(job)];
                    }
                    Err(problem) => {
                        form.error = Some(problem);
                        self.mode = Mode::Export(form);
                        return vec![];
                    }
                }
            }
            _ => {}
        }
        form.error = None;
        self.mode = Mode::Export(form);
        vec![]
    }

    pub(super) fn on_input_key(
        &mut self,
        kind: InputKind,
        mut text: String,
        key: KeyEvent,
    ) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => vec![],
            KeyCode::Enter => match kind {
                InputKind::Goto if !text.trim().is_empty() => self.go_to(text.trim()),
                InputKind::Search if text.trim().is_empty() => {
                    self.queue.set_search(None);
                    self.load_current()
                }
                InputKind::Search => {
                    let query = text.trim().to_string();
                    self.message = Some(format!("searching \"{query}\"…"));
                    vec![Effect::Search(query)]
                }
                InputKind::ReasonOther(target) if !text.trim().is_empty() => {
                    self.record_reason(target, format!("{OTHER_REASON}: {}", text.trim()))
                }
                InputKind::ReasonOther(_) => {
                    self.message = Some("no reason recorded".into());
                    vec![]
                }
                InputKind::Goto => vec![],
            },
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Input { kind, text };
                vec![]
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.mode = Mode::Input { kind, text };
                vec![]
            }
            _ => {
                self.mode = Mode::Input { kind, text };
                vec![]
            }
        }
    }

    pub(super) fn input(&mut self, kind: InputKind, text: String) -> Vec<Effect> {
        self.mode = Mode::Input { kind, text };
        vec![]
    }
}

impl App {
    /// `g`: the sample whose id is `typed`, or the one id that holds it (a part of a long id
    /// such as `18063892_F3` is enough); several say how many and which.
    fn go_to(&mut self, typed: &str) -> Vec<Effect> {
        let found = self.queue.ids_matching(typed);
        match found.as_slice() {
            [] => vec![Effect::Find(typed.to_string())],
            [(key, _)] => {
                let key = *key;
                if self.queue.jump_to(key) {
                    self.load_current()
                } else {
                    // Hidden by the filter or search: the store finds it and says so.
                    vec![Effect::Find(typed.to_string())]
                }
            }
            many => {
                let shown: Vec<&str> = many.iter().take(3).map(|(_, id)| *id).collect();
                self.message = Some(format!(
                    "{} samples have `{typed}` in their id ({}{}): type more of it",
                    many.len(),
                    shown.join(", "),
                    if many.len() > 3 { ", …" } else { "" }
                ));
                vec![]
            }
        }
    }
}
