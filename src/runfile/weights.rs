//! safetensors encoding of a [`Checkpoint`](crate::metrics::Checkpoint).

use crate::metrics::{Checkpoint, NamedTensor, SamplerPosition};
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// Encodes the checkpoint's tensors as `f32` safetensors, with the step counters as metadata.
///
/// Written here rather than by `safetensors::serialize` (which takes the metadata as a
/// `HashMap` and so orders it differently from one call to the next): the header lists the
/// metadata keys sorted, then the tensors sorted by name with their data in that order, so the
/// same checkpoint always encodes to the same bytes.
pub fn encode_weights(ck: &Checkpoint) -> Result<Vec<u8>, String> {
    let mut meta = BTreeMap::from([
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
    let mut tensors: Vec<&NamedTensor> = ck.tensors.iter().collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(meta));
    let mut offset = 0usize;
    for t in &tensors {
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel != Some(t.data.len()) {
            return Err(format!(
                "tensor \"{}\" has {} values for shape {:?}",
                t.name,
                t.data.len(),
                t.shape
            ));
        }
        if header.contains_key(&t.name) || t.name == "__metadata__" {
            return Err(format!("tensor name \"{}\" appears twice", t.name));
        }
        let end = offset + 4 * t.data.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for t in &tensors {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
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
