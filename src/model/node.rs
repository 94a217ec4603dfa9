//! One layer's trainable state ([`NodeModule`]: the modules its op needs) and its forward pass
//! on an activation of any rank ([`apply`]).
//!
//! burn visits a node's tensors as `nodes.<i>.<Variant>.<field…>`; the stable name drops the
//! index and the variant for the layer's name (`build::stable_name`), so a Linear's weight is
//! `block1.fc.weight` and an op with sub-modules keeps them (`block3.attn.qkv.weight`).

use super::act::{Act, map_act};
use super::attention::{PatchEmbed, SelfAttention};
use super::fused;
use crate::spec::{Activation, LayerOp};
use burn::module::Module;
use burn::nn::{BatchNorm, GroupNorm, Linear, conv::Conv2d};
use burn::tensor::{Tensor, activation};

/// The modules of a layer with state; stateless layers (activations, pooling) have none.
#[derive(Module, Debug)]
pub enum NodeModule {
    /// A Linear or Head layer, `weight: [in, out]`.
    Linear(Linear),
    /// A Conv2d layer, `weight: [out, in, k, k]`.
    Conv(Conv2d),
    /// BatchNorm: γ, β and the running statistics.
    BatchNorm(BatchNorm),
    /// LayerNorm or GroupNorm: γ and β (LayerNorm is GroupNorm with one group).
    Norm(GroupNorm),
    /// A patch embedding: `proj` and `position`.
    Patches(PatchEmbed),
    /// Self-attention: `qkv`, `out`.
    Attention(SelfAttention),
}

impl NodeModule {
    /// The Linear (or Head) module.
    pub fn linear(&self) -> Option<&Linear> {
        match self {
            NodeModule::Linear(m) => Some(m),
            _ => None,
        }
    }

    /// The Conv2d module.
    pub fn conv(&self) -> Option<&Conv2d> {
        match self {
            NodeModule::Conv(m) => Some(m),
            _ => None,
        }
    }

    /// The BatchNorm module.
    pub fn batch_norm(&self) -> Option<&BatchNorm> {
        match self {
            NodeModule::BatchNorm(m) => Some(m),
            _ => None,
        }
    }

    /// The BatchNorm module, to change (test-time re-estimation).
    pub fn batch_norm_mut(&mut self) -> Option<&mut BatchNorm> {
        match self {
            NodeModule::BatchNorm(m) => Some(m),
            _ => None,
        }
    }

    /// The self-attention module.
    pub fn attention(&self) -> Option<&SelfAttention> {
        match self {
            NodeModule::Attention(m) => Some(m),
            _ => None,
        }
    }

    /// The LayerNorm or GroupNorm module.
    pub fn group_norm(&self) -> Option<&GroupNorm> {
        match self {
            NodeModule::Norm(m) => Some(m),
            _ => None,
        }
    }
}

/// What validation guarantees: a layer with state was built with its module.
const BUILT: &str = "the builder gives every op with state its module";

/// Runs one layer's op on `x` (its module `node`, `None` for stateless ops), layer by layer
/// (the fused blocks are the model's, `Model::forward`).
pub fn apply(op: &LayerOp, node: Option<&NodeModule>, x: Act) -> Act {
    let node = || node.expect(BUILT);
    match op {
        LayerOp::Linear { .. } | LayerOp::Head { .. } => {
            let lin = node().linear().expect(BUILT);
            x.map_rows(|t| lin.forward(t))
        }
        LayerOp::Conv2d { .. } => Act::Image(node().conv().expect(BUILT).forward(x.into_image())),
        LayerOp::BatchNorm { .. } => {
            let bn = node().batch_norm().expect(BUILT);
            match x {
                Act::Image(t) => Act::Image(fused::batch_norm(bn, t)),
                x => x.map_rows(|t| fused::batch_norm(bn, t)),
            }
        }
        LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. } => {
            let gn = node().group_norm().expect(BUILT);
            match x {
                Act::Image(t) => Act::Image(gn.forward(t)),
                x => x.map_rows(|t| super::fused::row_norm(gn, t)),
            }
        }
        LayerOp::PatchEmbed { .. } => {
            let NodeModule::Patches(p) = node() else {
                unreachable!("{BUILT}")
            };
            Act::Tokens(p.forward(x.into_image()))
        }
        LayerOp::SelfAttention { .. } => {
            let attn = node().attention().expect(BUILT);
            Act::Tokens(attn.forward(x.into_tokens()))
        }
        LayerOp::Activation { function } => map_act!(x, t => activate(*function, t)),
        LayerOp::GlobalAvgPool => Act::Flat(match x {
            Act::Image(t) => {
                let [b, c, h, w] = t.dims();
                t.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
            }
            Act::Tokens(t) => {
                let [b, _, d] = t.dims();
                t.mean_dim(1).reshape([b, d])
            }
            Act::Flat(_) => unreachable!("validation guarantees pooling an image or tokens"),
        }),
        LayerOp::Flatten => Act::Flat(x.flatten()),
    }
}

/// An element-wise activation function on a tensor of any rank.
pub(crate) fn activate<const D: usize>(f: Activation, t: Tensor<D>) -> Tensor<D> {
    match f {
        Activation::Relu => activation::relu(t),
        Activation::Tanh => activation::tanh(t),
        Activation::Sigmoid => activation::sigmoid(t),
        Activation::Gelu => super::fused::gelu(t),
        Activation::Identity => t,
    }
}
