//! The network designer: the network as a vertical chain of nodes with its skip connections
//! drawn as arcs beside it (the way He et al. 2016 draw them), and the edits that ask the lab's
//! question: add or remove skips and batch norm, and see what changes.
//!
//! The designer owns the spec that trains. Every edit goes through [`Designer::edit`], which
//! keeps an undo stack; the spec-editing operations themselves are plain data functions in
//! [`crate::spec::edit`]. Drawing the chain is in `canvas`; only the visible rows are painted
//! and runs of identical blocks collapse into one row, so a 110-layer ResNet stays fast.

mod canvas;

use crate::spec::edit::{self, NewLayer, Template};
use crate::spec::{
    Activation, BranchScale, Init, InputShape, LayerOp, LayerSpec, NetSpec, PRESET_EXAMPLES,
    PresetOptions, Shortcut, preset,
};
use egui::{Color32, ComboBox, DragValue, RichText, Ui};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The most edits undo remembers.
pub const UNDO_LIMIT: usize = 200;

/// Edits of one field within this time make one undo step (dragging a number).
const COALESCE: Duration = Duration::from_millis(800);

/// What the designer asks the app to do (file dialogs run as the app's background jobs).
#[derive(Clone, Debug, PartialEq)]
pub enum DesignerAction {
    /// Pick a JSON file and load it as the spec.
    Import,
    /// Pick where to write the spec as JSON.
    Export,
    /// Load the spec from this JSON file (where no file dialog can be shown).
    ImportFrom(std::path::PathBuf),
    /// Write the spec as JSON to this file.
    ExportTo(std::path::PathBuf),
}

/// What the designer needs to know of the rest of the app for one frame.
#[derive(Clone, Copy, Debug)]
pub struct DesignerCtx<'a> {
    /// The spec of the run that is training now, if one is.
    pub running_spec: Option<&'a NetSpec>,
    /// The dataset's input shape and number of classes (presets are built for them).
    pub io: (InputShape, usize),
}

/// The designer's state. Only the spec is persisted; selection, undo history and the drawing
/// cache live for one session.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct Designer {
    spec: NetSpec,
    #[serde(skip)]
    undo: Vec<NetSpec>,
    #[serde(skip)]
    redo: Vec<NetSpec>,
    #[serde(skip)]
    revision: u64,
    #[serde(skip)]
    changed: bool,
    #[serde(skip)]
    view: Option<canvas::View>,
    #[serde(skip)]
    expanded: BTreeSet<String>,
    /// Selected nodes by position (0 is the input), most recent last, at most two.
    #[serde(skip)]
    selected: Vec<usize>,
    #[serde(skip)]
    selected_skip: Option<usize>,
    #[serde(skip)]
    drag: Option<canvas::Drag>,
    #[serde(skip)]
    repeat_n: usize,
    #[serde(skip)]
    new_kind: usize,
    #[serde(skip)]
    template: usize,
    #[serde(skip)]
    coalesce: Option<(String, Instant)>,
    #[serde(skip)]
    note: Option<(String, bool)>,
    #[serde(skip)]
    scroll_to: Option<f32>,
    #[serde(skip)]
    path_field: String,
    #[serde(skip)]
    file_action: Option<DesignerAction>,
}

impl Default for Designer {
    fn default() -> Self {
        let settings = super::settings::Settings::default();
        let spec = settings
            .net
            .build(&settings.dataset)
            .or_else(|_| preset("mlp-res-20", &PresetOptions::default()).map_err(|e| e.to_string()))
            .expect("the default preset builds");
        Self::new(spec)
    }
}

impl Designer {
    /// A designer holding `spec`, with an empty undo history.
    pub fn new(spec: NetSpec) -> Self {
        Self {
            spec,
            undo: Vec::new(),
            redo: Vec::new(),
            revision: 0,
            changed: false,
            view: None,
            expanded: BTreeSet::new(),
            selected: Vec::new(),
            selected_skip: None,
            drag: None,
            repeat_n: 1,
            new_kind: 0,
            template: 0,
            coalesce: None,
            note: None,
            scroll_to: None,
            path_field: String::new(),
            file_action: None,
        }
    }

    /// The spec being designed: the one Train uses.
    pub fn spec(&self) -> &NetSpec {
        &self.spec
    }

    /// Whether the spec changed since the last call (the app then takes the new spec).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Replaces the spec (a preset or an imported file); undoable.
    pub fn load(&mut self, spec: NetSpec) {
        if spec != self.spec {
            self.selected.clear();
            self.selected_skip = None;
            self.expanded.clear();
        }
        self.edit(|s| *s = spec);
    }

