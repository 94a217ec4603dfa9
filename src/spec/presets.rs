//! Named preset networks.
//!
//! - `mlp-plain-N`, `mlp-res-N`: the reference script's MLP: `Linear(d → width) → ReLU`, then
//!   N blocks `Linear → BN → (+x) → ReLU` (the skip only in `mlp-res`), then a head. BN can be
//!   switched off in [`PresetOptions`]; without BN the skip goes into the block's Linear.
//! - `cifar-plain-N`, `cifar-resnet-N` (N = 6n + 2): He et al. 2016's CIFAR layout: a 3×3 conv
//!   with 16 filters, three stages of n basic blocks (2n conv layers) with 16/32/64 filters,
//!   stride 2 at the start of stages 2 and 3, global average pool, head.
//! - `preact-resnet-N` (N = 6n + 2): the same stages with pre-activation blocks
//!   (He et al. 2016b, *Identity Mappings in Deep Residual Networks*).
//! - `cnn-N`: a small plain CNN, N 3×3 convolutions `conv → norm → ReLU` with 16, 32, 64, 64, …
//!   filters (stride 2 at the second and third), global average pool, head: the net of the
//!   distribution-shift experiment (a bias in each conv only without normalisation).
//! - `vit-res-N`, `vit-postln-N`, `vit-plain-N`: a small vision transformer of N blocks, pre-LN,
//!   post-LN and without adds (`vit.rs`).

use super::blocks::{BlockLayout, two_layer_block};
use super::net::{
    Activation, BranchScale, InputShape, LayerOp, LayerSpec, NetSpec, Shortcut, SkipSpec,
};
use super::norm::Norm;
use super::vit::{VitLayout, vit};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Options that presets take beside their name.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PresetOptions {
    /// Input shape; `None` uses the preset's natural input (784 features for MLPs, 3×32×32 for
    /// CIFAR nets).
    pub input: Option<InputShape>,
    /// Number of classes of the head.
    pub classes: usize,
    /// Hidden width of MLPs.
    pub width: usize,
    /// The normalisation in the blocks (BatchNorm in all the papers).
    pub norm: Norm,
    /// Shortcut used where a residual block changes shape (CIFAR nets).
    pub shortcut: Shortcut,
    /// Branch scale α of every skip.
    pub scale: BranchScale,
    /// Activation used in blocks (ReLU in all the papers).
    pub activation: Activation,
}

impl Default for PresetOptions {
    fn default() -> Self {
        Self {
            input: None,
            classes: 10,
            width: 128,
            norm: Norm::Batch,
            shortcut: Shortcut::Projection { batch_norm: true },
            scale: BranchScale::default(),
            activation: Activation::Relu,
        }
    }
}

impl PresetOptions {
    /// The shortcut the lab's preset picker starts with for CNN presets: He et al.'s option A
    /// (zero padding), which their CIFAR experiments use.
    pub const LAB_SHORTCUT: Shortcut = Shortcut::ZeroPad;

    /// The defaults, with the input shape and the number of outputs that `dataset` needs.
    pub fn for_dataset(dataset: &super::DatasetSpec) -> Self {
        let (input, classes) = dataset.expected_io();
        Self {
            input: Some(input),
            classes,
            ..Self::default()
        }
    }
}

/// Why a preset name could not be built.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum PresetError {
    /// No preset family has this name.
    #[error(
        "unknown preset \"{0}\"; known families: mlp-plain-N, mlp-res-N, cifar-plain-N, cifar-resnet-N, preact-resnet-N, cnn-N, vit-res-N, vit-postln-N, vit-plain-N"
    )]
    Unknown(String),
    /// The depth is not allowed for the family.
    #[error("preset \"{name}\": {reason}")]
    BadDepth {
        /// The preset name.
        name: String,
        /// What is allowed.
        reason: String,
    },
}

/// Example names of every preset family, for listings.
pub const PRESET_EXAMPLES: &[&str] = &[
    "mlp-plain-8",
    "mlp-res-8",
    "mlp-plain-20",
    "mlp-res-20",
    "mlp-plain-32",
    "mlp-res-32",
    "cifar-plain-20",
    "cifar-resnet-20",
    "cifar-plain-56",
    "cifar-resnet-56",
    "cifar-resnet-110",
    "preact-resnet-20",
    "cnn-3",
    "vit-res-12",
    "vit-postln-12",
    "vit-plain-12",
];

