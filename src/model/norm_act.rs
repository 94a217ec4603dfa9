//! The `Norm (+ α·branch + shortcut) → ReLU` part that the fused blocks (dense and
//! convolutional) share, on `rows × channels` data (a dense layer's `[batch, out]`, or a
//! convolution's channels-last output `[batch·h·w, out]`).
//!
//! Forward: `f = (z − μ)/sqrt(σ² + ε)·γ + β`, `h = α·f + s`, `y = max(h, 0)`; one pass for the
//! statistics and one for the output. The statistics ([`Stats`]) are BatchNorm's (per channel
//! over every row, the batch's biased variance), GroupNorm's (per sample and group of channels
//! over the sample's rows; LayerNorm is one group), or none (`γ`, `β` already hold the whole
//! affine map: BatchNorm at inference with its running statistics folded in). Backward: the
//! ReLU mask, `α`, and the normalisation's backward in two passes.

use super::fused::{bn_stats, channel_sums, widest};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Which statistics a fused block's epilogue normalises with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stats {
    /// BatchNorm in training: per channel, over every row.
    Batch,
    /// GroupNorm (LayerNorm with one group): per sample and group of `channels / groups`
    /// channels, over the sample's rows (rows are grouped by sample, `rows / samples` each).
    Group {
        /// Groups of channels.
        groups: usize,
    },
    /// None: `γ` and `β` are the whole per-channel affine map (forward only).
    Affine,
}

/// The scalars of a fused block's normalisation epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epilogue {
    /// The statistics.
    pub stats: Stats,
    /// The branch scale α (ignored without a skip).
    pub alpha: f32,
    /// The normalisation's ε.
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

/// What the backward pass keeps besides the tensors: per-channel `γ`, and per set of rows
/// (one for BatchNorm, one per sample for GroupNorm) and channel the mean and
/// `1/sqrt(σ² + ε)` (a group's value repeated for each of its channels).
#[derive(Clone)]
pub(super) struct Saved {
    pub gamma: Vec<f32>,
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
    /// The sets of rows the statistics were taken over.
    pub sets: Sets,
}

/// How the rows fall into sets that share statistics, and the channels into groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Sets {
    /// Rows per set.
    pub rows: usize,
    /// Channels per group (1: per channel).
    pub group: usize,
    /// Whether statistics were taken (false for [`Stats::Affine`]).
    pub normalised: bool,
}

impl Sets {
    fn new(stats: Stats, rows: usize, c: usize, samples: usize) -> Sets {
        match stats {
            Stats::Batch => Sets {
                rows,
                group: 1,
                normalised: true,
            },
            Stats::Group { groups } => {
                assert!(
                    samples > 0
                        && rows.is_multiple_of(samples)
                        && groups > 0
                        && c.is_multiple_of(groups),
                    "group norm epilogue: {rows} rows of {samples} samples, {c} channels in {groups} groups"
                );
                Sets {
                    rows: rows / samples,
                    group: c / groups,
                    normalised: true,
                }
            }
            Stats::Affine => Sets {
                rows,
                group: 1,
                normalised: false,
            },
        }
    }

    /// How many sets `rows` rows make.
    fn count(&self, rows: usize) -> usize {
        rows.checked_div(self.rows).unwrap_or(0).max(1)
    }
}

/// The forward results.
pub(super) struct Forward {
    /// `y` (or `h` without a ReLU), `rows × c`.
    pub output: Vec<f32>,
    /// `h` on probe steps with a ReLU, else empty (without a ReLU `h` is the output).
    pub pre: Vec<f32>,
    /// Mean per set and channel (BatchNorm: the batch mean per channel).
    pub mean: Vec<f32>,
    /// Biased variance per set and channel (BatchNorm: the batch's per channel).
    pub var: Vec<f32>,
    /// `[Σ f², Σ s², α]` on probe steps with a skip, else zeros.
    pub skip_sums: Vec<f32>,
    /// What the backward pass needs.
    pub saved: Saved,
}

