//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.

use super::{DataError, RawData, Targets, Task};
use crate::safe_fs;
use crate::spec::Shape;
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The largest file the loaders read, and the largest IDX payload they decompress (full
/// MNIST's training images are 47 MB, a CIFAR-10 batch 31 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// The most values (pixels over all samples) a dataset from files may have: 1 GiB as `f32`
/// (full CIFAR-10 is 184 M values, full MNIST 55 M); the same bound as synthetic sets.
pub const MAX_DATASET_VALUES: u64 = crate::spec::MAX_DATASET_VALUES;

/// A parsed IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions from the header.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

pub(crate) fn io_error(path: &Path, e: impl ToString) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads an IDX file, plain or gzipped. Only a regular file of at most [`MAX_FILE_BYTES`] is
/// read; a gzipped one (one gzip member or several, as `cat a.gz b.gz` or pigz write) is
/// decompressed as a stream and stops at the size its IDX header announces (plus one byte to
/// notice more), so a gzip bomb costs no more than an honest file.
pub(crate) fn read_idx_file(path: &Path) -> Result<IdxArray, DataError> {
    let (file, len) = safe_fs::open_regular(path, MAX_FILE_BYTES).map_err(|e| io_error(path, e))?;
    let mut r = BufReader::new(file);
    let head = r.fill_buf().map_err(|e| io_error(path, e))?;
    if head.starts_with(&GZIP_MAGIC) {
        parse_idx_stream(path, MultiGzDecoder::new(r), None)
    } else {
        parse_idx_stream(path, r, Some(len))
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Parses an IDX byte array (`0x00 0x00 0x08 ndim`, big-endian u32 dims, u8 values).
/// `path` only names the source in errors.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    parse_idx_stream(path, bytes, Some(bytes.len() as u64))
}

/// Parses IDX bytes, gzipped or not (a gzip stream is decompressed only up to the size its
/// IDX header announces). `path` only names the source in errors.
pub fn parse_idx_maybe_gz(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        parse_idx_stream(path, MultiGzDecoder::new(bytes), None)
    } else {
        parse_idx(path, bytes)
    }
}

/// Reads exactly `buf.len()` bytes or reports what is missing.
fn read_header_part(
    path: &Path,
    r: &mut impl Read,
    buf: &mut [u8],
    offset: u64,
    what: &'static str,
    gz: bool,
) -> Result<(), DataError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(path, e, gz)),
        }
    }
    if got < buf.len() {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            offset,
            what,
            needed: buf.len() as u64,
            available: got as u64,
        });
    }
    Ok(())
}