/// Builds a preset by name, e.g. `mlp-res-20` or `cifar-resnet-56`.
pub fn preset(name: &str, opts: &PresetOptions) -> Result<NetSpec, PresetError> {
    let (family, depth) = name
        .rsplit_once('-')
        .ok_or_else(|| PresetError::Unknown(name.to_string()))?;
    let n: usize = depth.parse().map_err(|_| PresetError::BadDepth {
        name: name.to_string(),
        reason: format!("\"{depth}\" is not a number"),
    })?;
    let bad = |reason: &str| PresetError::BadDepth {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    match family {
        "mlp-plain" | "mlp-res" => {
            if n == 0 || n > 1000 {
                return Err(bad("N must be between 1 and 1000"));
            }
            Ok(mlp(name, n, family == "mlp-res", opts))
        }
        "cifar-plain" | "cifar-resnet" | "preact-resnet" => {
            if n < 8 || !(n - 2).is_multiple_of(6) || n > 1202 {
                return Err(bad(
                    "N must be 6n + 2 for n ≥ 1 (8, 14, 20, 32, 44, 56, 110, ...)",
                ));
            }
            let blocks = (n - 2) / 6;
            Ok(if family == "preact-resnet" {
                preact(name, blocks, opts)
            } else {
                cifar(name, blocks, family == "cifar-resnet", opts)
            })
        }
        "cnn" => {
            if n == 0 || n > 100 {
                return Err(bad("N must be between 1 and 100"));
            }
            Ok(small_cnn(name, n, opts))
        }
        "vit-res" | "vit-postln" | "vit-plain" => {
            if n == 0 || n > 100 {
                return Err(bad("N must be between 1 and 100"));
            }
            let layout = match family {
                "vit-res" => VitLayout::PreLn,
                "vit-postln" => VitLayout::PostLn,
                _ => VitLayout::Plain,
            };
            Ok(vit(name, n, layout, opts))
        }
        _ => Err(PresetError::Unknown(name.to_string())),
    }
}

/// A plain CNN of `n` 3×3 convolutions, each followed by the preset's norm and activation:
/// 16, 32, 64, 64, … filters, stride 2 at the second and third, then pool and head.
pub fn small_cnn(name: &str, n: usize, opts: &PresetOptions) -> NetSpec {
    let mut layers = Vec::new();
    for k in 1..=n {
        let (out, stride) = match k {
            1 => (16, 1),
            2 => (32, 2),
            3 => (64, 2),
            _ => (64, 1),
        };
        let mut conv = LayerSpec::conv(format!("conv{k}.conv"), out, 3, stride, 1);
        if opts.norm == Norm::None
            && let LayerOp::Conv2d { bias, .. } = &mut conv.op
        {
            *bias = true;
        }
        layers.push(conv);
        layers.extend(opts.norm.layer(&format!("conv{k}"), ""));
        layers.push(LayerSpec::activation(
            format!("conv{k}.act"),
            opts.activation,
        ));
    }
    tail(&mut layers, opts);
    NetSpec {
        name: name.to_string(),
        input: image_input(opts),
        layers,
        skips: Vec::new(),
    }
}

pub(super) fn skip(from: &str, to: &str, shortcut: Shortcut, scale: BranchScale) -> SkipSpec {
    SkipSpec {
        from: from.to_string(),
        to: to.to_string(),
        shortcut,
        scale,
    }
}

/// An MLP with `blocks` hidden blocks after the input layer.
pub fn mlp(name: &str, blocks: usize, residual: bool, opts: &PresetOptions) -> NetSpec {
    let input = opts.input.unwrap_or(InputShape::Flat { features: 784 });
    let mut layers = Vec::new();
    if matches!(input, InputShape::Image { .. }) {
        layers.push(LayerSpec::new("flatten", LayerOp::Flatten));
    }
    layers.push(LayerSpec::linear("input.fc", opts.width));
    layers.push(LayerSpec::activation("input.act", opts.activation));
    let mut skips = Vec::new();
    let mut prev = "input.act".to_string();
    for b in 1..=blocks {
        let fc = format!("block{b}.fc");
        layers.push(LayerSpec::linear(&fc, opts.width));
        let end = match opts.norm.layer(&format!("block{b}"), "") {
            Some(norm) => {
                let name = norm.name.clone();
                layers.push(norm);
                name
            }
            None => fc,
        };
        if residual {
            skips.push(skip(&prev, &end, Shortcut::Identity, opts.scale));
        }
        let act = format!("block{b}.act");
        layers.push(LayerSpec::activation(&act, opts.activation));
        prev = act;
    }
    layers.push(LayerSpec::new(
        "head",
        LayerOp::Head {
            outputs: opts.classes,
        },
    ));
    NetSpec {
        name: name.to_string(),
        input,
        layers,
        skips,
    }
}

fn image_input(opts: &PresetOptions) -> InputShape {
    opts.input.unwrap_or(InputShape::Image {
        channels: 3,
        height: 32,
        width: 32,
    })
}

fn stem(layers: &mut Vec<LayerSpec>, opts: &PresetOptions, with_post: bool) {
    layers.push(LayerSpec::conv("stem.conv", 16, 3, 1, 1));
    if with_post {
        layers.extend(opts.norm.layer("stem", ""));
        layers.push(LayerSpec::activation("stem.act", opts.activation));
    }
}

/// Global average pooling and the head.
pub(super) fn tail(layers: &mut Vec<LayerSpec>, opts: &PresetOptions) {
    layers.push(LayerSpec::new("pool", LayerOp::GlobalAvgPool));
    layers.push(LayerSpec::new(
        "head",
        LayerOp::Head {
            outputs: opts.classes,
        },
    ));
}

/// He et al. 2016's CIFAR network with `n` basic blocks per stage (depth 6n + 2).
pub fn cifar(name: &str, n: usize, residual: bool, opts: &PresetOptions) -> NetSpec {
    let mut layers = Vec::new();
    let mut skips = Vec::new();
    stem(&mut layers, opts, true);
    let stages = Stages {
        blocks: n,
        layout: BlockLayout::PostActivation,
        residual,
    };
    stages.build("stem.act", opts, &mut layers, &mut skips);
    tail(&mut layers, opts);
    NetSpec {
        name: name.to_string(),
        input: image_input(opts),
        layers,
        skips,
    }
}

/// A pre-activation ResNet with `n` blocks per stage (depth 6n + 2).
pub fn preact(name: &str, n: usize, opts: &PresetOptions) -> NetSpec {
    let mut layers = Vec::new();
    let mut skips = Vec::new();
    stem(&mut layers, opts, false);
    let stages = Stages {
        blocks: n,
        layout: BlockLayout::PreActivation,
        residual: true,
    };
    stages.build("stem.conv", opts, &mut layers, &mut skips);
    layers.extend(opts.norm.layer("post", ""));
    layers.push(LayerSpec::activation("post.act", opts.activation));
    tail(&mut layers, opts);
    NetSpec {
        name: name.to_string(),
        input: image_input(opts),
        layers,
        skips,
    }
}

/// He et al.'s three stages of `blocks` two-layer blocks with 16, 32 and 64 channels, stride 2
/// at the start of stages 2 and 3.
struct Stages {
    blocks: usize,
    layout: BlockLayout,
    residual: bool,
}

impl Stages {
    /// Appends the stages after the node `first`, with a skip around every block (the preset's
    /// shortcut where the shape changes) when residual.
    fn build(
        &self,
        first: &str,
        opts: &PresetOptions,
        layers: &mut Vec<LayerSpec>,
        skips: &mut Vec<SkipSpec>,
    ) {
        let mut prev = first.to_string();
        let mut channels = 16;
        for (s, width) in [16usize, 32, 64].into_iter().enumerate() {
            for b in 1..=self.blocks {
                let stride = if b == 1 && s > 0 { 2 } else { 1 };
                let p = format!("stage{}.block{b}", s + 1);
                let block = two_layer_block(self.layout, &p, opts.norm, opts.activation, |k| {
                    let stride = if k == 1 { stride } else { 1 };
                    LayerSpec::conv(format!("{p}.conv{k}"), width, 3, stride, 1)
                });
                if self.residual {
                    let shortcut = if stride != 1 || channels != width {
                        opts.shortcut
                    } else {
                        Shortcut::Identity
                    };
                    skips.push(skip(&prev, &block.skip_to, shortcut, opts.scale));
                }
                prev = block.out;
                layers.extend(block.layers);
                channels = width;
            }
        }
    }
}
