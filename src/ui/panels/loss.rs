//! Loss & accuracy: training loss (raw and smoothed), validation loss and accuracies, one more
//! curve per evaluation set (other colours, shifted data) when the run has them
//! ([`crate::views::LossOptions`]).

use super::{PanelCtx, PanelFigures, empty_note};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::caption;
use crate::views::LossOptions;
use egui::Ui;
use serde::{Deserialize, Serialize};

/// The loss panel: its options and its figures.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LossPanel {
    /// What the figures show.
    pub options: LossOptions,
    #[serde(skip)]
    figures: PanelFigures,
}

impl LossPanel {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) {
        caption(
            ui,
            "Training loss per step (faint: raw, bold: smoothed) and validation loss. \
             A deep plain net's curve stalls high; its residual twin's falls.",
        );
        let o = &mut self.options;
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut o.smoothing, 0.0..=0.99).text("smoothing"));
            ui.checkbox(&mut o.log_y, "log y");
            ui.checkbox(&mut o.show_raw, "raw");
        });
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet: press Train, or open a run file.");
            return;
        };
        ui.label(summary(run));
        if self.figures.update(&self.options, ctx).is_empty() {
            empty_note(ui, "Waiting for the first step…");
            return;
        }
        self.figures.show(ui, "loss", 1, ctx.height - 60.0);
    }

    /// The figures drawn last (tests and the export read them).
    pub fn figures(&self) -> &[crate::figure::Figure] {
        self.figures.figures()
    }
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
