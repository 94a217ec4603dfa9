//! Loss & accuracy: training loss (raw and smoothed), validation loss and accuracies, one more
//! curve per evaluation set (other colours, shifted data) when the run has them
//! ([`crate::views::LossOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::LossOptions;
use egui::Ui;

impl PanelControls for LossOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
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
            return None;
        };
        ui.label(summary(run));
        if figures.update(self, ctx).is_empty() {
            empty_note(ui, "Waiting for the first step…");
            return None;
        }
        figures.show(ui, "loss", 1, ctx.height - 60.0);
        None
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
