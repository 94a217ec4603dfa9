//! Times the convolution products of a cifar-resnet-20 training step (batch 128), burn-flex's
//! against the fused path's kernels, per layer shape: the forward product, the input gradient
//! and the weight gradient, with GFLOP/s.
//!
//! ```sh
//! cargo run --release --example conv_profile            # every shape, best of 5
//! cargo run --release --example conv_profile -- 3       # best of 3
//! cargo run --release --example conv_profile -- 5 --fused-only   # without burn's
//! cargo run --release --example conv_profile -- 5 --fused-only --direct   # no Winograd
//! cargo run --release --example conv_profile -- 5 --fused-only --f2   # Winograd F(2×2, 3×3)
//! cargo run --release --example conv_profile -- 15 --compare   # direct / F(2×2) / F(4×4), interleaved
//! cargo run --release --example conv_profile -- 5 --fused-only --cnn3   # cnn-3's shapes on 28×28 digits
//! ```
//!
//! burn's backward products are timed together (one autodiff backward of `Σ z·r` computes
//! both), the fused kernels one by one. Times are the best of N runs of the process's CPU time
//! (Linux `CLOCK_PROCESS_CPUTIME_ID`, every thread's, so the Winograd products' share on
//! rayon's threads counts; wall time elsewhere): on a shared machine the minimum CPU time is
//! the repeatable number, and it is the work a product costs. burn's columns are wall times
//! always.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use reslab::model::conv::{Geometry, Isa, direct, winograd};
use std::time::Instant;

fn best_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// The process's CPU time in ms, all threads (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`), on
/// Linux.
#[cfg(target_os = "linux")]
fn thread_cpu_ms() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    (rc == 0).then(|| t.sec as f64 * 1e3 + t.nsec as f64 / 1e6)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ms() -> Option<f64> {
    None
}

/// Best of `runs` in process CPU time (wall time where that is unknown).
fn best_cpu_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    if thread_cpu_ms().is_none() {
        return best_ms(runs, f);
    }
    f();
    (0..runs)
        .map(|_| {
            let t = thread_cpu_ms().unwrap_or(0.0);
            f();
            thread_cpu_ms().unwrap_or(0.0) - t
        })
        .fold(f64::INFINITY, f64::min)
}

fn host(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0
                - 0.5
        })
        .collect()
}

/// A named product to time.
type Product<'a> = (&'static str, Box<dyn Fn() -> Vec<f32> + 'a>);

