//! Figures drawn with egui_plot: the one renderer of the lab's panels and the Experiments tab.
//! Lines, bands, bars (grouped or stacked), heatmaps (rows named, class maps, contours) and
//! images, each with tick labels in the value (log axes too), a legend above the plot that
//! covers nothing, and a tooltip at the pointer naming what is under it with its measured value
//! ([`crate::figure::hover`]); nothing away from the data. Plots over training steps move
//! their x axes together.

use super::plot::{color_legend, log_axis_label, step_link, swatch};
use crate::figure::contours::contour_segments;
use crate::figure::hover::{Pointer, describe, plotted};
use crate::figure::palette::{self, Rgb};
use crate::figure::{BarSeries, Figure, FigureKind, ImageTile, LineSeries, Style};
use crate::numbers::sig;
use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions, Ui};
use egui_plot::{
    Bar, BarChart, FilledArea, Line, LineStyle, Plot, PlotImage, PlotPoint, PlotUi, Points,
};

/// Legend entries listed at most (the rest are counted).
const LEGEND_MAX: usize = 12;

fn rgb(c: Rgb) -> Color32 {
    Color32::from_rgb(c[0], c[1], c[2])
}

/// Draws figures, keeping each heatmap's and image's texture until its data changes.
#[derive(Default)]
pub struct FigurePainter {
    textures: Vec<(String, u64, TextureHandle)>,
}

impl FigurePainter {
    /// Forgets the textures whose ids contain `part` (an experiment's earlier result).
    pub fn forget(&mut self, part: &str) {
        self.textures.retain(|(k, _, _)| !k.contains(part));
    }

    /// Figures in a grid, two columns on a wide window, each plot `height` points high; plot ids
    /// start with `id`.
    pub fn grid(&mut self, ui: &mut Ui, figures: &[&Figure], id: &str, height: f32) {
        let width = ui.available_width();
        let columns = if width > 900.0 { 2 } else { 1 };
        let fig_w = width / columns as f32 - 10.0;
        for (row, chunk) in figures.chunks(columns).enumerate() {
            ui.horizontal_top(|ui| {
                for (k, fig) in chunk.iter().enumerate() {
                    ui.allocate_ui_with_layout(
                        egui::vec2(fig_w, height + 40.0),
                        egui::Layout::top_down(egui::Align::Min),
                        |ui| {
                            ui.set_width(fig_w);
                            let index = row * columns + k;
                            self.show(ui, fig, &format!("{id}-{index}"), 0, height);
                        },
                    );
                }
            });
        }
    }

    /// Draws `fig` as the plot `id`, `height` points high; `key` changes when its data does.
    pub fn show(&mut self, ui: &mut Ui, fig: &Figure, id: &str, key: u64, height: f32) {
        ui.label(RichText::new(&fig.title).strong());
        legend_row(ui, fig);
        match &fig.kind {
            FigureKind::Lines { series } => lines(ui, fig, series, id, height),
            FigureKind::Bars { categories, series } => {
                bars(ui, fig, (categories, series), id, height)
            }
            FigureKind::Heatmap { .. } => self.heatmap(ui, fig, id, key, height),
            FigureKind::Images { images } => self.images(ui, images, id, key),
        }
    }

    /// The texture `id` for data `key`, made by `make` when new or changed.
    fn texture(
        &mut self,
        ctx: &egui::Context,
        id: &str,
        key: u64,
        options: TextureOptions,
        make: impl FnOnce() -> ColorImage,
    ) -> egui::TextureId {
        if let Some((_, k, t)) = self.textures.iter_mut().find(|(n, _, _)| n == id) {
            if *k != key {
                t.set(make(), options);
                *k = key;
            }
            return t.id();
        }
        let t = ctx.load_texture(id, make(), options);
        let tid = t.id();
        self.textures.push((id.to_string(), key, t));
        tid
    }
}

/// The plot a figure is drawn in: axis names, tick labels in the value, x linked with the
/// other step plots, and no label of egui_plot's own (the tooltip says what is under the
/// pointer).
fn plot_for<'a>(fig: &'a Figure, id: &'a str, height: f32) -> Plot<'a> {
    let mut plot = Plot::new(id)
        .height(height)
        .allow_scroll(false)
        .x_axis_label(fig.x_label.as_str())
        .y_axis_label(fig.y_label.as_str())
        .label_formatter(|_| None);
    if fig.log_y && !matches!(fig.kind, FigureKind::Heatmap { .. }) {
        plot = plot.y_axis_formatter(log_axis_label);
    }
    if fig.x_label == "step" {
        plot = plot
            .link_axis(step_link(), [true, false])
            .link_cursor(step_link(), [true, false]);
    }
    if let Some([lo, hi]) = fig.look.y_range {
        for v in [lo, hi] {
            if let Some(y) = plotted(v, fig.log_y) {
                plot = plot.include_y(y);
            }
        }
    }
    plot
}

