//! GELU, `x·Φ(x)` in its exact (erf) form, as one kernel each way on burn-flex. burn's GELU
//! calls libm's scalar `erff` per element, forward and again in the backward (15 % of a
//! vit-res-12 step); here erf comes from Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7,
//! below f32's resolution of values near 1), and the backward's `Φ(x) + x·φ(x)` shares one
//! `exp(−x²/2)` between the two; the exponential is `exp_fast`, so both loops vectorise.

use super::{exp_fast, flex_from, is_flex, shape_of, values, widest};
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{Tensor, activation};
use rayon::prelude::*;

/// GELU of the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGelu: Backend {
    /// `x·Φ(x)`, element-wise.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Values per parallel chunk.
const CHUNK: usize = 1 << 14;
const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// `(Φ(x), exp(−x²/2))`: the normal CDF from erf(x/√2) by Abramowitz & Stegun 7.1.26, and the
/// exponential it needs (φ(x)·√(2π)).
#[inline(always)]
fn cdf_and_exp(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let z = (x * SQRT_HALF).abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let e = exp_fast(-0.5 * x * x);
    let erf = (1.0 - poly * e).copysign(x);
    (0.5 * (1.0 + erf), e)
}

widest! {
    /// `y = x·Φ(x)`, element-wise.
    fn forward_chunk(x: &[f32], y: &mut [f32]) {
        for (y, &v) in y.iter_mut().zip(x) {
            *y = v * cdf_and_exp(v).0;
        }
    }
}

widest! {
    /// `dx = g·(Φ(x) + x·φ(x))`, element-wise.
    fn backward_chunk(x: &[f32], g: &[f32], dx: &mut [f32]) {
        for ((d, &v), &gv) in dx.iter_mut().zip(x).zip(g) {
            let (cdf, e) = cdf_and_exp(v);
            *d = gv * (cdf + v * e * INV_SQRT_2PI);
        }
    }
}

/// `x·Φ(x)` of every value.
pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| forward_chunk(x, y));
    y
}

/// `g·(Φ(x) + x·φ(x))` of every value: the gradient through GELU.
pub fn gelu_backward(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(dx, (x, g))| backward_chunk(x, g, dx));
    dx
}

impl FusedGelu for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        flex_from(gelu_forward(&values(&x)), shape_of(&x))
    }
}

#[derive(Debug)]
struct FusedGeluBackward;

impl Backward<Flex, 1> for FusedGeluBackward {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let x = ops.state;
        if let Some(node) = node_x {
            let dx = gelu_backward(&values(&x), &values(&grad));
            grads.register::<Flex>(node.id, flex_from(dx, shape_of(&x)));
        }
    }
}

impl<C: CheckpointStrategy> FusedGelu for Autodiff<Flex, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = FusedGeluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let xp = x.primitive().clone();
        let y = Flex::fused_gelu(xp.clone());
        match prep {
            OpsKind::Tracked(prep) => prep.finish(xp, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// GELU through the fused kernel on burn-flex, burn's own elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !is_flex(&x.device()) {
        return activation::gelu(x);
    }
    Tensor::from_dispatch(<burn::backend::Dispatch as FusedGelu>::fused_gelu(
        x.into_dispatch(),
    ))
}