/// The inputs of the forward pass besides `z`.
pub(super) struct Params<'a> {
    pub stats: Stats,
    /// Samples in `z` (its rows are grouped by sample).
    pub samples: usize,
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    /// `rows × c` in `z`'s order, or empty for no skip.
    pub shortcut: &'a [f32],
    pub alpha: f32,
    pub epsilon: f64,
    pub relu: bool,
    pub probe: bool,
}

// The row loops here are written for the compiler to vectorise across channels; each entry
// point is defined with `widest!`, so the copy compiled for AVX-512 uses 16 lanes instead of 4.
// The row ranges run on rayon's threads, in closures that do not inherit a caller's target
// features, so each range calls such an entry point itself.

widest! {
    /// The normalisation, the optional skip and ReLU over `z` (`rows × c`).
    pub(super) fn forward(z: &[f32], rows: usize, c: usize, p: &Params<'_>) -> Forward {
        forward_impl(z, rows, c, p)
    }
}

/// [`forward`]'s body, inlined into the copy compiled for the CPU.
#[inline(always)]
fn forward_impl(z: &[f32], rows: usize, c: usize, p: &Params<'_>) -> Forward {
    let n = rows * c;
    let dims = (rows, c, 1);
    let sets = Sets::new(p.stats, rows, c, p.samples);
    let (mean, var, inv_std) = match p.stats {
        Stats::Batch => bn_stats(z, dims, p.epsilon),
        Stats::Group { .. } => group_stats(z, c, sets, p.epsilon),
        Stats::Affine => (vec![0.0; c], vec![1.0; c], vec![1.0; c]),
    };
    let skip = p.shortcut.len() == n;
    let a = if skip { p.alpha } else { 1.0 };
    // Per set: f = z·scale + shift; h = α·f + s = z·(α·scale) + α·shift + s; y = max(h, 0).
    let scale: Vec<f32> = (0..mean.len())
        .map(|i| p.gamma[i % c] * inv_std[i])
        .collect();
    let shift: Vec<f32> = (0..mean.len())
        .map(|i| p.beta[i % c] - mean[i] * scale[i])
        .collect();
    let a_scale: Vec<f32> = scale.iter().map(|&v| v * a).collect();
    let a_shift: Vec<f32> = shift.iter().map(|&v| v * a).collect();
    // The outputs are written once, without zero-filling first (at CIFAR sizes these are
    // megabytes per block), in row ranges on rayon's threads when large ([`build_rows`]).
    // `h` itself is kept only for the probes, or as the output without a ReLU.
    let keep_pre = p.probe && p.relu;
    let zero = vec![0f32; c];
    let s_rows: &[f32] = if skip { p.shortcut } else { &zero };
    let s_step = if skip { c } else { 0 };
    let rows_out = OutRows {
        z,
        s_rows,
        s_step,
        a_scale: &a_scale,
        a_shift: &a_shift,
        set_rows: sets.rows.max(1),
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
        skip_sums(
            z,
            p.shortcut,
            c,
            (&scale, &shift),
            sets.rows.max(1),
            p.alpha,
        )
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
            sets,
        },
    }
}

/// The skip probe's `[Σ f², Σ s², α]`, with `f = z·scale + shift` per set of `set_rows` rows.
fn skip_sums(
    z: &[f32],
    shortcut: &[f32],
    c: usize,
    (scale, shift): (&[f32], &[f32]),
    set_rows: usize,
    alpha: f32,
) -> Vec<f32> {
    let zero = vec![0f32; c];
    let mut f_sq = vec![0f64; c];
    for (k, zs) in z.chunks(set_rows * c).enumerate() {
        let (sc, sh) = (&scale[k * c..(k + 1) * c], &shift[k * c..(k + 1) * c]);
        let dims = (zs.len() / c, c, 1);
        channel_sums(
            dims,
            zs,
            zs,
            sc,
            sh,
            |v, _, p, q| (v * p + q) * (v * p + q),
            &mut f_sq,
        );
    }
    let mut s_sq = vec![0f64; c];
    let dims = (shortcut.len() / c, c, 1);
    channel_sums(
        dims,
        shortcut,
        shortcut,
        &zero,
        &zero,
        |v, _, _, _| v * v,
        &mut s_sq,
    );
    vec![
        f_sq.iter().sum::<f64>() as f32,
        s_sq.iter().sum::<f64>() as f32,
        alpha,
    ]
}

