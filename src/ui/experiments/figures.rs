//! Drawing an experiment's figures: line plots, grouped bars, and heatmaps with contour lines and
//! a colour legend, each in its own plot. Heatmap pictures are kept as textures until the
//! experiment's next result replaces them.

use super::contours::contour_segments;
use crate::experiments::{BarSeries, Figure, FigureKind, ImageTile, LineSeries};
use crate::numbers::sig;
use crate::ui::plot::{
    color_legend, hover_point, log_axis_label, log10_points, run_color, viridis,
};
use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions, Ui};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotImage, PlotPoint};

/// The textures of the heatmaps drawn so far, by plot id.
#[derive(Default)]
pub(super) struct FigureTextures {
    textures: Vec<(String, TextureHandle)>,
}

impl FigureTextures {
    /// Forgets the pictures of an experiment's earlier result (their ids name the experiment).
    pub(super) fn forget(&mut self, experiment: &str) {
        self.textures
            .retain(|(k, _)| !k.contains(&format!("-{experiment}-")));
    }

    /// Draws `fig` as the plot `id`.
    pub(super) fn figure(&mut self, ui: &mut Ui, fig: &Figure, id: &str) {
        ui.label(RichText::new(&fig.title).strong());
        // On a heatmap `log_y` asks for a log colour scale, not a log axis.
        let log_y = fig.log_y && !matches!(fig.kind, FigureKind::Heatmap { .. });
        let plot = plot_for(fig, id, log_y);
        match &fig.kind {
            FigureKind::Lines { series } => lines(ui, plot, series, log_y),
            FigureKind::Bars { categories, series } => bars(ui, plot, categories, series, log_y),
            FigureKind::Heatmap { .. } => self.heatmap(ui, plot, fig, id),
            FigureKind::Images { images } => self.images(ui, images, id),
        }
    }

    /// Images in rows, each scaled up to 84 pixels high (nearest neighbour, so the pixels stay
    /// visible) with its label under it.
    fn images(&mut self, ui: &mut Ui, images: &[ImageTile], id: &str) {
        // Rows of as many tiles as fit (a wrapped layout cannot size the labelled tiles).
        let per_row = ((ui.available_width() / 96.0).floor() as usize).max(1);
        for (r, row) in images.chunks(per_row).enumerate() {
            ui.horizontal(|ui| {
                for (j, t) in row.iter().enumerate() {
                    self.image_tile(ui, t, &format!("{id}-image{}", r * per_row + j));
                }
            });
        }
    }

    /// One image scaled to 84 pixels high (nearest neighbour) with its label under it.
    fn image_tile(&mut self, ui: &mut Ui, t: &ImageTile, key: &str) {
        if t.rgb.len() != t.width * t.height * 3 || t.width == 0 || t.height == 0 {
            ui.label(format!("{}: malformed image", t.label));
            return;
        }
        let tex = match self.textures.iter().find(|(n, _)| n == key) {
            Some((_, tex)) => tex.id(),
            None => {
                let image = ColorImage::from_rgb([t.width, t.height], &t.rgb);
                let tex = ui.ctx().load_texture(key, image, TextureOptions::NEAREST);
                let tid = tex.id();
                self.textures.push((key.to_string(), tex));
                tid
            }
        };
        let scale = 84.0 / t.height as f32;
        let size = egui::vec2(t.width as f32 * scale, t.height as f32 * scale);
        ui.vertical(|ui| {
            ui.set_width(size.x.max(84.0));
            ui.add(egui::Image::new((tex, size)));
            ui.label(RichText::new(&t.label).small());
        });
    }

