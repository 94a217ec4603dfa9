//! Self-attention's core, `softmax(QKᵀ/√d_h)·V` for every head, as one kernel each way on
//! burn-flex. burn runs it as a permute copy of `qkv`, two batched products of 16 × 16 blocks
//! (one `gemm` call per sample and head), a softmax of five element-wise passes and their
//! backward: 5.5 of the 10 ms a vit-res-12 block takes forward and backward (`cargo bench
//! --bench vit_ops`). Here each sample is one task reading its queries, keys and values straight
//! from the `qkv` rows (`[b, n, 3d]`, queries first, each head's `d_h` features side by side)
//! and writing the heads' outputs side by side (`[b, n, d]`) and the attention weights
//! (`[b, heads, n, n]`, kept for the backward and returned for the probes). A sample's values
//! do not depend on how samples are split among threads.

use super::{exp_fast, flex_from, shape_of, values, widest};
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use rayon::prelude::*;

/// The attention core's outputs.
#[derive(ExtensionType)]
pub struct AttentionOut<B: Backend> {
    /// The heads' outputs side by side, `[b, n, d]`, differentiable.
    pub heads: FloatTensor<B>,
    /// The attention weights `[b, heads, n, n]` (rows sum to 1), detached.
    pub weights: FloatTensor<B>,
}

/// Self-attention's core on the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedAttention: Backend {
    /// The heads' outputs and weights of `qkv` (`[b, n, 3d]`) with `heads` heads.
    fn fused_attention(qkv: FloatTensor<Self>, heads: usize) -> AttentionOut<Self>;
}

/// Tokens, heads and features per head of one sample.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Tokens.
    pub n: usize,
    /// Heads.
    pub h: usize,
    /// Features per head.
    pub dh: usize,
}

impl Dims {
    fn d(self) -> usize {
        self.h * self.dh
    }
    /// The presets' 16 tokens of 16 features per head, as constants: the kernels' loops, inlined
    /// with them, have known trip counts and keep a row in registers.
    #[inline(always)]
    fn preset(self) -> Option<Dims> {
        (self.n == 16 && self.dh == 16).then_some(Dims {
            n: 16,
            h: self.h,
            dh: 16,
        })
    }
    fn scale(self) -> f32 {
        1.0 / (self.dh as f32).sqrt()
    }
    /// Query (`part` 0), key (1) or value (2) of token `t` in head `head`, within a sample's
    /// `qkv` rows.
    fn at(self, t: usize, part: usize, head: usize) -> usize {
        t * 3 * self.d() + part * self.d() + head * self.dh
    }
}

/// Samples per parallel task: a fixed split (8 tasks or more) independent of the thread count.
fn per_task(b: usize) -> usize {
    b.div_ceil(8).max(1)
}

/// The heads' outputs `[b, n, d]` and the weights `[b, h, n, n]` of `qkv` (`[b, n, 3d]`).
pub fn attention_forward(qkv: &[f32], dims: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { n, h, .. } = dims;
    let d = dims.d();
    let b = qkv.len() / (n * 3 * d);
    let per = per_task(b);
    let mut out = vec![0f32; b * n * d];
    let mut weights = vec![0f32; b * h * n * n];
    out.par_chunks_mut(per * n * d)
        .zip(weights.par_chunks_mut(per * h * n * n))
        .zip(qkv.par_chunks(per * n * 3 * d))
        .for_each(|((out, p), x)| forward_samples(x, dims, out, p));
    (out, weights)
}

widest! {
    /// [`forward_sample`] of each sample of a task.
    fn forward_samples(x: &[f32], dims: Dims, out: &mut [f32], p: &mut [f32]) {
        match dims.preset() {
            Some(dims) => each_forward(x, dims, out, p),
            None => each_forward(x, dims, out, p),
        }
    }
}

#[inline(always)]
fn each_forward(x: &[f32], dims: Dims, out: &mut [f32], p: &mut [f32]) {
    let Dims { n, h, dh } = dims;
    let d = dims.d();
    let mut kt = vec![0f32; dh * n];
    for ((out, p), x) in out
        .chunks_exact_mut(n * d)
        .zip(p.chunks_exact_mut(h * n * n))
        .zip(x.chunks_exact(n * 3 * d))
    {
        forward_sample(x, dims, out, p, &mut kt);
    }
}