widest! {
    /// [`one_set_stats`], compiled for the CPU.
    fn set_stats(zs: &[f32], c: usize, group: usize, eps: f64) -> [Vec<f32>; 3] {
        one_set_stats(zs, c, group, eps)
    }
}

/// GroupNorm's statistics: per set of `sets.rows` rows (a sample) and group of `sets.group`
/// channels, the mean and biased variance over the set's rows and the group's channels, and
/// `1/sqrt(σ² + ε)`, each repeated for every channel of its group (`sets × c` values). Two
/// passes per set, as [`bn_stats`]; the sets run on rayon's threads.
fn group_stats(z: &[f32], c: usize, sets: Sets, eps: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per_set = |zs: &[f32]| set_stats(zs, c, sets.group, eps);
    let parts: Vec<[Vec<f32>; 3]> = z.par_chunks(sets.rows * c).map(per_set).collect();
    let mut out: [Vec<f32>; 3] =
        std::array::from_fn(|_| Vec::with_capacity(z.len() / sets.rows.max(1)));
    for part in parts {
        for (o, v) in out.iter_mut().zip(part) {
            o.extend(v);
        }
    }
    let [mean, var, inv_std] = out;
    (mean, var, inv_std)
}

/// [`group_stats`] for one set (`zs`, rows × `c`).
#[inline(always)]
fn one_set_stats(zs: &[f32], c: usize, group: usize, eps: f64) -> [Vec<f32>; 3] {
    let dims = (zs.len() / c, c, 1);
    let count = (dims.0 * group) as f64;
    let zero = vec![0f32; c];
    let mut sum = vec![0f64; c];
    channel_sums(dims, zs, zs, &zero, &zero, |v, _, _, _| v, &mut sum);
    let grouped = |per_channel: &[f64]| -> Vec<f32> {
        per_channel
            .chunks(group)
            .flat_map(|g| {
                let v = (g.iter().sum::<f64>() / count) as f32;
                std::iter::repeat_n(v, group)
            })
            .collect()
    };
    let mean = grouped(&sum);
    let mut sq = vec![0f64; c];
    channel_sums(
        dims,
        zs,
        zs,
        &mean,
        &zero,
        |v, _, m, _| (v - m) * (v - m),
        &mut sq,
    );
    let var = grouped(&sq);
    let inv_std = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    [mean, var, inv_std]
}

/// The forward pass's output rows: `h = z·(α·scale) + α·shift + s`, `y = max(h, 0)` (or `h`).
struct OutRows<'a> {
    z: &'a [f32],
    /// The shortcut, `rows × c`, or `c` zeros with `s_step` 0.
    s_rows: &'a [f32],
    s_step: usize,
    /// `α·scale` and `α·shift` per set and channel.
    a_scale: &'a [f32],
    a_shift: &'a [f32],
    /// Rows per set.
    set_rows: usize,
    relu: bool,
    c: usize,
}

widest! {
    /// [`OutRows::write_impl`], compiled for the CPU.
    fn write_rows(
        w: &OutRows<'_>,
        r0: usize,
        out: &mut [MaybeUninit<f32>],
        pre: Option<&mut [MaybeUninit<f32>]>,
    ) {
        w.write_impl(r0, out, pre)
    }
}

