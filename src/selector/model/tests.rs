use super::*;
use crate::selector::features::{
    featurize_batch, Featurizer, HashedFeaturizer, HashedFeaturizerConfig,
};
use burn::backend::NdArray;

type B = NdArray;

fn scores(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 scores")
}

#[test]
fn embedding_head_shapes_and_seeded_init() {
    let device = Default::default();
    let config = EmbeddingHeadConfig::new(8).with_hidden(vec![4, 3]);
    let a = config.init::<B>(&device);
    let b = config.init::<B>(&device);
    let x = Tensor::<B, 2>::from_data(
        TensorData::new((0..24).map(|v| v as f32 / 24.0).collect::<Vec<_>>(), [3, 8]),
        &device,
    );
    let (sa, sb) = (scores(a.forward(x.clone())), scores(b.forward(x)));
    assert_eq!(sa.len(), 3);
    assert_eq!(sa, sb, "same seed, same weights");
    assert_eq!(a.num_params(), 8 * 4 + 4 + 4 * 3 + 3 + 3 + 1);
}

#[test]
fn selector_model_uses_bags_dense_and_no_image_vector() {
    let device = Default::default();
    let featurizer = HashedFeaturizer::new(HashedFeaturizerConfig {
        buckets: 64,
        ..Default::default()
    });
    let layout = featurizer.layout().clone();
    let config = SelectorModelConfig::new()
        .with_id_rows(3 * layout.buckets)
        .with_text_dense(layout.image_flag.unwrap_or(layout.dense_dim))
        .with_image_stats(layout.image_stats)
        .with_hidden(vec![8]);
    let model = config.init::<B>(&device);
    let inputs = [
        crate::selector::features::tests::answer(1, "f", "What is seen?", "A mass."),
        crate::selector::features::tests::answer(
            2,
            "f",
            "What is seen?",
            "I'm sorry, I cannot tell.",
        ),
    ];
    let batch = featurize_batch(&featurizer, &inputs);
    let s = scores(model.forward(ModelInput::from_batch(&batch, &config, &device)));
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|v| v.is_finite()));
    assert_ne!(s[0], s[1]);
    // Row order does not change a row's score (bags are pooled per row).
    let swapped = batch.select(&[1, 0]);
    let t = scores(model.forward(ModelInput::from_batch(&swapped, &config, &device)));
    assert!((t[0] - s[1]).abs() < 1e-6 && (t[1] - s[0]).abs() < 1e-6);
}

#[test]
fn cpu_pooling_matches_the_burn_gather_path() {
    let device = Default::default();
    let featurizer = HashedFeaturizer::new(HashedFeaturizerConfig {
        buckets: 256,
        ..Default::default()
    });
    let layout = featurizer.layout().clone();
    let config = SelectorModelConfig::new()
        .with_id_rows(3 * layout.buckets)
        .with_text_dense(layout.image_flag.unwrap_or(layout.dense_dim))
        .with_image_stats(layout.image_stats)
        .with_hidden(vec![8]);
    let model = config.init::<B>(&device);
    let inputs: Vec<_> = (0..600)
        .map(|i| {
            let answer = if i % 3 == 0 {
                String::new()
            } else {
                format!("answer {i} text")
            };
            crate::selector::features::tests::answer(i, "f", "What is seen?", &answer)
        })
        .collect();
    let batch = featurize_batch(&featurizer, &inputs);
    let gathered = scores(model.forward(ModelInput::from_batch(&batch, &config, &device)));
    let (table, dim) = model.id_table().expect("has ids");
    let pooled = pool_bags_cpu(&batch, 3, &table, dim);
    let mut input = ModelInput::from_batch_without_bags(&batch, &config, &device);
    assert!(input.bags.is_empty());
    input.pooled = Some(Tensor::from_data(
        TensorData::new(pooled, [600, 3 * dim]),
        &device,
    ));
    let fast = scores(model.forward(input));
    for (a, b) in gathered.iter().zip(&fast) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn paper_head_preset() {
    let config = SelectorModelConfig::paper_embedding_head(1024);
    assert_eq!(config.mlp_input(), 1024);
    assert_eq!(config.hidden, vec![512, 512, 512]);
}
