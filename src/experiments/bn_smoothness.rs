//! Santurkar, Tsipras, Ilyas & Madry 2018: BN does not work by reducing internal covariate
//! shift; it makes the loss landscape smoother, so that steps along the gradient change the loss
//! and the gradient less. Noisy BN (a random shift and scale after every BN, redrawn every step)
//! has more covariate shift and still trains as well as BN.

use super::stats::{mean, tail_mean};
use super::util::{HostParam, Trained};
use super::{
    Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure, LineSeries,
    fmt, util,
};
use crate::metrics::series;
use crate::model::{BnNoise, Model};
use crate::train::Session;
use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "bn-smoothness",
    title: "How BN helps: loss smoothness along the gradient, and internal covariate shift",
    citation: "Santurkar, Tsipras, Ilyas & Madry 2018, How Does Batch Normalization Help Optimization? (NeurIPS)",
    what_to_see: [
        "Stepping along the gradient, the loss of the net without BN swings over a much wider range than with BN: BN makes the landscape smoother (smaller loss range, smaller effective β).",
        "Noisy BN adds a random shift and scale after every BN, redrawn each step, so layer inputs keep moving: its internal covariate shift is at least as large as without BN.",
        "Yet noisy BN trains about as well as BN: reducing covariate shift is not what makes BN work; smoothing the landscape is.",
    ],
    run,
};

const WIDTH: usize = 64;
const BLOCKS: usize = 8;
const EVERY: u64 = 30;
const STEP_SIZES: [f32; 4] = [0.05, 0.1, 0.2, 0.4];
const MEASURE_BATCH: usize = 128;
/// Noisy BN: per channel, scale ~ U(1 − S, 1 + S) and shift ~ U(−M, M), redrawn every step.
const NOISE_SCALE: f32 = 0.5;
const NOISE_SHIFT: f32 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    NoBn,
    Bn,
    NoisyBn,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::NoBn => "no BN",
            Variant::Bn => "BN",
            Variant::NoisyBn => "noisy BN",
        }
    }
}

/// Measurements at one step.
#[derive(Clone, Debug, Default)]
struct Point {
    step: u64,
    /// max − min of the loss over the step sizes.
    loss_range: f64,
    /// max over step sizes of ‖∇L(θ − ηg) − ∇L(θ)‖ / ‖ηg‖.
    beta: f64,
    /// Mean over layers of ‖G − G'‖ / ‖G‖ (Santurkar's ICS, relative).
    ics_l2: f64,
    /// Mean over layers of cos(G, G').
    ics_cos: f64,
}

