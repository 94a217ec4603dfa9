//! Normalisation layers: a BatchNorm layer's running mean and variance over time, its latest
//! per-channel values beside what an evaluation set produces there (the network trained on red
//! digits expects red), γ and β; without BatchNorm, LayerNorm's and GroupNorm's γ and β
//! ([`crate::views::NormOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::NormOptions;
use crate::views::norms::pick;
use egui::{ComboBox, Ui};

impl PanelControls for NormOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        caption(
            ui,
            "Running mean and variance per channel of one BN layer (band: min to max over \
             channels, bold: median, dashed: tracked channels), and the latest per-channel values, \
             γ and β; without BatchNorm, the LayerNorm and GroupNorm layers' γ and β.",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return None;
        };
        let layout = &run.history().layout;
        let bn = !layout.batch_norms.is_empty();
        let names = if bn {
            &layout.batch_norms
        } else {
            &layout.affine_norms
        };
        if names.is_empty() {
            empty_note(ui, "This network has no normalisation layer.");
            return None;
        }
        let o = &mut *self;
        ui.horizontal_wrapped(|ui| {
            ui.label(if bn {
                "BN layer:"
            } else {
                "LayerNorm / GroupNorm layer:"
            });
            let shown = pick(&o.layer, names);
            ComboBox::from_id_salt("bn-layer")
                .selected_text(shown.as_str())
                .height(300.0)
                .show_ui(ui, |ui| {
                    for l in names {
                        ui.selectable_value(&mut o.layer, l.clone(), l.as_str());
                    }
                });
            if bn {
                let k = names.iter().position(|l| *l == shown).unwrap_or(0);
                let channels = layout.batch_norm_channels.get(k).copied().unwrap_or(0);
                ui.label(crate::numbers::count(channels, "channel"));
                overlay_picker(ui, &mut o.overlay, &layout.eval_sets);
            }
        });
        if !bn {
            ui.label(
                "These layers normalise each sample with its own statistics: they keep no \
                 running mean or variance, so nothing from training is frozen into test time.",
            );
        }
        if figures.update(self, ctx).is_empty() {
            empty_note(ui, "Waiting for the first probe…");
            return None;
        }
        figures.show(ui, "bn", 2, ctx.height - 80.0);
        None
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
