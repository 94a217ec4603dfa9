//! Validated loading of run files, version 1 (everything in the JSON) and version 2 (history in
//! a side file).

use super::check::{check, check_weights, max_weights_bytes};
use super::history::{HistoryIndex, MAX_HISTORY_BYTES, read_history};
use super::save::RunHeader;
use super::{
    FORMAT, LoadError, LoadedRun, MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, RunFile, RunFileError,
    VERSION, WeightsRef, decode_weights,
};
use crate::metrics::Checkpoint;
use crate::safe_fs::{self, ReadError};
use crate::spec::ValidSpec;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

fn read_error(e: ReadError) -> LoadError {
    match e {
        ReadError::TooLarge { bytes, max } => LoadError::TooLarge { bytes, max },
        other => LoadError::Io(other.to_string()),
    }
}

/// Loads and validates a run file, its history side file (version 2) and its weights. Every
/// failure names the file and the problem; nothing panics, and nothing is allocated beyond
/// what the files' sizes (within their caps) justify.
///
/// Takes no lock: when a side file the run file names is missing and the run file has changed
/// meanwhile (a save replaced it and removed the file), it reads the run file again, up to
/// [`READ_RETRIES`] times.
pub fn load(path: &Path) -> Result<LoadedRun, RunFileError> {
    load_with(path, true)
}

/// [`load`] without the weights (their file is neither read nor checked): what a list of runs
/// needs.
pub fn load_without_weights(path: &Path) -> Result<RunFile, RunFileError> {
    load_with(path, false).map(|l| l.run)
}

fn load_with(path: &Path, weights: bool) -> Result<LoadedRun, RunFileError> {
    let err = |kind: LoadError| RunFileError {
        path: path.to_path_buf(),
        kind,
    };
    let read = || safe_fs::read_regular(path, MAX_JSON_BYTES).map_err(|e| err(read_error(e)));
    let mut bytes = read()?;
    let mut retries = 0;
    loop {
        match load_bytes(path, &bytes, weights) {
            Err(e) if retries < READ_RETRIES && side_file_gone(&e) => {
                // Read again only if a save replaced the run file meanwhile.
                let now = read()?;
                if now == bytes {
                    return Err(err(e));
                }
                bytes = now;
                retries += 1;
            }
            result => return result.map_err(err),
        }
    }
}

/// How often [`load`] reads a run file again after a save replaced it mid-read.
pub const READ_RETRIES: u32 = 5;

fn side_file_gone(e: &LoadError) -> bool {
    matches!(
        e,
        LoadError::WeightsMissing { .. } | LoadError::HistoryMissing { .. }
    )
}

fn load_bytes(path: &Path, bytes: &[u8], weights: bool) -> Result<LoadedRun, LoadError> {
    let dir = safe_fs::parent_dir(path);
    let value = json_value(bytes)?;
    let mut opened = Opened::new(dir, &value);
    let (mut run, valid) = match classify_value(value)? {
        Parsed::Inline(value) => read_inline(value)?,
        Parsed::Split(header) => {
            let side = read_side_file(dir, &header.history, opened.history.take())?;
            from_header(*header, &side)?
        }
    };
    let checkpoint = match &run.weights {
        Some(w) if weights => Some(load_weights(dir, w, &run, &valid, opened.weights.take())?),
        _ => None,
    };
    run.version = VERSION;
    Ok(LoadedRun {
        run,
        checkpoint,
        path: path.to_path_buf(),
    })
}

/// Parses and checks run-file bytes whose history is inline (version 1, or a run embedded in
/// an experiment file), without the weights.
pub fn parse(bytes: &[u8]) -> Result<RunFile, LoadError> {
    match classify(bytes)? {
        Parsed::Inline(value) => Ok(read_inline(value)?.0),
        Parsed::Split(_) => Err(LoadError::Field {
            field: "history".into(),
            reason: "the history is in a side file beside the run file; open the file itself"
                .into(),
        }),
    }
}

/// Parses and checks a version-2 run file from its JSON and the committed bytes of its history
/// side file (what [`load`] does after reading both; exposed for tests and fuzzing).
pub fn parse_split(json: &[u8], side: &[u8]) -> Result<RunFile, LoadError> {
    match classify(json)? {
        Parsed::Inline(value) => Ok(read_inline(value)?.0),
        Parsed::Split(header) => Ok(from_header(*header, side)?.0),
    }
}

enum Parsed {
    Inline(serde_json::Value),
    Split(Box<RunHeader>),
}

type OpenFile = Result<(std::fs::File, u64), ReadError>;

/// The side files a run file names, opened right after the run file was read and before
/// anything is checked: a save that replaces the run file and then removes the old files
/// cannot take them from this read (an open file stays readable), so the window in which
/// [`load`] has to read the run file again is the time between two `open` calls.
struct Opened {
    history: Option<OpenFile>,
    weights: Option<OpenFile>,
}

impl Opened {
    fn new(dir: &Path, value: &serde_json::Value) -> Self {
        let open = |pointer: &str| {
            let name = value.pointer(pointer)?.as_str()?;
            let path = beside(dir, name, pointer).ok()?;
            Some(safe_fs::open_regular(&path, u64::MAX))
        };
        Self {
            history: open("/history/file/path"),
            weights: open("/weights/path"),
        }
    }
}

fn json_value(bytes: &[u8]) -> Result<serde_json::Value, LoadError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            LoadError::Truncated {
                line: e.line(),
                column: e.column(),
            }
        } else {
            LoadError::NotJson(e.to_string())
        }
    })
}

