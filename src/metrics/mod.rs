//! The run history: append-only columnar series keyed by (series, layer), filled from the
//! records a run produces (live or loaded), with min/max decimation for display.
//!
//! This module imports neither burn nor egui.
//!
//! # Memory bound
//!
//! A point costs 8 bytes (a `u32` step and an `f32` value). A run of `T` steps with probes every
//! `k` steps on a network with `L` layers, `B` BatchNorm layers, `S` skips and `P` trainable
//! tensors holds about `6·T + (T/k)·(5·L + 10·B + 4·S + 3·P)` points, plus two evaluation
//! series and the latest full probe record (histograms and per-channel BN vectors).
//! [`History::memory_bytes`] reports the actual figure. Example: 100k steps of cifar-resnet-56
//! (L = 171, B = 57, S = 27, P = 172) probed every 10 steps is about 24 M points, 190 MB; probed
//! every 100 steps, 24 MB.

mod checkpoint;
mod finite;
mod records;
mod status;

pub use checkpoint::{Checkpoint, NamedTensor, SamplerPosition};
pub use records::{
    ActStats, AffineStats, AttentionStats, BnStats, BoundaryRecord, ChannelMoments, EvalRecord,
    HIST_BINS, ParamStats, ProbeRecord, RunLayout, SetBnRecord, SkipStats, StepRecord,
};
pub use status::RunStatus;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Series names. Whole-run series use the layer `""`.
pub mod series {
    /// Training loss per step.
    pub const LOSS: &str = "loss";
    /// Training batch accuracy per step.
    pub const ACCURACY: &str = "accuracy";
    /// Learning rate per step.
    pub const LR: &str = "lr";
    /// Throughput per step.
    pub const SAMPLES_PER_SEC: &str = "samples_per_sec";
    /// Global gradient norm per step (layer `""`), or per tensor at probes (layer = tensor).
    pub const GRAD_NORM: &str = "grad_norm";
    /// Validation loss.
    pub const VAL_LOSS: &str = "val_loss";
    /// Validation accuracy.
    pub const VAL_ACCURACY: &str = "val_accuracy";
    /// Per layer output mean.
    pub const ACT_MEAN: &str = "act_mean";
    /// Per layer output standard deviation.
    pub const ACT_STD: &str = "act_std";
    /// Per layer output minimum.
    pub const ACT_MIN: &str = "act_min";
    /// Per layer output maximum.
    pub const ACT_MAX: &str = "act_max";
    /// Per layer fraction of outputs ≤ 0.
    pub const ACT_FRAC_NONPOS: &str = "act_frac_nonpos";
    /// Per BN layer: min, median, max over channels of the running mean.
    pub const BN_MEAN: [&str; 3] = ["bn_mean_min", "bn_mean_median", "bn_mean_max"];
    /// Per BN layer: min, median, max over channels of the running variance.
    pub const BN_VAR: [&str; 3] = ["bn_var_min", "bn_var_median", "bn_var_max"];
    /// Per BN layer: mean γ over channels.
    pub const BN_GAMMA_MEAN: &str = "bn_gamma_mean";
    /// Per BN layer: mean β over channels.
    pub const BN_BETA_MEAN: &str = "bn_beta_mean";
    /// Per BN layer, channel 0's running mean (one series per tracked channel: `_ch0`…).
    pub const BN_MEAN_CH: &str = "bn_mean_ch";
    /// Per BN layer, a tracked channel's running variance.
    pub const BN_VAR_CH: &str = "bn_var_ch";
    /// Per skip target: ‖f‖ of the residual branch.
    pub const SKIP_BRANCH_NORM: &str = "skip_branch_norm";
    /// Per skip target: ‖shortcut‖.
    pub const SKIP_SHORTCUT_NORM: &str = "skip_shortcut_norm";
    /// Per skip target: ‖α·f‖ / ‖shortcut‖.
    pub const SKIP_RATIO: &str = "skip_ratio";
    /// Per skip target: α.
    pub const SKIP_ALPHA: &str = "skip_alpha";
    /// Per tensor: ‖w‖.
    pub const WEIGHT_NORM: &str = "weight_norm";
    /// Per tensor: ‖Δw‖ / ‖w‖.
    pub const UPDATE_RATIO: &str = "update_ratio";
    /// Per token layer: ‖X − 1·x̄ᵀ‖ / ‖X‖, how far its tokens are from rank one.
    pub const TOKEN_RESIDUAL: &str = "token_residual";
    /// Per attention layer: mean attention entropy (nats) over its heads.
    pub const ATTN_ENTROPY: &str = "attn_entropy";
}

/// How many channels of each BN layer get their own running mean/var series.
pub const BN_TRACKED_CHANNELS: usize = 4;

/// One series: steps and values, appended in step order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Step of each point.
    pub steps: Vec<u32>,
    /// Value of each point.
    #[serde(with = "finite::vec")]
    pub values: Vec<f32>,
}

impl Series {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the series has no point.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The last value.
    pub fn last(&self) -> Option<f32> {
        self.values.last().copied()
    }

