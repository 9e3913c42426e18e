//! The BERT-family encoder against PyTorch: a tiny random BERT committed under
//! tests/fixtures/encoder/tiny-bert (always), and all-MiniLM-L6-v2 when `VITAL_TEST_MINILM`
//! names its folder (`.ci/run` fetches it; without it these tests skip, except under CI=true).
//! References come from tools/encoder_reference.py (sentence-transformers / transformers).

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use vital::encoder::TextEncoder;

use crate::common::{cosine, max_abs_diff, printed_vectors, stderr, vital, vital_ok, write};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder")
}

fn tiny_bert() -> PathBuf {
    fixtures().join("tiny-bert")
}

/// The all-MiniLM-L6-v2 folder, or None (with a message) when absent outside CI.
fn minilm() -> Option<PathBuf> {
    let dir = std::env::var_os("VITAL_TEST_MINILM").map(PathBuf::from);
    match dir {
        Some(dir) if dir.join("config.json").is_file() => Some(dir),
        other => {
            let why = match other {
                Some(dir) => format!("VITAL_TEST_MINILM={} has no config.json", dir.display()),
                None => "VITAL_TEST_MINILM is not set".to_string(),
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{why}: CI must provide all-MiniLM-L6-v2 (see .ci/run)"
            );
            eprintln!("skipping: {why} (.ci/run fetches all-MiniLM-L6-v2 from PyPI)");
            None
        }
    }
}

struct Reference {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn references(path: &Path) -> Vec<Reference> {
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).unwrap();
    data["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| Reference {
            text: t["text"].as_str().unwrap().to_string(),
            ids: serde_json::from_value(t["ids"].clone()).unwrap(),
            embedding: serde_json::from_value(t["embedding"].clone()).unwrap(),
        })
        .collect()
}

/// What `vital encode` printed matches the references, line by line.
fn assert_printed_vectors_match(out: &str, refs: &[Reference]) {
    let got = printed_vectors(out);
    assert_eq!(got.len(), refs.len());
    for (v, r) in got.iter().zip(refs) {
        assert!(cosine(v, &r.embedding) >= 0.9999, "{:?}", r.text);
    }
}

/// Tokens equal the reference's, and every vector has cosine ≥ 0.9999 with it; returns the
/// smallest cosine.
fn assert_parity(encoder: &TextEncoder<NdArray>, refs: &[Reference]) -> f64 {
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    for r in refs {
        assert_eq!(
            encoder.token_ids(&r.text).unwrap(),
            r.ids,
            "token ids of {:?}",
            r.text
        );
    }
    let vectors = encoder.encode(&texts, 8, &mut |_| {}).unwrap();
    let mut min = f64::INFINITY;
    for (r, v) in refs.iter().zip(&vectors) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "not L2-normalised: {norm}");
        let c = cosine(v, &r.embedding);
        assert!(c >= 0.9999, "cosine {c} for {:?}", r.text);
        min = min.min(c);
    }
    min
}

/// Each text alone and all of them in one padded batch give the same vector.
fn assert_batch_invariant(encoder: &TextEncoder<NdArray>, texts: &[&str]) {
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| encoder.token_ids(t).unwrap())
        .collect();
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().min() < lengths.iter().max(),
        "the batch must need padding"
    );
    let batched = encoder.embed_ids(&ids).unwrap();
    for (i, seq) in ids.iter().enumerate() {
        let alone = encoder.embed_ids(std::slice::from_ref(seq)).unwrap();
        let diff = max_abs_diff(&alone[0], &batched[i]);
        assert!(diff <= 1e-5, "text {i}: alone vs batched differ by {diff}");
    }
}