    /// Applies an edit to the spec; a change becomes one undo step.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut NetSpec) -> R) -> R {
        let before = self.spec.clone();
        let r = f(&mut self.spec);
        if self.spec != before {
            self.push_undo(before);
            self.coalesce = None;
        }
        r
    }

    /// Like [`Designer::edit`], but edits of the same `key` in quick succession (a number being
    /// dragged, a name being typed) make one undo step.
    fn edit_coalesced(&mut self, key: &str, f: impl FnOnce(&mut NetSpec)) {
        let before = self.spec.clone();
        f(&mut self.spec);
        if self.spec == before {
            return;
        }
        let merge = self
            .coalesce
            .as_ref()
            .is_some_and(|(k, t)| k == key && t.elapsed() < COALESCE);
        if merge {
            self.redo.clear();
            self.touch();
        } else {
            self.push_undo(before);
        }
        self.coalesce = Some((key.to_string(), Instant::now()));
    }

    fn push_undo(&mut self, before: NetSpec) {
        self.undo.push(before);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.touch();
    }

    fn touch(&mut self) {
        self.revision += 1;
        self.changed = true;
        // Selections by index may point past the end after an edit.
        let nodes = self.spec.layers.len() + 1;
        self.selected.retain(|&p| p < nodes);
        if self
            .selected_skip
            .is_some_and(|k| k >= self.spec.skips.len())
        {
            self.selected_skip = None;
        }
    }

    /// Whether there is an edit to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is an undone edit to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Undoes the last edit.
    pub fn undo(&mut self) {
        if let Some(prev) = self.undo.pop() {
            let now = std::mem::replace(&mut self.spec, prev);
            self.redo.push(now);
            self.coalesce = None;
            self.touch();
        }
    }

    /// Re-applies the last undone edit.
    pub fn redo(&mut self) {
        if let Some(next) = self.redo.pop() {
            let now = std::mem::replace(&mut self.spec, next);
            self.undo.push(now);
            self.coalesce = None;
            self.touch();
        }
    }

    /// Expands every run of repeated blocks.
    pub fn expand_all(&mut self) {
        self.expanded = canvas::group_keys(&self.spec).into_iter().collect();
    }

    /// Collapses every run of repeated blocks into one row.
    pub fn collapse_all(&mut self) {
        self.expanded.clear();
    }

    /// Scrolls the chain to this offset in points on the next frame (benchmarks use this).
    pub fn scroll_canvas_to(&mut self, offset: f32) {
        self.scroll_to = Some(offset);
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.note = Some((text.into(), error));
    }

    /// The layer range a block operation works on: the two selected nodes' layers, or the
    /// layers sharing the selected layer's name prefix (`stage1.block2.*`).
    fn block_range(&self) -> Option<(usize, usize)> {
        match self.selected.as_slice() {
            [a, b] => {
                let (lo, hi) = ((*a).min(*b), (*a).max(*b));
                (lo >= 1).then(|| (lo - 1, hi - 1))
            }
            [p] if *p >= 1 => {
                let i = p - 1;
                let name = &self.spec.layers[i].name;
                let Some((prefix, _)) = name.rsplit_once('.') else {
                    return Some((i, i));
                };
                let dotted = format!("{prefix}.");
                let inside = |j: usize| self.spec.layers[j].name.starts_with(&dotted);
                let mut lo = i;
                while lo > 0 && inside(lo - 1) {
                    lo -= 1;
                }
                let mut hi = i;
                while hi + 1 < self.spec.layers.len() && inside(hi + 1) {
                    hi += 1;
                }
                Some((lo, hi))
            }
            _ => None,
        }
    }

    /// Draws the designer into `ui` and returns what the app should do.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &DesignerCtx<'_>) -> Option<DesignerAction> {
        let mut action = None;
        self.shortcuts(ui);
        self.refresh_view();
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(self.can_undo(), egui::Button::new("Undo"))
                .on_hover_text("undo the last edit (Ctrl+Z)")
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(self.can_redo(), egui::Button::new("Redo"))
                .on_hover_text("redo (Ctrl+Shift+Z)")
                .clicked()
            {
                self.redo();
            }
            ui.separator();
            let pair = self.selected.len() == 2;
            if ui
                .add_enabled(pair, egui::Button::new("Add skip"))
                .on_hover_text("a skip between the two selected nodes")
                .on_disabled_hover_text(
                    "select two nodes (click one, Shift+click the other), or drag from one node to another",
                )
                .clicked()
            {
                self.add_skip_between_selected();
            }
            if ui
                .button("BN everywhere")
                .on_hover_text("a batch norm after every linear and conv layer")
                .clicked()
            {
                let n = self.edit(edit::batch_norm_everywhere);
                self.say(format!("added {n} batch norm layers"), false);
            }
            if ui
                .button("BN nowhere")
                .on_hover_text("remove every batch-norm layer")
                .clicked()
            {
                let n = self.edit(edit::batch_norm_nowhere);
                self.say(format!("removed {n} batch norm layers"), false);
            }
            if ui
                .button("Remove all skips")
                .on_hover_text("the plain twin: the same layers without any skip connection")
                .clicked()
            {
                let n = self.edit(edit::remove_all_skips);
                self.selected_skip = None;
                self.say(format!("removed {n} skips: {}", self.spec.name), false);
            }
            ui.separator();
            if self.expanded.is_empty() {
                if ui
                    .button("Expand blocks")
                    .on_hover_text("show every layer of the repeated blocks")
                    .clicked()
                {
                    self.expand_all();
                }
            } else if ui
                .button("Collapse blocks")
                .on_hover_text("runs of identical blocks as one row each")
                .clicked()
            {
                self.collapse_all();
            }
            if ui
                .button("Import...")
                .on_hover_text("load a network spec from JSON")
                .clicked()
            {
                action = Some(DesignerAction::Import);
            }
            if ui
                .button("Export...")
                .on_hover_text("save this network spec as JSON")
                .clicked()
            {
                action = Some(DesignerAction::Export);
            }
            ui.menu_button("Load preset", |ui| {
                for name in PRESET_EXAMPLES {
                    if ui.button(*name).clicked() {
                        let opts = PresetOptions {
                            input: Some(ctx.io.0),
                            classes: ctx.io.1,
                            ..PresetOptions::default()
                        };
                        match preset(name, &opts) {
                            Ok(s) => self.load(s),
                            Err(e) => self.say(e.to_string(), true),
                        }
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text("load a preset, built for the dataset, into the designer (undoable)");
        });
        self.refresh_view();
        self.summary(ui, ctx);
        egui::Panel::right("designer-inspector")
            .resizable(true)
            .default_size(330.0)
            .min_size(260.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("designer-inspector-scroll")
                    .show(ui, |ui| self.inspector(ui));
            });
        if action.is_none() {
            action = self.file_action.take();
        }
        self.refresh_view();
        let view = self.view.take().expect("refreshed");
        let actions = canvas::show(ui, self, &view);
        self.view = Some(view);
        for a in actions {
            self.apply(a);
        }
        action
    }

    fn shortcuts(&mut self, ui: &Ui) {
        if ui.ctx().text_edit_focused() {
            return;
        }
        let (redo, undo) = ui.input_mut(|i| {
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            ) || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            (redo, undo)
        });
        if redo {
            self.redo();
        } else if undo {
            self.undo();
        }
    }

    fn refresh_view(&mut self) {
        let stale = self
            .view
            .as_ref()
            .is_none_or(|v| v.revision != self.revision || v.expanded != self.expanded);
        if stale {
            self.view = Some(canvas::View::build(
                &self.spec,
                self.revision,
                &self.expanded,
            ));
        }
    }

    fn apply(&mut self, a: canvas::CanvasAction) {
        match a {
            canvas::CanvasAction::Select { node, add } => {
                self.selected_skip = None;
                if add {
                    self.selected.retain(|&p| p != node);
                    self.selected.push(node);
                    if self.selected.len() > 2 {
                        self.selected.remove(0);
                    }
                } else if self.selected == [node] {
                    self.selected.clear();
                } else {
                    self.selected = vec![node];
                }
            }
            canvas::CanvasAction::SelectSkip(k) => {
                self.selected_skip = Some(k);
            }
            canvas::CanvasAction::AddSkip(a, b) => {
                self.selected = vec![a, b];
                self.add_skip_between_selected();
            }
            canvas::CanvasAction::ToggleGroup(key) => {
                if !self.expanded.remove(&key) {
                    self.expanded.insert(key);
                }
            }
            canvas::CanvasAction::SetWidth(i, w) => {
                self.edit_coalesced(&format!("layer{i}"), |s| {
                    if let Some(out) = s
                        .layers
                        .get_mut(i)
                        .and_then(|l| canvas::width_mut(&mut l.op))
                    {
                        *out = w;
                    }
                });
            }
            canvas::CanvasAction::UseProjection(k) => {
                let _ = self.edit(|s| edit::use_projection(s, k));
            }
        }
    }

    fn add_skip_between_selected(&mut self) {
        let [a, b] = self.selected[..] else {
            return;
        };
        let (Some(na), Some(nb)) = (
            edit::node_name(&self.spec, a).map(str::to_string),
            edit::node_name(&self.spec, b).map(str::to_string),
        ) else {
            return;
        };
        match self.edit(|s| edit::add_skip(s, &na, &nb)) {
            Ok(k) => {
                self.selected_skip = Some(k);
                let s = &self.spec.skips[k];
                let text = format!("added a skip from {} to {}", s.from, s.to);
                self.say(text, false);
            }
            Err(e) => self.say(e.to_string(), true),
        }
    }

    fn summary(&mut self, ui: &mut Ui, ctx: &DesignerCtx<'_>) {
        let view = self.view.as_ref().expect("refreshed");
        let d = &view.diag;
        let human = crate::numbers::si;
        let text = match &d.result {
            Ok((params, flops)) => format!(
                "{}: {} layers, {} skips, {} parameters, {} FLOPs per sample",
                self.spec.name,
                self.spec.layers.len(),
                self.spec.skips.len(),
                human(*params as f64),
                human(*flops as f64)
            ),
            Err(_) => format!(
                "{}: {} layers, {} skips, at least {} parameters (invalid)",
                self.spec.name,
                self.spec.layers.len(),
                self.spec.skips.len(),
                human(d.known_params() as f64)
            ),
        };
        ui.label(RichText::new(text).strong());
        if let Some(running) = ctx.running_spec {
            if *running != self.spec {
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
        for (k, e) in d.skips.iter().enumerate() {
            let Some(e) = e else { continue };
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(error, e.to_string());
                if view.fixable.get(k).copied().unwrap_or(false)
                    && ui
                        .button("Use a projection")
                        .on_hover_text("make this skip a 1x1 projection with batch norm")
                        .clicked()
                {
                    fixes.push(k);
                }
            });
        }
        if let Err(e) = &d.result
            && e.skip_index().is_none()
        {
            ui.colored_label(error, e.to_string());
        }
        if let Some((text, is_error)) = &self.note {
            let color = if *is_error {
                error
            } else {
                ui.visuals().weak_text_color()
            };
            ui.colored_label(color, text);
        }
        for k in fixes {
            let _ = self.edit(|s| edit::use_projection(s, k));
        }
    }

    fn inspector(&mut self, ui: &mut Ui) {
        if let Some(k) = self.selected_skip {
            ui.heading("Skip");
            self.skip_editor(ui, k);
            ui.separator();
        }
        match self.selected.clone().as_slice() {
            [] => {
                ui.label(
                    RichText::new(
                        "Click a node to select it, Shift+click a second one; drag from one node to a later one to add a skip.",
                    )
                    .weak(),
                );
            }
            [a, b] => {
                let na = edit::node_name(&self.spec, *a).unwrap_or("?").to_string();
                let nb = edit::node_name(&self.spec, *b).unwrap_or("?").to_string();
                ui.heading("Two nodes");
                ui.label(format!("{na} and {nb}"));
                if ui.button("Add skip between them").clicked() {
                    self.add_skip_between_selected();
                }
            }
            [p] => {
                if *p == 0 {
                    ui.heading("Input");
                    let shape: crate::spec::Shape = self.spec.input.into();
                    ui.label(format!("shape {shape} (set by the dataset)"));
                } else {
                    self.layer_editor(ui, p - 1);
                }
            }
            _ => {}
        }
        ui.separator();
        ui.heading("Add layers");
        let at_below = self.selected.last().map_or(self.spec.layers.len(), |&p| p);
        ui.horizontal(|ui| {
            ComboBox::from_id_salt("designer-new-kind")
                .selected_text(NewLayer::ALL[self.new_kind.min(6)].label())
                .show_ui(ui, |ui| {
                    for (i, k) in NewLayer::ALL.iter().enumerate() {
                        ui.selectable_value(&mut self.new_kind, i, k.label());
                    }
                })
                .response
                .on_hover_text("kind of layer to add");
            let kind = NewLayer::ALL[self.new_kind.min(6)];
            if ui
                .button("Add below")
                .on_hover_text("after the selected node (or at the end)")
                .clicked()
            {
                let i = self.edit(|s| edit::add_layer(s, at_below, kind));
                self.selected = vec![i + 1];
            }
            if let Some(&p) = self.selected.last()
                && p >= 1
                && ui
                    .button("Insert above")
                    .on_hover_text("before the selected layer")
                    .clicked()
            {
                let i = self.edit(|s| edit::add_layer(s, p - 1, kind));
                self.selected = vec![i + 1];
            }
        });
        ui.horizontal(|ui| {
            ComboBox::from_id_salt("designer-template")
                .selected_text(Template::ALL[self.template.min(2)].label())
                .show_ui(ui, |ui| {
                    for (i, t) in Template::ALL.iter().enumerate() {
                        ui.selectable_value(&mut self.template, i, t.label());
                    }
                })
                .response
                .on_hover_text("block template");
            let t = Template::ALL[self.template.min(2)];
            if ui
                .button("Insert block")
                .on_hover_text("insert the template after the selected node (or at the end)")
                .clicked()
            {
                match self.edit(|s| edit::insert_template(s, at_below, t)) {
                    Ok(r) => self.selected = vec![r.start + 1, r.end],
                    Err(e) => self.say(e.to_string(), true),
                }
            }
        });
        self.block_ui(ui);
        ui.separator();
        ui.heading("File");
        ui.horizontal(|ui| {
            let label = ui.label("Spec file");
            ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .hint_text("path/to/net.json")
                    .desired_width(200.0),
            )
            .labelled_by(label.id)
            .on_hover_text("a JSON spec path, for when no file dialog appears");
        });
        ui.horizontal(|ui| {
            let path = self.path_field.trim().to_string();
            if ui
                .add_enabled(!path.is_empty(), egui::Button::new("Import from path"))
                .clicked()
            {
                self.file_action = Some(DesignerAction::ImportFrom(path.clone().into()));
            }
            if ui
                .add_enabled(!path.is_empty(), egui::Button::new("Export to path"))
                .clicked()
            {
                self.file_action = Some(DesignerAction::ExportTo(path.into()));
            }
        });
    }

    fn block_ui(&mut self, ui: &mut Ui) {
        if let Some((lo, hi)) = self.block_range() {
            ui.horizontal(|ui| {
                ui.add(
                    DragValue::new(&mut self.repeat_n)
                        .range(1..=100)
                        .prefix("n = "),
                );
                let n = self.repeat_n.max(1);
                if ui
                    .button(format!("Repeat block x {n}"))
                    .on_hover_text(format!(
                        "append {n} copies of {} .. {} (with their skips)",
                        self.spec.layers[lo].name, self.spec.layers[hi].name
                    ))
                    .clicked()
                {
                    match self.edit(|s| edit::repeat_block(s, lo, hi, n)) {
                        Ok(r) => self.say(format!("added {} layers", r.len()), false),
                        Err(e) => self.say(e.to_string(), true),
                    }
                }
            });
        }
    }

    fn layer_editor(&mut self, ui: &mut Ui, i: usize) {
        let Some(layer) = self.spec.layers.get(i) else {
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
            let old = layer.name.clone();
            self.edit_coalesced(&format!("layer{i}"), |s| {
                for sk in s.skips.iter_mut() {
                    if sk.from == old {
                        sk.from = l.name.clone();
                    }
                    if sk.to == old {
                        sk.to = l.name.clone();
                    }
                }
                s.layers[i] = l;
            });
        }
        ui.horizontal_wrapped(|ui| {
            if ui
                .add_enabled(i > 0, egui::Button::new("Move up"))
                .clicked()
            {
                self.move_selected(i, -1);
            }
            if ui
                .add_enabled(
                    i + 1 < self.spec.layers.len(),
                    egui::Button::new("Move down"),
                )
                .clicked()
            {
                self.move_selected(i, 1);
            }
            if ui.button("Duplicate").clicked()
                && let Ok(j) = self.edit(|s| edit::duplicate_layer(s, i))
            {
                self.selected = vec![j + 1];
            }
            if ui.button("Delete").clicked() {
                let _ = self.edit(|s| edit::delete_layer(s, i));
                self.selected.clear();
            }
        });
        let name = self.spec.layers.get(i).map(|l| l.name.clone());
        if self.selected_skip.is_none()
            && let Some(name) = name
            && let Some(k) = self.spec.skips.iter().position(|s| s.to == name)
        {
            ui.separator();
            ui.label(RichText::new("Skip into this layer").strong());
            self.skip_editor(ui, k);
        }
    }

    fn move_selected(&mut self, i: usize, delta: isize) {
        match self.edit(|s| edit::move_layer(s, i, delta)) {
            Ok((j, dropped)) => {
                self.selected = vec![j + 1];
                if dropped > 0 {
                    self.say(
                        format!("{dropped} skip(s) would have gone backward and were removed"),
                        true,
                    );
                }
            }
            Err(e) => self.say(e.to_string(), true),
        }
    }

    fn skip_editor(&mut self, ui: &mut Ui, k: usize) {
        let Some(skip) = self.spec.skips.get(k) else {
            return;
        };
        let mut s = skip.clone();
        ui.label(format!("from {} to {}", s.from, s.to));
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
        if s != *skip {
            self.edit_coalesced(&format!("skip{k}"), |spec| spec.skips[k] = s);
        }
        let params = self
            .view
            .as_ref()
            .and_then(|v| v.diag.skip_params.get(k).copied())
            .unwrap_or(0);
        if params > 0 {
            ui.label(
                RichText::new(format!(
                    "{} parameters in the shortcut",
                    crate::numbers::si(params as f64)
                ))
                .weak(),
            );
        }
        let err = self
            .view
            .as_ref()
            .and_then(|v| v.diag.skips.get(k).cloned().flatten());
        if let Some(e) = err {
            ui.colored_label(ui.visuals().error_fg_color, e.to_string());
        }
        if ui.button("Delete skip").clicked() {
            let _ = self.edit(|spec| edit::remove_skip(spec, k));
            self.selected_skip = None;
        }
    }
}

