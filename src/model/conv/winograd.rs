//! Winograd F(2×2, 3×3) products for 3×3 convolutions with stride 1 and padding 1 on
//! channels-last data: the forward product, the input gradient and the weight gradient.
//!
//! Each 2×2 block of outputs (a tile) comes from a 4×4 input patch `d`:
//! `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, so the channel mixing is 16 independent products
//! `M[pos] = V[pos]·U[pos]` (tiles × cin by cin × cout) with 16 multiplications per tile
//! instead of 36: 2.25 times fewer than the direct product. Following Lavin & Gray (2016):
//!
//! - the input gradient is the forward product of `dz` with the flipped, transposed kernel;
//! - the weight gradient is `G ᵀ[Σ_tiles (Bᵀ d B) ⊙ (A dY Aᵀ)]G`, the same 16 products reduced
//!   over tiles instead of channels.
//!
//! Tiles are processed in blocks whose transformed inputs and products stay in L2, through the
//! register-tile kernels of [`super::tile`]. The transforms themselves run on 16 channels at a
//! time (`[f32; 16]` lanes) in functions compiled per instruction set. Patches reaching past the
//! image read zeros, so odd sizes work and nothing is padded in memory. The transforms' constants
//! are 0, ±1 and ±½, so the results differ from the direct product by rounding only (checked
//! against burn's convolution in `tests/conv.rs`).

use super::geometry::Geometry;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Isa, Portable, Scalar, Simd};
use super::tile::{Packed, Rows, gather_product, reduce_product};

/// Tiles per block: the 16 transformed rows of a block (`16 × T × channels` floats, for inputs
/// and for products) take about 256 KB each.
fn tiles_per_block(channels: usize) -> usize {
    (4096 / channels.max(1)).clamp(16, 256)
}

/// The tile grid over an `h × w` output (each tile 2×2, the last row and column cut off when
/// `h` or `w` is odd), `batch` images.
#[derive(Clone, Copy)]
struct Grid {
    batch: usize,
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
}

impl Grid {
    fn new(batch: usize, h: usize, w: usize) -> Self {
        Self {
            batch,
            h,
            w,
            th: h.div_ceil(2),
            tw: w.div_ceil(2),
        }
    }

    fn tiles(&self) -> usize {
        self.batch * self.th * self.tw
    }

    /// `(image, tile row, tile column)` of tile `t`.
    fn at(&self, t: usize) -> (usize, usize, usize) {
        let per = self.th * self.tw;
        let r = t % per;
        (t / per, r / self.tw, r % self.tw)
    }

    /// Offset of pixel `(y, x)` of image `b` (channel 0) in a `[batch, h, w, c]` buffer, or
    /// `None` outside the image (`y` and `x` may have wrapped below zero).
    fn pixel(&self, b: usize, y: usize, x: usize, c: usize) -> Option<usize> {
        (y < self.h && x < self.w).then(|| ((b * self.h + y) * self.w + x) * c)
    }
}

/// A pointer `at` values into `v`, checked to leave `c` values behind it.
fn ptr(v: &[f32], at: usize, c: usize) -> *const f32 {
    assert!(at + c <= v.len(), "winograd read out of bounds");
    // SAFETY: in bounds (checked).
    unsafe { v.as_ptr().add(at) }
}

