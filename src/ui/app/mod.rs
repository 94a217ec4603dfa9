//! The app, split by role (as the rerun viewer splits its app):
//!
//! - `mod.rs`: [`LabApp`]'s state, its constructors and the frame (what happens in which order);
//! - [`registry`]: the runs the lab holds, which are unsaved, where a save goes;
//! - `commands`: what the top bar, the left side, the panels and the designer ask for, carried
//!   out after the frame is drawn (so no destructive action happens half-way through a frame, as
//!   in egui's demo app), including starting a run and saving one;
//! - `jobs_done`: what arrives from the training worker and the background jobs;
//! - `close`: closing the window without losing a run;
//! - `export`: panel pictures (the panel's figures drawn off screen: PNG, SVG, CSV);
//! - `top_bar`, `left_side`, `centre`: the drawing.

mod centre;
mod close;
mod commands;
mod export;
mod jobs_done;
mod left_side;
pub mod registry;
mod runs_tab;
mod top_bar;
mod twin;

pub use export::{EXPORT_SIZE, exports_dir};
pub use registry::{RunRegistry, SaveTarget};

use super::designer::Designer;
use super::experiments::ExperimentsTab;
use super::jobs::{Jobs, Spawner, spawn_thread};
use super::panels::{PanelKind, Panels};
use super::settings::{GpuState, Settings};
use crate::spec::{NetSpec, validate};
use close::Closing;
use commands::{Command, Saves};
use egui::Ui;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    /// Every run held and every run file of the runs folder, in a table.
    Runs,
}

/// State kept between launches (eframe persistence).
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct Persisted {
    settings: Settings,
    visible: Vec<PanelKind>,
    columns: usize,
    tab: Tab,
    /// Every panel's options, by panel.
    panels: Panels,
    designer: Designer,
    experiments: ExperimentsTab,
    /// The runs the lab held (those with a file), in order: opened again at the next launch.
    lab_runs: Vec<LabRunEntry>,
    /// How often the window redraws while a run trains.
    redraw: Redraw,
    /// Closing the window saves unsaved runs without asking.
    always_save_on_close: bool,
    /// The settings on the left are shown (they can be dragged closed or hidden from the top
    /// bar).
    settings_open: bool,
}

/// How often the window redraws while a run trains. With a software renderer every frame costs
/// real CPU, taken from the training (BENCHMARKS.md: a CNN trained at 68 % of the headless
/// rate at 10 frames a second, 96 % at 1). Moving the pointer redraws at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redraw {
    /// 10 frames a second on a GPU, 1 with a software renderer.
    #[default]
    Auto,
    /// Ten frames a second.
    Fast,
    /// Four frames a second.
    Medium,
    /// One frame a second.
    Slow,
}

impl Redraw {
    /// All choices.
    pub const ALL: [Redraw; 4] = [Redraw::Auto, Redraw::Fast, Redraw::Medium, Redraw::Slow];

    /// The time between two frames while training; `software` when the window is drawn by a
    /// software renderer (Auto then takes one frame a second).
    pub fn interval(self, software: bool) -> Duration {
        Duration::from_millis(match self {
            Redraw::Auto if software => 1000,
            Redraw::Auto | Redraw::Fast => 100,
            Redraw::Medium => 250,
            Redraw::Slow => 1000,
        })
    }

    /// The choice in words.
    pub fn label(self) -> &'static str {
        match self {
            Redraw::Auto => "auto",
            Redraw::Fast => "10/s",
            Redraw::Medium => "4/s",
            Redraw::Slow => "1/s",
        }
    }
}

/// A run the lab held when it saved its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LabRunEntry {
    /// Its run file.
    path: PathBuf,
    /// Shown in Compare.
    compare: bool,
    /// The run the panels showed.
    shown: bool,
}

/// Runs opened again at launch at most.
const RESTORE_RUNS_MAX: usize = 32;

