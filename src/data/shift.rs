//! Test-time distribution shifts for image sets: what a network trained on one distribution
//! meets at test time (Mu & Gilmer 2019's MNIST-C corruptions, Schneider et al. 2020). Each
//! shift has a strength and works on raw pixel values (`[0, 1]`, before the training
//! normalisation), images `[c, h, w]` one after another. Values are not clamped: an affine shift
//! stays affine.
//!
//! The kinds differ in what test-time normalisation can undo ([`ShiftClass`]): one affine map
//! of every image (brightness, a global contrast, a tint, inversion) is undone by statistics of
//! the shifted batch; a map that differs per image (contrast around each image's own mean) only
//! by per-sample normalisation; noise and geometric changes by neither.

use crate::spec::Shape;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A kind of shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftKind {
    /// `x + s`.
    Brightness,
    /// `0.5 + s·(x − 0.5)`: one contrast change for every image.
    Contrast,
    /// `μ + s·(x − μ)` with μ each image's own mean: lifts a dark background unevenly.
    ImageContrast,
    /// Channel `k` of `c` scaled by `1 + s·(1 − 2k/(c − 1))` (warmer for s > 0; one channel:
    /// `1 + s`).
    Tint,
    /// `x + N(0, s²)` per value, seeded.
    GaussianNoise,
    /// A fraction `s` of the pixels (all channels) set to 0 or 1 at random, seeded.
    ImpulseNoise,
    /// `(1 − s)·x + s·(1 − x)`: s = 1 inverts.
    Invert,
    /// Moved `round(s)` pixels right and down, zeros coming in.
    Translate,
    /// Rotated by `s` degrees (counter-clockwise) about the centre, bilinear, zeros outside.
    Rotate,
}

/// What kind of change a shift is, for the question of what test-time normalisation undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftClass {
    /// One affine map (per channel) for every image: batch statistics can undo it.
    GlobalAffine,
    /// An affine map that differs per image: per-sample normalisation can undo it.
    PerImageAffine,
    /// Random noise.
    Noise,
    /// Pixels move.
    Geometric,
}

impl ShiftKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [ShiftKind; 9] = [
        ShiftKind::Brightness,
        ShiftKind::Contrast,
        ShiftKind::ImageContrast,
        ShiftKind::Tint,
        ShiftKind::GaussianNoise,
        ShiftKind::ImpulseNoise,
        ShiftKind::Invert,
        ShiftKind::Translate,
        ShiftKind::Rotate,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ShiftKind::Brightness => "brightness",
            ShiftKind::Contrast => "contrast",
            ShiftKind::ImageContrast => "image-contrast",
            ShiftKind::Tint => "tint",
            ShiftKind::GaussianNoise => "noise",
            ShiftKind::ImpulseNoise => "impulse",
            ShiftKind::Invert => "invert",
            ShiftKind::Translate => "translate",
            ShiftKind::Rotate => "rotate",
        }
    }

    /// What kind of change it is.
    pub fn class(self) -> ShiftClass {
        match self {
            ShiftKind::Brightness | ShiftKind::Contrast | ShiftKind::Tint | ShiftKind::Invert => {
                ShiftClass::GlobalAffine
            }
            ShiftKind::ImageContrast => ShiftClass::PerImageAffine,
            ShiftKind::GaussianNoise | ShiftKind::ImpulseNoise => ShiftClass::Noise,
            ShiftKind::Translate | ShiftKind::Rotate => ShiftClass::Geometric,
        }
    }
}

/// A shift and its strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// Which.
    pub kind: ShiftKind,
    /// How much (see [`ShiftKind`]).
    pub strength: f32,
}

impl Shift {
    /// Parses `KIND:STRENGTH`, e.g. `brightness:0.3`, `rotate:15`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Shift, String> {
        let names = || {
            ShiftKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("\"{text}\": a shift is KIND:STRENGTH, e.g. brightness:0.3"))?;
        let kind = ShiftKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown shift \"{name}\"; shifts: {}", names()))?;
        let strength: f32 = value
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .ok_or_else(|| format!("{name}: strength \"{value}\" is not a finite number"))?;
        let bounded = |lo: f32, hi: f32| {
            if (lo..=hi).contains(&strength) {
                Ok(())
            } else {
                Err(format!(
                    "{name}: strength {strength} is outside [{lo}, {hi}]"
                ))
            }
        };
        match kind {
            ShiftKind::ImpulseNoise | ShiftKind::Invert => bounded(0.0, 1.0)?,
            ShiftKind::GaussianNoise => bounded(0.0, 10.0)?,
            ShiftKind::Translate => bounded(-64.0, 64.0)?,
            ShiftKind::Rotate => bounded(-360.0, 360.0)?,
            _ => bounded(-10.0, 10.0)?,
        }
        Ok(Shift { kind, strength })
    }

    /// Applies the shift to `n` images of `shape` in `x`, in place; `seed` drives the noises.
    /// A flat shape is one image of one channel, one row.
    pub fn apply(&self, x: &mut [f32], shape: Shape, seed: u64) {
        let (c, h, w) = match shape {
            Shape::Image(c, h, w) => (c, h, w),
            Shape::Flat(d) => (1, 1, d),
        };
        let numel = c * h * w;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5_41F7);
        let s = self.strength;
        for img in x.chunks_exact_mut(numel.max(1)) {
            match self.kind {
                ShiftKind::Brightness => img.iter_mut().for_each(|v| *v += s),
                ShiftKind::Contrast => img.iter_mut().for_each(|v| *v = 0.5 + s * (*v - 0.5)),
                ShiftKind::ImageContrast => {
                    let mean = img.iter().sum::<f32>() / numel as f32;
                    img.iter_mut().for_each(|v| *v = mean + s * (*v - mean));
                }
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

fn translate(img: &mut [f32], (c, h, w): (usize, usize, usize), by: isize) {
    let src = img.to_vec();
    for k in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = (y as isize - by, x as isize - by);
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                img[(k * h + y) * w + x] = if inside {
                    src[(k * h + sy as usize) * w + sx as usize]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Rotation about the image centre: each output pixel samples the input at the inversely
/// rotated position, bilinear, zero outside.
fn rotate(img: &mut [f32], (c, h, w): (usize, usize, usize), degrees: f32) {
    let src = img.to_vec();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
    let at = |k: usize, y: isize, x: isize| -> f32 {
        if (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
            src[(k * h + y as usize) * w + x as usize]
        } else {
            0.0
        }
    };
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
