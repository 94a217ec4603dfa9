//! Layer statistics on burn-flex, read from the tensor's own buffer without a copy.

use super::{flex_from, lane_sum, ln_fast, shape_of, values, widest};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::tensor::Tensor;

/// Layer statistics of the CPU backend, read from the tensor's own buffer without a copy.
#[backend_extension(Flex)]
pub trait FusedProbe: Backend {
    /// [`host_layer_stats`](crate::model::probe::host_layer_stats) of all the values of `x`, as
    /// a `[LAYER_STATS_LEN]` tensor.
    fn fused_layer_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedProbe for Flex {
    fn fused_layer_stats(x: FlexTensor) -> FlexTensor {
        let stats = crate::model::probe::host_layer_stats(&values(&x));
        flex_from(stats.to_vec(), vec![stats.len()])
    }
}

/// The statistics of a layer output on burn-flex ([`FusedProbe`]), read back to the host.
pub fn layer_stats_host(x: Tensor<1>) -> Vec<f32> {
    let stats = <burn::backend::Dispatch as FusedProbe>::fused_layer_stats(x.into_dispatch());
    Tensor::<1>::from_dispatch(stats)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Token probes of the CPU backend, read from the tensor's own buffer.
#[backend_extension(Flex)]
pub trait FusedTokenProbe: Backend {
    /// [`token_residual`](crate::model::probe::token_residual_of) of `x` (`[b, n, d]`), `[1]`.
    fn fused_token_residual(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`attention_summary`](crate::model::probe::attention_summary) of `w` (`[b, h, n, n]`).
    fn fused_attention_summary(w: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedTokenProbe for Flex {
    fn fused_token_residual(x: FlexTensor) -> FlexTensor {
        let shape = shape_of(&x);
        let r = token_residual_fast(&values(&x), shape[1], shape[2]);
        flex_from(vec![r], vec![1])
    }

    fn fused_attention_summary(w: FlexTensor) -> FlexTensor {
        let shape = shape_of(&w);
        let v = attention_summary_host(&values(&w), shape[1], shape[2]);
        let len = v.len();
        flex_from(v, vec![len])
    }
}

/// `‖X − 1·x̄ᵀ‖ / ‖X‖` over a batch of `tokens × dim` samples: each sample's sums in f32
/// (vectorised, two passes: the deviations from the token mean are summed directly, so a
/// collapsed batch's tiny residual keeps its digits), the samples' sums added in f64.
pub fn token_residual_fast(values: &[f32], tokens: usize, dim: usize) -> f32 {
    let (off, all) = residual_sums(values, tokens, dim.max(1));
    if all > 0.0 {
        (off / all).sqrt() as f32
    } else {
        0.0
    }
}

widest! {
    /// `(Σ ‖X − 1·x̄ᵀ‖², Σ ‖X‖²)` over the samples of `values`.
    fn residual_sums(values: &[f32], tokens: usize, dim: usize) -> (f64, f64) {
        let (mut off, mut all) = (0f64, 0f64);
        let mut mean = vec![0f32; dim];
        let inv = 1.0 / tokens as f32;
        for sample in values.chunks_exact(tokens * dim) {
            mean.fill(0.0);
            for row in sample.chunks_exact(dim) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            mean.iter_mut().for_each(|m| *m *= inv);
            let (mut o, mut a) = (0f32, 0f32);
            for row in sample.chunks_exact(dim) {
                o += lane_sum(row, &mean, |v, m| (v - m) * (v - m));
                a += lane_sum(row, row, |v, _| v * v);
            }
            off += o as f64;
            all += a as f64;
        }
        (off, all)
    }
}

/// Each head's weights averaged over the batch (`h × n × n`) then each head's mean row entropy
/// `−Σ a·ln a` in nats (`h`), of weights `[b, h, n, n]`.
pub fn attention_summary_host(w: &[f32], h: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; h * n * n + h];
    summarise_attention(w, h, n, &mut out);
    out
}

widest! {
    /// [`attention_summary_host`] into `out`.
    fn summarise_attention(w: &[f32], h: usize, n: usize, out: &mut [f32]) {
        let per = h * n * n;
        let b = w.len() / per.max(1);
        let (mean, entropy) = out.split_at_mut(per);
        let mut ent = vec![0f32; per];
        for sample in w.chunks_exact(per.max(1)) {
            for ((m, e), &a) in mean.iter_mut().zip(ent.iter_mut()).zip(sample) {
                *m += a;
                *e -= a * ln_fast(a.max(1e-30));
            }
        }
        let inv_b = 1.0 / b.max(1) as f32;
        mean.iter_mut().for_each(|m| *m *= inv_b);
        for (e, head) in entropy.iter_mut().zip(ent.chunks_exact((n * n).max(1))) {
            *e = head.iter().sum::<f32>() * inv_b / n as f32;
        }
    }
}
