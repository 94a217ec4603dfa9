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
    let mut out = [0f32; LAYER_STATS_LEN];
    if x.is_empty() {
        return out;
    }
    let n = x.len() as f64;
    let (mut sum, mut min, mut max, mut nonpos) = (0f64, f32::INFINITY, f32::NEG_INFINITY, 0usize);
    for &v in x {
        sum += v as f64;
        min = min.min(v);
        max = max.max(v);
        nonpos += usize::from(v <= 0.0);
    }
    if x.iter().any(|v| v.is_nan()) {
        // NaN propagates like the on-device reductions do.
        out[..5].copy_from_slice(&[f32::NAN; 5]);
        return out;
    }
    let mean = (sum / n) as f32;
    let var = x
        .iter()
        .map(|&v| {
            let d = (v - mean) as f64;
            d * d
        })
        .sum::<f64>()
        / n;
    let width = (max - min).max(f32::MIN_POSITIVE);
    let scale = (1.0 / width) * HIST_BINS as f32;
    let hist = &mut out[5..];
    for &v in x {
        let b = (((v - min) * scale).min((HIST_BINS - 1) as f32)) as usize;
        hist[b] += 1.0;
    }
    out[0] = mean;
    out[1] = var.sqrt() as f32;
    out[2] = min;
    out[3] = max;
    out[4] = nonpos as f32 / x.len() as f32;
    out
}
