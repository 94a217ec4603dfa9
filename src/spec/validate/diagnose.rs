//! What an editor shows about a spec that may be invalid: shapes as far as inference gets and
//! each skip's own problem.

use super::{Shape, SkipInfo, SpecError, check_skip, validate};
use crate::spec::net::NetSpec;
use crate::spec::op::layer_output;

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
