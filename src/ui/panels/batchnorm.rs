//! BatchNorm: per BN layer, the running mean and running variance per channel over time (a band
//! of min/median/max across channels plus a few tracked channels), the current per-channel
//! values as bars, and γ and β. With evaluation sets, an overlay puts beside the running
//! statistics the mean and variance a chosen set actually produces at the layer (the network
//! trained on red digits expects red).

use super::{PanelCtx, empty_note, step_link};
use crate::metrics::{BN_TRACKED_CHANNELS, series};
use crate::numbers::sig;
use crate::ui::plot::{caption, hover_point, run_color};
use crate::ui::runs::ShownRun;
use egui::{Color32, ComboBox, Ui};
use egui_plot::{Bar, BarChart, FilledArea, Legend, Line, MarkerShape, Plot, Points};
use serde::{Deserialize, Serialize};

/// Display options of the BatchNorm panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchNormPanel {
    /// The BN layer shown (by name).
    pub layer: String,
    /// The evaluation set whose statistics at the layer are drawn over the running ones (by
    /// name; empty: none).
    pub overlay: String,
}

const MAX_POINTS: usize = 800;

impl BatchNormPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Running mean and variance per channel of one BN layer (band: min–max over channels, \
             line: median; dashed: tracked channels), and the latest per-channel values, γ and β; \
             without BatchNorm, the LayerNorm and GroupNorm layers' γ and β.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return;
        };
        let layout = &run.history().layout;
        if layout.batch_norms.is_empty() {
            if layout.affine_norms.is_empty() {
                empty_note(ui, "This network has no BatchNorm layer.");
            } else {
                self.affine_norm_ui(ui, run, ctx.height);
            }
            return;
        }
        if !layout.batch_norms.contains(&self.layer) {
            self.layer = layout.batch_norms[layout.batch_norms.len() / 2].clone();
        }
        ui.horizontal(|ui| {
            ui.label("BN layer:");
            ComboBox::from_id_salt("bn-layer")
                .selected_text(self.layer.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in &layout.batch_norms {
                        ui.selectable_value(&mut self.layer, l.clone(), l.as_str());
                    }
                });
            let k = layout
                .batch_norms
                .iter()
                .position(|l| *l == self.layer)
                .unwrap_or(0);
            ui.label(format!(
                "{} channels",
                layout.batch_norm_channels.get(k).copied().unwrap_or(0)
            ));
            overlay_picker(ui, &mut self.overlay, &layout.eval_sets);
        });
        let sub_h = ((ctx.height - 110.0) / 2.0).max(110.0);
        let width = ui.available_width();
        ui.horizontal(|ui| {
            for (title, names, ch, id) in [
                (
                    "running mean",
                    series::BN_MEAN,
                    series::BN_MEAN_CH,
                    "bn-mean",
                ),
                (
                    "running variance",
                    series::BN_VAR,
                    series::BN_VAR_CH,
                    "bn-var",
                ),
            ] {
                ui.vertical(|ui| {
                    ui.set_width(width * 0.5 - 6.0);
                    ui.label(title);
                    band_plot(ui, run, &self.layer, names, ch, id, sub_h);
                });
            }
        });
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.current_bars(ui, run, sub_h, false);
            });
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.current_bars(ui, run, sub_h, true);
            });
        });
    }

    fn current_bars(&self, ui: &mut Ui, run: &ShownRun, height: f32, affine: bool) {
        let h = run.history();
        let Some(probe) = &h.latest_probe else {
            return;
        };
        let Some(k) = h.layout.batch_norms.iter().position(|l| *l == self.layer) else {
            return;
        };
        let Some(b) = probe.batch_norms.get(k) else {
            return;
        };
        let (first, second, names) = if affine {
            (&b.gamma, &b.beta, ["γ", "β"])
        } else {
            (
                &b.running_mean,
                &b.running_var,
                ["running mean", "running var"],
            )
        };
        ui.label(if affine {
            format!("γ and β per channel at step {}", probe.step)
        } else {
            format!(
                "running mean and variance per channel at step {}",
                probe.step
            )
        });
        let overlay = if affine {
            None
        } else {
            self.overlay_of(run, k)
        };
        if let Some((step, _)) = &overlay {
            ui.label(format!(
                "diamonds: what \"{}\" produces at this layer (validation at step {step})",
                self.overlay
            ));
        }
        let id = if affine { "bn-affine" } else { "bn-now" };
        channel_bars(ui, id, (first, second), names, height, |p| {
            if let Some((_, m)) = &overlay {
                for (v, offset, what, c) in [(&m.mean, -0.2, "mean", 2), (&m.var, 0.2, "var", 3)] {
                    let pts: Vec<[f64; 2]> = v
                        .iter()
                        .enumerate()
                        .map(|(c, &x)| [c as f64 + offset, x as f64])
                        .collect();
                    p.points(
                        Points::new(format!("{}: {what}", self.overlay), pts)
                            .shape(MarkerShape::Diamond)
                            .filled(true)
                            .radius(4.0)
                            .color(run_color(c)),
                    );
                }
            }
        });
    }

    /// A network with LayerNorm or GroupNorm and no BatchNorm: no running statistics to draw,
    /// only each layer's γ and β per channel at the latest probe.
    fn affine_norm_ui(&mut self, ui: &mut Ui, run: &ShownRun, height: f32) {
        let h = run.history();
        let names = &h.layout.affine_norms;
        if !names.contains(&self.layer) {
            self.layer = names[names.len() / 2].clone();
        }
        ui.horizontal(|ui| {
            ui.label("LayerNorm / GroupNorm layer:");
            ComboBox::from_id_salt("affine-norm-layer")
                .selected_text(self.layer.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in names {
                        ui.selectable_value(&mut self.layer, l.clone(), l.as_str());
                    }
                });
        });
        ui.label(
            "These layers normalise each sample with its own statistics: they keep no running \
             mean or variance, so nothing from training is frozen into test time.",
        );
        let k = names.iter().position(|l| *l == self.layer).unwrap_or(0);
        let Some((probe, a)) = h
            .latest_probe
            .as_ref()
            .and_then(|p| Some((p.step, p.affine_norms.get(k)?)))
        else {
            empty_note(ui, "Waiting for the first probe…");
            return;
        };
        ui.label(format!("γ and β per channel at step {probe}"));
        channel_bars(
            ui,
            "affine-norm-now",
            (&a.gamma, &a.beta),
            ["γ", "β"],
            height.max(160.0) * 0.6,
            |_| {},
        );
    }

    /// The chosen evaluation set's statistics at BN layer `k`, with the step they were
    /// measured at, when the run has them.
    fn overlay_of(
        &self,
        run: &ShownRun,
        k: usize,
    ) -> Option<(u64, crate::metrics::ChannelMoments)> {
        let h = run.history();
        let set = h.layout.eval_sets.iter().position(|s| *s == self.overlay)?;
        let r = h.latest_set_bn.as_ref()?;
        Some((r.step, r.sets.get(set)?.get(k)?.clone()))
    }
}