#[test]
fn tiny_bert_from_pytorch_bin_and_vocab_txt_matches_transformers() {
    let encoder = TextEncoder::<NdArray>::load(&tiny_bert(), &Default::default()).unwrap();
    assert_eq!(
        encoder.folder().max_tokens,
        24,
        "plain folder: max_position_embeddings"
    );
    let min = assert_parity(&encoder, &references(&tiny_bert().join("reference.json")));
    eprintln!(
        "tiny-bert: min cosine {min:.9} (1 - min = {:.1e})",
        1.0 - min
    );
}

#[test]
fn tiny_bert_gives_a_text_the_same_vector_alone_and_in_a_padded_batch() {
    let encoder = TextEncoder::<NdArray>::load(&tiny_bert(), &Default::default()).unwrap();
    assert_batch_invariant(
        &encoder,
        &[
            "the lung",
            "",
            "a mass of cells shows the count of the lung cells",
        ],
    );
}

#[test]
fn minilm_matches_sentence_transformers_on_the_reference_texts() {
    let Some(dir) = minilm() else { return };
    let encoder = TextEncoder::<NdArray>::load(&dir, &Default::default()).unwrap();
    assert_eq!(
        encoder.folder().max_tokens,
        256,
        "sentence_bert_config.json"
    );
    assert_eq!(encoder.dim(), 384);
    let refs = references(&fixtures().join("minilm_reference.json"));
    assert!(refs.iter().any(|r| r.text.is_empty()));
    assert!(
        refs.iter().any(|r| r.ids.len() == 256),
        "a text is cut at the limit"
    );
    let min = assert_parity(&encoder, &refs);
    eprintln!(
        "all-MiniLM-L6-v2: min cosine {min:.9} (1 - min = {:.1e}) over {} texts",
        1.0 - min,
        refs.len()
    );
}

