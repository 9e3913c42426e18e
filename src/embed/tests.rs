use super::*;
use crate::store::test_support::workspace_with_rounds;

/// A deterministic stand-in for a model: each text's vector comes from its bytes; it can be
/// told to fail at a given call, like a run killed midway.
pub(crate) struct FakeEncoder {
    pub identity: String,
    pub calls: usize,
    pub embedded: Vec<String>,
    pub fail_at_call: Option<usize>,
}

impl FakeEncoder {
    pub(crate) fn new() -> Self {
        FakeEncoder {
            identity: "fake-encoder".into(),
            calls: 0,
            embedded: Vec::new(),
            fail_at_call: None,
        }
    }

    pub(crate) fn vector(text: &str) -> Vec<f32> {
        let h = crate::stable::Fnv1a::new().write(text.bytes()).finish();
        let raw: Vec<f32> = (0..4)
            .map(|k| ((crate::stable::mix(h ^ k) % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
        raw.iter().map(|v| v / norm).collect()
    }
}

impl SentenceEncoder for FakeEncoder {
    fn identity(&self) -> &str {
        &self.identity
    }
    fn dim(&self) -> usize {
        4
    }
    fn embed(&mut self, texts: &[&str], _batch_size: usize) -> Result<Vec<Vec<f32>>> {
        self.calls += 1;
        if self.fail_at_call == Some(self.calls) {
            anyhow::bail!("killed");
        }
        self.embedded.extend(texts.iter().map(|t| t.to_string()));
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}

const ROUNDS: &[(&str, &[&str])] = &[
    ("What is shown?", &["A lesion.", "Nothing.", "A lesion."]),
    ("Where is it?", &["In the lung.", "Nothing."]),
    ("What is shown?", &["A mass."]),
];

#[test]
fn every_distinct_text_is_embedded_once_and_a_rerun_embeds_nothing() {
    let (_dir, ws, _) = workspace_with_rounds(ROUNDS);
    let mut encoder = FakeEncoder::new();
    let mut last = (0, 0);
    let report = fill_cache(
        &ws,
        &mut encoder,
        2,
        &mut |d, t| last = (d, t),
        &AtomicBool::new(false),
    )
    .unwrap();
    // Questions (2), answers (4: lesion, nothing, lung, mass), the empty context (1).
    assert_eq!(
        report,
        FillReport {
            texts: 7,
            cached: 0,
            embedded: 7
        }
    );
    assert_eq!(last, (7, 7));
    let mut embedded = encoder.embedded.clone();
    embedded.sort();
    embedded.dedup();
    assert_eq!(
        embedded.len(),
        encoder.embedded.len(),
        "a text was embedded twice"
    );
    assert_eq!(ws.text_embedding_count("fake-encoder").unwrap(), 7);
    let hash = TextHash::of("In the lung.");
    assert_eq!(
        ws.text_embeddings("fake-encoder", &[hash]).unwrap()[&hash],
        FakeEncoder::vector("In the lung.")
    );

    let mut again = FakeEncoder::new();
    let report = fill_cache(&ws, &mut again, 2, &mut |_, _| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        report,
        FillReport {
            texts: 7,
            cached: 7,
            embedded: 0
        }
    );
    assert_eq!(again.calls, 0);
}

#[test]
fn a_run_killed_midway_keeps_its_finished_batches_and_the_rerun_does_the_rest() {
    let (_dir, ws, _) = workspace_with_rounds(ROUNDS);
    let mut killed = FakeEncoder::new();
    killed.fail_at_call = Some(3);
    let err = fill_cache(&ws, &mut killed, 2, &mut |_, _| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains("killed"));
    assert_eq!(ws.text_embedding_count("fake-encoder").unwrap(), 4);

    let mut rerun = FakeEncoder::new();
    let report = fill_cache(&ws, &mut rerun, 2, &mut |_, _| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        report,
        FillReport {
            texts: 7,
            cached: 4,
            embedded: 3
        }
    );
    let mut all: Vec<String> = killed.embedded.into_iter().chain(rerun.embedded).collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (7, 7));
}

#[test]
fn a_cancelled_fill_stops_between_batches() {
    let (_dir, ws, _) = workspace_with_rounds(ROUNDS);
    let mut encoder = FakeEncoder::new();
    let err = fill_cache(&ws, &mut encoder, 2, &mut |_, _| {}, &AtomicBool::new(true)).unwrap_err();
    assert!(err.is::<Cancelled>());
    assert_eq!(encoder.calls, 0);
}

#[test]
fn the_identity_follows_the_content_not_the_place() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        std::fs::write(dir.join("config.json"), "{\"hidden_size\": 4}").unwrap();
        std::fs::write(dir.join("model.safetensors"), b"weights").unwrap();
    }
    let ia = folder_identity(a.path()).unwrap();
    assert_eq!(ia, folder_identity(b.path()).unwrap());
    std::fs::write(b.path().join("model.safetensors"), b"weightz").unwrap();
    let ib = folder_identity(b.path()).unwrap();
    assert_ne!(ia, ib);

    let run = EncoderRef {
        identity: ia.clone(),
        folder: b.path().to_path_buf(),
        dim: 4,
        images: false,
    };
    let err = run.check_folder().unwrap_err().to_string();
    assert!(err.contains("changed since this run was trained"), "{err}");
    let same = EncoderRef {
        identity: ia,
        folder: a.path().to_path_buf(),
        dim: 4,
        images: false,
    };
    same.check_folder().unwrap();

    std::fs::remove_file(a.path().join("model.safetensors")).unwrap();
    let err = folder_identity(a.path()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("pytorch_model.bin"),
        "{err}"
    );
}
