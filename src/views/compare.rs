//! Compare: any number of runs overlaid: training loss, and the gradient norm and activation
//! std against relative depth (0 = input, 1 = output) at each run's latest probe, so networks
//! of different depth line up.

use super::{Input, RunView, View, ema, shown_layers, shown_tensors};
use crate::figure::{Figure, LineSeries, Style};
use crate::metrics::series;
use serde::{Deserialize, Serialize};

/// Display options of the Compare panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompareOptions {
    /// EMA weight of the loss curves.
    pub smoothing: f64,
    /// Loss on a log axis.
    pub log_y: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        Self {
            smoothing: 0.8,
            log_y: true,
        }
    }
}

/// Values of one per-layer statistic at a run's latest probe against relative depth in [0, 1].
pub fn versus_depth(run: &RunView, gradient: bool) -> Vec<[f64; 2]> {
    let Some(p) = &run.history.latest_probe else {
        return Vec::new();
    };
    let values: Vec<f32> = if gradient {
        shown_tensors(run, false)
            .into_iter()
            .filter_map(|i| p.params.get(i).map(|s| s.grad_norm))
            .collect()
    } else {
        shown_layers(run, true)
            .into_iter()
            .filter_map(|i| p.layers.get(i).map(|s| s.std))
            .collect()
    };
    let n = values.len();
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| [i as f64 / (n.max(2) - 1) as f64, v as f64])
        .collect()
}

impl super::PanelView for CompareOptions {
    const TITLE: &'static str = "Compare";
    const SLUG: &'static str = "compare";
}

impl View for CompareOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        if input.runs.is_empty() {
            return Vec::new();
        }
        let loss = input
            .runs
            .iter()
            .filter_map(|r| {
                let s = r.history.get(series::LOSS, "")?;
                let pts = ema(&s.decimated(super::MAX_POINTS), self.smoothing);
                Some(
                    LineSeries::new(r.name, pts)
                        .style(Style::Bold)
                        .color(r.color),
                )
            })
            .collect();
        let depth = |gradient: bool| {
            input
                .runs
                .iter()
                .map(|r| {
                    LineSeries::new(r.name, versus_depth(r, gradient))
                        .style(Style::LinePoints)
                        .color(r.color)
                })
                .collect()
        };
        vec![
            Figure::lines("training loss (smoothed)", "step", "loss", loss).log_y(self.log_y),
            Figure::lines(
                "gradient norm vs depth",
                "relative depth (0 = input, 1 = output)",
                "gradient norm",
                depth(true),
            )
            .log_y(true),
            Figure::lines(
                "activation std vs depth",
                "relative depth (0 = input, 1 = output)",
                "activation std",
                depth(false),
            )
            .log_y(true),
        ]
    }
}
