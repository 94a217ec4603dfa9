//! Strict reading of the spec types: every type read from a file refuses fields it does not
//! know (`#[serde(deny_unknown_fields)]`), so a typo is an error instead of a silent default.
//!
//! serde's derive does not apply `deny_unknown_fields` to the unit variants of an internally
//! tagged enum (`{"type": "flatten", "extra": 1}` reads as `Flatten`); those variants take
//! `#[serde(deserialize_with = "no_fields")]`, which reads the rest of the object as a struct
//! without fields.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// Reads a unit variant's object (the tag already taken out) and refuses any field in it.
pub(super) fn no_fields<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    NoFields::deserialize(d).map(|_| ())
}
