//! Veit, Wilber & Belongie 2016: deleting one block of a trained ResNet at test time costs
//! little, deleting one layer of a trained plain net destroys it; and deleting more and more
//! blocks of a ResNet degrades it smoothly, as an ensemble of many paths of different lengths
//! would.

use super::stats::{describe_ci95, mean};
use super::util::{self, Job};
use super::{
    BarSeries, Control, Criterion, Experiment, ExperimentError, ExperimentOptions, Figure,
    FigureKind, LineSeries, Protocol, Reproduction, fmt,
};
use crate::model::Lesion;
use crate::runfile::RunFile;
use crate::spec::NetSpec;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "lesion",
    title: "Lesion study: delete blocks of a trained residual or plain MLP",
    citation: "Veit, Wilber & Belongie 2016, Residual Networks Behave Like Ensembles of Relatively Shallow Networks (NeurIPS), Fig. 3 and 5",
    what_to_see: [
        "Deleting any single block of the trained residual net costs little accuracy: the remaining paths still carry the signal. Deleting a block of the plain net breaks the only path there is, and accuracy collapses towards chance.",
        "Deleting k random blocks at once, the residual net's accuracy falls smoothly with k, with no cliff: its paths do not all depend on each other.",
        "The residual net acts like an ensemble of many shallower networks, which is why it degrades gracefully (Veit et al. Fig. 5).",
    ],
    protocol: PROTOCOL,
    controls: CONTROLS,
    run: |opts, c| super::reproduce::<LesionStudy>(&EXPERIMENT, opts, c),
};

/// The control: a second residual net in the plain net's role.
pub const CONTROLS: &[Control] = &[Control {
    name: "residual-fresh-seed",
    runs: "a second mlp-res-16, trained from a fresh seed (seed + 1000), lesioned in the plain net's role: Veit et al. predict that deleting a block of any residual net costs little, so its drop must not count as a collapse.",
    rejected_by: "mean drop > ",
}];

/// The seed offset of the control's second residual net.
pub const FRESH_SEED: u64 = 1000;
/// The ResNet's mean single-deletion drop below this (points).
const RES_DROP: f64 = 5.0;
/// The plain net's mean single-deletion drop above this (points).
const PLAIN_DROP: f64 = 20.0;
/// ... and above this factor × the ResNet's.
const PLAIN_FACTOR: f64 = 3.0;
/// Smooth: from k − 1 to k blocks deleted the drop never falls by more than this (points).
const MAX_FALL: f64 = 1.0;
/// ... and never rises by more than this (points).
const MAX_JUMP: f64 = 10.0;

/// Three seeds quick, five full; the criteria read the mean over seeds (and over blocks or
/// random subsets) of the accuracy drop. Thresholds from Veit et al.: a single deletion costs
/// a ResNet a few points (< 5), a plain net most of its accuracy (> 20 points and > 3 × the
/// ResNet's); deleting k = 1..8 of 16 blocks raises the ResNet's drop smoothly (never falling
/// by more than 1 point, never jumping by more than 10 points from k − 1 to k).
pub const PROTOCOL: Protocol = Protocol {
    quick_seeds: 3,
    full_seeds: 5,
    statistic: "accuracy drop = full validation accuracy − accuracy with the blocks deleted (points); mean over the 16 single deletions, or over 10 random k-subsets for k = 1..8, then the mean over seeds with its 95 % t-interval.",
    thresholds: &[
        ("ResNet single-deletion drop below (points)", RES_DROP),
        ("plain single-deletion drop above (points)", PLAIN_DROP),
        ("plain drop over ResNet drop above", PLAIN_FACTOR),
        ("largest fall from k − 1 to k (points)", MAX_FALL),
        ("largest rise from k − 1 to k (points)", MAX_JUMP),
    ],
    reason: "thresholds read off Veit et al.'s Fig. 3 and 5 before this rewrite ran; three seeds keep quick under a minute, five give a tighter interval.",
};

const WIDTH: usize = 64;
/// Blocks of the trained nets.
pub const BLOCKS: usize = 16;
const STEPS: u64 = 600;
/// The largest number of blocks deleted at once.
pub const K_MAX: usize = 8;
/// Random subsets per k and seed.
const SUBSETS: usize = 10;

/// One trained net's lesions over the seeds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetLesions {
    /// The preset name.
    pub net: String,
    /// Full validation accuracy per seed (percent).
    pub base: Vec<f64>,
    /// Per seed, the drop (points) from deleting block 1..=16 alone.
    pub single: Vec<Vec<f64>>,
    /// Per seed, the mean drop over random subsets of k = 1..=8 blocks.
    pub multi: Vec<Vec<f64>>,
}

