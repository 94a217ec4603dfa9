//! Compare: overlay any number of runs (the live one, saved ones, opened files): loss curves,
//! per-layer gradient norm and activation std versus depth; a legend; hide or remove runs.

use super::{PanelCtx, PanelFigures, empty_note};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::{caption, run_color};
use crate::views::CompareOptions;
use egui::Ui;
use serde::{Deserialize, Serialize};

/// What the user asked for in the Compare panel.
#[derive(Debug, PartialEq)]
pub enum CompareAction {
    /// Nothing.
    None,
    /// Show or hide a run.
    Toggle(u64),
    /// Remove a run from the lab (it stays on disk).
    Remove(u64),
    /// Show this run in the other panels.
    Show(u64),
    /// Save this run.
    Save(u64),
    /// Drop a run no file holds, without saving it.
    Discard(u64),
}

/// The Compare panel: its options and its figures.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComparePanel {
    /// What the figures show.
    pub options: CompareOptions,
    #[serde(skip)]
    figures: PanelFigures,
}

impl ComparePanel {
    /// Draws the panel; returns what the user asked for.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) -> CompareAction {
        caption(
            ui,
            "Runs overlaid (the list is the legend; hover a line for its run): training loss, \
             gradient norm and activation std against relative depth (0 = input, 1 = output) at \
             each run's latest probe.",
        );
        if ctx.runs.is_empty() {
            empty_note(ui, "Train or open runs to compare them.");
            return CompareAction::None;
        }
        let action = run_list(ui, ctx);
        let o = &mut self.options;
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut o.smoothing, 0.0..=0.99).text("smoothing"));
            ui.checkbox(&mut o.log_y, "log y");
        });
        self.figures.update(&self.options, ctx);
        let height = ctx.height - 80.0 - 22.0 * ctx.runs.len() as f32;
        self.figures.show(ui, "compare", 2, height.max(240.0));
        action
    }
}

/// The runs as a list that is also the legend: show in Compare, colour, show in the panels, last
/// loss, Save, Remove.
fn run_list(ui: &mut Ui, ctx: &PanelCtx) -> CompareAction {
    let mut action = CompareAction::None;
    egui::Grid::new("compare-runs")
        .striped(true)
        .show(ui, |ui| {
            for r in ctx.runs {
                let mut on = r.compare;
                if ui
                    .checkbox(&mut on, "")
                    .on_hover_text("show in Compare")
                    .changed()
                {
                    action = CompareAction::Toggle(r.id);
                }
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, run_color(r.color));
                let shown = ctx.run.is_some_and(|s| s.id == r.id);
                if ui.selectable_label(shown, r.label()).clicked() {
                    action = CompareAction::Show(r.id);
                }
                let last = r.history().get(series::LOSS, "").and_then(|s| s.last());
                ui.label(last.map_or("–".to_string(), |l| format!("loss {}", sig(l as f64))));
                if r.dirty && ui.button("Save").clicked() {
                    action = CompareAction::Save(r.id);
                }
                let scratch = r.path.is_none() && ctx.training != Some(r.id);
                if scratch
                    && ui
                        .button("Discard")
                        .on_hover_text("drop this run without saving it: it leaves no file")
                        .clicked()
                {
                    action = CompareAction::Discard(r.id);
                }
                if ui
                    .button("Remove")
                    .on_hover_text("remove from the lab (an unsaved run is saved first)")
                    .clicked()
                {
                    action = CompareAction::Remove(r.id);
                }
                ui.end_row();
            }
        });
    action
}
