//! The CNN version of the degradation experiment: He et al. 2016's CIFAR networks at depths 20
//! and 56, plain and residual (option-A shortcuts, BN after every convolution), on MNIST-10k or
//! a dataset the user names (CIFAR-10 from a folder).

use super::degradation::{self, NetResult, RunResult};
use super::stats::mean;
use super::util::{self, Job};
use super::{
    Control, Criterion, Experiment, ExperimentError, ExperimentOptions, Figure, Protocol,
    Reproduction, fmt,
};
use crate::data::{self, Dataset};
use crate::runfile::RunFile;
use crate::spec::{DataSource, DatasetSpec, PresetOptions, Shortcut};

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "degradation-cnn",
    title: "Degradation, CNN version: cifar-plain-20/56 vs cifar-resnet-20/56",
    citation: "He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (CVPR), Fig. 6",
    what_to_see: [
        "He et al.'s CIFAR networks with 20 and 56 weight layers, BN after every convolution, the same budget; the residual ones add identity shortcuts (option A: zero-padding where the width doubles).",
        "The plain 56-layer net ends with a higher training loss than the plain 20-layer one: depth made optimisation worse (degradation), as in He et al.'s Fig. 6 (left).",
        "He et al. find the residual 56-layer net far better than the plain one and at least as good as the residual 20-layer one after full training (Fig. 6, middle); at the quick scale of 150 steps the lab finds it still behind the 20-layer one in 3 seeds of 5 (EXPERIMENTS_NOTES.md).",
    ],
    protocol: PROTOCOL,
    controls: CONTROLS,
    run: |opts, c| super::reproduce::<DegradationCnn>(&EXPERIMENT, opts, c),
};

/// The control: residual CNNs in the plain roles, where He et al. predict no degradation.
pub const CONTROLS: &[Control] = &[Control {
    name: "residual-plain-roles",
    runs: "cifar-resnet-20 and cifar-resnet-56 trained in the roles of cifar-plain-20 and cifar-plain-56 (same scale and seeds; the residual roles as in the experiment): deeper residual nets do not degrade, so the deep net of the plain role must not end above 1.5 × the shallow one's loss.",
    rejected_by: "final training loss > ",
}];

/// The control's nets in the roles of [`NETS`].
pub const CONTROL_NETS: [&str; 4] = [
    "cifar-resnet-20",
    "cifar-resnet-20",
    "cifar-resnet-56",
    "cifar-resnet-56",
];

/// Degradation: plain-56's loss above this factor × plain-20's.
const DEGRADES: f64 = 1.5;
/// The fix: resnet-56's loss below this factor × plain-56's.
const FIXES: f64 = 0.75;
/// No residual degradation: resnet-56's loss at most this factor × resnet-20's.
const NO_DEGRADATION: f64 = 1.5;
/// No residual degradation: resnet-56's accuracy at most this many points below resnet-20's.
const ACCURACY_MARGIN: f64 = 1.0;

/// One seed quick, three full; the same statistic as the MLP degradation experiment, with
/// factors for the smaller gaps of He et al.'s CIFAR curves (plain-56's training error about
/// 1.5–2 × plain-20's at the end of their Fig. 6).
pub const PROTOCOL: Protocol = Protocol {
    quick_seeds: 1,
    full_seeds: 3,
    statistic: "final training loss = mean of the last fifth of the batch losses; per net the mean over seeds. Degradation: plain-56 > 1.5 × plain-20; residual fixes it: resnet-56 < 0.75 × plain-56; no residual degradation: resnet-56 ≤ 1.5 × resnet-20 and its validation accuracy ≥ resnet-20's − 1 point.",
    thresholds: &[
        ("plain degradation factor", DEGRADES),
        ("residual fix factor", FIXES),
        ("residual loss factor (no degradation)", NO_DEGRADATION),
        ("residual accuracy margin (points)", ACCURACY_MARGIN),
    ],
    reason: "factors read off He et al.'s Fig. 6 before any CNN run of this experiment; with one seed quick gives no interval, so its factors carry the margin.",
};