fn stream_error(path: &Path, e: std::io::Error, gz: bool) -> DataError {
    if gz {
        DataError::Gzip {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    } else {
        io_error(path, e)
    }
}

fn bad_header(
    path: &Path,
    field: &'static str,
    offset: u64,
    value: u64,
    reason: &'static str,
) -> DataError {
    DataError::BadHeader {
        path: path.to_path_buf(),
        field,
        offset,
        value,
        reason,
    }
}

/// Parses an IDX stream: the header first, then exactly the values it announces, after checking
/// that size against [`MAX_FILE_BYTES`] and, for a plain file, its length (`file_len`). Nothing
/// is allocated for a size that was not checked.
fn parse_idx_stream(
    path: &Path,
    mut r: impl Read,
    file_len: Option<u64>,
) -> Result<IdxArray, DataError> {
    let gz = file_len.is_none();
    let dims = read_idx_header(path, &mut r, gz)?;
    let total = dims.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
    let header = (4 + 4 * dims.len()) as u64;
    if let Some(len) = file_len {
        check_file_length(path, len, header, total)?;
    }
    if total > MAX_FILE_BYTES {
        return Err(bad_header(
            path,
            "dimension sizes",
            4,
            total,
            "announce more values than the 256 MiB the loader reads",
        ));
    }
    let mut data = Vec::new();
    r.take(total + 1)
        .read_to_end(&mut data)
        .map_err(|e| stream_error(path, e, gz))?;
    // What was read, against what the header announced (a gzipped stream has no length to
    // check beforehand).
    check_file_length(path, header + data.len() as u64, header, total)?;
    Ok(IdxArray { dims, data })
}

/// Reads and checks the IDX header (magic number, unsigned-byte data, 1 to 4 dimensions);
/// returns the dimension sizes.
fn read_idx_header(path: &Path, r: &mut impl Read, gz: bool) -> Result<Vec<usize>, DataError> {
    let mut magic = [0u8; 4];
    read_header_part(path, r, &mut magic, 0, "the IDX magic number", gz)?;
    if magic[0] != 0 || magic[1] != 0 {
        let value = u64::from(u32::from_be_bytes(magic));
        let reason = "an IDX file starts with two zero bytes";
        return Err(bad_header(path, "magic", 0, value, reason));
    }
    if magic[2] != 0x08 {
        let value = u64::from(magic[2]);
        let reason = "only unsigned bytes (0x08) are supported";
        return Err(bad_header(path, "data type", 2, value, reason));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 || ndim > 4 {
        let reason = "expected 1 to 4";
        return Err(bad_header(
            path,
            "number of dimensions",
            3,
            ndim as u64,
            reason,
        ));
    }
    let mut raw = vec![0u8; 4 * ndim];
    read_header_part(path, r, &mut raw, 4, "the dimension sizes", gz)?;
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// A file of `len` bytes with a `header`-byte header holds exactly `total` values: fewer is a
/// truncated file, more is a header that does not describe it.
fn check_file_length(path: &Path, len: u64, header: u64, total: u64) -> Result<(), DataError> {
    let available = len.saturating_sub(header);
    if total > available {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            offset: header,
            what: "the values",
            needed: total,
            available,
        });
    }
    if total < available {
        let reason = "the file holds more bytes than the dimensions announce";
        return Err(bad_header(path, "dimension sizes", 4, total, reason));
    }
    Ok(())
}

/// Builds raw MNIST-style data from an images array `[n, h, w]` and a labels array `[n]`.
fn images_and_labels(
    images_path: &Path,
    images: IdxArray,
    labels_path: &Path,
    labels: IdxArray,
) -> Result<RawData, DataError> {
    let ndim = |a: &IdxArray| a.dims.len() as u64;
    if images.dims.len() != 3 {
        let reason = "an image file has 3 dimensions [n, height, width]";
        let field = "number of dimensions";
        return Err(bad_header(images_path, field, 3, ndim(&images), reason));
    }
    if labels.dims.len() != 1 {
        let reason = "a label file has 1 dimension [n]";
        let field = "number of dimensions";
        return Err(bad_header(labels_path, field, 3, ndim(&labels), reason));
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
    images_and_labels(
        images_path,
        parse_idx_maybe_gz(images_path, images)?,
        labels_path,
        parse_idx_maybe_gz(labels_path, labels)?,
    )
}

/// The first of the accepted names that exists in `dir`. A name that exists but cannot be
/// examined (permission denied, a path through a file) is an error naming it, not a miss.
fn find(dir: &Path, stems: &[&str], what: &'static str) -> Result<PathBuf, DataError> {
    let mut tried = Vec::new();
    for stem in stems {
        for suffix in ["", ".gz"] {
            let name = format!("{stem}{suffix}");
            let p = dir.join(&name);
            match std::fs::metadata(&p) {
                Ok(_) => return Ok(p),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => tried.push(name),
                Err(e) => return Err(io_error(&p, e)),
            }
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        what,
        tried: tried.join(", "),
    })
}

/// Checks that `dir` is a folder that can be listed, naming it and the reason when not.
pub(crate) fn check_dir(dir: &Path) -> Result<(), DataError> {
    let meta = std::fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(io_error(dir, "not a folder"));
    }
    std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok(())
}

fn load_pair(
    dir: &Path,
    images: &[&str],
    labels: &[&str],
) -> Result<(RawData, PathBuf), DataError> {
    let ip = find(dir, images, "images")?;
    let lp = find(dir, labels, "labels")?;
    let image_array = read_idx_file(&ip)?;
    let label_array = read_idx_file(&lp)?;
    Ok((images_and_labels(&ip, image_array, &lp, label_array)?, ip))
}

/// Loads the training and test pairs of MNIST or Fashion-MNIST from a folder
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each optionally `.gz`; a dot instead of the last dash is accepted).
/// The test images must have the training images' size.
pub fn load_idx_pair_dir(dir: &Path) -> Result<(RawData, RawData), DataError> {
    check_dir(dir)?;
    let (train, train_path) = load_pair(
        dir,
        &["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
        &["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
    )?;
    let (test, test_path) = load_pair(
        dir,
        &["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
        &["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
    )?;
    if test.shape != train.shape {
        return Err(DataError::ShapeMismatch {
            train: train_path,
            train_shape: train.shape.to_string(),
            test: test_path,
            test_shape: test.shape.to_string(),
        });
    }
    let values = (train.x.len() + test.x.len()) as u64;
    if values > MAX_DATASET_VALUES {
        return Err(DataError::TooLarge {
            dir: dir.to_path_buf(),
            values,
            max: MAX_DATASET_VALUES,
        });
    }
    Ok((train, test))
}
