//! A fused convolutional block for the CPU backend: `Conv2d → BatchNorm (+ α·branch +
//! shortcut) → ReLU` as one autodiff node with a hand-written backward pass.
//!
//! Layer by layer on burn-flex, a block is five autodiff nodes, and the convolution converts
//! its input to channels-last and back on every call, builds an im2col matrix per tile, and
//! computes its backward pass through a generic transposed convolution. Here:
//!
//! - activations stay channels-last (NHWC) from block to block, seen by burn through permuted
//!   views ([`layout`]), so nothing is transposed between fused blocks;
//! - the three products (forward, input gradient, weight gradient) run on register-tile kernels
//!   written for AVX-512 / AVX2 / portable code ([`tile`]); 3×3 convolutions with stride 1 and
//!   padding 1 use Winograd F(2×2, 3×3), 2.25 times fewer multiplications ([`winograd`]), the
//!   others a direct product over a zero-padded copy ([`direct`]);
//! - the BatchNorm, skip and ReLU are the two passes forward and two backward that the dense
//!   block uses (`model::norm_act`).
//!
//! [`Model`](super::Model) takes this path on burn-flex with autodiff for every `Conv2d`
//! followed by a `BatchNorm` (with an optional ReLU) under the same conditions as the dense
//! block, and for 1×1 projection shortcuts with BatchNorm; a `Conv2d` that BatchNorm does not
//! follow (GroupNorm, LayerNorm or nothing next) runs the same products as one node
//! `relu?(conv(x) + bias)` ([`plain_conv`]); the probes still receive every
//! layer's output (flattened in channels-last order, which the statistics do not depend on).
//! `tests/conv.rs` compares every product and the whole block with burn's operations.

mod block;
pub mod direct;
pub mod geometry;
pub mod layout;
mod plain;
mod simd;
pub mod tile;
pub mod winograd;

pub use block::{ConvBlockParams, ConvOut, FusedConv};
pub use geometry::Geometry;
pub use plain::{FusedPlainConv, PlainConvOut, PlainConvParams};
pub use simd::Isa;

use super::fused::{block_operands, update_running};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
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

/// Whether a block takes the fused path: the same conditions as the dense block.
pub use super::dense::fusable;

/// `relu?(α·bn(conv(x)) + shortcut)` as one fused node with square `stride` and zero
/// `padding`, updating `bn`'s running statistics as [`BatchNorm::forward`] would; `probe` also
/// returns the BatchNorm layer's output and the skip probe's sums. Call only where [`fusable`]
/// holds.
pub fn conv_block(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    (stride, padding): (usize, usize),
    shortcut: Option<(Tensor<4>, f32)>,
    relu: bool,
    probe: bool,
) -> ConvBlockOut {
    let ops = block_operands(
        conv.bias.as_ref().map(|b| b.val()),
        bn,
        shortcut,
        (relu, probe),
        &x.device(),
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
    update_running(
        bn,
        Tensor::<1>::from_dispatch(r.mean),
        Tensor::<1>::from_dispatch(r.var),
    );
    ConvBlockOut {
        output: Tensor::from_dispatch(r.output),
        conv: Tensor::from_dispatch(r.conv),
        pre: Tensor::from_dispatch(r.pre),
        output_flat: Tensor::from_dispatch(r.output_flat),
        skip_sums: Tensor::from_dispatch(r.skip_sums),
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
/// convolution that BatchNorm does not follow (see `plain.rs`). Call only on burn-flex with
/// autodiff.
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
