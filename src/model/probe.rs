//! On-device reductions that turn tensors into the small statistics the panels show.

use burn::tensor::{IndexingUpdateOp, Tensor};

/// Number of histogram bins of a layer probe.
pub const HIST_BINS: usize = 32;
/// Values per layer probe: mean, std, min, max, fraction ≤ 0, then the histogram counts.
pub const LAYER_STATS_LEN: usize = 5 + HIST_BINS;

/// Reduces a tensor to `[mean, std, min, max, frac ≤ 0, hist[32]]`, all on its device.
///
/// - `std` is the population standard deviation `sqrt(mean((x - mean)²))`.
/// - The histogram has 32 equal bins over `[min, max]`; bin `k` counts values with
///   `floor((x - min) / (max - min) · 32) = k`, the maximum falling in the last bin. When all
///   values are equal every value is counted in bin 0.
///
/// The input is taken out of the autodiff graph first, so probing never changes gradients.
pub fn layer_stats<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    let n = x.shape().num_elements();
    // Reductions run on the tensor in its own shape: flattening a strided tensor would copy it.
    let x = x.inner();
    let ones = [1usize; D];
    let mean = x.clone().mean();
    let std = (x.clone() - mean.clone().reshape(ones))
        .square()
        .mean()
        .sqrt();
    let min = x.clone().min();
    let max = x.clone().max();
    let frac = x.clone().lower_equal_elem(0.0).float().mean();
    let width = (max.clone() - min.clone()).clamp_min(f32::MIN_POSITIVE);
    let scale = width.recip().mul_scalar(HIST_BINS as f32);
    // (x - min) · scale is ≥ 0, so the integer cast truncates like floor; the maximum lands on
    // 32 and is clamped into the last bin.
    let idx: Tensor<1, burn::tensor::Int> = ((x - min.clone().reshape(ones)) * scale.reshape(ones))
        .clamp_max((HIST_BINS - 1) as f32)
        .int()
        .reshape([n]);
    let device = idx.device();
    let counts = Tensor::<1>::zeros([HIST_BINS], &device).scatter(
        0,
        idx,
        Tensor::<1>::ones([n], &device),
        IndexingUpdateOp::Add,
    );
    Tensor::cat(vec![mean, std, min, max, frac, counts], 0)
}

/// `sum(x²)` of a tensor as a `[1]` tensor, out of the autodiff graph.
pub fn sum_sq<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    x.inner().square().sum()
}

