//! Synthetic datasets, generated from a seed with a portable ChaCha8 generator.

use super::{DataError, RawData, Targets, Task};
use crate::spec::{DataSource, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

pub use crate::spec::MAX_SAMPLES;

use crate::rng::normal;

fn bad(field: &'static str, value: impl ToString, reason: &'static str) -> DataError {
    DataError::BadParameter {
        field,
        value: value.to_string(),
        reason,
    }
}

fn check_common(samples: usize, noise: f32) -> Result<(), DataError> {
    if !(4..=MAX_SAMPLES).contains(&samples) {
        return Err(bad("samples", samples, "must be in 4..=1,000,000"));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(bad("noise", noise, "must be a finite number ≥ 0"));
    }
    Ok(())
}

fn two_d(x: Vec<f32>, y: Vec<u32>, classes: usize) -> RawData {
    RawData {
        len: y.len(),
        x,
        y: Targets::Classes(y),
        shape: Shape::Flat(2),
        task: Task::Classification { classes },
    }
}

/// Generates a synthetic source; other sources are a caller error.
pub(crate) fn generate(source: &DataSource, seed: u64) -> Result<RawData, DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rng = &mut rng;
    match *source {
        DataSource::Spirals {
            samples,
            classes,
            noise,
        } => spirals(rng, samples, classes, noise),
        DataSource::Circles { samples, noise } => circles(rng, samples, noise),
        DataSource::Moons { samples, noise } => moons(rng, samples, noise),
        DataSource::Xor { samples, noise } => xor(rng, samples, noise),
        DataSource::Checkerboard {
            samples,
            tiles,
            noise,
        } => checkerboard(rng, samples, tiles, noise),
        DataSource::Gaussians {
            samples,
            classes,
            dim,
            spread,
        } => gaussians(rng, samples, classes, dim, spread),
        DataSource::Regression1d { samples, noise } => regression(rng, samples, noise),
        DataSource::Mnist10k
        | DataSource::ColouredMnist { .. }
        | DataSource::MnistDir { .. }
        | DataSource::FashionDir { .. }
        | DataSource::Cifar10Dir { .. } => {
            Err(bad("source", "file-based", "not a synthetic source"))
        }
    }
}

/// `classes` interleaved spiral arms in the plane.
fn spirals(
    rng: &mut ChaCha8Rng,
    samples: usize,
    classes: usize,
    noise: f32,
) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    if !(2..=16).contains(&classes) {
        return Err(bad("classes", classes, "spirals have 2 to 16 arms"));
    }
    let mut x = Vec::with_capacity(samples * 2);
    let mut y = Vec::with_capacity(samples);
    for i in 0..samples {
        let k = i % classes;
        let t: f32 = rng.random::<f32>();
        let r = 0.05 + 0.95 * t;
        let theta = 2.0 * PI * k as f32 / classes as f32 + 3.5 * t;
        x.push(r * theta.cos() + noise * normal(rng));
        x.push(r * theta.sin() + noise * normal(rng));
        y.push(k as u32);
    }
    Ok(two_d(x, y, classes))
}

/// Two concentric circles (radius 1 and 0.5).
fn circles(rng: &mut ChaCha8Rng, samples: usize, noise: f32) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    let mut x = Vec::with_capacity(samples * 2);
    let mut y = Vec::with_capacity(samples);
    for i in 0..samples {
        let k = i % 2;
        let r = if k == 0 { 1.0 } else { 0.5 };
        let a = 2.0 * PI * rng.random::<f32>();
        x.push(r * a.cos() + noise * normal(rng));
        x.push(r * a.sin() + noise * normal(rng));
        y.push(k as u32);
    }
    Ok(two_d(x, y, 2))
}

/// Two interleaved half moons.
fn moons(rng: &mut ChaCha8Rng, samples: usize, noise: f32) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    let mut x = Vec::with_capacity(samples * 2);
    let mut y = Vec::with_capacity(samples);
    for i in 0..samples {
        let k = i % 2;
        let a = PI * rng.random::<f32>();
        let (px, py) = if k == 0 {
            (a.cos(), a.sin())
        } else {
            (1.0 - a.cos(), 0.5 - a.sin())
        };
        x.push(px + noise * normal(rng));
        x.push(py + noise * normal(rng));
        y.push(k as u32);
    }
    Ok(two_d(x, y, 2))
}

