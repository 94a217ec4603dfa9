//! The optimiser step of burn-flex as one pass per tensor (SGD, momentum, Nesterov, Adam,
//! AdamW), also returning the sums the gradient panel shows.

use super::{LANES, flex_from, values};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, ExtensionType, Flex, backend_extension};
use burn::tensor::Tensor;

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

/// What one step does: the rule, the learning rate and the coupled weight decay (ignored by
/// AdamW, whose rule carries its decoupled decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FusedStep {
    /// The learning rate.
    pub lr: f32,
    /// The coupled (L2) weight decay added to the gradient.
    pub weight_decay: f32,
    /// The update rule.
    pub rule: FusedRule,
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
    fn fused_optimizer_step(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: FusedStep,
    ) -> OptimStep<Self>;
}

/// Host form of the fused update; `m`/`v` empty means "no state yet". Returns the new weights,
/// state and `[Σg², Σw², Σu²]`. The arithmetic is the same f32 sequence as `train::optim`'s
/// tensor form.
/// A missing state is read as zeros, which gives exactly the first-step values
/// (`0·μ + g = g`). A copying wrapper around [`optimizer_step_in_place`].
pub fn optimizer_step_host(
    w: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    step: FusedStep,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, [f32; 3]) {
    let n = w.len().min(g.len());
    let mut nw = w[..n].to_vec();
    let state = |s: &[f32], used: bool| match (used, s.len() >= n) {
        (false, _) => Vec::new(),
        (true, true) => s[..n].to_vec(),
        (true, false) => vec![0f32; n],
    };
    let (uses_m, uses_v) = step.rule.state_used();
    let mut nm = state(m, uses_m);
    let mut nv = state(v, uses_v);
    let sums = optimizer_step_in_place(&mut nw, &g[..n], &mut nm, &mut nv, step);
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
pub fn optimizer_step_in_place(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: FusedStep,
) -> [f32; 3] {
    let FusedStep {
        lr,
        weight_decay: wd,
        rule,
    } = step;
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
        step: FusedStep,
    ) -> OptimStep<Self> {
        let n = weight
            .layout()
            .num_elements()
            .min(grad.layout().num_elements());
        let (uses_m, uses_v) = step.rule.state_used();
        let mut weight = owned_flat(weight, n);
        let empty = || flex_from(Vec::new(), vec![0]);
        let mut m = if uses_m { owned_flat(m, n) } else { empty() };
        let mut v = if uses_v { owned_flat(v, n) } else { empty() };
        let sums = optimizer_step_in_place(
            weight.storage_mut::<f32>(),
            &values(&grad),
            m.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
            step,
        );
        OptimStep {
            weight,
            m,
            v,
            sums: flex_from(sums.to_vec(), vec![3]),
        }
    }
}

/// One fused optimiser update on burn-flex tensors; see [`FusedOptim`].
pub fn optimizer_step(
    weight: Tensor<1>,
    grad: Tensor<1>,
    m: Option<Tensor<1>>,
    v: Option<Tensor<1>>,
    step: FusedStep,
) -> (Tensor<1>, Option<Tensor<1>>, Option<Tensor<1>>, Tensor<1>) {
    let device = weight.device();
    let empty = || Tensor::<1>::zeros([0], &device);
    let r = <burn::backend::Dispatch as FusedOptim>::fused_optimizer_step(
        weight.into_dispatch(),
        grad.into_dispatch(),
        m.unwrap_or_else(empty).into_dispatch(),
        v.unwrap_or_else(empty).into_dispatch(),
        step,
    );
    let some = |t: Tensor<1>| (t.dims()[0] > 0).then_some(t);
    (
        Tensor::from_dispatch(r.weight),
        some(Tensor::from_dispatch(r.m)),
        some(Tensor::from_dispatch(r.v)),
        Tensor::from_dispatch(r.sums),
    )
}
