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
///
/// Two passes over the values: sum, extremes and the count ≤ 0, then the centred squares and
/// the histogram. Probes read every layer output of a probe step (about 70 M values a step for
/// a CIFAR ResNet-20 at batch 128), so this loop is written to vectorise: 16 independent lanes,
/// and a copy compiled for AVX-512 where the CPU has it (2 M values: 0.51–0.77 ns a value,
/// against 1.10–1.13 for the earlier 8-lane loop in the baseline SSE2 copy, three interleaved
/// runs of `examples/stats_bench.rs` on this project's machine).
pub fn host_layer_stats(x: &[f32]) -> [f32; LAYER_STATS_LEN] {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512(x: &[f32]) -> [f32; LAYER_STATS_LEN] {
        stats_impl(x)
    }
    #[cfg(target_arch = "x86_64")]
    if super::conv::Isa::detect() == super::conv::Isa::Avx512 {
        // SAFETY: the CPU has AVX-512F (detected).
        return unsafe { avx512(x) };
    }
    stats_impl(x)
}

/// Lanes of the vectorised loops.
const L: usize = 16;
/// Values per block: lane sums stay short (64 values a lane) and are flushed to `f64` per block.
const BLOCK: usize = 64 * L;

/// [`host_layer_stats`]'s body, inlined into the copy compiled for the CPU.
#[inline(always)]
fn stats_impl(x: &[f32]) -> [f32; LAYER_STATS_LEN] {
    let mut out = [0f32; LAYER_STATS_LEN];
    if x.is_empty() {
        return out;
    }
    let mut first = Pass1::default();
    for block in x.chunks(BLOCK) {
        first.block(block);
    }
    let (mut lo, mut hi) = first.extremes();
    if first.sum.is_nan() && x.iter().any(|v| v.is_nan()) {
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
    let mean = (first.sum / n) as f32;
    let mut second = Pass2::new(mean, lo, hi);
    for block in x.chunks(BLOCK) {
        second.block(block);
    }
    out[0] = mean;
    out[1] = (second.sq / n).sqrt() as f32;
    out[2] = lo;
    out[3] = hi;
    out[4] = first.nonpos as f32 / x.len() as f32;
    for (o, h) in out[5..].iter_mut().zip(second.histogram()) {
        *o = h as f32;
    }
    out
}

/// The first pass: the sum (in `f64`), per-lane extremes and the count of values ≤ 0.
struct Pass1 {
    sum: f64,
    min: [f32; L],
    max: [f32; L],
    nonpos: usize,
}

impl Default for Pass1 {
    fn default() -> Self {
        Pass1 {
            sum: 0.0,
            min: [f32::INFINITY; L],
            max: [f32::NEG_INFINITY; L],
            nonpos: 0,
        }
    }
}

impl Pass1 {
    /// Adds a block of at most [`BLOCK`] values. Min and max use plain comparisons (a NaN is
    /// caught by the sum); the values after the last whole group of 16 go in one at a time.
    #[inline(always)]
    fn block(&mut self, block: &[f32]) {
        let (mut sum, mut nonpos) = ([0f32; L], [0f32; L]);
        let mut add = |j: usize, v: f32| {
            sum[j] += v;
            self.min[j] = if v < self.min[j] { v } else { self.min[j] };
            self.max[j] = if v > self.max[j] { v } else { self.max[j] };
            nonpos[j] += if v <= 0.0 { 1.0 } else { 0.0 };
        };
        let chunks = block.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            let c: &[f32; L] = c.try_into().expect("chunks of 16");
            for (j, &v) in c.iter().enumerate() {
                add(j, v);
            }
        }
        for (j, &v) in rest.iter().enumerate() {
            add(j, v);
        }
        self.sum += sum.iter().map(|&v| v as f64).sum::<f64>();
        self.nonpos += nonpos.iter().sum::<f32>() as usize;
    }

    /// The extremes over all lanes.
    fn extremes(&self) -> (f32, f32) {
        let lo = self.min.iter().fold(f32::INFINITY, |a, &b| a.min(b));
        let hi = self.max.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        (lo, hi)
    }
}

/// The second pass: the centred sum of squares (in `f64`) and the histogram.
struct Pass2 {
    mean: f32,
    lo: f32,
    scale: f32,
    sq: f64,
    /// Four sub-histograms, counted in turn, which breaks the store-to-load chain when
    /// neighbouring values share a bin.
    sub: [[u32; HIST_BINS]; 4],
}

impl Pass2 {
    fn new(mean: f32, lo: f32, hi: f32) -> Pass2 {
        let width = (hi - lo).max(f32::MIN_POSITIVE);
        Pass2 {
            mean,
            lo,
            scale: (1.0 / width) * HIST_BINS as f32,
            sq: 0.0,
            sub: [[0; HIST_BINS]; 4],
        }
    }

    /// The bin of `v`: `(v − lo)·scale` clamped into [0, 31] (an infinity or a NaN product
    /// lands in a valid bin instead of wrapping), branch-free so that it vectorises.
    #[inline(always)]
    fn bin(&self, v: f32) -> u32 {
        let top = (HIST_BINS - 1) as f32;
        let t = (v - self.lo) * self.scale;
        // A NaN fails `t > 0` and becomes 0, so `t` is finite and in [0, 31]. That NaN is
        // what a constant layer gives (`0 · ∞`, the width being floored): its values all go
        // to the first bin, as in the on-device form.
        let t = if t > 0.0 { t } else { 0.0 };
        let t = if t < top { t } else { top };
        // SAFETY: `t` is finite and in [0, 31] (above), which `i32` represents exactly.
        unsafe { t.to_int_unchecked::<i32>() as u32 }
    }

