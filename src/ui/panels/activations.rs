//! Activations: per-layer output std and mean over training, a layer × step heatmap of the std,
//! the histogram of one layer at the latest probe, and the dead-ReLU fraction per layer.

use super::{
    LayerHeatmap, PanelCtx, empty_note, history_key, names_key, shown_layers, step_link, step_plot,
};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::{MinMaxLine, caption, depth_color, log10_points};
use crate::ui::runs::ShownRun;
use egui::{Color32, ComboBox, Ui};
use egui_plot::{Bar, BarChart, Line, Plot, PlotPoint};
use serde::{Deserialize, Serialize};

/// Which statistic the per-layer lines show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStat {
    /// Standard deviation (log axis).
    Std,
    /// Mean.
    Mean,
    /// How far a token layer's tokens are from rank one (log axis; token layers only).
    TokenRank,
}

/// Display options of the activations panel.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ActivationsPanel {
    /// Statistic of the per-layer lines.
    pub stat: LineStat,
    /// Only the activation layers (else every layer: linear, BN, activation...).
    pub only_activations: bool,
    /// The layer whose histogram is shown (by name).
    pub histogram_layer: String,
    #[serde(skip)]
    heat: LayerHeatmap,
    #[serde(skip)]
    lines_cache: Option<(u64, Vec<CachedLine>)>,
    #[serde(skip)]
    line_set: u64,
    #[serde(skip)]
    decimators: Vec<MinMaxLine>,
}

impl Default for ActivationsPanel {
    fn default() -> Self {
        Self {
            stat: LineStat::Std,
            only_activations: true,
            histogram_layer: String::new(),
            heat: LayerHeatmap::default(),
            lines_cache: None,
            line_set: 0,
            decimators: Vec::new(),
        }
    }
}

/// A decimated line of the per-layer plot: depth index, layer name, points.
type CachedLine = (usize, String, Vec<PlotPoint>);

/// Points per line at most; with many layers the budget is shared so a frame stays cheap.
const POINT_BUDGET: usize = 12_000;

