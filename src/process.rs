//! Process-wide settings, made once before any thread starts: first thing in `main`, and in the
//! benches, so that they measure what `vital` runs.

/// Keeps freed memory for reuse instead of handing it back to the kernel at once.
///
/// burn's CPU backend allocates a fresh buffer for most tensor operations. glibc serves blocks
/// over its mmap threshold (128 KiB, raised dynamically up to 32 MiB) with `mmap` and unmaps them
/// on free, so every step of training paid page faults on memory it had just released: with
/// the threshold at 256 MiB, the selector's MLP trained 22–55% faster and scored 29% faster, and
/// the text encoder ran 2–3% faster (`cargo bench --bench selector`, BENCHMARKS.md). The cost is
/// that the process keeps up to its peak heap mapped until it exits. Other C libraries: no-op.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 256 << 20;
        const TRIM_THRESHOLD: libc::c_int = 512 << 20;
        // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
        // A refused value (return 0) leaves glibc's defaults, which are correct, only slower.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}
