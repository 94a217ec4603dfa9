//! Winograd products F(m×m, 3×3), m = 2 or 4, for 3×3 convolutions with stride 1 and padding 1
//! on channels-last data: the forward product, the input gradient and the weight gradient.
//!
//! Each m×m block of outputs (a tile) comes from an n×n input patch `d` (n = m + 2):
//! `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, so the channel mixing becomes n² independent products
//! `M[pos] = V[pos]·U[pos]` (tiles × cin by cin × cout): n²/m² multiplications per output
//! instead of 9, i.e. 4 for F(2×2, 3×3) and 2.25 for F(4×4, 3×3). Following Lavin & Gray
//! (2016), with their matrices:
//!
//! - the input gradient is the forward product of `dz` with the flipped, transposed kernel;
//! - the weight gradient is `Gᵀ[Σ_tiles (Bᵀ d B) ⊙ (A dY Aᵀ)]G`, the same n² products reduced
//!   over tiles instead of channels.
//!
//! Tiles are processed in blocks whose transformed inputs and products stay in L2, through the
//! register-tile kernels of `tile.rs`. The transforms run on a vector of channels at a time
//! in functions compiled per instruction set; their matrices are constants, so the compiler
//! drops the zero terms and turns ±1 into additions. Patches reaching past the image read zeros,
//! so odd sizes work and nothing is padded in memory. F(2×2) multiplies by 0, ±1 and ±½ only and
//! differs from the direct product by rounding; F(4×4)'s larger constants (up to 8 and 1/24)
//! cost a few more bits, still well inside the tolerances of `tests/conv.rs`, which checks both
//! against burn's convolution.

use super::geometry::Geometry;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Isa, Portable, Scalar, Simd};
use super::tile::{Out, Packed, Rows, gather_product, ranges, reduce_product};
use crate::model::norm_act::PARTS;
use rayon::prelude::*;

/// Which Winograd variant a product uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tile {
    /// F(2×2, 3×3): 4×4 patches, 4 multiplications per output.
    F2,
    /// F(4×4, 3×3): 6×6 patches, 2.25 multiplications per output.
    F4,
}

/// The kernel transform of F(M×M, 3×3), `G` (N × 3 with N = M + 2 input points per axis); the
/// other two transforms are written out as functions in [`Consts`].
struct Variant<const N: usize> {
    g: [[f64; 3]; N],
}

/// F(2×2, 3×3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], Aᵀ = [1 1 1 0; 0 1 −1 −1].
const F2: Variant<4> = Variant {
    g: [
        [1., 0., 0.],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0., 0., 1.],
    ],
};

/// F(4×4, 3×3) (Lavin & Gray's points 0, ±1, ±2, ∞): Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0;
/// 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1], Aᵀ = [1 1 1 1 1 0;
/// 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
const F4: Variant<6> = Variant {
    g: [
        [1. / 4., 0., 0.],
        [-1. / 6., -1. / 6., -1. / 6.],
        [-1. / 6., 1. / 6., -1. / 6.],
        [1. / 24., 1. / 12., 1. / 6.],
        [1. / 24., -1. / 12., 1. / 6.],
        [0., 0., 1.],
    ],
};

/// A variant's one-dimensional transforms, written out with the fewest operations (applied to
/// the columns of a patch, then to the rows of the result). Generic over the vector type, and
/// type-level so that each instruction set's copy of the transform loops inlines them.
trait Consts<const M: usize, const N: usize> {
    /// The kernel transform.
    const K: Variant<N>;
    /// `Bᵀ d` of N values.
    unsafe fn input<S: Simd>(d: &[S::V; N]) -> [S::V; N];
    /// `Aᵀ m` of N values.
    unsafe fn output<S: Simd>(m: &[S::V; N]) -> [S::V; M];
    /// `A y` of M values.
    unsafe fn grad<S: Simd>(y: &[S::V; M]) -> [S::V; N];
}

/// F(2×2, 3×3).
struct ConstsF2;

