//! What the distribution-shift experiment runs: the nets in their roles, trained on coloured
//! digits, then every test set under every test-time mode, through the one
//! [`crate::train::evaluate`].

use super::super::side_by_side::train_each;
use super::super::util::{self, Job};
use super::super::{ExperimentError, ExperimentOptions, ImageTile};
use crate::data::shift::{Shift, ShiftKind};
use crate::data::{self, Dataset, Split};
use crate::runfile::RunFile;
use crate::spec::{DataSource, DatasetSpec, Norm, Palette, PresetOptions, Shape};
use crate::train::{
    ChannelStats, EvalData, EvalOptions, NormMode, data_statistics, evaluate_each,
    running_statistics,
};

/// A net in one of the experiment's roles: its normalisation and the palette it trains on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Role {
    /// The role's name in tables and criteria (`bn`, `gn`, `ln`, `none`, `bn-all`).
    pub name: &'static str,
    /// The normalisation of the net in this role.
    pub norm: Norm,
    /// What it trains on.
    pub palette: Palette,
    /// Whether it is evaluated under every test-time mode (the BatchNorm roles) or with its
    /// running statistics only (plus test batches of 4 in distribution).
    pub all_modes: bool,
}

const fn role(name: &'static str, norm: Norm, palette: Palette, all_modes: bool) -> Role {
    Role {
        name,
        norm,
        palette,
        all_modes,
    }
}

/// GroupNorm with 4 groups (16, 32 and 64 channels all divide).
pub const GROUP: Norm = Norm::Group { groups: 4 };

/// The experiment's nets: BatchNorm, GroupNorm, LayerNorm and no normalisation trained on red
/// digits, and the BatchNorm net trained on every palette.
pub const ROLES: [Role; 5] = [
    role("bn", Norm::Batch, Palette::Red, true),
    role("gn", GROUP, Palette::Red, false),
    role("ln", Norm::Layer, Palette::Red, false),
    role("none", Norm::None, Palette::Red, false),
    role("bn-all", Norm::Batch, Palette::All, true),
];

/// A test set: a palette of the coloured digits' validation split, optionally shifted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestSet {
    /// Its name in tables (`red`, `green`, `scale:0.4`, ...).
    pub name: &'static str,
    /// The palette of the digits.
    pub palette: Palette,
    /// The shift applied to them (raw pixels, before the training normalisation).
    pub shift: Option<Shift>,
}

const fn palette(name: &'static str, palette: Palette) -> TestSet {
    TestSet {
        name,
        palette,
        shift: None,
    }
}

const fn shifted(name: &'static str, kind: ShiftKind, strength: f32) -> TestSet {
    TestSet {
        name,
        palette: Palette::Red,
        shift: Some(Shift { kind, strength }),
    }
}

/// Every test set: the palettes, then shifts of red digits (the global affine ones, the
/// per-image contrast and gain, noise, the geometric ones).
pub const SETS: [TestSet; 15] = [
    palette("red", Palette::Red),
    palette("orange", Palette::Orange),
    palette("green", Palette::Green),
    palette("blue", Palette::Blue),
    palette("grey", Palette::Grey),
    palette("inverted", Palette::Inverted),
    shifted("scale:0.4", ShiftKind::Scale, 0.4),
    shifted("brightness:0.3", ShiftKind::Brightness, 0.3),
    shifted("contrast:0.5", ShiftKind::Contrast, 0.5),
    shifted("tint:0.3", ShiftKind::Tint, 0.3),
    shifted("image-contrast:0.5", ShiftKind::ImageContrast, 0.5),
    shifted("image-gain:0.25", ShiftKind::ImageGain, 0.25),
    shifted("noise:0.1", ShiftKind::GaussianNoise, 0.1),
    shifted("translate:4", ShiftKind::Translate, 4.0),
    shifted("rotate:25", ShiftKind::Rotate, 25.0),
];

/// A test-time mode: how BatchNorm normalises and in batches of how many.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mode {
    /// Its name in tables.
    pub name: &'static str,
    /// The normalisation.
    pub norm: NormMode,
    /// Samples per test batch.
    pub batch: usize,
}

/// The running statistics, batches of 500.
pub const RUNNING: Mode = Mode {
    name: "running",
    norm: NormMode::Running,
    batch: 500,
};
/// Each test batch's statistics, batches of 4: the small-batch case.
pub const BATCH4: Mode = Mode {
    name: "batch-4",
    norm: NormMode::Batch,
    batch: 4,
};
/// The modes that adapt to the test data.
pub const ADAPTIVE: [Mode; 3] = [
    Mode {
        name: "batch",
        norm: NormMode::Batch,
        batch: 500,
    },
    Mode {
        name: "adabn",
        norm: NormMode::AdaBn { batches: 20 },
        batch: 100,
    },
    Mode {
        name: "prior-16",
        norm: NormMode::Prior { strength: 16.0 },
        batch: 500,
    },
];

