//! The centre panels. Each is a plain struct with its display options and a
//! `ui(&mut self, ui, ctx)` method; the app arranges the visible ones in a grid.

mod activations;
mod attention;
mod batchnorm;
mod boundary;
mod compare;
pub mod gradients;
mod loss;

pub use activations::ActivationsPanel;
pub use attention::AttentionPanel;
pub use batchnorm::BatchNormPanel;
pub use boundary::BoundaryPanel;
pub use compare::{CompareAction, ComparePanel};
pub use gradients::GradientsPanel;
pub use loss::{LossPanel, summary as loss_summary};

use super::plot::{HeatTexture, LogBuckets, color_legend, hover_point, log_axis_label};
use super::runs::ShownRun;
use crate::numbers::sig;
use egui_plot::{Plot, PlotImage, PlotPoint};
use serde::{Deserialize, Serialize};

/// The panels, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PanelKind {
    /// Loss and accuracy.
    Loss,
    /// Per-layer activation statistics.
    Activations,
    /// Normalisation: BatchNorm's running statistics, γ and β; LayerNorm's and GroupNorm's γ and
    /// β.
    BatchNorm,
    /// Gradient norms and update ratios.
    Gradients,
    /// Decision boundary of a 2-D classifier.
    Boundary,
    /// Several runs overlaid.
    Compare,
    /// Self-attention maps and entropy.
    Attention,
}

impl PanelKind {
    /// All panels.
    pub const ALL: [PanelKind; 7] = [
        PanelKind::Loss,
        PanelKind::Activations,
        PanelKind::BatchNorm,
        PanelKind::Gradients,
        PanelKind::Boundary,
        PanelKind::Compare,
        PanelKind::Attention,
    ];

    /// The panel's title.
    pub fn title(self) -> &'static str {
        match self {
            PanelKind::Loss => "Loss & accuracy",
            PanelKind::Activations => "Activations",
            PanelKind::BatchNorm => "Normalisation layers",
            PanelKind::Gradients => "Gradient flow",
            PanelKind::Boundary => "Decision boundary",
            PanelKind::Compare => "Compare",
            PanelKind::Attention => "Attention",
        }
    }

    /// A file-name stem for exported pictures.
    pub fn slug(self) -> &'static str {
        match self {
            PanelKind::Loss => "loss",
            PanelKind::Activations => "activations",
            PanelKind::BatchNorm => "batchnorm",
            PanelKind::Gradients => "gradients",
            PanelKind::Boundary => "boundary",
            PanelKind::Compare => "compare",
            PanelKind::Attention => "attention",
        }
    }

    /// Position in [`PanelKind::ALL`].
    pub fn index(self) -> usize {
        PanelKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// What panels draw from.
pub struct PanelCtx<'a> {
    /// The run shown (live or loaded), if any.
    pub run: Option<&'a ShownRun>,
    /// Every run the lab holds (for Compare).
    pub runs: &'a [ShownRun],
    /// Height available to one panel's plots.
    pub height: f32,
}

/// The x axes of all time-series plots move together.
pub fn step_link() -> egui::Id {
    egui::Id::unique("reslab-steps")
}

/// A plot over the training steps, as every time-series panel draws them: the wheel scrolls the
/// page, the x axis moves with the other step plots, and hovering names the line, the step and
/// its value (`value` is the value's word, e.g. `loss`, or empty). With `log_y` the plotted
/// values are log10 and the axis and the hover label show them as powers of ten.
pub fn step_plot(id: &str, log_y: bool, value: &'static str) -> Plot<'static> {
    let plot = Plot::new(id)
        .allow_scroll(false)
        .link_axis(step_link(), [true, false])
        .label_formatter(move |pos| {
            let (name, p) = hover_point(pos);
            let y = sig(if log_y { 10f64.powf(p.y) } else { p.y });
            let sep = if value.is_empty() { "" } else { " " };
            Some(format!("{name}\nstep {:.0}\n{value}{sep}{y}", p.x))
        });
    if log_y {
        plot.y_axis_formatter(log_axis_label)
    } else {
        plot
    }
}

/// Shown where a panel has nothing to draw yet.
pub fn empty_note(ui: &mut egui::Ui, what: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(what).italics().weak());
}

