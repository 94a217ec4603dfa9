//! Datasets: synthetic generators, the shipped MNIST-10k, IDX and CIFAR-10 loaders, the
//! deterministic train/validation split, normalisation and shuffled batches.
//!
//! Everything here is host-side `f32` data; the training loop uploads one batch per step.

mod cifar;
pub mod coloured;
mod idx;
pub mod shift;
mod synthetic;

pub use cifar::{load_cifar10_dir, parse_cifar_batch};
pub use idx::{
    IdxArray, MAX_DATASET_VALUES, MAX_FILE_BYTES, load_idx_pair_dir, parse_idx, parse_idx_maybe_gz,
};

use crate::spec::{DataSource, DatasetSpec, Shape};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use thiserror::Error;

/// The gzipped IDX images of the shipped MNIST-10k (see `assets/mnist10k/PROVENANCE.md`).
pub const MNIST10K_IMAGES: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-images-idx3-ubyte.gz");
/// The gzipped IDX labels of the shipped MNIST-10k.
pub const MNIST10K_LABELS: &[u8] =
    include_bytes!("../../assets/mnist10k/mnist10k-labels-idx1-ubyte.gz");

/// Why a dataset could not be made or loaded. File errors name the file and the offset or field.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: cannot read: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// None of the accepted file names exists in the folder.
    #[error("{dir}: no {what} file found (looked for {tried})")]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// What was looked for.
        what: &'static str,
        /// The names tried.
        tried: String,
    },
    /// A gzip stream that does not decompress.
    #[error("{path}: not a valid gzip stream: {reason}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        reason: String,
    },
    /// The file ends before the data its header announces.
    #[error(
        "{path}: truncated at byte {offset}: {what} needs {needed} bytes, the file has {available}"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset where the missing data starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// Bytes needed from the offset.
        needed: u64,
        /// Bytes available from the offset.
        available: u64,
    },
    /// A header field with an impossible value.
    #[error("{path}: header field {field} at byte {offset} is {value}: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// Its offset.
        offset: u64,
        /// The value found.
        value: u64,
        /// What was expected.
        reason: &'static str,
    },
    /// A label outside 0..classes.
    #[error("{path}: label {label} at byte {offset} is not a class (0..{classes})")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Its offset.
        offset: u64,
        /// The label found.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// Images and labels disagree on the number of samples.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        label_count: usize,
    },
    /// The test split's samples have another shape than the training split's.
    #[error(
        "{test} holds {test_shape} images but {train} holds {train_shape}; both splits need one size"
    )]
    ShapeMismatch {
        /// The training images file.
        train: PathBuf,
        /// Its sample shape.
        train_shape: String,
        /// The test images file.
        test: PathBuf,
        /// Its sample shape.
        test_shape: String,
    },
    /// More data than the loaders hold in memory.
    #[error("{dir}: the data holds {values} values, more than the {max} the lab loads")]
    TooLarge {
        /// The folder.
        dir: PathBuf,
        /// Values found.
        values: u64,
        /// The limit.
        max: u64,
    },
    /// Too few samples to split into training and validation.
    #[error("{files}: {count} training sample(s); need at least {need}")]
    TooFewSamples {
        /// The files they came from.
        files: String,
        /// Samples found.
        count: usize,
        /// Samples needed.
        need: usize,
    },
    /// A generator parameter out of range.
    #[error("dataset: {field} = {value} is invalid ({reason})")]
    BadParameter {
        /// The field.
        field: &'static str,
        /// The value as text.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// An evaluation set whose samples do not fit the run's data.
    #[error("evaluation set \"{name}\": {reason}")]
    EvalSet {
        /// The set's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a model predicts for a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Cross-entropy over `classes` classes; accuracy is reported.
    Classification {
        /// Number of classes.
        classes: usize,
    },
    /// Mean squared error on `outputs` values.
    Regression {
        /// Number of outputs.
        outputs: usize,
    },
}

impl Task {
    /// Width of the network output this task needs.
    pub fn outputs(&self) -> usize {
        match *self {
            Task::Classification { classes } => classes,
            Task::Regression { outputs } => outputs,
        }
    }
}

/// Targets of a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// One class index per sample.
    Classes(Vec<u32>),
    /// `outputs` values per sample, row-major.
    Values(Vec<f32>),
}

/// Samples of one split, row-major `[n, sample_shape...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Features, `n × sample_numel` values.
    pub x: Vec<f32>,
    /// Targets.
    pub y: Targets,
    /// Number of samples.
    pub len: usize,
}

