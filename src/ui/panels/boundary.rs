//! Decision boundary of a classifier on a 2-D dataset: the predicted class on a grid, with the
//! training points on top ([`crate::views::BoundaryOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::BoundaryOptions;
use egui::Ui;

impl PanelControls for BoundaryOptions {
    /// On data it cannot apply to, the panel is one line.
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        if ctx
            .run
            .is_some_and(|r| r.history().latest_boundary.is_none())
        {
            empty_note(
                ui,
                "Shown for classifiers of 2-D data (spirals, circles, moons, xor, checkerboard).",
            );
            return None;
        }
        caption(
            ui,
            "Predicted class over the input plane (normalised coordinates) with training points. \
             Watch the boundary bend into the data as training goes on.",
        );
        if ctx.run.is_none() {
            empty_note(ui, "No run yet.");
            return None;
        }
        if figures.update(self, ctx).is_empty() {
            empty_note(ui, "The boundary record is malformed.");
            return None;
        }
        figures.show(ui, "boundary", 1, ctx.height - 30.0);
        None
    }
}
