//! Errors of saving and loading run files.

use std::path::PathBuf;
use thiserror::Error;

/// A run file that could not be loaded: the file and what is wrong.
#[derive(Debug, Error)]
#[error("{}: {kind}", path.display())]
pub struct RunFileError {
    /// The run file.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: LoadError,
}

/// What is wrong with a run file.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("{0}")]
    Io(String),
    /// Larger than this build reads.
    #[error("the file has {bytes} bytes, more than the {max} this build reads")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// Not JSON at all.
    #[error("not a JSON run file: {0}")]
    NotJson(String),
    /// JSON that ends early.
    #[error("the file is truncated: the JSON ends at line {line}, column {column}")]
    Truncated {
        /// Line of the end.
        line: usize,
        /// Column of the end.
        column: usize,
    },
    /// JSON, but not a reslab run.
    #[error("not a reslab run file (format is {0}, expected \"reslab-run\")")]
    WrongFormat(String),
    /// Written by a newer reslab.
    #[error(
        "the file is version {found}, but this reslab reads versions up to {supported}; update reslab to open it"
    )]
    NewerVersion {
        /// The file's version.
        found: u64,
        /// The newest this build reads.
        supported: u32,
    },
    /// A field that is missing or invalid.
    #[error("field {field}: {reason}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A history series whose columns differ in length.
    #[error("history series \"{series}\" has {steps} steps but {values} values")]
    InconsistentHistory {
        /// The series.
        series: String,
        /// Steps.
        steps: usize,
        /// Values.
        values: usize,
    },
    /// The weights file is missing.
    #[error("the weights file {} is missing: {reason}", path.display())]
    WeightsMissing {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The history side file is missing or shorter than the run file says.
    #[error("the history file {} cannot be used: {reason}", path.display())]
    HistoryMissing {
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The weights file does not match the run file or is malformed.
    #[error("the weights file {} does not match: {reason}", path.display())]
    WeightsMismatch {
        /// Its path.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

/// A run that could not be saved.
#[derive(Debug, Error)]
pub enum SaveError {
    /// A file could not be written.
    #[error("{}: cannot write: {reason}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// Another process writes this run file.
    #[error("{}: {reason}", path.display())]
    Locked {
        /// The run file.
        path: PathBuf,
        /// Who holds it.
        reason: String,
    },
    /// The weights could not be encoded.
    #[error("cannot encode the weights: {reason}")]
    Weights {
        /// Why.
        reason: String,
    },
}
