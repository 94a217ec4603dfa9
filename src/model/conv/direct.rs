//! Direct convolution products on channels-last data, for any kernel size, stride and padding:
//! the forward product, the input gradient and the weight gradient, each one pass of the
//! register-tile kernels of `tile.rs` over a zero-padded copy of its input (no im2col).
//!
//! Weights are burn's `[cout, cin, k, k]`; activations and gradients `[batch, h, w, c]`.

use super::geometry::{Geometry, pad_nhwc};
use super::tile::{Out, Packed, Rows, gather_new, gather_to, reduce_product};
use std::borrow::Cow;

/// The taps of a `k × k` kernel over a padded image of width `wp` and `c` channels: the offset
/// of tap `(kh, kw)` from the top-left input of an output pixel.
fn taps(k: usize, wp: usize, c: usize) -> Vec<usize> {
    (0..k)
        .flat_map(|kh| (0..k).map(move |kw| (kh * wp + kw) * c))
        .collect()
}

/// `x` as the forward product and the weight gradient read it: zero-padded by `g.pad` on every
/// side (a copy), or `x` itself without padding.
pub fn padded<'a>(g: &Geometry, x: &'a [f32]) -> Cow<'a, [f32]> {
    if g.pad == 0 {
        Cow::Borrowed(x)
    } else {
        Cow::Owned(pad_nhwc(x, g.batch, g.h, g.w, g.cin, g.pad, g.pad))
    }
}

/// `z = conv(x, weight)`: `[batch, oh, ow, cout]`.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_padded(g, &padded(g, x), weight)
}

/// [`forward`] from the input as [`padded`] returns it.
pub fn forward_padded(g: &Geometry, xp: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, s, p) = (g.k, g.stride, g.pad);
    let (hp, wp) = (g.h + 2 * p, g.w + 2 * p);
    let packed = Packed::new(k * k, g.cin, g.cout, |t, c, j| {
        weight[((j * g.cin + c) * k + t / k) * k + t % k]
    });
    let (oh, ow, cin) = (g.oh, g.ow, g.cin);
    let rows = Rows {
        rows: g.out_pixels(),
        src_at: |m: usize| {
            let (b, r) = (m / (oh * ow), m % (oh * ow));
            ((b * hp + (r / ow) * s) * wp + (r % ow) * s) * cin
        },
        dst_at: |m: usize| m * g.cout,
    };
    gather_new(xp, &taps(k, wp, g.cin), &packed, &rows, g.output_len())
}

/// The kernel taps along one axis that feed input positions `≡ phase (mod s)`: `(tap, d)` with
/// the gradient position `i + d` feeding input position `s·i + phase`.
fn along(g: &Geometry, phase: usize) -> Vec<(usize, isize)> {
    let (s, p) = (g.stride as isize, g.pad as isize);
    (0..g.k)
        .filter_map(|kk| {
            let d = phase as isize + p - kk as isize;
            (d.rem_euclid(s) == 0).then_some((kk, d.div_euclid(s)))
        })
        .collect()
}

/// The taps of one output phase of the input gradient: `(kh, kw, dh, dw)` with the gradient
/// pixel `(i + dh, j + dw)` feeding input pixel `(s·i + a, s·j + b)` through kernel tap `(kh, kw)`.
fn phase_taps(g: &Geometry, a: usize, b: usize) -> Vec<(usize, usize, isize, isize)> {
    let (rows, cols) = (along(g, a), along(g, b));
    rows.iter()
        .flat_map(|&(kh, dh)| cols.iter().map(move |&(kw, dw)| (kh, kw, dh, dw)))
        .collect()
}

/// The zero padding `(lo, hi)` of `dz` that keeps every phase's reads inside it.
fn grad_padding(g: &Geometry) -> (usize, usize) {
    let s = g.stride;
    let (mut lo, mut hi) = (0isize, 0isize);
    for phase in 0..s {
        for (_, d) in along(g, phase) {
            lo = lo.max(-d);
            for (size, out) in [(g.h, g.oh), (g.w, g.ow)] {
                if size > phase {
                    let last = ((size - 1 - phase) / s) as isize;
                    hi = hi.max(last + d - (out as isize - 1));
                }
            }
        }
    }
    (lo.max(0) as usize, hi.max(0) as usize)
}