    /// At most `max_points` points for display: when the series is longer, the steps are cut into
    /// `max_points / 2` equal buckets and each bucket contributes its minimum and its maximum (in
    /// step order), so spikes survive. NaN values are kept as they are never min or max.
    pub fn decimated(&self, max_points: usize) -> Vec<[f64; 2]> {
        let n = self.len();
        if n <= max_points.max(2) {
            return self
                .steps
                .iter()
                .zip(&self.values)
                .map(|(&s, &v)| [s as f64, v as f64])
                .collect();
        }
        let buckets = (max_points / 2).max(1);
        let mut out = Vec::with_capacity(buckets * 2);
        for b in 0..buckets {
            let lo = b * n / buckets;
            let hi = ((b + 1) * n / buckets).max(lo + 1);
            let (mut imin, mut imax) = (lo, lo);
            for i in lo..hi {
                if self.values[i] < self.values[imin] || self.values[imin].is_nan() {
                    imin = i;
                }
                if self.values[i] > self.values[imax] || self.values[imax].is_nan() {
                    imax = i;
                }
            }
            let (a, c) = if imin <= imax {
                (imin, imax)
            } else {
                (imax, imin)
            };
            out.push([self.steps[a] as f64, self.values[a] as f64]);
            if c != a {
                out.push([self.steps[c] as f64, self.values[c] as f64]);
            }
        }
        out
    }
}

/// Identifies a series: its name and the layer (or tensor) it belongs to, `""` for the run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesKey {
    /// Series name (see [`series`]).
    pub name: String,
    /// Layer, BN layer, skip target or tensor name; `""` for whole-run series.
    pub layer: String,
}

/// Everything recorded about a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// What the probes report on.
    pub layout: RunLayout,
    /// The series, in the order they were first seen.
    series: Vec<(SeriesKey, Series)>,
    #[serde(skip)]
    index: HashMap<SeriesKey, usize>,
    /// The most recent probe record in full (histograms, per-channel BN vectors).
    pub latest_probe: Option<ProbeRecord>,
    /// The last step recorded.
    pub last_step: u64,
    /// The latest decision boundary, for classifiers of 2-D data.
    #[serde(default)]
    pub latest_boundary: Option<BoundaryRecord>,
    /// What the evaluation sets produced at each BatchNorm layer at the latest validation pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_set_bn: Option<SetBnRecord>,
}