/// `Bᵀ d B` of one tile for channels `c0..` in steps of `S::LANES` while a whole step fits
/// below `c1`; `src[k]` is input `k` of the 4×4 patch (row-major, null for a zero), `dst[k]`
/// where transformed value `k` goes. Returns the first channel not done.
///
/// # Safety
/// Every non-null pointer is valid for `c1` values.
#[inline(always)]
unsafe fn input_tile<S: Simd>(
    src: &[*const f32; 16],
    dst: &[*mut f32; 16],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let d: [S::V; 16] = std::array::from_fn(|k| {
                if src[k].is_null() {
                    S::zero()
                } else {
                    S::load(src[k].add(c))
                }
            });
            // Bᵀ d per column (rows 0 − 2, 1 + 2, 2 − 1, 1 − 3), then the same per row.
            let mut t = [S::zero(); 16];
            for j in 0..4 {
                t[j] = S::sub(d[j], d[8 + j]);
                t[4 + j] = S::add(d[4 + j], d[8 + j]);
                t[8 + j] = S::sub(d[8 + j], d[4 + j]);
                t[12 + j] = S::sub(d[4 + j], d[12 + j]);
            }
            for i in 0..4 {
                let r = &t[i * 4..i * 4 + 4];
                S::store(dst[i * 4].add(c), S::sub(r[0], r[2]));
                S::store(dst[i * 4 + 1].add(c), S::add(r[1], r[2]));
                S::store(dst[i * 4 + 2].add(c), S::sub(r[2], r[1]));
                S::store(dst[i * 4 + 3].add(c), S::sub(r[1], r[3]));
            }
            c += S::LANES;
        }
    }
    c
}

/// `Aᵀ M A` of one tile: `src[k]` the 16 products, `dst[k]` where output `k` of the 2×2 block
/// goes (null outside the image); channels as in [`input_tile`].
///
/// # Safety
/// Every non-null pointer is valid for `c1` values.
#[inline(always)]
unsafe fn output_tile<S: Simd>(
    src: &[*const f32; 16],
    dst: &[*mut f32; 4],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let q: [S::V; 16] = std::array::from_fn(|k| S::load(src[k].add(c)));
            // Aᵀ M per column (rows 0 + 1 + 2 and 1 − 2 − 3), then the same per row.
            let mut u = [S::zero(); 8];
            for j in 0..4 {
                u[j] = S::add(S::add(q[j], q[4 + j]), q[8 + j]);
                u[4 + j] = S::sub(S::sub(q[4 + j], q[8 + j]), q[12 + j]);
            }
            for i in 0..2 {
                let r = &u[i * 4..i * 4 + 4];
                let y = [
                    S::add(S::add(r[0], r[1]), r[2]),
                    S::sub(S::sub(r[1], r[2]), r[3]),
                ];
                for j in 0..2 {
                    if !dst[i * 2 + j].is_null() {
                        S::store(dst[i * 2 + j].add(c), y[j]);
                    }
                }
            }
            c += S::LANES;
        }
    }
    c
}

/// `A dY Aᵀ` of one tile's 2×2 output gradients `src` (null outside the image) into the 16
/// places `dst`; channels as in [`input_tile`].
///
/// # Safety
/// Every non-null pointer is valid for `c1` values.
#[inline(always)]
unsafe fn grad_tile<S: Simd>(
    src: &[*const f32; 4],
    dst: &[*mut f32; 16],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let d: [S::V; 4] = std::array::from_fn(|k| {
                if src[k].is_null() {
                    S::zero()
                } else {
                    S::load(src[k].add(c))
                }
            });
            let zero = S::zero();
            // A dY per column (rows 0, 0 + 1, 0 − 1, −1), then the same per row.
            let mut e = [zero; 8];
            for j in 0..2 {
                e[j * 4] = d[j];
                e[j * 4 + 1] = S::add(d[j], d[2 + j]);
                e[j * 4 + 2] = S::sub(d[j], d[2 + j]);
                e[j * 4 + 3] = S::sub(zero, d[2 + j]);
            }
            for i in 0..4 {
                let (e0, e1) = (e[i], e[4 + i]);
                S::store(dst[i * 4].add(c), e0);
                S::store(dst[i * 4 + 1].add(c), S::add(e0, e1));
                S::store(dst[i * 4 + 2].add(c), S::sub(e0, e1));
                S::store(dst[i * 4 + 3].add(c), S::sub(zero, e1));
            }
            c += S::LANES;
        }
    }
    c
}

/// Which transform [`transform`] runs.
#[derive(Clone, Copy)]
enum Transform {
    /// Image patches to `Bᵀ d B`.
    Input,
    /// Products to output blocks, `Aᵀ M A`.
    Output,
    /// Output-gradient blocks to `A dY Aᵀ`.
    Grad,
}

