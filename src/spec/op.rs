//! What each layer op is, in one place: its output shape, FLOPs, the tensors it holds (and so
//! its parameters), the activation memory a training pass keeps for it, its label, and the
//! checks of its own fields. Validation (`validate/`), the tensor list (`tensors.rs`) and the
//! memory estimate (`resources.rs`) all read [`describe`]; adding an op is a [`LayerOp`]
//! variant in `net.rs` and an arm in each function here.

use super::net::{LayerOp, LayerSpec};
use super::validate::{MAX_KERNEL, MAX_SPATIAL, MAX_WIDTH, Shape, SpecError, check_size};

/// One tensor an op holds, named relative to its layer (`weight`, `qkv.weight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpTensor {
    /// The name after the layer's, e.g. `weight`, `gamma`, `qkv.bias`, `position`.
    pub name: &'static str,
    /// Its shape (Linear weights `[in, out]`, conv weights `[out, in, k, k]`).
    pub shape: Vec<usize>,
    /// Whether the optimiser trains it (BatchNorm running statistics are buffers).
    pub trainable: bool,
}

impl OpTensor {
    fn trained(name: &'static str, shape: Vec<usize>) -> Self {
        Self {
            name,
            shape,
            trainable: true,
        }
    }

    /// Number of values.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// What one op does to a sample of a given shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpFacts {
    /// The output shape (before any skip adds into it).
    pub output: Shape,
    /// Forward FLOPs per sample (a multiply-add counts as 2).
    pub flops: u64,
    /// The tensors the op holds, in the order the model's module visits them.
    pub tensors: Vec<OpTensor>,
    /// Values per sample a training pass keeps for the backward pass besides the output and its
    /// gradient (a normalisation's normalised input, a convolution's unfolded input).
    pub saved: u64,
}

impl OpFacts {
    fn new(output: Shape, flops: u64) -> Self {
        Self {
            output,
            flops,
            tensors: Vec::new(),
            saved: 0,
        }
    }

    fn with(mut self, tensors: Vec<OpTensor>) -> Self {
        self.tensors = tensors;
        self
    }

    fn saving(mut self, saved: u64) -> Self {
        self.saved = saved;
        self
    }

    /// Trainable parameters.
    pub fn params(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| t.trainable)
            .map(OpTensor::numel)
            .sum()
    }
}

/// The output shape, parameters and forward FLOPs per sample of one layer applied to a sample of
/// shape `shape` (without any skip it receives).
pub fn layer_output(layer: &LayerSpec, shape: Shape) -> Result<(Shape, u64, u64), SpecError> {
    let f = describe(layer, shape)?;
    Ok((f.output, f.params(), f.flops))
}

