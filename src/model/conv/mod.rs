//! A fused convolutional block for the CPU backend: `Conv2d → Norm (+ α·branch + shortcut) →
//! ReLU` as one autodiff node with a hand-written backward pass, the norm BatchNorm (training,
//! or inference with its running statistics folded in), GroupNorm or LayerNorm ([`BlockNorm`]).
//!
//! Layer by layer on burn-flex, a block is five autodiff nodes, and the convolution converts
//! its input to channels-last and back on every call, builds an im2col matrix per tile, and
//! computes its backward pass through a generic transposed convolution. Here:
//!
//! - activations stay channels-last (NHWC) from block to block, seen by burn through permuted
//!   views ([`layout`]), so nothing is transposed between fused blocks;
//! - the three products (forward, input gradient, weight gradient) run on register-tile kernels
//!   written for AVX-512 / AVX2 / portable code (`tile.rs`); 3×3 convolutions with stride 1 and
//!   padding 1 use Winograd F(2×2, 3×3), 2.25 times fewer multiplications ([`winograd`]), the
//!   others a direct product over a zero-padded copy ([`direct`]);
//! - the normalisation, skip and ReLU are the two passes forward and two backward that the
//!   dense block uses (`model::norm_act`).
//!
//! [`Model`](super::Model) takes this path on burn-flex for every `Conv2d` followed by a
//! normalisation where [`fusable`] holds (with an optional ReLU), under the same conditions as
//! the dense block otherwise, and for 1×1 projection shortcuts with BatchNorm; a `Conv2d` no
//! normalisation follows runs the same products as one node `relu?(conv(x) + bias)`
//! ([`plain_conv`]); the probes still receive every layer's output (flattened in channels-last
//! order, which the statistics do not depend on). `tests/conv.rs` and `tests/norm_blocks.rs`
//! compare every product and the whole block with burn's operations.

mod block;
pub mod direct;
pub mod geometry;
pub mod layout;
mod plain;
mod simd;
mod tile;
pub mod winograd;

pub use block::{ConvBlockParams, ConvOut, FusedConv};
pub use geometry::Geometry;
pub use plain::{FusedPlainConv, PlainConvOut, PlainConvParams};
pub use simd::Isa;

use super::fused::{block_operands, is_flex, update_running};
use super::norm_act::Stats;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, GroupNorm};
use burn::tensor::Tensor;

/// The outputs of [`conv_block`] as tensors of the caller's device.
#[derive(Debug)]
pub struct ConvBlockOut {
    /// The block's output `[batch, out, oh, ow]` (the ReLU's, or the BatchNorm layer's without
    /// one), differentiable.
    pub output: Tensor<4>,
    /// The convolution's output, detached, flat (channels-last order).
    pub conv: Tensor<1>,
    /// The BatchNorm layer's output after its skip, detached, flat (all values when probing or
    /// without a ReLU, else empty).
    pub pre: Tensor<1>,
    /// The output's values, detached, flat (a view of the output's buffer).
    pub output_flat: Tensor<1>,
    /// `[Σ f², Σ s², α]`: the skip probe's record (when probing a block with a skip).
    pub skip_sums: Tensor<1>,
}

