//! One cell of a sweep: its preset built for the sweep's data, trained on the device it is given
//! (this machine's CPU or GPU, or a `reslab serve` endpoint) through the one driver
//! ([`crate::train::drive`], the worker's steps applied with `apply_event`), saved as a run file
//! with its weights, summarised as a [`CellResult`].

use super::{Cell, CellResult, Grid};
use crate::data::Dataset;
use crate::metrics::{History, series};
use crate::runfile::{self, Environment, Progress, RunFile, RunStatus};
use crate::spec::{DeviceChoice, Duration, PresetOptions, TrainConfig, preset, validate};
use crate::train::{Session, TrainEvent, apply_event, drive};
use std::path::Path;
use std::time::Instant;

/// Steps the final training loss is averaged over.
pub const FINAL_WINDOW: usize = 50;

/// Why a cell did not finish.
#[derive(Debug)]
pub enum CellError {
    /// The device could not be reached or stopped answering: the cell can run elsewhere.
    Device(String),
    /// Anything else (its network, its file): running it elsewhere would fail the same way.
    Cell(String),
}

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellError::Device(e) | CellError::Cell(e) => f.write_str(e),
        }
    }
}

/// How a cell's run went.
pub enum CellOutcome {
    /// It finished (or diverged) and was saved.
    Done(CellResult),
    /// It was stopped (`stop` said so) before its end; nothing was saved.
    Stopped,
}

/// Trains `cell` of `grid` on `data` (the grid's dataset, loaded once for the sweep) on
/// `device` and saves it to `run_path` (whose name relative to the sweep file's folder is
/// `run_name`). `progress` hears every step; `stop` is asked before each step. Nothing is saved
/// unless the run ends: a device that fails leaves no file, and the cell can run elsewhere.
pub fn run_cell(
    grid: &Grid,
    (cell, device): (&Cell, &DeviceChoice),
    data: &Dataset,
    (run_path, run_name): (&Path, &str),
    progress: &mut dyn FnMut(),
    stop: &dyn Fn() -> bool,
) -> Result<CellOutcome, CellError> {
    let started = Instant::now();
    let spec = cell_spec(grid, cell).map_err(CellError::Cell)?;
    let valid = validate(&spec).map_err(|e| CellError::Cell(format!("{}: {e}", cell.preset())))?;
    let config = TrainConfig {
        device: device.clone(),
        ..cell_config(grid, cell)
    };
    let burn_device =
        crate::model::make_device(device, true).map_err(|e| CellError::Device(e.to_string()))?;
    let mut session = drive::guarded(device, || {
        Session::new(&valid, &config, data.clone(), burn_device)
    })
    .map_err(CellError::Device)?
    .map_err(|e| CellError::Cell(e.to_string()))?;
    let mut history = History::new(session.layout.clone());
    let mut status = RunStatus::Running;
    let mut diverged = false;
    while !session.is_done() {
        if stop() {
            return Ok(CellOutcome::Stopped);
        }
        let taken = drive::step(&mut session, false);
        if let Some(why) = taken.failed {
            return Err(CellError::Device(why));
        }
        for e in &taken.events {
            apply_event(&mut history, &mut status, e);
        }
        progress();
        if taken.diverged {
            diverged = true;
            break;
        }
    }
    let end = TrainEvent::Finished {
        step: session.step,
        reason: drive::end_reason(diverged),
    };
    apply_event(&mut history, &mut status, &end);
    let mut run = RunFile::new(
        &cell.name(),
        spec,
        config.clone(),
        grid.dataset.clone(),
        Environment::for_device(&config.device),
    );
    run.status = status;
    run.progress = Progress {
        step: session.step,
        optimizer_steps: session.optimizer.steps,
    };
    run.history = history;
    let ck = drive::guarded(device, || session.checkpoint()).map_err(CellError::Device)?;
    runfile::save_to(run_path, &run, Some(&ck)).map_err(|e| CellError::Cell(e.to_string()))?;
    Ok(CellOutcome::Done(summary(cell, &run, run_name, started)))
}

/// The network of `cell`: its preset with the grid's width and the cell's normalisation, for the
/// grid's data; an error names the preset.
pub fn cell_spec(grid: &Grid, cell: &Cell) -> Result<crate::spec::NetSpec, String> {
    let opts = PresetOptions {
        width: grid.width,
        norm: cell.norm,
        ..PresetOptions::for_dataset(&grid.dataset)
    };
    let spec = preset(&cell.preset(), &opts).map_err(|e| e.to_string())?;
    validate(&spec).map_err(|e| format!("{}: {e}", cell.preset()))?;
    Ok(spec)
}

/// The training configuration of `cell`.
pub fn cell_config(grid: &Grid, cell: &Cell) -> TrainConfig {
    TrainConfig {
        lr: cell.lr,
        seed: cell.seed,
        duration: Duration::Steps(grid.steps),
        probe_every: grid.probe_every,
        ..TrainConfig::default()
    }
}

/// Whether `run` is `cell`'s run of `grid` (its network, data and configuration, wherever it
/// trained), so that a sweep may take it as the cell's (or train the cell over it).
pub fn is_cells_run(grid: &Grid, cell: &Cell, run: &RunFile) -> bool {
    let config = TrainConfig {
        device: run.config.device.clone(),
        ..cell_config(grid, cell)
    };
    cell_spec(grid, cell).is_ok_and(|spec| run.spec == spec)
        && run.dataset == grid.dataset
        && run.config == config
}

/// A saved run's result for `cell`.
pub fn summary(cell: &Cell, run: &RunFile, run_name: &str, started: Instant) -> CellResult {
    let h = &run.history;
    let last = |name: &str| h.get(name, "").and_then(|s| s.last()).map(f64::from);
    let final_loss = h.get(series::LOSS, "").and_then(|s| {
        let v = &s.values[s.values.len().saturating_sub(FINAL_WINDOW)..];
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
        (!v.is_empty() && mean.is_finite()).then_some(mean)
    });
    CellResult {
        cell: cell.clone(),
        run: run_name.to_string(),
        status: run.status,
        steps: h.last_step,
        final_loss: if run.status == RunStatus::Diverged {
            None
        } else {
            final_loss
        },
        val_loss: last(series::VAL_LOSS).filter(|v| v.is_finite()),
        val_accuracy: last(series::VAL_ACCURACY).filter(|v| v.is_finite()),
        seconds: started.elapsed().as_secs_f64(),
    }
}
