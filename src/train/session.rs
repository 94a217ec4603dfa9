//! A training session: the model, optimiser, data and step counter, driven one step at a time.
//! The worker thread, the benchmark and the tests all drive runs through it.

use super::TrainError;
use super::optim::{Optimizer, StepReductions};
use crate::data::{BatchSampler, Dataset, Targets, Task};
use crate::metrics::{
    ActStats, AffineStats, AttentionStats, BnStats, BoundaryRecord, EvalRecord, HIST_BINS,
    ParamStats, ProbeRecord, RunLayout, SkipStats, StepRecord,
};
use crate::model::probe::{LAYER_STATS_LEN, host_layer_stats};
use crate::model::{Act, ForwardProbes, Model, Probe, build, input_from_host, param_layout};
use crate::spec::{Shape, TrainConfig, ValidSpec};
use burn::tensor::{Device, Tensor, TensorData, Transaction};
use std::sync::mpsc;
use std::time::Instant;

/// Batches of 100 an evaluation set's BatchNorm inputs are estimated on at each validation pass
/// (see [`Session::evaluate`]).
pub const SET_BN_BATCHES: usize = 10;

/// What one step produced.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The step record.
    pub record: StepRecord,
    /// The probe record, on probe steps.
    pub probe: Option<ProbeRecord>,
    /// The first non-finite value: the tensor name (`loss` or a parameter) and the value.
    pub diverged: Option<(String, f32)>,
}

/// A run in progress.
pub struct Session {
    /// The model on the training (autodiff) device.
    pub model: Model,
    /// The optimiser and its state.
    pub optimizer: Optimizer,
    /// The training configuration.
    pub config: TrainConfig,
    /// The data.
    pub data: Dataset,
    /// The batch order.
    pub sampler: BatchSampler,
    /// Steps completed.
    pub step: u64,
    /// Total steps of the run.
    pub total_steps: u64,
    /// The training device (autodiff enabled).
    pub device: Device,
    /// What probes report on.
    pub layout: RunLayout,
    batch_x: Vec<f32>,
    stats: StatsWorker,
}

/// The statistics of one raw layer output (`LAYER_STATS_LEN` values).
fn reduce_layer(t: Tensor<1>) -> Vec<f32> {
    if crate::model::fused::is_flex(&t.device()) {
        crate::model::fused::layer_stats_host(t)
    } else {
        host_layer_stats(&floats(t.into_data())).to_vec()
    }
}

/// A thread of the session's own that reduces a probe step's layer outputs to their statistics
/// ([`host_layer_stats`]) while the training thread goes on with the forward pass, the backward
/// pass and the optimiser step. The outputs arrive one at a time, as the forward pass produces
/// them ([`Model::forward_streaming`]); the worker reduces each and drops it at once, so no
/// output lives longer than the autodiff graph keeps it anyway (keeping all of them to the end
/// of the step made the backward pass about 20 % slower: fresh, cold buffers instead of
/// recycled ones). The reduction reads only the forward pass's outputs, so the result is the
/// same as in line. The worker starts on the first probe step and ends when the session is
/// dropped (its job channel closes). If it cannot be started, the outputs are reduced in line
/// as they come; if it dies mid-step (it should not: the reduction cannot panic on any input),
/// that step's layer statistics are empty and the next probe step starts a new worker.
#[derive(Default)]
struct StatsWorker {
    channels: Option<StatsChannels>,
    /// Statistics reduced in line this step (no worker).
    in_line: Vec<f32>,
    /// Whether this step's outputs went to the worker.
    submitted: bool,
}

/// Jobs to the [`StatsWorker`] (`None` ends a step) and its answers (a step's statistics).
type StatsChannels = (mpsc::Sender<Option<Tensor<1>>>, mpsc::Receiver<Vec<f32>>);