/// A scale of the experiment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Optimiser steps.
    pub steps: u64,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate (after a warm-up of a tenth of the steps; cosine decay to 0).
    pub lr: f64,
}

/// The scale of both the quick run (one seed) and the full one (three): 800 steps of 128, as
/// the PyTorch reference (about 13 epochs of the 8000 training digits). 400 steps left
/// LayerNorm and GroupNorm undertrained on some seeds (docs/PROTOCOLS.md).
pub const SCALE: Scale = Scale {
    steps: 800,
    batch: 128,
    lr: 0.2,
};

/// One accuracy: a role's net on a test set under a mode, for one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The seed.
    pub seed: u64,
    /// The role.
    pub role: String,
    /// The test set.
    pub set: String,
    /// The mode.
    pub mode: String,
    /// Accuracy in %.
    pub accuracy: f64,
}

/// What the measurement found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The scale.
    pub scale: Option<Scale>,
    /// The roles as run (a control changes them).
    pub roles: Vec<Role>,
    /// Every accuracy.
    pub cells: Vec<Cell>,
    /// The first seed's `bn`-role net: the running statistics of its first BatchNorm layer and
    /// what some test sets produce there (empty without BatchNorm).
    pub overlay: Vec<(String, ChannelStats)>,
    /// One sample digit of every test set.
    pub samples: Vec<ImageTile>,
    /// The training runs.
    pub runs: Vec<RunFile>,
}

impl Measured {
    /// The accuracy of `role` on `set` under `mode`, mean over seeds (NaN if not measured).
    pub fn acc(&self, role: &str, set: &str, mode: &str) -> f64 {
        let v: Vec<f64> = self
            .cells
            .iter()
            .filter(|c| c.role == role && c.set == set && c.mode == mode)
            .map(|c| c.accuracy)
            .collect();
        super::super::stats::mean(&v)
    }
}

/// The sets the overlay figure compares with the running statistics.
const OVERLAY_SETS: [&str; 3] = ["red", "green", "image-contrast:0.5"];

/// The raw (unnormalised) validation digits of every test set, in the order of [`SETS`], and
/// the split's sample shape.
fn raw_sets() -> Result<(Vec<Split>, Shape), ExperimentError> {
    let mut out = Vec::new();
    let mut shape = Shape::Flat(0);
    // Each palette's digits are loaded once (the shifted sets are all red).
    let mut loaded: Vec<(Palette, Split)> = Vec::new();
    for (k, s) in SETS.iter().enumerate() {
        let spec = DatasetSpec::new(DataSource::ColouredMnist { palette: s.palette });
        let mut v = match loaded.iter().find(|(p, _)| *p == s.palette) {
            Some((_, v)) => v.clone(),
            None => {
                let d = data::load_raw(&spec)?;
                shape = d.sample_shape;
                loaded.push((s.palette, d.valid.clone()));
                d.valid
            }
        };
        if let Some(shift) = s.shift {
            shift.apply(&mut v.x, shape, spec.seed ^ k as u64);
        }
        out.push(v);
    }
    Ok((out, shape))
}

/// The training run of the net of `role` on `seed` at `scale`.
fn role_job<'a>(
    role: &Role,
    seed: u64,
    scale: Scale,
    data: (&'a DatasetSpec, &'a Dataset),
    span: (f32, f32),
) -> Result<Job<'a>, ExperimentError> {
    let spec = util::preset_spec(
        "cnn-3",
        &PresetOptions {
            norm: role.norm,
            ..PresetOptions::for_dataset(data.0)
        },
    )?;
    let mut config =
        util::one_cycle_config(scale.steps, seed, (scale.batch, scale.lr), scale.steps / 10);
    config.eval_every = scale.steps;
    Ok(Job {
        name: format!("{}-{}-seed{seed}", role.name, role.norm.name()),
        spec,
        config,
        dataset: data.0,
        data: data.1,
        span,
    })
}

/// A palette's training data and the test sets, normalised with its training statistics:
/// each net meets the test sets normalised as its own training data were.
struct Prepared {
    spec: DatasetSpec,
    train: Dataset,
    sets: Vec<Split>,
}

impl Prepared {
    fn new(palette: Palette, raw: &[Split], shape: Shape) -> Result<Self, ExperimentError> {
        let spec = DatasetSpec::new(DataSource::ColouredMnist { palette });
        let mut train = data::load_raw(&spec)?;
        let stats = data::norm_stats(&train.train, shape);
        data::apply_norm(&mut train.train, &stats, shape);
        data::apply_norm(&mut train.valid, &stats, shape);
        let sets = raw
            .iter()
            .map(|v| {
                let mut v = v.clone();
                data::apply_norm(&mut v, &stats, shape);
                v
            })
            .collect();
        Ok(Self { spec, train, sets })
    }
}

