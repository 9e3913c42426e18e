//! The in-place answer editor (`e`): a multi-line text buffer with soft word wrap, cursor keys by
//! screen row, paste, and its own undo/redo. Pure state: keys in, text and cursor out; the view
//! draws [`TextEditor::layout`]. Written here rather than taken from a textarea crate because
//! those do not wrap, and a clinician's answer is one long paragraph.
//!
//! Rules: every character typed or pasted is kept exactly (spaces and newlines too; `\r\n` from a
//! paste becomes `\n`); rows break after a space where they can, inside a word only when it is
//! wider than the row; widths are display columns, so wide (CJK) characters take two.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use unicode_width::UnicodeWidthChar;

/// What a key did to the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorOutcome {
    /// Still editing.
    Editing,
    /// Save the text (Ctrl-S).
    Save,
    /// Leave without saving (Esc).
    Cancel,
}

/// One screen row of the wrapped text: the characters `start..end` of the buffer (the newline that
/// ends a paragraph is not in any row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    text: Vec<char>,
    cursor: usize,
}

/// What the last change was, so a run of typed characters undoes as one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastChange {
    None,
    Typing,
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEditor {
    text: Vec<char>,
    /// Index into `text`, `0..=len`.
    cursor: usize,
    original: String,
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    last_change: LastChange,
    /// The column Up/Down aim for, kept across rows shorter than it.
    goal_column: Option<usize>,
    /// The width the text was last laid out at (the view sets it; keys that move by row use it).
    width: usize,
}

/// The editor popup's width on a screen `screen_width` columns wide, and the width its text is
/// laid out at (one column less, so the cursor after a full row stays inside): the view draws
/// with these and the keys move by the same rows.
pub fn popup_width(screen_width: u16) -> u16 {
    screen_width
        .saturating_sub(4)
        .clamp(20, 110)
        .min(screen_width)
}

pub fn text_width(screen_width: u16) -> usize {
    (popup_width(screen_width).saturating_sub(3) as usize).max(2)
}

/// How many undo steps are kept (each is a copy of the text; a 10K-character answer × 200 is 8 MB).
const UNDO_LIMIT: usize = 200;

impl TextEditor {
    /// Starts on `text` with the cursor at its end.
    pub fn new(text: &str) -> Self {
        let text: Vec<char> = text.chars().collect();
        Self {
            cursor: text.len(),
            text,
            original: String::new(),
            undo: Vec::new(),
            redo: Vec::new(),
            last_change: LastChange::None,
            goal_column: None,
            width: 60,
        }
        .with_original()
    }