/// One sample: `kt` is scratch for a head's keys transposed (`[d_h, n]`), so that scores and
/// outputs are sums of whole rows (vectorised) instead of dot products. The loops run over rows
/// innermost, so that consecutive updates touch different rows.
#[inline(always)]
fn forward_sample(x: &[f32], dims: Dims, out: &mut [f32], p: &mut [f32], kt: &mut [f32]) {
    let Dims { n, h, dh } = dims;
    let (d, scale) = (dims.d(), dims.scale());
    for head in 0..h {
        for j in 0..n {
            for (c, &k) in x[dims.at(j, 1, head)..][..dh].iter().enumerate() {
                kt[c * n + j] = k;
            }
        }
        let s = &mut p[head * n * n..][..n * n];
        for c in 0..dh {
            let kc = &kt[c * n..][..n];
            for (i, row) in s.chunks_exact_mut(n).enumerate() {
                axpy(row, x[dims.at(i, 0, head) + c] * scale, kc);
            }
        }
        for row in s.chunks_exact_mut(n) {
            softmax(row);
        }
        for j in 0..n {
            let v = &x[dims.at(j, 2, head)..][..dh];
            for (i, row) in s.chunks_exact(n).enumerate() {
                axpy(&mut out[i * d + head * dh..][..dh], row[j], v);
            }
        }
    }
}

/// `y ← y + a·x`, sixteen values at a time as fixed-size arrays (which the compiler turns into
/// vector operations reliably; on plain slices of a row some of these loops stayed scalar).
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let x = &x[..y.len()];
    let (mut yc, mut xc) = (y.chunks_exact_mut(16), x.chunks_exact(16));
    for (y, x) in (&mut yc).zip(&mut xc) {
        let y: &mut [f32; 16] = y.try_into().expect("16 values");
        let x: &[f32; 16] = x.try_into().expect("16 values");
        for k in 0..16 {
            y[k] += a * x[k];
        }
    }
    for (y, &x) in yc.into_remainder().iter_mut().zip(xc.remainder()) {
        *y += a * x;
    }
}

/// `row ← softmax(row)`, less its maximum first as burn does.
#[inline(always)]
fn softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in row.iter_mut() {
        *v = exp_fast(*v - max);
    }
    let inv = 1.0 / row.iter().sum::<f32>();
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// The gradient of the `qkv` rows (`[b, n, 3d]`) from the heads' outputs' gradient `g`
/// (`[b, n, d]`) and the forward's `qkv` and weights.
pub fn attention_backward(qkv: &[f32], weights: &[f32], g: &[f32], dims: Dims) -> Vec<f32> {
    let Dims { n, h, .. } = dims;
    let d = dims.d();
    let b = qkv.len() / (n * 3 * d);
    let per = per_task(b);
    let mut dqkv = vec![0f32; qkv.len()];
    dqkv.par_chunks_mut(per * n * 3 * d)
        .zip(qkv.par_chunks(per * n * 3 * d))
        .zip(
            weights
                .par_chunks(per * h * n * n)
                .zip(g.par_chunks(per * n * d)),
        )
        .for_each(|((dx, x), (p, g))| backward_samples(x, p, g, dims, dx));
    dqkv
}

widest! {
    /// [`backward_sample`] of each sample of a task.
    fn backward_samples(x: &[f32], p: &[f32], g: &[f32], dims: Dims, dx: &mut [f32]) {
        match dims.preset() {
            Some(dims) => each_backward(x, p, g, dims, dx),
            None => each_backward(x, p, g, dims, dx),
        }
    }
}

#[inline(always)]
fn each_backward(x: &[f32], p: &[f32], g: &[f32], dims: Dims, dx: &mut [f32]) {
    let Dims { n, h, dh } = dims;
    let d = dims.d();
    let (mut vt, mut ds) = (vec![0f32; dh * n], vec![0f32; n * n]);
    for (((dx, x), p), g) in dx
        .chunks_exact_mut(n * 3 * d)
        .zip(x.chunks_exact(n * 3 * d))
        .zip(p.chunks_exact(h * n * n))
        .zip(g.chunks_exact(n * d))
    {
        backward_sample((x, p, g), dims, dx, (&mut vt, &mut ds));
    }
}

