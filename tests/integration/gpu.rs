//! The GPU backends against the CPU backend, through the CLI, on the same inputs and seed:
//! `cargo test --features wgpu gpu::` (CI runs it on lavapipe, a Vulkan device on the CPU, from
//! Debian's mesa-vulkan-drivers) and `--features cuda` on an NVIDIA machine (tools/gpu_check.sh).
//!
//! What is compared, and how close it must be:
//! - one checkpoint scored on the GPU and on the CPU: every score within 1e-4;
//! - a short training run from one seed: held-out alignment, AUC and MAP within 0.01. Training
//!   is not bit-for-bit the CPU's: a GPU sums a matrix product's terms in another order (tiled,
//!   in parallel), so the weights differ in the last bits after the first step, and those
//!   differences grow a little over the epochs. They change a metric only when two held-out
//!   scores were almost tied;
//! - encoder vectors (BERT-family and both open_clip towers): cosine ≥ 0.9999 to the CPU's.
//!
//! Each backend's group is compiled in only with its feature; a machine that cannot run it
//! (no Vulkan driver, no NVIDIA driver) skips the group, and fails it under CI.

#![cfg(any(feature = "wgpu", feature = "cuda"))]

use std::path::{Path, PathBuf};

use crate::common::{cosine, max_abs_diff, missing, printed_vectors, vital_ok, write};

/// Whether this machine runs `backend`; says why not (and fails under CI) when it does not.
fn runs_here(backend: &str) -> bool {
    let kind: vital::selector::BackendKind = backend.parse().unwrap();
    match kind.probe() {
        Ok(device) => {
            eprintln!("{backend}: {device}");
            true
        }
        Err(e) => {
            missing(&format!("{e:#}"));
            false
        }
    }
}

fn fixture(path: &str) -> PathBuf {
    crate::common::repo_root().join("tests/fixtures").join(path)
}

/// Two held-out pairs the demo's selector never trained on (the same as the selector tests').
fn held_out(dir: &Path) -> PathBuf {
    write(
        dir,
        "held_out.jsonl",
        r#"{"img": "x.png", "fig_caption": "Axial CT of the chest shows a nodule in the right upper lobe.", "inline_mention": "", "question": "Where is the nodule?", "answer_positive": "The nodule is in the right upper lobe.", "answer_negative": "I'm sorry, as an AI I cannot determine this. Please consult a doctor."}
{"img": "y.png", "fig_caption": "Frontal chest radiograph shows a small left pleural effusion.", "inline_mention": "", "question": "Which side is the effusion on?", "answer_positive": "On the left side.", "answer_negative": "It may possibly be anywhere; it is not possible to tell."}
{"img": "z.png", "fig_caption": "Sagittal T1 MRI of the knee shows a tear of the medial meniscus.", "inline_mention": "", "question": "Which structure is torn?", "answer_positive": "The medial meniscus is torn.", "answer_negative": "The image shows a normal chest radiograph."}
"#,
    )
}

/// The demo workspace trained for a few epochs on `backend`; returns the eval report.
fn demo_trained_on(dir: &Path, backend: &str) -> serde_json::Value {
    vital_ok(dir, &["demo", "--quiet"]);
    vital_ok(
        dir,
        &[
            "train",
            "--epochs",
            "4",
            "--seed",
            "7",
            "--backend",
            backend,
        ],
    );
    let pairs = held_out(dir);
    serde_json::from_str(&vital_ok(
        dir,
        &["eval", "--pairs", pairs.to_str().unwrap(), "--json"],
    ))
    .unwrap()
}

/// Every answer's score of the latest run, by answer id.
fn answer_scores(ws: &Path) -> Vec<(i64, f64)> {
    let ws = vital::store::Workspace::open_existing(ws).unwrap();
    let mut scores: Vec<(i64, f64)> = ws
        .selector_answer_scores()
        .unwrap()
        .into_iter()
        .map(|s| (s.answer_id, s.score))
        .collect();
    scores.sort_by_key(|s| s.0);
    scores
}

