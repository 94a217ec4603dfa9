//! Activations: per-layer output std, mean or token rank over training, a layer × step heatmap
//! of the std, the histogram of one layer at the latest probe, and the fraction of outputs ≤ 0
//! per layer (dead ReLUs).

use super::{HEAT_COLUMNS, Input, RunView, View, layer_heatmap, shown_layers};
use crate::figure::{BarSeries, Figure, LineSeries, Look};
use crate::metrics::series;
use crate::numbers::sig;
use serde::{Deserialize, Serialize};

/// Which statistic the per-layer lines show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStat {
    /// Standard deviation (log axis).
    Std,
    /// Mean.
    Mean,
    /// How far a token layer's tokens are from rank one (log axis; token layers only).
    TokenRank,
}

/// Display options of the activations panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActivationsOptions {
    /// Statistic of the per-layer lines.
    pub stat: LineStat,
    /// Only the activation layers (else every layer: linear, BN, activation...).
    pub only_activations: bool,
    /// The layer whose histogram is shown (by name; empty or unknown: the middle activation
    /// layer).
    pub histogram_layer: String,
}

impl Default for ActivationsOptions {
    fn default() -> Self {
        Self {
            stat: LineStat::Std,
            only_activations: true,
            histogram_layer: String::new(),
        }
    }
}

/// Points per line at most; with many layers the budget is shared.
const POINT_BUDGET: usize = 12_000;

impl super::PanelView for ActivationsOptions {
    const TITLE: &'static str = "Activations";
    const SLUG: &'static str = "activations";
}

impl View for ActivationsOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(run) = &input.run else {
            return Vec::new();
        };
        let h = run.history;
        if h.layout.layers.is_empty() || h.latest_probe.is_none() {
            return Vec::new();
        }
        let layers = shown_layers(run, self.only_activations);
        let names: Vec<String> = layers.iter().map(|&i| h.layout.layers[i].clone()).collect();
        let mut figs = vec![self.lines(run, &names)];
        let title = "std: layer (top = input) × step";
        figs.extend(layer_heatmap(
            title,
            h,
            series::ACT_STD,
            &names,
            HEAT_COLUMNS,
        ));
        figs.extend(self.histogram(run));
        figs.push(dead_fraction(run, &layers));
        figs
    }
}

impl ActivationsOptions {
    /// The histogram's layer: the chosen one if the run has it, else the middle activation
    /// layer (deep enough to show what depth does).
    pub fn histogram_layer(&self, run: &RunView) -> String {
        let layers = &run.history.layout.layers;
        if layers.contains(&self.histogram_layer) {
            return self.histogram_layer.clone();
        }
        let acts = shown_layers(run, true);
        acts.get(acts.len() / 2)
            .map(|&i| layers[i].clone())
            .unwrap_or_default()
    }

    fn lines(&self, run: &RunView, names: &[String]) -> Figure {
        let (name, log, title) = match self.stat {
            LineStat::Std => (series::ACT_STD, true, "std per layer over training"),
            LineStat::Mean => (series::ACT_MEAN, false, "mean per layer over training"),
            LineStat::TokenRank => (
                series::TOKEN_RESIDUAL,
                true,
                "token rank ‖X − mean token‖/‖X‖ per token layer",
            ),
        };
        let per_line = (POINT_BUDGET / names.len().max(1)).clamp(40, 1500);
        let lines = names
            .iter()
            .filter_map(|layer| {
                let s = run.history.get(name, layer)?;
                Some(LineSeries::new(layer.as_str(), s.decimated(per_line)))
            })
            .collect();
        let y = match self.stat {
            LineStat::Std => "std",
            LineStat::Mean => "mean",
            LineStat::TokenRank => "token rank",
        };
        Figure::lines(title, "step", y, lines)
            .log_y(log)
            .look(Look {
                depth_colors: true,
                ..Look::default()
            })
    }

    fn histogram(&self, run: &RunView) -> Option<Figure> {
        let h = run.history;
        let probe = h.latest_probe.as_ref()?;
        let layer = self.histogram_layer(run);
        let i = h.layout.layers.iter().position(|l| *l == layer)?;
        let a = probe.layers.get(i)?;
        let bins = a.hist.len().max(1);
        let w = if a.max > a.min {
            (a.max - a.min) as f64 / bins as f64
        } else {
            1.0
        };
        let categories = (0..a.hist.len())
            .map(|b| sig(a.min as f64 + w * (b as f64 + 0.5)))
            .collect();
        let counts = a.hist.iter().map(|&c| c as f64).collect();
        let title = format!(
            "histogram of {layer} at step {} (mean {}, std {})",
            probe.step,
            sig(a.mean as f64),
            sig(a.std as f64)
        );
        Some(Figure::bars(
            title,
            "output value (bin centre)",
            "count",
            categories,
            vec![BarSeries::new("count", counts)],
        ))
    }
}

fn dead_fraction(run: &RunView, layers: &[usize]) -> Figure {
    let h = run.history;
    let probe = h.latest_probe.as_ref();
    let names = layers.iter().map(|&i| h.layout.layers[i].clone()).collect();
    let values = layers
        .iter()
        .map(|&i| {
            probe
                .and_then(|p| p.layers.get(i))
                .map_or(f64::NAN, |a| a.frac_nonpos as f64)
        })
        .collect();
    Figure::bars(
        "fraction of outputs ≤ 0 per layer (dead ReLUs)",
        "layer (input to output)",
        "fraction ≤ 0",
        names,
        vec![BarSeries::new("fraction ≤ 0", values)],
    )
    .look(Look {
        y_range: Some([0.0, 1.0]),
        ..Look::default()
    })
}