/// `--compare`: the three stride-1 stage shapes, direct against Winograd F(2×2) and F(4×4),
/// forward and weight gradient, the variants interleaved round by round (best of `runs`).
fn compare(runs: usize) {
    for (h, c) in [(32, 16), (16, 32), (8, 64)] {
        let g = Geometry::new(128, h, h, c, c, 3, 1, 1).expect("valid shape");
        let (x, w) = (host(g.input_len(), 1), host(c * c * 9, 2));
        let f2 = winograd::Tile::F2;
        let f4 = winograd::Tile::F4;
        let products: [Product; 6] = [
            ("fwd direct", Box::new(|| direct::forward(&g, &x, &w))),
            ("fwd F2", Box::new(|| winograd::forward(&g, &x, &w, f2))),
            ("fwd F4", Box::new(|| winograd::forward(&g, &x, &w, f4))),
            ("dW direct", Box::new(|| direct::weight_grad(&g, &x, &x))),
            ("dW F2", Box::new(|| winograd::weight_grad(&g, &x, &x, f2))),
            ("dW F4", Box::new(|| winograd::weight_grad(&g, &x, &x, f4))),
        ];
        let mut best = [f64::INFINITY; 6];
        for _ in 0..runs {
            for (b, (_, f)) in best.iter_mut().zip(&products) {
                *b = b.min(best_cpu_ms(1, || {
                    std::hint::black_box(f());
                }));
            }
        }
        let cells: Vec<String> = products
            .iter()
            .zip(best)
            .map(|((name, _), ms)| format!("{name} {ms:.2}"))
            .collect();
        println!("{h}×{h}, {c} channels (ms): {}", cells.join(", "));
    }
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    println!("instruction set: {:?}, best of {runs}", Isa::detect());
    if std::env::args().any(|a| a == "--compare") {
        compare(runs);
        return;
    }
    // (name, count in the network, h, cin, cout, k, stride, pad)
    let resnet = [
        ("stem 3→16 32²", 1, 32, 3, 16, 3, 1, 1),
        ("stage1 16→16 32²", 6, 32, 16, 16, 3, 1, 1),
        ("stage2 16→32 s2", 1, 32, 16, 32, 3, 2, 1),
        ("stage2 32→32 16²", 5, 16, 32, 32, 3, 1, 1),
        ("proj 16→32 1×1 s2", 1, 32, 16, 32, 1, 2, 0),
        ("stage3 32→64 s2", 1, 16, 32, 64, 3, 2, 1),
        ("stage3 64→64 8²", 5, 8, 64, 64, 3, 1, 1),
        ("proj 32→64 1×1 s2", 1, 16, 32, 64, 1, 2, 0),
    ];
    // cnn-3 on the coloured digits (the distribution-shift experiment's net).
    let cnn3 = [
        ("stem 3→16 28²", 1, 28, 3, 16, 3, 1, 1),
        ("conv2 16→32 s2", 1, 28, 16, 32, 3, 2, 1),
        ("conv3 32→64 s2", 1, 14, 32, 64, 3, 2, 1),
    ];
    let shapes: &[_] = if std::env::args().any(|a| a == "--cnn3") {
        &cnn3
    } else {
        &resnet
    };
    println!(
        "{:<20} {:>3} {:>9} {:>9} | {:>8} {:>8} {:>8} {:>8} | {:>6}",
        "layer", "n", "burn fwd", "burn bwd", "fwd", "dx", "dW", "sum", "GF/s"
    );
    let (mut burn_total, mut ours_total, mut flops_total) = (0.0, 0.0, 0.0);
    for &(name, count, h, cin, cout, k, s, p) in shapes {
        let b = 128;
        let g = Geometry::new(b, h, h, cin, cout, k, s, p).expect("valid shape");
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([b, cin, h, h], Distribution::Default, &device).require_grad();
        let w =
            Tensor::<4>::random([cout, cin, k, k], Distribution::Default, &device).require_grad();
        let r = Tensor::<4>::random([b, cout, g.oh, g.ow], Distribution::Default, &device);
        let opts = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let skip_burn = std::env::args().any(|a| a == "--fused-only");
        let fwd = if skip_burn {
            0.0
        } else {
            best_ms(runs, || {
                let _ = conv2d(x.clone(), w.clone(), None, opts.clone()).into_data();
            })
        };
        let both = if skip_burn {
            0.0
        } else {
            best_ms(runs, || {
                let z = conv2d(x.clone(), w.clone(), None, opts.clone());
                let grads = (z * r.clone()).sum().backward();
                let _ = x.grad(&grads).map(|t| t.into_data());
                let _ = w.grad(&grads).map(|t| t.into_data());
            })
        };
        let bwd = (both - fwd).max(0.0);
        let (xv, wv, dz) = (
            host(g.input_len(), 1),
            host(cout * cin * k * k, 2),
            host(g.output_len(), 3),
        );
        // The fused block's choice (`use_winograd` in src/model/conv/block.rs), or direct.
        let force_direct = std::env::args().any(|a| a == "--direct");
        let tile = if std::env::args().any(|a| a == "--f2") {
            winograd::Tile::F2
        } else {
            winograd::Tile::F4
        };
        let wino = g.is_winograd() && cin.min(cout) >= 16 && !force_direct;
        let f = best_cpu_ms(runs, || {
            let _ = if wino {
                winograd::forward(&g, &xv, &wv, tile)
            } else {
                direct::forward(&g, &xv, &wv)
            };
        });
        let wino_dx = wino;
        let dx = best_cpu_ms(runs, || {
            let _ = if wino_dx {
                winograd::input_grad(&g, &dz, &wv, tile)
            } else {
                direct::input_grad(&g, &dz, &wv)
            };
        });
        let dw = best_cpu_ms(runs, || {
            let _ = if wino {
                winograd::weight_grad(&g, &xv, &dz, tile)
            } else {
                direct::weight_grad(&g, &xv, &dz)
            };
        });
        let flops = 2.0 * (g.out_pixels() * cin * cout * k * k) as f64;
        // The stem's input gradient is never needed in training.
        let ours = f + dw + if name.starts_with("stem") { 0.0 } else { dx };
        let step_flops = flops * if name.starts_with("stem") { 2.0 } else { 3.0 };
        println!(
            "{name:<20} {count:>3} {fwd:>9.2} {bwd:>9.2} | {f:>8.2} {dx:>8.2} {dw:>8.2} {ours:>8.2} | {:>6.1}",
            step_flops / ours / 1e6
        );
        burn_total += count as f64 * (fwd + bwd);
        ours_total += count as f64 * ours;
        flops_total += count as f64 * step_flops;
    }
    println!(
        "all convolutions of one step: burn {burn_total:.1} ms, fused kernels {ours_total:.1} ms ({:.1} GFLOP/s of direct-convolution work)",
        flops_total / ours_total / 1e6
    );
}
