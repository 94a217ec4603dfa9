//! The small host-side records a run produces: plain data, no burn, no egui.

use serde::{Deserialize, Serialize};

/// Number of histogram bins in [`ActStats`].
pub const HIST_BINS: usize = 32;

/// Names of everything a run's probes report on, and the data it is fed, sent once when a run
/// starts. Records list their entries in the same order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunLayout {
    /// Layer names, input to output.
    pub layers: Vec<String>,
    /// Names of the BatchNorm layers, in order.
    pub batch_norms: Vec<String>,
    /// Channels of each BatchNorm layer.
    pub batch_norm_channels: Vec<usize>,
    /// Names of the layers that receive a skip, in skip order.
    pub skips: Vec<String>,
    /// Stable names of the trainable tensors, in module order.
    pub params: Vec<String>,
    /// The `[mean, std]` per input channel (images) or feature the inputs were normalised with:
    /// the training split's. Empty in runs saved before run-file version 3 (then recomputed
    /// from the dataset where needed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_norm: Vec<[f32; 2]>,
    /// Names of the LayerNorm and GroupNorm layers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affine_norms: Vec<String>,
    /// Channels of each LayerNorm or GroupNorm layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affine_norm_channels: Vec<usize>,
    /// Names of the run's evaluation sets beside its validation split, in order; their
    /// validation series carry the set's name where layer series carry the layer's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval_sets: Vec<String>,
    /// Names of the layers whose output is a token sequence, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_layers: Vec<String>,
    /// Names of the self-attention layers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<String>,
    /// `[heads, tokens]` of each self-attention layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention_shape: Vec<[usize; 2]>,
}

/// One optimiser step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// Steps completed, counting this one (1-based).
    pub step: u64,
    /// Training loss of the batch (before the update).
    #[serde(with = "super::finite::one")]
    pub loss: f32,
    /// Batch accuracy in [0, 1]; NaN for regression.
    #[serde(with = "super::finite::one")]
    pub accuracy: f32,
    /// Learning rate used.
    #[serde(with = "super::finite::one")]
    pub lr: f32,
    /// Throughput of this step.
    #[serde(with = "super::finite::one")]
    pub samples_per_sec: f32,
    /// Global gradient norm over all trainable tensors.
    #[serde(with = "super::finite::one")]
    pub grad_norm: f32,
}

/// Statistics of one layer's output over a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActStats {
    /// Mean.
    #[serde(with = "super::finite::one")]
    pub mean: f32,
    /// Population standard deviation.
    #[serde(with = "super::finite::one")]
    pub std: f32,
    /// Minimum.
    #[serde(with = "super::finite::one")]
    pub min: f32,
    /// Maximum.
    #[serde(with = "super::finite::one")]
    pub max: f32,
    /// Fraction of values ≤ 0 (dead ReLUs after an activation).
    #[serde(with = "super::finite::one")]
    pub frac_nonpos: f32,
    /// Counts of 32 equal bins over `[min, max]`.
    pub hist: Vec<u32>,
}

/// State of one BatchNorm layer, per channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnStats {
    /// Running mean.
    #[serde(with = "super::finite::vec")]
    pub running_mean: Vec<f32>,
    /// Running (biased) variance.
    #[serde(with = "super::finite::vec")]
    pub running_var: Vec<f32>,
    /// Scale γ.
    #[serde(with = "super::finite::vec")]
    pub gamma: Vec<f32>,
    /// Shift β.
    #[serde(with = "super::finite::vec")]
    pub beta: Vec<f32>,
}

/// Norms at one skip, over the batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipStats {
    /// ‖f‖: the residual branch before the scale α.
    #[serde(with = "super::finite::one")]
    pub branch_norm: f32,
    /// ‖shortcut(x)‖.
    #[serde(with = "super::finite::one")]
    pub shortcut_norm: f32,
    /// The branch scale α.
    #[serde(with = "super::finite::one")]
    pub alpha: f32,
    /// Values the norms run over (batch × sample size), to turn norms into mean squares.
    pub numel: u64,
}

impl SkipStats {
    /// ‖α·f‖ / ‖shortcut‖: how much the block changes its input.
    pub fn ratio(&self) -> f32 {
        self.alpha.abs() * self.branch_norm / self.shortcut_norm
    }
}

/// Statistics of one trainable tensor at one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamStats {
    /// ‖∂L/∂w‖.
    #[serde(with = "super::finite::one")]
    pub grad_norm: f32,
    /// ‖w‖ before the step.
    #[serde(with = "super::finite::one")]
    pub weight_norm: f32,
    /// ‖w_after − w_before‖ / ‖w_before‖.
    #[serde(with = "super::finite::one")]
    pub update_ratio: f32,
}

