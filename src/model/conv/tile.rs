//! The two register-tile kernels every convolution product here runs on, and their drivers.
//!
//! - [`gather_product`] computes `out[m][j] = Σ_t Σ_c src[at(m) + tap_t + c] · w[t][c][j]` for
//!   output rows `m` (pixels or Winograd tiles) whose inputs start anywhere in `src` (an
//!   "indirect" product: the row offsets replace an im2col copy). A tile is `MR` rows × 16
//!   output channels, accumulated in registers.
//! - [`reduce_product`] computes `out[t][c][j] = Σ_m src[at(m) + tap_t + c] · g[m][j]`, the
//!   weight-gradient form: the reduction runs over the rows, and a tile is `MR` input channels ×
//!   16 output channels.
//!
//! Both take the row offsets from a closure, check every offset against the buffers before
//! running a tile (so a geometry bug panics instead of reading out of bounds), and dispatch on
//! [`Isa`] to a copy compiled for AVX-512, AVX2 or portable code.

#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Isa, Portable, Simd};
use crate::model::norm_act::PARTS;
use rayon::prelude::*;

/// Output channels per tile (and the width weights are packed in).
pub const BLOCK: usize = 16;

/// Weights packed for [`gather_product`]: per block of [`BLOCK`] output channels, `taps × cin`
/// rows of `BLOCK` values (zero beyond the last channel).
#[derive(Clone, Debug)]
pub struct Packed {
    /// `blocks × taps × cin × BLOCK` values.
    pub data: Vec<f32>,
    /// Taps per output channel.
    pub taps: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
}

impl Packed {
    /// Packs `w(t, c, j)` (tap, input channel, output channel) for `taps × cin → cout`.
    pub fn new(
        taps: usize,
        cin: usize,
        cout: usize,
        w: impl Fn(usize, usize, usize) -> f32,
    ) -> Self {
        let blocks = cout.div_ceil(BLOCK);
        let mut data = vec![0f32; blocks * taps * cin * BLOCK];
        for (b, block) in data.chunks_exact_mut(taps * cin * BLOCK).enumerate() {
            let mut rows = block.chunks_exact_mut(BLOCK);
            for t in 0..taps {
                for c in 0..cin {
                    let row = rows.next().expect("taps × cin rows per block");
                    let width = BLOCK.min(cout - b * BLOCK);
                    for (jj, v) in row[..width].iter_mut().enumerate() {
                        *v = w(t, c, b * BLOCK + jj);
                    }
                }
            }
        }
        Self {
            data,
            taps,
            cin,
            cout,
        }
    }

    fn block(&self, b: usize) -> &[f32] {
        let n = self.taps * self.cin * BLOCK;
        &self.data[b * n..(b + 1) * n]
    }
}

/// Where the rows of a product read and write: `rows` rows, row `m` reading `src` from
/// `src_at(m)` (plus each tap) and writing `dst` from `dst_at(m)` (`cout` values).
pub struct Rows<F, G> {
    /// Number of rows.
    pub rows: usize,
    /// Offset in `src` of row `m`'s input (tap 0, channel 0).
    pub src_at: F,
    /// Offset in `dst` of row `m`'s output (channel 0).
    pub dst_at: G,
}

/// `dst[..width] = src[..width]` (or `+=`), as fixed-size moves when `width` is a whole block
/// (a variable-length copy becomes a `memcpy` call per row).
#[inline(always)]
fn put(dst: &mut [f32], src: &[f32], width: usize, accumulate: bool) {
    if width == BLOCK {
        let d: &mut [f32; BLOCK] = (&mut dst[..BLOCK]).try_into().expect("a block");
        let s: &[f32; BLOCK] = src[..BLOCK].try_into().expect("a block");
        if accumulate {
            for (d, s) in d.iter_mut().zip(s) {
                *d += s;
            }
        } else {
            *d = *s;
        }
    } else if accumulate {
        for (d, s) in dst[..width].iter_mut().zip(&src[..width]) {
            *d += s;
        }
    } else {
        dst[..width].copy_from_slice(&src[..width]);
    }
}

