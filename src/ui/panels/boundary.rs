//! Decision boundary of a classifier on a 2-D dataset: the predicted class on a grid, with the
//! training points on top. The worker recomputes it every few probes.

use super::{PanelCtx, empty_note};
use crate::ui::plot::{caption, run_color};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Ui};
use egui_plot::{Plot, PlotImage, PlotPoint, Points};

/// The boundary panel (no persisted options).
#[derive(Default)]
pub struct BoundaryPanel {
    texture: Option<(u64, TextureHandle)>,
}

fn class_color(c: u8, alpha: u8) -> Color32 {
    let base = run_color(c as usize);
    Color32::from_rgba_unmultiplied(base.r(), base.g(), base.b(), alpha)
}

impl BoundaryPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Predicted class over the input plane (normalised coordinates) with training points. \
             Watch the boundary bend into the data as training goes on.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return;
        };
        let Some(b) = &run.history().latest_boundary else {
            empty_note(
                ui,
                "Shown for classifiers of 2-D data (spirals, circles, moons, xor, checkerboard).",
            );
            return;
        };
        let n = b.resolution;
        if n == 0 || b.classes.len() != n * n {
            empty_note(ui, "The boundary record is malformed.");
            return;
        }
        let key = run.id.wrapping_mul(1_000_003) ^ b.step;
        if self.texture.as_ref().is_none_or(|(k, _)| *k != key) {
            // Row 0 of the record is y_min, but row 0 of an image is its top: flip.
            let mut pixels = Vec::with_capacity(n * n);
            for j in (0..n).rev() {
                for i in 0..n {
                    pixels.push(class_color(b.classes[j * n + i], 90));
                }
            }
            let image = ColorImage::new([n, n], pixels);
            let tex = ui
                .ctx()
                .load_texture("boundary", image, TextureOptions::LINEAR);
            self.texture = Some((key, tex));
        }
        let Some((_, tex)) = &self.texture else {
            return;
        };
        ui.label(format!("step {}", b.step));
        let (w, h) = (b.x_range[1] - b.x_range[0], b.y_range[1] - b.y_range[0]);
        let center = PlotPoint::new(
            (b.x_range[0] + w / 2.0) as f64,
            (b.y_range[0] + h / 2.0) as f64,
        );
        let classes = b.labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        Plot::new("boundary")
            .allow_scroll(false)
            .height(ctx.height - 40.0)
            .data_aspect(1.0)
            .show(ui, |p| {
                p.image(PlotImage::new("prediction", tex.id(), center, [w, h]));
                for c in 0..classes {
                    let pts: Vec<[f64; 2]> = b
                        .points
                        .iter()
                        .zip(&b.labels)
                        .filter(|(_, l)| **l as usize == c)
                        .map(|(p, _)| [p[0] as f64, p[1] as f64])
                        .collect();
                    p.points(
                        Points::new(format!("class {c}"), pts)
                            .color(class_color(c as u8, 255))
                            .radius(2.0),
                    );
                }
            });
    }
}
