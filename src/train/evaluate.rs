//! Evaluation, the one place for it: a model's mean loss and accuracy on a split, in batches of
//! a chosen size, with a chosen way for BatchNorm to normalise at test time. The training
//! worker, the CLI and the experiments all evaluate through [`evaluate`].
//!
//! BatchNorm carries the training distribution into test time through its running statistics;
//! when the test data are shifted, those no longer describe what the layer sees. The modes:
//! the running statistics ([`NormMode::Running`], what a deployed network does); each test
//! batch's own statistics ([`NormMode::Batch`]); AdaBN (Li et al. 2016: re-estimate the running
//! statistics on test batches, then use them); and Schneider et al. 2020's prior, which mixes
//! the running statistics with each test batch's by a strength N. LayerNorm and GroupNorm use
//! per-sample statistics and are the same in every mode.

use crate::data::{Split, Targets, Task};
use crate::model::{Lesion, Model, Probe, input_from_host};
use crate::spec::Shape;
use burn::module::RunningState;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData, Transaction};

/// How BatchNorm layers normalise at test time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum NormMode {
    /// The running statistics from training (the default).
    #[default]
    Running,
    /// Each test batch's own mean and variance.
    Batch,
    /// AdaBN: the running statistics replaced by the average of the first `batches` test
    /// batches' statistics, then used for every batch.
    AdaBn {
        /// Test batches to re-estimate on (at least 1).
        batches: usize,
    },
    /// Schneider et al. 2020: per test batch of n samples, the statistics
    /// `N/(N+n) · running + n/(N+n) · batch`, with N the prior's strength.
    Prior {
        /// N: how many samples the running statistics count as.
        strength: f64,
    },
}

/// How to evaluate: the test-time normalisation, the batch size, an optional lesion.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// How BatchNorm normalises.
    pub mode: NormMode,
    /// Samples per test batch (it matters for [`NormMode::Batch`] and the prior).
    pub batch: usize,
    /// Blocks deleted for a lesion study.
    pub lesion: Option<Lesion>,
    /// Keep every sample's outputs (logits) in [`Evaluation::outputs`].
    pub keep_outputs: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            mode: NormMode::Running,
            batch: crate::spec::EVAL_CHUNK,
            lesion: None,
            keep_outputs: false,
        }
    }
}

/// What an evaluation found.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss (cross-entropy, or mean squared error for regression).
    pub loss: f32,
    /// Fraction classified correctly (NaN for regression).
    pub accuracy: f32,
    /// Every sample's outputs in order, `outputs` values each, when asked for.
    pub outputs: Vec<f32>,
}

/// The data an evaluation runs on: a split, its task and its sample shape.
#[derive(Clone, Copy)]
pub struct EvalData<'a> {
    /// The samples.
    pub split: &'a Split,
    /// Classification or regression.
    pub task: Task,
    /// One sample's shape.
    pub shape: Shape,
}

/// Evaluates `model` (built on the autodiff `device`, as training builds it) on `data`, on one
/// of rayon's workers (`model::fused::on_workers`).
pub fn evaluate(
    model: &Model,
    data: EvalData<'_>,
    opts: &EvalOptions,
    device: &Device,
) -> Evaluation {
    crate::model::fused::on_workers(|| evaluate_here(model, data, opts, device))
}

