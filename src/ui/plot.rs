//! Drawing helpers shared by the panels: colours by depth, log scales, EMA smoothing,
//! heatmap textures with a colour legend, and panel captions.

use egui::{Color32, ColorImage, Rect, TextureHandle, TextureOptions, Ui, Vec2, pos2};
use egui_plot::GridMark;
use std::ops::RangeInclusive;

/// Viridis anchors, from dark purple (low) to yellow (high).
const VIRIDIS: [[u8; 3]; 6] = [
    [68, 1, 84],
    [65, 68, 135],
    [42, 120, 142],
    [34, 168, 132],
    [122, 209, 81],
    [253, 231, 37],
];

/// A colour on the viridis map for `t` in [0, 1] (clamped; NaN is grey).
pub fn viridis(t: f32) -> Color32 {
    if t.is_nan() {
        return Color32::from_gray(110);
    }
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f32;
    let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    Color32::from_rgb(mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]))
}

/// The colour of layer `i` of `n`, input (dark blue) to output (yellow).
pub fn depth_color(i: usize, n: usize) -> Color32 {
    viridis(0.05 + 0.9 * i as f32 / (n.max(2) - 1) as f32)
}

/// A palette of distinct colours for runs in Compare.
pub fn run_color(i: usize) -> Color32 {
    const P: [Color32; 8] = [
        Color32::from_rgb(31, 119, 180),
        Color32::from_rgb(255, 127, 14),
        Color32::from_rgb(44, 160, 44),
        Color32::from_rgb(214, 39, 40),
        Color32::from_rgb(148, 103, 189),
        Color32::from_rgb(140, 86, 75),
        Color32::from_rgb(227, 119, 194),
        Color32::from_rgb(23, 190, 207),
    ];
    P[i % P.len()]
}

/// Points with `y` replaced by `log10(y)`; non-positive and non-finite values are dropped
/// (they have no place on a log axis).
pub fn log10_points(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points
        .iter()
        .filter(|p| p[1] > 0.0 && p[1].is_finite())
        .map(|p| [p[0], p[1].log10()])
        .collect()
}

/// A y-axis formatter for values plotted as log10: a mark at 2 reads `1e2`.
pub fn log_axis_label(mark: GridMark, _range: &RangeInclusive<f64>) -> String {
    let v = mark.value;
    if (v - v.round()).abs() < 1e-6 {
        format!("1e{}", v.round() as i64)
    } else {
        crate::numbers::sig(10f64.powf(v))
    }
}

/// Exponentially smoothed values, debiased like TensorBoard's smoothing: with weight `w` in
/// [0, 1), `s_t = w·s_{t−1} + (1 − w)·v_t`, divided by `1 − w^t`. Non-finite values are passed
/// through and do not disturb the average.
pub fn ema(points: &[[f64; 2]], w: f64) -> Vec<[f64; 2]> {
    let w = w.clamp(0.0, 0.999);
    let mut s = 0.0;
    let mut k = 0i32;
    points
        .iter()
        .map(|p| {
            if !p[1].is_finite() {
                return *p;
            }
            k += 1;
            s = w * s + (1.0 - w) * p[1];
            [p[0], s / (1.0 - w.powi(k))]
        })
        .collect()
}

/// The item name (empty away from any item) and the plot position a hover label is for.
pub fn hover_point<'a>(pos: &egui_plot::HoverPosition<'a>) -> (&'a str, egui_plot::PlotPoint) {
    match pos {
        egui_plot::HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => (plot_name, *position),
        egui_plot::HoverPosition::Elsewhere { position } => ("", *position),
    }
}

/// A panel's one-line caption: what it shows and what to look for.
pub fn caption(ui: &mut Ui, text: &str) {
    ui.label(egui::RichText::new(text).small().weak());
}

/// A colour-mapped matrix uploaded as a texture, rebuilt only when its data changes.
#[derive(Default)]
pub struct HeatTexture {
    key: Option<u64>,
    texture: Option<TextureHandle>,
    /// The log10 range the colours span.
    pub range: (f32, f32),
}