/// Rows per register tile of [`gather_product`] for an instruction set.
fn gather_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 12,
        Isa::Avx2 => 6,
        Isa::Portable => 4,
    }
}

/// Multiply-adds from which a product runs in [`PARTS`] fixed ranges on rayon's threads (the
/// Winograd products' per-position calls, already inside parallel ranges, stay below it).
const PAR_WORK: usize = 1 << 22;

/// Up to `parts` contiguous ranges `(start, end)` of whole blocks of `unit` items covering
/// `0..n`, as even as the blocks allow: the same for any thread count.
pub(super) fn ranges(n: usize, unit: usize, parts: usize) -> Vec<(usize, usize)> {
    let blocks = n.div_ceil(unit.max(1));
    let parts = parts.clamp(1, blocks.max(1));
    (0..parts)
        .map(|p| {
            let (b0, b1) = (blocks * p / parts, blocks * (p + 1) / parts);
            (b0 * unit, (b1 * unit).min(n))
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// Where the ranges of one parallel product write: `len` floats at `ptr`. It may be
/// uninitialised (the Winograd output image, which the output transform covers completely):
/// writes there go through raw pointers only, never through a slice; [`gather_product`] makes
/// slices only of its own initialised `dst`.
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub(super) ptr: *mut f32,
    pub(super) len: usize,
}

// SAFETY: an `Out` is handed to the threads of one product, each of which writes only its own
// positions (disjoint rows, or the output blocks of disjoint tile ranges), and the buffer
// outlives the product (the parallel loop returns before it is used).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// The whole of `v`.
    pub(super) fn of(v: &mut [f32]) -> Self {
        Self {
            ptr: v.as_mut_ptr(),
            len: v.len(),
        }
    }
}

/// `dst[dst_at(m) + j] (+)= Σ_t Σ_c src[src_at(m) + taps[t] + c] · w[t][c][j]` for every row `m`
/// and output channel `j < w.cout`; `accumulate` adds to `dst` instead of overwriting it.
/// Distinct rows must write distinct values (`dst_at(m) .. dst_at(m) + cout` disjoint): large
/// products run in row ranges on rayon's threads, and each row's sum is the same whichever
/// range or thread computes it. (This module is private to `conv` for that contract: its
/// callers, `direct` and `winograd`, map distinct rows to distinct pixels or tile positions.)
///
/// # Panics
/// If a row's reads or writes fall outside `src` or `dst`, or `taps.len() != w.taps`.
pub fn gather_product<F, G>(
    src: &[f32],
    taps: &[usize],
    w: &Packed,
    rows: &Rows<F, G>,
    dst: &mut [f32],
    accumulate: bool,
) where
    F: Fn(usize) -> usize + Sync,
    G: Fn(usize) -> usize + Sync,
{
    gather_to(src, taps, w, rows, (Out::of(dst), accumulate));
}

/// [`gather_product`] into a new buffer of `len` values that the rows cover completely (row
/// `m` writes `dst_at(m) .. dst_at(m) + cout`, and together the rows write every value): the
/// output is written once, never zero-filled first.
///
/// # Panics
/// If `rows.rows · w.cout != len` (the rows cannot cover it), or as [`gather_product`].
pub fn gather_new<F, G>(
    src: &[f32],
    taps: &[usize],
    w: &Packed,
    rows: &Rows<F, G>,
    len: usize,
) -> Vec<f32>
where
    F: Fn(usize) -> usize + Sync,
    G: Fn(usize) -> usize + Sync,
{
    assert_eq!(rows.rows * w.cout, len, "the rows cover the output");
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let dst = Out {
        ptr: out.as_mut_ptr(),
        len,
    };
    gather_to(src, taps, w, rows, (dst, false));
    // SAFETY: the rows write every one of the `len` values (their `cout`-wide outputs are
    // disjoint, as `gather_product` requires, and `rows · cout = len` of them), through raw
    // pointers only.
    unsafe { out.set_len(len) };
    out
}

/// [`gather_product`]'s body over an output that may be uninitialised when not accumulating
/// (writes go through raw pointers only): the caller sets a buffer's length once the products
/// it runs this way have written every value.
///
/// # Panics
/// As [`gather_product`].
pub(super) fn gather_to<F, G>(
    src: &[f32],
    taps: &[usize],
    w: &Packed,
    rows: &Rows<F, G>,
    (out, accumulate): (Out, bool),
) where
    F: Fn(usize) -> usize + Sync,
    G: Fn(usize) -> usize + Sync,
{
    assert_eq!(taps.len(), w.taps, "one packed weight row set per tap");
    let work = rows.rows * taps.len() * w.cin * w.cout;
    if work < PAR_WORK {
        gather_range(src, taps, w, rows, (out, accumulate), (0, rows.rows));
        return;
    }
    let mr = gather_rows(Isa::detect());
    ranges(rows.rows, mr, PARTS)
        .into_par_iter()
        .for_each(|range| {
            gather_range(src, taps, w, rows, (out, accumulate), range);
        });
}

/// [`gather_product`] over rows `start..end`.
fn gather_range<F, G>(
    src: &[f32],
    taps: &[usize],
    w: &Packed,
    rows: &Rows<F, G>,
    (dst, accumulate): (Out, bool),
    (start, end): (usize, usize),
) where
    F: Fn(usize) -> usize,
    G: Fn(usize) -> usize,
{
    let isa = Isa::detect();
    let mr = gather_rows(isa);
    let reach = taps.iter().max().copied().unwrap_or(0) + w.cin;
    let mut scratch = vec![0f32; mr * BLOCK];
    let mut offs = vec![0usize; mr];
    let mut outs = vec![std::ptr::null_mut::<f32>(); mr];
    let mut m0 = start;
    while m0 < end {
        let n = mr.min(end - m0);
        for (p, o) in offs.iter_mut().enumerate() {
            // Rows past the end repeat the last one, so the tile reads only valid memory.
            *o = (rows.src_at)(m0 + p.min(n - 1));
            assert!(*o + reach <= src.len(), "convolution read out of bounds");
        }
        for b in 0..w.cout.div_ceil(BLOCK) {
            let wb = w.block(b);
            let j0 = b * BLOCK;
            let width = BLOCK.min(w.cout - j0);
            // A whole tile of whole blocks is stored in place; anything else goes through
            // `scratch` (the rows past the end, a partial block, accumulation).
            let direct = n == mr && width == BLOCK && !accumulate;
            for (p, out) in outs.iter_mut().enumerate() {
                *out = if direct {
                    let at = (rows.dst_at)(m0 + p) + j0;
                    assert!(at + BLOCK <= dst.len, "convolution write out of bounds");
                    // SAFETY: in bounds (checked).
                    unsafe { dst.ptr.add(at) }
                } else {
                    // SAFETY: `scratch` holds `mr` rows of `BLOCK`.
                    unsafe { scratch.as_mut_ptr().add(p * BLOCK) }
                };
            }
            // SAFETY: every offset plus the largest tap plus `cin` is within `src` (checked
            // above), `wb` holds `taps × cin × BLOCK` values, and every output pointer is valid
            // for `BLOCK` values.
            unsafe { gather_tile(isa, src, &offs, taps, w.cin, wb, &outs) };
            if !direct {
                for p in 0..n {
                    let at = (rows.dst_at)(m0 + p) + j0;
                    assert!(at + width <= dst.len, "convolution write out of bounds");
                    let from = &scratch[p * BLOCK..][..width];
                    if accumulate {
                        // SAFETY: in bounds (checked); this row's values are this range's
                        // alone, and initialised (an accumulating output always is).
                        let d = unsafe { std::slice::from_raw_parts_mut(dst.ptr.add(at), width) };
                        put(d, from, width, true);
                    } else {
                        // SAFETY: in bounds (checked), this range's alone; written through a raw
                        // pointer, as the output may be uninitialised (`gather_new`).
                        unsafe {
                            std::ptr::copy_nonoverlapping(from.as_ptr(), dst.ptr.add(at), width)
                        };
                    }
                }
            }
        }
        m0 += n;
    }
}

/// One tile of [`gather_product`] on the chosen instruction set.
///
/// # Safety
/// `offs[p] + taps[t] + cin <= src.len()` for all `p`, `t`; `w.len() >= taps.len() · cin ·
/// BLOCK`; each `out[p]` valid for `BLOCK` values; `offs.len() == out.len()` is
/// [`gather_rows`]`(isa)`.
unsafe fn gather_tile(
    isa: Isa,
    src: &[f32],
    offs: &[usize],
    taps: &[usize],
    cin: usize,
    w: &[f32],
    out: &[*mut f32],
) {
    let (s, wp, o) = (src.as_ptr(), w.as_ptr(), out);
    // SAFETY: the caller's bounds; each target-feature copy runs only where `isa` was detected.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => gather_avx512(s, offs, taps, cin, wp, o),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => gather_avx2(s, offs, taps, cin, wp, o),
            _ => gather_generic::<Portable, 4, 2>(s, offs, taps, cin, wp, o),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_avx512(
    s: *const f32,
    offs: &[usize],
    taps: &[usize],
    cin: usize,
    w: *const f32,
    o: &[*mut f32],
) {
    unsafe { gather_generic::<Avx512, 12, 1>(s, offs, taps, cin, w, o) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_avx2(
    s: *const f32,
    offs: &[usize],
    taps: &[usize],
    cin: usize,
    w: *const f32,
    o: &[*mut f32],
) {
    unsafe { gather_generic::<Avx2, 6, 2>(s, offs, taps, cin, w, o) }
}

/// `MR` rows × `NV` vectors (`NV · LANES = BLOCK`) of `Σ_t Σ_c src[offs[p] + taps[t] + c] ·
/// w[t][c][:]`, accumulated in registers and stored to `out[p]`.
#[inline(always)]
unsafe fn gather_generic<S: Simd, const MR: usize, const NV: usize>(
    src: *const f32,
    offs: &[usize],
    taps: &[usize],
    cin: usize,
    w: *const f32,
    out: &[*mut f32],
) {
    debug_assert_eq!(NV * S::LANES, BLOCK);
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        let mut wp = w;
        for &t in taps {
            let xs: [*const f32; MR] = std::array::from_fn(|p| src.add(offs[p] + t));
            for c in 0..cin {
                let wv: [S::V; NV] = std::array::from_fn(|v| S::load(wp.add(v * S::LANES)));
                for p in 0..MR {
                    let x = S::splat(xs[p].add(c));
                    for v in 0..NV {
                        acc[p][v] = S::fma(x, wv[v], acc[p][v]);
                    }
                }
                wp = wp.add(BLOCK);
            }
        }
        for (p, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                S::store(out[p].add(v * S::LANES), a);
            }
        }
    }
}

/// Input channels per register tile of [`reduce_product`] for an instruction set.
fn reduce_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 6,
        Isa::Portable => 4,
    }
}

