//! Choosing where training, scoring and encoding run. CPU (burn's NdArray) is always built;
//! `wgpu` and `cuda` need the Cargo features of the same names, and a machine that can run them:
//! [`BackendKind::probe`] says which device would be used, or what is missing and how to get it,
//! before burn would panic on it.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Result};

use super::train::{train, TrainConfig, TrainData, TrainProgress};
use super::trained::TrainedSelector;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    #[default]
    Cpu,
    Wgpu,
    Cuda,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Texts (or images) per encoder forward pass when none is given. On the CPU backend small
    /// batches are fastest, one per core at a time (all-MiniLM-L6-v2, 300 texts, two cores:
    /// batch 8 took 2.8 s, 16 took 3.8 s, 32 took 6.3 s: a small batch's intermediate tensors
    /// stay in cache); a GPU wants large ones.
    pub fn encoder_batch_size(self) -> usize {
        match self {
            BackendKind::Cpu => 8,
            BackendKind::Wgpu | BackendKind::Cuda => 64,
        }
    }

    /// A `--batch-size`-style flag, else [`Self::encoder_batch_size`].
    pub fn encoder_batch_size_or(self, given: Option<u32>) -> usize {
        given.map_or(self.encoder_batch_size(), |b| b as usize)
    }

    /// Whether this binary was built with the backend.
    pub fn is_compiled_in(self) -> bool {
        match self {
            BackendKind::Cpu => true,
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The device this backend would run on here (its name), or an error that says what is
    /// missing (not compiled in, no Vulkan loader, no Vulkan driver, no CUDA driver or NVRTC)
    /// and how to install it. Probed once per process.
    pub fn probe(self) -> Result<String> {
        self.ensure_compiled_in()?;
        match self {
            BackendKind::Cpu => Ok("cpu".to_string()),
            BackendKind::Wgpu => probe_wgpu(),
            BackendKind::Cuda => probe_cuda(),
        }
    }

    fn ensure_compiled_in(self) -> Result<()> {
        if !self.is_compiled_in() {
            bail!(
                "backend {0} is not compiled in: rebuild with --features {0}",
                self.name()
            );
        }
        Ok(())
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" | "ndarray" => Ok(BackendKind::Cpu),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => bail!("unknown backend `{other}`: expected cpu, wgpu or cuda"),
        }
    }
}

/// Whether the shared library `name` loads (searched as the dynamic loader searches).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn library_loads(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: dlopen reads a NUL-terminated name; the handle is closed at once and nothing
    // from the library is used.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

/// Where a Vulkan loader looks for drivers when told (for the error message).
#[cfg(feature = "wgpu")]
fn vulkan_driver_env() -> String {
    ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"]
        .iter()
        .filter_map(|var| std::env::var(var).ok().map(|v| format!(" ({var}={v})")))
        .collect()
}

