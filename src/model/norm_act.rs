//! The `BatchNorm (+ α·branch + shortcut) → ReLU` part that the fused blocks (dense and
//! convolutional) share, on `rows × channels` data (a dense layer's `[batch, out]`, or a
//! convolution's channels-last output `[batch·h·w, out]`).
//!
//! Forward: `f = (z − μ)/sqrt(σ² + ε)·γ + β` with the batch's biased variance, `h = α·f + s`,
//! `y = max(h, 0)`; one pass for the statistics and one for the output. Backward: the ReLU
//! mask, `α`, and the BatchNorm backward in two passes.

use super::fused::{bn_stats, channel_sums};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The scalars of a fused block's BatchNorm epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epilogue {
    /// The branch scale α (ignored without a skip).
    pub alpha: f32,
    /// BatchNorm's ε.
    pub epsilon: f64,
    /// Whether a ReLU follows and joins the block.
    pub relu: bool,
    /// Whether the probes want the BatchNorm layer's output and the skip's sums.
    pub probe: bool,
}

/// Adds a per-channel `bias` to each row of `z` (`rows × c`); a bias of another length (`[0]`:
/// a layer without one) adds nothing.
pub(super) fn add_bias(z: &mut [f32], bias: &[f32], c: usize) {
    if bias.len() == c {
        for row in z.chunks_exact_mut(c) {
            for (v, &b) in row.iter_mut().zip(bias.iter()) {
                *v += b;
            }
        }
    }
}

/// What the backward pass keeps besides the tensors: per-channel `γ`, mean and
/// `1/sqrt(σ² + ε)`.
#[derive(Clone)]
pub(super) struct Saved {
    pub gamma: Vec<f32>,
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// The forward results.
pub(super) struct Forward {
    /// `y` (or `h` without a ReLU), `rows × c`.
    pub output: Vec<f32>,
    /// `h` on probe steps with a ReLU, else empty (without a ReLU `h` is the output).
    pub pre: Vec<f32>,
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// Biased batch variance per channel.
    pub var: Vec<f32>,
    /// `[Σ f², Σ s², α]` on probe steps with a skip, else zeros.
    pub skip_sums: Vec<f32>,
    /// What the backward pass needs.
    pub saved: Saved,
}

/// The inputs of the forward pass besides `z`.
pub(super) struct Params<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    /// `rows × c` in `z`'s order, or empty for no skip.
    pub shortcut: &'a [f32],
    pub alpha: f32,
    pub epsilon: f64,
    pub relu: bool,
    pub probe: bool,
}

/// BatchNorm with batch statistics, the optional skip and ReLU over `z` (`rows × c`).
pub(super) fn forward(z: &[f32], rows: usize, c: usize, p: &Params<'_>) -> Forward {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512(z: &[f32], rows: usize, c: usize, p: &Params<'_>) -> Forward {
        forward_impl(z, rows, c, p)
    }
    #[cfg(target_arch = "x86_64")]
    if avx512_here() {
        // SAFETY: the CPU has AVX-512F (detected).
        return unsafe { avx512(z, rows, c, p) };
    }
    forward_impl(z, rows, c, p)
}

/// Whether the CPU has AVX-512F: the row loops here are written for the compiler to vectorise
/// across channels, and the copies compiled for it use 16 lanes instead of 4.
fn avx512_here() -> bool {
    super::conv::Isa::detect() == super::conv::Isa::Avx512
}