/// The overlay's set: none, or one of the run's evaluation sets (hidden without any).
fn overlay_picker(ui: &mut Ui, overlay: &mut String, sets: &[String]) {
    if sets.is_empty() {
        return;
    }
    if !overlay.is_empty() && !sets.contains(overlay) {
        overlay.clear();
    }
    ui.label("overlay:");
    ComboBox::from_id_salt("bn-overlay")
        .selected_text(if overlay.is_empty() {
            "none"
        } else {
            overlay.as_str()
        })
        .show_ui(ui, |ui| {
            ui.selectable_value(overlay, String::new(), "none");
            for s in sets {
                ui.selectable_value(overlay, s.clone(), s.as_str());
            }
        })
        .response
        .on_hover_text(
            "What an evaluation set (other colours, shifted data) produces at this layer, per \
             channel, beside the running statistics the layer normalises with",
        );
}

fn band_plot(
    ui: &mut Ui,
    run: &ShownRun,
    layer: &str,
    names: [&str; 3],
    channel_prefix: &str,
    id: &str,
    height: f32,
) {
    let h = run.history();
    let lo = h.get(names[0], layer);
    let med = h.get(names[1], layer);
    let hi = h.get(names[2], layer);
    let (Some(lo), Some(med), Some(hi)) = (lo, med, hi) else {
        empty_note(ui, "Waiting for the first probe…");
        return;
    };
    // The band needs aligned x values, so it is thinned by taking every k-th probe rather than
    // by min/max decimation.
    let n = lo.len().min(hi.len());
    let stride = n.div_ceil(MAX_POINTS).max(1);
    let idx: Vec<usize> = (0..n)
        .step_by(stride)
        .chain((n > 0).then(|| n - 1))
        .collect();
    let xs: Vec<f64> = idx.iter().map(|&i| lo.steps[i] as f64).collect();
    let ymin: Vec<f64> = idx.iter().map(|&i| lo.values[i] as f64).collect();
    let ymax: Vec<f64> = idx.iter().map(|&i| hi.values[i] as f64).collect();
    let median = med.decimated(MAX_POINTS);
    // No legend: it would cover the band; the caption says what is what and hovering names
    // each line.
    Plot::new(id)
        .allow_scroll(false)
        .height(height)
        .link_axis(step_link(), [true, false])
        .link_cursor(step_link(), [true, false])
        .label_formatter(|pos| {
            let (name, p) = hover_point(pos);
            Some(format!("{name}\nstep {:.0}\n{}", p.x, sig(p.y)))
        })
        .show(ui, |p| {
            p.add(
                FilledArea::new("min–max over channels", &xs, &ymin, &ymax)
                    .fill_color(Color32::from_rgba_unmultiplied(31, 119, 180, 50)),
            );
            p.line(
                Line::new("median", median)
                    .color(Color32::from_rgb(31, 119, 180))
                    .width(2.0),
            );
            for c in 0..BN_TRACKED_CHANNELS {
                if let Some(s) = h.get(&format!("{channel_prefix}{c}"), layer) {
                    p.line(
                        Line::new(format!("channel {c}"), s.decimated(MAX_POINTS))
                            .color(run_color(c + 1))
                            .style(egui_plot::LineStyle::dashed_loose()),
                    );
                }
            }
        });
}

/// Two per-channel vectors as side-by-side bars, each bar's hover naming its channel and value;
/// `extra` draws more into the same plot (the overlay).
fn channel_bars(
    ui: &mut Ui,
    id: &str,
    (first, second): (&[f32], &[f32]),
    names: [&str; 2],
    height: f32,
    extra: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) {
    let bars = |v: &[f32], offset: f64, color: Color32| -> Vec<Bar> {
        v.iter()
            .enumerate()
            .map(|(c, &x)| {
                Bar::new(c as f64 + offset, x as f64)
                    .width(0.4)
                    .fill(color)
                    .name(format!("channel {c}: {}", sig(x as f64)))
            })
            .collect()
    };
    Plot::new(id)
        .allow_scroll(false)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("channel")
        .label_formatter(|pos| {
            let (name, p) = hover_point(pos);
            Some(format!("{name}\nchannel {:.0}: {}", p.x.round(), sig(p.y)))
        })
        .show(ui, |p| {
            p.bar_chart(
                BarChart::new(names[0], bars(first, -0.2, run_color(0))).color(run_color(0)),
            );
            p.bar_chart(
                BarChart::new(names[1], bars(second, 0.2, run_color(1))).color(run_color(1)),
            );
            extra(p);
        });
}
