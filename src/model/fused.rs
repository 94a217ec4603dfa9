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
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
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

fn flex_from(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Per-channel sums over `[b, c, s]` of `f(a, b, p[c], q[c])` (two tensors of that layout and
/// two per-channel values), accumulated in f32 lanes and flushed into f64. With `s == 1` the
/// loop runs along rows of channels, otherwise along each contiguous run of one channel; both
/// forms are zipped slices, so they vectorise.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn channel_sums(
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

/// Forward on host slices: returns `(output, mean, biased var, inv_std)`.
fn bn_forward(
    x: &[f32],
    dims: (usize, usize, usize),
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
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
fn bn_backward(
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
    output
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
/// (`0·μ + g = g`).
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
    let missing = m.len() < n || v.len() < n;
    let zeros = if missing { vec![0f32; n] } else { Vec::new() };
    let m = if m.len() >= n { &m[..n] } else { &zeros[..] };
    let v = if v.len() >= n { &v[..n] } else { &zeros[..] };
    let mut nw = vec![0f32; n];
    match rule {
        FusedRule::Sgd { momentum, nesterov } => {
            let mut nm = if momentum > 0.0 {
                vec![0f32; n]
            } else {
                Vec::new()
            };
            let sums = match (wd > 0.0, momentum > 0.0, nesterov) {
                (false, false, _) => {
                    sgd_pass::<false, false, false>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
                (true, false, _) => {
                    sgd_pass::<true, false, false>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
                (false, true, false) => {
                    sgd_pass::<false, true, false>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
                (true, true, false) => {
                    sgd_pass::<true, true, false>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
                (false, true, true) => {
                    sgd_pass::<false, true, true>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
                (true, true, true) => {
                    sgd_pass::<true, true, true>(w, g, m, &mut nw, &mut nm, lr, momentum, wd)
                }
            };
            (nw, nm, Vec::new(), sums)
        }
        FusedRule::Adam { .. } => {
            let mut nm = vec![0f32; n];
            let mut nv = vec![0f32; n];
            let sums = adam_pass(w, g, m, v, &mut nw, &mut nm, &mut nv, wd, rule);
            (nw, nm, nv, sums)
        }
    }
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

/// `[Σg², Σw², Σ(w_new − w)²]`.
fn step_sums(w: &[f32], g: &[f32], nw: &[f32]) -> [f32; 3] {
    [
        lane_sum(g, g, |x, _| x * x) as f32,
        lane_sum(w, w, |x, _| x * x) as f32,
        lane_sum(nw, w, |x, y| (x - y) * (x - y)) as f32,
    ]
}

/// SGD over whole slices: element-wise loops without reductions (they vectorise), then the
/// three sums.
#[allow(clippy::too_many_arguments)]
fn sgd_pass<const WD: bool, const MOM: bool, const NEST: bool>(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    nw: &mut [f32],
    nm: &mut [f32],
    lr: f32,
    mu: f32,
    wd: f32,
) -> [f32; 3] {
    let n = nw.len();
    let (w, g) = (&w[..n], &g[..n]);
    let decayed = |wi: f32, gi: f32| if WD { gi + wi * wd } else { gi };
    if MOM {
        let (m, nm) = (&m[..n], &mut nm[..n]);
        for ((((nw, nm), &wi), &gi), &mi) in nw.iter_mut().zip(nm.iter_mut()).zip(w).zip(g).zip(m) {
            let gd = decayed(wi, gi);
            let buf = mi * mu + gd;
            *nm = buf;
            let d = if NEST { gd + buf * mu } else { buf };
            *nw = wi - d * lr;
        }
    } else {
        for ((nw, &wi), &gi) in nw.iter_mut().zip(w).zip(g) {
            *nw = wi - decayed(wi, gi) * lr;
        }
    }
    step_sums(w, g, nw)
}

/// Adam / AdamW over whole slices, like [`sgd_pass`].
#[allow(clippy::too_many_arguments)]
fn adam_pass(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    nw: &mut [f32],
    nm: &mut [f32],
    nv: &mut [f32],
    wd: f32,
    rule: FusedRule,
) -> [f32; 3] {
    let FusedRule::Adam {
        beta1,
        one_minus_beta1,
        beta2,
        one_minus_beta2,
        epsilon,
        step_size,
        inv_bias2,
        decay_factor,
    } = rule
    else {
        return [0.0; 3];
    };
    let n = nw.len();
    let (w, g, m, v) = (&w[..n], &g[..n], &m[..n], &v[..n]);
    // Coupled decay adds wd·w to the gradient (wd is 0 without it); decoupled decay scales w
    // first (the factor 1 is exact without it).
    let (wd, factor) = match decay_factor {
        Some(f) => (0.0, f),
        None => (wd, 1.0),
    };
    let (nm, nv) = (&mut nm[..n], &mut nv[..n]);
    for i in 0..n {
        let (w0, gi) = (w[i], g[i]);
        let gd = if wd > 0.0 { gi + w0 * wd } else { gi };
        let m1 = m[i] * beta1 + gd * one_minus_beta1;
        let v1 = v[i] * beta2 + gd * gd * one_minus_beta2;
        nm[i] = m1;
        nv[i] = v1;
        nw[i] = w0 * factor - (m1 * step_size) / ((v1 * inv_bias2).sqrt() + epsilon);
    }
    step_sums(w, g, nw)
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
        let (nw, nm, nv, sums) = optimizer_step_host(
            &values(&weight),
            &values(&grad),
            &values(&m),
            &values(&v),
            lr,
            weight_decay,
            rule,
        );
        let (lw, lm, lv) = (nw.len(), nm.len(), nv.len());
        OptimStep {
            weight: flex_from(nw, vec![lw]),
            m: flex_from(nm, vec![lm]),
            v: flex_from(nv, vec![lv]),
            sums: flex_from(sums.to_vec(), vec![3]),
        }
    }
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