/// [`evaluate`] of `model` on each of `jobs`, several at a time on the local CPU (they are
/// independent: each adaptive mode adapts its own copy of the net), one after another on any
/// other device (burn keeps one session per remote endpoint); the results in the jobs' order,
/// each the same as one [`evaluate`] call gives.
pub fn evaluate_each(
    model: &Model,
    jobs: &[(EvalData<'_>, EvalOptions)],
    device: &Device,
) -> Vec<Evaluation> {
    if !crate::model::fused::is_flex(device) {
        return jobs
            .iter()
            .map(|(data, opts)| evaluate(model, *data, opts, device))
            .collect();
    }
    crate::model::fused::par_map(jobs, |(data, opts)| {
        evaluate_here(model, *data, opts, device)
    })
}

fn evaluate_here(
    model: &Model,
    data: EvalData<'_>,
    opts: &EvalOptions,
    device: &Device,
) -> Evaluation {
    let all: Vec<usize> = (0..data.split.len).collect();
    let batches: Vec<&[usize]> = all.chunks(opts.batch.max(1)).collect();
    let plain = device.clone().inner();
    // The model every batch runs through, and the device its input goes to; the prior makes
    // one per batch.
    let shared = match opts.mode {
        NormMode::Running => Some((model.valid(), &plain)),
        NormMode::Batch => Some((batch_statistics(model), device)),
        NormMode::AdaBn { batches: n } => {
            let first = &batches[..n.clamp(1, batches.len().max(1)).min(batches.len())];
            Some((adapted(model, data, first, device), &plain))
        }
        NormMode::Prior { .. } => None,
    };
    let mut loss_sum = Tensor::<1>::zeros([1], &plain);
    let mut correct = Tensor::<1>::zeros([1], &plain);
    let mut outputs = Vec::new();
    for &idx in &batches {
        let own;
        let (m, on) = match (&shared, opts.mode) {
            (Some((m, on)), _) => (m, *on),
            (None, NormMode::Prior { strength }) => {
                let keep = strength / (strength + idx.len() as f64);
                own = adapted_with(model, data, &[idx], device, |_| 1.0 - keep);
                (&own, &plain)
            }
            (None, _) => unreachable!("only the prior adapts per batch"),
        };
        let x = input_from_host(gather(data.split, idx), idx.len(), data.shape, on);
        let (logits, _) = m.forward_with(x, Probe::Off, opts.lesion.as_ref());
        let logits = logits.inner();
        if opts.keep_outputs {
            let host = logits.clone().into_data().try_into_vec_as::<f32>();
            outputs.extend(host.unwrap_or_default());
        }
        let (l, c) = loss_and_correct(logits, data.task, &data.split.y, idx, &plain);
        loss_sum = loss_sum + l.mul_scalar(idx.len() as f32);
        if let Some(c) = c {
            correct = correct + c;
        }
    }
    Evaluation {
        outputs,
        ..finish(loss_sum, correct, data)
    }
}

/// Mean loss and accuracy from the sums over the batches.
fn finish(loss_sum: Tensor<1>, correct: Tensor<1>, data: EvalData<'_>) -> Evaluation {
    let mut out = Transaction::default()
        .register(loss_sum)
        .register(correct)
        .execute()
        .into_iter()
        .map(|d| d.try_into_vec_as::<f32>().unwrap_or_default());
    let n = data.split.len.max(1) as f32;
    let first = |v: Option<Vec<f32>>| v.and_then(|v| v.first().copied());
    let loss = first(out.next()).unwrap_or(f32::NAN) / n;
    let c = first(out.next()).unwrap_or(0.0);
    Evaluation {
        loss,
        accuracy: match data.task {
            Task::Classification { .. } => c / n,
            Task::Regression { .. } => f32::NAN,
        },
        outputs: Vec::new(),
    }
}

/// A copy of `model` whose BatchNorm layers use each batch's own statistics: training mode on
/// the autodiff device (without gradients), momentum 0, no noise. Its running statistics are its own (a cloned
/// module shares them with the original, and AdaBN and the prior move them).
fn batch_statistics(model: &Model) -> Model {
    use burn::module::Module;
    // No gradients: the autodiff device then records no graph for these passes.
    let mut net = model.net.clone().no_grad();
    for_each_bn(&mut net, &mut |bn| {
        bn.momentum = 0.0;
        bn.running_mean = RunningState::new(bn.running_mean.value_sync());
        bn.running_var = RunningState::new(bn.running_var.value_sync());
    });
    let mut m = model.valid().with_net(net);
    m.bn_noise = None;
    m
}

/// AdaBN: the running statistics set to the average of `batches`' statistics (momentum 1/k
/// for the k-th), returned in inference mode.
fn adapted(model: &Model, data: EvalData<'_>, batches: &[&[usize]], device: &Device) -> Model {
    let mut k = 0.0;
    adapted_with(model, data, batches, device, |_| {
        k += 1.0;
        1.0 / k
    })
}

/// Runs `batches` through a training-mode copy of `model`, each BatchNorm's momentum before
/// each batch given by `momentum`, and returns the copy in inference mode.
fn adapted_with(
    model: &Model,
    data: EvalData<'_>,
    batches: &[&[usize]],
    device: &Device,
    mut momentum: impl FnMut(usize) -> f64,
) -> Model {
    let mut m = batch_statistics(model);
    for (k, idx) in batches.iter().enumerate() {
        let mo = momentum(k);
        for_each_bn(&mut m.net, &mut |bn| bn.momentum = mo);
        let x = input_from_host(gather(data.split, idx), idx.len(), data.shape, device);
        let _ = m.forward(x);
    }
    m.valid()
}

/// Every BatchNorm of a network: the layers' and the projection shortcuts'.
fn for_each_bn(net: &mut crate::model::Net, f: &mut dyn FnMut(&mut burn::nn::BatchNorm)) {
    for bn in net
        .nodes
        .iter_mut()
        .flatten()
        .filter_map(|n| n.batch_norm_mut())
    {
        f(bn);
    }
    for bn in net.skips.iter_mut().filter_map(|s| s.proj_bn.as_mut()) {
        f(bn);
    }
}

/// The rows `idx` of a split, concatenated.
pub(crate) fn gather(split: &Split, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::new();
    gather_x(split, idx, &mut out);
    out
}

/// The rows `idx` of a split into `out` (reused between calls).
pub(crate) fn gather_x(split: &Split, idx: &[usize], out: &mut Vec<f32>) {
    let numel = split.sample_numel();
    out.clear();
    for &i in idx {
        out.extend_from_slice(&split.x[i * numel..(i + 1) * numel]);
    }
}

/// The mean loss of a batch and (for classification) how many it got right.
pub(crate) fn loss_and_correct(
    logits: Tensor<2>,
    task: Task,
    y: &Targets,
    idx: &[usize],
    device: &Device,
) -> (Tensor<1>, Option<Tensor<1>>) {
    let b = idx.len();
    match (task, y) {
        (Task::Classification { .. }, Targets::Classes(c)) => {
            let labels: Vec<i64> = idx.iter().map(|&i| c[i] as i64).collect();
            let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [b, 1]), device);
            let logp = log_softmax(logits.clone(), 1);
            let loss = logp.gather(1, labels.clone()).mean().neg();
            let correct = logits.inner().argmax(1).equal(labels.inner()).float().sum();
            (loss, Some(correct))
        }
        (Task::Regression { outputs }, Targets::Values(v)) => {
            let mut t = Vec::with_capacity(b * outputs);
            for &i in idx {
                t.extend_from_slice(&v[i * outputs..(i + 1) * outputs]);
            }
            let target = Tensor::<2>::from_data(TensorData::new(t, [b, outputs]), device);
            ((logits - target).square().mean(), None)
        }
        _ => unreachable!("targets match the task"),
    }
}

