//! The Experiments tab: runs one of the reproductions in [`crate::experiments`] as a background
//! job with progress, and shows its figures, citation, what to see, and each criterion with its
//! measured values. Results are saved as experiment files, which the tab also opens.
//!
//! `mod.rs` holds the tab's state and its list and result views; the figures are drawn by the
//! lab's one figure renderer (`ui/figure.rs`).

pub use crate::figure::contours::{Segment, contour_segments};

mod sweeps;

pub use sweeps::Sweeps;

use super::jobs::{ExperimentJob, Jobs};
use crate::experiments::{self, EXPERIMENTS, ExperimentFile, Figure};
use crate::ui::figure::FigurePainter;
use egui::{Color32, RichText, Ui};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the tab asks the app to do.
#[derive(Debug, PartialEq)]
pub enum ExperimentsAction {
    /// Nothing.
    None,
    /// Put the experiment's training runs into the lab (Compare).
    OpenRuns,
    /// Run the selected experiment (with the Lab's dataset when it is an image set).
    Run(Option<crate::spec::DatasetSpec>),
    /// Open an experiment file.
    Open(PathBuf),
    /// Open a run file in the lab (a sweep's cell).
    OpenRun(PathBuf),
}

/// The experiment (or experiment file) the tab is waiting for.
struct Running {
    name: String,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<(f32, String)>>,
}

/// State of the tab; the choice of experiment, scale and seed persist.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ExperimentsTab {
    /// The experiment selected.
    pub selected: String,
    /// Run at the quick scale.
    pub quick: bool,
    /// Base seed.
    pub seed: u64,
    /// Where experiment files are written.
    pub out_dir: PathBuf,
    #[serde(skip)]
    running: Option<Running>,
    #[serde(skip)]
    results: Vec<(ExperimentFile, Option<PathBuf>)>,
    #[serde(skip)]
    error: Option<String>,
    #[serde(skip)]
    variant: String,
    #[serde(skip)]
    textures: FigurePainter,
    #[serde(skip)]
    path_field: String,
    /// The control to run instead of the experiment (empty: the experiment itself).
    #[serde(skip)]
    pub control: String,
    /// The files of the results shown when the lab last saved its state: opened again at the
    /// next launch.
    pub result_files: Vec<PathBuf>,
    /// Results still being opened at launch (they do not change the selection).
    #[serde(skip)]
    restoring: usize,
    /// The sweeps of the runs folder and those opened.
    #[serde(skip)]
    sweeps: Sweeps,
}

impl Default for ExperimentsTab {
    fn default() -> Self {
        Self {
            selected: EXPERIMENTS[0].name.to_string(),
            quick: true,
            seed: 0,
            out_dir: PathBuf::from("experiments"),
            running: None,
            results: Vec::new(),
            error: None,
            variant: String::new(),
            textures: FigurePainter::default(),
            path_field: String::new(),
            control: String::new(),
            result_files: Vec::new(),
            restoring: 0,
            sweeps: Sweeps::default(),
        }
    }
}

/// Result files opened again at launch at most.
const RESTORE_MAX: usize = 32;

impl ExperimentsTab {
    /// Whether an experiment is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The latest result of the selected experiment.
    pub fn result(&self) -> Option<&ExperimentFile> {
        self.results
            .iter()
            .find(|(f, _)| f.name == self.selected)
            .map(|(f, _)| f)
    }

    /// The last error (a failed run or a file that could not be opened).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Starts the selected experiment as a background job on `device` (the lab's device
    /// setting). `dataset` is used by the experiments that can run on another dataset (the CNN
    /// degradation).
    pub fn start(
        &mut self,
        jobs: &mut Jobs,
        (dataset, device): (Option<crate::spec::DatasetSpec>, crate::spec::DeviceChoice),
    ) {
        if self.running.is_some() {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new((0.0, "starting".to_string())));
        jobs.run_experiment(ExperimentJob {
            name: self.selected.clone(),
            control: (!self.control.is_empty()).then(|| self.control.clone()),
            quick: self.quick,
            seed: self.seed,
            out_dir: self.out_dir.clone(),
            dataset,
            device,
            cancel: cancel.clone(),
            progress: progress.clone(),
        });
        self.error = None;
        self.running = Some(Running {
            name: self.selected.clone(),
            cancel,
            progress,
        });
    }

