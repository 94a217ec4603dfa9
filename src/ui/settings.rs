//! The left side: the network (preset picker; the designer edits the same spec), the dataset
//! and every training setting, with sensible ranges. Everything here is persisted between
//! launches.

use super::device_picker::{DeviceAction, RemoteState, device_row};
use crate::spec::{
    Activation, BranchScale, DataKind, DataSource, DatasetSpec, Duration, NetSpec, Norm,
    OptimizerSpec, PresetOptions, Schedule, Shortcut, TrainConfig, preset, validate,
};
use egui::{ComboBox, DragValue, Slider, Ui};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Preset families the picker offers.
pub const FAMILIES: &[Family] = &[
    Family::new("mlp-plain", "MLP, plain", 20, 64),
    Family::new("mlp-res", "MLP, residual", 20, 64),
    Family::new("cifar-plain", "CNN, plain (He et al. CIFAR)", 3, 64),
    Family::new("cifar-resnet", "CNN, ResNet (He et al. CIFAR)", 3, 64),
    Family::new("preact-resnet", "CNN, pre-activation ResNet", 3, 64),
    Family::new("cnn", "CNN, small plain (conv layers)", 3, 64),
    Family::new("vit-res", "Transformer, pre-LN residual", 4, 128),
    Family::new("vit-postln", "Transformer, post-LN residual", 4, 128),
    Family::new("vit-plain", "Transformer, no adds", 4, 128),
];

/// A preset family as the lab offers it: its name, its label, and the depth and width it
/// starts with (the one table of defaults the settings and the designer's presets share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// The preset family, e.g. `mlp-res`.
    pub id: &'static str,
    /// What the picker calls it.
    pub label: &'static str,
    /// Its default depth as [`NetChoice::depth`] counts it (blocks, or blocks per stage).
    pub depth: usize,
    /// Its default width (MLP width, a transformer block's MLP width).
    pub width: usize,
}

impl Family {
    const fn new(id: &'static str, label: &'static str, depth: usize, width: usize) -> Self {
        Self {
            id,
            label,
            depth,
            width,
        }
    }

    /// The family called `id`.
    pub fn find(id: &str) -> Option<&'static Family> {
        FAMILIES.iter().find(|f| f.id == id)
    }
}

/// The network as chosen on the left: a preset and its options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetChoice {
    /// Preset family, e.g. `mlp-res`.
    pub family: String,
    /// MLP: hidden blocks; CNN: blocks per stage n (depth 6n + 2).
    pub depth: usize,
    /// MLP width.
    pub width: usize,
    /// The normalisation in the blocks.
    pub norm: Norm,
    /// Shortcut where shapes change (CNN presets).
    pub shortcut: Shortcut,
    /// Branch scale α.
    pub scale: BranchScale,
    /// Activation function.
    pub activation: Activation,
    /// The on/off BatchNorm choice a state saved before the normalisation picker holds; read
    /// once into [`NetChoice::norm`] by [`NetChoice::upgrade`], never written.
    #[serde(rename = "batch_norm", skip_serializing)]
    pub legacy_batch_norm: Option<bool>,
}

impl Default for NetChoice {
    fn default() -> Self {
        Self {
            family: "mlp-res".into(),
            depth: 20,
            width: 64,
            norm: Norm::Batch,
            shortcut: PresetOptions::LAB_SHORTCUT,
            scale: BranchScale::default(),
            activation: Activation::Relu,
            legacy_batch_norm: None,
        }
    }
}

impl NetChoice {
    /// Carries a saved state's old BatchNorm switch over: off becomes no normalisation.
    pub fn upgrade(&mut self) {
        if self.legacy_batch_norm.take() == Some(false) {
            self.norm = Norm::None;
        }
    }

    /// Switches to `family` with its default depth, width, shortcut and branch scale (the
    /// normalisation and activation stay as chosen): an MLP of 20 blocks becomes a CNN of 20
    /// layers, not one of 6·20 + 2.
    pub fn switch_family(&mut self, family: &str) {
        let (depth, width) =
            Family::find(family).map_or((self.depth, self.width), |f| (f.depth, f.width));
        *self = NetChoice {
            family: family.to_string(),
            depth,
            width,
            shortcut: PresetOptions::LAB_SHORTCUT,
            scale: BranchScale::default(),
            norm: self.norm,
            activation: self.activation,
            legacy_batch_norm: None,
        };
    }

