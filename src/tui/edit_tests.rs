//! The correction keys as pure state updates: the in-place editor (`e`), `$EDITOR` (`C-e`),
//! reasons for a ✗ (`R`, right after `x` for the answer just rejected), the original beside an edit (`D`) and redo (`U`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, EditTarget, Effect, InputKind, Mode, Msg, ReasonTarget};
use super::keymap::Keymap;
use super::queue::Queue;
use super::sample_view::SampleView;
use crate::data::{Round, Sample};
use crate::store::{CurrentDecision, DecisionKind, IndexEntry, NewDecision, StoredSample};

/// Sample 1: one round, "What is shown?", answers 101 "A left effusion." and 102 "Normal.".
fn app_with(decisions: Vec<CurrentDecision>) -> App {
    let sample = Sample {
        id: "s1".into(),
        caption: "Chest CT.".into(),
        rounds: vec![Round {
            question: "What is shown?".into(),
            answers: vec!["A left effusion.".into(), "Normal.".into()],
        }],
        ..Default::default()
    };
    let stored = StoredSample {
        key: 1,
        sample,
        round_ids: vec![100],
        answer_ids: vec![vec![101, 102]],
        source: None,
    };
    let entries = vec![1, 2].into_iter().map(|key| IndexEntry {
        key,
        ext_id: format!("s{key}"),
        domains: vec![],
        decided: false,
        flagged: false,
        disagreement: false,
        rounds: 1,
    });
    let mut app = App::new(
        "dr_lee".into(),
        Keymap::default(),
        Queue::new(entries.collect()),
        true,
        false,
    );
    app.reasons = crate::config::Config::defaults().review.reasons;
    app.start();
    app.update(Msg::Loaded(Box::new(SampleView::new(
        stored, decisions, "dr_lee", false,
    ))));
    app
}

fn app() -> App {
    app_with(vec![])
}

fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, modifiers)))
}

fn ch(app: &mut App, c: char) -> Vec<Effect> {
    key(app, KeyCode::Char(c), KeyModifiers::NONE)
}

fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    key(app, KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(
            ch(app, c).is_empty(),
            "typing in the editor records nothing"
        );
    }
}

fn together(effects: &[Effect]) -> Vec<(DecisionKind, Option<i64>, Option<String>)> {
    match effects {
        [Effect::RecordTogether(decisions)] => decisions
            .iter()
            .map(|d| (d.kind, d.answer_id, d.value.clone()))
            .collect(),
        other => panic!("expected one RecordTogether, got {other:?}"),
    }
}

fn in_force(id: i64, kind: DecisionKind, answer: i64, value: Option<&str>) -> CurrentDecision {
    CurrentDecision {
        event_id: id,
        sample_key: 1,
        round_id: Some(100),
        answer_id: Some(answer),
        kind,
        value: value.map(str::to_string),
    }
}

