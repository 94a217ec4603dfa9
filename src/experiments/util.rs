//! Shared pieces: the MNIST setup, a training driver that records a run file, parameters as
//! host vectors, and losses on host batches.

use super::{ExperimentError, ExperimentOptions};
use crate::data::{self, Dataset, Split, Targets};
use crate::metrics::History;
use crate::model::path::{PathMap, PathVisit, is_buffer, map_with_path, visit_with_path};
use crate::model::{Act, Lesion, Model, input_from_host};
use crate::runfile::{Environment, Progress, RunFile, RunStatus};
use crate::spec::{
    DataSource, DatasetSpec, DeviceChoice, Duration, NetSpec, OptimizerSpec, PresetOptions,
    Schedule, TrainConfig, preset, validate,
};
use crate::train::{Session, TrainEvent, apply_event, drive};
use burn::module::Param;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};

/// The shipped MNIST-10k and its descriptor.
pub(crate) fn mnist() -> Result<(DatasetSpec, Dataset), ExperimentError> {
    let spec = DatasetSpec::new(DataSource::Mnist10k);
    let data = data::load(&spec)?;
    Ok((spec, data))
}

/// An MLP preset (`mlp-plain-N` / `mlp-res-N`) for a dataset.
pub(crate) fn mlp(
    name: &str,
    dataset: &DatasetSpec,
    width: usize,
    batch_norm: bool,
) -> Result<NetSpec, ExperimentError> {
    preset_spec(
        name,
        &PresetOptions {
            width,
            norm: if batch_norm {
                crate::spec::Norm::Batch
            } else {
                crate::spec::Norm::None
            },
            ..PresetOptions::for_dataset(dataset)
        },
    )
}

/// The preset `name` built with `opts`, its error as an experiment's.
pub(crate) fn preset_spec(name: &str, opts: &PresetOptions) -> Result<NetSpec, ExperimentError> {
    preset(name, opts)
        .map_err(|e| ExperimentError::Train(crate::train::TrainError::Mismatch(e.to_string())))
}

/// The degradation setup of He et al. as the issue fixes it: SGD momentum 0.9, lr 0.05,
/// batch 128, no probes, validation every 50 steps.
pub(crate) fn sgd_config(steps: u64, seed: u64) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        lr: 0.05,
        batch_size: 128,
        duration: Duration::Steps(steps),
        seed,
        probe_every: 0,
        eval_every: 50,
        device: DeviceChoice::Cpu,
        ..TrainConfig::default()
    }
}

/// [`sgd_config`] with `batch` samples per step and a one-cycle rate: a linear warm-up over
/// `warmup_steps` to `lr`, then a cosine decay to 0.
pub(crate) fn one_cycle_config(
    steps: u64,
    seed: u64,
    (batch, lr): (usize, f64),
    warmup_steps: u64,
) -> TrainConfig {
    TrainConfig {
        batch_size: batch,
        lr,
        warmup_steps,
        schedule: Schedule::Cosine {
            final_fraction: 0.0,
        },
        ..sgd_config(steps, seed)
    }
}

/// One training run of an experiment: what to train, on what, and where its progress goes.
#[derive(Clone)]
pub(crate) struct Job<'a> {
    /// The run's name in the experiment file.
    pub name: String,
    /// The network.
    pub spec: NetSpec,
    /// How to train it.
    pub config: TrainConfig,
    /// The data's descriptor.
    pub dataset: &'a DatasetSpec,
    /// The data.
    pub data: &'a Dataset,
    /// The part of the experiment's progress bar this run fills.
    pub span: (f32, f32),
}

impl<'a> Job<'a> {
    /// The BN MLP preset `name` (width `width`) in the degradation setup ([`sgd_config`]) for
    /// `steps` steps on `seed`, named `{name}-seed{seed}`.
    pub fn mlp(
        name: &str,
        width: usize,
        steps: u64,
        seed: u64,
        data: (&'a DatasetSpec, &'a Dataset),
        span: (f32, f32),
    ) -> Result<Self, ExperimentError> {
        Ok(Self {
            name: format!("{name}-seed{seed}"),
            spec: mlp(name, data.0, width, true)?,
            config: sgd_config(steps, seed),
            dataset: data.0,
            data: data.1,
            span,
        })
    }
}

