//! The chain of nodes and the skip arcs, painted with the painter.
//!
//! The layout is a list of fixed-height rows (the input, a layer, a collapsed run of identical
//! blocks, or the header of an expanded run), so the visible rows follow from the scroll offset
//! and only they (and the arcs that cross them) are painted and made interactive.

use super::Designer;
use crate::spec::edit::node_position;
use crate::spec::{
    BranchScale, Diagnosis, INPUT_NODE, Init, LayerOp, NetSpec, Shape, Shortcut, SpecError,
    check_skip, diagnose,
};
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, pos2, vec2};
use std::collections::{BTreeSet, HashMap};

/// Height of one row in points.
pub const ROW_H: f32 = 30.0;
/// Width of a node box.
const NODE_W: f32 = 400.0;
/// Space left of the nodes.
const LEFT: f32 = 8.0;
/// Horizontal distance between arc lanes.
const LANE_W: f32 = 14.0;

/// One row of the chain.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    /// The network input.
    Input,
    /// Layer `i`.
    Layer(usize),
    /// Layers `start..=end`, `blocks` identical blocks, drawn as one row.
    Group {
        /// First layer.
        start: usize,
        /// Last layer.
        end: usize,
        /// Number of blocks.
        blocks: usize,
        /// E.g. `stage1.block2-18 x17`.
        label: String,
        /// The group's key (its first block's prefix).
        key: String,
    },
    /// The header row above an expanded group, to collapse it again.
    GroupHeader {
        /// E.g. `stage1.block2-18 x17`.
        label: String,
        /// The group's key.
        key: String,
    },
}

/// One skip as drawn.
#[derive(Clone, Debug)]
pub struct ArcInfo {
    /// Index of the skip.
    pub skip: usize,
    /// Row of the source.
    pub from_row: usize,
    /// Row of the target.
    pub to_row: usize,
    /// Lane (0 is nearest the chain).
    pub lane: usize,
}

/// The layout of one version of the spec, rebuilt only when the spec or the expanded groups
/// change.
#[derive(Clone, Debug)]
pub struct View {
    /// The designer revision this view is of.
    pub revision: u64,
    /// The expanded groups this view is of.
    pub expanded: BTreeSet<String>,
    /// Shapes, parameters and per-skip problems.
    pub diag: Diagnosis,
    /// The rows, top to bottom.
    pub rows: Vec<Row>,
    /// The row of each node position (0 is the input).
    pub row_of: Vec<usize>,
    /// The skips that are drawn (both ends known, in different rows).
    pub arcs: Vec<ArcInfo>,
    /// Number of arc lanes.
    pub lanes: usize,
    /// Per skip: whether it is invalid and a 1×1 projection would make it valid.
    pub fixable: Vec<bool>,
}

/// A drag from one node towards another.
#[derive(Clone, Copy, Debug)]
pub struct Drag {
    /// Node position the drag started on.
    pub from: usize,
    /// Where the pointer is.
    pub pointer: Option<Pos2>,
}

/// What a frame of the canvas asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum CanvasAction {
    /// Select a node; `add` keeps the previous selection (Shift or Ctrl held).
    Select {
        /// Node position.
        node: usize,
        /// Add to the selection.
        add: bool,
    },
    /// Select a skip.
    SelectSkip(usize),
    /// A drag ended on another node.
    AddSkip(usize, usize),
    /// Expand or collapse a group.
    ToggleGroup(String),
    /// Make skip `k` a projection.
    UseProjection(usize),
    /// Set the width (outputs or channels) of layer `i`.
    SetWidth(usize, usize),
}

/// The width of a layer's op (Linear and Conv2d outputs, Head outputs), if it has one.
pub fn width_mut(op: &mut LayerOp) -> Option<&mut usize> {
    match op {
        LayerOp::Linear { out, .. } | LayerOp::Conv2d { out, .. } => Some(out),
        LayerOp::Head { outputs } => Some(outputs),
        _ => None,
    }
}

