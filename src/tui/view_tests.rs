//! Rendering on ratatui's TestBackend at the smallest supported size and a large one.

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{App, Msg};
use super::keymap::Keymap;
use super::queue::Queue;
use super::sample_view::SampleView;
use super::view::{draw, ImagePane, ImageState};
use crate::data::{Round, Sample};
use crate::store::{CurrentDecision, DecisionKind, IndexEntry, StoredSample};

fn sample_view() -> SampleView {
    let sample = Sample {
        id: "fig-7".into(),
        image: Some("fig7.png".into()),
        caption: "Axial CT of the chest shows a 9 mm nodule in the right upper lobe.".into(),
        mentions: vec!["A follow-up CT (Figure 7) showed the nodule.".into()],
        fig_label: Some("Figure 7".into()),
        domains: vec!["ct_scan".into()],
        rounds: vec![
            Round {
                question: "<image>\nWhat imaging modality is shown?".into(),
                answers: vec![
                    "An axial CT of the chest.".into(),
                    "A knee radiograph.".into(),
                ],
            },
            Round {
                question: "Where is the nodule?".into(),
                answers: vec![
                    "In the right upper lobe.".into(),
                    "It may be anywhere.".into(),
                ],
            },
        ],
        is_demo: false,
    };
    let stored = StoredSample {
        key: 1,
        sample,
        round_ids: vec![10, 20],
        answer_ids: vec![vec![11, 12], vec![21, 22]],
        source: Some("/data/candidates.jsonl".into()),
    };
    let decisions = vec![
        CurrentDecision {
            event_id: 1,
            sample_key: 1,
            round_id: Some(10),
            answer_id: Some(11),
            kind: DecisionKind::Accept,
            value: None,
        },
        CurrentDecision {
            event_id: 2,
            sample_key: 1,
            round_id: Some(10),
            answer_id: Some(12),
            kind: DecisionKind::Reject,
            value: None,
        },
    ];
    let mut view = SampleView::new(stored, decisions, "ana", false);
    view.judge_scores.insert(11, 8.0);
    view
}

fn app() -> App {
    let entry = IndexEntry {
        key: 1,
        ext_id: "fig-7".into(),
        domains: vec!["ct_scan".into()],
        decided: false,
        flagged: false,
        disagreement: false,
        rounds: 2,
    };
    let mut app = App::new(
        "ana".into(),
        Keymap::default(),
        Queue::new(vec![entry]),
        true,
        false,
    );
    app.start();
    app.update(Msg::Loaded(Box::new(sample_view())));
    app
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut image = ImagePane {
        key: Some(1),
        state: ImageState::Placeholder("image not found: fig7.png".into()),
    };
    terminal.draw(|f| draw(f, app, &mut image)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn small_terminal_shows_every_pane() {
    let text = render(&app(), 80, 24);
    assert!(text.contains("1/1  reviewed 0/1"), "{text}");
    assert!(text.contains("Image"), "{text}");
    assert!(text.contains("image not found"), "{text}");
    assert!(text.contains("Caption: Axial CT"), "{text}");
    assert!(
        text.contains("Q1 What imaging modality is shown?"),
        "<image> hidden: {text}"
    );
    assert!(text.contains("Answer 1 ✓"), "{text}");
    assert!(text.contains("Answer 2 ✗"), "{text}");
    assert!(text.contains("judge 8.0"), "{text}");
    assert!(text.contains("reviewer ana"), "{text}");
    assert!(text.contains("a accept"), "{text}");
    insta::assert_snapshot!("review_80x24", text);
}

#[test]
fn large_terminal_puts_answers_side_by_side() {
    let text = render(&app(), 200, 60);
    let line = text
        .lines()
        .find(|l| l.contains("Answer 1"))
        .expect("answer titles");
    assert!(line.contains("Answer 2"), "side by side: {line}");
    assert!(text.contains("Mention: A follow-up CT"), "{text}");
    assert!(text.contains("Source: candidates.jsonl"), "{text}");
    insta::assert_snapshot!("review_200x60", text);
}

#[test]
fn narrow_rounds_pane_stacks_answers() {
    let line = |width| {
        let text = render(&app(), width, 40);
        text.lines()
            .find(|l| l.contains("Answer 1"))
            .expect("answer titles")
            .to_string()
    };
    assert!(line(80).contains("Answer 2"), "side by side at 80 columns");
    assert!(!line(60).contains("Answer 2"), "stacked at 60 columns");
}

#[test]
fn focused_round_stays_in_view_when_rounds_overflow() {
    let mut app = app();
    let mut view = sample_view();
    for r in 2..12 {
        view.stored.sample.rounds.push(Round {
            question: format!("Extra question number {r}?"),
            answers: vec!["yes".into(), "no".into()],
        });
        view.stored.round_ids.push(100 + r);
        view.stored
            .answer_ids
            .push(vec![1000 + 2 * r, 1001 + 2 * r]);
        view.order.push(vec![0, 1]);
    }
    app.current = Some(view);
    app.focus_round = 11;
    let text = render(&app, 80, 24);
    assert!(text.contains("Q12 Extra question number 11?"), "{text}");
    assert!(!text.contains("Q1 What imaging"), "{text}");
}

#[test]
fn help_lists_every_action_and_input_shows_in_the_status_line() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app();
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('?'),
        KeyModifiers::NONE,
    )));
    let text = render(&app, 200, 60);
    for action in super::keymap::Action::ALL {
        assert!(
            text.contains(action.description()),
            "{} missing from help",
            action.name()
        );
    }
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('g'),
        KeyModifiers::NONE,
    )));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('x'),
        KeyModifiers::NONE,
    )));
    assert!(render(&app, 80, 24).contains("go to id: x█"));
}

#[test]
fn config_documents_every_key_action() {
    let config = crate::config::Config::defaults();
    for action in super::keymap::Action::ALL {
        assert!(
            config.keys.contains_key(action.name()),
            "config.toml [keys] lacks {}",
            action.name()
        );
    }
    let map = Keymap::with_overrides(&config.keys).expect("the documented keys are valid");
    assert_eq!(map.keys_label(super::keymap::Action::Accept), "a");
}
