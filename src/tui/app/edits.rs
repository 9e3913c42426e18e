//! Corrections: the in-place editor (`e`) and `$VISUAL`/`$EDITOR` (`C-e`) on the focused answer,
//! and the reason picker for a ✗ (`R`; right after `x`, for the answer just rejected).
//!
//! A saved edit is the reviewer's ✓ on the corrected text, and nothing about the original: it
//! keeps the verdict it had (none if none), since a clinician who adds a sentence to a correct
//! answer has not rejected it. An edit that leaves the text as it was, or empties it, records
//! nothing.

use super::*;
use crate::store::MAX_EDIT_CHARS;
use crate::tui::editor::{EditorOutcome, TextEditor};

/// The answer an edit or a reason is about (kept with it, whatever loads meanwhile).
#[derive(Debug, Clone, PartialEq)]
pub struct EditTarget {
    pub sample_key: i64,
    pub round_id: i64,
    pub answer_id: i64,
    /// 0-based round and display position, for the editor's title.
    pub round: usize,
    pub display: usize,
    pub shown_order: Vec<i64>,
    /// The text the edit started from: the reviewer's earlier edit, else the answer as imported.
    pub start_text: String,
    /// The answer as imported: a "correction" back to it is no correction.
    pub original_text: String,
}

/// The in-place editor's state.
#[derive(Debug, Clone, PartialEq)]
pub struct EditState {
    pub target: EditTarget,
    pub editor: TextEditor,
    /// Esc was pressed on changed text: a second Esc discards it, any other key keeps editing.
    pub confirm_discard: bool,
}

/// The note editor's state (`n`): the sample's note in the same box as an answer's correction.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteState {
    pub sample_key: i64,
    /// The sample's id, for the box's title.
    pub sample_id: String,
    pub editor: TextEditor,
    /// Esc was pressed on changed text: a second Esc discards it.
    pub confirm_discard: bool,
}

/// An answer a reason is being picked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonTarget {
    pub sample_key: i64,
    pub round_id: i64,
    pub answer_id: i64,
}

/// The runtime is asked to suspend the screen and run the reviewer's editor on `text`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEdit {
    pub target: EditTarget,
    pub text: String,
}

impl App {
    /// The focused answer as an edit target, or a message saying why there is none.
    fn edit_target(&mut self) -> Option<EditTarget> {
        if !self.focused_round_has_answers() {
            self.message = Some("no answer to edit in this round".into());
            return None;
        }
        let view = self.current.as_ref()?;
        let (r, d) = (self.focus_round, self.focus_answer);
        let answer_id = view.answer_at(r, d)?;
        let original_text = view.answer_text_at(r, d)?.to_string();
        let start_text = match view.edit(answer_id) {
            Some(edited) => edited.to_string(),
            None => original_text.clone(),
        };
        Some(EditTarget {
            sample_key: view.key(),
            round_id: view.stored.round_ids[r],
            answer_id,
            round: r,
            display: d,
            shown_order: view.shown_order(r),
            start_text,
            original_text,
        })
    }

    pub(super) fn open_editor(&mut self) -> Vec<Effect> {
        if let Some(target) = self.edit_target() {
            let mut editor = TextEditor::new(&target.start_text);
            editor.set_width(crate::tui::editor::text_width(self.screen_width));
            self.mode = Mode::Edit(Box::new(EditState {
                target,
                editor,
                confirm_discard: false,
            }));
            self.message =
                Some("editing: Ctrl-S saves, Esc cancels, Ctrl-Z / Ctrl-Y undo and redo".into());
        }
        vec![]
    }

    pub(super) fn open_external_editor(&mut self) -> Vec<Effect> {
        if let Some(target) = self.edit_target() {
            self.message = Some("editing in $VISUAL / $EDITOR…".into());
            self.external_edit = Some(ExternalEdit {
                text: target.start_text.clone(),
                target,
            });
        }
        vec![]
    }

