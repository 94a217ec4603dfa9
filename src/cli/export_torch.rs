//! `reslab export RUN --pytorch DIR`: the run as a PyTorch model ([`crate::interop`]): `model.py`,
//! `model.safetensors`, `preprocess.json`, and, when the run's dataset can be loaded here, 256
//! validation samples with the lab's logits and `check.py` to compare PyTorch's with them.

use super::{CliError, bad_input, runtime};
use crate::data;
use crate::interop::{self, Samples};
use crate::metrics::Checkpoint;
use crate::runfile::{LoadedRun, RunFile};
use crate::safe_fs;
use crate::spec::validate;
use crate::train::NormMode;
use std::path::Path;

/// Validation samples an export carries at most.
pub const SAMPLES: usize = 256;

/// Writes the export of `loaded` (read from `file`) into the folder `dir` (made if missing).
pub(crate) fn export(loaded: &LoadedRun, file: &Path, dir: &Path) -> Result<(), CliError> {
    let Some(ck) = &loaded.checkpoint else {
        return Err(bad_input(format!(
            "{}: the run has no weights to export",
            file.display()
        )));
    };
    let run = &loaded.run;
    let valid = validate(&run.spec).map_err(bad_input)?;
    let (norm, recorded) = super::eval::input_norm(run).map_err(bad_input)?;
    if !recorded {
        crate::say!(
            "{}: the run file does not record its input normalisation (before version 3); recomputed from the dataset",
            file.display()
        );
    }
    let samples = match samples(run, ck, &norm) {
        Ok(s) => Some(s),
        Err(why) => {
            crate::say!("no samples to check the export with: {why}");
            None
        }
    };
    let files = interop::pytorch_files(run, &valid, ck, &norm, samples.as_ref())
        .map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
    if dir.is_file() {
        return Err(bad_input(format!(
            "{}: is a file; name a folder for the export",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| bad_input(format!("{}: cannot create it: {e}", dir.display())))?;
    // Every target checked before anything is written: a refused one leaves the folder as it was.
    let stale = ["samples.safetensors", "check.py"];
    let names = files.iter().map(|f| f.0).chain(stale);
    for name in names {
        super::run::refuse_run_data(&dir.join(name), file)?;
    }
    for (name, bytes) in &files {
        let out = dir.join(name);
        safe_fs::write_atomic(&out, bytes)
            .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))?;
    }
    // Without samples, an earlier export's samples and checker would check the wrong model.
    for name in stale.iter().filter(|n| !files.iter().any(|f| f.0 == **n)) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let names: Vec<&str> = files.iter().map(|f| f.0).collect();
    crate::say!("wrote {} into {}", names.join(", "), dir.display());
    Ok(())
}

/// The first [`SAMPLES`] validation samples of the run's data (after the loader's scaling,
/// before normalising) and the lab's logits for them.
fn samples(run: &RunFile, ck: &Checkpoint, norm: &[(f32, f32)]) -> Result<Samples, String> {
    let mut data = data::load_raw(&run.dataset).map_err(|e| e.to_string())?;
    let n = data.valid.len.min(SAMPLES);
    let raw = data.valid.subset(&(0..n).collect::<Vec<_>>());
    let mut normed = raw.clone();
    data::apply_norm(&mut normed, norm, data.sample_shape);
    data.valid = normed;
    data.eval_sets.clear();
    let e = super::eval::lab_outputs(run, ck, data, (NormMode::Running, SAMPLES))
        .map_err(|e| e.message)?;
    Ok(Samples {
        inputs: raw.x,
        logits: e.outputs,
        n,
    })
}
