//! Loss & accuracy: training loss (raw and EMA-smoothed), validation loss, and accuracies, with
//! one more curve per evaluation set (other colours, shifted data) when the run has them.

use super::{PanelCtx, empty_note, step_link, step_plot};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::{caption, ema, hover_point, log10_points, run_color};
use egui::{Color32, Ui};
use egui_plot::{Legend, Line, Plot, Points};
use serde::{Deserialize, Serialize};

/// Display options of the loss panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossPanel {
    /// EMA weight in [0, 0.99].
    pub smoothing: f64,
    /// Loss on a log axis.
    pub log_y: bool,
    /// Show the raw training loss under the smoothed one.
    pub show_raw: bool,
}

impl Default for LossPanel {
    fn default() -> Self {
        Self {
            smoothing: 0.8,
            log_y: false,
            show_raw: true,
        }
    }
}

/// Points shown per curve at most (min/max decimation keeps spikes).
pub const MAX_POINTS: usize = 1500;

impl LossPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Training loss per step (faint: raw, bold: smoothed) and validation loss. \
             A deep plain net's curve stalls high; its residual twin's falls.",
        );
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut self.smoothing, 0.0..=0.99).text("smoothing"));
            ui.checkbox(&mut self.log_y, "log y");
            ui.checkbox(&mut self.show_raw, "raw");
        });
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet: press Train, or open a run file.");
            return;
        };
        let h = run.history();
        let curve = |name: &str| {
            h.get(name, "")
                .map(|s| s.decimated(MAX_POINTS))
                .unwrap_or_default()
        };
        let (loss, val_loss) = (curve(series::LOSS), curve(series::VAL_LOSS));
        let (acc, val_acc) = (curve(series::ACCURACY), curve(series::VAL_ACCURACY));
        let sets: Vec<EvalCurves> = h
            .layout
            .eval_sets
            .iter()
            .map(|name| {
                let of = |s: &str| {
                    h.get(s, name)
                        .map(|c| c.decimated(MAX_POINTS))
                        .unwrap_or_default()
                };
                EvalCurves {
                    name: name.clone(),
                    loss: of(series::VAL_LOSS),
                    accuracy: of(series::VAL_ACCURACY),
                }
            })
            .collect();
        ui.label(summary(run));
        if loss.is_empty() {
            empty_note(ui, "Waiting for the first step…");
            return;
        }
        let loss_h = (ctx.height * 0.62).max(120.0);
        self.loss_plot(ui, &loss, &val_loss, &sets, loss_h);
        if acc.iter().any(|p| p[1].is_finite()) {
            let height = (ctx.height - loss_h - 70.0).max(80.0);
            accuracy_plot(ui, &ema(&acc, self.smoothing), &val_acc, &sets, height);
        }
    }

    /// Training loss (raw and smoothed), validation loss and each evaluation set's loss
    /// against the step.
    fn loss_plot(
        &self,
        ui: &mut Ui,
        loss: &[[f64; 2]],
        val_loss: &[[f64; 2]],
        sets: &[EvalCurves],
        height: f32,
    ) {
        let smooth = ema(loss, self.smoothing);
        let tf = |p: Vec<[f64; 2]>| if self.log_y { log10_points(&p) } else { p };
        let plot = step_plot("loss-plot", self.log_y, "loss")
            .height(height)
            .legend(Legend::default())
            .link_cursor(step_link(), [true, false])
            .x_axis_label("step");
        plot.show(ui, |p| {
            if self.show_raw {
                p.line(
                    Line::new("train (raw)", tf(loss.to_vec()))
                        .color(Color32::from_rgba_unmultiplied(31, 119, 180, 70)),
                );
            }
            p.line(
                Line::new("train (smoothed)", tf(smooth))
                    .color(Color32::from_rgb(31, 119, 180))
                    .width(2.0),
            );
            if !val_loss.is_empty() {
                let v = tf(val_loss.to_vec());
                p.line(
                    Line::new("validation", v.clone())
                        .color(Color32::from_rgb(255, 127, 14))
                        .width(2.0),
                );
                p.points(
                    Points::new("validation", v)
                        .color(Color32::from_rgb(255, 127, 14))
                        .radius(2.5),
                );
            }
            for (k, set) in sets.iter().enumerate() {
                let v = tf(set.loss.clone());
                p.line(Line::new(set.name.as_str(), v.clone()).color(set_color(k)));
                p.points(
                    Points::new(set.name.as_str(), v)
                        .color(set_color(k))
                        .radius(2.0),
                );
            }
        });
    }
}

/// One evaluation set's validation curves.
struct EvalCurves {
    name: String,
    loss: Vec<[f64; 2]>,
    accuracy: Vec<[f64; 2]>,
}

/// The colour of the `k`-th evaluation set (after the run colours the panel's own curves use).
fn set_color(k: usize) -> Color32 {
    run_color(k + 3)
}

/// Training accuracy (already smoothed) and validation accuracy, its step axis linked to the
/// loss plot's.
fn accuracy_plot(
    ui: &mut Ui,
    smoothed: &[[f64; 2]],
    val_acc: &[[f64; 2]],
    sets: &[EvalCurves],
    height: f32,
) {
    Plot::new("accuracy-plot")
        .allow_scroll(false)
        .height(height)
        .legend(Legend::default())
        .link_axis(step_link(), [true, false])
        .link_cursor(step_link(), [true, false])
        .include_y(0.0)
        .include_y(1.0)
        .label_formatter(|pos| {
            let p = hover_point(pos).1;
            Some(format!("step {:.0}\naccuracy {:.2}%", p.x, 100.0 * p.y))
        })
        .show(ui, |p| {
            p.line(
                Line::new("train accuracy (smoothed)", smoothed.to_vec())
                    .color(Color32::from_rgb(44, 160, 44)),
            );
            if !val_acc.is_empty() {
                p.line(
                    Line::new("validation accuracy", val_acc.to_vec())
                        .color(Color32::from_rgb(214, 39, 40))
                        .width(2.0),
                );
            }
            for (k, set) in sets.iter().enumerate() {
                p.line(
                    Line::new(format!("{} accuracy", set.name), set.accuracy.clone())
                        .color(set_color(k))
                        .width(1.6),
                );
            }
        });
}

/// The latest values in words (also what screen readers and tests read).
pub fn summary(run: &crate::ui::runs::ShownRun) -> String {
    let h = run.history();
    let last = |name: &str| h.get(name, "").and_then(|s| s.last());
    let mut parts = vec![format!("step {}", h.last_step)];
    if let Some(l) = last(series::LOSS) {
        parts.push(format!("train loss {}", sig(l as f64)));
    }
    if let Some(l) = last(series::VAL_LOSS) {
        parts.push(format!("validation loss {}", sig(l as f64)));
    }
    if let Some(a) = last(series::VAL_ACCURACY).filter(|a| a.is_finite()) {
        parts.push(format!("validation accuracy {:.1}%", 100.0 * a));
    }
    for name in &h.layout.eval_sets {
        let a = h.get(series::VAL_ACCURACY, name).and_then(|s| s.last());
        if let Some(a) = a.filter(|a| a.is_finite()) {
            parts.push(format!("{name} {:.1}%", 100.0 * a));
        }
    }
    parts.join(" · ")
}
