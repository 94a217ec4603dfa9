//! A skip being dragged out: a line from the source's port to the pointer; on release over
//! another node, a skip between the two.

use super::super::action::Action;
use super::view::{Row, View};
use super::{CanvasState, Frame};
use egui::{Pos2, Stroke, Ui};

/// A drag from one node towards another.
#[derive(Clone, Copy, Debug)]
pub struct Drag {
    /// Node position the drag started on.
    pub from: usize,
    /// Where the pointer is.
    pub pointer: Option<Pos2>,
}

/// Follows the drag in progress; on release returns the skip to add.
pub(super) fn update(
    ui: &mut Ui,
    f: &Frame,
    view: &View,
    state: &mut CanvasState,
) -> Option<Action> {
    let mut drag = state.drag?;
    let (latest, released, down) = ui.input(|i| {
        (
            i.pointer.latest_pos(),
            i.pointer.primary_released(),
            i.pointer.primary_down(),
        )
    });
    if latest.is_some() {
        drag.pointer = latest;
    }
    if let Some(p) = drag.pointer {
        let from_row = view.row_of.get(drag.from).copied().unwrap_or(0);
        let start = f.row_rect(from_row).right_center();
        f.painter
            .line_segment([start, p], Stroke::new(2.0, f.selected));
        f.painter.circle_filled(p, 4.0, f.selected);
    }
    if !released && down {
        state.drag = Some(drag);
        ui.ctx().request_repaint();
        return None;
    }
    state.drag = None;
    // Only a node row (the input or a layer) can be the other end.
    let target = drag
        .pointer
        .and_then(|p| f.row_at(p.y))
        .and_then(|r| match view.rows.get(r)? {
            Row::Input => Some(0),
            Row::Layer(i) => Some(i + 1),
            _ => None,
        });
    target
        .filter(|&t| t != drag.from)
        .map(|t| Action::AddSkip(drag.from, t))
}
