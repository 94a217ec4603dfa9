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
pub fn load(path: &Path) -> Result<LoadedRun, RunFileError> {
    let err = |kind: LoadError| RunFileError {
        path: path.to_path_buf(),
        kind,
    };
    let bytes = safe_fs::read_regular(path, MAX_JSON_BYTES).map_err(|e| err(read_error(e)))?;
    let dir = safe_fs::parent_dir(path);
    let (mut run, valid) = match classify(&bytes).map_err(err)? {
        Parsed::Inline(value) => read_inline(value).map_err(err)?,
        Parsed::Split(header) => {
            let side = read_side_file(dir, &header.history).map_err(err)?;
            from_header(*header, &side).map_err(err)?
        }
    };
    let checkpoint = match &run.weights {
        None => None,
        Some(w) => Some(load_weights(dir, w, &run, &valid).map_err(err)?),
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

/// Checks format and version and tells the two layouts apart.
fn classify(bytes: &[u8]) -> Result<Parsed, LoadError> {
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
    match version {
        1 => Ok(Parsed::Inline(value)),
        // Version 2 files have a history index; an in-memory run serialised inline (as an
        // experiment file embeds it) carries the version it was read as.
        2 if value.pointer("/history/file").is_some() => serde_json::from_value(value)
            .map(|h| Parsed::Split(Box::new(h)))
            .map_err(structure),
        2 => Ok(Parsed::Inline(value)),
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

fn structure(e: serde_json::Error) -> LoadError {
    LoadError::Field {
        field: "(structure)".into(),
        reason: e.to_string(),
    }
}

fn read_inline(value: serde_json::Value) -> Result<(RunFile, ValidSpec), LoadError> {
    let mut run: RunFile = serde_json::from_value(value).map_err(structure)?;
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
fn read_side_file(dir: &Path, index: &HistoryIndex) -> Result<Vec<u8>, LoadError> {
    let path = beside(dir, &index.file.path, "history.file.path")?;
    let want = index.file.bytes;
    if want > MAX_HISTORY_BYTES {
        return Err(LoadError::TooLarge {
            bytes: want,
            max: MAX_HISTORY_BYTES,
        });
    }
    let missing = |reason: String| LoadError::HistoryMissing {
        path: path.clone(),
        reason,
    };
    let (file, len) = safe_fs::open_regular(&path, u64::MAX).map_err(|e| missing(e.to_string()))?;
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
    let bytes = safe_fs::read_regular(&wpath, w.bytes).map_err(|e| match e {
        ReadError::TooLarge { bytes, .. } => mismatch(format!(
            "{bytes} bytes on disk, the run file says {}",
            w.bytes
        )),
        other => LoadError::WeightsMissing {
            path: wpath.clone(),
            reason: other.to_string(),
        },
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
