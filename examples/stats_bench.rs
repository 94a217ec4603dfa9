//! Times `host_layer_stats`, the reduction behind every layer probe on the CPU backend, on
//! pseudo-random values (mixed signs, and the same after a ReLU), best of 15.
//!
//! `cargo run --release --example stats_bench -- [values]` (default 2 M, a CIFAR ResNet's
//! largest layer output at batch 128).

use reslab::model::probe::host_layer_stats;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 20);
    let mut state = 12345u64;
    let mixed: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 1.5
        })
        .collect();
    let relu: Vec<f32> = mixed.iter().map(|v| v.max(0.0)).collect();
    for (name, values) in [("mixed", &mixed), ("relu", &relu)] {
        let mut best = f64::MAX;
        for _ in 0..15 {
            let t = Instant::now();
            std::hint::black_box(host_layer_stats(std::hint::black_box(values)));
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name}: {n} values, best {:.3} ms, {:.3} ns a value",
            best * 1e3,
            best * 1e9 / n as f64
        );
    }
}
