//! CIFAR-10 binary batches: records of 1 label byte and 3072 pixel bytes (`[3, 32, 32]`).

use super::idx::MAX_FILE_BYTES;
use super::{DataError, RawData, Targets, Task};
use crate::spec::Shape;
use std::path::{Path, PathBuf};

const RECORD: usize = 1 + 3 * 32 * 32;

/// Parses one CIFAR-10 binary batch. `path` only names the source in errors.
pub fn parse_cifar_batch(path: &Path, bytes: &[u8]) -> Result<RawData, DataError> {
    if bytes.is_empty() {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            offset: 0,
            what: "a CIFAR-10 record",
            needed: RECORD as u64,
            available: 0,
        });
    }
    let whole = bytes.len() / RECORD;
    let rest = bytes.len() % RECORD;
    if rest != 0 {
        let offset = (whole * RECORD) as u64;
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            offset,
            what: "a CIFAR-10 record (1 label byte + 3072 pixels)",
            needed: RECORD as u64,
            available: rest as u64,
        });
    }
    let mut x = Vec::with_capacity(whole * (RECORD - 1));
    let mut y = Vec::with_capacity(whole);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                offset: (i * RECORD) as u64,
                label: rec[0],
                classes: 10,
            });
        }
        y.push(u32::from(rec[0]));
        x.extend(rec[1..].iter().map(|&b| f32::from(b) / 255.0));
    }
    Ok(RawData {
        x,
        y: Targets::Classes(y),
        len: whole,
        shape: Shape::Image(3, 32, 32),
        task: Task::Classification { classes: 10 },
    })
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "file size",
            offset: 0,
            value: meta.len(),
            reason: "larger than the 1 GiB the loader accepts",
        });
    }
    std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn concat(parts: Vec<RawData>) -> RawData {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut len = 0;
    for p in parts {
        x.extend(p.x);
        if let Targets::Classes(c) = p.y {
            y.extend(c);
        }
        len += p.len;
    }
    RawData {
        x,
        y: Targets::Classes(y),
        len,
        shape: Shape::Image(3, 32, 32),
        task: Task::Classification { classes: 10 },
    }
}

/// Loads CIFAR-10 from a folder: every `data_batch_N.bin` present (at least one) for training,
/// and `test_batch.bin` for validation when present. Also looks inside a
/// `cifar-10-batches-bin` subfolder, the archive's layout.
pub fn load_cifar10_dir(dir: &Path) -> Result<(RawData, Option<RawData>), DataError> {
    let dir: PathBuf = if dir.join("cifar-10-batches-bin").is_dir() {
        dir.join("cifar-10-batches-bin")
    } else {
        dir.to_path_buf()
    };
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir,
            reason: "not a folder".into(),
        });
    }
    let mut train = Vec::new();
    for k in 1..=5 {
        let p = dir.join(format!("data_batch_{k}.bin"));
        if p.is_file() {
            train.push(parse_cifar_batch(&p, &read(&p)?)?);
        }
    }
    if train.is_empty() {
        return Err(DataError::MissingFile {
            dir,
            what: "CIFAR-10 training batch",
            tried: "data_batch_1.bin … data_batch_5.bin".into(),
        });
    }
    let test_path = dir.join("test_batch.bin");
    let test = if test_path.is_file() {
        Some(parse_cifar_batch(&test_path, &read(&test_path)?)?)
    } else {
        None
    };
    let train = concat(train);
    if train.len < 2 {
        return Err(DataError::BadParameter {
            field: "CIFAR-10 training samples",
            value: train.len.to_string(),
            reason: "need at least 2",
        });
    }
    Ok((train, test))
}