/// The same statistics as [`layer_stats`], computed on the host from a tensor's values, in the
/// same `f32` arithmetic (population std, bins `trunc((x - min) · (32 / width))` clamped to 31,
/// width floored at `f32::MIN_POSITIVE`).
///
/// On the CPU backend the "device" is the host: reading an activation back is a copy, and one
/// fused loop replaces the dozen tensor ops (each a pass over the data plus dispatch overhead)
/// that the on-device form needs. The GPU backend keeps the on-device form.
pub fn host_layer_stats(x: &[f32]) -> [f32; LAYER_STATS_LEN] {
    const L: usize = 8;
    let mut out = [0f32; LAYER_STATS_LEN];
    if x.is_empty() {
        return out;
    }
    // Pass 1, in 8 independent lanes so that it vectorises: sum, min, max, count ≤ 0. Min and
    // max use plain comparisons (a NaN is caught by the sum below). Lane sums stay short (one
    // value in 8, flushed every 512 values) and are combined in f64.
    let (mut sum, mut min, mut max, mut nonpos) = (
        [0f32; L],
        [f32::INFINITY; L],
        [f32::NEG_INFINITY; L],
        [0f32; L],
    );
    let mut np_total = 0usize;
    let chunks = x.chunks_exact(L);
    let rest = chunks.remainder();
    let mut sum64 = 0f64;
    for (k, c) in chunks.enumerate() {
        let c: &[f32; L] = c.try_into().expect("chunks of 8");
        for j in 0..L {
            let v = c[j];
            sum[j] += v;
            min[j] = if v < min[j] { v } else { min[j] };
            max[j] = if v > max[j] { v } else { max[j] };
            nonpos[j] += if v <= 0.0 { 1.0 } else { 0.0 };
        }
        if k % 64 == 63 {
            sum64 += sum.iter().map(|&v| v as f64).sum::<f64>();
            sum = [0.0; L];
            np_total += nonpos.iter().sum::<f32>() as usize;
            nonpos = [0.0; L];
        }
    }
    sum64 +=
        sum.iter().map(|&v| v as f64).sum::<f64>() + rest.iter().map(|&v| v as f64).sum::<f64>();
    let mut lo = min.iter().chain(rest).fold(f32::INFINITY, |a, &b| a.min(b));
    let mut hi = max
        .iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let np =
        np_total + nonpos.iter().sum::<f32>() as usize + rest.iter().filter(|&&v| v <= 0.0).count();
    if sum64.is_nan() && x.iter().any(|v| v.is_nan()) {
        // NaN propagates like the on-device reductions do.
        out[..5].copy_from_slice(&[f32::NAN; 5]);
        return out;
    }
    // Without a NaN, a NaN sum means +∞ and −∞ both occur: mean and std are NaN, while the
    // extremes, the fraction ≤ 0 and the histogram are still defined.
    if lo > hi {
        (lo, hi) = (hi, lo);
    }
    let n = x.len() as f64;
    let mean = (sum64 / n) as f32;
    // Pass 2: the centred sum of squares and the histogram, a block of 256 values at a time.
    // Squares: the same 8 lanes, flushed every 512 values, as pass 1 (the values after the
    // last whole chunk of 8 are added in f64 at the end). Histogram: bin indices for the block
    // first (branch-free, so it vectorises), then counted into four sub-histograms, which breaks
    // the store-to-load chain when neighbouring values share a bin. `(v − lo)·scale` is
    // clamped into [0, 31] (an infinity or a NaN product lands in a valid bin instead of
    // wrapping), and the mask proves the index in range.
    let width = (hi - lo).max(f32::MIN_POSITIVE);
    let scale = (1.0 / width) * HIST_BINS as f32;
    let top = (HIST_BINS - 1) as f32;
    let bin = |v: f32| {
        let t = (v - lo) * scale;
        // A NaN fails `t > 0` and becomes 0, so `t` is finite and in [0, 31]. That NaN is
        // what a constant layer gives (`0 · ∞`, the width being floored): its values all go
        // to the first bin, as in the on-device form.
        let t = if t > 0.0 { t } else { 0.0 };
        let t = if t < top { t } else { top };
        // SAFETY: `t` is finite and in [0, 31] (above), which `i32` represents exactly.
        unsafe { t.to_int_unchecked::<i32>() }
    };
    let mut sq = [0f32; L];
    let mut sq64 = 0f64;
    let mut sub = [[0u32; HIST_BINS]; 4];
    let mut idx = [0i32; 256];
    let mut k = 0usize;
    for block in x.chunks(256) {
        let chunks = block.chunks_exact(L);
        let tail = chunks.remainder();
        for (c, ic) in chunks.zip(idx.chunks_exact_mut(L)) {
            let c: &[f32; L] = c.try_into().expect("chunks of 8");
            for j in 0..L {
                let d = c[j] - mean;
                sq[j] += d * d;
                ic[j] = bin(c[j]);
            }
            if k % 64 == 63 {
                sq64 += sq.iter().map(|&v| v as f64).sum::<f64>();
                sq = [0.0; L];
            }
            k += 1;
        }
        let whole = block.len() - tail.len();
        for (i, &v) in idx[whole..].iter_mut().zip(tail) {
            *i = bin(v);
        }
        let idx = &idx[..block.len()];
        let quads = idx.chunks_exact(4);
        let rest4 = quads.remainder();
        for q in quads {
            sub[0][q[0] as usize & (HIST_BINS - 1)] += 1;
            sub[1][q[1] as usize & (HIST_BINS - 1)] += 1;
            sub[2][q[2] as usize & (HIST_BINS - 1)] += 1;
            sub[3][q[3] as usize & (HIST_BINS - 1)] += 1;
        }
        for &b in rest4 {
            sub[0][b as usize & (HIST_BINS - 1)] += 1;
        }
    }
    sq64 += sq.iter().map(|&v| v as f64).sum::<f64>()
        + rest
            .iter()
            .map(|&v| ((v - mean) as f64).powi(2))
            .sum::<f64>();
    let mut hist = [0u32; HIST_BINS];
    for (b, h) in hist.iter_mut().enumerate() {
        *h = sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
    }
    out[0] = mean;
    out[1] = (sq64 / n).sqrt() as f32;
    out[2] = lo;
    out[3] = hi;
    out[4] = np as f32 / x.len() as f32;
    for (o, h) in out[5..].iter_mut().zip(hist) {
        *o = h as f32;
    }
    out
}
