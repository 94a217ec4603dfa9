//! Fused CPU kernels for the operations burn-flex runs as many small tensor operations.
//!
//! - **BatchNorm.** burn's `batch_norm_train` is one autodiff node, but on burn-flex its forward
//!   and backward fall back to generic bodies that transpose the input (`swap_dims` +
//!   `reshape`, a copy) and run about ten element-wise passes each way. Here both directions
//!   are one kernel over the data in its own layout. [`batch_norm`] picks this path on
//!   burn-flex with autodiff and burn's own `BatchNorm::forward` everywhere else.
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

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::tensor::{Tensor, TensorData};

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

pub(super) fn flex_from(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Per-channel sums over `[b, c, s]` of `f(a, b, p[c], q[c])` (two tensors of that layout and
/// two per-channel values), accumulated in f32 lanes and flushed into f64. With `s == 1` the
/// loop runs along rows of channels, otherwise along each contiguous run of one channel; both
/// forms are zipped slices, so they vectorise.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn channel_sums(
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
pub(super) fn bn_stats(
    x: &[f32],
    dims: (usize, usize, usize),
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, c, s) = dims;
    let n = (b * s) as f64;
    let zero = vec![0f32; c];
    let mut sum = vec![0f64; c];
    channel_sums(dims, x, x, &zero, &zero, |v, _, _, _| v, &mut sum);
    let mean: Vec<f32> = sum.iter().map(|&v| (v / n) as f32).collect();
    let mut sq = vec![0f64; c];
    channel_sums(
        dims,
        x,
        x,
        &mean,
        &zero,
        |v, _, m, _| (v - m) * (v - m),
        &mut sq,
    );
    let var: Vec<f32> = sq.iter().map(|&v| (v / n) as f32).collect();
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    (mean, var, inv_std)
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
pub(super) fn bn_backward(
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
    let shape: Vec<usize> = x.layout().shape().iter().copied().collect();
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
        let shape: Vec<usize> = x.layout().shape().iter().copied().collect();
        let dims = bcs(&shape);
        let c = dims.1;
        let xv = values(&x);
        let gv = values(&grad);
        let mut dx = vec![0f32; xv.len()];
        let (dgamma, dbeta) =
            bn_backward(&xv, &gv, dims, &values(&gamma), &mean, &inv_std, &mut dx);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_from(dx, shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_from(dgamma, vec![c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_from(dbeta, vec![c]));
        }
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

/// Whether tensors on `device` take the fused CPU kernels.
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    // The fused kernels are registered for burn-flex only; every other backend keeps burn's ops.
    let inner = device.clone().inner();
    inner == burn::tensor::Device::flex()
}

/// `bn.forward(x)`, with the training-mode forward (batch statistics, running-statistics update)
/// through the fused kernel on burn-flex.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !is_flex(&device) || !device.is_autodiff() || !bn.training.is_enabled() {
        return bn.forward(x);
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

/// Moves `bn`'s running statistics toward a batch's mean and biased variance the way burn
/// does: `r ← (1 − momentum)·r + momentum·batch`.
pub(super) fn update_running(bn: &BatchNorm, mean: Tensor<1>, var: Tensor<1>) {
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
}

/// The update rule of [`FusedOptim::fused_optimizer_step`], with PyTorch's semantics (see
/// `train::optim`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedRule {
    /// SGD with optional momentum and Nesterov.
    Sgd {
        /// Momentum μ (0 = none).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam, or AdamW when `decoupled`. The derived scalars are computed in f64 by the caller
    /// and rounded once, as burn's `mul_scalar` rounds them.
    Adam {
        /// β₁.
        beta1: f32,
        /// `1 − β₁`.
        one_minus_beta1: f32,
        /// β₂.
        beta2: f32,
        /// `1 − β₂`.
        one_minus_beta2: f32,
        /// ε.
        epsilon: f32,
        /// `lr / (1 − β₁ᵗ)`.
        step_size: f32,
        /// `1 / (1 − β₂ᵗ)`.
        inv_bias2: f32,
        /// AdamW's decoupled weight decay: `Some(1 − lr·wd)`.
        decay_factor: Option<f32>,
    },
}

/// The result of one fused optimiser step.
#[derive(ExtensionType)]
pub struct OptimStep<B: Backend> {
    /// The updated weights `[n]`.
    pub weight: FloatTensor<B>,
    /// The new first state (momentum buffer or Adam's m) `[n]`, or `[0]` when the rule has none.
    pub m: FloatTensor<B>,
    /// The new second moment `[n]` (Adam), or `[0]`.
    pub v: FloatTensor<B>,
    /// `[Σ g², Σ w², Σ (w_new − w)²]` with `w` the weights before the step.
    pub sums: FloatTensor<B>,
}

/// A fused optimiser update of the CPU backend: one pass over the weights, gradient and state
/// instead of a chain of element-wise tensor operations, also producing the norms the gradient
/// panel shows.
#[backend_extension(Flex)]
pub trait FusedOptim: Backend {
    /// One update of a flat tensor. `m` and `v` are `[0]` when the state does not exist yet (the
    /// first step).
    #[allow(clippy::too_many_arguments)]
    fn fused_optimizer_step(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        lr: f32,
        weight_decay: f32,
        rule: FusedRule,
    ) -> OptimStep<Self>;
}

/// Host form of the fused update; `m`/`v` empty means "no state yet". Returns the new weights,
/// state and `[Σg², Σw², Σu²]`. The arithmetic is the same f32 sequence as `train::optim`'s
/// tensor form; `wd` is the coupled weight decay (ignored by AdamW, which uses `decay_factor`).
/// A missing state is read as zeros, which gives exactly the first-step values
/// (`0·μ + g = g`). A copying wrapper around [`optimizer_step_in_place`].
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step_host(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    lr: f32,
    wd: f32,
    rule: FusedRule,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, [f32; 3]) {
    let n = w.len().min(g.len());
    let mut nw = w[..n].to_vec();
    let state = |s: &[f32], used: bool| match (used, s.len() >= n) {
        (false, _) => Vec::new(),
        (true, true) => s[..n].to_vec(),
        (true, false) => vec![0f32; n],
    };
    let (uses_m, uses_v) = rule.state_used();
    let mut nm = state(m, uses_m);
    let mut nv = state(v, uses_v);
    let sums = optimizer_step_in_place(&mut nw, &g[..n], &mut nm, &mut nv, lr, wd, rule);
    (nw, nm, nv, sums)
}

impl FusedRule {
    /// Whether the rule keeps a first state (momentum or Adam's m) and a second (Adam's v).
    pub fn state_used(&self) -> (bool, bool) {
        match *self {
            FusedRule::Sgd { momentum, .. } => (momentum > 0.0, false),
            FusedRule::Adam { .. } => (true, true),
        }
    }
}

/// The fused update in place: `w`, and the state the rule uses (`m` for momentum SGD, `m` and
/// `v` for Adam; each `w.len()` long, zeros before the first step), move one step; returns
/// `[Σg², Σw², Σu²]` with `w` the weights before the step and `u` the change. One pass updates
/// the values and accumulates `Σu²`; a read-only pass before it sums `g²` and `w²`
/// (`StepAcc`).
///
/// # Panics
/// If `g` or a used state is shorter than `w`.
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step_in_place(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    wd: f32,
    rule: FusedRule,
) -> [f32; 3] {
    match rule {
        FusedRule::Sgd { momentum, nesterov } => {
            let mu = momentum;
            match (wd > 0.0, momentum > 0.0, nesterov) {
                (false, false, _) => drive(w, g, [], |w0, gi, _| w0 - gi * lr),
                (true, false, _) => drive(w, g, [], |w0, gi, _| w0 - (gi + w0 * wd) * lr),
                (false, true, false) => drive(w, g, [m], |w0, gi, [mi]| {
                    sgd_mom::<false, false>(w0, gi, mi, mu, lr, wd)
                }),
                (true, true, false) => drive(w, g, [m], |w0, gi, [mi]| {
                    sgd_mom::<true, false>(w0, gi, mi, mu, lr, wd)
                }),
                (false, true, true) => drive(w, g, [m], |w0, gi, [mi]| {
                    sgd_mom::<false, true>(w0, gi, mi, mu, lr, wd)
                }),
                (true, true, true) => drive(w, g, [m], |w0, gi, [mi]| {
                    sgd_mom::<true, true>(w0, gi, mi, mu, lr, wd)
                }),
            }
        }
        FusedRule::Adam {
            beta1,
            one_minus_beta1,
            beta2,
            one_minus_beta2,
            epsilon,
            step_size,
            inv_bias2,
            decay_factor,
        } => {
            // Coupled decay adds wd·w to the gradient (wd is 0 without it); decoupled decay
            // scales w first (the factor 1 is exact without it).
            let (wd, factor) = match decay_factor {
                Some(f) => (0.0, f),
                None => (wd, 1.0),
            };
            drive(w, g, [m, v], |w0, gi, [mi, vi]| {
                let gd = if wd > 0.0 { gi + w0 * wd } else { gi };
                let m1 = *mi * beta1 + gd * one_minus_beta1;
                let v1 = *vi * beta2 + gd * gd * one_minus_beta2;
                *mi = m1;
                *vi = v1;
                w0 * factor - (m1 * step_size) / ((v1 * inv_bias2).sqrt() + epsilon)
            })
        }
    }
}

/// One momentum-SGD value (PyTorch's rule): returns the new weight, updates the buffer.
#[inline(always)]
fn sgd_mom<const WD: bool, const NEST: bool>(
    w0: f32,
    gi: f32,
    mi: &mut f32,
    mu: f32,
    lr: f32,
    wd: f32,
) -> f32 {
    let gd = if WD { gi + w0 * wd } else { gi };
    let buf = *mi * mu + gd;
    *mi = buf;
    let d = if NEST { gd + buf * mu } else { buf };
    w0 - d * lr
}

const LANES: usize = 8;

/// `Σ f(a_i, b_i)` in 8 independent f32 lanes (so that it vectorises), flushed into f64 every
/// 2048 elements to keep the rounding error small.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut total = 0f64;
    for (ab, bb) in a.chunks(2048).zip(b.chunks(2048)) {
        let mut acc = [0f32; LANES];
        let ac = ab.chunks_exact(LANES);
        let bc = bb.chunks_exact(LANES);
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for j in 0..LANES {
                acc[j] += f(x[j], y[j]);
            }
        }
        total += acc.iter().map(|&v| v as f64).sum::<f64>();
        total += ar
            .iter()
            .zip(br)
            .map(|(&x, &y)| f(x, y) as f64)
            .sum::<f64>();
    }
    total
}

/// The sums of one update: `Σg²` and `Σw²` from a read-only pass before it (two accumulators
/// vectorise where five would spill), `Σu²` in 8 local lanes during it ([`add_change`]),
/// flushed into f64 every 2,048 values.
struct StepAcc {
    before: [f64; 2],
    total_u: f64,
}

impl StepAcc {
    /// Starts the sums for an update of `w` by `g`.
    fn new(w: &[f32], g: &[f32]) -> Self {
        Self {
            before: [lane_sum(g, g, |x, _| x * x), lane_sum(w, w, |x, _| x * x)],
            total_u: 0.0,
        }
    }

    /// Moves the lanes into the f64 total and clears them.
    #[inline(always)]
    fn flush(&mut self, lanes: &mut [f32; LANES]) {
        self.total_u += lanes.iter().map(|&v| v as f64).sum::<f64>();
        *lanes = [0.0; LANES];
    }

    /// Adds the change of one value outside the chunks.
    fn add_one(&mut self, w: f32, nw: f32) {
        let u = nw - w;
        self.total_u += (u * u) as f64;
    }

    fn finish(mut self, mut lanes: [f32; LANES]) -> [f32; 3] {
        self.flush(&mut lanes);
        [
            self.before[0] as f32,
            self.before[1] as f32,
            self.total_u as f32,
        ]
    }
}

/// Adds one chunk's `(w' − w)²` to local lanes, flushing them every 256 chunks.
#[inline(always)]
fn add_change(
    acc: &mut StepAcc,
    lanes: &mut [f32; LANES],
    k: usize,
    w: &[f32; LANES],
    nw: &[f32; LANES],
) {
    for j in 0..LANES {
        let u = nw[j] - w[j];
        lanes[j] += u * u;
    }
    if k % 256 == 255 {
        acc.flush(lanes);
    }
}

fn lanes(c: &[f32]) -> [f32; LANES] {
    c.try_into().expect("chunks of LANES")
}

/// Runs an update `f(w, g, state) -> w'` over every value in place, with `S` state values per
/// weight (none for plain SGD, the momentum buffer, Adam's two moments) that `f` may change, a
/// chunk of 8 lanes at a time so that it vectorises; returns the sums.
#[inline(always)]
fn drive<const S: usize>(
    w: &mut [f32],
    g: &[f32],
    mut state: [&mut [f32]; S],
    f: impl Fn(f32, f32, &mut [f32; S]) -> f32,
) -> [f32; 3] {
    let n = w.len();
    let g = &g[..n];
    for s in state.iter_mut() {
        let whole = std::mem::take(s);
        *s = &mut whole[..n];
    }
    let mut acc = StepAcc::new(w, g);
    let mut ul = [0f32; LANES];
    let chunks = n / LANES;
    for k in 0..chunks {
        let r = k * LANES..(k + 1) * LANES;
        let (w0, g0) = (lanes(&w[r.clone()]), lanes(&g[r.clone()]));
        let mut st: [[f32; LANES]; S] = std::array::from_fn(|s| lanes(&state[s][r.clone()]));
        let mut nw = [0f32; LANES];
        for j in 0..LANES {
            let mut sj: [f32; S] = std::array::from_fn(|s| st[s][j]);
            nw[j] = f(w0[j], g0[j], &mut sj);
            for (column, v) in st.iter_mut().zip(sj) {
                column[j] = v;
            }
        }
        w[r.clone()].copy_from_slice(&nw);
        for (slice, column) in state.iter_mut().zip(&st) {
            slice[r.clone()].copy_from_slice(column);
        }
        add_change(&mut acc, &mut ul, k, &w0, &nw);
    }
    for i in chunks * LANES..n {
        let mut si: [f32; S] = std::array::from_fn(|s| state[s][i]);
        let w0 = w[i];
        w[i] = f(w0, g[i], &mut si);
        for (slice, v) in state.iter_mut().zip(si) {
            slice[i] = v;
        }
        acc.add_one(w0, w[i]);
    }
    acc.finish(ul)
}

/// A flat `f32` tensor of `n` values to update in place: itself when it is the only owner of a
/// contiguous buffer of exactly those values, otherwise a copy (or zeros when it is empty, the
/// state before the first step).
fn owned_flat(t: FlexTensor, n: usize) -> FlexTensor {
    let whole = t.layout().contiguous_offsets() == Some((0, n))
        && t.storage::<f32>().len() == n
        && t.is_unique();
    if whole {
        t
    } else if t.layout().num_elements() >= n {
        flex_from(values(&t)[..n].to_vec(), vec![n])
    } else {
        flex_from(vec![0f32; n], vec![n])
    }
}

impl FusedOptim for Flex {
    fn fused_optimizer_step(
        weight: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        lr: f32,
        weight_decay: f32,
        rule: FusedRule,
    ) -> OptimStep<Self> {
        let n = weight
            .layout()
            .num_elements()
            .min(grad.layout().num_elements());
        let (uses_m, uses_v) = rule.state_used();
        let mut weight = owned_flat(weight, n);
        let empty = || flex_from(Vec::new(), vec![0]);
        let mut m = if uses_m { owned_flat(m, n) } else { empty() };
        let mut v = if uses_v { owned_flat(v, n) } else { empty() };
        let sums = optimizer_step_in_place(
            weight.storage_mut::<f32>(),
            &values(&grad),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
            lr,
            weight_decay,
            rule,
        );
        OptimStep {
            weight,
            m,
            v,
            sums: flex_from(sums.to_vec(), vec![3]),
        }
    }
}

/// Layer statistics of the CPU backend, read from the tensor's own buffer without a copy.
#[backend_extension(Flex)]
pub trait FusedProbe: Backend {
    /// [`host_layer_stats`](crate::model::probe::host_layer_stats) of all the values of `x`, as
    /// a `[LAYER_STATS_LEN]` tensor.
    fn fused_layer_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedProbe for Flex {
    fn fused_layer_stats(x: FlexTensor) -> FlexTensor {
        let stats = crate::model::probe::host_layer_stats(&values(&x));
        flex_from(stats.to_vec(), vec![stats.len()])
    }
}

/// The statistics of a layer output on burn-flex ([`FusedProbe`]), read back to the host.
pub fn layer_stats_host(x: Tensor<1>) -> Vec<f32> {
    let stats = <burn::backend::Dispatch as FusedProbe>::fused_layer_stats(x.into_dispatch());
    Tensor::<1>::from_dispatch(stats)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// One fused optimiser update on burn-flex tensors; see [`FusedOptim`].
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step(
    weight: Tensor<1>,
    grad: Tensor<1>,
    m: Option<Tensor<1>>,
    v: Option<Tensor<1>>,
    lr: f32,
    weight_decay: f32,
    rule: FusedRule,
) -> (Tensor<1>, Option<Tensor<1>>, Option<Tensor<1>>, Tensor<1>) {
    let device = weight.device();
    let empty = || Tensor::<1>::zeros([0], &device);
    let r = <burn::backend::Dispatch as FusedOptim>::fused_optimizer_step(
        weight.into_dispatch(),
        grad.into_dispatch(),
        m.unwrap_or_else(empty).into_dispatch(),
        v.unwrap_or_else(empty).into_dispatch(),
        lr,
        weight_decay,
        rule,
    );
    let some = |t: Tensor<1>| (t.dims()[0] > 0).then_some(t);
    (
        Tensor::from_dispatch(r.weight),
        some(Tensor::from_dispatch(r.m)),
        some(Tensor::from_dispatch(r.v)),
        Tensor::from_dispatch(r.sums),
    )
}
