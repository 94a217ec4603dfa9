//! The skips crossing the visible rows, as arcs beside the chain (He et al. 2016 draw them so):
//! each with an arrow into its target, a handle that selects it, its shortcut and branch scale,
//! or, when its shapes do not fit, the reason in red and a one-click fix where a projection fits.

use super::super::action::Action;
use super::view::ArcInfo;
use super::{CanvasInput, Frame, LANE_W, LEFT, NODE_W};
use crate::spec::{BranchScale, Shortcut, SkipSpec, SpecError};
use egui::{Align2, Color32, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};

/// Draws the arcs that cross the visible rows; returns skip selections and fixes.
pub(super) fn draw(ui: &mut Ui, f: &Frame, input: &CanvasInput<'_>) -> Vec<Action> {
    let mut actions = Vec::new();
    let view = input.view;
    let (first, last) = (f.visible.start, f.visible.end);
    for a in &view.arcs {
        if a.to_row < first.saturating_sub(1) || a.from_row > last {
            continue;
        }
        let skip = &input.spec.skips[a.skip];
        let error = view.diag.skips[a.skip].as_ref();
        let selected = input.selection.skip() == Some(a.skip);
        let color = if error.is_some() {
            f.error
        } else if selected {
            f.selected
        } else {
            Color32::from_rgb(90, 170, 240)
        };
        let apex = paint_arc(f, a, color, if selected { 2.5 } else { 1.6 });
        if handle(ui, f, a.skip, skip, apex, (color, selected, error)) {
            actions.push(Action::SelectSkip(a.skip));
        }
        match error {
            Some(e) => {
                let r = f.painter.text(
                    apex + vec2(10.0, 0.0),
                    Align2::LEFT_CENTER,
                    short_reason(e),
                    f.small.clone(),
                    f.error,
                );
                let b = Rect::from_min_size(r.right_top() + vec2(6.0, -3.0), vec2(110.0, 18.0));
                if view.fixable[a.skip]
                    && ui
                        .put(b, egui::Button::new("fix: projection").small())
                        .on_hover_text("use a 1x1 projection for this skip")
                        .clicked()
                {
                    actions.push(Action::UseProjection(a.skip));
                }
            }
            None => {
                let tag = tag(skip);
                if !tag.is_empty() {
                    let gray = Color32::from_gray(190);
                    let at = apex + vec2(9.0, 0.0);
                    f.painter
                        .text(at, Align2::LEFT_CENTER, tag, f.small.clone(), gray);
                }
            }
        }
    }
    actions
}

/// Paints the arc of `a` with its arrow head; returns its apex (where the handle goes).
fn paint_arc(f: &Frame, a: &ArcInfo, color: Color32, width: f32) -> Pos2 {
    let x0 = f.rect.min.x + LEFT + NODE_W;
    let y0 = f.row_rect(a.from_row).center().y;
    let y1 = f.row_rect(a.to_row).center().y;
    let bulge = 22.0 + LANE_W * a.lane as f32;
    let p0 = pos2(x0 + 4.0, y0);
    let p3 = pos2(x0 + 4.0, y1);
    let c = x0 + 4.0 + bulge * 1.33;
    f.painter
        .add(egui::epaint::CubicBezierShape::from_points_stroke(
            [p0, pos2(c, y0), pos2(c, y1), p3],
            false,
            Color32::TRANSPARENT,
            Stroke::new(width, color),
        ));
    // Arrow head into the target.
    f.painter.add(egui::Shape::convex_polygon(
        vec![p3, p3 + vec2(7.0, -4.0), p3 + vec2(7.0, 4.0)],
        color,
        Stroke::NONE,
    ));
    pos2(x0 + 4.0 + bulge, (y0 + y1) / 2.0)
}

/// The skip's handle at `apex`, a button for screen readers and the keyboard; whether it was
/// clicked.
fn handle(
    ui: &mut Ui,
    f: &Frame,
    k: usize,
    skip: &SkipSpec,
    apex: Pos2,
    (color, selected, error): (Color32, bool, Option<&SpecError>),
) -> bool {
    let rect = Rect::from_center_size(apex, vec2(12.0, 12.0));
    let resp = ui.interact(rect, egui::Id::unique(("designer-skip", k)), Sense::click());
    let label = format!("skip {} to {}", skip.from, skip.to);
    resp.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, &label));
    let resp = resp.on_hover_text(match error {
        Some(e) => format!("{label}: {e}"),
        None => format!("{label}: click to edit"),
    });
    f.painter
        .circle_filled(apex, if resp.hovered() { 6.0 } else { 4.5 }, color);
    resp.clicked()
}

/// The arc's label: its shortcut (`pad`, `proj`) and a branch scale other than 1 (`a=0*`, the
/// star for learnable).
fn tag(skip: &SkipSpec) -> String {
    let shortcut = match skip.shortcut {
        Shortcut::Identity => "",
        Shortcut::ZeroPad => "pad",
        Shortcut::Projection { .. } => "proj",
    };
    let tag = if skip.scale != BranchScale::default() {
        format!(
            "{shortcut} a={}{}",
            skip.scale.value,
            if skip.scale.learnable { "*" } else { "" }
        )
    } else {
        shortcut.to_string()
    };
    tag.trim().to_string()
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