impl OutRows<'_> {
    /// Writes the rows from `r0` into `out` (and `h` into `pre`), compiled for the CPU
    /// ([`write_rows`]).
    fn write(&self, r0: usize, out: &mut [MaybeUninit<f32>], pre: Option<&mut [MaybeUninit<f32>]>) {
        write_rows(self, r0, out, pre)
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
            let set = r / self.set_rows * c;
            let (a_scale, a_shift) = (&self.a_scale[set..set + c], &self.a_shift[set..set + c]);
            let hs = zr
                .iter()
                .zip(sr)
                .zip(a_scale.iter().zip(a_shift))
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
/// passes read the data four or five times). GroupNorm's runs both passes per sample, its
/// means over the sample's group with `γ` inside: `dz = inv_std·(γ·α·g − mean(γ·α·g) −
/// x̂·mean(γ·α·g·x̂))`, which is BatchNorm's for groups of one channel.
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
    assert!(
        saved.sets.normalised,
        "the affine epilogue runs forward only"
    );
    if saved.sets.count(rows) > 1 {
        return per_set_backward(dy, output, z, c, saved, alpha, relu);
    }
    let p = Pass {
        c,
        alpha,
        relu,
        mean: &saved.mean,
        inv_std: &saved.inv_std,
    };
    let (g, [sg, sgx]) = mask_and_sums(&p, [dy, output, z]);
    let ks = set_factors(&sg, &sgx, saved, 0);
    let dz = input_grad(&p, &g, z, [&ks[0], &ks[1], &ks[2]]);
    Backward {
        g,
        dz,
        dgamma: sgx.iter().map(|&v| v as f32).collect(),
        dbeta: sg.iter().map(|&v| v as f32).collect(),
    }
}

/// The factors of pass two for set `set` from its per-channel sums `Σ α·g` and `Σ α·g·x̂`:
/// `k = γ·inv_std`, `k_mg = inv_std·mean(γ·α·g)` and `k_mgx = inv_std²·mean(γ·α·g·x̂)`, the
/// means over each channel's group (the set's rows times the group's channels).
fn set_factors(sg: &[f64], sgx: &[f64], saved: &Saved, set: usize) -> [Vec<f32>; 3] {
    let c = sg.len();
    let group = saved.sets.group.max(1);
    let count = saved.sets.rows * group;
    let inv_std = &saved.inv_std[set * c..(set + 1) * c];
    let gamma = &saved.gamma[..c];
    let mean_of = |s: &[f64]| -> Vec<f64> {
        s.chunks(group)
            .zip(gamma.chunks(group))
            .flat_map(|(v, g)| {
                let m = v.iter().zip(g).map(|(&v, &g)| v * g as f64).sum::<f64>() / count as f64;
                std::iter::repeat_n(m, group)
            })
            .collect()
    };
    let (m_g, m_gx) = (mean_of(sg), mean_of(sgx));
    let k = (0..c).map(|j| gamma[j] * inv_std[j]).collect();
    let k_mg = (0..c).map(|j| inv_std[j] * m_g[j] as f32).collect();
    let k_mgx = (0..c)
        .map(|j| inv_std[j] * m_gx[j] as f32 * inv_std[j])
        .collect();
    [k, k_mg, k_mgx]
}

widest! {
    /// [`one_set_backward`], compiled for the CPU.
    fn set_backward(
        p: &Pass<'_>,
        d: [&[f32]; 3],
        bufs: [&mut [MaybeUninit<f32>]; 2],
        set: (&Saved, usize),
    ) -> [Vec<f64>; 2] {
        one_set_backward(p, d, bufs, set)
    }
}

/// [`backward`] with statistics per set of rows (GroupNorm's samples): both passes per set, the
/// sets in ranges on rayon's threads; `∂L/∂γ` and `∂L/∂β` summed over the sets in order.
#[allow(clippy::too_many_arguments)]
fn per_set_backward(
    dy: &[f32],
    output: &[f32],
    z: &[f32],
    c: usize,
    saved: &Saved,
    alpha: f32,
    relu: bool,
) -> Backward {
    let set_rows = saved.sets.rows;
    let width = set_rows * c;
    let sets = z.len() / width.max(1);
    // Without a ReLU the mask reads `dy` itself, which is never compared.
    let out = if relu { output } else { dy };
    let ([g, dz], parts) = build_rows(sets, width, |s0, [g, dz]| {
        let mut sums = Vec::new();
        for (i, (g, dz)) in g.chunks_mut(width).zip(dz.chunks_mut(width)).enumerate() {
            let s = s0 + i;
            let p = Pass {
                c,
                alpha,
                relu,
                mean: &saved.mean[s * c..(s + 1) * c],
                inv_std: &saved.inv_std[s * c..(s + 1) * c],
            };
            let r = s * width..(s + 1) * width;
            let d = [&dy[r.clone()], &out[r.clone()], &z[r]];
            sums.push(set_backward(&p, d, [g, dz], (saved, s)));
        }
        sums
    });
    let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
    for [sg, sgx] in parts.into_iter().flatten() {
        dbeta.iter_mut().zip(&sg).for_each(|(t, v)| *t += v);
        dgamma.iter_mut().zip(&sgx).for_each(|(t, v)| *t += v);
    }
    Backward {
        g,
        dz,
        dgamma: dgamma.iter().map(|&v| v as f32).collect(),
        dbeta: dbeta.iter().map(|&v| v as f32).collect(),
    }
}

