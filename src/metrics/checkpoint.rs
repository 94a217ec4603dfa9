//! A run's trainable state as host data: weights, BatchNorm buffers and optimiser state, each a
//! named `f32` tensor. The training side fills it; the run-file side writes it as safetensors.

use serde::{Deserialize, Serialize};

/// One named tensor on the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTensor {
    /// Stable name, e.g. `block1.fc.weight`, `block1.bn.running_mean`, `optim.m.block1.fc.weight`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Everything needed to continue a run exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Optimiser steps completed.
    pub step: u64,
    /// The optimiser's own step counter (Adam's bias correction).
    pub optimizer_steps: u64,
    /// Weights, BN running statistics and optimiser state.
    pub tensors: Vec<NamedTensor>,
    /// Where the batch order stands, so that a resumed run seeks to it instead of replaying
    /// every step's shuffle; `None` in files written before it was saved (then it is replayed).
    pub sampler: Option<SamplerPosition>,
}

/// The position of a run's batch sampler: the epoch, the generator's word position before that
/// epoch's shuffle, and how far into the shuffled order the batches have got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerPosition {
    /// Epochs started.
    pub epoch: u64,
    /// The ChaCha8 word position before the current epoch's shuffle.
    pub epoch_start: u128,
    /// Samples of the current epoch's order already used.
    pub cursor: u64,
}

impl Checkpoint {
    /// The tensor with this name.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Prefix of optimiser first-moment (momentum) tensors.
    pub const MOMENT1: &'static str = "optim.m.";
    /// Prefix of optimiser second-moment tensors.
    pub const MOMENT2: &'static str = "optim.v.";
}
