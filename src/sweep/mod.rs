//! Sweeps: one grid of runs (preset family × depth × seed, × learning rate and normalisation),
//! each trained to its own run file, summarised in one sweep file. The note's first claim —
//! deeper plain nets get better "till certain layers", then worse — is a curve over depth
//! (He et al. 2016, Fig. 1 and 6); a sweep measures it ([`figures`]).
//!
//! `NAME.reslab-sweep.json` holds the grid and a result per finished cell; the runs are
//! `NAME/<family>-<depth>-<norm>-lr<lr>-seed<seed>.reslab.json`. A sweep is resumable: running
//! it again skips every cell whose run file finished (or diverged).

mod figures;
mod queue;
mod run;

pub use figures::figures;
pub use queue::Queue;
pub use run::{CellError, CellOutcome, FINAL_WINDOW, cell_spec, is_cells_run, run_cell, summary};

use crate::runfile::RunStatus;
use crate::safe_fs;
use crate::spec::{DatasetSpec, Norm};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The suffix of sweep files.
pub const SUFFIX: &str = ".reslab-sweep.json";
/// `format` of a sweep file.
pub const FORMAT: &str = "reslab-sweep";
/// The largest sweep file read.
pub const MAX_BYTES: u64 = 16 << 20;
/// The most cells a sweep may have.
pub const MAX_CELLS: usize = 10_000;

/// What a sweep runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Preset families, e.g. `mlp-plain`, `mlp-res`, `cifar-resnet`.
    pub families: Vec<String>,
    /// Depths (the presets' N).
    pub depths: Vec<usize>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Learning rates.
    pub lrs: Vec<f64>,
    /// Normalisations of the presets' blocks.
    pub norms: Vec<Norm>,
    /// Hidden width of MLP presets.
    pub width: usize,
    /// Optimiser steps of each run.
    pub steps: u64,
    /// Probe every this many steps (0: never).
    pub probe_every: u64,
    /// The data.
    pub dataset: DatasetSpec,
}

/// One run of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Preset family.
    pub family: String,
    /// Depth.
    pub depth: usize,
    /// Seed.
    pub seed: u64,
    /// Learning rate.
    pub lr: f64,
    /// Normalisation.
    pub norm: Norm,
}

impl Cell {
    /// The preset's name, e.g. `mlp-res-8`.
    pub fn preset(&self) -> String {
        format!("{}-{}", self.family, self.depth)
    }

    /// The run's name (its file's stem).
    pub fn name(&self) -> String {
        let norm = match self.norm {
            Norm::None => "nonorm".to_string(),
            Norm::Batch => "bn".to_string(),
            Norm::Layer => "ln".to_string(),
            Norm::Group { groups } => format!("gn{groups}"),
        };
        crate::runfile::sanitize_name(&format!(
            "{}-{norm}-lr{}-seed{}",
            self.preset(),
            self.lr,
            self.seed
        ))
    }
}