impl NetLesions {
    /// Per seed, the mean single-block drop.
    pub fn mean_single(&self) -> Vec<f64> {
        self.single.iter().map(|d| mean(d)).collect()
    }

    /// The mean over seeds of the drop with k = 0..=8 blocks deleted (0 at k = 0).
    pub fn multi_curve(&self) -> Vec<f64> {
        let mut curve = vec![0.0];
        for k in 0..K_MAX {
            curve.push(mean(
                &self
                    .multi
                    .iter()
                    .filter_map(|d| d.get(k).copied())
                    .collect::<Vec<_>>(),
            ));
        }
        curve
    }

    fn per_block(&self) -> Vec<f64> {
        (0..BLOCKS)
            .map(|b| mean(&self.single.iter().map(|d| d[b]).collect::<Vec<_>>()))
            .collect()
    }
}

/// What the measurement found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The net that should degrade gracefully (the ResNet).
    pub residual: NetLesions,
    /// The net that should collapse (the plain net).
    pub plain: NetLesions,
    /// The training runs.
    pub runs: Vec<RunFile>,
}

/// The layer range `[fc, bn]` of block `b` (1-based) of an `mlp-*` preset with BN.
fn block_range(spec: &NetSpec, b: usize) -> Option<(usize, usize)> {
    let start = spec.index_of(&format!("block{b}.fc"))?;
    let end = spec.index_of(&format!("block{b}.bn"))?;
    Some((start, end))
}

/// Trains `name` on `seed` and measures its single and multiple block deletions.
fn lesion_net(
    name: &str,
    seed: u64,
    opts: &mut ExperimentOptions,
    span: (f32, f32),
) -> Result<(f64, Vec<f64>, Vec<f64>, RunFile), ExperimentError> {
    let (dataset, data) = util::mnist()?;
    let t = util::train(
        &Job::mlp(name, WIDTH, STEPS, seed, (&dataset, &data), span)?,
        opts,
        None,
    )?;
    let accuracy = |lesion: Option<&Lesion>| 100.0 * util::evaluate(&t.session, lesion).1;
    let full = accuracy(None);
    let ranges: Vec<(usize, usize)> = (1..=BLOCKS)
        .filter_map(|b| block_range(&t.run.spec, b))
        .collect();
    let mut single = Vec::new();
    for &r in &ranges {
        opts.check_cancel()?;
        single.push(full - accuracy(Some(&Lesion::blocks([r]))));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1E_5104);
    let mut multi = Vec::new();
    for k in 1..=K_MAX.min(ranges.len()) {
        opts.check_cancel()?;
        let drops: Vec<f64> = (0..SUBSETS)
            .map(|_| {
                let chosen = sample(&mut rng, ranges.len(), k)
                    .into_iter()
                    .map(|i| ranges[i]);
                full - accuracy(Some(&Lesion::blocks(chosen)))
            })
            .collect();
        multi.push(mean(&drops));
    }
    Ok((full, single, multi, t.run))
}

/// The measurement with the given nets in the roles of the ResNet and the plain net, the plain
/// role's seeds offset by `plain_seed_offset` (a control puts a second residual net there).
pub fn measure_with(
    residual: &str,
    plain: &str,
    plain_seed_offset: u64,
    opts: &mut ExperimentOptions,
) -> Result<Measured, ExperimentError> {
    let seeds = util::seeds(opts.seed, PROTOCOL.seeds(opts.quick));
    let mut nets = [residual, plain].map(|n| NetLesions {
        net: n.to_string(),
        ..NetLesions::default()
    });
    let mut runs = Vec::new();
    let total = (2 * seeds.len()) as f32;
    let mut k = 0.0;
    for &s in &seeds {
        for (role, net) in nets.iter_mut().enumerate() {
            let seed = if role == 1 {
                s.wrapping_add(plain_seed_offset)
            } else {
                s
            };
            let (full, single, multi, run) =
                lesion_net(&net.net, seed, opts, (k / total, (k + 1.0) / total))?;
            k += 1.0;
            net.base.push(full);
            net.single.push(single);
            net.multi.push(multi);
            runs.push(run);
        }
    }
    let [residual, plain] = nets;
    Ok(Measured {
        seeds,
        residual,
        plain,
        runs,
    })
}

/// Whether a drop curve (k = 0..) rises smoothly: never falls by more than 1 point, never jumps
/// by more than 10 points from one k to the next.
pub fn rises_smoothly(curve: &[f64]) -> bool {
    curve.len() > 1
        && curve
            .windows(2)
            .all(|w| w[1] - w[0] >= -MAX_FALL && w[1] - w[0] <= MAX_JUMP)
}