    /// This choice with a preset's family and depth (e.g. `cifar-resnet-56`: blocks per stage
    /// 9), the family's defaults otherwise; `None` when the name is no preset the picker has.
    pub fn with_preset(&self, name: &str) -> Option<NetChoice> {
        let (family, depth) = name.rsplit_once('-')?;
        let depth: usize = depth.parse().ok()?;
        Family::find(family)?;
        let mut n = self.clone();
        n.switch_family(family);
        n.depth = if n.depth_is_layers() {
            depth
        } else {
            depth.checked_sub(2).filter(|d| d % 6 == 0)? / 6
        };
        Some(n)
    }

    /// Whether the family is an MLP.
    pub fn is_mlp(&self) -> bool {
        self.family.starts_with("mlp")
    }

    /// Whether the family is a transformer (`vit-*`).
    pub fn is_transformer(&self) -> bool {
        self.family.starts_with("vit")
    }

    /// Whether the family's depth counts layers or blocks (MLP blocks, small-CNN convolutions,
    /// transformer blocks) rather than blocks per stage.
    pub fn depth_is_layers(&self) -> bool {
        self.is_mlp() || self.family == "cnn" || self.is_transformer()
    }

    /// The preset name, e.g. `mlp-res-20` or `cifar-resnet-20`.
    pub fn preset_name(&self) -> String {
        if self.depth_is_layers() {
            format!("{}-{}", self.family, self.depth)
        } else {
            format!("{}-{}", self.family, 6 * self.depth + 2)
        }
    }

    /// Builds the spec for a dataset's input and output sizes.
    pub fn build(&self, dataset: &DatasetSpec) -> Result<NetSpec, String> {
        let opts = PresetOptions {
            width: self.width,
            norm: self.norm,
            shortcut: self.shortcut,
            scale: self.scale,
            activation: self.activation,
            ..PresetOptions::for_dataset(dataset)
        };
        preset(&self.preset_name(), &opts).map_err(|e| e.to_string())
    }
}

/// Everything on the left side, persisted between launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The network choice.
    pub net: NetChoice,
    /// The dataset.
    pub dataset: DatasetSpec,
    /// The training configuration.
    pub config: TrainConfig,
    /// Where runs are saved and listed from.
    pub runs_dir: PathBuf,
    /// The remote endpoint as last typed (`ws://HOST:PORT`).
    pub remote_text: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            net: NetChoice::default(),
            dataset: DatasetSpec::new(DataSource::Mnist10k),
            config: TrainConfig::lab_default(),
            runs_dir: PathBuf::from("saved_runs"),
            remote_text: String::new(),
        }
    }
}

/// What the left side asks the app to do.
#[derive(Debug, PartialEq)]
pub enum SettingsAction {
    /// Nothing.
    None,
    /// The network choice changed: rebuild the spec from the preset.
    NetChanged,
    /// The dataset changed: adapt the network's input and head to it.
    DatasetChanged,
    /// Open a folder dialog for the dataset.
    PickDataFolder,
    /// Check whether the GPU can be used.
    CheckGpu,
    /// Connect to a remote endpoint in the background.
    CheckRemote(crate::spec::Endpoint),
}

/// What the device checks found, for the device row.
#[derive(Clone, Copy)]
pub struct Devices<'a> {
    /// The GPU's check.
    pub gpu: &'a GpuState,
    /// The remote endpoint's check.
    pub remote: &'a RemoteState,
}

/// Availability of the GPU as last checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum GpuState {
    /// Not checked yet.
    #[default]
    Unknown,
    /// Being checked.
    Checking,
    /// Usable; the device in words.
    Available(String),
    /// Usable, but wgpu's only adapters are software rasterisers on the CPU (Mesa's llvmpipe /
    /// lavapipe): training there is much slower than on the CPU backend. The adapters in words.
    Software(String),
    /// Not usable; why.
    Unavailable(String),
}

/// What the lab says about a software-only wgpu adapter.
pub fn software_gpu_text(adapters: &str) -> String {
    format!(
        "wgpu found only software adapters, which run on the CPU: {adapters}. Training there works \
         but is much slower than the CPU backend."
    )
}

