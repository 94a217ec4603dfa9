//! What the kernel tests share: deterministic values, element-wise comparisons and layers
//! built from given values.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor, TensorData};
use reslab::model::conv::Geometry;

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

/// A `Conv2d` of geometry `g` with weights `w` (`[out, in, k, k]`) and an optional bias.
pub fn conv_layer(g: &Geometry, w: &[f32], bias: Option<&[f32]>, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([g.cin, g.cout], [g.k, g.k])
        .with_stride([g.stride; 2])
        .with_padding(PaddingConfig2d::Explicit(g.pad, g.pad, g.pad, g.pad))
        .with_bias(bias.is_some())
        .init(device);
    c.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(w.to_vec(), [g.cout, g.cin, g.k, g.k]),
        device,
    ));
    c.bias = bias.map(|b| Param::from_tensor(Tensor::from_floats(b, device)));
    c
}

/// `f` on a rayon pool of `threads` threads.
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(f)
}
