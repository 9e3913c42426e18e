//! Every review key as a pure state update: no terminal, no database.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Effect, ExportJob, Mode, Msg};
use super::keymap::Keymap;
use super::queue::{Filter, Queue};
use super::sample_view::SampleView;
use crate::data::{Round, Sample};
use crate::export::ExportFormat;
use crate::store::{CurrentDecision, DecisionKind, IndexEntry, NewDecision, StoredSample};

/// Sample `key` with `rounds` rounds of two answers; answer ids are key*100 + round*10 + answer.
fn stored(key: i64, rounds: usize) -> StoredSample {
    let mut sample = Sample {
        id: format!("s{key}"),
        caption: format!("caption {key}"),
        ..Default::default()
    };
    let mut round_ids = Vec::new();
    let mut answer_ids = Vec::new();
    for r in 0..rounds {
        sample.rounds.push(Round {
            question: format!("Q{r}?"),
            answers: vec![format!("A{r}.1"), format!("A{r}.2")],
        });
        round_ids.push(key * 100 + r as i64 * 10);
        answer_ids.push(vec![
            key * 100 + r as i64 * 10 + 1,
            key * 100 + r as i64 * 10 + 2,
        ]);
    }
    StoredSample {
        key,
        sample,
        round_ids,
        answer_ids,
        source: None,
    }
}

fn entry(key: i64, decided: bool) -> IndexEntry {
    IndexEntry {
        key,
        ext_id: format!("s{key}"),
        domains: vec!["ct_scan".into()],
        decided,
        flagged: false,
        disagreement: false,
        rounds: 2,
    }
}

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c))
}

fn view(key: i64, rounds: usize) -> SampleView {
    SampleView::new(stored(key, rounds), vec![], "ana", false)
}

/// An app on a 3-sample queue with sample 1 (2 rounds) loaded.
fn app() -> App {
    let queue = Queue::new(vec![entry(1, false), entry(2, false), entry(3, true)]);
    let mut app = App::new("ana".into(), Keymap::default(), queue, true, false);
    assert_eq!(app.start(), vec![Effect::Load(1)]);
    assert!(app.update(Msg::Loaded(Box::new(view(1, 2)))).is_empty());
    app
}

fn recorded(effects: &[Effect]) -> &NewDecision {
    match effects {
        [Effect::Record(j)] => j,
        other => panic!("expected one Record effect, got {other:?}"),
    }
}

fn decision(id: i64, j: &NewDecision) -> CurrentDecision {
    CurrentDecision {
        event_id: id,
        sample_key: j.sample_key,
        round_id: j.round_id,
        answer_id: j.answer_id,
        kind: j.kind,
        value: j.value.clone(),
    }
}

#[test]
fn accept_and_reject_record_the_focused_answer_and_move_focus_on() {
    let mut app = app();
    let effects = ch(&mut app, 'a');
    let j = recorded(&effects);
    assert_eq!(
        (j.kind, j.answer_id, j.round_id),
        (DecisionKind::Accept, Some(101), Some(100))
    );
    assert_eq!(j.shown_order, Some(vec![101, 102]));
    assert_eq!((app.focus_round, app.focus_answer), (0, 1));
    let effects = ch(&mut app, 'x');
    assert_eq!(recorded(&effects).kind, DecisionKind::Reject);
    assert_eq!(recorded(&effects).answer_id, Some(102));
    assert_eq!(
        (app.focus_round, app.focus_answer),
        (1, 0),
        "last answer of a round: next round"
    );
}

#[test]
fn prefer_tie_and_rate_are_round_decisions() {
    let mut app = app();
    let j = recorded(&ch(&mut app, '2')).clone();
    assert_eq!(
        (j.kind, j.value.as_deref(), j.answer_id),
        (DecisionKind::Prefer, Some("102"), None)
    );
    assert_eq!(
        (app.focus_round, app.focus_answer),
        (1, 0),
        "a preference decides the round: on to the next, as a and x move on"
    );
    let j = recorded(&ch(&mut app, '1')).clone();
    assert_eq!(j.value.as_deref(), Some("111"));
    assert_eq!(app.focus_round, 1, "the last round keeps the focus");
    assert_eq!(recorded(&ch(&mut app, '=')).kind, DecisionKind::Tie);
    assert!(ch(&mut app, 'r').is_empty());
    assert_eq!(app.mode, Mode::Rating);
    let j = recorded(&ch(&mut app, '4')).clone();
    assert_eq!(
        (j.kind, j.value.as_deref()),
        (DecisionKind::Rate, Some("4"))
    );
    assert_eq!(app.mode, Mode::Normal);
    ch(&mut app, 'r');
    assert!(ch(&mut app, '9').is_empty(), "not 1-5: cancelled");
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn prefer_uses_display_order_when_shuffled() {
    let queue = Queue::new(vec![entry(1, false)]);
    let mut app = App::new("ana".into(), Keymap::default(), queue, true, true);
    app.start();
    // Find a round shown swapped for this reviewer.
    let v = SampleView::new(stored(1, 8), vec![], "ana", true);
    let swapped = v
        .order
        .iter()
        .position(|o| o == &vec![1, 0])
        .expect("some round is swapped");
    app.update(Msg::Loaded(Box::new(v)));
    for _ in 0..swapped {
        ch(&mut app, 'j');
    }
    let j = recorded(&ch(&mut app, '1')).clone();
    let true_second = 100 + swapped as i64 * 10 + 2;
    assert_eq!(
        j.value,
        Some(true_second.to_string()),
        "answer 1 on screen is the stored answer 2"
    );
    assert_eq!(j.shown_order, Some(vec![true_second, true_second - 1]));
}

#[test]
fn flag_toggles_and_note_is_typed_then_saved() {
    let mut app = app();
    let j = recorded(&ch(&mut app, 'f')).clone();
    assert_eq!(
        (j.kind, j.value.as_deref()),
        (DecisionKind::Flag, Some("1"))
    );
    let flagged = decision(1, &j);
    app.update(Msg::Saved {
        key: 1,
        decisions: vec![flagged],
        at: "10:00:00".into(),
    });
    assert_eq!(
        recorded(&ch(&mut app, 'f')).value.as_deref(),
        Some("0"),
        "second f unflags"
    );

    // n: the note in a multi-line box, Enter a line break, Ctrl-S saves.
    assert!(ch(&mut app, 'n').is_empty());
    for c in "odd scan".chars() {
        ch(&mut app, c);
    }
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Enter);
    ch(&mut app, 'x');
    assert!(matches!(&app.mode, Mode::Note(state) if state.editor.text() == "odd sca\nx"));
    let j = recorded(&app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    ))))
    .clone();
    assert_eq!(
        (j.kind, j.value.as_deref()),
        (DecisionKind::Note, Some("odd sca\nx"))
    );
    // Esc on a changed note asks first; a second Esc discards it.
    ch(&mut app, 'n');
    ch(&mut app, '!');
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert!(
        matches!(app.mode, Mode::Note(_)),
        "a typed note is not lost to one Esc"
    );
    assert!(
        press(&mut app, KeyCode::Esc).is_empty(),
        "Esc again: discarded, nothing saved"
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn a_failed_save_stays_on_screen_until_a_save_succeeds() {
    let mut app = app();
    let j = recorded(&ch(&mut app, 'a')).clone();
    app.update(Msg::SaveFailed("database is locked".into()));
    assert_eq!(app.save_error.as_deref(), Some("database is locked"));
    ch(&mut app, 'j');
    assert!(app.save_error.is_some(), "moving on does not hide it");
    app.update(Msg::Saved {
        key: 1,
        decisions: vec![decision(1, &j)],
        at: "t".into(),
    });
    assert_eq!(app.save_error, None);
}

#[test]
fn a_note_is_kept_with_the_sample_it_was_started_on() {
    let mut app = app();
    ch(&mut app, 'n');
    ch(&mut app, 'x');
    // A background search result moves the queue while the reviewer types.
    app.update(Msg::SearchDone {
        query: "q".into(),
        keys: vec![2],
    });
    let j = recorded(&app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    ))))
    .clone();
    assert_eq!((j.sample_key, j.value.as_deref()), (1, Some("x")));
}

