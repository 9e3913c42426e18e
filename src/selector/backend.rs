//! Choosing where training runs. CPU (burn's NdArray) is always built; `wgpu` and `cuda` need
//! the Cargo features of the same names. Scoring always runs on the CPU copy of the model.

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

/// Runs [`train`] on the chosen backend's default device.
pub fn train_on(
    kind: BackendKind,
    data: TrainData<'_>,
    config: &TrainConfig,
    progress: &mut dyn FnMut(TrainProgress),
    cancel: &AtomicBool,
) -> Result<TrainedSelector> {
    kind.ensure_compiled_in()?;
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