#[cfg(feature = "wgpu")]
fn probe_wgpu() -> Result<String> {
    static PROBE: std::sync::OnceLock<std::result::Result<String, String>> =
        std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            // burn's wgpu backend runs on Vulkan on Linux and Windows (Metal on macOS).
            if cfg!(target_os = "linux") && !library_loads("libvulkan.so.1") {
                return Err(
                    "backend wgpu: no Vulkan loader (libvulkan.so.1) on this machine; install it \
                     and a Vulkan driver (Debian/Ubuntu: apt install libvulkan1 plus your GPU's \
                     driver, or mesa-vulkan-drivers for lavapipe, a Vulkan device on the CPU), \
                     or use --backend cpu"
                        .to_string(),
                );
            }
            let backends = if cfg!(target_os = "macos") {
                wgpu::Backends::METAL
            } else {
                wgpu::Backends::VULKAN
            };
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends,
                ..wgpu::InstanceDescriptor::new_without_display_handle()
            });
            let adapters = futures_lite::future::block_on(instance.enumerate_adapters(backends));
            match adapters.first() {
                Some(adapter) => {
                    let info = adapter.get_info();
                    Ok(format!(
                        "{} ({:?}, {:?})",
                        info.name, info.device_type, info.backend
                    ))
                }
                None => Err(format!(
                    "backend wgpu: the Vulkan loader found no device: no Vulkan driver (ICD) is \
                     installed or visible{}; install your GPU's driver, or mesa-vulkan-drivers \
                     (lavapipe, a Vulkan device on the CPU); VK_DRIVER_FILES names a driver's \
                     json file; or use --backend cpu",
                    vulkan_driver_env()
                )),
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

#[cfg(not(feature = "wgpu"))]
fn probe_wgpu() -> Result<String> {
    bail!("backend wgpu is not compiled in: rebuild with --features wgpu")
}

#[cfg(feature = "cuda")]
fn probe_cuda() -> Result<String> {
    if !library_loads("libcuda.so.1") && !library_loads("libcuda.so") {
        bail!(
            "backend cuda: no NVIDIA driver (libcuda.so.1) on this machine: install the driver, \
             or use --backend wgpu or cpu"
        );
    }
    // burn compiles its kernels at run time with NVRTC, from the CUDA toolkit.
    let nvrtc = [
        "libnvrtc.so",
        "libnvrtc.so.13",
        "libnvrtc.so.12",
        "libnvrtc.so.11.2",
    ];
    if !nvrtc.iter().any(|name| library_loads(name)) {
        bail!(
            "backend cuda: NVRTC (libnvrtc.so, from the CUDA toolkit) is not on the library \
             path: add the toolkit's lib64 folder to LD_LIBRARY_PATH (e.g. \
             LD_LIBRARY_PATH=/usr/local/cuda/lib64)"
        );
    }
    Ok("cuda:0".to_string())
}

#[cfg(not(feature = "cuda"))]
fn probe_cuda() -> Result<String> {
    bail!("backend cuda is not compiled in: rebuild with --features cuda")
}

/// Runs [`train`] on the chosen backend's default device.
pub fn train_on(
    kind: BackendKind,
    data: TrainData<'_>,
    config: &TrainConfig,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> Result<TrainedSelector> {
    kind.probe()?;
    match kind {
        BackendKind::Cpu => {
            use burn::backend::{Autodiff, NdArray};
            train::<Autodiff<NdArray>>(data, config, &Default::default(), progress, cancel)
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            use burn::backend::{wgpu::WgpuDevice, Autodiff, Wgpu};
            train::<Autodiff<Wgpu>>(data, config, &WgpuDevice::default(), progress, cancel)
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            use burn::backend::{cuda::CudaDevice, Autodiff, Cuda};
            train::<Autodiff<Cuda>>(data, config, &CudaDevice::default(), progress, cancel)
        }
        #[allow(unreachable_patterns)] // reachable only when a GPU feature is off
        other => bail!("backend {other} is not compiled in: rebuild with --features {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_names() {
        for kind in [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda] {
            assert_eq!(kind.name().parse::<BackendKind>().expect("parses"), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(
            " CPU ".parse::<BackendKind>().expect("parses"),
            BackendKind::Cpu
        );
        let err = "tpu".parse::<BackendKind>().expect_err("unknown");
        assert!(err.to_string().contains("cpu, wgpu or cuda"));
        assert_eq!(BackendKind::default(), BackendKind::Cpu);
    }

    #[test]
    fn the_cpu_always_runs_and_a_backend_not_built_in_says_how_to_get_it() {
        assert_eq!(BackendKind::Cpu.probe().unwrap(), "cpu");
        for kind in [BackendKind::Wgpu, BackendKind::Cuda] {
            if !kind.is_compiled_in() {
                let err = kind.probe().unwrap_err().to_string();
                assert_eq!(
                    err,
                    format!("backend {kind} is not compiled in: rebuild with --features {kind}")
                );
            }
        }
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn missing_backend_says_how_to_get_it() {
        let err = train_on(
            BackendKind::Wgpu,
            TrainData {
                answers: &[],
                pairs: &[],
                embeddings: None,
            },
            &TrainConfig::new(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .expect_err("not compiled in");
        assert_eq!(
            err.to_string(),
            "backend wgpu is not compiled in: rebuild with --features wgpu"
        );
    }
}