/// Both passes of set `set`: `g` and `dz` written, the set's `[Σ α·g, Σ α·g·x̂]` returned.
#[inline(always)]
fn one_set_backward(
    p: &Pass<'_>,
    d: [&[f32]; 3],
    [g, dz]: [&mut [MaybeUninit<f32>]; 2],
    (saved, set): (&Saved, usize),
) -> [Vec<f64>; 2] {
    let [sg, sgx] = mask_and_sums_rows(p, d, g);
    let ks = set_factors(&sg, &sgx, saved, set);
    // SAFETY: `mask_and_sums_rows` wrote every value of `g`.
    let g: &[f32] = unsafe { &*(g as *const [MaybeUninit<f32>] as *const [f32]) };
    input_grad_rows(p, g, d[2], [&ks[0], &ks[1], &ks[2]], dz);
    [sg, sgx]
}

/// What both backward passes read besides the data.
struct Pass<'a> {
    c: usize,
    alpha: f32,
    relu: bool,
    mean: &'a [f32],
    inv_std: &'a [f32],
}

widest! {
    /// [`mask_and_sums_rows`], compiled for the CPU.
    fn mask_rows(p: &Pass<'_>, d: [&[f32]; 3], g: &mut [MaybeUninit<f32>]) -> [Vec<f64>; 2] {
        mask_and_sums_rows(p, d, g)
    }
}

/// Pass one: `g = relu ? dy·[out > 0] : dy`, and per channel `Σ α·g`, `Σ α·g·x̂`; `d` is
/// `[dy, out, z]` (`out` unread without a ReLU). In row ranges on rayon's threads when large
/// ([`build_rows`]), each compiled for AVX-512 where the CPU has it; the ranges' sums are added
/// in range order, and the ranges are fixed, so the result does not depend on the number of
/// threads.
fn mask_and_sums(p: &Pass<'_>, [dy, out, z]: [&[f32]; 3]) -> (Vec<f32>, [Vec<f64>; 2]) {
    let c = p.c.max(1);
    let rows = dy.len() / c;
    // Without a ReLU the mask reads `dy` itself, which is never compared.
    let out = if p.relu { out } else { dy };
    let ([g], parts) = build_rows(rows, c, |r0, [g]| {
        let d = [&dy[r0 * c..], &out[r0 * c..], &z[r0 * c..]];
        mask_rows(p, d, g)
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

widest! {
    /// [`input_grad_rows`], compiled for the CPU.
    fn input_grad_range(
        p: &Pass<'_>,
        g: &[f32],
        z: &[f32],
        k: [&[f32]; 3],
        out: &mut [MaybeUninit<f32>],
    ) {
        input_grad_rows(p, g, z, k, out)
    }
}

/// Pass two: `dz = k·α·g − k_mg − k_mgx·(z − μ)` per channel, in row ranges on rayon's threads
/// when large ([`build_rows`]), each compiled for AVX-512 where the CPU has it.
fn input_grad(p: &Pass<'_>, g: &[f32], z: &[f32], k: [&[f32]; 3]) -> Vec<f32> {
    let c = p.c.max(1);
    let rows = g.len() / c;
    let ([dz], _) = build_rows(rows, c, |r0, [out]| {
        let (g, z) = (&g[r0 * c..], &z[r0 * c..]);
        input_grad_range(p, g, z, k, out)
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