/// Runs a transform over tiles `t0..t0 + n` with vectors `S` (and single lanes for the last
/// channels): `Input` and `Grad` read the image `src` (`[batch, h, w, c]`) and write the
/// transformed rows `dst[(pos · stride + t) · c + ch]`; `Output` reads such rows and writes the
/// image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run<S: Simd>(
    kind: Transform,
    src: &[f32],
    grid: Grid,
    c: usize,
    t0: usize,
    n: usize,
    stride: usize,
    dst: &mut [f32],
) {
    // The transformed rows of tile t sit at (k · stride + t) · c for k < 16: one check covers
    // all of them.
    let rows_len = if matches!(kind, Transform::Output) {
        src.len()
    } else {
        dst.len()
    };
    assert!(
        n <= stride && (15 * stride + n) * c <= rows_len,
        "winograd rows out of bounds"
    );
    let pos: [usize; 16] = std::array::from_fn(|k| k * stride * c);
    let (mut b, mut ty, mut tx) = grid.at(t0);
    for t in 0..n {
        // SAFETY (all three arms): the row pointers are within the rows buffer (checked
        // above), the image pointers were checked by `patch`/`block`, and each transform
        // touches channels below `c` only.
        unsafe {
            match kind {
                Transform::Input => {
                    let s = patch(src, grid, b, ty, tx, c);
                    let rows = dst.as_mut_ptr().add(t * c);
                    let d: [*mut f32; 16] = std::array::from_fn(|k| rows.add(pos[k]));
                    let done = input_tile::<S>(&s, &d, 0, c);
                    input_tile::<Scalar>(&s, &d, done, c);
                }
                Transform::Output => {
                    let rows = src.as_ptr().add(t * c);
                    let s: [*const f32; 16] = std::array::from_fn(|k| rows.add(pos[k]));
                    let d = block(dst.as_mut_ptr(), dst.len(), grid, b, ty, tx, c)
                        .map(|p| p.cast_mut());
                    let done = output_tile::<S>(&s, &d, 0, c);
                    output_tile::<Scalar>(&s, &d, done, c);
                }
                Transform::Grad => {
                    let s = block(src.as_ptr(), src.len(), grid, b, ty, tx, c);
                    let rows = dst.as_mut_ptr().add(t * c);
                    let d: [*mut f32; 16] = std::array::from_fn(|k| rows.add(pos[k]));
                    let done = grad_tile::<S>(&s, &d, 0, c);
                    grad_tile::<Scalar>(&s, &d, done, c);
                }
            }
        }
        tx += 1;
        if tx == grid.tw {
            tx = 0;
            ty += 1;
            if ty == grid.th {
                ty = 0;
                b += 1;
            }
        }
    }
}

/// Pointers to the 16 inputs of tile `(b, ty, tx)`'s 4×4 patch in `x` (row-major; null where
/// the patch leaves the image), each valid for `c` values.
#[inline(always)]
fn patch(x: &[f32], grid: Grid, b: usize, ty: usize, tx: usize, c: usize) -> [*const f32; 16] {
    let (y0, x0) = ((2 * ty).wrapping_sub(1), (2 * tx).wrapping_sub(1));
    let inside = ty > 0 && tx > 0 && y0 + 3 < grid.h && x0 + 3 < grid.w;
    if inside {
        // One check for the whole patch: its last pixel ends 3 rows and 3 columns on.
        let at = ((b * grid.h + y0) * grid.w + x0) * c;
        let base = ptr(x, at, (3 * grid.w + 4) * c);
        // SAFETY: every patch pixel lies between `base` and its last pixel (checked).
        std::array::from_fn(|k| unsafe { base.add(((k / 4) * grid.w + k % 4) * c) })
    } else {
        std::array::from_fn(|k| {
            grid.pixel(b, y0.wrapping_add(k / 4), x0.wrapping_add(k % 4), c)
                .map_or(std::ptr::null(), |at| ptr(x, at, c))
        })
    }
}

