//! Shapes and what one layer does to them: the output shape, parameters and FLOPs of each op,
//! and the checks of the op's own fields.

use super::{MAX_KERNEL, MAX_WIDTH, SpecError, check_size};
use crate::spec::net::{InputShape, LayerOp, LayerSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The shape of one sample at some point of the network (batch axis left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// `[features]`
    Flat(usize),
    /// `[channels, height, width]`
    Image(usize, usize, usize),
}

impl Shape {
    /// Number of values per sample.
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Flat(d) => d,
            Shape::Image(c, h, w) => c * h * w,
        }
    }

    /// Channels (images) or features (flat vectors).
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Flat(d) => d,
            Shape::Image(c, _, _) => c,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Flat(d) => write!(f, "{d}"),
            Shape::Image(c, h, w) => write!(f, "{c}×{h}×{w}"),
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

/// The output shape, parameters and forward FLOPs per sample of one layer applied to a sample of
/// shape `shape` (without any skip it receives).
pub fn layer_output(layer: &LayerSpec, shape: Shape) -> Result<(Shape, u64, u64), SpecError> {
    let node = layer.name.as_str();
    if !layer.bias_std.is_finite() || layer.bias_std < 0.0 {
        return Err(SpecError::BadValue {
            node: node.to_string(),
            field: "bias_std",
            value: layer.bias_std as f64,
            reason: "must be a finite number ≥ 0",
        });
    }
    let flat = || match shape {
        Shape::Flat(d) => Ok(d),
        Shape::Image(..) => Err(wrong_input(
            layer,
            shape,
            "a flat",
            "; add a flatten or global average pool first",
        )),
    };
    let result: (Shape, u64, u64) = match &layer.op {
        LayerOp::Linear { out, bias } => {
            check_size(node, "out", *out, MAX_WIDTH)?;
            let d = flat()?;
            let p = (d * out) as u64 + if *bias { *out as u64 } else { 0 };
            (Shape::Flat(*out), p, 2 * (d * out) as u64)
        }
        LayerOp::Head { outputs } => {
            check_size(node, "outputs", *outputs, MAX_WIDTH)?;
            let d = flat()?;
            let p = (d * outputs + outputs) as u64;
            (Shape::Flat(*outputs), p, 2 * (d * outputs) as u64)
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => conv_output(layer, shape, [*out, *kernel, *stride, *padding], *bias)?,
        LayerOp::BatchNorm { momentum, epsilon } => {
            check_batch_norm(node, *momentum, *epsilon)?;
            (shape, 2 * shape.channels() as u64, 4 * shape.numel() as u64)
        }
        LayerOp::LayerNorm { epsilon } => {
            check_epsilon(node, *epsilon)?;
            (shape, 2 * shape.channels() as u64, 5 * shape.numel() as u64)
        }
        LayerOp::GroupNorm { groups, epsilon } => {
            check_epsilon(node, *epsilon)?;
            check_size(node, "groups", *groups, MAX_WIDTH)?;
            let channels = shape.channels();
            if !channels.is_multiple_of(*groups) {
                return Err(SpecError::GroupsDoNotDivide {
                    node: node.to_string(),
                    groups: *groups,
                    channels,
                });
            }
            (shape, 2 * channels as u64, 5 * shape.numel() as u64)
        }
        LayerOp::Activation { .. } => (shape, 0, shape.numel() as u64),
        LayerOp::GlobalAvgPool => {
            let Shape::Image(c, _, _) = shape else {
                let hint = "; pooling works on [c, h, w] inputs";
                return Err(wrong_input(layer, shape, "an image", hint));
            };
            (Shape::Flat(c), 0, shape.numel() as u64)
        }
        LayerOp::Flatten => (Shape::Flat(shape.numel()), 0, 0),
    };
    Ok(result)
}

/// The layer's op does not take an input of this shape.
fn wrong_input(
    layer: &LayerSpec,
    got: Shape,
    expected: &'static str,
    hint: &'static str,
) -> SpecError {
    SpecError::WrongInput {
        node: layer.name.clone(),
        op: layer.op_label(),
        expected,
        got,
        hint,
    }
}

/// A convolution's output shape, parameters and FLOPs; its sizes are checked first.
fn conv_output(
    layer: &LayerSpec,
    shape: Shape,
    [out, kernel, stride, padding]: [usize; 4],
    bias: bool,
) -> Result<(Shape, u64, u64), SpecError> {
    let node = layer.name.as_str();
    check_size(node, "out", out, MAX_WIDTH)?;
    check_size(node, "kernel", kernel, MAX_KERNEL)?;
    check_size(node, "stride", stride, MAX_KERNEL)?;
    if padding > MAX_KERNEL {
        return Err(SpecError::TooLarge {
            node: node.to_string(),
            field: "padding",
            value: padding,
            max: MAX_KERNEL,
        });
    }
    let Shape::Image(c, h, w) = shape else {
        let hint = "; convolutions work on [c, h, w] inputs";
        return Err(wrong_input(layer, shape, "an image", hint));
    };
    if h + 2 * padding < kernel || w + 2 * padding < kernel {
        return Err(SpecError::KernelTooLarge {
            node: node.to_string(),
            kernel,
            padding,
            got: shape,
        });
    }
    let ho = (h + 2 * padding - kernel) / stride + 1;
    let wo = (w + 2 * padding - kernel) / stride + 1;
    let p = (out * c * kernel * kernel) as u64 + if bias { out as u64 } else { 0 };
    let f = 2 * (c * kernel * kernel * out * ho * wo) as u64;
    Ok((Shape::Image(out, ho, wo), p, f))
}

/// A batch norm's momentum is in [0, 1] and its epsilon positive.
fn check_batch_norm(node: &str, momentum: f64, epsilon: f64) -> Result<(), SpecError> {
    if !(momentum.is_finite() && (0.0..=1.0).contains(&momentum)) {
        return Err(SpecError::BadValue {
            node: node.to_string(),
            field: "momentum",
            value: momentum,
            reason: "must be in [0, 1]",
        });
    }
    check_epsilon(node, epsilon)
}

/// A normalisation's ε: finite and positive.
fn check_epsilon(node: &str, epsilon: f64) -> Result<(), SpecError> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(SpecError::BadValue {
            node: node.to_string(),
            field: "epsilon",
            value: epsilon,
            reason: "must be a finite number > 0",
        });
    }
    Ok(())
}
