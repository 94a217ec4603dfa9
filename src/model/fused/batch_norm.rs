//! The BatchNorm of burn-flex as one kernel each way: the forward over the data in its own layout
//! (batch statistics, normalisation, affine) and the backward, registered as an autodiff node.

use super::{LANES, bcs, flex_from, is_flex, register_affine_grads, shape_of, values};
use crate::model::norm_act::{Epilogue, Stats};
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::{Device, DispatchTensor, Tensor};

/// Output of a training-mode batch norm: the normalised tensor and the batch statistics.
#[derive(ExtensionType)]
pub struct BnTrain<B: Backend> {
    /// `[batch, channels, ...]`, differentiable.
    pub output: FloatTensor<B>,
    /// Batch mean `[channels]`, detached.
    pub mean: FloatTensor<B>,
    /// Biased batch variance `[channels]` (without ε), detached.
    pub var: FloatTensor<B>,
}

/// Fused operations of the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// Batch norm with the batch's own statistics; see the module documentation.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BnTrain<Self>;
}

/// Per-channel sums over `[b, c, s]` of `f(a, b, p[c], q[c])` (two tensors of that layout and
/// two per-channel values), accumulated in f32 lanes and flushed into f64. With `s == 1` the
/// loop runs along rows of channels, otherwise along each contiguous run of one channel; both
/// forms are zipped slices, so they vectorise.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(in crate::model) fn channel_sums(
    (_, c, s): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    p: &[f32],
    q: &[f32],
    f: impl Fn(f32, f32, f32, f32) -> f32,
    out: &mut [f64],
) {
    let (p, q, out) = (&p[..c], &q[..c], &mut out[..c]);
    if s == 1 {
        let mut acc = vec![0f32; c];
        for (k, (ar, br)) in a.chunks_exact(c).zip(b.chunks_exact(c)).enumerate() {
            for ((acc, (&x, &y)), (&pc, &qc)) in
                acc.iter_mut().zip(ar.iter().zip(br)).zip(p.iter().zip(q))
            {
                *acc += f(x, y, pc, qc);
            }
            if k % 16 == 15 {
                for (o, a) in out.iter_mut().zip(acc.iter_mut()) {
                    *o += *a as f64;
                    *a = 0.0;
                }
            }
        }
        for (o, a) in out.iter_mut().zip(&acc) {
            *o += *a as f64;
        }
    } else {
        for (run, (ar, br)) in a.chunks_exact(s).zip(b.chunks_exact(s)).enumerate() {
            let ci = run % c;
            let (pc, qc) = (p[ci], q[ci]);
            let mut lanes = [0f32; LANES];
            let ac = ar.chunks_exact(LANES);
            let bc = br.chunks_exact(LANES);
            let (at, bt) = (ac.remainder(), bc.remainder());
            for (x, y) in ac.zip(bc) {
                for j in 0..LANES {
                    lanes[j] += f(x[j], y[j], pc, qc);
                }
            }
            let tail: f32 = at.iter().zip(bt).map(|(&x, &y)| f(x, y, pc, qc)).sum();
            out[ci] += lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
        }
    }
}

/// Applies `out = f(a, b, [p0[c], p1[c], p2[c], p3[c]])` element-wise over the `[b, c, s]`
/// layout, with four per-channel values.
#[inline(always)]
fn channel_map(
    (_, c, s): (usize, usize, usize),
    a: &[f32],
    b: &[f32],
    params: [&[f32]; 4],
    out: &mut [f32],
    f: impl Fn(f32, f32, [f32; 4]) -> f32,
) {
    let [p0, p1, p2, p3] = params.map(|p| &p[..c]);
    if s == 1 {
        for ((orow, ar), br) in out
            .chunks_exact_mut(c)
            .zip(a.chunks_exact(c))
            .zip(b.chunks_exact(c))
        {
            for ((((o, &x), &y), (&q0, &q1)), (&q2, &q3)) in orow
                .iter_mut()
                .zip(ar)
                .zip(br)
                .zip(p0.iter().zip(p1))
                .zip(p2.iter().zip(p3))
            {
                *o = f(x, y, [q0, q1, q2, q3]);
            }
        }
    } else {
        for (run, ((orun, ar), br)) in out
            .chunks_exact_mut(s)
            .zip(a.chunks_exact(s))
            .zip(b.chunks_exact(s))
            .enumerate()
        {
            let ci = run % c;
            let q = [p0[ci], p1[ci], p2[ci], p3[ci]];
            for ((o, &x), &y) in orun.iter_mut().zip(ar).zip(br) {
                *o = f(x, y, q);
            }
        }
    }
}

