//! Attention: one self-attention layer's attention at the latest probe (one head or the mean of
//! its heads, tokens × tokens, averaged over the probe batch), and each attention layer's mean
//! attention entropy over training beside ln(tokens) ([`crate::views::AttentionOptions`]).

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::ui::plot::caption;
use crate::ui::runs::RunAction;
use crate::views::AttentionOptions;
use egui::{ComboBox, Ui};

impl PanelControls for AttentionOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        caption(
            ui,
            "Where each token looks, at the latest probe (row: the query token, column: the token \
             it attends to; averaged over the probe batch), and each attention layer's entropy \
             over training. Attention that averages every token (entropy near ln(tokens)) without \
             a skip around it collapses the tokens into one (Dong et al. 2021).",
        );
        let Some(run) = ctx.run else {
            empty_note(ui, "No run yet.");
            return None;
        };
        let layout = &run.history().layout;
        if layout.attention.is_empty() {
            empty_note(ui, "This network has no self-attention layer.");
            return None;
        }
        if run.history().latest_probe.is_none() {
            empty_note(ui, "Waiting for the first probe…");
            return None;
        }
        pick(self, ui, &layout.attention, &layout.attention_shape);
        if figures.update(self, ctx).is_empty() {
            empty_note(ui, "This probe recorded no attention.");
            return None;
        }
        figures.show(ui, "attn", 2, ctx.height - 50.0);
        None
    }
}

/// The layer and head pickers.
fn pick(o: &mut AttentionOptions, ui: &mut Ui, layers: &[String], shapes: &[[usize; 2]]) {
    let k = o.layer_index(layers);
    let heads = shapes.get(k).map_or(1, |s| s[0]);
    if o.head.is_some_and(|h| h >= heads) {
        o.head = None;
    }
    ui.horizontal(|ui| {
        ComboBox::from_id_salt("attn-layer")
            .selected_text(layers[k].as_str())
            .height(300.0)
            .show_ui(ui, |ui| {
                for l in layers {
                    ui.selectable_value(&mut o.layer, l.clone(), l.as_str());
                }
            });
        let label =
            |h: Option<usize>| h.map_or("mean of heads".to_string(), |h| format!("head {}", h + 1));
        ComboBox::from_id_salt("attn-head")
            .selected_text(label(o.head))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut o.head, None, label(None));
                for h in 0..heads {
                    ui.selectable_value(&mut o.head, Some(h), label(Some(h)));
                }
            });
    });
}