impl StatsWorker {
    fn start() -> Option<StatsChannels> {
        let (job_tx, job_rx) = mpsc::channel::<Option<Tensor<1>>>();
        let (out_tx, out_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("reslab-probe-stats".into())
            .spawn(move || {
                let mut stats = Vec::new();
                for job in job_rx {
                    match job {
                        Some(layer) => stats.extend(reduce_layer(layer)),
                        None => {
                            if out_tx.send(std::mem::take(&mut stats)).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .ok()?;
        Some((job_tx, out_rx))
    }

    /// Starts a probe step.
    fn begin(&mut self) {
        if self.channels.is_none() {
            self.channels = Self::start();
        }
        self.in_line.clear();
        self.submitted = false;
    }

    /// Hands over the next layer's output.
    fn submit(&mut self, layer: Tensor<1>) {
        let layer = match &self.channels {
            Some((jobs, _)) => match jobs.send(Some(layer)) {
                Ok(()) => {
                    self.submitted = true;
                    return;
                }
                Err(mpsc::SendError(job)) => {
                    self.channels = None;
                    job.expect("a layer job")
                }
            },
            None => layer,
        };
        self.in_line.extend(reduce_layer(layer));
    }

    /// This step's statistics, `LAYER_STATS_LEN` values per layer in order.
    fn finish(&mut self) -> Vec<f32> {
        let in_line = std::mem::take(&mut self.in_line);
        if !self.submitted {
            return in_line;
        }
        let answer = self.channels.as_ref().and_then(|(jobs, out)| {
            jobs.send(None).ok()?;
            crate::model::fused::recv_on_worker(out)
        });
        match answer {
            // Outputs reduced in line after the worker died would be out of order.
            Some(stats) if in_line.is_empty() => stats,
            _ => {
                self.channels = None;
                Vec::new()
            }
        }
    }
}

fn cat_or_empty(v: Vec<Tensor<1>>, device: &Device) -> Tensor<1> {
    if v.is_empty() {
        Tensor::<1>::zeros([0], device)
    } else {
        Tensor::cat(v, 0)
    }
}

fn floats(d: TensorData) -> Vec<f32> {
    d.try_into_vec_as::<f32>().unwrap_or_default()
}

/// A step's values on the host, read back in one transaction.
struct StepValues {
    loss: f32,
    correct: f32,
    /// Per parameter tensor, `width` sums (see [`StepReductions`]).
    sums: Vec<f32>,
    width: usize,
    /// On probe steps: the layer statistics (when the device made them), the skip sums and the
    /// BN state.
    layers: Vec<f32>,
    skips: Vec<f32>,
    bns: Vec<f32>,
}

impl StepValues {
    /// The `k`-th sum of every parameter tensor (0: Σg², 1: Σw², 2: Σ(update)²).
    fn column(&self, k: usize) -> Vec<f32> {
        self.sums
            .chunks_exact(self.width)
            .map(|c| c.get(k).copied().unwrap_or(0.0))
            .collect()
    }
}

/// What a probe record is made of, as host values.
#[derive(Clone, Copy)]
struct ProbeInputs<'a> {
    /// Per layer `[mean, std, min, max, frac ≤ 0, hist]`.
    layers: &'a [f32],
    /// Per skip `[Σ branch², Σ shortcut², α]`.
    skips: &'a [f32],
    /// Per skip, the number of values its sums run over.
    skip_numel: &'a [usize],
    /// Per BN layer its running mean, running variance, γ and β.
    bns: &'a [f32],
    /// Per parameter tensor Σg², Σw² and Σ(update)².
    grad_sq: &'a [f32],
    w_sq: &'a [f32],
    u_sq: &'a [f32],
}

impl Session {
    /// Builds the model and optimiser for a valid spec and loaded data on `device`.
    pub fn new(
        spec: &ValidSpec,
        config: &TrainConfig,
        data: Dataset,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        if spec.input != data.sample_shape {
            return Err(TrainError::Mismatch(format!(
                "the network takes inputs of shape {} but {} samples have shape {}",
                spec.input, data.name, data.sample_shape
            )));
        }
        if spec.output_features() != data.task.outputs() {
            return Err(TrainError::Mismatch(format!(
                "the network ends with {} outputs but {} needs {}",
                spec.output_features(),
                data.name,
                data.task.outputs()
            )));
        }
        let mut model = build(spec, &device, config.seed);
        model.host_reductions = config.device.is_local_cpu();
        let names = crate::spec::probe_names(spec);
        let layout = RunLayout {
            layers: model.layer_names(),
            batch_norms: model
                .batch_norm_layers()
                .into_iter()
                .map(|i| spec.layers[i].name.clone())
                .collect(),
            batch_norm_channels: model
                .batch_norm_layers()
                .into_iter()
                .map(|i| spec.layers[i].output.channels())
                .collect(),
            skips: spec
                .skips
                .iter()
                .map(|s| spec.layers[s.to].name.clone())
                .collect(),
            params: param_layout(&model).into_iter().map(|p| p.name).collect(),
            affine_norms: model
                .affine_norm_layers()
                .into_iter()
                .map(|i| spec.layers[i].name.clone())
                .collect(),
            affine_norm_channels: model
                .affine_norm_layers()
                .into_iter()
                .map(|i| spec.layers[i].output.channels())
                .collect(),
            input_norm: data.input_norm.iter().map(|&(m, s)| [m, s]).collect(),
            eval_sets: data.eval_sets.iter().map(|(n, _)| n.clone()).collect(),
            token_layers: names.token_layers,
            attention: names.attention,
            attention_shape: names.attention_shape,
        };
        let total_steps = config.total_steps(data.train.len);
        if total_steps > crate::spec::MAX_STEPS {
            return Err(TrainError::TooLarge(format!(
                "the run would take {total_steps} steps, more than the {} a run may take",
                crate::spec::MAX_STEPS
            )));
        }
        let sampler = BatchSampler::new(data.train.len, config.batch_size, config.seed);
        Ok(Self {
            model,
            optimizer: Optimizer::new(config.optimizer, config.weight_decay),
            config: config.clone(),
            data,
            sampler,
            step: 0,
            total_steps,
            device,
            layout,
            batch_x: Vec::new(),
            stats: StatsWorker::default(),
        })
    }

    /// Whether step `step` (1-based) records probes.
    pub fn is_probe_step(&self, step: u64) -> bool {
        self.config.probe_every > 0 && (step.is_multiple_of(self.config.probe_every) || step == 1)
    }

    /// Runs one optimiser step and reads its records back in one transaction.
    ///
    /// The step runs on one of rayon's worker threads ([`crate::model::fused::on_workers`]).
    pub fn train_step(&mut self) -> StepOutcome {
        crate::model::fused::on_workers(|| self.train_step_here())
    }

    fn train_step_here(&mut self) -> StepOutcome {
        let started = Instant::now();
        let step = self.step + 1;
        let probe = self.is_probe_step(step);
        let lr = self.config.lr_at(self.step, self.total_steps);
        let idx: Vec<usize> = self.sampler.next_batch().to_vec();
        let b = idx.len();
        // On the CPU each layer output is reduced on a second thread as soon as the forward
        // pass has produced it, beside the rest of the step.
        let streamed = probe && self.model.host_reductions;
        let (loss, correct, mut fprobes) = self.forward_loss(&idx, probe, streamed);
        let grads = loss.backward();
        // BatchNorm's `[mean, var, γ, β]`, LayerNorm's and GroupNorm's `[γ, β]`, the token
        // layers' residuals and the attention layers' maps and entropies, read back in the
        // step's one transaction.
        let bn_state = if probe {
            let mut s = self.model.batch_norm_state();
            s.extend(self.model.affine_norm_state());
            s.append(&mut fprobes.tokens);
            s.append(&mut fprobes.attention);
            s
        } else {
            Vec::new()
        };
        let placeholder = crate::model::placeholder_net();
        let net = std::mem::replace(&mut self.model.net, placeholder);
        let (net, red): (_, StepReductions) = self.optimizer.step(net, &grads, lr, probe);
        self.model.net = net;
        self.step = step;
        debug_assert_eq!(red.sums.len(), self.layout.params.len());

        let ForwardProbes {
            layers,
            skips,
            skip_numel,
            ..
        } = fprobes;
        let probed = probe.then_some([layers, skips, bn_state]);
        let mut v = self.read_back(loss, correct, red, probed);
        let grad_sq = v.column(0);
        let accuracy = match self.data.task {
            Task::Classification { .. } => v.correct / b as f32,
            Task::Regression { .. } => f32::NAN,
        };
        let grad_norm = grad_sq.iter().map(|&v| v as f64).sum::<f64>().sqrt() as f32;
        let diverged = self.divergence(v.loss, &grad_sq);
        let probe_record = if probe {
            let layers = if streamed {
                self.stats.finish()
            } else {
                std::mem::take(&mut v.layers)
            };
            let inputs = ProbeInputs {
                layers: &layers,
                skips: &v.skips,
                skip_numel: &skip_numel,
                bns: &v.bns,
                grad_sq: &grad_sq,
                w_sq: &v.column(1),
                u_sq: &v.column(2),
            };
            Some(self.probe_record(step, &inputs))
        } else {
            None
        };
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        StepOutcome {
            record: StepRecord {
                step,
                loss: v.loss,
                accuracy,
                lr: lr as f32,
                samples_per_sec: (b as f64 / secs) as f32,
                grad_norm,
            },
            probe: probe_record,
            diverged,
        }
    }

    /// The forward pass on the batch `idx` and its loss (and correct count); on a probe step
    /// with `streamed`, each layer output goes to the statistics thread as it is produced.
    fn forward_loss(
        &mut self,
        idx: &[usize],
        probe: bool,
        streamed: bool,
    ) -> (Tensor<1>, Option<Tensor<1>>, ForwardProbes) {
        super::evaluate::gather_x(&self.data.train, idx, &mut self.batch_x);
        let x = input_from_host(
            std::mem::take(&mut self.batch_x),
            idx.len(),
            self.data.sample_shape,
            &self.device,
        );
        let (logits, fprobes) = if streamed {
            let stats = &mut self.stats;
            stats.begin();
            self.model
                .forward_streaming(x, None, &mut |layer| stats.submit(layer))
        } else {
            self.model.net_forward(x, probe)
        };
        let (loss, correct) = super::evaluate::loss_and_correct(
            logits,
            self.data.task,
            &self.data.train.y,
            idx,
            &self.device,
        );
        (loss, correct, fprobes)
    }

    /// Reads the step's loss, correct count and reductions back in one transaction, and on a
    /// probe step `[layer statistics, skip sums, BN state]` with them (the layer statistics
    /// only where the device made them: on the CPU the statistics thread has them).
    fn read_back(
        &self,
        loss: Tensor<1>,
        correct: Option<Tensor<1>>,
        red: StepReductions,
        probed: Option<[Vec<Tensor<1>>; 3]>,
    ) -> StepValues {
        let inner = self.device.clone().inner();
        let width = red.width;
        let mut tx = Transaction::default()
            .register(loss.inner())
            .register(correct.unwrap_or_else(|| Tensor::<1>::zeros([1], &inner)))
            .register(cat_or_empty(red.sums, &inner));
        let with_layers = probed.is_some() && !self.model.host_reductions;
        if let Some([layers, skips, bns]) = probed {
            if with_layers {
                tx = tx.register(cat_or_empty(layers, &inner));
            }
            tx = tx
                .register(cat_or_empty(skips, &inner))
                .register(cat_or_empty(bns, &inner));
        }
        let mut data = tx.execute().into_iter().map(floats);
        let loss = data
            .next()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN);
        let correct = data.next().and_then(|v| v.first().copied()).unwrap_or(0.0);
        let sums = data.next().unwrap_or_default();
        let layers = if with_layers {
            data.next().unwrap_or_default()
        } else {
            Vec::new()
        };
        StepValues {
            loss,
            correct,
            sums,
            width,
            layers,
            skips: data.next().unwrap_or_default(),
            bns: data.next().unwrap_or_default(),
        }
    }

    /// The first non-finite value of the step: the loss, or a parameter's gradient.
    fn divergence(&self, loss: f32, grad_sq: &[f32]) -> Option<(String, f32)> {
        if !loss.is_finite() {
            Some(("loss".to_string(), loss))
        } else {
            let i = grad_sq.iter().position(|v| !v.is_finite())?;
            Some((format!("{} (gradient)", self.layout.params[i]), grad_sq[i]))
        }
    }

    fn probe_record(&self, step: u64, p: &ProbeInputs<'_>) -> ProbeRecord {
        let ProbeInputs {
            layers,
            skips,
            skip_numel,
            bns,
            grad_sq,
            w_sq,
            u_sq,
        } = *p;
        let layers = layers
            .chunks_exact(LAYER_STATS_LEN)
            .map(|c| ActStats {
                mean: c[0],
                std: c[1],
                min: c[2],
                max: c[3],
                frac_nonpos: c[4],
                hist: c[5..5 + HIST_BINS].iter().map(|&v| v as u32).collect(),
            })
            .collect();
        let skips = skips
            .chunks_exact(3)
            .zip(skip_numel)
            .map(|(c, &n)| SkipStats {
                branch_norm: c[0].sqrt(),
                shortcut_norm: c[1].sqrt(),
                alpha: c[2],
                numel: n as u64,
            })
            .collect();
        // BatchNorm's `[mean, var, γ, β]` per layer, then LayerNorm's and GroupNorm's `[γ, β]`.
        let mut off = 0;
        let batch_norms = (self.layout.batch_norm_channels.iter())
            .map(|&c| {
                let [running_mean, running_var, gamma, beta] = take_vectors(bns, &mut off, c);
                BnStats {
                    running_mean,
                    running_var,
                    gamma,
                    beta,
                }
            })
            .collect();
        let affine_norms = (self.layout.affine_norm_channels.iter())
            .map(|&c| {
                let [gamma, beta] = take_vectors(bns, &mut off, c);
                AffineStats { gamma, beta }
            })
            .collect();
        let [token_residual] = take_vectors(bns, &mut off, self.layout.token_layers.len());
        let attention = (self.layout.attention_shape.iter())
            .map(|&[h, n]| {
                let [weights] = take_vectors(bns, &mut off, h * n * n);
                let [entropy] = take_vectors(bns, &mut off, h);
                AttentionStats { weights, entropy }
            })
            .collect();
        let params = (0..grad_sq.len())
            .map(|i| {
                let w = w_sq.get(i).copied().unwrap_or(0.0).sqrt();
                let u = u_sq.get(i).copied().unwrap_or(0.0).sqrt();
                ParamStats {
                    grad_norm: grad_sq[i].sqrt(),
                    weight_norm: w,
                    update_ratio: if w > 0.0 { u / w } else { f32::NAN },
                }
            })
            .collect();
        ProbeRecord {
            step,
            layers,
            batch_norms,
            skips,
            params,
            token_residual,
            attention,
            affine_norms,
        }
    }

    /// Mean loss and accuracy on the validation split and on each evaluation set, BN in
    /// inference mode (the running statistics), through the one [`evaluate`](super::evaluate).
    pub fn evaluate(&self) -> EvalRecord {
        let on = |split| {
            let data = super::EvalData {
                split,
                task: self.data.task,
                shape: self.data.sample_shape,
            };
            super::evaluate(
                &self.model,
                data,
                &super::EvalOptions::default(),
                &self.device,
            )
        };
        let e = on(&self.data.valid);
        EvalRecord {
            step: self.step,
            loss: e.loss,
            accuracy: e.accuracy,
            sets: self
                .data
                .eval_sets
                .iter()
                .map(|(_, split)| {
                    let e = on(split);
                    [e.loss, e.accuracy]
                })
                .collect(),
            set_bn: self.set_batch_norm_inputs(),
        }
    }

    /// What each evaluation set produces at the input of every BatchNorm layer: AdaBN's
    /// estimate over its first [`SET_BN_BATCHES`] batches of 100 (empty without sets or BN).
    fn set_batch_norm_inputs(&self) -> Vec<Vec<crate::metrics::ChannelMoments>> {
        if self.layout.batch_norms.is_empty() {
            return Vec::new();
        }
        self.data
            .eval_sets
            .iter()
            .map(|(_, split)| {
                let data = super::EvalData {
                    split,
                    task: self.data.task,
                    shape: self.data.sample_shape,
                };
                super::data_statistics(&self.model, data, 100, SET_BN_BATCHES, &self.device)
                    .into_iter()
                    .map(|s| crate::metrics::ChannelMoments {
                        mean: s.mean,
                        var: s.var,
                    })
                    .collect()
            })
            .collect()
    }

    /// The predicted class on a `resolution × resolution` grid over the input plane, for a
    /// classifier of 2-D inputs (`None` for any other data). The grid spans the training
    /// points' range plus a 10 % margin on each side, in the normalised coordinates the network
    /// sees; BN runs in inference mode.
    pub fn decision_boundary(&self, resolution: usize) -> Option<BoundaryRecord> {
        let Task::Classification { classes } = self.data.task else {
            return None;
        };
        if self.data.sample_shape != Shape::Flat(2) || resolution == 0 || classes > 256 {
            return None;
        }
        let split = &self.data.train;
        let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
        for p in split.x.chunks_exact(2) {
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        if !(lo[0].is_finite() && lo[1].is_finite() && hi[0].is_finite() && hi[1].is_finite()) {
            return None;
        }
        for d in 0..2 {
            let margin = 0.1 * (hi[d] - lo[d]).max(1e-3);
            lo[d] -= margin;
            hi[d] += margin;
        }
        let n = resolution;
        let cell = |d: usize, i: usize| lo[d] + (hi[d] - lo[d]) * (i as f32 + 0.5) / n as f32;
        let mut grid = Vec::with_capacity(n * n * 2);
        for j in 0..n {
            for i in 0..n {
                grid.push(cell(0, i));
                grid.push(cell(1, j));
            }
        }
        let device = self.device.clone().inner();
        let model = self.model.valid();
        let x = input_from_host(grid, n * n, Shape::Flat(2), &device);
        let predicted = model.forward(x).argmax(1).into_data();
        let classes_out: Vec<u8> = predicted
            .convert::<i64>()
            .try_into_vec::<i64>()
            .ok()?
            .into_iter()
            .map(|c| c.clamp(0, 255) as u8)
            .collect();
        let Targets::Classes(labels) = &split.y else {
            return None;
        };
        let stride = split.len.div_ceil(400).max(1);
        let picked: Vec<usize> = (0..split.len).step_by(stride).collect();
        Some(BoundaryRecord {
            step: self.step,
            resolution: n,
            x_range: [lo[0], hi[0]],
            y_range: [lo[1], hi[1]],
            classes: classes_out,
            points: picked
                .iter()
                .map(|&i| [split.x[2 * i], split.x[2 * i + 1]])
                .collect(),
            labels: picked.iter().map(|&i| labels[i].min(255) as u8).collect(),
        })
    }

    /// Whether the run has done all its steps.
    pub fn is_done(&self) -> bool {
        self.step >= self.total_steps
    }
}

impl Model {
    fn net_forward(&self, x: Act, probe: bool) -> (Tensor<2>, crate::model::ForwardProbes) {
        self.forward_with(x, if probe { Probe::On } else { Probe::Off }, None)
    }
}

/// The next `N` vectors of `c` values of `state` from `*off` on (empty where `state` ends),
/// moving `*off` past them.
fn take_vectors<const N: usize>(state: &[f32], off: &mut usize, c: usize) -> [Vec<f32>; N] {
    let start = *off;
    *off += N * c;
    std::array::from_fn(|k| {
        state
            .get(start + k * c..start + (k + 1) * c)
            .unwrap_or(&[])
            .to_vec()
    })
}
