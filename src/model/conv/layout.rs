//! Channels-last (NHWC) buffers behind burn's `[batch, channels, height, width]` image tensors.
//!
//! The fused blocks keep activations channels-last across layers: a block's output is an NHWC
//! buffer that burn sees through a permuted view (`[b, c, h, w]` with strides
//! `[h·w·c, 1, w·c, c]`, no copy), so every burn operation still reads it correctly, and the next
//! block reads the buffer as it is. Only tensors that arrive in another layout (the network's
//! input, a shortcut built by burn's ops) are converted, once.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{DType, Shape};
use std::borrow::Cow;

/// `[b, c, h, w]` of an image tensor.
pub fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Whether `t` (`[b, c, h, w]`) is a dense channels-last buffer seen through a permuted view;
/// returns the buffer's start offset. Strides of dimensions of size 1 do not matter.
fn channels_last_start(t: &FlexTensor) -> Option<usize> {
    let layout = t.layout();
    let [b, c, h, w] = dims4(t);
    let expect = [h * w * c, 1, w * c, c];
    let dims = [b, c, h, w];
    let strides = layout.strides();
    let matches = (0..4).all(|i| dims[i] == 1 || strides[i] == expect[i] as isize);
    matches.then(|| layout.start_offset())
}

/// The values of an image tensor in channels-last order: borrowed from a channels-last
/// buffer, copied (one transposing pass) from any other layout.
///
/// A contiguous `[b, c, h, w]` tensor (the network's input; a gradient that burn summed from two
/// channels-last ones, which it writes in logical order) goes through [`nchw_to_nhwc`]; other
/// layouts through burn's own copy.
pub fn nhwc_values(t: &FlexTensor) -> Cow<'_, [f32]> {
    let n = t.layout().num_elements();
    if let Some(start) = channels_last_start(t) {
        return Cow::Borrowed(&t.storage::<f32>()[start..start + n]);
    }
    if let Some((start, end)) = t.layout().contiguous_offsets() {
        let [b, c, h, w] = dims4(t);
        return Cow::Owned(nchw_to_nhwc(&t.storage::<f32>()[start..end], b, c, h * w));
    }
    let permuted = t.permute(&[0, 2, 3, 1]).to_contiguous();
    Cow::Owned(
        permuted
            .as_slice::<f32>()
            .expect("the fused kernels take f32 tensors")
            .to_vec(),
    )
}

/// `x`'s channels-last values (what [`nhwc_values`] returned for it) kept as a flat tensor for a
/// backward pass: a view of `x`'s buffer when it already was channels last, else the copy.
pub fn nhwc_kept(x: &FlexTensor, values: Cow<'_, [f32]>) -> FlexTensor {
    match values {
        Cow::Borrowed(_) => flat_view(x),
        Cow::Owned(v) => {
            let len = v.len();
            crate::model::fused::flex_from(v, vec![len])
        }
    }
}

/// `[b, c, s]` values transposed to `[b, s, c]`, in blocks of 16 channels × 64 positions: each
/// block reads 16 runs of consecutive positions and writes 64 runs of 16 consecutive channels,
/// so both sides move whole cache lines. Large inputs are transposed image by image on rayon's
/// threads (a pure copy: the same on any thread count).
pub fn nchw_to_nhwc(src: &[f32], b: usize, c: usize, s: usize) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(
        src.len(),
        b * c * s,
        "nchw_to_nhwc: {} values for [{b}, {c}, {s}]",
        src.len()
    );
    let mut out = vec![0f32; src.len()];
    if c * s == 0 {
        return out;
    }
    if src.len() >= 1 << 18 && b > 1 {
        src.par_chunks_exact(c * s)
            .zip(out.par_chunks_exact_mut(c * s))
            .for_each(|(img, dst)| transpose_image(img, dst, c, s));
    } else {
        for (img, dst) in src.chunks_exact(c * s).zip(out.chunks_exact_mut(c * s)) {
            transpose_image(img, dst, c, s);
        }
    }
    out
}

/// One image of [`nchw_to_nhwc`]: `[c, s]` into `[s, c]`.
fn transpose_image(img: &[f32], dst: &mut [f32], c: usize, s: usize) {
    for p0 in (0..s).step_by(64) {
        let p1 = (p0 + 64).min(s);
        for c0 in (0..c).step_by(16) {
            let c1 = (c0 + 16).min(c);
            for p in p0..p1 {
                let row = &mut dst[p * c + c0..p * c + c1];
                for (k, v) in row.iter_mut().enumerate() {
                    *v = img[(c0 + k) * s + p];
                }
            }
        }
    }
}

/// A channels-last buffer `[b, h, w, c]` as an image tensor `[b, c, h, w]` (a view, no copy).
pub fn image_view(values: Vec<f32>, [b, h, w, c]: [usize; 4]) -> FlexTensor {
    let t = super::super::fused::flex_from(values, vec![b, h, w, c]);
    t.permute(&[0, 3, 1, 2])
}

/// All values of a channels-last image tensor (as [`image_view`] makes them), flat in memory
/// order, sharing its buffer.
pub fn flat_view(t: &FlexTensor) -> FlexTensor {
    let n = t.layout().num_elements();
    match channels_last_start(t) {
        Some(start) => FlexTensor::from_arc(
            t.data_arc(),
            Layout::new(Shape::from(vec![n]), vec![1], start),
            DType::F32,
        ),
        None => t.reshape(Shape::from(vec![n])),
    }
}
