//! The `BatchNorm (+ α·branch + shortcut) → ReLU` part that the fused blocks (dense and
//! convolutional) share, on `rows × channels` data (a dense layer's `[batch, out]`, or a
//! convolution's channels-last output `[batch·h·w, out]`).
//!
//! Forward: `f = (z − μ)/sqrt(σ² + ε)·γ + β` with the batch's biased variance, `h = α·f + s`,
//! `y = max(h, 0)`; one pass for the statistics and one for the output. Backward: the ReLU
//! mask, `α`, and the BatchNorm backward in two passes.

use super::fused::{bn_stats, channel_sums};

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
    // The outputs are built row by row with `extend` (no zero-filling first: at CIFAR sizes
    // these are megabytes per block).
    let mut out = Vec::with_capacity(n);
    // `h` itself is kept only for the probes, or as the output without a ReLU.
    let keep_pre = p.probe && p.relu;
    let mut pre = Vec::with_capacity(if keep_pre { n } else { 0 });
    let zero = vec![0f32; c];
    let s_rows: &[f32] = if skip { p.shortcut } else { &zero };
    let s_step = if skip { c } else { 0 };
    let (a_scale, a_shift) = (&a_scale[..c], &a_shift[..c]);
    for r in 0..rows {
        let zr = &z[r * c..(r + 1) * c];
        let sr = &s_rows[r * s_step..r * s_step + c];
        let hs = zr
            .iter()
            .zip(sr)
            .zip(a_scale.iter().zip(a_shift))
            .map(|((&zv, &sv), (&sc, &sh))| zv * sc + sh + sv);
        // `h <= 0` is false for a NaN, which passes through as burn's ReLU lets it.
        let relu = |h: f32| if h <= 0.0 { 0.0 } else { h };
        if keep_pre {
            let start = pre.len();
            pre.extend(hs);
            out.extend(pre[start..].iter().map(|&h| relu(h)));
        } else if p.relu {
            out.extend(hs.map(relu));
        } else {
            out.extend(hs);
        }
    }
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
    let mut g = Vec::with_capacity(n);
    let (mut sg, mut sgx) = (vec![0f64; c], vec![0f64; c]);
    let p = Pass {
        c,
        alpha,
        relu,
        mean: &saved.mean,
        inv_std: &saved.inv_std,
    };
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn sums_avx512(p: &Pass<'_>, d: [&[f32]; 3], g: &mut Vec<f32>, sums: [&mut [f64]; 2]) {
        mask_and_sums(p, d, g, sums)
    }
    #[cfg(target_arch = "x86_64")]
    if avx512_here() {
        // SAFETY: the CPU has AVX-512F (detected).
        unsafe { sums_avx512(&p, [dy, output, z], &mut g, [&mut sg, &mut sgx]) };
    } else {
        mask_and_sums(&p, [dy, output, z], &mut g, [&mut sg, &mut sgx]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    mask_and_sums(&p, [dy, output, z], &mut g, [&mut sg, &mut sgx]);
    // dz = k·α·g − k·mean(α·g) − (k·mean(α·g·x̂)·inv_std)·(z − μ), with k = γ·inv_std.
    let count = rows as f64;
    let k: Vec<f32> = (0..c).map(|j| saved.gamma[j] * saved.inv_std[j]).collect();
    let k_mg: Vec<f32> = (0..c).map(|j| k[j] * (sg[j] / count) as f32).collect();
    let k_mgx: Vec<f32> = (0..c)
        .map(|j| k[j] * (sgx[j] / count) as f32 * saved.inv_std[j])
        .collect();
    let mut dz = Vec::with_capacity(n);
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn dz_avx512(p: &Pass<'_>, g: &[f32], z: &[f32], k: [&[f32]; 3], dz: &mut Vec<f32>) {
        input_grad(p, g, z, k, dz)
    }
    #[cfg(target_arch = "x86_64")]
    if avx512_here() {
        // SAFETY: the CPU has AVX-512F (detected).
        unsafe { dz_avx512(&p, &g, z, [&k, &k_mg, &k_mgx], &mut dz) };
    } else {
        input_grad(&p, &g, z, [&k, &k_mg, &k_mgx], &mut dz);
    }
    #[cfg(not(target_arch = "x86_64"))]
    input_grad(&p, &g, z, [&k, &k_mg, &k_mgx], &mut dz);
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

/// Pass one: `g = relu ? dy·[out > 0] : dy`, and per channel `Σ α·g`, `Σ α·g·x̂` (in f32 lanes
/// over 16 rows at a time, then f64). `d` is `[dy, out, z]`, `sums` `[Σ α·g, Σ α·g·x̂]`.
#[inline(always)]
fn mask_and_sums(p: &Pass<'_>, [dy, out, z]: [&[f32]; 3], g: &mut Vec<f32>, sums: [&mut [f64]; 2]) {
    let c = p.c;
    let (mean, inv_std) = (&p.mean[..c], &p.inv_std[..c]);
    let [sg, sgx] = sums;
    let (mut acc_g, mut acc_x) = (vec![0f32; c], vec![0f32; c]);
    // Without a ReLU the mask reads `dy` itself, which is never compared.
    let out_rows = if p.relu { out } else { dy };
    let (relu, alpha) = (p.relu, p.alpha);
    for (r, ((dr, orow), zr)) in dy
        .chunks_exact(c)
        .zip(out_rows.chunks_exact(c))
        .zip(z.chunks_exact(c))
        .enumerate()
    {
        // `out > 0` is false for a NaN output, as burn's ReLU backward has it.
        let start = g.len();
        g.extend(
            dr.iter()
                .zip(orow)
                .map(|(&d, &o)| if !relu || o > 0.0 { d } else { 0.0 }),
        );
        let lanes = acc_g.iter_mut().zip(acc_x.iter_mut());
        let stats = mean.iter().zip(inv_std);
        for (((&v, &zv), (ag, ax)), (&m, &is)) in g[start..].iter().zip(zr).zip(lanes).zip(stats) {
            let ga = v * alpha;
            *ag += ga;
            *ax += ga * ((zv - m) * is);
        }
        if r % 16 == 15 {
            flush(&mut acc_g, sg);
            flush(&mut acc_x, sgx);
        }
    }
    flush(&mut acc_g, sg);
    flush(&mut acc_x, sgx);
}

/// Adds f32 lanes into f64 totals and clears them.
#[inline(always)]
fn flush(lanes: &mut [f32], total: &mut [f64]) {
    for (t, l) in total.iter_mut().zip(lanes.iter_mut()) {
        *t += *l as f64;
        *l = 0.0;
    }
}

/// Pass two: `dz = k·α·g − k_mg − k_mgx·(z − μ)` per channel.
#[inline(always)]
fn input_grad(
    p: &Pass<'_>,
    g: &[f32],
    z: &[f32],
    [k, k_mg, k_mgx]: [&[f32]; 3],
    dz: &mut Vec<f32>,
) {
    let c = p.c;
    let (mean, k, k_mg, k_mgx) = (&p.mean[..c], &k[..c], &k_mg[..c], &k_mgx[..c]);
    let alpha = p.alpha;
    for (gr, zr) in g.chunks_exact(c).zip(z.chunks_exact(c)) {
        dz.extend(
            gr.iter()
                .zip(zr)
                .zip(mean.iter().zip(k))
                .zip(k_mg.iter().zip(k_mgx))
                .map(|(((&gv, &zv), (&m, &kk)), (&a, &b))| kk * (gv * alpha) - a - b * (zv - m)),
        );
    }
}

/// Per-channel sums of `rows × c` values (a bias gradient).
pub(super) fn column_sums(v: &[f32], rows: usize, c: usize) -> Vec<f32> {
    let mut sums = vec![0f64; c];
    let zero = vec![0f32; c];
    channel_sums((rows, c, 1), v, v, &zero, &zero, |x, _, _, _| x, &mut sums);
    sums.iter().map(|&x| x as f32).collect()
}