/// Shows what is under the pointer as a tooltip, when something is.
fn hover(fig: &Figure, r: &egui_plot::PlotResponse<()>) {
    let Some(pos) = r.response.hover_pos() else {
        return;
    };
    let v = r.transform.value_from_position(pos);
    let d = r.transform.dvalue_dpos();
    let p = Pointer {
        x: v.x,
        y: v.y,
        per_px: [d[0].abs(), d[1].abs()],
    };
    if let Some(text) = describe(fig, p) {
        r.response.clone().on_hover_text_at_pointer(text);
    }
}

/// The colour, width and dash of the `i`-th of `n` lines.
fn line_look(fig: &Figure, s: &LineSeries, i: usize, n: usize) -> (Color32, f32, bool) {
    let c = match s.color {
        Some(k) => rgb(palette::categorical(k)),
        None if fig.look.depth_colors => rgb(palette::depth(i, n)),
        None => rgb(palette::categorical(i)),
    };
    let by_palette = s.color.is_some() || !fig.look.depth_colors;
    let dashed = s.style == Style::Dashed || (by_palette && palette::dashed(s.color.unwrap_or(i)));
    match s.style {
        Style::Bold => (c, 2.5, dashed),
        Style::Faint => (c.gamma_multiply(0.3), 1.0, dashed),
        _ => (c, 1.5, dashed),
    }
}

/// The legend as a row of coloured names above the plot (it covers no data): every named line
/// or bar series, the first and last few when there are many.
fn legend_row(ui: &mut Ui, fig: &Figure) {
    let line = |s: &LineSeries, look: (Color32, f32, bool)| (s.name.clone(), look.0, look.2);
    let entries: Vec<(String, Color32, bool)> = match &fig.kind {
        FigureKind::Lines { series } => {
            let n = series.len();
            series
                .iter()
                .chain(&fig.look.overlay)
                .enumerate()
                .filter(|(_, s)| !s.name.is_empty())
                .map(|(i, s)| line(s, line_look(fig, s, i, n)))
                .collect()
        }
        FigureKind::Bars { series, .. } if series.len() > 1 || !fig.look.overlay.is_empty() => {
            let bars = series.iter().enumerate().map(|(i, s)| {
                let c = rgb(palette::categorical(s.color.unwrap_or(i)));
                (s.name.clone(), c, false)
            });
            let n = series.len();
            let lines = fig.look.overlay.iter().enumerate();
            let lines = lines.map(|(i, s)| line(s, line_look(fig, s, n + i, n)));
            bars.chain(lines).collect()
        }
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return;
    }
    let shown: Vec<&(String, Color32, bool)> = if entries.len() > LEGEND_MAX {
        let half = LEGEND_MAX / 2;
        entries[..half]
            .iter()
            .chain(&entries[entries.len() - half..])
            .collect()
    } else {
        entries.iter().collect()
    };
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 10.0;
        for (k, (name, c, dashed)) in shown.iter().enumerate() {
            if entries.len() > LEGEND_MAX && k == LEGEND_MAX / 2 {
                ui.label(format!("… {} more …", entries.len() - LEGEND_MAX));
            }
            swatch(ui, *c, *dashed);
            ui.label(RichText::new(name.as_str()).color(*c));
        }
    });
}

fn lines(ui: &mut Ui, fig: &Figure, series: &[LineSeries], id: &str, height: f32) {
    let n = series.len();
    let log = fig.log_y;
    let r = plot_for(fig, id, height).show(ui, |p| {
        for b in &fig.look.bands {
            let pts: Vec<[f64; 3]> = b
                .points
                .iter()
                .filter_map(|q| Some([q[0], plotted(q[1], log)?, plotted(q[2], log)?]))
                .collect();
            let col = |k: usize| pts.iter().map(|q| q[k]).collect::<Vec<f64>>();
            let fill = rgb(palette::categorical(b.color.unwrap_or(0))).gamma_multiply(0.25);
            p.add(FilledArea::new(b.name.as_str(), &col(0), &col(1), &col(2)).fill_color(fill));
        }
        for (i, s) in series.iter().chain(&fig.look.overlay).enumerate() {
            draw_line(p, s, line_look(fig, s, i, n), log);
        }
    });
    hover(fig, &r);
}

