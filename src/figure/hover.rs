//! What a pointer over a figure is on, in words: the line, bar or cell nearest to it with its
//! name and its value as measured (a log axis's value, not its logarithm). Nothing away from
//! the data. The lab shows this under the pointer and in a readout line under the plot.

use super::{Figure, FigureKind, LineSeries};
use crate::numbers::sig;

/// How far from a line's point the pointer may be, in pixels, to be on it.
pub const REACH_PX: f64 = 14.0;

/// Where the pointer is, in the figure's plotted coordinates (y is log10 on a log axis), and
/// how many plotted units one pixel is along x and y.
#[derive(Clone, Copy, Debug)]
pub struct Pointer {
    /// Plotted x.
    pub x: f64,
    /// Plotted y (log10 of the value on a log axis).
    pub y: f64,
    /// Plotted units per pixel along x and y.
    pub per_px: [f64; 2],
}

/// The thing under the pointer in words, or `None` away from the data.
pub fn describe(fig: &Figure, p: Pointer) -> Option<String> {
    match &fig.kind {
        FigureKind::Lines { series } => {
            let all: Vec<&LineSeries> = series.iter().chain(&fig.look.overlay).collect();
            nearest_point(fig, &all, p)
        }
        FigureKind::Bars { categories, series } => {
            let i = p.x.round();
            if (p.x - i).abs() > 0.45 || i < 0.0 || i as usize >= categories.len() {
                return None;
            }
            let i = i as usize;
            let values: Vec<String> = series
                .iter()
                .filter_map(|s| {
                    let v = *s.values.get(i)?;
                    (!v.is_nan()).then(|| {
                        if series.len() > 1 {
                            format!("{} {}", s.name, sig(v))
                        } else {
                            format!("{} {}", fig.y_label, sig(v))
                        }
                    })
                })
                .collect();
            (!values.is_empty()).then(|| format!("{}\n{}", categories[i], values.join("\n")))
        }
        FigureKind::Heatmap { .. } => cell(fig, p),
        FigureKind::Images { .. } => None,
    }
}

/// The plotted y of a value (log10 on a log axis; `None` where the axis cannot show it).
pub fn plotted(v: f64, log: bool) -> Option<f64> {
    if !v.is_finite() || (log && v <= 0.0) {
        None
    } else if log {
        Some(v.log10())
    } else {
        Some(v)
    }
}

fn nearest_point(fig: &Figure, lines: &[&LineSeries], p: Pointer) -> Option<String> {
    let mut best: Option<(f64, &LineSeries, [f64; 2])> = None;
    for s in lines {
        for q in &s.points {
            let Some(y) = plotted(q[1], fig.log_y) else {
                continue;
            };
            let dx = (q[0] - p.x) / p.per_px[0];
            let dy = (y - p.y) / p.per_px[1];
            let d = dx * dx + dy * dy;
            if d <= REACH_PX * REACH_PX && best.is_none_or(|b| d < b.0) {
                best = Some((d, s, *q));
            }
        }
    }
    let (_, s, q) = best?;
    let name = if s.name.is_empty() { "" } else { &s.name };
    let y = if fig.y_label.is_empty() {
        "value"
    } else {
        &fig.y_label
    };
    Some(format!(
        "{name}\n{} {}\n{y} {}",
        fig.x_label,
        coordinate(q[0]),
        sig(q[1])
    ))
}

/// A coordinate in words: whole numbers (steps, token indices) as they are, others to three
/// significant digits.
pub fn coordinate(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        sig(v)
    }
}

/// The heatmap cell under the pointer: its row's name (or y) and x, and its value.
fn cell(fig: &Figure, p: Pointer) -> Option<String> {
    let g = fig.grid()?;
    let (i, j) = g.cell_at(p.x, p.y)?;
    let v = *g.values.get(j * g.nx + i)?;
    let x = format!("{} {}", fig.x_label, coordinate(g.x_at(i)));
    let what = if fig.look.classes {
        format!("class {}", v)
    } else {
        format!("value {}", sig(v))
    };
    match g.row_name(j) {
        Some(row) => Some(format!("{row}\n{x}\n{what}")),
        None => Some(format!("{x}\n{} {}\n{what}", fig.y_label, sig(g.y_at(j)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::BarSeries;

    #[test]
    fn a_bar_names_its_category_and_value_not_its_log() {
        let fig = Figure::bars(
            "g",
            "tensor",
            "gradient norm",
            vec!["fc1.weight".into(), "fc2.weight".into()],
            vec![BarSeries::new("normal", vec![0.052, 3e-4])],
        )
        .log_y(true);
        let at = |x: f64| Pointer {
            x,
            y: -2.0,
            per_px: [0.01, 0.01],
        };
        assert_eq!(
            describe(&fig, at(1.1)).as_deref(),
            Some("fc2.weight\ngradient norm 3.00e-4")
        );
        assert_eq!(describe(&fig, at(0.5)), None, "between bars");
        assert_eq!(describe(&fig, at(2.0)), None, "past the last bar");
    }

    #[test]
    fn a_line_is_named_only_near_a_point() {
        let fig = Figure::lines(
            "l",
            "step",
            "loss",
            vec![LineSeries::new("train", vec![[0.0, 1.0], [10.0, 0.1]])],
        )
        .log_y(true);
        let near = Pointer {
            x: 10.05,
            y: -1.0,
            per_px: [0.1, 0.01],
        };
        assert_eq!(
            describe(&fig, near).as_deref(),
            Some("train\nstep 10\nloss 0.100")
        );
        let away = Pointer { y: 0.5, ..near };
        assert_eq!(describe(&fig, away), None);
    }

    #[test]
    fn a_row_heatmap_cell_names_its_row() {
        let fig = Figure::row_heatmap(
            "h",
            "step",
            vec!["first".into(), "second".into()],
            [0.0, 100.0],
            2,
            vec![1.0, 2.0, 3.0, 4.0],
        );
        // The top row (first) is grid row 1.
        let p = Pointer {
            x: 90.0,
            y: 1.2,
            per_px: [1.0, 0.01],
        };
        assert_eq!(
            describe(&fig, p).as_deref(),
            Some("first\nstep 100\nvalue 2.00")
        );
    }
}