/// Checks format and version and tells the two layouts apart.
fn classify(bytes: &[u8]) -> Result<Parsed, LoadError> {
    classify_value(json_value(bytes)?)
}

fn classify_value(value: serde_json::Value) -> Result<Parsed, LoadError> {
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
    match version {
        1 => Ok(Parsed::Inline(value)),
        // Version 2 files have a history index; an in-memory run serialised inline (as an
        // experiment file embeds it) carries the version it was read as.
        2 | 3 if value.pointer("/history/file").is_some() => {
            from_value(value).map(|h| Parsed::Split(Box::new(h)))
        }
        2 | 3 => Ok(Parsed::Inline(value)),
        v if v > u64::from(VERSION) => Err(LoadError::NewerVersion {
            found: v,
            supported: VERSION,
        }),
        v => Err(LoadError::Field {
            field: "version".into(),
            reason: format!("{v} is not a version this build knows"),
        }),
    }
}

/// Deserialises a run file's JSON; a wrong type or an unknown field is reported with its path
/// (`config.lr`, `history.series[3].points`).
fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, LoadError> {
    serde_path_to_error::deserialize(value).map_err(|e| LoadError::Field {
        field: match e.path().to_string() {
            p if p == "." => "(the file)".into(),
            p => p,
        },
        reason: e.into_inner().to_string(),
    })
}

fn read_inline(value: serde_json::Value) -> Result<(RunFile, ValidSpec), LoadError> {
    let mut run: RunFile = from_value(value)?;
    let valid = check(&mut run)?;
    Ok((run, valid))
}

fn from_header(h: RunHeader, side: &[u8]) -> Result<(RunFile, ValidSpec), LoadError> {
    let history = read_history(&h.history, side)?;
    let mut run = RunFile {
        format: h.format,
        version: h.version,
        name: h.name,
        spec: h.spec,
        config: h.config,
        dataset: h.dataset,
        environment: h.environment,
        status: h.status,
        notes: h.notes,
        progress: h.progress,
        history,
        weights: h.weights,
    };
    let valid = check(&mut run)?;
    Ok((run, valid))
}

/// A file name stored in a run file must be a plain name beside it.
fn beside(dir: &Path, name: &str, field: &str) -> Result<PathBuf, LoadError> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(LoadError::Field {
            field: field.into(),
            reason: format!("\"{name}\" is not a plain file name beside the run file"),
        });
    }
    Ok(dir.join(name))
}

/// Reads the committed prefix of the history side file (bytes past it are an interrupted
/// save's and are ignored).
fn read_side_file(
    dir: &Path,
    index: &HistoryIndex,
    opened: Option<OpenFile>,
) -> Result<Vec<u8>, LoadError> {
    let path = beside(dir, &index.file.path, "history.file.path")?;
    let want = index.file.bytes;
    let missing = |reason: String| LoadError::HistoryMissing {
        path: path.clone(),
        reason,
    };
    if want > MAX_HISTORY_BYTES {
        return Err(missing(format!(
            "the run file declares {want} bytes, more than the {MAX_HISTORY_BYTES} this build reads"
        )));
    }
    let (file, len) = opened
        .unwrap_or_else(|| safe_fs::open_regular(&path, u64::MAX))
        .map_err(|e| missing(e.to_string()))?;
    if len < want {
        return Err(missing(format!(
            "it has {len} bytes, the run file commits to {want}"
        )));
    }
    let mut out = Vec::with_capacity(want as usize);
    file.take(want)
        .read_to_end(&mut out)
        .map_err(|e| missing(e.to_string()))?;
    if (out.len() as u64) < want {
        return Err(missing("it shrank while being read".into()));
    }
    Ok(out)
}

fn load_weights(
    dir: &Path,
    w: &WeightsRef,
    run: &RunFile,
    valid: &ValidSpec,
    opened: Option<OpenFile>,
) -> Result<Checkpoint, LoadError> {
    let wpath = beside(dir, &w.path, "weights.path")?;
    let mismatch = |reason: String| LoadError::WeightsMismatch {
        path: wpath.clone(),
        reason,
    };
    // Nothing is read before the declared size is checked against the network's own bound.
    let max = max_weights_bytes(valid).min(MAX_WEIGHTS_BYTES);
    if w.bytes > max {
        return Err(mismatch(format!(
            "the run file declares {} bytes, more than this network's tensors can take ({max})",
            w.bytes
        )));
    }
    let (file, len) = opened
        .unwrap_or_else(|| safe_fs::open_regular(&wpath, u64::MAX))
        .map_err(|e| LoadError::WeightsMissing {
            path: wpath.clone(),
            reason: e.to_string(),
        })?;
    if len != w.bytes {
        return Err(mismatch(format!(
            "{len} bytes on disk, the run file says {}",
            w.bytes
        )));
    }
    let mut bytes = Vec::with_capacity(w.bytes as usize);
    file.take(w.bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::WeightsMissing {
            path: wpath.clone(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 != w.bytes {
        return Err(mismatch(format!(
            "{} bytes on disk, the run file says {}",
            bytes.len(),
            w.bytes
        )));
    }
    let hash = super::history::hex(&Sha256::digest(&bytes));
    if hash != w.sha256 {
        return Err(mismatch(format!(
            "sha256 is {hash}, the run file says {}",
            w.sha256
        )));
    }
    let mut ck = decode_weights(&bytes).map_err(&mismatch)?;
    check_weights(&ck, valid).map_err(mismatch)?;
    ck.step = run.progress.step;
    ck.optimizer_steps = run.progress.optimizer_steps;
    Ok(ck)
}
