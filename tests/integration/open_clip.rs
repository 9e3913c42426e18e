//! The open_clip (BiomedCLIP-style) encoder against open_clip itself: a tiny random model of
//! BiomedCLIP's shape committed under tests/fixtures/open_clip/tiny-biomedclip, synthetic figures
//! written by tools/open_clip_reference.py, Pillow's crops of them, and open_clip's embeddings;
//! plus the five real figures of ../shared/fixtures/images when that folder is present (their
//! references are keyed by the file's SHA-256).

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use serde_json::Value;
use sha2::{Digest, Sha256};
use vital::encoder::open_clip::preprocess::{decode_file, resize_and_crop};
use vital::encoder::open_clip::OpenClipEncoder;

use crate::common::{self, cosine, max_abs_diff, printed_vectors, stderr, vital, vital_ok, write};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/open_clip")
}

fn model_dir() -> PathBuf {
    fixtures().join("tiny-biomedclip")
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap())
        .unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn load(dir: &Path) -> OpenClipEncoder<NdArray> {
    OpenClipEncoder::<NdArray>::load(dir, &Default::default()).unwrap()
}

/// Texts: same token ids as open_clip's HFTokenizer, cosine ≥ 0.9999, and element-wise close
/// (the untrained tower's vectors share a large common part, so the cosine alone is lenient).
fn assert_texts_match(encoder: &OpenClipEncoder<NdArray>) {
    let refs = reference();
    let texts = refs["texts"].as_array().unwrap();
    let strings: Vec<&str> = texts.iter().map(|t| t["text"].as_str().unwrap()).collect();
    for (t, s) in texts.iter().zip(&strings) {
        let ids: Vec<u32> = serde_json::from_value(t["ids"].clone()).unwrap();
        assert_eq!(encoder.token_ids(s).unwrap(), ids, "{s:?}");
    }
    let got = encoder.encode_texts(&strings, 4, &mut |_| {}).unwrap();
    for (t, v) in texts.iter().zip(&got) {
        let want = floats(&t["embedding"]);
        let c = cosine(v, &want);
        let d = max_abs_diff(v, &want);
        eprintln!("text cosine {c:.7}, max diff {d:.2e}");
        assert!(
            c >= 0.9999 && d < 1e-4,
            "{:?}: cosine {c}, max diff {d}",
            t["text"]
        );
    }
}

#[test]
fn open_clip_text_vectors_match_open_clip() {
    let encoder = load(&model_dir());
    assert_eq!(encoder.dim(), 512);
    assert_eq!(encoder.text_config().num_hidden_layers, 2);
    assert_texts_match(&encoder);
}

#[test]
fn an_open_clip_folder_without_the_text_config_reads_the_tower_shape_from_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "open_clip_config.json",
        "open_clip_pytorch_model.bin",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ] {
        std::fs::copy(model_dir().join(name), tmp.path().join(name)).unwrap();
    }
    let encoder = load(tmp.path());
    let bert = encoder.text_config();
    assert_eq!(
        (
            bert.num_hidden_layers,
            bert.hidden_size,
            bert.num_attention_heads,
            bert.intermediate_size
        ),
        (2, 128, 2, 512)
    );
    assert_texts_match(&encoder);
}

