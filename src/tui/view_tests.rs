//! Rendering on ratatui's TestBackend at the smallest supported size and a large one.

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::app::{App, Msg};
use super::keymap::Keymap;
use super::queue::Queue;
use super::sample_view::SampleView;
use super::view::{draw, Drawing, ImagePane, ImageState, ShownImage};
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
        ..ImagePane::default()
    };
    terminal.draw(|f| draw(f, app, &mut image)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height)
        .map(|y| {
            let mut line = String::new();
            let mut x = 0;
            while x < width {
                let symbol = buffer[(x, y)].symbol();
                line.push_str(symbol);
                // A wide character covers the next cell too, as on a terminal.
                x += unicode_width::UnicodeWidthStr::width(symbol).max(1) as u16;
            }
            line.trim_end().to_string()
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
    let keys = text.lines().last().unwrap();
    assert!(
        keys.ends_with("? help  q quit"),
        "help and quit are always on the key line: {keys}"
    );
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
    // Every page of the help (it scrolls when the screen is shorter than the list).
    let mut text = render(&app, 200, 60);
    for _ in 0..3 {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::PageDown,
            KeyModifiers::NONE,
        )));
        text.push_str(&render(&app, 200, 60));
    }
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

/// A 64×48 figure, brighter downwards, drawn in half blocks: rendered once (which asks for the
/// resize), resized as the worker would, rendered again. Cells showing the figure read `█`.
fn render_figure(app: &App, width: u16, height: u16) -> (String, Vec<usize>) {
    use std::sync::Arc;

    use image::{DynamicImage, GrayImage, Luma};
    use ratatui_image::picker::Picker;
    use ratatui_image::thread::ThreadProtocol;

    let figure = Arc::new(DynamicImage::ImageLuma8(GrayImage::from_fn(
        64,
        48,
        |_, y| Luma([(y * 5) as u8]),
    )));
    let picker = Picker::halfblocks();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut pane = ImagePane {
        key: Some(1),
        state: ImageState::Ready(Box::new(ShownImage {
            drawing: Drawing::Cells(ThreadProtocol::new(
                tx,
                Some(picker.new_resize_protocol(figure.as_ref().clone())),
            )),
            image: figure,
            font: picker.font_size(),
        })),
        ..ImagePane::default()
    };
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, app, &mut pane)).unwrap();
    for request in rx.try_iter() {
        let done = request.resize_encode().unwrap();
        if let ImageState::Ready(shown) = &mut pane.state {
            if let Drawing::Cells(protocol) = &mut shown.drawing {
                protocol.update_resized_protocol(done);
            }
        }
    }
    terminal.draw(|f| draw(f, app, &mut pane)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let is_figure = |x: u16, y: u16| matches!(buffer[(x, y)].bg, ratatui::style::Color::Rgb(..));
    let text = (0..height)
        .map(|y| {
            (0..width)
                .map(|x| {
                    if is_figure(x, y) {
                        "█".to_string()
                    } else {
                        buffer[(x, y)].symbol().to_string()
                    }
                })
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let widths = (0..height)
        .map(|y| (0..width).filter(|&x| is_figure(x, y)).count())
        .collect();
    (text, widths)
}

fn key(app: &mut App, c: char) {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )));
}

#[test]
fn a_small_figure_is_scaled_up_to_fill_its_pane() {
    // 64×48 pixels are 7×3 cells at their natural size (10×20-pixel cells).
    let (text, widths) = render_figure(&app(), 200, 60);
    let rows = widths.iter().filter(|&&w| w > 0).count();
    let widest = *widths.iter().max().unwrap();
    // The image pane: 38% of 200 columns, 55% of the 58 rows below the bar, less its border.
    assert!(
        widest >= 70,
        "scaled up to the pane's width: {widest}\n{text}"
    );
    assert!(rows >= 25, "and height: {rows} rows\n{text}");
    // 4:3 at 1:2 cells: about 1.5 columns per row, the aspect kept.
    let aspect = widest as f64 / rows as f64;
    assert!((2.4..=2.9).contains(&aspect), "aspect {aspect}\n{text}");
}

