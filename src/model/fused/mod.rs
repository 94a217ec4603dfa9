//! Fused CPU kernels for the operations burn-flex runs as many small tensor operations, one file
//! each: `batch_norm` (the BatchNorm forward and backward), `optim` (the optimiser step), `probe`
//! (layer statistics read from the tensor's own buffer); this file holds what they share.
//!
//! - **BatchNorm.** burn's `batch_norm_train` is one autodiff node, but on burn-flex its forward
//!   and backward fall back to generic bodies that transpose the input (`swap_dims` +
//!   `reshape`, a copy) and run about ten element-wise passes each way. Here both directions
//!   are one kernel over the data in its own layout. [`batch_norm`] picks this path on
//!   burn-flex with autodiff and burn's own `BatchNorm::forward` everywhere else.
//! - **GELU.** One pass each way with a polynomial erf instead of libm's per element (`gelu`).
//! - **LayerNorm and GroupNorm of rows** (flat samples, tokens): one pass each way over each
//!   row's sets (`row_norm`); on images they are fused into the convolution block.
//! - **Attention.** `softmax(QKᵀ/√d_h)·V` of every head, one task per sample each way, read
//!   from and written to the token rows without permute copies (`attention`).
//! - **Matrix products of the dense blocks** on both threads where burn-flex keeps them on one
//!   (`matmul`).
//! - **Optimiser step.** SGD and Adam as one pass per tensor instead of a chain of element-wise
//!   operations ([`FusedOptim`]), also returning the sums the gradient panel shows.
//!
//! Both are registered through burn's backend-extension mechanism for `Flex` (and, for the
//! BatchNorm, `Autodiff<Flex>`); calling them on another backend would panic, so callers check
//! [`is_flex`] first. The kernels work on `f32` tensors, the only float type reslab uses.
//!
//! Conventions are burn's, so results agree with [`burn::nn::BatchNorm`] to rounding: the batch
//! variance is the biased (population) one, `y = (x − μ)/sqrt(σ² + ε)·γ + β`, and the running
//! statistics move by `r ← (1 − momentum)·r + momentum·batch` with the biased variance.

mod attention;
mod batch_norm;
mod gelu;
mod matmul;
mod optim;
mod probe;
mod row_norm;

pub use attention::{
    AttentionOut, Dims as AttentionDims, FusedAttention, attention_backward, attention_forward,
};
pub use batch_norm::{BnTrain, FusedOps, batch_norm};
pub(in crate::model) use batch_norm::{block_operands, bn_stats, channel_sums, update_running};
pub use gelu::{FusedGelu, gelu, gelu_backward, gelu_forward};
pub use matmul::matmul;
pub use optim::{
    FusedOptim, FusedRule, FusedStep, OptimStep, optimizer_step, optimizer_step_host,
    optimizer_step_in_place,
};
pub use probe::{
    FusedProbe, FusedTokenProbe, attention_summary_host, layer_stats_host, token_residual_fast,
};
pub use row_norm::{FusedRowNorm, row_norm, row_norm_backward, row_norm_forward};

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// The f32 lanes the kernels accumulate in (a chunk of this many values vectorises).
const LANES: usize = 8;

/// `Σ f(aᵢ, bᵢ)` over two slices (of `a`'s length) in [`LANES`] f32 lanes, so that it vectorises.
#[inline(always)]
pub(super) fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let b = &b[..a.len()];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = (ac.remainder().iter().zip(bc.remainder()))
        .map(|(&x, &y)| f(x, y))
        .sum();
    let mut lanes = [0f32; LANES];
    for (x, y) in ac.zip(bc) {
        for k in 0..LANES {
            lanes[k] += f(x[k], y[k]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `[batch, channels, spatial]` view of a `[batch, channels, ...]` shape.
fn bcs(dims: &[usize]) -> (usize, usize, usize) {
    let b = dims[0];
    let c = dims[1];
    let s = dims[2..].iter().product::<usize>();
    (b, c, s)
}

/// The values of a float tensor in row-major order (a copy only when the layout is strided).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("the fused kernels take f32 tensors")
                .to_vec(),
        ),
    }
}

/// Registers the gradients a normalisation's backward computed for the parents autodiff tracks:
/// the input (`dx` of `shape`), γ and β (`[c]` each). `parents` are the op's three parents in
/// that order, as node ids.
pub(super) fn register_affine_grads(
    grads: &mut burn::backend::autodiff::grads::Gradients,
    parents: [Option<burn::backend::autodiff::NodeId>; 3],
    (dx, shape): (Vec<f32>, Vec<usize>),
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
) {
    use burn::backend::Flex;
    let [x, gamma, beta] = parents;
    let c = dgamma.len();
    if let Some(id) = x {
        grads.register::<Flex>(id, flex_from(dx, shape));
    }
    if let Some(id) = gamma {
        grads.register::<Flex>(id, flex_from(dgamma, vec![c]));
    }
    if let Some(id) = beta {
        grads.register::<Flex>(id, flex_from(dbeta, vec![c]));
    }
}