/// Pointers to the 4 pixels of tile `(b, ty, tx)`'s 2×2 block in an image `[batch, h, w, c]`
/// of `len` values at `v` (null outside the image), each valid for `c` values. The pointers
/// keep `v`'s provenance, so a caller that passed a mutable buffer's pointer may write through
/// them.
#[inline(always)]
fn block(
    v: *const f32,
    len: usize,
    grid: Grid,
    b: usize,
    ty: usize,
    tx: usize,
    c: usize,
) -> [*const f32; 4] {
    let (y, x) = (2 * ty, 2 * tx);
    let at = |at: usize, span: usize| {
        assert!(at + span <= len, "winograd image access out of bounds");
        // SAFETY: in bounds (checked).
        unsafe { v.add(at) }
    };
    if y + 1 < grid.h && x + 1 < grid.w {
        let base = at(((b * grid.h + y) * grid.w + x) * c, (grid.w + 2) * c);
        // SAFETY: the block's pixels lie between `base` and its last pixel (checked).
        std::array::from_fn(|k| unsafe { base.add(((k / 2) * grid.w + k % 2) * c) })
    } else {
        std::array::from_fn(|k| {
            grid.pixel(b, y + k / 2, x + k % 2, c)
                .map_or(std::ptr::null(), |p| at(p, c))
        })
    }
}

/// [`run`] compiled for the detected instruction set.
#[allow(clippy::too_many_arguments)]
fn transform(
    kind: Transform,
    src: &[f32],
    grid: Grid,
    c: usize,
    t0: usize,
    n: usize,
    stride: usize,
    dst: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    fn run_avx512(
        kind: Transform,
        src: &[f32],
        grid: Grid,
        c: usize,
        t0: usize,
        n: usize,
        stride: usize,
        dst: &mut [f32],
    ) {
        run::<Avx512>(kind, src, grid, c, t0, n, stride, dst)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn run_avx2(
        kind: Transform,
        src: &[f32],
        grid: Grid,
        c: usize,
        t0: usize,
        n: usize,
        stride: usize,
        dst: &mut [f32],
    ) {
        run::<Avx2>(kind, src, grid, c, t0, n, stride, dst)
    }
    match Isa::detect() {
        // SAFETY: each copy runs only on a CPU where its features were detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_avx512(kind, src, grid, c, t0, n, stride, dst) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2(kind, src, grid, c, t0, n, stride, dst) },
        _ => run::<Portable>(kind, src, grid, c, t0, n, stride, dst),
    }
}

/// `G g Gᵀ` of a 3×3 kernel `g` (row-major), as 16 values.
fn kernel_transform(g: [f32; 9]) -> [f32; 16] {
    let rows = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    // G g: per column of g, then the same on the rows of the result.
    let cols: [[f32; 4]; 3] = std::array::from_fn(|j| rows(g[j], g[3 + j], g[6 + j]));
    let mut u = [0f32; 16];
    for i in 0..4 {
        let r = rows(cols[0][i], cols[1][i], cols[2][i]);
        u[i * 4..i * 4 + 4].copy_from_slice(&r);
    }
    u
}

/// The 16 transformed kernels, packed for the products: `U[pos][c][j]` from `kernel(j, c)`
/// (output channel `j`, input channel `c`, 3×3 row-major).
fn pack_kernels(cin: usize, cout: usize, kernel: impl Fn(usize, usize) -> [f32; 9]) -> Vec<Packed> {
    let mut u = vec![[0f32; 16]; cin * cout];
    for j in 0..cout {
        for c in 0..cin {
            u[j * cin + c] = kernel_transform(kernel(j, c));
        }
    }
    (0..16)
        .map(|pos| Packed::new(1, cin, cout, |_, c, j| u[j * cin + c][pos]))
        .collect()
}

/// The Winograd product of `x` (`[batch, h, w, cin]`) with transformed kernels `u`: the
/// stride-1, padding-1 3×3 correlation, `[batch, h, w, cout]`.
fn correlate(x: &[f32], grid: Grid, cin: usize, u: &[Packed], cout: usize) -> Vec<f32> {
    let mut z = vec![0f32; grid.batch * grid.h * grid.w * cout];
    let tb = tiles_per_block(cin.max(cout));
    let mut v = vec![0f32; 16 * tb * cin];
    let mut m = vec![0f32; 16 * tb * cout];
    let tiles = grid.tiles();
    for t0 in (0..tiles).step_by(tb) {
        let n = tb.min(tiles - t0);
        transform(Transform::Input, x, grid, cin, t0, n, tb, &mut v);
        for (pos, up) in u.iter().enumerate() {
            let rows = Rows {
                rows: n,
                src_at: |t: usize| (pos * tb + t) * cin,
                dst_at: |t: usize| (pos * tb + t) * cout,
            };
            gather_product(&v, &[0], up, &rows, &mut m, false);
        }
        transform(Transform::Output, &m, grid, cout, t0, n, tb, &mut z);
    }
    z
}

/// `z = conv(x, weight)` for a 3×3, stride-1, padding-1 geometry.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    let u = pack_kernels(g.cin, g.cout, |j, c| {
        std::array::from_fn(|t| weight[(j * g.cin + c) * 9 + t])
    });
    correlate(x, Grid::new(g.batch, g.h, g.w), g.cin, &u, g.cout)
}

