//! The app: state, the top bar, the left side, the centre panels, and the commands they issue.
//!
//! Drawing only collects [`Command`]s; they are carried out after the frame is drawn, so no
//! destructive action happens half-way through a frame (egui's demo app does the same).

use super::designer::{Designer, DesignerAction, DesignerCtx};
use super::experiments::{ExperimentsAction, ExperimentsTab};
use super::jobs::{JobResult, Jobs, PickPurpose};
use super::panels::{
    ActivationsPanel, BatchNormPanel, BoundaryPanel, CompareAction, ComparePanel, GradientsPanel,
    LossPanel, PanelCtx, PanelKind,
};
use super::runs::{LiveRun, ShownRun, timestamp};
use super::settings::{GpuState, Settings, SettingsAction, spec_summary};
use crate::numbers::sig;
use crate::runfile::{self, RunFile, RunStatus};
use crate::spec::{DeviceChoice, NetSpec, validate};
use crate::train::{Autosave, RunRequest, spawn_run};
use egui::{Color32, ColorImage, Rect, RichText, Ui};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// Time the UI spends taking training events per frame at most.
pub const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// The centre's tabs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tab {
    /// The live panels.
    #[default]
    Lab,
    /// The network designer.
    Designer,
    /// Reproductions of published figures.
    Experiments,
}

/// State kept between launches (eframe persistence).
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct Persisted {
    settings: Settings,
    visible: Vec<PanelKind>,
    columns: usize,
    tab: Tab,
    loss: LossPanel,
    activations: ActivationsPanel,
    batchnorm: BatchNormPanel,
    gradients: GradientsPanel,
    compare: ComparePanel,
    designer: Designer,
    experiments: ExperimentsTab,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            visible: PanelKind::ALL.to_vec(),
            columns: 2,
            tab: Tab::Lab,
            loss: LossPanel::default(),
            activations: ActivationsPanel::default(),
            batchnorm: BatchNormPanel::default(),
            gradients: GradientsPanel::default(),
            compare: ComparePanel::default(),
            designer: Designer::default(),
            experiments: ExperimentsTab::default(),
        }
    }
}

/// A line in the message bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The text (an error names the file and the reason).
    pub text: String,
    /// Shown in red.
    pub error: bool,
}

/// What the top bar, the left side and the panels ask for.
#[derive(Debug, PartialEq)]
enum Command {
    Train,
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
    Compare(CompareAction),
    PickDataFolder,
    CheckGpu,
    RebuildSpec,
    AdaptSpec,
    Designer(DesignerAction),
}

/// A save waiting for the live run's snapshot.
#[derive(Debug)]
struct PendingSave {
    run_id: u64,
    target: Option<PathBuf>,
}

/// The lab.
pub struct LabApp {
    state: Persisted,
    runs: Vec<ShownRun>,
    next_id: u64,
    shown: Option<u64>,
    live: Option<LiveRun>,
    jobs: Jobs,
    gpu: GpuState,
    spec: Result<NetSpec, String>,
    messages: Vec<Message>,
    recent: Vec<PathBuf>,
    pending_save: Option<PendingSave>,
    saves_in_flight: usize,
    closing: bool,
    close_now: bool,
    path_field: String,
    panel_rects: Vec<Option<Rect>>,
    shot_tx: Sender<(Vec<PanelKind>, Arc<ColorImage>)>,
    shot_rx: Receiver<(Vec<PanelKind>, Arc<ColorImage>)>,
    boundary: BoundaryPanel,
    export_queue: std::collections::VecDeque<PanelKind>,
    export_pending: bool,
    commands: Vec<Command>,
    ctx: Option<egui::Context>,
}

