//! The chain of nodes and the skip arcs, painted with the painter.
//!
//! [`view`] lays the spec out as fixed-height rows, so the visible rows follow from the scroll
//! offset and only they (and the arcs that cross them) are painted and made interactive:
//! [`rows`] draws the nodes, [`arcs`] the skips, [`drag`] a skip being dragged out. Drawing
//! reads the spec and returns [`Action`]s; it changes nothing but its own [`CanvasState`].

mod arcs;
mod drag;
mod rows;
pub mod view;

pub use drag::Drag;
pub use view::{View, group_keys, width_mut};

use super::action::Action;
use super::selection::Selection;
use crate::spec::NetSpec;
use egui::{Color32, FontId, Painter, Rect, Sense, Ui, pos2, vec2};

/// Height of one row in points.
pub const ROW_H: f32 = 30.0;
/// Width of a node box.
const NODE_W: f32 = 400.0;
/// Space left of the nodes.
const LEFT: f32 = 8.0;
/// Horizontal distance between arc lanes.
const LANE_W: f32 = 14.0;

/// What the canvas keeps between frames: a drag in progress and a scroll position asked for.
#[derive(Clone, Debug, Default)]
pub struct CanvasState {
    /// A drag from a node's port.
    pub drag: Option<Drag>,
    /// Scroll the chain to this offset in points on the next frame.
    pub scroll_to: Option<f32>,
}

/// What the canvas draws: the spec, its layout and the selection.
#[derive(Clone, Copy)]
pub struct CanvasInput<'a> {
    /// The spec.
    pub spec: &'a NetSpec,
    /// Its layout.
    pub view: &'a View,
    /// What is selected.
    pub selection: &'a Selection,
}

/// Where the rows are this frame and how they are painted.
struct Frame {
    /// The whole chain's area.
    rect: Rect,
    /// The first and one past the last visible row.
    visible: std::ops::Range<usize>,
    painter: Painter,
    text: Color32,
    error: Color32,
    selected: Color32,
    font: FontId,
    small: FontId,
}

impl Frame {
    /// The box of row `r`.
    fn row_rect(&self, r: usize) -> Rect {
        Rect::from_min_size(
            pos2(
                self.rect.min.x + LEFT,
                self.rect.min.y + r as f32 * ROW_H + 3.0,
            ),
            vec2(NODE_W, ROW_H - 6.0),
        )
    }

    /// The row at height `y`, if one is there.
    fn row_at(&self, y: f32) -> Option<usize> {
        let r = ((y - self.rect.min.y) / ROW_H).floor();
        (r >= 0.0).then_some(r as usize)
    }
}

/// Draws the chain and returns what the user did.
pub fn show(ui: &mut Ui, input: &CanvasInput<'_>, state: &mut CanvasState) -> Vec<Action> {
    let view = input.view;
    let total_h = view.rows.len() as f32 * ROW_H + ROW_H;
    let arcs_w = 40.0 + LANE_W * view.lanes as f32 + 320.0;
    let mut area = egui::ScrollArea::both()
        .id_salt("designer-canvas")
        .auto_shrink([false, false]);
    if let Some(o) = state.scroll_to.take() {
        area = area.vertical_scroll_offset(o);
    }
    area.show_viewport(ui, |ui, viewport| {
        let width = (LEFT + NODE_W + arcs_w).max(ui.available_width());
        let (rect, _) = ui.allocate_exact_size(vec2(width, total_h), Sense::hover());
        let first = ((viewport.min.y / ROW_H).floor().max(0.0)) as usize;
        let last = (((viewport.max.y / ROW_H).ceil()) as usize + 1).min(view.rows.len());
        let frame = Frame {
            rect,
            visible: first..last,
            painter: ui.painter().clone(),
            text: Color32::from_gray(235),
            error: ui.visuals().error_fg_color,
            selected: Color32::from_rgb(250, 210, 60),
            font: FontId::proportional(13.0),
            small: FontId::proportional(11.5),
        };
        let mut actions = rows::draw(ui, &frame, input, state);
        actions.extend(arcs::draw(ui, &frame, input));
        actions.extend(drag::update(ui, &frame, view, state));
        actions
    })
    .inner
}