/// One line in its look: plotted points (log10 on a log axis), markers where asked.
fn draw_line(
    p: &mut PlotUi<'_>,
    s: &LineSeries,
    (c, width, dashed): (Color32, f32, bool),
    log: bool,
) {
    let pts: Vec<[f64; 2]> = s
        .points
        .iter()
        .map(|q| [q[0], plotted(q[1], log).unwrap_or(f64::NAN)])
        .collect();
    if matches!(s.style, Style::Points | Style::LinePoints) {
        let finite: Vec<[f64; 2]> = pts.iter().copied().filter(|q| q[1].is_finite()).collect();
        p.points(Points::new(s.name.as_str(), finite).color(c).radius(2.5));
    }
    if s.style != Style::Points {
        let mut line = Line::new(s.name.as_str(), pts).color(c).width(width);
        if dashed {
            line = line.style(LineStyle::dashed_loose());
        }
        p.line(line);
    }
}

/// Bars side by side (or stacked), with their category names under them (every k-th when
/// they would crowd), rising from the bottom of a log axis.
fn bars(
    ui: &mut Ui,
    fig: &Figure,
    (categories, series): (&[String], &[BarSeries]),
    id: &str,
    height: f32,
) {
    let log = fig.log_y;
    let floor = if log {
        let lows = series
            .iter()
            .flat_map(|s| s.values.iter().filter_map(|&v| plotted(v, true)));
        lows.fold(f64::INFINITY, f64::min).floor() - 0.5
    } else {
        0.0
    };
    let floor = if floor.is_finite() { floor } else { 0.0 };
    // A category name (12 characters at most) needs about 110 points; name every k-th when they
    // would crowd (egui_plot hides tick labels closer than their width).
    let every = (categories.len() as f32 * 110.0 / ui.available_width().max(1.0))
        .ceil()
        .max(1.0) as f64;
    let groups = if fig.look.stacked {
        1
    } else {
        series.len().max(1)
    };
    let w = 0.8 / groups as f64;
    let plot = plot_for(fig, id, height)
        .x_grid_spacer(egui_plot::uniform_grid_spacer(move |_| {
            [every, every, every]
        }))
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                categories
                    .get(i as usize)
                    .map(|c| c.chars().take(12).collect())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        });
    let n = series.len();
    let r = plot.show(ui, |p| {
        for (g, s) in series.iter().enumerate() {
            let slot = if fig.look.stacked { 0 } else { g };
            let color = rgb(palette::categorical(s.color.unwrap_or(g)));
            let list: Vec<Bar> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, &v)| {
                    let y = plotted(v, log)?;
                    let x = i as f64 - 0.4 + w * (slot as f64 + 0.5);
                    Some(
                        Bar::new(x, y - floor)
                            .base_offset(floor)
                            .width(w * 0.95)
                            .fill(color),
                    )
                })
                .collect();
            p.bar_chart(BarChart::new(s.name.as_str(), list).color(color));
        }
        for (i, s) in fig.look.overlay.iter().enumerate() {
            draw_line(p, s, line_look(fig, s, n + i, n), log);
        }
    });
    hover(fig, &r);
}

