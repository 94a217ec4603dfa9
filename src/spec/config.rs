//! Training configuration: plain serde data.

pub use super::device::DeviceChoice;
use super::strict::no_fields;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The most optimiser steps a run may take (history steps are stored as `u32`, and a step count
/// near `u64::MAX` would wrap around).
pub const MAX_STEPS: u64 = 100_000_000;

/// Everything about how a run trains, beside the network and the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The optimiser and its hyper-parameters.
    pub optimizer: OptimizerSpec,
    /// Peak learning rate.
    pub lr: f64,
    /// How the learning rate changes after warm-up.
    pub schedule: Schedule,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: u64,
    /// Weight decay: L2 added to the gradient for SGD and Adam, decoupled for AdamW.
    pub weight_decay: f64,
    /// Samples per step.
    pub batch_size: usize,
    /// How long to train.
    pub duration: Duration,
    /// Seed of the initialisation, the data split and the batch order.
    pub seed: u64,
    /// Record probes every this many steps (0: never).
    pub probe_every: u64,
    /// Evaluate on the validation split every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Where to train.
    pub device: DeviceChoice,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerSpec::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            lr: 0.05,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            weight_decay: 0.0,
            batch_size: 128,
            duration: Duration::Steps(400),
            seed: 0,
            probe_every: 10,
            eval_every: 100,
            device: DeviceChoice::Cpu,
        }
    }
}

impl TrainConfig {
    /// The lab's starting settings, before a user changes them: 400 steps, probes every 10
    /// steps, validation every 50, the rest [`TrainConfig::default`].
    pub fn lab_default() -> Self {
        Self {
            duration: Duration::Steps(400),
            probe_every: 10,
            eval_every: 50,
            ..Self::default()
        }
    }
}

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// SGD with (heavy-ball or Nesterov) momentum, PyTorch's update rule.
    Sgd {
        /// Momentum coefficient (0: plain SGD).
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam (Kingma & Ba 2015) with bias correction.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Added to the root of the second moment.
        epsilon: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.
    AdamW {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Added to the root of the second moment.
        epsilon: f64,
    },
}

impl OptimizerSpec {
    /// Adam with the usual defaults.
    pub fn adam() -> Self {
        Self::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// AdamW with the usual defaults.
    pub fn adamw() -> Self {
        Self::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// `(β₁, β₂, ε, decoupled weight decay)` of Adam or AdamW; `None` for SGD.
    pub fn adam_parts(&self) -> Option<(f64, f64, f64, bool)> {
        match *self {
            Self::Sgd { .. } => None,
            Self::Adam {
                beta1,
                beta2,
                epsilon,
            } => Some((beta1, beta2, epsilon, false)),
            Self::AdamW {
                beta1,
                beta2,
                epsilon,
            } => Some((beta1, beta2, epsilon, true)),
        }
    }
}

/// Learning-rate schedule after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The peak rate throughout.
    #[serde(deserialize_with = "no_fields")]
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between drops.
        every: u64,
        /// Factor per drop.
        gamma: f64,
    },
    /// Cosine decay from the peak to `final_fraction × lr` at the last step.
    Cosine {
        /// Final rate as a fraction of the peak.
        #[serde(default)]
        final_fraction: f64,
    },
}

/// How long a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duration {
    /// A number of optimiser steps.
    Steps(u64),
    /// A number of passes over the training split.
    Epochs(u64),
}

/// Why a [`TrainConfig`] cannot be used.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ConfigError {
    /// A field out of range.
    #[error("train config: {field} = {value} is invalid ({reason})")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value as text.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
}

fn bad(field: &'static str, value: impl ToString, reason: &'static str) -> ConfigError {
    ConfigError::BadValue {
        field,
        value: value.to_string(),
        reason,
    }
}

impl TrainConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(bad("lr", self.lr, "must be a finite number > 0"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad(
                "weight_decay",
                self.weight_decay,
                "must be a finite number ≥ 0",
            ));
        }
        if self.batch_size == 0 || self.batch_size > 65_536 {
            return Err(bad("batch_size", self.batch_size, "must be in 1..=65536"));
        }
        match self.duration {
            Duration::Steps(0) | Duration::Epochs(0) => {
                return Err(bad("duration", "0", "must be at least 1"));
            }
            Duration::Steps(n) | Duration::Epochs(n) if n > MAX_STEPS => {
                return Err(bad("duration", n, "must be at most 100,000,000"));
            }
            _ => {}
        }
        let unit = |x: f64| x.is_finite() && (0.0..1.0).contains(&x);
        match self.optimizer {
            OptimizerSpec::Sgd { momentum, .. } => {
                if !unit(momentum) {
                    return Err(bad("optimizer.momentum", momentum, "must be in [0, 1)"));
                }
            }
            _ => {
                let (beta1, beta2, epsilon, _) = self.optimizer.adam_parts().unwrap_or_default();
                if !unit(beta1) {
                    return Err(bad("optimizer.beta1", beta1, "must be in [0, 1)"));
                }
                if !unit(beta2) {
                    return Err(bad("optimizer.beta2", beta2, "must be in [0, 1)"));
                }
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(bad("optimizer.epsilon", epsilon, "must be > 0"));
                }
            }
        }
        match self.schedule {
            Schedule::Constant => {}
            Schedule::Step { every, gamma } => {
                if every == 0 {
                    return Err(bad("schedule.every", every, "must be at least 1"));
                }
                if !(gamma.is_finite() && gamma > 0.0) {
                    return Err(bad("schedule.gamma", gamma, "must be a finite number > 0"));
                }
            }
            Schedule::Cosine { final_fraction } => {
                if !(final_fraction.is_finite() && (0.0..=1.0).contains(&final_fraction)) {
                    return Err(bad(
                        "schedule.final_fraction",
                        final_fraction,
                        "must be in [0, 1]",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The number of optimiser steps for a training split of `train_samples` samples
    /// (saturating: callers refuse more than [`MAX_STEPS`]).
    pub fn total_steps(&self, train_samples: usize) -> u64 {
        match self.duration {
            Duration::Steps(n) => n,
            Duration::Epochs(e) => {
                let per_epoch = (train_samples / self.batch_size.max(1)).max(1) as u64;
                e.saturating_mul(per_epoch)
            }
        }
    }

    /// The learning rate used at `step` (0-based) of a run of `total` steps.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let t = step - self.warmup_steps;
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { every, gamma } => self.lr * gamma.powi((t / every.max(1)) as i32),
            Schedule::Cosine { final_fraction } => {
                let span = total.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = (t as f64 / span).min(1.0);
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                self.lr * (final_fraction + (1.0 - final_fraction) * cos)
            }
        }
    }
}
