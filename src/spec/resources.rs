//! How much memory a training run needs, estimated from the spec, the batch size, the optimiser
//! and the device before anything is allocated, so that a network which cannot fit (one conv
//! layer of 65,536 channels on 28×28 images wants ~26 GB of activations per batch of 128) is
//! refused with the estimate instead of being killed mid-run.
//!
//! The model (all `f32`, 4 bytes a value):
//!
//! - **parameters**: every tensor (weights and BN buffers) twice, the value and its gradient;
//! - **optimiser**: one buffer per trained value for SGD with momentum, two for Adam/AdamW, none
//!   for plain SGD;
//! - **activations**: per layer the batch's output, times [`ACTIVATION_COPIES`] (the saved
//!   output and its gradient), one more for a BatchNorm (its normalised input), a convolution
//!   (its unfolded input) and a layer a skip adds into, plus the input batch. On the GPU burn's
//!   BatchNorm and convolution keep more temporaries than the fused CPU kernels: [`GPU_FACTOR`]
//!   more.
//!
//! The estimate errs on the safe side. Peak resident memory of CPU runs on MNIST (`reslab train`
//! under `/usr/bin/time`, 2026-11-30; about 115 MB of it is the process, the data and burn
//! themselves), against the estimate:
//!
//! | run | estimate | peak RSS |
//! |---|---|---|
//! | mlp-res-20, width 1024, batch 1024 | 0.96 GB | 0.80 GB |
//! | 4 conv 3×3 of 64 channels with BN and 2 skips, batch 256 | 1.7 GB | 0.93 GB |
//! | the same, batch 512, no probes | 3.5 GB | 1.68 GB |
//!
//! (Estimates with the factors below; a first version with three copies per output and two per
//! BN overestimated by 1.5–3×.)

use super::config::{DeviceChoice, OptimizerSpec, TrainConfig};
use super::net::LayerOp;
use super::tensors::expected_tensors;
use super::validate::ValidSpec;

/// Copies of each layer output a training step holds at its peak (forward output, gradient).
pub const ACTIVATION_COPIES: u64 = 2;
/// Extra copies for a BatchNorm (the normalised input kept for the backward pass) and a
/// convolution (its unfolded input).
pub const BATCH_NORM_EXTRA: u64 = 1;
/// How much more activation memory the GPU path keeps than the CPU path.
pub const GPU_FACTOR: f64 = 1.5;

/// A run's memory needs in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights and BN buffers with their gradients.
    pub parameters: u64,
    /// Optimiser state (momentum buffers, Adam moments).
    pub optimizer: u64,
    /// Activations of one training step at the batch size.
    pub activations: u64,
}

impl MemoryEstimate {
    /// Everything together.
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_add(self.optimizer)
            .saturating_add(self.activations)
    }

    /// `1.2 GB (activations 1.1 GB, parameters 52 MB, optimiser 26 MB)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (activations {}, parameters {}, optimiser {})",
            format_bytes(self.total()),
            format_bytes(self.activations),
            format_bytes(self.parameters),
            format_bytes(self.optimizer)
        )
    }
}

/// Bytes in words with three significant digits: `512 B`, `3.4 kB`, `26.3 GB`.
pub fn format_bytes(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The memory a training run of `v` with `config` needs (see the module docs for the model).
pub fn estimate_memory(v: &ValidSpec, config: &TrainConfig) -> MemoryEstimate {
    const F32: u64 = 4;
    let tensors = expected_tensors(v);
    let all: u64 = tensors.iter().map(|t| t.numel()).sum();
    let trained: u64 = tensors
        .iter()
        .filter(|t| t.trainable)
        .map(|t| t.numel())
        .sum();
    let slots = match config.optimizer {
        OptimizerSpec::Sgd { momentum, .. } if momentum > 0.0 => 1,
        OptimizerSpec::Sgd { .. } => 0,
        OptimizerSpec::Adam { .. } | OptimizerSpec::AdamW { .. } => 2,
    };
    let batch = config.batch_size as u64;
    let mut per_sample: u64 = v.input.numel() as u64;
    for (layer, info) in v.spec.layers.iter().zip(&v.layers) {
        let copies = ACTIVATION_COPIES
            + match layer.op {
                LayerOp::BatchNorm { .. } | LayerOp::Conv2d { .. } => BATCH_NORM_EXTRA,
                _ => 0,
            }
            + u64::from(info.skip_in.is_some());
        per_sample = per_sample.saturating_add((info.output.numel() as u64).saturating_mul(copies));
    }
    for s in &v.skips {
        // A projection's output and its BN's normalised copy.
        if s.params > 0 {
            per_sample = per_sample.saturating_add(2 * s.to_shape.numel() as u64);
        }
    }
    let mut activations = per_sample.saturating_mul(batch).saturating_mul(F32);
    if config.device == DeviceChoice::Gpu {
        activations = (activations as f64 * GPU_FACTOR) as u64;
    }
    MemoryEstimate {
        parameters: all.saturating_mul(2 * F32),
        optimizer: trained.saturating_mul(slots * F32),
        activations,
    }
}