#[test]
fn open_clip_preprocessing_crops_png_figures_exactly_as_pillow() {
    let refs = reference();
    let mut checked = 0;
    for image in refs["images"].as_array().unwrap() {
        let Some(crop) = image["crop"].as_str() else {
            continue;
        };
        let file = image["file"].as_str().unwrap();
        let ours = resize_and_crop(
            &decode_file(&fixtures().join("images").join(file)).unwrap(),
            224,
        );
        let theirs = image::open(fixtures().join("crops").join(crop))
            .unwrap()
            .to_rgb8();
        assert_eq!((ours.width, ours.height), (224, 224), "{file}");
        let ours = ours.to_rgb();
        let differ = ours
            .iter()
            .zip(theirs.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ,
            0,
            "{file}: {differ} of {} values differ from Pillow's crop",
            ours.len()
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "grayscale, RGBA and upscaled RGB crops");
}

fn assert_image_matches(encoder: &OpenClipEncoder<NdArray>, path: &Path, want: &[f32], min: f64) {
    let got = encoder.encode_image_files(&[path], 1, &mut |_| {}).unwrap();
    let c = cosine(&got[0], want);
    eprintln!("{}: cosine {c:.6}", path.display());
    assert!(
        c >= min,
        "{}: cosine {c} with open_clip's vector",
        path.display()
    );
}

#[test]
fn open_clip_image_vectors_match_open_clip() {
    let encoder = load(&model_dir());
    let refs = reference();
    for image in refs["images"].as_array().unwrap() {
        let file = image["file"].as_str().unwrap();
        assert_image_matches(
            &encoder,
            &fixtures().join("images").join(file),
            &floats(&image["embedding"]),
            0.999,
        );
    }
    // Batched, the vectors are the same as one by one.
    let paths: Vec<PathBuf> = refs["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| fixtures().join("images").join(i["file"].as_str().unwrap()))
        .collect();
    let refs_paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let batched = encoder
        .encode_image_files(&refs_paths, 3, &mut |_| {})
        .unwrap();
    let single = encoder
        .encode_image_files(&refs_paths[..1], 1, &mut |_| {})
        .unwrap();
    assert!(max_abs_diff(&batched[0], &single[0]) < 1e-5);
}

#[test]
fn open_clip_vectors_of_the_real_figures_match_open_clip() {
    let Some(shared) = common::fixtures() else {
        return;
    };
    let encoder = load(&model_dir());
    let refs = reference();
    let real = refs["real_images"].as_array().unwrap();
    assert_eq!(real.len(), 5, "reference.json has the five real figures");
    for image in real {
        let path = shared.join("images").join(image["file"].as_str().unwrap());
        let hash = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        if hash != image["sha256"].as_str().unwrap() {
            common::missing(&format!(
                "{} changed since the references were made",
                path.display()
            ));
            continue;
        }
        assert_image_matches(&encoder, &path, &floats(&image["embedding"]), 0.999);
    }
}

#[test]
fn an_open_clip_folder_with_an_unknown_timm_model_or_no_weights_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(model_dir().join("open_clip_config.json")).unwrap();
    write(
        tmp.path(),
        "open_clip_config.json",
        &config.replace("vit_tiny_patch16_224", "convnext_tiny"),
    );
    let err = OpenClipEncoder::<NdArray>::load(tmp.path(), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("timm_model_name `convnext_tiny` is not supported"),
        "{err}"
    );
    write(tmp.path(), "open_clip_config.json", &config);
    let err = OpenClipEncoder::<NdArray>::load(tmp.path(), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("missing open_clip_model.safetensors or open_clip_pytorch_model.bin"),
        "{err}"
    );
}

#[test]
fn vital_encode_embeds_images_and_texts_with_an_open_clip_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let refs = reference();
    let images = refs["images"].as_array().unwrap();
    let list: String = images
        .iter()
        .map(|i| {
            let path = fixtures().join("images").join(i["file"].as_str().unwrap());
            serde_json::to_string(&path).unwrap() + "\n"
        })
        .collect();
    let file = write(tmp.path(), "images.jsonl", &list);
    let model = model_dir();
    let args = [
        "encode",
        "--encoder",
        model.to_str().unwrap(),
        "--images",
        "--batch-size",
        "2",
    ];
    let out = vital_ok(tmp.path(), &[&args[..], &[file.to_str().unwrap()]].concat());
    let got = printed_vectors(&out);
    assert_eq!(got.len(), images.len());
    for (v, i) in got.iter().zip(images) {
        assert!(
            cosine(v, &floats(&i["embedding"])) >= 0.999,
            "{}",
            i["file"]
        );
    }

    let texts = refs["texts"].as_array().unwrap();
    let lines: String = texts.iter().map(|t| t["text"].to_string() + "\n").collect();
    let file = write(tmp.path(), "texts.jsonl", &lines);
    let out = vital_ok(
        tmp.path(),
        &[
            "encode",
            "--encoder",
            model.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    let got = printed_vectors(&out);
    assert_eq!(got.len(), texts.len());
    for (v, t) in got.iter().zip(texts) {
        assert!(
            cosine(v, &floats(&t["embedding"])) >= 0.9999,
            "{}",
            t["text"]
        );
    }

    // A missing image names the list's line; a text-only encoder refuses --images.
    let file = write(tmp.path(), "bad.jsonl", "\"nowhere.png\"\n");
    let out = vital(
        tmp.path(),
        &[
            "encode",
            "--encoder",
            model.to_str().unwrap(),
            "--images",
            file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.jsonl:1"), "{}", stderr(&out));
    let bert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder/tiny-bert");
    let out = vital(
        tmp.path(),
        &[
            "encode",
            "--encoder",
            bert.to_str().unwrap(),
            "--images",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&out).contains("--images needs an open_clip folder"),
        "{}",
        stderr(&out)
    );
}

/// The first number after `label` in `text`.
fn number_after(text: &str, label: &str) -> usize {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    text[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {text}"))
}

#[test]
fn embed_caches_figures_by_content_and_train_reads_image_features_with_an_open_clip_folder() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["demo", "--quiet"]);
    let model = model_dir();
    let model = model.to_str().unwrap();
    let first = vital_ok(&ws, &["embed", "--encoder", model]);
    let files = number_after(&first, "figures:");
    assert!(files > 0, "the demo's figures are embedded: {first}");
    assert!(first.contains(", 0 already cached,"), "{first}");
    assert_eq!(number_after(&first, "already cached,"), files, "{first}");
    let again = vital_ok(&ws, &["embed", "--encoder", model]);
    assert!(
        again.contains(&format!(
            "figures: {files} image files, {files} already cached, 0 embedded"
        )),
        "a rerun embeds no figure: {again}"
    );
    vital_ok(&ws, &["train", "--encoder", model]);
    vital_ok(&ws, &["score"]);
    vital_ok(&ws, &["train", "--encoder", model, "--paper-head"]);
    vital_ok(&ws, &["score"]);
}

#[test]
fn eval_on_a_pairs_file_embeds_its_figures_for_a_run_that_reads_images() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    vital_ok(&ws, &["demo", "--quiet"]);
    let model = model_dir();
    let model_arg = model.to_str().unwrap();
    vital_ok(&ws, &["embed", "--encoder", model_arg]);
    vital_ok(&ws, &["train", "--encoder", model_arg]);
    // A held-out pairs file whose figure is in no workspace folder: only eval can embed it.
    let held_out = dir.path().join("held-out");
    std::fs::create_dir_all(&held_out).unwrap();
    let figure = held_out.join("new-figure.png");
    image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    })
    .save(&figure)
    .unwrap();
    let pair = serde_json::json!({
        "img": "new-figure.png",
        "fig_caption": "Axial CT of the chest with a right upper lobe mass.",
        "inline_mention": "A spiculated mass is seen in the right upper lobe (Figure 1).",
        "question": "What does the image show?",
        "answer_positive": "A spiculated mass in the right upper lobe, suspicious for malignancy.",
        "answer_negative": "I cannot tell from the image."
    });
    let pairs = write(&held_out, "pairs.jsonl", &format!("{pair}\n"));
    let key = vital::store::TextHash::of_image_bytes(&std::fs::read(&figure).unwrap());
    let identity = vital::embed::folder_identity(&model).unwrap();
    let cached = || {
        let ws = vital::store::Workspace::open_existing(&ws).unwrap();
        ws.cached_text_hashes(&identity, &[key])
            .unwrap()
            .contains(&key)
    };
    assert!(!cached(), "the new figure starts outside the cache");

    let out = vital_ok(&ws, &["eval", "--pairs", pairs.to_str().unwrap()]);

    assert!(out.contains("alignment"), "{out}");
    assert!(
        cached(),
        "eval embedded the pairs file's figure under the run's encoder"
    );
}