impl Settings {
    /// Draws the left side. `locked` greys everything out while a run trains (a run keeps the
    /// settings it started with).
    pub fn ui(&mut self, ui: &mut Ui, devices: Devices<'_>, spec_summary: &str) -> SettingsAction {
        let mut action = SettingsAction::None;
        ui.heading("Network");
        if self.net_ui(ui) {
            action = SettingsAction::NetChanged;
        }
        ui.label(spec_summary);
        ui.separator();
        ui.heading("Dataset");
        match self.dataset_ui(ui) {
            (true, _) => action = SettingsAction::DatasetChanged,
            (_, true) => action = SettingsAction::PickDataFolder,
            _ => {}
        }
        ui.separator();
        ui.heading("Training");
        match self.config_ui(ui, devices) {
            DeviceAction::None => {}
            DeviceAction::CheckGpu => action = SettingsAction::CheckGpu,
            DeviceAction::CheckRemote(e) => action = SettingsAction::CheckRemote(e),
        }
        action
    }

    fn net_ui(&mut self, ui: &mut Ui) -> bool {
        let before = self.net.clone();
        let n = &mut self.net;
        egui::Grid::new("net-grid").num_columns(2).show(ui, |ui| {
            ui.label("Preset");
            let label = Family::find(&n.family).map_or(n.family.as_str(), |f| f.label);
            let mut family = n.family.clone();
            ComboBox::from_id_salt("family")
                .selected_text(label)
                .show_ui(ui, |ui| {
                    for f in FAMILIES {
                        ui.selectable_value(&mut family, f.id.to_string(), f.label);
                    }
                });
            if family != n.family {
                n.switch_family(&family);
            }
            ui.end_row();
            if n.is_mlp() {
                ui.label("Hidden blocks");
                ui.add(DragValue::new(&mut n.depth).range(1..=200));
                ui.end_row();
                ui.label("Width");
                ui.add(DragValue::new(&mut n.width).range(2..=2048));
                ui.end_row();
            } else if n.is_transformer() {
                ui.label("Blocks");
                ui.add(DragValue::new(&mut n.depth).range(1..=48))
                    .on_hover_text("attention + MLP per block; 16 tokens of 64 on 28×28 digits");
                ui.end_row();
                ui.label("MLP width");
                ui.add(DragValue::new(&mut n.width).range(2..=2048));
                ui.end_row();
            } else if n.family == "cnn" {
                ui.label("Conv layers");
                ui.add(DragValue::new(&mut n.depth).range(1..=20))
                    .on_hover_text("16, 32, 64, 64, … filters; stride 2 at the 2nd and 3rd");
                ui.end_row();
            } else {
                ui.label("Blocks per stage n");
                ui.add(DragValue::new(&mut n.depth).range(1..=50))
                    .on_hover_text(
                        "depth = 6n + 2: n = 3 gives 20 layers, 9 gives 56, 18 gives 110",
                    );
                ui.end_row();
                ui.label("Shortcut (stage change)");
                ComboBox::from_id_salt("shortcut")
                    .selected_text(shortcut_label(n.shortcut))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut n.shortcut, Shortcut::ZeroPad, "zero-pad (A)");
                        ui.selectable_value(
                            &mut n.shortcut,
                            Shortcut::Projection { batch_norm: true },
                            "1×1 projection + BN (B)",
                        );
                    });
                ui.end_row();
            }
            if n.is_transformer() {
                ui.label("Norm, activation");
                ui.label("LayerNorm, GELU").on_hover_text(
                    "a transformer's are fixed; where the LayerNorm sits is the family",
                );
                ui.end_row();
            } else {
                norm_activation_rows(ui, n);
            }
            if n.family != "mlp-plain" && n.family != "cifar-plain" && n.family != "vit-plain" {
                ui.label("Branch scale α");
                ui.horizontal(|ui| {
                    ui.add(
                        DragValue::new(&mut n.scale.value)
                            .range(0.0..=4.0)
                            .speed(0.01),
                    );
                    ui.checkbox(&mut n.scale.learnable, "learnable")
                        .on_hover_text("learnable from α = 0 is SkipInit (De & Smith 2020)");
                });
                ui.end_row();
            }
        });
        self.net != before
    }

    /// Returns (dataset changed, browse clicked).
    fn dataset_ui(&mut self, ui: &mut Ui) -> (bool, bool) {
        let before = self.dataset.clone();
        let mut browse = false;
        let kind = DataKind::of(&self.dataset.source);
        let mut new_kind = kind;
        ComboBox::from_id_salt("dataset")
            .selected_text(kind.label())
            .show_ui(ui, |ui| {
                for k in DataKind::ALL {
                    ui.selectable_value(&mut new_kind, k, k.label());
                }
            });
        if new_kind != kind {
            // A folder typed for one folder kind carries over to another.
            let dir = self.dataset.source.folder().cloned().unwrap_or_default();
            self.dataset.source = new_kind.default_source(dir);
        }
        egui::Grid::new("data-grid").num_columns(2).show(ui, |ui| {
            browse = source_rows(ui, &mut self.dataset.source);
            ui.label("Validation share");
            ui.add(Slider::new(
                &mut self.dataset.validation_fraction,
                0.05..=0.5,
            ));
            ui.end_row();
            ui.label("Split seed");
            ui.add(DragValue::new(&mut self.dataset.seed));
            ui.end_row();
        });
        super::eval_sets::eval_sets_ui(ui, &mut self.dataset);
        (self.dataset != before, browse)
    }

    /// Returns what the device row asks for.
    fn config_ui(&mut self, ui: &mut Ui, devices: Devices<'_>) -> DeviceAction {
        let c = &mut self.config;
        let mut asked = DeviceAction::None;
        egui::Grid::new("config-grid")
            .num_columns(2)
            .show(ui, |ui| {
                optimizer_rows(ui, &mut c.optimizer);
                ui.label("Learning rate");
                // A typed value is kept as typed (not clamped into the slider's range without a
                // word): one the trainer refuses is named in red below the grid.
                ui.add(
                    Slider::new(&mut c.lr, 1e-5..=2.0)
                        .logarithmic(true)
                        .clamping(egui::SliderClamping::Never)
                        .custom_formatter(|v, _| format!("{v:.2e}")),
                );
                ui.end_row();
                schedule_rows(ui, &mut c.schedule);
                steps_rows(ui, c);
                asked = device_row(
                    ui,
                    (&mut c.device, &mut self.remote_text),
                    (devices.gpu, devices.remote),
                );
            });
        if let Err(e) = c.validate() {
            ui.colored_label(ui.visuals().error_fg_color, e.to_string());
        }
        asked
    }
}

