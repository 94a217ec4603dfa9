//! Figures as plain data: what a panel of the lab or an experiment shows, as lines, bars,
//! heatmaps or images with their titles and axis names, with no window and no drawing library.
//! The lab draws them with egui (`ui`), `reslab plot` and the lab's export write them as SVG,
//! PNG and CSV ([`draw`], [`csv`]).

pub mod contours;
pub mod csv;
pub mod draw;
pub mod files;
pub mod hover;
pub mod palette;
pub mod serde_num;

use serde::{Deserialize, Serialize};
use serde_num::{num_pairs, num_vec};

/// One line of a line plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSeries {
    /// Legend entry.
    pub name: String,
    /// `[x, y]` points in x order; a NaN `y` is a gap.
    #[serde(with = "num_pairs")]
    pub points: Vec<[f64; 2]>,
    /// How the line is drawn.
    #[serde(default, skip_serializing_if = "Style::is_solid")]
    pub style: Style,
    /// Its colour, as an index into [`palette::CATEGORICAL`]; `None`: by its position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

impl LineSeries {
    /// A solid line.
    pub fn new(name: impl Into<String>, points: Vec<[f64; 2]>) -> Self {
        Self {
            name: name.into(),
            points,
            style: Style::Solid,
            color: None,
        }
    }

    /// The same line in the `i`-th colour of [`palette::CATEGORICAL`].
    pub fn color(mut self, i: usize) -> Self {
        self.color = Some(i);
        self
    }

    /// The same line drawn in another style.
    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// A thin solid line.
    #[default]
    Solid,
    /// A thick solid line (the main curve).
    Bold,
    /// A pale line (raw data under its smoothed curve).
    Faint,
    /// A dashed line (a reference or a tracked detail).
    Dashed,
    /// Markers only, no line (measurements at a few points, scattered data).
    Points,
    /// A line with a marker at each point.
    LinePoints,
}

impl Style {
    /// Whether this is the default style.
    pub fn is_solid(&self) -> bool {
        *self == Style::Solid
    }
}

/// A filled band between two curves on the same x values (a spread, e.g. min to max over
/// channels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Legend entry.
    pub name: String,
    /// `[x, low, high]` in x order.
    pub points: Vec<[f64; 3]>,
    /// Its colour, as an index into [`palette::CATEGORICAL`] (the first when absent): the
    /// colour of the line it spreads around.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

/// How a figure looks beyond its data; every field's default is the plain figure, and the
/// file leaves defaults out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Look {
    /// Lines drawn over the figure (reference levels, scattered points over a heatmap), in the
    /// figure's data coordinates (bars sit at x = 0, 1, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overlay: Vec<LineSeries>,
    /// Filled bands under a line plot's lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<Band>,
    /// A heatmap's row names, top row first (layers, tensors, tokens): the y axis names rows
    /// instead of numbers, row `r` spanning `y ∈ [ny − 1 − r − ½, ny − 1 − r + ½]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<String>,
    /// The y axis spans at least this range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_range: Option<[f64; 2]>,
    /// Lines coloured by their position from first (dark) to last (yellow), as layers by depth,
    /// instead of one colour each.
    #[serde(skip_serializing_if = "is_false")]
    pub depth_colors: bool,
    /// A heatmap of class numbers (0, 1, …) drawn in the classes' colours, not on a scale.
    #[serde(skip_serializing_if = "is_false")]
    pub classes: bool,
    /// Bar series stacked on one bar per category instead of side by side (series that are
    /// NaN where another has the value colour each category by what it is).
    #[serde(skip_serializing_if = "is_false")]
    pub stacked: bool,
    /// No legend (many lines that the hover names).
    #[serde(skip_serializing_if = "is_false")]
    pub no_legend: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Look {
    /// Whether every field is its default.
    pub fn is_plain(&self) -> bool {
        *self == Look::default()
    }
}

/// One group of bars: one value per category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarSeries {
    /// Legend entry.
    pub name: String,
    /// One value per category of [`FigureKind::Bars`].
    #[serde(with = "num_vec")]
    pub values: Vec<f64>,
    /// Its colour, as an index into [`palette::CATEGORICAL`]; `None`: by its position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<usize>,
}

impl BarSeries {
    /// Bars in the colour of their position.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
            color: None,
        }
    }

    /// The same bars in the `i`-th colour of [`palette::CATEGORICAL`].
    pub fn color(mut self, i: usize) -> Self {
        self.color = Some(i);
        self
    }
}