/// Batch statistics over the `[b, c, s]` layout: `(mean, biased var, 1/sqrt(var + ε))` per
/// channel, the sums accumulated in f64. Inlined, so that a caller compiled for a wider
/// instruction set (`model::norm_act`) vectorises it with that set.
#[inline(always)]
pub(in crate::model) fn bn_stats(
    x: &[f32],
    dims: (usize, usize, usize),
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, c, s) = dims;
    let n = (b * s) as f64;
    let zero = vec![0f32; c];
    // Σ x (no mean) or Σ (x − mean)² per channel: over channels-last rows on rayon's threads
    // when large, the same sums bit for bit.
    let sums = |mean: Option<&[f32]>| -> Vec<f64> {
        if s == 1 && x.len() >= PAR_SUMS {
            return ordered_row_sums(x, c, mean);
        }
        let mut out = vec![0f64; c];
        match mean {
            None => channel_sums(dims, x, x, &zero, &zero, |v, _, _, _| v, &mut out),
            Some(m) => channel_sums(
                dims,
                x,
                x,
                m,
                &zero,
                |v, _, m, _| (v - m) * (v - m),
                &mut out,
            ),
        }
        out
    };
    let mean: Vec<f32> = sums(None).iter().map(|&v| (v / n) as f32).collect();
    let sq = sums(Some(&mean));
    let var: Vec<f32> = sq.iter().map(|&v| (v / n) as f32).collect();
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    (mean, var, inv_std)
}

/// Values from which [`bn_stats`] sums channels-last rows on rayon's threads.
const PAR_SUMS: usize = 1 << 17;

/// Rows per f32 block of [`channel_sums`]' channels-last form (flushed into f64 after each).
const SUM_BLOCK: usize = 16;

/// [`channel_sums`] of `x` (rows × `c`, channels last) for `Σ x` (`mean` none) or
/// `Σ (x − mean)²`, bit for bit: the f32 sums of each block of [`SUM_BLOCK`] rows, computed in
/// ranges of blocks on rayon's threads (a block's sum does not depend on the range it is in),
/// then added into f64 in block order on this thread, as [`channel_sums`] flushes them.
fn ordered_row_sums(x: &[f32], c: usize, mean: Option<&[f32]>) -> Vec<f64> {
    use rayon::prelude::*;
    let c = c.max(1);
    let blocks = (x.len() / c).div_ceil(SUM_BLOCK);
    let mut part = vec![0f32; blocks * c];
    let per = blocks.div_ceil(crate::model::norm_act::PARTS).max(1);
    part.par_chunks_mut(per * c)
        .zip(x.par_chunks(per * SUM_BLOCK * c))
        .for_each(|(o, xs)| block_sums(xs, c, mean, o));
    let mut out = vec![0f64; c];
    for block in part.chunks_exact(c) {
        for (o, &v) in out.iter_mut().zip(block) {
            *o += v as f64;
        }
    }
    out
}

super::widest! {
    /// The f32 sums per channel of each block of [`SUM_BLOCK`] rows of `x` into `out` (`c` per
    /// block): `Σ x`, or `Σ (x − mean)²`, each row added in order as [`channel_sums`] does.
    fn block_sums(x: &[f32], c: usize, mean: Option<&[f32]>, out: &mut [f32]) {
        for (rows, o) in x.chunks(SUM_BLOCK * c).zip(out.chunks_exact_mut(c)) {
            match mean {
                None => {
                    for r in rows.chunks_exact(c) {
                        for (a, &v) in o.iter_mut().zip(r) {
                            *a += v;
                        }
                    }
                }
                Some(m) => {
                    for r in rows.chunks_exact(c) {
                        for ((a, &v), &m) in o.iter_mut().zip(r).zip(&m[..c]) {
                            *a += (v - m) * (v - m);
                        }
                    }
                }
            }
        }
    }
}

