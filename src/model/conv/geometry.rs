//! The shape of one 2-D convolution over channels-last (NHWC) data, and the zero padding the
//! direct products read through.

/// A square-kernel 2-D convolution `[batch, h, w, cin] → [batch, oh, ow, cout]` (channels last)
/// with the same stride and zero padding on every side, as burn's `Conv2d` with
/// `PaddingConfig2d::Explicit(p, p, p, p)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Samples.
    pub batch: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (height and width).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geometry {
    /// The geometry of a convolution, or `None` when the kernel does not fit the padded input
    /// or a size is zero.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        h: usize,
        w: usize,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        if [batch, h, w, cin, cout, k, stride].contains(&0) || h + 2 * pad < k || w + 2 * pad < k {
            return None;
        }
        Some(Self {
            batch,
            h,
            w,
            cin,
            cout,
            k,
            stride,
            pad,
            oh: (h + 2 * pad - k) / stride + 1,
            ow: (w + 2 * pad - k) / stride + 1,
        })
    }

    /// Values of the input.
    pub fn input_len(&self) -> usize {
        self.batch * self.h * self.w * self.cin
    }

    /// Output pixels (rows of the product).
    pub fn out_pixels(&self) -> usize {
        self.batch * self.oh * self.ow
    }

    /// Values of the output.
    pub fn output_len(&self) -> usize {
        self.out_pixels() * self.cout
    }

    /// Whether the Winograd F(2×2, 3×3) products apply: a 3×3 kernel, stride 1, padding 1.
    pub fn is_winograd(&self) -> bool {
        self.k == 3 && self.stride == 1 && self.pad == 1
    }
}

/// `x` (`[batch, h, w, c]`) with `lo` zero rows and columns before and `hi` after each image.
/// Every value is written once (the zeros only where the padding is, not the whole buffer
/// first), the images in ranges on rayon's threads when large: a pure copy, the same on any
/// thread count.
pub fn pad_nhwc(
    x: &[f32],
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    lo: usize,
    hi: usize,
) -> Vec<f32> {
    use rayon::prelude::*;
    let (hp, wp) = (h + lo + hi, w + lo + hi);
    let (image, padded) = (h * w * c, hp * wp * c);
    assert!(
        x.len() >= batch * image,
        "pad_nhwc: {batch} images of {h}×{w}×{c}"
    );
    let mut out: Vec<f32> = Vec::with_capacity(batch * padded);
    let dst = &mut out.spare_capacity_mut()[..batch * padded];
    let pad_image = |b: usize, o: &mut [std::mem::MaybeUninit<f32>]| {
        let zero = std::mem::MaybeUninit::new(0f32);
        let (top, rest) = o.split_at_mut(lo * wp * c);
        let (mid, bottom) = rest.split_at_mut(h * wp * c);
        top.fill(zero);
        bottom.fill(zero);
        for (y, row) in mid.chunks_exact_mut(wp * c).enumerate() {
            let src = &x[b * image + y * w * c..][..w * c];
            let (left, rest) = row.split_at_mut(lo * c);
            let (inner, right) = rest.split_at_mut(w * c);
            left.fill(zero);
            right.fill(zero);
            for (d, &v) in inner.iter_mut().zip(src) {
                *d = std::mem::MaybeUninit::new(v);
            }
        }
    };
    // Large copies split over rayon's threads (whole images per range).
    if batch * padded >= 1 << 20 && batch > 1 {
        dst.par_chunks_mut(padded)
            .enumerate()
            .for_each(|(b, o)| pad_image(b, o));
    } else {
        for (b, o) in dst.chunks_exact_mut(padded).enumerate() {
            pad_image(b, o);
        }
    }
    // SAFETY: `pad_image` wrote every value of every image's `padded` values.
    unsafe { out.set_len(batch * padded) };
    out
}
