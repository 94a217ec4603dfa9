//! What the top bar, the left side, the panels, the designer and the Experiments tab ask for,
//! carried out after the frame is drawn: run control, opening and saving runs, the designer's
//! spec files, the panels' pictures.

use super::super::designer::DesignerAction;
use super::super::experiments::ExperimentsAction;
use super::super::jobs::PickPurpose;
use super::super::panels::PanelKind;
use super::super::runs::RunAction;
use super::super::runs::timestamp;
use super::{LabApp, Tab};
use crate::runfile::{self, Environment, RunFile};
use crate::spec::NetSpec;
use crate::train::{Autosave, RunRequest, spawn_run};
use std::path::{Path, PathBuf};

/// What the top bar, the left side and the panels ask for.
#[derive(Debug, PartialEq)]
pub(super) enum Command {
    Train,
    TrainTwin,
    Pause,
    Resume,
    Stop,
    Reset,
    OpenDialog,
    Open(PathBuf),
    Save(u64),
    SaveAsDialog(u64),
    SaveTo(u64, PathBuf),
    Export(PanelKind),
    ExportAll,
    Run(RunAction),
    Table(super::super::runs_table::TableAction),
    PickDataFolder,
    CheckGpu,
    /// Connect to a remote endpoint in the background.
    CheckRemote(crate::spec::Endpoint),
    RebuildSpec,
    AdaptSpec,
    Designer(DesignerAction),
    Experiments(ExperimentsAction),
}

/// Saves under way: the one waiting for the live run's snapshot, and the count of save jobs
/// not yet back (the close protocol waits for both).
#[derive(Debug, Default)]
pub(super) struct Saves {
    /// A save of the live run, waiting for the worker's snapshot of its weights.
    pub(super) pending: Option<PendingSave>,
    /// Save jobs started and not yet reported.
    pub(super) in_flight: usize,
    /// Run files being renamed or deleted (the Runs tab): no save writes them meanwhile.
    pub(super) files_changing: Vec<PathBuf>,
}

impl Saves {
    /// Whether no save is waiting or running and no run file is being renamed or deleted.
    pub(super) fn idle(&self) -> bool {
        self.pending.is_none() && self.in_flight == 0 && self.files_changing.is_empty()
    }
}

/// A save waiting for the live run's snapshot.
#[derive(Debug)]
pub(super) struct PendingSave {
    pub(super) run_id: u64,
    pub(super) target: Option<PathBuf>,
}

impl LabApp {
    pub(super) fn run_commands(&mut self) {
        for c in std::mem::take(&mut self.commands) {
            self.run_command(c);
        }
    }

    /// Carries out one command (a flat dispatch: each arm names the method that does it).
    fn run_command(&mut self, c: Command) {
        match c {
            Command::Train => self.start_training(),
            Command::TrainTwin => self.train_twin(),
            Command::Pause => {
                if let Some(l) = self.registry.live_mut() {
                    l.pause();
                }
            }
            Command::Resume => {
                if let Some(l) = self.registry.live_mut() {
                    l.resume();
                }
            }
            Command::Stop => {
                if let Some(l) = self.registry.live_mut() {
                    l.stop();
                }
            }
            Command::Reset => {
                if let Some(l) = self.registry.training() {
                    l.handle.stop();
                }
                self.registry.show(None);
                self.info("cleared the panels; earlier runs stay in Compare");
            }
            Command::OpenDialog => self.jobs.pick(
                PickPurpose::Open,
                absolute(&self.state.settings.runs_dir),
                String::new(),
            ),
            Command::Open(p) => self.open_path(p),
            Command::Save(id) => self.save(id, None),
            Command::SaveAsDialog(id) => self.save_as_dialog(id),
            Command::SaveTo(id, p) => self.save(id, Some(p)),
            Command::Export(kind) => self.export_panel(kind),
            Command::ExportAll => {
                for kind in self.state.visible.clone() {
                    self.export_panel(kind);
                }
            }
            Command::Run(a) => self.run_action(a),
            Command::Table(a) => self.table_action(a),
            Command::PickDataFolder => {
                self.jobs
                    .pick(PickPurpose::DataFolder, PathBuf::from("."), String::new())
            }
            Command::CheckGpu => {
                self.gpu = super::GpuState::Checking;
                self.jobs.probe_gpu();
            }
            Command::CheckRemote(e) => {
                self.remote = crate::ui::device_picker::RemoteState::Checking(e.clone());
                self.jobs.probe_remote(e);
            }
            Command::RebuildSpec => self.rebuild_spec(),
            Command::AdaptSpec => {
                let (input, classes) = self.state.settings.dataset.expected_io();
                self.state.designer.edit(|s| {
                    crate::spec::edit::adapt_io(s, input, classes);
                });
                self.sync_spec();
            }
            Command::Designer(a) => self.designer_action(a),
            Command::Experiments(a) => self.experiments_action(a),
        }
    }