/// Forward on host slices: returns `(output, mean, biased var, inv_std)`.
fn bn_forward(
    x: &[f32],
    dims: (usize, usize, usize),
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let c = dims.1;
    let zero = vec![0f32; c];
    let (mean, var, inv_std) = bn_stats(x, dims, eps);
    // y = x·scale + shift with scale = γ/σ, shift = β − μ·γ/σ.
    let scale: Vec<f32> = (0..c).map(|ci| gamma[ci] * inv_std[ci]).collect();
    let shift: Vec<f32> = (0..c).map(|ci| beta[ci] - mean[ci] * scale[ci]).collect();
    let mut out = vec![0f32; x.len()];
    channel_map(
        dims,
        x,
        x,
        [&scale, &shift, &zero, &zero],
        &mut out,
        |v, _, p| v * p[0] + p[1],
    );
    (out, mean, var, inv_std)
}

/// Backward on host slices: returns `(dgamma, dbeta)` and writes `dx`. With
/// `x̂ = (x − μ)·inv_std`: `dβ = Σ g`, `dγ = Σ g·x̂`, `dx = γ·inv_std·(g − mean(g) − x̂·mean(g·x̂))`.
#[allow(clippy::too_many_arguments)]
pub(in crate::model) fn bn_backward(
    x: &[f32],
    g: &[f32],
    dims: (usize, usize, usize),
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let (b, c, s) = dims;
    let n = (b * s) as f64;
    let mut sg = vec![0f64; c];
    channel_sums(dims, g, g, mean, mean, |v, _, _, _| v, &mut sg);
    let mut sgx = vec![0f64; c];
    channel_sums(
        dims,
        g,
        x,
        mean,
        inv_std,
        |gv, xv, m, inv| gv * ((xv - m) * inv),
        &mut sgx,
    );
    // dx = k·g − k·mg − (k·mgx·inv_std)·(x − μ) with k = γ·inv_std (x̂ recomputed from x).
    let k: Vec<f32> = (0..c).map(|ci| gamma[ci] * inv_std[ci]).collect();
    let k_mg: Vec<f32> = (0..c).map(|ci| k[ci] * (sg[ci] / n) as f32).collect();
    let k_mgx: Vec<f32> = (0..c)
        .map(|ci| k[ci] * (sgx[ci] / n) as f32 * inv_std[ci])
        .collect();
    channel_map(dims, g, x, [&k, &k_mg, &k_mgx, mean], dx, |gv, xv, p| {
        p[0] * gv - p[1] - p[2] * (xv - p[3])
    });
    (
        sgx.iter().map(|&v| v as f32).collect(),
        sg.iter().map(|&v| v as f32).collect(),
    )
}

