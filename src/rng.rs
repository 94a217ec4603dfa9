//! Seeded random numbers shared by the data generators, the initialisation and the benchmark.
//! ChaCha8 is value-stable across `rand_chacha` releases, so a seed means the same data and the
//! same network in every reslab build and on every backend.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A standard normal sample by the Box–Muller transform (`u1` in (0, 1], so `ln` is finite).
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = 1.0 - rng.random::<f32>();
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}