#[test]
fn zoomed_figure_fills_the_screen_80x24() {
    let mut app = app();
    key(&mut app, 'z');
    let (text, widths) = render_figure(&app, 80, 24);
    assert!(text.contains("fig-7 · fitted"), "{text}");
    assert!(text.contains("Q2/2 Where is the nodule?"), "{text}");
    assert!(
        text.contains("▶ Answer 1/2 · In the right upper lobe."),
        "{text}"
    );
    assert!(text.contains("z sheet"), "{text}");
    assert_eq!(
        widths.iter().filter(|&&w| w > 0).count(),
        19,
        "every figure row: {text}"
    );
    insta::assert_snapshot!("zoomed_80x24", text);
}

#[test]
fn zoomed_figure_fills_the_screen_200x60_with_the_caption_over_it() {
    let mut app = app();
    key(&mut app, 'z');
    key(&mut app, 'c');
    let (text, widths) = render_figure(&app, 200, 60);
    assert!(text.contains("Caption: Axial CT of the chest"), "{text}");
    assert!(text.contains("Mention: A follow-up CT"), "{text}");
    let rows = widths.iter().filter(|&&w| w > 0).count();
    assert!(
        rows >= 45,
        "the figure refits above the caption: {rows}\n{text}"
    );
    insta::assert_snapshot!("zoomed_200x60", text);
}

/// The full-screen figure shows the reviewer's correction of the focused answer, its reason and,
/// after `D`, the original, as the sheet does.
#[test]
fn the_full_screen_figure_shows_a_correction_its_reason_and_the_original() {
    let mut app = app();
    let view = app.current.as_mut().unwrap();
    for (event_id, kind, value) in [
        (3, DecisionKind::Reject, None),
        (
            4,
            DecisionKind::Edit,
            Some("In the right upper lobe, 9 mm."),
        ),
        (5, DecisionKind::Reason, Some("factual error")),
    ] {
        view.decisions.push(CurrentDecision {
            event_id,
            sample_key: 1,
            round_id: Some(20),
            answer_id: Some(21),
            kind,
            value: value.map(String::from),
        });
    }
    key(&mut app, 'z');
    let (text, _) = render_figure(&app, 200, 60);
    assert!(
        text.contains("✎ edited by ana: In the right upper lobe, 9 mm."),
        "{text}"
    );
    assert!(text.contains("why: factual error"), "{text}");
    assert!(!text.contains("original:"), "{text}");
    key(&mut app, 'D');
    let (text, _) = render_figure(&app, 200, 60);
    assert!(
        text.contains("original: In the right upper lobe."),
        "{text}"
    );
}

#[test]
fn selector_scores_read_as_a_place_among_all_answers_with_the_value_in_the_details() {
    let mut app = app();
    let view = app.current.as_mut().unwrap();
    view.selector_scores.insert(21, 45.0);
    view.selector_scores.insert(22, 2.0);
    let spread: Vec<f64> = (1..=50).map(f64::from).collect();
    app.score_ranks = super::score_rank::ScoreRanks::from_ascending(&spread);
    let text = render(&app, 200, 60);
    assert!(text.contains("sel beats 88%"), "{text}");
    assert!(text.contains("sel beats 2%"), "{text}");
    assert!(!text.contains("sel 45"), "{text}");
    assert!(
        text.contains("Scores: Q2 answer 1: selector 45.0000 (beats 88% of 50 answers)"),
        "{text}"
    );
    // Before any run's spread is known, the raw value is shown.
    app.score_ranks = Default::default();
    assert!(render(&app, 200, 60).contains("sel 45.00"));
}

/// The answer editor (`e`) over the sheet, on a text with wide characters, a line break and a
/// line longer than the popup: rows wrap at word boundaries by display width, the cursor (at the
/// end, where it opens) shows reversed, and the help row names the keys.
fn editing_app() -> App {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app();
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('e'),
        KeyModifiers::NONE,
    )));
    assert!(matches!(app.mode, super::app::Mode::Edit(_)));
    app.update(Msg::Paste(
        " 右上葉に9 mmの結節を認める (a 9 mm nodule in the right upper lobe).\nNo effusion; \
         the mediastinum is unremarkable and there is no lymphadenopathy on these axial images."
            .into(),
    ));
    app
}