/// The four nets in the roles of the MLP experiment: shallow plain, shallow residual, deep
/// plain, deep residual.
pub const NETS: [&str; 4] = [
    "cifar-plain-20",
    "cifar-resnet-20",
    "cifar-plain-56",
    "cifar-resnet-56",
];

/// A scale of the experiment: what one run trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Optimiser steps.
    pub steps: u64,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate (after a warm-up of 5 % of the steps, cosine decay to 0).
    pub lr: f64,
    /// Validation passes over the run (the last at the end).
    pub evals: u64,
}

/// The quick scale: 150 steps of 64.
pub const QUICK: Scale = Scale {
    steps: 150,
    batch: 64,
    lr: 0.05,
    evals: 1,
};

/// The full scale: 1600 steps of 128 (about 25 epochs of MNIST-10k's 8000 training digits).
pub const FULL: Scale = Scale {
    steps: 1600,
    batch: 128,
    lr: 0.05,
    evals: 8,
};

/// What the measurement found: the four nets in the roles of [`NETS`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The dataset, in words.
    pub dataset: String,
    /// The scale.
    pub steps: u64,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The nets, in the roles of [`NETS`].
    pub nets: Vec<NetResult>,
    /// The training runs.
    pub runs: Vec<RunFile>,
}

fn train_one(
    name: &str,
    seed: u64,
    scale: Scale,
    data: (&DatasetSpec, &Dataset),
    opts: &mut ExperimentOptions,
    span: (f32, f32),
) -> Result<(RunResult, RunFile), ExperimentError> {
    let spec = util::preset_spec(
        name,
        &PresetOptions {
            shortcut: Shortcut::ZeroPad,
            ..PresetOptions::for_dataset(data.0)
        },
    )?;
    let mut config =
        util::one_cycle_config(scale.steps, seed, (scale.batch, scale.lr), scale.steps / 20);
    config.eval_every = (scale.steps / scale.evals.max(1)).max(1);
    let job = Job {
        name: format!("{name}-seed{seed}"),
        spec,
        config,
        dataset: data.0,
        data: data.1,
        span,
    };
    let t = super::kept::train_or_reuse(&job, opts)?;
    let tail = (t.losses.len() / 5).max(1);
    Ok(degradation::run_result(seed, t, tail))
}

/// Trains `nets` (in the roles of [`NETS`]) at `scale` over `seeds` on `dataset`.
pub fn measure_with(
    nets: &[&str],
    scale: Scale,
    seeds: &[u64],
    dataset: &DatasetSpec,
    opts: &mut ExperimentOptions,
) -> Result<Measured, ExperimentError> {
    let data = data::load(dataset)?;
    let mut results: Vec<NetResult> = nets
        .iter()
        .map(|n| NetResult {
            net: n.to_string(),
            runs: Vec::new(),
        })
        .collect();
    let mut runs = Vec::new();
    let total = (nets.len() * seeds.len()) as f32;
    let mut k = 0.0;
    for &seed in seeds {
        for (n, name) in nets.iter().enumerate() {
            let span = (k / total, (k + 1.0) / total);
            k += 1.0;
            // A net in two roles (a control) trains once per seed.
            if let Some(first) = nets[..n].iter().position(|m| m == name) {
                let same = results[first].runs.last().cloned().expect("trained");
                results[n].runs.push(same);
                continue;
            }
            let (r, run) = train_one(name, seed, scale, (dataset, &data), opts, span)?;
            results[n].runs.push(r);
            runs.push(run);
        }
    }
    Ok(Measured {
        seeds: seeds.to_vec(),
        dataset: dataset.label(),
        steps: scale.steps,
        batch: scale.batch,
        lr: scale.lr,
        nets: results,
        runs,
    })
}

