//! The network designer: the network as a vertical chain of nodes with its skip connections
//! drawn as arcs beside it (the way He et al. 2016 draw them), and the edits that ask the lab's
//! question: add or remove skips and batch norm, and see what changes.
//!
//! The parts, each in its own file:
//! - [`doc`]: the spec with its undo and redo stacks ([`DesignerDoc`], no egui);
//! - [`selection`]: the selected nodes and skip ([`Selection`], no egui);
//! - `toolbar` (the buttons and the summary above the canvas), `inspector` (the panel on the
//!   right, with `fields` for one layer's fields) and `canvas` (the chain: rows, arcs, a drag)
//!   read the spec and return [`Action`]s;
//! - this file holds them together and carries the actions out in one place
//!   ([`Designer::apply`]); the spec-editing operations themselves are plain data functions in
//!   [`crate::spec::edit`].
//!
//! Only the visible rows are painted and runs of identical blocks collapse into one row, so a
//! 110-layer ResNet stays fast.

mod action;
mod canvas;
pub mod doc;
mod fields;
mod inspector;
pub mod selection;
mod toolbar;

pub use action::Action;
pub use canvas::{CanvasState, Drag};
pub use doc::{COALESCE, DesignerDoc, UNDO_LIMIT};
pub use inspector::InspectorState;
pub use selection::Selection;

use crate::spec::edit;
use crate::spec::{NetSpec, PresetOptions, preset};
use canvas::{CanvasInput, View};
use egui::Ui;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;

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
    /// Load a preset by name, e.g. `mlp-res-20`: the lab's network settings take it (the one
    /// table of family defaults) and the designer gets the network they build.
    LoadPreset(String),
}

/// What the designer needs to know of the rest of the app for one frame.
#[derive(Clone, Copy, Debug)]
pub struct DesignerCtx<'a> {
    /// The spec of the run that is training now, if one is.
    pub running_spec: Option<&'a NetSpec>,
    /// The dataset's input shape and number of classes (presets are built for them).
    pub io: (crate::spec::InputShape, usize),
}

/// The designer: the document, the selection, the canvas's and the inspector's widget state,
/// which groups are expanded, the layout cache and the last note. Only the spec is persisted.
pub struct Designer {
    doc: DesignerDoc,
    selection: Selection,
    canvas: CanvasState,
    inspector: InspectorState,
    expanded: BTreeSet<String>,
    /// The layout of the spec, rebuilt when the spec or the expanded groups change.
    view: Option<View>,
    /// The last thing said under the summary, and whether it is an error.
    note: Option<(String, bool)>,
    /// The inspector panel is open (it can be dragged closed; the toolbar's Inspector opens it).
    inspector_open: bool,
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

/// What is persisted: the spec alone (a missing one gives the default designer).
#[derive(Serialize)]
struct PersistedRef<'a> {
    spec: &'a NetSpec,
}

#[derive(Deserialize)]
#[serde(default)]
struct Persisted {
    spec: NetSpec,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            spec: Designer::default().doc.spec().clone(),
        }
    }
}

impl Serialize for Designer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PersistedRef {
            spec: self.doc.spec(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Designer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Designer::new(Persisted::deserialize(d)?.spec))
    }
}

impl Designer {
    /// A designer holding `spec`, with an empty undo history.
    pub fn new(spec: NetSpec) -> Self {
        Self {
            doc: DesignerDoc::new(spec),
            selection: Selection::default(),
            canvas: CanvasState::default(),
            inspector: InspectorState::default(),
            expanded: BTreeSet::new(),
            view: None,
            note: None,
            inspector_open: true,
        }
    }

    /// The spec being designed: the one Train uses.
    pub fn spec(&self) -> &NetSpec {
        self.doc.spec()
    }

    /// The document (the spec and its history).
    pub fn doc(&self) -> &DesignerDoc {
        &self.doc
    }

    /// Whether the spec changed since the last call (the app then takes the new spec).
    pub fn take_changed(&mut self) -> bool {
        self.doc.take_changed()
    }

    /// Replaces the spec (a preset or an imported file); undoable.
    pub fn load(&mut self, spec: NetSpec) {
        if spec != *self.doc.spec() {
            self.selection.clear();
            self.expanded.clear();
        }
        self.edit(|s| *s = spec);
    }

