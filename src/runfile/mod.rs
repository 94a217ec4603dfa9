//! Run files: `<name>.reslab.json` (spec, config, dataset, environment, status, notes and the
//! history's index), `<stem>.<token>.history.bin` (the history's points, appended chunk by
//! chunk) and `<stem>.<token>.weights.safetensors` (weights, BN buffers, optimiser state), with
//! crash-safe saves and validated loads. This module imports neither burn nor egui.
//!
//! # Saving
//!
//! A save (1) appends the points recorded since the last save to the history side file as one
//! chunk (or, when the side file is not this run file's own, another writer went past the
//! committed length, or the history does not continue it, writes a new side file), (2) writes
//! the weights as a new file (unless the previous save's own file holds the same bytes),
//! (3) replaces the run file atomically, and only then (4) deletes the side files the previous
//! version named and no longer does, unless another JSON file in the folder names them. The run
//! file commits to a prefix of the history side file (its length and a hash chain over its
//! chunks), so a process killed at any moment leaves a run file whose history and weights are
//! complete and match their hashes: the old state or the new one. Each autosave writes only the
//! new points, the small JSON and the weights, so the bytes written over a run grow linearly
//! with its length.
//!
//! # Ownership
//!
//! A run belongs to its file: [`save_to`] writes to the run-file path it is given (the file the
//! run was opened from, or `--out`), whatever name is stored inside the run. Side files are
//! named after the exact run-file name and a random token (`runfile/sides.rs` explains the
//! encoding), so no other name produces them. Copying, moving or renaming a run file within
//! its folder is safe: the copy names the same side files, which stay while any run file names
//! them, and its first save gives it files of its own. `reslab cp` / `reslab mv` copy or move a
//! run with its side files to any folder. One process writes a run file at a time: saves,
//! `train`, `resume`, `cp`/`mv` and the lab's training hold its lock ([`lock`]), and a second
//! writer is refused with the holder's process id. Readers take no lock: [`load`] reads the run
//! file again when a side file it names has just been replaced.
//!
//! # Format, version 3 (written by this build)
//!
//! ```json
//! { "format": "reslab-run", "version": 3, "name": "...", "spec": NetSpec, "config": TrainConfig,
//!   "dataset": DatasetSpec, "environment": {...}, "status": "finished", "notes": "...",
//!   "progress": {"step": 400, "optimizer_steps": 400},
//!   "history": {"layout": {...}, "latest_probe": {...}, "last_step": 400, "latest_boundary": null,
//!               "file": {"path": "name.0123456789ab.history.bin", "bytes": 123, "chunks": 1,
//!                        "sha256": "<hash chain>"},
//!               "series": [{"name": "loss", "layer": "", "points": 400, "last": [400, 1040187392]}]},
//!   "weights": {"path": "name.0123456789ab.weights.safetensors", "sha256": "...", "bytes": 123} }
//! ```
//!
//! The side file's chunks are described in [`history`]'s docs. Version 3 added the input
//! normalisation the run trained with (`history.layout.input_norm`: `[mean, std]` per input
//! channel or feature) and the names of its evaluation sets (`history.layout.eval_sets`, with
//! `dataset.eval_sets` describing them); version 2 files lack both and load, and what needs
//! the normalisation (`reslab eval`, `inspect`) recomputes it from the dataset and says so.
//! Version 1 has the same fields with the whole `History` inline under `"history"` (series as
//! `[key, {steps, values}]` pairs); it still loads.
//!
//! # Loading
//!
//! [`load`] reads only regular files, each within a cap checked before reading (the JSON against
//! [`MAX_JSON_BYTES`], the side file against the length the JSON commits to, the weights against
//! what the network's tensors can take), checks format and version, the network, config and
//! dataset, counters against overflow, the history against the network's layout, every hash, and
//! the weights' tensor names and shapes against the network. Every failure names the file and the
//! problem; nothing panics.
//!
//! Tensor names in the weights file are the stable layer paths (`block1.fc.weight`,
//! `block1.bn.running_mean`, `optim.m.block1.fc.weight`). Linear weights are stored in burn's
//! `[in, out]` layout (PyTorch's `nn.Linear.weight` is the transpose), conv weights as
//! `[out, in, k, k]`, all `f32`, readable with the `safetensors` Python package.