/// [`forward`]'s body, inlined into the copy compiled for the CPU.
#[inline(always)]
fn forward_impl(z: &[f32], rows: usize, c: usize, p: &Params<'_>) -> Forward {
    let n = rows * c;
    let dims = (rows, c, 1);
    let (mean, var, inv_std) = bn_stats(z, dims, p.epsilon);
    let skip = p.shortcut.len() == n;
    let a = if skip { p.alpha } else { 1.0 };
    // f = z·scale + shift; h = α·f + s = z·(α·scale) + α·shift + s; y = max(h, 0).
    let scale: Vec<f32> = (0..c).map(|k| p.gamma[k] * inv_std[k]).collect();
    let shift: Vec<f32> = (0..c).map(|k| p.beta[k] - mean[k] * scale[k]).collect();
    let a_scale: Vec<f32> = scale.iter().map(|&v| v * a).collect();
    let a_shift: Vec<f32> = shift.iter().map(|&v| v * a).collect();
    // The outputs are written once, without zero-filling first (at CIFAR sizes these are
    // megabytes per block), in row ranges on rayon's threads when large ([`build_rows`]).
    // `h` itself is kept only for the probes, or as the output without a ReLU.
    let keep_pre = p.probe && p.relu;
    let zero = vec![0f32; c];
    let s_rows: &[f32] = if skip { p.shortcut } else { &zero };
    let s_step = if skip { c } else { 0 };
    let (a_scale, a_shift) = (&a_scale[..c], &a_shift[..c]);
    let rows_out = OutRows {
        z,
        s_rows,
        s_step,
        a_scale,
        a_shift,
        relu: p.relu,
        c,
    };
    let (out, pre) = if keep_pre {
        let ([out, pre], _) = build_rows(rows, c, |r0, [o, q]| rows_out.write(r0, o, Some(q)));
        (out, pre)
    } else {
        let ([out], _) = build_rows(rows, c, |r0, [o]| rows_out.write(r0, o, None));
        (out, Vec::new())
    };
    let skip_sums = if p.probe && skip {
        let mut sums = vec![0f64; c];
        channel_sums(
            dims,
            z,
            z,
            &scale,
            &shift,
            |v, _, p, q| (v * p + q) * (v * p + q),
            &mut sums,
        );
        let mut s_sq = vec![0f64; c];
        let sv = p.shortcut;
        channel_sums(dims, sv, sv, &zero, &zero, |v, _, _, _| v * v, &mut s_sq);
        vec![
            sums.iter().sum::<f64>() as f32,
            s_sq.iter().sum::<f64>() as f32,
            p.alpha,
        ]
    } else {
        vec![0.0; 3]
    };
    Forward {
        output: out,
        pre,
        mean: mean.clone(),
        var,
        skip_sums,
        saved: Saved {
            gamma: p.gamma.to_vec(),
            mean,
            inv_std,
        },
    }
}

/// The forward pass's output rows: `h = z·(α·scale) + α·shift + s`, `y = max(h, 0)` (or `h`).
struct OutRows<'a> {
    z: &'a [f32],
    /// The shortcut, `rows × c`, or `c` zeros with `s_step` 0.
    s_rows: &'a [f32],
    s_step: usize,
    a_scale: &'a [f32],
    a_shift: &'a [f32],
    relu: bool,
    c: usize,
}

impl OutRows<'_> {
    /// Writes the rows from `r0` into `out` (and `h` into `pre`), compiled for AVX-512 where
    /// the CPU has it: the row ranges run on rayon's threads, in closures that do not inherit
    /// the caller's target features, so each range picks its copy here.
    fn write(&self, r0: usize, out: &mut [MaybeUninit<f32>], pre: Option<&mut [MaybeUninit<f32>]>) {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512(
            w: &OutRows<'_>,
            r0: usize,
            out: &mut [MaybeUninit<f32>],
            pre: Option<&mut [MaybeUninit<f32>]>,
        ) {
            w.write_impl(r0, out, pre)
        }
        #[cfg(target_arch = "x86_64")]
        if avx512_here() {
            // SAFETY: the CPU has AVX-512F (detected).
            return unsafe { avx512(self, r0, out, pre) };
        }
        self.write_impl(r0, out, pre)
    }

    #[inline(always)]
    fn write_impl(
        &self,
        r0: usize,
        out: &mut [MaybeUninit<f32>],
        mut pre: Option<&mut [MaybeUninit<f32>]>,
    ) {
        let (c, relu) = (self.c, self.relu);
        // `h <= 0` is false for a NaN, which passes through as burn's ReLU lets it.
        let act = |h: f32| if relu && h <= 0.0 { 0.0 } else { h };
        for (i, orow) in out.chunks_exact_mut(c).enumerate() {
            let r = r0 + i;
            let zr = &self.z[r * c..(r + 1) * c];
            let sr = &self.s_rows[r * self.s_step..r * self.s_step + c];
            let hs = zr
                .iter()
                .zip(sr)
                .zip(self.a_scale.iter().zip(self.a_shift))
                .map(|((&zv, &sv), (&sc, &sh))| zv * sc + sh + sv);
            match pre.as_deref_mut() {
                Some(pre) => {
                    let prow = &mut pre[i * c..(i + 1) * c];
                    for ((o, q), h) in orow.iter_mut().zip(prow).zip(hs) {
                        q.write(h);
                        o.write(act(h));
                    }
                }
                None => {
                    for (o, h) in orow.iter_mut().zip(hs) {
                        o.write(act(h));
                    }
                }
            }
        }
    }
}