#[test]
fn undo_is_an_effect_and_its_result_updates_the_screen() {
    let mut app = app();
    assert_eq!(ch(&mut app, 'u'), vec![Effect::Undo]);
    assert!(app
        .update(Msg::Undone {
            key: None,
            decisions: vec![],
            at: "t".into(),
            what: None,
        })
        .is_empty());
    assert_eq!(app.message.as_deref(), Some("nothing to undo"));
    // An undo on another sample takes the reviewer there.
    assert_eq!(
        app.update(Msg::Undone {
            key: Some(3),
            decisions: vec![],
            at: "t".into(),
            what: Some("your ✓".into()),
        }),
        vec![Effect::Load(3)]
    );
    assert_eq!(
        app.message.as_deref(),
        Some("undone: your ✓ on s3 (U redoes)")
    );
}

#[test]
fn moving_between_rounds_answers_and_samples() {
    let mut app = app();
    ch(&mut app, 'j');
    assert_eq!(app.focus_round, 1);
    ch(&mut app, 'j');
    assert_eq!(app.focus_round, 1, "stays on the last round");
    press(&mut app, KeyCode::Up);
    assert_eq!(app.focus_round, 0);
    ch(&mut app, 'l');
    assert_eq!(app.focus_answer, 1);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus_answer, 0, "wraps");
    ch(&mut app, 'h');
    assert_eq!(app.focus_answer, 1);
    assert_eq!(ch(&mut app, ' '), vec![Effect::Load(2)]);
    assert_eq!(
        app.current, None,
        "the old sample is not shown while the next loads"
    );
    app.update(Msg::Loaded(Box::new(view(2, 1))));
    assert_eq!(press(&mut app, KeyCode::Enter), vec![Effect::Load(3)]);
    app.update(Msg::Loaded(Box::new(view(3, 1))));
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.message.as_deref(), Some("last sample in the queue"));
    assert_eq!(press(&mut app, KeyCode::Backspace), vec![Effect::Load(2)]);
}

#[test]
fn stale_load_results_are_ignored() {
    let mut app = app();
    ch(&mut app, ' ');
    app.update(Msg::Loaded(Box::new(view(1, 2))));
    assert_eq!(
        app.current, None,
        "sample 1 arrived after the reviewer moved to 2"
    );
}

#[test]
fn auto_advance_after_the_last_round_is_decided() {
    let mut app = app();
    let mut decisions = Vec::new();
    for (i, c) in ['a', 'x', 'a'].into_iter().enumerate() {
        let j = recorded(&ch(&mut app, c)).clone();
        decisions.push(decision(i as i64, &j));
        let effects = app.update(Msg::Saved {
            key: 1,
            decisions: decisions.clone(),
            at: "t".into(),
        });
        assert!(effects.is_empty(), "not decided yet after {c}");
    }
    let j = recorded(&ch(&mut app, 'x')).clone();
    decisions.push(decision(9, &j));
    let effects = app.update(Msg::Saved {
        key: 1,
        decisions: decisions.clone(),
        at: "t".into(),
    });
    assert_eq!(effects, vec![Effect::Load(2)]);
    assert_eq!(app.queue.reviewed(), 2);
}

#[test]
fn auto_advance_can_be_turned_off() {
    let mut app = app();
    app.auto_advance = false;
    let j = recorded(&ch(&mut app, '1')).clone();
    let d1 = decision(1, &j);
    ch(&mut app, 'j');
    let j2 = recorded(&ch(&mut app, '=')).clone();
    let effects = app.update(Msg::Saved {
        key: 1,
        decisions: vec![d1, decision(2, &j2)],
        at: "t".into(),
    });
    assert!(effects.is_empty());
    assert!(app.current.as_ref().unwrap().decided());
}