    pub(super) fn on_editor_key(
        &mut self,
        mut state: Box<EditState>,
        key: KeyEvent,
    ) -> Vec<Effect> {
        let confirmed = std::mem::take(&mut state.confirm_discard);
        match state.editor.key(&key) {
            EditorOutcome::Editing => {
                self.mode = Mode::Edit(state);
                vec![]
            }
            // A typed correction is never thrown away by one key.
            EditorOutcome::Cancel if state.editor.changed() && !confirmed => {
                state.confirm_discard = true;
                self.message = Some(
                    "discard your changes? Esc again discards them, Ctrl-S saves, any other key keeps editing"
                        .into(),
                );
                self.mode = Mode::Edit(state);
                vec![]
            }
            EditorOutcome::Cancel => {
                self.message = Some("edit cancelled: nothing recorded".into());
                vec![]
            }
            EditorOutcome::Save => {
                let text = state.editor.text();
                match self.edit_refusal(&state.target, &text) {
                    Some(EditRefusal::KeepEditing(why)) => {
                        self.message = Some(why);
                        self.mode = Mode::Edit(state);
                        vec![]
                    }
                    Some(EditRefusal::Nothing(why)) => {
                        self.message = Some(why);
                        vec![]
                    }
                    None => self.record_edit(&state.target, text),
                }
            }
        }
    }