/// The gradients the backward pass produces.
pub(super) struct Backward {
    /// `∂L/∂h` (the shortcut's gradient), `rows × c`.
    pub g: Vec<f32>,
    /// `∂L/∂z`, `rows × c`.
    pub dz: Vec<f32>,
    /// `∂L/∂γ`.
    pub dgamma: Vec<f32>,
    /// `∂L/∂β`.
    pub dbeta: Vec<f32>,
}

/// The backward pass from `dy` (`rows × c`, `z`'s order) given the forward's `z`, output and
/// saved values; `alpha` is 1 for a block without a skip.
///
/// Two passes: the first applies the ReLU mask (`g`, kept for the shortcut) and sums `α·g` and
/// `α·g·x̂` per channel; the second writes `dz = γ·inv_std·(α·g − mean(α·g) − x̂·mean(α·g·x̂))`
/// (the BatchNorm backward of `model::fused`, whose separate mask, scaling and two reduction
/// passes read the data four or five times).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    dy: &[f32],
    output: &[f32],
    z: &[f32],
    rows: usize,
    c: usize,
    saved: &Saved,
    alpha: f32,
    relu: bool,
) -> Backward {
    let n = rows * c;
    assert!(dy.len() == n && z.len() == n && (!relu || output.len() == n));
    let p = Pass {
        c,
        alpha,
        relu,
        mean: &saved.mean,
        inv_std: &saved.inv_std,
    };
    let (g, [sg, sgx]) = mask_and_sums(&p, [dy, output, z]);
    // dz = k·α·g − k·mean(α·g) − (k·mean(α·g·x̂)·inv_std)·(z − μ), with k = γ·inv_std.
    let count = rows as f64;
    let k: Vec<f32> = (0..c).map(|j| saved.gamma[j] * saved.inv_std[j]).collect();
    let k_mg: Vec<f32> = (0..c).map(|j| k[j] * (sg[j] / count) as f32).collect();
    let k_mgx: Vec<f32> = (0..c)
        .map(|j| k[j] * (sgx[j] / count) as f32 * saved.inv_std[j])
        .collect();
    let dz = input_grad(&p, &g, z, [&k, &k_mg, &k_mgx]);
    Backward {
        g,
        dz,
        dgamma: sgx.iter().map(|&v| v as f32).collect(),
        dbeta: sg.iter().map(|&v| v as f32).collect(),
    }
}

/// What both backward passes read besides the data.
struct Pass<'a> {
    c: usize,
    alpha: f32,
    relu: bool,
    mean: &'a [f32],
    inv_std: &'a [f32],
}

