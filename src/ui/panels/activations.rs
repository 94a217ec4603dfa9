//! Activations: per-layer output std, mean or token rank over training, a layer × step heatmap
//! of the std, the histogram of one layer at the latest probe, and the fraction of outputs ≤ 0
//! per layer ([`crate::views::ActivationsOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::{ActivationsOptions, LineStat};
use egui::{ComboBox, Ui};

impl PanelControls for ActivationsOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        caption(
            ui,
            "Per-layer output statistics at probe steps, input (dark) to output (yellow). \
             Without BN or skips the std drifts with depth; dead ReLUs show as a high fraction ≤ 0.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return None;
        };
        let layout = &run.history().layout;
        if layout.layers.is_empty() || run.history().latest_probe.is_none() {
            empty_note(ui, "Waiting for the first probe…");
            return None;
        }
        let o = &mut *self;
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut o.stat, LineStat::Std, "std");
            ui.selectable_value(&mut o.stat, LineStat::Mean, "mean");
            if !layout.token_layers.is_empty() {
                ui.selectable_value(&mut o.stat, LineStat::TokenRank, "token rank")
                    .on_hover_text(
                        "‖X − mean token‖/‖X‖ of each token layer: 0 when every token is the same \
                         vector (rank collapse, Dong et al. 2021)",
                    );
            }
            ui.checkbox(&mut o.only_activations, "activation layers only");
            let shown = o.histogram_layer(&run.view());
            ui.label("histogram of");
            ComboBox::from_id_salt("hist-layer")
                .selected_text(shown.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in &layout.layers {
                        ui.selectable_value(&mut o.histogram_layer, l.clone(), l.as_str());
                    }
                });
        });
        figures.update(self, ctx);
        figures.show(ui, "act", 2, ctx.height - 70.0);
        None
    }
}
