//! The shape of one sample at some point of the network; what each op does to it is
//! `spec/op.rs`.

use crate::spec::net::InputShape;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of one sample at some point of the network (batch axis left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// `[features]`
    Flat(usize),
    /// `[channels, height, width]`
    Image(usize, usize, usize),
    /// `[tokens, dim]`: a sequence of `tokens` vectors of `dim` features each.
    Tokens(usize, usize),
}

impl Shape {
    /// Number of values per sample.
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Flat(d) => d,
            Shape::Image(c, h, w) => c * h * w,
            Shape::Tokens(n, d) => n * d,
        }
    }

    /// Channels (images) or features (flat vectors, each token of a sequence).
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Flat(d) | Shape::Tokens(_, d) => d,
            Shape::Image(c, _, _) => c,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Flat(d) => write!(f, "{d}"),
            Shape::Image(c, h, w) => write!(f, "{c}×{h}×{w}"),
            Shape::Tokens(n, d) => write!(f, "{n} tokens × {d}"),
        }
    }
}

impl From<InputShape> for Shape {
    fn from(s: InputShape) -> Self {
        match s {
            InputShape::Flat { features } => Shape::Flat(features),
            InputShape::Image {
                channels,
                height,
                width,
            } => Shape::Image(channels, height, width),
        }
    }
}