#[test]
fn goto_search_and_filter() {
    let mut app = app();
    ch(&mut app, 'g');
    for c in "s3".chars() {
        ch(&mut app, c);
    }
    // An id in the queue: straight there.
    assert_eq!(press(&mut app, KeyCode::Enter), vec![Effect::Load(3)]);
    // The store's answer for an id the queue does not hold.
    assert_eq!(
        app.update(Msg::Found {
            id: "s3".into(),
            key: Some(3)
        }),
        vec![Effect::Load(3)]
    );
    assert!(app
        .update(Msg::Found {
            id: "nope".into(),
            key: None
        })
        .is_empty());
    assert!(app.message.as_deref().unwrap().contains("nope"));

    ch(&mut app, '/');
    for c in "chest".chars() {
        ch(&mut app, c);
    }
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Effect::Search("chest".into())]
    );
    assert_eq!(
        app.update(Msg::SearchDone {
            query: "chest".into(),
            keys: vec![2]
        }),
        vec![Effect::Load(2)]
    );
    assert_eq!(app.queue.position(), (1, 1));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.queue.position().1, 3, "Esc clears the search");

    ch(&mut app, 'F');
    assert_eq!(app.queue.filter(), &Filter::Unreviewed);
    assert_eq!(app.queue.position().1, 2);
}