    /// Applies an edit to the spec; a change becomes one undo step.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut NetSpec) -> R) -> R {
        let r = self.doc.edit(f);
        self.selection.clamp(self.doc.spec());
        r
    }

    /// Like [`Designer::edit`], but edits of the same `key` in quick succession (a number being
    /// dragged, a name being typed) make one undo step.
    fn edit_coalesced(&mut self, key: &str, f: impl FnOnce(&mut NetSpec)) {
        self.doc.edit_coalesced(key, f);
        self.selection.clamp(self.doc.spec());
    }

    /// Whether there is an edit to undo.
    pub fn can_undo(&self) -> bool {
        self.doc.can_undo()
    }

    /// Whether there is an undone edit to redo.
    pub fn can_redo(&self) -> bool {
        self.doc.can_redo()
    }

    /// Undoes the last edit; the note says so (the edit's own note no longer holds).
    pub fn undo(&mut self) {
        if self.doc.can_undo() {
            self.doc.undo();
            self.say("undid the last edit", false);
        }
        self.selection.clamp(self.doc.spec());
    }

    /// Re-applies the last undone edit; the note says so.
    pub fn redo(&mut self) {
        if self.doc.can_redo() {
            self.doc.redo();
            self.say("redid the edit", false);
        }
        self.selection.clamp(self.doc.spec());
    }

    /// Expands every run of repeated blocks.
    pub fn expand_all(&mut self) {
        self.expanded = canvas::group_keys(self.doc.spec()).into_iter().collect();
    }

    /// Collapses every run of repeated blocks into one row.
    pub fn collapse_all(&mut self) {
        self.expanded.clear();
    }

    /// Scrolls the chain to this offset in points on the next frame (benchmarks use this).
    pub fn scroll_canvas_to(&mut self, offset: f32) {
        self.canvas.scroll_to = Some(offset);
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.note = Some((text.into(), error));
    }

    /// Draws the designer into `ui` and returns what the app should do. Each part is drawn
    /// from the current spec and its actions are carried out before the next part is drawn.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &DesignerCtx<'_>) -> Option<DesignerAction> {
        let mut file = None;
        let shortcuts = shortcuts(ui);
        file = file.or(self.apply_all(shortcuts));
        let state = toolbar::ToolbarState {
            doc: &self.doc,
            pair_selected: self.selection.nodes().len() == 2,
            any_expanded: !self.expanded.is_empty(),
            inspector_open: self.inspector_open,
        };
        let actions = toolbar::toolbar(ui, &state);
        file = file.or(self.apply_all(actions));
        self.refresh_view();
        let view = self.view.as_ref().expect("refreshed");
        let actions = toolbar::summary(ui, self.doc.spec(), view, self.note.as_ref(), ctx);
        file = file.or(self.apply_all(actions));
        let actions = self.inspector_panel(ui);
        file = file.or(self.apply_all(actions));
        self.refresh_view();
        let view = self.view.as_ref().expect("refreshed");
        let input = CanvasInput {
            spec: self.doc.spec(),
            view,
            selection: &self.selection,
        };
        let actions = canvas::show(ui, &input, &mut self.canvas);
        file.or(self.apply_all(actions))
    }

    /// The inspector in a resizable panel on the right that can be closed (a narrow window
    /// then shows the whole canvas).
    fn inspector_panel(&mut self, ui: &mut Ui) -> Vec<Action> {
        self.refresh_view();
        let view = self.view.as_ref().expect("refreshed");
        let it = inspector::Inspected {
            spec: self.doc.spec(),
            view,
            selection: &self.selection,
        };
        let state = &mut self.inspector;
        egui::Panel::right("designer-inspector")
            .resizable(true)
            .default_size(330.0)
            .min_size(260.0)
            .show_collapsible(ui, &mut self.inspector_open, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("designer-inspector-scroll")
                    .show(ui, |ui| inspector::show(ui, it, state))
                    .inner
            })
            .map(|r| r.inner)
            .unwrap_or_default()
    }

    /// The layout of the current spec, rebuilt when the spec or the expanded groups changed.
    fn refresh_view(&mut self) {
        let revision = self.doc.revision();
        let stale = self
            .view
            .as_ref()
            .is_none_or(|v| v.revision != revision || v.expanded != self.expanded);
        if stale {
            self.view = Some(View::build(self.doc.spec(), revision, &self.expanded));
        }
    }

    /// Carries out `actions` in order; the first file action is the app's to do.
    fn apply_all(&mut self, actions: Vec<Action>) -> Option<DesignerAction> {
        let mut file = None;
        for a in actions {
            if let Some(f) = self.apply(a) {
                file = file.or(Some(f));
            }
        }
        file
    }

    /// Carries out one action; a file action is handed back for the app.
    pub fn apply(&mut self, a: Action) -> Option<DesignerAction> {
        match a {
            Action::Undo => self.undo(),
            Action::Redo => self.redo(),
            Action::Select { node, add } => self.selection.click(node, add),
            Action::SelectSkip(k) => self.selection.set_skip(Some(k)),
            Action::ToggleGroup(key) => {
                if !self.expanded.remove(&key) {
                    self.expanded.insert(key);
                }
            }
            Action::ToggleInspector => self.inspector_open = !self.inspector_open,
            Action::ExpandAll => self.expand_all(),
            Action::CollapseAll => self.collapse_all(),
            Action::BatchNormEverywhere => {
                let n = self.edit(edit::batch_norm_everywhere);
                self.say(format!("added {n} batch norm layers"), false);
            }
            Action::BatchNormNowhere => {
                let n = self.edit(edit::batch_norm_nowhere);
                self.say(
                    format!("removed {}", crate::numbers::count(n, "batch norm layer")),
                    false,
                );
            }
            Action::RemoveAllSkips => {
                let n = self.edit(edit::remove_all_skips);
                self.selection.set_skip(None);
                let text = format!(
                    "removed {}: {}",
                    crate::numbers::count(n, "skip"),
                    self.doc.spec().name
                );
                self.say(text, false);
            }
            Action::Load(spec) => self.load(spec),
            Action::AddSkip(a, b) => {
                self.selection.set_nodes(vec![a, b]);
                self.add_skip_between_selected();
            }
            Action::AddSkipBetweenSelected => self.add_skip_between_selected(),
            Action::UseProjection(k) => {
                let _ = self.edit(|s| edit::use_projection(s, k));
            }
            Action::EditSkip(k, skip) => self.edit_coalesced(&format!("skip{k}"), |s| {
                if let Some(slot) = s.skips.get_mut(k) {
                    *slot = skip;
                }
            }),
            Action::DeleteSkip(k) => {
                let _ = self.edit(|s| edit::remove_skip(s, k));
                self.selection.set_skip(None);
            }
            Action::SetWidth(i, w) => self.edit_coalesced(&format!("layer{i}"), |s| {
                if let Some(out) = s
                    .layers
                    .get_mut(i)
                    .and_then(|l| canvas::width_mut(&mut l.op))
                {
                    *out = w;
                }
            }),
            Action::EditLayer(i, layer) => self.edit_layer(i, layer),
            Action::MoveLayer(i, delta) => self.move_layer(i, delta),
            Action::DuplicateLayer(i) => {
                if let Ok(j) = self.edit(|s| edit::duplicate_layer(s, i)) {
                    self.selection.set_nodes(vec![j + 1]);
                }
            }
            Action::DeleteLayer(i) => {
                let _ = self.edit(|s| edit::delete_layer(s, i));
                self.selection.set_nodes(Vec::new());
            }
            Action::AddLayer { at, kind } => {
                let i = self.edit(|s| edit::add_layer(s, at, kind));
                self.selection.set_nodes(vec![i + 1]);
            }
            Action::InsertTemplate { at, template } => {
                match self.edit(|s| edit::insert_template(s, at, template)) {
                    Ok(r) => self.selection.set_nodes(vec![r.start + 1, r.end]),
                    Err(e) => self.say(e.to_string(), true),
                }
            }
            Action::RepeatBlock { start, end, n } => {
                match self.edit(|s| edit::repeat_block(s, start, end, n)) {
                    Ok(r) => self.say(format!("added {} layers", r.len()), false),
                    Err(e) => self.say(e.to_string(), true),
                }
            }
            Action::Note(text, error) => self.say(text, error),
            Action::File(f) => return Some(f),
        }
        None
    }

    /// Replaces layer `i`; skips from or to its old name follow a new one.
    fn edit_layer(&mut self, i: usize, layer: crate::spec::LayerSpec) {
        let Some(old) = self.doc.spec().layers.get(i).map(|l| l.name.clone()) else {
            return;
        };
        self.edit_coalesced(&format!("layer{i}"), |s| {
            for sk in s.skips.iter_mut() {
                if sk.from == old {
                    sk.from = layer.name.clone();
                }
                if sk.to == old {
                    sk.to = layer.name.clone();
                }
            }
            s.layers[i] = layer;
        });
    }

    fn move_layer(&mut self, i: usize, delta: isize) {
        match self.edit(|s| edit::move_layer(s, i, delta)) {
            Ok((j, dropped)) => {
                self.selection.set_nodes(vec![j + 1]);
                if dropped > 0 {
                    let text =
                        format!("{dropped} skip(s) would have gone backward and were removed");
                    self.say(text, true);
                }
            }
            Err(e) => self.say(e.to_string(), true),
        }
    }

    fn add_skip_between_selected(&mut self) {
        let spec = self.doc.spec();
        let &[a, b] = self.selection.nodes() else {
            return;
        };
        let (Some(na), Some(nb)) = (
            edit::node_name(spec, a).map(str::to_string),
            edit::node_name(spec, b).map(str::to_string),
        ) else {
            return;
        };
        match self.edit(|s| edit::add_skip(s, &na, &nb)) {
            Ok(k) => {
                self.selection.set_skip(Some(k));
                let s = &self.doc.spec().skips[k];
                let text = format!("added a skip from {} to {}", s.from, s.to);
                self.say(text, false);
            }
            Err(e) => self.say(e.to_string(), true),
        }
    }
}

