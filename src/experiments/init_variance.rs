//! De & Smith 2020: at initialisation the mean squared activation (MSA) doubles with every
//! unnormalised residual block and grows by one per block with BN in the branch; and, their
//! training claim, a deep residual net *without* normalisation trains when every branch starts
//! scaled by a learnable α = 0 (SkipInit), at a learning rate where the same net with α = 1
//! diverges, and reaches a loss close to the BN net's.

use super::stats::{describe_ci95, mean, mean_square, tail_mean};
use super::util::{self, Job};
use super::{
    Control, Criterion, Experiment, ExperimentError, ExperimentOptions, Figure, LineSeries,
    Protocol, Reproduction, fmt,
};
use crate::model::{Act, Lesion, Probe, build};
use crate::runfile::RunFile;
use crate::spec::{
    BranchScale, InputShape, LayerOp, LayerSpec, NetSpec, SkipSpec, TrainConfig, validate,
};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "init-variance",
    title: "Residual blocks at initialisation and SkipInit in training",
    citation: "De & Smith 2020, Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep Networks (NeurIPS)",
    what_to_see: [
        "At initialisation, without normalisation every residual block adds a branch as large as its input, so the MSA doubles per block (a line of slope 1 in log2); with BN in the branch the branch has unit MSA and the skip path grows only linearly (MSA_l ≈ l + MSA_0).",
        "That is why BN trains deep residual nets: it keeps every block close to the identity. SkipInit does the same without BN, by starting each branch scaled by a learnable α = 0.",
        "In training, the 64-block residual MLP without normalisation diverges at once with α = 1, while the same net with SkipInit trains at the same learning rate to a loss close to the BN net's.",
    ],
    protocol: PROTOCOL,
    controls: CONTROLS,
    run: |opts, c| super::reproduce::<InitVariance>(&EXPERIMENT, opts, c),
};

/// The control: SkipInit with α frozen at 0.
pub const CONTROLS: &[Control] = &[Control {
    name: "alpha-frozen",
    runs: "the SkipInit role trained with every α frozen at 0 (not learnable), the other roles as in the experiment: its blocks then never contribute, the net is its stem, one ReLU and its head (a one-hidden-layer MLP), so it must not count as a deep net that trains and uses its blocks.",
    rejected_by: "uses its blocks",
}];

/// The at-init ranges come from De & Smith's derivation (doubling: log2 ratio 20 ± 2 over 20
/// blocks; BN: ratios within 20 % of 1). The training claims use the mean over seeds of the
/// final training loss; SkipInit counts as "close to BN" within 1.5 × BN's loss + 0.05 (decided
/// on exploration seeds 100–102 before the reported seeds ran: α = 1 non-finite at step 2,
/// SkipInit 0.052–0.078, BN 0.15–0.22).
pub const PROTOCOL: Protocol = Protocol {
    quick_seeds: 1,
    full_seeds: 3,
    statistic: "at init: every seed must fall in the range; training: a run diverges when its loss or a gradient turns non-finite or its final training loss (mean of the last 50 steps) exceeds 10; SkipInit passes when no seed diverges and its mean final loss ≤ 1.5 × the BN net's + 0.05; SkipInit uses its blocks when on every seed the validation loss of the trained net with all 64 blocks deleted (each block then passes its input through) is at least the blocks-deleted factor × the trained net's own validation loss; α = 1 trains at the small rate when no seed diverges and its mean final loss is below the trains-below loss.",
    thresholds: &[
        ("log2 MSA ratio over 20 blocks, low", DOUBLING.0),
        ("log2 MSA ratio over 20 blocks, high", DOUBLING.1),
        ("BN branch MSA and skip ratio, low", UNIT.0),
        ("BN branch MSA and skip ratio, high", UNIT.1),
        ("diverged above final loss", DIVERGED_LOSS),
        ("SkipInit close to BN: factor", CLOSE_FACTOR),
        ("SkipInit close to BN: offset", CLOSE_OFFSET),
        ("blocks-deleted factor", DELETED_FACTOR),
        ("training rate", TRAIN_LR),
        ("small rate for α = 1", SMALL_LR),
        ("α = 1 trains below final loss", TRAINS_BELOW),
    ],
    reason: "the at-init values are nearly deterministic (a seed changes them by a few percent), so every seed must pass; the training tolerance was set on exploration seeds before the reported ones ran. Added after the second review (not after a failure): the blocks-deleted comparison (with α = 0 the 64-block net is a one-hidden-layer MLP that trains well on its own, so a bug keeping α at 0 would have passed) and the α = 1 run at a small rate (whether the divergence at 0.05 is about the rate); their factor and rate were set before new held-out seeds ran: the factor 1.5 was written before any run, and exploration seeds 100–102 gave SkipInit ratios 1.71–2.36 (α frozen at 0: exactly 1); α = 1 at lr 1e-3, 3e-4, 1e-4, 1e-5, 1e-6, 1e-8, 3e-9, 1e-9, 3e-10 and 3e-11 … 1e-20 diverged on seed 100 (initial loss 4.0e9: the signal grows as 2^64), only 1e-10 stayed finite, ending at 5.8 (chance is 2.3), so 1e-10 is the small rate and 'trains' means a final loss below 0.5. A finding, not a tuned pass: at 64 blocks the α = 1 net does not train at any rate tried within the budget.",
};

