//! The inspector on the right: the selected skip or layer with its editors, adding layers and
//! blocks, repeating a block, and a path field for spec files. It reads the spec and returns
//! [`Action`]s; its own widget state (the choices in its menus) lives in [`InspectorState`].

use super::DesignerAction;
use super::action::Action;
use super::canvas::View;
use super::fields::layer_fields;
use super::selection::Selection;
use crate::numbers::si;
use crate::spec::edit::{self, NewLayer, Template};
use crate::spec::{BranchScale, NetSpec, Shortcut, SkipSpec};
use egui::{ComboBox, DragValue, RichText, Ui};

/// The inspector's own widgets: what its menus and fields hold between frames.
#[derive(Clone, Debug)]
pub struct InspectorState {
    /// Copies for Repeat block.
    pub repeat_n: usize,
    /// The kind of layer Add below / Insert above adds.
    pub new_layer: NewLayer,
    /// The template Insert block inserts.
    pub template: Template,
    /// A spec file path, for machines without a file dialog.
    pub path_field: String,
}

impl Default for InspectorState {
    fn default() -> Self {
        Self {
            repeat_n: 1,
            new_layer: NewLayer::Linear,
            template: Template::BasicPost,
            path_field: String::new(),
        }
    }
}

/// What the inspector shows.
#[derive(Clone, Copy)]
pub(super) struct Inspected<'a> {
    pub(super) spec: &'a NetSpec,
    pub(super) view: &'a View,
    pub(super) selection: &'a Selection,
}

/// Draws the inspector.
pub(super) fn show(ui: &mut Ui, it: Inspected<'_>, state: &mut InspectorState) -> Vec<Action> {
    let mut out = Vec::new();
    if let Some(k) = it.selection.skip() {
        ui.heading("Skip");
        skip_editor(ui, it, k, &mut out);
        ui.separator();
    }
    match it.selection.nodes() {
        [] => {
            ui.label(
                RichText::new(
                    "Click a node to select it, Shift+click a second one; drag from one node to a later one to add a skip.",
                )
                .weak(),
            );
        }
        [a, b] => {
            let na = edit::node_name(it.spec, *a).unwrap_or("?");
            let nb = edit::node_name(it.spec, *b).unwrap_or("?");
            ui.heading("Two nodes");
            ui.label(format!("{na} and {nb}"));
            if ui.button("Add skip between them").clicked() {
                out.push(Action::AddSkipBetweenSelected);
            }
        }
        [0] => {
            ui.heading("Input");
            let shape: crate::spec::Shape = it.spec.input.into();
            ui.label(format!("shape {shape} (set by the dataset)"));
        }
        [p] => layer_editor(ui, it, p - 1, &mut out),
        _ => {}
    }
    ui.separator();
    ui.heading("Add layers");
    add_layers(ui, it, state, &mut out);
    repeat_block(ui, it, state, &mut out);
    ui.separator();
    ui.heading("File");
    file_box(ui, state, &mut out);
    out
}

/// Name, parameters, move, duplicate, delete, and the skip into the layer.
fn layer_editor(ui: &mut Ui, it: Inspected<'_>, i: usize, out: &mut Vec<Action>) {
    let Some(layer) = it.spec.layers.get(i) else {
        return;
    };
    let mut l = layer.clone();
    ui.heading("Layer");
    egui::Grid::new("designer-layer-grid")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Name");
            ui.text_edit_singleline(&mut l.name);
            ui.end_row();
            layer_fields(ui, &mut l);
        });
    if l != *layer {
        out.push(Action::EditLayer(i, l));
    }
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(i > 0, egui::Button::new("Move up"))
            .clicked()
        {
            out.push(Action::MoveLayer(i, -1));
        }
        let last = i + 1 >= it.spec.layers.len();
        if ui
            .add_enabled(!last, egui::Button::new("Move down"))
            .clicked()
        {
            out.push(Action::MoveLayer(i, 1));
        }
        if ui.button("Duplicate").clicked() {
            out.push(Action::DuplicateLayer(i));
        }
        if ui.button("Delete").clicked() {
            out.push(Action::DeleteLayer(i));
        }
    });
    if it.selection.skip().is_none()
        && let Some(k) = it.spec.skips.iter().position(|s| s.to == layer.name)
    {
        ui.separator();
        ui.label(RichText::new("Skip into this layer").strong());
        skip_editor(ui, it, k, out);
    }
}

/// Shortcut, branch scale, the shortcut's parameters, the skip's problem, Delete skip.
fn skip_editor(ui: &mut Ui, it: Inspected<'_>, k: usize, out: &mut Vec<Action>) {
    let Some(skip) = it.spec.skips.get(k) else {
        return;
    };
    let mut s = skip.clone();
    ui.label(format!("from {} to {}", s.from, s.to));
    skip_fields(ui, &mut s);
    if s != *skip {
        out.push(Action::EditSkip(k, s));
    }
    let params = it.view.diag.skip_params.get(k).copied().unwrap_or(0);
    if params > 0 {
        let text = format!("{} parameters in the shortcut", si(params as f64));
        ui.label(RichText::new(text).weak());
    }
    if let Some(Some(e)) = it.view.diag.skips.get(k) {
        ui.colored_label(ui.visuals().error_fg_color, e.to_string());
    }
    if ui.button("Delete skip").clicked() {
        out.push(Action::DeleteSkip(k));
    }
}

