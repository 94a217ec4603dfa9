//! JSON has no NaN or infinity, and serde_json writes them as `null`, which it cannot read back
//! as a number. Recorded values can legitimately be NaN (the accuracy of a regression run, the
//! update ratio of an all-zero tensor) or infinite (a diverging run), so every `f32` the history
//! stores goes through these helpers: NaN ↔ `null`, ±∞ ↔ ±1e39 (beyond `f32::MAX`, so it reads
//! back as ±∞).

use serde::{Deserialize, Deserializer, Serializer};

fn encode(v: f32) -> Option<f64> {
    if v.is_nan() {
        None
    } else if v.is_infinite() {
        Some(if v > 0.0 { 1e39 } else { -1e39 })
    } else {
        Some(v as f64)
    }
}

fn decode(v: Option<f64>) -> f32 {
    match v {
        None => f32::NAN,
        Some(x) => x as f32,
    }
}

/// For a single `f32` field.
pub mod one {
    use super::*;

    /// Writes NaN as `null` and ±∞ as ±1e39.
    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        match encode(*v) {
            None => s.serialize_none(),
            Some(x) => s.serialize_f64(x),
        }
    }

    /// Reads `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(decode(Option::<f64>::deserialize(d)?))
    }
}

/// For a `Vec<f32>` field.
pub mod vec {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Writes NaN as `null` and ±∞ as ±1e39.
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&encode(*x))?;
        }
        seq.end()
    }

    /// Reads `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(decode)
            .collect())
    }
}