    fn with_original(mut self) -> Self {
        self.original = self.text();
        self
    }

    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// Whether the text differs from the one the editor opened on.
    pub fn changed(&self) -> bool {
        self.text() != self.original
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Lays the text out `width` columns wide and remembers the width for Up/Down/Home/End.
    pub fn set_width(&mut self, width: usize) {
        self.width = width.max(2);
    }

    /// The wrapped rows at the last width set.
    pub fn rows(&self) -> Vec<Row> {
        self.rows_at(self.width)
    }

    /// The wrapped rows at `width` (the view lays out at the screen's width without a copy of
    /// the editor and its undo history).
    pub fn rows_at(&self, width: usize) -> Vec<Row> {
        layout(&self.text, width.max(2))
    }

    /// The text as characters, which [`Row`]s index.
    pub fn chars(&self) -> &[char] {
        &self.text
    }

    /// The cursor's row (index into [`Self::rows`]) and display column.
    pub fn cursor_position(&self) -> (usize, usize) {
        self.cursor_position_in(&self.rows())
    }

    /// The cursor's row and display column among `rows` (from [`Self::rows_at`]).
    pub fn cursor_position_in(&self, rows: &[Row]) -> (usize, usize) {
        let row = row_of(rows, self.cursor);
        let r = rows[row];
        (row, columns(&self.text[r.start..self.cursor.min(r.end)]))
    }

    /// Applies one key.
    pub fn key(&mut self, key: &KeyEvent) -> EditorOutcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return EditorOutcome::Cancel,
            KeyCode::Char('s') if ctrl => return EditorOutcome::Save,
            KeyCode::Char('z') if ctrl => self.undo(),
            KeyCode::Char('y') if ctrl => self.redo(),
            KeyCode::Char('a') if ctrl => self.move_to(self.row_bounds().0),
            KeyCode::Char('e') if ctrl => self.move_to(self.row_bounds().1),
            KeyCode::Char(c) if !ctrl => self.insert(&[c], LastChange::Typing),
            KeyCode::Enter => self.insert(&['\n'], LastChange::Typing),
            KeyCode::Tab => self.insert(&['\t'], LastChange::Typing),
            KeyCode::Backspace if self.cursor > 0 => {
                self.change(LastChange::Deleting);
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            KeyCode::Delete if self.cursor < self.text.len() => {
                self.change(LastChange::Deleting);
                self.text.remove(self.cursor);
            }
            KeyCode::Left => self.move_to(self.cursor.saturating_sub(1)),
            KeyCode::Right => self.move_to((self.cursor + 1).min(self.text.len())),
            KeyCode::Home if ctrl => self.move_to(0),
            KeyCode::End if ctrl => self.move_to(self.text.len()),
            KeyCode::Home => self.move_to(self.row_bounds().0),
            KeyCode::End => self.move_to(self.row_bounds().1),
            KeyCode::Up => self.move_rows(-1),
            KeyCode::Down => self.move_rows(1),
            KeyCode::PageUp => self.move_rows(-10),
            KeyCode::PageDown => self.move_rows(10),
            _ => {}
        }
        EditorOutcome::Editing
    }

    /// Inserts pasted text at the cursor as one undo step.
    pub fn paste(&mut self, text: &str) {
        let chars: Vec<char> = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .collect();
        self.last_change = LastChange::None;
        self.insert(&chars, LastChange::None);
    }

    fn insert(&mut self, chars: &[char], kind: LastChange) {
        // A space ends a typed word: the next word undoes on its own.
        let word_break = chars.iter().any(|c| c.is_whitespace());
        self.change(kind);
        self.text
            .splice(self.cursor..self.cursor, chars.iter().copied());
        self.cursor += chars.len();
        if word_break {
            self.last_change = LastChange::None;
        }
    }

    /// Records an undo step unless this change continues the last one (typing, deleting).
    fn change(&mut self, kind: LastChange) {
        if kind == LastChange::None || kind != self.last_change {
            self.undo.push(Snapshot {
                text: self.text.clone(),
                cursor: self.cursor,
            });
            if self.undo.len() > UNDO_LIMIT {
                self.undo.remove(0);
            }
        }
        self.redo.clear();
        self.last_change = kind;
        self.goal_column = None;
    }

    fn undo(&mut self) {
        if let Some(before) = self.undo.pop() {
            let now = Snapshot {
                text: std::mem::replace(&mut self.text, before.text),
                cursor: self.cursor,
            };
            self.redo.push(now);
            self.cursor = before.cursor;
        }
        self.last_change = LastChange::None;
    }

    fn redo(&mut self) {
        if let Some(after) = self.redo.pop() {
            let now = Snapshot {
                text: std::mem::replace(&mut self.text, after.text),
                cursor: self.cursor,
            };
            self.undo.push(now);
            self.cursor = after.cursor;
        }
        self.last_change = LastChange::None;
    }

    fn move_to(&mut self, cursor: usize) {
        self.cursor = cursor;
        self.goal_column = None;
        self.last_change = LastChange::None;
    }

    /// The cursor row's first index and the index its End key goes to.
    fn row_bounds(&self) -> (usize, usize) {
        let rows = self.rows();
        let i = row_of(&rows, self.cursor);
        (rows[i].start, end_stop(&self.text, &rows, i))
    }

