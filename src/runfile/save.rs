//! Crash-safe saving: history chunk, weights, run file, then cleanup (see the module docs).

use super::history::{
    self, HISTORY_SUFFIX, HistoryFileRef, HistoryIndex, SeriesEntry, encode_payload, extends,
};
use super::{
    FORMAT, MAX_JSON_BYTES, Progress, RunFile, SUFFIX, SaveError, VERSION, WeightsRef,
    encode_weights, name_of_path, run_path,
};
use crate::metrics::{Checkpoint, History};
use crate::safe_fs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const WEIGHTS_SUFFIX: &str = ".weights.safetensors";
const TOKEN_DIGITS: usize = 12;

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

/// Saves a run to the run file `path` (its weights and history side file go beside it, named
/// after it); returns `path`. The run's stored name is kept as a label only.
///
/// The order makes it safe against a crash or `kill -9` at any point (see the module docs).
/// Saves within one process are serialised, so two threads saving the same run cannot delete
/// each other's files.
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
    let name = name_of_path(path);
    let committed = committed_history(path);
    let (file, series) = write_history(&dir, &name, &run.history, committed)?;
    let mut progress = run.progress;
    let weights = match checkpoint {
        Some(ck) => {
            progress = Progress {
                step: ck.step,
                optimizer_steps: ck.optimizer_steps,
            };
            Some(write_weights(&dir, &name, ck)?)
        }
        None => run.weights.clone(),
    };
    let keep_history = file.path.clone();
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
            file,
            series,
        },
        weights,
    };
    let json = serde_json::to_vec(&header).map_err(|e| io_err(path, e))?;
    safe_fs::write_atomic(path, &json).map_err(|e| io_err(path, e))?;
    let keep_weights = header.weights.as_ref().map(|w| w.path.as_str());
    remove_stale(&dir, &name, keep_weights, &keep_history);
    Ok(path.to_path_buf())
}

/// The history state the run file at `path` commits to, when it is a version-2 file whose side
/// file is this run's own and still holds the committed bytes; `None` otherwise (then the next
/// save writes a new side file).
fn committed_history(path: &Path) -> Option<HistoryIndex> {
    let bytes = safe_fs::read_regular(path, MAX_JSON_BYTES).ok()?;
    let header: RunHeader = serde_json::from_slice(&bytes).ok()?;
    let file = &header.history.file;
    if header.version != VERSION || !is_own_file(&file.path, &name_of_path(path), HISTORY_SUFFIX) {
        return None;
    }
    let side = safe_fs::parent_dir(path).join(&file.path);
    let meta = std::fs::symlink_metadata(&side).ok()?;
    (meta.is_file() && meta.len() >= file.bytes).then_some(header.history)
}

/// Writes the history's new points: appended as one chunk to the committed side file when the
/// history continues it, else the whole history into a new side file. Returns the reference and
/// series table for the run file.
fn write_history(
    dir: &Path,
    name: &str,
    h: &History,
    committed: Option<HistoryIndex>,
) -> Result<(HistoryFileRef, Vec<SeriesEntry>), SaveError> {
    let series = history::series_table(h);
    if let Some(c) = committed.filter(|c| extends(h, &c.series)) {
        let start: Vec<u64> = c.series.iter().map(|s| s.points).collect();
        let mut file = c.file;
        let Some(payload) = encode_payload(h, &start) else {
            return Ok((file, series));
        };
        let path = dir.join(&file.path);
        let (chunk, chain) = history::chunk(&payload, &file.sha256);
        append_at(&path, file.bytes, &chunk).map_err(|e| io_err(&path, e))?;
        file.bytes += chunk.len() as u64;
        file.chunks += 1;
        file.sha256 = chain;
        return Ok((file, series));
    }
    let token = format!("{:016x}", rand::random::<u64>());
    let file_name = format!("{name}.{}{HISTORY_SUFFIX}", &token[..TOKEN_DIGITS]);
    let path = dir.join(&file_name);
    let mut file = HistoryFileRef {
        path: file_name,
        bytes: 0,
        chunks: 0,
        sha256: history::empty_chain(),
    };
    let mut out = safe_fs::create_new(&path).map_err(|e| io_err(&path, e))?;
    if let Some(payload) = encode_payload(h, &[]) {
        let (chunk, chain) = history::chunk(&payload, &file.sha256);
        out.write_all(&chunk).map_err(|e| io_err(&path, e))?;
        file.bytes = chunk.len() as u64;
        file.chunks = 1;
        file.sha256 = chain;
    }
    out.sync_all().map_err(|e| io_err(&path, e))?;
    Ok((file, series))
}

/// Writes `bytes` at `offset` of an existing side file, dropping whatever an interrupted save
/// left after the committed length, and syncs it.
fn append_at(path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = safe_fs::open_existing_for_write(path)?;
    f.set_len(offset)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes a checkpoint's weights beside the run file under a name that no earlier save of
/// `name` used (unless the bytes are identical) and returns the reference for the run file.
/// The second step of [`save_to`]; on its own it leaves the run file as it was.
pub fn write_weights(dir: &Path, name: &str, ck: &Checkpoint) -> Result<WeightsRef, SaveError> {
    let bytes = encode_weights(ck).map_err(|reason| SaveError::Weights { reason })?;
    let sha256 = history::hex(&Sha256::digest(&bytes));
    let file = format!("{name}.{}{WEIGHTS_SUFFIX}", &sha256[..TOKEN_DIGITS]);
    let path = dir.join(&file);
    safe_fs::write_atomic(&path, &bytes).map_err(|e| io_err(&path, e))?;
    Ok(WeightsRef {
        path: file,
        sha256,
        bytes: bytes.len() as u64,
    })
}

/// Whether `file` is a weights or history file some save of the run `name` wrote:
/// `<name><suffix>` (weights before hashed names) or `<name>.<12 hex digits><suffix>`.
fn is_own_file(file: &str, name: &str, suffix: &str) -> bool {
    let Some(rest) = file.strip_prefix(name).and_then(|r| r.strip_suffix(suffix)) else {
        return false;
    };
    (rest.is_empty() && suffix == WEIGHTS_SUFFIX)
        || rest
            .strip_prefix('.')
            .is_some_and(|h| h.len() == TOKEN_DIGITS && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Deletes the weights and history files of earlier saves of `name` in `dir`, keeping the ones
/// the new run file names. Failures are ignored: a file left behind wastes space but never makes
/// a run unloadable.
fn remove_stale(dir: &Path, name: &str, keep_weights: Option<&str>, keep_history: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let stale_weights = Some(file) != keep_weights && is_own_file(file, name, WEIGHTS_SUFFIX);
        let stale_history = file != keep_history && is_own_file(file, name, HISTORY_SUFFIX);
        if (stale_weights || stale_history) && !file.ends_with(SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
