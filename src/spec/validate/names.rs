//! The names a network gives: every layer a name of its own, and every tensor the network
//! holds (`<layer>.weight`, `<target>.shortcut.weight`, ...) a name of its own, because weight
//! files and the optimiser's state are keyed by those names.

use super::{MAX_NAME_LEN, SpecError, ValidSpec};
use crate::spec::net::{INPUT_NODE, NetSpec};
use crate::spec::tensors::{TensorOwner, expected_tensors};
use std::collections::HashMap;

/// The prefix of the optimiser's state in weight files (`optim.m.<tensor>`, `optim.v.<tensor>`:
/// `metrics::Checkpoint::MOMENT1` and `MOMENT2`); no layer name may start with it, so that no
/// tensor of a network can be taken for the optimiser's state or collide with it.
pub const RESERVED_PREFIX: &str = "optim.";

/// Every layer has a name of its own (not empty, not too long, not the input's, not starting
/// with [`RESERVED_PREFIX`]); returns the index of each name.
pub(super) fn check_names(spec: &NetSpec) -> Result<HashMap<&str, usize>, SpecError> {
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
        if layer.name.starts_with(RESERVED_PREFIX) {
            return Err(SpecError::ReservedPrefix {
                index: i,
                name: layer.name.clone(),
            });
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
    Ok(names)
}

/// No two tensors of the network share a name: a layer `b.shortcut` and a projection skip into
/// `b` would both make `b.shortcut.weight`, and a weight file cannot hold both.
pub(super) fn check_tensor_names(v: &ValidSpec) -> Result<(), SpecError> {
    let tensors = expected_tensors(v);
    let mut seen: HashMap<&str, TensorOwner> = HashMap::with_capacity(tensors.len());
    for t in &tensors {
        if let Some(&first) = seen.get(t.name.as_str()) {
            return Err(SpecError::TensorNameClash {
                tensor: t.name.clone(),
                first: describe(v, first),
                second: describe(v, t.owner),
                node: owner_layer(v, t.owner),
            });
        }
        seen.insert(&t.name, t.owner);
    }
    Ok(())
}

/// `layer "fc"` or `the shortcut of skip #0 into "b"`.
fn describe(v: &ValidSpec, owner: TensorOwner) -> String {
    match owner {
        TensorOwner::Layer(i) => format!("layer \"{}\"", v.layers[i].name),
        TensorOwner::Skip(k) => format!(
            "the shortcut of skip #{k} into \"{}\"",
            v.layers[v.skips[k].to].name
        ),
    }
}

/// The layer an editor should point at: the layer itself, or the skip's target.
fn owner_layer(v: &ValidSpec, owner: TensorOwner) -> String {
    match owner {
        TensorOwner::Layer(i) => v.layers[i].name.clone(),
        TensorOwner::Skip(k) => v.layers[v.skips[k].to].name.clone(),
    }
}