/// Pass one: `g = relu ? dy·[out > 0] : dy`, and per channel `Σ α·g`, `Σ α·g·x̂`; `d` is
/// `[dy, out, z]` (`out` unread without a ReLU). In row ranges on rayon's threads when large
/// ([`build_rows`]), each compiled for AVX-512 where the CPU has it; the ranges' sums are added
/// in range order, and the ranges are fixed, so the result does not depend on the number of
/// threads.
fn mask_and_sums(p: &Pass<'_>, [dy, out, z]: [&[f32]; 3]) -> (Vec<f32>, [Vec<f64>; 2]) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512(p: &Pass<'_>, d: [&[f32]; 3], g: &mut [MaybeUninit<f32>]) -> [Vec<f64>; 2] {
        mask_and_sums_rows(p, d, g)
    }
    let c = p.c.max(1);
    let rows = dy.len() / c;
    // Without a ReLU the mask reads `dy` itself, which is never compared.
    let out = if p.relu { out } else { dy };
    let ([g], parts) = build_rows(rows, c, |r0, [g]| {
        let d = [&dy[r0 * c..], &out[r0 * c..], &z[r0 * c..]];
        #[cfg(target_arch = "x86_64")]
        if avx512_here() {
            // SAFETY: the CPU has AVX-512F (detected).
            return unsafe { avx512(p, d, g) };
        }
        mask_and_sums_rows(p, d, g)
    });
    let mut sums = [vec![0f64; p.c], vec![0f64; p.c]];
    for part in parts {
        for (total, s) in sums.iter_mut().zip(part) {
            total.iter_mut().zip(s).for_each(|(t, v)| *t += v);
        }
    }
    (g, sums)
}

/// [`mask_and_sums`] for the rows of `g` (`d`'s slices start at the same row): `g` written, the
/// sums returned (in f32 lanes over 16 rows at a time, then f64).
#[inline(always)]
fn mask_and_sums_rows(
    p: &Pass<'_>,
    [dy, out, z]: [&[f32]; 3],
    g: &mut [MaybeUninit<f32>],
) -> [Vec<f64>; 2] {
    let c = p.c;
    let (mean, inv_std) = (&p.mean[..c], &p.inv_std[..c]);
    let (mut sg, mut sgx) = (vec![0f64; c], vec![0f64; c]);
    let (mut acc_g, mut acc_x) = (vec![0f32; c], vec![0f32; c]);
    let (relu, alpha) = (p.relu, p.alpha);
    let rows = g
        .chunks_exact_mut(c)
        .zip(dy.chunks_exact(c))
        .zip(out.chunks_exact(c))
        .zip(z.chunks_exact(c));
    for (r, (((grow, dr), orow), zr)) in rows.enumerate() {
        let lanes = acc_g.iter_mut().zip(acc_x.iter_mut());
        let stats = mean.iter().zip(inv_std);
        let values = grow.iter_mut().zip(dr).zip(orow).zip(zr);
        for ((((gv, &d), &o), &zv), ((ag, ax), (&m, &is))) in values.zip(lanes.zip(stats)) {
            // `out > 0` is false for a NaN output, as burn's ReLU backward has it.
            let v = if !relu || o > 0.0 { d } else { 0.0 };
            gv.write(v);
            let ga = v * alpha;
            *ag += ga;
            *ax += ga * ((zv - m) * is);
        }
        if r % 16 == 15 {
            flush(&mut acc_g, &mut sg);
            flush(&mut acc_x, &mut sgx);
        }
    }
    flush(&mut acc_g, &mut sg);
    flush(&mut acc_x, &mut sgx);
    [sg, sgx]
}

/// Adds f32 lanes into f64 totals and clears them.
#[inline(always)]
fn flush(lanes: &mut [f32], total: &mut [f64]) {
    for (t, l) in total.iter_mut().zip(lanes.iter_mut()) {
        *t += *l as f64;
        *l = 0.0;
    }
}

/// Pass two: `dz = k·α·g − k_mg − k_mgx·(z − μ)` per channel, in row ranges on rayon's threads
/// when large ([`build_rows`]), each compiled for AVX-512 where the CPU has it.
fn input_grad(p: &Pass<'_>, g: &[f32], z: &[f32], k: [&[f32]; 3]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512(p: &Pass<'_>, g: &[f32], z: &[f32], k: [&[f32]; 3], out: &mut [MaybeUninit<f32>]) {
        input_grad_rows(p, g, z, k, out)
    }
    let c = p.c.max(1);
    let rows = g.len() / c;
    let ([dz], _) = build_rows(rows, c, |r0, [out]| {
        let (g, z) = (&g[r0 * c..], &z[r0 * c..]);
        #[cfg(target_arch = "x86_64")]
        if avx512_here() {
            // SAFETY: the CPU has AVX-512F (detected).
            return unsafe { avx512(p, g, z, k, out) };
        }
        input_grad_rows(p, g, z, k, out)
    });
    dz
}

