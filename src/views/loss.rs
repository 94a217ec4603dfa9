//! Loss & accuracy: training loss (raw and smoothed), validation loss, accuracies, and one more
//! curve per evaluation set (other colours, shifted data) when the run has them.

use super::{Input, View, ema};
use crate::figure::{Figure, LineSeries, Look, Style};
use crate::metrics::{History, series};
use serde::{Deserialize, Serialize};

/// Points shown per curve at most (min/max decimation keeps spikes).
pub const MAX_POINTS: usize = 1500;

/// Display options of the loss panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossOptions {
    /// EMA weight in [0, 0.99].
    pub smoothing: f64,
    /// Loss on a log axis.
    pub log_y: bool,
    /// Show the raw training loss under the smoothed one.
    pub show_raw: bool,
}

impl Default for LossOptions {
    fn default() -> Self {
        Self {
            smoothing: 0.8,
            log_y: true,
            show_raw: true,
        }
    }
}

/// Palette positions of the curves: training blue, validation orange, training accuracy green,
/// validation accuracy red, evaluation sets from the fifth colour on.
const TRAIN: usize = 0;
const VALIDATION: usize = 1;
const TRAIN_ACC: usize = 2;
const VAL_ACC: usize = 3;
const SETS: usize = 4;

fn curve(h: &History, name: &str, layer: &str) -> Vec<[f64; 2]> {
    h.get(name, layer)
        .map(|s| s.decimated(MAX_POINTS))
        .unwrap_or_default()
}

impl super::PanelView for LossOptions {
    const TITLE: &'static str = "Loss & accuracy";
    const SLUG: &'static str = "loss";
}

impl View for LossOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(run) = &input.run else {
            return Vec::new();
        };
        let h = run.history;
        let loss = curve(h, series::LOSS, "");
        if loss.is_empty() {
            return Vec::new();
        }
        let mut figs = vec![self.loss_figure(h, loss)];
        let acc = curve(h, series::ACCURACY, "");
        if acc.iter().any(|p| p[1].is_finite()) {
            figs.push(self.accuracy_figure(h, acc));
        }
        figs
    }
}

impl LossOptions {
    fn loss_figure(&self, h: &History, loss: Vec<[f64; 2]>) -> Figure {
        let mut lines = Vec::new();
        if self.show_raw {
            lines.push(
                LineSeries::new("train (raw)", loss.clone())
                    .style(Style::Faint)
                    .color(TRAIN),
            );
        }
        lines.push(
            LineSeries::new("train (smoothed)", ema(&loss, self.smoothing))
                .style(Style::Bold)
                .color(TRAIN),
        );
        let val = curve(h, series::VAL_LOSS, "");
        if !val.is_empty() {
            lines.push(
                LineSeries::new("validation", val)
                    .style(Style::LinePoints)
                    .color(VALIDATION),
            );
        }
        for (k, set) in h.layout.eval_sets.iter().enumerate() {
            let points = curve(h, series::VAL_LOSS, set);
            lines.push(
                LineSeries::new(set.as_str(), points)
                    .style(Style::LinePoints)
                    .color(SETS + k),
            );
        }
        Figure::lines("Loss", "step", "loss", lines).log_y(self.log_y)
    }

    fn accuracy_figure(&self, h: &History, acc: Vec<[f64; 2]>) -> Figure {
        let mut lines = vec![
            LineSeries::new("train accuracy (smoothed)", ema(&acc, self.smoothing))
                .color(TRAIN_ACC),
        ];
        let val = curve(h, series::VAL_ACCURACY, "");
        if !val.is_empty() {
            lines.push(
                LineSeries::new("validation accuracy", val)
                    .style(Style::Bold)
                    .color(VAL_ACC),
            );
        }
        for (k, set) in h.layout.eval_sets.iter().enumerate() {
            let points = curve(h, series::VAL_ACCURACY, set);
            lines.push(LineSeries::new(format!("{set} accuracy"), points).color(SETS + k));
        }
        Figure::lines("Accuracy", "step", "accuracy", lines).look(Look {
            y_range: Some([0.0, 1.0]),
            ..Look::default()
        })
    }
}