/// One BatchNorm layer's per-channel statistics: its running ones, or what some data produce
/// at its input.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelStats {
    /// The layer's name.
    pub layer: String,
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Variance per channel.
    pub var: Vec<f32>,
}

/// The running mean and variance of every BatchNorm layer, in layer order: what the network
/// expects its inputs to look like.
pub fn running_statistics(model: &Model) -> Vec<ChannelStats> {
    let names: Vec<String> = model
        .spec
        .spec
        .layers
        .iter()
        .zip(model.net.nodes.iter())
        .filter(|(_, n)| n.as_ref().and_then(|n| n.batch_norm()).is_some())
        .map(|(l, _)| l.name.clone())
        .collect();
    model
        .batch_norm_state()
        .into_iter()
        .zip(names)
        .map(|(t, layer)| {
            let v = t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
            let c = v.len() / 4;
            ChannelStats {
                layer,
                mean: v[..c].to_vec(),
                var: v[c..2 * c].to_vec(),
            }
        })
        .collect()
}

/// The per-channel mean and variance that `data` produce at the input of every BatchNorm
/// layer, in layer order: AdaBN's estimate over the first `batches` batches of `batch` samples
/// (the running average of their batch statistics). Set beside [`running_statistics`], it
/// shows where shifted data leave what the network expects.
pub fn data_statistics(
    model: &Model,
    data: EvalData<'_>,
    batch: usize,
    batches: usize,
    device: &Device,
) -> Vec<ChannelStats> {
    let all: Vec<usize> = (0..data.split.len).collect();
    let chunks: Vec<&[usize]> = all.chunks(batch.max(1)).take(batches.max(1)).collect();
    running_statistics(&adapted(model, data, &chunks, device))
}
