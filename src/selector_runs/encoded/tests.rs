use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::data::{Round, Sample};
use crate::embed::tests::FakeEncoder;
use crate::embed::{fill_cache, EncoderRef};
use crate::selector_runs::{self, RunSettings};
use crate::store::test_support::insert;
use crate::store::{DecisionKind, NewDecision, Workspace};

/// Eight figures, two rounds each, each round a good answer (✓) and a refusal (✗), plus a
/// third, undecided answer in the first round.
fn workspace_with_pairs() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    for f in 0..8 {
        let sample = Sample {
            id: format!("fig-{f}"),
            image: Some(format!("fig-{f}.png")),
            caption: format!("Figure {f}: a CT scan of the chest."),
            mentions: vec![format!("Figure {f} shows a nodule.")],
            rounds: vec![
                Round {
                    question: format!("What does figure {f} show?"),
                    answers: vec![
                        format!("A nodule in the chest, number {f}."),
                        "I cannot tell.".into(),
                        "Maybe something.".into(),
                    ],
                },
                Round {
                    question: "Which modality is it?".into(),
                    answers: vec!["A CT scan.".into(), "I cannot tell.".into()],
                },
            ],
            ..Default::default()
        };
        let key = insert(&ws, &sample);
        let stored = ws.load_sample(key).unwrap().unwrap();
        for (r, answers) in stored.answer_ids.iter().enumerate() {
            for (a, &answer) in answers.iter().take(2).enumerate() {
                let kind = [DecisionKind::Accept, DecisionKind::Reject][a];
                let j = NewDecision {
                    sample_key: key,
                    round_id: Some(stored.round_ids[r]),
                    answer_id: Some(answer),
                    kind,
                    value: None,
                    shown_order: None,
                    figure_shown: None,
                };
                ws.record("clinician", &j).unwrap();
            }
        }
    }
    (dir, ws)
}

fn encoder_settings(folder: PathBuf) -> RunSettings {
    let mut settings = RunSettings::from_config(&crate::config::Config::defaults().selector);
    settings.validation_fraction = 0.25;
    settings.encoder = Some(EncoderRef {
        identity: "fake-encoder".into(),
        folder,
        dim: 4,
        images: false,
    });
    settings
}

