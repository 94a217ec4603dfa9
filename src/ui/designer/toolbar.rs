//! Above the canvas: the toolbar (undo, redo, skips, batch norm, groups, files, presets) and the
//! summary (totals, what is wrong with the network and its one-click fixes, the last note).

use super::DesignerAction;
use super::DesignerCtx;
use super::action::Action;
use super::canvas::View;
use super::doc::DesignerDoc;
use crate::numbers::si;
use crate::spec::{NetSpec, PRESET_EXAMPLES};
use egui::{Color32, RichText, Ui};

/// What the toolbar needs to know.
pub(super) struct ToolbarState<'a> {
    pub(super) doc: &'a DesignerDoc,
    /// Two nodes are selected (a skip can be added between them).
    pub(super) pair_selected: bool,
    /// Some group of repeated blocks is expanded.
    pub(super) any_expanded: bool,
    /// The inspector panel is open.
    pub(super) inspector_open: bool,
}

/// A button with its hover text; whether it was clicked.
fn button(ui: &mut Ui, enabled: bool, text: &str, hover: &str) -> bool {
    ui.add_enabled(enabled, egui::Button::new(text))
        .on_hover_text(hover)
        .clicked()
}

/// Draws the toolbar.
pub(super) fn toolbar(ui: &mut Ui, s: &ToolbarState<'_>) -> Vec<Action> {
    let mut out = Vec::new();
    ui.horizontal_wrapped(|ui| {
        let mut act = |clicked: bool, a: Action| {
            if clicked {
                out.push(a);
            }
        };
        act(
            button(ui, s.doc.can_undo(), "Undo", "undo the last edit (Ctrl+Z)"),
            Action::Undo,
        );
        act(
            button(ui, s.doc.can_redo(), "Redo", "redo (Ctrl+Shift+Z)"),
            Action::Redo,
        );
        let mut open = s.inspector_open;
        let toggled = ui
            .toggle_value(&mut open, "Inspector")
            .on_hover_text("show or hide the inspector on the right (a narrow window shows more of the canvas without it)")
            .clicked();
        act(toggled, Action::ToggleInspector);
        ui.separator();
        let add_skip = ui
            .add_enabled(s.pair_selected, egui::Button::new("Add skip"))
            .on_hover_text("a skip between the two selected nodes")
            .on_disabled_hover_text(
                "select two nodes (click one, Shift+click the other), or drag from one node to another",
            )
            .clicked();
        act(add_skip, Action::AddSkipBetweenSelected);
        let hover = "a batch norm after every linear and conv layer";
        act(
            button(ui, true, "BN everywhere", hover),
            Action::BatchNormEverywhere,
        );
        let hover = "remove every batch-norm layer";
        act(button(ui, true, "BN nowhere", hover), Action::BatchNormNowhere);
        let hover = "the plain twin: the same layers without any skip connection";
        act(
            button(ui, true, "Remove all skips", hover),
            Action::RemoveAllSkips,
        );
        ui.separator();
        if s.any_expanded {
            let hover = "runs of identical blocks as one row each";
            act(button(ui, true, "Collapse blocks", hover), Action::CollapseAll);
        } else {
            let hover = "show every layer of the repeated blocks";
            act(button(ui, true, "Expand blocks", hover), Action::ExpandAll);
        }
        act(
            button(ui, true, "Import...", "load a network spec from JSON"),
            Action::File(DesignerAction::Import),
        );
        act(
            button(ui, true, "Export...", "save this network spec as JSON"),
            Action::File(DesignerAction::Export),
        );
        if let Some(a) = preset_menu(ui) {
            act(true, a);
        }
    });
    out
}

/// The Load preset menu: the lab's settings take the preset (its family's defaults, the
/// dataset's input and classes), so the left side and the designer show one network.
fn preset_menu(ui: &mut Ui) -> Option<Action> {
    let mut picked = None;
    ui.menu_button("Load preset", |ui| {
        for name in PRESET_EXAMPLES {
            if ui.button(*name).clicked() {
                picked = Some(Action::File(DesignerAction::LoadPreset(name.to_string())));
                ui.close();
            }
        }
    })
    .response
    .on_hover_text(
        "load a preset, built for the dataset, into the designer and the settings (undoable)",
    );
    picked
}

/// The totals, the network's problems with their fixes, and the last note.
pub(super) fn summary(
    ui: &mut Ui,
    spec: &NetSpec,
    view: &View,
    note: Option<&(String, bool)>,
    ctx: &DesignerCtx<'_>,
) -> Vec<Action> {
    ui.label(RichText::new(totals(spec, view)).strong());
    if let Some(running) = ctx.running_spec {
        if running != spec {
            ui.colored_label(
                Color32::from_rgb(230, 170, 40),
                "The spec changed since the running run started; that run keeps training the spec it started with.",
            );
        } else {
            ui.label(RichText::new("A run is training this spec.").weak());
        }
    }
    let error = ui.visuals().error_fg_color;
    let mut fixes = Vec::new();
    for (k, e) in view.diag.skips.iter().enumerate() {
        let Some(e) = e else { continue };
        ui.horizontal_wrapped(|ui| {
            ui.colored_label(error, e.to_string());
            if view.fixable.get(k).copied().unwrap_or(false)
                && ui
                    .button("Use a projection")
                    .on_hover_text("make this skip a 1x1 projection with batch norm")
                    .clicked()
            {
                fixes.push(Action::UseProjection(k));
            }
        });
    }
    if let Err(e) = &view.diag.result
        && e.skip_index().is_none()
    {
        ui.colored_label(error, e.to_string());
    }
    if let Some((text, is_error)) = note {
        let color = if *is_error {
            error
        } else {
            ui.visuals().weak_text_color()
        };
        ui.colored_label(color, text);
    }
    fixes
}

/// `name: 20 layers, 9 skips, 270k parameters, 41M FLOPs per sample`.
fn totals(spec: &NetSpec, view: &View) -> String {
    let d = &view.diag;
    match &d.result {
        Ok((params, flops)) => format!(
            "{}: {}, {}, {} parameters, {} FLOPs per sample",
            spec.name,
            crate::numbers::count(spec.layers.len(), "layer"),
            crate::numbers::count(spec.skips.len(), "skip"),
            si(*params as f64),
            si(*flops as f64)
        ),
        Err(_) => format!(
            "{}: {}, {}, at least {} parameters (invalid)",
            spec.name,
            crate::numbers::count(spec.layers.len(), "layer"),
            crate::numbers::count(spec.skips.len(), "skip"),
            si(d.known_params() as f64)
        ),
    }
}
