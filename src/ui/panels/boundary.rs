//! Decision boundary of a classifier on a 2-D dataset: the predicted class on a grid, with the
//! training points on top ([`crate::views::BoundaryOptions`]).

use super::{PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::views::BoundaryOptions;
use egui::Ui;

/// The boundary panel (no options).
#[derive(Default)]
pub struct BoundaryPanel {
    figures: PanelFigures,
}

impl BoundaryPanel {
    /// Draws the panel; on data it cannot apply to it is one line.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        if ctx
            .run
            .is_some_and(|r| r.history().latest_boundary.is_none())
        {
            empty_note(
                ui,
                "Shown for classifiers of 2-D data (spirals, circles, moons, xor, checkerboard).",
            );
            return;
        }
        caption(
            ui,
            "Predicted class over the input plane (normalised coordinates) with training points. \
             Watch the boundary bend into the data as training goes on.",
        );
        if ctx.run.is_none() {
            empty_note(ui, "No run yet.");
            return;
        }
        if self.figures.update(&BoundaryOptions, ctx).is_empty() {
            empty_note(ui, "The boundary record is malformed.");
            return;
        }
        self.figures.show(ui, "boundary", 1, ctx.height - 30.0);
    }
}