#[test]
fn the_answer_editor_at_80x24() {
    let text = render(&editing_app(), 80, 24);
    // The sample's first round is decided: the focus (and the editor) opens on the second.
    assert!(text.contains("Edit Q2 answer 1"), "{text}");
    assert!(text.contains("右上葉に9"), "wide text drawn whole: {text}");
    assert!(text.contains("Ctrl-S save"), "{text}");
    insta::assert_snapshot!("editor_80x24", text);
}

#[test]
fn the_answer_editor_at_200x60() {
    let text = render(&editing_app(), 200, 60);
    assert!(text.contains("Edit Q2 answer 1"), "{text}");
    insta::assert_snapshot!("editor_200x60", text);
}

/// A 10,000-character answer opens with the cursor (at its end) in view, and Ctrl-Home brings
/// its first words back, at both sizes.
#[test]
fn a_ten_thousand_character_answer_edits_at_both_sizes() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let long: String = format!("START {}", "lesion ".repeat(1_430))[..10_000].to_string();
    for (w, h) in [(80, 24), (200, 60)] {
        let mut view = sample_view();
        view.stored.sample.rounds[1].answers[0] = long.clone();
        let mut app = app();
        app.current = Some(view);
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('e'),
            KeyModifiers::NONE,
        )));
        let text = render(&app, w, h);
        assert!(text.contains("(10000 characters)"), "{text}");
        assert!(text.contains("lesion"), "{text}");
        assert!(!text.contains("START"), "scrolled to the cursor: {text}");
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Home,
            KeyModifiers::CONTROL,
        )));
        let text = render(&app, w, h);
        assert!(text.contains("START lesion"), "{text}");
        let super::app::Mode::Edit(state) = &app.mode else {
            panic!("still editing");
        };
        assert_eq!(
            (state.editor.cursor(), state.editor.text()),
            (0, long.clone())
        );
    }
}

#[test]
fn the_help_at_80x24_scrolls_to_its_last_key_in_groups() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app();
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('?'),
        KeyModifiers::NONE,
    )));
    let top = render(&app, 80, 24);
    assert!(top.contains("Decide"), "{top}");
    assert!(top.contains("j/↓ more"), "{top}");
    assert!(
        !top.contains("show / hide the caption"),
        "the last key is below the fold: {top}"
    );
    for _ in 0..20 {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::PageDown,
            KeyModifiers::NONE,
        )));
    }
    let end = render(&app, 80, 24);
    assert!(end.contains("show / hide the caption"), "{end}");
    assert!(end.contains(" end · "), "{end}");
    // Any other key closes it, and the next ? opens it at the top.
    app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
    assert_eq!(app.help_scroll, 0);
}

#[test]
fn a_long_status_message_is_read_in_full_at_80x24() {
    let mut app = app();
    app.message = Some(
        "correction saved as your ✓; the original has no verdict (x rejects it) (u undoes, D shows it)".into(),
    );
    let text = render(&app, 80, 24);
    let flat: String = text.lines().rev().take(4).collect::<Vec<_>>().join("");
    assert!(flat.contains("D shows it)"), "{text}");
}

/// The app with the focused round's (Q2, the first undecided) first answer made `sentences`
/// sentences long.
fn app_with_long_answer(sentences: usize) -> App {
    let mut app = app();
    assert_eq!(app.focus_round, 1);
    let view = app.current.as_mut().unwrap();
    view.stored.sample.rounds[1].answers[0] = (1..=sentences)
        .map(|i| format!("Sentence {i} of a long answer about the nodule."))
        .collect::<Vec<_>>()
        .join(" ");
    app
}

#[test]
fn a_long_answer_is_never_cut_without_a_marker_and_scrolls_into_view() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app_with_long_answer(20);
    let text = render(&app, 80, 24);
    assert!(text.contains("more lines · PgDn"), "{text}");
    assert!(!text.contains("Sentence 20 "), "{text}");
    for _ in 0..6 {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::PageDown,
            KeyModifiers::NONE,
        )));
    }
    let text = render(&app, 80, 24);
    assert!(text.contains("Sentence 20 "), "scrolled to its end: {text}");
    assert!(text.contains("above · PgUp"), "{text}");
}