/// The values of a heatmap: `rows × cols`, row-major, drawn with row 0 at the top.
pub struct HeatData {
    /// Values, row-major.
    pub values: Vec<f32>,
    /// Rows (layers).
    pub rows: usize,
    /// Columns (time buckets).
    pub cols: usize,
}

impl HeatTexture {
    /// The texture for `key`, rebuilt with `make` when the key changed. Values are mapped
    /// through log10 and coloured between the 5th and 95th percentile of the finite values.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        make: impl FnOnce() -> HeatData,
    ) -> Option<&TextureHandle> {
        if self.key != Some(key) {
            self.key = Some(key);
            let data = make();
            if data.rows == 0 || data.cols == 0 {
                self.texture = None;
                return None;
            }
            let logs: Vec<f32> = data
                .values
                .iter()
                .map(|&v| if v > 0.0 { v.log10() } else { f32::NAN })
                .collect();
            let mut finite: Vec<f32> = logs.iter().copied().filter(|v| v.is_finite()).collect();
            let (lo, hi) = if finite.is_empty() {
                (0.0, 1.0)
            } else {
                let mut q = |p: f32| {
                    let k = ((finite.len() - 1) as f32 * p).round() as usize;
                    *finite.select_nth_unstable_by(k, f32::total_cmp).1
                };
                let (lo, hi) = (q(0.05), q(0.95));
                if hi - lo < 1e-3 {
                    (lo - 0.5, hi + 0.5)
                } else {
                    (lo, hi)
                }
            };
            self.range = (lo, hi);
            let pixels: Vec<Color32> = logs
                .iter()
                .map(|&l| viridis((l - lo) / (hi - lo)))
                .collect();
            let image = ColorImage::new([data.cols, data.rows], pixels);
            match &mut self.texture {
                Some(t) => t.set(image, TextureOptions::NEAREST),
                None => self.texture = Some(ctx.load_texture(name, image, TextureOptions::NEAREST)),
            }
        }
        self.texture.as_ref()
    }
}

/// A vertical colour bar for a log10 range, labelled with powers of ten.
pub fn color_legend(ui: &mut Ui, range: (f32, f32), height: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(56.0, height), egui::Sense::hover());
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
        painter.rect_filled(r, 0.0, viridis(t0));
    }
    let (lo, hi) = range;
    let font = egui::FontId::proportional(10.0);
    let color = ui.visuals().text_color();
    for (t, v) in [(0.0, lo), (0.5, 0.5 * (lo + hi)), (1.0, hi)] {
        let y = bar.bottom() - t * bar.height();
        painter.text(
            pos2(
                bar.right() + 3.0,
                y.clamp(rect.top() + 5.0, rect.bottom() - 5.0),
            ),
            egui::Align2::LEFT_CENTER,
            crate::numbers::sig(10f64.powf(v as f64)),
            font.clone(),
            color,
        );
    }
}

/// A layer × time matrix of one series, kept up to date incrementally: per row, the sum of
/// `ln(value)` and the count of positive values in time buckets of `width` consecutive points.
/// The width doubles (neighbouring buckets merge) whenever a row would need more than
/// `max_cols` buckets, so bucket edges never move and appending new probes costs only the new
/// points. A cell's value is the geometric mean of its bucket.
#[derive(Default)]
pub struct LogBuckets {
    key: u64,
    width: usize,
    rows: Vec<(Vec<f64>, Vec<u32>, usize)>,
}

