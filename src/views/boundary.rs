//! Decision boundary of a classifier on a 2-D dataset: the predicted class on a grid with the
//! training points on top (the worker recomputes it every few probes).

use super::{Input, View};
use crate::figure::{Figure, FigureKind, LineSeries, Look, Style};

/// The boundary panel has no options.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoundaryOptions;

impl super::PanelView for BoundaryOptions {
    const TITLE: &'static str = "Decision boundary";
    const SLUG: &'static str = "boundary";
}

impl View for BoundaryOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(b) = input
            .run
            .as_ref()
            .and_then(|r| r.history.latest_boundary.as_ref())
        else {
            return Vec::new();
        };
        let n = b.resolution;
        if n == 0 || b.classes.len() != n * n {
            return Vec::new();
        }
        let classes = b.labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        let overlay = (0..classes)
            .map(|c| {
                let pts = b
                    .points
                    .iter()
                    .zip(&b.labels)
                    .filter(|(_, l)| **l as usize == c)
                    .map(|(p, _)| [p[0] as f64, p[1] as f64])
                    .collect();
                LineSeries::new(format!("class {c}"), pts)
                    .style(Style::Points)
                    .color(c)
            })
            .collect();
        let cell = |r: [f32; 2]| {
            // The record's grid spans the range edge to edge; cell centres are half a cell in.
            let d = (r[1] - r[0]) as f64 / n as f64;
            [r[0] as f64 + d / 2.0, r[1] as f64 - d / 2.0]
        };
        let fig = Figure {
            kind: FigureKind::Heatmap {
                x_range: cell(b.x_range),
                y_range: cell(b.y_range),
                nx: n,
                ny: n,
                values: b.classes.iter().map(|&c| c as f64).collect(),
                contours: Vec::new(),
            },
            ..Figure::lines(
                format!("predicted class at step {}, training points on top", b.step),
                "x (normalised)",
                "y (normalised)",
                Vec::new(),
            )
        };
        vec![fig.look(Look {
            overlay,
            classes: true,
            ..Look::default()
        })]
    }
}