fn median(v: &[f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

fn min_max(v: &[f32]) -> (f32, f32) {
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len().max(1) as f32
}

impl History {
    /// An empty history for a run with this layout.
    pub fn new(layout: RunLayout) -> Self {
        Self {
            layout,
            ..Self::default()
        }
    }

    /// A history from its parts (a run file's reader builds the series from a binary side
    /// file); the lookup index is built here.
    pub fn from_parts(
        layout: RunLayout,
        series: Vec<(SeriesKey, Series)>,
        latest_probe: Option<ProbeRecord>,
        last_step: u64,
        latest_boundary: Option<BoundaryRecord>,
        latest_set_bn: Option<SetBnRecord>,
    ) -> Self {
        let mut h = Self {
            layout,
            series,
            index: HashMap::new(),
            latest_probe,
            last_step,
            latest_boundary,
            latest_set_bn,
        };
        h.reindex();
        h
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Drops everything recorded after `step`: a run whose device failed goes back to the
    /// weights it last saved, and its history must not run ahead of them.
    pub fn truncate(&mut self, step: u64) {
        for (_, s) in &mut self.series {
            let keep = s.steps.partition_point(|&t| u64::from(t) <= step);
            s.steps.truncate(keep);
            s.values.truncate(keep);
        }
        self.series.retain(|(_, s)| !s.is_empty());
        self.reindex();
        self.last_step = self.last_step.min(step);
        if self.latest_probe.as_ref().is_some_and(|p| p.step > step) {
            self.latest_probe = None;
        }
        if self.latest_boundary.as_ref().is_some_and(|b| b.step > step) {
            self.latest_boundary = None;
        }
        if self.latest_set_bn.as_ref().is_some_and(|b| b.step > step) {
            self.latest_set_bn = None;
        }
    }

    /// Rebuilds the lookup index (after deserialising).
    pub fn reindex(&mut self) {
        self.index = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
    }

    /// Appends one point.
    pub fn push(&mut self, name: &str, layer: &str, step: u64, value: f32) {
        let key = SeriesKey {
            name: name.to_string(),
            layer: layer.to_string(),
        };
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.series.push((key.clone(), Series::default()));
                self.index.insert(key, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        let s = &mut self.series[i].1;
        s.steps.push(step.min(u32::MAX as u64) as u32);
        s.values.push(value);
        self.last_step = self.last_step.max(step);
    }

    /// A series by name and layer.
    pub fn get(&self, name: &str, layer: &str) -> Option<&Series> {
        let key = SeriesKey {
            name: name.to_string(),
            layer: layer.to_string(),
        };
        self.index.get(&key).map(|&i| &self.series[i].1)
    }

    /// All series in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.series.iter().map(|(k, s)| (k, s))
    }

    /// Records a step.
    pub fn push_step(&mut self, r: &StepRecord) {
        self.push(series::LOSS, "", r.step, r.loss);
        self.push(series::ACCURACY, "", r.step, r.accuracy);
        self.push(series::LR, "", r.step, r.lr);
        self.push(series::SAMPLES_PER_SEC, "", r.step, r.samples_per_sec);
        self.push(series::GRAD_NORM, "", r.step, r.grad_norm);
    }

    /// Records a validation pass.
    pub fn push_eval(&mut self, r: &EvalRecord) {
        self.push(series::VAL_LOSS, "", r.step, r.loss);
        self.push(series::VAL_ACCURACY, "", r.step, r.accuracy);
        let names = std::mem::take(&mut self.layout.eval_sets);
        for (name, [loss, accuracy]) in names.iter().zip(&r.sets) {
            self.push(series::VAL_LOSS, name, r.step, *loss);
            self.push(series::VAL_ACCURACY, name, r.step, *accuracy);
        }
        self.layout.eval_sets = names;
        if !r.set_bn.is_empty() {
            self.latest_set_bn = Some(SetBnRecord {
                step: r.step,
                sets: r.set_bn.clone(),
            });
        }
    }

    /// Records a probe step: reduces it into series and keeps it as the latest probe.
    pub fn push_probe(&mut self, r: ProbeRecord) {
        let step = r.step;
        let layout = std::mem::take(&mut self.layout);
        for (name, a) in layout.layers.iter().zip(&r.layers) {
            self.push(series::ACT_MEAN, name, step, a.mean);
            self.push(series::ACT_STD, name, step, a.std);
            self.push(series::ACT_MIN, name, step, a.min);
            self.push(series::ACT_MAX, name, step, a.max);
            self.push(series::ACT_FRAC_NONPOS, name, step, a.frac_nonpos);
        }
        for (name, b) in layout.batch_norms.iter().zip(&r.batch_norms) {
            let (lo, hi) = min_max(&b.running_mean);
            self.push(series::BN_MEAN[0], name, step, lo);
            self.push(series::BN_MEAN[1], name, step, median(&b.running_mean));
            self.push(series::BN_MEAN[2], name, step, hi);
            let (lo, hi) = min_max(&b.running_var);
            self.push(series::BN_VAR[0], name, step, lo);
            self.push(series::BN_VAR[1], name, step, median(&b.running_var));
            self.push(series::BN_VAR[2], name, step, hi);
            self.push(series::BN_GAMMA_MEAN, name, step, mean(&b.gamma));
            self.push(series::BN_BETA_MEAN, name, step, mean(&b.beta));
            for c in 0..BN_TRACKED_CHANNELS.min(b.running_mean.len()) {
                self.push(
                    &format!("{}{c}", series::BN_MEAN_CH),
                    name,
                    step,
                    b.running_mean[c],
                );
                self.push(
                    &format!("{}{c}", series::BN_VAR_CH),
                    name,
                    step,
                    b.running_var[c],
                );
            }
        }
        for (name, s) in layout.skips.iter().zip(&r.skips) {
            self.push(series::SKIP_BRANCH_NORM, name, step, s.branch_norm);
            self.push(series::SKIP_SHORTCUT_NORM, name, step, s.shortcut_norm);
            self.push(series::SKIP_RATIO, name, step, s.ratio());
            self.push(series::SKIP_ALPHA, name, step, s.alpha);
        }
        for (name, &t) in layout.token_layers.iter().zip(&r.token_residual) {
            self.push(series::TOKEN_RESIDUAL, name, step, t);
        }
        for (name, a) in layout.attention.iter().zip(&r.attention) {
            let h = a.entropy.len().max(1) as f32;
            self.push(
                series::ATTN_ENTROPY,
                name,
                step,
                a.entropy.iter().sum::<f32>() / h,
            );
        }
        for (name, p) in layout.params.iter().zip(&r.params) {
            self.push(series::GRAD_NORM, name, step, p.grad_norm);
            self.push(series::WEIGHT_NORM, name, step, p.weight_norm);
            self.push(series::UPDATE_RATIO, name, step, p.update_ratio);
        }
        self.layout = layout;
        self.latest_probe = Some(r);
    }

    /// Keeps a decision boundary as the latest one.
    pub fn push_boundary(&mut self, b: BoundaryRecord) {
        self.latest_boundary = Some(b);
    }

    /// Total number of points over all series.
    pub fn points(&self) -> usize {
        self.series.iter().map(|(_, s)| s.len()).sum()
    }

    /// Approximate heap bytes held: 8 per point plus keys and the latest probe.
    pub fn memory_bytes(&self) -> usize {
        let points: usize = self
            .series
            .iter()
            .map(|(k, s)| {
                s.steps.capacity() * 4 + s.values.capacity() * 4 + k.name.len() + k.layer.len() + 64
            })
            .sum();
        let probe = self.latest_probe.as_ref().map_or(0, |p| {
            p.layers.len() * (HIST_BINS * 4 + 48)
                + p.batch_norms
                    .iter()
                    .map(|b| 16 * b.running_mean.len())
                    .sum::<usize>()
                + p.skips.len() * 24
                + p.params.len() * 12
        });
        points + probe
    }
}
