//! What each panel of the lab shows, as plain figures: a panel is its display options and a pure
//! `figures(&Input) -> Vec<Figure>` over the runs' histories ([`View`]). The lab draws these
//! figures with egui and `reslab plot` and the lab's export write them as SVG, PNG and CSV,
//! so a picture in a file is the panel's picture. A new panel is one file here (its options, a
//! [`PanelView`]), its egui controls in `ui/panels/`, and one line in [`with_panels!`].

mod activations;
mod attention;
mod boundary;
mod compare;
mod gradients;
mod loss;
pub mod norms;

pub use activations::{ActivationsOptions, LineStat};
pub use attention::{AttentionOptions, head_matrix};
pub use boundary::BoundaryOptions;
pub use compare::{CompareOptions, versus_depth};
pub use gradients::{EXPLODING, GradHealth, GradientOptions, VANISHING, classify, health_counts};
pub use loss::{LossOptions, MAX_POINTS};
pub use norms::NormOptions;

use crate::figure::Figure;
use crate::metrics::History;
use crate::spec::{LayerOp, NetSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One run as the views read it.
#[derive(Clone, Copy)]
pub struct RunView<'a> {
    /// Its name (legends).
    pub name: &'a str,
    /// What it recorded.
    pub history: &'a History,
    /// Its network (which layers are activations, which tensors weights).
    pub spec: &'a NetSpec,
    /// Its colour among the runs (an index into the categorical palette).
    pub color: usize,
}

/// What the views draw from: the run shown and every run (for Compare).
#[derive(Clone, Default)]
pub struct Input<'a> {
    /// The run shown, if any.
    pub run: Option<RunView<'a>>,
    /// The runs compared, in order.
    pub runs: Vec<RunView<'a>>,
}

/// A panel's figures from its options.
pub trait View {
    /// The figures the panel shows for `input` (empty when there is nothing to show yet).
    fn figures(&self, input: &Input) -> Vec<Figure>;
}

/// A panel of the lab: options that are a [`View`], kept between launches, with a title and a
/// name (`reslab plot --panel NAME`, exported file names).
pub trait PanelView: View + Default + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The panel's title.
    const TITLE: &'static str;
    /// Its name on the command line and in exported file names.
    const SLUG: &'static str;
}

/// The panels, in display order: one line each, `Kind field: Options`. [`PanelKind`] here and
/// the lab's panel state (`ui::panels::Panels`) are made from this list, so a new panel is its
/// view file here, its controls in `ui/panels/`, and one line below.
#[macro_export]
macro_rules! with_panels {
    ($m:ident) => {
        $m! {
            Loss loss: $crate::views::LossOptions,
            Activations activations: $crate::views::ActivationsOptions,
            BatchNorm batchnorm: $crate::views::NormOptions,
            Gradients gradients: $crate::views::GradientOptions,
            Boundary boundary: $crate::views::BoundaryOptions,
            Compare compare: $crate::views::CompareOptions,
            Attention attention: $crate::views::AttentionOptions,
        }
    };
}

macro_rules! panel_kind {
    ($($kind:ident $field:ident: $options:ty,)*) => {
        /// The panels, in display order (made from [`with_panels!`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum PanelKind {
            $(
                #[doc = concat!("The ", stringify!($field), " panel.")]
                $kind,
            )*
        }

        impl PanelKind {
            /// All panels.
            pub const ALL: [PanelKind; [$(stringify!($kind)),*].len()] = [$(PanelKind::$kind),*];

            /// The panel's title.
            pub fn title(self) -> &'static str {
                match self {
                    $(PanelKind::$kind => <$options as PanelView>::TITLE,)*
                }
            }

            /// A file-name stem for exported pictures, also the panel's name in
            /// `reslab plot --panel`.
            pub fn slug(self) -> &'static str {
                match self {
                    $(PanelKind::$kind => <$options as PanelView>::SLUG,)*
                }
            }

            /// The panel's figures with its default options.
            pub fn default_figures(self, input: &Input) -> Vec<Figure> {
                match self {
                    $(PanelKind::$kind => <$options>::default().figures(input),)*
                }
            }
        }
    };
}

with_panels!(panel_kind);

