//! Test-time distribution shifts for image sets: what a network trained on one distribution
//! meets at test time (Mu & Gilmer 2019's MNIST-C corruptions, Schneider et al. 2020). Each
//! shift has a strength and works on raw pixel values (`[0, 1]`, before the training
//! normalisation), images `[c, h, w]` one after another. Values are not clamped: an affine shift
//! stays affine.
//!
//! The kinds differ in what test-time normalisation can undo ([`ShiftClass`]): one affine map
//! of every image (brightness, a global contrast, a tint, inversion) is undone by statistics of
//! the shifted batch; a map that differs per image (contrast around each image's own mean, by
//! one amount for all or by its own for each) only by per-sample normalisation; noise and
//! geometric changes by neither.

pub use crate::spec::{Shift, ShiftClass, ShiftKind};

use crate::spec::Shape;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

impl Shift {
    /// Applies the shift to `n` images of `shape` in `x`, in place; `seed` drives the noises.
    /// A flat shape is one image of one channel, one row.
    pub fn apply(&self, x: &mut [f32], shape: Shape, seed: u64) {
        let (c, h, w) = match shape {
            Shape::Image(c, h, w) => (c, h, w),
            Shape::Flat(_) | Shape::Tokens(..) => (1, 1, shape.numel()),
        };
        let numel = c * h * w;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5_41F7);
        let s = self.strength;
        for img in x.chunks_exact_mut(numel.max(1)) {
            match self.kind {
                ShiftKind::Scale => img.iter_mut().for_each(|v| *v *= s),
                ShiftKind::Brightness => img.iter_mut().for_each(|v| *v += s),
                ShiftKind::Contrast => img.iter_mut().for_each(|v| *v = 0.5 + s * (*v - 0.5)),
                ShiftKind::ImageContrast => around_own_mean(img, s),
                ShiftKind::ImageGain => around_own_mean(img, image_gain(s, &mut rng)),
                ShiftKind::Tint => tint(img, c, s),
                ShiftKind::GaussianNoise => img
                    .iter_mut()
                    .for_each(|v| *v += s * crate::rng::normal(&mut rng)),
                ShiftKind::ImpulseNoise => impulse(img, c, h * w, s, &mut rng),
                ShiftKind::Invert => img
                    .iter_mut()
                    .for_each(|v| *v = (1.0 - s) * *v + s * (1.0 - *v)),
                ShiftKind::Translate => translate(img, (c, h, w), s.round() as isize),
                ShiftKind::Rotate => rotate(img, (c, h, w), s),
            }
        }
    }
}

/// `μ + gain·(x − μ)`, μ the image's own mean.
fn around_own_mean(img: &mut [f32], gain: f32) {
    let mean = img.iter().sum::<f32>() / img.len().max(1) as f32;
    img.iter_mut().for_each(|v| *v = mean + gain * (*v - mean));
}

/// A gain log-uniform between `s` and `1/s`.
fn image_gain(s: f32, rng: &mut ChaCha8Rng) -> f32 {
    let span = -s.max(f32::MIN_POSITIVE).ln();
    ((2.0 * rng.random::<f32>() - 1.0) * span).exp()
}

fn tint(img: &mut [f32], c: usize, s: f32) {
    let plane = img.len() / c.max(1);
    for (k, ch) in img.chunks_exact_mut(plane.max(1)).enumerate() {
        let d = if c == 1 {
            1.0
        } else {
            1.0 - 2.0 * k as f32 / (c - 1) as f32
        };
        ch.iter_mut().for_each(|v| *v *= 1.0 + s * d);
    }
}

fn impulse(img: &mut [f32], c: usize, plane: usize, s: f32, rng: &mut ChaCha8Rng) {
    for p in 0..plane {
        if rng.random::<f32>() < s {
            let v = if rng.random::<bool>() { 1.0 } else { 0.0 };
            for k in 0..c {
                img[k * plane + p] = v;
            }
        }
    }
}

/// The pixel of channel `k` at `(y, x)`, or the nearest edge pixel outside the image.
fn edge_clamped(src: &[f32], (h, w): (usize, usize), k: usize, y: isize, x: isize) -> f32 {
    let y = y.clamp(0, h as isize - 1) as usize;
    let x = x.clamp(0, w as isize - 1) as usize;
    src[(k * h + y) * w + x]
}

fn translate(img: &mut [f32], (c, h, w): (usize, usize, usize), by: isize) {
    let src = img.to_vec();
    for k in 0..c {
        for y in 0..h {
            for x in 0..w {
                img[(k * h + y) * w + x] =
                    edge_clamped(&src, (h, w), k, y as isize - by, x as isize - by);
            }
        }
    }
}

/// Rotation about the image centre: each output pixel samples the input at the inversely
/// rotated position, bilinear, the nearest edge pixel outside.
fn rotate(img: &mut [f32], (c, h, w): (usize, usize, usize), degrees: f32) {
    let src = img.to_vec();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let at = |k: usize, y: isize, x: isize| edge_clamped(&src, (h, w), k, y, x);
    for y in 0..h {
        for x in 0..w {
            // Counter-clockwise on screen (y down): the source is the output rotated back.
            let (dy, dx) = (y as f32 - cy, x as f32 - cx);
            let sx = cx + cos * dx - sin * dy;
            let sy = cy + sin * dx + cos * dy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            for k in 0..c {
                let v = at(k, y0, x0) * (1.0 - fx) * (1.0 - fy)
                    + at(k, y0, x0 + 1) * fx * (1.0 - fy)
                    + at(k, y0 + 1, x0) * (1.0 - fx) * fy
                    + at(k, y0 + 1, x0 + 1) * fx * fy;
                img[(k * h + y) * w + x] = v;
            }
        }
    }
}
