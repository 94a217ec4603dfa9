//! Coloured MNIST (after Arjovsky et al. 2019): the shipped MNIST-10k digits as 3-channel
//! images, each digit tinted with a shade from a palette on a dark background. A network
//! trained on red digits meets orange, green, blue, grey or inverted ones at test time: the
//! study note's "red roses". The colours are seeded per image, so a set is the same for a
//! seed.

use super::{RawData, Task};
use crate::spec::{Palette, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The dark background every palette but `inverted` draws on.
pub const BACKGROUND: [f32; 3] = [0.05, 0.05, 0.05];
/// How much a shade may differ from its palette's base colour, per channel.
const JITTER: f32 = 0.08;
/// The darkest a shade gets, as a fraction of the base colour.
const DARKEST: f32 = 0.6;

/// The base colour of a single-colour palette.
pub fn base_colour(p: Palette) -> [f32; 3] {
    match p {
        Palette::Red | Palette::Inverted => [1.0, 0.1, 0.1],
        Palette::Orange => [1.0, 0.55, 0.1],
        Palette::Green => [0.15, 0.9, 0.2],
        Palette::Blue => [0.2, 0.35, 1.0],
        Palette::Grey | Palette::All => [0.8, 0.8, 0.8],
    }
}

/// The palettes `All` draws from, one per image.
const MIXED: [Palette; 5] = [
    Palette::Red,
    Palette::Orange,
    Palette::Green,
    Palette::Blue,
    Palette::Grey,
];

/// One image's shade: the base colour darkened by a factor in [0.6, 1] and jittered.
fn shade(p: Palette, rng: &mut ChaCha8Rng) -> [f32; 3] {
    let p = if p == Palette::All {
        MIXED[rng.random_range(0..MIXED.len())]
    } else {
        p
    };
    let b = DARKEST + (1.0 - DARKEST) * rng.random::<f32>();
    base_colour(p).map(|c| (b * c + JITTER * (2.0 * rng.random::<f32>() - 1.0)).clamp(0.0, 1.0))
}

/// Tints grey digits (`[n, 1, h, w]`, values in [0, 1]) with `palette`: each pixel becomes
/// `v · shade + (1 − v) · background`, and for `inverted` then `1 − that`.
pub fn colourise(grey: RawData, palette: Palette, seed: u64) -> RawData {
    let Shape::Image(1, h, w) = grey.shape else {
        return grey;
    };
    let plane = h * w;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0_10_0E);
    let mut x = Vec::with_capacity(grey.len * 3 * plane);
    for img in grey.x.chunks_exact(plane) {
        let colour = shade(palette, &mut rng);
        for c in 0..3 {
            x.extend(img.iter().map(|&v| {
                let p = v * colour[c] + (1.0 - v) * BACKGROUND[c];
                if palette == Palette::Inverted {
                    1.0 - p
                } else {
                    p
                }
            }));
        }
    }
    RawData {
        x,
        y: grey.y,
        len: grey.len,
        shape: Shape::Image(3, h, w),
        task: Task::Classification { classes: 10 },
    }
}
