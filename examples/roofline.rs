//! The ceiling of this CPU for BENCHMARKS.md's roofline: the peak FP32 multiply-add rate of the
//! widest vector unit the lab's kernels use (AVX-512 where the CPU has it, else AVX2), on one
//! thread and on every core, and the memory bandwidth of a stream triad (`a = b + s·c`) over
//! arrays far larger than the last-level cache, on one thread and on every core.
//!
//! ```sh
//! cargo run --release --example roofline          # best of 7
//! cargo run --release --example roofline -- 15    # best of 15
//! ```
//!
//! The peak kernel keeps 12 independent chains of vector FMAs in registers (more than the
//! latency × throughput product of current cores), so it measures the FMA units, not their
//! latency. Every figure is the best of N runs (wall time): the repeatable number on a shared
//! machine.

use std::time::Instant;

/// Multiply-adds per chain and run.
const ITERS: usize = 20_000_000;
/// Floats per triad array: 3 × 96 MiB, far beyond any last-level cache here.
const STREAM: usize = 24 << 20;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (isa, lanes) = widest();
    println!("{threads} threads; vectors: {isa} ({lanes} floats)");
    for t in [1, threads] {
        let secs = best(runs, || parallel(t, |_| peak_run()));
        let flops = (t * 12 * ITERS * lanes * 2) as f64;
        println!(
            "peak FP32 FMA, {t} thread(s): {:.1} GFLOP/s",
            flops / secs / 1e9
        );
    }
    let mut arrays: Vec<[Vec<f32>; 3]> = (0..threads)
        .map(|_| {
            [
                vec![1f32; STREAM / threads],
                vec![2f32; STREAM / threads],
                vec![3f32; STREAM / threads],
            ]
        })
        .collect();
    for t in [1, threads] {
        let per = STREAM / threads;
        let secs = best(runs, || {
            std::thread::scope(|s| {
                for [a, b, c] in arrays.iter_mut().take(t) {
                    s.spawn(move || triad(a, b, c));
                }
            })
        });
        // Two arrays read, one written (and read for ownership first on most CPUs: not counted).
        let bytes = (t * per * 3 * 4) as f64;
        println!(
            "stream triad, {t} thread(s), {} MiB: {:.1} GB/s",
            (t * per * 12) >> 20,
            bytes / secs / 1e9
        );
    }
}

fn best(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn parallel(threads: usize, f: impl Fn(usize) -> f32 + Sync) {
    std::thread::scope(|s| {
        for k in 0..threads {
            let f = &f;
            s.spawn(move || std::hint::black_box(f(k)));
        }
    });
}

fn triad(a: &mut [f32], b: &[f32], c: &[f32]) {
    let s = std::hint::black_box(0.5f32);
    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
    std::hint::black_box(a);
}

/// The instruction set the peak is measured on and its floats per vector.
fn widest() -> (&'static str, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return ("AVX-512", 16);
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return ("AVX2 + FMA", 8);
        }
    }
    ("scalar", 1)
}

/// One thread's run of 12 FMA chains, `ITERS` each.
fn peak_run() -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F detected.
            return unsafe { peak_avx512() };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA detected.
            return unsafe { peak_avx2() };
        }
    }
    let mut acc = [1f32; 12];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn peak_avx512() -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    let mut acc = [_mm512_set1_ps(1.0); 12];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn peak_avx2() -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..ITERS {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut out = [0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}