/// The fused forward on flex tensors: the output, the batch statistics as tensors (what
/// [`BnTrain`] returns), and the mean and `1/sqrt(σ² + ε)` on the host (what the backward keeps).
fn bn_forward_flex(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (BnTrain<Flex>, Vec<f32>, Vec<f32>) {
    let shape = shape_of(x);
    let dims = bcs(&shape);
    let c = dims.1;
    let (out, mean, var, inv_std) =
        bn_forward(&values(x), dims, &values(gamma), &values(beta), epsilon);
    let result = BnTrain {
        output: flex_from(out, shape),
        mean: flex_from(mean.clone(), vec![c]),
        var: flex_from(var, vec![c]),
    };
    (result, mean, inv_std)
}

impl FusedOps for Flex {
    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> BnTrain<Self> {
        bn_forward_flex(&x, &gamma, &beta, epsilon).0
    }
}

#[derive(Debug)]
struct FusedBatchNormBackward;

impl Backward<Flex, 3> for FusedBatchNormBackward {
    /// The input, γ, the batch mean and `1/sqrt(σ² + ε)`.
    type State = (FlexTensor, FlexTensor, Vec<f32>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, gamma, mean, inv_std) = ops.state;
        let shape = shape_of(&x);
        let dims = bcs(&shape);
        let xv = values(&x);
        let gv = values(&grad);
        let mut dx = vec![0f32; xv.len()];
        let (dgamma, dbeta) =
            bn_backward(&xv, &gv, dims, &values(&gamma), &mean, &inv_std, &mut dx);
        let ids = [node_x, node_gamma, node_beta].map(|n| n.map(|n| n.id));
        register_affine_grads(grads, ids, (dx, shape), dgamma, dbeta);
    }
}

impl<C: CheckpointStrategy> FusedOps for Autodiff<Flex, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BnTrain<Self> {
        use burn::backend::AutodiffBackend;
        let prep = FusedBatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let xp = x.primitive().clone();
        let gp = gamma.primitive().clone();
        let (r, mean, inv_std) = bn_forward_flex(&xp, &gp, beta.primitive(), epsilon);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish((xp, gp, mean, inv_std), r.output),
            OpsKind::UnTracked(prep) => prep.finish(r.output),
        };
        BnTrain {
            output,
            mean: <Self as AutodiffBackend>::from_inner(r.mean),
            var: <Self as AutodiffBackend>::from_inner(r.var),
        }
    }
}

/// `bn.forward(x)`, with the training-mode forward (batch statistics, running-statistics update)
/// through the fused kernel on burn-flex.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !is_flex(&device) || !device.is_autodiff() || !bn.training.is_enabled() {
        let y = bn.forward(x);
        // burn's own forward updates the running statistics in training: commit it here too.
        commit_running(bn);
        return y;
    }
    let r = <burn::backend::Dispatch as FusedOps>::fused_batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    );
    let output = Tensor::<D>::from_dispatch(r.output);
    let mean = Tensor::<1>::from_dispatch(r.mean);
    let var = Tensor::<1>::from_dispatch(r.var);
    update_running(bn, mean, var);
    output
}

/// What a fused block passes its backend extension besides the input and its own weight, in
/// the extensions' convention: the layer's bias or `[0]`, BatchNorm's γ and β, the shortcut or
/// `[0]`, and the epilogue's scalars (α is 1 without a shortcut).
pub(in crate::model) struct BlockOperands {
    pub bias: DispatchTensor,
    pub gamma: DispatchTensor,
    pub beta: DispatchTensor,
    pub shortcut: DispatchTensor,
    pub epilogue: Epilogue,
}

/// The [`BlockOperands`] of a block with `bias` (if the layer has one), the normalisation's
/// `(γ, β, ε)` and statistics, an optional `(shortcut, α)` and the ReLU and probe flags, on
/// `device`.
pub(in crate::model) fn block_operands<const D: usize>(
    bias: Option<Tensor<1>>,
    (gamma, beta, epsilon): (Tensor<1>, Tensor<1>, f64),
    stats: Stats,
    shortcut: Option<(Tensor<D>, f32)>,
    (relu, probe): (bool, bool),
    device: &Device,
) -> BlockOperands {
    let empty = || Tensor::<1>::zeros([0], device).into_dispatch();
    let (shortcut, alpha) = match shortcut {
        Some((s, a)) => (s.into_dispatch(), a),
        None => (empty(), 1.0),
    };
    BlockOperands {
        bias: bias.map_or_else(empty, Tensor::into_dispatch),
        gamma: gamma.into_dispatch(),
        beta: beta.into_dispatch(),
        shortcut,
        epilogue: Epilogue {
            stats,
            alpha,
            epsilon,
            relu,
            probe,
        },
    }
}