/// What makes two blocks the same: their layers (by name suffix) and the skips into them.
#[derive(PartialEq)]
struct Signature {
    layers: Vec<(String, LayerOp, Init, u32)>,
    skips: Vec<(String, String, Shortcut, BranchScale)>,
}

/// A run of layers sharing a dotted prefix.
struct Block {
    prefix: String,
    start: usize,
    end: usize,
}

fn blocks_of(spec: &NetSpec) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let prefix = l.name.rsplit_once('.').map_or("", |(p, _)| p);
        match out.last_mut() {
            Some(b) if !prefix.is_empty() && b.prefix == prefix && b.end + 1 == i => b.end = i,
            _ => out.push(Block {
                prefix: prefix.to_string(),
                start: i,
                end: i,
            }),
        }
    }
    out
}

fn signature(spec: &NetSpec, b: &Block) -> Signature {
    let names = &spec.layers[b.start..=b.end];
    let before = if b.start == 0 {
        INPUT_NODE
    } else {
        spec.layers[b.start - 1].name.as_str()
    };
    let rel = |name: &str| -> String {
        if name == before {
            "<before>".into()
        } else if names.iter().any(|l| l.name == name) {
            name[b.prefix.len()..].to_string()
        } else {
            format!("@{name}")
        }
    };
    Signature {
        layers: names
            .iter()
            .map(|l| {
                (
                    l.name[b.prefix.len()..].to_string(),
                    l.op.clone(),
                    l.init,
                    l.bias_std.to_bits(),
                )
            })
            .collect(),
        skips: spec
            .skips
            .iter()
            .filter(|s| names.iter().any(|l| l.name == s.to))
            .map(|s| (rel(&s.from), rel(&s.to), s.shortcut, s.scale))
            .collect(),
    }
}

/// `stage1.block3` → (`stage1.`, `block`, 3).
fn numbered(prefix: &str) -> Option<(&str, &str, usize)> {
    let (parent, last) = match prefix.rsplit_once('.') {
        Some((p, l)) => (&prefix[..p.len() + 1], l),
        None => ("", prefix),
    };
    let stem = last.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = last[stem.len()..].parse().ok()?;
    Some((parent, stem, n))
}

/// Runs of at least three identical, consecutively numbered blocks: all but the first collapse.
fn groups(spec: &NetSpec) -> Vec<Row> {
    let blocks = blocks_of(spec);
    let sigs: Vec<Option<Signature>> = blocks
        .iter()
        .map(|b| numbered(&b.prefix).map(|_| signature(spec, b)))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let mut j = i + 1;
        if let (Some(si), Some((pi, ti, ni))) = (&sigs[i], numbered(&blocks[i].prefix)) {
            while j < blocks.len() {
                let same = sigs[j].as_ref() == Some(si)
                    && numbered(&blocks[j].prefix)
                        .is_some_and(|(p, t, n)| p == pi && t == ti && n == ni + (j - i));
                if !same {
                    break;
                }
                j += 1;
            }
            if j - i >= 3 {
                let first = &blocks[i + 1];
                let last = &blocks[j - 1];
                let (p, t, n0) = numbered(&first.prefix).expect("numbered");
                let n1 = numbered(&last.prefix).expect("numbered").2;
                out.push(Row::Group {
                    start: first.start,
                    end: last.end,
                    blocks: j - i - 1,
                    label: format!("{p}{t}{n0}-{n1} x{}", j - i - 1),
                    key: first.prefix.clone(),
                });
            }
        }
        i = j;
    }
    out
}

/// The keys of every group of repeated blocks in `spec`.
pub fn group_keys(spec: &NetSpec) -> Vec<String> {
    groups(spec)
        .into_iter()
        .filter_map(|r| match r {
            Row::Group { key, .. } => Some(key),
            _ => None,
        })
        .collect()
}

