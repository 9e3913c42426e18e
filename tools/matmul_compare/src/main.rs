//! GFLOP/s of one f32 matrix product per shape, for three kernels: matrixmultiply (burn-ndarray's),
//! the gemm crate, OpenBLAS (CBLAS). 2 threads each (`THREADS` to change): matrixmultiply through
//! `MATMUL_NUM_THREADS`, gemm through rayon, OpenBLAS through `OPENBLAS_NUM_THREADS`. Shapes: the
//! MiniLM encoder's dense layers on 32 texts of 40 tokens, a ViT-B/16 layer on 8 images, the
//! selector MLP's first layer at 256 pairs.

use std::time::Instant;

fn main() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    // Read once by matrixmultiply and OpenBLAS; set before any thread starts.
    std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    std::env::set_var("OPENBLAS_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    let shapes = [
        (1280usize, 384usize, 384usize),
        (1280, 384, 1536),
        (1280, 1536, 384),
        (1576, 768, 768),
        (1576, 768, 3072),
        (512, 1024, 512),
    ];
    println!("{threads} threads; GFLOP/s (best of 3 runs of 10 products)");
    println!(
        "{:<18} {:>15} {:>8} {:>9}",
        "m x k x n", "matrixmultiply", "gemm", "openblas"
    );
    for (m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64 * 10.0;
        let best = |f: &mut dyn FnMut()| {
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..10 {
                        f();
                    }
                    flops / t.elapsed().as_secs_f64() / 1e9
                })
                .fold(0.0, f64::max)
        };
        // SAFETY: every pointer covers its matrix with the strides given.
        let mm = best(&mut || unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        });
        let par = gemm::Parallelism::Rayon(threads);
        let gm = best(&mut || unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            )
        });
        let ob = best(&mut || unsafe {
            use cblas_sys::{CBLAS_LAYOUT::CblasRowMajor, CBLAS_TRANSPOSE::CblasNoTrans};
            cblas_sys::cblas_sgemm(
                CblasRowMajor,
                CblasNoTrans,
                CblasNoTrans,
                m as i32,
                n as i32,
                k as i32,
                1.0,
                a.as_ptr(),
                k as i32,
                b.as_ptr(),
                n as i32,
                0.0,
                c.as_mut_ptr(),
                n as i32,
            )
        });
        println!(
            "{:<18} {mm:>15.1} {gm:>8.1} {ob:>9.1}",
            format!("{m}x{k}x{n}")
        );
    }
}