impl Default for Persisted {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            visible: PanelKind::ALL.to_vec(),
            columns: 2,
            tab: Tab::Lab,
            panels: Panels::default(),
            designer: Designer::default(),
            experiments: ExperimentsTab::default(),
            lab_runs: Vec::new(),
            redraw: Redraw::default(),
            settings_open: true,
            always_save_on_close: false,
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

/// The lab.
pub struct LabApp {
    state: Persisted,
    registry: RunRegistry,
    jobs: Jobs,
    gpu: GpuState,
    /// What the last check of a remote endpoint found.
    remote: crate::ui::device_picker::RemoteState,
    /// The network Train uses: the designer's spec, or why there is none.
    spec: Result<NetSpec, String>,
    /// Whether that network is not what the settings on the left build.
    custom: bool,
    /// The runs of the last session being opened again (their Compare choice comes back).
    restoring: Vec<LabRunEntry>,
    messages: Vec<Message>,
    recent: Vec<PathBuf>,
    saves: Saves,
    closing: Closing,
    /// The user chose to close without saving: the exit path saves nothing.
    discard_on_exit: bool,
    path_field: String,
    runs_table: super::runs_table::RunsTable,
    commands: Vec<Command>,
    /// The window's context (the training worker's wake-up asks for the next frame after the
    /// redraw interval).
    ctx: egui::Context,
    /// The window is drawn by a software renderer (a CPU adapter, e.g. llvmpipe under Xvfb).
    software_renderer: bool,
}

impl LabApp {
    /// The app, with the persisted settings when eframe has them.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let mut app = Self::restore(&cc.egui_ctx, cc.storage);
        // The window's adapter does not change: a CPU one (llvmpipe) draws in software.
        app.software_renderer = cc
            .wgpu_render_state
            .as_ref()
            .is_some_and(|r| r.adapter.get_info().device_type == eframe::wgpu::DeviceType::Cpu);
        // When the settings train on the GPU, the top bar shows whether it can be used; finding
        // out takes wgpu a moment, so it runs in the background from the start. With the CPU
        // chosen the check waits for a click on "GPU": it leaves a device thread of burn's
        // behind that wakes every 150 µs for the rest of the session (7 % of a core, idle).
        match &app.state.settings.config.device {
            crate::spec::DeviceChoice::Gpu => {
                app.gpu = GpuState::Checking;
                app.jobs.probe_gpu();
            }
            crate::spec::DeviceChoice::Remote(e) => {
                app.commands.push(Command::CheckRemote(e.clone()))
            }
            crate::spec::DeviceChoice::Cpu => {}
        }
        app
    }

    /// The app with the settings, panel options and layout saved in `storage` (defaults when
    /// there are none or they cannot be read, e.g. after an incompatible update).
    pub fn restore(ctx: &egui::Context, storage: Option<&dyn eframe::Storage>) -> Self {
        let mut state: Persisted = storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        state.settings.net.upgrade();
        let mut app = Self::with_state(state, ctx, spawn_thread);
        app.restore_runs();
        app
    }

    /// The app with default settings and runs saved to `runs_dir` (tests use a temporary folder).
    pub fn with_runs_dir(ctx: &egui::Context, runs_dir: PathBuf) -> Self {
        Self::with_runs_dir_and_spawner(ctx, runs_dir, spawn_thread)
    }

    /// Like [`LabApp::with_runs_dir`], with background threads started by `spawner` (tests pass
    /// one that fails to show what the lab does when no thread can be started).
    pub fn with_runs_dir_and_spawner(
        ctx: &egui::Context,
        runs_dir: PathBuf,
        spawner: Spawner,
    ) -> Self {
        let mut state = Persisted::default();
        state.experiments.out_dir = runs_dir.join("experiments");
        state.settings.runs_dir = runs_dir;
        Self::with_state(state, ctx, spawner)
    }