/// Everything a probe step records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRecord {
    /// The step (as in [`StepRecord::step`]).
    pub step: u64,
    /// One entry per layer of [`RunLayout::layers`].
    pub layers: Vec<ActStats>,
    /// One entry per layer of [`RunLayout::batch_norms`], after this step's forward pass.
    pub batch_norms: Vec<BnStats>,
    /// One entry per skip of [`RunLayout::skips`].
    pub skips: Vec<SkipStats>,
    /// One entry per tensor of [`RunLayout::params`].
    pub params: Vec<ParamStats>,
    /// One entry per layer of [`RunLayout::token_layers`]: how far its tokens are from rank one,
    /// `‖X − 1·x̄ᵀ‖ / ‖X‖` over the probe batch (Dong et al. 2021).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "super::finite::vec"
    )]
    pub token_residual: Vec<f32>,
    /// One entry per layer of [`RunLayout::attention`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<AttentionStats>,
    /// One entry per layer of [`RunLayout::affine_norms`]: its per-channel γ and β.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affine_norms: Vec<AffineStats>,
}

/// A self-attention layer's attention at a probe step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionStats {
    /// Each head's attention matrix averaged over the probe batch, `heads × tokens × tokens`,
    /// row-major, a row per query token (each row sums to 1).
    #[serde(with = "super::finite::vec")]
    pub weights: Vec<f32>,
    /// Each head's mean entropy (nats) of its attention rows over the batch and the queries:
    /// ln(tokens) is uniform attention, 0 a single token.
    #[serde(with = "super::finite::vec")]
    pub entropy: Vec<f32>,
}

/// A LayerNorm or GroupNorm layer's per-channel scale and shift at a probe step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffineStats {
    /// Scale γ.
    #[serde(with = "super::finite::vec")]
    pub gamma: Vec<f32>,
    /// Shift β.
    #[serde(with = "super::finite::vec")]
    pub beta: Vec<f32>,
}

/// A validation pass: the validation split, and each evaluation set in the layout's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRecord {
    /// The step after which it ran.
    pub step: u64,
    /// Mean validation loss.
    #[serde(with = "super::finite::one")]
    pub loss: f32,
    /// Validation accuracy in [0, 1]; NaN for regression.
    #[serde(with = "super::finite::one")]
    pub accuracy: f32,
    /// `[loss, accuracy]` on each evaluation set, in the order of [`RunLayout::eval_sets`].
    #[serde(default)]
    pub sets: Vec<[f32; 2]>,
    /// What each evaluation set produces at the input of every BatchNorm layer (empty without
    /// sets or BatchNorm): per set in the layout's order, per BN layer in the layout's order.
    #[serde(default)]
    pub set_bn: Vec<Vec<ChannelMoments>>,
}

/// The per-channel mean and variance some data produce at a BatchNorm layer's input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMoments {
    /// Mean per channel.
    #[serde(with = "super::finite::vec")]
    pub mean: Vec<f32>,
    /// Variance per channel.
    #[serde(with = "super::finite::vec")]
    pub var: Vec<f32>,
}

/// The latest [`EvalRecord::set_bn`] with its step: what the evaluation sets produce at each
/// BatchNorm layer, beside the running statistics the layer expects (the BatchNorm panel's
/// overlay: "the network expects red").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBnRecord {
    /// The step after which it was measured.
    pub step: u64,
    /// Per evaluation set, per BatchNorm layer.
    pub sets: Vec<Vec<ChannelMoments>>,
}

/// The decision boundary of a classifier on a 2-D dataset: the predicted class on a grid over
/// the (normalised) input plane, and a sample of training points to draw on top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundaryRecord {
    /// The step after which it was computed.
    pub step: u64,
    /// Grid cells per side.
    pub resolution: usize,
    /// `[min, max]` of the first input feature over the grid.
    pub x_range: [f32; 2],
    /// `[min, max]` of the second input feature over the grid.
    pub y_range: [f32; 2],
    /// Predicted class per cell, row-major from `(x_min, y_min)`: `classes[j * resolution + i]`
    /// is the cell at column `i` (x) and row `j` (y).
    pub classes: Vec<u8>,
    /// Training points `[x, y]` (a sample of at most a few hundred).
    pub points: Vec<[f32; 2]>,
    /// The class of each point.
    pub labels: Vec<u8>,
}