/// Width and depth of the at-init profiles.
const WIDTH: usize = 256;
const BLOCKS: usize = 20;
const BATCH: usize = 256;
/// Width, depth, learning rate and steps of the training claim.
pub const TRAIN_WIDTH: usize = 64;
/// Residual blocks of the trained nets (De & Smith's claim is for depth ≥ 64).
pub const TRAIN_BLOCKS: usize = 64;
/// The rate at which α = 1 diverges and SkipInit trains.
pub const TRAIN_LR: f64 = 0.05;
const TRAIN_STEPS: u64 = 400;
/// A final training loss above this counts as diverged (chance level is ln 10 ≈ 2.3).
const DIVERGED_LOSS: f64 = 10.0;
/// The unnormalised residual net's log2(MSA_20 / MSA_0) at init: doubling per block.
const DOUBLING: (f64, f64) = (18.0, 22.0);
/// BN in the branch: unit branch MSA, and MSA_skip(l) / (l + MSA_0) near 1.
const UNIT: (f64, f64) = (0.8, 1.2);
/// SkipInit close to BN: mean final loss ≤ factor × BN's + offset.
const CLOSE_FACTOR: f64 = 1.5;
const CLOSE_OFFSET: f64 = 0.05;
/// SkipInit uses its blocks: blocks-deleted validation loss ≥ this × its own.
const DELETED_FACTOR: f64 = 1.5;
/// The small rate at which α = 1 is trained as well: the best of a sweep from 1e-3 to 1e-20 on
/// exploration seed 100 (every other rate diverged; see [`PROTOCOL`]).
pub const SMALL_LR: f64 = 1e-10;
/// α = 1 at the small rate trains: mean final training loss below this.
const TRAINS_BELOW: f64 = 0.5;

/// A network of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// `x + Linear(ReLU(x))`, no normalisation.
    Residual,
    /// `x + Linear(ReLU(BN(x)))`.
    ResidualBn,
    /// `x + α·Linear(ReLU(x))` with a learnable α from 0.
    SkipInit,
    /// `x + α·Linear(ReLU(x))` with α frozen at 0 (the control).
    SkipInitFrozen,
    /// `Linear(ReLU(x))`, no skip.
    Plain,
}

impl Variant {
    /// The label in figures and criteria.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Residual => "residual, no normalisation (α = 1)",
            Variant::ResidualBn => "residual, BN in the branch",
            Variant::SkipInit => "SkipInit (learnable α from 0), no normalisation",
            Variant::SkipInitFrozen => "SkipInit with α frozen at 0 (control), no normalisation",
            Variant::Plain => "plain",
        }
    }
}