/// The normalisation and activation pickers of the MLP and CNN families.
fn norm_activation_rows(ui: &mut Ui, n: &mut NetChoice) {
    ui.label("Normalisation");
    ComboBox::from_id_salt("norm")
        .selected_text(norm_label(n.norm))
        .show_ui(ui, |ui| {
            for k in Norm::CHOICES {
                ui.selectable_value(&mut n.norm, k, norm_label(k));
            }
        })
        .response
        .on_hover_text("the normalisation layer in every block");
    ui.end_row();
    ui.label("Activation");
    ComboBox::from_id_salt("activation")
        .selected_text(format!("{:?}", n.activation))
        .show_ui(ui, |ui| {
            for a in Activation::ALL {
                ui.selectable_value(&mut n.activation, a, format!("{a:?}"));
            }
        });
    ui.end_row();
}

/// The options of the chosen data source (sizes, noise, a folder); returns whether Browse was
/// clicked.
fn source_rows(ui: &mut Ui, source: &mut DataSource) -> bool {
    let mut browse = false;
    let samples_ui = |ui: &mut Ui, s: &mut usize| {
        ui.label("Samples");
        ui.add(DragValue::new(s).range(20..=200_000).speed(10));
        ui.end_row();
    };
    let noise_ui = |ui: &mut Ui, n: &mut f32| {
        ui.label("Noise");
        ui.add(Slider::new(n, 0.0..=1.0));
        ui.end_row();
    };
    match source {
        DataSource::Spirals {
            samples,
            classes,
            noise,
        } => {
            samples_ui(ui, samples);
            ui.label("Arms");
            ui.add(DragValue::new(classes).range(2..=8));
            ui.end_row();
            noise_ui(ui, noise);
        }
        DataSource::Circles { samples, noise }
        | DataSource::Moons { samples, noise }
        | DataSource::Xor { samples, noise }
        | DataSource::Regression1d { samples, noise } => {
            samples_ui(ui, samples);
            noise_ui(ui, noise);
        }
        DataSource::Checkerboard {
            samples,
            tiles,
            noise,
        } => {
            samples_ui(ui, samples);
            ui.label("Tiles per side");
            ui.add(DragValue::new(tiles).range(2..=12));
            ui.end_row();
            noise_ui(ui, noise);
        }
        DataSource::Gaussians {
            samples,
            classes,
            dim,
            spread,
        } => {
            samples_ui(ui, samples);
            ui.label("Classes");
            ui.add(DragValue::new(classes).range(2..=50));
            ui.end_row();
            ui.label("Dimensions");
            ui.add(DragValue::new(dim).range(1..=1024));
            ui.end_row();
            ui.label("Spread");
            ui.add(Slider::new(spread, 0.05..=5.0));
            ui.end_row();
        }
        DataSource::Mnist10k => {}
        DataSource::ColouredMnist { palette } => {
            ui.label("Palette");
            egui::ComboBox::from_id_salt("settings-palette")
                .selected_text(palette.name())
                .show_ui(ui, |ui| {
                    for p in crate::spec::Palette::ALL {
                        ui.selectable_value(palette, p, p.name());
                    }
                });
            ui.end_row();
        }
        DataSource::MnistDir { dir }
        | DataSource::FashionDir { dir }
        | DataSource::Cifar10Dir { dir } => {
            ui.label("Folder");
            let mut text = dir.display().to_string();
            ui.horizontal(|ui| {
                if ui
                    .add(egui::TextEdit::singleline(&mut text).desired_width(130.0))
                    .changed()
                {
                    *dir = PathBuf::from(text.trim());
                }
                browse = ui.button("Browse…").clicked();
            });
            ui.end_row();
        }
    }
    browse
}