/// Moves `bn`'s running statistics toward a batch's mean and biased variance the way burn
/// does: `r ← (1 − momentum)·r + momentum·batch`, and commits the update at once.
///
/// burn's running state keeps each thread's update apart and merges them (averaging) only when
/// the thread that updated reads it again; a step runs on whichever rayon worker picks it up,
/// so an update left pending would be invisible to the next step on another thread, which would
/// start from a stale value, and a later merge would average the threads' separate averages.
/// Committing here, on the updating thread, leaves nothing pending between steps.
pub(in crate::model) fn update_running(bn: &BatchNorm, mean: Tensor<1>, var: Tensor<1>) {
    let device = mean.device();
    let m = bn.momentum;
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    bn.running_mean.update(
        running_mean
            .mul_scalar(1.0 - m)
            .add(mean.detach().mul_scalar(m))
            .detach(),
    );
    bn.running_var.update(
        running_var
            .mul_scalar(1.0 - m)
            .add(var.detach().mul_scalar(m))
            .detach(),
    );
    commit_running(bn);
}

/// Commits `bn`'s pending running-statistics update (one this thread made: burn merges a
/// thread's update when that thread reads the state).
pub(in crate::model) fn commit_running(bn: &BatchNorm) {
    let _ = bn.running_mean.value_sync();
    let _ = bn.running_var.value_sync();
}

#[cfg(test)]
mod tests {
    use super::{PAR_SUMS, bn_stats, channel_sums, ordered_row_sums};

    /// [`bn_stats`]' two passes on one thread, as they were before the rows went to rayon.
    fn sequential(x: &[f32], c: usize) -> (Vec<f64>, Vec<f64>) {
        let dims = (x.len() / c, c, 1);
        let zero = vec![0f32; c];
        let mut sum = vec![0f64; c];
        channel_sums(dims, x, x, &zero, &zero, |v, _, _, _| v, &mut sum);
        let n = dims.0 as f64;
        let mean: Vec<f32> = sum.iter().map(|&v| (v / n) as f32).collect();
        let mut sq = vec![0f64; c];
        let f = |v: f32, _, m: f32, _| (v - m) * (v - m);
        channel_sums(dims, x, x, &mean, &zero, f, &mut sq);
        (sum, sq)
    }

    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        pool.expect("a thread pool").install(f)
    }

    #[test]
    fn batch_statistics_on_threads_equal_the_sequential_sums_bit_for_bit() {
        // Rows not a multiple of the 16-row blocks, more than the parallel threshold, and values
        // whose magnitude changes from block to block over 2^±20 (so the order of the f64
        // additions shows in the last bits, not only the f32 blocks').
        let c = 24;
        let rows = PAR_SUMS / c * 3 + 5;
        let x: Vec<f32> = (0..rows * c)
            .map(|i| {
                let u = (i as u32).wrapping_mul(2_654_435_761) >> 8;
                let scale = 2f32.powi((i / (c * 16) % 41) as i32 - 20);
                (u as f32 / 16_777_216.0 - 0.3) * scale
            })
            .collect();
        let (sum, sq) = sequential(&x, c);
        let n = rows as f64;
        let want_mean: Vec<f32> = sum.iter().map(|&v| (v / n) as f32).collect();
        let want_var: Vec<f32> = sq.iter().map(|&v| (v / n) as f32).collect();
        let f64_bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for threads in [1, 3] {
            let got_sum = on_threads(threads, || ordered_row_sums(&x, c, None));
            let got_sq = on_threads(threads, || ordered_row_sums(&x, c, Some(&want_mean)));
            assert_eq!(f64_bits(&got_sum), f64_bits(&sum), "{threads} threads: Σ x");
            assert_eq!(
                f64_bits(&got_sq),
                f64_bits(&sq),
                "{threads} threads: Σ (x − mean)²"
            );
            let (mean, var, _) = on_threads(threads, || bn_stats(&x, (rows, c, 1), 1e-5));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&mean), bits(&want_mean), "{threads} threads: means");
            assert_eq!(bits(&var), bits(&want_var), "{threads} threads: variances");
        }
    }
}