/// A finished (or diverged) training run.
pub(crate) struct Trained {
    /// The session at the end.
    pub session: Session,
    /// The run record (history, no weights).
    pub run: RunFile,
    /// Training loss per step.
    pub losses: Vec<f32>,
    /// Whether it stopped on a non-finite loss or gradient.
    pub diverged: bool,
}

/// What a hook before each step may do.
pub(crate) type StepHook<'a> =
    &'a mut dyn FnMut(&mut Session, &mut ExperimentOptions) -> Result<(), ExperimentError>;

/// Trains a job, reporting progress over its span, calling `hook` before every step and
/// recording probes when the config asks for them. Stops early on divergence (recorded in the
/// run's status).
pub(crate) fn train(
    job: &Job<'_>,
    opts: &mut ExperimentOptions,
    mut hook: Option<StepHook<'_>>,
) -> Result<Trained, ExperimentError> {
    let (config, span) = (&job.config, job.span);
    let valid = validate(&job.spec)?;
    let config = &TrainConfig {
        device: opts.device.clone(),
        ..config.clone()
    };
    let mut session = Session::new(&valid, config, job.data.clone(), opts.burn_device(true)?)?;
    let mut history = History::new(session.layout.clone());
    let mut status = RunStatus::Running;
    let mut losses = Vec::new();
    let mut diverged = false;
    while !session.is_done() {
        opts.check_cancel()?;
        if let Some(h) = hook.as_mut() {
            h(&mut session, opts)?;
        }
        // The worker's step: the same events, applied as the lab and the CLI apply them.
        let taken = drive::step(&mut session, false);
        if let Some(why) = taken.failed {
            return Err(ExperimentError::Train(crate::train::TrainError::Lost(why)));
        }
        for e in &taken.events {
            if let TrainEvent::Step(r) = e {
                losses.push(r.loss);
            }
            apply_event(&mut history, &mut status, e);
        }
        let step = session.step;
        if taken.diverged {
            diverged = true;
            break;
        }
        if step.is_multiple_of(10) {
            let f = step as f32 / session.total_steps.max(1) as f32;
            opts.report(
                span.0 + (span.1 - span.0) * f,
                &format!("{}: step {step}/{}", job.name, session.total_steps),
            );
        }
    }
    let finished = TrainEvent::Finished {
        step: session.step,
        reason: drive::end_reason(diverged),
    };
    apply_event(&mut history, &mut status, &finished);
    let mut run = RunFile::new(
        &job.name,
        job.spec.clone(),
        config.clone(),
        job.dataset.clone(),
        Environment::for_device(&config.device),
    );
    run.status = status;
    run.progress = Progress {
        step: session.step,
        optimizer_steps: session.optimizer.steps,
    };
    run.history = history;
    Ok(Trained {
        session,
        run,
        losses,
        diverged,
    })
}

/// One trainable tensor on the host, in module order (BN running statistics left out).
#[derive(Clone, Debug)]
pub(crate) struct HostParam {
    /// burn's module path, e.g. `nodes.3.Linear.weight`.
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: Vec<f32>,
}

impl HostParam {
    /// The layer index of a node parameter (`nodes.<k>.…`), `None` for skip parameters.
    pub fn node(&self) -> Option<usize> {
        let mut it = self.path.split('.');
        (it.next() == Some("nodes"))
            .then(|| it.next().and_then(|k| k.parse().ok()))
            .flatten()
    }

    /// Whether this is the weight of a Linear, Head or Conv2d layer.
    pub fn is_weight(&self) -> bool {
        self.path.ends_with(".weight") && self.shape.len() >= 2
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default()
}

struct Reader<'a> {
    grads: Option<&'a Gradients>,
    out: Vec<HostParam>,
}

impl PathVisit for Reader<'_> {
    fn visit<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
        if is_buffer(path) {
            return;
        }
        let t = param.val();
        let shape = t.dims().to_vec();
        let data = match self.grads {
            None => host(t),
            Some(g) => match t.grad(g) {
                Some(g) => host(g),
                None => vec![0.0; shape.iter().product()],
            },
        };
        self.out.push(HostParam {
            path: path.join("."),
            shape,
            data,
        });
    }
}