/// A flex tensor's shape.
pub(super) fn shape_of(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

pub(super) fn flex_from(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `e^x` without a library call, so that loops over slices vectorise (libm's `expf` is one
/// call per value): Cephes' `expf` (range reduction by ln 2, a degree-6 polynomial, the
/// power of two put in the exponent bits), within 2 ulp of libm's for x in [−87, 88]. Below
/// −87.3 it returns e^−87.3 ≈ 1.2e-38 instead of a subnormal or 0; above 88.37, e^88.37.
#[inline(always)]
pub(super) fn exp_fast(x: f32) -> f32 {
    /// 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.336_55, 88.376_26);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // n is t's integer part (|n| ≤ 127): its bits less ROUND's, then into the exponent.
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    y * f32::from_bits(((k + 127) as u32) << 23)
}

/// `ln x` for finite x > 0 without a library call, so that loops vectorise: Cephes' `logf` (the
/// exponent from the bits, the mantissa in [√½, √2), a degree-8 polynomial), within 2 ulp of
/// libm's for normal numbers. Subnormals, 0 and negative values are not handled (the callers
/// clamp below at a normal number).
#[inline(always)]
pub(super) fn ln_fast(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m·2^e with m in [1, 2), then moved to [√½, √2).
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += big as i32;
    let r = m - 1.0;
    let mut p = 7.037_683_6e-2;
    p = p * r - 1.151_461e-1;
    p = p * r + 1.167_699_9e-1;
    p = p * r - 1.242_014_1e-1;
    p = p * r + 1.424_932_3e-1;
    p = p * r - 1.666_805_8e-1;
    p = p * r + 2.000_071_4e-1;
    p = p * r - 2.499_999_4e-1;
    p = p * r + 3.333_333e-1;
    let r2 = r * r;
    let e = e as f32;
    // ln 2 in two parts (Cephes' split), so that e·ln 2 adds no rounding of its own.
    (p * r * r2 - 0.5 * r2 + e * -2.121_944_4e-4) + r + e * 0.693_359_4
}

/// Defines a function whose body is compiled twice, for AVX-512 and for the baseline, and picks
/// the copy the CPU can run (detected once), so that its loops vectorise with 16 lanes where the
/// CPU has them. The body is an `#[inline(always)]` function called from both copies; an
/// ordinary closure handed to a `#[target_feature]` function was not always inlined into it
/// and ran as baseline (SSE2) code.
macro_rules! widest {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if crate::model::conv::Isa::detect() == crate::model::conv::Isa::Avx512 {
                    // SAFETY: the CPU has AVX-512F (detected).
                    return unsafe { avx512($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(super) use widest;

/// Runs `f` on one of rayon's worker threads and returns its result (the calling thread waits).
/// A training step or an evaluation run this way: every parallel kernel inside then splits its
/// work with the other workers directly, instead of being handed from an outside thread to the
/// pool one operation at a time, with two thread wake-ups each (hundreds per step; measured in
/// BENCHMARKS.md). Inside a worker already, `f` runs in place.
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// `f` of every item, several at a time on rayon's workers (each call's own parallel kernels
/// split with the other workers as under [`on_workers`]); the results in the items' order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    items.par_iter().map(&f).collect()
}

/// The next message of `rx`, waiting on a rayon worker without taking it from the pool: between
/// short waits the worker runs whatever rayon work is queued. A step running under
/// [`on_workers`] waits this way for a helper thread (the probe statistics); if that thread
/// needed the pool while the step's worker slept in a plain `recv`, with every other worker
/// busy (one thread, or two runs at once), neither would move. `None` once the sender is gone.
pub fn recv_on_worker<T>(rx: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        match rx.recv_timeout(std::time::Duration::from_micros(200)) {
            Ok(v) => return Some(v),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                let _ = rayon::yield_now();
            }
        }
    }
}

/// Whether tensors on `device` take the fused CPU kernels.
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    // The fused kernels are registered for burn-flex only; every other backend keeps burn's ops.
    let inner = device.clone().inner();
    inner == burn::tensor::Device::flex()
}

#[cfg(test)]
mod tests {
    use super::{exp_fast, ln_fast};

    /// Relative error in units of f32's epsilon.
    fn ulps(got: f32, want: f32) -> f32 {
        (got - want).abs() / (want.abs() * f32::EPSILON)
    }

    #[test]
    fn exp_fast_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            worst = worst.max(ulps(exp_fast(x), x.exp()));
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-200.0) < 2e-38 && exp_fast(-200.0) > 0.0);
    }

    #[test]
    fn ln_fast_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = 1e-30f32;
        while x < 1e30 {
            // Near 1 ln x is near 0: measure the error against ln's scale there.
            let want = x.ln();
            let err = (ln_fast(x) - want).abs() / (want.abs().max(0.5) * f32::EPSILON);
            worst = worst.max(err);
            x *= 1.000_37;
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(ln_fast(1.0), 0.0);
    }
}