/// Trains every role on every seed and evaluates each on every test set.
pub fn measure_roles(
    roles: &[Role],
    scale: Scale,
    seeds: &[u64],
    opts: &mut ExperimentOptions,
) -> Result<Measured, ExperimentError> {
    let (raw, shape) = raw_sets()?;
    let mut m = Measured {
        seeds: seeds.to_vec(),
        scale: Some(scale),
        roles: roles.to_vec(),
        samples: SETS
            .iter()
            .zip(&raw)
            .map(|(s, v)| sample(s.name, v, shape))
            .collect(),
        ..Measured::default()
    };
    let runs: Vec<(u64, &Role)> = seeds
        .iter()
        .flat_map(|&s| roles.iter().map(move |r| (s, r)))
        .collect();
    let total = runs.len() as f32;
    let span = |k: usize| (k as f32 / total, (k as f32 + 1.0) / total);
    let mut first = 0;
    // Consecutive runs of one palette share their training data and normalised test sets, and
    // train side by side (`train_each`).
    for same in runs.chunk_by(|a, b| a.1.palette == b.1.palette) {
        let p = Prepared::new(same[0].1.palette, &raw, shape)?;
        let jobs = same
            .iter()
            .enumerate()
            .map(|(i, &(seed, r))| role_job(r, seed, scale, (&p.spec, &p.train), span(first + i)))
            .collect::<Result<Vec<_>, _>>()?;
        train_each(&jobs, opts, |i, t, opts| {
            let (seed, r) = same[i];
            opts.report(span(first + i).1, &format!("{}: evaluating", r.name));
            evaluate_role(r, seed, &t, &p.sets, shape, &mut m);
            if m.overlay.is_empty() && r.name == "bn" {
                m.overlay = overlay(&t, &p.sets, shape);
            }
            m.runs.push(t.run);
            opts.check_cancel()
        })?;
        first += same.len();
    }
    Ok(m)
}

/// Every test set under the role's modes, and the in-distribution set in batches of 4.
fn evaluate_role(
    r: &Role,
    seed: u64,
    t: &util::Trained,
    sets: &[Split],
    shape: Shape,
    m: &mut Measured,
) {
    let task = t.session.data.task;
    let mut jobs: Vec<(&TestSet, &Split, &Mode)> = Vec::new();
    for (set, split) in SETS.iter().zip(sets) {
        jobs.push((set, split, &RUNNING));
        if r.all_modes {
            jobs.extend(ADAPTIVE.iter().map(|mode| (set, split, mode)));
        }
    }
    jobs.push((&SETS[0], &sets[0], &BATCH4));
    // The evaluations are independent, so they run several at a time; the cells keep the jobs'
    // order.
    let evals: Vec<(EvalData<'_>, EvalOptions)> = jobs
        .iter()
        .map(|(_, split, mode)| {
            let opts = EvalOptions {
                mode: mode.norm,
                batch: mode.batch,
                ..EvalOptions::default()
            };
            (EvalData { split, task, shape }, opts)
        })
        .collect();
    let accuracies = evaluate_each(&t.session.model, &evals, &t.session.device)
        .into_iter()
        .map(|e| e.accuracy);
    for ((set, _, mode), accuracy) in jobs.iter().zip(accuracies) {
        m.cells.push(Cell {
            seed,
            role: r.name.into(),
            set: set.name.into(),
            mode: mode.name.into(),
            accuracy: 100.0 * accuracy as f64,
        });
    }
}

/// The first BatchNorm layer's running statistics and what [`OVERLAY_SETS`] produce there.
fn overlay(t: &util::Trained, sets: &[Split], shape: Shape) -> Vec<(String, ChannelStats)> {
    let model = &t.session.model;
    let Some(running) = running_statistics(model).into_iter().next() else {
        return Vec::new();
    };
    let task = t.session.data.task;
    let mut out = vec![("running".to_string(), running)];
    for name in OVERLAY_SETS {
        let Some(k) = SETS.iter().position(|s| s.name == name) else {
            continue;
        };
        let data = EvalData {
            split: &sets[k],
            task,
            shape,
        };
        let stats = data_statistics(model, data, 100, 20, &t.session.device);
        if let Some(first) = stats.into_iter().next() {
            out.push((name.to_string(), first));
        }
    }
    out
}

/// The first digit of a raw test set as an image tile.
fn sample(name: &str, split: &Split, shape: Shape) -> ImageTile {
    let (c, h, w) = match shape {
        Shape::Image(c, h, w) => (c, h, w),
        Shape::Flat(_) | Shape::Tokens(..) => (1, 1, shape.numel()),
    };
    let n = c * h * w;
    ImageTile::from_planes(name, &split.x[..n.min(split.x.len())], c, h, w)
}