    fn start_training(&mut self) {
        if let Some(live) = self.registry.live_mut()
            && live.ended.is_none()
        {
            if live.is_paused() {
                live.resume();
            }
            return;
        }
        let Ok(spec) = self.spec.clone() else {
            return;
        };
        self.start_training_with(spec);
    }

    /// Starts a run of `spec` with the settings on the left (unless Train is blocked: a run
    /// trains, or the network or the memory says no).
    pub(super) fn start_training_with(&mut self, spec: NetSpec) {
        if let Some(why) = self.train_blocker() {
            self.error(format!("cannot train: {why}"));
            return;
        }
        let settings = &self.state.settings;
        let name = format!(
            "{}-{}",
            crate::spec::edit::run_stem(&spec.name),
            timestamp()
        );
        let file = RunFile::new(
            &name,
            spec.clone(),
            settings.config.clone(),
            settings.dataset.clone(),
            Environment::for_device(&settings.config.device),
        );
        let request = RunRequest {
            spec,
            config: settings.config.clone(),
            dataset: settings.dataset.clone(),
            resume: None,
            autosave: Autosave::default(),
        };
        // The worker wakes the window at most 10 times a second; each wake-up asks for the next
        // frame within the redraw interval (several wake-ups in one interval make one frame).
        let (ctx, every) = (self.ctx.clone(), self.redraw_interval());
        match spawn_run(request, Box::new(move || ctx.request_repaint_after(every))) {
            Ok(handle) => {
                self.registry.add_live(file, handle);
            }
            Err(e) => self.error(format!("cannot train: {e}")),
        }
    }

    /// Opens a run file in the background, or an experiment file in the Experiments tab.
    pub(super) fn open_path(&mut self, p: PathBuf) {
        if p.to_string_lossy().ends_with(crate::sweep::SUFFIX) {
            self.state.tab = Tab::Experiments;
            self.jobs.read_sweeps(p, true);
        } else if p.to_string_lossy().ends_with(crate::experiments::SUFFIX) {
            self.state.tab = Tab::Experiments;
            self.state.experiments.open(p, &mut self.jobs);
        } else {
            self.jobs.load(p, true);
        }
    }

    fn save_as_dialog(&mut self, id: u64) {
        let name = self
            .registry
            .get(id)
            .map(|r| format!("{}{}", r.file.name, runfile::SUFFIX))
            .unwrap_or_default();
        self.jobs.pick(
            PickPurpose::SaveAs(id),
            absolute(&self.state.settings.runs_dir),
            name,
        )
    }

    /// Saves a run to `target` (or where it belongs, see [`super::RunRegistry::save_target`]).
    /// The live run's weights are the worker's: the save waits for its snapshot.
    pub(super) fn save(&mut self, id: u64, target: Option<PathBuf>) {
        if let Some(l) = self.registry.training().filter(|l| l.run_id == id) {
            l.handle.request_snapshot();
            self.saves.pending = Some(PendingSave { run_id: id, target });
        } else {
            self.save_now(id, target);
        }
    }

    /// Saves a run's latest checkpoint now, as a background job.
    pub(super) fn save_now(&mut self, id: u64, target: Option<PathBuf>) {
        let runs_dir = self.state.settings.runs_dir.clone();
        let Some(to) = self.registry.save_target(id, target.as_deref(), &runs_dir) else {
            return;
        };
        if self.saves.files_changing.contains(&to.path) {
            self.error(format!(
                "could not save: {} is being renamed or deleted; save again when that is done",
                to.path.display()
            ));
            self.save_failed_while_closing();
            return;
        }
        if let Some(live) = self
            .registry
            .live_mut()
            .filter(|l| l.run_id == id && l.ended.is_none())
            && live.file_lock.is_none()
        {
            match runfile::lock(&to.path) {
                Ok(lock) => live.file_lock = Some(lock),
                Err(e) => {
                    self.error(format!("could not save: {e}"));
                    self.save_failed_while_closing();
                    return;
                }
            }
        }
        let Some(run) = self.registry.get_mut(id) else {
            return;
        };
        // The run takes the name of the file it is saved as, and that file at once, so that a
        // second save before this one ends goes to the same file.
        run.file.name = to.name;
        run.path = Some(to.path.clone());
        let (file, checkpoint) = (run.file.clone(), run.checkpoint.clone());
        self.saves.in_flight += 1;
        self.jobs.save(id, to.path, file, checkpoint);
    }