    /// A heatmap on its grid, cell centres on the grid points, with its contour lines; a log
    /// colour scale (with its legend) when the figure asks for one and the values allow it.
    fn heatmap(&mut self, ui: &mut Ui, plot: Plot<'_>, fig: &Figure, id: &str) {
        let FigureKind::Heatmap {
            x_range,
            y_range,
            nx,
            ny,
            values,
            contours,
        } = &fig.kind
        else {
            return;
        };
        let (nx, ny) = (*nx, *ny);
        if nx < 2 || ny < 2 || values.len() != nx * ny {
            ui.label("malformed heatmap");
            return;
        }
        let (lo, hi) = finite_range(values);
        // A log colour scale when asked for and possible (positive values), so that a few huge
        // values at the edge of a landscape do not flatten the basin.
        let log = fig.log_y && lo > 0.0;
        let tex = self.heat_texture(ui.ctx(), id, [nx, ny], values, log);
        let (w, h) = (x_range[1] - x_range[0], y_range[1] - y_range[0]);
        // Cell centres sit on the grid points: the picture extends half a cell out.
        let (cw, ch) = (w / (nx - 1) as f64, h / (ny - 1) as f64);
        let segments = contour_segments(values, nx, ny, contours);
        let to_plot = |i: f64, j: f64| [x_range[0] + i * cw, y_range[0] + j * ch];
        ui.horizontal_top(|ui| {
            let plot_w = (ui.available_width() - if log { 64.0 } else { 0.0 }).max(80.0);
            plot.data_aspect(1.0).width(plot_w).show(ui, |p| {
                p.image(PlotImage::new(
                    "value",
                    tex,
                    PlotPoint::new(x_range[0] + w / 2.0, y_range[0] + h / 2.0),
                    [(w + cw) as f32, (h + ch) as f32],
                ));
                for (a, b) in segments.iter().flat_map(|(_, segs)| segs) {
                    p.line(
                        Line::new("contours", vec![to_plot(a[0], a[1]), to_plot(b[0], b[1])])
                            .color(Color32::from_white_alpha(170))
                            .width(1.0),
                    );
                }
            });
            if log {
                color_legend(ui, (lo.log10() as f32, hi.log10() as f32), 270.0);
            }
        });
        let levels: Vec<String> = contours.iter().map(|&c| sig(c)).collect();
        ui.label(
            RichText::new(format!(
                "colour{}: {} (dark) to {} (yellow); contours at {}",
                if log { " (log scale)" } else { "" },
                sig(lo),
                sig(hi),
                levels.join(", ")
            ))
            .small(),
        );
    }

    /// The heatmap's picture (`[nx, ny]` cells), made once per plot id.
    fn heat_texture(
        &mut self,
        ctx: &egui::Context,
        id: &str,
        [nx, ny]: [usize; 2],
        values: &[f64],
        log: bool,
    ) -> egui::TextureId {
        if let Some((_, t)) = self.textures.iter().find(|(k, _)| k == id) {
            return t.id();
        }
        let (lo, hi) = finite_range(values);
        let map = |v: f64| if log { v.log10() } else { v };
        let (lo, hi) = (map(lo), map(hi));
        let span = (hi - lo).max(1e-12);
        let mut pixels = Vec::with_capacity(nx * ny);
        // Image rows go top-down; the data's y grows upwards.
        for j in (0..ny).rev() {
            for i in 0..nx {
                let v = map(values[j * nx + i]);
                pixels.push(viridis(((v - lo) / span) as f32));
            }
        }
        let t = ctx.load_texture(
            id,
            ColorImage::new([nx, ny], pixels),
            TextureOptions::NEAREST,
        );
        let tid = t.id();
        self.textures.push((id.to_string(), t));
        tid
    }
}

/// The plot a figure is drawn in: its axes, legend and hover text.
fn plot_for<'a>(fig: &'a Figure, id: &'a str, log_y: bool) -> Plot<'a> {
    let mut plot = Plot::new(id)
        .height(290.0)
        .allow_scroll(false)
        .legend(Legend::default().position(egui_plot::Corner::LeftTop))
        .x_axis_label(fig.x_label.as_str())
        .y_axis_label(fig.y_label.as_str());
    if log_y {
        plot = plot.y_axis_formatter(log_axis_label);
    }
    plot.label_formatter(move |pos| {
        let (name, p) = hover_point(pos);
        let y = if log_y { 10f64.powf(p.y) } else { p.y };
        Some(format!("{name}\nx {}\ny {}", sig(p.x), sig(y)))
    })
}

/// One line per series.
fn lines(ui: &mut Ui, plot: Plot<'_>, series: &[LineSeries], log_y: bool) {
    plot.show(ui, |p| {
        for (i, s) in series.iter().enumerate() {
            let pts = if log_y {
                log10_points(&s.points)
            } else {
                s.points.clone()
            };
            p.line(
                Line::new(s.name.as_str(), pts)
                    .color(run_color(i))
                    .width(1.6),
            );
        }
    });
}

/// One group of bars per category, one bar per series in it.
fn bars(ui: &mut Ui, plot: Plot<'_>, categories: &[String], series: &[BarSeries], log_y: bool) {
    let groups = series.len().max(1) as f64;
    let w = 0.8 / groups;
    // A tick under every category, named after it.
    let plot = plot
        .x_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
        .x_axis_formatter(|mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                categories.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        });
    plot.show(ui, |p| {
        for (g, s) in series.iter().enumerate() {
            let bars: Vec<Bar> = s
                .values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let y = if log_y {
                        if v > 0.0 { v.log10() } else { f64::NAN }
                    } else {
                        v
                    };
                    Bar::new(i as f64 - 0.4 + w * (g as f64 + 0.5), y)
                        .width(w * 0.95)
                        .name(format!(
                            "{}: {}",
                            categories.get(i).map_or("", String::as_str),
                            sig(v)
                        ))
                })
                .collect();
            p.bar_chart(BarChart::new(s.name.as_str(), bars).color(run_color(g)));
        }
    });
}

/// The smallest and largest finite value ((0, 1) when there is none).
fn finite_range(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}