/// `blocks` blocks `x_{l+1} = x_l + α·Linear(ReLU([BN](x_l)))` of width `width` after `stem`
/// (no skip for plain).
fn blocks(
    v: Variant,
    n: usize,
    width: usize,
    first: &str,
    layers: &mut Vec<LayerSpec>,
) -> Vec<SkipSpec> {
    let mut skips = Vec::new();
    let mut prev = first.to_string();
    for b in 1..=n {
        if v == Variant::ResidualBn {
            layers.push(LayerSpec::batch_norm(format!("block{b}.bn")));
        }
        layers.push(LayerSpec::relu(format!("block{b}.act")));
        let fc = format!("block{b}.fc");
        layers.push(LayerSpec::linear(&fc, width));
        if v != Variant::Plain {
            let mut s = SkipSpec::identity(&prev, &fc);
            if v == Variant::SkipInit {
                s.scale = BranchScale::skip_init();
            }
            if v == Variant::SkipInitFrozen {
                s.scale = BranchScale {
                    value: 0.0,
                    learnable: false,
                };
            }
            skips.push(s);
        }
        prev = fc;
    }
    skips
}

/// The at-init network: 20 blocks of width 256 on a `[256]` input.
pub fn init_spec(v: Variant) -> NetSpec {
    let mut layers = Vec::new();
    let skips = blocks(v, BLOCKS, WIDTH, "input", &mut layers);
    NetSpec {
        name: format!("init-variance {}", v.label()),
        input: InputShape::Flat { features: WIDTH },
        layers,
        skips,
    }
}

/// The trained network on `input` with `classes` outputs: `Linear(d → 64)`, 64 blocks, ReLU,
/// head.
pub fn train_spec(v: Variant, input: InputShape, classes: usize, n: usize) -> NetSpec {
    let mut layers = Vec::new();
    if matches!(input, InputShape::Image { .. }) {
        layers.push(LayerSpec::new("flatten", LayerOp::Flatten));
    }
    layers.push(LayerSpec::linear("stem.fc", TRAIN_WIDTH));
    let skips = blocks(v, n, TRAIN_WIDTH, "stem.fc", &mut layers);
    layers.push(LayerSpec::relu("final.act"));
    layers.push(LayerSpec::new("head", LayerOp::Head { outputs: classes }));
    NetSpec {
        name: format!("res-mlp-{n} {}", v.label()),
        input,
        layers,
        skips,
    }
}

/// MSA of the block outputs `x_0..=x_20` and of the residual branches `f_1..=f_20`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// MSA of `x_l`, `l = 0..=20`.
    pub skip: Vec<f64>,
    /// MSA of `f_l`, `l = 1..=20`.
    pub branch: Vec<f64>,
}

/// One trained run, reduced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainRun {
    /// Its seed.
    pub seed: u64,
    /// Its learning rate.
    pub lr: f64,
    /// Validation loss of the trained net (NaN when diverged).
    pub val_loss: f64,
    /// Validation loss of the trained net with every block deleted (NaN when diverged).
    pub deleted_loss: f64,
    /// Mean |α| over the blocks at the end (1 for α = 1, NaN when diverged).
    pub alpha: f64,
    /// Batch loss per step (up to divergence).
    pub losses: Vec<f32>,
    /// Mean of the last 50 batch losses; NaN when a value turned non-finite.
    pub final_loss: f64,
    /// Whether the run diverged (non-finite, or final loss > 10).
    pub diverged: bool,
}

/// What the measurement found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// At init, per variant of [`AT_INIT`], one profile per seed.
    pub at_init: Vec<Vec<Profile>>,
    /// Trained, per role of [`TRAINED`]: α = 1 without normalisation, SkipInit, BN (at
    /// [`TRAIN_LR`]) and α = 1 at [`SMALL_LR`]; one run per seed.
    pub trained: Vec<(Variant, Vec<TrainRun>)>,
    /// The training runs.
    pub runs: Vec<RunFile>,
}

/// The variants profiled at initialisation, in the order of [`Measured::at_init`].
pub const AT_INIT: [Variant; 4] = [
    Variant::Residual,
    Variant::ResidualBn,
    Variant::SkipInit,
    Variant::Plain,
];

