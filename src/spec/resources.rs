//! How much memory a training run needs, estimated from the spec, the batch size, the optimiser,
//! the data set and the device before anything is allocated, so that a network which cannot fit (one conv
//! layer of 65,536 channels on 28×28 images wants ~26 GB of activations per batch of 128) is
//! refused with the estimate instead of being killed mid-run.
//!
//! The model (all `f32`, 4 bytes a value):
//!
//! - **parameters**: every tensor (weights and BN buffers) twice, the value and its gradient;
//! - **optimiser**: one buffer per trained value for SGD with momentum, two for Adam/AdamW, none
//!   for plain SGD;
//! - **activations**: per layer the batch's output, times [`ACTIVATION_COPIES`] (the saved
//!   output and its gradient), what the op saves for its backward pass (`spec/op.rs`: one
//!   output's worth for a normalisation, its normalised input, and a convolution, its unfolded
//!   input), one more for a layer a skip adds into, plus the input batch. On the GPU burn's
//!   BatchNorm and convolution keep more temporaries than the fused CPU kernels: [`GPU_FACTOR`]
//!   more, and on a remote device (burn's ops on the server; the estimate is checked against
//!   this machine's limit, which errs on the safe side when the server has more).
//! - **evaluation**: the validation split goes through the network [`EVAL_CHUNK`] samples at a
//!   time whatever the batch size, without gradients: per sample the largest layer's input and
//!   its output's copies (as above), a projection's output and the sources of the skips open
//!   across it. Evaluation runs between steps, so the total counts the larger of it and the
//!   training activations. A 1,024-channel 3×3 conv on 28×28 images at batch 1 needs 16 MB for a
//!   step but peaked at 4.7 GB evaluating (issue 19); this estimate gives 4.8 GB.
//! - **data**: every sample of the data set (training and validation) in memory, its features as
//!   `f32` plus its target ([`DatasetSpec::expected_size`]: folder sets at their standard sizes).
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
//! (Estimates with the factors below, before the data (31 MB for MNIST-10k) was counted; a first
//! version with three copies per output and two per BN overestimated by 1.5–3×.)

use super::config::{DeviceChoice, OptimizerSpec, TrainConfig};
use super::dataset::DatasetSpec;
use super::net::LayerSpec;
use super::op::describe;
use super::tensors::expected_tensors;
use super::validate::{LayerInfo, Shape, ValidSpec};

/// Copies of each layer output a training step holds at its peak (forward output, gradient).
pub const ACTIVATION_COPIES: u64 = 2;
/// How much more activation memory the GPU path keeps than the CPU path.
pub const GPU_FACTOR: f64 = 1.5;
/// Samples the evaluation on the validation split puts through the network at once, whatever
/// the batch size (`train::Session::evaluate`).
pub const EVAL_CHUNK: usize = 500;

const F32: u64 = 4;

/// A run's memory needs in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights and BN buffers with their gradients.
    pub parameters: u64,
    /// Optimiser state (momentum buffers, Adam moments).
    pub optimizer: u64,
    /// Activations of one training step at the batch size.
    pub activations: u64,
    /// Activations of one evaluation chunk ([`EVAL_CHUNK`] samples, no gradients); it runs
    /// between steps, so only the larger of this and [`MemoryEstimate::activations`] counts.
    pub evaluation: u64,
    /// The data set in memory: every sample's features as `f32` and its target.
    pub data: u64,
}

impl MemoryEstimate {
    /// Everything together (a training step and an evaluation never run at once).
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_add(self.optimizer)
            .saturating_add(self.activations.max(self.evaluation))
            .saturating_add(self.data)
    }

    /// `1.2 GB (activations 1.1 GB, evaluation 80 MB, parameters 52 MB, optimiser 26 MB,
    /// data 31 MB)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (activations {}, evaluation {}, parameters {}, optimiser {}, data {})",
            format_bytes(self.total()),
            format_bytes(self.activations),
            format_bytes(self.evaluation),
            format_bytes(self.parameters),
            format_bytes(self.optimizer),
            format_bytes(self.data)
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