/// The skip's shortcut and branch scale, edited in place.
fn skip_fields(ui: &mut Ui, s: &mut SkipSpec) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Shortcut");
        ui.selectable_value(&mut s.shortcut, Shortcut::Identity, "identity")
            .on_hover_text("x unchanged; shapes must be equal");
        ui.selectable_value(&mut s.shortcut, Shortcut::ZeroPad, "zero-pad")
            .on_hover_text("He et al. option A: subsample and pad channels with zeros");
        let proj = matches!(s.shortcut, Shortcut::Projection { .. });
        if ui
            .selectable_label(proj, "1x1 projection")
            .on_hover_text("He et al. option B: a 1x1 convolution (Linear for vectors)")
            .clicked()
            && !proj
        {
            s.shortcut = Shortcut::Projection { batch_norm: true };
        }
    });
    if let Shortcut::Projection { batch_norm } = &mut s.shortcut {
        ui.checkbox(batch_norm, "batch norm after the projection");
    }
    ui.horizontal(|ui| {
        ui.label("Branch scale");
        ui.add(
            DragValue::new(&mut s.scale.value)
                .range(-4.0..=4.0)
                .speed(0.01)
                .prefix("alpha = "),
        );
        ui.checkbox(&mut s.scale.learnable, "learnable")
            .on_hover_text("learnable from alpha = 0 is SkipInit (De & Smith 2020)");
    });
    ui.horizontal(|ui| {
        if ui
            .small_button("alpha = 1")
            .on_hover_text("the classic f(x) + x")
            .clicked()
        {
            s.scale = BranchScale::default();
        }
        if ui
            .small_button("SkipInit")
            .on_hover_text("learnable alpha starting at 0")
            .clicked()
        {
            s.scale = BranchScale::skip_init();
        }
    });
}

/// A new layer below or above the selection, and a block from a template.
fn add_layers(ui: &mut Ui, it: Inspected<'_>, state: &mut InspectorState, out: &mut Vec<Action>) {
    let below = it.selection.last_node().unwrap_or(it.spec.layers.len());
    ui.horizontal(|ui| {
        ComboBox::from_id_salt("designer-new-kind")
            .selected_text(state.new_layer.label())
            .show_ui(ui, |ui| {
                for k in NewLayer::ALL {
                    ui.selectable_value(&mut state.new_layer, k, k.label());
                }
            })
            .response
            .on_hover_text("kind of layer to add");
        let kind = state.new_layer;
        if ui
            .button("Add below")
            .on_hover_text("after the selected node (or at the end)")
            .clicked()
        {
            out.push(Action::AddLayer { at: below, kind });
        }
        if let Some(p) = it.selection.last_node()
            && p >= 1
            && ui
                .button("Insert above")
                .on_hover_text("before the selected layer")
                .clicked()
        {
            out.push(Action::AddLayer { at: p - 1, kind });
        }
    });
    ui.horizontal(|ui| {
        ComboBox::from_id_salt("designer-template")
            .selected_text(state.template.label())
            .show_ui(ui, |ui| {
                for t in Template::ALL {
                    ui.selectable_value(&mut state.template, t, t.label());
                }
            })
            .response
            .on_hover_text("block template");
        if ui
            .button("Insert block")
            .on_hover_text("insert the template after the selected node (or at the end)")
            .clicked()
        {
            let template = state.template;
            out.push(Action::InsertTemplate {
                at: below,
                template,
            });
        }
    });
}

/// Repeat block × n, for the block the selection stands for.
fn repeat_block(ui: &mut Ui, it: Inspected<'_>, state: &mut InspectorState, out: &mut Vec<Action>) {
    let Some((lo, hi)) = it.selection.block_range(it.spec) else {
        return;
    };
    ui.horizontal(|ui| {
        ui.add(
            DragValue::new(&mut state.repeat_n)
                .range(1..=100)
                .prefix("n = "),
        );
        let n = state.repeat_n.max(1);
        if ui
            .button(format!("Repeat block x {n}"))
            .on_hover_text(format!(
                "append {n} copies of {} .. {} (with their skips)",
                it.spec.layers[lo].name, it.spec.layers[hi].name
            ))
            .clicked()
        {
            out.push(Action::RepeatBlock {
                start: lo,
                end: hi,
                n,
            });
        }
    });
}

/// A spec path for Import / Export where no file dialog appears.
fn file_box(ui: &mut Ui, state: &mut InspectorState, out: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let label = ui.label("Spec file");
        ui.add(
            egui::TextEdit::singleline(&mut state.path_field)
                .hint_text("path/to/net.json")
                .desired_width(200.0),
        )
        .labelled_by(label.id)
        .on_hover_text("a JSON spec path, for when no file dialog appears");
    });
    ui.horizontal(|ui| {
        let path = state.path_field.trim();
        if ui
            .add_enabled(!path.is_empty(), egui::Button::new("Import from path"))
            .clicked()
        {
            out.push(Action::File(DesignerAction::ImportFrom(path.into())));
        }
        if ui
            .add_enabled(!path.is_empty(), egui::Button::new("Export to path"))
            .clicked()
        {
            out.push(Action::File(DesignerAction::ExportTo(path.into())));
        }
    });
}
