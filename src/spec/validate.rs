//! Validation with shape inference, parameter counts and FLOPs.

use super::net::{INPUT_NODE, InputShape, LayerOp, LayerSpec, NetSpec, Shortcut};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use thiserror::Error;

/// The largest total parameter count a network may have.
pub const MAX_PARAMETERS: u64 = 50_000_000;
/// The largest width (features or channels) of any layer or input.
pub const MAX_WIDTH: usize = 65_536;
/// The largest spatial size (height or width) of an input image.
pub const MAX_SPATIAL: usize = 4_096;
/// The largest convolution kernel.
pub const MAX_KERNEL: usize = 31;
/// The largest number of layers.
pub const MAX_LAYERS: usize = 10_000;
/// The longest layer name, in bytes (names end up in every history series and CSV row).
pub const MAX_NAME_LEN: usize = 200;

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

/// Why a [`NetSpec`] is not a valid network. Every variant names the node it is about.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum SpecError {
    /// The network has no layer.
    #[error("the network is empty: add at least one layer")]
    Empty,
    /// More layers than `MAX_LAYERS` (10,000).
    #[error("the network has {count} layers; at most {MAX_LAYERS} are allowed")]
    TooManyLayers {
        /// Number of layers.
        count: usize,
    },
    /// A layer without a name.
    #[error("layer #{index} has an empty name")]
    EmptyName {
        /// Position in the chain.
        index: usize,
    },
    /// A layer named `input`.
    #[error("layer #{index} is named \"input\", which is reserved for the network input")]
    ReservedName {
        /// Position in the chain.
        index: usize,
    },
    /// Two layers with one name.
    #[error("two layers are named \"{name}\" (#{first} and #{second}); names must be unique")]
    DuplicateName {
        /// The name.
        name: String,
        /// First position.
        first: usize,
        /// Second position.
        second: usize,
    },
    /// A size that must be positive is zero.
    #[error("{node}: {field} must be at least 1")]
    ZeroSize {
        /// The node (or `input`).
        node: String,
        /// The field.
        field: &'static str,
    },
    /// A size beyond the lab's limits.
    #[error("{node}: {field} = {value} is too large (at most {max})")]
    TooLarge {
        /// The node (or `input`).
        node: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// A numeric field that is out of its range.
    #[error("{node}: {field} = {value} is invalid ({reason})")]
    BadValue {
        /// The node.
        node: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What is expected.
        reason: &'static str,
    },
    /// An op applied to a tensor of the wrong kind, e.g. a Linear on an image.
    #[error("{node}: {op} needs {expected} input but gets {got}{hint}")]
    WrongInput {
        /// The node.
        node: String,
        /// The op.
        op: String,
        /// What it needs.
        expected: &'static str,
        /// The shape it gets.
        got: Shape,
        /// A suggestion, starting with "; ".
        hint: &'static str,
    },
    /// A convolution whose output would be empty.
    #[error(
        "{node}: a {kernel}×{kernel} kernel with padding {padding} does not fit the {got} input"
    )]
    KernelTooLarge {
        /// The node.
        node: String,
        /// Kernel size.
        kernel: usize,
        /// Padding.
        padding: usize,
        /// The input shape.
        got: Shape,
    },
    /// The network output is not a flat vector.
    #[error(
        "{node}: the network must end with a flat output (add a pooling or flatten layer and a head); it ends with {got}"
    )]
    OutputNotFlat {
        /// The last node.
        node: String,
        /// Its shape.
        got: Shape,
    },
    /// More parameters than [`MAX_PARAMETERS`].
    #[error(
        "the network has {total} parameters, more than the lab's limit of {MAX_PARAMETERS}; the largest layer is {largest} ({largest_params})"
    )]
    TooManyParameters {
        /// Total parameters.
        total: u64,
        /// The layer with the most parameters.
        largest: String,
        /// Its parameters.
        largest_params: u64,
    },
    /// A skip endpoint that names no node.
    #[error("skip #{index}: there is no node named \"{name}\"")]
    UnknownSkipNode {
        /// Skip position.
        index: usize,
        /// The unknown name.
        name: String,
    },
    /// A skip from a node to itself.
    #[error("skip #{index}: an edge from \"{node}\" onto itself")]
    SkipOntoItself {
        /// Skip position.
        index: usize,
        /// The node.
        node: String,
    },
    /// A skip that goes backward.
    #[error(
        "skip #{index}: the edge from \"{from}\" to \"{to}\" goes backward; a skip must go to a later node"
    )]
    SkipBackward {
        /// Skip position.
        index: usize,
        /// Source.
        from: String,
        /// Target.
        to: String,
    },
    /// Two skips into one node.
    #[error("skip #{index}: \"{to}\" already receives a skip (#{other}); one skip per target node")]
    DuplicateSkipTarget {
        /// Skip position.
        index: usize,
        /// Target node.
        to: String,
        /// The other skip.
        other: usize,
    },
    /// Shapes differ and the shortcut cannot bridge them.
    #[error(
        "skip #{index} into \"{to}\": {from} has shape {from_shape} but {to} has {to_shape}; {reason}"
    )]
    SkipShapeMismatch {
        /// Skip position.
        index: usize,
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// Source shape.
        from_shape: Shape,
        /// Target shape.
        to_shape: Shape,
        /// Why and what to do.
        reason: &'static str,
    },
    /// A branch scale that is not finite.
    #[error("skip #{index} into \"{to}\": the branch scale α = {value} is not a finite number")]
    BadScale {
        /// Skip position.
        index: usize,
        /// Target.
        to: String,
        /// The value.
        value: f32,
    },
}