#[test]
fn an_encoder_run_trains_scores_and_evaluates_on_cached_vectors() {
    let (dir, mut ws) = workspace_with_pairs();
    let mut settings = encoder_settings(dir.path().join("no-such-folder"));
    // The full model (projection, built-in features), as many clinician pairs would train.
    settings.head = selector_runs::Head::Full;
    let cancel = AtomicBool::new(false);

    // Nothing cached yet: a clear error naming the command that fills the cache.
    let err = selector_runs::train(&ws, &settings, &mut |_| {}, &cancel).unwrap_err();
    assert!(format!("{err:#}").contains("vital embed"), "{err:#}");

    fill_cache(&ws, &mut FakeEncoder::new(), 8, &mut |_, _| {}, &cancel).unwrap();
    let mut epochs_seen = 0;
    let (report, selector) = selector_runs::train(
        &ws,
        &settings,
        &mut |p| epochs_seen = epochs_seen.max(p.epoch),
        &cancel,
    )
    .unwrap();
    assert_eq!(report.settings.encoder, settings.encoder);
    assert_eq!(report.settings.head, selector_runs::Head::Full);
    assert!(
        (1..super::MAX_EPOCHS).contains(&epochs_seen),
        "{epochs_seen}"
    );
    assert_eq!(
        selector.meta().model.precomputed_projection,
        Some(super::PROJECTION)
    );
    assert!(selector.meta().precomputed_norm.is_some());

    let (run_id, reloaded_report, reloaded) = selector_runs::load_run(&ws, None).unwrap();
    let (answers, samples) = selector_runs::score(
        &mut ws,
        run_id,
        &reloaded,
        None,
        selector_runs::SampleScore::MeanBest,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    assert_eq!((answers, samples), (8 * 5, 8));
    let eval = selector_runs::evaluate(&ws, run_id, &reloaded_report, &reloaded, None).unwrap();
    assert!(eval.selector.pairs > 0);

    // The paper's head reads the same cache (question, context and answer vectors concatenated).
    let mut paper = settings.clone();
    paper.paper_head = true;
    let (report, selector) = selector_runs::train(&ws, &paper, &mut |_| {}, &cancel).unwrap();
    assert_eq!(selector.meta().model.precomputed_dim, 12);
    assert!(report.settings.paper_head);
}

#[test]
fn a_changed_encoder_folder_is_reported_instead_of_mixing_vectors() {
    let (dir, ws) = workspace_with_pairs();
    let folder = dir.path().join("encoder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("config.json"), "{}").unwrap();
    std::fs::write(folder.join("model.safetensors"), b"v1").unwrap();
    let mut settings = encoder_settings(folder.clone());
    let mut encoder = FakeEncoder::new();
    encoder.identity = crate::embed::folder_identity(&folder).unwrap();
    settings.encoder.as_mut().unwrap().identity = encoder.identity.clone();
    let cancel = AtomicBool::new(false);
    fill_cache(&ws, &mut encoder, 8, &mut |_, _| {}, &cancel).unwrap();
    let (report, selector) = selector_runs::train(&ws, &settings, &mut |_| {}, &cancel).unwrap();

    std::fs::write(folder.join("model.safetensors"), b"v2").unwrap();
    let err = selector_runs::evaluate(&ws, report.run_id, &report, &selector, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("changed since this run was trained"),
        "{err:#}"
    );
}

#[test]
fn a_run_cannot_read_both_an_embeddings_file_and_an_encoder() {
    let (dir, ws) = workspace_with_pairs();
    let mut settings = encoder_settings(dir.path().join("none"));
    settings.embeddings = Some(dir.path().join("e.npy"));
    let err =
        selector_runs::train(&ws, &settings, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains("not both"), "{err:#}");
}

#[test]
fn auto_chooses_the_head_by_validation_and_records_every_candidates_figures() {
    let (dir, ws) = workspace_with_pairs();
    let settings = encoder_settings(dir.path().join("no-such-folder"));
    assert_eq!(settings.head, selector_runs::Head::Auto);
    let cancel = AtomicBool::new(false);
    fill_cache(&ws, &mut FakeEncoder::new(), 8, &mut |_, _| {}, &cancel).unwrap();
    let (report, _) = selector_runs::train(&ws, &settings, &mut |_| {}, &cancel).unwrap();
    let choice = report.head_choice.clone().expect("auto records its choice");
    assert_eq!(choice.measured_on, "clinician");
    assert_eq!(choice.folds, selector_runs::FOLDS);
    let heads: Vec<&str> = choice.candidates.iter().map(|c| c.head.as_str()).collect();
    assert_eq!(
        heads,
        ["signals", "linear", "full", "signal-0", "signal-1", "signal-2", "signal-3"]
    );
    // The record names the head that trained. The fake encoder's cos(question, answer) orders
    // these pairs below chance (1 of 12), so the base is the head without that prior; on 12
    // pairs no candidate orders enough more right than it beyond chance, so it stays.
    assert_eq!(report.settings.head.to_string(), choice.chosen);
    assert_eq!(
        report.settings.head,
        selector_runs::Head::Linear,
        "{choice:?}"
    );
    for c in &choice.candidates {
        // The 6 training figures' 12 clinician pairs, each validated once.
        assert_eq!(c.pairs, 12, "{choice:?}");
    }
    // A run reloads the record with the choice (the figures to JSON's precision).
    let (_, reloaded, _) = selector_runs::load_run(&ws, None).unwrap();
    let reloaded = reloaded.head_choice.unwrap();
    assert_eq!(reloaded.chosen, choice.chosen);
    for (a, b) in reloaded.candidates.iter().zip(&choice.candidates) {
        assert_eq!((&a.head, a.pairs), (&b.head, b.pairs));
        assert!((a.alignment_rate - b.alignment_rate).abs() < 1e-9);
        assert!((a.auc - b.auc).abs() < 1e-9);
    }
    assert_eq!(choice.training_pairs, 12);
    assert_eq!(choice.reused_from_run, None);

    // The review screen's next run reuses that choice while the pairs have not grown by half,
    // and says so in its record; with half again as many pairs it measures again.
    let earlier = selector_runs::EarlierChoice::measured_by(&report).expect("a measured choice");
    assert_eq!(
        (earlier.run_id, earlier.head),
        (report.run_id, report.settings.head)
    );
    let (reused, _) =
        selector_runs::train_reusing(&ws, &settings, Some(earlier), &mut |_| {}, &cancel).unwrap();
    let again = reused.head_choice.clone().unwrap();
    assert_eq!(again.reused_from_run, Some(report.run_id));
    assert!(again.candidates.is_empty() && again.folds == 0, "{again:?}");
    assert_eq!(reused.settings.head, report.settings.head);
    assert_eq!(selector_runs::EarlierChoice::measured_by(&reused), None);
    let grown = selector_runs::EarlierChoice {
        training_pairs: 8,
        ..earlier
    };
    let (measured, _) =
        selector_runs::train_reusing(&ws, &settings, Some(grown), &mut |_| {}, &cancel).unwrap();
    let measured = measured.head_choice.unwrap();
    assert_eq!(measured.reused_from_run, None);
    assert_eq!(measured.folds, selector_runs::FOLDS);
}

#[test]
fn the_signals_head_trains_from_the_encoders_cosine_and_a_zero_shot_signal_is_that_signal() {
    let (dir, mut ws) = workspace_with_pairs();
    let mut settings = encoder_settings(dir.path().join("no-such-folder"));
    settings.head = selector_runs::Head::Signals;
    let cancel = AtomicBool::new(false);
    fill_cache(&ws, &mut FakeEncoder::new(), 8, &mut |_, _| {}, &cancel).unwrap();
    let (report, selector) = selector_runs::train(&ws, &settings, &mut |_| {}, &cancel).unwrap();
    assert_eq!(report.settings.head, selector_runs::Head::Signals);
    assert_eq!(report.head_choice, None, "a head named is not chosen");
    let model = &selector.meta().model;
    assert_eq!(model.prior_column, Some(0));
    assert!(model.hidden.is_empty() && selector.meta().features.is_none());
    assert_eq!(
        model.precomputed_dim,
        crate::selector::encoder_features::SIMILARITIES + 1
    );
    // Scored and evaluated from the record, on the same four signal columns.
    let (run_id, reloaded_report, reloaded) = selector_runs::load_run(&ws, None).unwrap();
    assert_eq!(reloaded_report.settings.head, selector_runs::Head::Signals);
    let (answers, _) = selector_runs::score(
        &mut ws,
        run_id,
        &reloaded,
        None,
        selector_runs::SampleScore::MeanBest,
        &mut |_| {},
        &cancel,
    )
    .unwrap();
    assert!(answers > 0);

    // `signal-3`: ln(1 + answer words) as it is, untrained: longer answers score higher.
    settings.head = "signal-3".parse().unwrap();
    let (_, selector) = selector_runs::train(&ws, &settings, &mut |_| {}, &cancel).unwrap();
    assert_eq!(selector.meta().model.prior_column, Some(3));
    let ids = ws.human_training_pairs().unwrap();
    let answer_ids = ids.iter().flat_map(|&(w, l)| [w, l]).collect();
    let index = selector_runs::answer_inputs_for(&ws, &answer_ids).unwrap();
    let table = crate::selector_runs::encoded::table_from_cache(
        &ws,
        settings.encoder.as_ref().unwrap(),
        &index.inputs,
        crate::selector::EncoderInputs::Signals,
    )
    .unwrap();
    let scores = selector.score_with(&index.inputs, Some(&table)).unwrap();
    let words = |i: usize| index.inputs[i].answer.split_whitespace().count();
    for i in 0..index.inputs.len() {
        for j in 0..index.inputs.len() {
            if words(i) > words(j) {
                assert!(scores[i] > scores[j], "{i} {j}");
            }
        }
    }
}