impl LabApp {
    /// The app, with the persisted settings when eframe has them.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let mut app = Self::restore(&cc.egui_ctx, cc.storage);
        // The top bar shows whether the GPU can be used; finding out takes wgpu a moment, so it
        // runs in the background from the start.
        app.gpu = GpuState::Checking;
        app.jobs.probe_gpu();
        app
    }

    /// The app with the settings, panel options and layout saved in `storage` (defaults when
    /// there are none or they cannot be read, e.g. after an incompatible update).
    pub fn restore(ctx: &egui::Context, storage: Option<&dyn eframe::Storage>) -> Self {
        let state: Persisted = storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        Self::with_state(state, Some(ctx.clone()))
    }

    /// The app with default settings and runs saved to `runs_dir` (tests use a temporary folder).
    pub fn with_runs_dir(ctx: &egui::Context, runs_dir: PathBuf) -> Self {
        let mut state = Persisted::default();
        state.experiments.out_dir = runs_dir.join("experiments");
        state.settings.runs_dir = runs_dir;
        Self::with_state(state, Some(ctx.clone()))
    }

    fn with_state(state: Persisted, ctx: Option<egui::Context>) -> Self {
        let repaint: Arc<dyn Fn() + Send + Sync> = match &ctx {
            Some(c) => {
                let c = c.clone();
                Arc::new(move || c.request_repaint())
            }
            None => Arc::new(|| {}),
        };
        let (shot_tx, shot_rx) = channel();
        let spec = Ok(state.designer.spec().clone());
        let mut app = Self {
            state,
            runs: Vec::new(),
            next_id: 1,
            shown: None,
            live: None,
            jobs: Jobs::new(repaint),
            gpu: GpuState::Unknown,
            spec,
            messages: Vec::new(),
            recent: Vec::new(),
            pending_save: None,
            saves_in_flight: 0,
            closing: false,
            close_now: false,
            path_field: String::new(),
            panel_rects: vec![None; PanelKind::ALL.len()],
            shot_tx,
            shot_rx,
            boundary: BoundaryPanel::default(),
            export_queue: std::collections::VecDeque::new(),
            export_pending: false,
            commands: Vec::new(),
            ctx,
        };
        app.jobs.scan_recent(app.state.settings.runs_dir.clone());
        app
    }

    /// What the lab knows about the GPU.
    pub fn gpu(&self) -> &GpuState {
        &self.gpu
    }

    /// Takes the result of a GPU check as the background check reports it (tests use this to
    /// stand in for the machine's adapters).
    pub fn gpu_checked(&mut self, state: GpuState) {
        self.on_job(JobResult::Gpu(state));
    }

    /// The settings on the left.
    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// The settings on the left, to change them (tests use this).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.state.settings
    }

    /// Rebuilds the network from the preset chosen on the left (after changing it through
    /// `settings_mut`) and loads it into the designer (undoable there).
    pub fn rebuild_spec(&mut self) {
        match self.state.settings.net.build(&self.state.settings.dataset) {
            Ok(spec) => {
                self.state.designer.load(spec);
                self.state.designer.take_changed();
                self.spec = Ok(self.state.designer.spec().clone());
            }
            Err(e) => self.spec = Err(e),
        }
    }

    /// The network designer, whose spec is the one Train uses.
    pub fn designer(&self) -> &Designer {
        &self.state.designer
    }

    /// The network designer, to edit it (tests use this).
    pub fn designer_mut(&mut self) -> &mut Designer {
        &mut self.state.designer
    }

    /// The network Train uses: the designer's spec (or why there is none).
    pub fn train_spec(&self) -> Result<&NetSpec, &str> {
        self.spec.as_ref().map_err(String::as_str)
    }

    /// Takes the designer's spec as the one to train when it changed.
    fn sync_spec(&mut self) {
        if self.state.designer.take_changed() {
            self.spec = Ok(self.state.designer.spec().clone());
        }
    }

    /// The runs the lab holds.
    pub fn runs(&self) -> &[ShownRun] {
        &self.runs
    }

    /// The run shown in the panels.
    pub fn shown_run(&self) -> Option<&ShownRun> {
        self.shown
            .and_then(|id| self.runs.iter().find(|r| r.id == id))
    }

    /// Whether a run is training (or paused) right now.
    pub fn is_training(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.ended.is_none())
    }

    /// Whether the live run is paused.
    pub fn is_paused(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.is_paused())
    }

    /// The centre tab shown.
    pub fn tab(&self) -> Tab {
        self.state.tab
    }

    /// The Experiments tab.
    pub fn experiments(&self) -> &ExperimentsTab {
        &self.state.experiments
    }

    /// The Experiments tab, to change its choices (tests use this).
    pub fn experiments_mut(&mut self) -> &mut ExperimentsTab {
        &mut self.state.experiments
    }

    /// Messages shown in the message bar.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Background jobs still running.
    pub fn jobs_running(&self) -> usize {
        self.jobs.running() + self.saves_in_flight
    }

    /// Opens a run file (in the background), as if dropped on the window.
    pub fn open(&mut self, path: PathBuf) {
        self.jobs.load(path, true);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.push_message(text.into(), false);
    }

    fn error(&mut self, text: impl Into<String>) {
        self.push_message(text.into(), true);
    }

    fn push_message(&mut self, text: String, error: bool) {
        self.messages.push(Message { text, error });
        if self.messages.len() > 6 {
            self.messages.remove(0);
        }
    }

    fn run_mut(&mut self, id: u64) -> Option<&mut ShownRun> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    fn add_run(
        &mut self,
        file: RunFile,
        checkpoint: Option<Box<crate::metrics::Checkpoint>>,
        path: Option<PathBuf>,
        dirty: bool,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let color = self.runs.iter().map(|r| r.color + 1).max().unwrap_or(0);
        self.runs.push(ShownRun {
            id,
            file,
            checkpoint,
            path,
            dirty,
            compare: true,
            color,
        });
        id
    }

    /// Why Train cannot start now, or `None` when it can.
    pub fn train_blocker(&self) -> Option<String> {
        if self.is_training() && !self.is_paused() {
            return Some("a run is training; stop it first".into());
        }
        let spec = match &self.spec {
            Ok(s) => s,
            Err(e) => return Some(e.clone()),
        };
        if let Err(e) = validate(spec) {
            return Some(format!("the network is not valid: {e}"));
        }
        if let Err(e) = self.state.settings.config.validate() {
            return Some(e.to_string());
        }
        if self.state.settings.config.device == DeviceChoice::Gpu
            && let GpuState::Unavailable(why) = &self.gpu
        {
            return Some(why.clone());
        }
        None
    }

    fn start_training(&mut self) {
        if let Some(live) = &mut self.live
            && live.ended.is_none()
        {
            if live.is_paused() {
                live.resume();
            }
            return;
        }
        if let Some(why) = self.train_blocker() {
            self.error(format!("cannot train: {why}"));
            return;
        }
        let Ok(spec) = self.spec.clone() else {
            return;
        };
        let settings = &self.state.settings;
        let name = format!("{}-{}", spec.name, timestamp());
        let file = RunFile::new(
            &name,
            spec.clone(),
            settings.config.clone(),
            settings.dataset.clone(),
            runfile::Environment::for_device(settings.config.device),
        );
        let request = RunRequest {
            spec,
            config: settings.config.clone(),
            dataset: settings.dataset.clone(),
            resume: None,
            autosave: Autosave::default(),
        };
        let waker: crate::train::Waker = match &self.ctx {
            Some(c) => {
                let c = c.clone();
                Box::new(move || c.request_repaint())
            }
            None => Box::new(|| {}),
        };
        match spawn_run(request, waker) {
            Ok(handle) => {
                let id = self.add_run(file, None, None, true);
                self.live = Some(LiveRun::new(id, handle));
                self.shown = Some(id);
            }
            Err(e) => self.error(format!("cannot train: {e}")),
        }
    }

    /// Takes training events (within the frame budget) and job results.
    fn pump(&mut self) {
        if let Some(live) = &mut self.live {
            let run_id = live.run_id;
            if let Some(run) = self.runs.iter_mut().find(|r| r.id == run_id) {
                let applied = live.apply_events(run, EVENT_BUDGET);
                if let Some(msg) = applied.failed {
                    self.error(format!("the run failed: {msg}"));
                }
                if let Some((step, tensor, value)) = applied.diverged {
                    self.error(format!(
                        "the run diverged at step {step}: {tensor} = {value} (lower the learning rate, or add BN or skips)"
                    ));
                }
                if applied.snapshot
                    && let Some(p) = self.pending_save.take_if(|p| p.run_id == run_id)
                {
                    self.save_now(run_id, p.target);
                }
                if self.live.as_ref().is_some_and(|l| l.ended.is_some()) && applied.finished {
                    self.on_live_finished();
                }
            }
        }
        for r in self.jobs.poll() {
            self.on_job(r);
        }
        while let Ok((kinds, image)) = self.shot_rx.try_recv() {
            self.export_pending = false;
            for kind in kinds {
                self.export_image(kind, &image);
            }
        }
    }

    fn on_live_finished(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        let id = live.run_id;
        if let Some(run) = self.runs.iter().find(|r| r.id == id) {
            let status = run.file.status.word();
            let summary = super::panels::loss_summary(run);
            self.info(format!("{} {status}: {summary}", run.file.name));
        }
        if let Some(p) = self.pending_save.take_if(|p| p.run_id == id) {
            self.save_now(id, p.target);
        }
    }

    fn on_job(&mut self, r: JobResult) {
        match r {
            JobResult::Loaded { path, result, show } => match result {
                Ok(loaded) => {
                    let loaded = *loaded;
                    let mut file = loaded.run;
                    file.history.reindex();
                    let name = file.name.clone();
                    let id = self.add_run(
                        file,
                        loaded.checkpoint.map(Box::new),
                        Some(loaded.path.clone()),
                        false,
                    );
                    if show {
                        self.shown = Some(id);
                    }
                    self.info(format!("opened {} ({name})", path.display()));
                    self.remember_recent(path);
                }
                Err(e) => self.error(format!("could not open {}: {e}", path.display())),
            },
            JobResult::Saved {
                run_id,
                result,
                then_close,
            } => {
                self.saves_in_flight = self.saves_in_flight.saturating_sub(1);
                match result {
                    Ok(path) => {
                        if let Some(run) = self.run_mut(run_id) {
                            run.path = Some(path.clone());
                            if run.file.status != RunStatus::Running {
                                run.dirty = false;
                            }
                        }
                        self.info(format!("saved {}", path.display()));
                        self.remember_recent(path);
                    }
                    Err(e) => {
                        if let Some(run) = self.run_mut(run_id) {
                            run.dirty = true;
                        }
                        self.error(format!("could not save: {e}"));
                        if then_close {
                            // Never close over a failed save: the user keeps the window and the
                            // run, and can save elsewhere.
                            self.closing = false;
                        }
                    }
                }
            }
            JobResult::Picked { purpose, path } => match (purpose, path) {
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
            },
            JobResult::Gpu(state) => {
                self.gpu = match state {
                    GpuState::Unavailable(e) => {
                        if self.state.settings.config.device == DeviceChoice::Gpu {
                            // Only worth a message when the user asked for the GPU.
                            self.state.settings.config.device = DeviceChoice::Cpu;
                            self.error(format!("{e}; training on the CPU"));
                        }
                        GpuState::Unavailable(e)
                    }
                    found => found,
                }
            }
            JobResult::Recent(paths) => self.recent = paths,
            JobResult::Exported(Ok(path)) => self.info(format!("exported {}", path.display())),
            JobResult::Exported(Err(e)) => self.error(format!("could not export: {e}")),
        }
    }

    fn remember_recent(&mut self, path: PathBuf) {
        self.recent.retain(|p| *p != path);
        self.recent.insert(0, path);
        self.recent.truncate(20);
    }

    /// Saves a run now (its latest checkpoint) in the background, to `target` (a run-file path)
    /// or where it came from, or into the runs folder.
    fn save_now(&mut self, id: u64, target: Option<PathBuf>) {
        let runs_dir = self.state.settings.runs_dir.clone();
        let closing = self.closing;
        let Some(run) = self.run_mut(id) else {
            return;
        };
        let (dir, name) = match target.or_else(|| run.path.clone()) {
            Some(p) => split_run_path(&p),
            None => (runs_dir, run.file.name.clone()),
        };
        let mut file = run.file.clone();
        file.name = name;
        let checkpoint = run.checkpoint.clone();
        run.file.name = file.name.clone();
        self.saves_in_flight += 1;
        self.jobs.save(id, dir, file, checkpoint, closing);
    }

    fn save(&mut self, id: u64, target: Option<PathBuf>) {
        let live_running = self
            .live
            .as_ref()
            .is_some_and(|l| l.run_id == id && l.ended.is_none());
        if live_running {
            // The worker owns the weights: ask it for a snapshot and save when it arrives.
            if let Some(l) = &self.live {
                l.handle.request_snapshot();
            }
            self.pending_save = Some(PendingSave { run_id: id, target });
        } else {
            self.save_now(id, target);
        }
    }

    fn export_image(&mut self, kind: PanelKind, image: &ColorImage) {
        let Some(rect) = self.panel_rects[kind.index()] else {
            return;
        };
        let ppp = self.ctx.as_ref().map_or(1.0, |c| c.pixels_per_point());
        let full = Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(image.size[0] as f32 / ppp, image.size[1] as f32 / ppp),
        );
        let rect = rect.intersect(full);
        if rect.width() < 1.0 || rect.height() < 1.0 {
            self.error(format!("the {} panel is not on screen", kind.title()));
            return;
        }
        let crop = image.region(&rect, Some(ppp));
        let step = self.shown_run().map_or(0, |r| r.history().last_step);
        let run = self
            .shown_run()
            .map_or("no-run".to_string(), |r| r.file.name.clone());
        let dir = exports_dir(&self.state.settings.runs_dir);
        let path = dir.join(format!("{}-{run}-step{step}.png", kind.slug()));
        self.jobs.run("png", move || {
            let result = write_png(&path, &crop).map(|()| path.clone());
            JobResult::Exported(result.map_err(|e| format!("{}: {e}", path.display())))
        });
    }

    fn run_commands(&mut self) {
        let commands = std::mem::take(&mut self.commands);
        for c in commands {
            match c {
                Command::Train => self.start_training(),
                Command::Pause => {
                    if let Some(l) = &mut self.live {
                        l.pause();
                    }
                }
                Command::Resume => {
                    if let Some(l) = &mut self.live {
                        l.resume();
                    }
                }
                Command::Stop => {
                    if let Some(l) = &mut self.live {
                        l.handle.stop();
                        if let Some(t) = l.paused_since.take() {
                            l.paused_total += t.elapsed();
                        }
                    }
                }
                Command::Reset => {
                    if let Some(l) = &self.live
                        && l.ended.is_none()
                    {
                        l.handle.stop();
                    }
                    self.shown = None;
                    self.info("cleared the panels; earlier runs stay in Compare");
                }
                Command::OpenDialog => self.jobs.pick(
                    PickPurpose::Open,
                    absolute(&self.state.settings.runs_dir),
                    String::new(),
                ),
                Command::Open(p) => {
                    if p.to_string_lossy().ends_with(crate::experiments::SUFFIX) {
                        self.state.tab = Tab::Experiments;
                        if let Some(c) = self.ctx.clone() {
                            self.state.experiments.open(p, &c);
                        }
                    } else {
                        self.jobs.load(p, true);
                    }
                }
                Command::Save(id) => self.save(id, None),
                Command::SaveAsDialog(id) => {
                    let name = self
                        .runs
                        .iter()
                        .find(|r| r.id == id)
                        .map(|r| format!("{}{}", r.file.name, runfile::SUFFIX))
                        .unwrap_or_default();
                    self.jobs.pick(
                        PickPurpose::SaveAs(id),
                        absolute(&self.state.settings.runs_dir),
                        name,
                    )
                }
                Command::SaveTo(id, p) => self.save(id, Some(p)),
                Command::Export(kind) => self.export_queue.push_back(kind),
                Command::ExportAll => {
                    let visible = self.state.visible.clone();
                    self.export_queue.extend(visible);
                }
                Command::Compare(a) => match a {
                    CompareAction::None => {}
                    CompareAction::Toggle(id) => {
                        if let Some(r) = self.run_mut(id) {
                            r.compare = !r.compare;
                        }
                    }
                    CompareAction::Show(id) => self.shown = Some(id),
                    CompareAction::Save(id) => self.save(id, None),
                    CompareAction::Remove(id) => self.remove_run(id),
                },
                Command::PickDataFolder => {
                    self.jobs
                        .pick(PickPurpose::DataFolder, PathBuf::from("."), String::new())
                }
                Command::CheckGpu => {
                    self.gpu = GpuState::Checking;
                    self.jobs.probe_gpu();
                }
                Command::RebuildSpec => self.rebuild_spec(),
                Command::AdaptSpec => {
                    let (input, classes) = self.state.settings.dataset.expected_io();
                    self.state.designer.edit(|s| {
                        crate::spec::edit::adapt_io(s, input, classes);
                    });
                    self.sync_spec();
                }
                Command::Designer(DesignerAction::Export) => {
                    let name = format!("{}.json", self.state.designer.spec().name);
                    self.jobs
                        .pick(PickPurpose::ExportSpec, PathBuf::from("."), name)
                }
                Command::Designer(DesignerAction::Import) => {
                    self.jobs
                        .pick(PickPurpose::ImportSpec, PathBuf::from("."), String::new())
                }
                Command::Designer(DesignerAction::ExportTo(p)) => self.export_spec(p),
                Command::Designer(DesignerAction::ImportFrom(p)) => self.import_spec(&p),
            }
        }
    }

    /// Takes one screenshot for all queued panel pictures; each panel is cropped from it. One
    /// screenshot is in flight at a time, and panels asked for meanwhile wait for the next.
    fn next_export(&mut self, ctx: &egui::Context) {
        if self.export_pending || self.export_queue.is_empty() {
            return;
        }
        let mut kinds: Vec<PanelKind> = self.export_queue.drain(..).collect();
        kinds.dedup();
        self.export_pending = true;
        let tx = self.shot_tx.clone();
        let c = ctx.clone();
        ctx.request_screenshot(move |img| {
            let _ = tx.send((kinds, img));
            c.request_repaint();
        });
        // The picture is taken when this frame is painted; make sure one is.
        ctx.request_repaint();
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
            last = Some(self.add_run(run, None, None, false));
        }
        if last.is_some() {
            self.shown = last;
            self.state.tab = Tab::Lab;
            if !self.state.visible.contains(&PanelKind::Compare) {
                self.state.visible.push(PanelKind::Compare);
            }
            self.info(format!("{n} runs of {} are in Compare", file.name));
        }
    }

    fn remove_run(&mut self, id: u64) {
        if self
            .live
            .as_ref()
            .is_some_and(|l| l.run_id == id && l.ended.is_none())
        {
            self.error("stop the run before removing it");
            return;
        }
        if self.runs.iter().any(|r| r.id == id && r.dirty) {
            // Nothing is lost: an unsaved run is saved before it leaves the lab.
            self.save_now(id, None);
        }
        if self.live.as_ref().is_some_and(|l| l.run_id == id) {
            self.live = None;
        }
        self.runs.retain(|r| r.id != id);
        if self.shown == Some(id) {
            self.shown = None;
        }
    }

    fn top_bar(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.state.tab, Tab::Lab, "Lab");
            ui.selectable_value(&mut self.state.tab, Tab::Designer, "Designer");
            ui.selectable_value(&mut self.state.tab, Tab::Experiments, "Experiments");
            ui.separator();
            let training = self.is_training();
            let paused = self.is_paused();
            let blocker = self.train_blocker();
            let label = if paused { "Resume" } else { "Train" };
            let r = ui
                .add_enabled(blocker.is_none() || paused, egui::Button::new(label))
                .on_hover_text("train the network on the left (CPU by default)");
            let r = match &blocker {
                Some(why) => r.on_disabled_hover_text(why.as_str()),
                None => r,
            };
            if r.clicked() {
                self.commands.push(if paused {
                    Command::Resume
                } else {
                    Command::Train
                });
            }
            if ui
                .add_enabled(training && !paused, egui::Button::new("Pause"))
                .clicked()
            {
                self.commands.push(Command::Pause);
            }
            if ui
                .add_enabled(training, egui::Button::new("Stop"))
                .clicked()
            {
                self.commands.push(Command::Stop);
            }
            if ui
                .add_enabled(self.shown.is_some(), egui::Button::new("Reset"))
                .on_hover_text("stop, and clear the panels (the run stays in Compare)")
                .clicked()
            {
                self.commands.push(Command::Reset);
            }
            ui.separator();
            if ui.button("Open…").clicked() {
                self.commands.push(Command::OpenDialog);
            }
            let shown = self.shown;
            if ui
                .add_enabled(shown.is_some(), egui::Button::new("Save"))
                .clicked()
                && let Some(id) = shown
            {
                self.commands.push(Command::Save(id));
            }
            if ui
                .add_enabled(shown.is_some(), egui::Button::new("Save as…"))
                .clicked()
                && let Some(id) = shown
            {
                self.commands.push(Command::SaveAsDialog(id));
            }
            ui.separator();
            let gpu = match &self.gpu {
                GpuState::Available(_) => "GPU available",
                GpuState::Software(_) => "software GPU only",
                GpuState::Unavailable(_) => "no GPU",
                GpuState::Checking => "checking for a GPU",
                GpuState::Unknown => "GPU not checked",
            };
            let device = match self.state.settings.config.device {
                DeviceChoice::Cpu => format!("device: CPU ({gpu})"),
                DeviceChoice::Gpu => format!("device: GPU ({gpu})"),
            };
            let r = ui.label(device);
            match &self.gpu {
                GpuState::Available(d) => {
                    r.on_hover_text(format!("wgpu found an adapter: {d}; pick it on the left"));
                }
                GpuState::Software(d) => {
                    r.on_hover_text(super::settings::software_gpu_text(d));
                }
                GpuState::Unavailable(why) => {
                    r.on_hover_text(why.as_str());
                }
                _ => {}
            }
            ui.separator();
            ui.label(self.status_text());
        });
    }

    /// The status line: step, loss, samples/s, elapsed.
    pub fn status_text(&self) -> String {
        let Some(run) = self.shown_run() else {
            return "no run: press Train, or open a run file".into();
        };
        let live = self.live.as_ref().filter(|l| l.run_id == run.id);
        let h = run.history();
        let loss = h
            .get(crate::metrics::series::LOSS, "")
            .and_then(|s| s.last())
            .map_or("–".into(), |l| sig(l as f64));
        match live {
            Some(l) => {
                let state = match (l.ended, l.is_paused()) {
                    (Some(_), _) => run.file.status.word(),
                    (None, true) => "paused",
                    (None, false) => "training",
                };
                let sps = l.last.map_or(0.0, |r| r.samples_per_sec);
                let secs = l.elapsed().as_secs();
                format!(
                    "{state} · step {}/{} · loss {loss} · {:.0} samples/s · {:02}:{:02}",
                    h.last_step,
                    l.total_steps,
                    sps,
                    secs / 60,
                    secs % 60
                )
            }
            None => format!(
                "{} · {} · step {} · loss {loss}",
                run.file.name,
                run.file.status.word(),
                h.last_step
            ),
        }
    }

    fn left_side(&mut self, ui: &mut Ui) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            let summary = spec_summary(&self.spec, &self.state.settings.config);
            if self.is_training() {
                ui.label(
                    RichText::new("A run is training; it keeps the settings it started with.")
                        .weak(),
                );
            }
            match self.state.settings.ui(ui, &self.gpu, &summary) {
                SettingsAction::None => {}
                SettingsAction::NetChanged => self.commands.push(Command::RebuildSpec),
                SettingsAction::DatasetChanged => self.commands.push(Command::AdaptSpec),
                SettingsAction::PickDataFolder => self.commands.push(Command::PickDataFolder),
                SettingsAction::CheckGpu => self.commands.push(Command::CheckGpu),
            }
            ui.separator();
            ui.heading("Runs");
            ui.horizontal(|ui| {
                let r = ui.add(
                    egui::TextEdit::singleline(&mut self.path_field)
                        .hint_text("path/to/run.reslab.json")
                        .desired_width(170.0),
                );
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button("Open path").clicked() || enter) && !self.path_field.trim().is_empty()
                {
                    self.commands
                        .push(Command::Open(PathBuf::from(self.path_field.trim())));
                }
                if let Some(id) = self.shown
                    && ui
                        .button("Save to path")
                        .on_hover_text("save the shown run to this path")
                        .clicked()
                    && !self.path_field.trim().is_empty()
                {
                    self.commands
                        .push(Command::SaveTo(id, PathBuf::from(self.path_field.trim())));
                }
            });
            ui.label(
                RichText::new(format!(
                    "Recent runs in {}",
                    self.state.settings.runs_dir.display()
                ))
                .small(),
            );
            if self.recent.is_empty() {
                ui.label(RichText::new("none yet").weak());
            }
            for p in self.recent.clone() {
                let name = p
                    .file_name()
                    .map(|n| {
                        n.to_string_lossy()
                            .trim_end_matches(runfile::SUFFIX)
                            .to_string()
                    })
                    .unwrap_or_default();
                if ui
                    .link(name)
                    .on_hover_text(p.display().to_string())
                    .clicked()
                {
                    self.commands.push(Command::Open(p));
                }
            }
        });
    }

    fn centre(&mut self, ui: &mut Ui) {
        match self.state.tab {
            Tab::Designer => self.designer_tab(ui),
            _ => self.lab(ui),
        }
    }

    fn designer_tab(&mut self, ui: &mut Ui) {
        let running_spec = self
            .live
            .as_ref()
            .filter(|l| l.ended.is_none())
            .and_then(|l| self.runs.iter().find(|r| r.id == l.run_id))
            .map(|r| &r.file.spec);
        let ctx = DesignerCtx {
            running_spec,
            io: self.state.settings.dataset.expected_io(),
        };
        if let Some(a) = self.state.designer.ui(ui, &ctx) {
            self.commands.push(Command::Designer(a));
        }
        self.sync_spec();
    }

    fn export_spec(&mut self, path: PathBuf) {
        let spec = self.state.designer.spec().clone();
        self.saves_in_flight += 1;
        self.jobs.run("spec", move || {
            let result = serde_json::to_vec_pretty(&spec)
                .map_err(|e| e.to_string())
                .and_then(|bytes| runfile::write_atomic(&path, &bytes).map_err(|e| e.to_string()))
                .map(|()| path.clone())
                .map_err(|e| format!("{}: {e}", path.display()));
            JobResult::Saved {
                run_id: 0,
                result,
                then_close: false,
            }
        });
    }

    fn import_spec(&mut self, path: &Path) {
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

    fn lab(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Panels:");
            for kind in PanelKind::ALL {
                let mut on = self.state.visible.contains(&kind);
                if ui.toggle_value(&mut on, kind.title()).changed() {
                    if on {
                        self.state.visible.push(kind);
                        self.state.visible.sort_by_key(|k| k.index());
                    } else {
                        self.state.visible.retain(|k| *k != kind);
                    }
                }
            }
            if ui
                .button("PNG (all)")
                .on_hover_text("export every visible panel as a PNG picture into exports/")
                .clicked()
            {
                self.commands.push(Command::ExportAll);
            }
            ui.separator();
            ui.label("columns");
            for c in 1..=3 {
                ui.selectable_value(&mut self.state.columns, c, c.to_string());
            }
        });
        let visible = self.state.visible.clone();
        if visible.is_empty() {
            ui.label("All panels are hidden: switch one on above.");
            return;
        }
        let columns = self.state.columns.clamp(1, 3);
        let rows = visible.len().div_ceil(columns);
        let avail = ui.available_height();
        let height = if rows <= 1 {
            (avail - 60.0).max(360.0)
        } else {
            ((avail - 20.0) / 2.0 - 50.0).max(360.0)
        };
        for r in self.panel_rects.iter_mut() {
            *r = None;
        }
        egui::ScrollArea::vertical()
            .id_salt("panels")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let width = ui.available_width();
                let col_w = (width - 12.0 * (columns as f32 - 1.0)) / columns as f32;
                for row in visible.chunks(columns) {
                    ui.horizontal_top(|ui| {
                        for &kind in row {
                            let rect = ui
                                .allocate_ui_with_layout(
                                    egui::vec2(col_w, height + 40.0),
                                    egui::Layout::top_down(egui::Align::Min),
                                    |ui| {
                                        ui.set_width(col_w);
                                        egui::Frame::group(ui.style()).show(ui, |ui| {
                                            ui.set_width(col_w - 14.0);
                                            ui.set_min_height(height);
                                            self.panel(ui, kind, height);
                                        })
                                    },
                                )
                                .response
                                .rect;
                            // Only what is on screen can be exported.
                            self.panel_rects[kind.index()] = Some(rect.intersect(ui.clip_rect()));
                        }
                    });
                    ui.add_space(6.0);
                }
            });
    }

    fn panel(&mut self, ui: &mut Ui, kind: PanelKind, height: f32) {
        ui.horizontal(|ui| {
            ui.strong(kind.title());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui
                    .small_button("PNG")
                    .on_hover_text("export this panel as a PNG picture")
                    .clicked()
                {
                    self.commands.push(Command::Export(kind));
                }
            });
        });
        let ctx = PanelCtx {
            run: self
                .shown
                .and_then(|id| self.runs.iter().find(|r| r.id == id)),
            runs: &self.runs,
            height,
        };
        ui.push_id(kind.slug(), |ui| match kind {
            PanelKind::Loss => self.state.loss.ui(ui, &ctx),
            PanelKind::Activations => self.state.activations.ui(ui, &ctx),
            PanelKind::BatchNorm => self.state.batchnorm.ui(ui, &ctx),
            PanelKind::Gradients => self.state.gradients.ui(ui, &ctx),
            PanelKind::Boundary => self.boundary.ui(ui, &ctx),
            PanelKind::Compare => {
                let a = self.state.compare.ui(ui, &ctx);
                if a != CompareAction::None {
                    self.commands.push(Command::Compare(a));
                }
            }
        });
    }

    fn message_bar(&mut self, ui: &mut Ui) {
        let mut dismiss = None;
        for (i, m) in self.messages.iter().enumerate().rev().take(3) {
            ui.horizontal(|ui| {
                let color = if m.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                if ui.small_button("×").on_hover_text("dismiss").clicked() {
                    dismiss = Some(i);
                }
                ui.label(RichText::new(&m.text).color(color));
            });
        }
        if let Some(i) = dismiss {
            self.messages.remove(i);
        }
    }

    fn handle_drops(&mut self, ui: &Ui) {
        let dropped = ui.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let p = f.path().to_path_buf();
            if p.as_os_str().is_empty() {
                continue;
            }
            self.commands.push(Command::Open(p));
        }
    }

    /// Whether closing now would lose work: a run training, or a run with unsaved steps.
    fn needs_saving(&self) -> bool {
        self.is_training()
            || self
                .runs
                .iter()
                .any(|r| r.dirty && r.history().last_step > 0)
    }

    fn handle_close(&mut self, ui: &Ui) {
        if ui.input(|i| i.viewport().close_requested()) && !self.close_now && self.needs_saving() {
            ui.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            if !self.closing {
                self.closing = true;
                self.info("closing: stopping the run and saving it…");
                if let Some(l) = &self.live
                    && l.ended.is_none()
                {
                    l.handle.stop();
                }
            }
        }
        if self.closing {
            if self.is_training() {
                return;
            }
            let unsaved: Vec<u64> = self
                .runs
                .iter()
                .filter(|r| r.dirty && r.history().last_step > 0)
                .map(|r| r.id)
                .collect();
            if self.saves_in_flight == 0 && self.pending_save.is_none() {
                if unsaved.is_empty() {
                    self.close_now = true;
                    ui.send_viewport_cmd(egui::ViewportCommand::Close);
                } else {
                    for id in unsaved {
                        self.save_now(id, None);
                        if let Some(r) = self.run_mut(id) {
                            // Marked clean once written; a failed save clears `closing`.
                            r.dirty = false;
                        }
                    }
                }
            }
        }
    }
}

