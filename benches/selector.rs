//! Selector throughput on this machine (plain main, std::time; `cargo bench --bench selector`).
//!
//! 1. featurize + score answers/s on a synthetic 50K-answer set, extrapolated to the 1.7M
//!    answers of the 210K release (210K samples × ~4 rounds × 2 answers);
//! 2. training pairs/s of the built-in model (featurization included);
//! 3. training pairs/s and scoring rows/s of a 1024-512-512-1 MLP with the pairwise hinge
//!    loss, to compare with `benches/selector_torch.py` (PyTorch CPU) on the same machine;
//! 4. bare matrix products at the MLP's and the text encoder's shapes, against `a @ b` in
//!    PyTorch: how much of the gap is the matrix kernel itself.
//!
//! `SELECTOR_BENCH_ANSWERS` overrides the 50K answer count; `SELECTOR_BENCH_MLP_ONLY=1` runs only
//! rows 3 and 4 (to profile them).

#![allow(clippy::unwrap_used)] // a test harness: a failed unwrap is a failed run

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use vital::selector::featurize_batch;
use vital::selector::model::{EmbeddingHead, EmbeddingHeadConfig};
use vital::selector::train::pair_loss;
use vital::selector::{
    synthetic, train, HashedFeaturizer, HashedFeaturizerConfig, PairLoss, TrainConfig, TrainData,
};

type Ad = Autodiff<NdArray>;
const RELEASE_ANSWERS: f64 = 1.7e6;

/// Prints one result line and returns the rate.
fn row(name: &str, count: usize, seconds: f64, unit: &str, note: &str) -> f64 {
    let rate = count as f64 / seconds;
    println!("{name:<44} {count:>9} {seconds:>9.2}s {rate:>12.0} {unit:<10} {note}");
    rate
}

/// Runs the PyTorch twin (benches/selector_torch.py) in the same session and prints burn ÷ torch
/// for each line both measured. Skipped with a note when python3 or torch is missing.
fn compare_with_torch(ours: &[(&str, f64)]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/selector_torch.py");
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let output = std::process::Command::new("python3")
        .args([script, "--threads", &threads])
        .output();
    let text = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            println!(
                "\nPyTorch comparison skipped: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("?")
            );
            return;
        }
        Err(e) => {
            println!("\nPyTorch comparison skipped: cannot run python3 ({e})");
            return;
        }
    };
    println!("\n{}", text.lines().next().unwrap_or_default());
    println!(
        "{:<44} {:>12} {:>12} {:>8}",
        "same model, same run", "burn", "torch", "ratio"
    );
    for (name, rate) in ours {
        let torch = text.lines().find(|l| l.starts_with(name)).and_then(|l| {
            // The rate is the number before the unit, after the "Ns" time column.
            l[name.len()..]
                .split_whitespace()
                .nth(2)?
                .parse::<f64>()
                .ok()
        });
        if let Some(torch) = torch {
            println!(
                "{name:<44} {rate:>12.0} {torch:>12.0} {:>7.2}×",
                rate / torch
            );
        }
    }
}

