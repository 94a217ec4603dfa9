//! Normalisation layers: per BatchNorm layer the running mean and variance over time (a band
//! from the channels' minimum to maximum, their median, and a few tracked channels), the latest
//! per-channel values beside what an evaluation set produces there, and γ and β; without
//! BatchNorm, each LayerNorm's or GroupNorm's γ and β.

use super::{Input, RunView, View};
use crate::figure::{Band, BarSeries, Figure, LineSeries, Look, Style};
use crate::metrics::{BN_TRACKED_CHANNELS, History, series};
use serde::{Deserialize, Serialize};

/// Display options of the normalisation panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NormOptions {
    /// The layer shown (by name; empty or unknown: the middle one).
    pub layer: String,
    /// The evaluation set whose statistics at the layer are drawn beside the running ones (by
    /// name; empty: none).
    pub overlay: String,
}

const MAX_POINTS: usize = 800;

impl super::PanelView for NormOptions {
    const TITLE: &'static str = "Normalisation layers";
    const SLUG: &'static str = "batchnorm";
}

impl View for NormOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(run) = &input.run else {
            return Vec::new();
        };
        let layout = &run.history.layout;
        if layout.batch_norms.is_empty() {
            return self.affine(run).into_iter().collect();
        }
        let layer = pick(&self.layer, &layout.batch_norms);
        let mut figs = Vec::new();
        for (what, names, prefix) in [
            ("running mean", series::BN_MEAN, series::BN_MEAN_CH),
            ("running variance", series::BN_VAR, series::BN_VAR_CH),
        ] {
            figs.extend(band_figure(run.history, &layer, what, names, prefix));
        }
        figs.extend(self.current(run, &layer));
        figs
    }
}

/// The chosen name if it is one of `names`, else the middle one.
pub fn pick(chosen: &str, names: &[String]) -> String {
    if names.iter().any(|n| n == chosen) {
        return chosen.to_string();
    }
    names.get(names.len() / 2).cloned().unwrap_or_default()
}

/// A running statistic of one BN layer over training: min–max band, median, tracked channels.
fn band_figure(
    h: &History,
    layer: &str,
    what: &str,
    names: [&str; 3],
    prefix: &str,
) -> Option<Figure> {
    let lo = h.get(names[0], layer)?;
    let med = h.get(names[1], layer)?;
    let hi = h.get(names[2], layer)?;
    // The band needs aligned x values: every k-th probe, not min/max decimation.
    let n = lo.len().min(hi.len());
    let stride = n.div_ceil(MAX_POINTS).max(1);
    let idx = (0..n).step_by(stride).chain((n > 0).then(|| n - 1));
    let band = idx
        .map(|i| [lo.steps[i] as f64, lo.values[i] as f64, hi.values[i] as f64])
        .collect();
    let mut lines = vec![
        LineSeries::new("median over channels", med.decimated(MAX_POINTS))
            .style(Style::Bold)
            .color(0),
    ];
    for c in 0..BN_TRACKED_CHANNELS {
        if let Some(s) = h.get(&format!("{prefix}{c}"), layer) {
            lines.push(
                LineSeries::new(format!("channel {c}"), s.decimated(MAX_POINTS))
                    .style(Style::Dashed)
                    .color(c + 1),
            );
        }
    }
    let title = format!("{what} of {layer} (band: min to max over channels)");
    let look = Look {
        bands: vec![Band {
            name: "min to max over channels".into(),
            points: band,
            color: None,
        }],
        ..Look::default()
    };
    Some(Figure::lines(title, "step", what, lines).look(look))
}

impl NormOptions {
    /// The latest per-channel running statistics (with the overlay set's) and γ, β.
    fn current(&self, run: &RunView, layer: &str) -> Vec<Figure> {
        let h = run.history;
        let Some(probe) = &h.latest_probe else {
            return Vec::new();
        };
        let Some(k) = h.layout.batch_norms.iter().position(|l| l == layer) else {
            return Vec::new();
        };
        let Some(b) = probe.batch_norms.get(k) else {
            return Vec::new();
        };
        let step = probe.step;
        let mut stats = channel_bars(
            format!("running mean and variance of {layer} per channel at step {step}"),
            [
                ("running mean", &b.running_mean),
                ("running var", &b.running_var),
            ],
        );
        if let Some((at, m)) = self.overlay_of(h, k) {
            let set = &self.overlay;
            stats.title = format!(
                "{}; diamonds: what \"{set}\" produces at this layer (validation at step {at})",
                stats.title
            );
            for (v, offset, what, c) in [(&m.mean, -0.2, "mean", 2), (&m.var, 0.2, "var", 3)] {
                let pts = v
                    .iter()
                    .enumerate()
                    .map(|(c, &x)| [c as f64 + offset, x as f64])
                    .collect();
                stats.look.overlay.push(
                    LineSeries::new(format!("{set}: {what}"), pts)
                        .style(Style::Points)
                        .color(c),
                );
            }
        }
        let affine = channel_bars(
            format!("γ and β of {layer} per channel at step {step}"),
            [("γ", &b.gamma), ("β", &b.beta)],
        );
        vec![stats, affine]
    }

    /// The chosen evaluation set's statistics at BN layer `k` and the step they were measured.
    fn overlay_of(&self, h: &History, k: usize) -> Option<(u64, crate::metrics::ChannelMoments)> {
        let set = h.layout.eval_sets.iter().position(|s| *s == self.overlay)?;
        let r = h.latest_set_bn.as_ref()?;
        Some((r.step, r.sets.get(set)?.get(k)?.clone()))
    }

    /// A LayerNorm's or GroupNorm's γ and β (these keep no running statistics).
    fn affine(&self, run: &RunView) -> Option<Figure> {
        let h = run.history;
        let names = &h.layout.affine_norms;
        if names.is_empty() {
            return None;
        }
        let layer = pick(&self.layer, names);
        let k = names.iter().position(|l| *l == layer)?;
        let probe = h.latest_probe.as_ref()?;
        let a = probe.affine_norms.get(k)?;
        let title = format!("γ and β of {layer} per channel at step {}", probe.step);
        Some(channel_bars(title, [("γ", &a.gamma), ("β", &a.beta)]))
    }
}

/// Two per-channel vectors as side-by-side bars.
fn channel_bars(title: String, pair: [(&str, &Vec<f32>); 2]) -> Figure {
    let n = pair[0].1.len().max(pair[1].1.len());
    let categories = (0..n).map(|c| c.to_string()).collect();
    let series = pair
        .iter()
        .enumerate()
        .map(|(i, (name, v))| BarSeries::new(*name, v.iter().map(|&x| x as f64).collect()).color(i))
        .collect();
    Figure::bars(title, "channel", "value", categories, series)
}