/// `dir/name.reslab.json` → (`dir`, `name`); a path without the suffix keeps its stem.
fn split_run_path(p: &Path) -> (PathBuf, String) {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let file = p
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let name = file
        .strip_suffix(runfile::SUFFIX)
        .or_else(|| file.strip_suffix(".json"))
        .unwrap_or(&file)
        .to_string();
    (dir, name)
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Where exported pictures go: `exports/` next to the runs folder.
pub fn exports_dir(runs_dir: &Path) -> PathBuf {
    runs_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("exports"), |p| p.join("exports"))
}

/// Writes an image as PNG (creating the folder).
pub fn write_png(path: &Path, image: &ColorImage) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let [w, h] = image.size;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "the picture has the wrong size".to_string())?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    runfile::write_atomic(path, &out).map_err(|e| e.to_string())
}

impl eframe::App for LabApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        if self.ctx.is_none() {
            self.ctx = Some(ui.ctx().clone());
        }
        let ctx = ui.ctx().clone();
        crate::ui::signal_hook(ui, &ctx, self.closing);
        self.pump();
        self.handle_drops(ui);
        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.add_space(3.0);
            self.top_bar(ui);
            ui.add_space(3.0);
        });
        if !self.messages.is_empty() {
            egui::Panel::bottom("messages").show(ui, |ui| self.message_bar(ui));
        }
        match self.state.tab {
            Tab::Lab | Tab::Designer => {
                egui::Panel::left("settings")
                    .resizable(true)
                    .default_size(330.0)
                    .min_size(240.0)
                    .show(ui, |ui| self.left_side(ui));
                egui::CentralPanel::default().show(ui, |ui| self.centre(ui));
            }
            Tab::Experiments => {
                let dataset = self.state.settings.dataset.clone();
                if self.state.experiments.ui(ui, &dataset) == ExperimentsAction::OpenRuns {
                    self.open_experiment_runs();
                }
            }
        }
        if ui.input(|i| !i.raw.hovered_files.is_empty()) {
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop-hint"),
            ));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, Color32::from_black_alpha(140));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop a run file to open it",
                egui::FontId::proportional(24.0),
                Color32::WHITE,
            );
        }
        self.handle_close(ui);
        self.run_commands();
        self.next_export(&ctx);
        // While a run goes on, come back soon even without the worker's wake-up, e.g. for
        // events left over after the frame budget. (A run's last event is `Finished`, so an
        // ended run has nothing left to take.)
        if self.live.as_ref().is_some_and(|l| l.ended.is_none()) {
            ctx.request_repaint_after(Duration::from_millis(33));
        }
        if self.jobs_running() > 0 {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }

    fn on_exit(&mut self) {
        // The window is going away without the close request having been handled (e.g. the
        // process is being shut down): stop the run and save it here, blocking is fine now.
        if let Some(live) = &mut self.live
            && live.ended.is_none()
        {
            live.handle.stop();
            let run_id = live.run_id;
            let deadline = Instant::now() + Duration::from_secs(20);
            while live.ended.is_none() && Instant::now() < deadline {
                if let Some(run) = self.runs.iter_mut().find(|r| r.id == run_id) {
                    live.apply_events(run, Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let runs_dir = self.state.settings.runs_dir.clone();
        for run in self
            .runs
            .iter()
            .filter(|r| r.dirty && r.history().last_step > 0)
        {
            let (dir, name) = match &run.path {
                Some(p) => split_run_path(p),
                None => (runs_dir.clone(), run.file.name.clone()),
            };
            let mut file = run.file.clone();
            file.name = name;
            if let Err(e) = runfile::save(&dir, &file, run.checkpoint.as_deref()) {
                eprintln!("reslab: could not save {} on exit: {e}", file.name);
            }
        }
    }
}
