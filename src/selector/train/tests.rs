use std::sync::atomic::AtomicBool;

use burn::backend::{Autodiff, NdArray};

use super::*;
use crate::selector::synthetic;

type Ad = Autodiff<NdArray>;

/// Small and fast: a few hundred pairs, seconds on two cores.
fn small_config() -> TrainConfig {
    TrainConfig::new()
        .with_epochs(4)
        .with_batch_size(32)
        .with_lr(3e-3)
        .with_features(Some(HashedFeaturizerConfig {
            buckets: 1 << 12,
            ..Default::default()
        }))
        .with_model(
            SelectorModelConfig::new()
                .with_hidden(vec![32, 16])
                .with_embed_dim(8),
        )
}

fn run(
    answers: &[AnswerInput],
    pairs: &[PreferencePair],
    config: &TrainConfig,
) -> (TrainedSelector, Vec<TrainProgress>) {
    let mut reports = Vec::new();
    let data = TrainData {
        answers,
        pairs,
        embeddings: None,
    };
    let trained = train::<Ad>(
        data,
        config,
        &Default::default(),
        &mut |p| reports.push(p),
        &AtomicBool::new(false),
    )
    .expect("trains");
    (trained, reports)
}

#[test]
fn learns_to_rank_grounded_over_hedging_answers_on_held_out_figures() {
    let (answers, pairs) = synthetic::dataset(120, 3, 4, 7);
    let (trained, reports) = run(&answers, &pairs, &small_config());
    let val = trained.meta().validation.expect("validation split exists");
    assert!(val.pairs > 0);
    assert!(val.alignment_rate > 0.8, "validation {val:?}");
    // Figures never seen in training (another seed): still ranked well.
    let (fresh_answers, fresh_pairs) = synthetic::dataset(40, 3, 1, 99);
    let fresh = trained
        .evaluate(&fresh_answers, &fresh_pairs, None)
        .expect("evaluates");
    assert!(
        fresh.alignment_rate > 0.8 && fresh.auc > 0.8,
        "fresh {fresh:?}"
    );
    // Progress: every batch, plus one validation report per epoch.
    let last = reports.last().expect("reports");
    assert_eq!((last.epoch, last.epochs), (4, 4));
    assert_eq!(reports.iter().filter(|r| r.val.is_some()).count(), 4);
    assert!(reports
        .iter()
        .all(|r| r.loss.is_finite() && r.batch <= r.batches));
}

#[test]
fn save_load_reproduces_scores_and_training_is_seeded() {
    let (answers, pairs) = synthetic::dataset(30, 2, 3, 3);
    let config = small_config().with_epochs(1).with_loss(PairLoss::Logistic);
    let (a, _) = run(&answers, &pairs, &config);
    let (b, _) = run(&answers, &pairs, &config);
    let scores = a.score(&answers).expect("scores");
    // Same seed, same model — up to float summation order in burn's multi-threaded kernels.
    let again = b.score(&answers).expect("scores");
    assert!(
        scores.iter().zip(&again).all(|(x, y)| (x - y).abs() < 1e-4),
        "same seed, same model"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    a.save(dir.path()).expect("saves");
    assert!(dir.path().join("selector.json").exists() && dir.path().join("model.mpk").exists());
    let loaded = TrainedSelector::load(dir.path()).expect("loads");
    assert_eq!(loaded.score(&answers).expect("scores"), scores);
    assert_eq!(loaded.meta().norm, a.meta().norm);
    let (c, _) = run(&answers, &pairs, &config.clone().with_seed(8));
    let other = c.score(&answers).expect("scores");
    assert!(
        scores.iter().zip(&other).any(|(x, y)| (x - y).abs() > 1e-3),
        "another seed, another model"
    );
}

#[test]
fn figure_split_never_shares_a_figure() {
    let figures = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"];
    let (train, val) = split_by_figure(&figures, 0.3, 1);
    assert_eq!(train.len() + val.len(), figures.len());
    assert!(!val.is_empty());
    for &v in &val {
        assert!(train.iter().all(|&t| figures[t] != figures[v]));
    }
    assert_eq!(split_by_figure(&figures, 0.3, 1), (train, val));
    let (all, none) = split_by_figure(&["x", "x"], 0.5, 1);
    assert_eq!(
        (all.len(), none.len()),
        (2, 0),
        "one figure cannot be split"
    );
}

#[test]
fn pair_loss_weights_and_normalises() {
    let device = Default::default();
    let diff =
        Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.0f32, 2.0, -1.0], [3]), &device);
    // Hinge margin 1: [1, 0, 2]; weights [100, 1, 1] → (100 + 0 + 2) / 102.
    let loss = pair_loss(
        diff.clone(),
        vec![100.0, 1.0, 1.0],
        PairLoss::Hinge,
        1.0,
        &device,
    );
    let value = loss.into_data().to_vec::<f32>().expect("f32")[0];
    assert!((value - 102.0 / 102.0).abs() < 1e-6, "{value}");
    let loss = pair_loss(
        diff,
        vec![1.0, 1.0, 100.0],
        PairLoss::Logistic,
        1.0,
        &device,
    );
    let value = loss.into_data().to_vec::<f32>().expect("f32")[0];
    let expected =
        (2f32.ln() + (1.0 + (-2f32).exp()).ln() + 100.0 * (1.0 + 1f32.exp()).ln()) / 102.0;
    assert!((value - expected).abs() < 1e-5, "{value} vs {expected}");
}

