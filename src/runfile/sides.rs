//! Whose side files are whose: how weights and history files are named, which of them a run
//! file's previous version named, and which a save may delete.
//!
//! A side file is named `<stem>.<token><suffix>`. The stem is the run file's exact name without
//! `.reslab.json`, with every byte other than ASCII letters, digits, `-`, `_` and `.` (and a
//! leading `.`) written as `%XX`: `my run` → `my%20run`, `données` → `donn%C3%A9es`, so two
//! names never share a stem. A stem longer than 100 bytes is cut and ends in `~` and 8 hex digits
//! of the name's sha256 (`~` is otherwise always escaped). The token is 16 random hex digits
//! drawn for each new file, and the file is created only where nothing exists, so no other save,
//! of this run or another, ever gets the same file.
//!
//! After a save has replaced the run file, it deletes a side file only when (1) the run file's
//! previous version named it and the new one does not, or it is an orphan of this run file (a
//! file under this run file's exact stem that a save killed before replacing the run file left
//! behind), and (2) no JSON file in the folder names it: a copy of a run file (`cp a.reslab.json
//! b.reslab.json`) or a moved one shares the files it names, and they stay while any run file
//! names them.

use super::history::{HISTORY_SUFFIX, HistoryIndex};
use super::{MAX_JSON_BYTES, SUFFIX, WeightsRef};
use crate::safe_fs;
use sha2::Digest;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File-name suffix of weights files.
pub(super) const WEIGHTS_SUFFIX: &str = ".weights.safetensors";
const TOKEN_DIGITS: usize = 16;
const MAX_STEM: usize = 100;

/// What the run file's version on disk names, read before a save replaces it.
pub(super) struct Previous {
    /// Its history index, when it is a version-2 file.
    pub history: Option<HistoryIndex>,
    /// Its weights.
    pub weights: Option<WeightsRef>,
    /// Every side-file name it holds.
    pub names: Vec<String>,
}

/// The run file's name without [`SUFFIX`] (the whole name when it has none).
fn exact_stem(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.strip_suffix(SUFFIX).unwrap_or(&file).to_string()
}

/// The side files' stem of the run file at `path` (see the module docs).
pub(super) fn stem(path: &Path) -> String {
    clean_stem(&exact_stem(path))
}