#[test]
fn help_opens_and_any_key_closes_it_without_acting() {
    let mut app = app();
    ch(&mut app, '?');
    assert_eq!(app.mode, Mode::Help);
    assert!(
        ch(&mut app, 'a').is_empty(),
        "the key that closes help does nothing else"
    );
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn quit_and_decisions_without_a_sample() {
    let mut app = App::new(
        "ana".into(),
        Keymap::default(),
        Queue::new(vec![]),
        true,
        false,
    );
    assert!(app.start().is_empty());
    assert!(ch(&mut app, 'a').is_empty());
    assert_eq!(app.message.as_deref(), Some("no sample on screen"));
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
    assert!(app.quitting);
}

#[test]
fn unanswered_round_cannot_be_judged() {
    let mut app = app();
    let mut v = view(1, 1);
    v.stored.sample.rounds[0].answers.clear();
    v.stored.answer_ids[0].clear();
    v.order[0].clear();
    app.current = Some(v);
    assert!(ch(&mut app, 'a').is_empty());
    assert!(ch(&mut app, '1').is_empty());
    assert!(app.message.as_deref().unwrap().contains("no answer"));
}

mod live_ranking {
    use std::collections::HashMap;

    use super::*;
    use crate::selector::Metrics;
    use crate::store::RankSignals;
    use crate::tui::app::SelectionPreview;
    use crate::tui::queue::Order;
    use crate::tui::trainer::{TrainOutcome, TrainerEvent};

    fn done(run_id: i64, signals: HashMap<i64, RankSignals>) -> Msg {
        Msg::Trainer(TrainerEvent::Done(Box::new(TrainOutcome {
            run_id,
            backend: "cpu".into(),
            human_pairs: 4,
            judge_pairs: 10,
            validation: Some(Metrics {
                pairs: 3,
                alignment_rate: 0.75,
                auc: 0.8,
                mean_rank: 0.3,
                map: 0.7,
            }),
            scored_answers: 12,
            signals,
            score_ranks: Default::default(),
            head_choice: None,
        })))
    }

    fn signals() -> HashMap<i64, RankSignals> {
        HashMap::from([
            (
                1,
                RankSignals {
                    score: Some(0.2),
                    margin: Some(0.5),
                    judge_conflicts: 0,
                },
            ),
            (
                2,
                RankSignals {
                    score: Some(0.9),
                    margin: Some(0.1),
                    judge_conflicts: 1,
                },
            ),
            (
                3,
                RankSignals {
                    score: Some(0.5),
                    margin: Some(0.3),
                    judge_conflicts: 0,
                },
            ),
        ])
    }

    #[test]
    fn a_trainer_that_falls_back_to_the_cpu_says_why() {
        let mut app = app();
        app.update(Msg::Trainer(TrainerEvent::Started {
            backend: "cpu".into(),
            notice: Some("backend wgpu: no Vulkan loader; training on the CPU instead".into()),
        }));
        assert_eq!(app.training.backend, "cpu");
        assert!(app
            .message
            .as_deref()
            .unwrap()
            .contains("training on the CPU instead"));
    }

    #[test]
    fn t_requests_training_and_a_second_request_is_queued_once() {
        let mut app = app();
        assert_eq!(ch(&mut app, 'T'), vec![Effect::Train]);
        app.update(Msg::Trainer(TrainerEvent::Started {
            backend: "cpu".into(),
            notice: None,
        }));
        assert!(app.training.running);
        assert_eq!(ch(&mut app, 'T'), vec![Effect::Train]);
        assert!(app.training.queued);
        assert!(app.message.as_deref().unwrap().contains("queued"));
        app.update(Msg::Trainer(TrainerEvent::Embedding { done: 3, total: 8 }));
        assert_eq!(app.training.status, "embedding new texts 3/8");
        app.update(Msg::Trainer(TrainerEvent::Progress {
            epoch: 2,
            epochs: 6,
            loss: 0.5,
            validation: None,
        }));
        assert_eq!((app.training.epoch, app.training.loss), (2, Some(0.5)));
        assert_eq!(press(&mut app, KeyCode::Esc), vec![Effect::CancelTraining]);
        app.update(Msg::Trainer(TrainerEvent::Cancelled));
        assert!(!app.training.running && !app.training.queued);
        assert!(
            press(&mut app, KeyCode::Esc).is_empty(),
            "nothing to cancel"
        );
    }

    #[test]
    fn training_starts_by_itself_after_n_decisions() {
        let mut app = app();
        app.train_after = 2;
        let j = recorded(&ch(&mut app, 'a')).clone();
        assert!(app
            .update(Msg::Saved {
                key: 1,
                decisions: vec![decision(1, &j)],
                at: "t".into()
            })
            .is_empty());
        let j2 = recorded(&ch(&mut app, 'a')).clone();
        let effects = app.update(Msg::Saved {
            key: 1,
            decisions: vec![decision(1, &j), decision(2, &j2)],
            at: "t".into(),
        });
        assert_eq!(effects, vec![Effect::Train]);
        assert_eq!(app.decisions_since_train, 0);
    }

    #[test]
    fn finished_run_reorders_but_keeps_the_sample_on_screen() {
        let mut app = app();
        ch(&mut app, 'o');
        assert_eq!(app.queue.order(), Order::ScoreHigh);
        assert!(app
            .message
            .as_deref()
            .unwrap()
            .contains("no selector scores yet"));
        let effects = app.update(done(1, signals()));
        assert_eq!(
            effects,
            vec![Effect::Refresh(1)],
            "new scores for the sample on screen"
        );
        assert_eq!(
            app.queue.current(),
            Some(1),
            "the sample on screen stays put"
        );
        assert_eq!(
            app.queue.position(),
            (3, 3),
            "sample 1 now ranks last by score"
        );
        assert_eq!(app.training.history, vec![0.75]);
        assert_eq!(app.training.last_run, Some(1));
        // The refreshed view brings the scores, and focus does not move.
        app.focus_round = 1;
        let mut refreshed = view(1, 2);
        refreshed.selector_scores.insert(101, 0.42);
        assert!(app.update(Msg::Refreshed(Box::new(refreshed))).is_empty());
        assert_eq!(
            app.current.as_ref().unwrap().selector_scores.get(&101),
            Some(&0.42)
        );
        assert_eq!(app.focus_round, 1);
        ch(&mut app, 'o');
        assert_eq!(app.queue.order(), Order::ScoreLow);
        ch(&mut app, 'o');
        assert_eq!(app.queue.order(), Order::Uncertainty);
        while app.queue.back() {}
        assert_eq!(
            app.queue.current(),
            Some(2),
            "the judge conflict comes first"
        );
    }

    #[test]
    fn preview_counts_what_the_top_share_keeps() {
        let mut app = app();
        app.top_percent = 40.0;
        ch(&mut app, 'p');
        assert_eq!(
            app.mode,
            Mode::Preview(SelectionPreview {
                top_percent: 40.0,
                ..Default::default()
            })
        );
        ch(&mut app, 'x');
        assert_eq!(app.mode, Mode::Normal, "any key closes");
        app.update(done(1, signals()));
        ch(&mut app, 'p');
        let Mode::Preview(p) = &app.mode else {
            panic!("preview open")
        };
        // 40% of 3 rounds to 1, as `vital export --select top:40%` does.
        assert_eq!((p.scored, p.kept_samples, p.dropped_samples), (3, 1, 2));
        assert_eq!((p.kept_rounds, p.dropped_rounds), (2, 4));
        assert_eq!(p.by_domain, vec![("ct_scan".to_string(), 1, 2)]);
    }

    #[test]
    fn d_marks_and_unmarks_a_demonstration() {
        let mut app = app();
        let j = recorded(&ch(&mut app, 'd')).clone();
        assert_eq!(
            (j.kind, j.value.as_deref()),
            (DecisionKind::Demo, Some("1"))
        );
        app.update(Msg::Saved {
            key: 1,
            decisions: vec![decision(1, &j)],
            at: "t".into(),
        });
        assert!(app.current.as_ref().unwrap().is_demo());
        assert_eq!(recorded(&ch(&mut app, 'd')).value.as_deref(), Some("0"));
    }
}

mod export_and_adjudication {
    use super::*;

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            ch(app, c);
        }
    }

    #[test]
    fn export_form_is_prefilled_validated_and_submitted() {
        let mut app = app();
        app.export_defaults = ["top:40%".into(), "llava".into(), "sel.json".into()];
        assert!(ch(&mut app, 'E').is_empty());
        let Mode::Export(form) = &app.mode else {
            panic!("form open")
        };
        assert_eq!(form.fields[0], "top:40%");
        // Edit the selection into something invalid: the form stays open with the reason.
        for _ in 0..3 {
            press(&mut app, KeyCode::Backspace);
        }
        type_text(&mut app, "x");
        assert!(press(&mut app, KeyCode::Enter).is_empty());
        let Mode::Export(form) = &app.mode else {
            panic!("still open")
        };
        assert!(
            form.error.as_deref().unwrap().contains("not a selection"),
            "{:?}",
            form.error
        );
        press(&mut app, KeyCode::Backspace);
        type_text(&mut app, "10%");
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Tab);
        type_text(&mut app, "l");
        let effects = press(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            vec![Effect::Export(ExportJob {
                select: "top:10%".parse().unwrap(),
                format: ExportFormat::Llava,
                out: "sel.jsonl".into()
            })]
        );
        assert_eq!(app.mode, Mode::Normal, "the reviewer keeps working");
        assert!(app.export_status.is_some());
        ch(&mut app, 'E');
        assert!(
            press(&mut app, KeyCode::Enter).is_empty(),
            "one export at a time"
        );
        press(&mut app, KeyCode::Esc);
        app.update(Msg::ExportProgress { done: 5, total: 10 });
        assert_eq!(app.export_status.as_deref(), Some("exporting 50%"));
        app.update(Msg::ExportDone(Ok("exported 3 samples to /tmp/x".into())));
        assert_eq!(app.export_status, None);
        assert_eq!(app.message.as_deref(), Some("exported 3 samples to /tmp/x"));
    }

    #[test]
    fn agreement_panel_and_final_decisions() {
        let mut app = app();
        assert_eq!(ch(&mut app, 'S'), vec![Effect::LoadAgreement]);
        app.update(Msg::Agreement(vec!["κ 0.5".into()]));
        assert_eq!(app.mode, Mode::Agreement(vec!["κ 0.5".into()]));
        ch(&mut app, 'q');
        assert_eq!(app.mode, Mode::Normal, "any key closes, q included");
        assert!(!app.quitting);
        ch(&mut app, 'l');
        assert!(
            ch(&mut app, 'A').is_empty(),
            "final decisions only while adjudicating"
        );
        assert!(app.message.as_deref().unwrap().contains("disagreements"));
        app.queue
            .set_filter(crate::tui::queue::Filter::Disagreements);
        app.current = Some(view(1, 2));
        app.focus_answer = 1;
        assert_eq!(
            ch(&mut app, 'A'),
            vec![Effect::FinalDecision {
                answer_id: 102,
                accepted: true
            }]
        );
        assert_eq!(
            ch(&mut app, 'X'),
            vec![Effect::FinalDecision {
                answer_id: 102,
                accepted: false
            }]
        );
    }
}

