//! Crash-safe saving: history chunk, weights, run file, then cleanup (see the module docs).

use super::history::{
    self, HISTORY_SUFFIX, HistoryFileRef, HistoryIndex, SeriesEntry, encode_payload, extends,
};
use super::sides::{self, Previous, WEIGHTS_SUFFIX};
use super::{FORMAT, Progress, RunFile, SaveError, VERSION, WeightsRef, encode_weights, run_path};
use crate::metrics::{Checkpoint, History};
use crate::safe_fs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The JSON of a version-2 run file: a [`RunFile`] with the history's index in place of the
/// history.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunHeader {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub spec: crate::spec::NetSpec,
    pub config: crate::spec::TrainConfig,
    pub dataset: crate::spec::DatasetSpec,
    pub environment: super::Environment,
    pub status: super::RunStatus,
    #[serde(default)]
    pub notes: String,
    pub progress: Progress,
    pub history: HistoryIndex,
    pub weights: Option<WeightsRef>,
}

fn io_err(path: &Path, e: impl ToString) -> SaveError {
    SaveError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Saves a run into `dir` under its sanitised name (`dir/<name>.reslab.json`); returns the run
/// file's path. For a run opened from a file, use [`save_to`] with that file.
pub fn save(
    dir: &Path,
    run: &RunFile,
    checkpoint: Option<&Checkpoint>,
) -> Result<PathBuf, SaveError> {
    save_to(&run_path(dir, &run.name), run, checkpoint)
}

/// Saves a run to the run file `path` (its weights and history side file go beside it);
/// returns `path`. The run's stored name is kept as a label only.
///
/// The order makes it safe against a crash or `kill -9` at any point (see the module docs).
/// The save holds the run file's lock ([`super::lock`]): a run file another process is writing
/// is refused, and saves of one file within this process take turns.
pub fn save_to(
    path: &Path,
    run: &RunFile,
    checkpoint: Option<&Checkpoint>,
) -> Result<PathBuf, SaveError> {
    static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SAVING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = safe_fs::parent_dir(path).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    safe_fs::check_target(path).map_err(|e| io_err(path, e))?;
    let _lock = super::lock(path)?;
    let stem = sides::stem(path);
    let previous = sides::previous(path);
    let (file, series) = write_history(&dir, &stem, &run.history, &previous)?;
    let mut progress = run.progress;
    let weights = match checkpoint {
        Some(ck) => {
            progress = Progress {
                step: ck.step,
                optimizer_steps: ck.optimizer_steps,
            };
            Some(weights_for(&dir, &stem, ck, &previous)?)
        }
        None => run.weights.clone(),
    };
    let header = RunHeader {
        format: FORMAT.into(),
        version: VERSION,
        name: run.name.clone(),
        spec: run.spec.clone(),
        config: run.config.clone(),
        dataset: run.dataset.clone(),
        environment: run.environment.clone(),
        status: run.status,
        notes: run.notes.clone(),
        progress,
        history: HistoryIndex {
            layout: run.history.layout.clone(),
            latest_probe: run.history.latest_probe.clone(),
            last_step: run.history.last_step,
            latest_boundary: run.history.latest_boundary.clone(),
            latest_set_bn: run.history.latest_set_bn.clone(),
            file,
            series,
        },
        weights,
    };
    let json = serde_json::to_vec(&header).map_err(|e| io_err(path, e))?;
    safe_fs::write_atomic(path, &json).map_err(|e| io_err(path, e))?;
    let keep = [
        Some(header.history.file.path.as_str()),
        header.weights.as_ref().map(|w| w.path.as_str()),
    ];
    sides::remove_unused(&dir, &stem, &previous, &keep);
    Ok(path.to_path_buf())
}

/// Writes the history's new points: appended as one chunk to the side file the previous
/// version of this run file committed to, when that file is this run file's own, nobody has
/// written past the committed length, and the history continues it; else the whole history
/// into a new side file. Returns the reference and series table for the run file.
fn write_history(
    dir: &Path,
    stem: &str,
    h: &History,
    previous: &Option<Previous>,
) -> Result<(HistoryFileRef, Vec<SeriesEntry>), SaveError> {
    let series = history::series_table(h);
    let committed = previous
        .as_ref()
        .and_then(|p| p.history.clone())
        .filter(|c| sides::is_own(&c.file.path, stem, HISTORY_SUFFIX) && extends(h, &c.series));
    if let Some(c) = committed {
        let start: Vec<u64> = c.series.iter().map(|s| s.points).collect();
        let mut file = c.file;
        let Some(payload) = encode_payload(h, &start) else {
            return Ok((file, series));
        };
        let path = dir.join(&file.path);
        let (chunk, chain) = history::chunk(&payload, &file.sha256);
        // Bytes past the committed length are an interrupted save's, or another run file's
        // that shares this one (a copy): either way, start a new side file.
        if safe_fs::append_exact(&path, file.bytes, &chunk).unwrap_or(false) {
            file.bytes += chunk.len() as u64;
            file.chunks += 1;
            file.sha256 = chain;
            return Ok((file, series));
        }
    }
    write_new_history(dir, stem, h).map(|file| (file, series))
}

/// Writes the whole history as the first chunk of a new side file under a fresh token.
fn write_new_history(dir: &Path, stem: &str, h: &History) -> Result<HistoryFileRef, SaveError> {
    let (file_name, path, mut out) =
        sides::create_fresh(dir, stem, HISTORY_SUFFIX).map_err(|(p, e)| io_err(&p, e))?;
    let mut file = HistoryFileRef {
        path: file_name,
        bytes: 0,
        chunks: 0,
        sha256: history::empty_chain(),
    };
    if let Some(payload) = encode_payload(h, &[]) {
        let (chunk, chain) = history::chunk(&payload, &file.sha256);
        out.write_all(&chunk).map_err(|e| io_err(&path, e))?;
        file.bytes = chunk.len() as u64;
        file.chunks = 1;
        file.sha256 = chain;
    }
    out.sync_all().map_err(|e| io_err(&path, e))?;
    Ok(file)
}

/// The weights reference for the run file: the previous save's own file when it holds exactly
/// these bytes (the final save after the last autosave writes nothing), else a new file.
fn weights_for(
    dir: &Path,
    stem: &str,
    ck: &Checkpoint,
    previous: &Option<Previous>,
) -> Result<WeightsRef, SaveError> {
    let bytes = encode_weights(ck).map_err(|reason| SaveError::Weights { reason })?;
    let sha256 = history::hex(&Sha256::digest(&bytes));
    let same = previous
        .as_ref()
        .and_then(|p| p.weights.as_ref())
        .filter(|w| {
            w.sha256 == sha256
                && w.bytes == bytes.len() as u64
                && sides::is_own(&w.path, stem, WEIGHTS_SUFFIX)
                && std::fs::symlink_metadata(dir.join(&w.path))
                    .is_ok_and(|m| m.is_file() && m.len() == w.bytes)
        });
    if let Some(w) = same {
        return Ok(w.clone());
    }
    write_weight_bytes(dir, stem, bytes, sha256)
}

/// Writes a checkpoint's weights beside the run file under a new name of the run file `stem`
/// (see [`sides`]) and returns the reference for the run file. The second step of
/// [`save_to`]; on its own it leaves the run file as it was.
pub fn write_weights(dir: &Path, stem: &str, ck: &Checkpoint) -> Result<WeightsRef, SaveError> {
    let bytes = encode_weights(ck).map_err(|reason| SaveError::Weights { reason })?;
    let sha256 = history::hex(&Sha256::digest(&bytes));
    write_weight_bytes(dir, &sides::clean_stem(stem), bytes, sha256)
}

fn write_weight_bytes(
    dir: &Path,
    stem: &str,
    bytes: Vec<u8>,
    sha256: String,
) -> Result<WeightsRef, SaveError> {
    let file =
        sides::write_fresh(dir, stem, WEIGHTS_SUFFIX, &bytes).map_err(|(p, e)| io_err(&p, e))?;
    Ok(WeightsRef {
        path: file,
        sha256,
        bytes: bytes.len() as u64,
    })
}

/// Removes a run file and the side files it names that no other JSON file in its folder names
/// (`reslab mv`); holds its lock.
pub fn remove(path: &Path) -> Result<(), SaveError> {
    let _lock = super::lock(path)?;
    let previous = sides::previous(path);
    std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
    let dir = safe_fs::parent_dir(path);
    safe_fs::sync_dir(dir);
    sides::remove_unused(dir, &sides::stem(path), &previous, &[]);
    Ok(())
}
