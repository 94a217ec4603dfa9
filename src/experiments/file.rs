//! The experiment file: `<name>.reslab-experiment.json`, plain serde data the app draws
//! generically (criteria, figures) plus the training runs an experiment made.
//!
//! # Format, version 1
//!
//! ```json
//! { "format": "reslab-experiment", "version": 1, "name": "degradation", "title": "...",
//!   "citation": "...", "options": {"quick": true, "seed": 0},
//!   "criteria": [{"name": "...", "measured": "...", "values": [{"name": "...", "value": 1.0}],
//!                 "passed": true}],
//!   "figures": [{"title": "...", "x_label": "...", "y_label": "...", "log_y": false,
//!                "variant": "", "kind": {"type": "lines", "series": [...]}}],
//!   "runs": [RunFile, ...], "notes": "..." }
//! ```
//!
//! JSON has no NaN or infinity: every number goes through [`num`], which writes NaN as `null`
//! and ±∞ as the strings `"inf"` / `"-inf"`, and reads them back.

pub use crate::figure::serde_num::num;
pub use crate::figure::{BarSeries, Figure, FigureKind, ImageTile, LineSeries};
use crate::runfile::{self, RunFile};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `format` field of every experiment file.
pub const FORMAT: &str = "reslab-experiment";
/// The version this build writes.
pub const VERSION: u32 = 1;
/// File suffix of experiment files.
pub const SUFFIX: &str = ".reslab-experiment.json";
/// The largest experiment file this build reads.
pub const MAX_BYTES: u64 = 1 << 30;

/// How an experiment was run (the serialisable part of
/// [`ExperimentOptions`](super::ExperimentOptions)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSettings {
    /// The reduced scale of `--quick`.
    pub quick: bool,
    /// The base seed; experiments over several seeds use `seed`, `seed + 1`, ...
    pub seed: u64,
}

/// One named measured number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Value {
    /// What it is, e.g. `plain-32 loss`.
    pub name: String,
    /// The number (NaN and ±∞ survive the file).
    #[serde(with = "num")]
    pub value: f64,
}

/// One claim of the paper, checked on the measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// The test with its threshold, e.g. `plain-32 loss > 2 × plain-8's`.
    pub name: String,
    /// The paper's claim that the test checks, in one sentence.
    #[serde(default)]
    pub claim: String,
    /// The measured values in words, e.g. `plain-32 1.21, plain-8 0.14`.
    pub measured: String,
    /// The measured values as numbers.
    pub values: Vec<Value>,
    /// Whether the claim holds.
    pub passed: bool,
}

impl Criterion {
    /// A criterion from its parts.
    pub fn new(name: impl Into<String>, measured: impl Into<String>, passed: bool) -> Self {
        Self {
            name: name.into(),
            claim: String::new(),
            measured: measured.into(),
            values: Vec::new(),
            passed,
        }
    }

    /// Sets the paper's claim.
    pub fn claim(mut self, claim: impl Into<String>) -> Self {
        self.claim = claim.into();
        self
    }

    /// Adds a named number.
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.values.push(Value {
            name: name.into(),
            value,
        });
        self
    }

    /// The number with this name.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.name == name).map(|v| v.value)
    }
}

/// Everything an experiment produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// The experiment's registry name, e.g. `init-variance`.
    pub name: String,
    /// Its title.
    pub title: String,
    /// The paper it reproduces.
    pub citation: String,
    /// How it was run (`settings` in the first files of version 1).
    #[serde(alias = "settings")]
    pub options: ExperimentSettings,
    /// The paper's claims, checked.
    pub criteria: Vec<Criterion>,
    /// The figure data.
    pub figures: Vec<Figure>,
    /// The training runs it made (without weights), in the order they ran.
    #[serde(default)]
    pub runs: Vec<RunFile>,
    /// What the scale was and what it changes, in words.
    #[serde(default)]
    pub notes: String,
    /// Wall-clock seconds the experiment took.
    #[serde(default, with = "num")]
    pub seconds: f64,
    /// The protocol's fingerprint when it ran (empty in files written before fingerprints).
    #[serde(default)]
    pub fingerprint: String,
    /// The control it ran instead of the experiment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
}