impl View {
    /// Lays out `spec` with the groups in `expanded` open.
    pub fn build(spec: &NetSpec, revision: u64, expanded: &BTreeSet<String>) -> View {
        let diag = diagnose(spec);
        let groups = groups(spec);
        let mut rows = vec![Row::Input];
        let mut row_of = vec![0; spec.layers.len() + 1];
        let mut g = groups.iter().peekable();
        let mut i = 0;
        while i < spec.layers.len() {
            if let Some(Row::Group {
                start,
                end,
                label,
                key,
                ..
            }) = g.peek().copied()
                && *start == i
            {
                let group = g.next().expect("peeked").clone();
                if expanded.contains(key) {
                    rows.push(Row::GroupHeader {
                        label: label.clone(),
                        key: key.clone(),
                    });
                } else {
                    for r in &mut row_of[start + 1..=end + 1] {
                        *r = rows.len();
                    }
                    rows.push(group);
                    i = end + 1;
                    continue;
                }
            }
            row_of[i + 1] = rows.len();
            rows.push(Row::Layer(i));
            i += 1;
        }
        let pos: HashMap<&str, usize> = std::iter::once((INPUT_NODE, 0))
            .chain(
                spec.layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.name.as_str(), i + 1)),
            )
            .collect();
        let mut arcs: Vec<ArcInfo> = spec
            .skips
            .iter()
            .enumerate()
            .filter_map(|(k, s)| {
                let (a, b) = (*pos.get(s.from.as_str())?, *pos.get(s.to.as_str())?);
                let (ra, rb) = (row_of[a], row_of[b]);
                (ra != rb).then(|| ArcInfo {
                    skip: k,
                    from_row: ra.min(rb),
                    to_row: ra.max(rb),
                    lane: 0,
                })
            })
            .collect();
        // Lanes: shorter arcs first, each one lane outside every arc it overlaps, so that an
        // arc nested in another is drawn inside it (arcs that only touch share a lane).
        arcs.sort_by_key(|a| (a.to_row - a.from_row, a.from_row));
        for k in 0..arcs.len() {
            let (f, t) = (arcs[k].from_row, arcs[k].to_row);
            arcs[k].lane = arcs[..k]
                .iter()
                .filter(|b| b.from_row < t && f < b.to_row)
                .map(|b| b.lane + 1)
                .max()
                .unwrap_or(0);
        }
        let lanes = arcs.iter().map(|a| a.lane + 1).max().unwrap_or(0);
        let shapes: Vec<Option<Shape>> = diag.layers.iter().map(|l| l.map(|f| f.output)).collect();
        let fixable = diag
            .skips
            .iter()
            .enumerate()
            .map(|(k, e)| {
                matches!(e, Some(SpecError::SkipShapeMismatch { .. })) && {
                    let mut trial = spec.clone();
                    trial.skips[k].shortcut = Shortcut::Projection { batch_norm: true };
                    matches!(check_skip(&trial, k, diag.input, &shapes), Ok(Some(_)))
                }
            })
            .collect();
        View {
            fixable,
            revision,
            expanded: expanded.clone(),
            diag,
            rows,
            row_of,
            arcs,
            lanes,
        }
    }
}

fn op_color(op: &LayerOp) -> Color32 {
    match op {
        LayerOp::Linear { .. } | LayerOp::Conv2d { .. } => Color32::from_rgb(52, 78, 120),
        LayerOp::BatchNorm { .. } => Color32::from_rgb(44, 105, 70),
        LayerOp::Activation { .. } => Color32::from_rgb(120, 82, 40),
        LayerOp::GlobalAvgPool | LayerOp::Flatten => Color32::from_rgb(75, 75, 80),
        LayerOp::Head { .. } => Color32::from_rgb(100, 60, 120),
    }
}

fn shape_text(s: Option<Shape>) -> String {
    s.map_or_else(|| "?".to_string(), |s| s.to_string())
}

/// A short reason for an arc's label.
fn short_reason(e: &SpecError) -> String {
    match e {
        SpecError::SkipShapeMismatch {
            from_shape,
            to_shape,
            ..
        } => format!("{from_shape} vs {to_shape}: shapes differ"),
        other => other.to_string(),
    }
}