/// `dx` from `dz`: the forward product of `dz` with the kernel flipped in space and transposed
/// in channels.
pub fn input_grad(g: &Geometry, dz: &[f32], weight: &[f32]) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    let u = pack_kernels(g.cout, g.cin, |ci, co| {
        std::array::from_fn(|t| weight[(co * g.cin + ci) * 9 + 8 - t])
    });
    correlate(dz, Grid::new(g.batch, g.h, g.w), g.cout, &u, g.cin)
}

/// The weight gradient `[cout, cin, 3, 3]` from `x` and `dz`.
pub fn weight_grad(g: &Geometry, x: &[f32], dz: &[f32]) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    let (cin, cout) = (g.cin, g.cout);
    let grid = Grid::new(g.batch, g.h, g.w);
    let tb = tiles_per_block(cin.max(cout));
    let mut v = vec![0f32; 16 * tb * cin];
    let mut e = vec![0f32; 16 * tb * cout];
    let mut s = vec![0f64; 16 * cin * cout];
    let tiles = grid.tiles();
    for t0 in (0..tiles).step_by(tb) {
        let n = tb.min(tiles - t0);
        transform(Transform::Input, x, grid, cin, t0, n, tb, &mut v);
        transform(Transform::Grad, dz, grid, cout, t0, n, tb, &mut e);
        for (pos, acc) in s.chunks_exact_mut(cin * cout).enumerate() {
            let rows = Rows {
                rows: n,
                src_at: |t: usize| (pos * tb + t) * cin,
                dst_at: |t: usize| (pos * tb + t) * cout,
            };
            reduce_product(&v, &[0], cin, &e, cout, &rows, acc);
        }
    }
    // Gᵀ S G per (input, output) channel pair.
    let mut dw = vec![0f32; cout * cin * 9];
    for c in 0..cin {
        for j in 0..cout {
            let q: [f64; 16] = std::array::from_fn(|pos| s[(pos * cin + c) * cout + j]);
            let k = kernel_grad_transform(q);
            for (t, &v) in k.iter().enumerate() {
                dw[(j * cin + c) * 9 + t] = v as f32;
            }
        }
    }
    dw
}

/// `Gᵀ S G` of a 4×4 `S` (row-major), as a 3×3 kernel gradient.
fn kernel_grad_transform(s: [f64; 16]) -> [f64; 9] {
    let back =
        |a: f64, b: f64, c: f64, d: f64| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    let cols: [[f64; 3]; 4] = std::array::from_fn(|j| back(s[j], s[4 + j], s[8 + j], s[12 + j]));
    let mut k = [0f64; 9];
    for i in 0..3 {
        let r = back(cols[0][i], cols[1][i], cols[2][i], cols[3][i]);
        k[i * 3..i * 3 + 3].copy_from_slice(&r);
    }
    k
}
