//! safetensors encoding of a [`Checkpoint`](crate::metrics::Checkpoint).

use crate::metrics::{Checkpoint, NamedTensor, SamplerPosition};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// Encodes the checkpoint's tensors as `f32` safetensors, with the step counters as metadata.
pub fn encode_weights(ck: &Checkpoint) -> Result<Vec<u8>, String> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = ck
        .tensors
        .iter()
        .map(|t| {
            let b: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (t.name.clone(), t.shape.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| format!("tensor \"{n}\": {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut meta = HashMap::from([
        ("format".to_string(), "reslab-weights".to_string()),
        ("step".to_string(), ck.step.to_string()),
        (
            "optimizer_steps".to_string(),
            ck.optimizer_steps.to_string(),
        ),
    ]);
    if let Some(p) = ck.sampler {
        meta.insert(
            "sampler".to_string(),
            format!("{} {} {}", p.epoch, p.epoch_start, p.cursor),
        );
    }
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

/// Decodes safetensors bytes into a checkpoint; every tensor must be `f32`.
/// The step counters are read from the metadata when present.
pub fn decode_weights(bytes: &[u8]) -> Result<Checkpoint, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let num = |key: &str| {
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut tensors = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        let view = st.tensor(&name).map_err(|e| e.to_string())?;
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "tensor \"{name}\" is {:?}, expected F32",
                view.dtype()
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.push(NamedTensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    // `epoch epoch_start cursor`; anything else reads as absent (the order is then replayed).
    let sampler = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("sampler"))
        .and_then(|v| {
            let mut it = v.split(' ');
            let p = SamplerPosition {
                epoch: it.next()?.parse().ok()?,
                epoch_start: it.next()?.parse().ok()?,
                cursor: it.next()?.parse().ok()?,
            };
            it.next().is_none().then_some(p)
        });
    Ok(Checkpoint {
        step: num("step"),
        optimizer_steps: num("optimizer_steps"),
        tensors,
        sampler,
    })
}
