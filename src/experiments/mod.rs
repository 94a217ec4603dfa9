//! Reproductions of published figures about skip connections and batch normalisation, built
//! from [`model`](crate::model), [`train`](crate::train) and [`data`](crate::data).
//!
//! Each experiment is a [`Reproduction`]: `measure` runs the networks and returns plain data,
//! `criteria` checks the paper's claims on that data and `figures` draws it, so that every
//! criterion can be tested on made-up measurements where the claim is false (and must FAIL) as
//! well as on real ones. [`reproduce`] puts the three together into an [`ExperimentFile`] with
//! the figure data and the training runs it made. `reslab experiment NAME` runs one from the
//! terminal; the app opens the files. Each experiment states its [`Protocol`] (seeds,
//! statistic, tolerance, and why) as a constant, decided before the held-out runs were looked
//! at. `quick` runs a reduced scale that still checks every criterion; what it reduces is
//! written in the protocol and the file's `notes`.

pub mod bn_smoothness;
pub mod degradation;
pub mod degradation_cnn;
pub mod distribution_shift;
mod file;
pub mod init_variance;
pub mod kept;
pub mod landscape;
pub mod lesion;
mod protocol;
pub mod shattered;
mod side_by_side;
pub mod stats;
mod table;
pub mod transformer_residuals;
mod util;

pub use protocol::{Protocol, Registered, parse_registry, registered};
pub use table::{control_markdown, markdown};

pub use file::{
    BarSeries, Criterion, ExperimentFile, ExperimentFileError, ExperimentSettings, FORMAT, Figure,
    FigureKind, ImageTile, LineSeries, SUFFIX, VERSION, Value, num,
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
    /// The dataset for experiments that can use another one (`degradation-cnn`: e.g. CIFAR-10
    /// from a folder); `None`: each experiment's own (MNIST-10k).
    pub dataset: Option<crate::spec::DatasetSpec>,
    /// A folder to keep each training run in as it ends, and to read finished runs back from
    /// (the degradation experiments; see [`kept`]).
    pub keep_runs: Option<std::path::PathBuf>,
    /// Where the experiment's networks train and are measured (the CPU unless set).
    pub device: crate::spec::DeviceChoice,
}

impl ExperimentOptions {
    /// Options without progress reports or a cancel request.
    pub fn new(quick: bool, seed: u64) -> Self {
        Self {
            quick,
            seed,
            progress: None,
            cancel: Arc::new(AtomicBool::new(false)),
            dataset: None,
            keep_runs: None,
            device: crate::spec::DeviceChoice::Cpu,
        }
    }