/// The variants trained and their rates, in the roles of [`Measured::trained`].
pub const TRAINED: [(Variant, f64); 4] = [
    (Variant::Residual, TRAIN_LR),
    (Variant::SkipInit, TRAIN_LR),
    (Variant::ResidualBn, TRAIN_LR),
    (Variant::Residual, SMALL_LR),
];

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

/// The MSA profile of one variant at initialisation, BN in training mode.
pub fn profile(v: Variant, seed: u64, device: &Device) -> Result<Profile, ExperimentError> {
    let valid = validate(&init_spec(v))?;
    // Training mode (batch statistics) is what initialisation means for BN: an autodiff device.
    let model = build(&valid, device, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1A17_5EED);
    let x: Vec<f32> = (0..BATCH * WIDTH)
        .map(|_| crate::rng::normal(&mut rng))
        .collect();
    let msa0 = mean_square(&x);
    let input = Act::Flat(Tensor::from_data(
        TensorData::new(x, [BATCH, WIDTH]),
        device,
    ));
    let (_, probes) = model.forward_with(input, Probe::On, None);
    let mut skip = vec![msa0];
    // Layer probes are [mean, std, ...] of each output: MSA = mean² + std².
    for (i, l) in valid.spec.layers.iter().enumerate() {
        if l.name.ends_with(".fc") {
            let s = host(probes.layers[i].clone());
            let (m, sd) = (s[0] as f64, s[1] as f64);
            skip.push(m * m + sd * sd);
        }
    }
    let branch = if probes.skips.is_empty() {
        // The plain net: its "branch" is the whole block.
        skip[1..].to_vec()
    } else {
        probes
            .skips
            .iter()
            .zip(&probes.skip_numel)
            .map(|(t, &n)| host(t.clone())[0] as f64 / n as f64)
            .collect()
    };
    Ok(Profile { skip, branch })
}

/// The layer ranges of the blocks of a trained spec (first layer of the block to its Linear).
fn block_ranges(spec: &NetSpec, n: usize) -> Vec<(usize, usize)> {
    (1..=n)
        .filter_map(|b| {
            let fc = spec.index_of(&format!("block{b}.fc"))?;
            let first = spec
                .index_of(&format!("block{b}.bn"))
                .or_else(|| spec.index_of(&format!("block{b}.act")))?;
            Some((first, fc))
        })
        .collect()
}

/// Validation loss with and without the blocks, and the mean |α|, of a trained session.
fn trained_values(session: &crate::train::Session, n: usize) -> (f64, f64, f64) {
    let model = session.model.valid();
    let all = Lesion::blocks(block_ranges(&model.spec.spec, n));
    let own = util::evaluate(session, None).0;
    let deleted = util::evaluate(session, Some(&all)).0;
    let alphas: Vec<f64> = util::params(&model)
        .iter()
        .filter(|p| p.path.ends_with(".alpha"))
        .flat_map(|p| p.data.iter().map(|&a| (a as f64).abs()))
        .collect();
    // A fixed α (1, or 0 frozen) is the spec's value.
    let fixed: Vec<f64> = model
        .spec
        .spec
        .skips
        .iter()
        .map(|k| (k.scale.value as f64).abs())
        .collect();
    let alpha = mean(if alphas.is_empty() { &fixed } else { &alphas });
    (own, deleted, alpha)
}

/// Trains `v` (64 blocks, width 64) on MNIST-10k at rate `lr` for `seed`.
pub fn train_variant(
    (v, lr): (Variant, f64),
    seed: u64,
    n: usize,
    opts: &mut ExperimentOptions,
    span: (f32, f32),
) -> Result<(TrainRun, RunFile), ExperimentError> {
    let (dataset, data) = util::mnist()?;
    let (input, classes) = dataset.expected_io();
    let config = TrainConfig {
        lr,
        ..util::sgd_config(TRAIN_STEPS, seed)
    };
    let job = Job {
        name: format!("res-mlp-{n} {} lr {lr}-seed{seed}", v.label()),
        spec: train_spec(v, input, classes, n),
        config,
        dataset: &dataset,
        data: &data,
        span,
    };
    let t = util::train(&job, opts, None)?;
    let final_loss = if t.diverged {
        f64::NAN
    } else {
        tail_mean(&t.losses, 50)
    };
    let diverged = t.diverged || final_loss.is_nan() || final_loss > DIVERGED_LOSS;
    let (val_loss, deleted_loss, alpha) = if diverged {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        trained_values(&t.session, n)
    };
    let run = TrainRun {
        seed,
        lr,
        val_loss,
        deleted_loss,
        alpha,
        diverged,
        final_loss,
        losses: t.losses,
    };
    Ok((run, t.run))
}