/// The optimiser picker and its constants (momentum and Nesterov, or Adam's betas).
fn optimizer_rows(ui: &mut Ui, optimizer: &mut OptimizerSpec) {
    ui.label("Optimizer");
    let current = match optimizer {
        OptimizerSpec::Sgd { .. } => 0,
        OptimizerSpec::Adam { .. } => 1,
        OptimizerSpec::AdamW { .. } => 2,
    };
    let mut pick = current;
    ComboBox::from_id_salt("optimizer")
        .selected_text(["SGD + momentum", "Adam", "AdamW"][current])
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut pick, 0, "SGD + momentum");
            ui.selectable_value(&mut pick, 1, "Adam");
            ui.selectable_value(&mut pick, 2, "AdamW");
        });
    if pick != current {
        *optimizer = match pick {
            0 => OptimizerSpec::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            1 => OptimizerSpec::adam(),
            _ => OptimizerSpec::adamw(),
        };
    }
    ui.end_row();
    match optimizer {
        OptimizerSpec::Sgd { momentum, nesterov } => {
            ui.label("Momentum");
            ui.horizontal(|ui| {
                ui.add(DragValue::new(momentum).range(0.0..=0.999).speed(0.01));
                ui.checkbox(nesterov, "Nesterov");
            });
            ui.end_row();
        }
        OptimizerSpec::Adam { beta1, beta2, .. } | OptimizerSpec::AdamW { beta1, beta2, .. } => {
            ui.label("β1, β2");
            ui.horizontal(|ui| {
                ui.add(DragValue::new(beta1).range(0.0..=0.999).speed(0.01));
                ui.add(DragValue::new(beta2).range(0.0..=0.99999).speed(0.001));
            });
            ui.end_row();
        }
    }
}

/// The learning-rate schedule picker and its constants.
fn schedule_rows(ui: &mut Ui, schedule: &mut Schedule) {
    ui.label("Schedule");
    let current = match schedule {
        Schedule::Constant => 0,
        Schedule::Step { .. } => 1,
        Schedule::Cosine { .. } => 2,
    };
    let mut pick = current;
    ComboBox::from_id_salt("schedule")
        .selected_text(["constant", "step", "cosine"][current])
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut pick, 0, "constant");
            ui.selectable_value(&mut pick, 1, "step");
            ui.selectable_value(&mut pick, 2, "cosine");
        });
    if pick != current {
        *schedule = match pick {
            0 => Schedule::Constant,
            1 => Schedule::Step {
                every: 1000,
                gamma: 0.1,
            },
            _ => Schedule::Cosine {
                final_fraction: 0.0,
            },
        };
    }
    ui.end_row();
    match schedule {
        Schedule::Constant => {}
        Schedule::Step { every, gamma } => {
            ui.label("Every, ×");
            ui.horizontal(|ui| {
                ui.add(DragValue::new(every).range(1..=1_000_000));
                ui.add(DragValue::new(gamma).range(0.001..=1.0).speed(0.01));
            });
            ui.end_row();
        }
        Schedule::Cosine { final_fraction } => {
            ui.label("Final fraction");
            ui.add(Slider::new(final_fraction, 0.0..=1.0));
            ui.end_row();
        }
    }
}

