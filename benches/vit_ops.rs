//! Cost of a vit-res-12 block's operations on burn-flex, forward and backward, at the bench's
//! shapes (batch 128, 16 tokens of 64, 4 heads, MLP 128): which op a fused kernel should take.
//!
//! Times, for each op alone, `y = op(x)` and the backward of `Σ y·r` (median of 30 after 5
//! warm-up rounds, milliseconds). Run: `cargo bench --bench vit_ops`.

use burn::nn::{GroupNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use reslab::model::attention::SelfAttention;
use reslab::model::{Act, NodeModule, apply_layer};
use reslab::spec::{Activation, LayerOp};
use std::time::Instant;

/// The lab's allocator (`src/main.rs`): with glibc's, every op's buffer is a fresh `mmap`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const B: usize = 128;
const N: usize = 16;
const D: usize = 64;
const ROUNDS: usize = 30;

fn device() -> Device {
    Device::flex().autodiff()
}

fn random(shape: [usize; 3]) -> Tensor<3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

/// Median milliseconds of `op` forward and backward on `[B, N, width]` tokens.
fn time(name: &str, width: usize, op: &dyn Fn(Act) -> Act) {
    if !std::env::args()
        .skip(1)
        .all(|a| a.starts_with('-') || name.contains(&a))
    {
        return;
    }
    let x = random([B, N, width]);
    let mut ms = Vec::new();
    for round in 0..ROUNDS + 5 {
        let x = x.clone().require_grad();
        let start = Instant::now();
        let Act::Tokens(y) = op(Act::Tokens(x.clone())) else {
            unreachable!()
        };
        let r = Tensor::<3>::ones(y.dims(), &device());
        let grads = (y * r).sum().backward();
        let dx = x.grad(&grads).expect("gradient");
        let _ = dx.into_data();
        if round >= 5 {
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    ms.sort_by(f64::total_cmp);
    println!("{name:<28} {:>8.3} ms", ms[ms.len() / 2]);
}

fn main() {
    kernels();
    let dev = device();
    let ln = NodeModule::Norm(GroupNormConfig::new(1, D).init(&dev));
    let ln_op = LayerOp::LayerNorm { epsilon: 1e-5 };
    time("layer norm [.,64]", D, &|x| {
        apply_layer(&ln_op, Some(&ln), x)
    });
    let attn = NodeModule::Attention(SelfAttention {
        qkv: LinearConfig::new(D, 3 * D).init(&dev),
        out: LinearConfig::new(D, D).init(&dev),
        heads: 4,
    });
    let attn_op = LayerOp::SelfAttention { heads: 4 };
    time("self-attention (all)", D, &|x| {
        apply_layer(&attn_op, Some(&attn), x)
    });
    let qkv = NodeModule::Linear(LinearConfig::new(D, 3 * D).init(&dev));
    let lin_op = LayerOp::Linear {
        out: 3 * D,
        bias: true,
    };
    time("linear 64->192", D, &|x| {
        apply_layer(&lin_op, Some(&qkv), x)
    });
    let fc1 = NodeModule::Linear(LinearConfig::new(D, 2 * D).init(&dev));
    let fc1_op = LayerOp::Linear {
        out: 2 * D,
        bias: true,
    };
    time("linear 64->128", D, &|x| {
        apply_layer(&fc1_op, Some(&fc1), x)
    });
    let gelu = LayerOp::Activation {
        function: Activation::Gelu,
    };
    time("gelu [.,128]", 2 * D, &|x| apply_layer(&gelu, None, x));
    time("add (skip)", D, &|x| {
        let Act::Tokens(t) = x else { unreachable!() };
        Act::Tokens(t.clone() + t)
    });
}

/// The fused attention kernels alone on host slices.
fn kernels() {
    use reslab::model::fused::{AttentionDims, attention_backward, attention_forward};
    let dims = AttentionDims {
        n: N,
        h: 4,
        dh: D / 4,
    };
    let qkv: Vec<f32> = (0..B * N * 3 * D)
        .map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0)
        .collect();
    let g: Vec<f32> = (0..B * N * D)
        .map(|i| ((i * 104_729) % 2003) as f32 / 1001.5 - 1.0)
        .collect();
    let mut f = Vec::new();
    let mut bw = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let (_, w) = attention_forward(&qkv, dims);
        f.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let _ = attention_backward(&qkv, &w, &g, dims);
        bw.push(t.elapsed().as_secs_f64() * 1e3);
    }
    f.sort_by(f64::total_cmp);
    bw.sort_by(f64::total_cmp);
    println!(
        "{:<28} {:>8.3} ms",
        "attention kernel forward",
        f[ROUNDS / 2]
    );
    println!(
        "{:<28} {:>8.3} ms",
        "attention kernel backward",
        bw[ROUNDS / 2]
    );
}
