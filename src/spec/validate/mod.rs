//! Validation with shape inference, parameter counts and FLOPs: [`validate`] checks a whole
//! spec and infers every layer's shape; `shape` holds what one op does to a shape, `skip` what
//! a shortcut does, `diagnose` the editor's partial view of an invalid spec, `error` the reasons.

mod diagnose;
mod error;
mod names;
mod shape;
mod skip;

pub use diagnose::{Diagnosis, LayerFacts, diagnose};
pub use error::SpecError;
pub use names::RESERVED_PREFIX;
pub use shape::Shape;
pub use skip::check_skip;

use super::net::{INPUT_NODE, NetSpec};
use super::op::layer_output;
use names::{check_names, check_tensor_names};
use serde::{Deserialize, Serialize};
use skip::{resolve_skip, skip_info};

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

pub(in crate::spec) fn check_size(
    node: &str,
    field: &'static str,
    value: usize,
    max: usize,
) -> Result<(), SpecError> {
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

/// Validates a spec and infers shapes, parameters and FLOPs. A valid spec's layer names and
/// tensor names are unique (`names.rs`).
pub fn validate(spec: &NetSpec) -> Result<ValidSpec, SpecError> {
    if spec.layers.is_empty() {
        return Err(SpecError::Empty);
    }
    if spec.layers.len() > MAX_LAYERS {
        return Err(SpecError::TooManyLayers {
            count: spec.layers.len(),
        });
    }
    let names = check_names(spec)?;
    let input: Shape = spec.input.into();
    check_input(input)?;
    // Resolve skips first so that the shape pass can apply them in order.
    let mut skip_into: Vec<Option<usize>> = vec![None; spec.layers.len()];
    let mut resolved: Vec<(Option<usize>, usize)> = Vec::with_capacity(spec.skips.len());
    for k in 0..spec.skips.len() {
        let (from, to) =
            resolve_skip(spec, k, |name| names.get(name).copied(), |to| skip_into[to])?;
        skip_into[to] = Some(k);
        resolved.push((from, to));
    }
    let (layers, skips) = infer(spec, input, &skip_into, &resolved)?;
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
        skips,
    };
    check_total(&valid)?;
    check_tensor_names(&valid)?;
    Ok(valid)
}

/// The input's sizes are within the limits.
fn check_input(input: Shape) -> Result<(), SpecError> {
    match input {
        Shape::Flat(d) => check_size(INPUT_NODE, "features", d, MAX_WIDTH),
        Shape::Image(c, h, w) => {
            check_size(INPUT_NODE, "channels", c, MAX_WIDTH)?;
            check_size(INPUT_NODE, "height", h, MAX_SPATIAL)?;
            check_size(INPUT_NODE, "width", w, MAX_SPATIAL)
        }
        Shape::Tokens(n, d) => {
            check_size(INPUT_NODE, "tokens", n, MAX_SPATIAL)?;
            check_size(INPUT_NODE, "dim", d, MAX_WIDTH)
        }
    }
}

/// The shape pass: each layer's output from its input, with the skip that adds into it
/// (`skip_into[i]`, resolved to its ends in `resolved`) checked against both shapes.
fn infer(
    spec: &NetSpec,
    input: Shape,
    skip_into: &[Option<usize>],
    resolved: &[(Option<usize>, usize)],
) -> Result<(Vec<LayerInfo>, Vec<SkipInfo>), SpecError> {
    let mut layers: Vec<LayerInfo> = Vec::with_capacity(spec.layers.len());
    let mut skips: Vec<Option<SkipInfo>> = vec![None; spec.skips.len()];
    let mut shape = input;
    for (i, layer) in spec.layers.iter().enumerate() {
        let (out, params, mut flops) = layer_output(layer, shape)?;
        let skip_in = skip_into[i];
        if let Some(k) = skip_in {
            let (from, _) = resolved[k];
            let from_shape = from.map_or(input, |f| layers[f].output);
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
    let skips = skips
        .into_iter()
        .map(|s| s.expect("every skip resolved"))
        .collect();
    Ok((layers, skips))
}

/// The network's parameters are within [`MAX_PARAMETERS`]; the error names the largest layer.
fn check_total(valid: &ValidSpec) -> Result<(), SpecError> {
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
    Ok(())
}