    /// Text pasted into the terminal (bracketed paste is on for the whole session): into the
    /// editor when it is open, into a one-line input or the export form's field on one line
    /// (line breaks become spaces), and nowhere on the sheet, where a paste is no key.
    pub(super) fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        let one_line = || text.replace("\r\n", " ").replace(['\r', '\n'], " ");
        match &mut self.mode {
            Mode::Edit(state) => state.editor.paste(text),
            Mode::Note(state) => state.editor.paste(text),
            Mode::Input { text: input, .. } => input.push_str(&one_line()),
            Mode::Export(form) => form.fields[form.focus].push_str(&one_line()),
            _ => {}
        }
        vec![]
    }

    /// The reviewer's editor returned: its text (None: it exited with an error), recorded like an
    /// in-place save.
    pub(super) fn external_edit_done(
        &mut self,
        target: EditTarget,
        result: Result<String, String>,
    ) -> Vec<Effect> {
        match result {
            Err(why) => {
                self.message = Some(format!("{why}: nothing recorded"));
                vec![]
            }
            Ok(text) => {
                // Editors end a file with a newline the answer never had, some with CRLF.
                let text = text.replace("\r\n", "\n");
                let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
                match self.edit_refusal(&target, &text) {
                    Some(EditRefusal::KeepEditing(why) | EditRefusal::Nothing(why)) => {
                        self.message = Some(why);
                        vec![]
                    }
                    None => self.record_edit(&target, text),
                }
            }
        }
    }

    fn edit_refusal(&self, target: &EditTarget, text: &str) -> Option<EditRefusal> {
        if text == target.start_text {
            return Some(EditRefusal::Nothing("unchanged: nothing recorded".into()));
        }
        if text == target.original_text {
            return Some(EditRefusal::KeepEditing(
                "that is the answer as generated: a correction must differ (u takes back your \
                 earlier edit)"
                    .into(),
            ));
        }
        if text.trim().is_empty() {
            return Some(EditRefusal::KeepEditing(
                "an empty answer is not a correction (Esc leaves without saving)".into(),
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_EDIT_CHARS {
            return Some(EditRefusal::KeepEditing(format!(
                "{chars} characters: an edited answer holds at most {MAX_EDIT_CHARS}"
            )));
        }
        None
    }

    /// The edit: the corrected text as the reviewer's ✓; the original's verdict untouched.
    fn record_edit(&mut self, target: &EditTarget, text: String) -> Vec<Effect> {
        let judged = self
            .current
            .as_ref()
            .filter(|v| v.key() == target.sample_key)
            .and_then(|v| v.verdict(target.answer_id));
        let original = match judged {
            Some(DecisionKind::Accept) => "keeps your ✓",
            Some(DecisionKind::Reject) => "keeps your ✗",
            _ => "has no verdict (x rejects it)",
        };
        self.pending_trains = true;
        self.message = Some(format!(
            "correction saved as your ✓; the original {original} (u undoes, D shows it)"
        ));
        vec![Effect::RecordTogether(vec![NewDecision {
            sample_key: target.sample_key,
            round_id: Some(target.round_id),
            answer_id: Some(target.answer_id),
            kind: DecisionKind::Edit,
            value: Some(text),
            shown_order: Some(target.shown_order.clone()),
            figure_shown: None,
        }])]
    }

    /// `R`: the reason picker for `target` (the answer `x` just rejected), else for the focused answer
    /// when this reviewer rejected it.
    pub(super) fn pick_reason(&mut self, target: Option<ReasonTarget>) -> Vec<Effect> {
        let target = target.or_else(|| {
            let view = self.current.as_ref()?;
            let answer_id = view.answer_at(self.focus_round, self.focus_answer)?;
            (view.verdict(answer_id) == Some(DecisionKind::Reject)).then(|| ReasonTarget {
                sample_key: view.key(),
                round_id: view.stored.round_ids[self.focus_round],
                answer_id,
            })
        });
        match target {
            Some(target) => {
                self.mode = Mode::Reason(target);
                self.message = Some(format!(
                    "why ✗? 1-{} (Esc: no reason)",
                    self.reasons.len() + 1
                ));
            }
            None => {
                self.message = Some("a reason goes with a ✗: reject the answer first (x)".into())
            }
        }
        vec![]
    }

    /// The reasons offered, "other" last.
    pub fn reason_choices(&self) -> Vec<String> {
        self.reasons
            .iter()
            .cloned()
            .chain(std::iter::once(OTHER_REASON.to_string()))
            .collect()
    }

    pub(super) fn on_reason_key(&mut self, target: ReasonTarget, key: KeyEvent) -> Vec<Effect> {
        let choices = self.reason_choices();
        let picked = match key.code {
            KeyCode::Char(c) => c
                .to_digit(10)
                .and_then(|n| (n as usize).checked_sub(1))
                .filter(|&i| i < choices.len()),
            _ => None,
        };
        match picked {
            Some(i) if i + 1 == choices.len() => {
                self.input(InputKind::ReasonOther(target), String::new())
            }
            Some(i) => self.record_reason(target, choices[i].clone()),
            None => {
                self.message = Some("no reason recorded".into());
                vec![]
            }
        }
    }

    pub(super) fn record_reason(&mut self, target: ReasonTarget, reason: String) -> Vec<Effect> {
        self.message = Some(format!("reason: {reason}"));
        vec![Effect::Record(NewDecision {
            sample_key: target.sample_key,
            round_id: Some(target.round_id),
            answer_id: Some(target.answer_id),
            kind: DecisionKind::Reason,
            value: Some(reason),
            shown_order: None,
            figure_shown: None,
        })]
    }
}

/// The reason that takes free text; stored as `other: TEXT`.
pub const OTHER_REASON: &str = "other";

enum EditRefusal {
    /// Stay in the editor and say why.
    KeepEditing(String),
    /// Leave, recording nothing.
    Nothing(String),
}

impl App {
    /// `n`: the sample's note in a multi-line box (Ctrl-S saves, Esc asks before discarding).
    pub(super) fn open_note(&mut self) -> Vec<Effect> {
        let Some(view) = &self.current else {
            return vec![];
        };
        let text = view.note().unwrap_or_default().to_string();
        // The cursor starts at the end of the note, ready to add to it.
        let editor = TextEditor::new(&text);
        self.mode = Mode::Note(Box::new(NoteState {
            sample_key: view.key(),
            sample_id: view.stored.sample.id.clone(),
            editor,
            confirm_discard: false,
        }));
        self.message = Some("note: Ctrl-S saves, Esc cancels".into());
        vec![]
    }

    pub(super) fn on_note_key(&mut self, mut state: Box<NoteState>, key: KeyEvent) -> Vec<Effect> {
        let confirmed = std::mem::take(&mut state.confirm_discard);
        match state.editor.key(&key) {
            EditorOutcome::Editing => {
                self.mode = Mode::Note(state);
                vec![]
            }
            EditorOutcome::Cancel if state.editor.changed() && !confirmed => {
                state.confirm_discard = true;
                self.message = Some(
                    "discard the note? Esc again discards it, Ctrl-S saves, any other key keeps editing"
                        .into(),
                );
                self.mode = Mode::Note(state);
                vec![]
            }
            EditorOutcome::Cancel => {
                self.message = Some("note unchanged".into());
                vec![]
            }
            EditorOutcome::Save if !state.editor.changed() => {
                self.message = Some("note unchanged".into());
                vec![]
            }
            EditorOutcome::Save => {
                let text = state.editor.text();
                self.message = Some(if text.trim().is_empty() {
                    "note removed".into()
                } else {
                    "note saved".into()
                });
                vec![Effect::Record(NewDecision {
                    sample_key: state.sample_key,
                    round_id: None,
                    answer_id: None,
                    kind: DecisionKind::Note,
                    value: Some(text),
                    shown_order: None,
                    figure_shown: None,
                })]
            }
        }
    }
}