/// An experiment file that could not be saved or loaded: the file and what is wrong.
#[derive(Debug, Error)]
#[error("{}: {reason}", path.display())]
pub struct ExperimentFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl ExperimentFile {
    /// An empty file for an experiment run with `options`.
    pub fn new(experiment: &super::Experiment, settings: ExperimentSettings) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            name: experiment.name.into(),
            title: experiment.title.into(),
            citation: experiment.citation.into(),
            options: settings,
            criteria: Vec::new(),
            figures: Vec::new(),
            runs: Vec::new(),
            notes: String::new(),
            seconds: 0.0,
            fingerprint: String::new(),
            control: None,
        }
    }

    /// Whether every criterion passed (and there is at least one).
    pub fn passed(&self) -> bool {
        !self.criteria.is_empty() && self.criteria.iter().all(|c| c.passed)
    }

    /// The criterion whose name starts with `prefix`.
    pub fn criterion(&self, prefix: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.name.starts_with(prefix))
    }

    /// The path this file saves to in `dir`: `<dir>/<name>.reslab-experiment.json`, or
    /// `<dir>/<name>.control-<control>.reslab-experiment.json` for a control.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        let stem = match &self.control {
            Some(c) => format!("{}.control-{c}", self.name),
            None => self.name.clone(),
        };
        dir.join(format!("{}{SUFFIX}", runfile::sanitize_name(&stem)))
    }

    /// For a control's file: whether the criteria rejected it (the control's `rejected_by`
    /// criterion failed). `None` for an experiment's own file or a control this build does
    /// not know.
    pub fn control_rejected(&self) -> Option<bool> {
        let control = super::find(&self.name)?.control(self.control.as_deref()?)?;
        let c = self
            .criteria
            .iter()
            .find(|c| c.name.contains(control.rejected_by))?;
        Some(!c.passed)
    }

    /// Saves into `dir` (created when missing) with the atomic writer; returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ExperimentFileError> {
        let path = self.path_in(dir);
        let err = |reason: String| ExperimentFileError {
            path: path.clone(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the folder: {e}")))?;
        let json = serde_json::to_vec(self).map_err(|e| err(e.to_string()))?;
        runfile::write_atomic(&path, &json).map_err(|e| err(format!("cannot write: {e}")))?;
        Ok(path)
    }

    /// Loads and validates an experiment file; every failure names the file, nothing panics.
    pub fn load(path: &Path) -> Result<ExperimentFile, ExperimentFileError> {
        let err = |reason: String| ExperimentFileError {
            path: path.to_path_buf(),
            reason,
        };
        // Only a regular file within the cap is read (a FIFO or /dev/zero would never end).
        let bytes =
            crate::safe_fs::read_regular(path, MAX_BYTES).map_err(|e| err(e.to_string()))?;
        Self::parse(&bytes).map_err(err)
    }

    /// Parses and checks experiment-file bytes.
    pub fn parse(bytes: &[u8]) -> Result<ExperimentFile, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                format!(
                    "the file is truncated: the JSON ends at line {}, column {}",
                    e.line(),
                    e.column()
                )
            } else {
                format!("not a JSON experiment file: {e}")
            }
        })?;
        let format = value.get("format").and_then(|v| v.as_str());
        if format != Some(FORMAT) {
            return Err(format!(
                "not a reslab experiment file (format is {}, expected \"{FORMAT}\")",
                format.map_or_else(|| "nothing".into(), |f| format!("\"{f}\""))
            ));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(1) => {}
            Some(v) if v > u64::from(VERSION) => {
                return Err(format!(
                    "the file is version {v}, but this reslab reads versions up to {VERSION}; update reslab to open it"
                ));
            }
            Some(v) => return Err(format!("version {v} is not a version this build knows")),
            None => return Err("field version: missing or not a whole number".into()),
        }
        let file: ExperimentFile =
            serde_json::from_value(value).map_err(|e| format!("field (structure): {e}"))?;
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        for (i, f) in self.figures.iter().enumerate() {
            match &f.kind {
                FigureKind::Heatmap { nx, ny, values, .. } => {
                    if nx.checked_mul(*ny) != Some(values.len()) {
                        return Err(format!(
                            "figure {i} (\"{}\"): a {nx} × {ny} heatmap needs {} values, it has {}",
                            f.title,
                            nx.saturating_mul(*ny),
                            values.len()
                        ));
                    }
                }
                FigureKind::Bars { categories, series } => {
                    if let Some(s) = series.iter().find(|s| s.values.len() != categories.len()) {
                        return Err(format!(
                            "figure {i} (\"{}\"): bar series \"{}\" has {} values for {} categories",
                            f.title,
                            s.name,
                            s.values.len(),
                            categories.len()
                        ));
                    }
                }
                FigureKind::Images { images } => {
                    for t in images {
                        let want = t.width.checked_mul(t.height).and_then(|n| n.checked_mul(3));
                        if want != Some(t.rgb.len()) {
                            return Err(format!(
                                "figure {i} (\"{}\"): image \"{}\" of {} × {} pixels needs {} bytes, it has {}",
                                f.title,
                                t.label,
                                t.width,
                                t.height,
                                t.width.saturating_mul(t.height).saturating_mul(3),
                                t.rgb.len()
                            ));
                        }
                    }
                }
                FigureKind::Lines { .. } => {}
            }
        }
        for (i, run) in self.runs.iter().enumerate() {
            // Each embedded run passes the run-file reader's own checks.
            let bytes = serde_json::to_vec(run).map_err(|e| e.to_string())?;
            runfile::parse(&bytes).map_err(|e| format!("run {i} (\"{}\"): {e}", run.name))?;
        }
        Ok(())
    }
}
