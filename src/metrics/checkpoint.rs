//! A run's trainable state as host data: weights, BatchNorm buffers and optimiser state, each a
//! named `f32` tensor. The training side fills it; the run-file side writes it as safetensors.

use serde::{Deserialize, Serialize};

/// One named tensor on the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