/// A loaded, split and normalised dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A short name.
    pub name: String,
    /// Shape of one sample.
    pub sample_shape: Shape,
    /// What the model predicts.
    pub task: Task,
    /// The training split.
    pub train: Split,
    /// The validation split.
    pub valid: Split,
    /// The `(mean, std)` per channel (images) or feature the splits were normalised with: the
    /// training split's ([`norm_stats`]); empty for raw data.
    pub input_norm: Vec<(f32, f32)>,
    /// The named evaluation sets of the descriptor, normalised like the splits.
    pub eval_sets: Vec<(String, Split)>,
}

/// Raw samples before splitting.
#[derive(Clone, Debug, PartialEq)]
pub struct RawData {
    /// Features, row-major.
    pub x: Vec<f32>,
    /// Targets.
    pub y: Targets,
    /// Number of samples.
    pub len: usize,
    /// Shape of one sample.
    pub shape: Shape,
    /// What a model predicts.
    pub task: Task,
}

impl Split {
    /// Selects samples by index.
    pub fn subset(&self, indices: &[usize]) -> Split {
        let numel = self.sample_numel();
        let mut x = Vec::with_capacity(indices.len() * numel);
        for &i in indices {
            x.extend_from_slice(&self.x[i * numel..(i + 1) * numel]);
        }
        let y = match &self.y {
            Targets::Classes(c) => Targets::Classes(indices.iter().map(|&i| c[i]).collect()),
            Targets::Values(v) => {
                let k = v.len().checked_div(self.len).unwrap_or(0);
                let mut out = Vec::with_capacity(indices.len() * k);
                for &i in indices {
                    out.extend_from_slice(&v[i * k..(i + 1) * k]);
                }
                Targets::Values(out)
            }
        };
        Split {
            x,
            y,
            len: indices.len(),
        }
    }

    /// Per-sample feature count.
    pub fn sample_numel(&self) -> usize {
        self.x.len().checked_div(self.len).unwrap_or(0)
    }
}

/// Splits raw data deterministically by `seed`: a seeded shuffle, then the first
/// `validation_fraction` of it (at least one sample each side) becomes the validation split.
pub(crate) fn split(raw: RawData, validation_fraction: f64, seed: u64) -> (Split, Split) {
    let mut order: Vec<usize> = (0..raw.len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5B17));
    let n_valid = ((raw.len as f64 * validation_fraction).round() as usize).clamp(1, raw.len - 1);
    let all = Split {
        x: raw.x,
        y: raw.y,
        len: raw.len,
    };
    let valid = all.subset(&order[..n_valid]);
    let train = all.subset(&order[n_valid..]);
    (train, valid)
}

/// Standardises features with statistics of the training split: per channel for images, per
/// feature for flat vectors (`x' = (x - mean) / std`, std floored at 1e-6 so constant features
/// such as MNIST's border pixels stay 0).
pub fn normalize(train: &mut Split, valid: &mut Split, shape: Shape) {
    let stats = norm_stats(train, shape);
    apply_norm(train, &stats, shape);
    apply_norm(valid, &stats, shape);
}

/// The `(mean, std)` per channel (images) or feature (flat vectors) of a split, std floored at
/// 1e-6; empty for an empty split.
pub fn norm_stats(split: &Split, shape: Shape) -> Vec<(f32, f32)> {
    let (groups, per_group) = norm_groups(shape);
    let numel = groups * per_group;
    if split.len == 0 || numel == 0 {
        return Vec::new();
    }
    let mut sum = vec![0f64; groups];
    let mut sq = vec![0f64; groups];
    for (i, &v) in split.x.iter().enumerate() {
        let g = norm_group(shape, i);
        sum[g] += v as f64;
        sq[g] += (v as f64) * (v as f64);
    }
    let count = (split.len * per_group) as f64;
    (0..groups)
        .map(|g| {
            let mean = sum[g] / count;
            let var = (sq[g] / count - mean * mean).max(0.0);
            (mean as f32, (var.sqrt() as f32).max(1e-6))
        })
        .collect()
}

/// Standardises a split with given statistics (see [`norm_stats`]); no-op when they are empty.
pub fn apply_norm(split: &mut Split, stats: &[(f32, f32)], shape: Shape) {
    if stats.is_empty() {
        return;
    }
    for (i, v) in split.x.iter_mut().enumerate() {
        let (m, s) = stats[norm_group(shape, i)];
        *v = (*v - m) / s;
    }
}

fn norm_groups(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Flat(d) => (d, 1),
        Shape::Image(c, h, w) => (c, h * w),
        // Each feature over every token.
        Shape::Tokens(n, d) => (d, n),
    }
}

