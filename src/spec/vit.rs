//! The transformer presets: a small vision transformer (Dosovitskiy et al. 2021) on patches of
//! an image, in the three arrangements of its residual adds and LayerNorms that the
//! transformer-residuals claims compare.
//!
//! - `vit-res-N` (pre-LN, Xiong et al. 2020): `x + Attn(LN(x))`, then `x + MLP(LN(x))`, a final
//!   LayerNorm before pooling;
//! - `vit-postln-N` (post-LN, Vaswani et al. 2017): `LN(x + Attn(x))`, then `LN(x + MLP(x))`;
//! - `vit-plain-N`: `vit-res-N` without its adds (its layers exactly, no skips).
//!
//! Each of the N blocks: self-attention with [`HEADS`] heads on tokens of [`DIM`] features, and a
//! token-wise MLP `Linear(DIM → width) → GELU → Linear(width → DIM)` (`width` is the preset
//! options' width, 128 by default). The embedding cuts [`PATCH`]×[`PATCH`] patches (28×28
//! MNIST digits: 16 tokens; another input size takes the first of 8, 4, 2, 1 that divides it),
//! then mean pooling over the tokens and the head. Every weight is drawn at PyTorch's default
//! scale ([`Init::Torch`], N(0, 1/(3·fan_in)), zero biases), the init of the PyTorch reference
//! these shapes come from. Measured (scripts/pytorch/transformer_residuals.py, 2 seeds, and the
//! lab, seed 0): with Xavier-normal weights and a He-normal head instead, post-LN with a 75-step
//! warm-up at Adam 5e-3 ends at loss 1.38 in PyTorch (2.09 in the lab) against 0.39-0.43 at
//! PyTorch's scale (0.42 in the lab): the larger draw is what keeps post-LN from recovering.
//! The normalisation is always LayerNorm and the activation GELU
//! (the presets' norm and activation options are for the CNN and MLP families); the options'
//! branch scale α goes on every skip (ReZero is a learnable α from 0).

use super::net::{
    Activation, BranchScale, Init, InputShape, LayerOp, LayerSpec, NetSpec, Shortcut, SkipSpec,
};
use super::presets::{PresetOptions, skip, tail};

/// Side of a patch on 28×28 inputs.
pub const PATCH: usize = 7;
/// Features of each token.
pub const DIM: usize = 64;
/// Attention heads.
pub const HEADS: usize = 4;
/// How every weight of the presets is drawn: PyTorch's default scale (see the module docs).
pub const INIT: Init = Init::Torch;

/// Where a block's LayerNorms and adds sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VitLayout {
    /// `x + Attn(LN(x))`, `x + MLP(LN(x))`, a final LayerNorm.
    PreLn,
    /// `LN(x + Attn(x))`, `LN(x + MLP(x))`.
    PostLn,
    /// The pre-LN layers without the adds.
    Plain,
}

/// `l` with its weights drawn at the presets' scale ([`INIT`]).
fn drawn(l: LayerSpec) -> LayerSpec {
    LayerSpec { init: INIT, ..l }
}

/// A vision transformer of `blocks` blocks.
pub fn vit(name: &str, blocks: usize, layout: VitLayout, opts: &PresetOptions) -> NetSpec {
    let input = opts.input.unwrap_or(InputShape::Image {
        channels: 1,
        height: 28,
        width: 28,
    });
    let mut layers = vec![drawn(LayerSpec::new(
        "embed",
        LayerOp::PatchEmbed {
            // A flat input gets PATCH, and validation says it needs an image.
            patch: match input {
                InputShape::Image { height, width, .. } => patch_for(height, width),
                InputShape::Flat { .. } => PATCH,
            },
            dim: DIM,
        },
    ))];
    let mut skips = Vec::new();
    let mut prev = "embed".to_string();
    for b in 1..=blocks {
        let p = format!("block{b}");
        let block = transformer_block(&p, layout, (DIM, opts.width), &prev, opts.scale);
        layers.extend(block.layers);
        skips.extend(block.skips);
        prev = block.out;
    }
    if layout != VitLayout::PostLn {
        layers.push(LayerSpec::layer_norm("final.ln"));
    }
    tail(&mut layers, opts);
    if let Some(head) = layers.last_mut() {
        head.init = INIT;
    }
    NetSpec {
        name: name.to_string(),
        input,
        layers,
        skips,
    }
}

/// One transformer block: its layers, its two skips and its last layer.
pub struct TransformerBlock {
    /// The layers, input side first.
    pub layers: Vec<LayerSpec>,
    /// The adds (none for [`VitLayout::Plain`]): into the attention from `from`, into the
    /// MLP's last layer from the attention's add (pre-LN) or the LayerNorm after it (post-LN).
    pub skips: Vec<SkipSpec>,
    /// The block's last layer: where the next block's first skip starts.
    pub out: String,
}

/// A transformer block `p.*` in `layout` on tokens of `dim` features (the MLP `dim → width →
/// dim`, [`HEADS`] heads where they divide `dim`, else 2 or 1), its first skip from the node
/// `from`, every skip with branch scale `scale`.
pub fn transformer_block(
    p: &str,
    layout: VitLayout,
    (dim, width): (usize, usize),
    from: &str,
    scale: BranchScale,
) -> TransformerBlock {
    let ln = |k: u8| LayerSpec::layer_norm(format!("{p}.ln{k}"));
    let attn = drawn(LayerSpec::new(
        format!("{p}.attn"),
        LayerOp::SelfAttention {
            heads: heads_for(dim),
        },
    ));
    let mlp = [
        drawn(LayerSpec::linear(format!("{p}.fc1"), width)),
        LayerSpec::activation(format!("{p}.act"), Activation::Gelu),
        drawn(LayerSpec::linear(format!("{p}.fc2"), dim)),
    ];
    let (a, fc2) = (format!("{p}.attn"), format!("{p}.fc2"));
    let add = |from: &str, to: &str| skip(from, to, Shortcut::Identity, scale);
    let mut layers = Vec::new();
    match layout {
        VitLayout::PreLn | VitLayout::Plain => {
            layers.extend([ln(1), attn, ln(2)]);
            layers.extend(mlp);
            let skips = if layout == VitLayout::PreLn {
                vec![add(from, &a), add(&a, &fc2)]
            } else {
                Vec::new()
            };
            TransformerBlock {
                layers,
                skips,
                out: fc2,
            }
        }
        VitLayout::PostLn => {
            layers.extend([attn, ln(1)]);
            layers.extend(mlp);
            layers.push(ln(2));
            TransformerBlock {
                layers,
                skips: vec![add(from, &a), add(&format!("{p}.ln1"), &fc2)],
                out: format!("{p}.ln2"),
            }
        }
    }
}

/// The patch side for an image of `height` × `width`: [`PATCH`] where it divides both sides,
/// else the first of 8, 4, 2, 1 that does.
pub(super) fn patch_for(height: usize, width: usize) -> usize {
    [PATCH, 8, 4, 2, 1]
        .into_iter()
        .find(|p| height.is_multiple_of(*p) && width.is_multiple_of(*p))
        .unwrap_or(1)
}

/// Heads for tokens of `dim` features: [`HEADS`] where they divide `dim`, else 2 or 1.
pub(super) fn heads_for(dim: usize) -> usize {
    [HEADS, 2, 1]
        .into_iter()
        .find(|h| dim.is_multiple_of(*h))
        .unwrap_or(1)
}