/// A cache key for derived data: the run and how much it has recorded.
pub fn history_key(run: &ShownRun) -> u64 {
    let h = run.history();
    run.id
        .wrapping_mul(1_000_003)
        .wrapping_add(h.last_step.wrapping_mul(31))
        .wrapping_add(h.latest_probe.as_ref().map_or(0, |p| p.step))
}

/// Indices of the layers a per-layer plot shows: the activation outputs when `only_acts` and
/// the network has any, otherwise every layer.
pub fn shown_layers(run: &ShownRun, only_acts: bool) -> Vec<usize> {
    let names = &run.history().layout.layers;
    if only_acts {
        let acts: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| is_activation_layer(&run.file.spec, n))
            .map(|(i, _)| i)
            .collect();
        if !acts.is_empty() {
            return acts;
        }
    }
    (0..names.len()).collect()
}

fn is_activation_layer(spec: &crate::spec::NetSpec, name: &str) -> bool {
    spec.layers
        .iter()
        .find(|l| l.name == name)
        .is_some_and(|l| matches!(l.op, crate::spec::LayerOp::Activation { .. }))
}

/// A layer × step heatmap of one per-layer series on a log colour scale, with its legend;
/// kept up to date incrementally ([`LogBuckets`]) and uploaded as a texture once per new probe.
#[derive(Default)]
pub struct LayerHeatmap {
    heat: HeatTexture,
    buckets: LogBuckets,
}

/// Columns of a layer × step heatmap at most (probes are bucketed; see [`LogBuckets`]).
pub const HEAT_COLUMNS: usize = 400;

/// A cache key for a list of layer names of a run.
pub fn names_key(run: &ShownRun, names: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    run.id.hash(&mut h);
    names.hash(&mut h);
    h.finish()
}

impl LayerHeatmap {
    /// Draws the heatmap of `series` for `names` (row 0, at the top, is the first name).
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        run: &ShownRun,
        series: &str,
        names: &[String],
        id: &str,
        height: f32,
    ) {
        if names.is_empty() {
            return;
        }
        let names_key = names_key(run, names);
        self.buckets
            .update(names_key, run.history(), series, names, HEAT_COLUMNS);
        let key = history_key(run) ^ names_key;
        let buckets = &self.buckets;
        let tex = self
            .heat
            .get(ui.ctx(), id, key, || buckets.data())
            .map(|t| t.id());
        let Some(tex) = tex else {
            return;
        };
        let range = self.heat.range;
        let end = self.extent(run, series, &names[0]);
        let rows = names.len() as f64;
        let names_owned = names.to_vec();
        ui.horizontal(|ui| {
            Plot::new(id)
                .allow_scroll(false)
                .height(height)
                .width((ui.available_width() - 64.0).max(100.0))
                .allow_zoom([true, false])
                .link_axis(step_link(), [true, false])
                .y_axis_formatter(|_, _| String::new())
                .label_formatter(move |pos| {
                    let p = hover_point(pos).1;
                    let row = (rows - p.y).floor();
                    (row >= 0.0 && row < rows)
                        .then(|| format!("{}\nstep {:.0}", names_owned[row as usize], p.x))
                })
                .show(ui, |p| {
                    p.image(PlotImage::new(
                        series,
                        tex,
                        PlotPoint::new(end / 2.0, rows / 2.0),
                        [end as f32, rows as f32],
                    ));
                });
            color_legend(ui, range, height);
        });
    }

    /// The step where the last bucket ends, at the run's probe spacing (the picture spans 0 to
    /// there).
    fn extent(&self, run: &ShownRun, series: &str, layer: &str) -> f64 {
        let last = run.history().last_step.max(1) as f64;
        let Some(s) = run.history().get(series, layer) else {
            return last;
        };
        let n = s.len();
        if n < 2 {
            return last;
        }
        let spacing = (s.steps[n - 1] as f64 - s.steps[0] as f64) / (n - 1) as f64;
        let cells = (self.buckets.data_cols() * self.buckets.width()) as f64;
        (s.steps[0] as f64 + spacing * cells).max(1.0)
    }
}
