use super::*;

pub(crate) fn answer(id: i64, figure: &str, question: &str, answer: &str) -> AnswerInput {
    AnswerInput {
        answer_id: id,
        figure_key: figure.to_string(),
        caption: format!(
            "Axial CT of the chest in {figure} shows a 3 cm mass in the right upper lobe (arrow)."
        ),
        mentions: vec!["The mass measured 3 cm and was biopsied.".to_string()],
        question: question.to_string(),
        answer: answer.to_string(),
        round_position: 1,
        image_path: None,
        figure_stats: Default::default(),
    }
}

fn signal(row: &FeatureRow, name: &str) -> f32 {
    let index = SIGNAL_NAMES
        .iter()
        .position(|n| *n == name)
        .expect("known signal");
    row.dense[index]
}

fn featurize(f: &HashedFeaturizer, input: &AnswerInput) -> FeatureRow {
    let mut row = FeatureRow::default();
    f.featurize(input, &mut row);
    row
}

#[test]
fn ids_are_deterministic_capped_and_field_separated() {
    let f = HashedFeaturizer::new(HashedFeaturizerConfig {
        buckets: 1000,
        ..Default::default()
    });
    let input = answer(1, "fig1", "mass", "mass");
    let a = featurize(&f, &input);
    let b = featurize(&f, &input);
    assert_eq!(a.field_ids, b.field_ids);
    assert_eq!(a.dense.len(), SIGNAL_NAMES.len());
    for (field, ids) in a.field_ids.iter().enumerate() {
        assert!(!ids.is_empty());
        assert!(ids.len() <= f.layout().field_caps[field]);
        let range = (field * 1000) as u32..((field + 1) * 1000) as u32;
        assert!(
            ids.iter().all(|id| range.contains(id)),
            "field {field}: {ids:?}"
        );
    }
    // Same word in question and answer lands in different buckets.
    assert_ne!(a.field_ids[0][0], a.field_ids[1][0]);
    // Context is capped (the caption has more words than the cap).
    assert_eq!(a.field_ids[2].len(), f.layout().field_caps[2]);
}

#[test]
fn grounded_answer_scores_higher_overlap_than_hedging_one() {
    let f = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let q = "What abnormality is seen in the right upper lobe?";
    let good = featurize(
        &f,
        &answer(
            1,
            "f",
            q,
            "A 3 cm mass is seen in the right upper lobe, marked by the arrow.",
        ),
    );
    let bad = featurize(
        &f,
        &answer(
            2,
            "f",
            q,
            "I'm sorry, it might possibly be something; consult a doctor.",
        ),
    );
    assert!(signal(&good, "question_in_answer") > signal(&bad, "question_in_answer"));
    assert!(signal(&good, "answer_in_context") > 0.5);
    assert_eq!(signal(&good, "number_unit_overlap"), 1.0);
    assert!(signal(&good, "image_words_log") > 0.0);
    assert_eq!(signal(&good, "refusal"), 0.0);
    assert_eq!(signal(&bad, "refusal"), 1.0);
    assert!(signal(&bad, "hedges_log") > signal(&good, "hedges_log"));
    assert_eq!(signal(&good, "has_image"), 0.0);
}

#[test]
fn yes_no_signals() {
    let f = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let yes = featurize(
        &f,
        &answer(1, "f", "Is there a mass?", "Yes, there is a mass."),
    );
    let open = featurize(&f, &answer(2, "f", "What is shown?", "Yes."));
    assert_eq!(signal(&yes, "yes_no_question"), 1.0);
    assert_eq!(signal(&yes, "yes_no_answered"), 1.0);
    assert_eq!(signal(&open, "yes_no_question"), 0.0);
    assert_eq!(signal(&open, "answer_starts_yes_no"), 1.0);
}

#[test]
fn context_memo_never_leaks_between_figures() {
    let memo = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let inputs = [
        answer(1, "figA", "q one", "a 3 cm mass"),
        answer(2, "figB", "q two", "a 3 cm mass"),
        answer(3, "figA", "q three", "a 3 cm mass"),
    ];
    for input in &inputs {
        // A fresh featurizer on a fresh thread has an empty memo.
        let fresh = std::thread::scope(|s| {
            s.spawn(|| {
                featurize(
                    &HashedFeaturizer::new(HashedFeaturizerConfig::default()),
                    input,
                )
            })
            .join()
            .expect("thread")
        });
        let memoised = featurize(&memo, input);
        assert_eq!(memoised.field_ids, fresh.field_ids);
        assert_eq!(memoised.dense, fresh.dense);
    }
    let a = featurize(&memo, &inputs[0]);
    let b = featurize(&memo, &inputs[1]);
    assert_ne!(a.field_ids[2], b.field_ids[2]);
}

#[test]
fn parallel_batch_matches_sequential_rows_and_select() {
    let f = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let inputs: Vec<AnswerInput> = (0..1500)
        .map(|i| {
            answer(
                i,
                &format!("fig{}", i / 4),
                &format!("question {i}?"),
                &format!("answer number {i}"),
            )
        })
        .collect();
    let batch = featurize_batch(&f, &inputs);
    assert_eq!(batch.rows, inputs.len());
    let cap = batch.field_caps[1];
    for &i in &[0usize, 777, 1499] {
        let row = featurize(&f, &inputs[i]);
        let len = batch.field_lens[1][i] as usize;
        assert_eq!(
            &batch.field_ids[1][i * cap..i * cap + len],
            row.field_ids[1].as_slice()
        );
        assert!(batch.field_ids[1][i * cap + len..(i + 1) * cap]
            .iter()
            .all(|&id| id == 0));
        assert_eq!(
            &batch.dense[i * batch.dense_dim..(i + 1) * batch.dense_dim],
            row.dense.as_slice()
        );
    }
    let picked = batch.select(&[1499, 0]);
    assert_eq!(picked.rows, 2);
    assert_eq!(picked.field_lens[0][1], batch.field_lens[0][0]);
    assert_eq!(
        &picked.dense[..picked.dense_dim],
        &batch.dense[1499 * batch.dense_dim..]
    );
}

#[test]
fn image_statistics_fill_the_image_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.png");
    image::RgbImage::from_pixel(40, 20, image::Rgb([200, 30, 30]))
        .save(&path)
        .expect("png");
    let f = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let mut input = answer(1, "f", "q", "a");
    input.image_path = Some(path);
    let row = featurize(&f, &input);
    assert_eq!(signal(&row, "has_image"), 1.0);
    assert!((signal(&row, "image_aspect_log") - 2f32.ln()).abs() < 1e-5);
    assert!(signal(&row, "image_colorfulness") > 0.2);
    input.image_path = Some(dir.path().join("missing.png"));
    let row = featurize(&f, &input);
    assert_eq!(signal(&row, "has_image"), 0.0);
    assert_eq!(signal(&row, "image_gray_mean"), 0.0);
}
