//! Gradient flow: per weight tensor the gradient norm at the latest probe, input to output, on
//! a log axis with vanishing and exploding tensors in their own colours; a tensor × step
//! heatmap; and the update/weight ratio.

use super::{HEAT_COLUMNS, Input, View, layer_heatmap, shown_tensors};
use crate::figure::{BarSeries, Figure, LineSeries, Look, Style};
use crate::metrics::series;
use serde::{Deserialize, Serialize};

/// Below this gradient norm a tensor's gradient counts as vanished.
pub const VANISHING: f32 = 1e-6;
/// Above this gradient norm (or 100× the median tensor's) a gradient counts as exploding.
pub const EXPLODING: f32 = 1e3;

/// How a tensor's gradient looks at the latest probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradHealth {
    /// Neither vanishing nor exploding.
    Normal,
    /// Below [`VANISHING`].
    Vanishing,
    /// Above [`EXPLODING`], 100× the median, or not finite.
    Exploding,
}

/// Classifies gradient norms: vanishing below [`VANISHING`], exploding above [`EXPLODING`] or
/// above 100× the median norm, or when not finite.
pub fn classify(norms: &[f32]) -> Vec<GradHealth> {
    let mut finite: Vec<f32> = norms.iter().copied().filter(|v| v.is_finite()).collect();
    finite.sort_by(f32::total_cmp);
    let median = finite.get(finite.len() / 2).copied().unwrap_or(0.0);
    norms
        .iter()
        .map(|&g| {
            if !g.is_finite() || g > EXPLODING || (median > 0.0 && g > 100.0 * median) {
                GradHealth::Exploding
            } else if g < VANISHING {
                GradHealth::Vanishing
            } else {
                GradHealth::Normal
            }
        })
        .collect()
}

/// Display options of the gradient panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GradientOptions {
    /// Include biases and BN γ/β (else weight matrices and kernels only).
    pub all_tensors: bool,
}

impl super::PanelView for GradientOptions {
    const TITLE: &'static str = "Gradient flow";
    const SLUG: &'static str = "gradients";
}

impl View for GradientOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(run) = &input.run else {
            return Vec::new();
        };
        let h = run.history;
        let Some(probe) = &h.latest_probe else {
            return Vec::new();
        };
        let shown = shown_tensors(run, self.all_tensors);
        let names: Vec<String> = shown.iter().map(|&i| h.layout.params[i].clone()).collect();
        let of = |f: fn(&crate::metrics::ParamStats) -> f32| -> Vec<f32> {
            shown
                .iter()
                .map(|&i| probe.params.get(i).map_or(f32::NAN, f))
                .collect()
        };
        let norms = of(|p| p.grad_norm);
        let mut figs = vec![norm_bars(&norms, &names, probe.step)];
        let title = "gradient norm: tensor (top = input) × step";
        figs.extend(layer_heatmap(
            title,
            h,
            series::GRAD_NORM,
            &names,
            HEAT_COLUMNS,
        ));
        figs.push(ratio_bars(&of(|p| p.update_ratio), &names, probe.step));
        figs
    }
}

/// A flat dashed reference line across `n` bars.
fn level(name: &str, y: f64, n: usize, color: usize) -> LineSeries {
    LineSeries::new(name, vec![[-0.5, y], [n as f64 - 0.5, y]])
        .style(Style::Dashed)
        .color(color)
}

/// The counts of vanishing and exploding tensors among `norms`.
pub fn health_counts(norms: &[f32]) -> (usize, usize) {
    let h = classify(norms);
    let count = |k| h.iter().filter(|&&g| g == k).count();
    (count(GradHealth::Vanishing), count(GradHealth::Exploding))
}

/// The gradient norms as bars coloured by health (one stacked series per health: each tensor
/// has its value in exactly one), with the vanishing level.
fn norm_bars(norms: &[f32], names: &[String], step: u64) -> Figure {
    let health = classify(norms);
    let series = [
        (GradHealth::Normal, "normal", 0),
        (GradHealth::Vanishing, "vanishing (< 1e-6)", 3),
        (
            GradHealth::Exploding,
            "exploding (> 1e3 or 100× the median)",
            1,
        ),
    ]
    .into_iter()
    .filter(|(k, _, _)| *k == GradHealth::Normal || health.contains(k))
    .map(|(k, name, color)| {
        let values = norms
            .iter()
            .zip(&health)
            .map(|(&g, &hl)| if hl == k { g as f64 } else { f64::NAN })
            .collect();
        BarSeries::new(name, values).color(color)
    })
    .collect();
    let (vanishing, exploding) = health_counts(norms);
    let title = format!(
        "gradient norm per tensor at step {step}: {vanishing} vanishing, {exploding} exploding"
    );
    Figure::bars(
        title,
        "tensor (input to output)",
        "gradient norm",
        names.to_vec(),
        series,
    )
    .log_y(true)
    .look(Look {
        overlay: vec![level(
            "vanishing level 1e-6",
            VANISHING as f64,
            names.len(),
            3,
        )],
        stacked: true,
        ..Look::default()
    })
}

/// The update/weight ratios as bars, with the usual healthy scale 1e-3 marked.
fn ratio_bars(ratios: &[f32], names: &[String], step: u64) -> Figure {
    let values = ratios.iter().map(|&r| r as f64).collect();
    Figure::bars(
        format!("update / weight ratio |Δw| / |w| per tensor at step {step}"),
        "tensor (input to output)",
        "|Δw| / |w|",
        names.to_vec(),
        vec![BarSeries::new("update / weight", values).color(2)],
    )
    .log_y(true)
    .look(Look {
        overlay: vec![level("usual scale 1e-3", 1e-3, names.len(), 7)],
        ..Look::default()
    })
}
