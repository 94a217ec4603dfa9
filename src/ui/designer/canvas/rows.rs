//! The visible rows of the chain: each node (or collapsed group) as a box with its name, op,
//! output shape and parameters; a click selects it (Shift or Ctrl adds), a drag from it starts a
//! skip, and the selected layer's width is edited right in its box.

use super::super::action::Action;
use super::drag::Drag;
use super::view::{Row, width_mut};
use super::{CanvasInput, CanvasState, Frame, ROW_H};
use crate::numbers::si;
use crate::spec::edit::node_position;
use crate::spec::{LayerOp, Shape};
use egui::{Align2, Color32, Rect, Sense, Stroke, StrokeKind, Ui, vec2};

/// What one row shows.
struct RowContent {
    /// The node position, for rows that are one node (the input or a layer).
    node: Option<usize>,
    /// A stable key for the row's widget id.
    id_key: String,
    name: String,
    middle: String,
    right: String,
    fill: Color32,
}

/// Draws the visible rows; returns the selections, group toggles and width edits.
pub(super) fn draw(
    ui: &mut Ui,
    f: &Frame,
    input: &CanvasInput<'_>,
    state: &mut CanvasState,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let add = add_to_selection(ui);
    let bad = bad_nodes(input);
    for r in f.visible.clone() {
        let row = &input.view.rows[r];
        let c = content(input, row);
        let nr = f.row_rect(r);
        let id = egui::Id::unique(("designer-node", c.id_key.as_str()));
        let sense = if c.node.is_some() {
            Sense::click_and_drag()
        } else {
            Sense::click()
        };
        let resp = ui.interact(nr, id, sense);
        let selected = c.node.is_some_and(|p| input.selection.nodes().contains(&p));
        let label = match c.node {
            Some(_) => format!("node {} | {} | {}", c.name, c.middle, c.right),
            None => format!("{} | {}", c.name, c.middle),
        };
        resp.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label));
        let bad_node = c.node.is_some_and(|p| bad.contains(&p));
        let stroke = if selected {
            Stroke::new(2.0, f.selected)
        } else if bad_node {
            Stroke::new(2.0, f.error)
        } else if resp.hovered() || resp.has_focus() {
            Stroke::new(1.5, Color32::from_gray(200))
        } else {
            Stroke::new(1.0, Color32::from_gray(90))
        };
        paint_box(f, nr, &c, stroke);
        match inline_width(input, row) {
            Some((i, w, prefix)) => {
                if let Some(w) = width_field(ui, nr, w, prefix) {
                    actions.push(Action::SetWidth(i, w));
                }
            }
            None => {
                let at = nr.center() + vec2(40.0, 0.0);
                let gray = Color32::from_gray(200);
                f.painter
                    .text(at, Align2::CENTER_CENTER, &c.middle, f.small.clone(), gray);
            }
        }
        if let Some(p) = c.node {
            // The output port: where a drag starts.
            f.painter
                .circle_filled(nr.right_center(), 3.5, Color32::from_gray(170));
            if resp.drag_started() {
                state.drag = Some(Drag {
                    from: p,
                    pointer: resp.interact_pointer_pos(),
                });
            }
            if resp.clicked() {
                actions.push(Action::Select { node: p, add });
            }
        } else if resp.clicked()
            && let Row::Group { key, .. } | Row::GroupHeader { key, .. } = row
        {
            actions.push(Action::ToggleGroup(key.clone()));
        }
    }
    actions
}

/// The row's box, its name on the left and its shape and parameters on the right.
fn paint_box(f: &Frame, nr: Rect, c: &RowContent, stroke: Stroke) {
    f.painter.rect_filled(nr, 4.0, c.fill);
    f.painter.rect_stroke(nr, 4.0, stroke, StrokeKind::Inside);
    let left = nr.left_center() + vec2(8.0, 0.0);
    f.painter
        .text(left, Align2::LEFT_CENTER, &c.name, f.font.clone(), f.text);
    let right = nr.right_center() - vec2(8.0, 0.0);
    f.painter.text(
        right,
        Align2::RIGHT_CENTER,
        &c.right,
        f.small.clone(),
        f.text,
    );
}

/// Whether a click adds to the selection: Shift or Ctrl held. A click's or key's own modifiers
/// count too (a frame may see the modifier pressed and released around the event).
fn add_to_selection(ui: &Ui) -> bool {
    ui.input(|i| {
        let held = |m: &egui::Modifiers| m.shift || m.command;
        held(&i.modifiers)
            || i.events.iter().any(|e| match e {
                egui::Event::Key {
                    pressed: true,
                    modifiers,
                    ..
                }
                | egui::Event::PointerButton {
                    pressed: true,
                    modifiers,
                    ..
                } => held(modifiers),
                _ => false,
            })
    })
}