/// What a figure draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FigureKind {
    /// Lines against a common x axis.
    Lines {
        /// The lines.
        series: Vec<LineSeries>,
    },
    /// Values on a regular grid, drawn as a heatmap with contours.
    Heatmap {
        /// `[min, max]` of x (the first grid axis).
        x_range: [f64; 2],
        /// `[min, max]` of y.
        y_range: [f64; 2],
        /// Points along x.
        nx: usize,
        /// Points along y.
        ny: usize,
        /// `ny × nx` values, row-major with y outer: `values[j * nx + i]` is at
        /// `(x_i, y_j)`, `x_i = x_min + i · (x_max − x_min) / (nx − 1)`.
        #[serde(with = "num_vec")]
        values: Vec<f64>,
        /// Levels to draw contour lines at.
        #[serde(with = "num_vec")]
        contours: Vec<f64>,
    },
    /// Grouped bars.
    Bars {
        /// Category labels (x axis).
        categories: Vec<String>,
        /// One group per series.
        series: Vec<BarSeries>,
    },
    /// A row of small images, each with a label (samples of the data an experiment used).
    Images {
        /// The images, left to right.
        images: Vec<ImageTile>,
    },
}

/// One small RGB image of a [`FigureKind::Images`] figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTile {
    /// What it shows, under the image.
    pub label: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major pixels, three bytes (red, green, blue) each.
    pub rgb: Vec<u8>,
}

impl ImageTile {
    /// A tile from values in `[0, 1]` laid out `[3, h, w]` (clamped; one channel is grey).
    pub fn from_planes(
        label: impl Into<String>,
        x: &[f32],
        channels: usize,
        h: usize,
        w: usize,
    ) -> Self {
        let plane = h * w;
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let mut rgb = Vec::with_capacity(3 * plane);
        for p in 0..plane {
            for c in 0..3 {
                let k = if channels >= 3 { c } else { 0 };
                rgb.push(x.get(k * plane + p).copied().map_or(0, byte));
            }
        }
        Self {
            label: label.into(),
            width: w,
            height: h,
            rgb,
        }
    }
}

/// One figure of an experiment, plain data the app draws without knowing the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// Draw the y axis on a logarithmic scale (the values are stored as measured); for a
    /// heatmap, colour the values on a logarithmic scale.
    #[serde(default)]
    pub log_y: bool,
    /// Figures with the same non-empty variant (e.g. `with BN`, `without BN`) are alternative
    /// views of one question that the app offers as a toggle; empty: always shown.
    #[serde(default)]
    pub variant: String,
    /// The data.
    pub kind: FigureKind,
    /// How it looks beyond the data.
    #[serde(default, skip_serializing_if = "Look::is_plain")]
    pub look: Look,
}

impl Figure {
    /// A line plot.
    pub fn lines(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<LineSeries>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            variant: String::new(),
            kind: FigureKind::Lines { series },
            look: Look::default(),
        }
    }

    /// Grouped bars, one value per category in each series.
    pub fn bars(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        categories: Vec<String>,
        series: Vec<BarSeries>,
    ) -> Self {
        Self {
            kind: FigureKind::Bars { categories, series },
            ..Self::lines(title, x_label, y_label, Vec::new())
        }
    }

    /// A heatmap of named rows (top row first) against x from `x_range[0]` to `x_range[1]`:
    /// `values[r * nx + i]` is row `r`'s value in column `i`. No contours.
    pub fn row_heatmap(
        title: impl Into<String>,
        x_label: impl Into<String>,
        rows: Vec<String>,
        x_range: [f64; 2],
        nx: usize,
        values: Vec<f64>,
    ) -> Self {
        let ny = rows.len();
        // The grid's y runs upwards; the top row is the last grid row.
        let mut grid = vec![f64::NAN; values.len()];
        for r in 0..ny {
            let j = ny - 1 - r;
            grid[j * nx..(j + 1) * nx].copy_from_slice(&values[r * nx..(r + 1) * nx]);
        }
        let mut fig = Self {
            kind: FigureKind::Heatmap {
                x_range,
                y_range: [0.0, ny.saturating_sub(1) as f64],
                nx,
                ny,
                values: grid,
                contours: Vec::new(),
            },
            ..Self::lines(title, x_label, "", Vec::new())
        };
        fig.look.rows = rows;
        fig
    }

    /// The same figure as a variant.
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = variant.into();
        self
    }

    /// The same figure with a logarithmic y axis (a log colour scale on a heatmap).
    pub fn log_y(mut self, log_y: bool) -> Self {
        self.log_y = log_y;
        self
    }

    /// The same figure with a new look.
    pub fn look(mut self, look: Look) -> Self {
        self.look = look;
        self
    }

    /// A row heatmap's value at row `r` (0 = top) and column `i`, if there is one.
    pub fn row_value(&self, r: usize, i: usize) -> Option<f64> {
        let g = self.grid()?;
        (r < g.ny && i < g.nx)
            .then(|| g.values.get((g.ny - 1 - r) * g.nx + i).copied())
            .flatten()
    }

    /// A heatmap's grid, or `None` for other figures.
    pub fn grid(&self) -> Option<Grid<'_>> {
        let FigureKind::Heatmap {
            x_range,
            y_range,
            nx,
            ny,
            values,
            contours,
        } = &self.kind
        else {
            return None;
        };
        Some(Grid {
            x_range: *x_range,
            y_range: *y_range,
            nx: *nx,
            ny: *ny,
            values,
            contours,
            rows: &self.look.rows,
        })
    }
}

