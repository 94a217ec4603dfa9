//! The fused CPU kernels of the transformer layers (`model::fused`: the attention core, LayerNorm
//! and GroupNorm of rows, the token and attention probes) against burn's own operations on the
//! same inputs, forward and backward, on sizes that leave remainders everywhere and split into
//! several parallel tasks; and the same results, bit for bit, on one thread and on three.

mod common;

use burn::nn::{GroupNormConfig, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use common::kernels::{assert_close, floats, values};
use reslab::model::attention::SelfAttention;
use reslab::model::fused::{
    AttentionDims, attention_backward, attention_forward, attention_summary_host, row_norm,
    token_residual_fast,
};
use reslab::model::probe::token_residual;

fn device() -> Device {
    Device::flex().autodiff()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &device())
}

/// Values in [−3, 3): attention scores with a spread, so the softmax is not flat.
fn wide(n: usize, seed: usize) -> Vec<f32> {
    values(n, seed).into_iter().map(|v| 3.0 * v).collect()
}

fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Self-attention with 3 heads of 5 features on 7 tokens, batch 19 (several tasks of 3
/// samples): the fused core against burn's operations — the output, the weights, the input's
/// gradient and the `qkv` weights' gradient.
#[test]
fn the_fused_attention_matches_burns_operations_forward_and_backward() {
    let (b, n, h, dh) = (19, 7, 3, 5);
    let d = h * dh;
    let mut attn = SelfAttention {
        qkv: LinearConfig::new(d, 3 * d).init(&device()),
        out: LinearConfig::new(d, d).init(&device()),
        heads: h,
    };
    attn.qkv.weight = burn::module::Param::from_tensor(tensor(&values(d * 3 * d, 3), [d, 3 * d]));
    let xv = wide(b * n * d, 1);
    let r = tensor(&values(b * n * d, 2), [b, n, d]);
    let run = |fused: bool| {
        let x = tensor(&xv, [b, n, d]).require_grad();
        let (y, w) = if fused {
            attn.forward_weights(x.clone())
        } else {
            attn.forward_weights_ops(x.clone())
        };
        let grads = (y.clone() * r.clone()).sum().backward();
        let dx = floats(x.grad(&grads).unwrap());
        let dw = floats(attn.qkv.weight.grad(&grads).unwrap());
        (floats(y), floats(w), dx, dw)
    };
    let (fused, ops) = (run(true), run(false));
    assert_close(&fused.0, &ops.0, 1e-5, "output");
    assert_close(&fused.1, &ops.1, 1e-5, "weights");
    assert_close(&fused.2, &ops.2, 1e-5, "input gradient");
    assert_close(&fused.3, &ops.3, 1e-5, "qkv weight gradient");
    // Every row of weights sums to 1.
    for row in fused.1.chunks(n) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn the_attention_kernels_do_not_depend_on_the_number_of_threads() {
    let dims = AttentionDims { n: 7, h: 3, dh: 5 };
    let b = 37;
    let qkv = wide(b * 7 * 45, 4);
    let g = values(b * 7 * 15, 5);
    let run = || {
        let (out, w) = attention_forward(&qkv, dims);
        let dqkv = attention_backward(&qkv, &w, &g, dims);
        (out, w, dqkv)
    };
    assert_eq!(on_threads(1, run), on_threads(3, run));
}

/// LayerNorm (one set per row) and GroupNorm (3 sets of 4) of 150 rows of 12 (three tasks of
/// at most 64 rows, the last short), flat and as tokens: the fused kernel against burn's
/// `GroupNorm` — the output and the gradients of the input, γ and β — and the same bits on one
/// thread and three.
#[test]
fn the_fused_row_norm_matches_burns_group_norm_forward_and_backward() {
    let (rows, c) = (150, 12);
    let xv: Vec<f32> = wide(rows * c, 6).iter().map(|v| v + 0.5).collect();
    let r = tensor(&values(rows * c, 7), [rows, c]);
    for groups in [1, 3] {
        let mut norm = GroupNormConfig::new(groups, c).init(&device());
        let gamma: Vec<f32> = (0..c).map(|k| 0.5 + 0.1 * k as f32).collect();
        norm.gamma = Some(burn::module::Param::from_tensor(tensor(&gamma, [c])));
        let run = |fused: bool| {
            let x = tensor(&xv, [rows, c]).require_grad();
            let y = if fused {
                row_norm(&norm, x.clone())
            } else {
                norm.forward(x.clone())
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let grad = |p: &Option<burn::module::Param<Tensor<1>>>| {
                floats(p.as_ref().unwrap().grad(&grads).unwrap())
            };
            let dx = floats(x.grad(&grads).unwrap());
            (floats(y), dx, grad(&norm.gamma), grad(&norm.beta))
        };
        let (fused, ops) = (run(true), run(false));
        assert_close(&fused.0, &ops.0, 1e-5, "output");
        assert_close(&fused.1, &ops.1, 1e-4, "input gradient");
        assert_close(&fused.2, &ops.2, 1e-5, "γ gradient");
        assert_close(&fused.3, &ops.3, 1e-5, "β gradient");
        assert_eq!(on_threads(1, || run(true)), on_threads(3, || run(true)));
    }
}

/// The probes' token residual in f32 sums against the f64 one, on a spread batch and on a
/// nearly collapsed one (every token the same up to 1e-4), where a sum of squares less the
/// squared mean would lose every digit.
#[test]
fn the_fast_token_residual_keeps_its_digits_near_collapse() {
    let (b, n, d) = (9, 16, 24);
    let spread = wide(b * n * d, 8);
    let base = wide(b * d, 9);
    let noise = values(b * n * d, 10);
    let collapsed: Vec<f32> = (0..b * n * d)
        .map(|i| base[(i / (n * d)) * d + i % d] + 1e-4 * noise[i])
        .collect();
    for (what, x) in [("spread", spread), ("collapsed", collapsed)] {
        let exact = token_residual(&x, n, d);
        let fast = token_residual_fast(&x, n, d) as f64;
        assert!(
            (fast - exact).abs() <= 1e-4 * exact,
            "{what}: {fast} vs {exact}"
        );
    }
    assert!(
        token_residual(&[0.0; 48], 4, 12) == 0.0 && token_residual_fast(&[0.0; 48], 4, 12) == 0.0
    );
}

/// The attention probe (the batch-mean map and each head's mean row entropy) against a hand
/// computation in f64, with zeros in the weights (whose a·ln a is 0).
#[test]
fn the_attention_summary_matches_a_hand_computation() {
    let (b, h, n) = (5, 3, 6);
    let mut w = Vec::new();
    for k in 0..b * h * n {
        let raw: Vec<f64> = (0..n)
            .map(|j| {
                if (j + k) % 4 == 0 {
                    0.0
                } else {
                    ((j * 7 + k * 3) % 11) as f64 + 1.0
                }
            })
            .collect();
        let s: f64 = raw.iter().sum();
        w.extend(raw.iter().map(|v| (v / s) as f32));
    }
    let got = attention_summary_host(&w, h, n);
    let mut mean = vec![0f64; h * n * n];
    let mut entropy = vec![0f64; h];
    for (k, sample) in w.chunks(h * n * n).enumerate() {
        let _ = k;
        for (i, &a) in sample.iter().enumerate() {
            mean[i] += a as f64 / b as f64;
            if a > 0.0 {
                entropy[i / (n * n)] -= (a as f64) * (a as f64).ln() / (b * n) as f64;
            }
        }
    }
    let want: Vec<f32> = mean.iter().chain(&entropy).map(|&v| v as f32).collect();
    assert_close(&got, &want, 1e-6, "attention summary");
}