    fn with_state(state: Persisted, ctx: &egui::Context, spawner: Spawner) -> Self {
        ctx.set_fonts(crate::ui::fonts());
        let c = ctx.clone();
        let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(move || c.request_repaint());
        let spec = Ok(state.designer.spec().clone());
        let mut app = Self {
            state,
            registry: RunRegistry::default(),
            jobs: Jobs::new(repaint, spawner),
            gpu: GpuState::Unknown,
            remote: Default::default(),
            spec,
            custom: false,
            restoring: Vec::new(),
            messages: Vec::new(),
            recent: Vec::new(),
            saves: Saves::default(),
            closing: Closing::default(),
            discard_on_exit: false,
            path_field: String::new(),
            runs_table: Default::default(),
            commands: Vec::new(),
            ctx: ctx.clone(),
            software_renderer: false,
        };
        app.take_designer_spec();
        app.jobs.scan_recent(app.state.settings.runs_dir.clone());
        app.jobs
            .read_sweeps(app.state.settings.runs_dir.clone(), false);
        app
    }

    /// Notes the runs the lab holds and the experiment results it shows, to open them again at
    /// the next launch (runs without a file yet are saved by closing first).
    fn remember_runs(&mut self) {
        let shown = self.registry.shown_id();
        self.state.lab_runs = self
            .registry
            .runs()
            .iter()
            .filter_map(|r| {
                Some(LabRunEntry {
                    path: r.path.clone()?,
                    compare: r.compare,
                    shown: Some(r.id) == shown,
                })
            })
            .collect();
        self.state.experiments.remember_results();
    }

    /// Opens the runs and experiment results of the last session again, in the background.
    fn restore_runs(&mut self) {
        self.restoring = self
            .state
            .lab_runs
            .iter()
            .take(RESTORE_RUNS_MAX)
            .cloned()
            .collect();
        for e in &self.restoring {
            self.jobs.load(e.path.clone(), e.shown);
        }
        self.state.experiments.restore_results(&mut self.jobs);
    }

    /// Background jobs still running (loads, saves, pictures, the recent-runs scan…).
    pub fn background_jobs(&self) -> usize {
        self.jobs.running()
    }

    /// The time between two frames while a run trains.
    pub(super) fn redraw_interval(&self) -> Duration {
        self.state.redraw.interval(self.software_renderer)
    }

    /// How often the window redraws while a run trains.
    pub fn set_redraw(&mut self, redraw: Redraw) {
        self.state.redraw = redraw;
    }

    /// Shows these panels, in `columns` columns (the panel toggles and the column buttons do
    /// the same).
    pub fn set_panels(&mut self, visible: &[PanelKind], columns: usize) {
        self.state.visible = visible.to_vec();
        self.state.visible.sort_by_key(|k| k.index());
        self.state.columns = columns.clamp(1, 3);
    }

    /// Every panel's options and the figures each drew last.
    pub fn panels(&self) -> &Panels {
        &self.state.panels
    }

    /// Every panel's options, to change.
    pub fn panels_mut(&mut self) -> &mut Panels {
        &mut self.state.panels
    }

    /// The runs the lab holds, the one shown and the one training.
    pub fn registry(&self) -> &RunRegistry {
        &self.registry
    }

    /// What the lab knows about the GPU.
    pub fn gpu(&self) -> &GpuState {
        &self.gpu
    }

    /// What the last check of a remote endpoint found.
    pub fn remote(&self) -> &crate::ui::device_picker::RemoteState {
        &self.remote
    }

