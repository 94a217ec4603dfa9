//! What a part of the designer (the toolbar, the summary, the inspector, the canvas) asks for.
//! Every part reads the document and returns these; [`super::Designer`] carries them out after
//! the part is drawn, in one place (`Designer::apply`).

use super::DesignerAction;
use crate::spec::edit::{NewLayer, Template};
use crate::spec::{LayerSpec, NetSpec, SkipSpec};

/// One thing to do to the designer's document, selection or view.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Undo the last edit.
    Undo,
    /// Redo the last undone edit.
    Redo,
    /// Select a node; `add` keeps the previous selection (Shift or Ctrl held).
    Select {
        /// Node position (0 is the input).
        node: usize,
        /// Add to the selection.
        add: bool,
    },
    /// Select a skip.
    SelectSkip(usize),
    /// Expand or collapse a group of repeated blocks.
    ToggleGroup(String),
    /// Open or close the inspector panel.
    ToggleInspector,
    /// Expand every group.
    ExpandAll,
    /// Collapse every group.
    CollapseAll,
    /// A batch norm after every linear and conv layer.
    BatchNormEverywhere,
    /// Remove every batch norm.
    BatchNormNowhere,
    /// Remove every skip (the plain twin).
    RemoveAllSkips,
    /// Replace the spec (a preset).
    Load(NetSpec),
    /// A skip between two node positions (a drag ended on another node).
    AddSkip(usize, usize),
    /// A skip between the two selected nodes.
    AddSkipBetweenSelected,
    /// Make skip `k` a 1×1 projection with batch norm.
    UseProjection(usize),
    /// Replace skip `k` (its editor changed it).
    EditSkip(usize, SkipSpec),
    /// Delete skip `k`.
    DeleteSkip(usize),
    /// Set the width (outputs or channels) of layer `i`.
    SetWidth(usize, usize),
    /// Replace layer `i` (its editor changed it; skips follow a new name).
    EditLayer(usize, LayerSpec),
    /// Move layer `i` up (-1) or down (+1).
    MoveLayer(usize, isize),
    /// Duplicate layer `i`.
    DuplicateLayer(usize),
    /// Delete layer `i`.
    DeleteLayer(usize),
    /// Insert a new layer at `at`, sized for its input.
    AddLayer {
        /// Layer index it gets.
        at: usize,
        /// What kind.
        kind: NewLayer,
    },
    /// Insert a block from a template at `at`.
    InsertTemplate {
        /// Layer index of its first layer.
        at: usize,
        /// Which template.
        template: Template,
    },
    /// Append `n` copies of layers `start..=end` after them.
    RepeatBlock {
        /// First layer.
        start: usize,
        /// Last layer.
        end: usize,
        /// Copies.
        n: usize,
    },
    /// Say something under the summary (an error in red).
    Note(String, bool),
    /// Something for the app to do (file dialogs and files).
    File(DesignerAction),
}