#[test]
fn minilm_gives_a_text_the_same_vector_alone_and_in_a_padded_batch() {
    let Some(dir) = minilm() else { return };
    let encoder = TextEncoder::<NdArray>::load(&dir, &Default::default()).unwrap();
    let refs = references(&fixtures().join("minilm_reference.json"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    assert_batch_invariant(&encoder, &texts);
}

#[test]
fn minilm_vocab_txt_tokenizer_matches_its_tokenizer_json() {
    let Some(dir) = minilm() else { return };
    // A plain BERT folder has vocab.txt + tokenizer_config.json instead of tokenizer.json:
    // rebuild that from the MiniLM folder and compare token ids.
    let tmp = tempfile::tempdir().unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap())
            .unwrap();
    let mut vocab: Vec<(u64, &str)> = json["model"]["vocab"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(token, id)| (id.as_u64().unwrap(), token.as_str()))
        .collect();
    vocab.sort();
    let lines: Vec<&str> = vocab.iter().map(|(_, t)| *t).collect();
    write(tmp.path(), "vocab.txt", &(lines.join("\n") + "\n"));
    for file in ["config.json", "tokenizer_config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(dir.join(file), tmp.path().join(file)).unwrap();
    }
    let plain = TextEncoder::<NdArray>::load(tmp.path(), &Default::default()).unwrap();
    assert_eq!(
        plain.folder().max_tokens,
        512,
        "no sentence_bert_config.json"
    );
    let full = TextEncoder::<NdArray>::load(&dir, &Default::default()).unwrap();
    for r in references(&fixtures().join("minilm_reference.json")) {
        let ids = plain.token_ids(&r.text).unwrap();
        if r.ids.len() < 256 {
            assert_eq!(ids, full.token_ids(&r.text).unwrap(), "{:?}", r.text);
        } else {
            assert!(
                ids.len() > 256 && ids[..255] == r.ids[..255],
                "{:?}",
                r.text
            );
        }
    }
}

fn jsonl(texts: &[&str]) -> String {
    texts
        .iter()
        .map(|t| serde_json::to_string(t).unwrap() + "\n")
        .collect()
}

#[test]
fn encode_prints_one_normalised_vector_per_line_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let refs = references(&tiny_bert().join("reference.json"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let file = write(dir.path(), "texts.jsonl", &jsonl(&texts));
    let encoder = tiny_bert();
    let out = vital_ok(
        dir.path(),
        &[
            "encode",
            "--encoder",
            encoder.to_str().unwrap(),
            "--batch-size",
            "2",
            file.to_str().unwrap(),
        ],
    );
    assert_printed_vectors_match(&out, &refs);
}

#[test]
fn encode_reads_stdin_and_says_how_fast_it_was() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vital"))
        .args(["encode", "--encoder"])
        .arg(tiny_bert())
        .arg("-")
        .env("VITAL_CONFIG", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jsonl(&["the lung", "a mass"]).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = printed_vectors(&String::from_utf8(out.stdout.clone()).unwrap());
    assert_eq!(got.len(), 2);
    assert!(
        cosine(&got[0], &got[1]) < 0.9999,
        "different texts, different vectors"
    );
    let err = stderr(&out);
    assert!(err.contains("encoded 2 texts"), "{err}");
    assert!(err.contains("texts/s"), "{err}");
}

#[test]
fn encode_names_the_file_and_line_of_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "texts.jsonl", "\"fine\"\n{\"text\": \"no\"}\n");
    let encoder = tiny_bert();
    let out = vital(
        dir.path(),
        &[
            "encode",
            "--encoder",
            encoder.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("texts.jsonl:2:"), "{err}");
    assert!(err.contains("one JSON string per line"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed before the input is known good"
    );
}

/// A copy of the tiny folder that `change` then breaks.
fn broken_folder(change: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(tiny_bert()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    change(dir.path());
    dir
}

fn encode_error(folder: &Path) -> String {
    let ws = tempfile::tempdir().unwrap();
    let file = write(ws.path(), "t.jsonl", "\"x\"\n");
    let out = vital(
        ws.path(),
        &[
            "encode",
            "--encoder",
            folder.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn encode_names_the_missing_file_or_unsupported_setting_of_a_broken_folder() {
    let no_vocab = broken_folder(|d| std::fs::remove_file(d.join("vocab.txt")).unwrap());
    assert!(encode_error(no_vocab.path()).contains("missing tokenizer.json or vocab.txt"));

    let no_weights = broken_folder(|d| std::fs::remove_file(d.join("pytorch_model.bin")).unwrap());
    assert!(
        encode_error(no_weights.path()).contains("missing model.safetensors or pytorch_model.bin")
    );

    let no_config = broken_folder(|d| std::fs::remove_file(d.join("config.json")).unwrap());
    let err = encode_error(no_config.path());
    assert!(err.contains("config.json: missing"), "{err}");

    let set = |key: &str, value: Value| {
        let key = key.to_string();
        broken_folder(move |d| {
            let path = d.join("config.json");
            let mut config: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            config[key] = value;
            std::fs::write(&path, config.to_string()).unwrap();
        })
    };
    let relu = set("hidden_act", "relu".into());
    let err = encode_error(relu.path());
    assert!(err.contains("hidden_act `relu` is not supported"), "{err}");
    let roberta = set("model_type", "roberta".into());
    assert!(encode_error(roberta.path()).contains("model_type `roberta` is not supported"));
    // Weights that do not fit the config: the loader names the file and the tensors.
    let wider = set("intermediate_size", 64.into());
    let err = encode_error(wider.path());
    assert!(
        err.contains("pytorch_model.bin: does not fit config.json"),
        "{err}"
    );
    assert!(err.contains("intermediate"), "{err}");

    let pooled = broken_folder(|d| {
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
        )
        .unwrap();
        std::fs::create_dir(d.join("1_Pooling")).unwrap();
        std::fs::write(
            d.join("1_Pooling/config.json"),
            r#"{"pooling_mode_weightedmean_tokens": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
    });
    let err = encode_error(pooled.path());
    assert!(
        err.contains("pooling_mode_weightedmean_tokens is not supported"),
        "{err}"
    );
}

/// The tiny folder with `key` of its config.json set to `value`.
fn with_config(key: &str, value: Value) -> tempfile::TempDir {
    broken_folder(|d| {
        let path = d.join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[key] = value;
        std::fs::write(&path, config.to_string()).unwrap();
    })
}

#[test]
fn encode_refuses_at_once_a_folder_whose_config_or_weights_claim_more_than_the_files_hold() {
    // Before: a million layers took 8 GB in 29 s, then the process aborted.
    let started = std::time::Instant::now();
    let million = with_config("num_hidden_layers", 1_000_000.into());
    let err = encode_error(million.path());
    assert!(
        err.contains("config.json: num_hidden_layers 1000000 is more than 256"),
        "{err}"
    );
    let twelve = with_config("num_hidden_layers", 12.into());
    let err = encode_error(twelve.path());
    assert!(
        err.contains("config.json: num_hidden_layers 12, but")
            && err.contains("pytorch_model.bin holds 2 layers"),
        "{err}"
    );
    // A safetensors header claiming a 4 TB tensor in a file of a few bytes.
    let huge = broken_folder(|d| {
        std::fs::remove_file(d.join("pytorch_model.bin")).unwrap();
        let header = serde_json::json!({
            "embeddings.word_embeddings.weight":
                {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]},
        })
        .to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 16]);
        std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    });
    let err = encode_error(huge.path());
    assert!(
        err.contains("model.safetensors: tensor `embeddings.word_embeddings.weight` claims shape [1000000, 1000000] of F32 (4000000000000 bytes)"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn minilm_through_vital_encode_matches_sentence_transformers() {
    let Some(model) = minilm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let refs = references(&fixtures().join("minilm_reference.json"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let file = write(dir.path(), "texts.jsonl", &jsonl(&texts));
    let out = vital_ok(
        dir.path(),
        &[
            "encode",
            "--encoder",
            model.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_printed_vectors_match(&out, &refs);
}

#[test]
fn embed_resumes_train_and_score_use_the_cache_and_a_changed_encoder_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["demo", "--quiet"]);
    // A copy of the tiny BERT that the test may change afterwards.
    let encoder = dir.path().join("tiny-bert");
    std::fs::create_dir(&encoder).unwrap();
    for entry in std::fs::read_dir(tiny_bert()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), encoder.join(entry.file_name())).unwrap();
    }
    let encoder_arg = encoder.to_str().unwrap();
    let first = vital(&ws, &["embed", "--encoder", encoder_arg]);
    assert!(first.status.success(), "{}", stderr(&first));
    let said = String::from_utf8_lossy(&first.stdout).into_owned() + &stderr(&first);
    assert!(said.contains("0 already cached"), "{said}");
    let again = vital(&ws, &["embed", "--encoder", encoder_arg]);
    let said = String::from_utf8_lossy(&again.stdout).into_owned() + &stderr(&again);
    assert!(
        said.contains(", 0 embedded"),
        "a rerun embeds nothing: {said}"
    );

    vital_ok(&ws, &["train", "--encoder", encoder_arg]);
    vital_ok(&ws, &["score"]);
    // The folder's content changes: the run's vectors no longer match what it would compute.
    let vocab = encoder.join("vocab.txt");
    let mut words = std::fs::read_to_string(&vocab).unwrap();
    words.push_str("zzzextra\n");
    std::fs::write(&vocab, words).unwrap();
    let refused = vital(&ws, &["score"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("changed since this run was trained"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn background_training_embeds_new_texts_with_the_runs_encoder_and_reports_progress() {
    use std::sync::mpsc;
    use std::time::Duration;
    use vital::store::Workspace;
    use vital::tui::app::Msg;
    use vital::tui::session::Session;
    use vital::tui::trainer::{TrainerEvent, TrainerSettings};

    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["demo", "--quiet"]);
    vital_ok(&ws, &["train", "--encoder", tiny_bert().to_str().unwrap()]);
    // New texts arrive after the run: the cache lacks them.
    let file = write(
        dir.path(),
        "more.jsonl",
        r#"{"id": "new-1", "fig_caption": "A new axial CT.", "rounds": [{"question": "Is there a new finding?", "answers": ["Yes, a new nodule.", "No."]}]}"#,
    );
    vital_ok(&ws, &["import", file.to_str().unwrap()]);
    // The review screen's trainer keeps the latest run's encoder.
    let workspace = Workspace::open_existing(&ws).unwrap();
    let (_, report) = vital::selector_runs::load_run_report(&workspace, None).unwrap();
    let mut run = report.settings;
    assert!(run.encoder.is_some());
    run.epochs = 2;
    let config = vital::config::Config::defaults();
    let fetch = vital::config::fetch_settings(&config.llm, ws.join("images"));
    let (tx, rx) = mpsc::channel();
    let mut s = Session::start_threaded(
        workspace,
        crate::review::options("ana"),
        TrainerSettings {
            workspace: ws.clone(),
            run,
            sample_score: vital::selector_runs::SampleScore::MeanBest,
        },
        fetch,
        256,
        tx,
    )
    .unwrap();
    s.dispatch(Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('T'),
        crossterm::event::KeyModifiers::NONE,
    )));
    let (mut embedded, mut done) = (None, false);
    while let Ok(msg) = rx.recv_timeout(Duration::from_secs(60)) {
        if let Msg::Trainer(TrainerEvent::Embedding { done, total }) = &msg {
            embedded = Some((*done, *total));
        }
        done |= matches!(msg, Msg::Trainer(TrainerEvent::Done(_)));
        let failed = matches!(msg, Msg::Trainer(TrainerEvent::Failed(_)));
        s.dispatch(msg);
        assert!(!failed, "{}", s.app.training.status);
        if done {
            break;
        }
    }
    assert!(done, "the run finished: {}", s.app.training.status);
    // Caption+mention, question and the two answers are new.
    let (finished, total) = embedded.expect("the trainer reported embedding progress");
    assert_eq!(finished, total);
    assert_eq!(total, 4);
}

/// The paper preset with an encoder: one joined text per answer (caption + mention + question +
/// answer) is embedded and cached, the paper's head reads it, and score and eval find the same
/// vectors again.
#[test]
fn the_paper_preset_embeds_the_joined_text_and_scores_and_evaluates_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (mut pairs, mut samples, mut scores) = (String::new(), String::new(), String::new());
    for k in 0..8 {
        pairs.push_str(&format!(
            r#"{{"img": "f{k}.png", "fig_caption": "Axial CT {k}.", "inline_mention": "See Fig {k}.", "question": "Where is the lesion?", "answer_positive": "Right upper lobe, {k} mm.", "answer_negative": "I cannot tell."}}"#
        ));
        pairs.push('\n');
        samples.push_str(&format!(
            r#"{{"id": "s{k}", "fig_caption": "Chest CT {k}.", "rounds": [{{"question": "Where?", "answers": ["Quality {}."]}}]}}"#,
            k % 4
        ));
        samples.push('\n');
        scores.push_str(&format!(
            r#"{{"sample_id": "s{k}", "round": 1, "answer": 1, "score": {}, "judge": "gpt"}}"#,
            k % 4
        ));
        scores.push('\n');
    }
    let files = [
        write(dir.path(), "pairs.jsonl", &pairs),
        write(dir.path(), "c.jsonl", &samples),
        write(dir.path(), "scores.jsonl", &scores),
    ];
    let mut import = vec!["import"];
    import.extend(files.iter().map(|f| f.to_str().unwrap()));
    vital_ok(dir.path(), &import);
    let encoder = tiny_bert();
    let out = vital_ok(
        dir.path(),
        &[
            "train",
            "--preset",
            "paper",
            "--encoder",
            encoder.to_str().unwrap(),
            "--judge-train-pairs",
            "40",
            "--judge-test-pairs",
            "10",
            "--epochs",
            "2",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let settings = &report["settings"];
    assert_eq!(settings["paper_head"], true);
    assert_eq!(settings["paper_text"], true);
    assert_eq!(report["human_pairs"], 8, "fewer than 50: all train");
    assert_eq!(report["scored_answers"], 24);
    assert_eq!(report["judge_test_pairs"], 10);
    let ws = vital::store::Workspace::open_existing(dir.path()).unwrap();
    let identity = settings["encoder"]["identity"].as_str().unwrap();
    let joined =
        "Axial CT 0. See Fig 0. Question: Where is the lesion? Answer: Right upper lobe, 0 mm.";
    let hash = vital::store::TextHash::of(joined);
    assert!(
        ws.text_embeddings(identity, &[hash])
            .unwrap()
            .contains_key(&hash),
        "the joined text is cached"
    );
    drop(ws);
    vital_ok(dir.path(), &["score", "--sample-score", "first-round"]);
    let pairs_file = files[0].to_str().unwrap();
    let eval: serde_json::Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &["eval", "--pairs", pairs_file, "--json"],
    ))
    .unwrap();
    assert_eq!(eval["pairs"], 8);
}

/// `vital eval` puts the run's encoder, zero-shot, beside the selector: cos(question, answer) of
/// the same cached vectors, measured on the same pairs.
#[test]
fn eval_reports_the_encoders_zero_shot_cosine_beside_the_selector() {
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--quiet"]);
    let encoder = tiny_bert();
    let encoder = encoder.to_str().unwrap();
    vital_ok(
        dir.path(),
        &["train", "--encoder", encoder, "--epochs", "2", "--no-score"],
    );
    let pairs = [
        (
            "Where is the nodule?",
            "In the right upper lobe.",
            "I cannot tell.",
        ),
        (
            "Which side is the effusion?",
            "On the left.",
            "Possibly anywhere at all.",
        ),
        (
            "What modality is this?",
            "A CT scan of the chest.",
            "A photograph of a cat.",
        ),
    ];
    let lines: Vec<String> = pairs
        .iter()
        .map(|(q, good, bad)| {
            serde_json::json!({"img": "x.png", "fig_caption": "A chest figure.", "inline_mention": "",
                "question": q, "answer_positive": good, "answer_negative": bad})
            .to_string()
        })
        .collect();
    let file = write(dir.path(), "pairs.jsonl", &(lines.join("\n") + "\n"));
    let eval: serde_json::Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &["eval", "--pairs", file.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    let baseline = &eval["baselines"]["encoder_cosine"];
    assert_eq!(baseline["pairs"], 3, "{eval}");
    // The same cosines from `vital encode`'s vectors.
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(q, good, bad)| [q, good, bad])
        .map(|t| serde_json::to_string(t).unwrap())
        .collect();
    let input = write(dir.path(), "texts.jsonl", &(texts.join("\n") + "\n"));
    let vectors = printed_vectors(&vital_ok(
        dir.path(),
        &["encode", "--encoder", encoder, input.to_str().unwrap()],
    ));
    let right = vectors
        .chunks(3)
        .filter(|v| cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]))
        .count();
    let alignment = baseline["alignment_rate"].as_f64().unwrap();
    assert!((alignment - right as f64 / 3.0).abs() < 1e-9, "{baseline}");
    // A run without an encoder has no such baseline.
    vital_ok(dir.path(), &["train", "--epochs", "1", "--no-score"]);
    let eval: serde_json::Value = serde_json::from_str(&vital_ok(
        dir.path(),
        &["eval", "--pairs", file.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert!(eval["baselines"].get("encoder_cosine").is_none(), "{eval}");
}