/// The lesion reproduction.
pub struct LesionStudy;

impl Reproduction for LesionStudy {
    type Measured = Measured;

    fn measure(opts: &mut ExperimentOptions) -> Result<Measured, ExperimentError> {
        measure_with(
            &format!("mlp-res-{BLOCKS}"),
            &format!("mlp-plain-{BLOCKS}"),
            0,
            opts,
        )
    }

    fn measure_control(
        _: &Control,
        opts: &mut ExperimentOptions,
    ) -> Result<Measured, ExperimentError> {
        let res = format!("mlp-res-{BLOCKS}");
        measure_with(&res, &res, FRESH_SEED, opts)
    }

    fn criteria(m: &Measured) -> Vec<Criterion> {
        let (r, p) = (&m.residual, &m.plain);
        let (res, plain) = (mean(&r.mean_single()), mean(&p.mean_single()));
        let curve = r.multi_curve();
        let steps: Vec<String> = curve.iter().map(|&d| fmt(d)).collect();
        vec![
            Criterion::new(
                format!("{}: mean drop from deleting one block < {RES_DROP} points", r.net),
                format!(
                    "mean drop {} points (full accuracy {}%)",
                    describe_ci95(&r.mean_single()),
                    fmt(mean(&r.base))
                ),
                res < RES_DROP,
            )
            .claim("Deleting a single block of a trained residual network at test time barely hurts it.")
            .with("ResNet mean drop", res)
            .with("ResNet accuracy %", mean(&r.base)),
            Criterion::new(
                format!("{}: mean drop > {PLAIN_DROP} points and > {PLAIN_FACTOR} × {}'s", p.net, r.net),
                format!(
                    "{} {} points vs {} {} (ratio {}; full accuracy {}%)",
                    p.net,
                    describe_ci95(&p.mean_single()),
                    r.net,
                    fmt(res),
                    fmt(plain / res),
                    fmt(mean(&p.base))
                ),
                plain > PLAIN_DROP && plain > PLAIN_FACTOR * res,
            )
            .claim("Deleting a single layer of a trained plain network destroys it: there is only one path.")
            .with("plain mean drop", plain)
            .with("plain accuracy %", mean(&p.base)),
            Criterion::new(
                format!(
                    "{}: the drop with k = 0..{K_MAX} random blocks deleted rises smoothly (each step between −{MAX_FALL} and +{MAX_JUMP} points)",
                    r.net
                ),
                format!("mean drop by k: {}", steps.join(", ")),
                rises_smoothly(&curve),
            )
            .claim("A residual network degrades smoothly as more blocks are deleted, like an ensemble losing members.")
            .with(format!("drop with {K_MAX} deleted"), curve.last().copied().unwrap_or(f64::NAN)),
        ]
    }

    fn figures(m: &Measured) -> Vec<Figure> {
        let nets = [&m.residual, &m.plain];
        vec![
            Figure {
                look: Default::default(),
                title: "Accuracy drop when one block is deleted at test time (mean over seeds)"
                    .into(),
                x_label: "deleted block".into(),
                y_label: "accuracy drop (points)".into(),
                log_y: false,
                variant: String::new(),
                kind: FigureKind::Bars {
                    categories: (1..=BLOCKS).map(|b| b.to_string()).collect(),
                    series: nets
                        .iter()
                        .map(|n| BarSeries {
                            color: None,
                            name: n.net.clone(),
                            values: n.per_block(),
                        })
                        .collect(),
                },
            },
            Figure::lines(
                format!(
                    "Validation accuracy with k random blocks deleted (mean of {SUBSETS} subsets per k and of the seeds)"
                ),
                "blocks deleted k",
                "accuracy (%)",
                nets.iter()
                    .map(|n| LineSeries {
                        style: Default::default(),
                        color: None,
                        name: n.net.clone(),
                        points: n
                            .multi_curve()
                            .iter()
                            .enumerate()
                            .map(|(k, d)| [k as f64, mean(&n.base) - d])
                            .collect(),
                    })
                    .collect(),
            ),
        ]
    }

    fn notes(m: &Measured) -> String {
        format!(
            "{BLOCKS}-block MLPs (width {WIDTH}, Linear → BN → (+x) → ReLU) trained {STEPS} steps in the degradation setup (SGD momentum 0.9, lr 0.05, batch 128, MNIST-10k, 8000/2000 split, standardised pixels, He-initialised head); a deleted block passes its input through (its Linear and BN skipped; the ReLU after it is the identity on its non-negative input), trained running statistics kept; accuracy on the 2000 validation samples; seeds {}.",
            m.seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn into_runs(m: Measured) -> Vec<RunFile> {
        m.runs
    }
}