#[test]
fn a_late_agreement_panel_does_not_swallow_a_decision_key() {
    let mut app = app();
    assert_eq!(ch(&mut app, 'S'), vec![Effect::LoadAgreement]);
    // The reviewer keeps deciding before the panel arrives.
    assert_eq!(recorded(&ch(&mut app, 'a')).kind, DecisionKind::Accept);
    app.update(Msg::Agreement(vec!["κ".into()]));
    assert_eq!(
        app.mode,
        Mode::Normal,
        "not opened over the reviewer's work"
    );
    assert_eq!(
        recorded(&ch(&mut app, 'x')).kind,
        DecisionKind::Reject,
        "the next key still decides"
    );
    // Asked for and waited for: it opens.
    ch(&mut app, 'S');
    app.update(Msg::Agreement(vec!["κ".into()]));
    assert_eq!(app.mode, Mode::Agreement(vec!["κ".into()]));
}

#[test]
fn only_verdicts_and_preferences_count_towards_auto_training() {
    let mut app = app();
    app.train_after = 2;
    let flag = recorded(&ch(&mut app, 'f')).clone();
    app.update(Msg::Saved {
        key: 1,
        decisions: vec![decision(1, &flag)],
        at: "t".into(),
    });
    ch(&mut app, 'n');
    ch(&mut app, '?');
    let note = recorded(&app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    ))))
    .clone();
    app.update(Msg::Saved {
        key: 1,
        decisions: vec![decision(2, &note)],
        at: "t".into(),
    });
    assert_eq!(
        app.decisions_since_train, 0,
        "flags and notes teach the selector nothing"
    );
    let j = recorded(&ch(&mut app, '1')).clone();
    app.update(Msg::Saved {
        key: 1,
        decisions: vec![decision(3, &j)],
        at: "t".into(),
    });
    assert_eq!(app.decisions_since_train, 1);
}

#[test]
fn quitting_during_an_export_asks_once() {
    let mut app = app();
    app.export_status = Some("exporting 10%".into());
    assert!(ch(&mut app, 'q').is_empty());
    assert!(app
        .message
        .as_deref()
        .unwrap()
        .contains("export is running"));
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
}

/// The full-screen figure (`z`): every key of its view, and the decisions made from it.
mod full_screen_figure {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use image::DynamicImage;

    use super::*;
    use crate::tui::app::{ImageStatus, ImageUpdate};
    use crate::tui::figure_view::FigureView;

    fn figure() -> Arc<DynamicImage> {
        Arc::new(DynamicImage::new_luma8(64, 48))
    }

    /// The test app with sample 1's figure decoded.
    fn with_figure() -> (App, Arc<DynamicImage>) {
        let mut app = app();
        let img = figure();
        let effects = app.update(Msg::Image {
            key: 1,
            update: ImageUpdate::Decoded(Ok(img.clone())),
        });
        assert!(effects.is_empty());
        (app, img)
    }

    fn shows(app: &App, img: &Arc<DynamicImage>) -> bool {
        matches!(app.figure_on_screen(), ImageStatus::Ready(shown) if Arc::ptr_eq(&shown, img))
    }

    fn asked(effects: &[Effect]) -> FigureView {
        match effects {
            [Effect::AdjustFigure { key: 1, view, .. }] => *view,
            other => panic!("expected one AdjustFigure for sample 1, got {other:?}"),
        }
    }

    fn rendered(app: &mut App, view: FigureView) -> Arc<DynamicImage> {
        let image = Arc::new(DynamicImage::new_luma8(32, 24));
        let update = ImageUpdate::Adjusted {
            view,
            image: image.clone(),
        };
        assert!(app.update(Msg::Image { key: 1, update }).is_empty());
        image
    }

    #[test]
    fn z_shows_the_figure_full_screen_and_z_or_esc_return_at_the_same_answer() {
        let (mut app, img) = with_figure();
        ch(&mut app, 'a');
        assert_eq!((app.focus_round, app.focus_answer), (0, 1));
        assert!(
            ch(&mut app, 'z').is_empty(),
            "the fitted figure is the decoded one"
        );
        assert!(app.zoomed);
        assert!(shows(&app, &img));
        assert!(press(&mut app, KeyCode::Esc).is_empty());
        assert!(!app.zoomed);
        assert_eq!((app.focus_round, app.focus_answer), (0, 1));
        ch(&mut app, 'z');
        ch(&mut app, 'z');
        assert!(!app.zoomed, "z toggles back");
        assert!(shows(&app, &img), "the sheet shows the decoded figure");
    }

    #[test]
    fn zoom_steps_are_rendered_off_the_ui_thread_once_and_kept() {
        let (mut app, img) = with_figure();
        ch(&mut app, 'z');
        let two = asked(&ch(&mut app, '+'));
        assert_eq!(two.scale(), 2);
        assert!(app.zoom_pending());
        assert!(
            shows(&app, &img),
            "the last view stays until the new one is rendered"
        );
        let four = asked(&ch(&mut app, '+'));
        assert_eq!(four.scale(), 4);
        rendered(&mut app, two);
        assert!(
            shows(&app, &img),
            "a view no longer wanted is kept, not shown"
        );
        let shown_four = rendered(&mut app, four);
        assert!(shows(&app, &shown_four) && !app.zoom_pending());
        assert!(ch(&mut app, '-').is_empty(), "2× was rendered before");
        assert_eq!(app.figure_view(1).scale(), 2);
        assert!(ch(&mut app, '+').is_empty(), "and 4× too");
        assert!(shows(&app, &shown_four));
        assert_eq!(asked(&ch(&mut app, '+')).scale(), 8);
        assert!(ch(&mut app, '+').is_empty());
        assert_eq!(app.message.as_deref(), Some("8× is the closest view"));
        assert!(
            ch(&mut app, '0').is_empty(),
            "fitted: the decoded figure again"
        );
        assert_eq!(app.figure_view(1), FigureView::default());
        assert!(shows(&app, &img));
        assert!(ch(&mut app, '-').is_empty());
        assert_eq!(app.message.as_deref(), Some("the whole figure is shown"));
    }