/// Ctrl+Z and Ctrl+Shift+Z (or Ctrl+Y), unless a text field has the keyboard.
fn shortcuts(ui: &Ui) -> Vec<Action> {
    if ui.ctx().text_edit_focused() {
        return Vec::new();
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
        vec![Action::Redo]
    } else if undo {
        vec![Action::Undo]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_spec_is_persisted_and_a_missing_one_gives_the_default() {
        let mut d = Designer::new(preset("mlp-res-2", &PresetOptions::default()).unwrap());
        d.edit(|s| s.name = "kept".into());
        d.apply(Action::Select {
            node: 1,
            add: false,
        });
        let json = serde_json::to_string(&d).unwrap();
        let back: Designer = serde_json::from_str(&json).unwrap();
        assert_eq!(back.spec(), d.spec());
        assert!(!back.can_undo() && back.selection.nodes().is_empty());
        let fresh: Designer = serde_json::from_str("{}").unwrap();
        assert_eq!(fresh.spec(), Designer::default().spec());
    }

    #[test]
    fn actions_edit_the_spec_and_keep_the_selection_inside_it() {
        let mut d = Designer::new(preset("mlp-res-2", &PresetOptions::default()).unwrap());
        let n = d.spec().layers.len();
        d.apply(Action::Select {
            node: n,
            add: false,
        });
        d.apply(Action::DeleteLayer(n - 1));
        assert_eq!(d.spec().layers.len(), n - 1);
        assert!(d.selection.nodes().is_empty());
        d.apply(Action::Select {
            node: n - 1,
            add: false,
        });
        d.apply(Action::Undo);
        assert_eq!(d.spec().layers.len(), n);
        assert_eq!(
            d.note.as_ref().map(|n| n.0.as_str()),
            Some("undid the last edit")
        );
        d.apply(Action::Redo);
        assert_eq!(d.selection.nodes(), &[n - 1]);
        assert_eq!(
            d.note.as_ref().map(|n| n.0.as_str()),
            Some("redid the edit")
        );
        // An edit that removes the selected node drops it from the selection.
        d.edit(|s| {
            s.layers.pop();
        });
        assert!(d.selection.nodes().is_empty());
        let file = d.apply(Action::File(DesignerAction::Export));
        assert_eq!(file, Some(DesignerAction::Export));
    }
}