impl PanelKind {
    /// The panel a slug names.
    pub fn from_slug(slug: &str) -> Option<PanelKind> {
        PanelKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// Position in [`PanelKind::ALL`].
    pub fn index(self) -> usize {
        PanelKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// Indices of the layers a per-layer figure shows: the activation outputs when `only_acts` and
/// the network has any, otherwise every layer.
pub fn shown_layers(run: &RunView, only_acts: bool) -> Vec<usize> {
    let names = &run.history.layout.layers;
    if only_acts {
        let acts: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| is_activation_layer(run.spec, n))
            .map(|(i, _)| i)
            .collect();
        if !acts.is_empty() {
            return acts;
        }
    }
    (0..names.len()).collect()
}

fn is_activation_layer(spec: &NetSpec, name: &str) -> bool {
    spec.layers
        .iter()
        .find(|l| l.name == name)
        .is_some_and(|l| matches!(l.op, LayerOp::Activation { .. }))
}

/// Indices (into the run's tensor list) of the tensors a per-tensor figure shows: weight
/// matrices and kernels, or with `all` every tensor (biases, BN γ and β too).
pub fn shown_tensors(run: &RunView, all: bool) -> Vec<usize> {
    let params = &run.history.layout.params;
    let weights: Vec<usize> = params
        .iter()
        .enumerate()
        .filter(|(_, n)| all || is_weight(run.spec, n))
        .map(|(i, _)| i)
        .collect();
    if weights.is_empty() {
        (0..params.len()).collect()
    } else {
        weights
    }
}

fn is_weight(spec: &NetSpec, tensor: &str) -> bool {
    // Weight matrices and kernels of Linear/Conv layers; BN's γ is also called `weight`, so
    // the layer's kind decides.
    let Some(layer) = tensor.strip_suffix(".weight") else {
        return false;
    };
    spec.layers
        .iter()
        .find(|l| l.name == layer)
        .is_none_or(|l| l.has_weights() && !matches!(l.op, LayerOp::BatchNorm { .. }))
}

/// Exponential moving average with bias correction (as TensorBoard's smoothing); non-finite
/// values pass through and do not enter the average.
pub fn ema(points: &[[f64; 2]], w: f64) -> Vec<[f64; 2]> {
    let w = w.clamp(0.0, 0.999);
    let mut s = 0.0;
    let mut k = 0i32;
    points
        .iter()
        .map(|p| {
            if !p[1].is_finite() {
                return *p;
            }
            k += 1;
            s = w * s + (1.0 - w) * p[1];
            [p[0], s / (1.0 - w.powi(k))]
        })
        .collect()
}

/// Columns of a layer × step heatmap at most.
pub const HEAT_COLUMNS: usize = 400;

/// A `rows × step` heatmap of one per-layer series: each row's probes in order, bucketed into
/// at most `max_cols` columns ([`HEAT_COLUMNS`] in the panels) of consecutive probes (so no
/// column is empty while a row has values), each cell the geometric mean of its bucket's
/// positive values (the colours are logarithmic), NaN where a bucket has none. The columns sit
/// at the mean step of their buckets in the longest row.
pub fn layer_heatmap(
    title: &str,
    history: &History,
    series: &str,
    names: &[String],
    max_cols: usize,
) -> Option<Figure> {
    let all: Vec<_> = names.iter().map(|n| history.get(series, n)).collect();
    let longest = all.iter().flatten().max_by_key(|s| s.len())?;
    let n = longest.len();
    if n == 0 {
        return None;
    }
    let cols = n.min(max_cols.max(1));
    let bucket = |i: usize, len: usize| i * cols / len.max(1);
    let mut values = vec![f64::NAN; names.len() * cols];
    for (r, s) in all.iter().enumerate() {
        let Some(s) = s else { continue };
        let (mut sum, mut count) = (vec![0.0; cols], vec![0u32; cols]);
        for (i, &v) in s.values.iter().enumerate() {
            if v > 0.0 && v.is_finite() {
                let c = bucket(i, s.len());
                sum[c] += (v as f64).ln();
                count[c] += 1;
            }
        }
        for c in 0..cols {
            if count[c] > 0 {
                values[r * cols + c] = (sum[c] / count[c] as f64).exp();
            }
        }
    }
    let centre = |c: usize| {
        let steps: Vec<f64> = (0..n)
            .filter(|&i| bucket(i, n) == c)
            .map(|i| longest.steps[i] as f64)
            .collect();
        steps.iter().sum::<f64>() / steps.len().max(1) as f64
    };
    let x_range = [centre(0), centre(cols - 1)];
    let fig = Figure::row_heatmap(title, "step", names.to_vec(), x_range, cols, values);
    Some(fig.log_y(true))
}

#[cfg(test)]
mod tests;