/// Points in [-1, 1]², labelled by the sign of the product of their coordinates.
fn xor(rng: &mut ChaCha8Rng, samples: usize, noise: f32) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    let mut x = Vec::with_capacity(samples * 2);
    let mut y = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = rng.random_range(-1.0f32..1.0);
        let b = rng.random_range(-1.0f32..1.0);
        y.push(u32::from(a * b > 0.0));
        x.push(a + noise * normal(rng));
        x.push(b + noise * normal(rng));
    }
    Ok(two_d(x, y, 2))
}

/// Points in [-1, 1]², labelled by the colour of their tile on a `tiles`×`tiles` board.
fn checkerboard(
    rng: &mut ChaCha8Rng,
    samples: usize,
    tiles: usize,
    noise: f32,
) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    if !(1..=32).contains(&tiles) {
        return Err(bad("tiles", tiles, "must be in 1..=32"));
    }
    let mut x = Vec::with_capacity(samples * 2);
    let mut y = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = rng.random_range(-1.0f32..1.0);
        let b = rng.random_range(-1.0f32..1.0);
        let ta = (((a + 1.0) / 2.0 * tiles as f32) as usize).min(tiles - 1);
        let tb = (((b + 1.0) / 2.0 * tiles as f32) as usize).min(tiles - 1);
        y.push(((ta + tb) % 2) as u32);
        x.push(a + noise * normal(rng));
        x.push(b + noise * normal(rng));
    }
    Ok(two_d(x, y, 2))
}

/// `classes` unit Gaussians in `dim` dimensions around centres drawn with std `spread`.
fn gaussians(
    rng: &mut ChaCha8Rng,
    samples: usize,
    classes: usize,
    dim: usize,
    spread: f32,
) -> Result<RawData, DataError> {
    check_common(samples, 0.0)?;
    if !(2..=1000).contains(&classes) {
        return Err(bad("classes", classes, "must be in 2..=1000"));
    }
    if !(1..=4096).contains(&dim) {
        return Err(bad("dim", dim, "must be in 1..=4096"));
    }
    if (samples as u64).saturating_mul(dim as u64) > crate::spec::MAX_DATASET_VALUES {
        return Err(bad(
            "samples",
            format!("{samples} × {dim} dimensions"),
            "samples × dim must be at most 268,435,456 values (1 GiB)",
        ));
    }
    if !(spread.is_finite() && spread > 0.0) {
        return Err(bad("spread", spread, "must be a finite number > 0"));
    }
    let centres: Vec<f32> = (0..classes * dim).map(|_| spread * normal(rng)).collect();
    let mut x = Vec::with_capacity(samples * dim);
    let mut y = Vec::with_capacity(samples);
    for i in 0..samples {
        let k = i % classes;
        for d in 0..dim {
            x.push(centres[k * dim + d] + normal(rng));
        }
        y.push(k as u32);
    }
    Ok(RawData {
        len: samples,
        x,
        y: Targets::Classes(y),
        shape: Shape::Flat(dim),
        task: Task::Classification { classes },
    })
}

/// A 1-D regression: `sin(3a) + 0.3a` plus noise on [-2, 2].
fn regression(rng: &mut ChaCha8Rng, samples: usize, noise: f32) -> Result<RawData, DataError> {
    check_common(samples, noise)?;
    let mut x = Vec::with_capacity(samples);
    let mut y = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = rng.random_range(-2.0f32..2.0);
        x.push(a);
        y.push((3.0 * a).sin() + 0.3 * a + noise * normal(rng));
    }
    Ok(RawData {
        len: samples,
        x,
        y: Targets::Values(y),
        shape: Shape::Flat(1),
        task: Task::Regression { outputs: 1 },
    })
}