fn checkpoint_scores_match_the_cpus(backend: &str) {
    if !runs_here(backend) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--quiet"]);
    vital_ok(dir.path(), &["train", "--epochs", "2", "--backend", "cpu"]);
    let cpu = answer_scores(dir.path());
    vital_ok(dir.path(), &["score", "--backend", backend]);
    let gpu = answer_scores(dir.path());
    assert_eq!(cpu.len(), gpu.len());
    assert!(!cpu.is_empty());
    let worst = cpu
        .iter()
        .zip(&gpu)
        .map(|(c, g)| {
            assert_eq!(c.0, g.0);
            (c.1 - g.1).abs()
        })
        .fold(0.0, f64::max);
    eprintln!(
        "{backend}: {} scores, worst difference to the CPU's {worst:.2e}",
        cpu.len()
    );
    assert!(worst <= 1e-4, "{backend} scores differ by up to {worst}");
}

fn training_gives_the_cpus_held_out_metrics(backend: &str) {
    if !runs_here(backend) {
        return;
    }
    let (cpu_dir, gpu_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cpu = demo_trained_on(cpu_dir.path(), "cpu");
    let gpu = demo_trained_on(gpu_dir.path(), backend);
    for key in ["alignment_rate", "auc", "map"] {
        let (c, g) = (cpu[key].as_f64().unwrap(), gpu[key].as_f64().unwrap());
        eprintln!("{key}: cpu {c:.4}, {backend} {g:.4}");
        assert!((c - g).abs() <= 0.01, "{key}: cpu {c}, {backend} {g}");
    }
    // The runs record where they trained.
    let runs = |dir: &Path| {
        let ws = vital::store::Workspace::open_existing(dir).unwrap();
        let run = ws.latest_trained_run().unwrap().unwrap();
        let (_, report) = vital::selector_runs::load_run_report(&ws, Some(run)).unwrap();
        report.settings.backend.to_string()
    };
    assert_eq!(runs(gpu_dir.path()), backend);
    assert_eq!(runs(cpu_dir.path()), "cpu");
}

/// `vital encode` on the CPU and on `backend`; every vector's cosine to the CPU's.
fn assert_encodings_agree(backend: &str, encoder: &Path, lines: &Path, images: bool) {
    let dir = tempfile::tempdir().unwrap();
    let encode = |on: &str| {
        let mut args = vec![
            "encode",
            "--encoder",
            encoder.to_str().unwrap(),
            "--backend",
            on,
        ];
        if images {
            args.push("--images");
        }
        args.push(lines.to_str().unwrap());
        printed_vectors(&vital_ok(dir.path(), &args))
    };
    let (cpu, gpu) = (encode("cpu"), encode(backend));
    assert_eq!(cpu.len(), gpu.len());
    assert!(!cpu.is_empty());
    let lowest = cpu
        .iter()
        .zip(&gpu)
        .map(|(c, g)| cosine(c, g))
        .fold(f64::INFINITY, f64::min);
    eprintln!(
        "{} on {backend}: {} vectors{}, lowest cosine to the CPU's {lowest:.8}",
        encoder.file_name().unwrap().to_string_lossy(),
        cpu.len(),
        if images { " (images)" } else { "" }
    );
    for (i, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        let cos = cosine(c, g);
        assert!(
            cos >= 0.9999,
            "{}: vector {i} on {backend} has cosine {cos} to the CPU's (max abs diff {})",
            encoder.display(),
            max_abs_diff(c, g)
        );
    }
}

fn texts(dir: &Path) -> PathBuf {
    let texts = [
        "Axial CT of the chest shows a spiculated nodule in the right upper lobe.",
        "What does the arrow point to?",
        "",
        "The H&E stain shows nests of atypical cells with prominent nucleoli (×400).",
        "Is there a pleural effusion? No — the costophrenic angles are sharp.",
    ];
    let lines: Vec<String> = texts
        .iter()
        .map(|t| serde_json::to_string(t).unwrap())
        .collect();
    write(dir, "texts.jsonl", &(lines.join("\n") + "\n"))
}

fn bert_encoders_give_the_cpus_vectors(backend: &str) {
    if !runs_here(backend) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines = texts(dir.path());
    assert_encodings_agree(backend, &fixture("encoder/tiny-bert"), &lines, false);
    match std::env::var_os("VITAL_TEST_MINILM").map(PathBuf::from) {
        Some(minilm) if minilm.join("config.json").is_file() => {
            assert_encodings_agree(backend, &minilm, &lines, false)
        }
        _ => missing("VITAL_TEST_MINILM names no all-MiniLM-L6-v2 folder (.ci/run fetches it)"),
    }
}

fn open_clip_towers_give_the_cpus_vectors(backend: &str) {
    if !runs_here(backend) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("open_clip/tiny-biomedclip");
    assert_encodings_agree(backend, &model, &texts(dir.path()), false);
    let images: Vec<String> = [
        "gray.png",
        "portrait_rgb.jpg",
        "landscape_rgba.png",
        "cmyk.jpg",
    ]
    .iter()
    .map(|name| {
        let path = fixture("open_clip/images").join(name);
        serde_json::to_string(path.to_str().unwrap()).unwrap()
    })
    .collect();
    let list = write(dir.path(), "images.jsonl", &(images.join("\n") + "\n"));
    assert_encodings_agree(backend, &model, &list, true);
}

fn embed_fills_the_cache_on_the_backend(backend: &str) {
    if !runs_here(backend) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    vital_ok(dir.path(), &["demo", "--quiet"]);
    let encoder = fixture("encoder/tiny-bert");
    let out = vital_ok(
        dir.path(),
        &[
            "embed",
            "--encoder",
            encoder.to_str().unwrap(),
            "--backend",
            backend,
        ],
    );
    assert!(out.contains("embedded"), "{out}");
    let again = vital_ok(
        dir.path(),
        &[
            "embed",
            "--encoder",
            encoder.to_str().unwrap(),
            "--backend",
            "cpu",
        ],
    );
    assert!(
        again.contains(", 0 embedded"),
        "the CPU finds them all cached: {again}"
    );
}

/// The tests of one backend, as a module named after it (`gpu::wgpu::…`, `gpu::cuda::…`).
macro_rules! backend_tests {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn one_checkpoint_scores_within_1e_4_of_the_cpu() {
                super::checkpoint_scores_match_the_cpus(stringify!($backend));
            }

            #[test]
            fn a_short_training_run_gives_the_cpus_held_out_metrics() {
                super::training_gives_the_cpus_held_out_metrics(stringify!($backend));
            }

            #[test]
            fn bert_encoders_give_the_cpus_vectors() {
                super::bert_encoders_give_the_cpus_vectors(stringify!($backend));
            }

            #[test]
            fn open_clip_image_and_text_towers_give_the_cpus_vectors() {
                super::open_clip_towers_give_the_cpus_vectors(stringify!($backend));
            }

            #[test]
            fn embed_fills_the_cache() {
                super::embed_fills_the_cache_on_the_backend(stringify!($backend));
            }
        }
    };
}

#[cfg(feature = "wgpu")]
backend_tests!(wgpu);
#[cfg(feature = "cuda")]
backend_tests!(cuda);

/// With the Vulkan loader pointed at a driver file that does not exist, wgpu finds no device:
/// the command says so and how to get one, instead of burn's panic.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_a_vulkan_driver_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let lines = texts(dir.path());
    let encoder = fixture("encoder/tiny-bert");
    let nowhere = dir.path().join("no_such_icd.json");
    let nowhere = nowhere.to_str().unwrap();
    let out = crate::common::vital_env(
        dir.path(),
        &[
            "encode",
            "--encoder",
            encoder.to_str().unwrap(),
            "--backend",
            "wgpu",
            lines.to_str().unwrap(),
        ],
        &[("VK_DRIVER_FILES", nowhere), ("VK_ICD_FILENAMES", nowhere)],
    );
    let err = crate::common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no Vulkan driver") && err.contains("mesa-vulkan-drivers"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