/// Rows per chunk of [`reduce_product`]: the gradient rows of a chunk stay in L1 while every
/// tap and input channel block runs over them.
const REDUCE_CHUNK: usize = 256;

/// The row blocks of [`reduce_product`]: `(offsets of the block's rows from a row's input,
/// index of the block's first output row, rows to keep)`. With at least a tile's worth of
/// channels, a block is consecutive channels of one tap (the last one of a tap shifted back so
/// that it ends at the last channel, keeping only its new rows); with fewer, blocks run across
/// taps (the stem's 3 channels × 9 taps make two blocks instead of nine mostly empty ones).
fn reduce_blocks(taps: &[usize], cin: usize, mr: usize) -> Vec<(Vec<usize>, usize, usize)> {
    let mut blocks = Vec::new();
    if cin >= mr {
        for (t, &tap) in taps.iter().enumerate() {
            for c0 in (0..cin).step_by(mr) {
                let start = c0.min(cin - mr);
                let offs = (0..mr).map(|r| tap + start + r).collect();
                blocks.push((offs, t * cin + start, cin.min(c0 + mr) - c0));
            }
        }
    } else {
        let rows: Vec<usize> = taps
            .iter()
            .flat_map(|&tap| (0..cin).map(move |c| tap + c))
            .collect();
        for r0 in (0..rows.len()).step_by(mr) {
            let last = rows.len().min(r0 + mr) - 1;
            // Rows past the end repeat the last one: valid reads, not kept.
            let offs = (0..mr).map(|r| rows[(r0 + r).min(last)]).collect();
            blocks.push((offs, r0, last + 1 - r0));
        }
    }
    blocks
}