/// Per-layer facts inferred from a valid spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Stable name.
    pub name: String,
    /// Output shape of one sample, after any skip that adds into it.
    pub output: Shape,
    /// Trainable parameters of the node itself.
    pub params: u64,
    /// Forward FLOPs per sample (a multiply-add counts as 2), including the skip it receives.
    pub flops: u64,
    /// Index of the skip that adds into this node, if any.
    pub skip_in: Option<usize>,
}

/// Per-skip facts inferred from a valid spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkipInfo {
    /// Index of the source layer, `None` for the network input.
    pub from: Option<usize>,
    /// Index of the target layer.
    pub to: usize,
    /// Shape of the source.
    pub from_shape: Shape,
    /// Shape of the target.
    pub to_shape: Shape,
    /// Spatial stride the shortcut applies (1 for flat tensors).
    pub stride: usize,
    /// Trainable parameters of the shortcut (projection, its BN, a learnable α).
    pub params: u64,
    /// Forward FLOPs per sample of the shortcut and the add.
    pub flops: u64,
}

/// A spec that passed validation, with inferred shapes, parameter counts and FLOPs.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    /// The spec itself.
    pub spec: NetSpec,
    /// Shape of the input.
    pub input: Shape,
    /// One entry per layer.
    pub layers: Vec<LayerInfo>,
    /// One entry per skip, in spec order.
    pub skips: Vec<SkipInfo>,
}

impl ValidSpec {
    /// Total trainable parameters.
    pub fn total_params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum::<u64>()
            + self.skips.iter().map(|s| s.params).sum::<u64>()
    }

    /// Total forward FLOPs per sample.
    pub fn total_flops(&self) -> u64 {
        self.layers.iter().map(|l| l.flops).sum()
    }

    /// Output width of the network.
    pub fn output_features(&self) -> usize {
        self.layers.last().map(|l| l.output.numel()).unwrap_or(0)
    }
}

fn check_size(node: &str, field: &'static str, value: usize, max: usize) -> Result<(), SpecError> {
    if value == 0 {
        return Err(SpecError::ZeroSize {
            node: node.to_string(),
            field,
        });
    }
    if value > max {
        return Err(SpecError::TooLarge {
            node: node.to_string(),
            field,
            value,
            max,
        });
    }
    Ok(())
}