/// The stem for a run-file name without its suffix: `%XX`-escaped, cut with a hash past
/// [`MAX_STEM`] bytes (see the module docs).
pub(super) fn clean_stem(name: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') || (b == b'.' && i > 0);
        if keep {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    if s.is_empty() {
        return "%".into();
    }
    if s.len() <= MAX_STEM {
        return s;
    }
    let hash = super::history::hex(&sha2::Sha256::digest(name.as_bytes()));
    format!("{}~{}", &s[..MAX_STEM - 9], &hash[..8])
}

/// Whether `file` is `<stem>.<16 hex digits><suffix>`: a side file made for a run file with
/// this stem.
pub(super) fn is_own(file: &str, stem: &str, suffix: &str) -> bool {
    file.strip_prefix(stem)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(suffix))
        .is_some_and(|h| h.len() == TOKEN_DIGITS && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn fresh_name(stem: &str, suffix: &str) -> String {
    format!("{stem}.{:016x}{suffix}", rand::random::<u64>())
}

/// Makes a new side file under a fresh token with `make` (which must fail with `AlreadyExists`
/// when something is at the path, and then another token is drawn); returns its name, path and
/// what `make` returned.
fn fresh<T>(
    dir: &Path,
    stem: &str,
    suffix: &str,
    make: impl Fn(&Path) -> std::io::Result<T>,
) -> Result<(String, PathBuf, T), (PathBuf, std::io::Error)> {
    let mut tries = 0;
    loop {
        let name = fresh_name(stem, suffix);
        let path = dir.join(&name);
        match make(&path) {
            Ok(t) => return Ok((name, path, t)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err((path, e)),
        }
    }
}

/// Creates a new, empty side file under a fresh token; returns its name, path and handle.
pub(super) fn create_fresh(
    dir: &Path,
    stem: &str,
    suffix: &str,
) -> Result<(String, PathBuf, std::fs::File), (PathBuf, std::io::Error)> {
    fresh(dir, stem, suffix, safe_fs::create_new)
}

/// Writes `bytes` atomically as a new side file under a fresh token; returns its name.
pub(super) fn write_fresh(
    dir: &Path,
    stem: &str,
    suffix: &str,
    bytes: &[u8],
) -> Result<String, (PathBuf, std::io::Error)> {
    fresh(dir, stem, suffix, |p| safe_fs::write_new_atomic(p, bytes)).map(|(name, ..)| name)
}

/// The run file at `path` as it is on disk now (any version), or `None` when there is none or
/// it does not read as a run file.
pub(super) fn previous(path: &Path) -> Option<Previous> {
    let bytes = safe_fs::read_regular(path, MAX_JSON_BYTES).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let history: Option<HistoryIndex> = value
        .get("history")
        .filter(|h| h.get("file").is_some())
        .and_then(|h| serde_json::from_value(h.clone()).ok());
    let weights: Option<WeightsRef> = value
        .get("weights")
        .and_then(|w| serde_json::from_value(w.clone()).ok());
    let names = [
        value.pointer("/history/file/path"),
        value.pointer("/weights/path"),
    ]
    .into_iter()
    .flatten()
    .filter_map(|v| v.as_str().map(String::from))
    .collect();
    Some(Previous {
        history,
        weights,
        names,
    })
}

/// Whether a name stored in a run file is a plain side-file name beside it (anything else is
/// never deleted).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\'])
        && !name.starts_with('.')
        && (name.ends_with(WEIGHTS_SUFFIX) || name.ends_with(HISTORY_SUFFIX))
}

/// Deletes the side files the previous version named and the new one (`keep`) does not, and
/// this run file's orphans, unless a JSON file in the folder names them (see the module docs).
/// Failures are ignored: a file left behind wastes space but never makes a run unloadable.
pub(super) fn remove_unused(
    dir: &Path,
    stem: &str,
    previous: &Option<Previous>,
    keep: &[Option<&str>],
) {
    let keep: HashSet<&str> = keep.iter().flatten().copied().collect();
    let mut candidates: Vec<String> = previous
        .iter()
        .flat_map(|p| p.names.iter().cloned())
        .filter(|n| plain(n) && !keep.contains(n.as_str()))
        .collect();
    candidates.extend(
        orphans(dir, stem)
            .into_iter()
            .filter(|n| !keep.contains(n.as_str())),
    );
    candidates.sort();
    candidates.dedup();
    if candidates.is_empty() {
        return;
    }
    let Some(named) = named_in_folder(dir, &candidates) else {
        return;
    };
    for c in candidates.iter().filter(|c| !named.contains(*c)) {
        let _ = std::fs::remove_file(dir.join(c));
    }
}

/// The side files in `dir` made under `stem`, which only saves of this run file make.
fn orphans(dir: &Path, stem: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter(|n| is_own(n, stem, WEIGHTS_SUFFIX) || is_own(n, stem, HISTORY_SUFFIX))
        .filter(|n| dir.join(n).is_file())
        .collect()
}

/// Which of `candidates` a JSON file in `dir` names (as a JSON string). `None` when a JSON file
/// could not be read: then nothing is deleted.
fn named_in_folder(dir: &Path, candidates: &[String]) -> Option<HashSet<String>> {
    let needles: Vec<(String, Vec<u8>)> = candidates
        .iter()
        .map(|c| (c.clone(), format!("\"{c}\"").into_bytes()))
        .collect();
    let mut named = HashSet::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let is_json = name.to_str().is_some_and(|n| n.ends_with(".json"));
        if !is_json || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let bytes = match safe_fs::read_regular(&entry.path(), MAX_JSON_BYTES) {
            Ok(b) => b,
            Err(safe_fs::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(_) => return None,
        };
        for (c, needle) in &needles {
            if contains(&bytes, needle) {
                named.insert(c.clone());
            }
        }
    }
    Some(named)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if haystack[at + 1..].starts_with(rest) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Whether writing over `path` could destroy a run: a run file, a run file's lock file, or an
/// existing file that a JSON file in its folder names (some run's side file). When a JSON file
/// there cannot be read, the answer is yes.
pub fn is_run_data(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lock = name.starts_with('.') && name.ends_with(".lock");
    if name.ends_with(SUFFIX) || lock {
        return true;
    }
    if std::fs::symlink_metadata(path).is_err() {
        return false;
    }
    let dir = safe_fs::parent_dir(path);
    named_in_folder(dir, &[name.to_string()]).is_none_or(|named| named.contains(name))
}