    /// The burn device of [`ExperimentOptions::device`], with autodiff when `autodiff` is set;
    /// an error names the device that cannot be used.
    pub fn burn_device(&self, autodiff: bool) -> Result<burn::tensor::Device, ExperimentError> {
        crate::model::make_device(&self.device, autodiff)
            .map_err(|e| ExperimentError::Train(crate::train::TrainError::Device(e)))
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
    /// The experiment has no control of this name.
    #[error("experiment \"{experiment}\" has no control \"{control}\"; its controls: {known}")]
    UnknownControl {
        /// The experiment.
        experiment: String,
        /// The name asked for.
        control: String,
        /// Its controls, comma-separated.
        known: String,
    },
    /// A network of the experiment is invalid (a bug).
    #[error("network: {0}")]
    Spec(#[from] SpecError),
    /// The data could not be loaded.
    #[error("data: {0}")]
    Data(#[from] DataError),
    /// Training could not start.
    #[error("{0}")]
    Train(#[from] TrainError),
    /// A kept run could not be read or written.
    #[error("{}: {reason}", path.display())]
    Kept {
        /// The kept-run file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A control: the same measurement run where the paper predicts no effect (other networks in
/// the claim's roles, a fresh seed, zero noise). The criteria must reject it: the criterion
/// named in `rejected_by` must fail on what the control measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// Its name after `--control`, e.g. `no-bn`.
    pub name: &'static str,
    /// What it runs, in words.
    pub runs: &'static str,
    /// Text inside the name of the criterion that must fail on it.
    pub rejected_by: &'static str,
}

/// One experiment as three steps: measure, judge, draw. `measure` is the only step that trains
/// or runs networks; `criteria` and `figures` are pure functions of its result, so tests feed
/// them measurements where a claim is false.
pub trait Reproduction {
    /// What `measure` found: plain data, no tensors.
    type Measured;
    /// Runs the networks.
    fn measure(opts: &mut ExperimentOptions) -> Result<Self::Measured, ExperimentError>;
    /// Runs one of the experiment's controls (one of its entry's `controls`).
    fn measure_control(
        control: &Control,
        opts: &mut ExperimentOptions,
    ) -> Result<Self::Measured, ExperimentError>;
    /// The paper's claims, checked on the measurements.
    fn criteria(m: &Self::Measured) -> Vec<Criterion>;
    /// The figure data.
    fn figures(m: &Self::Measured) -> Vec<Figure>;
    /// What was run and what it found beyond the criteria, in words.
    fn notes(m: &Self::Measured) -> String;
    /// The training runs the measurement made, for the experiment file.
    fn into_runs(_m: Self::Measured) -> Vec<crate::runfile::RunFile> {
        Vec::new()
    }
}

/// Runs a [`Reproduction`] (or one of its controls) and assembles its experiment file.
pub fn reproduce<R: Reproduction>(
    experiment: &Experiment,
    opts: &mut ExperimentOptions,
    control: Option<&Control>,
) -> Result<ExperimentFile, ExperimentError> {
    let measured = match control {
        Some(c) => R::measure_control(c, opts)?,
        None => R::measure(opts)?,
    };
    let mut file = ExperimentFile::new(experiment, opts.settings());
    file.criteria = R::criteria(&measured);
    file.figures = R::figures(&measured);
    file.notes = format!("{} {}", R::notes(&measured), experiment.protocol.describe());
    if let Some(c) = control {
        file.control = Some(c.name.into());
        file.notes = format!(
            "CONTROL {}: {} The criteria must reject it: \"{}\" must fail. {}",
            c.name, c.runs, c.rejected_by, file.notes
        );
    }
    file.runs = R::into_runs(measured);
    Ok(file)
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
    /// How repetitions are aggregated, decided in advance.
    pub protocol: Protocol,
    /// Its controls: measurements where the paper predicts no effect.
    pub controls: &'static [Control],
    /// Runs it, or one of its controls.
    pub run:
        fn(&mut ExperimentOptions, Option<&Control>) -> Result<ExperimentFile, ExperimentError>,
}

impl Experiment {
    /// The fingerprint of its protocol and controls (see [`Protocol::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        self.protocol.fingerprint(self.name, self.controls)
    }

    /// The control called `name`.
    pub fn control(&self, name: &str) -> Option<&'static Control> {
        self.controls.iter().find(|c| c.name == name)
    }
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("name", &self.name)
            .finish()
    }
}

/// Every experiment, in the order of the study.
pub const EXPERIMENTS: &[Experiment] = &[
    init_variance::EXPERIMENT,
    shattered::EXPERIMENT,
    degradation::EXPERIMENT,
    degradation_cnn::EXPERIMENT,
    lesion::EXPERIMENT,
    landscape::EXPERIMENT,
    bn_smoothness::EXPERIMENT,
    distribution_shift::EXPERIMENT,
    transformer_residuals::EXPERIMENT,
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
    run_as(name, None, options)
}

/// Runs the experiment with this name, or its control `control`; the file records how long it
/// took and the protocol's fingerprint.
pub fn run_as(
    name: &str,
    control: Option<&str>,
    options: &mut ExperimentOptions,
) -> Result<ExperimentFile, ExperimentError> {
    let e = find(name).ok_or_else(|| ExperimentError::Unknown(name.to_string()))?;
    let control = match control {
        Some(c) => Some(e.control(c).ok_or_else(|| {
            ExperimentError::UnknownControl {
                experiment: name.to_string(),
                control: c.to_string(),
                known: e
                    .controls
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?),
        None => None,
    };
    let started = std::time::Instant::now();
    let mut file = (e.run)(options, control)?;
    file.seconds = started.elapsed().as_secs_f64();
    file.fingerprint = e.fingerprint();
    options.report(1.0, "done");
    Ok(file)
}

/// Criterion text writes numbers the one shared way (see [`crate::numbers::Precision::CRITERION`]).
pub(crate) use crate::numbers::criterion as fmt;
