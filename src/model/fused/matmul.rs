//! The fused blocks' matrix products on both threads. burn-flex runs a product below 192³
//! multiply-adds on one thread (gemm's own threads only pay from there), so a dense block of
//! 128 × 128 at batch 128 ran its three products on one core while the other waited: in a
//! profile of mlp-res-20 one worker had 80 % of the samples, a third of them in gemm's kernel.
//! Here such a product is cut into two fixed halves of its output rows, each one gemm call, on
//! rayon's threads. Every value is the same dot product, summed in the same order, as the
//! single call computes it (gemm's blocking of the inner dimension does not depend on the rows:
//! `tests/fused.rs` compares the bits with burn-flex's product), and the halves are fixed, so the
//! result does not depend on the number of threads.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::DType;

/// From this many multiply-adds (about 100³) the split is used: at 128 × 64 × 64 (the
/// degradation experiment's width-64 blocks) the halves are about 10 µs each, no more than a
/// worker's wake-up, and the experiment ran no faster split (77–78 s either way).
const SPLIT_FROM: usize = 1 << 20;
/// burn-flex's own threshold: from here gemm splits the product over its threads itself.
const GEMM_THREADS_FROM: usize = 192 * 192 * 192;
/// The halves are cut at a multiple of gemm's AVX-512 register tile height (4 × 16 rows).
const ROW_ALIGN: usize = 64;

/// `a · b` of two 2-D `f32` tensors of any strides: `[m, k] · [k, n] → [m, n]`, contiguous.
/// Products between [`SPLIT_FROM`] and burn-flex's threshold with at least two row tiles run
/// in two halves of rows on rayon's threads; every other product is burn-flex's.
pub fn matmul(a: FlexTensor, b: FlexTensor) -> FlexTensor {
    let (sa, sb) = (a.layout().shape(), b.layout().shape());
    let two_d = sa.num_dims() == 2 && sb.num_dims() == 2;
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    let forward = |t: &FlexTensor| t.layout().strides().iter().all(|&s| s >= 0);
    if !two_d || !f32s || !forward(&a) || !forward(&b) {
        return Flex::float_matmul(a, b);
    }
    let (m, k, n) = (sa[0], sa[1], sb[1]);
    let ops = m.saturating_mul(k).saturating_mul(n);
    if !(SPLIT_FROM..GEMM_THREADS_FROM).contains(&ops) || m < 2 * ROW_ALIGN || sb[0] != k {
        return Flex::float_matmul(a, b);
    }
    let half = (m / 2).next_multiple_of(ROW_ALIGN).min(m);
    let mut out = vec![0f32; m * n];
    let (top, bottom) = out.split_at_mut(half * n);
    let (lhs, rhs) = (Operand::of(&a), Operand::of(&b));
    rayon::join(
        || product(top, lhs, rhs, (0, half), k, n),
        || product(bottom, lhs, rhs, (half, m), k, n),
    );
    super::flex_from(out, vec![m, n])
}

/// A matrix as gemm reads it: its values, the offset of its first element and its strides.
#[derive(Clone, Copy)]
struct Operand<'a> {
    values: &'a [f32],
    start: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Operand<'a> {
    fn of(t: &'a FlexTensor) -> Self {
        let strides = t.layout().strides();
        Self {
            values: t.storage::<f32>(),
            start: t.layout().start_offset(),
            row_stride: strides[0],
            col_stride: strides[1],
        }
    }
}

/// Rows `r0..r1` of `lhs · rhs` into `out` (`(r1 − r0) × n`, row-major), one gemm call on this
/// thread.
fn product(
    out: &mut [f32],
    lhs: Operand,
    rhs: Operand,
    (r0, r1): (usize, usize),
    k: usize,
    n: usize,
) {
    let rows = r1 - r0;
    assert!(out.len() == rows * n, "the output holds the rows");
    // The operands' extents: gemm reads lhs rows r0..r1 and every row of rhs.
    let last = |o: &Operand, r: usize, c: usize| {
        o.start as isize + (r as isize) * o.row_stride + (c as isize) * o.col_stride
    };
    assert!(
        rows > 0 && k > 0 && n > 0,
        "a product of empty matrices is burn-flex's"
    );
    assert!(
        last(&lhs, r1 - 1, k - 1) < lhs.values.len() as isize
            && last(&rhs, k - 1, n - 1) < rhs.values.len() as isize,
        "the operands hold the rows and columns read"
    );
    let lhs_at = last(&lhs, r0, 0);
    // SAFETY: every element gemm reads lies within the operands' buffers (checked above for the
    // last one; the strides are non-negative, checked in `matmul`), and it writes `rows × n`
    // values into `out` with row stride `n`.
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.values.as_ptr().offset(lhs_at),
            lhs.col_stride,
            lhs.row_stride,
            rhs.values.as_ptr().add(rhs.start),
            rhs.col_stride,
            rhs.row_stride,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
