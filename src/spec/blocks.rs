//! Residual block layouts, written once: the CIFAR presets (post-activation, He et al. 2016),
//! the pre-activation ResNet (He et al. 2016b) and the designer's block templates all build
//! their two-layer blocks here.

use super::net::{Activation, LayerSpec};
use super::norm::Norm;

/// Where normalisation and activation sit in a two-layer block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockLayout {
    /// He et al. 2016: `W → BN → act → W → BN (+x) → act`; the skip adds after the second BN
    /// (after the second weight layer without BN).
    PostActivation,
    /// He et al. 2016b: `BN → act → W → BN → act → W (+x)`; the skip adds after the second
    /// weight layer.
    PreActivation,
}

/// A built block: its layers in order, the layer its skip adds into, and its output node.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The layers, input side first.
    pub layers: Vec<LayerSpec>,
    /// The layer whose output the skip is added to.
    pub skip_to: String,
    /// The block's last layer: where the next block's skip starts.
    pub out: String,
}

/// A two-layer block named `prefix.*`: `weight(k)` makes the k-th weight layer (k = 1, 2; the
/// caller names it, e.g. `prefix.conv1`), with normalisation layers `prefix.bn{k}` (`ln`,
/// `gn` for the other norms; none for [`Norm::None`]) and activations `prefix.act{k}` placed
/// as `layout` says.
pub fn two_layer_block(
    layout: BlockLayout,
    prefix: &str,
    norm: Norm,
    activation: Activation,
    weight: impl Fn(usize) -> LayerSpec,
) -> Block {
    let bn = |k: usize| norm.layer(prefix, &k.to_string());
    let act = |k: usize| LayerSpec::activation(format!("{prefix}.act{k}"), activation);
    let (layers, skip_at): (Vec<Option<LayerSpec>>, usize) = match layout {
        BlockLayout::PostActivation => (
            vec![
                Some(weight(1)),
                bn(1),
                Some(act(1)),
                Some(weight(2)),
                bn(2),
                Some(act(2)),
            ],
            // The second norm, or the second weight layer when there is none.
            if norm == Norm::None { 3 } else { 4 },
        ),
        BlockLayout::PreActivation => (
            vec![
                bn(1),
                Some(act(1)),
                Some(weight(1)),
                bn(2),
                Some(act(2)),
                Some(weight(2)),
            ],
            5,
        ),
    };
    let skip_to = layers[skip_at]
        .as_ref()
        .expect("the skip target is always built")
        .name
        .clone();
    let layers: Vec<LayerSpec> = layers.into_iter().flatten().collect();
    let out = layers.last().expect("a block has layers").name.clone();
    Block {
        layers,
        skip_to,
        out,
    }
}
