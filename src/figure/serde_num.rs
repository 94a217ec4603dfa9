//! Serde for numbers in JSON, which has no NaN or infinity: NaN is written as `null`, ±∞ as the
//! strings `"inf"` / `"-inf"`, and read back.

/// Serde for an `f64` that may be NaN (`null`) or infinite (`"inf"`, `"-inf"`).
pub mod num {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    pub(super) enum Repr {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub(super) fn encode(v: f64) -> Repr {
        if v.is_nan() {
            Repr::Null(())
        } else if v.is_infinite() {
            Repr::Text(if v > 0.0 { "inf" } else { "-inf" }.into())
        } else {
            Repr::Number(v)
        }
    }

    pub(super) fn decode<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
        match r {
            Repr::Number(x) => Ok(x),
            Repr::Null(()) => Ok(f64::NAN),
            Repr::Text(t) if t == "inf" => Ok(f64::INFINITY),
            Repr::Text(t) if t == "-inf" => Ok(f64::NEG_INFINITY),
            Repr::Text(t) => Err(E::custom(format!("\"{t}\" is not a number"))),
        }
    }

    /// Writes NaN as `null`, ±∞ as `"inf"` / `"-inf"`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        encode(*v).serialize(s)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        decode(Repr::deserialize(d)?)
    }
}

/// Serde for a list of numbers (see [`num`]).
pub mod num_vec {
    use super::num::{Repr, decode, encode};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes each number as [`num`] does.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|&x| encode(x))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(decode)
            .collect()
    }
}

/// Serde for a list of `[x, y]` pairs (see [`num`]).
pub mod num_pairs {
    use super::num::{Repr, decode, encode};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes each number as [`num`] does.
    pub fn serialize<S: Serializer>(v: &[[f64; 2]], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|p| [encode(p[0]), encode(p[1])])
            .collect::<Vec<_>>()
            .serialize(s)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[f64; 2]>, D::Error> {
        Vec::<[Repr; 2]>::deserialize(d)?
            .into_iter()
            .map(|[a, b]| Ok([decode(a)?, decode(b)?]))
            .collect()
    }
}