/// `out[r][j] += Σ_m src[src_at(m) + taps[t] + c] · g[dst_at(m) + j]` for the rows
/// `r = t · cin + c` (tap `t`, input channel `c < cin`) and output channels `j < cout`; `out` is
/// `taps × cin × cout` in f64 (each chunk of [`REDUCE_CHUNK`] rows is summed in f32 registers
/// and then added in f64 in chunk order, so long reductions keep their precision). Here `dst_at`
/// locates row `m`'s gradient in `g`. Large products compute the chunks' f32 sums on rayon's
/// threads, a group at a time, and add them in chunk order: the same result for any thread
/// count, and the same as one thread's.
///
/// # Panics
/// If a row's reads fall outside `src` or `g`, or `out` is too short.
#[allow(clippy::too_many_arguments)]
pub fn reduce_product<F, G>(
    src: &[f32],
    taps: &[usize],
    cin: usize,
    g: &[f32],
    cout: usize,
    rows: &Rows<F, G>,
    out: &mut [f64],
) where
    F: Fn(usize) -> usize + Sync,
    G: Fn(usize) -> usize + Sync,
{
    let len = taps.len() * cin * cout;
    assert!(out.len() >= len);
    let r = Reduce::new(taps, cin, cout);
    let chunks = rows.rows.div_ceil(REDUCE_CHUNK);
    if rows.rows * len < PAR_WORK || chunks < 2 {
        let mut scratch = r.buffers();
        for k in 0..chunks {
            r.chunk(src, g, rows, k, &mut scratch, |at, v| {
                for (o, &v) in out[at..at + v.len()].iter_mut().zip(v) {
                    *o += v as f64;
                }
            });
        }
        return;
    }
    // Groups of chunks bound the memory of the f32 sums waiting to be added.
    let group = (PAR_GROUP_VALUES / len).clamp(PARTS, chunks);
    for g0 in (0..chunks).step_by(group) {
        let sums: Vec<Vec<f32>> = (g0..chunks.min(g0 + group))
            .into_par_iter()
            .map_init(
                || r.buffers(),
                |scratch, k| {
                    let mut sum = vec![0f32; len];
                    r.chunk(src, g, rows, k, scratch, |at, v| {
                        sum[at..at + v.len()].copy_from_slice(v)
                    });
                    sum
                },
            )
            .collect();
        // Each output value adds the chunks' sums in chunk order; the values split into ranges
        // on rayon's threads (the order per value is the same).
        out[..len]
            .par_chunks_mut(ADD_RANGE)
            .enumerate()
            .for_each(|(k, o)| {
                let at = k * ADD_RANGE;
                for sum in &sums {
                    for (o, &v) in o.iter_mut().zip(&sum[at..]) {
                        *o += v as f64;
                    }
                }
            });
    }
}