    /// Adds a block of at most [`BLOCK`] values: squares and bin indices first (16 lanes),
    /// then the counts; the mask proves each index in range.
    #[inline(always)]
    fn block(&mut self, block: &[f32]) {
        let mut sq = [0f32; L];
        let mut idx = [0u32; BLOCK];
        let chunks = block.chunks_exact(L);
        let rest = chunks.remainder();
        let whole = block.len() - rest.len();
        for (c, ic) in chunks.zip(idx.chunks_exact_mut(L)) {
            let c: &[f32; L] = c.try_into().expect("chunks of 16");
            for j in 0..L {
                let d = c[j] - self.mean;
                sq[j] += d * d;
                ic[j] = self.bin(c[j]);
            }
        }
        for (i, &v) in idx[whole..].iter_mut().zip(rest) {
            *i = self.bin(v);
        }
        self.sq += sq.iter().map(|&v| v as f64).sum::<f64>()
            + rest
                .iter()
                .map(|&v| ((v - self.mean) as f64).powi(2))
                .sum::<f64>();
        let idx = &idx[..block.len()];
        let quads = idx.chunks_exact(4);
        let rest4 = quads.remainder();
        for q in quads {
            self.sub[0][q[0] as usize & (HIST_BINS - 1)] += 1;
            self.sub[1][q[1] as usize & (HIST_BINS - 1)] += 1;
            self.sub[2][q[2] as usize & (HIST_BINS - 1)] += 1;
            self.sub[3][q[3] as usize & (HIST_BINS - 1)] += 1;
        }
        for &b in rest4 {
            self.sub[0][b as usize & (HIST_BINS - 1)] += 1;
        }
    }

    fn histogram(&self) -> [u32; HIST_BINS] {
        let mut hist = [0u32; HIST_BINS];
        for (b, h) in hist.iter_mut().enumerate() {
            *h = self.sub.iter().map(|s| s[b]).sum();
        }
        hist
    }
}

/// How far a batch of token matrices is from rank one, as Dong, Cordonnier & Loukas 2021
/// measure it: `‖X − 1·x̄ᵀ‖ / ‖X‖` (Frobenius norms over the whole batch), where each sample's
/// `x̄` is the mean of its tokens (the best fit of the form `1·xᵀ`). `values` holds samples of
/// `tokens × dim` values, row-major; 0 for an all-zero batch. Sums in f64.
pub fn token_residual(values: &[f32], tokens: usize, dim: usize) -> f64 {
    let per = (tokens * dim).max(1);
    let (mut off, mut all) = (0f64, 0f64);
    for sample in values.chunks_exact(per) {
        let mut mean = vec![0f64; dim];
        for row in sample.chunks_exact(dim.max(1)) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / tokens as f64;
            }
        }
        for row in sample.chunks_exact(dim.max(1)) {
            for (m, &v) in mean.iter().zip(row) {
                off += (v as f64 - m) * (v as f64 - m);
                all += v as f64 * v as f64;
            }
        }
    }
    if all > 0.0 { (off / all).sqrt() } else { 0.0 }
}

/// [`token_residual`] on the device: `[‖X − 1·x̄ᵀ‖ / ‖X‖]` of a `[batch, tokens, dim]` tensor,
/// out of the autodiff graph (on burn-flex from the buffer, `fused::token_residual_fast`).
pub fn token_residual_of(x: Tensor<3>) -> Tensor<1> {
    let x = x.inner();
    if super::fused::is_flex(&x.device()) {
        return Tensor::from_dispatch(
            <burn::backend::Dispatch as super::fused::FusedTokenProbe>::fused_token_residual(
                x.into_dispatch(),
            ),
        );
    }
    let off = (x.clone() - x.clone().mean_dim(1)).square().sum();
    (off / x.square().sum()).sqrt()
}

/// A self-attention layer's probe: each head's attention `[batch, heads, n, n]` averaged over
/// the batch (`heads × n × n` values), then each head's mean row entropy in nats (`heads`
/// values), out of the autodiff graph.
pub fn attention_summary(weights: Tensor<4>) -> Tensor<1> {
    let w = weights.inner();
    if super::fused::is_flex(&w.device()) {
        return Tensor::from_dispatch(
            <burn::backend::Dispatch as super::fused::FusedTokenProbe>::fused_attention_summary(
                w.into_dispatch(),
            ),
        );
    }
    let [b, h, n, _] = w.dims();
    let mean = w.clone().mean_dim(0).reshape([h * n * n]);
    // −Σ a·ln a per row; a row's zeros add nothing (a·ln a → 0).
    let entropy = (w.clone() * w.clamp_min(1e-30).log())
        .sum_dim(3)
        .neg()
        .reshape([b, h, n])
        .mean_dim(2)
        .mean_dim(0)
        .reshape([h]);
    Tensor::cat(vec![mean, entropy], 0)
}