impl Grid {
    /// The first list with a value twice (the same cell would run twice).
    fn repeated(&self) -> Option<&'static str> {
        fn twice<T: PartialEq>(v: &[T]) -> bool {
            v.iter().enumerate().any(|(i, a)| v[..i].contains(a))
        }
        [
            ("families", twice(&self.families)),
            ("depths", twice(&self.depths)),
            ("seeds", twice(&self.seeds)),
            ("lrs", twice(&self.lrs)),
            ("norms", twice(&self.norms)),
        ]
        .into_iter()
        .find_map(|(name, t)| t.then_some(name))
    }

    /// A cell's place in [`Grid::cells`] (`None` for a cell of another grid).
    pub fn index_of(&self, c: &Cell) -> Option<usize> {
        let f = self.families.iter().position(|x| *x == c.family)?;
        let n = self.norms.iter().position(|x| *x == c.norm)?;
        let l = self.lrs.iter().position(|x| *x == c.lr)?;
        let d = self.depths.iter().position(|x| *x == c.depth)?;
        let s = self.seeds.iter().position(|x| *x == c.seed)?;
        let idx = (((f * self.norms.len() + n) * self.lrs.len() + l) * self.depths.len() + d)
            * self.seeds.len()
            + s;
        Some(idx)
    }

    /// Every cell, families outermost, then norms, learning rates, depths and seeds.
    pub fn cells(&self) -> Vec<Cell> {
        let mut out = Vec::new();
        for family in &self.families {
            for &norm in &self.norms {
                for &lr in &self.lrs {
                    for &depth in &self.depths {
                        for &seed in &self.seeds {
                            out.push(Cell {
                                family: family.clone(),
                                depth,
                                seed,
                                lr,
                                norm,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Checks the grid: no empty list, at most [`MAX_CELLS`] cells, positive learning rates and
    /// steps, every family a preset family.
    pub fn check(&self) -> Result<(), String> {
        let lists = [
            ("families", self.families.len()),
            ("depths", self.depths.len()),
            ("seeds", self.seeds.len()),
            ("lrs", self.lrs.len()),
            ("norms", self.norms.len()),
        ];
        if let Some((name, _)) = lists.iter().find(|(_, n)| *n == 0) {
            return Err(format!("grid.{name}: needs at least one value"));
        }
        let cells = lists.iter().try_fold(1usize, |a, (_, n)| a.checked_mul(*n));
        if cells.is_none_or(|c| c > MAX_CELLS) {
            return Err(format!("the grid has more than {MAX_CELLS} cells"));
        }
        if let Some(name) = self.repeated() {
            return Err(format!("grid.{name}: a value appears twice"));
        }
        if let Some(lr) = self.lrs.iter().find(|lr| !(lr.is_finite() && **lr > 0.0)) {
            return Err(format!("grid.lrs: {lr} is not a learning rate > 0"));
        }
        if self.steps == 0 || self.steps > crate::spec::MAX_STEPS {
            return Err(format!(
                "grid.steps: {} is not between 1 and {}",
                self.steps,
                crate::spec::MAX_STEPS
            ));
        }
        Ok(())
    }
}

/// What a finished cell measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// Its run file, relative to the sweep file's folder.
    pub run: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Steps taken.
    pub steps: u64,
    /// Mean training loss over the last [`FINAL_WINDOW`] steps (`None` when diverged).
    pub final_loss: Option<f64>,
    /// Validation loss at the end.
    pub val_loss: Option<f64>,
    /// Validation accuracy at the end (a fraction).
    pub val_accuracy: Option<f64>,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
}

/// A sweep file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version (1).
    pub version: u32,
    /// The sweep's name (its file's stem).
    pub name: String,
    /// What it runs.
    pub grid: Grid,
    /// The finished cells, in grid order.
    pub results: Vec<CellResult>,
}

impl SweepFile {
    /// A new sweep with no results.
    pub fn new(name: &str, grid: Grid) -> Self {
        Self {
            format: FORMAT.into(),
            version: 1,
            name: name.into(),
            grid,
            results: Vec::new(),
        }
    }

    /// Reads and checks a sweep file; errors name the file and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let bytes = safe_fs::read_regular(path, MAX_BYTES).map_err(|e| err(&e))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let file: SweepFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            err(&format!("{field}: {}", e.inner()))
        })?;
        if file.format != FORMAT || file.version != 1 {
            return Err(err(&format!(
                "format: not a reslab sweep file of version 1 (\"{}\", {})",
                file.format, file.version
            )));
        }
        file.grid.check().map_err(|e| err(&e))?;
        for (k, r) in file.results.iter().enumerate() {
            let p = Path::new(&r.run);
            let plain = p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                return Err(err(&format!(
                    "results[{k}].run: \"{}\" is not a path inside the sweep's folder",
                    r.run
                )));
            }
        }
        Ok(file)
    }

    /// Writes the file atomically (never through a symlink).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        safe_fs::write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The result of `cell`, if it has one.
    pub fn result(&self, cell: &Cell) -> Option<&CellResult> {
        self.results.iter().find(|r| r.cell == *cell)
    }

    /// Records a cell's result (replacing an earlier one) and keeps the results in grid order.
    pub fn record(&mut self, result: CellResult) {
        self.results.retain(|r| r.cell != result.cell);
        self.results.push(result);
        let grid = &self.grid;
        self.results
            .sort_by_cached_key(|r| grid.index_of(&r.cell).unwrap_or(usize::MAX));
    }
}

/// The sweep file for `out` (`x` or `x.reslab-sweep.json` → `x.reslab-sweep.json`) and the folder
/// of its runs (`x/`).
pub fn paths(out: &Path) -> (PathBuf, PathBuf) {
    let text = out.to_string_lossy();
    let stem = text.strip_suffix(SUFFIX).unwrap_or(&text).to_string();
    (
        PathBuf::from(format!("{stem}{SUFFIX}")),
        PathBuf::from(stem),
    )
}

/// The run file of `cell` in the sweep's runs folder `runs_dir` (see [`paths`]):
/// `<cell name>.reslab.json`.
pub fn run_file(runs_dir: &Path, cell: &Cell) -> PathBuf {
    runs_dir.join(format!("{}{}", cell.name(), crate::runfile::SUFFIX))
}

/// Whether a cell's outcome counts as done (a resumed sweep skips it).
pub fn is_done(status: RunStatus) -> bool {
    matches!(status, RunStatus::Finished | RunStatus::Diverged)
}