/// The nodes drawn with a red border: the targets of invalid skips, and the node an error of
/// the network (not of a skip) names.
fn bad_nodes(input: &CanvasInput<'_>) -> Vec<usize> {
    let (spec, diag) = (input.spec, &input.view.diag);
    let mut bad: Vec<usize> = diag
        .skips
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_some())
        .filter_map(|(k, _)| node_position(spec, &spec.skips[k].to))
        .collect();
    let layer_error = diag
        .result
        .as_ref()
        .err()
        .filter(|e| e.skip_index().is_none())
        .and_then(|e| e.node())
        .and_then(|n| spec.index_of(n));
    bad.extend(layer_error.map(|i| i + 1));
    bad
}

/// The row's name, op, shape and parameters, and its colour.
fn content(input: &CanvasInput<'_>, row: &Row) -> RowContent {
    let (spec, diag) = (input.spec, &input.view.diag);
    match row {
        Row::Input => RowContent {
            node: Some(0),
            id_key: "input".into(),
            name: "input".into(),
            middle: String::new(),
            right: diag.input.to_string(),
            fill: Color32::from_rgb(60, 60, 66),
        },
        Row::Layer(i) => {
            let l = &spec.layers[*i];
            let facts = diag.layers[*i];
            let shape = shape_text(facts.map(|f| f.output));
            let params = facts.map_or(0, |f| f.params);
            RowContent {
                node: Some(i + 1),
                id_key: format!("layer{i}"),
                name: l.name.clone(),
                middle: l.op_label(),
                right: if params > 0 {
                    format!("{shape}  {} p", si(params as f64))
                } else {
                    shape
                },
                fill: op_color(&l.op),
            }
        }
        Row::Group {
            start,
            end,
            label,
            key,
            ..
        } => {
            let params: u64 = diag.layers[*start..=*end]
                .iter()
                .flatten()
                .map(|f| f.params)
                .sum();
            let out = diag.layers[*end].map(|f| f.output);
            RowContent {
                node: None,
                id_key: format!("group {key}"),
                name: format!("[+] {label}"),
                middle: format!("{} layers", end - start + 1),
                right: format!("{}  {} p", shape_text(out), si(params as f64)),
                fill: Color32::from_rgb(50, 62, 80),
            }
        }
        Row::GroupHeader { label, key } => RowContent {
            node: None,
            id_key: format!("header {key}"),
            name: format!("[-] {label}"),
            middle: "click to collapse".into(),
            right: String::new(),
            fill: Color32::from_rgb(40, 44, 52),
        },
    }
}

/// For the selected layer, when it has a width: its index, the width and the field's prefix.
fn inline_width(input: &CanvasInput<'_>, row: &Row) -> Option<(usize, usize, String)> {
    let Row::Layer(i) = row else {
        return None;
    };
    if input.selection.nodes() != [i + 1] {
        return None;
    }
    let mut op = input.spec.layers[*i].op.clone();
    let w = *width_mut(&mut op)?;
    let prefix = match op {
        LayerOp::Head { .. } => "head ".to_string(),
        LayerOp::Conv2d {
            kernel, stride: 1, ..
        } => format!("conv{kernel}x{kernel} "),
        LayerOp::Conv2d { kernel, stride, .. } => format!("conv{kernel}x{kernel}/{stride} "),
        _ => "linear ".to_string(),
    };
    Some((*i, w, prefix))
}

/// The width field inside a node box; the new width when it changed.
fn width_field(ui: &mut Ui, node: Rect, mut w: usize, prefix: String) -> Option<usize> {
    let r = Rect::from_center_size(node.center() + vec2(40.0, 0.0), vec2(120.0, ROW_H - 10.0));
    ui.put(
        r,
        egui::DragValue::new(&mut w)
            .range(1..=65_536)
            .prefix(prefix),
    )
    .on_hover_text("width: drag or type")
    .changed()
    .then_some(w)
}

fn op_color(op: &LayerOp) -> Color32 {
    match op {
        LayerOp::Linear { .. } | LayerOp::Conv2d { .. } => Color32::from_rgb(52, 78, 120),
        LayerOp::BatchNorm { .. } => Color32::from_rgb(44, 105, 70),
        LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. } => Color32::from_rgb(40, 100, 100),
        LayerOp::Activation { .. } => Color32::from_rgb(120, 82, 40),
        LayerOp::GlobalAvgPool | LayerOp::Flatten => Color32::from_rgb(75, 75, 80),
        LayerOp::Head { .. } => Color32::from_rgb(100, 60, 120),
        LayerOp::PatchEmbed { .. } => Color32::from_rgb(60, 90, 110),
        LayerOp::SelfAttention { .. } => Color32::from_rgb(125, 60, 80),
    }
}

fn shape_text(s: Option<Shape>) -> String {
    s.map_or_else(|| "?".to_string(), |s| s.to_string())
}