/// The memory a training run of `v` with `config` on `dataset` needs (see the module docs for
/// the model).
pub fn estimate_memory(
    v: &ValidSpec,
    config: &TrainConfig,
    dataset: &DatasetSpec,
) -> MemoryEstimate {
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
    let (samples, features) = dataset.expected_size();
    let device = |bytes: u64| match config.device {
        DeviceChoice::Gpu | DeviceChoice::Remote(_) => (bytes as f64 * GPU_FACTOR) as u64,
        DeviceChoice::Cpu => bytes,
    };
    let chunk = EVAL_CHUNK.min(samples.max(1)) as u64;
    MemoryEstimate {
        parameters: all.saturating_mul(2 * F32),
        optimizer: trained.saturating_mul(slots * F32),
        activations: device(bytes_for(training_values(v), config.batch_size as u64)),
        evaluation: device(bytes_for(evaluation_values(v), chunk)),
        data: bytes_for((features as u64).saturating_add(1), samples as u64),
    }
}

/// `values` per sample times `samples`, as `f32` bytes.
fn bytes_for(values: u64, samples: u64) -> u64 {
    values.saturating_mul(samples).saturating_mul(F32)
}

/// Values per sample a pass holds for a layer whose input has shape `input`: the output and
/// its gradient (or, without gradients, the temporaries of the same size), what the op saves
/// for its backward pass ([`OpFacts::saved`](super::OpFacts): a normalisation's normalised
/// input, a convolution's unfolded input), one more output for the sum a skip adds into it.
fn layer_values(layer: &LayerSpec, input: Shape, info: &LayerInfo) -> u64 {
    let out = info.output.numel() as u64;
    let saved = describe(layer, input).map_or(0, |f| f.saved);
    out.saturating_mul(ACTIVATION_COPIES + u64::from(info.skip_in.is_some()))
        .saturating_add(saved)
}

/// Values per sample a training step holds: every layer's outputs (kept for the backward pass)
/// and the input.
fn training_values(v: &ValidSpec) -> u64 {
    let mut per_sample: u64 = v.input.numel() as u64;
    let mut input = v.input;
    for (layer, info) in v.spec.layers.iter().zip(&v.layers) {
        per_sample = per_sample.saturating_add(layer_values(layer, input, info));
        input = info.output;
    }
    for s in &v.skips {
        // A projection's output and its BN's normalised copy.
        if s.params > 0 {
            per_sample = per_sample.saturating_add(2 * s.to_shape.numel() as u64);
        }
    }
    per_sample
}

/// Values per sample an evaluation holds at its peak: nothing is kept for a backward pass, so
/// the largest layer counts, with its input, its output's copies, a projection's output and the
/// sources of the skips still open across it.
fn evaluation_values(v: &ValidSpec) -> u64 {
    let n = v.layers.len();
    // open[i]: values of skip sources held while layer i runs (source before i, target i or later).
    let mut open = vec![0i128; n + 1];
    for s in &v.skips {
        let start = s.from.map_or(0, |f| f + 1);
        open[start] += s.from_shape.numel() as i128;
        open[s.to + 1] -= s.from_shape.numel() as i128;
    }
    let mut held: i128 = 0;
    let mut input = v.input;
    let mut peak = input.numel() as u64;
    for (i, (layer, info)) in v.spec.layers.iter().zip(&v.layers).enumerate() {
        held += open[i];
        let projection = info
            .skip_in
            .filter(|&k| v.skips[k].params > 0)
            .map_or(0, |k| 2 * v.skips[k].to_shape.numel() as u64);
        let here = (input.numel() as u64)
            .saturating_add(layer_values(layer, input, info))
            .saturating_add(projection)
            .saturating_add(held.max(0) as u64);
        peak = peak.max(here);
        input = info.output;
    }
    peak
}