/// The normalisation layer of a fused convolutional block.
#[derive(Clone, Copy, Debug)]
pub enum BlockNorm<'a> {
    /// BatchNorm: the batch's statistics in training (its running statistics move as
    /// [`BatchNorm::forward`] moves them), its running statistics folded into one affine map
    /// per channel at inference (forward only).
    Batch(&'a BatchNorm),
    /// GroupNorm, or LayerNorm as GroupNorm with one group: per-sample statistics, the same in
    /// training and at inference.
    Group(&'a GroupNorm),
}

/// Whether a block with `norm` takes the fused path for inputs on `device`: burn-flex, and
/// for BatchNorm either training with autodiff (the dense block's conditions) or inference
/// without it.
pub fn fusable(device: &burn::tensor::Device, norm: BlockNorm<'_>) -> bool {
    match norm {
        BlockNorm::Batch(bn) => {
            super::dense::fusable(device, bn)
                || (is_flex(device) && !device.is_autodiff() && !bn.training.is_enabled())
        }
        BlockNorm::Group(_) => is_flex(device),
    }
}

/// `relu?(α·norm(conv(x)) + shortcut)` as one fused node with square `stride` and zero
/// `padding`, updating a training BatchNorm's running statistics as [`BatchNorm::forward`]
/// would; `probe` also returns the normalisation layer's output and the skip probe's sums.
/// Call only where [`fusable`] holds.
pub fn conv_block(
    conv: &Conv2d,
    norm: BlockNorm<'_>,
    x: Tensor<4>,
    (stride, padding): (usize, usize),
    shortcut: Option<(Tensor<4>, f32)>,
    relu: bool,
    probe: bool,
) -> ConvBlockOut {
    let device = x.device();
    let (affine, stats) = block_affine(norm, &device);
    let ops = block_operands(
        conv.bias.as_ref().map(|b| b.val()),
        affine,
        stats,
        shortcut,
        (relu, probe),
        &device,
    );
    let r = <burn::backend::Dispatch as FusedConv>::fused_conv_block(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        ops.bias,
        ops.gamma,
        ops.beta,
        ops.shortcut,
        ConvBlockParams {
            stride,
            padding,
            epilogue: ops.epilogue,
        },
    );
    if let (BlockNorm::Batch(bn), Stats::Batch) = (norm, stats) {
        update_running(
            bn,
            Tensor::<1>::from_dispatch(r.mean),
            Tensor::<1>::from_dispatch(r.var),
        );
    }
    ConvBlockOut {
        output: Tensor::from_dispatch(r.output),
        conv: Tensor::from_dispatch(r.conv),
        pre: Tensor::from_dispatch(r.pre),
        output_flat: Tensor::from_dispatch(r.output_flat),
        skip_sums: Tensor::from_dispatch(r.skip_sums),
    }
}

/// The epilogue's `(γ, β, ε)` and statistics for `norm` on `device`: BatchNorm at inference
/// folds its running statistics in, `γ/sqrt(σ²_run + ε)` and `β − μ_run·γ/sqrt(σ²_run + ε)`;
/// a GroupNorm without an affine map has `γ = 1`, `β = 0`.
fn block_affine(
    norm: BlockNorm<'_>,
    device: &burn::tensor::Device,
) -> ((Tensor<1>, Tensor<1>, f64), Stats) {
    match norm {
        BlockNorm::Batch(bn) if bn.training.is_enabled() => {
            ((bn.gamma.val(), bn.beta.val(), bn.epsilon), Stats::Batch)
        }
        BlockNorm::Batch(bn) => {
            let mean = bn.running_mean.value_sync().to_device(device);
            let var = bn.running_var.value_sync().to_device(device);
            let scale = bn.gamma.val().div(var.add_scalar(bn.epsilon).sqrt());
            let shift = bn.beta.val().sub(mean.mul(scale.clone()));
            ((scale, shift, bn.epsilon), Stats::Affine)
        }
        BlockNorm::Group(gn) => {
            let c = gn.num_channels;
            let gamma = gn
                .gamma
                .as_ref()
                .map_or_else(|| Tensor::ones([c], device), |p| p.val());
            let beta = gn
                .beta
                .as_ref()
                .map_or_else(|| Tensor::zeros([c], device), |p| p.val());
            let stats = Stats::Group {
                groups: gn.num_groups,
            };
            ((gamma, beta, gn.epsilon), stats)
        }
    }
}

/// The outputs of [`plain_conv`] as tensors of the caller's device.
#[derive(Debug)]
pub struct PlainConvBlockOut {
    /// `relu?(conv(x) + bias)` `[batch, out, oh, ow]`, differentiable.
    pub output: Tensor<4>,
    /// The convolution's output with its bias, detached, flat (channels-last order).
    pub conv: Tensor<1>,
    /// The output's values, detached, flat.
    pub output_flat: Tensor<1>,
}

/// `relu?(conv(x) + bias)` as one fused node with square `stride` and zero `padding`: a
/// convolution no normalisation follows in training, any convolution at inference (see
/// `plain.rs`). Call only on burn-flex.
pub fn plain_conv(
    conv: &Conv2d,
    x: Tensor<4>,
    (stride, padding): (usize, usize),
    relu: bool,
) -> PlainConvBlockOut {
    let device = x.device();
    let bias = conv.bias.as_ref().map_or_else(
        || Tensor::<1>::zeros([0], &device).into_dispatch(),
        |b| b.val().into_dispatch(),
    );
    let r = <burn::backend::Dispatch as FusedPlainConv>::fused_plain_conv(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias,
        PlainConvParams {
            stride,
            padding,
            relu,
        },
    );
    PlainConvBlockOut {
        output: Tensor::from_dispatch(r.output),
        conv: Tensor::from_dispatch(r.conv),
        output_flat: Tensor::from_dispatch(r.output_flat),
    }
}
