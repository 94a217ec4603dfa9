//! The network description: plain serde data, no burn.

use super::strict::no_fields;
use serde::{Deserialize, Serialize};

/// The reserved node name that stands for the network input in a [`SkipSpec`].
pub const INPUT_NODE: &str = "input";

/// A network as the designer, presets and run files describe it.
///
/// Layers form a chain in order; [`SkipSpec`] add-edges connect the output of an earlier node to
/// the output of a later one. Names are the stable layer paths (e.g. `stage2.block1.conv2`) used
/// in probes, gradient statistics, weight files and the UI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// A human-readable name, e.g. the preset it came from.
    pub name: String,
    /// Shape of one input sample.
    pub input: InputShape,
    /// The chain of layers, input first.
    pub layers: Vec<LayerSpec>,
    /// Add-edges (skip connections).
    #[serde(default)]
    pub skips: Vec<SkipSpec>,
}

/// Shape of one input sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputShape {
    /// A flat feature vector `[features]`.
    Flat {
        /// Number of features.
        features: usize,
    },
    /// An image `[channels, height, width]`.
    Image {
        /// Number of channels.
        channels: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
}

/// One node of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Stable path name, unique in the network, never `input`.
    pub name: String,
    /// What the node computes.
    pub op: LayerOp,
    /// How the weights of a Linear, Conv2d or Head node are initialised (ignored by other ops).
    #[serde(default)]
    pub init: Init,
    /// Standard deviation of a normal bias initialisation; 0 gives zero biases (the default).
    #[serde(default)]
    pub bias_std: f32,
}

/// The operation of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerOp {
    /// Fully connected layer `[batch, in] -> [batch, out]`; on tokens, each token's features
    /// (`[batch, n, in] -> [batch, n, out]`).
    Linear {
        /// Output features.
        out: usize,
        /// Whether the layer has a bias.
        #[serde(default = "yes")]
        bias: bool,
    },
    /// 2-D convolution `[batch, cin, h, w] -> [batch, out, h', w']`.
    Conv2d {
        /// Output channels.
        out: usize,
        /// Square kernel size.
        kernel: usize,
        /// Stride in both directions.
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding on each side.
        #[serde(default)]
        padding: usize,
        /// Whether the layer has a bias.
        #[serde(default)]
        bias: bool,
    },
    /// Batch normalisation over the channel (image) or feature (flat) axis.
    BatchNorm {
        /// Weight of the new batch statistic in the running average (burn and PyTorch: 0.1).
        #[serde(default = "bn_momentum")]
        momentum: f64,
        /// Added to the variance before the square root.
        #[serde(default = "bn_epsilon")]
        epsilon: f64,
    },
    /// Layer normalisation (Ba et al. 2016): each sample normalised over all its features
    /// (flat) or all its channels and positions (image), each token over its features (tokens,
    /// as transformers use it), then a per-channel (feature) scale γ and shift β. No batch
    /// statistics, so it behaves the same at any batch size and at test time.
    LayerNorm {
        /// Added to the variance before the square root.
        #[serde(default = "bn_epsilon")]
        epsilon: f64,
    },
    /// Group normalisation (Wu & He 2018): each sample's channels split into `groups` groups,
    /// each normalised over its channels and positions, then a per-channel γ and β. One group
    /// is LayerNorm; as many groups as channels is InstanceNorm.
    GroupNorm {
        /// Groups; must divide the channels.
        groups: usize,
        /// Added to the variance before the square root.
        #[serde(default = "bn_epsilon")]
        epsilon: f64,
    },
    /// Cuts an image into `patch`×`patch` patches (stride `patch`) and maps each to a token of
    /// `dim` features: a linear map of the patch's values with a bias (`proj`, a convolution
    /// with kernel and stride `patch`), plus a learned position embedding per token
    /// (`position`), as in Dosovitskiy et al. 2021: `[c, h, w] -> [h/patch · w/patch, dim]`.
    PatchEmbed {
        /// Side of a square patch; must divide the image's height and width.
        patch: usize,
        /// Features of each token.
        dim: usize,
    },
    /// Multi-head self-attention over the tokens (Vaswani et al. 2017): queries, keys and
    /// values from one linear map of each token (`qkv`, with bias), per head
    /// softmax(Q·Kᵀ/√(dim/heads))·V, the heads side by side through an output map (`out`, with
    /// bias): `[tokens, dim] -> [tokens, dim]`.
    SelfAttention {
        /// Heads; must divide the tokens' features.
        heads: usize,
    },
    /// An element-wise activation.
    Activation {
        /// Which function.
        function: Activation,
    },
    /// Mean over height and width (`[batch, c, h, w] -> [batch, c]`) or over the tokens
    /// (`[batch, n, d] -> [batch, d]`).
    #[serde(deserialize_with = "no_fields")]
    GlobalAvgPool,
    /// `[batch, c, h, w] -> [batch, c*h*w]`.
    #[serde(deserialize_with = "no_fields")]
    Flatten,
    /// The classifier (or regression) head: a Linear layer with bias to `outputs` values.
    Head {
        /// Number of classes (or regression outputs).
        outputs: usize,
    },
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn bn_momentum() -> f64 {
    0.1
}
fn bn_epsilon() -> f64 {
    1e-5
}