#[test]
fn the_zoom_view_shows_the_focused_answer_in_full() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = app_with_long_answer(6);
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('z'),
        KeyModifiers::NONE,
    )));
    assert!(app.zoomed);
    let text = render(&app, 80, 24);
    assert!(text.contains("Sentence 1 "), "{text}");
    let flat = text.replace('\n', " ");
    assert!(flat.contains("Sentence 6 of a long"), "{text}");
}

/// The curator's `--adjudicate` screen: beside each answer every reviewer's verdict with its
/// time, a ✗'s reason and a correction.
fn adjudicating_app() -> App {
    let mut app = app();
    app.reviewer = "lead".into();
    app.adjudicating = true;
    let review =
        |answer_id, reviewer: &str, accepted, reason: Option<&str>, correction: Option<&str>| {
            crate::store::AnswerReview {
                answer_id,
                reviewer: reviewer.into(),
                accepted,
                at: "2026-12-08T01:30:12.345Z".into(),
                reason: reason.map(str::to_string),
                correction: correction.map(str::to_string),
                by: (reviewer == "final").then(|| "lead".to_string()),
            }
        };
    let view = app.current.as_mut().unwrap();
    view.decisions.clear();
    view.others.insert(
        11,
        vec![
            review(
                11,
                "ana",
                true,
                None,
                Some("An axial contrast CT of the chest."),
            ),
            review(
                11,
                "ben",
                false,
                Some("not a CT: the window is an MRI's"),
                None,
            ),
        ],
    );
    view.others.insert(
        12,
        vec![
            review(12, "ana", false, Some("wrong body part"), None),
            review(12, "ben", true, None, None),
            review(12, "final", false, None, None),
        ],
    );
    app
}

#[test]
fn adjudication_shows_each_reviewer_s_verdict_reason_correction_and_time() {
    let app = adjudicating_app();
    for (width, height) in [(80, 24), (200, 60)] {
        let text = render(&app, width, height);
        for part in ["ana ✓ 12-08 01:30", "ben ✗ 12-08 01:30", "final (lead) ✗"] {
            assert!(text.contains(part), "{width}x{height}: {part}: {text}");
        }
        assert!(text.contains("why: wrong body part"), "{text}");
        insta::assert_snapshot!(format!("adjudication_{width}x{height}"), text);
    }
    // A reviewer's screen (not adjudicating, no disagreements filter) shows none of it.
    let mut blind = adjudicating_app();
    blind.adjudicating = false;
    let text = render(&blind, 200, 60);
    assert!(!text.contains("ben"), "{text}");
    assert!(!text.contains("why:"), "{text}");
}

#[test]
fn the_guidelines_open_over_the_screen_at_80x24() {
    let mut app = app();
    let rules = (1..=30)
        .map(|i| format!("{i}. Rule number {i}: reject an answer that guesses beyond the figure."))
        .collect::<Vec<_>>()
        .join("\n");
    app.update(Msg::Guidelines(Some(crate::store::Guidelines {
        version: 3,
        text: format!("# Reviewing figures\n\n{rules}\n\u{1b}]0;owned\u{7}"),
        stored_at: "2026-12-08T01:30:00.000Z".into(),
        stored_by: "lead".into(),
    })));
    let text = render(&app, 80, 24);
    assert!(
        text.contains("Guidelines · version 3 · 2026-12-08"),
        "{text}"
    );
    assert!(text.contains("more lines · j/k/PgDn scroll"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape sequence reaches the screen"
    );
    insta::assert_snapshot!("guidelines_80x24", text);
    for _ in 0..40 {
        key(&mut app, 'j');
    }
    let end = render(&app, 80, 24);
    assert!(
        end.contains("30. Rule number 30"),
        "scrolled to the end: {end}"
    );
    assert!(!end.contains("more lines"), "{end}");
}