/// The model's trainable tensors on the host.
pub(crate) fn params(model: &Model) -> Vec<HostParam> {
    let r = Reader {
        grads: None,
        out: Vec::new(),
    };
    visit_with_path(&model.net, r).out
}

/// The gradients of the model's trainable tensors (zeros where a tensor has none), in the
/// order of [`params`].
pub(crate) fn grads(model: &Model, grads: &Gradients) -> Vec<HostParam> {
    let r = Reader {
        grads: Some(grads),
        out: Vec::new(),
    };
    visit_with_path(&model.net, r).out
}

struct Writer<'a> {
    values: std::slice::Iter<'a, Vec<f32>>,
}

impl PathMap for Writer<'_> {
    fn map<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        if is_buffer(path) {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let Some(v) = self.values.next() else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let dims = tensor.dims();
        let require_grad = tensor.is_require_grad();
        let mut new: Tensor<D> =
            Tensor::from_data(TensorData::new(v.clone(), dims), &tensor.device());
        if require_grad {
            new = new.require_grad();
        }
        Param::from_mapped_value(id, new, mapper)
    }
}

/// A copy of `model` whose trainable tensors hold `values` (in the order of [`params`]); BN
/// running statistics and the BN noise are kept.
pub(crate) fn with_params(model: &Model, values: &[Vec<f32>]) -> Model {
    let w = Writer {
        values: values.iter(),
    };
    let (net, _) = map_with_path(model.net.clone(), w);
    let noise = model.bn_noise.clone();
    let mut m = model.valid().with_net(net);
    m.bn_noise = noise;
    m
}

/// A copy of a training-device model whose BatchNorm layers leave their running statistics
/// alone (momentum 0), so that measurement passes in training mode change nothing.
pub(crate) fn measuring_copy(model: &Model) -> Model {
    let mut net = model.net.clone();
    for bn in net
        .nodes
        .iter_mut()
        .flatten()
        .filter_map(|n| n.batch_norm_mut())
    {
        bn.momentum = 0.0;
    }
    let noise = model.bn_noise.clone();
    let mut m = model.valid().with_net(net);
    m.bn_noise = noise;
    m
}

/// Rows `idx` of a split as an input activation and their class labels.
pub(crate) fn batch(
    split: &Split,
    idx: &[usize],
    shape: crate::spec::Shape,
    device: &Device,
) -> (Act, Vec<i64>) {
    let numel = split.sample_numel();
    let mut x = Vec::with_capacity(idx.len() * numel);
    for &i in idx {
        x.extend_from_slice(&split.x[i * numel..(i + 1) * numel]);
    }
    let labels = match &split.y {
        Targets::Classes(c) => idx.iter().map(|&i| c[i] as i64).collect(),
        Targets::Values(_) => vec![0; idx.len()],
    };
    (input_from_host(x, idx.len(), shape, device), labels)
}

/// Mean cross-entropy of logits against labels, as a `[1]` tensor (differentiable).
pub(crate) fn cross_entropy(logits: Tensor<2>, labels: &[i64]) -> Tensor<1> {
    let device = logits.device();
    let b = labels.len();
    let labels = Tensor::<2, Int>::from_data(TensorData::new(labels.to_vec(), [b, 1]), &device);
    log_softmax(logits, 1).gather(1, labels).mean().neg()
}

/// Mean loss and accuracy of a session's model (BN with its running statistics) on its
/// validation split, optionally with a lesion, through the one [`crate::train::evaluate`].
pub(crate) fn evaluate(session: &Session, lesion: Option<&Lesion>) -> (f64, f64) {
    let data = crate::train::EvalData {
        split: &session.data.valid,
        task: session.data.task,
        shape: session.data.sample_shape,
    };
    let opts = crate::train::EvalOptions {
        lesion: lesion.cloned(),
        ..crate::train::EvalOptions::default()
    };
    let e = crate::train::evaluate(&session.model, data, &opts, &session.device);
    (e.loss as f64, e.accuracy as f64)
}

/// Seeds for `n` repetitions from a base seed.
pub(crate) fn seeds(base: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|k| base.wrapping_add(k)).collect()
}