    #[test]
    fn arrows_and_hjkl_pan_the_zoomed_figure_and_move_focus_on_the_sheet() {
        let (mut app, _) = with_figure();
        ch(&mut app, 'l');
        assert_eq!(app.focus_answer, 1, "on the sheet l is the next answer");
        ch(&mut app, 'z');
        ch(&mut app, 'h');
        assert_eq!(app.message.as_deref(), Some("zoom in (+) to pan"));
        assert_eq!(app.focus_answer, 1, "on the figure h pans");
        ch(&mut app, '+');
        let pans = [
            (KeyCode::Char('h'), (375, 500)),
            (KeyCode::Left, (250, 500)),
            (KeyCode::Char('l'), (375, 500)),
            (KeyCode::Right, (500, 500)),
            (KeyCode::Char('j'), (500, 625)),
            (KeyCode::Down, (500, 750)),
            (KeyCode::Char('k'), (500, 625)),
            (KeyCode::Up, (500, 500)),
        ];
        for (key, center) in pans {
            let view = asked(&press(&mut app, key));
            assert_eq!(view.center, center, "{key:?}");
            assert_eq!(app.figure_view(1).center, center);
        }
        assert_eq!((app.focus_round, app.focus_answer), (0, 1));
        asked(&press(&mut app, KeyCode::Up));
        asked(&press(&mut app, KeyCode::Up));
        assert!(press(&mut app, KeyCode::Up).is_empty());
        assert_eq!(app.message.as_deref(), Some("the edge of the figure"));
    }

    #[test]
    fn contrast_brightness_and_invert_change_the_view_of_this_sample_only() {
        let (mut app, _) = with_figure();
        ch(&mut app, 'z');
        assert_eq!(asked(&ch(&mut app, ']')).contrast, 1);
        assert!(
            ch(&mut app, '[').is_empty(),
            "plain again: nothing to render"
        );
        assert_eq!(asked(&ch(&mut app, '[')).contrast, -1);
        assert_eq!(asked(&ch(&mut app, '}')).brightness, 1);
        assert_eq!(asked(&ch(&mut app, '{')).brightness, 0);
        assert_eq!(asked(&ch(&mut app, '{')).brightness, -1);
        assert!(asked(&ch(&mut app, 'i')).invert);
        for _ in 0..10 {
            ch(&mut app, '[');
        }
        assert_eq!(app.figure_view(1).contrast, -FigureView::MAX_STEPS);
        assert_eq!(app.message.as_deref(), Some("least contrast"));
        let kept = app.figure_view(1);
        // Another sample starts plain; coming back finds this one as it was left.
        assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Effect::Load(2)]);
        app.update(Msg::Loaded(Box::new(view(2, 1))));
        assert!(app.zoomed, "the next sample opens full screen too");
        assert_eq!(app.figure_view(2), FigureView::default());
        assert_eq!(press(&mut app, KeyCode::Backspace), vec![Effect::Load(1)]);
        let effects = app.update(Msg::Loaded(Box::new(view(1, 2))));
        assert!(
            effects.is_empty(),
            "its render was asked for already: {effects:?}"
        );
        assert!(app.zoom_pending());
        let shown = rendered(&mut app, kept);
        assert!(shows(&app, &shown), "shown as it was left");
    }

    #[test]
    fn c_shows_the_caption_and_mention_over_the_figure() {
        let (mut app, _) = with_figure();
        ch(&mut app, 'z');
        assert!(ch(&mut app, 'c').is_empty());
        assert!(app.caption_overlay);
        ch(&mut app, 'c');
        assert!(!app.caption_overlay);
    }

    #[test]
    fn decision_keys_keep_working_on_the_full_screen_figure() {
        let (mut app, _) = with_figure();
        ch(&mut app, 'z');
        ch(&mut app, '+');
        let j = recorded(&ch(&mut app, 'a')).clone();
        assert_eq!((j.kind, j.answer_id), (DecisionKind::Accept, Some(101)));
        assert_eq!(recorded(&ch(&mut app, 'x')).kind, DecisionKind::Reject);
        assert_eq!(recorded(&ch(&mut app, '2')).kind, DecisionKind::Prefer);
        assert_eq!(recorded(&ch(&mut app, '=')).kind, DecisionKind::Tie);
        assert!(ch(&mut app, 'u') == vec![Effect::Undo]);
        assert!(app.zoomed);
        ch(&mut app, '?');
        assert_eq!(app.mode, Mode::Help);
        ch(&mut app, 'z');
        assert!(app.zoomed, "the key closing help does nothing else");
    }

    #[test]
    fn the_view_is_never_saved_and_figure_keys_do_nothing_on_the_sheet() {
        let (mut app, _) = with_figure();
        for c in ['+', '-', '0', '[', ']', '{', '}', 'i'] {
            assert!(ch(&mut app, c).is_empty(), "{c} on the sheet");
        }
        assert!(app.figure_views.is_empty());
        ch(&mut app, 'z');
        for c in ['+', 'h', ']', '}', 'i', 'c', '-', '0'] {
            let effects = ch(&mut app, c);
            assert!(
                effects
                    .iter()
                    .all(|e| matches!(e, Effect::AdjustFigure { .. })),
                "{c}: {effects:?}"
            );
        }
    }

    #[test]
    fn figure_keys_are_remappable() {
        let overrides = BTreeMap::from([
            ("zoom".to_string(), vec!["v".to_string()]),
            ("zoom_in".to_string(), vec!["w".to_string()]),
            ("zoom_close".to_string(), vec!["Q".to_string()]),
        ]);
        let mut app = app();
        app.keymap = Keymap::with_overrides(&overrides).unwrap();
        app.update(Msg::Image {
            key: 1,
            update: ImageUpdate::Decoded(Ok(figure())),
        });
        ch(&mut app, 'z');
        assert!(!app.zoomed, "z is no longer bound");
        ch(&mut app, 'v');
        assert!(app.zoomed);
        assert_eq!(asked(&ch(&mut app, 'w')).scale(), 2);
        press(&mut app, KeyCode::Esc);
        assert!(app.zoomed, "Esc was rebound away");
        ch(&mut app, 'Q');
        assert!(!app.zoomed);
    }

    #[test]
    fn a_figure_still_loading_is_rendered_once_it_arrives() {
        let mut app = app();
        ch(&mut app, 'z');
        ch(&mut app, '+');
        assert!(matches!(
            app.figure_on_screen(),
            ImageStatus::Placeholder(_)
        ));
        let effects = app.update(Msg::Image {
            key: 1,
            update: ImageUpdate::Decoded(Ok(figure())),
        });
        assert_eq!(asked(&effects).scale(), 2);
        assert!(matches!(app.figure_on_screen(), ImageStatus::Loading(_)));
    }
}