#[test]
fn the_papers_mean_loss_divides_the_weighted_sum_by_the_number_of_pairs() {
    let device = Default::default();
    let diff =
        Tensor::<NdArray, 1>::from_data(TensorData::new(vec![0.0f32, 2.0, -1.0], [3]), &device);
    // Hinge margin 1: [1, 0, 2]; weights [100, 1, 1] → (100 + 0 + 2) / 3.
    let loss = super::pair_loss_normalised(
        diff,
        vec![100.0, 1.0, 1.0],
        (PairLoss::Hinge, 1.0),
        true,
        &device,
    );
    let value = loss.into_data().to_vec::<f32>().expect("f32")[0];
    assert!((value - 102.0 / 3.0).abs() < 1e-4, "{value}");
}

#[test]
fn cancel_flag_stops_between_batches() {
    let (answers, pairs) = synthetic::dataset(10, 2, 2, 1);
    let cancel = AtomicBool::new(true);
    let data = TrainData {
        answers: &answers,
        pairs: &pairs,
        embeddings: None,
    };
    let err = train::<Ad>(
        data,
        &small_config(),
        &Default::default(),
        &mut |_| {},
        &cancel,
    )
    .expect_err("cancelled");
    assert!(err.downcast_ref::<Cancelled>().is_some());
}

#[test]
fn unknown_answer_id_is_reported() {
    let (answers, _) = synthetic::dataset(2, 1, 1, 1);
    let pairs = [PreferencePair {
        winner: 0,
        loser: 424242,
        source: PairSource::Judge,
    }];
    let data = TrainData {
        answers: &answers,
        pairs: &pairs,
        embeddings: None,
    };
    let err = train::<Ad>(
        data,
        &small_config(),
        &Default::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect_err("unknown id");
    assert!(err.to_string().contains("424242"), "{err}");
}

#[test]
fn paper_head_learns_from_precomputed_embeddings() {
    let (answers, pairs) = synthetic::dataset(60, 2, 3, 5);
    // A fake encoder: good answers (winners) lean along axis 0, plus per-answer noise.
    let winners: std::collections::HashSet<i64> = pairs.iter().map(|p| p.winner).collect();
    let dim = 8;
    let mut rng = SplitMix64::new(11);
    let ids: Vec<i64> = answers.iter().map(|a| a.answer_id).collect();
    let data: Vec<f32> = ids
        .iter()
        .flat_map(|id| {
            let bump = if winners.contains(id) { 1.0 } else { -1.0 };
            (0..dim)
                .map(|d| if d == 0 { bump } else { 0.0 } + rng.normal(0.5))
                .collect::<Vec<_>>()
        })
        .collect();
    let table = EmbeddingTable::new(ids, dim, data).expect("table");
    let config = small_config()
        .with_features(None)
        .with_model(SelectorModelConfig::paper_embedding_head(dim).with_hidden(vec![16, 16, 16]));
    let train_data = TrainData {
        answers: &answers,
        pairs: &pairs,
        embeddings: Some(&table),
    };
    let trained = train::<Ad>(
        train_data,
        &config,
        &Default::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .expect("trains");
    let metrics = trained
        .evaluate(&answers, &pairs, Some(&table))
        .expect("evaluates");
    assert!(metrics.alignment_rate > 0.9, "{metrics:?}");
    let err = trained.score(&answers).expect_err("needs embeddings");
    assert!(err.to_string().contains("precomputed embeddings"), "{err}");
}

/// The few-pairs model on a task where one signal separates the answers and the prior (column
/// 0, a zero-shot score) is barely better than a coin: 10 clinician pairs teach it the signal,
/// and it ranks 200 held-out pairs right.
#[test]
fn ten_pairs_teach_the_signals_head_a_feature_that_separates_the_answers() {
    let mut rng = crate::stable::SplitMix64::new(5);
    let (mut answers, mut rows) = (Vec::new(), Vec::new());
    let mut pairs = Vec::new();
    for i in 0..210i64 {
        for (side, id) in [(1.0f32, 2 * i), (-1.0, 2 * i + 1)] {
            answers.push(AnswerInput {
                answer_id: id,
                figure_key: format!("f{i}"),
                caption: String::new(),
                mentions: Vec::new(),
                question: "q".into(),
                answer: "a".into(),
                round_position: 0,
                image_path: None,
                figure_stats: Default::default(),
            });
            // [prior: noise, the separating signal, two noise columns]
            rows.extend([
                side * 0.01 + rng.uniform(0.05),
                side * 0.3 + rng.uniform(0.2),
                rng.uniform(1.0),
                rng.uniform(1.0),
            ]);
        }
        pairs.push(PreferencePair {
            winner: 2 * i,
            loser: 2 * i + 1,
            source: PairSource::Human,
        });
    }
    let ids: Vec<i64> = answers.iter().map(|a| a.answer_id).collect();
    let table = EmbeddingTable::new(ids, 4, rows).unwrap();
    let config = TrainConfig::new()
        .with_features(None)
        .with_model(SelectorModelConfig::signals_head())
        .with_optimizer(
            AdamConfig::new()
                .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(1e-2))),
        )
        .with_loss(PairLoss::Logistic)
        .with_epochs(200)
        .with_batch_size(10)
        .with_lr(5e-2)
        .with_validation_share(0.0);
    let data = TrainData {
        answers: &answers,
        pairs: &pairs[..10],
        embeddings: Some(&table),
    };
    let trained = train::<Ad>(
        data,
        &config,
        &Default::default(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let held_out = trained
        .evaluate(&answers, &pairs[10..], Some(&table))
        .unwrap();
    assert_eq!(held_out.pairs, 200);
    assert!(held_out.alignment_rate >= 0.95, "{held_out:?}");
    // The prior alone (column 0) is little better than a coin on the same pairs.
    let prior_right = pairs[10..]
        .iter()
        .filter(|p| table.get(p.winner).unwrap()[0] > table.get(p.loser).unwrap()[0])
        .count();
    assert!(prior_right < 150, "{prior_right} of 200");
}