impl FigurePainter {
    /// A heatmap on its grid, cell centres on the grid points, with contour lines, the
    /// overlay, row names on y when it has them, and its colour bar.
    fn heatmap(&mut self, ui: &mut Ui, fig: &Figure, id: &str, key: u64, height: f32) {
        let Some(g) = fig.grid() else {
            return;
        };
        if !g.well_formed() {
            ui.label("malformed heatmap");
            return;
        }
        let (nx, ny, values) = (g.nx, g.ny, g.values);
        let log = fig.log_y;
        let range = palette::heat_range(values, log);
        let classes = fig.look.classes;
        let tex = self.texture(ui.ctx(), id, key, TextureOptions::NEAREST, || {
            heat_image(values, [nx, ny], range, log, classes)
        });
        let [cw, ch] = g.step();
        let (x_range, y_range) = (g.x_range, g.y_range);
        let (w, h) = (x_range[1] - x_range[0], y_range[1] - y_range[0]);
        let mut plot = plot_for(fig, id, height);
        if g.rows.is_empty() {
            plot = plot.data_aspect(1.0);
        } else {
            plot = plot
                .y_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
                .y_axis_formatter(move |mark, _| g.row_mark(mark.value));
        }
        let segments = contour_segments(values, nx, ny, g.contours);
        let to_plot = |a: [f64; 2]| [x_range[0] + a[0] * cw, y_range[0] + a[1] * ch];
        ui.horizontal_top(|ui| {
            let bar_w = if classes { 0.0 } else { 64.0 };
            let plot = plot.width((ui.available_width() - bar_w).max(80.0));
            let r = plot.show(ui, |p| {
                let centre = PlotPoint::new(x_range[0] + w / 2.0, y_range[0] + h / 2.0);
                let size = [(w + cw) as f32, (h + ch) as f32];
                p.image(PlotImage::new("value", tex, centre, size));
                for (a, b) in segments.iter().flat_map(|(_, segs)| segs) {
                    let seg = vec![to_plot(*a), to_plot(*b)];
                    p.line(
                        Line::new("contours", seg)
                            .color(Color32::from_white_alpha(170))
                            .width(1.0),
                    );
                }
                for (i, s) in fig.look.overlay.iter().enumerate() {
                    let c = rgb(palette::categorical(s.color.unwrap_or(i)));
                    draw_line(p, s, (c, 1.5, false), false);
                }
            });
            hover(fig, &r);
            if !classes {
                color_legend(ui, range, log, height);
            }
        });
        if !classes {
            ui.label(scale_words(range, log, g.contours));
        }
    }

    /// Images in rows, each scaled up to 84 pixels high (nearest neighbour, so the pixels stay
    /// visible) with its label under it.
    fn images(&mut self, ui: &mut Ui, images: &[ImageTile], id: &str, key: u64) {
        let per_row = ((ui.available_width() / 96.0).floor() as usize).max(1);
        for (r, row) in images.chunks(per_row).enumerate() {
            ui.horizontal(|ui| {
                for (j, t) in row.iter().enumerate() {
                    self.image_tile(ui, t, &format!("{id}-image{}", r * per_row + j), key);
                }
            });
        }
    }

    fn image_tile(&mut self, ui: &mut Ui, t: &ImageTile, id: &str, key: u64) {
        if t.rgb.len() != t.width * t.height * 3 || t.width == 0 || t.height == 0 {
            ui.label(format!("{}: malformed image", t.label));
            return;
        }
        let tex = self.texture(ui.ctx(), id, key, TextureOptions::NEAREST, || {
            ColorImage::from_rgb([t.width, t.height], &t.rgb)
        });
        let scale = 84.0 / t.height as f32;
        let size = egui::vec2(t.width as f32 * scale, t.height as f32 * scale);
        ui.vertical(|ui| {
            ui.set_width(size.x.max(84.0));
            ui.add(egui::Image::new((tex, size)));
            ui.label(&t.label);
        });
    }
}

/// The colour scale in words: its ends in the value, and the contour levels.
fn scale_words((lo, hi): (f64, f64), log: bool, contours: &[f64]) -> String {
    let value = |v: f64| sig(if log { 10f64.powf(v) } else { v });
    let mut text = format!(
        "colour{}: {} (dark) to {} (yellow)",
        if log { " (log scale)" } else { "" },
        value(lo),
        value(hi)
    );
    if !contours.is_empty() {
        let levels: Vec<String> = contours.iter().map(|&c| sig(c)).collect();
        text.push_str(&format!("; contours at {}", levels.join(", ")));
    }
    text
}

/// The heatmap's picture: image rows go top-down, the grid's y upwards.
fn heat_image(
    values: &[f64],
    [nx, ny]: [usize; 2],
    range: (f64, f64),
    log: bool,
    classes: bool,
) -> ColorImage {
    let mut pixels = Vec::with_capacity(nx * ny);
    for j in (0..ny).rev() {
        for i in 0..nx {
            let v = values[j * nx + i];
            let c = if classes {
                (v.is_finite() && v >= 0.0).then(|| palette::class_colour(v as usize))
            } else {
                palette::heat_colour(v, range, log)
            };
            pixels.push(c.map_or(Color32::from_gray(110), rgb));
        }
    }
    ColorImage::new([nx, ny], pixels)
}
