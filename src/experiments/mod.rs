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
mod file;
pub mod init_variance;
pub mod landscape;
pub mod lesion;
pub mod shattered;
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
    /// The dataset for experiments that can use another one (`degradation-cnn`: e.g. CIFAR-10
    /// from a folder); `None`: each experiment's own (MNIST-10k).
    pub dataset: Option<crate::spec::DatasetSpec>,
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

/// How an experiment aggregates its repetitions, fixed in advance: the criteria read exactly
/// this statistic, and changing it after a failure must be said in the experiment's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol {
    /// Repetitions (seeds `seed`, `seed + 1`, ...) at the quick scale.
    pub quick_seeds: usize,
    /// Repetitions at the full scale.
    pub full_seeds: usize,
    /// The statistic over repetitions that the criteria read, and their tolerances.
    pub statistic: &'static str,
    /// Why this rule, and what it was decided on.
    pub reason: &'static str,
}

impl Protocol {
    /// The number of repetitions at a scale.
    pub fn seeds(&self, quick: bool) -> usize {
        if quick {
            self.quick_seeds
        } else {
            self.full_seeds
        }
    }

    /// The rule in one paragraph, for notes and `--list`.
    pub fn describe(&self) -> String {
        format!(
            "Protocol: {} seed(s) quick, {} full; {} Why: {}",
            self.quick_seeds, self.full_seeds, self.statistic, self.reason
        )
    }
}

/// One experiment as three steps: measure, judge, draw. `measure` is the only step that trains
/// or runs networks; `criteria` and `figures` are pure functions of its result, so tests feed
/// them measurements where a claim is false.
pub trait Reproduction {
    /// What `measure` found: plain data, no tensors.
    type Measured;
    /// Runs the networks.
    fn measure(opts: &mut ExperimentOptions) -> Result<Self::Measured, ExperimentError>;
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

/// Runs a [`Reproduction`] and assembles its experiment file.
pub fn reproduce<R: Reproduction>(
    experiment: &Experiment,
    opts: &mut ExperimentOptions,
) -> Result<ExperimentFile, ExperimentError> {
    let measured = R::measure(opts)?;
    let mut file = ExperimentFile::new(experiment, opts.settings());
    file.criteria = R::criteria(&measured);
    file.figures = R::figures(&measured);
    file.notes = format!("{} {}", R::notes(&measured), experiment.protocol.describe());
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

/// Every experiment, in the order of the study.
pub const EXPERIMENTS: &[Experiment] = &[
    init_variance::EXPERIMENT,
    shattered::EXPERIMENT,
    degradation::EXPERIMENT,
    degradation_cnn::EXPERIMENT,
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

/// Criterion text writes numbers the one shared way (see [`crate::numbers::Precision::CRITERION`]).
pub(crate) use crate::numbers::criterion as fmt;

/// A Markdown table of experiment results, one row per criterion (experiment, the paper's
/// claim, the test with its threshold, what was measured, PASS or FAIL), headed by the scale
/// and seeds they were run at: the README's experiments table is this output.
pub fn markdown(files: &[ExperimentFile]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::new();
    if let Some(f) = files.first() {
        out.push_str(&format!(
            "Generated by `reslab experiment --all{} --seed {} --markdown` (reslab {}); each experiment's protocol gives its seeds.\n\n",
            if f.options.quick { " --quick" } else { "" },
            f.options.seed,
            env!("CARGO_PKG_VERSION")
        ));
    }
    out.push_str("| experiment | claim | test | measured | result |\n|---|---|---|---|---|\n");
    for f in files {
        for c in &f.criteria {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                f.name,
                cell(&c.claim),
                cell(&c.name),
                cell(&c.measured),
                if c.passed { "PASS" } else { "**FAIL**" }
            ));
        }
        if f.criteria.is_empty() {
            out.push_str(&format!("| `{}` | | no criteria | | |\n", f.name));
        }
    }
    out
}