/// Element-wise activation functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// x·Φ(x) (exact erf form)
    Gelu,
    /// x
    Identity,
}

impl Activation {
    /// Every activation function, in the order pickers list them.
    pub const ALL: [Activation; 5] = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Identity,
    ];
}

/// Weight initialisation of a Linear, Conv2d or Head node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// He (Kaiming) normal: N(0, 2 / fan_in).
    #[default]
    He,
    /// Xavier (Glorot) normal: N(0, 2 / (fan_in + fan_out)).
    Xavier,
    /// PyTorch's default scale for Linear and Conv2d, N(0, 1 / (3 · fan_in)): the standard
    /// deviation of its kaiming-uniform(a = √5) draw U(±1/√fan_in), drawn normal.
    Torch,
    /// All zeros (Fixup-style last layer of a residual branch).
    Zero,
}

/// A skip connection: `y_to = α · f_to(..) + shortcut(x_from)`.
///
/// `x_from` is the output of node `from` (or the network input when `from` is `input`), after any
/// skip that adds into `from`; `f_to(..)` is the output of node `to`'s own op, the end of the
/// residual branch. The branch scale α multiplies the residual branch, as in SkipInit
/// (De & Smith 2020): α = 1 is the classic `f(x) + x`, a learnable α from 0 makes every block
/// start as the identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipSpec {
    /// Name of the source node, or `input`.
    pub from: String,
    /// Name of the node whose output receives the sum; it must come after `from`.
    pub to: String,
    /// How the source is brought to the target's shape.
    #[serde(default)]
    pub shortcut: Shortcut,
    /// The branch scale α.
    #[serde(default)]
    pub scale: BranchScale,
}

/// How the shortcut maps the source to the target shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shortcut {
    /// `x` unchanged: shapes must be equal.
    #[default]
    #[serde(deserialize_with = "no_fields")]
    Identity,
    /// He et al. option A: subsample by the spatial stride and pad the extra channels (or
    /// features) with zeros. Parameter-free.
    #[serde(deserialize_with = "no_fields")]
    ZeroPad,
    /// He et al. option B: a 1×1 convolution with the needed stride (a Linear layer without bias
    /// for flat tensors), optionally followed by batch normalisation.
    Projection {
        /// Whether a BatchNorm follows the projection.
        #[serde(default = "yes")]
        batch_norm: bool,
    },
}

/// The branch scale α of a skip.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchScale {
    /// The (initial) value of α.
    pub value: f32,
    /// Whether α is a trained parameter.
    #[serde(default)]
    pub learnable: bool,
}

impl Default for BranchScale {
    fn default() -> Self {
        Self {
            value: 1.0,
            learnable: false,
        }
    }
}

impl BranchScale {
    /// SkipInit: a learnable α starting at 0.
    pub fn skip_init() -> Self {
        Self {
            value: 0.0,
            learnable: true,
        }
    }
}

impl LayerSpec {
    /// A node with default initialisation.
    pub fn new(name: impl Into<String>, op: LayerOp) -> Self {
        Self {
            name: name.into(),
            op,
            init: Init::He,
            bias_std: 0.0,
        }
    }

    /// A Linear node with bias.
    pub fn linear(name: impl Into<String>, out: usize) -> Self {
        Self::new(name, LayerOp::Linear { out, bias: true })
    }

    /// A Conv2d node without bias.
    pub fn conv(
        name: impl Into<String>,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        Self::new(
            name,
            LayerOp::Conv2d {
                out,
                kernel,
                stride,
                padding,
                bias: false,
            },
        )
    }

    /// A BatchNorm node with burn's (and PyTorch's) defaults.
    pub fn batch_norm(name: impl Into<String>) -> Self {
        Self::new(
            name,
            LayerOp::BatchNorm {
                momentum: bn_momentum(),
                epsilon: bn_epsilon(),
            },
        )
    }

    /// A LayerNorm node (ε = 1e-5, PyTorch's default).
    pub fn layer_norm(name: impl Into<String>) -> Self {
        Self::new(
            name,
            LayerOp::LayerNorm {
                epsilon: bn_epsilon(),
            },
        )
    }

    /// A GroupNorm node with `groups` groups (ε = 1e-5).
    pub fn group_norm(name: impl Into<String>, groups: usize) -> Self {
        Self::new(
            name,
            LayerOp::GroupNorm {
                groups,
                epsilon: bn_epsilon(),
            },
        )
    }

    /// An activation node.
    pub fn activation(name: impl Into<String>, function: Activation) -> Self {
        Self::new(name, LayerOp::Activation { function })
    }

    /// A ReLU node.
    pub fn relu(name: impl Into<String>) -> Self {
        Self::activation(name, Activation::Relu)
    }
}

impl SkipSpec {
    /// An identity skip with α = 1.
    pub fn identity(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            shortcut: Shortcut::Identity,
            scale: BranchScale::default(),
        }
    }
}

impl NetSpec {
    /// The index of the layer with this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// The same network without any skip connection (the "plain twin").
    pub fn without_skips(&self) -> NetSpec {
        NetSpec {
            skips: Vec::new(),
            ..self.clone()
        }
    }
}