    fn move_rows(&mut self, by: isize) {
        let rows = self.rows();
        let row = row_of(&rows, self.cursor);
        let goal = self.goal_column.unwrap_or_else(|| {
            let r = rows[row];
            columns(&self.text[r.start..self.cursor.min(r.end)])
        });
        let target = (row as isize + by).clamp(0, rows.len() as isize - 1) as usize;
        if target == row {
            // Up on the first row goes to the start, Down on the last to the end.
            self.cursor = if by < 0 { 0 } else { self.text.len() };
            self.goal_column = None;
            self.last_change = LastChange::None;
            return;
        } else {
            let r = rows[target];
            let stop = end_stop(&self.text, &rows, target);
            let mut at = r.start;
            let mut used = 0;
            while at < stop {
                let w = self.text[at].width().unwrap_or(0);
                if used + w > goal {
                    break;
                }
                used += w;
                at += 1;
            }
            self.cursor = at;
        }
        self.goal_column = Some(goal);
        self.last_change = LastChange::None;
    }
}

/// The last cursor stop on row `i`: its end, or one before it when the row was broken after a
/// space (the cursor at `end` belongs to the next row).
fn end_stop(text: &[char], rows: &[Row], i: usize) -> usize {
    let r = rows[i];
    let soft_break = i + 1 < rows.len() && rows[i + 1].start == r.end && r.end > r.start;
    if soft_break && text.get(r.end).is_some_and(|c| *c != '\n') {
        r.end - 1
    } else {
        r.end
    }
}

/// The row the cursor at `at` is drawn on: at a soft break it begins the next row.
fn row_of(rows: &[Row], at: usize) -> usize {
    for (i, r) in rows.iter().enumerate() {
        let next_starts_here = rows.get(i + 1).is_some_and(|n| n.start == at);
        if at >= r.start && at <= r.end && !next_starts_here {
            return i;
        }
    }
    rows.len() - 1
}

fn columns(chars: &[char]) -> usize {
    chars.iter().map(|c| c.width().unwrap_or(0)).sum()
}

