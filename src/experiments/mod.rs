//! Reproductions of published figures about skip connections and batch normalisation, built
//! from [`model`](crate::model), [`train`](crate::train) and [`data`](crate::data).
//!
//! Each experiment is a library function (see [`EXPERIMENTS`]) that measures what a paper
//! claims, checks the claims as [`Criterion`]s and returns an [`ExperimentFile`] with the figure
//! data and the training runs it made. `reslab experiment NAME` runs one from the terminal; the
//! app opens the files. `quick` runs a reduced scale (each under a minute on two CPU cores) that
//! still checks every criterion; what it reduces is written in the file's `notes`.

mod bn_smoothness;
mod degradation;
mod file;
mod init_variance;
mod landscape;
mod lesion;
mod shattered;
pub mod stats;
mod util;

pub use file::{
    BarSeries, Criterion, ExperimentFile, ExperimentFileError, ExperimentSettings, FORMAT, Figure,
    FigureKind, LineSeries, SUFFIX, VERSION, Value, num,
};

use crate::data::DataError;
use crate::spec::SpecError;
use crate::train::TrainError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;

/// A progress report: the fraction done in `[0, 1]` and what is happening.
pub type ProgressFn = Box<dyn FnMut(f32, &str) + Send>;

/// How to run an experiment.
pub struct ExperimentOptions {
    /// The reduced scale (each experiment under a minute on two cores).
    pub quick: bool,
    /// The base seed; experiments over several seeds use `seed`, `seed + 1`, ...
    pub seed: u64,
    /// Called now and then with the fraction done and a message.
    pub progress: Option<ProgressFn>,
    /// Set it to stop the experiment early; it then returns [`ExperimentError::Cancelled`].
    pub cancel: Arc<AtomicBool>,
}

impl ExperimentOptions {
    /// Options without progress reports or a cancel request.
    pub fn new(quick: bool, seed: u64) -> Self {
        Self {
            quick,
            seed,
            progress: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The serialisable part.
    pub fn settings(&self) -> ExperimentSettings {
        ExperimentSettings {
            quick: self.quick,
            seed: self.seed,
        }
    }

    /// Reports progress (when a callback is set).
    pub fn report(&mut self, fraction: f32, message: &str) {
        if let Some(p) = self.progress.as_mut() {
            p(fraction.clamp(0.0, 1.0), message);
        }
    }

    /// [`ExperimentError::Cancelled`] once cancellation was asked for.
    pub fn check_cancel(&self) -> Result<(), ExperimentError> {
        if self.cancel.load(Ordering::SeqCst) {
            Err(ExperimentError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Why an experiment did not produce a file. A failed criterion is not an error: it is
/// recorded in the file.
#[derive(Debug, Error)]
pub enum ExperimentError {
    /// Stopped through [`ExperimentOptions::cancel`].
    #[error("the experiment was cancelled")]
    Cancelled,
    /// No experiment has this name.
    #[error("unknown experiment \"{0}\"; known experiments: {names}", names = names().join(", "))]
    Unknown(String),
    /// A network of the experiment is invalid (a bug).
    #[error("network: {0}")]
    Spec(#[from] SpecError),
    /// The data could not be loaded.
    #[error("data: {0}")]
    Data(#[from] DataError),
    /// Training could not start.
    #[error("{0}")]
    Train(#[from] TrainError),
}

/// An experiment's entry in the registry.
pub struct Experiment {
    /// Registry and file name, e.g. `init-variance`.
    pub name: &'static str,
    /// A one-line title.
    pub title: &'static str,
    /// The paper.
    pub citation: &'static str,
    /// Three lines: what to look at in the figures, and why it comes out that way.
    pub what_to_see: [&'static str; 3],
    /// Runs it.
    pub run: fn(&mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError>,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("name", &self.name)
            .finish()
    }
}

/// Every experiment, in the order of the issue.
pub const EXPERIMENTS: &[Experiment] = &[
    init_variance::EXPERIMENT,
    shattered::EXPERIMENT,
    degradation::EXPERIMENT,
    lesion::EXPERIMENT,
    landscape::EXPERIMENT,
    bn_smoothness::EXPERIMENT,
];

/// The experiment with this name.
pub fn find(name: &str) -> Option<&'static Experiment> {
    EXPERIMENTS.iter().find(|e| e.name == name)
}

/// The names of all experiments.
pub fn names() -> Vec<&'static str> {
    EXPERIMENTS.iter().map(|e| e.name).collect()
}

/// Runs the experiment with this name; the file records how long it took.
pub fn run(name: &str, options: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let e = find(name).ok_or_else(|| ExperimentError::Unknown(name.to_string()))?;
    let started = std::time::Instant::now();
    let mut file = (e.run)(options)?;
    file.seconds = started.elapsed().as_secs_f64();
    options.report(1.0, "done");
    Ok(file)
}

/// Formats a number for criterion text: 3 significant digits, NaN and ±∞ spelled out.
pub(crate) fn fmt(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 4) as usize;
        format!("{v:.digits$}")
    }
}