/// Output values per range of [`reduce_product`]'s parallel f64 additions.
const ADD_RANGE: usize = 1 << 11;

/// f32 values of chunk sums [`reduce_product`] keeps at once in its parallel path.
const PAR_GROUP_VALUES: usize = 1 << 21;

/// The shape of one [`reduce_product`]: its row blocks and widths.
struct Reduce {
    isa: Isa,
    mr: usize,
    reach: usize,
    cin: usize,
    cout: usize,
    row_blocks: Vec<(Vec<usize>, usize, usize)>,
}

/// One chunk's working buffers: the gradient rows `BLOCK`-padded, the rows' input offsets and a
/// tile's results.
struct ReduceBuffers {
    gbuf: Vec<f32>,
    src_offs: Vec<usize>,
    scratch: Vec<f32>,
}

impl Reduce {
    fn new(taps: &[usize], cin: usize, cout: usize) -> Self {
        let isa = Isa::detect();
        let mr = reduce_rows(isa);
        Self {
            isa,
            mr,
            reach: taps.iter().max().copied().unwrap_or(0) + cin,
            cin,
            cout,
            row_blocks: reduce_blocks(taps, cin, mr),
        }
    }

    fn buffers(&self) -> ReduceBuffers {
        ReduceBuffers {
            gbuf: vec![0f32; REDUCE_CHUNK * self.cout.div_ceil(BLOCK) * BLOCK],
            src_offs: vec![0usize; REDUCE_CHUNK],
            scratch: vec![0f32; self.mr * BLOCK],
        }
    }