impl Consts<2, 4> for ConstsF2 {
    const K: Variant<4> = F2;

    #[inline(always)]
    unsafe fn input<S: Simd>(d: &[S::V; 4]) -> [S::V; 4] {
        unsafe {
            [
                S::sub(d[0], d[2]),
                S::add(d[1], d[2]),
                S::sub(d[2], d[1]),
                S::sub(d[1], d[3]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn output<S: Simd>(m: &[S::V; 4]) -> [S::V; 2] {
        unsafe {
            [
                S::add(S::add(m[0], m[1]), m[2]),
                S::sub(S::sub(m[1], m[2]), m[3]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn grad<S: Simd>(y: &[S::V; 2]) -> [S::V; 4] {
        unsafe {
            [
                y[0],
                S::add(y[0], y[1]),
                S::sub(y[0], y[1]),
                S::sub(S::zero(), y[1]),
            ]
        }
    }
}

/// F(4×4, 3×3).
struct ConstsF4;

impl Consts<4, 6> for ConstsF4 {
    const K: Variant<6> = F4;

    #[inline(always)]
    unsafe fn input<S: Simd>(d: &[S::V; 6]) -> [S::V; 6] {
        unsafe {
            let (four, five) = (S::set(4.0), S::set(5.0));
            let t0 = S::sub(d[4], S::mul(four, d[2])); // d4 − 4·d2
            let t1 = S::sub(d[3], S::mul(four, d[1])); // d3 − 4·d1
            let t2 = S::sub(d[4], d[2]);
            let t3 = S::add(S::sub(d[3], d[1]), S::sub(d[3], d[1])); // 2·(d3 − d1)
            [
                S::sub(S::fma(four, d[0], d[4]), S::mul(five, d[2])),
                S::add(t0, t1),
                S::sub(t0, t1),
                S::add(t2, t3),
                S::sub(t2, t3),
                S::sub(S::fma(four, d[1], d[5]), S::mul(five, d[3])),
            ]
        }
    }

    #[inline(always)]
    unsafe fn output<S: Simd>(m: &[S::V; 6]) -> [S::V; 4] {
        unsafe {
            let a = S::add(m[1], m[2]);
            let b = S::sub(m[1], m[2]);
            let c = S::add(m[3], m[4]);
            let d = S::sub(m[3], m[4]);
            [
                S::add(S::add(m[0], a), c),
                S::fma(S::set(2.0), d, b),
                S::fma(S::set(4.0), c, a),
                S::add(S::fma(S::set(8.0), d, b), m[5]),
            ]
        }
    }

    #[inline(always)]
    unsafe fn grad<S: Simd>(y: &[S::V; 4]) -> [S::V; 6] {
        unsafe {
            let p = S::add(y[0], y[2]);
            let q = S::add(y[1], y[3]);
            let p2 = S::fma(S::set(4.0), y[2], y[0]); // y0 + 4·y2
            let q2 = S::mul(S::set(2.0), S::fma(S::set(4.0), y[3], y[1])); // 2·y1 + 8·y3
            [
                y[0],
                S::add(p, q),
                S::sub(p, q),
                S::add(p2, q2),
                S::sub(p2, q2),
                y[3],
            ]
        }
    }
}

/// Tiles per block: the transformed rows of a block (`N² × T × channels` floats, for inputs and
/// for products) take about 256 KB each.
fn tiles_per_block(positions: usize, channels: usize) -> usize {
    (196608 / (positions * channels.max(1))).clamp(96, 160)
}

/// The tile grid over an `h × w` output (tiles of `m × m`, the last row and column cut off
/// where `h` or `w` is not a multiple of `m`), `batch` images.
#[derive(Clone, Copy)]
struct Grid {
    batch: usize,
    h: usize,
    w: usize,
    m: usize,
    th: usize,
    tw: usize,
}

impl Grid {
    fn new(batch: usize, h: usize, w: usize, m: usize) -> Self {
        Self {
            batch,
            h,
            w,
            m,
            th: h.div_ceil(m),
            tw: w.div_ceil(m),
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
}

/// `Bᵀ d B` of one tile for channels `c0..` in steps of `S::LANES` while a whole step fits
/// below `c1`; `src[i][j]` is input `(i, j)` of the patch (null for a zero), `dst[i][j]` where
/// transformed value `(i, j)` goes. Returns the first channel not done.
///
/// # Safety
/// Every non-null pointer is valid for `c1` values; the instruction set of `S` is available.
#[inline(always)]
unsafe fn input_tile<S: Simd, C: Consts<M, N>, const M: usize, const N: usize>(
    src: &[[*const f32; N]; N],
    dst: &[[*mut f32; N]; N],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let mut t = [[S::zero(); N]; N];
            for j in 0..N {
                let col: [S::V; N] = std::array::from_fn(|r| {
                    if src[r][j].is_null() {
                        S::zero()
                    } else {
                        S::load(src[r][j].add(c))
                    }
                });
                for (i, v) in C::input::<S>(&col).into_iter().enumerate() {
                    t[i][j] = v;
                }
            }
            for (i, row) in t.iter().enumerate() {
                for (j, v) in C::input::<S>(row).into_iter().enumerate() {
                    S::store(dst[i][j].add(c), v);
                }
            }
            c += S::LANES;
        }
    }
    c
}

/// `Aᵀ M A` of one tile: `src[i][j]` the N² products, `dst[i][j]` where output `(i, j)` of the
/// M×M block goes (null outside the image); channels as in [`input_tile`].
///
/// # Safety
/// As [`input_tile`].
#[inline(always)]
unsafe fn output_tile<S: Simd, C: Consts<M, N>, const M: usize, const N: usize>(
    src: &[[*const f32; N]; N],
    dst: &[[*mut f32; M]; M],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let mut u = [[S::zero(); N]; M];
            for j in 0..N {
                let col: [S::V; N] = std::array::from_fn(|r| S::load(src[r][j].add(c)));
                for (i, v) in C::output::<S>(&col).into_iter().enumerate() {
                    u[i][j] = v;
                }
            }
            for (i, row) in u.iter().enumerate() {
                for (j, v) in C::output::<S>(row).into_iter().enumerate() {
                    if !dst[i][j].is_null() {
                        S::store(dst[i][j].add(c), v);
                    }
                }
            }
            c += S::LANES;
        }
    }
    c
}

/// `A dY Aᵀ` of one tile's M×M output gradients `src` (null outside the image) into the N²
/// places `dst`; channels as in [`input_tile`].
///
/// # Safety
/// As [`input_tile`].
#[inline(always)]
unsafe fn grad_tile<S: Simd, C: Consts<M, N>, const M: usize, const N: usize>(
    src: &[[*const f32; M]; M],
    dst: &[[*mut f32; N]; N],
    c0: usize,
    c1: usize,
) -> usize {
    let mut c = c0;
    unsafe {
        while c + S::LANES <= c1 {
            let mut e = [[S::zero(); M]; N];
            for j in 0..M {
                let col: [S::V; M] = std::array::from_fn(|r| {
                    if src[r][j].is_null() {
                        S::zero()
                    } else {
                        S::load(src[r][j].add(c))
                    }
                });
                for (i, v) in C::grad::<S>(&col).into_iter().enumerate() {
                    e[i][j] = v;
                }
            }
            for (i, row) in e.iter().enumerate() {
                for (j, v) in C::grad::<S>(row).into_iter().enumerate() {
                    S::store(dst[i][j].add(c), v);
                }
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

/// A pointer to image `b`'s first value in a `[batch, h, w, c]` buffer of `len` values at `v`,
/// checked to leave the whole image behind it (so any pixel inside it is in bounds).
fn image(v: *const f32, len: usize, grid: Grid, b: usize, c: usize) -> *const f32 {
    let size = grid.h * grid.w * c;
    assert!((b + 1) * size <= len, "winograd image access out of bounds");
    // SAFETY: in bounds (checked).
    unsafe { v.add(b * size) }
}

/// Pointers to the N×N inputs of tile `(b, ty, tx)`'s patch in `x` (null where the patch leaves
/// the image), each valid for `c` values.
#[inline(always)]
fn patch<const N: usize>(
    x: &[f32],
    grid: Grid,
    (b, ty, tx): (usize, usize, usize),
    c: usize,
) -> [[*const f32; N]; N] {
    let base = image(x.as_ptr(), x.len(), grid, b, c);
    // The patch starts one pixel above and left of the tile (padding 1); wrapped below zero,
    // those rows and columns fail the `< h`, `< w` tests.
    let (y0, x0) = ((grid.m * ty).wrapping_sub(1), (grid.m * tx).wrapping_sub(1));
    std::array::from_fn(|i| {
        let y = y0.wrapping_add(i);
        std::array::from_fn(|j| {
            let xx = x0.wrapping_add(j);
            if y < grid.h && xx < grid.w {
                // SAFETY: a pixel inside image `b` (whose bounds `image` checked).
                unsafe { base.add((y * grid.w + xx) * c) }
            } else {
                std::ptr::null()
            }
        })
    })
}

/// Pointers to the M×M pixels of tile `(b, ty, tx)`'s output block in an image
/// `[batch, h, w, c]` of `len` values at `v` (null outside the image), each valid for `c`
/// values. The pointers keep `v`'s provenance, so a caller that passed a mutable buffer's pointer
/// may write through them.
#[inline(always)]
fn block<const M: usize>(
    v: *const f32,
    len: usize,
    grid: Grid,
    (b, ty, tx): (usize, usize, usize),
    c: usize,
) -> [[*const f32; M]; M] {
    let base = image(v, len, grid, b, c);
    std::array::from_fn(|i| {
        let y = M * ty + i;
        std::array::from_fn(|j| {
            let xx = M * tx + j;
            if y < grid.h && xx < grid.w {
                // SAFETY: a pixel inside image `b` (whose bounds `image` checked).
                unsafe { base.add((y * grid.w + xx) * c) }
            } else {
                std::ptr::null()
            }
        })
    })
}

/// Runs a transform over tiles `t0..t0 + n` with vectors `S` (and single lanes for the last
/// channels): `Input` and `Grad` read the image `src` (`[batch, h, w, c]`) and write the
/// transformed rows `dst[((t − t0) · N² + pos) · c + ch]` (`pos = i · N + j`: each tile's rows
/// together, so a transform writes or reads one contiguous run); `Output` reads such
/// rows and writes the image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run<S: Simd, C: Consts<M, N>, const M: usize, const N: usize>(
    kind: Transform,
    src: &[f32],
    grid: Grid,
    c: usize,
    (t0, n): (usize, usize),
    dst: Out,
) {
    let rows_len = if matches!(kind, Transform::Output) {
        src.len()
    } else {
        dst.len
    };
    // The transformed rows of tile t sit at (t · N² + pos) · c for pos < N²: one check covers
    // all of them.
    assert!(n * N * N * c <= rows_len, "winograd rows out of bounds");
    let pos = |i: usize, j: usize| (i * N + j) * c;
    let (mut b, mut ty, mut tx) = grid.at(t0);
    for t in 0..n {
        let tile = (b, ty, tx);
        // SAFETY (all three arms): the row pointers are within the rows buffer (checked
        // above), the image pointers were checked by `patch`/`block`, and each transform
        // touches channels below `c` only.
        unsafe {
            match kind {
                Transform::Input => {
                    let s = patch::<N>(src, grid, tile, c);
                    let rows = dst.ptr.add(t * N * N * c);
                    let d = std::array::from_fn(|i| std::array::from_fn(|j| rows.add(pos(i, j))));
                    let done = input_tile::<S, C, M, N>(&s, &d, 0, c);
                    input_tile::<Scalar, C, M, N>(&s, &d, done, c);
                }
                Transform::Output => {
                    let rows = src.as_ptr().add(t * N * N * c);
                    let s = std::array::from_fn(|i| std::array::from_fn(|j| rows.add(pos(i, j))));
                    let d = block::<M>(dst.ptr, dst.len, grid, tile, c)
                        .map(|r| r.map(|p| p.cast_mut()));
                    let done = output_tile::<S, C, M, N>(&s, &d, 0, c);
                    output_tile::<Scalar, C, M, N>(&s, &d, done, c);
                }
                Transform::Grad => {
                    let s = block::<M>(src.as_ptr(), src.len(), grid, tile, c);
                    let rows = dst.ptr.add(t * N * N * c);
                    let d = std::array::from_fn(|i| std::array::from_fn(|j| rows.add(pos(i, j))));
                    let done = grad_tile::<S, C, M, N>(&s, &d, 0, c);
                    grad_tile::<Scalar, C, M, N>(&s, &d, done, c);
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

/// [`run`] compiled for the detected instruction set.
fn transform<C: Consts<M, N>, const M: usize, const N: usize>(
    kind: Transform,
    src: &[f32],
    grid: Grid,
    c: usize,
    tiles: (usize, usize),
    dst: Out,
) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn run_avx512<C: Consts<M, N>, const M: usize, const N: usize>(
        kind: Transform,
        src: &[f32],
        grid: Grid,
        c: usize,
        tiles: (usize, usize),
        dst: Out,
    ) {
        run::<Avx512, C, M, N>(kind, src, grid, c, tiles, dst)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2<C: Consts<M, N>, const M: usize, const N: usize>(
        kind: Transform,
        src: &[f32],
        grid: Grid,
        c: usize,
        tiles: (usize, usize),
        dst: Out,
    ) {
        run::<Avx2, C, M, N>(kind, src, grid, c, tiles, dst)
    }
    match Isa::detect() {
        // SAFETY: each copy runs only on a CPU where its features were detected.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_avx512::<C, M, N>(kind, src, grid, c, tiles, dst) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2::<C, M, N>(kind, src, grid, c, tiles, dst) },
        _ => run::<Portable, C, M, N>(kind, src, grid, c, tiles, dst),
    }
}

/// `G g Gᵀ` of a 3×3 kernel `g` (row-major), computed in f64.
fn kernel_transform<const N: usize>(k: &Variant<N>, g: [f32; 9]) -> [[f32; N]; N] {
    let mut gg = [[0f64; 3]; N];
    for (i, row) in gg.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v =
                k.g[i][0] * g[j] as f64 + k.g[i][1] * g[3 + j] as f64 + k.g[i][2] * g[6 + j] as f64;
        }
    }
    let mut u = [[0f32; N]; N];
    for (i, row) in u.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (gg[i][0] * k.g[j][0] + gg[i][1] * k.g[j][1] + gg[i][2] * k.g[j][2]) as f32;
        }
    }
    u
}

/// `Gᵀ S G` of the N×N sums `s`, a 3×3 kernel gradient (row-major).
fn kernel_grad_transform<const N: usize>(k: &Variant<N>, s: &[[f64; N]; N]) -> [f64; 9] {
    let t: [[f64; N]; 3] =
        std::array::from_fn(|a| std::array::from_fn(|j| (0..N).map(|i| k.g[i][a] * s[i][j]).sum()));
    std::array::from_fn(|q| (0..N).map(|j| t[q / 3][j] * k.g[j][q % 3]).sum())
}

/// The N² transformed kernels, packed for the products: `U[pos][c][j]` from `kernel(j, c)`
/// (output channel `j`, input channel `c`, 3×3 row-major).
fn pack_kernels<const N: usize>(
    k: &Variant<N>,
    cin: usize,
    cout: usize,
    kernel: impl Fn(usize, usize) -> [f32; 9],
) -> Vec<Packed> {
    // `u[(pos · cin + c) · cout + j]`: each position's matrix in the order `Packed` reads it.
    let mut u = vec![0f32; N * N * cin * cout];
    for j in 0..cout {
        for c in 0..cin {
            let t = kernel_transform(k, kernel(j, c));
            for (pos, &v) in t.iter().flatten().enumerate() {
                u[(pos * cin + c) * cout + j] = v;
            }
        }
    }
    u.chunks_exact(cin * cout)
        .map(|m| Packed::new(1, cin, cout, |_, c, j| m[c * cout + j]))
        .collect()
}

/// The Winograd product of `x` (`[batch, h, w, cin]`) with transformed kernels `u`: the
/// stride-1, padding-1 3×3 correlation, `[batch, h, w, cout]`. The tiles are cut into
/// [`PARTS`] ranges that run in parallel, each with its own transform buffers.
fn correlate<C: Consts<M, N>, const M: usize, const N: usize>(
    x: &[f32],
    (batch, h, w): (usize, usize, usize),
    cin: usize,
    u: &[Packed],
    cout: usize,
) -> Vec<f32> {
    let grid = Grid::new(batch, h, w, M);
    let len = batch * h * w * cout;
    // Not zero-filled: the output transform writes every value (the tiles cover the image, each
    // tile every channel), and `set_len` below comes after the last range.
    let mut z: Vec<f32> = Vec::with_capacity(len);
    let out = Out {
        ptr: z.as_mut_ptr(),
        len,
    };
    let tb = tiles_per_block(N * N, cin.max(cout));
    ranges(grid.tiles(), tb, PARTS)
        .into_par_iter()
        .for_each(move |range| {
            correlate_range::<C, M, N>(x, grid, (cin, cout), u, (tb, range), out);
        });
    // SAFETY: every one of the `len` values was written (above: the ranges cover every tile),
    // within the capacity.
    unsafe { z.set_len(len) };
    z
}

/// [`correlate`] over tiles `start..end`, in blocks of `tb` tiles, into `out`.
fn correlate_range<C: Consts<M, N>, const M: usize, const N: usize>(
    x: &[f32],
    grid: Grid,
    (cin, cout): (usize, usize),
    u: &[Packed],
    (tb, (start, end)): (usize, (usize, usize)),
    out: Out,
) {
    let mut v = vec![0f32; N * N * tb * cin];
    let mut m = vec![0f32; N * N * tb * cout];
    for t0 in (start..end).step_by(tb) {
        let n = tb.min(end - t0);
        transform::<C, M, N>(Transform::Input, x, grid, cin, (t0, n), Out::of(&mut v));
        for (pos, up) in u.iter().enumerate() {
            let rows = Rows {
                rows: n,
                src_at: |t: usize| (t * N * N + pos) * cin,
                dst_at: |t: usize| (t * N * N + pos) * cout,
            };
            gather_product(&v, &[0], up, &rows, &mut m, false);
        }
        transform::<C, M, N>(Transform::Output, &m, grid, cout, (t0, n), out);
    }
}

/// The sums `S[pos, cin, cout]` of the weight gradient over tiles `start..end`.
fn weight_sums<C: Consts<M, N>, const M: usize, const N: usize>(
    x: &[f32],
    dz: &[f32],
    grid: Grid,
    (cin, cout): (usize, usize),
    (tb, (start, end)): (usize, (usize, usize)),
) -> Vec<f64> {
    let mut v = vec![0f32; N * N * tb * cin];
    let mut e = vec![0f32; N * N * tb * cout];
    let mut s = vec![0f64; N * N * cin * cout];
    for t0 in (start..end).step_by(tb) {
        let n = tb.min(end - t0);
        transform::<C, M, N>(Transform::Input, x, grid, cin, (t0, n), Out::of(&mut v));
        transform::<C, M, N>(Transform::Grad, dz, grid, cout, (t0, n), Out::of(&mut e));
        for (pos, acc) in s.chunks_exact_mut(cin * cout).enumerate() {
            let rows = Rows {
                rows: n,
                src_at: |t: usize| (t * N * N + pos) * cin,
                dst_at: |t: usize| (t * N * N + pos) * cout,
            };
            reduce_product(&v, &[0], cin, &e, cout, &rows, acc);
        }
    }
    s
}

/// The weight gradient `[cout, cin, 3, 3]` from `x` and `dz` through variant `k`: per tile
/// range (in parallel) the sums `S` over its tiles, added in range order.
fn weight_grad_with<C: Consts<M, N>, const M: usize, const N: usize>(
    g: &Geometry,
    x: &[f32],
    dz: &[f32],
) -> Vec<f32> {
    let (cin, cout) = (g.cin, g.cout);
    let grid = Grid::new(g.batch, g.h, g.w, M);
    let tb = tiles_per_block(N * N, cin.max(cout));
    let partial: Vec<Vec<f64>> = ranges(grid.tiles(), tb, PARTS)
        .into_par_iter()
        .map(|range| weight_sums::<C, M, N>(x, dz, grid, (cin, cout), (tb, range)))
        .collect();
    let mut parts = partial.into_iter();
    let mut s = parts
        .next()
        .unwrap_or_else(|| vec![0f64; N * N * cin * cout]);
    for p in parts {
        s.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    // Gᵀ S G per (input, output) channel pair.
    let mut dw = vec![0f32; cout * cin * 9];
    for c in 0..cin {
        for j in 0..cout {
            let q: [[f64; N]; N] = std::array::from_fn(|a| {
                std::array::from_fn(|b| s[((a * N + b) * cin + c) * cout + j])
            });
            for (t, &v) in kernel_grad_transform(&C::K, &q).iter().enumerate() {
                dw[(j * cin + c) * 9 + t] = v as f32;
            }
        }
    }
    dw
}

/// `z = conv(x, weight)` for a 3×3, stride-1, padding-1 geometry.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32], tile: Tile) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    let kernel = |j: usize, c: usize| std::array::from_fn(|t| weight[(j * g.cin + c) * 9 + t]);
    let dims = (g.batch, g.h, g.w);
    match tile {
        Tile::F2 => correlate::<ConstsF2, 2, 4>(
            x,
            dims,
            g.cin,
            &pack_kernels(&F2, g.cin, g.cout, kernel),
            g.cout,
        ),
        Tile::F4 => correlate::<ConstsF4, 4, 6>(
            x,
            dims,
            g.cin,
            &pack_kernels(&F4, g.cin, g.cout, kernel),
            g.cout,
        ),
    }
}

/// `dx` from `dz`: the forward product of `dz` with the kernel flipped in space and transposed
/// in channels.
pub fn input_grad(g: &Geometry, dz: &[f32], weight: &[f32], tile: Tile) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    let kernel =
        |ci: usize, co: usize| std::array::from_fn(|t| weight[(co * g.cin + ci) * 9 + 8 - t]);
    let dims = (g.batch, g.h, g.w);
    match tile {
        Tile::F2 => correlate::<ConstsF2, 2, 4>(
            dz,
            dims,
            g.cout,
            &pack_kernels(&F2, g.cout, g.cin, kernel),
            g.cin,
        ),
        Tile::F4 => correlate::<ConstsF4, 4, 6>(
            dz,
            dims,
            g.cout,
            &pack_kernels(&F4, g.cout, g.cin, kernel),
            g.cin,
        ),
    }
}

/// The weight gradient `[cout, cin, 3, 3]` from `x` and `dz`.
pub fn weight_grad(g: &Geometry, x: &[f32], dz: &[f32], tile: Tile) -> Vec<f32> {
    debug_assert!(g.is_winograd());
    match tile {
        Tile::F2 => weight_grad_with::<ConstsF2, 2, 4>(g, x, dz),
        Tile::F4 => weight_grad_with::<ConstsF4, 4, 6>(g, x, dz),
    }
}