/// Wraps `text` into rows at most `width` columns wide (a row may end in spaces that overhang:
/// they are where the row broke). Always at least one row.
pub fn layout(text: &[char], width: usize) -> Vec<Row> {
    let width = width.max(2);
    let mut rows = Vec::new();
    let mut start = 0;
    while start <= text.len() {
        let end_of_paragraph = text[start..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(text.len(), |p| start + p);
        wrap_paragraph(text, start, end_of_paragraph, width, &mut rows);
        start = end_of_paragraph + 1;
    }
    if rows.is_empty() {
        rows.push(Row { start: 0, end: 0 });
    }
    rows
}

fn wrap_paragraph(text: &[char], start: usize, end: usize, width: usize, rows: &mut Vec<Row>) {
    let mut row_start = start;
    loop {
        let mut used = 0;
        let mut at = row_start;
        // The index after the last space seen in this row: where it may break.
        let mut last_break = None;
        while at < end {
            let c = text[at];
            let w = if c == '\t' { 1 } else { c.width().unwrap_or(0) };
            if c == ' ' || c == '\t' {
                // Spaces may overhang the row's end: the break goes after them.
                used += w;
                at += 1;
                last_break = Some(at);
                continue;
            }
            if used + w > width {
                break;
            }
            used += w;
            at += 1;
        }
        if at >= end {
            rows.push(Row {
                start: row_start,
                end,
            });
            return;
        }
        let cut = match last_break {
            Some(b) if b > row_start => b,
            // One word wider than the row: cut it (at least one character per row).
            _ => at.max(row_start + 1),
        };
        rows.push(Row {
            start: row_start,
            end: cut,
        });
        row_start = cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn typed(editor: &mut TextEditor, text: &str) {
        for c in text.chars() {
            editor.key(&key(KeyCode::Char(c)));
        }
    }

    fn row_texts(editor: &TextEditor) -> Vec<String> {
        let chars: Vec<char> = editor.text().chars().collect();
        editor
            .rows()
            .iter()
            .map(|r| chars[r.start..r.end].iter().collect())
            .collect()
    }

    #[test]
    fn rows_break_after_spaces_and_keep_every_character() {
        let mut e = TextEditor::new("the left lung shows  consolidation\nsecond paragraph");
        e.set_width(12);
        assert_eq!(
            row_texts(&e),
            [
                "the left ",
                "lung shows  ",
                "consolidatio",
                "n",
                "second ",
                "paragraph"
            ]
        );
        let joined: usize = e.rows().iter().map(|r| r.end - r.start).sum();
        assert_eq!(joined + 1, e.len(), "only the newline is outside the rows");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let mut e = TextEditor::new("肺部阴影明显");
        e.set_width(5);
        assert_eq!(row_texts(&e), ["肺部", "阴影", "明显"]);
        assert_eq!(e.cursor_position(), (2, 4));
    }

    #[test]
    fn typing_inserts_at_the_cursor_and_undo_takes_back_a_word_at_a_time() {
        let mut e = TextEditor::new("CT scan");
        e.key(&key(KeyCode::Home));
        typed(&mut e, "A chest ");
        assert_eq!(e.text(), "A chest CT scan");
        e.key(&ctrl('z'));
        assert_eq!(e.text(), "A CT scan");
        e.key(&ctrl('z'));
        assert_eq!(e.text(), "CT scan");
        assert!(!e.changed());
        e.key(&ctrl('y'));
        e.key(&ctrl('y'));
        assert_eq!(e.text(), "A chest CT scan");
        assert!(e.changed());
    }

    #[test]
    fn backspace_delete_and_paste_edit_the_text() {
        let mut e = TextEditor::new("abc");
        e.key(&key(KeyCode::Backspace));
        e.key(&key(KeyCode::Left));
        e.key(&key(KeyCode::Delete));
        assert_eq!(e.text(), "a");
        e.paste("x\r\ny");
        assert_eq!(e.text(), "ax\ny");
        e.key(&ctrl('z'));
        assert_eq!(e.text(), "a", "a paste undoes in one step");
        assert_eq!(e.key(&key(KeyCode::Esc)), EditorOutcome::Cancel);
        assert_eq!(e.key(&ctrl('s')), EditorOutcome::Save);
    }

    #[test]
    fn up_and_down_move_by_screen_row_keeping_the_column() {
        let mut e = TextEditor::new("aaaa bbbb cc dddd");
        e.set_width(5);
        assert_eq!(row_texts(&e), ["aaaa ", "bbbb ", "cc ", "dddd"]);
        e.key(&ctrl('a'));
        assert_eq!(e.cursor_position(), (3, 0));
        e.key(&key(KeyCode::End));
        assert_eq!(e.cursor_position(), (3, 4));
        e.key(&key(KeyCode::Up));
        assert_eq!(e.cursor_position(), (2, 2), "a shorter row: its end");
        e.key(&key(KeyCode::Up));
        assert_eq!(e.cursor_position(), (1, 4), "the goal column comes back");
        e.key(&key(KeyCode::Up));
        e.key(&key(KeyCode::Up));
        assert_eq!(e.cursor(), 0);
        e.key(&key(KeyCode::Down));
        e.key(&key(KeyCode::Char('X')));
        assert_eq!(e.text(), "aaaa Xbbbb cc dddd");
    }

    #[test]
    fn a_long_answer_and_an_empty_one_both_lay_out() {
        let long = "word ".repeat(2_000);
        let mut e = TextEditor::new(&long);
        e.set_width(78);
        let rows = e.rows();
        assert!(rows.len() > 100);
        assert_eq!(rows.last().unwrap().end, long.chars().count());
        assert_eq!(e.cursor_position().0, rows.len() - 1);
        let mut empty = TextEditor::new("");
        empty.key(&key(KeyCode::Up));
        empty.key(&key(KeyCode::Backspace));
        assert_eq!(empty.rows(), [Row { start: 0, end: 0 }]);
        assert_eq!(empty.cursor_position(), (0, 0));
    }
}