    /// The f32 sums of chunk `k` (rows `k · REDUCE_CHUNK ..`), each value handed to the sink
    /// once: `sink(at, values)` for the consecutive outputs from `at`.
    fn chunk<F, G>(
        &self,
        src: &[f32],
        g: &[f32],
        rows: &Rows<F, G>,
        k: usize,
        buf: &mut ReduceBuffers,
        mut sink: impl FnMut(usize, &[f32]),
    ) where
        F: Fn(usize) -> usize,
        G: Fn(usize) -> usize,
    {
        let (mr, cin, cout) = (self.mr, self.cin, self.cout);
        let blocks = cout.div_ceil(BLOCK);
        let m0 = k * REDUCE_CHUNK;
        let n = REDUCE_CHUNK.min(rows.rows - m0);
        for p in 0..n {
            buf.src_offs[p] = (rows.src_at)(m0 + p);
            assert!(
                buf.src_offs[p] + self.reach <= src.len(),
                "convolution read out of bounds"
            );
            let at = (rows.dst_at)(m0 + p);
            let row = &g[at..at + cout];
            for b in 0..blocks {
                let w = BLOCK.min(cout - b * BLOCK);
                put(
                    &mut buf.gbuf[(b * REDUCE_CHUNK + p) * BLOCK..],
                    &row[b * BLOCK..],
                    w,
                    false,
                );
            }
        }
        for (row_offs, first, keep) in &self.row_blocks {
            let skip = mr - keep.min(&mr);
            // A shifted last block keeps its trailing rows; a block across taps its leading
            // rows.
            let kept = if cin >= mr { skip..mr } else { 0..*keep };
            for b in 0..blocks {
                let gb = &buf.gbuf[b * REDUCE_CHUNK * BLOCK..(b * REDUCE_CHUNK + n) * BLOCK];
                // SAFETY: every `src_offs[p] + row_offs[r] < src.len()` (each row offset is a
                // tap plus a channel below `cin`, checked through `reach`), `gb` holds `n` rows
                // of `BLOCK`, `scratch` `mr × BLOCK`.
                unsafe {
                    reduce_tile(
                        self.isa,
                        src,
                        &buf.src_offs[..n],
                        row_offs,
                        gb,
                        &mut buf.scratch,
                    )
                };
                let j0 = b * BLOCK;
                let width = BLOCK.min(cout - j0);
                for r in kept.clone() {
                    sink((first + r) * cout + j0, &buf.scratch[r * BLOCK..][..width]);
                }
            }
        }
    }
}