    /// Which measurement Run starts: the experiment, or one of its controls (measurements where
    /// the paper predicts no effect, which the criteria must reject).
    fn control_picker(&mut self, ui: &mut Ui) {
        let Some(e) = crate::experiments::find(&self.selected) else {
            return;
        };
        if e.control(&self.control).is_none() {
            self.control.clear();
        }
        ui.horizontal(|ui| {
            ui.label("run");
            let shown = if self.control.is_empty() {
                "the experiment".to_string()
            } else {
                format!("control {}", self.control)
            };
            egui::ComboBox::from_id_salt("experiment-control")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.control, String::new(), "the experiment");
                    for c in e.controls {
                        ui.selectable_value(
                            &mut self.control,
                            c.name.to_string(),
                            format!("control {}", c.name),
                        )
                        .on_hover_text(c.runs);
                    }
                });
        });
    }

    /// Opens an experiment file as a background job.
    pub fn open(&mut self, path: PathBuf, jobs: &mut Jobs) {
        if self.running.is_some() {
            self.error = Some("wait for the running experiment to end".into());
            return;
        }
        self.running = Some(Running {
            name: format!("opening {}", path.display()),
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Mutex::new((0.0, "reading".into()))),
        });
        jobs.open_experiment(path);
    }

    /// Sweeps read in the background: listed; with `select`, the first is shown (a file the user
    /// opened); errors of an opened file are shown, those of the launch's scan are not.
    pub fn sweeps_read(
        &mut self,
        read: Vec<Result<(crate::sweep::SweepFile, PathBuf), String>>,
        select: bool,
    ) {
        for r in read {
            match r {
                Ok((sweep, path)) => {
                    if select {
                        self.selected = sweeps::key(&path);
                        self.error = None;
                    }
                    self.sweeps.add(sweep, path);
                }
                Err(e) if select => self.error = Some(e),
                Err(_) => {}
            }
        }
    }

    /// The sweeps listed.
    pub fn sweeps(&self) -> &Sweeps {
        &self.sweeps
    }

    /// Notes which result files to open at the next launch (the results that have a file).
    pub fn remember_results(&mut self) {
        self.result_files = self.results.iter().filter_map(|(_, p)| p.clone()).collect();
    }

    /// Opens the results shown at the last launch again, in the background.
    pub fn restore_results(&mut self, jobs: &mut Jobs) {
        let files: Vec<PathBuf> = self
            .result_files
            .iter()
            .take(RESTORE_MAX)
            .cloned()
            .collect();
        for path in files {
            self.restoring += 1;
            jobs.open_experiment(path);
        }
    }

    /// Takes the result of the job started by [`ExperimentsTab::start`] or
    /// [`ExperimentsTab::open`] (or of one opened again at launch).
    pub fn finished(&mut self, result: Result<(ExperimentFile, Option<PathBuf>), String>) {
        if self.restoring > 0 {
            self.restoring -= 1;
            // A result from the last session: it comes back without taking the selection, and
            // one that is gone (moved, deleted) is simply not shown.
            if let Ok((file, path)) = result {
                self.results.retain(|(f, _)| f.name != file.name);
                self.results.push((file, path));
            }
            return;
        }
        self.running = None;
        match result {
            Ok((file, path)) => {
                self.selected = file.name.clone();
                self.textures.forget(&format!("-{}-", file.name));
                self.variant.clear();
                self.results.retain(|(f, _)| f.name != file.name);
                self.results.push((file, path));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Draws the tab. `lab_dataset` is the dataset chosen in the Lab: image datasets (MNIST,
    /// Fashion-MNIST, CIFAR-10 from a folder) are offered to the CNN degradation experiment.
    pub fn ui(&mut self, ui: &mut Ui, lab_dataset: &crate::spec::DatasetSpec) -> ExperimentsAction {
        let image_dataset = matches!(
            lab_dataset.expected_io().0,
            crate::spec::InputShape::Image { .. }
        )
        .then(|| lab_dataset.clone());
        let mut action = egui::Panel::left("experiment-list")
            .resizable(false)
            .default_size(250.0)
            .show(ui, |ui| self.list(ui, image_dataset))
            .inner;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("experiment-scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| match self.details(ui) {
                    ExperimentsAction::None => {}
                    a => action = a,
                });
        });
        action
    }

    /// The left column: the experiments, scale and seed, Run / Cancel with the progress, and a
    /// path field to open a file.
    fn list(
        &mut self,
        ui: &mut Ui,
        image_dataset: Option<crate::spec::DatasetSpec>,
    ) -> ExperimentsAction {
        let mut action = ExperimentsAction::None;
        ui.heading("Experiments");
        for e in EXPERIMENTS {
            ui.selectable_value(&mut self.selected, e.name.to_string(), e.name)
                .on_hover_text(e.title);
        }
        let sweeps = self.sweeps.entries();
        if !sweeps.is_empty() {
            ui.label(RichText::new("Sweeps over depth").strong())
                .on_hover_text("reslab sweep: final loss and accuracy against depth");
            for (key, name) in sweeps {
                ui.selectable_value(&mut self.selected, key, name);
            }
        }
        ui.separator();
        ui.checkbox(&mut self.quick, "quick scale")
            .on_hover_text("fewer seeds or a coarser grid: each under a minute");
        ui.horizontal(|ui| {
            ui.label("seed");
            ui.add(egui::DragValue::new(&mut self.seed).range(0..=1_000_000));
        });
        self.control_picker(ui);
        ui.horizontal(|ui| {
            let experiment = experiments::find(&self.selected).is_some();
            if ui
                .add_enabled(
                    self.running.is_none() && experiment,
                    egui::Button::new("Run experiment"),
                )
                .on_disabled_hover_text("select an experiment (a sweep runs with `reslab sweep`)")
                .clicked()
            {
                action = ExperimentsAction::Run(image_dataset.clone());
            }
            if let Some(r) = &self.running
                && ui.button("Cancel").clicked()
            {
                r.cancel.store(true, Ordering::SeqCst);
            }
        });
        if self.selected == "degradation-cnn" {
            let dataset = image_dataset
                .as_ref()
                .map_or("MNIST-10k".to_string(), |d| d.label());
            ui.label(RichText::new(format!(
                "dataset: {dataset} (the Lab's dataset when it is an image set)"
            )));
        }
        if let Some(r) = &self.running {
            let (f, msg) = r.progress.lock().map(|g| g.clone()).unwrap_or_default();
            ui.label(format!("{}: {msg}", r.name));
            ui.add(egui::ProgressBar::new(f).show_percentage());
        }
        ui.separator();
        ui.label("Open an experiment or sweep file:");
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .hint_text("experiments/NAME.reslab-experiment.json")
                    .desired_width(150.0),
            );
            if ui.button("Open").clicked() && !self.path_field.trim().is_empty() {
                action = ExperimentsAction::Open(PathBuf::from(self.path_field.trim()));
            }
        });
        ui.label(
            RichText::new(format!(
                "Results are saved in {}/ (drop a file on the window to open it).",
                self.out_dir.display()
            ))
            .weak(),
        );
        action
    }

    fn details(&mut self, ui: &mut Ui) -> ExperimentsAction {
        let mut action = ExperimentsAction::None;
        if self.selected.starts_with(sweeps::SELECTED) {
            if let Some(err) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, err);
            }
            if let Some(run) = self.sweeps.show(ui, &self.selected) {
                action = ExperimentsAction::OpenRun(run);
            }
            return action;
        }
        let Some(e) = experiments::find(&self.selected) else {
            return action;
        };
        ui.heading(e.title);
        ui.label(RichText::new(e.citation).italics());
        ui.add_space(4.0);
        ui.label(RichText::new("What to see, and why").strong());
        for line in e.what_to_see {
            ui.label(format!("• {line}"));
        }
        ui.label(RichText::new(e.protocol.describe()).weak());
        if let Some(err) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
        let Some(i) = self
            .results
            .iter()
            .position(|(f, _)| f.name == self.selected)
        else {
            ui.add_space(8.0);
            let hint = if self.running.is_some() {
                "Measuring: the results appear here when the run ends."
            } else {
                "Press Run experiment to measure it on this machine."
            };
            ui.label(RichText::new(hint).weak());
            return action;
        };
        // Borrowed out of `self` while drawing (figures need `&mut self` for their textures);
        // put back below. Cloning would copy every run's history each frame.
        let results = std::mem::take(&mut self.results);
        action = self.result_ui(ui, &results[i].0, results[i].1.as_ref());
        self.results = results;
        action
    }

    fn result_ui(
        &mut self,
        ui: &mut Ui,
        file: &ExperimentFile,
        path: Option<&PathBuf>,
    ) -> ExperimentsAction {
        ui.separator();
        let action = result_header(ui, file, path);
        if let Some(control) = &file.control {
            control_banner(ui, control, file.control_rejected());
        }
        for c in &file.criteria {
            ui.horizontal_wrapped(|ui| {
                let (word, color) = if c.passed {
                    ("PASS", Color32::from_rgb(60, 180, 75))
                } else {
                    ("FAIL", ui.visuals().error_fg_color)
                };
                ui.label(RichText::new(word).color(color).strong());
                ui.label(format!("{}: {}", c.name, c.measured));
            });
            if !c.claim.is_empty() {
                ui.label(RichText::new(format!("      claim: {}", c.claim)).weak());
            }
        }
        if !file.notes.is_empty() {
            ui.label(RichText::new(&file.notes).weak());
        }
        self.variant_toggle(ui, file);
        self.figure_grid(ui, file);
        action
    }

    /// Where a figure has variants (e.g. with and without BN), a toggle between them.
    fn variant_toggle(&mut self, ui: &mut Ui, file: &ExperimentFile) {
        let mut variants: Vec<String> = file
            .figures
            .iter()
            .map(|f| f.variant.clone())
            .filter(|v| !v.is_empty())
            .collect();
        variants.sort();
        variants.dedup();
        if variants.is_empty() {
            return;
        }
        if !variants.contains(&self.variant) {
            self.variant = variants[0].clone();
        }
        ui.horizontal(|ui| {
            ui.label("show:");
            for v in &variants {
                ui.selectable_value(&mut self.variant, v.clone(), v.as_str());
            }
        });
    }

    /// The figures of the chosen variant, two columns on a wide window.
    fn figure_grid(&mut self, ui: &mut Ui, file: &ExperimentFile) {
        let figures: Vec<&Figure> = file
            .figures
            .iter()
            .filter(|f| f.variant.is_empty() || f.variant == self.variant)
            .collect();
        let id = format!("exp-fig-{}-{}", self.selected, self.variant);
        self.textures.grid(ui, &figures, &id, 290.0);
    }
}