#[test]
fn decisions_kept_on_this_machine_show_on_screen_and_the_timer_retries_them_until_sent() {
    let mut app = app();
    app.update(Msg::Loaded(Box::new(view(1, 2))));
    assert_eq!(
        app.update(Msg::Tick),
        vec![Effect::Prefetch(vec![2, 3])],
        "nothing waits: the timer asks for nothing but the samples ahead"
    );
    let j = recorded(&ch(&mut app, 'a')).clone();
    app.update(Msg::SavedLocally {
        key: 1,
        decisions: vec![decision(-1, &j)],
        note: "offline — 1 decision kept on this machine".into(),
    });
    assert_eq!(
        app.journal_note.as_deref(),
        Some("offline — 1 decision kept on this machine")
    );
    assert_eq!(app.save_error, None, "kept is not failed");
    assert_eq!(
        app.current.as_ref().unwrap().decisions.len(),
        1,
        "the waiting decision is on screen"
    );
    assert_eq!(app.update(Msg::Tick), vec![Effect::RetryJournal]);
    app.update(Msg::Journal {
        note: None,
        refused: None,
    });
    assert_eq!(app.journal_note, None);
    assert!(app.update(Msg::Tick).is_empty());
}

#[test]
fn every_few_ticks_the_other_reviewers_disagreements_are_read_again() {
    let mut app = app();
    let looks: usize = (0..10)
        .map(|_| {
            app.update(Msg::Tick)
                .iter()
                .filter(|e| **e == Effect::LoadDisagreements)
                .count()
        })
        .sum();
    assert_eq!(looks, 2, "one look per 5 ticks");
    app.update(Msg::Disagreements([2].into()));
    assert!(app
        .queue
        .entries()
        .iter()
        .any(|e| e.key == 2 && e.disagreement));
    app.update(Msg::Disagreements(Default::default()));
    assert!(app.queue.entries().iter().all(|e| !e.disagreement));
}

/// An app on sample 1 whose one round has a single answer (every public release, qa50).
fn one_answer_app() -> App {
    let mut s = stored(1, 1);
    s.sample.rounds[0].answers.truncate(1);
    s.answer_ids[0].truncate(1);
    let queue = Queue::new(vec![entry(1, false)]);
    let mut app = App::new("ana".into(), Keymap::default(), queue, true, false);
    app.start();
    app.update(Msg::Loaded(Box::new(SampleView::new(
        s,
        vec![],
        "ana",
        false,
    ))));
    app
}

#[test]
fn tie_on_a_round_with_one_answer_records_nothing_and_says_why() {
    let mut app = one_answer_app();
    assert!(ch(&mut app, '=').is_empty());
    assert!(
        app.message.as_deref().unwrap().contains("one answer"),
        "{:?}",
        app.message
    );
}

#[test]
fn prefer_on_a_round_with_one_answer_records_nothing_and_says_why() {
    for key in ['1', '2'] {
        let mut app = one_answer_app();
        assert!(ch(&mut app, key).is_empty());
        let message = app.message.clone().unwrap();
        assert!(message.contains("one answer"), "{message}");
        assert!(!message.contains("no answer 1"), "{message}");
    }
    // ✓ and ✗ still work there.
    let mut app = one_answer_app();
    assert_eq!(recorded(&ch(&mut app, 'a')).kind, DecisionKind::Accept);
}

#[test]
fn a_rating_says_what_was_recorded_not_the_prompt() {
    let mut app = app();
    ch(&mut app, 'r');
    assert_eq!(recorded(&ch(&mut app, '4')).kind, DecisionKind::Rate);
    assert_eq!(app.message.as_deref(), Some("round rated 4 of 5"));
}

/// The figure as evidence: every decision says whether the figure was on screen.
mod figure_as_evidence {
    use std::sync::Arc;

    use image::DynamicImage;

    use super::*;
    use crate::tui::app::ImageUpdate;

    fn show_figure(app: &mut App) {
        app.update(Msg::Image {
            key: 1,
            update: ImageUpdate::Decoded(Ok(Arc::new(DynamicImage::new_luma8(8, 8)))),
        });
    }

    #[test]
    fn a_decision_records_whether_the_figure_was_on_screen() {
        let mut app = super::app();
        app.update(Msg::Image {
            key: 1,
            update: ImageUpdate::NotFound("18063892_F3.jpg".into()),
        });
        assert_eq!(
            app.figure_not_shown().as_deref(),
            Some("figure not shown (image not found: 18063892_F3.jpg)")
        );
        assert_eq!(recorded(&ch(&mut app, 'a')).figure_shown, Some(false));
        let mut app = super::app();
        show_figure(&mut app);
        assert_eq!(app.figure_not_shown(), None);
        assert_eq!(recorded(&ch(&mut app, 'x')).figure_shown, Some(true));
        // A decision that moves on to the next sample keeps the figure it was made on.
        let mut app = super::app();
        show_figure(&mut app);
        ch(&mut app, 'r');
        assert_eq!(recorded(&ch(&mut app, '3')).figure_shown, Some(true));
    }

    #[test]
    fn require_figure_refuses_judgments_without_the_figure_but_not_a_flag() {
        let mut app = super::app();
        app.require_figure = true;
        for key in ['a', 'x', '1', '=', 'r', 'e', 'R'] {
            assert!(ch(&mut app, key).is_empty(), "{key} is refused");
            assert_eq!(app.mode, Mode::Normal, "{key} opens nothing");
            let message = app.message.clone().unwrap();
            assert!(message.contains("figure not shown"), "{key}: {message}");
        }
        assert_eq!(recorded(&ch(&mut app, 'f')).kind, DecisionKind::Flag);
        show_figure(&mut app);
        assert_eq!(recorded(&ch(&mut app, 'a')).kind, DecisionKind::Accept);
    }
}

