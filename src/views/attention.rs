//! Attention: one self-attention layer's attention at the latest probe (one head or the mean
//! of its heads, tokens × tokens, averaged over the probe batch), and each attention layer's
//! mean attention entropy over training beside ln(tokens), the entropy of uniform attention.

use super::{Input, View};
use crate::figure::{Figure, LineSeries, Look, Style};
use crate::metrics::{AttentionStats, History, series};
use serde::{Deserialize, Serialize};

/// Display options of the attention panel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttentionOptions {
    /// The attention layer shown (by name; empty or unknown: the first).
    pub layer: String,
    /// The head shown; `None`: the mean over the heads.
    pub head: Option<usize>,
}

impl super::PanelView for AttentionOptions {
    const TITLE: &'static str = "Attention";
    const SLUG: &'static str = "attention";
}

impl View for AttentionOptions {
    fn figures(&self, input: &Input) -> Vec<Figure> {
        let Some(run) = &input.run else {
            return Vec::new();
        };
        let h = run.history;
        let layout = &h.layout;
        let Some(probe) = &h.latest_probe else {
            return Vec::new();
        };
        let k = self.layer_index(&layout.attention);
        let (Some(&[heads, tokens]), Some(stats)) =
            (layout.attention_shape.get(k), probe.attention.get(k))
        else {
            return Vec::new();
        };
        let head = self.head.filter(|&h| h < heads);
        let m = head_matrix(stats, heads, tokens, head);
        let which = head.map_or("mean of heads".to_string(), |h| format!("head {}", h + 1));
        let title = format!(
            "attention of {} ({which}) at step {} (rows: query, columns: key)",
            layout.attention[k], probe.step
        );
        let rows = (0..tokens).map(|i| format!("query {i}")).collect();
        let values = m.iter().map(|&v| v as f64).collect();
        let last = tokens.saturating_sub(1) as f64;
        let map = Figure::row_heatmap(title, "key token", rows, [0.0, last], tokens, values);
        vec![map, entropy_figure(h, tokens)]
    }
}

impl AttentionOptions {
    /// The shown layer's index: the chosen one, else the first.
    pub fn layer_index(&self, layers: &[String]) -> usize {
        layers.iter().position(|l| *l == self.layer).unwrap_or(0)
    }
}

/// One head's `tokens × tokens` matrix, or the mean over the heads.
pub fn head_matrix(a: &AttentionStats, heads: usize, n: usize, head: Option<usize>) -> Vec<f32> {
    let nn = n * n;
    match head {
        Some(h) => a.weights.get(h * nn..(h + 1) * nn).unwrap_or(&[]).to_vec(),
        None => (0..nn)
            .map(|c| {
                (0..heads)
                    .filter_map(|h| a.weights.get(h * nn + c))
                    .sum::<f32>()
                    / heads.max(1) as f32
            })
            .collect(),
    }
}

/// Each attention layer's mean entropy over training, input (dark) to output (yellow), with
/// ln(tokens) dashed.
fn entropy_figure(h: &History, tokens: usize) -> Figure {
    let layers = &h.layout.attention;
    let mut last_step = 1.0f64;
    let lines = layers
        .iter()
        .filter_map(|name| {
            let s = h.get(series::ATTN_ENTROPY, name)?;
            let pts: Vec<[f64; 2]> = s
                .steps
                .iter()
                .zip(&s.values)
                .map(|(&t, &v)| [t as f64, v as f64])
                .collect();
            last_step = last_step.max(pts.last().map_or(1.0, |q| q[0]));
            Some(LineSeries::new(name.as_str(), pts))
        })
        .collect();
    let uniform = (tokens.max(1) as f64).ln();
    let flat = LineSeries::new(
        "ln(tokens): uniform",
        vec![[0.0, uniform], [last_step, uniform]],
    )
    .style(Style::Dashed)
    .color(7);
    Figure::lines(
        "attention entropy per layer",
        "step",
        "entropy (nats)",
        lines,
    )
    .look(Look {
        overlay: vec![flat],
        depth_colors: true,
        ..Look::default()
    })
}