/// The statistics group of the `i`-th value of a split.
fn norm_group(shape: Shape, i: usize) -> usize {
    let (groups, per_group) = norm_groups(shape);
    let numel = (groups * per_group).max(1);
    match shape {
        Shape::Flat(_) => i % numel,
        Shape::Image(..) => (i % numel) / per_group,
        Shape::Tokens(_, d) => i % d,
    }
}

/// Loads, splits and normalises the dataset a spec describes.
///
/// Sources with their own test split (MNIST and Fashion-MNIST folders, CIFAR-10 with
/// `test_batch.bin`) use it for validation and ignore `validation_fraction`.
pub fn load(spec: &DatasetSpec) -> Result<Dataset, DataError> {
    let mut d = load_raw(spec)?;
    let mut sets = Vec::new();
    for set in &spec.eval_sets {
        sets.push((set.name.clone(), eval_set_raw(spec, set, &d)?));
    }
    let stats = norm_stats(&d.train, d.sample_shape);
    apply_norm(&mut d.train, &stats, d.sample_shape);
    apply_norm(&mut d.valid, &stats, d.sample_shape);
    for (_, split) in sets.iter_mut() {
        apply_norm(split, &stats, d.sample_shape);
    }
    d.eval_sets = sets;
    d.input_norm = stats;
    Ok(d)
}

/// The raw samples of an evaluation set of `spec`: the validation split of its source (split
/// with `spec`'s seed and fraction), shifted. `data` is the run's own raw data ([`load_raw`]):
/// the source when the set names none, and what its samples must fit.
pub fn eval_set_raw(
    spec: &DatasetSpec,
    set: &crate::spec::EvalSet,
    data: &Dataset,
) -> Result<Split, DataError> {
    let err = |reason: String| DataError::EvalSet {
        name: set.name.clone(),
        reason,
    };
    let (mut split, shape, task) = match &set.source {
        None => (data.valid.clone(), data.sample_shape, data.task),
        Some(source) => {
            let other = DatasetSpec {
                source: source.clone(),
                eval_sets: Vec::new(),
                ..spec.clone()
            };
            let raw = load_raw(&other).map_err(|e| err(e.to_string()))?;
            (raw.valid, raw.sample_shape, raw.task)
        }
    };
    if shape != data.sample_shape || task != data.task {
        return Err(err(format!(
            "its samples are {shape} ({task:?}), the run's {} ({:?})",
            data.sample_shape, data.task
        )));
    }
    for (k, shift) in set.shifts.iter().enumerate() {
        shift.apply(&mut split.x, shape, spec.seed ^ k as u64);
    }
    Ok(split)
}

/// Loads and splits the dataset a spec describes, without the normalisation: raw values (pixels
/// in [0, 1]), for test-time shifts and for normalising with another run's statistics.
pub fn load_raw(spec: &DatasetSpec) -> Result<Dataset, DataError> {
    let vf = spec.validation_fraction;
    if !(vf.is_finite() && vf > 0.0 && vf < 1.0) {
        return Err(DataError::BadParameter {
            field: "validation_fraction",
            value: vf.to_string(),
            reason: "must be between 0 and 1",
        });
    }
    let name = spec.label();
    let (train, valid, shape, task) = match &spec.source {
        DataSource::Mnist10k => {
            let raw = mnist10k_raw()?;
            let (shape, task) = (raw.shape, raw.task);
            let (t, v) = split(raw, vf, spec.seed);
            (t, v, shape, task)
        }
        DataSource::ColouredMnist { palette } => {
            let raw = coloured::colourise(mnist10k_raw()?, *palette, spec.seed);
            let (shape, task) = (raw.shape, raw.task);
            let (t, v) = split(raw, vf, spec.seed);
            (t, v, shape, task)
        }
        DataSource::MnistDir { dir } | DataSource::FashionDir { dir } => {
            let (train, valid) = load_idx_pair_dir(dir)?;
            let (shape, task) = (train.shape, train.task);
            let to_split = |r: RawData| Split {
                x: r.x,
                y: r.y,
                len: r.len,
            };
            (to_split(train), to_split(valid), shape, task)
        }
        DataSource::Cifar10Dir { dir } => {
            let (train, valid) = load_cifar10_dir(dir)?;
            let (shape, task) = (train.shape, train.task);
            match valid {
                Some(v) => (
                    Split {
                        x: train.x,
                        y: train.y,
                        len: train.len,
                    },
                    Split {
                        x: v.x,
                        y: v.y,
                        len: v.len,
                    },
                    shape,
                    task,
                ),
                None => {
                    let (t, v) = split(train, vf, spec.seed);
                    (t, v, shape, task)
                }
            }
        }
        synthetic_source => {
            let raw = synthetic::generate(synthetic_source, spec.seed)?;
            let (shape, task) = (raw.shape, raw.task);
            let (t, v) = split(raw, vf, spec.seed);
            (t, v, shape, task)
        }
    };
    Ok(Dataset {
        name,
        sample_shape: shape,
        task,
        train,
        valid,
        input_norm: Vec::new(),
        eval_sets: Vec::new(),
    })
}

