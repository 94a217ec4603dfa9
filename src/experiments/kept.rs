//! Kept runs: an experiment given a folder (`reslab experiment --keep-runs DIR`) writes each
//! training run there as soon as it ends, and a later start with the same folder reads a run
//! back instead of training it again when the network, the configuration and the data are the
//! same. An experiment of hours (degradation-cnn at full scale) interrupted by a closed laptop
//! or an ended session then goes on where it stopped.
//!
//! Only experiments that read nothing but the run record and its losses use this (the
//! degradation experiments); the others need the trained model itself.

use super::util::{Job, train};
use super::{ExperimentError, ExperimentOptions};
use crate::metrics::series;
use crate::runfile::{RunFile, RunStatus, sanitize_name};
use crate::safe_fs;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The largest kept run this build reads (a run record without weights).
const MAX_BYTES: u64 = 1 << 30;
/// The kept-run file suffix.
pub const SUFFIX: &str = ".kept-run.json";

/// A finished (or diverged) run as the degradation experiments read it.
pub(crate) struct Kept {
    /// The run record (history, no weights).
    pub run: RunFile,
    /// Training loss per step.
    pub losses: Vec<f32>,
    /// Whether it stopped on a non-finite loss or gradient.
    pub diverged: bool,
}

/// Where `job`'s run is kept in `dir`: its name and 12 hex digits of the SHA-256 of its network,
/// configuration and data, so that runs of other scales or settings never share a file.
pub(crate) fn path_for(dir: &Path, job: &Job<'_>) -> PathBuf {
    let key = serde_json::to_vec(&(&job.spec, &job.config, job.dataset)).unwrap_or_default();
    let digest = Sha256::digest(&key);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{}.{hex}{SUFFIX}", sanitize_name(&job.name)))
}

/// Trains `job`, or reads its kept run back (see the module docs).
pub(crate) fn train_or_reuse(
    job: &Job<'_>,
    opts: &mut ExperimentOptions,
) -> Result<Kept, ExperimentError> {
    let Some(dir) = opts.keep_runs.clone() else {
        return fresh(job, opts);
    };
    let path = path_for(&dir, job);
    if std::fs::symlink_metadata(&path).is_ok() {
        let run = read(&path, job)?;
        opts.report(job.span.1, &format!("{}: kept run read back", job.name));
        let losses = run
            .history
            .get(series::LOSS, "")
            .map_or(Vec::new(), |s| s.values.clone());
        let diverged = run.status == RunStatus::Diverged;
        return Ok(Kept {
            run,
            losses,
            diverged,
        });
    }
    let kept = fresh(job, opts)?;
    let bad = |reason: String| ExperimentError::Kept {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create the folder: {e}")))?;
    let json = serde_json::to_vec(&kept.run).map_err(|e| bad(e.to_string()))?;
    safe_fs::write_new_atomic(&path, &json).map_err(|e| bad(format!("cannot write: {e}")))?;
    Ok(kept)
}

fn fresh(job: &Job<'_>, opts: &mut ExperimentOptions) -> Result<Kept, ExperimentError> {
    let t = train(job, opts, None)?;
    Ok(Kept {
        run: t.run,
        losses: t.losses,
        diverged: t.diverged,
    })
}

/// Reads a kept run and checks that it is `job`'s and complete.
fn read(path: &Path, job: &Job<'_>) -> Result<RunFile, ExperimentError> {
    let bad = |reason: String| ExperimentError::Kept {
        path: path.to_path_buf(),
        reason: format!("{reason}; remove the file to train this run again"),
    };
    let bytes = safe_fs::read_regular(path, MAX_BYTES).map_err(|e| bad(e.to_string()))?;
    let mut run: RunFile =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a kept run: {e}")))?;
    run.history.reindex();
    // Where it trained does not matter: a run kept from a remote device serves on the CPU.
    let config = crate::spec::TrainConfig {
        device: run.config.device.clone(),
        ..job.config.clone()
    };
    if run.spec != job.spec || run.config != config || run.dataset != *job.dataset {
        return Err(bad(format!(
            "it holds another run than {} (network, configuration or data differ)",
            job.name
        )));
    }
    let done = run.status == RunStatus::Diverged
        || (run.status == RunStatus::Finished
            && run.history.last_step >= job.config.total_steps(job.data.train.len));
    if !done {
        return Err(bad("the run in it did not finish".into()));
    }
    Ok(run)
}
