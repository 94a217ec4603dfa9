//! Figures drawn into SVG or PNG without a window or a GPU, with `plotters` (its SVG and bitmap
//! backends need no system library; text in PNGs uses the Ubuntu font egui ships). A panel's
//! figures go into one picture of the asked size, in a grid under the panel's title. Every axis
//! has tick labels in the value (a log axis reads `1e-3`, not `-3`); legends and colour bars
//! sit beside the plot, never over the data.

use super::contours::contour_segments;
use super::hover::{coordinate, plotted};
use super::palette::{self, Rgb};
use super::{Band, Figure, FigureKind, Grid, ImageTile, LineSeries, Style};
use crate::numbers::sig;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// A picture format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics (text as text).
    Svg,
    /// A PNG bitmap.
    Png,
}

impl Format {
    /// The format a file name asks for by its extension (`.svg`, `.png`).
    pub fn of_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// The smallest and largest picture drawn, per side, in pixels.
pub const SIZE_LIMITS: [u32; 2] = [200, 8000];

/// What drawing returns when it fails: the reason in words.
pub type DrawResult<T> = Result<T, String>;

const FONT: &str = "sans-serif";
const TEXT: RGBColor = RGBColor(30, 30, 30);
const GRID: RGBColor = RGBColor(225, 225, 225);
const FINE_GRID: RGBColor = RGBColor(246, 246, 246);
/// Width of the legend beside a plot, in pixels.
const LEGEND_W: u32 = 180;
/// Legend entries listed at most (the rest are counted).
const LEGEND_MAX: usize = 16;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

/// Draws `figures` under `title` into one picture of `size` (width, height) pixels.
pub fn render(
    title: &str,
    figures: &[Figure],
    size: (u32, u32),
    format: Format,
) -> DrawResult<Vec<u8>> {
    let [lo, hi] = SIZE_LIMITS;
    if !(lo..=hi).contains(&size.0) || !(lo..=hi).contains(&size.1) {
        return Err(format!(
            "a picture is {lo} to {hi} pixels a side, not {}×{}",
            size.0, size.1
        ));
    }
    // Both backends measure text with the font (to place titles and labels).
    register_font();
    match format {
        Format::Svg => {
            let mut out = String::new();
            {
                let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
                draw_all(&root, title, figures)?;
                root.present().map_err(err)?;
            }
            Ok(out.into_bytes())
        }
        Format::Png => {
            let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw_all(&root, title, figures)?;
                root.present().map_err(err)?;
            }
            png(rgb, size)
        }
    }
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

fn png(rgb: Vec<u8>, (w, h): (u32, u32)) -> DrawResult<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb).ok_or("the picture has the wrong size")?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The title on top, then the figures in a grid: two columns when there are several and the
/// picture is wider than tall, else one.
fn draw_all<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    figures: &[Figure],
) -> DrawResult<()> {
    root.fill(&WHITE).map_err(err)?;
    let body = root
        .titled(title, (FONT, 22).into_font().color(&TEXT))
        .map_err(err)?;
    if figures.is_empty() {
        let style = (FONT, 16).into_font().color(&TEXT);
        body.draw_text("Nothing to draw yet.", &style, (20, 20))
            .map_err(err)?;
        return Ok(());
    }
    let (w, h) = body.dim_in_pixel();
    let cols = if figures.len() > 1 && w > h { 2 } else { 1 };
    let rows = figures.len().div_ceil(cols);
    for (fig, area) in figures.iter().zip(body.split_evenly((rows, cols))) {
        figure(&area.margin(6, 6, 6, 6), fig)?;
    }
    Ok(())
}

/// One figure in its area.
pub fn figure<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<()> {
    let area = area
        .titled(&fig.title, (FONT, 16).into_font().color(&TEXT))
        .map_err(err)?;
    match &fig.kind {
        FigureKind::Lines { series } => lines(&area, fig, series),
        FigureKind::Bars { categories, series } => bars(&area, fig, categories, series),
        FigureKind::Heatmap { .. } => heatmap(&area, fig),
        FigureKind::Images { images } => tiles(&area, images),
    }
}

