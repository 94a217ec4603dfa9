//! An activation between layers, of whichever rank the layer produced: flat vectors, token
//! sequences or images. Code that does the same to every rank goes through [`each!`] and
//! [`map_act!`] (or the helpers here) instead of matching on the rank.

use super::probe::{layer_stats, sum_sq};
use burn::tensor::{Device, Tensor};

/// An activation between layers (the batch axis first).
#[derive(Clone, Debug)]
pub enum Act {
    /// `[batch, features]`
    Flat(Tensor<2>),
    /// `[batch, tokens, dim]`
    Tokens(Tensor<3>),
    /// `[batch, channels, height, width]`
    Image(Tensor<4>),
}

/// Evaluates `$e` with `$t` bound to the activation's tensor, whatever its rank.
macro_rules! each {
    ($act:expr, $t:ident => $e:expr) => {
        match $act {
            $crate::model::Act::Flat($t) => $e,
            $crate::model::Act::Tokens($t) => $e,
            $crate::model::Act::Image($t) => $e,
        }
    };
}

/// An activation of the same rank, its tensor `$e` computed from `$t`.
macro_rules! map_act {
    ($act:expr, $t:ident => $e:expr) => {
        match $act {
            $crate::model::Act::Flat($t) => $crate::model::Act::Flat($e),
            $crate::model::Act::Tokens($t) => $crate::model::Act::Tokens($e),
            $crate::model::Act::Image($t) => $crate::model::Act::Image($e),
        }
    };
}

pub(crate) use map_act;

/// What validation guarantees: an op receives the rank it takes.
const RANK: &str = "validation guarantees the op's input rank";

impl Act {
    /// Values in the whole batch.
    pub fn numel(&self) -> usize {
        each!(self, t => t.shape().num_elements())
    }

    /// The device the tensor lives on.
    pub fn device(&self) -> Device {
        each!(self, t => t.device())
    }

    /// The axis of channels (images) or features (flat vectors, tokens).
    pub fn channel_axis(&self) -> usize {
        match self {
            Act::Flat(_) | Act::Image(_) => 1,
            Act::Tokens(_) => 2,
        }
    }

    /// Samples in the batch.
    pub fn batch(&self) -> usize {
        each!(self, t => t.dims()[0])
    }

    /// `[mean, std, min, max, frac ≤ 0, hist[32]]` over every value, on the device.
    pub(crate) fn stats(&self) -> Tensor<1> {
        each!(self, t => layer_stats(t.clone()))
    }

    /// The values, flattened, without autodiff.
    pub(crate) fn flat_inner(&self) -> Tensor<1> {
        let n = self.numel();
        each!(self, t => t.clone().inner().reshape([n]))
    }

    /// `[Σ x²]`.
    pub(crate) fn sum_sq(&self) -> Tensor<1> {
        each!(self, t => sum_sq(t.clone()))
    }

    /// The element-wise sum of two activations of one shape.
    pub(crate) fn add(self, other: Act) -> Act {
        match (self, other) {
            (Act::Flat(a), Act::Flat(b)) => Act::Flat(a + b),
            (Act::Tokens(a), Act::Tokens(b)) => Act::Tokens(a + b),
            (Act::Image(a), Act::Image(b)) => Act::Image(a + b),
            _ => unreachable!("validation guarantees matching ranks"),
        }
    }

    /// Every value times `s`.
    pub(crate) fn mul_scalar(self, s: f32) -> Act {
        map_act!(self, t => t.mul_scalar(s))
    }

    /// Every value times the one-element tensor `alpha` (a learnable branch scale).
    pub(crate) fn mul_alpha(self, alpha: Tensor<1>) -> Act {
        map_act!(self, t => t * alpha.unsqueeze())
    }

    /// The same activation with an op on feature rows applied: a flat batch is its rows, a
    /// token batch `[b, n, d]` one row per token (`[b·n, d]`), shaped back afterwards.
    pub(crate) fn map_rows(self, f: impl FnOnce(Tensor<2>) -> Tensor<2>) -> Act {
        match self {
            Act::Flat(t) => Act::Flat(f(t)),
            Act::Tokens(t) => {
                let [b, n, d] = t.dims();
                let y = f(t.reshape([b * n, d]));
                let out = y.dims()[1];
                Act::Tokens(y.reshape([b, n, out]))
            }
            Act::Image(_) => unreachable!("{RANK}"),
        }
    }

    /// The flat tensor.
    pub(crate) fn into_flat(self) -> Tensor<2> {
        match self {
            Act::Flat(t) => t,
            _ => unreachable!("{RANK}"),
        }
    }

    /// The token tensor.
    pub(crate) fn into_tokens(self) -> Tensor<3> {
        match self {
            Act::Tokens(t) => t,
            _ => unreachable!("{RANK}"),
        }
    }

    /// The image tensor.
    pub(crate) fn into_image(self) -> Tensor<4> {
        match self {
            Act::Image(t) => t,
            _ => unreachable!("{RANK}"),
        }
    }

    /// `[batch, values]`: every sample's values in one row.
    pub(crate) fn flatten(self) -> Tensor<2> {
        let b = self.batch();
        let per = self.numel() / b.max(1);
        each!(self, t => t.reshape([b, per]))
    }

    /// Flat probe values as a `[1, n]` activation: what the recorder takes.
    pub(crate) fn probe_values(t: Tensor<1>) -> Act {
        let n = t.dims()[0];
        Act::Flat(t.reshape([1, n]))
    }
}
