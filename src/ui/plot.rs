//! Drawing helpers shared by the lab: the palette as egui colours, log-axis tick labels, the
//! heatmap colour bar, the link between step axes, and panel captions.

use crate::figure::palette;
use egui::{Color32, Rect, Ui, Vec2, pos2};
use egui_plot::GridMark;
use std::ops::RangeInclusive;

fn rgb(c: palette::Rgb) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

/// The `i`-th run's or line's colour ([`palette::categorical`]).
pub fn run_color(i: usize) -> Color32 {
    rgb(palette::categorical(i))
}

/// A legend swatch: a filled square for a solid line or a bar, a dashed stroke for a dashed
/// line (the palette's hues come back dashed after the first ten).
pub fn swatch(ui: &mut Ui, color: Color32, dashed: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(16.0, 12.0), egui::Sense::hover());
    if dashed {
        let y = rect.center().y;
        let stroke = egui::Stroke::new(2.5, color);
        ui.painter().add(egui::Shape::dashed_line(
            &[pos2(rect.left(), y), pos2(rect.right(), y)],
            stroke,
            4.0,
            3.0,
        ));
    } else {
        ui.painter()
            .rect_filled(rect.shrink2(egui::vec2(2.0, 0.0)), 2.0, color);
    }
}

/// The `i`-th run's swatch: its colour, dashed when the palette dashes it.
pub fn run_swatch(ui: &mut Ui, i: usize) {
    swatch(ui, run_color(i), palette::dashed(i));
}

/// The x axes of all plots over training steps move together.
pub fn step_link() -> egui::Id {
    egui::Id::unique("reslab-steps")
}

/// A tick label for values plotted as log10: a mark at 2 reads `1e2`, one between powers of
/// ten its value.
pub fn log_axis_label(mark: GridMark, _range: &RangeInclusive<f64>) -> String {
    let v = mark.value;
    if (v - v.round()).abs() < 1e-6 {
        format!("1e{}", v.round() as i64)
    } else {
        crate::numbers::sig(10f64.powf(v))
    }
}

/// A panel's caption: what it shows and what to look for, at body size (readable, not faint).
pub fn caption(ui: &mut Ui, text: &str) {
    ui.label(text);
}

/// A vertical colour bar over a heatmap's colour range (in plotted units: log10 when `log`),
/// labelled in the value at both ends and the middle.
pub fn color_legend(ui: &mut Ui, (lo, hi): (f64, f64), log: bool, height: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(60.0, height), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    let bar = Rect::from_min_size(rect.min, Vec2::new(12.0, rect.height()));
    let steps = 48;
    for i in 0..steps {
        let t0 = i as f32 / steps as f32;
        let t1 = (i + 1) as f32 / steps as f32;
        let r = Rect::from_min_max(
            pos2(bar.left(), bar.bottom() - t1 * bar.height()),
            pos2(bar.right(), bar.bottom() - t0 * bar.height()),
        );
        painter.rect_filled(r, 0.0, rgb(palette::viridis(t0)));
    }
    let font = egui::FontId::proportional(12.0);
    let color = ui.visuals().text_color();
    let value = |v: f64| crate::numbers::sig(if log { 10f64.powf(v) } else { v });
    for (t, v) in [(0.0, lo), (0.5, 0.5 * (lo + hi)), (1.0, hi)] {
        let y = bar.bottom() - t * bar.height();
        painter.text(
            pos2(
                bar.right() + 3.0,
                y.clamp(rect.top() + 6.0, rect.bottom() - 6.0),
            ),
            egui::Align2::LEFT_CENTER,
            value(v),
            font.clone(),
            color,
        );
    }
}