impl LogBuckets {
    /// Brings the matrix up to date with `series` of the `layers` of `history`; `key` names
    /// what is being bucketed (the run and the set of layers): a new key starts over.
    pub fn update(
        &mut self,
        key: u64,
        history: &crate::metrics::History,
        series: &str,
        layers: &[String],
        max_cols: usize,
    ) {
        let max_cols = max_cols.max(2) & !1;
        if self.key != key || self.rows.len() != layers.len() || self.width == 0 {
            self.key = key;
            self.width = 1;
            self.rows = vec![(Vec::new(), Vec::new(), 0); layers.len()];
        }
        for (row, layer) in self.rows.iter_mut().zip(layers) {
            let Some(s) = history.get(series, layer) else {
                continue;
            };
            let (sums, counts, consumed) = row;
            if *consumed > s.len() {
                // The history was replaced by a shorter one: start the row over.
                sums.clear();
                counts.clear();
                *consumed = 0;
            }
            for (i, &v) in s.values.iter().enumerate().skip(*consumed) {
                let b = i / self.width;
                if sums.len() <= b {
                    sums.resize(b + 1, 0.0);
                    counts.resize(b + 1, 0);
                }
                if v > 0.0 && v.is_finite() {
                    sums[b] += (v as f64).ln();
                    counts[b] += 1;
                }
            }
            *consumed = s.len();
        }
        while self.rows.iter().any(|r| r.0.len() > max_cols) {
            self.width *= 2;
            for (sums, counts, _) in &mut self.rows {
                *sums = sums.chunks(2).map(|c| c.iter().sum()).collect();
                *counts = counts.chunks(2).map(|c| c.iter().sum()).collect();
            }
        }
    }

    /// Columns of the matrix (buckets of the longest row).
    pub fn data_cols(&self) -> usize {
        self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0)
    }

    /// Points per bucket.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The matrix: rows in layer order, as many columns as the longest row.
    pub fn data(&self) -> HeatData {
        let cols = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut values = vec![f32::NAN; self.rows.len() * cols];
        for (r, (sums, counts, _)) in self.rows.iter().enumerate() {
            for (c, (&s, &k)) in sums.iter().zip(counts).enumerate() {
                if k > 0 {
                    values[r * cols + c] = (s / k as f64).exp() as f32;
                }
            }
        }
        HeatData {
            values,
            rows: self.rows.len(),
            cols,
        }
    }
}

/// Min/max decimation of one growing series, kept up to date incrementally: buckets of
/// `width` consecutive points hold their minimum and maximum; the width doubles (neighbouring
/// buckets merge) when there would be more than `max_points / 2` buckets. Appending costs only
/// the new points, and the output keeps every spike, like [`crate::metrics::Series::decimated`].
#[derive(Clone, Debug, Default)]
pub struct MinMaxLine {
    width: usize,
    consumed: usize,
    /// Per bucket: (step, value) of the minimum and of the maximum.
    buckets: Vec<([f64; 2], [f64; 2])>,
}

impl MinMaxLine {
    /// Takes the points of `s` not seen yet.
    pub fn update(&mut self, s: &crate::metrics::Series, max_points: usize) {
        let max_buckets = (max_points / 2).max(1);
        if self.width == 0 || self.consumed > s.len() {
            *self = Self {
                width: 1,
                ..Self::default()
            };
        }
        for i in self.consumed..s.len() {
            let p = [s.steps[i] as f64, s.values[i] as f64];
            let b = i / self.width;
            if b == self.buckets.len() {
                self.buckets.push((p, p));
            } else {
                let (lo, hi) = &mut self.buckets[b];
                // NaN is never a minimum or maximum, unless the bucket holds nothing else.
                if p[1] < lo[1] || lo[1].is_nan() {
                    *lo = p;
                }
                if p[1] > hi[1] || hi[1].is_nan() {
                    *hi = p;
                }
            }
        }
        self.consumed = s.len();
        while self.buckets.len() > max_buckets {
            self.width *= 2;
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|c| {
                    let mut m = c[0];
                    if let Some(&(lo, hi)) = c.get(1) {
                        if lo[1] < m.0[1] || m.0[1].is_nan() {
                            m.0 = lo;
                        }
                        if hi[1] > m.1[1] || m.1[1].is_nan() {
                            m.1 = hi;
                        }
                    }
                    m
                })
                .collect();
        }
    }

    /// The decimated points in step order: each bucket's minimum and maximum.
    pub fn points(&self) -> Vec<[f64; 2]> {
        let mut out = Vec::with_capacity(self.buckets.len() * 2);
        for &(lo, hi) in &self.buckets {
            let (a, b) = if lo[0] <= hi[0] { (lo, hi) } else { (hi, lo) };
            out.push(a);
            if b != a {
                out.push(b);
            }
        }
        out
    }
}