/// The shipped MNIST-10k digits, embedded in the binary: `[10000, 1, 28, 28]` in [0, 1], in
/// file order (sorted by label).
pub fn mnist10k_raw() -> Result<RawData, DataError> {
    idx::mnist_from_bytes(
        &PathBuf::from("assets/mnist10k/mnist10k-images-idx3-ubyte.gz"),
        MNIST10K_IMAGES,
        &PathBuf::from("assets/mnist10k/mnist10k-labels-idx1-ubyte.gz"),
        MNIST10K_LABELS,
    )
}

/// Yields shuffled mini-batches of training indices, epoch after epoch.
///
/// Each epoch is a fresh permutation drawn from a ChaCha8 generator seeded with the run seed, so
/// the batch order depends only on the seed. An epoch holds `len / batch` full batches (the
/// remainder is dropped); a split smaller than the batch gives one batch of the whole split.
#[derive(Clone, Debug)]
pub struct BatchSampler {
    len: usize,
    batch: usize,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    epoch: u64,
    /// The generator's word position before the current epoch's shuffle.
    epoch_start: u128,
}

impl BatchSampler {
    /// A sampler over `len` samples.
    pub fn new(len: usize, batch: usize, seed: u64) -> Self {
        Self {
            len,
            batch: batch.min(len).max(1),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xBA7C_4E55),
            order: Vec::new(),
            cursor: usize::MAX,
            epoch: 0,
            epoch_start: 0,
        }
    }

    /// Full batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        (self.len / self.batch).max(1)
    }

    /// Number of epochs started so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The indices of the next batch.
    pub fn next_batch(&mut self) -> &[usize] {
        if self.cursor == usize::MAX || self.cursor + self.batch > self.len {
            self.epoch_start = self.rng.get_word_pos();
            self.order = (0..self.len).collect();
            self.order.shuffle(&mut self.rng);
            self.cursor = 0;
            self.epoch += 1;
        }
        let start = self.cursor;
        self.cursor += self.batch;
        &self.order[start..start + self.batch]
    }

    /// Advances past `steps` batches without producing them (to resume a run exactly). Costs
    /// one shuffle per epoch passed; [`BatchSampler::seek`] does it in one.
    pub fn skip(&mut self, steps: u64) {
        for _ in 0..steps {
            self.next_batch();
        }
    }

    /// Where the sampler stands: `(epochs started, the generator's word position before the
    /// current epoch's shuffle, samples of that epoch used)`.
    pub fn position(&self) -> (u64, u128, u64) {
        let cursor = if self.cursor == usize::MAX {
            0
        } else {
            self.cursor as u64
        };
        (self.epoch, self.epoch_start, cursor)
    }

    /// Moves to a position [`BatchSampler::position`] returned, with one shuffle. Returns
    /// `false` (and changes nothing) when the position cannot be one of this sampler's: a
    /// cursor that is not a whole number of batches within an epoch.
    pub fn seek(&mut self, epoch: u64, epoch_start: u128, cursor: u64) -> bool {
        let batch = self.batch as u64;
        if epoch == 0 {
            return cursor == 0;
        }
        if cursor == 0 || cursor > self.len as u64 || !cursor.is_multiple_of(batch) {
            return false;
        }
        self.rng.set_word_pos(epoch_start);
        self.epoch = epoch - 1;
        self.cursor = usize::MAX;
        self.next_batch();
        self.cursor = cursor as usize;
        true
    }

    /// The position after `steps` batches from the start, without the generator's word
    /// position (which only replaying or a saved position knows): `(epoch, cursor)`.
    pub fn expected_position(&self, steps: u64) -> (u64, u64) {
        if steps == 0 {
            return (0, 0);
        }
        let per_epoch = self.batches_per_epoch() as u64;
        let epoch = (steps - 1) / per_epoch + 1;
        let cursor = ((steps - 1) % per_epoch + 1) * self.batch as u64;
        (epoch, cursor)
    }
}