/// [`measure_with`] at the options' scale, seeds and dataset.
fn measure_nets(nets: &[&str], opts: &mut ExperimentOptions) -> Result<Measured, ExperimentError> {
    let dataset = opts
        .dataset
        .clone()
        .unwrap_or_else(|| DatasetSpec::new(DataSource::Mnist10k));
    let scale = if opts.quick { QUICK } else { FULL };
    let seeds = util::seeds(opts.seed, PROTOCOL.seeds(opts.quick));
    measure_with(nets, scale, &seeds, &dataset, opts)
}

/// The CNN degradation reproduction.
pub struct DegradationCnn;

impl Reproduction for DegradationCnn {
    type Measured = Measured;

    fn measure(opts: &mut ExperimentOptions) -> Result<Measured, ExperimentError> {
        measure_nets(&NETS, opts)
    }

    fn measure_control(
        _: &Control,
        opts: &mut ExperimentOptions,
    ) -> Result<Measured, ExperimentError> {
        measure_nets(&CONTROL_NETS, opts)
    }

    fn criteria(m: &Measured) -> Vec<Criterion> {
        let loss = |i: usize| mean(&m.nets[i].losses());
        let acc = |i: usize| mean(&m.nets[i].accuracies());
        let name = |i: usize| m.nets[i].net.as_str();
        let (p20, r20, p56, r56) = (loss(0), loss(1), loss(2), loss(3));
        vec![
            Criterion::new(
                format!("{}'s final training loss > {DEGRADES} × {}'s", name(2), name(0)),
                format!("{} {}, {} {} (ratio {})", name(2), fmt(p56), name(0), fmt(p20), fmt(p56 / p20)),
                p56 > DEGRADES * p20,
            )
            .claim("Degradation: the deeper plain CNN reaches a higher training loss than the shallower one on the same budget.")
            .with("deep plain loss", p56)
            .with("shallow plain loss", p20),
            Criterion::new(
                format!("{}'s final training loss < {FIXES} × {}'s", name(3), name(2)),
                format!("{} {}, {} {} (ratio {})", name(3), fmt(r56), name(2), fmt(p56), fmt(r56 / p56)),
                r56 < FIXES * p56,
            )
            .claim("Identity shortcuts remove the degradation: the residual CNN of the same depth trains better than the plain one.")
            .with("deep residual loss", r56),
            Criterion::new(
                format!("{} does not degrade: loss ≤ {NO_DEGRADATION} × {}'s and validation accuracy ≥ {}'s − {ACCURACY_MARGIN} point", name(3), name(1), name(1)),
                format!(
                    "loss {} vs {}; accuracy {}% vs {}%",
                    fmt(r56), fmt(r20), fmt(acc(3)), fmt(acc(1))
                ),
                r56 <= NO_DEGRADATION * r20 && acc(3) >= acc(1) - ACCURACY_MARGIN,
            )
            .claim("Deeper residual CNNs do not degrade: the 56-layer ResNet trains at least as well as the 20-layer one.")
            .with("shallow residual loss", r20)
            .with("deep residual accuracy %", acc(3))
            .with("shallow residual accuracy %", acc(1)),
        ]
    }

    fn figures(m: &Measured) -> Vec<Figure> {
        let (loss, acc) = degradation::curves(&m.nets);
        degradation::curve_figures(", mean over seeds", loss, acc).to_vec()
    }

    fn notes(m: &Measured) -> String {
        let per_net = m
            .nets
            .iter()
            .map(|r| {
                format!(
                    "{} loss {} accuracy {}%",
                    r.net,
                    fmt(mean(&r.losses())),
                    fmt(mean(&r.accuracies()))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "He et al.'s CIFAR layout (3×3 conv 16, three stages of n basic blocks with 16/32/64 filters, stride 2 at stages 2 and 3, global average pool, linear; n = 3 for 20 layers, 9 for 56), BN after every conv, option-A shortcuts; {}; SGD momentum 0.9, lr {} after a 5 % warm-up with cosine decay, batch {}, {} steps, seeds {}. {per_net}.",
            m.dataset,
            m.lr,
            m.batch,
            m.steps,
            m.seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    fn into_runs(m: Measured) -> Vec<RunFile> {
        m.runs
    }
}
