//! `model.safetensors`: a run's trained tensors under the names and in the layouts of the
//! generated `model.py` ([`super::pytorch`]): Linear weights `[out, in]` (burn keeps `[in, out]`),
//! BatchNorm `weight`, `bias`, `running_mean`, `running_var` and `num_batches_tracked`, GroupNorm
//! `weight` and `bias`; no optimiser state.
//!
//! BatchNorm's running variance is written as the lab keeps it and normalises with at test time:
//! the average of the batches' biased (population) variances. PyTorch's own running average
//! uses the unbiased one (× m/(m − 1), m the values per channel of a batch), so the export
//! predicts what the lab predicts; training it further in PyTorch continues with PyTorch's
//! convention.

use super::pytorch::Keys;
use crate::metrics::Checkpoint;
use crate::spec::{LayerOp, Shape, TensorOwner, ValidSpec, expected_tensors};

/// One tensor of the export.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchTensor {
    /// Its name in `Net().state_dict()`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: TorchData,
}

/// A tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub enum TorchData {
    /// `float32`.
    F32(Vec<f32>),
    /// `int64` (BatchNorm's `num_batches_tracked`).
    I64(Vec<i64>),
}

/// The state dict of `model.py` for `v` from the run's checkpoint; `steps` is what
/// `num_batches_tracked` records. Fails, naming the tensor, when the checkpoint lacks one the
/// network has or holds it in another shape.
pub fn state_dict(v: &ValidSpec, ck: &Checkpoint, steps: u64) -> Result<Vec<TorchTensor>, String> {
    let keys = Keys::of(v);
    let mut out = Vec::new();
    for entry in expected_tensors(v) {
        let t = ck
            .get(&entry.name)
            .ok_or_else(|| format!("the weights have no tensor \"{}\"", entry.name))?;
        if t.shape != entry.shape {
            return Err(format!(
                "tensor \"{}\" has shape {:?}; the network needs {:?}",
                entry.name, t.shape, entry.shape
            ));
        }
        let (name, transpose) = torch_name(v, &keys, entry.owner, &entry.name);
        let (shape, data) = if transpose {
            let [a, b] = [t.shape[0], t.shape[1]];
            (vec![b, a], transposed(&t.data, a, b))
        } else {
            (t.shape.clone(), t.data.clone())
        };
        let tracked = name
            .strip_suffix(".running_var")
            .map(|m| format!("{m}.num_batches_tracked"));
        out.push(TorchTensor {
            name,
            shape,
            data: TorchData::F32(data),
        });
        if let Some(name) = tracked {
            out.push(TorchTensor {
                name,
                shape: vec![],
                data: TorchData::I64(vec![steps as i64]),
            });
        }
    }
    Ok(out)
}

/// The PyTorch name of a stable tensor name, and whether its 2-D layout is transposed.
fn torch_name(v: &ValidSpec, keys: &Keys, owner: TensorOwner, name: &str) -> (String, bool) {
    let rename = |field: &str| match field {
        "gamma" => "weight".to_string(),
        "beta" => "bias".to_string(),
        f => f.to_string(),
    };
    match owner {
        TensorOwner::Layer(i) => {
            let field = &name[v.spec.layers[i].name.len() + 1..];
            let linear = match v.spec.layers[i].op {
                LayerOp::Linear { .. } | LayerOp::Head { .. } => field == "weight",
                LayerOp::SelfAttention { .. } => field.ends_with(".weight"),
                _ => false,
            };
            (
                format!("layers.{}.{}", keys.layers[i], rename(field)),
                linear,
            )
        }
        TensorOwner::Skip(k) => {
            let info = &v.skips[k];
            let key = &keys.layers[info.to];
            let target = &v.spec.layers[info.to].name;
            let field = &name[target.len() + 1..];
            if field == "alpha" {
                (format!("alphas.{key}"), false)
            } else if let Some(bn) = field.strip_prefix("shortcut.bn.") {
                (format!("shortcut_norms.{key}.{}", rename(bn)), false)
            } else {
                let flat = !matches!(info.from_shape, Shape::Image(..));
                (format!("shortcuts.{key}.weight"), flat)
            }
        }
    }
}

fn transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// The tensors as a safetensors file (names sorted, `__metadata__` with `format`).
pub fn encode(tensors: &[TorchTensor], meta: &[(&str, String)]) -> Result<Vec<u8>, String> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| match &t.data {
            TorchData::F32(d) => (
                t.name.clone(),
                Dtype::F32,
                t.shape.clone(),
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            TorchData::I64(d) => (
                t.name.clone(),
                Dtype::I64,
                t.shape.clone(),
                d.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, dt, s, b)| {
            TensorView::new(*dt, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| format!("tensor \"{n}\": {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}
