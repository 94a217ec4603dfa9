//! The `BatchNorm (+ α·branch + shortcut) → ReLU` part that the fused blocks (dense and
//! convolutional) share, on `rows × channels` data (a dense layer's `[batch, out]`, or a
//! convolution's channels-last output `[batch·h·w, out]`).
//!
//! Forward: `f = (z − μ)/sqrt(σ² + ε)·γ + β` with the batch's biased variance, `h = α·f + s`,
//! `y = max(h, 0)`; one pass for the statistics and one for the output. Backward: the ReLU
//! mask, `α`, and the BatchNorm backward in two passes.

use super::fused::{bn_backward, bn_stats, channel_sums};

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
    let mut out = vec![0f32; n];
    // `h` itself is kept only for the probes, or as the output without a ReLU.
    let mut pre = if p.probe && p.relu {
        vec![0f32; n]
    } else {
        Vec::new()
    };
    let zero = vec![0f32; c];
    let s_rows: &[f32] = if skip { p.shortcut } else { &zero };
    let s_step = if skip { c } else { 0 };
    for r in 0..rows {
        let zr = &z[r * c..(r + 1) * c];
        let sr = &s_rows[r * s_step..r * s_step + c];
        let or = &mut out[r * c..(r + 1) * c];
        for (k, o) in or.iter_mut().enumerate() {
            *o = zr[k] * a_scale[k] + a_shift[k] + sr[k];
        }
        if !pre.is_empty() {
            pre[r * c..(r + 1) * c].copy_from_slice(or);
        }
        if p.relu {
            // `v <= 0` is false for a NaN, which passes through as burn's ReLU lets it.
            for o in or.iter_mut() {
                *o = if *o <= 0.0 { 0.0 } else { *o };
            }
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
    let dims = (rows, c, 1);
    // g = ∂L/∂h: the ReLU passes the gradient where its output is positive.
    let g: Vec<f32> = if relu {
        dy.iter()
            .zip(output)
            .map(|(&d, &o)| if o > 0.0 { d } else { 0.0 })
            .collect()
    } else {
        dy.to_vec()
    };
    // ∂L/∂f = α·g (α is 1 without a skip).
    let gf: std::borrow::Cow<'_, [f32]> = if alpha == 1.0 {
        std::borrow::Cow::Borrowed(&g)
    } else {
        std::borrow::Cow::Owned(g.iter().map(|&v| v * alpha).collect())
    };
    let mut dz = vec![0f32; z.len()];
    let (dgamma, dbeta) = bn_backward(
        z,
        &gf,
        dims,
        &saved.gamma,
        &saved.mean,
        &saved.inv_std,
        &mut dz,
    );
    drop(gf);
    Backward {
        g,
        dz,
        dgamma,
        dbeta,
    }
}

/// Per-channel sums of `rows × c` values (a bias gradient).
pub(super) fn column_sums(v: &[f32], rows: usize, c: usize) -> Vec<f32> {
    let mut sums = vec![0f64; c];
    let zero = vec![0f32; c];
    channel_sums((rows, c, 1), v, v, &zero, &zero, |x, _, _, _| x, &mut sums);
    sums.iter().map(|&x| x as f32).collect()
}
