//! Gradient flow: per weight tensor the gradient norm at the latest probe as bars on a log
//! scale from input to output, a tensor × step heatmap, and the update/weight ratio. Vanishing
//! and exploding gradients are highlighted.

use super::{LayerHeatmap, PanelCtx, empty_note};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::{caption, log_axis_label};
use crate::ui::runs::ShownRun;
use egui::{Color32, Ui};
use egui_plot::{Bar, BarChart, HLine, Plot};
use serde::{Deserialize, Serialize};

/// Below this gradient norm a tensor's gradient counts as vanished.
pub const VANISHING: f32 = 1e-6;
/// Above this gradient norm (or 100× the median tensor's) a gradient counts as exploding.
pub const EXPLODING: f32 = 1e3;

/// How a tensor's gradient looks at the latest probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradHealth {
    /// Neither vanishing nor exploding.
    Normal,
    /// Below [`VANISHING`].
    Vanishing,
    /// Above [`EXPLODING`], 100× the median, or not finite.
    Exploding,
}

/// Classifies gradient norms: vanishing below [`VANISHING`], exploding above [`EXPLODING`] or
/// above 100× the median norm, or when not finite.
pub fn classify(norms: &[f32]) -> Vec<GradHealth> {
    let mut finite: Vec<f32> = norms.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    let median = finite.get(finite.len() / 2).copied().unwrap_or(0.0);
    norms
        .iter()
        .map(|&g| {
            if !g.is_finite() || g > EXPLODING || (median > 0.0 && g > 100.0 * median) {
                GradHealth::Exploding
            } else if g < VANISHING {
                GradHealth::Vanishing
            } else {
                GradHealth::Normal
            }
        })
        .collect()
}

/// Display options of the gradient panel.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GradientsPanel {
    /// Include biases and BN γ/β (else weight matrices and kernels only).
    pub all_tensors: bool,
    #[serde(skip)]
    heat: LayerHeatmap,
}

/// Indices (into the run's tensor list) of the tensors the panel shows.
pub fn shown_tensors(run: &ShownRun, all: bool) -> Vec<usize> {
    let params = &run.history().layout.params;
    let weights: Vec<usize> = params
        .iter()
        .enumerate()
        .filter(|(_, n)| all || is_weight(run, n))
        .map(|(i, _)| i)
        .collect();
    if weights.is_empty() {
        (0..params.len()).collect()
    } else {
        weights
    }
}

fn is_weight(run: &ShownRun, tensor: &str) -> bool {
    // Weight matrices and kernels of Linear/Conv layers; BN's γ is also called `weight`, so
    // the layer's kind decides.
    let Some(layer) = tensor.strip_suffix(".weight") else {
        return false;
    };
    run.file
        .spec
        .layers
        .iter()
        .find(|l| l.name == layer)
        .is_none_or(|l| l.has_weights() && !matches!(l.op, crate::spec::LayerOp::BatchNorm { .. }))
}

impl GradientsPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Gradient norm per weight tensor, input to output (log). Red: vanishing (< 1e-6), \
             orange: exploding (> 1e3 or 100× the median). Residual nets keep early layers' bars tall.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return;
        };
        let h = run.history();
        let Some(probe) = &h.latest_probe else {
            empty_note(ui, "Waiting for the first probe…");
            return;
        };
        ui.checkbox(&mut self.all_tensors, "also biases and BN γ/β");
        let shown = shown_tensors(run, self.all_tensors);
        let names: Vec<String> = shown.iter().map(|&i| h.layout.params[i].clone()).collect();
        let norms: Vec<f32> = shown
            .iter()
            .map(|&i| probe.params.get(i).map_or(f32::NAN, |p| p.grad_norm))
            .collect();
        let health = classify(&norms);
        let vanishing = health
            .iter()
            .filter(|&&g| g == GradHealth::Vanishing)
            .count();
        let exploding = health
            .iter()
            .filter(|&&g| g == GradHealth::Exploding)
            .count();
        ui.label(format!(
            "step {}: {} tensors, {vanishing} vanishing, {exploding} exploding",
            probe.step,
            names.len()
        ));
        let sub_h = ((ctx.height - 120.0) * 0.6).max(110.0);
        let ratio_h = ((ctx.height - 120.0) * 0.4).max(80.0);
        let width = ui.available_width();
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                ui.label("gradient norm at the latest probe");
                grad_bars(ui, &norms, &health, &names, sub_h);
            });
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.heatmap(ui, run, &names, sub_h);
            });
        });
        ui.label("update / weight ratio |Δw| / |w| per tensor (≈1e-3 is the usual healthy scale)");
        let ratios: Vec<f32> = shown
            .iter()
            .map(|&i| probe.params.get(i).map_or(f32::NAN, |p| p.update_ratio))
            .collect();
        ratio_bars(ui, &ratios, &names, ratio_h);
        let _ = series::GRAD_NORM;
    }

    fn heatmap(&mut self, ui: &mut Ui, run: &ShownRun, names: &[String], height: f32) {
        ui.label("gradient norm: tensor (top = input) × step, log colour");
        self.heat
            .ui(ui, run, series::GRAD_NORM, names, "grad-heat", height);
    }
}

/// A value's bar height on the log axis: bars start at 1e-8 so that tiny values still show as
/// short bars; zero and non-finite values get none.
fn log_bar(v: f32) -> f64 {
    if v > 0.0 && v.is_finite() {
        (v as f64).log10() + 8.0
    } else {
        0.0
    }
}

/// The gradient norm of each tensor as a bar coloured by its health, with the vanishing line.
fn grad_bars(ui: &mut Ui, norms: &[f32], health: &[GradHealth], names: &[String], height: f32) {
    let bars: Vec<Bar> = norms
        .iter()
        .zip(health)
        .zip(names)
        .enumerate()
        .map(|(k, ((&g, &hl), name))| {
            let color = match hl {
                GradHealth::Normal => Color32::from_rgb(31, 119, 180),
                GradHealth::Vanishing => Color32::from_rgb(214, 39, 40),
                GradHealth::Exploding => Color32::from_rgb(255, 127, 14),
            };
            Bar::new(k as f64, log_bar(g))
                .base_offset(-8.0)
                .width(0.8)
                .fill(color)
                .name(format!("{name}: {}", sig(g as f64)))
        })
        .collect();
    Plot::new("grad-bars")
        .allow_scroll(false)
        .height(height)
        .y_axis_formatter(log_axis_label)
        .x_axis_label("tensor (input to output)")
        .allow_drag(false)
        .show(ui, |p| {
            p.bar_chart(BarChart::new("gradient norm", bars));
            p.hline(
                HLine::new("vanishing", (VANISHING as f64).log10())
                    .color(Color32::from_rgb(214, 39, 40)),
            );
        });
}

/// The update/weight ratio of each tensor, with the usual healthy scale 1e-3 marked.
fn ratio_bars(ui: &mut Ui, ratios: &[f32], names: &[String], height: f32) {
    let bars: Vec<Bar> = ratios
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            Bar::new(k as f64, log_bar(r))
                .base_offset(-8.0)
                .width(0.8)
                .fill(Color32::from_rgb(44, 160, 44))
                .name(format!("{}: {}", names[k], sig(r as f64)))
        })
        .collect();
    Plot::new("grad-ratio")
        .allow_scroll(false)
        .height(height)
        .y_axis_formatter(log_axis_label)
        .allow_drag(false)
        .show(ui, |p| {
            p.bar_chart(BarChart::new("update/weight", bars));
            p.hline(HLine::new("1e-3", -3.0).color(Color32::GRAY));
        });
}