#[test]
fn e_edits_the_focused_answer_and_ctrl_s_records_the_correction_and_no_reject_of_the_original() {
    let mut app = app();
    assert!(ch(&mut app, 'e').is_empty());
    let Mode::Edit(state) = &app.mode else {
        panic!("the editor is open: {:?}", app.mode);
    };
    assert_eq!(state.editor.text(), "A left effusion.");
    assert_eq!(state.target.answer_id, 101);
    key(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    typed(&mut app, " with a small pneumothorax.");
    let effects = ctrl(&mut app, 's');
    assert_eq!(
        together(&effects),
        [(
            DecisionKind::Edit,
            Some(101),
            Some("A left effusion with a small pneumothorax.".into())
        )]
    );
    assert_eq!(app.mode, Mode::Normal);
    let message = app.message.clone().unwrap();
    assert!(
        message.contains("your ✓") && message.contains("no verdict"),
        "the screen says what was recorded: {message}"
    );
    assert!(
        app.pending_trains,
        "an edit is a pair the selector learns from"
    );
}

#[test]
fn an_answer_already_judged_keeps_its_verdict_when_edited() {
    let mut app = app_with(vec![in_force(7, DecisionKind::Accept, 101, None)]);
    ch(&mut app, 'e');
    typed(&mut app, " Small.");
    assert_eq!(
        together(&ctrl(&mut app, 's')),
        [(
            DecisionKind::Edit,
            Some(101),
            Some("A left effusion. Small.".into())
        )]
    );
}

#[test]
fn an_edit_starts_from_the_reviewers_earlier_edit() {
    let mut app = app_with(vec![
        in_force(7, DecisionKind::Reject, 101, None),
        in_force(8, DecisionKind::Edit, 101, Some("A right effusion.")),
    ]);
    ch(&mut app, 'e');
    let Mode::Edit(state) = &app.mode else {
        panic!("editor open");
    };
    assert_eq!(state.editor.text(), "A right effusion.");
    // Back to the answer as generated: no correction (a DPO pair would prefer a text to itself).
    for _ in 0.."A right effusion.".len() {
        key(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    }
    typed(&mut app, "A left effusion.");
    assert!(ctrl(&mut app, 's').is_empty());
    assert!(matches!(app.mode, Mode::Edit(_)), "still editing");
    assert!(app.message.as_deref().unwrap().contains("as generated"));
}

#[test]
fn esc_an_unchanged_text_or_an_emptied_one_records_nothing() {
    let mut app = app();
    ch(&mut app, 'e');
    typed(&mut app, "xyz");
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert!(
        matches!(app.mode, Mode::Edit(_)),
        "a changed text asks first"
    );
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    ch(&mut app, 'e');
    typed(&mut app, "x");
    key(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    assert!(ctrl(&mut app, 's').is_empty());
    assert_eq!(app.message.as_deref(), Some("unchanged: nothing recorded"));
    ch(&mut app, 'e');
    for _ in 0..20 {
        key(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    }
    assert!(ctrl(&mut app, 's').is_empty());
    assert!(
        matches!(app.mode, Mode::Edit(_)),
        "still editing: {:?}",
        app.message
    );
}

#[test]
fn a_paste_goes_into_the_editor_and_undo_inside_it_takes_it_back() {
    let mut app = app();
    ch(&mut app, 'e');
    assert!(app
        .update(Msg::Paste(" Pleural\r\nthickening.".into()))
        .is_empty());
    let text = |app: &App| match &app.mode {
        Mode::Edit(state) => state.editor.text(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text(&app), "A left effusion. Pleural\nthickening.");
    ctrl(&mut app, 'z');
    assert_eq!(text(&app), "A left effusion.");
    ctrl(&mut app, 'y');
    assert_eq!(text(&app), "A left effusion. Pleural\nthickening.");
}

/// Bracketed paste is on for the whole session: a paste reaches a note (line breaks kept), a
/// search or the "other" reason on one line, and does nothing on the sheet.
#[test]
fn a_paste_reaches_the_one_line_inputs_and_is_no_key_on_the_sheet() {
    let mut app = app();
    assert!(app.update(Msg::Paste("ax".into())).is_empty(), "not keys");
    assert_eq!(app.mode, Mode::Normal);
    ch(&mut app, 'n');
    app.update(Msg::Paste("check the\r\nlateral view".into()));
    let effects = ctrl(&mut app, 's');
    assert!(
        matches!(&effects[..], [Effect::Record(d)] if d.value.as_deref() == Some("check the\nlateral view")),
        "{effects:?}"
    );
    ch(&mut app, '/');
    app.update(Msg::Paste("effusion".into()));
    assert!(
        matches!(&app.mode, Mode::Input { kind: InputKind::Search, text } if text == "effusion")
    );
}

#[test]
fn capital_r_right_after_x_picks_a_reason_for_the_rejected_answer() {
    let mut app = app();
    let effects = ch(&mut app, 'x');
    assert!(matches!(&effects[..], [Effect::Record(d)] if d.kind == DecisionKind::Reject));
    assert!(ch(&mut app, 'R').is_empty());
    let target = ReasonTarget {
        sample_key: 1,
        round_id: 100,
        answer_id: 101,
    };
    assert_eq!(app.mode, Mode::Reason(target));
    let effects = ch(&mut app, '3');
    match &effects[..] {
        [Effect::Record(NewDecision {
            kind: DecisionKind::Reason,
            answer_id: Some(101),
            value: Some(v),
            ..
        })] => assert_eq!(v, "factual error"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn r_after_x_rates_the_round_and_never_picks_a_reason() {
    // `x r 2` meant "rate 2 of 5" and once recorded the reason "wrong modality or anatomy".
    let mut app = app();
    ch(&mut app, 'x');
    assert!(ch(&mut app, 'r').is_empty());
    assert_eq!(app.mode, Mode::Rating);
    match &ch(&mut app, '2')[..] {
        [Effect::Record(NewDecision {
            kind: DecisionKind::Rate,
            value: Some(v),
            ..
        })] => assert_eq!(v, "2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn capital_r_needs_a_rejected_answer_and_other_takes_free_text() {
    let mut app = app();
    assert!(ch(&mut app, 'R').is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(app
        .message
        .as_deref()
        .unwrap()
        .contains("reject the answer first"));
    let mut app = app_with(vec![in_force(7, DecisionKind::Reject, 101, None)]);
    ch(&mut app, 'R');
    let target = ReasonTarget {
        sample_key: 1,
        round_id: 100,
        answer_id: 101,
    };
    assert_eq!(app.mode, Mode::Reason(target));
    let other = app.reason_choices().len();
    assert_eq!(
        app.reason_choices().last().map(String::as_str),
        Some("other")
    );
    ch(&mut app, char::from_digit(other as u32, 10).unwrap());
    assert!(matches!(app.mode, Mode::Input { kind: InputKind::ReasonOther(t), .. } if t == target));
    typed_input(&mut app, "dose is wrong");
    let effects = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    assert!(
        matches!(&effects[..], [Effect::Record(d)] if d.value.as_deref() == Some("other: dose is wrong"))
    );
    ch(&mut app, 'R');
    assert!(
        key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty(),
        "Esc: no reason"
    );
}

fn typed_input(app: &mut App, text: &str) {
    for c in text.chars() {
        ch(app, c);
    }
}

#[test]
fn d_toggles_the_original_and_capital_u_redoes() {
    let mut app = app();
    assert!(!app.show_original);
    ch(&mut app, 'D');
    assert!(app.show_original);
    ch(&mut app, 'D');
    assert!(!app.show_original);
    assert_eq!(ch(&mut app, 'U'), vec![Effect::Redo]);
}

#[test]
fn ctrl_e_asks_the_runtime_for_the_reviewers_editor_and_records_what_it_returns() {
    let mut app = app();
    assert!(ctrl(&mut app, 'e').is_empty());
    let edit = app
        .external_edit
        .take()
        .expect("the runtime is asked to run the editor");
    assert_eq!(edit.text, "A left effusion.");
    let done = |result: Result<String, String>, target: &EditTarget| Msg::ExternalEditDone {
        target: target.clone(),
        result,
    };
    // The editor's final newline is not part of the answer.
    let effects = app.update(done(Ok("A right effusion.\n".into()), &edit.target));
    assert_eq!(
        together(&effects),
        [(
            DecisionKind::Edit,
            Some(101),
            Some("A right effusion.".into())
        )]
    );
    assert!(app
        .update(done(Ok("A left effusion.\n".into()), &edit.target))
        .is_empty());
    assert!(
        app.update(done(Ok("A left effusion.\r\n".into()), &edit.target))
            .is_empty(),
        "an editor that writes CRLF changed nothing either"
    );
    assert!(app
        .update(done(
            Err("the editor `false` exited with 1".into()),
            &edit.target
        ))
        .is_empty());
    assert!(app.message.as_deref().unwrap().contains("nothing recorded"));
}

#[test]
fn edits_and_reasons_work_on_the_full_screen_figure() {
    let mut app = app();
    ch(&mut app, 'z');
    assert!(app.zoomed);
    ch(&mut app, 'e');
    assert!(matches!(app.mode, Mode::Edit(_)));
    key(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    assert!(app.zoomed, "Esc leaves the editor, not the figure");
    ch(&mut app, 'x');
    ch(&mut app, 'R');
    assert!(matches!(app.mode, Mode::Reason(_)));
}

#[test]
fn esc_on_a_changed_text_asks_before_discarding_and_another_key_keeps_editing() {
    let mut app = app();
    ch(&mut app, 'e');
    typed(&mut app, " More.");
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert!(matches!(app.mode, Mode::Edit(_)));
    assert!(app
        .message
        .as_deref()
        .unwrap()
        .contains("Esc again discards"));
    // Any other key keeps the text and goes on editing.
    typed(&mut app, "!");
    let Mode::Edit(state) = &app.mode else {
        panic!("still editing")
    };
    assert!(state.editor.text().ends_with(" More.!"));
    // Esc, then Esc: gone, nothing recorded.
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    // Unchanged text leaves at once.
    ch(&mut app, 'e');
    assert!(key(&mut app, KeyCode::Esc, KeyModifiers::NONE).is_empty());
    assert_eq!(app.mode, Mode::Normal);
}