mod check;
mod error;
pub mod history;
mod load;
mod save;
mod sides;
mod summary;
mod transfer;
mod weights;

pub use error::{LoadError, RunFileError, SaveError};
pub use history::{HistoryIndex, MAX_HISTORY_BYTES};
pub use load::{load, load_without_weights, parse, parse_split};
pub use save::{remove, save, save_to, write_weights};
pub use sides::is_run_data;
pub use summary::{RunSummary, summarize};
pub use transfer::{TransferError, transfer};
pub use weights::{decode_weights, encode_weights};

/// Atomic file writing (kept here for the callers that save through the run-file module).
pub use crate::safe_fs::write_atomic;

use crate::metrics::{Checkpoint, History};
use crate::spec::{DatasetSpec, NetSpec, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field of every run file.
pub const FORMAT: &str = "reslab-run";
/// The version this build writes: 3 (history in a side file, the input normalisation in its
/// layout). Version 1 (everything in the JSON) and 2 files keep loading.
pub const VERSION: u32 = 3;
/// The largest run file (JSON) this build reads.
pub const MAX_JSON_BYTES: u64 = 1 << 30;
/// The largest weights file this build reads (a network's own tensors bound it further).
pub const MAX_WEIGHTS_BYTES: u64 = 2 << 30;
/// File suffix of run files.
pub const SUFFIX: &str = ".reslab.json";

/// The lock file of the run file at `path`: `.<file name>.lock` beside it (a hash of the name
/// when that would be too long a file name).
pub fn lock_path(path: &Path) -> PathBuf {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = if file.len() + 6 <= 255 {
        format!(".{file}.lock")
    } else {
        use sha2::Digest;
        let hash = history::hex(&sha2::Sha256::digest(file.as_bytes()));
        format!(".{}.lock", &hash[..32])
    };
    crate::safe_fs::parent_dir(path).join(name)
}

/// Takes the lock of the run file at `path` for this process (re-entrant; see
/// [`FileLock`](crate::safe_fs::FileLock)): refused when another process writes it.
pub fn lock(path: &Path) -> Result<crate::safe_fs::FileLock, SaveError> {
    crate::safe_fs::FileLock::acquire(&lock_path(path)).map_err(|e| SaveError::Locked {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// How a run ended (the status vocabulary lives with the history, where `train` can use it).
pub use crate::metrics::RunStatus;

/// Where and with what a run was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `flex`, `wgpu` or `remote`.
    pub backend: String,
    /// The device, in words.
    pub device: String,
    /// reslab's version.
    pub reslab_version: String,
}

impl Environment {
    /// The record for a run this build starts on `device`, the device in its words (those the
    /// run's first event repeats).
    pub fn for_device(device: &crate::spec::DeviceChoice) -> Self {
        Self {
            backend: device.backend().into(),
            device: device.describe(),
            reslab_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Where a run stands, for resuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// The optimiser's step counter.
    pub optimizer_steps: u64,
}

/// The weights file beside a run file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsRef {
    /// File name relative to the run file's folder.
    pub path: String,
    /// sha256 of the file, lower-case hex.
    pub sha256: String,
    /// Size of the file.
    pub bytes: u64,
}

/// A run: everything a run file holds, with the history in memory. Its serde form is the
/// single-JSON layout of version 1 (experiment files embed runs this way); [`save`] writes
/// version 2, with the history in a side file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The run's name: a label. Saves go to the file the run was opened from (or the name the
    /// user gives), never to a file named after this field.
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

/// The run name a run-file path stands for: its file name without [`SUFFIX`], sanitised.
pub fn name_of_path(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sanitize_name(file.strip_suffix(SUFFIX).unwrap_or(&file))
}
