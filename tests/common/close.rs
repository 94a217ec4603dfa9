//! Deterministic test values and element-wise comparisons for the kernel tests.

use burn::tensor::Tensor;

/// A tensor's values.
pub fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5) - 1.0)
        .collect()
}

/// Asserts `|a − b| ≤ tol · max(|b|, 1e-3)` element by element (the scale is `b`'s largest
/// magnitude).
pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_close_at(
        a,
        b,
        tol,
        b.iter().fold(1e-3f32, |m, v| m.max(v.abs())),
        what,
    );
}

/// Asserts `|a − b| ≤ tol · scale` element by element.
pub fn assert_close_at(a: &[f32], b: &[f32], tol: f32, scale: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}