/// A heatmap's grid as every reader of it (the renderers, the hover, the CSV) sees it: cell
/// centres on the grid points, `values[j * nx + i]` at `(x_i, y_j)`, `y` upwards, named rows top
/// first.
#[derive(Clone, Copy, Debug)]
pub struct Grid<'a> {
    /// `[min, max]` of x.
    pub x_range: [f64; 2],
    /// `[min, max]` of y.
    pub y_range: [f64; 2],
    /// Points along x.
    pub nx: usize,
    /// Points along y.
    pub ny: usize,
    /// The values, row-major with y outer.
    pub values: &'a [f64],
    /// Contour levels.
    pub contours: &'a [f64],
    /// The rows' names, top row first (empty: y is a number).
    pub rows: &'a [String],
}

impl Grid<'_> {
    /// Whether the values fill the grid exactly.
    pub fn well_formed(&self) -> bool {
        self.nx > 0 && self.ny > 0 && self.values.len() == self.nx * self.ny
    }

    /// The spacing of the grid points along x and y (1 along an axis with a single point).
    pub fn step(&self) -> [f64; 2] {
        let step = |r: [f64; 2], n: usize| {
            if n < 2 || r[1] == r[0] {
                1.0
            } else {
                (r[1] - r[0]) / (n - 1) as f64
            }
        };
        [step(self.x_range, self.nx), step(self.y_range, self.ny)]
    }

    /// The x of column `i`.
    pub fn x_at(&self, i: usize) -> f64 {
        let r = self.x_range;
        r[0] + (r[1] - r[0]) * i as f64 / (self.nx.max(2) - 1) as f64
    }

    /// The y of grid row `j` (from the bottom).
    pub fn y_at(&self, j: usize) -> f64 {
        let r = self.y_range;
        r[0] + (r[1] - r[0]) * j as f64 / (self.ny.max(2) - 1) as f64
    }

    /// The cell `(i, j)` whose centre is nearest to `(x, y)`, if it is on the grid.
    pub fn cell_at(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        let [dx, dy] = self.step();
        let index = |v: f64, lo: f64, d: f64, n: usize| {
            let k = ((v - lo) / d).round();
            (k >= 0.0 && (k as usize) < n).then_some(k as usize)
        };
        Some((
            index(x, self.x_range[0], dx, self.nx)?,
            index(y, self.y_range[0], dy, self.ny)?,
        ))
    }

    /// The value of cell `(i, j)` (NaN off the grid).
    pub fn value(&self, i: usize, j: usize) -> f64 {
        self.values
            .get(j * self.nx + i)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// The name of grid row `j` (from the bottom), when the rows are named.
    pub fn row_name(&self, j: usize) -> Option<&str> {
        let r = self.ny.checked_sub(1 + j)?;
        self.rows.get(r).map(String::as_str)
    }

    /// The row name an axis mark at `v` stands for: the named row at a whole `v`, cut to 18
    /// characters; empty between rows and off the grid.
    pub fn row_mark(&self, v: f64) -> String {
        let j = v.round();
        if (v - j).abs() > 1e-6 || j < 0.0 {
            return String::new();
        }
        self.row_name(j as usize)
            .map(|n| n.chars().take(18).collect())
            .unwrap_or_default()
    }
}
