//! Compare: overlay any number of runs (the live one, saved ones, opened files): loss curves,
//! per-layer gradient norm and activation std versus depth; a legend; hide or remove runs.

use super::{PanelControls, PanelCtx, PanelFigures, empty_note};
use crate::metrics::series;
use crate::numbers::sig;
use crate::ui::plot::{caption, run_swatch};
use crate::ui::runs::RunAction;
use crate::views::CompareOptions;
use egui::Ui;

impl PanelControls for CompareOptions {
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction> {
        caption(
            ui,
            "Runs overlaid (the list is the legend; hover a line for its run): training loss, \
             gradient norm and activation std against relative depth (0 = input, 1 = output) at \
             each run's latest probe.",
        );
        if ctx.runs.is_empty() {
            empty_note(ui, "Train or open runs to compare them.");
            return None;
        }
        let action = run_list(ui, ctx);
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut self.smoothing, 0.0..=0.99).text("smoothing"));
            ui.checkbox(&mut self.log_y, "log y");
        });
        figures.update(self, ctx);
        let height = ctx.height - 80.0 - 22.0 * ctx.runs.len() as f32;
        figures.show(ui, "compare", 2, height.max(240.0));
        action
    }
}

/// The runs as a list that is also the legend: show in Compare, colour, show in the panels, last
/// loss, Save, Remove.
fn run_list(ui: &mut Ui, ctx: &PanelCtx) -> Option<RunAction> {
    let mut action = None;
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
                    action = Some(RunAction::Toggle(r.id));
                }
                run_swatch(ui, r.color);
                let shown = ctx.run.is_some_and(|s| s.id == r.id);
                if ui.selectable_label(shown, r.label()).clicked() {
                    action = Some(RunAction::Show(r.id));
                }
                let last = r.history().get(series::LOSS, "").and_then(|s| s.last());
                ui.label(last.map_or("–".to_string(), |l| format!("loss {}", sig(l as f64))));
                if r.dirty && ui.button("Save").clicked() {
                    action = Some(RunAction::Save(r.id));
                }
                let scratch = r.path.is_none() && ctx.training != Some(r.id);
                if scratch
                    && ui
                        .button("Discard")
                        .on_hover_text("drop this run without saving it: it leaves no file")
                        .clicked()
                {
                    action = Some(RunAction::Discard(r.id));
                }
                let training = ctx.training == Some(r.id);
                if ui
                    .add_enabled(!training, egui::Button::new("Remove"))
                    .on_hover_text("remove from the lab (an unsaved run is saved first)")
                    .on_disabled_hover_text("stop the run first")
                    .clicked()
                {
                    action = Some(RunAction::Remove(r.id));
                }
                ui.end_row();
            }
        });
    action
}