fn flat_norm(v: &[HostParam]) -> f64 {
    v.iter()
        .flat_map(|p| &p.data)
        .map(|&x| (x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn diff_norm(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Loss and gradients of a training-mode model on a batch.
fn loss_grad(model: &Model, x: &crate::model::Act, labels: &[i64]) -> (f64, Vec<HostParam>) {
    let logits = model.forward(x.clone());
    let loss = util::cross_entropy(logits, labels);
    let grads = loss.backward();
    let l = loss
        .inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    (
        l.first().copied().unwrap_or(f32::NAN) as f64,
        util::grads(model, &grads),
    )
}

/// The measurements at the session's current parameters. For noisy BN, `next_noise` is a fresh
/// draw: after a step the layers above see both the lower layers' update and new noise, and
/// both are the covariate shift that Santurkar et al. inject.
fn measure(session: &Session, rng: &mut ChaCha8Rng, next_noise: Option<BnNoise>) -> Point {
    let model = util::measuring_copy(&session.model);
    let device = Device::flex().autodiff();
    let split = &session.data.train;
    let idx: Vec<usize> = (0..MEASURE_BATCH)
        .map(|_| rng.random_range(0..split.len))
        .collect();
    let (x, labels) = util::batch(split, &idx, session.data.sample_shape, &device);
    let theta = util::params(&model);
    let (_, g) = loss_grad(&model, &x, &labels);
    let g_norm = flat_norm(&g).max(1e-30);
    let mut losses = Vec::new();
    let mut beta: f64 = 0.0;
    for &eta in &STEP_SIZES {
        let moved: Vec<Vec<f32>> = theta
            .iter()
            .zip(&g)
            .map(|(p, gp)| {
                p.data
                    .iter()
                    .zip(&gp.data)
                    .map(|(&w, &d)| w - eta * d)
                    .collect()
            })
            .collect();
        let m = util::with_params(&model, &moved);
        let (l, g2) = loss_grad(&m, &x, &labels);
        losses.push(l);
        let change = g
            .iter()
            .zip(&g2)
            .map(|(a, b)| diff_norm(&a.data, &b.data).powi(2))
            .sum::<f64>()
            .sqrt();
        beta = beta.max(change / (eta as f64 * g_norm));
    }
    let finite = losses.iter().all(|l| l.is_finite());
    let loss_range = if finite {
        losses.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - losses.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        f64::INFINITY
    };
    // Internal covariate shift (Santurkar et al., Definition 2.1): the gradient of layer i
    // before and after the layers below it take their step (plain SGD at the run's lr).
    let lr = session.config.lr as f32;
    let (mut l2s, mut coss) = (Vec::new(), Vec::new());
    for (i, p) in theta.iter().enumerate() {
        let Some(node) = p.node().filter(|_| p.is_weight()) else {
            continue;
        };
        if !theta.iter().any(|q| q.node().is_some_and(|n| n < node)) {
            continue;
        }
        let updated: Vec<Vec<f32>> = theta
            .iter()
            .zip(&g)
            .map(|(q, gq)| {
                if q.node().is_some_and(|n| n < node) {
                    q.data
                        .iter()
                        .zip(&gq.data)
                        .map(|(&w, &d)| w - lr * d)
                        .collect()
                } else {
                    q.data.clone()
                }
            })
            .collect();
        let mut m = util::with_params(&model, &updated);
        if next_noise.is_some() {
            m.bn_noise = next_noise.clone();
        }
        let (_, g2) = loss_grad(&m, &x, &labels);
        let (a, b) = (&g[i].data, &g2[i].data);
        let na = a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let nb = b.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let dot: f64 = a.iter().zip(b).map(|(&u, &v)| u as f64 * v as f64).sum();
        if na > 0.0 && nb > 0.0 {
            l2s.push(diff_norm(a, b) / na);
            coss.push(dot / (na * nb));
        }
    }
    Point {
        step: session.step,
        loss_range,
        beta,
        ics_l2: mean(&l2s),
        ics_cos: mean(&coss),
    }
}

fn draw_noise(model: &Model, rng: &mut ChaCha8Rng) -> BnNoise {
    let mut per_layer = vec![None; model.spec.layers.len()];
    for i in model.batch_norm_layers() {
        let c = model.spec.layers[i].output.channels();
        let scale = (0..c)
            .map(|_| 1.0 + NOISE_SCALE * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let shift = (0..c)
            .map(|_| NOISE_SHIFT * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        per_layer[i] = Some((scale, shift));
    }
    BnNoise { per_layer }
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    let steps: u64 = 600;
    let n_seeds = if opts.quick { 1 } else { 3 };
    let seeds = util::seeds(opts.seed, n_seeds);
    let (dataset, data) = util::mnist()?;
    let variants = [Variant::NoBn, Variant::Bn, Variant::NoisyBn];
    // points[variant][seed], trained[variant][seed]
    let mut points: Vec<Vec<Vec<Point>>> = vec![Vec::new(); variants.len()];
    let mut trained: Vec<Vec<Trained>> = variants.iter().map(|_| Vec::new()).collect();
    let total = (variants.len() * seeds.len()) as f32;
    let mut done = 0.0;
    for &seed in &seeds {
        for (k, v) in variants.iter().enumerate() {
            let spec = util::mlp(
                &format!("mlp-plain-{BLOCKS}"),
                &dataset,
                WIDTH,
                *v != Variant::NoBn,
            )?;
            let config = util::sgd_config(steps, seed);
            let mut measured = Vec::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5A_47_0B);
            let mut noise_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0015_EB17);
            let noisy = *v == Variant::NoisyBn;
            let mut hook =
                |s: &mut Session, _: &mut ExperimentOptions| -> Result<(), ExperimentError> {
                    if noisy {
                        s.model.bn_noise = Some(draw_noise(&s.model, &mut noise_rng));
                    }
                    if s.step.is_multiple_of(EVERY) {
                        let next = noisy.then(|| draw_noise(&s.model, &mut rng));
                        measured.push(measure(s, &mut rng, next));
                    }
                    Ok(())
                };
            let t = util::train(
                &format!("mlp-plain-{BLOCKS} {}-seed{seed}", v.label()),
                &spec,
                &config,
                &dataset,
                data.clone(),
                opts,
                (done / total, (done + 1.0) / total),
                Some(&mut hook),
            )?;
            done += 1.0;
            points[k].push(measured);
            trained[k].push(t);
        }
    }
    let mean_of = |k: usize, f: fn(&Point) -> f64| {
        mean(&points[k].iter().flatten().map(f).collect::<Vec<_>>())
    };
    let range = |k: usize| mean_of(k, |p| p.loss_range);
    let ratio = range(1) / range(0);
    file.criteria.push(
        Criterion::new(
            "BN / no-BN ratio of the mean loss range along the gradient < 0.7",
            format!(
                "BN {}, no BN {} (ratio {}; noisy BN {})",
                fmt(range(1)),
                fmt(range(0)),
                fmt(ratio),
                fmt(range(2))
            ),
            ratio < 0.7,
        )
        .with("BN mean loss range", range(1))
        .with("no-BN mean loss range", range(0))
        .with("noisy-BN mean loss range", range(2))
        .with("ratio", ratio),
    );
    let acc = |k: usize| {
        let per_seed: Vec<f64> = trained[k]
            .iter()
            .map(|t| {
                t.run
                    .history
                    .get(series::VAL_ACCURACY, "")
                    .and_then(|s| s.last())
                    .map_or(f64::NAN, |a| 100.0 * a as f64)
            })
            .collect();
        mean(&per_seed)
    };
    file.criteria.push(
        Criterion::new(
            "noisy-BN final validation accuracy within 5 points of BN",
            format!(
                "noisy BN {}%, BN {}% (no BN {}%)",
                fmt(acc(2)),
                fmt(acc(1)),
                fmt(acc(0))
            ),
            (acc(2) - acc(1)).abs() <= 5.0,
        )
        .with("noisy-BN accuracy %", acc(2))
        .with("BN accuracy %", acc(1))
        .with("no-BN accuracy %", acc(0)),
    );
    let lines = |f: fn(&Point) -> f64| -> Vec<LineSeries> {
        variants
            .iter()
            .zip(&points)
            .map(|(v, ps)| LineSeries {
                name: v.label().into(),
                points: (0..ps.iter().map(Vec::len).min().unwrap_or(0))
                    .map(|i| {
                        let at: Vec<f64> = ps.iter().map(|p| f(&p[i])).collect();
                        [ps[0][i].step as f64, mean(&at)]
                    })
                    .collect(),
            })
            .collect()
    };
    let mut f = Figure::lines(
        "Loss range along the gradient (step sizes 0.05–0.4)",
        "step",
        "max − min loss",
        lines(|p| p.loss_range),
    );
    f.log_y = true;
    file.figures.push(f);
    let mut f = Figure::lines(
        "Effective β-smoothness: max ‖∇L(θ − ηg) − ∇L(θ)‖ / ‖ηg‖",
        "step",
        "β",
        lines(|p| p.beta),
    );
    f.log_y = true;
    file.figures.push(f);
    file.figures.push(Figure::lines(
        "Internal covariate shift: ‖G − G'‖ / ‖G‖, mean over layers",
        "step",
        "relative ℓ2 change",
        lines(|p| p.ics_l2),
    ));
    file.figures.push(Figure::lines(
        "Internal covariate shift: cos(G, G'), mean over layers",
        "step",
        "cosine",
        lines(|p| p.ics_cos),
    ));
    file.figures.push(Figure::lines(
        "Training loss (10-step moving average, first seed)",
        "step",
        "cross-entropy",
        variants
            .iter()
            .zip(trained.iter().map(|t| &t[0]))
            .map(|(v, t)| LineSeries {
                name: v.label().into(),
                points: (0..t.losses.len())
                    .map(|i| [(i + 1) as f64, tail_mean(&t.losses[..=i], 10)])
                    .collect(),
            })
            .collect(),
    ));
    let ics = |k: usize| mean_of(k, |p| p.ics_l2);
    let beta = |k: usize| mean_of(k, |p| p.beta);
    file.notes = format!(
        "mlp-plain-{BLOCKS} (10 Linear layers, width {WIDTH}, He init) without BN, with BN, and with noisy BN (after each BN, per channel, scale ~ U({}, {}) and shift ~ U(−{NOISE_SHIFT}, {NOISE_SHIFT}), redrawn every step, off at evaluation); MNIST-10k, SGD momentum 0.9, lr 0.05, batch 128, {steps} steps, {n_seeds} seed(s); curves and criteria are means over the seeds. Every {EVERY} steps on a fresh batch of {MEASURE_BATCH} (BN in training mode): the loss and gradient at θ − ηg for η in {{0.05, 0.1, 0.2, 0.4}}, and the internal covariate shift of every Linear weight but the first (its gradient before and after the layers below take an SGD step of lr 0.05; for noisy BN the second gradient also sees a fresh noise draw, as the next step would). Means over the run: β no BN {}, BN {}, noisy BN {}; relative ICS no BN {}, BN {}, noisy BN {}. Quick uses 1 seed instead of 3.",
        1.0 - NOISE_SCALE,
        1.0 + NOISE_SCALE,
        fmt(beta(0)),
        fmt(beta(1)),
        fmt(beta(2)),
        fmt(ics(0)),
        fmt(ics(1)),
        fmt(ics(2)),
    );
    for t in trained.into_iter().flatten() {
        file.runs.push(t.run);
    }
    Ok(file)
}
