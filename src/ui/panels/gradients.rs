//! Gradient flow: per weight tensor the gradient norm at the latest probe, input to output, on
//! a log axis with vanishing and exploding tensors in their own colours, a tensor × step
//! heatmap, and the update/weight ratio ([`crate::views::GradientOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::GradientOptions;
use egui::Ui;

pub use crate::views::{EXPLODING, GradHealth, VANISHING, classify};

impl PanelControls for GradientOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        caption(
            ui,
            "Gradient norm per weight tensor, input to output (log). Red: vanishing (< 1e-6), \
             orange: exploding (> 1e3 or 100× the median). Residual nets keep early layers' bars tall.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return None;
        };
        if run.history().latest_probe.is_none() {
            empty_note(ui, "Waiting for the first probe…");
            return None;
        }
        ui.checkbox(&mut self.all_tensors, "also biases and BN γ/β");
        figures.update(self, ctx);
        figures.show(ui, "grad", 2, ctx.height - 60.0);
        None
    }
}
