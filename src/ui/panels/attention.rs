//! Attention: one self-attention layer's attention at the latest probe (one head or the mean of
//! its heads, tokens × tokens, averaged over the probe batch), and each attention layer's mean
//! attention entropy over training beside ln(tokens), the entropy of uniform attention.

use super::{PanelCtx, empty_note, step_link, step_plot};
use crate::metrics::{AttentionStats, series};
use crate::numbers::sig;
use crate::ui::plot::{HeatData, HeatTexture, caption, color_legend, depth_color, hover_point};
use crate::ui::runs::ShownRun;
use egui::{ComboBox, Ui};
use egui_plot::{Line, LineStyle, Plot, PlotImage, PlotPoint};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Display options of the attention panel.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentionPanel {
    /// The attention layer shown (by name; empty: the first).
    pub layer: String,
    /// The head shown; `None`: the mean over the heads.
    pub head: Option<usize>,
    #[serde(skip)]
    heat: HeatTexture,
    /// The shown matrix and the key it was made for: built once per probe, layer and head,
    /// not once per frame, and shared with the hover label.
    #[serde(skip)]
    matrix: Option<(u64, Arc<Vec<f32>>)>,
}

impl AttentionPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Where each token looks, at the latest probe (row: the query token, column: the token \
             it attends to; averaged over the probe batch), and each attention layer's entropy \
             over training. Attention that averages every token (entropy near ln(tokens)) without \
             a skip around it collapses the tokens into one (Dong et al. 2021).",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return;
        };
        let layout = &run.history().layout;
        if layout.attention.is_empty() {
            empty_note(ui, "This network has no self-attention layer.");
            return;
        }
        let Some(probe) = &run.history().latest_probe else {
            empty_note(ui, "Waiting for the first probe…");
            return;
        };
        let k = self.pick(ui, &layout.attention, &layout.attention_shape);
        let [heads, tokens] = layout.attention_shape[k];
        let Some(stats) = probe.attention.get(k) else {
            empty_note(ui, "This probe recorded no attention.");
            return;
        };
        let height = (ctx.height - 70.0).max(120.0);
        let width = ui.available_width();
        let key = run.id.wrapping_mul(31) ^ probe.step ^ ((k as u64) << 40);
        let key = key ^ self.head.map_or(u64::MAX, |h| h as u64);
        if self.matrix.as_ref().is_none_or(|(k, _)| *k != key) {
            let m = head_matrix(stats, heads, tokens, self.head);
            self.matrix = Some((key, Arc::new(m)));
        }
        let Some((_, matrix)) = self.matrix.clone() else {
            return;
        };
        if width < 600.0 {
            // A narrow panel: the map above the entropy lines, each half the height.
            let half = (height / 2.0 - 20.0).max(100.0);
            self.map(ui, (matrix, tokens), key, probe.step, half);
            entropy_lines(ui, run, tokens, half);
            return;
        }
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                self.map(ui, (matrix.clone(), tokens), key, probe.step, height);
            });
            ui.vertical(|ui| {
                ui.set_width(width * 0.5 - 6.0);
                entropy_lines(ui, run, tokens, height);
            });
        });
    }

    /// The layer and head pickers; returns the shown layer's index.
    fn pick(&mut self, ui: &mut Ui, layers: &[String], shapes: &[[usize; 2]]) -> usize {
        let k = layers.iter().position(|l| *l == self.layer).unwrap_or(0);
        self.layer = layers[k].clone();
        let heads = shapes.get(k).map_or(1, |s| s[0]);
        if self.head.is_some_and(|h| h >= heads) {
            self.head = None;
        }
        ui.horizontal(|ui| {
            ComboBox::from_id_salt("attn-layer")
                .selected_text(self.layer.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in layers {
                        ui.selectable_value(&mut self.layer, l.clone(), l.as_str());
                    }
                });
            let label = |h: Option<usize>| {
                h.map_or("mean of heads".to_string(), |h| format!("head {}", h + 1))
            };
            ComboBox::from_id_salt("attn-head")
                .selected_text(label(self.head))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.head, None, label(None));
                    for h in 0..heads {
                        ui.selectable_value(&mut self.head, Some(h), label(Some(h)));
                    }
                });
        });
        layers.iter().position(|l| *l == self.layer).unwrap_or(k)
    }

    /// The `tokens × tokens` map as a heatmap with its colour legend; hovering names the query,
    /// the key and the weight.
    fn map(
        &mut self,
        ui: &mut Ui,
        (m, n): (Arc<Vec<f32>>, usize),
        key: u64,
        step: u64,
        height: f32,
    ) {
        ui.label(format!(
            "attention at step {step} (rows: query, columns: key)"
        ));
        let tex = self.heat.get(ui.ctx(), "attention", key, || HeatData {
            values: m.as_ref().clone(),
            rows: n,
            cols: n,
        });
        let Some(tex) = tex.map(|t| t.id()) else {
            return;
        };
        let range = self.heat.range;
        ui.horizontal(|ui| {
            let side = (ui.available_width() - 64.0).min(height).max(80.0);
            let nf = n as f64;
            Plot::new("attention-map")
                .allow_scroll(false)
                .width(side)
                .height(side)
                .data_aspect(1.0)
                .show_grid(false)
                // A mark names the token whose cell starts there (rows count from the top).
                .x_axis_formatter(move |g, _| token_mark(g.value, nf))
                .y_axis_formatter(move |g, _| token_mark(nf - g.value, nf))
                .label_formatter(move |pos| Some(cell_label(&m, n, &hover_point(pos).1)))
                .show(ui, |p| {
                    let centre = PlotPoint::new(nf / 2.0, nf / 2.0);
                    p.image(PlotImage::new(
                        "attention",
                        tex,
                        centre,
                        [n as f32, n as f32],
                    ));
                });
            color_legend(ui, range, side);
        });
    }
}

