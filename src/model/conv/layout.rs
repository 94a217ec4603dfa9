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
pub fn nhwc_values(t: &FlexTensor) -> Cow<'_, [f32]> {
    let n = t.layout().num_elements();
    if let Some(start) = channels_last_start(t) {
        return Cow::Borrowed(&t.storage::<f32>()[start..start + n]);
    }
    let permuted = t.permute(&[0, 2, 3, 1]).to_contiguous();
    Cow::Owned(
        permuted
            .as_slice::<f32>()
            .expect("the fused kernels take f32 tensors")
            .to_vec(),
    )
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