/// The fields of one layer's op, as grid rows.
fn layer_fields(ui: &mut Ui, l: &mut LayerSpec) {
    match &mut l.op {
        LayerOp::Linear { out, bias } => {
            ui.label("Outputs");
            ui.add(DragValue::new(out).range(1..=65_536).prefix("out "));
            ui.end_row();
            ui.label("Bias");
            ui.checkbox(bias, "bias");
            ui.end_row();
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => {
            ui.label("Channels");
            ui.add(DragValue::new(out).range(1..=65_536).prefix("out "));
            ui.end_row();
            ui.label("Kernel");
            ui.add(DragValue::new(kernel).range(1..=31).prefix("k "));
            ui.end_row();
            ui.label("Stride");
            ui.add(DragValue::new(stride).range(1..=31).prefix("s "));
            ui.end_row();
            ui.label("Padding");
            ui.add(DragValue::new(padding).range(0..=31).prefix("p "));
            ui.end_row();
            ui.label("Bias");
            ui.checkbox(bias, "bias");
            ui.end_row();
        }
        LayerOp::BatchNorm { momentum, epsilon } => {
            ui.label("Momentum");
            ui.add(
                DragValue::new(momentum)
                    .range(0.0..=1.0)
                    .speed(0.01)
                    .prefix("m "),
            );
            ui.end_row();
            ui.label("Epsilon");
            ui.add(
                DragValue::new(epsilon)
                    .range(1e-12..=1.0)
                    .speed(1e-6)
                    .prefix("eps "),
            );
            ui.end_row();
        }
        LayerOp::Activation { function } => {
            ui.label("Function");
            ComboBox::from_id_salt("designer-activation")
                .selected_text(format!("{function:?}"))
                .show_ui(ui, |ui| {
                    for a in Activation::ALL {
                        ui.selectable_value(function, a, format!("{a:?}"));
                    }
                });
            ui.end_row();
        }
        LayerOp::Head { outputs } => {
            ui.label("Outputs");
            ui.add(DragValue::new(outputs).range(1..=65_536).prefix("out "));
            ui.end_row();
        }
        LayerOp::GlobalAvgPool | LayerOp::Flatten => {}
    }
    if l.has_weights() {
        ui.label("Init");
        ComboBox::from_id_salt("designer-init")
            .selected_text(format!("{:?}", l.init))
            .show_ui(ui, |ui| {
                for i in [Init::He, Init::Xavier, Init::Zero] {
                    ui.selectable_value(&mut l.init, i, format!("{i:?}"));
                }
            });
        ui.end_row();
        ui.label("Bias std");
        ui.add(
            DragValue::new(&mut l.bias_std)
                .range(0.0..=10.0)
                .speed(0.01)
                .prefix("std "),
        );
        ui.end_row();
    }
}