/// The token index a grid mark at `v` starts, blank past the last token or off the grid.
fn token_mark(v: f64, n: f64) -> String {
    if v < 0.0 || v >= n || v.fract() != 0.0 {
        String::new()
    } else {
        format!("{v:.0}")
    }
}

/// The hover text of the cell under `p`: query (row, from the top), key (column), weight.
fn cell_label(values: &[f32], n: usize, p: &PlotPoint) -> String {
    let (j, i) = (p.x.floor(), (n as f64 - p.y).floor());
    if j < 0.0 || i < 0.0 || j >= n as f64 || i >= n as f64 {
        return String::new();
    }
    let (i, j) = (i as usize, j as usize);
    let w = values.get(i * n + j).copied().unwrap_or(f32::NAN);
    format!("query {i}, key {j}\nweight {}", sig(w as f64))
}

/// One head's `tokens × tokens` matrix, or the mean over the heads.
fn head_matrix(a: &AttentionStats, heads: usize, n: usize, head: Option<usize>) -> Vec<f32> {
    let nn = n * n;
    match head {
        Some(h) => a.weights.get(h * nn..(h + 1) * nn).unwrap_or(&[]).to_vec(),
        None => (0..nn)
            .map(|c| {
                (0..heads)
                    .filter_map(|h| a.weights.get(h * nn + c))
                    .sum::<f32>()
                    / heads.max(1) as f32
            })
            .collect(),
    }
}

/// Each attention layer's mean entropy over training, input (dark) to output (yellow), with
/// ln(tokens) dashed.
fn entropy_lines(ui: &mut Ui, run: &ShownRun, tokens: usize, height: f32) {
    ui.label("attention entropy per layer (nats); dashed: ln(tokens), uniform attention");
    let h = run.history();
    let layers = &h.layout.attention;
    let uniform = (tokens.max(1) as f64).ln();
    let weak = ui.visuals().weak_text_color();
    step_plot("attn-entropy", false, "entropy")
        .height(height)
        .link_cursor(step_link(), [true, false])
        .show(ui, |p| {
            let mut last_step = 1.0f64;
            for (i, name) in layers.iter().enumerate() {
                let Some(s) = h.get(series::ATTN_ENTROPY, name) else {
                    continue;
                };
                let pts: Vec<[f64; 2]> = s
                    .steps
                    .iter()
                    .zip(&s.values)
                    .map(|(&t, &v)| [t as f64, v as f64])
                    .collect();
                last_step = last_step.max(pts.last().map_or(1.0, |q| q[0]));
                p.line(Line::new(name.as_str(), pts).color(depth_color(i, layers.len())));
            }
            let flat = vec![[0.0, uniform], [last_step, uniform]];
            p.line(
                Line::new("ln(tokens)", flat)
                    .style(LineStyle::dashed_dense())
                    .color(weak),
            );
        });
}
