//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.

use super::{DataError, RawData, Targets, Task};
use crate::spec::Shape;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest decompressed file the loaders accept (full CIFAR-10 and MNIST are far smaller).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// A parsed IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions from the header.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads a file, decompressing it when it starts with the gzip magic; at most
/// [`MAX_FILE_BYTES`] after decompression.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    gunzip_if_needed(path, raw)
}

fn gunzip_if_needed(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "decompressed size",
            offset: 0,
            value: out.len() as u64,
            reason: "larger than the 1 GiB the loader accepts",
        });
    }
    Ok(out)
}

/// Parses an IDX byte array (`0x00 0x00 0x08 ndim`, big-endian u32 dims, u8 values).
/// `path` only names the source in errors.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let truncated = |offset: u64, what: &'static str, needed: u64| DataError::Truncated {
        path: path.to_path_buf(),
        offset,
        what,
        needed,
        available: (bytes.len() as u64).saturating_sub(offset),
    };
    if bytes.len() < 4 {
        return Err(truncated(0, "the IDX magic number", 4));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "magic",
            offset: 0,
            value: u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            reason: "an IDX file starts with two zero bytes",
        });
    }
    if bytes[2] != 0x08 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "data type",
            offset: 2,
            value: u64::from(bytes[2]),
            reason: "only unsigned bytes (0x08) are supported",
        });
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "number of dimensions",
            offset: 3,
            value: ndim as u64,
            reason: "expected 1 to 4",
        });
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(truncated(4, "the dimension sizes", (4 * ndim) as u64));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut total: u64 = 1;
    for d in 0..ndim {
        let o = 4 + 4 * d;
        let v = u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as u64;
        total = total.saturating_mul(v);
        dims.push(v as usize);
    }
    // Check the announced size against what the file holds before allocating anything.
    let available = (bytes.len() - header) as u64;
    if total > available {
        return Err(truncated(header as u64, "the values", total));
    }
    if total < available {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "dimension sizes",
            offset: 4,
            value: total,
            reason: "the file holds more bytes than the dimensions announce",
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Builds raw MNIST-style data from an images array `[n, h, w]` and a labels array `[n]`.
fn images_and_labels(
    images_path: &Path,
    images: IdxArray,
    labels_path: &Path,
    labels: IdxArray,
) -> Result<RawData, DataError> {
    if images.dims.len() != 3 {
        return Err(DataError::BadHeader {
            path: images_path.to_path_buf(),
            field: "number of dimensions",
            offset: 3,
            value: images.dims.len() as u64,
            reason: "an image file has 3 dimensions [n, height, width]",
        });
    }
    if labels.dims.len() != 1 {
        return Err(DataError::BadHeader {
            path: labels_path.to_path_buf(),
            field: "number of dimensions",
            offset: 3,
            value: labels.dims.len() as u64,
            reason: "a label file has 1 dimension [n]",
        });
    }
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if n != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            image_count: n,
            labels: labels_path.to_path_buf(),
            label_count: labels.dims[0],
        });
    }
    if n < 2 || h == 0 || w == 0 {
        return Err(DataError::BadHeader {
            path: images_path.to_path_buf(),
            field: "dimension sizes",
            offset: 4,
            value: (n.min(h).min(w)) as u64,
            reason: "need at least 2 images of at least 1×1 pixels",
        });
    }
    let header = 8u64;
    let mut y = Vec::with_capacity(n);
    for (i, &label) in labels.data.iter().enumerate() {
        if label > 9 {
            return Err(DataError::BadLabel {
                path: labels_path.to_path_buf(),
                offset: header + i as u64,
                label,
                classes: 10,
            });
        }
        y.push(u32::from(label));
    }
    Ok(RawData {
        x: images.data.iter().map(|&b| f32::from(b) / 255.0).collect(),
        y: Targets::Classes(y),
        len: n,
        shape: Shape::Image(1, h, w),
        task: Task::Classification { classes: 10 },
    })
}

/// Parses an images/labels pair given as (possibly gzipped) bytes.
pub(crate) fn mnist_from_bytes(
    images_path: &Path,
    images: &[u8],
    labels_path: &Path,
    labels: &[u8],
) -> Result<RawData, DataError> {
    let images_bytes = gunzip_if_needed(images_path, images.to_vec())?;
    let labels_bytes = gunzip_if_needed(labels_path, labels.to_vec())?;
    images_and_labels(
        images_path,
        parse_idx(images_path, &images_bytes)?,
        labels_path,
        parse_idx(labels_path, &labels_bytes)?,
    )
}

fn find(dir: &Path, stems: &[&str], what: &'static str) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    for stem in stems {
        for suffix in ["", ".gz"] {
            let name = format!("{stem}{suffix}");
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
            tried.push(name);
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        what,
        tried: tried.join(", "),
    })
}

fn load_pair(dir: &Path, images: &[&str], labels: &[&str]) -> Result<RawData, DataError> {
    let ip = find(dir, images, "images")?;
    let lp = find(dir, labels, "labels")?;
    let ib = read_maybe_gz(&ip)?;
    let lb = read_maybe_gz(&lp)?;
    images_and_labels(&ip, parse_idx(&ip, &ib)?, &lp, parse_idx(&lp, &lb)?)
}

/// Loads the training and test pairs of MNIST or Fashion-MNIST from a folder
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each optionally `.gz`; a dot instead of the last dash is accepted).
pub fn load_idx_pair_dir(dir: &Path) -> Result<(RawData, RawData), DataError> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.to_path_buf(),
            reason: "not a folder".into(),
        });
    }
    let train = load_pair(
        dir,
        &["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
        &["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
    )?;
    let test = load_pair(
        dir,
        &["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
        &["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
    )?;
    Ok((train, test))
}
