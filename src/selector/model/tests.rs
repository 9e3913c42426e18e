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

/// The model as it was before the projection existed: its checkpoints must still load.
#[derive(Module, Debug)]
struct ModelWithoutProjection<B: Backend> {
    ids: Option<Embedding<B>>,
    no_image: Option<Param<Tensor<B, 1>>>,
    head: EmbeddingHead<B>,
}

#[test]
fn checkpoints_from_before_the_projection_still_load() {
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    let device = Default::default();
    let config = SelectorModelConfig::new()
        .with_text_dense(3)
        .with_precomputed_dim(2);
    let new = config.init::<B>(&device);
    let old = ModelWithoutProjection {
        ids: None,
        no_image: None,
        head: EmbeddingHeadConfig::new(5)
            .with_hidden(vec![128, 64])
            .with_seed(7)
            .init::<B>(&device),
    };
    let dir = tempfile::tempdir().unwrap();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    old.clone()
        .save_file(dir.path().join("old"), &recorder)
        .unwrap();
    let loaded = new
        .load_file(dir.path().join("old"), &recorder, &device)
        .unwrap();
    assert!(loaded.projection.is_none());
    let x = Tensor::<B, 2>::from_data(TensorData::new(vec![0.5f32; 10], [2, 5]), &device);
    assert_eq!(
        scores(loaded.head.forward(x.clone())),
        scores(old.head.forward(x))
    );
}

#[test]
fn the_projection_maps_all_but_the_raw_columns() {
    let device = Default::default();
    let config = SelectorModelConfig::new()
        .with_precomputed_dim(6)
        .with_precomputed_raw(Some(2))
        .with_precomputed_projection(Some(3))
        .with_hidden(vec![4]);
    assert_eq!(config.projection(), Some((2, 4, 3)));
    assert_eq!(config.mlp_input(), 5);
    let model = config.init::<B>(&device);
    let batch = FeatureBatch {
        rows: 2,
        precomputed_dim: 6,
        precomputed: (0..12).map(|v| v as f32 / 12.0).collect(),
        ..FeatureBatch::default()
    };
    let out = scores(model.forward(ModelInput::from_batch(&batch, &config, &device)));
    assert_eq!(out.len(), 2);
    assert_ne!(out[0], out[1]);
    // No projection asked: the columns go to the MLP as they are.
    let plain = SelectorModelConfig::new().with_precomputed_dim(6);
    assert_eq!(plain.projection(), None);
    assert_eq!(plain.mlp_input(), 6);
}
