//! Run files: `<name>.reslab.json` (spec, config, dataset, environment, status, history, notes)
//! and `<name>.<hash>.weights.safetensors` beside it (weights, BN buffers, optimiser state), with
//! crash-safe saves and validated loads. This module imports neither burn nor egui.
//!
//! A save writes the weights under a new name (the first 12 hex digits of their sha256), then
//! replaces the run file atomically, then deletes the weights the old run file pointed at. A
//! process killed at any moment therefore leaves a run file whose weights are complete and
//! match its hash: the old pair or the new one, at worst with an orphaned weights file that the
//! next save of the same name removes.
//!
//! # Format, version 1
//!
//! ```json
//! { "format": "reslab-run", "version": 1, "name": "...", "spec": NetSpec, "config": TrainConfig,
//!   "dataset": DatasetSpec, "environment": {...}, "status": "finished", "notes": "...",
//!   "progress": {"step": 400, "optimizer_steps": 400},
//!   "history": History,
//!   "weights": {"path": "name.0123456789ab.weights.safetensors", "sha256": "...", "bytes": 123} }
//! ```
//!
//! Tensor names in the weights file are the stable layer paths (`block1.fc.weight`,
//! `block1.bn.running_mean`, `optim.m.block1.fc.weight`). Linear weights are stored in burn's
//! `[in, out]` layout (PyTorch's `nn.Linear.weight` is the transpose), conv weights as
//! `[out, in, k, k]`, all `f32`, readable with the `safetensors` Python package.

mod error;
mod weights;

pub use error::{LoadError, RunFileError, SaveError};
pub use weights::{decode_weights, encode_weights};

use crate::metrics::{Checkpoint, History};
use crate::spec::{DatasetSpec, NetSpec, TrainConfig, validate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `format` field of every run file.
pub const FORMAT: &str = "reslab-run";
/// The version this build writes.
pub const VERSION: u32 = 1;
/// The largest run file (JSON) this build reads.
pub const MAX_JSON_BYTES: u64 = 1 << 30;
/// The largest weights file this build reads.
pub const MAX_WEIGHTS_BYTES: u64 = 2 << 30;
/// File suffix of run files.
pub const SUFFIX: &str = ".reslab.json";

/// How a run ended, or that it is still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Saved while training (an autosave).
    Running,
    /// All steps done.
    Finished,
    /// Stopped by the user.
    Stopped,
    /// Ended by a non-finite loss or gradient.
    Diverged,
    /// Could not start or go on.
    Failed,
}

/// Where and with what a run was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `flex` or `wgpu`.
    pub backend: String,
    /// The device, in words.
    pub device: String,
    /// reslab's version.
    pub reslab_version: String,
}

/// Where a run stands, for resuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// The optimiser's step counter.
    pub optimizer_steps: u64,
}

/// The weights file beside a run file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsRef {
    /// File name relative to the run file's folder.
    pub path: String,
    /// sha256 of the file, lower-case hex.
    pub sha256: String,
    /// Size of the file.
    pub bytes: u64,
}

/// A run as stored on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The run's name (the file stem).
    pub name: String,
    /// The network.
    pub spec: NetSpec,
    /// The training configuration.
    pub config: TrainConfig,
    /// The data.
    pub dataset: DatasetSpec,
    /// Where it ran.
    pub environment: Environment,
    /// How it ended.
    pub status: RunStatus,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// Steps done.
    pub progress: Progress,
    /// Everything recorded.
    pub history: History,
    /// The weights file, if the run has weights.
    pub weights: Option<WeightsRef>,
}

/// A loaded run: the file and its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedRun {
    /// The run file.
    pub run: RunFile,
    /// The weights and optimiser state, when the run has them.
    pub checkpoint: Option<Checkpoint>,
    /// Where it was loaded from.
    pub path: PathBuf,
}

impl RunFile {
    /// A new run record with an empty history.
    pub fn new(
        name: &str,
        spec: NetSpec,
        config: TrainConfig,
        dataset: DatasetSpec,
        environment: Environment,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            name: sanitize_name(name),
            spec,
            config,
            dataset,
            environment,
            status: RunStatus::Running,
            notes: String::new(),
            progress: Progress::default(),
            history: History::default(),
            weights: None,
        }
    }
}

/// Makes a run name safe as a file stem: letters, digits, `-`, `_` and `.` stay, everything
/// else (path separators, `..`, spaces, control characters) becomes `_`; leading dots are
/// dropped; an empty result becomes `run`; at most 100 characters.
pub fn sanitize_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.contains("..") {
        s = s.replace("..", "_");
    }
    let s = s.trim_start_matches('.').to_string();
    let s: String = s.chars().take(100).collect();
    if s.is_empty() || s.chars().all(|c| c == '_') {
        "run".into()
    } else {
        s
    }
}

