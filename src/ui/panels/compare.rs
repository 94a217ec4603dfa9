//! Compare: overlay any number of runs (the live one, saved ones, opened files): loss curves,
//! per-layer gradient norm and activation std versus depth; a legend; hide or remove runs.

use super::{PanelCtx, empty_note, shown_layers, step_plot};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::panels::gradients::shown_tensors;
use crate::ui::plot::{caption, ema, hover_point, log_axis_label, log10_points, run_color};
use crate::ui::runs::ShownRun;
use egui::Ui;
use egui_plot::{Line, Plot, Points};
use serde::{Deserialize, Serialize};

/// What the user asked for in the Compare panel.
#[derive(Debug, PartialEq)]
pub enum CompareAction {
    /// Nothing.
    None,
    /// Show or hide a run.
    Toggle(u64),
    /// Remove a run from the lab (it stays on disk).
    Remove(u64),
    /// Show this run in the other panels.
    Show(u64),
    /// Save this run.
    Save(u64),
}

/// Display options of the Compare panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComparePanel {
    /// EMA weight of the loss curves.
    pub smoothing: f64,
    /// Loss on a log axis.
    pub log_y: bool,
}

impl Default for ComparePanel {
    fn default() -> Self {
        Self {
            smoothing: 0.8,
            log_y: true,
        }
    }
}

/// Values of one per-layer statistic at a run's latest probe, against relative depth in [0, 1]
/// (so networks of different depth line up).
pub fn versus_depth(run: &ShownRun, gradient: bool) -> Vec<[f64; 2]> {
    let h = run.history();
    let Some(p) = &h.latest_probe else {
        return Vec::new();
    };
    let values: Vec<f32> = if gradient {
        shown_tensors(run, false)
            .into_iter()
            .filter_map(|i| p.params.get(i).map(|s| s.grad_norm))
            .collect()
    } else {
        shown_layers(run, true)
            .into_iter()
            .filter_map(|i| p.layers.get(i).map(|s| s.std))
            .collect()
    };
    let n = values.len();
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| [i as f64 / (n.max(2) - 1) as f64, v as f64])
        .collect()
}

impl ComparePanel {
    /// Draws the panel; returns what the user asked for.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) -> CompareAction {
        caption(
            ui,
            "Runs overlaid (the list is the legend; hover a line for its run): training loss, \
             gradient norm and activation std against relative depth (0 = input, 1 = output) at \
             each run's latest probe.",
        );
        if ctx.runs.is_empty() {
            empty_note(ui, "Train or open runs to compare them.");
            return CompareAction::None;
        }
        let action = run_list(ui, ctx);
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut self.smoothing, 0.0..=0.99).text("smoothing"));
            ui.checkbox(&mut self.log_y, "log y");
        });
        let visible: Vec<&ShownRun> = ctx.runs.iter().filter(|r| r.compare).collect();
        let sub_h = ((ctx.height - 80.0 - 22.0 * ctx.runs.len() as f32) / 2.0).max(110.0);
        let log_y = self.log_y;
        let loss = step_plot("compare-loss", log_y, "loss")
            .height(sub_h)
            .x_axis_label("step");
        loss.show(ui, |p| {
            for r in &visible {
                if let Some(s) = r.history().get(series::LOSS, "") {
                    let pts = ema(&s.decimated(1500), self.smoothing);
                    let pts = if log_y { log10_points(&pts) } else { pts };
                    p.line(
                        Line::new(r.file.name.as_str(), pts)
                            .color(run_color(r.color))
                            .width(1.8),
                    );
                }
            }
        });
        depth_plots(ui, &visible, sub_h);
        action
    }
}

/// The runs as a list that is also the legend: show in Compare, colour, show in the panels, last
/// loss, Save, Remove.
fn run_list(ui: &mut Ui, ctx: &PanelCtx) -> CompareAction {
    let mut action = CompareAction::None;
    egui::Grid::new("compare-runs")
        .striped(true)
        .show(ui, |ui| {
            for r in ctx.runs {
                let mut on = r.compare;
                if ui
                    .checkbox(&mut on, "")
                    .on_hover_text("show in Compare")
                    .changed()
                {
                    action = CompareAction::Toggle(r.id);
                }
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, run_color(r.color));
                let shown = ctx.run.is_some_and(|s| s.id == r.id);
                if ui.selectable_label(shown, r.label()).clicked() {
                    action = CompareAction::Show(r.id);
                }
                let last = r.history().get(series::LOSS, "").and_then(|s| s.last());
                ui.label(last.map_or("–".to_string(), |l| format!("loss {}", sig(l as f64))));
                if r.dirty && ui.button("Save").clicked() {
                    action = CompareAction::Save(r.id);
                }
                if ui
                    .button("Remove")
                    .on_hover_text("remove from the lab (an unsaved run is saved first)")
                    .clicked()
                {
                    action = CompareAction::Remove(r.id);
                }
                ui.end_row();
            }
        });
    action
}

/// Gradient norm and activation std against relative depth, side by side, one line per run.
fn depth_plots(ui: &mut Ui, visible: &[&ShownRun], sub_h: f32) {
    let width = ui.available_width();
    ui.horizontal(|ui| {
        for (gradient, title, id) in [
            (true, "gradient norm vs depth", "compare-grad"),
            (false, "activation std vs depth", "compare-std"),
        ] {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                ui.label(title);
                Plot::new(id)
                    .allow_scroll(false)
                    .height(sub_h)
                    .y_axis_formatter(log_axis_label)
                    .x_axis_label("relative depth")
                    .label_formatter(|pos| {
                        let (name, p) = hover_point(pos);
                        Some(format!(
                            "{name}\ndepth {:.2}\n{}",
                            p.x,
                            sig(10f64.powf(p.y))
                        ))
                    })
                    .show(ui, |p| {
                        for r in visible {
                            let pts = log10_points(&versus_depth(r, gradient));
                            p.line(
                                Line::new(r.file.name.as_str(), pts.clone())
                                    .color(run_color(r.color)),
                            );
                            p.points(
                                Points::new(r.file.name.as_str(), pts)
                                    .color(run_color(r.color))
                                    .radius(2.0),
                            );
                        }
                    });
            });
        }
    });
}