    pub(super) fn run_action(&mut self, a: RunAction) {
        match a {
            RunAction::Toggle(id) => {
                if let Some(r) = self.registry.get_mut(id) {
                    r.compare = !r.compare;
                }
            }
            RunAction::Show(id) => self.registry.show(Some(id)),
            RunAction::Save(id) => self.save(id, None),
            RunAction::Remove(id) => self.remove_run(id),
            RunAction::Discard(id) => self.discard_run(id),
        }
    }

    /// Drops a scratch run (one no file holds) without saving it: closing will not save it and
    /// it leaves no file. A run with a file, a training run, or one while a save is under way
    /// is refused with the reason.
    fn discard_run(&mut self, id: u64) {
        let Some(run) = self.registry.get(id) else {
            return;
        };
        if self.registry.is_training_run(id) {
            self.error("stop the run before discarding it");
        } else if let Some(path) = &run.path {
            let path = path.display().to_string();
            self.error(format!(
                "{path} holds this run: Remove takes it out of the lab"
            ));
        } else if !self.saves.idle() {
            self.error("a save is under way: discard the run when it is done");
        } else {
            let name = run.file.name.clone();
            self.registry.remove(id);
            self.info(format!("discarded {name} (it was never saved)"));
        }
    }

    fn remove_run(&mut self, id: u64) {
        if self.registry.is_training_run(id) {
            self.error("stop the run before removing it");
            return;
        }
        if self.registry.get(id).is_some_and(|r| r.dirty) {
            // Nothing is lost: an unsaved run is saved before it leaves the lab.
            self.save_now(id, None);
        }
        self.registry.remove(id);
    }

    fn designer_action(&mut self, a: DesignerAction) {
        match a {
            DesignerAction::Export => {
                let name = format!("{}.json", self.state.designer.spec().name);
                self.jobs
                    .pick(PickPurpose::ExportSpec, PathBuf::from("."), name)
            }
            DesignerAction::Import => {
                self.jobs
                    .pick(PickPurpose::ImportSpec, PathBuf::from("."), String::new())
            }
            DesignerAction::ExportTo(p) => self.export_spec(p),
            DesignerAction::ImportFrom(p) => self.import_spec(&p),
            DesignerAction::LoadPreset(name) => match self.state.settings.net.with_preset(&name) {
                Some(net) => {
                    self.state.settings.net = net;
                    self.rebuild_spec();
                }
                None => self.error(format!("{name} is not a preset the lab's picker has")),
            },
        }
    }

    /// Writes the designer's spec as JSON (in the background; it is not a run, so it never
    /// joins the recent runs).
    pub(super) fn export_spec(&mut self, path: PathBuf) {
        self.jobs
            .export_spec(self.state.designer.spec().clone(), path);
    }

    pub(super) fn import_spec(&mut self, path: &Path) {
        // A spec file is a few kB: reading it here does not hold the frame up noticeably.
        let parsed = crate::safe_fs::read_regular(path, 64 << 20)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<NetSpec>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(spec) => {
                self.state.designer.load(spec);
                self.sync_spec();
                self.info(format!("imported {}", path.display()));
            }
            Err(e) => self.error(format!("could not import {}: {e}", path.display())),
        }
    }

    fn experiments_action(&mut self, a: ExperimentsAction) {
        match a {
            ExperimentsAction::None => {}
            ExperimentsAction::OpenRuns => self.open_experiment_runs(),
            ExperimentsAction::OpenRun(p) => {
                self.state.tab = Tab::Lab;
                self.jobs.load(p, true);
            }
            ExperimentsAction::Run(dataset) => {
                let device = self.state.settings.config.device.clone();
                self.state
                    .experiments
                    .start(&mut self.jobs, (dataset, device))
            }
            ExperimentsAction::Open(p) if p.to_string_lossy().ends_with(crate::sweep::SUFFIX) => {
                self.jobs.read_sweeps(p, true)
            }
            ExperimentsAction::Open(p) => self.state.experiments.open(p, &mut self.jobs),
        }
    }

    /// Puts the runs an experiment made into the lab (they are saved inside the experiment
    /// file, so they do not count as unsaved).
    fn open_experiment_runs(&mut self) {
        let Some(file) = self.state.experiments.result().cloned() else {
            return;
        };
        let n = file.runs.len();
        let mut last = None;
        for mut run in file.runs {
            run.history.reindex();
            last = Some(self.registry.add(run, None, None, false));
        }
        if last.is_some() {
            self.registry.show(last);
            self.state.tab = Tab::Lab;
            if !self.state.visible.contains(&PanelKind::Compare) {
                self.state.visible.push(PanelKind::Compare);
            }
            self.info(format!("{n} runs of {} are in Compare", file.name));
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