/// `dx`, the gradient of the input `[batch, h, w, cin]` from `dz` `[batch, oh, ow, cout]`.
///
/// Input pixel `(y, x)` receives `dz` at `((y + p − kh)/s, (x + p − kw)/s)` through every tap
/// where that division is exact. Grouped by `(y mod s, x mod s)`, each group (phase) is a
/// stride-1 correlation of the padded `dz` with a sub-kernel: stride 1 is one phase with the
/// whole flipped kernel, stride 2 four phases with 1, 2 or 4 taps each.
pub fn input_grad(g: &Geometry, dz: &[f32], weight: &[f32]) -> Vec<f32> {
    let s = g.stride;
    let (lo, hi) = grad_padding(g);
    let (hp, wp) = (g.oh + lo + hi, g.ow + lo + hi);
    let dzp = pad_nhwc(dz, g.batch, g.oh, g.ow, g.cout, lo, hi);
    // Every input pixel belongs to one phase; when each phase with pixels has taps, the phases
    // together write every value of `dx`, which is then never zero-filled first.
    let len = g.input_len();
    let covered =
        (0..s).all(|a| (0..s).all(|b| (a >= g.h || b >= g.w) || !phase_taps(g, a, b).is_empty()));
    let mut dx: Vec<f32> = if covered {
        Vec::with_capacity(len)
    } else {
        vec![0f32; len]
    };
    let out = Out {
        ptr: dx.as_mut_ptr(),
        len,
    };
    for a in 0..s {
        for b in 0..s {
            let taps_ab = phase_taps(g, a, b);
            let (rows_a, cols_b) = ((g.h + s - 1 - a) / s, (g.w + s - 1 - b) / s);
            if taps_ab.is_empty() || rows_a == 0 || cols_b == 0 {
                continue;
            }
            let offsets: Vec<usize> = taps_ab
                .iter()
                .map(|&(_, _, dh, dw)| {
                    (((dh + lo as isize) as usize) * wp + (dw + lo as isize) as usize) * g.cout
                })
                .collect();
            let (k, cin) = (g.k, g.cin);
            let packed = Packed::new(taps_ab.len(), g.cout, cin, |t, c, j| {
                let (kh, kw, _, _) = taps_ab[t];
                weight[((c * cin + j) * k + kh) * k + kw]
            });
            let per = rows_a * cols_b;
            let rows = Rows {
                rows: g.batch * per,
                src_at: |m: usize| {
                    let (n, r) = (m / per, m % per);
                    ((n * hp + r / cols_b) * wp + r % cols_b) * g.cout
                },
                dst_at: |m: usize| {
                    let (n, r) = (m / per, m % per);
                    let (y, x) = (s * (r / cols_b) + a, s * (r % cols_b) + b);
                    ((n * g.h + y) * g.w + x) * cin
                },
            };
            gather_to(&dzp, &offsets, &packed, &rows, (out, false));
        }
    }
    if covered {
        // SAFETY: the phases wrote every one of the `len` values (each input pixel is in one
        // phase, and every phase with pixels has taps), through raw pointers only.
        unsafe { dx.set_len(len) };
    }
    dx
}

/// The weight gradient `[cout, cin, k, k]` from the input `x` and `dz`.
pub fn weight_grad(g: &Geometry, x: &[f32], dz: &[f32]) -> Vec<f32> {
    weight_grad_padded(g, &padded(g, x), dz)
}

/// [`weight_grad`] from the input as [`padded`] returns it (the fused blocks keep the forward
/// product's copy for it).
pub fn weight_grad_padded(g: &Geometry, xp: &[f32], dz: &[f32]) -> Vec<f32> {
    let (k, s, p) = (g.k, g.stride, g.pad);
    let (hp, wp) = (g.h + 2 * p, g.w + 2 * p);
    let (oh, ow, cin) = (g.oh, g.ow, g.cin);
    let rows = Rows {
        rows: g.out_pixels(),
        src_at: |m: usize| {
            let (b, r) = (m / (oh * ow), m % (oh * ow));
            ((b * hp + (r / ow) * s) * wp + (r % ow) * s) * cin
        },
        dst_at: |m: usize| m * g.cout,
    };
    let mut acc = vec![0f64; k * k * cin * g.cout];
    reduce_product(xp, &taps(k, wp, cin), cin, dz, g.cout, &rows, &mut acc);
    to_burn_layout(&acc, k * k, cin, g.cout)
}

/// `[taps][cin][cout]` sums as burn's `[cout, cin, taps]` weight layout.
pub fn to_burn_layout(acc: &[f64], taps: usize, cin: usize, cout: usize) -> Vec<f32> {
    let mut out = vec![0f32; taps * cin * cout];
    for t in 0..taps {
        for c in 0..cin {
            for j in 0..cout {
                out[(j * cin + c) * taps + t] = acc[(t * cin + c) * cout + j] as f32;
            }
        }
    }
    out
}