    /// Takes the result of a GPU check as the background check reports it (tests use this to
    /// stand in for the machine's adapters).
    pub fn gpu_checked(&mut self, state: GpuState) {
        self.on_job(super::jobs::JobResult::Gpu(state));
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
                self.sync_spec();
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
    /// The designer's spec is the one network the lab trains; it is named for its edits from the
    /// network the settings on the left build (`mlp-res-20 + 1 skip`, `custom (from …)`).
    fn sync_spec(&mut self) {
        if self.state.designer.take_changed() {
            self.take_designer_spec();
        }
    }

    /// The designer's spec as the one to train, named for its edits.
    fn take_designer_spec(&mut self) {
        let mut spec = self.state.designer.spec().clone();
        let s = &self.state.settings;
        self.custom = false;
        if let Ok(base) = s.net.build(&s.dataset) {
            spec.name = crate::spec::edit::edited_name(&base, &spec);
            self.custom = spec.name != base.name;
        }
        self.spec = Ok(spec);
    }

    /// Whether the designer's network is no longer what the settings on the left build (it was
    /// edited, imported or is a plain twin): the left side says so.
    pub fn network_is_custom(&self) -> bool {
        self.custom
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

    /// Why Train cannot start now, or `None` when it can.
    pub fn train_blocker(&self) -> Option<String> {
        if self.registry.is_training() && !self.registry.is_paused() {
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
        if self.state.settings.config.device == crate::spec::DeviceChoice::Gpu
            && let GpuState::Unavailable(why) = &self.gpu
        {
            return Some(why.clone());
        }
        if let crate::spec::DeviceChoice::Remote(e) = &self.state.settings.config.device
            && let Some(why) = self.remote.refusal(e)
        {
            return Some(why.to_string());
        }
        None
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

    /// Draws the tab's panels: the left side and the centre, or the Experiments tab.
    fn tab_panels(&mut self, ui: &mut Ui) {
        match self.state.tab {
            Tab::Lab | Tab::Designer => {
                let mut open = self.state.settings_open;
                egui::Panel::left("settings")
                    .resizable(true)
                    .default_size(330.0)
                    .min_size(240.0)
                    .show_collapsible(ui, &mut open, |ui| self.left_side(ui));
                self.state.settings_open = open;
                egui::CentralPanel::default().show(ui, |ui| self.centre(ui));
            }
            Tab::Runs => {
                egui::CentralPanel::default().show(ui, |ui| self.runs_tab(ui));
            }
            Tab::Experiments => {
                let dataset = self.state.settings.dataset.clone();
                let action = self.state.experiments.ui(ui, &dataset);
                self.commands.push(Command::Experiments(action));
            }
        }
    }
}

impl eframe::App for LabApp {
    fn ui(&mut self, ui: &mut Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.software_renderer = frame
            .wgpu_render_state()
            .is_some_and(|r| r.adapter.get_info().device_type == eframe::wgpu::DeviceType::Cpu);
        crate::ui::signal_hook(ui, &ctx, self.closing.is_closing());
        self.pump();
        // Whichever tab is shown, Train and the left side describe the designer's network.
        self.sync_spec();
        self.handle_drops(ui);
        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.add_space(3.0);
            self.top_bar(ui);
            ui.add_space(3.0);
        });
        // The status line has a bar of its own at the bottom: the top bar then fits on one
        // line at 1100 points.
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.label(self.status_text());
        });
        if !self.messages.is_empty() {
            egui::Panel::bottom("messages").show(ui, |ui| self.message_bar(ui));
        }
        self.tab_panels(ui);
        centre::drop_hint(ui, &ctx);
        self.handle_close(ui);
        self.run_commands();
        // While a run trains, come back after the redraw interval even without the worker's
        // wake-up, e.g. for events left over after the frame budget: at most 10, 4 or 1 frames
        // a second ([`Redraw`]) unless the pointer moves. Paused or ended, nothing: the worker's wake-up brings the events that
        // still come (a run's last event is `Finished`).
        if self.registry.is_training() && !self.registry.is_paused() {
            ctx.request_repaint_after(self.redraw_interval());
        }
        // Jobs wake the window when they end; an experiment's progress is read every 100 ms.
        if self.jobs.running() > 0 {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.remember_runs();
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }

    fn on_exit(&mut self) {
        self.save_before_exit();
    }
}