/// The measurement with the given variants and rates in the four training roles of
/// [`TRAINED`] and `n` blocks; a control run puts another variant in a role.
pub fn measure_with(
    roles: [(Variant, f64); 4],
    n: usize,
    opts: &mut ExperimentOptions,
) -> Result<Measured, ExperimentError> {
    let seeds = util::seeds(opts.seed, PROTOCOL.seeds(opts.quick));
    let device = opts.burn_device(true)?;
    let mut at_init = Vec::new();
    for v in AT_INIT {
        opts.check_cancel()?;
        at_init.push(
            seeds
                .iter()
                .map(|&s| profile(v, s, &device))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    let mut trained = Vec::new();
    let mut runs = Vec::new();
    let total = (roles.len() * seeds.len()) as f32;
    let mut k = 0.0;
    for v in roles {
        let mut per_seed = Vec::new();
        for &s in &seeds {
            let (r, file) = train_variant(v, s, n, opts, (k / total, (k + 1.0) / total))?;
            k += 1.0;
            per_seed.push(r);
            runs.push(file);
        }
        trained.push((v.0, per_seed));
    }
    Ok(Measured {
        seeds,
        at_init,
        trained,
        runs,
    })
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

fn losses(runs: &[TrainRun]) -> Vec<f64> {
    runs.iter().map(|r| r.final_loss).collect()
}

fn describe(v: Variant, runs: &[TrainRun]) -> String {
    let diverged = runs.iter().filter(|r| r.diverged).count();
    format!(
        "{} at lr {}: final loss {} (per seed {}), {diverged} of {} diverged",
        v.label(),
        runs.first().map_or(f64::NAN, |r| r.lr),
        describe_ci95(&losses(runs)),
        losses(runs)
            .iter()
            .map(|&l| fmt(l))
            .collect::<Vec<_>>()
            .join(", "),
        runs.len()
    )
}

/// The init-variance reproduction.
pub struct InitVariance;

impl InitVariance {
    fn init_criteria(m: &Measured) -> Vec<Criterion> {
        let ratios: Vec<f64> = m.at_init[0]
            .iter()
            .map(|p| (p.skip[BLOCKS] / p.skip[0]).log2())
            .collect();
        let branch: Vec<f64> = m.at_init[1].iter().flat_map(|p| p.branch.clone()).collect();
        let rel: Vec<f64> = m.at_init[1]
            .iter()
            .flat_map(|p| {
                let m0 = p.skip[0];
                p.skip
                    .iter()
                    .enumerate()
                    .map(move |(l, &x)| x / (l as f64 + m0))
            })
            .collect();
        let (blo, bhi) = min_max(&branch);
        let (rlo, rhi) = min_max(&rel);
        let mut c = Criterion::new(
            format!("unnormalised residual: log2(MSA_20 / MSA_0) in [{}, {}] on every seed", DOUBLING.0, DOUBLING.1),
            ratios.iter().map(|&r| fmt(r)).collect::<Vec<_>>().join(", "),
            !ratios.is_empty() && ratios.iter().all(|r| (DOUBLING.0..=DOUBLING.1).contains(r)),
        )
        .claim("Without normalisation each residual block doubles the MSA at initialisation: the signal grows as 2^depth.");
        for (s, r) in m.seeds.iter().zip(&ratios) {
            c = c.with(format!("log2 ratio seed {s}"), *r);
        }
        vec![
            c,
            Criterion::new(
                format!("BN in the branch: branch MSA in [{}, {}] at every block", UNIT.0, UNIT.1),
                format!("min {}, max {} over {} blocks", fmt(blo), fmt(bhi), BLOCKS),
                blo >= UNIT.0 && bhi <= UNIT.1,
            )
            .claim("BN in the residual branch gives every branch unit variance, whatever the depth.")
            .with("branch MSA min", blo)
            .with("branch MSA max", bhi),
            Criterion::new(
                format!("BN in the branch: MSA_skip(l) / (l + MSA_0) in [{}, {}] for l = 0..20", UNIT.0, UNIT.1),
                format!("min {}, max {}", fmt(rlo), fmt(rhi)),
                rlo >= UNIT.0 && rhi <= UNIT.1,
            )
            .claim("With BN the skip path grows only linearly, so block l is an identity plus a 1/(l+1) share: deep blocks stay close to the identity.")
            .with("skip ratio min", rlo)
            .with("skip ratio max", rhi),
        ]
    }

    fn training_criteria(m: &Measured) -> Vec<Criterion> {
        let [(v1, one), (vs, skip), (vb, bn), (vsmall, small)] =
            [0, 1, 2, 3].map(|i| (m.trained[i].0, &m.trained[i].1));
        let (skip_loss, bn_loss) = (mean(&losses(skip)), mean(&losses(bn)));
        let skip_trains = !skip.is_empty() && skip.iter().all(|r| !r.diverged);
        let close = skip_trains && skip_loss <= CLOSE_FACTOR * bn_loss + CLOSE_OFFSET;
        let small_loss = mean(&losses(small));
        let small_trains =
            !small.is_empty() && small.iter().all(|r| !r.diverged) && small_loss < TRAINS_BELOW;
        vec![
            Criterion::new(
                format!("{}: every seed diverges at lr {TRAIN_LR}", v1.label()),
                describe(v1, one),
                !one.is_empty() && one.iter().all(|r| r.diverged),
            )
            .claim(format!("A {TRAIN_BLOCKS}-block residual network without normalisation and with α = 1 cannot be trained at a learning rate where normalised nets train."))
            .with("diverged runs", one.iter().filter(|r| r.diverged).count() as f64),
            Criterion::new(
                format!("{}: at lr {SMALL_LR} no seed diverges and mean final loss < {TRAINS_BELOW}", vsmall.label()),
                describe(vsmall, small),
                small_trains,
            )
            .claim("The same α = 1 network trains at a small enough rate: what fails at the large rate is the rate, as De & Smith describe for unnormalised residual nets.")
            .with("α = 1 small-rate mean final loss", small_loss),
            Criterion::new(
                format!("{}: no seed diverges, and mean final loss ≤ {CLOSE_FACTOR} × {}'s + {CLOSE_OFFSET}", vs.label(), vb.label()),
                format!("{}; {}", describe(vs, skip), describe(vb, bn)),
                close,
            )
            .claim("SkipInit makes the same unnormalised network trainable at that rate, to a loss close to the BN network's.")
            .with("SkipInit mean final loss", skip_loss)
            .with("BN mean final loss", bn_loss),
            Self::uses_blocks(vs, skip),
        ]
    }

    /// SkipInit's trained net against itself with every block deleted.
    fn uses_blocks(v: Variant, runs: &[TrainRun]) -> Criterion {
        let ratios: Vec<f64> = runs.iter().map(|r| r.deleted_loss / r.val_loss).collect();
        let per_seed = runs
            .iter()
            .map(|r| {
                format!(
                    "seed {}: validation loss {}, all blocks deleted {} (×{}), mean |α| {}",
                    r.seed,
                    fmt(r.val_loss),
                    fmt(r.deleted_loss),
                    fmt(r.deleted_loss / r.val_loss),
                    fmt(r.alpha)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Criterion::new(
            format!(
                "{}: uses its blocks: validation loss with all {TRAIN_BLOCKS} blocks deleted ≥ {DELETED_FACTOR} × its own on every seed",
                v.label()
            ),
            per_seed,
            !ratios.is_empty() && ratios.iter().all(|&r| r >= DELETED_FACTOR),
        )
        .claim("The trained deep network is more than its stem and head: its residual blocks carry what it learned, so deleting them all costs it much of its fit.")
        .with("smallest blocks-deleted ratio", ratios.iter().copied().fold(f64::INFINITY, f64::min))
        .with("mean |α|", mean(&runs.iter().map(|r| r.alpha).collect::<Vec<_>>()))
    }
}

impl Reproduction for InitVariance {
    type Measured = Measured;

    fn measure(opts: &mut ExperimentOptions) -> Result<Measured, ExperimentError> {
        measure_with(TRAINED, TRAIN_BLOCKS, opts)
    }

    fn measure_control(
        _: &Control,
        opts: &mut ExperimentOptions,
    ) -> Result<Measured, ExperimentError> {
        let mut roles = TRAINED;
        roles[1].0 = Variant::SkipInitFrozen;
        measure_with(roles, TRAIN_BLOCKS, opts)
    }

    fn criteria(m: &Measured) -> Vec<Criterion> {
        let mut c = Self::init_criteria(m);
        c.extend(Self::training_criteria(m));
        c
    }

    fn figures(m: &Measured) -> Vec<Figure> {
        let mut skip_series = Vec::new();
        let mut branch_series = Vec::new();
        for (v, per_seed) in AT_INIT.iter().zip(&m.at_init) {
            let avg = |f: &dyn Fn(&Profile) -> &Vec<f64>, l: usize| {
                mean(&per_seed.iter().map(|p| f(p)[l].log2()).collect::<Vec<_>>())
            };
            skip_series.push(LineSeries {
                style: Default::default(),
                color: None,
                name: v.label().into(),
                points: (0..=BLOCKS)
                    .map(|l| [l as f64, avg(&|p| &p.skip, l)])
                    .collect(),
            });
            branch_series.push(LineSeries {
                style: Default::default(),
                color: None,
                name: v.label().into(),
                points: (0..BLOCKS)
                    .map(|l| [(l + 1) as f64, avg(&|p| &p.branch, l)])
                    .collect(),
            });
        }
        let mut loss = Figure::lines(
            format!(
                "Training loss of the {TRAIN_BLOCKS}-block residual MLP (first seed; a line that stops diverged)"
            ),
            "step",
            "cross-entropy",
            m.trained
                .iter()
                .filter_map(|(v, runs)| {
                    let r = runs.first()?;
                    Some(LineSeries {
                        style: Default::default(),
                        color: None,
                        name: format!("{} at lr {}", v.label(), r.lr),
                        points: r
                            .losses
                            .iter()
                            .enumerate()
                            .map(|(i, &l)| [(i + 1) as f64, l as f64])
                            .collect(),
                    })
                })
                .collect(),
        );
        loss.log_y = true;
        vec![
            Figure::lines(
                "Skip path: log2 MSA of x_l (block output) at initialisation",
                "block l",
                "log2 MSA",
                skip_series,
            ),
            Figure::lines(
                "Residual branch: log2 MSA of f_l(x_{l-1}) at initialisation",
                "block l",
                "log2 MSA",
                branch_series,
            ),
            loss,
        ]
    }

    fn notes(m: &Measured) -> String {
        let seeds = m.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let trained = m
            .trained
            .iter()
            .map(|(v, r)| describe(*v, r))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "At init: width {WIDTH}, {BLOCKS} blocks x_(l+1) = x_l + α·Linear(ReLU([BN](x_l))), He init, a batch of {BATCH} from N(0, I), BN in training mode; curves are means of log2 MSA over the seeds ({}). Training: Linear(784 → {TRAIN_WIDTH}), {TRAIN_BLOCKS} such blocks of width {TRAIN_WIDTH}, ReLU, head; MNIST-10k, SGD momentum 0.9, lr {TRAIN_LR} (and {SMALL_LR} for α = 1), batch 128, {TRAIN_STEPS} steps; after training, the validation loss with and without the blocks and the mean |α|. {trained}.",
            seeds.join(", ")
        )
    }

    fn into_runs(m: Measured) -> Vec<RunFile> {
        m.runs
    }
}