/// Draws the chain and returns what the user did.
pub fn show(ui: &mut Ui, d: &mut Designer, view: &View) -> Vec<CanvasAction> {
    let mut actions = Vec::new();
    let spec = &d.spec;
    let total_h = view.rows.len() as f32 * ROW_H + ROW_H;
    let arcs_w = 40.0 + LANE_W * view.lanes as f32 + 320.0;
    let mut area = egui::ScrollArea::both()
        .id_salt("designer-canvas")
        .auto_shrink([false, false]);
    if let Some(o) = d.scroll_to.take() {
        area = area.vertical_scroll_offset(o);
    }
    area.show_viewport(ui, |ui, viewport| {
        let width = (LEFT + NODE_W + arcs_w).max(ui.available_width());
        let (rect, _) = ui.allocate_exact_size(vec2(width, total_h), Sense::hover());
        let painter = ui.painter().clone();
        let first = ((viewport.min.y / ROW_H).floor().max(0.0)) as usize;
        let last = (((viewport.max.y / ROW_H).ceil()) as usize + 1).min(view.rows.len());
        let row_rect = |r: usize| {
            Rect::from_min_size(
                pos2(rect.min.x + LEFT, rect.min.y + r as f32 * ROW_H + 3.0),
                vec2(NODE_W, ROW_H - 6.0),
            )
        };
        let visuals = ui.visuals().clone();
        let text_color = Color32::from_gray(235);
        let font = FontId::proportional(13.0);
        let small = FontId::proportional(11.5);
        let error_color = visuals.error_fg_color;
        let selected_color = Color32::from_rgb(250, 210, 60);
        // Shift or Ctrl adds to the selection; a click's or key's own modifiers count too (a
        // frame may see the modifier pressed and released around the event).
        let add_to_selection = ui.input(|i| {
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
        });

        // Which nodes are the endpoints of an invalid skip (drawn with a red border).
        let mut bad_nodes: Vec<usize> = Vec::new();
        for (k, e) in view.diag.skips.iter().enumerate() {
            if e.is_some()
                && let Some(p) = node_position(spec, &spec.skips[k].to)
            {
                bad_nodes.push(p);
            }
        }
        let layer_error_node = view
            .diag
            .result
            .as_ref()
            .err()
            .filter(|e| e.skip_index().is_none())
            .and_then(|e| e.node())
            .and_then(|n| spec.index_of(n))
            .map(|i| i + 1);

        for r in first..last {
            let nr = row_rect(r);
            let row = &view.rows[r];
            let (node, id_key, name, middle, right, fill) = match row {
                Row::Input => (
                    Some(0),
                    "input".to_string(),
                    "input".to_string(),
                    String::new(),
                    view.diag.input.to_string(),
                    Color32::from_rgb(60, 60, 66),
                ),
                Row::Layer(i) => {
                    let l = &spec.layers[*i];
                    let facts = view.diag.layers[*i];
                    let params = facts.map_or(0, |f| f.params);
                    let right = if params > 0 {
                        format!(
                            "{}  {} p",
                            shape_text(facts.map(|f| f.output)),
                            crate::numbers::si(params as f64)
                        )
                    } else {
                        shape_text(facts.map(|f| f.output))
                    };
                    (
                        Some(i + 1),
                        format!("layer{i}"),
                        l.name.clone(),
                        l.op_label(),
                        right,
                        op_color(&l.op),
                    )
                }
                Row::Group {
                    start,
                    end,
                    label,
                    key,
                    ..
                } => {
                    let params: u64 = view.diag.layers[*start..=*end]
                        .iter()
                        .flatten()
                        .map(|f| f.params)
                        .sum();
                    let out = view.diag.layers[*end].map(|f| f.output);
                    (
                        None,
                        format!("group {key}"),
                        format!("[+] {label}"),
                        format!("{} layers", end - start + 1),
                        format!(
                            "{}  {} p",
                            shape_text(out),
                            crate::numbers::si(params as f64)
                        ),
                        Color32::from_rgb(50, 62, 80),
                    )
                }
                Row::GroupHeader { label, key } => (
                    None,
                    format!("header {key}"),
                    format!("[-] {label}"),
                    "click to collapse".to_string(),
                    String::new(),
                    Color32::from_rgb(40, 44, 52),
                ),
            };
            let id = egui::Id::unique(("designer-node", id_key.as_str()));
            let sense = if node.is_some() {
                Sense::click_and_drag()
            } else {
                Sense::click()
            };
            let resp = ui.interact(nr, id, sense);
            let selected = node.is_some_and(|p| d.selected.contains(&p));
            let label = match (node, row) {
                (Some(_), _) => format!("node {name} | {middle} | {right}"),
                _ => format!("{name} | {middle}"),
            };
            resp.widget_info(|| {
                egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label)
            });
            let stroke = if selected {
                Stroke::new(2.0, selected_color)
            } else if node.is_some_and(|p| bad_nodes.contains(&p) || layer_error_node == Some(p)) {
                Stroke::new(2.0, error_color)
            } else if resp.hovered() || resp.has_focus() {
                Stroke::new(1.5, Color32::from_gray(200))
            } else {
                Stroke::new(1.0, Color32::from_gray(90))
            };
            painter.rect_filled(nr, 4.0, fill);
            painter.rect_stroke(nr, 4.0, stroke, StrokeKind::Inside);
            painter.text(
                nr.left_center() + vec2(8.0, 0.0),
                Align2::LEFT_CENTER,
                &name,
                font.clone(),
                text_color,
            );
            // The selected layer's width is edited right in its node.
            let inline = match row {
                Row::Layer(i) if d.selected == [i + 1] => {
                    let mut op = spec.layers[*i].op.clone();
                    let w = width_mut(&mut op).map(|w| *w);
                    w.map(|w| (*i, w, op))
                }
                _ => None,
            };
            if let Some((i, mut w, op)) = inline {
                let prefix = match op {
                    LayerOp::Head { .. } => "head ".to_string(),
                    LayerOp::Conv2d {
                        kernel, stride: 1, ..
                    } => format!("conv{kernel}x{kernel} "),
                    LayerOp::Conv2d { kernel, stride, .. } => {
                        format!("conv{kernel}x{kernel}/{stride} ")
                    }
                    _ => "linear ".to_string(),
                };
                let r = Rect::from_center_size(
                    nr.center() + vec2(40.0, 0.0),
                    vec2(120.0, ROW_H - 10.0),
                );
                if ui
                    .put(
                        r,
                        egui::DragValue::new(&mut w)
                            .range(1..=65_536)
                            .prefix(prefix),
                    )
                    .on_hover_text("width: drag or type")
                    .changed()
                {
                    actions.push(CanvasAction::SetWidth(i, w));
                }
            } else {
                painter.text(
                    nr.center() + vec2(40.0, 0.0),
                    Align2::CENTER_CENTER,
                    &middle,
                    small.clone(),
                    Color32::from_gray(200),
                );
            }
            painter.text(
                nr.right_center() - vec2(8.0, 0.0),
                Align2::RIGHT_CENTER,
                &right,
                small.clone(),
                text_color,
            );
            if let Some(p) = node {
                // The output port: where a drag starts.
                painter.circle_filled(nr.right_center(), 3.5, Color32::from_gray(170));
                if resp.drag_started() {
                    d.drag = Some(Drag {
                        from: p,
                        pointer: resp.interact_pointer_pos(),
                    });
                }
                if resp.clicked() {
                    actions.push(CanvasAction::Select {
                        node: p,
                        add: add_to_selection,
                    });
                }
            } else if resp.clicked()
                && let Row::Group { key, .. } | Row::GroupHeader { key, .. } = row
            {
                actions.push(CanvasAction::ToggleGroup(key.clone()));
            }
        }

        // The arcs crossing the visible rows.
        let x0 = rect.min.x + LEFT + NODE_W;
        for a in &view.arcs {
            if a.to_row < first.saturating_sub(1) || a.from_row > last {
                continue;
            }
            let y0 = row_rect(a.from_row).center().y;
            let y1 = row_rect(a.to_row).center().y;
            let bulge = 22.0 + LANE_W * a.lane as f32;
            let skip = &spec.skips[a.skip];
            let error = view.diag.skips[a.skip].as_ref();
            let selected = d.selected_skip == Some(a.skip);
            let color = if error.is_some() {
                error_color
            } else if selected {
                selected_color
            } else {
                Color32::from_rgb(90, 170, 240)
            };
            let width = if selected { 2.5 } else { 1.6 };
            let p0 = pos2(x0 + 4.0, y0);
            let p3 = pos2(x0 + 4.0, y1);
            let c = x0 + 4.0 + bulge * 1.33;
            painter.add(egui::epaint::CubicBezierShape::from_points_stroke(
                [p0, pos2(c, y0), pos2(c, y1), p3],
                false,
                Color32::TRANSPARENT,
                Stroke::new(width, color),
            ));
            // Arrow head into the target.
            painter.add(egui::Shape::convex_polygon(
                vec![p3, p3 + vec2(7.0, -4.0), p3 + vec2(7.0, 4.0)],
                color,
                Stroke::NONE,
            ));
            let apex = pos2(x0 + 4.0 + bulge, (y0 + y1) / 2.0);
            let handle = Rect::from_center_size(apex, vec2(12.0, 12.0));
            let resp = ui.interact(
                handle,
                egui::Id::unique(("designer-skip", a.skip)),
                Sense::click(),
            );
            let label = format!("skip {} to {}", skip.from, skip.to);
            resp.widget_info(|| {
                egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label)
            });
            let resp = resp.on_hover_text(match error {
                Some(e) => format!("{label}: {e}"),
                None => format!("{label}: click to edit"),
            });
            painter.circle_filled(apex, if resp.hovered() { 6.0 } else { 4.5 }, color);
            if resp.clicked() {
                actions.push(CanvasAction::SelectSkip(a.skip));
            }
            let tag = match skip.shortcut {
                Shortcut::Identity => String::new(),
                Shortcut::ZeroPad => "pad".into(),
                Shortcut::Projection { .. } => "proj".into(),
            };
            let tag = if skip.scale != BranchScale::default() {
                format!(
                    "{tag} a={}{}",
                    skip.scale.value,
                    if skip.scale.learnable { "*" } else { "" }
                )
            } else {
                tag
            };
            if let Some(e) = error {
                let r = painter.text(
                    apex + vec2(10.0, 0.0),
                    Align2::LEFT_CENTER,
                    short_reason(e),
                    small.clone(),
                    error_color,
                );
                if view.fixable[a.skip] {
                    let b = Rect::from_min_size(r.right_top() + vec2(6.0, -3.0), vec2(110.0, 18.0));
                    if ui
                        .put(b, egui::Button::new("fix: projection").small())
                        .on_hover_text("use a 1x1 projection for this skip")
                        .clicked()
                    {
                        actions.push(CanvasAction::UseProjection(a.skip));
                    }
                }
            } else if !tag.trim().is_empty() {
                painter.text(
                    apex + vec2(9.0, 0.0),
                    Align2::LEFT_CENTER,
                    tag.trim(),
                    small.clone(),
                    Color32::from_gray(190),
                );
            }
        }

        // A drag in progress: a line from the source's port to the pointer; on release, a skip
        // to the node under the pointer.
        if let Some(mut drag) = d.drag {
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
                let start = row_rect(from_row).right_center();
                painter.line_segment([start, p], Stroke::new(2.0, selected_color));
                painter.circle_filled(p, 4.0, selected_color);
            }
            d.drag = Some(drag);
            if released || !down {
                d.drag = None;
                let target = drag.pointer.and_then(|p| {
                    let r = ((p.y - rect.min.y) / ROW_H).floor();
                    if r < 0.0 {
                        return None;
                    }
                    match view.rows.get(r as usize)? {
                        Row::Input => Some(0),
                        Row::Layer(i) => Some(i + 1),
                        _ => None,
                    }
                });
                if let Some(t) = target
                    && t != drag.from
                {
                    actions.push(CanvasAction::AddSkip(drag.from, t));
                }
            } else {
                ui.ctx().request_repaint();
            }
        }
    });
    actions
}
