//! Ways out of the lab. `reslab export RUN --pytorch DIR` writes a run as a PyTorch model:
//! `model.py` ([`pytorch`]), `model.safetensors` ([`weights`]), `preprocess.json` (the input's
//! shape, scale and per-channel normalisation, the class names) and, when the run's data can be
//! loaded, `samples.safetensors` (validation inputs with the lab's logits for them) and
//! `check.py`, which compares PyTorch's logits with the lab's. Plain data: no burn, no egui.

pub mod pytorch;
pub mod weights;

use crate::metrics::Checkpoint;
use crate::runfile::RunFile;
use crate::spec::ValidSpec;
use weights::{TorchData, TorchTensor};

/// The checker written beside an export with samples.
pub const CHECK_PY: &str = include_str!("check.py");

/// Format name in `preprocess.json` and the safetensors metadata.
pub const FORMAT: &str = "reslab-pytorch";

/// Validation samples with the lab's outputs for them.
pub struct Samples {
    /// Inputs `[n, sample...]` as the loader gives them (after `scale`, before normalising).
    pub inputs: Vec<f32>,
    /// The lab's outputs `[n, outputs]` for them.
    pub logits: Vec<f32>,
    /// How many.
    pub n: usize,
}

/// One file of an export: its name in the folder and its bytes.
pub type ExportFile = (&'static str, Vec<u8>);

/// The files of a PyTorch export of `run` with weights `ck`, trained with input normalisation
/// `norm` (`(mean, std)` per channel or feature).
pub fn pytorch_files(
    run: &RunFile,
    valid: &ValidSpec,
    ck: &Checkpoint,
    norm: &[(f32, f32)],
    samples: Option<&Samples>,
) -> Result<Vec<ExportFile>, String> {
    let tensors = weights::state_dict(valid, ck, ck.step)?;
    let meta = [
        ("format", FORMAT.to_string()),
        ("run", run.name.clone()),
        ("step", ck.step.to_string()),
    ];
    let mut files = vec![
        ("model.py", pytorch::model_py(valid).into_bytes()),
        ("model.safetensors", weights::encode(&tensors, &meta)?),
        ("preprocess.json", preprocess_json(run, valid, norm)),
    ];
    if let Some(s) = samples {
        files.push(("samples.safetensors", samples_file(valid, s)?));
        files.push(("check.py", CHECK_PY.as_bytes().to_vec()));
    }
    Ok(files)
}

/// `preprocess.json`: what a sample goes through before the network.
fn preprocess_json(run: &RunFile, valid: &ValidSpec, norm: &[(f32, f32)]) -> Vec<u8> {
    let (scale, values) = run.dataset.raw_values();
    let shape = sample_dims(valid);
    let json = serde_json::json!({
        "format": FORMAT,
        "version": 1,
        "run": run.name,
        "network": valid.spec.name,
        "step": run.history.last_step,
        "input_shape": shape,
        "scale": scale,
        "values": values,
        "mean": norm.iter().map(|p| p.0).collect::<Vec<_>>(),
        "std": norm.iter().map(|p| p.1).collect::<Vec<_>>(),
        "normalise": "x = (raw * scale - mean[c]) / std[c], c the channel (dimension 1 of \
                      [batch, channels, height, width]) or the feature",
        "class_names": run.dataset.class_names(),
        "outputs": valid.layers.last().map_or(0, |l| l.output.numel()),
        "batch_norm_running_var": "as the lab keeps it: the average of the batches' biased \
                                   (population) variances, which the lab normalises with at test \
                                   time; PyTorch's own updates average unbiased ones",
    });
    serde_json::to_vec_pretty(&json).unwrap_or_default()
}

/// One sample's dimensions (`[features]` or `[channels, height, width]`).
fn sample_dims(valid: &ValidSpec) -> Vec<usize> {
    match valid.input {
        crate::spec::Shape::Flat(d) => vec![d],
        crate::spec::Shape::Image(c, h, w) => vec![c, h, w],
        crate::spec::Shape::Tokens(n, d) => vec![n, d],
    }
}

fn samples_file(valid: &ValidSpec, s: &Samples) -> Result<Vec<u8>, String> {
    let mut shape = vec![s.n];
    shape.extend(sample_dims(valid));
    let outputs = s.logits.len().checked_div(s.n).unwrap_or(0);
    let tensors = [
        TorchTensor {
            name: "inputs".into(),
            shape,
            data: TorchData::F32(s.inputs.clone()),
        },
        TorchTensor {
            name: "logits".into(),
            shape: vec![s.n, outputs],
            data: TorchData::F32(s.logits.clone()),
        },
    ];
    weights::encode(&tensors, &[("format", FORMAT.to_string())])
}