/// [`input_grad`] for the rows of `out`, `g` and `z` starting at the same row.
#[inline(always)]
fn input_grad_rows(
    p: &Pass<'_>,
    g: &[f32],
    z: &[f32],
    [k, k_mg, k_mgx]: [&[f32]; 3],
    out: &mut [MaybeUninit<f32>],
) {
    let c = p.c;
    let (mean, k, k_mg, k_mgx) = (&p.mean[..c], &k[..c], &k_mg[..c], &k_mgx[..c]);
    let alpha = p.alpha;
    let rows = out
        .chunks_exact_mut(c)
        .zip(g.chunks_exact(c))
        .zip(z.chunks_exact(c));
    for ((orow, gr), zr) in rows {
        let vals = gr
            .iter()
            .zip(zr)
            .zip(mean.iter().zip(k))
            .zip(k_mg.iter().zip(k_mgx))
            .map(|(((&gv, &zv), (&m, &kk)), (&a, &b))| kk * (gv * alpha) - a - b * (zv - m));
        for (o, v) in orow.iter_mut().zip(vals) {
            o.write(v);
        }
    }
}

/// Values from which a pass over `rows × c` values runs in row ranges on rayon's threads: half
/// a megabyte. Below it (a dense block's `[128, 64]`) one thread is faster than the hand-off.
const PAR_MIN: usize = 1 << 17;

/// How many ranges a parallel pass or product is cut into (here the rows of an epilogue pass,
/// in `conv::winograd` a product's tiles), run on rayon's threads. A fixed number, not the
/// thread count, so that partial sums (added in range order) do not depend on the machine: the
/// same inputs give the same bits everywhere.
pub(super) const PARTS: usize = 4;

/// Builds `K` buffers of `rows × c` values, `f(first_row, chunks)` writing every value of the
/// chunks of one row range and returning what it computed beside them (in range order):
/// [`PARTS`] ranges on rayon's threads from [`PAR_MIN`] values, else one range here.
fn build_rows<const K: usize, R: Send>(
    rows: usize,
    c: usize,
    f: impl Fn(usize, [&mut [MaybeUninit<f32>]; K]) -> R + Sync,
) -> ([Vec<f32>; K], Vec<R>) {
    let n = rows * c;
    let parts = if n >= PAR_MIN { PARTS.min(rows) } else { 1 };
    let per = rows.div_ceil(parts.max(1)).max(1) * c.max(1);
    let mut bufs: [Vec<f32>; K] = std::array::from_fn(|_| Vec::with_capacity(n));
    let results = {
        let mut chunks: Vec<_> = bufs
            .iter_mut()
            .map(|b| b.spare_capacity_mut()[..n].chunks_mut(per))
            .collect();
        let jobs: Vec<(usize, [&mut [MaybeUninit<f32>]; K])> = (0..n.div_ceil(per))
            .map(|j| {
                let ch = std::array::from_fn(|k| chunks[k].next().expect("one chunk per range"));
                (j * per / c.max(1), ch)
            })
            .collect();
        if jobs.len() > 1 {
            jobs.into_par_iter().map(|(r0, ch)| f(r0, ch)).collect()
        } else {
            jobs.into_iter().map(|(r0, ch)| f(r0, ch)).collect()
        }
    };
    for b in &mut bufs {
        // SAFETY: the chunks cover the first `n` values of the spare capacity, and `f` wrote
        // every value of its chunks.
        unsafe { b.set_len(n) };
    }
    (bufs, results)
}

/// Per-channel sums of `rows × c` values (a bias gradient).
pub(super) fn column_sums(v: &[f32], rows: usize, c: usize) -> Vec<f32> {
    let mut sums = vec![0f64; c];
    let zero = vec![0f32; c];
    channel_sums((rows, c, 1), v, v, &zero, &zero, |x, _, _, _| x, &mut sums);
    sums.iter().map(|&x| x as f32).collect()
}