/// A tick label: the value itself, also on a log axis (`1e-3` at a power of ten).
fn tick(v: f64, log: bool) -> String {
    if !log {
        return sig(v);
    }
    if (v - v.round()).abs() < 1e-6 {
        format!("1e{}", v.round() as i64)
    } else {
        sig(10f64.powf(v))
    }
}

/// A padded range over finite values (`[0, 1]` when there are none).
fn span(values: impl Iterator<Item = f64>, pad: f64) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let d = if hi > lo { (hi - lo) * pad } else { 0.5 };
    (lo - d)..(hi + d)
}

/// The colour, line width and dash of the `i`-th of `n` lines.
fn line_look(fig: &Figure, i: usize, n: usize, s: &LineSeries) -> (Rgb, u32, bool) {
    let style = s.style;
    let c = if let Some(k) = s.color {
        palette::categorical(k)
    } else if fig.look.depth_colors {
        palette::depth(i, n)
    } else {
        palette::categorical(i)
    };
    let width = match style {
        Style::Bold => 3,
        Style::Faint => 1,
        _ => 2,
    };
    let by_palette = s.color.is_some() || !fig.look.depth_colors;
    let dashed = style == Style::Dashed || (by_palette && palette::dashed(s.color.unwrap_or(i)));
    (c, width, dashed)
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// A legend entry: its name, colour and style.
type Entry = (String, Rgb, Style);

/// Splits off the legend's column on the right when there are entries to list.
fn with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> DrawResult<DrawingArea<DB, Shift>> {
    let (w, _) = area.dim_in_pixel();
    if entries.is_empty() || w < 2 * LEGEND_W {
        return Ok(area.clone());
    }
    let (plot, side) = area.split_horizontally(w - LEGEND_W);
    legend(&side, entries)?;
    Ok(plot)
}

fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> DrawResult<()> {
    let style = (FONT, 13).into_font().color(&TEXT);
    let shown: Vec<&Entry> = if entries.len() > LEGEND_MAX {
        let half = LEGEND_MAX / 2;
        entries[..half]
            .iter()
            .chain(&entries[entries.len() - half..])
            .collect()
    } else {
        entries.iter().collect()
    };
    let mut y = 24;
    for (k, (name, c, st)) in shown.iter().enumerate() {
        if entries.len() > LEGEND_MAX && k == LEGEND_MAX / 2 {
            let more = format!("… {} more", entries.len() - LEGEND_MAX);
            area.draw_text(&more, &style, (28, y)).map_err(err)?;
            y += 18;
        }
        let color = rgb(*c);
        if *st == Style::Points {
            area.draw(&Circle::new((12, y + 7), 4, color.filled()))
                .map_err(err)?;
        } else {
            area.draw(&PathElement::new(
                vec![(2, y + 7), (22, y + 7)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
        }
        let label: String = name.chars().take(30).collect();
        area.draw_text(&label, &style, (28, y)).map_err(err)?;
        y += 18;
    }
    Ok(())
}

/// Lines (with their bands under them and the overlay on top) against a shared x axis.
fn lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    series: &[LineSeries],
) -> DrawResult<()> {
    let log = fig.log_y;
    let all: Vec<&LineSeries> = series.iter().chain(&fig.look.overlay).collect();
    let n = series.len();
    let entries: Vec<Entry> = if fig.look.no_legend {
        Vec::new()
    } else {
        all.iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty())
            .map(|(i, s)| (s.name.clone(), line_look(fig, i, n, s).0, s.style))
            .collect()
    };
    let plot = with_legend(area, &entries)?;
    let xs = all
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p[0]))
        .chain(
            fig.look
                .bands
                .iter()
                .flat_map(|b| b.points.iter().map(|p| p[0])),
        );
    let x = span(xs, 0.0);
    let ys = all
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| plotted(p[1], log)))
        .chain(band_values(&fig.look.bands, log))
        .chain(
            fig.look
                .y_range
                .iter()
                .flatten()
                .filter_map(|&v| plotted(v, log)),
        );
    let y = span(ys, 0.05);
    let mut chart = ChartBuilder::on(&plot)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    mesh(&mut chart, fig, log, None)?;
    for b in &fig.look.bands {
        band(&mut chart, b, log)?;
    }
    for (i, s) in all.iter().enumerate() {
        let (c, width, dashed) = line_look(fig, i, n, s);
        line(&mut chart, s, log, (c, width, dashed))?;
    }
    Ok(())
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The grid, the tick labels in the value and the axis names; `x_names` names the ticks of a
/// category axis (bars).
fn mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    fig: &Figure,
    log: bool,
    x_names: Option<&[String]>,
) -> DrawResult<()> {
    let x_fmt = |v: &f64| match x_names {
        Some(names) => category_tick(names, *v),
        None => coordinate(*v),
    };
    let y_fmt = |v: &f64| tick(*v, log);
    let labels = (FONT, 12).into_font().color(&TEXT);
    // Category names need about 100 pixels each.
    let room = (chart.plotting_area().dim_in_pixel().0 / 100).max(1) as usize;
    let n_x = x_names.map_or(8, |n| n.len().clamp(1, room));
    chart
        .configure_mesh()
        .light_line_style(FINE_GRID)
        .bold_line_style(GRID)
        .x_labels(n_x)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(labels.clone())
        .axis_desc_style((FONT, 14).into_font().color(&TEXT))
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .draw()
        .map_err(err)
}