fn random(rng: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            (*rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Pairwise hinge training of a d-512-512-1 MLP on random inputs on backend `A`'s default
/// device; returns (pairs, seconds). The clock stops after the last step's loss has been read
/// back, so a GPU's queued work is counted.
fn mlp_training<A: AutodiffBackend>(d: usize, batch: usize, steps: usize) -> (usize, f64) {
    let device = Default::default();
    let mut model: EmbeddingHead<A> = EmbeddingHeadConfig::new(d)
        .with_hidden(vec![512, 512])
        .init(&device);
    let mut optim = AdamConfig::new().init::<A, EmbeddingHead<A>>();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let inputs: Vec<Tensor<A, 2>> = (0..4)
        .map(|_| {
            Tensor::from_data(
                TensorData::new(random(&mut rng, 2 * batch * d), [2 * batch, d]),
                &device,
            )
        })
        .collect();
    let warm_up = 3;
    let mut start = Instant::now();
    for step in 0..warm_up + steps {
        let scores = model.forward(inputs[step % inputs.len()].clone());
        let diff = scores.clone().narrow(0, 0, batch) - scores.narrow(0, batch, batch);
        let loss = pair_loss(diff, vec![1.0; batch], PairLoss::Hinge, 1.0, &device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-5, model, grads);
        if step + 1 == warm_up {
            let _ = loss.into_data(); // the warm-up's work is done before the clock starts
            start = Instant::now();
        } else if step + 1 == warm_up + steps {
            let _ = loss.into_data();
        }
    }
    (steps * batch, start.elapsed().as_secs_f64())
}

/// Bare `[m, k] · [k, n]` products through burn's NdArray backend; returns (products, seconds).
/// Isolates the matrix kernel (ndarray → matrixmultiply) from autodiff and the optimiser.
fn matmul_products(m: usize, k: usize, n: usize, reps: usize) -> (usize, f64) {
    let device = Default::default();
    let mut rng = 11u64;
    let a =
        Tensor::<NdArray, 2>::from_data(TensorData::new(random(&mut rng, m * k), [m, k]), &device);
    let b =
        Tensor::<NdArray, 2>::from_data(TensorData::new(random(&mut rng, k * n), [k, n]), &device);
    let _ = a.clone().matmul(b.clone()).into_data();
    let start = Instant::now();
    for _ in 0..reps {
        let _ = a.clone().matmul(b.clone()).into_data();
    }
    (reps, start.elapsed().as_secs_f64())
}

/// Times bare products of one shape and prints its row (2·m·k·n flops each); returns the row's
/// name and products/s.
fn matmul_row(m: usize, k: usize, n: usize, reps: usize) -> (String, f64) {
    let (count, t) = matmul_products(m, k, n, reps);
    let name = format!("matmul {m}x{k} · {k}x{n}");
    let gflops = 2.0 * (m * k * n) as f64 * count as f64 / t / 1e9;
    let rate = row(
        &name,
        count,
        t,
        "products/s",
        &format!("{gflops:.1} GFLOP/s"),
    );
    (name, rate)
}

/// Forward passes of a d-512-512-1 MLP over `rows` rows, `chunk` at a time, each read back.
fn mlp_scoring<B: Backend>(d: usize, rows: usize, chunk: usize) -> (usize, f64) {
    let device = Default::default();
    let model = EmbeddingHeadConfig::new(d)
        .with_hidden(vec![512, 512])
        .init::<B>(&device);
    let mut rng = 7u64;
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(random(&mut rng, chunk * d), [chunk, d]),
        &device,
    );
    let _ = model.forward(x.clone()).into_data();
    let start = Instant::now();
    for _ in 0..rows / chunk {
        let _ = model.forward(x.clone()).into_data();
    }
    (rows / chunk * chunk, start.elapsed().as_secs_f64())
}

/// The MLP rows on backend `A` (and its inner backend for scoring); returns their rates.
fn mlp_rows<A: AutodiffBackend>() -> [f64; 3] {
    let (n, t) = mlp_training::<A>(1024, 64, 60);
    let train64 = row(
        "train MLP 1024-512-512-1 hinge (batch 64)",
        n,
        t,
        "pairs/s",
        "compare selector_torch.py",
    );
    let (n, t) = mlp_training::<A>(1024, 256, 20);
    let train256 = row(
        "train MLP 1024-512-512-1 hinge (batch 256)",
        n,
        t,
        "pairs/s",
        "",
    );
    let (n, t) = mlp_scoring::<A::InnerBackend>(1024, 65_536, 8192);
    let scoring = row(
        "score MLP 1024-512-512-1",
        n,
        t,
        "rows/s",
        &format!("1.7M → {:.1}s", RELEASE_ANSWERS * t / n as f64),
    );
    [train64, train256, scoring]
}

/// The built-in model's rows: featurize, train, featurize + score.
fn built_in_rows(answers_wanted: usize) {
    let figures = answers_wanted / 8;
    let (answers, pairs) = synthetic::dataset(figures, 4, 10, 1);

    let featurizer = HashedFeaturizer::new(HashedFeaturizerConfig::default());
    let start = Instant::now();
    let batch = featurize_batch(&featurizer, &answers);
    let t = start.elapsed().as_secs_f64();
    row(
        "featurize (hashed + signals)",
        batch.rows,
        t,
        "answers/s",
        &format!("1.7M → {:.1}s", RELEASE_ANSWERS * t / batch.rows as f64),
    );

    let config = TrainConfig::new().with_epochs(1).with_validation_share(0.0);
    let cancel = AtomicBool::new(false);
    let train_pairs = &pairs[..pairs.len().min(20_000)];
    let start = Instant::now();
    let trained = train::<Ad>(
        TrainData {
            answers: &answers,
            pairs: train_pairs,
            embeddings: None,
        },
        &config,
        &Default::default(),
        &mut |_| {},
        &cancel,
    )
    .expect("training runs");
    let t = start.elapsed().as_secs_f64();
    row(
        "train built-in (1 epoch, batch 64)",
        train_pairs.len(),
        t,
        "pairs/s",
        "hidden [128, 64], 2^16 buckets × 3",
    );

    let start = Instant::now();
    let config256 = config.clone().with_batch_size(256);
    let data = TrainData {
        answers: &answers,
        pairs: train_pairs,
        embeddings: None,
    };
    train::<Ad>(data, &config256, &Default::default(), &mut |_| {}, &cancel)
        .expect("training runs");
    let t = start.elapsed().as_secs_f64();
    row(
        "train built-in (1 epoch, batch 256)",
        train_pairs.len(),
        t,
        "pairs/s",
        "",
    );

    let start = Instant::now();
    let scores = trained.score(&answers).expect("scores");
    let t = start.elapsed().as_secs_f64();
    row(
        "featurize + score built-in",
        scores.len(),
        t,
        "answers/s",
        &format!("1.7M → {:.1}s", RELEASE_ANSWERS * t / scores.len() as f64),
    );
}

fn main() {
    vital::process::tune_allocator(); // as `vital` itself runs
    let answers_wanted: usize = std::env::var("SELECTOR_BENCH_ANSWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "selector bench: {threads} threads, burn NdArray backend (CPU){}\n",
        std::env::var("SELECTOR_BENCH_BACKEND")
            .map(|b| format!("; the MLP rows on {b}"))
            .unwrap_or_default()
    );
    println!(
        "{:<44} {:>9} {:>10} {:>12} {:<10} note",
        "what", "count", "time", "rate", "unit"
    );

    // SELECTOR_BENCH_MLP_ONLY=1: only the MLP rows and their PyTorch twins (for a profile).
    if std::env::var_os("SELECTOR_BENCH_MLP_ONLY").is_none() {
        built_in_rows(answers_wanted);
    }
    // SELECTOR_BENCH_BACKEND=wgpu|cuda: the MLP rows on that backend (built with its feature),
    // against PyTorch on its GPU (tools/gpu_check.sh); the other rows stay on the CPU.
    let backend: vital::selector::BackendKind = std::env::var("SELECTOR_BENCH_BACKEND")
        .unwrap_or_else(|_| "cpu".into())
        .parse()
        .unwrap();
    if let Err(e) = backend.probe() {
        panic!("SELECTOR_BENCH_BACKEND={backend}: {e:#}");
    }
    let [train64, train256, scoring] = match backend {
        #[cfg(feature = "wgpu")]
        vital::selector::BackendKind::Wgpu => mlp_rows::<Autodiff<burn::backend::Wgpu>>(),
        #[cfg(feature = "cuda")]
        vital::selector::BackendKind::Cuda => mlp_rows::<Autodiff<burn::backend::Cuda>>(),
        _ => mlp_rows::<Ad>(),
    };
    if backend != vital::selector::BackendKind::Cpu {
        // The matrix rows and the PyTorch CPU twin are about the CPU backend.
        return;
    }
    // The first layer's product at batch 256 (512 rows), and a dense layer of the MiniLM text
    // encoder on a batch of 32 texts of 40 tokens.
    let matmuls = [
        matmul_row(512, 1024, 512, 200),
        matmul_row(1280, 384, 1536, 100),
    ];
    let mut compared: Vec<(&str, f64)> = matmuls.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    compared.extend([
        ("train MLP 1024-512-512-1 hinge (batch 64)", train64),
        ("train MLP 1024-512-512-1 hinge (batch 256)", train256),
        ("score MLP 1024-512-512-1", scoring),
    ]);
    compare_with_torch(&compared);
}