/// The verdict, scale, seed, time and file of a result, and the button that opens its runs.
fn result_header(ui: &mut Ui, file: &ExperimentFile, path: Option<&PathBuf>) -> ExperimentsAction {
    let mut action = ExperimentsAction::None;
    ui.horizontal(|ui| {
        let verdict = if file.criteria.is_empty() {
            RichText::new("no criteria: a view, not a test")
        } else if file.passed() {
            RichText::new("all criteria PASS").color(Color32::from_rgb(60, 180, 75))
        } else {
            RichText::new("some criteria FAIL").color(ui.visuals().error_fg_color)
        };
        ui.label(verdict.strong());
        ui.label(format!(
            "{} scale, seed {}, {:.1} s",
            if file.options.quick { "quick" } else { "full" },
            file.options.seed,
            file.seconds
        ));
        if let Some(p) = path {
            ui.label(RichText::new(format!("saved {}", p.display())));
        }
        if !file.runs.is_empty()
            && ui
                .button(format!("Open its {} runs in the lab", file.runs.len()))
                .clicked()
        {
            action = ExperimentsAction::OpenRuns;
        }
    });
    action
}

/// A control's file says so above its criteria, with the verdict that matters for it: whether
/// the criteria rejected it.
fn control_banner(ui: &mut Ui, control: &str, rejected: Option<bool>) {
    let (text, color) = match rejected {
        Some(true) => (
            format!(
                "CONTROL {control}: rejected by the criteria, as it must be (a FAIL below is the expected outcome)"
            ),
            Color32::from_rgb(60, 180, 75),
        ),
        _ => (
            format!(
                "CONTROL {control}: NOT rejected: the criteria cannot tell this control from the effect"
            ),
            ui.visuals().error_fg_color,
        ),
    };
    ui.label(RichText::new(text).color(color).strong());
}