/// The name of the category at an integer tick (empty between categories), cut to 14 chars.
fn category_tick(names: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 || i as usize >= names.len() {
        return String::new();
    }
    names[i as usize].chars().take(14).collect()
}

fn band_values(bands: &[Band], log: bool) -> impl Iterator<Item = f64> + '_ {
    bands
        .iter()
        .flat_map(move |b| b.points.iter().flat_map(move |p| [p[1], p[2]]))
        .filter_map(move |v| plotted(v, log))
}

/// A filled band between its low and high curves.
fn band<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, b: &Band, log: bool) -> DrawResult<()> {
    let pts: Vec<(f64, f64, f64)> = b
        .points
        .iter()
        .filter_map(|p| Some((p[0], plotted(p[1], log)?, plotted(p[2], log)?)))
        .collect();
    if pts.len() < 2 {
        return Ok(());
    }
    let outline: Vec<(f64, f64)> = pts
        .iter()
        .map(|p| (p.0, p.2))
        .chain(pts.iter().rev().map(|p| (p.0, p.1)))
        .collect();
    let c = palette::categorical(b.color.unwrap_or(0));
    chart
        .draw_series(std::iter::once(Polygon::new(
            outline,
            rgb(c).mix(0.2).filled(),
        )))
        .map_err(err)?;
    Ok(())
}