/// One sample's backward: with `P` a head's weights and `G` its outputs' gradient,
/// `dV = PᵀG`, `dP = GVᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = dS·K/√d_h`,
/// `dK = dSᵀ·Q/√d_h`. `vt` holds the head's values transposed, `ds` `dP` then `dS` (two buffers:
/// carved from one, the compiler could not tell them apart and kept a loop scalar); as in
/// the forward, consecutive updates touch different rows.
#[inline(always)]
fn backward_sample(
    (x, p, g): (&[f32], &[f32], &[f32]),
    dims: Dims,
    dx: &mut [f32],
    (vt, ds): (&mut [f32], &mut [f32]),
) {
    let Dims { n, h, dh } = dims;
    let (d, scale) = (dims.d(), dims.scale());
    let ds = &mut ds[..n * n];
    for head in 0..h {
        for j in 0..n {
            for (c, &v) in x[dims.at(j, 2, head)..][..dh].iter().enumerate() {
                vt[c * n + j] = v;
            }
        }
        let ph = &p[head * n * n..][..n * n];
        let gi = |i: usize| &g[i * d + head * dh..][..dh];
        for (i, pi) in ph.chunks_exact(n).enumerate() {
            for (j, &pij) in pi.iter().enumerate() {
                axpy(&mut dx[dims.at(j, 2, head)..][..dh], pij, gi(i));
            }
        }
        ds.fill(0.0);
        for c in 0..dh {
            let vc = &vt[c * n..][..n];
            for (i, row) in ds.chunks_exact_mut(n).enumerate() {
                axpy(row, gi(i)[c], vc);
            }
        }
        for (row, pi) in ds.chunks_exact_mut(n).zip(ph.chunks_exact(n)) {
            let dot: f32 = pi.iter().zip(row.iter()).map(|(a, b)| a * b).sum();
            for (v, &pij) in row.iter_mut().zip(pi) {
                *v = pij * (*v - dot) * scale;
            }
        }
        for j in 0..n {
            let k = &x[dims.at(j, 1, head)..][..dh];
            for i in 0..n {
                axpy(&mut dx[dims.at(i, 0, head)..][..dh], ds[i * n + j], k);
            }
        }
        for (i, row) in ds.chunks_exact(n).enumerate() {
            let q = &x[dims.at(i, 0, head)..][..dh];
            for (j, &dsij) in row.iter().enumerate() {
                axpy(&mut dx[dims.at(j, 1, head)..][..dh], dsij, q);
            }
        }
    }
}

fn dims_of(qkv: &FlexTensor, heads: usize) -> (Vec<usize>, Dims) {
    let shape = shape_of(qkv);
    let d = shape[2] / 3;
    let dims = Dims {
        n: shape[1],
        h: heads,
        dh: d / heads,
    };
    (shape, dims)
}

/// The forward on flex tensors: the heads' outputs and the weights.
fn forward_flex(qkv: &FlexTensor, heads: usize) -> AttentionOut<Flex> {
    let (shape, dims) = dims_of(qkv, heads);
    let (out, weights) = attention_forward(&values(qkv), dims);
    AttentionOut {
        heads: flex_from(out, vec![shape[0], dims.n, dims.d()]),
        weights: flex_from(weights, vec![shape[0], heads, dims.n, dims.n]),
    }
}

impl FusedAttention for Flex {
    fn fused_attention(qkv: FlexTensor, heads: usize) -> AttentionOut<Self> {
        forward_flex(&qkv, heads)
    }
}

#[derive(Debug)]
struct FusedAttentionBackward;

impl Backward<Flex, 1> for FusedAttentionBackward {
    /// `qkv`, the weights and the heads.
    type State = (FlexTensor, FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (qkv, weights, heads) = ops.state;
        if let Some(node) = node {
            let (shape, dims) = dims_of(&qkv, heads);
            let dqkv = attention_backward(&values(&qkv), &values(&weights), &values(&grad), dims);
            grads.register::<Flex>(node.id, flex_from(dqkv, shape));
        }
    }
}

impl<C: CheckpointStrategy> FusedAttention for Autodiff<Flex, C> {
    fn fused_attention(qkv: FloatTensor<Self>, heads: usize) -> AttentionOut<Self> {
        use burn::backend::AutodiffBackend;
        let prep = FusedAttentionBackward
            .prepare::<C>([qkv.node()])
            .compute_bound()
            .stateful();
        let xp = qkv.primitive().clone();
        let r = forward_flex(&xp, heads);
        let out = match prep {
            OpsKind::Tracked(prep) => prep.finish((xp, r.weights.clone(), heads), r.heads),
            OpsKind::UnTracked(prep) => prep.finish(r.heads),
        };
        AttentionOut {
            heads: out,
            weights: <Self as AutodiffBackend>::from_inner(r.weights),
        }
    }
}