#[test]
fn the_training_panel_keeps_a_runs_validation_apart_from_the_held_out_figures() {
    use crate::selector::Metrics;
    use crate::tui::trainer::TrainerEvent;
    let mut app = app();
    let metrics = |pairs| Metrics {
        pairs,
        alignment_rate: 0.5,
        auc: 0.5,
        mean_rank: 0.5,
        map: 0.5,
    };
    app.training.validation = Some(metrics(40));
    app.update(Msg::Trainer(TrainerEvent::Started {
        backend: "cpu".into(),
        notice: None,
    }));
    app.update(Msg::Trainer(TrainerEvent::Progress {
        epoch: 1,
        epochs: 5,
        loss: 0.5,
        validation: Some(metrics(2)),
    }));
    let t = &app.training;
    assert_eq!(t.epoch_validation.as_ref().map(|m| m.pairs), Some(2));
    assert_eq!(
        t.validation.as_ref().map(|m| m.pairs),
        Some(40),
        "the held-out figures are the last finished run's, never an epoch's"
    );
}

#[test]
fn go_to_takes_a_part_of_an_id_when_it_names_one_sample() {
    let queue = Queue::new(vec![
        IndexEntry {
            ext_id: "18063892_F3".into(),
            ..entry(1, false)
        },
        IndexEntry {
            ext_id: "18063892_F4".into(),
            ..entry(2, false)
        },
        IndexEntry {
            ext_id: "20000001_F1".into(),
            ..entry(3, false)
        },
    ]);
    let mut app = App::new("ana".into(), Keymap::default(), queue, true, false);
    app.start();
    let go = |app: &mut App, text: &str| {
        ch(app, 'g');
        for c in text.chars() {
            ch(app, c);
        }
        press(app, KeyCode::Enter)
    };
    assert_eq!(go(&mut app, "20000001"), vec![Effect::Load(3)]);
    assert!(go(&mut app, "18063892").is_empty());
    let message = app.message.clone().unwrap();
    assert!(message.starts_with("2 samples have"), "{message}");
    assert_eq!(go(&mut app, "f4"), vec![Effect::Load(2)]);
    assert_eq!(
        go(&mut app, "nothing-like-it"),
        vec![Effect::Find("nothing-like-it".into())]
    );
}

mod guidelines {
    use super::*;

    fn version(v: i64, text: &str) -> crate::store::Guidelines {
        crate::store::Guidelines {
            version: v,
            text: text.into(),
            stored_at: "2026-12-08T01:30:00.000Z".into(),
            stored_by: "lead".into(),
        }
    }

    #[test]
    fn g_shows_the_guidelines_and_says_so_when_there_are_none() {
        let mut app = app();
        assert!(ch(&mut app, 'G').is_empty());
        assert_eq!(app.mode, Mode::Normal);
        assert!(
            app.message
                .as_deref()
                .unwrap()
                .contains("vital team guidelines"),
            "{:?}",
            app.message
        );
        app.guidelines = Some(version(1, "Reject guesses."));
        ch(&mut app, 'G');
        assert_eq!(app.mode, Mode::Guidelines);
        ch(&mut app, 'j');
        assert_eq!(
            (app.mode.clone(), app.guidelines_scroll),
            (Mode::Guidelines, 1)
        );
        // Any other key closes it and does nothing else: `a` decides nothing here.
        assert!(ch(&mut app, 'a').is_empty());
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.guidelines_scroll, 0);
    }

    #[test]
    fn a_new_version_opens_over_the_screen_and_the_same_one_does_not() {
        let mut app = app();
        app.update(Msg::Guidelines(Some(version(1, "Reject guesses."))));
        assert_eq!(app.mode, Mode::Guidelines);
        ch(&mut app, 'q');
        assert_eq!(app.mode, Mode::Normal);
        assert!(!app.quitting, "q closes the guidelines only");
        app.update(Msg::Guidelines(Some(version(1, "Reject guesses."))));
        assert_eq!(app.mode, Mode::Normal, "seen already");
        // While another pop-up is open the status line says so; G shows it.
        ch(&mut app, '?');
        app.update(Msg::Guidelines(Some(version(2, "Name the organ."))));
        assert_eq!(app.mode, Mode::Help);
        assert!(
            app.message
                .as_deref()
                .unwrap()
                .contains("version 2): G shows them"),
            "{:?}",
            app.message
        );
        press(&mut app, KeyCode::Esc);
        ch(&mut app, 'G');
        assert_eq!(app.mode, Mode::Guidelines);
        assert_eq!(app.guidelines.as_ref().unwrap().version, 2);
    }

    #[test]
    fn the_team_look_every_few_ticks_reads_the_guidelines() {
        let mut app = app();
        let looks: usize = (0..10)
            .map(|_| {
                app.update(Msg::Tick)
                    .iter()
                    .filter(|e| **e == Effect::LoadGuidelines)
                    .count()
            })
            .sum();
        assert_eq!(looks, 2);
    }
}

/// While the workspace answers, the timer asks once for the next samples to be read ahead (for a
/// dropped connection), again only when the queue moved on; not while decisions wait offline.
#[test]
fn the_next_samples_are_read_ahead_on_the_timer_once_and_not_while_offline() {
    let mut app = app();
    assert_eq!(app.update(Msg::Tick), vec![Effect::Prefetch(vec![2, 3])]);
    assert!(app.update(Msg::Tick).is_empty(), "asked once");
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Effect::Load(2)]);
    assert_eq!(app.update(Msg::Tick), vec![Effect::Prefetch(vec![3])]);
    assert_eq!(press(&mut app, KeyCode::Backspace), vec![Effect::Load(1)]);
    app.update(Msg::Loaded(Box::new(view(1, 2))));
    let j = recorded(&ch(&mut app, 'a')).clone();
    app.update(Msg::SavedLocally {
        key: 1,
        decisions: vec![decision(-1, &j)],
        note: "offline — 1 decision kept on this machine".into(),
    });
    assert_eq!(
        app.update(Msg::Tick),
        vec![Effect::RetryJournal],
        "offline: nothing is read"
    );
}