/// One line, broken where a value is missing, in its look.
fn line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    s: &LineSeries,
    log: bool,
    (c, width, dashed): (Rgb, u32, bool),
) -> DrawResult<()> {
    let alpha = if s.style == Style::Faint { 0.35 } else { 1.0 };
    let style = rgb(c).mix(alpha).stroke_width(width);
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in &s.points {
        match plotted(p[1], log).filter(|_| p[0].is_finite()) {
            Some(y) => runs.last_mut().unwrap_or(&mut Vec::new()).push((p[0], y)),
            None => runs.push(Vec::new()),
        }
    }
    let points = matches!(s.style, Style::Points | Style::LinePoints);
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        if points {
            let dot = rgb(c).filled();
            chart
                .draw_series(run.iter().map(|&p| Circle::new(p, 3, dot)))
                .map_err(err)?;
        }
        if s.style == Style::Points {
            continue;
        }
        if dashed {
            chart
                .draw_series(DashedLineSeries::new(run, 6, 4, style))
                .map_err(err)?;
        } else {
            chart
                .draw_series(plotters::series::LineSeries::new(run, style))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Bars: side by side per category, or stacked into one bar (each category coloured by the
/// series that has its value). On a log axis the bars rise from the bottom of the axis.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    categories: &[String],
    series: &[super::BarSeries],
) -> DrawResult<()> {
    let log = fig.log_y;
    let n = series.len();
    let overlay = fig.look.overlay.iter().enumerate().map(|(i, s)| {
        let c = line_look(fig, n + i, n, s).0;
        (s.name.clone(), c, s.style)
    });
    let entries: Vec<Entry> = series
        .iter()
        .enumerate()
        .filter(|_| n > 1)
        .map(|(i, s)| (s.name.clone(), bar_colour(s, i), Style::Solid))
        .chain(overlay)
        .collect();
    let plot = with_legend(area, &entries)?;
    let values = series
        .iter()
        .flat_map(|s| s.values.iter().filter_map(|&v| plotted(v, log)));
    let floor = if log { None } else { Some(0.0) };
    let overlay = fig.look.overlay.iter().flat_map(|s| s.points.iter());
    let ys = values
        .chain(floor)
        .chain(overlay.filter_map(|p| plotted(p[1], log)))
        .chain(
            fig.look
                .y_range
                .iter()
                .flatten()
                .filter_map(|&v| plotted(v, log)),
        );
    let y = span(ys, 0.05);
    let n = categories.len().max(1) as f64;
    let base = if log { y.start } else { 0.0 };
    let mut chart = ChartBuilder::on(&plot)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..n - 0.5, y)
        .map_err(err)?;
    mesh(&mut chart, fig, log, Some(categories))?;
    let groups = if fig.look.stacked {
        1
    } else {
        series.len().max(1)
    };
    let w = 0.8 / groups as f64;
    for (k, s) in series.iter().enumerate() {
        let slot = if fig.look.stacked { 0 } else { k };
        let x0 = -0.4 + w * slot as f64;
        let fill = rgb(bar_colour(s, k)).filled();
        let rects = s.values.iter().enumerate().filter_map(|(i, &v)| {
            let top = plotted(v, log)?;
            let x = i as f64 + x0;
            Some(Rectangle::new([(x, base), (x + w * 0.95, top)], fill))
        });
        chart.draw_series(rects).map_err(err)?;
    }
    for (i, s) in fig.look.overlay.iter().enumerate() {
        let look = line_look(fig, series.len() + i, series.len(), s);
        line(&mut chart, s, log, look)?;
    }
    Ok(())
}

fn bar_colour(s: &super::BarSeries, i: usize) -> Rgb {
    palette::categorical(s.color.unwrap_or(i))
}

/// A heatmap: one rectangle per grid cell coloured by value (viridis, log when `log_y`; class
/// colours for class maps), contour lines, the overlay, and a colour bar beside it.
fn heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<()> {
    let Some(g) = fig.grid() else {
        return Ok(());
    };
    if !g.well_formed() {
        return Err(format!("heatmap \"{}\" is malformed", fig.title));
    }
    let scale = Scale::of(g.values, fig.log_y);
    let (w, _) = area.dim_in_pixel();
    let plot = if fig.look.classes || w < 3 * 90 {
        area.clone()
    } else {
        let (plot, side) = area.split_horizontally(w - 90);
        colour_bar(&side, &scale)?;
        plot
    };
    let [dx, dy] = g.step();
    let x = (g.x_range[0] - dx / 2.0)..(g.x_range[1] + dx / 2.0);
    let y = (g.y_range[0] - dy / 2.0)..(g.y_range[1] + dy / 2.0);
    let mut chart = ChartBuilder::on(&plot)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(if g.rows.is_empty() { 64 } else { 120 })
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    heat_mesh(&mut chart, fig, &g)?;
    let cells = (0..g.ny).flat_map(|j| (0..g.nx).map(move |i| (i, j)));
    let rects = cells.filter_map(|(i, j)| {
        let v = g.value(i, j);
        let c = if fig.look.classes {
            class_colour(v)?
        } else {
            rgb(scale.colour(v)?)
        };
        let (cx, cy) = (g.x_at(i), g.y_at(j));
        let (hx, hy) = (dx / 2.0, dy / 2.0);
        Some(Rectangle::new(
            [(cx - hx, cy - hy), (cx + hx, cy + hy)],
            c.filled(),
        ))
    });
    chart.draw_series(rects).map_err(err)?;
    for (_, segs) in contour_segments(g.values, g.nx, g.ny, g.contours) {
        let to = |p: [f64; 2]| (g.x_range[0] + p[0] * dx, g.y_range[0] + p[1] * dy);
        let paths = segs
            .into_iter()
            .map(|(a, b)| PathElement::new(vec![to(a), to(b)], WHITE.stroke_width(1)));
        chart.draw_series(paths).map_err(err)?;
    }
    for (i, s) in fig.look.overlay.iter().enumerate() {
        let c = palette::categorical(s.color.unwrap_or(i));
        line(&mut chart, s, false, (c, 2, false))?;
    }
    Ok(())
}

/// A heatmap's axes: row names on y when it has them.
fn heat_mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    fig: &Figure,
    g: &Grid<'_>,
) -> DrawResult<()> {
    let n = g.rows.len();
    let y_fmt = |v: &f64| if n == 0 { sig(*v) } else { g.row_mark(*v) };
    let x_fmt = |v: &f64| coordinate(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(8)
        .y_labels(if n == 0 { 6 } else { n.min(16) })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 12).into_font().color(&TEXT))
        .axis_desc_style((FONT, 14).into_font().color(&TEXT))
        .x_desc(fig.x_label.as_str())
        .y_desc(fig.y_label.as_str())
        .draw()
        .map_err(err)
}