/// Warm-up, weight decay, batch size, duration, seed and the probe and validation intervals.
fn steps_rows(ui: &mut Ui, c: &mut TrainConfig) {
    ui.label("Warm-up steps");
    ui.add(DragValue::new(&mut c.warmup_steps).range(0..=100_000));
    ui.end_row();
    ui.label("Weight decay");
    ui.add(
        DragValue::new(&mut c.weight_decay)
            .range(0.0..=0.1)
            .speed(1e-5),
    );
    ui.end_row();
    ui.label("Batch size");
    ui.add(DragValue::new(&mut c.batch_size).range(1..=4096));
    ui.end_row();
    ui.label("Duration");
    ui.horizontal(|ui| duration_field(ui, &mut c.duration));
    ui.end_row();
    ui.label("Seed");
    ui.add(DragValue::new(&mut c.seed));
    ui.end_row();
    ui.label("Probe every");
    ui.add(DragValue::new(&mut c.probe_every).range(0..=10_000))
        .on_hover_text("steps between probes (activations, BN, gradients); 0 = never");
    ui.end_row();
    ui.label("Validate every");
    ui.add(DragValue::new(&mut c.eval_every).range(0..=100_000))
        .on_hover_text("steps between validation passes; 0 = only at the end");
    ui.end_row();
}

/// A number of steps or epochs.
fn duration_field(ui: &mut Ui, duration: &mut Duration) {
    let (mut n, mut epochs) = match *duration {
        Duration::Steps(n) => (n, false),
        Duration::Epochs(n) => (n, true),
    };
    ui.add(DragValue::new(&mut n).range(1..=10_000_000));
    ComboBox::from_id_salt("duration")
        .selected_text(if epochs { "epochs" } else { "steps" })
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut epochs, false, "steps");
            ui.selectable_value(&mut epochs, true, "epochs");
        });
    *duration = if epochs {
        Duration::Epochs(n)
    } else {
        Duration::Steps(n)
    };
}

fn shortcut_label(s: Shortcut) -> &'static str {
    match s {
        Shortcut::Identity => "identity",
        Shortcut::ZeroPad => "zero-pad (A)",
        Shortcut::Projection { .. } => "1×1 projection (B)",
    }
}

/// One line on a spec: layers, parameters, FLOPs and the memory training it with `config` on
/// `dataset` needs (flagged when it is above the limit Train enforces), or the validation error.
pub fn spec_summary(
    spec: &Result<NetSpec, String>,
    config: &TrainConfig,
    dataset: &DatasetSpec,
) -> String {
    match spec {
        Err(e) => format!("error: {e}"),
        Ok(s) => match validate(s) {
            Ok(v) => format!(
                "{}: {}, {}, {} parameters, {} FLOPs/sample\n{}",
                s.name,
                crate::numbers::count(s.layers.len(), "layer"),
                crate::numbers::count(s.skips.len(), "skip"),
                crate::numbers::si(v.total_params() as f64),
                crate::numbers::si(v.total_flops() as f64),
                memory_line(&v, config, dataset)
            ),
            Err(e) => format!("error: {e}"),
        },
    }
}

/// `training memory ≈ 1.2 GB at batch 128` and, above the limit, why Train will refuse.
fn memory_line(v: &crate::spec::ValidSpec, config: &TrainConfig, dataset: &DatasetSpec) -> String {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let limit = *LIMIT.get_or_init(crate::train::memory_limit);
    let e = crate::spec::estimate_memory(v, config, dataset);
    let line = format!(
        "training memory ≈ {} at batch {}",
        e.describe(),
        config.batch_size
    );
    if e.total() > limit {
        format!(
            "{line}: more than the {} this machine allows, Train will refuse",
            crate::spec::format_bytes(limit)
        )
    } else {
        line
    }
}

/// A normalisation in words, for the picker.
fn norm_label(n: Norm) -> String {
    match n {
        Norm::None => "none".into(),
        Norm::Batch => "BatchNorm".into(),
        Norm::Layer => "LayerNorm".into(),
        Norm::Group { groups } => format!("GroupNorm ({groups} groups)"),
    }
}