impl ActivationsPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Per-layer output statistics at probe steps, input (dark) to output (yellow). \
             Without BN or skips the std drifts with depth; dead ReLUs show as a high fraction ≤ 0.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return;
        };
        let layout = &run.history().layout;
        if layout.layers.is_empty() || run.history().latest_probe.is_none() {
            empty_note(ui, "Waiting for the first probe…");
            return;
        }
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.stat, LineStat::Std, "std");
            ui.selectable_value(&mut self.stat, LineStat::Mean, "mean");
            if !layout.token_layers.is_empty() {
                ui.selectable_value(&mut self.stat, LineStat::TokenRank, "token rank")
                    .on_hover_text(
                        "‖X − 1·x̄ᵀ‖/‖X‖ of each token layer: 0 when every token is the same \
                         vector (rank collapse, Dong et al. 2021)",
                    );
            }
            ui.checkbox(&mut self.only_activations, "activation layers only");
        });
        let layers = shown_layers(run, self.only_activations);
        let names: Vec<String> = layers.iter().map(|&i| layout.layers[i].clone()).collect();
        let sub_h = ((ctx.height - 110.0) / 2.0).max(110.0);
        let width = ui.available_width();
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.lines(ui, run, &names, sub_h);
            });
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.heatmap(ui, run, &names, sub_h);
            });
        });
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.histogram(ui, run, sub_h);
            });
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                dead_fraction(ui, run, &layers, sub_h);
            });
        });
    }

    fn lines(&mut self, ui: &mut Ui, run: &ShownRun, names: &[String], height: f32) {
        let h = run.history();
        let (name, log) = match self.stat {
            LineStat::Std => (series::ACT_STD, true),
            LineStat::Mean => (series::ACT_MEAN, false),
            LineStat::TokenRank => (series::TOKEN_RESIDUAL, true),
        };
        let per_line = (POINT_BUDGET / names.len().max(1)).clamp(40, 1500);
        ui.label(match self.stat {
            LineStat::Std => "std (log) per layer over training",
            LineStat::Mean => "mean per layer over training",
            LineStat::TokenRank => "token rank ‖X − 1·x̄ᵀ‖/‖X‖ (log) per token layer over training",
        });
        let n = names.len();
        let plot = step_plot("act-lines", log, "")
            .height(height)
            .link_cursor(step_link(), [true, false]);
        // Decimated incrementally (only new probes are read) and rebuilt once per new probe,
        // not once per frame.
        let set_key = names_key(run, names) ^ (log as u64);
        if self.line_set != set_key || self.decimators.len() != names.len() {
            self.line_set = set_key;
            self.decimators = vec![MinMaxLine::default(); names.len()];
            self.lines_cache = None;
        }
        let key = history_key(run) ^ set_key;
        if self.lines_cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let mut lines = Vec::with_capacity(names.len());
            for (i, (layer, dec)) in names.iter().zip(&mut self.decimators).enumerate() {
                let Some(series) = h.get(name, layer) else {
                    continue;
                };
                dec.update(series, per_line);
                let pts = dec.points();
                let pts = if log { log10_points(&pts) } else { pts };
                let pts = pts.iter().map(|p| PlotPoint::new(p[0], p[1])).collect();
                lines.push((i, layer.clone(), pts));
            }
            self.lines_cache = Some((key, lines));
        }
        let Some((_, lines)) = &self.lines_cache else {
            return;
        };
        plot.show(ui, |p| {
            for (i, layer, pts) in lines {
                p.line(
                    Line::new(layer.as_str(), pts.as_slice())
                        .color(depth_color(*i, n))
                        .width(1.2),
                );
            }
        });
    }

    fn heatmap(&mut self, ui: &mut Ui, run: &ShownRun, names: &[String], height: f32) {
        ui.label("std heatmap: layer (top = input) × step, log colour");
        self.heat
            .ui(ui, run, series::ACT_STD, names, "act-heat", height);
    }

    fn histogram(&mut self, ui: &mut Ui, run: &ShownRun, height: f32) {
        let h = run.history();
        let Some(probe) = &h.latest_probe else {
            return;
        };
        let layers = &h.layout.layers;
        if !layers.contains(&self.histogram_layer) {
            // The middle activation layer: deep enough to show what depth does.
            let acts = shown_layers(run, true);
            self.histogram_layer = acts
                .get(acts.len() / 2)
                .map(|&i| layers[i].clone())
                .unwrap_or_default();
        }
        ui.horizontal(|ui| {
            ui.label(format!("histogram at step {}:", probe.step));
            ComboBox::from_id_salt("hist-layer")
                .selected_text(self.histogram_layer.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in layers {
                        ui.selectable_value(&mut self.histogram_layer, l.clone(), l.as_str());
                    }
                });
        });
        let Some(i) = layers.iter().position(|l| *l == self.histogram_layer) else {
            return;
        };
        let Some(a) = probe.layers.get(i) else {
            return;
        };
        let bins = a.hist.len().max(1);
        let w = if a.max > a.min {
            (a.max - a.min) as f64 / bins as f64
        } else {
            1.0
        };
        let bars: Vec<Bar> = a
            .hist
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                let lo = a.min as f64 + w * b as f64;
                Bar::new(lo + w / 2.0, c as f64)
                    .width(w * 0.95)
                    .name(format!("[{}, {})", sig(lo), sig(lo + w)))
            })
            .collect();
        Plot::new("act-hist")
            .allow_scroll(false)
            .height(height - 24.0)
            .allow_zoom(false)
            .allow_drag(false)
            .show(ui, |p| {
                p.bar_chart(BarChart::new("count", bars).color(Color32::from_rgb(31, 119, 180)));
            });
        ui.label(format!(
            "mean {}  std {}  min {}  max {}",
            sig(a.mean as f64),
            sig(a.std as f64),
            sig(a.min as f64),
            sig(a.max as f64)
        ));
    }
}

fn dead_fraction(ui: &mut Ui, run: &ShownRun, layers: &[usize], height: f32) {
    let h = run.history();
    let Some(probe) = &h.latest_probe else {
        return;
    };
    ui.label("fraction of outputs ≤ 0 per layer (dead ReLUs)");
    let n = layers.len();
    let bars: Vec<Bar> = layers
        .iter()
        .enumerate()
        .filter_map(|(k, &i)| {
            let a = probe.layers.get(i)?;
            Some(
                Bar::new(k as f64, a.frac_nonpos as f64)
                    .width(0.8)
                    .fill(depth_color(k, n))
                    .name(h.layout.layers[i].as_str()),
            )
        })
        .collect();
    Plot::new("act-dead")
        .allow_scroll(false)
        .height(height)
        .include_y(0.0)
        .include_y(1.0)
        .allow_zoom(false)
        .allow_drag(false)
        .x_axis_label("layer (input to output)")
        .show(ui, |p| p.bar_chart(BarChart::new("fraction ≤ 0", bars)));
}