fn class_colour(v: f64) -> Option<RGBColor> {
    (v.is_finite() && v >= 0.0).then(|| rgb(palette::class_colour(v as usize)))
}

/// A heatmap's colour scale (see [`palette::heat_range`]).
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Scale {
    fn of(values: &[f64], log: bool) -> Scale {
        let (lo, hi) = palette::heat_range(values, log);
        Scale { lo, hi, log }
    }

    fn colour(&self, v: f64) -> Option<Rgb> {
        palette::heat_colour(v, (self.lo, self.hi), self.log)
    }
}

/// A vertical colour bar with the scale's ends and middle written in the value.
fn colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Scale) -> DrawResult<()> {
    let (_, h) = area.dim_in_pixel();
    let (top, bottom) = (40i32, h as i32 - 50);
    if bottom <= top + 10 {
        return Ok(());
    }
    for y in top..bottom {
        let t = 1.0 - (y - top) as f32 / (bottom - top) as f32;
        let c = rgb(palette::viridis(t));
        area.draw(&Rectangle::new([(8, y), (24, y + 1)], c.filled()))
            .map_err(err)?;
    }
    let style = (FONT, 12).into_font().color(&TEXT);
    let mid = 0.5 * (s.lo + s.hi);
    for (v, y) in [(s.hi, top), (mid, (top + bottom) / 2), (s.lo, bottom - 12)] {
        area.draw_text(&tick(v, s.log), &style, (28, y))
            .map_err(err)?;
    }
    Ok(())
}

/// Images in a grid of tiles, each scaled to fit (nearest neighbour) with its label under it.
fn tiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    images: &[ImageTile],
) -> DrawResult<()> {
    if images.is_empty() {
        return Ok(());
    }
    let (w, h) = area.dim_in_pixel();
    let cols = ((w / 110).max(1) as usize).min(images.len());
    let rows = images.len().div_ceil(cols);
    let style = (FONT, 12).into_font().color(&TEXT);
    for (t, cell) in images.iter().zip(area.split_evenly((rows, cols))) {
        let (cw, ch) = cell.dim_in_pixel();
        if t.width == 0 || t.height == 0 || t.rgb.len() != t.width * t.height * 3 {
            cell.draw_text(&format!("{}: malformed", t.label), &style, (4, 4))
                .map_err(err)?;
            continue;
        }
        let scale = ((cw as f64 - 8.0) / t.width as f64)
            .min((ch as f64 - 24.0) / t.height as f64)
            .max(0.5);
        let px = |v: usize| (v as f64 * scale).round() as i32;
        let pixels = (0..t.height).flat_map(|y| (0..t.width).map(move |x| (x, y)));
        for (x, y) in pixels {
            let k = 3 * (y * t.width + x);
            let c = RGBColor(t.rgb[k], t.rgb[k + 1], t.rgb[k + 2]);
            let r = [(4 + px(x), px(y)), (4 + px(x + 1), px(y + 1))];
            cell.draw(&Rectangle::new(r, c.filled())).map_err(err)?;
        }
        cell.draw_text(&t.label, &style, (4, px(t.height) + 4))
            .map_err(err)?;
    }
    let _ = h;
    Ok(())
}