/// What `layer` does to a sample of shape `shape`, after checking its fields.
pub fn describe(layer: &LayerSpec, shape: Shape) -> Result<OpFacts, SpecError> {
    let node = layer.name.as_str();
    if !layer.bias_std.is_finite() || layer.bias_std < 0.0 {
        return Err(SpecError::BadValue {
            node: node.to_string(),
            field: "bias_std",
            value: layer.bias_std as f64,
            reason: "must be a finite number ≥ 0",
        });
    }
    let numel = shape.numel() as u64;
    Ok(match &layer.op {
        LayerOp::Linear { out, bias } => {
            check_size(node, "out", *out, MAX_WIDTH)?;
            let (rows, d) = rows_of(layer, shape)?;
            let output = match shape {
                Shape::Tokens(n, _) => Shape::Tokens(n, *out),
                _ => Shape::Flat(*out),
            };
            let mut t = vec![OpTensor::trained("weight", vec![d, *out])];
            if *bias {
                t.push(OpTensor::trained("bias", vec![*out]));
            }
            OpFacts::new(output, 2 * (rows * d * out) as u64).with(t)
        }
        LayerOp::Head { outputs } => {
            check_size(node, "outputs", *outputs, MAX_WIDTH)?;
            let Shape::Flat(d) = shape else {
                return Err(wrong_input(layer, shape, "a flat", FLAT_HINT));
            };
            let t = vec![
                OpTensor::trained("weight", vec![d, *outputs]),
                OpTensor::trained("bias", vec![*outputs]),
            ];
            OpFacts::new(Shape::Flat(*outputs), 2 * (d * outputs) as u64).with(t)
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => conv(layer, shape, [*out, *kernel, *stride, *padding], *bias)?,
        LayerOp::BatchNorm { momentum, epsilon } => {
            check_batch_norm(node, *momentum, *epsilon)?;
            let c = shape.channels();
            let buffer = |name| OpTensor {
                name,
                shape: vec![c],
                trainable: false,
            };
            let t = vec![
                OpTensor::trained("gamma", vec![c]),
                OpTensor::trained("beta", vec![c]),
                buffer("running_mean"),
                buffer("running_var"),
            ];
            OpFacts::new(shape, 4 * numel).with(t).saving(numel)
        }
        LayerOp::LayerNorm { epsilon } => {
            check_epsilon(node, *epsilon)?;
            affine_norm(shape, numel)
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
            affine_norm(shape, numel)
        }
        LayerOp::PatchEmbed { patch, dim } => patch_embed(layer, shape, *patch, *dim)?,
        LayerOp::SelfAttention { heads } => attention(layer, shape, *heads)?,
        LayerOp::Activation { .. } => OpFacts::new(shape, numel),
        LayerOp::GlobalAvgPool => match shape {
            Shape::Image(c, _, _) | Shape::Tokens(_, c) => OpFacts::new(Shape::Flat(c), numel),
            Shape::Flat(_) => {
                let hint = "; pooling works on [c, h, w] images and [tokens, dim] sequences";
                return Err(wrong_input(layer, shape, "an image or tokens", hint));
            }
        },
        LayerOp::Flatten => OpFacts::new(Shape::Flat(shape.numel()), 0),
    })
}

const FLAT_HINT: &str = "; add a flatten or global average pool first";

/// Rows and features of an op that acts on the last axis: one row of a flat sample, one row
/// per token of a sequence.
fn rows_of(layer: &LayerSpec, shape: Shape) -> Result<(usize, usize), SpecError> {
    match shape {
        Shape::Flat(d) => Ok((1, d)),
        Shape::Tokens(n, d) => Ok((n, d)),
        Shape::Image(..) => Err(wrong_input(layer, shape, "a flat or token", FLAT_HINT)),
    }
}

/// LayerNorm and GroupNorm: γ and β per channel (feature), the normalised input kept.
fn affine_norm(shape: Shape, numel: u64) -> OpFacts {
    let c = shape.channels();
    let t = vec![
        OpTensor::trained("gamma", vec![c]),
        OpTensor::trained("beta", vec![c]),
    ];
    OpFacts::new(shape, 5 * numel).with(t).saving(numel)
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

/// A convolution's facts; its sizes are checked first.
fn conv(
    layer: &LayerSpec,
    shape: Shape,
    [out, kernel, stride, padding]: [usize; 4],
    bias: bool,
) -> Result<OpFacts, SpecError> {
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
    let mut t = vec![OpTensor::trained("weight", vec![out, c, kernel, kernel])];
    if bias {
        t.push(OpTensor::trained("bias", vec![out]));
    }
    let output = Shape::Image(out, ho, wo);
    let f = 2 * (c * kernel * kernel * out * ho * wo) as u64;
    Ok(OpFacts::new(output, f)
        .with(t)
        .saving(output.numel() as u64))
}

/// Patches of an image as tokens: the projection (a convolution with kernel and stride
/// `patch`) and the position embedding.
fn patch_embed(
    layer: &LayerSpec,
    shape: Shape,
    patch: usize,
    dim: usize,
) -> Result<OpFacts, SpecError> {
    let node = layer.name.as_str();
    check_size(node, "patch", patch, MAX_SPATIAL)?;
    check_size(node, "dim", dim, MAX_WIDTH)?;
    let Shape::Image(c, h, w) = shape else {
        let hint = "; patches are cut from [c, h, w] images";
        return Err(wrong_input(layer, shape, "an image", hint));
    };
    for size in [h, w] {
        if !size.is_multiple_of(patch) {
            return Err(SpecError::DoesNotDivide {
                node: node.to_string(),
                field: "patch",
                value: patch,
                what: "pixels of its height or width",
                size,
                hint: "; use a divisor of both",
            });
        }
    }
    let n = (h / patch) * (w / patch);
    let t = vec![
        OpTensor::trained("proj.weight", vec![dim, c, patch, patch]),
        OpTensor::trained("proj.bias", vec![dim]),
        OpTensor::trained("position", vec![n, dim]),
    ];
    let flops = 2 * (c * patch * patch * dim * n) as u64 + (n * dim) as u64;
    Ok(OpFacts::new(Shape::Tokens(n, dim), flops).with(t))
}

/// Multi-head self-attention: `qkv` and `out` maps; the backward pass keeps the queries, keys,
/// values, every head's attention matrix and the heads' outputs.
fn attention(layer: &LayerSpec, shape: Shape, heads: usize) -> Result<OpFacts, SpecError> {
    let node = layer.name.as_str();
    check_size(node, "heads", heads, MAX_WIDTH)?;
    let Shape::Tokens(n, d) = shape else {
        let hint = "; attention works on [tokens, dim] sequences (add a patch embedding first)";
        return Err(wrong_input(layer, shape, "a token", hint));
    };
    if !d.is_multiple_of(heads) {
        return Err(SpecError::DoesNotDivide {
            node: node.to_string(),
            field: "heads",
            value: heads,
            what: "features of each token",
            size: d,
            hint: "; use a divisor of the tokens' features",
        });
    }
    let t = vec![
        OpTensor::trained("qkv.weight", vec![d, 3 * d]),
        OpTensor::trained("qkv.bias", vec![3 * d]),
        OpTensor::trained("out.weight", vec![d, d]),
        OpTensor::trained("out.bias", vec![d]),
    ];
    let (n, d, h) = (n as u64, d as u64, heads as u64);
    // qkv, scores, softmax, scores × values, out.
    let flops = 6 * n * d * d + 2 * n * n * d + 5 * h * n * n + 2 * n * n * d + 2 * n * d * d;
    let saved = 3 * n * d + 2 * h * n * n + n * d;
    Ok(OpFacts::new(shape, flops).with(t).saving(saved))
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

impl LayerSpec {
    /// Whether this node normalises (BatchNorm, LayerNorm, GroupNorm).
    pub fn is_norm(&self) -> bool {
        matches!(
            self.op,
            LayerOp::BatchNorm { .. } | LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. }
        )
    }

    /// Whether this node has weights its `init` draws (Linear, Conv2d, Head, a patch
    /// embedding's projection, attention's maps).
    pub fn has_weights(&self) -> bool {
        matches!(
            self.op,
            LayerOp::Linear { .. }
                | LayerOp::Conv2d { .. }
                | LayerOp::Head { .. }
                | LayerOp::PatchEmbed { .. }
                | LayerOp::SelfAttention { .. }
        )
    }

    /// A short label of the op for tables, e.g. `conv3x3/2 16`.
    pub fn op_label(&self) -> String {
        match &self.op {
            LayerOp::Linear { out, .. } => format!("linear {out}"),
            LayerOp::Conv2d {
                out,
                kernel,
                stride,
                ..
            } => {
                if *stride == 1 {
                    format!("conv{kernel}x{kernel} {out}")
                } else {
                    format!("conv{kernel}x{kernel}/{stride} {out}")
                }
            }
            LayerOp::BatchNorm { .. } => "batchnorm".into(),
            LayerOp::LayerNorm { .. } => "layernorm".into(),
            LayerOp::GroupNorm { groups, .. } => format!("groupnorm {groups}"),
            LayerOp::PatchEmbed { patch, dim } => format!("patches {patch}x{patch} {dim}"),
            LayerOp::SelfAttention { heads } => format!("attn {heads} heads"),
            LayerOp::Activation { function } => format!("{function:?}").to_lowercase(),
            LayerOp::GlobalAvgPool => "global avg pool".into(),
            LayerOp::Flatten => "flatten".into(),
            LayerOp::Head { outputs } => format!("head {outputs}"),
        }
    }
}
