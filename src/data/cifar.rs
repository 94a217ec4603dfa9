//! CIFAR-10 binary batches: records of 1 label byte and 3072 pixel bytes (`[3, 32, 32]`).

use super::idx::{MAX_DATASET_VALUES, MAX_FILE_BYTES, check_dir, io_error};
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
    crate::safe_fs::read_regular(path, MAX_FILE_BYTES).map_err(|e| io_error(path, e))
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
    check_dir(&dir)?;
    let mut train = Vec::new();
    let mut files = Vec::new();
    let mut values = 0u64;
    let mut read_batch = |p: &Path| -> Result<RawData, DataError> {
        let batch = parse_cifar_batch(p, &read(p)?)?;
        values += batch.x.len() as u64;
        if values > MAX_DATASET_VALUES {
            return Err(DataError::TooLarge {
                dir: dir.clone(),
                values,
                max: MAX_DATASET_VALUES,
            });
        }
        Ok(batch)
    };
    for k in 1..=5 {
        let p = dir.join(format!("data_batch_{k}.bin"));
        if exists(&p)? {
            train.push(read_batch(&p)?);
            files.push(p.display().to_string());
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
    let test = if exists(&test_path)? {
        Some(read_batch(&test_path)?)
    } else {
        None
    };
    let train = concat(train);
    if train.len < 2 {
        return Err(DataError::TooFewSamples {
            files: files.join(", "),
            count: train.len,
            need: 2,
        });
    }
    Ok((train, test))
}

/// Whether a file exists; an error other than "not found" (permission denied, a path through a
/// file) is reported with the file's name.
fn exists(p: &Path) -> Result<bool, DataError> {
    match std::fs::metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(p, e)),
    }
}