/// The run-file path for a run name in a folder.
pub fn run_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", sanitize_name(name)))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, `fsync`, rename
/// over the target, then `fsync` of the folder. A crash at any point leaves either the old file
/// or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    // Unique per process and per call, so two threads saving at once never share a file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

const WEIGHTS_SUFFIX: &str = ".weights.safetensors";
const WEIGHTS_HASH_DIGITS: usize = 12;

/// Saves a run (and its checkpoint, when given) into `dir` under its sanitised name; returns
/// the run file's path.
///
/// The order makes it safe against a crash or `kill -9` at any point: the weights go to a new
/// file named by their hash, then the run file is replaced atomically, and only then are the
/// weights files of earlier saves of this name deleted. Saves within one process are
/// serialised, so two threads saving the same name cannot delete each other's weights.
pub fn save(
    dir: &Path,
    run: &RunFile,
    checkpoint: Option<&Checkpoint>,
) -> Result<PathBuf, SaveError> {
    static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SAVING.lock().unwrap_or_else(|p| p.into_inner());
    std::fs::create_dir_all(dir).map_err(|e| SaveError::Io {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let name = sanitize_name(&run.name);
    let mut run = run.clone();
    run.name = name.clone();
    run.format = FORMAT.into();
    run.version = VERSION;
    if let Some(ck) = checkpoint {
        run.weights = Some(write_weights(dir, &name, ck)?);
        run.progress = Progress {
            step: ck.step,
            optimizer_steps: ck.optimizer_steps,
        };
    }
    let json = serde_json::to_vec(&run).map_err(|e| SaveError::Io {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let path = run_path(dir, &name);
    write_atomic(&path, &json).map_err(|e| SaveError::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    remove_stale_weights(dir, &name, run.weights.as_ref().map(|w| w.path.as_str()));
    Ok(path)
}

/// Writes a checkpoint's weights beside the run file under a name that no earlier save of
/// `name` used (unless the bytes are identical) and returns the reference for the run file.
/// The first step of [`save`]; on its own it leaves the run file as it was.
pub fn write_weights(dir: &Path, name: &str, ck: &Checkpoint) -> Result<WeightsRef, SaveError> {
    let bytes = encode_weights(ck).map_err(|reason| SaveError::Weights { reason })?;
    let sha256 = sha256_hex(&bytes);
    let file = format!("{name}.{}{WEIGHTS_SUFFIX}", &sha256[..WEIGHTS_HASH_DIGITS]);
    let path = dir.join(&file);
    write_atomic(&path, &bytes).map_err(|e| SaveError::Io {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(WeightsRef {
        path: file,
        sha256,
        bytes: bytes.len() as u64,
    })
}

/// Whether `file` is a weights file some save of the run `name` wrote: `<name>.weights.safetensors`
/// (the name before hashed names) or `<name>.<12 hex digits>.weights.safetensors`.
fn is_weights_file_of(file: &str, name: &str) -> bool {
    let Some(rest) = file
        .strip_prefix(name)
        .and_then(|r| r.strip_suffix(WEIGHTS_SUFFIX))
    else {
        return false;
    };
    rest.is_empty()
        || rest.strip_prefix('.').is_some_and(|h| {
            h.len() == WEIGHTS_HASH_DIGITS && h.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// Deletes the weights files of earlier saves of `name` in `dir`, keeping `keep`. Failures are
/// ignored: a file left behind wastes space but never makes a run unloadable.
fn remove_stale_weights(dir: &Path, name: &str, keep: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if Some(file) != keep && is_weights_file_of(file, name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Loads and validates a run file and its weights. Every failure names the file and the
/// problem; nothing panics, and nothing is allocated beyond what the files' sizes justify.
pub fn load(path: &Path) -> Result<LoadedRun, RunFileError> {
    let err = |kind: LoadError| RunFileError {
        path: path.to_path_buf(),
        kind,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(LoadError::Io(e.to_string())))?;
    if meta.len() > MAX_JSON_BYTES {
        return Err(err(LoadError::TooLarge {
            bytes: meta.len(),
            max: MAX_JSON_BYTES,
        }));
    }
    let bytes = std::fs::read(path).map_err(|e| err(LoadError::Io(e.to_string())))?;
    let run = parse(&bytes).map_err(err)?;
    let checkpoint = match &run.weights {
        None => None,
        Some(w) => Some(load_weights(path, w, &run).map_err(err)?),
    };
    Ok(LoadedRun {
        run,
        checkpoint,
        path: path.to_path_buf(),
    })
}

/// Parses and checks run-file bytes (without the weights).
pub fn parse(bytes: &[u8]) -> Result<RunFile, LoadError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            LoadError::Truncated {
                line: e.line(),
                column: e.column(),
            }
        } else {
            LoadError::NotJson(e.to_string())
        }
    })?;
    let format = value.get("format").and_then(|v| v.as_str());
    if format != Some(FORMAT) {
        return Err(LoadError::WrongFormat(
            format.map_or_else(|| "nothing".into(), |f| format!("\"{f}\"")),
        ));
    }
    let version = value
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or(LoadError::Field {
            field: "version".into(),
            reason: "missing or not a whole number".into(),
        })?;
    let mut run = match version {
        1 => read_v1(value)?,
        v if v > u64::from(VERSION) => {
            return Err(LoadError::NewerVersion {
                found: v,
                supported: VERSION,
            });
        }
        v => {
            return Err(LoadError::Field {
                field: "version".into(),
                reason: format!("{v} is not a version this build knows"),
            });
        }
    };
    check(&mut run)?;
    Ok(run)
}

/// The reader of version 1. Later versions get a reader each, and old files keep loading.
fn read_v1(value: serde_json::Value) -> Result<RunFile, LoadError> {
    serde_json::from_value(value).map_err(|e| LoadError::Field {
        field: "(structure)".into(),
        reason: e.to_string(),
    })
}

fn check(run: &mut RunFile) -> Result<(), LoadError> {
    validate(&run.spec).map_err(|e| LoadError::Field {
        field: "spec".into(),
        reason: e.to_string(),
    })?;
    run.config.validate().map_err(|e| LoadError::Field {
        field: "config".into(),
        reason: e.to_string(),
    })?;
    run.history.reindex();
    for (key, s) in run.history.iter() {
        if s.steps.len() != s.values.len() {
            return Err(LoadError::InconsistentHistory {
                series: format!("{} {}", key.name, key.layer).trim().to_string(),
                steps: s.steps.len(),
                values: s.values.len(),
            });
        }
        if s.steps.windows(2).any(|w| w[0] > w[1]) {
            return Err(LoadError::Field {
                field: format!("history series {} {}", key.name, key.layer),
                reason: "steps are not in order".into(),
            });
        }
    }
    if run.weights.is_some() && run.history.last_step > run.progress.step {
        return Err(LoadError::Field {
            field: "progress.step".into(),
            reason: format!(
                "the history reaches step {} but the weights are from step {}",
                run.history.last_step, run.progress.step
            ),
        });
    }
    Ok(())
}

fn load_weights(run_path: &Path, w: &WeightsRef, run: &RunFile) -> Result<Checkpoint, LoadError> {
    if w.path.contains('/') || w.path.contains('\\') || w.path.starts_with('.') {
        return Err(LoadError::Field {
            field: "weights.path".into(),
            reason: format!(
                "\"{}\" is not a plain file name beside the run file",
                w.path
            ),
        });
    }
    let dir = run_path.parent().unwrap_or(Path::new("."));
    let wpath = dir.join(&w.path);
    let meta = std::fs::metadata(&wpath).map_err(|e| LoadError::WeightsMissing {
        path: wpath.clone(),
        reason: e.to_string(),
    })?;
    if meta.len() > MAX_WEIGHTS_BYTES {
        return Err(LoadError::TooLarge {
            bytes: meta.len(),
            max: MAX_WEIGHTS_BYTES,
        });
    }
    if meta.len() != w.bytes {
        return Err(LoadError::WeightsMismatch {
            path: wpath,
            reason: format!(
                "{} bytes on disk, the run file says {}",
                meta.len(),
                w.bytes
            ),
        });
    }
    let bytes = std::fs::read(&wpath).map_err(|e| LoadError::WeightsMissing {
        path: wpath.clone(),
        reason: e.to_string(),
    })?;
    let hash = sha256_hex(&bytes);
    if hash != w.sha256 {
        return Err(LoadError::WeightsMismatch {
            path: wpath,
            reason: format!("sha256 is {hash}, the run file says {}", w.sha256),
        });
    }
    let mut ck = decode_weights(&bytes).map_err(|reason| LoadError::WeightsMismatch {
        path: wpath.clone(),
        reason,
    })?;
    ck.step = run.progress.step;
    ck.optimizer_steps = run.progress.optimizer_steps;
    Ok(ck)
}