/// One tile of [`reduce_product`] on the chosen instruction set: rows at `row_offs` (consecutive
/// ones take the faster kernel).
///
/// # Safety
/// `offs[p] + row_offs[r] < src.len()` for all `p`, `r`; `row_offs.len()` is
/// [`reduce_rows`]`(isa)`; `g.len() >= offs.len() · BLOCK`; `out.len() >= row_offs.len() · BLOCK`.
unsafe fn reduce_tile(
    isa: Isa,
    src: &[f32],
    offs: &[usize],
    row_offs: &[usize],
    g: &[f32],
    out: &mut [f32],
) {
    let (gp, o) = (g.as_ptr(), out.as_mut_ptr());
    let consecutive = row_offs.windows(2).all(|w| w[1] == w[0] + 1);
    // SAFETY: the caller's bounds; each target-feature copy runs only where `isa` was detected.
    unsafe {
        let s = src.as_ptr();
        if consecutive {
            let s = s.add(row_offs[0]);
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => reduce_avx512(s, offs, gp, o),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => reduce_avx2(s, offs, gp, o),
                _ => reduce_generic::<Portable, 4, 2>(s, offs, |r| r, gp, o),
            }
        } else {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => reduce_gathered_avx512(s, offs, row_offs, gp, o),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => reduce_gathered_avx2(s, offs, row_offs, gp, o),
                _ => reduce_generic::<Portable, 4, 2>(s, offs, |r| row_offs[r], gp, o),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_avx512(s: *const f32, offs: &[usize], g: *const f32, o: *mut f32) {
    unsafe { reduce_generic::<Avx512, 16, 1>(s, offs, |r| r, g, o) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn reduce_avx2(s: *const f32, offs: &[usize], g: *const f32, o: *mut f32) {
    unsafe { reduce_generic::<Avx2, 6, 2>(s, offs, |r| r, g, o) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_gathered_avx512(
    s: *const f32,
    offs: &[usize],
    rows: &[usize],
    g: *const f32,
    o: *mut f32,
) {
    unsafe { reduce_generic::<Avx512, 16, 1>(s, offs, |r| rows[r], g, o) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn reduce_gathered_avx2(
    s: *const f32,
    offs: &[usize],
    rows: &[usize],
    g: *const f32,
    o: *mut f32,
) {
    unsafe { reduce_generic::<Avx2, 6, 2>(s, offs, |r| rows[r], g, o) }
}

/// `MR` rows × `NV` vectors of `Σ_p src[offs[p] + row(r)] · g[p][:]`, stored to `out` (row
/// stride `BLOCK`).
#[inline(always)]
unsafe fn reduce_generic<S: Simd, const MR: usize, const NV: usize>(
    src: *const f32,
    offs: &[usize],
    row: impl Fn(usize) -> usize,
    g: *const f32,
    out: *mut f32,
) {
    debug_assert_eq!(NV * S::LANES, BLOCK);
    unsafe {
        let rows: [usize; MR] = std::array::from_fn(&row);
        let mut acc = [[S::zero(); NV]; MR];
        for (p, &o) in offs.iter().enumerate() {
            let gv: [S::V; NV] = std::array::from_fn(|v| S::load(g.add(p * BLOCK + v * S::LANES)));
            let xp = src.add(o);
            for (r, row) in acc.iter_mut().enumerate() {
                let x = S::splat(xp.add(rows[r]));
                for v in 0..NV {
                    row[v] = S::fma(x, gv[v], row[v]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                S::store(out.add(r * BLOCK + v * S::LANES), a);
            }
        }
    }
}
