//! Figures' data as CSV, to sit beside their picture: one row per drawn value in long form,
//! `figure,series,x,y,value`, where `value` is always the number drawn and `x`, `y` say where:
//! a line's point is `x` (e.g. the step) and its `value`; a bar is its category in `x`; a
//! heatmap of named rows has the row in `series` and the column in `x`; a grid heatmap has both
//! coordinates; a band is two series, `(low)` and `(high)`; an image is its label and size.

use super::{Figure, FigureKind};
use std::fmt::Write;

/// The header of every figure CSV.
pub const HEADER: &str = "figure,series,x,y,value";

/// The figures' data as CSV text. NaN is an empty cell.
pub fn to_csv(figures: &[Figure]) -> String {
    let mut out = format!("{HEADER}\n");
    for fig in figures {
        let t = field(&fig.title);
        let mut row = |series: &str, x: &str, y: &str, v: f64| {
            let _ = writeln!(out, "{t},{},{x},{y},{}", field(series), num(v));
        };
        match &fig.kind {
            FigureKind::Lines { series } => {
                for s in series.iter().chain(&fig.look.overlay) {
                    for p in &s.points {
                        row(&s.name, &num(p[0]), "", p[1]);
                    }
                }
                for b in &fig.look.bands {
                    for (k, side) in [(1, "low"), (2, "high")] {
                        let name = format!("{} ({side})", b.name);
                        for p in &b.points {
                            row(&name, &num(p[0]), "", p[k]);
                        }
                    }
                }
            }
            FigureKind::Bars { categories, series } => {
                for s in series {
                    for (c, v) in categories.iter().zip(&s.values) {
                        row(&s.name, &field(c), "", *v);
                    }
                }
            }
            FigureKind::Heatmap { .. } => {
                let Some(g) = fig.grid() else { continue };
                if g.rows.len() == g.ny {
                    for (r, name) in g.rows.iter().enumerate() {
                        for i in 0..g.nx {
                            let v = fig.row_value(r, i).unwrap_or(f64::NAN);
                            row(name, &num(g.x_at(i)), "", v);
                        }
                    }
                } else {
                    for j in 0..g.ny {
                        for i in 0..g.nx {
                            row("", &num(g.x_at(i)), &num(g.y_at(j)), g.value(i, j));
                        }
                    }
                }
            }
            FigureKind::Images { images } => {
                for t in images {
                    let size = format!("{}x{}", t.width, t.height);
                    row(&t.label, &size, "", f64::NAN);
                }
            }
        }
    }
    out
}

/// A number as written (shortest exact form), NaN as an empty cell.
fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        v.to_string()
    }
}

/// A text cell, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{BarSeries, LineSeries};

    #[test]
    fn lines_bars_and_row_heatmaps_in_long_form() {
        let fig = Figure::lines(
            "t",
            "step",
            "loss",
            vec![LineSeries::new("a, b", vec![[0.0, 1.5], [1.0, f64::NAN]])],
        );
        let bars = Figure::bars(
            "g",
            "layer",
            "norm",
            vec!["l1".into(), "l2".into()],
            vec![BarSeries::new("g", vec![0.25, 2.0])],
        );
        let heat = Figure::row_heatmap(
            "h",
            "step",
            vec!["top".into(), "bottom".into()],
            [0.0, 10.0],
            2,
            vec![1.0, 2.0, 3.0, 4.0],
        );
        assert_eq!(
            to_csv(&[fig, bars, heat]),
            "figure,series,x,y,value\n\
             t,\"a, b\",0,,1.5\nt,\"a, b\",1,,\n\
             g,g,l1,,0.25\ng,g,l2,,2\n\
             h,top,0,,1\nh,top,10,,2\nh,bottom,0,,3\nh,bottom,10,,4\n"
        );
    }
}