/// Validates a spec and infers shapes, parameters and FLOPs.
pub fn validate(spec: &NetSpec) -> Result<ValidSpec, SpecError> {
    if spec.layers.is_empty() {
        return Err(SpecError::Empty);
    }
    if spec.layers.len() > MAX_LAYERS {
        return Err(SpecError::TooManyLayers {
            count: spec.layers.len(),
        });
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        if layer.name.trim().is_empty() {
            return Err(SpecError::EmptyName { index: i });
        }
        if layer.name.len() > MAX_NAME_LEN {
            return Err(SpecError::TooLarge {
                node: format!("layer #{i}"),
                field: "name length",
                value: layer.name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if layer.name == INPUT_NODE {
            return Err(SpecError::ReservedName { index: i });
        }
        if let Some(&first) = names.get(layer.name.as_str()) {
            return Err(SpecError::DuplicateName {
                name: layer.name.clone(),
                first,
                second: i,
            });
        }
        names.insert(&layer.name, i);
    }

    let input: Shape = spec.input.into();
    match input {
        Shape::Flat(d) => check_size(INPUT_NODE, "features", d, MAX_WIDTH)?,
        Shape::Image(c, h, w) => {
            check_size(INPUT_NODE, "channels", c, MAX_WIDTH)?;
            check_size(INPUT_NODE, "height", h, MAX_SPATIAL)?;
            check_size(INPUT_NODE, "width", w, MAX_SPATIAL)?;
        }
    }

    // Resolve skips first so that the shape pass can apply them in order.
    let mut skip_into: Vec<Option<usize>> = vec![None; spec.layers.len()];
    let mut resolved: Vec<(Option<usize>, usize)> = Vec::with_capacity(spec.skips.len());
    for k in 0..spec.skips.len() {
        let (from, to) =
            resolve_skip(spec, k, |name| names.get(name).copied(), |to| skip_into[to])?;
        skip_into[to] = Some(k);
        resolved.push((from, to));
    }

    let mut layers: Vec<LayerInfo> = Vec::with_capacity(spec.layers.len());
    let mut skips: Vec<Option<SkipInfo>> = vec![None; spec.skips.len()];
    let mut shape = input;
    for (i, layer) in spec.layers.iter().enumerate() {
        let (out, params, flops) = layer_output(layer, shape)?;
        let mut flops = flops;
        let skip_in = skip_into[i];
        if let Some(k) = skip_in {
            let (from, _) = resolved[k];
            let from_shape = match from {
                None => input,
                Some(f) => layers[f].output,
            };
            let info = skip_info(spec, k, from, i, from_shape, out)?;
            flops += info.flops;
            skips[k] = Some(info);
        }
        layers.push(LayerInfo {
            name: layer.name.clone(),
            output: out,
            params,
            flops,
            skip_in,
        });
        shape = out;
    }
    let last = layers.last().expect("non-empty");
    if !matches!(last.output, Shape::Flat(_)) {
        return Err(SpecError::OutputNotFlat {
            node: last.name.clone(),
            got: last.output,
        });
    }
    let valid = ValidSpec {
        spec: spec.clone(),
        input,
        layers,
        skips: skips
            .into_iter()
            .map(|s| s.expect("every skip resolved"))
            .collect(),
    };
    let total = valid.total_params();
    if total > MAX_PARAMETERS {
        let largest = valid
            .layers
            .iter()
            .max_by_key(|l| l.params)
            .expect("non-empty");
        return Err(SpecError::TooManyParameters {
            total,
            largest: largest.name.clone(),
            largest_params: largest.params,
        });
    }
    Ok(valid)
}

/// The output shape, parameters and forward FLOPs per sample of one layer applied to a sample of
/// shape `shape` (without any skip it receives).
pub fn layer_output(layer: &LayerSpec, shape: Shape) -> Result<(Shape, u64, u64), SpecError> {
    let node = layer.name.as_str();
    let wrong = |expected: &'static str, hint: &'static str| SpecError::WrongInput {
        node: node.to_string(),
        op: layer.op_label(),
        expected,
        got: shape,
        hint,
    };
    if !layer.bias_std.is_finite() || layer.bias_std < 0.0 {
        return Err(SpecError::BadValue {
            node: node.to_string(),
            field: "bias_std",
            value: layer.bias_std as f64,
            reason: "must be a finite number ≥ 0",
        });
    }
    let result: (Shape, u64, u64) = match &layer.op {
        LayerOp::Linear { out, bias } => {
            check_size(node, "out", *out, MAX_WIDTH)?;
            let Shape::Flat(d) = shape else {
                return Err(wrong(
                    "a flat",
                    "; add a flatten or global average pool first",
                ));
            };
            let p = (d * out) as u64 + if *bias { *out as u64 } else { 0 };
            (Shape::Flat(*out), p, 2 * (d * out) as u64)
        }
        LayerOp::Head { outputs } => {
            check_size(node, "outputs", *outputs, MAX_WIDTH)?;
            let Shape::Flat(d) = shape else {
                return Err(wrong(
                    "a flat",
                    "; add a flatten or global average pool first",
                ));
            };
            (
                Shape::Flat(*outputs),
                (d * outputs + outputs) as u64,
                2 * (d * outputs) as u64,
            )
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => {
            check_size(node, "out", *out, MAX_WIDTH)?;
            check_size(node, "kernel", *kernel, MAX_KERNEL)?;
            check_size(node, "stride", *stride, MAX_KERNEL)?;
            if *padding > MAX_KERNEL {
                return Err(SpecError::TooLarge {
                    node: node.to_string(),
                    field: "padding",
                    value: *padding,
                    max: MAX_KERNEL,
                });
            }
            let Shape::Image(c, h, w) = shape else {
                return Err(wrong("an image", "; convolutions work on [c, h, w] inputs"));
            };
            if h + 2 * padding < *kernel || w + 2 * padding < *kernel {
                return Err(SpecError::KernelTooLarge {
                    node: node.to_string(),
                    kernel: *kernel,
                    padding: *padding,
                    got: shape,
                });
            }
            let ho = (h + 2 * padding - kernel) / stride + 1;
            let wo = (w + 2 * padding - kernel) / stride + 1;
            let p = (out * c * kernel * kernel) as u64 + if *bias { *out as u64 } else { 0 };
            let f = 2 * (c * kernel * kernel * out * ho * wo) as u64;
            (Shape::Image(*out, ho, wo), p, f)
        }
        LayerOp::BatchNorm { momentum, epsilon } => {
            if !(momentum.is_finite() && (0.0..=1.0).contains(momentum)) {
                return Err(SpecError::BadValue {
                    node: node.to_string(),
                    field: "momentum",
                    value: *momentum,
                    reason: "must be in [0, 1]",
                });
            }
            if !(epsilon.is_finite() && *epsilon > 0.0) {
                return Err(SpecError::BadValue {
                    node: node.to_string(),
                    field: "epsilon",
                    value: *epsilon,
                    reason: "must be a finite number > 0",
                });
            }
            (shape, 2 * shape.channels() as u64, 4 * shape.numel() as u64)
        }
        LayerOp::Activation { .. } => (shape, 0, shape.numel() as u64),
        LayerOp::GlobalAvgPool => {
            let Shape::Image(c, _, _) = shape else {
                return Err(wrong("an image", "; pooling works on [c, h, w] inputs"));
            };
            (Shape::Flat(c), 0, shape.numel() as u64)
        }
        LayerOp::Flatten => (Shape::Flat(shape.numel()), 0, 0),
    };
    Ok(result)
}

fn skip_info(
    spec: &NetSpec,
    k: usize,
    from: Option<usize>,
    to: usize,
    from_shape: Shape,
    to_shape: Shape,
) -> Result<SkipInfo, SpecError> {
    let skip = &spec.skips[k];
    let mismatch = |reason: &'static str| SpecError::SkipShapeMismatch {
        index: k,
        from: skip.from.clone(),
        to: skip.to.clone(),
        from_shape,
        to_shape,
        reason,
    };
    let alpha_params = u64::from(skip.scale.learnable);
    let add = to_shape.numel() as u64 * if skip.scale.value == 1.0 { 1 } else { 2 };
    let (stride, params, flops) = match (from_shape, to_shape) {
        (Shape::Flat(a), Shape::Flat(b)) => match skip.shortcut {
            Shortcut::Identity if a == b => (1, 0, 0),
            Shortcut::Identity => {
                return Err(mismatch(
                    "an identity shortcut needs equal shapes: use a projection (or zero-pad when the target is wider)",
                ));
            }
            Shortcut::ZeroPad if b >= a => (1, 0, 0),
            Shortcut::ZeroPad => {
                return Err(mismatch(
                    "zero-padding cannot shrink the features: use a projection",
                ));
            }
            Shortcut::Projection { batch_norm } => (
                1,
                (a * b) as u64 + if batch_norm { 2 * b as u64 } else { 0 },
                2 * (a * b) as u64 + if batch_norm { 4 * b as u64 } else { 0 },
            ),
        },
        (Shape::Image(c1, h1, w1), Shape::Image(c2, h2, w2)) => {
            // The spatial stride that maps the source onto the target grid.
            let stride = if h1 == h2 && w1 == w2 {
                Some(1)
            } else if h2 > 0 && h1.div_ceil(h2) == w1.div_ceil(w2.max(1)) {
                let s = h1.div_ceil(h2);
                ((h1 - 1) / s + 1 == h2 && (w1 - 1) / s + 1 == w2).then_some(s)
            } else {
                None
            };
            match (skip.shortcut, stride) {
                (Shortcut::Identity, _) if from_shape == to_shape => (1, 0, 0),
                (Shortcut::Identity, _) => {
                    return Err(mismatch(
                        "an identity shortcut needs equal shapes: use a 1×1 projection or zero-pad",
                    ));
                }
                (_, None) => {
                    return Err(mismatch(
                        "the spatial sizes are not related by an integer stride",
                    ));
                }
                (Shortcut::ZeroPad, Some(s)) if c2 >= c1 => (s, 0, 0),
                (Shortcut::ZeroPad, Some(_)) => {
                    return Err(mismatch(
                        "zero-padding cannot remove channels: use a 1×1 projection",
                    ));
                }
                (Shortcut::Projection { batch_norm }, Some(s)) => (
                    s,
                    (c1 * c2) as u64 + if batch_norm { 2 * c2 as u64 } else { 0 },
                    2 * (c1 * c2 * h2 * w2) as u64
                        + if batch_norm {
                            4 * to_shape.numel() as u64
                        } else {
                            0
                        },
                ),
            }
        }
        _ => {
            return Err(mismatch("one side is an image and the other a flat vector"));
        }
    };
    Ok(SkipInfo {
        from,
        to,
        from_shape,
        to_shape,
        stride,
        params: params + alpha_params,
        flops: flops + add,
    })
}

impl SpecError {
    /// The layer this error is about, if it names one (skip errors name their target).
    pub fn node(&self) -> Option<&str> {
        match self {
            SpecError::ZeroSize { node, .. }
            | SpecError::TooLarge { node, .. }
            | SpecError::BadValue { node, .. }
            | SpecError::WrongInput { node, .. }
            | SpecError::KernelTooLarge { node, .. }
            | SpecError::OutputNotFlat { node, .. } => Some(node),
            SpecError::TooManyParameters { largest, .. } => Some(largest),
            SpecError::SkipOntoItself { node, .. } => Some(node),
            SpecError::SkipBackward { to, .. }
            | SpecError::DuplicateSkipTarget { to, .. }
            | SpecError::SkipShapeMismatch { to, .. }
            | SpecError::BadScale { to, .. } => Some(to),
            SpecError::Empty
            | SpecError::TooManyLayers { .. }
            | SpecError::EmptyName { .. }
            | SpecError::ReservedName { .. }
            | SpecError::DuplicateName { .. }
            | SpecError::UnknownSkipNode { .. } => None,
        }
    }

    /// The index of the skip this error is about, if it is a skip error.
    pub fn skip_index(&self) -> Option<usize> {
        match self {
            SpecError::UnknownSkipNode { index, .. }
            | SpecError::SkipOntoItself { index, .. }
            | SpecError::SkipBackward { index, .. }
            | SpecError::DuplicateSkipTarget { index, .. }
            | SpecError::SkipShapeMismatch { index, .. }
            | SpecError::BadScale { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// Facts about one layer as far as they could be inferred.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerFacts {
    /// Output shape of one sample.
    pub output: Shape,
    /// Trainable parameters of the node itself.
    pub params: u64,
    /// Forward FLOPs per sample of the node's own op.
    pub flops: u64,
}

/// Everything an editor shows about a spec that may be invalid: each layer's shape as far as
/// shape inference gets, and each skip's own problem, so that several bad skips can be shown
/// at once (where [`validate`] stops at the first error).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// Shape of the input.
    pub input: Shape,
    /// One entry per layer; `None` from the first layer whose op does not fit its input on.
    pub layers: Vec<Option<LayerFacts>>,
    /// One entry per skip: its own problem, if any.
    pub skips: Vec<Option<SpecError>>,
    /// Parameters of each skip's shortcut (0 where unknown).
    pub skip_params: Vec<u64>,
    /// The verdict of [`validate`] with the totals (parameters, FLOPs) of a valid spec.
    pub result: Result<(u64, u64), SpecError>,
}

impl Diagnosis {
    /// Parameters of every layer and skip whose facts are known.
    pub fn known_params(&self) -> u64 {
        self.layers.iter().flatten().map(|l| l.params).sum::<u64>()
            + self.skip_params.iter().sum::<u64>()
    }
}

/// Diagnoses a spec for an editor; see [`Diagnosis`].
pub fn diagnose(spec: &NetSpec) -> Diagnosis {
    let input: Shape = spec.input.into();
    let result = validate(spec).map(|v| (v.total_params(), v.total_flops()));
    let mut layers = Vec::with_capacity(spec.layers.len());
    let mut shape = input;
    let mut ok = true;
    for layer in &spec.layers {
        if ok && let Ok((output, params, flops)) = layer_output(layer, shape) {
            layers.push(Some(LayerFacts {
                output,
                params,
                flops,
            }));
            shape = output;
            continue;
        }
        ok = false;
        layers.push(None);
    }
    let shapes: Vec<Option<Shape>> = layers.iter().map(|l| l.map(|f| f.output)).collect();
    let checked: Vec<Result<Option<SkipInfo>, SpecError>> = (0..spec.skips.len())
        .map(|k| check_skip(spec, k, input, &shapes))
        .collect();
    Diagnosis {
        input,
        layers,
        skip_params: checked
            .iter()
            .map(|c| match c {
                Ok(Some(info)) => info.params,
                _ => 0,
            })
            .collect(),
        skips: checked.into_iter().map(|c| c.err()).collect(),
        result,
    }
}

/// Resolves skip `k`'s ends to layer indices (`None`: the input) and checks what can be checked
/// without shapes: both ends exist, the edge goes forward, no earlier skip has the same target
/// (`earlier_target(to)` names it), and α is finite. `validate` and [`check_skip`] share it.
fn resolve_skip(
    spec: &NetSpec,
    k: usize,
    index_of: impl Fn(&str) -> Option<usize>,
    earlier_target: impl Fn(usize) -> Option<usize>,
) -> Result<(Option<usize>, usize), SpecError> {
    let skip = &spec.skips[k];
    let from = if skip.from == INPUT_NODE {
        None
    } else {
        Some(
            index_of(&skip.from).ok_or_else(|| SpecError::UnknownSkipNode {
                index: k,
                name: skip.from.clone(),
            })?,
        )
    };
    let to = index_of(&skip.to).ok_or_else(|| SpecError::UnknownSkipNode {
        index: k,
        name: skip.to.clone(),
    })?;
    if from == Some(to) {
        return Err(SpecError::SkipOntoItself {
            index: k,
            node: skip.to.clone(),
        });
    }
    if let Some(f) = from
        && f > to
    {
        return Err(SpecError::SkipBackward {
            index: k,
            from: skip.from.clone(),
            to: skip.to.clone(),
        });
    }
    if let Some(other) = earlier_target(to) {
        return Err(SpecError::DuplicateSkipTarget {
            index: k,
            to: skip.to.clone(),
            other,
        });
    }
    if !skip.scale.value.is_finite() {
        return Err(SpecError::BadScale {
            index: k,
            to: skip.to.clone(),
            value: skip.scale.value,
        });
    }
    Ok((from, to))
}

/// Checks skip `k` on its own, given the layers' output shapes (`None` where unknown); returns
/// its facts when both shapes are known.
pub fn check_skip(
    spec: &NetSpec,
    k: usize,
    input: Shape,
    shapes: &[Option<Shape>],
) -> Result<Option<SkipInfo>, SpecError> {
    let skip = &spec.skips[k];
    let (from, to) = resolve_skip(
        spec,
        k,
        |name| spec.index_of(name),
        |_| spec.skips[..k].iter().position(|s| s.to == skip.to),
    )?;
    let from_shape = match from {
        None => Some(input),
        Some(f) => shapes.get(f).copied().flatten(),
    };
    let to_shape = shapes.get(to).copied().flatten();
    match (from_shape, to_shape) {
        (Some(a), Some(b)) => skip_info(spec, k, from, to, a, b).map(Some),
        _ => Ok(None),
    }
}
