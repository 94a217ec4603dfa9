//! What arrives between frames: the live run's events (within the frame's budget), the results
//! of background jobs, and the screenshot the panel pictures are cut from. Each result is
//! handled exactly once, and every failure is shown in the message bar.

use super::super::jobs::{JobResult, PickPurpose};
use super::super::settings::GpuState;
use super::{EVENT_BUDGET, LabApp};
use crate::runfile::{LoadedRun, RunStatus};
use crate::spec::DeviceChoice;
use std::path::PathBuf;

impl LabApp {
    /// Takes training events (within the frame budget), job results and finished screenshots.
    pub(super) fn pump(&mut self) {
        if let Some((run_id, applied)) = self.registry.apply_live_events(EVENT_BUDGET) {
            if let Some(msg) = applied.failed {
                self.error(format!("the run failed: {msg}"));
            }
            if let Some((step, tensor, value)) = applied.diverged {
                self.error(format!(
                    "the run diverged at step {step}: {tensor} = {value} (lower the learning rate, or add BN or skips)"
                ));
            }
            if applied.snapshot
                && let Some(p) = self.saves.pending.take_if(|p| p.run_id == run_id)
            {
                self.save_now(run_id, p.target);
            }
            if applied.finished {
                self.on_live_finished(run_id);
            }
        }
        for r in self.jobs.poll() {
            self.on_job(r);
        }
    }

    fn on_live_finished(&mut self, id: u64) {
        if let Some(run) = self.registry.get(id) {
            let status = run.file.status.word();
            let summary = super::super::panels::loss_summary(run);
            self.info(format!("{} {status}: {summary}", run.file.name));
        }
        if let Some(p) = self.saves.pending.take_if(|p| p.run_id == id) {
            self.save_now(id, p.target);
        }
    }

    /// Takes one job's result.
    pub(super) fn on_job(&mut self, r: JobResult) {
        match r {
            JobResult::Loaded { path, result, show } => match result {
                Ok(loaded) => self.on_loaded(path, *loaded, show),
                Err(e) => match self.restoring.iter().position(|r| r.path == path) {
                    // A run of the last session whose file is gone (moved, deleted) is not an
                    // error of this one.
                    Some(k) => {
                        self.restoring.remove(k);
                        self.info(format!(
                            "{} (in the lab last time) is not there now: {e}",
                            path.display()
                        ));
                    }
                    None => self.error(format!("could not open {}: {e}", path.display())),
                },
            },
            JobResult::Saved { run_id, result } => self.on_saved(run_id, result),
            JobResult::SpecExported(Ok(path)) => {
                self.info(format!("exported the spec to {}", path.display()))
            }
            JobResult::SpecExported(Err(e)) => self.error(format!("could not export: {e}")),
            JobResult::Picked { purpose, path } => self.on_picked(purpose, path),
            JobResult::Gpu(state) => self.on_gpu_checked(state),
            JobResult::Remote(endpoint, found) => self.on_remote_checked(endpoint, found),
            JobResult::Recent(paths) => self.recent = paths,
            JobResult::RunFiles(rows, scan) => {
                if scan == self.runs_table.scan {
                    self.runs_table.files = rows;
                }
            }
            JobResult::Sweeps(read, select) => self.state.experiments.sweeps_read(read, select),
            JobResult::FileChanged { from, to, result } => self.run_file_changed(from, to, result),
            JobResult::Exported(Ok(paths)) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.info(format!("exported {}", names.join(", ")))
            }
            JobResult::Exported(Err(e)) => self.error(format!("could not export: {e}")),
            JobResult::Experiment(result) => self
                .state
                .experiments
                .finished(result.map(|(file, path)| (*file, path))),
            JobResult::NotStarted(why) => self.error(why),
        }
    }

    fn on_loaded(&mut self, path: PathBuf, loaded: LoadedRun, show: bool) {
        let mut file = loaded.run;
        file.history.reindex();
        let name = file.name.clone();
        let id = self.registry.add(
            file,
            loaded.checkpoint.map(Box::new),
            Some(loaded.path.clone()),
            false,
        );
        if show {
            self.registry.show(Some(id));
        }
        if let Some(k) = self.restoring.iter().position(|e| e.path == path) {
            let e = self.restoring.remove(k);
            if let Some(r) = self.registry.get_mut(id) {
                r.compare = e.compare;
            }
        }
        self.info(format!("opened {} ({name})", path.display()));
        self.remember_recent(path);
    }

    fn on_saved(&mut self, run_id: u64, result: Result<PathBuf, String>) {
        self.saves.in_flight = self.saves.in_flight.saturating_sub(1);
        match result {
            Ok(path) => {
                if let Some(run) = self.registry.get_mut(run_id) {
                    run.path = Some(path.clone());
                    if run.file.status != RunStatus::Running {
                        run.dirty = false;
                    }
                }
                self.info(format!("saved {}", path.display()));
                self.remember_recent(path);
                // The Runs tab reads the folder again when it is next shown (the saved date).
                self.runs_table.scanned = false;
            }
            Err(e) => {
                if let Some(run) = self.registry.get_mut(run_id) {
                    run.dirty = true;
                }
                self.error(format!("could not save: {e}"));
                self.save_failed_while_closing();
            }
        }
    }

    fn on_picked(&mut self, purpose: PickPurpose, path: Option<PathBuf>) {
        use super::commands::Command;
        match (purpose, path) {
            (PickPurpose::Open, Some(p)) => self.commands.push(Command::Open(p)),
            (PickPurpose::SaveAs(id), Some(p)) => self.commands.push(Command::SaveTo(id, p)),
            (PickPurpose::DataFolder, Some(p)) => {
                if let Some(dir) = self.state.settings.dataset.source.folder_mut() {
                    *dir = p;
                }
            }
            (PickPurpose::ExportSpec, Some(p)) => self.export_spec(p),
            (PickPurpose::ImportSpec, Some(p)) => self.import_spec(&p),
            (PickPurpose::ExportSpec | PickPurpose::ImportSpec, None) => self.info(
                "no file chosen (if no dialog appeared, type a path under File in the designer)",
            ),
            (_, None) => self.info(
                "no file chosen (if no dialog appeared, type a path in the Runs section on the left)",
            ),
        }
    }

    fn on_remote_checked(
        &mut self,
        endpoint: crate::spec::Endpoint,
        found: Result<String, String>,
    ) {
        use crate::ui::device_picker::RemoteState;
        self.remote = match found {
            Ok(_) => RemoteState::Reached(endpoint),
            Err(why) => {
                let asked =
                    self.state.settings.config.device == DeviceChoice::Remote(endpoint.clone());
                if asked {
                    self.error(why.clone());
                }
                RemoteState::Unreachable(endpoint, why)
            }
        };
    }

    fn on_gpu_checked(&mut self, state: GpuState) {
        if let GpuState::Unavailable(e) = &state
            && self.state.settings.config.device == DeviceChoice::Gpu
        {
            // Only worth a message when the user asked for the GPU.
            self.state.settings.config.device = DeviceChoice::Cpu;
            self.error(format!("{e}; training on the CPU"));
        }
        self.gpu = state;
    }

    /// Puts a run file first in the recent runs.
    fn remember_recent(&mut self, path: PathBuf) {
        self.recent.retain(|p| *p != path);
        self.recent.insert(0, path);
        self.recent.truncate(20);
    }
}
