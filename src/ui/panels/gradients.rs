//! Gradient flow: per weight tensor the gradient norm at the latest probe, input to output, on
//! a log axis with vanishing and exploding tensors in their own colours, a tensor × step
//! heatmap, and the update/weight ratio ([`crate::views::GradientOptions`]).

use super::{PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::views::GradientOptions;
use egui::Ui;
use serde::{Deserialize, Serialize};

pub use crate::views::{EXPLODING, GradHealth, VANISHING, classify};

/// The gradient panel: its options and its figures.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GradientsPanel {
    /// What the figures show.
    pub options: GradientOptions,
    #[serde(skip)]
    figures: PanelFigures,
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
        if run.history().latest_probe.is_none() {
            empty_note(ui, "Waiting for the first probe…");
            return;
        }
        ui.checkbox(&mut self.options.all_tensors, "also biases and BN γ/β");
        self.figures.update(&self.options, ctx);
        self.figures.show(ui, "grad", 2, ctx.height - 60.0);
    }
}
