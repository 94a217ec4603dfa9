//! De & Smith 2020: at initialisation, the mean squared activation (MSA) doubles with every
//! unnormalised residual block, grows by one per block with BN in the branch, and stays put with
//! SkipInit (α = 0).

use super::stats::{mean, mean_square};
use super::{
    Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure, LineSeries,
    fmt, util,
};
use crate::model::{Act, Probe, build};
use crate::spec::{BranchScale, InputShape, LayerOp, LayerSpec, NetSpec, SkipSpec, validate};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "init-variance",
    title: "Activation growth at initialisation: residual, BN, SkipInit, plain",
    citation: "De & Smith 2020, Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep Networks (NeurIPS)",
    what_to_see: [
        "Without normalisation every residual block adds a branch as large as its input, so the MSA doubles per block: a straight line of slope 1 in log2.",
        "With BN in the branch the branch has unit MSA whatever the depth, so the skip path grows only linearly (MSA_l ≈ l + MSA_0): deep blocks stay close to the identity.",
        "SkipInit (α = 0) makes every block the identity at initialisation: the MSA is flat, which is what BN achieves approximately.",
    ],
    run,
};

const WIDTH: usize = 256;
const BLOCKS: usize = 20;
const BATCH: usize = 256;

/// The four networks of the figure.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Residual,
    ResidualBn,
    SkipInit,
    Plain,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Residual => "residual, no normalisation",
            Variant::ResidualBn => "residual, BN in the branch",
            Variant::SkipInit => "SkipInit (α = 0)",
            Variant::Plain => "plain",
        }
    }
}

/// `x_{l+1} = x_l + α·Linear(ReLU([BN](x_l)))` for 20 blocks of width 256 (no skip for plain).
fn spec(v: Variant) -> NetSpec {
    let mut layers = Vec::new();
    let mut skips = Vec::new();
    let mut prev = "input".to_string();
    for b in 1..=BLOCKS {
        if v == Variant::ResidualBn {
            layers.push(LayerSpec::batch_norm(format!("block{b}.bn")));
        }
        layers.push(LayerSpec::relu(format!("block{b}.act")));
        let fc = format!("block{b}.fc");
        layers.push(LayerSpec::new(
            &fc,
            LayerOp::Linear {
                out: WIDTH,
                bias: true,
            },
        ));
        if v != Variant::Plain {
            let mut s = SkipSpec::identity(&prev, &fc);
            if v == Variant::SkipInit {
                s.scale = BranchScale::skip_init();
            }
            skips.push(s);
        }
        prev = fc;
    }
    NetSpec {
        name: format!("init-variance {}", v.label()),
        input: InputShape::Flat { features: WIDTH },
        layers,
        skips,
    }
}

/// MSA of the block outputs `x_0..=x_20` and of the residual branches `f_1..=f_20`.
struct Profile {
    skip: Vec<f64>,
    branch: Vec<f64>,
}

fn host(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap_or_default()
}

fn measure(v: Variant, seed: u64) -> Result<Profile, ExperimentError> {
    let valid = validate(&spec(v))?;
    // Training mode (batch statistics) is what initialisation means for BN: an autodiff device.
    let device = Device::flex().autodiff();
    let model = build(&valid, &device, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1A17_5EED);
    let x: Vec<f32> = (0..BATCH * WIDTH)
        .map(|_| crate::rng::normal(&mut rng))
        .collect();
    let msa0 = mean_square(&x);
    let input = Act::Flat(Tensor::from_data(
        TensorData::new(x, [BATCH, WIDTH]),
        &device,
    ));
    let (_, probes) = model.forward_with(input, Probe::On, None);
    let mut skip = vec![msa0];
    let mut branch = Vec::new();
    let fc_layers: Vec<usize> = valid
        .spec
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.name.ends_with(".fc"))
        .map(|(i, _)| i)
        .collect();
    // Layer probes are [mean, std, ...] of each output: MSA = mean² + std².
    for &i in &fc_layers {
        let s = host(probes.layers[i].clone());
        let (m, sd) = (s[0] as f64, s[1] as f64);
        skip.push(m * m + sd * sd);
    }
    if probes.skips.is_empty() {
        // The plain net: its "branch" is the whole block.
        branch = skip[1..].to_vec();
    } else {
        for (t, &n) in probes.skips.iter().zip(&probes.skip_numel) {
            let s = host(t.clone());
            branch.push(s[0] as f64 / n as f64);
        }
    }
    Ok(Profile { skip, branch })
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    let n_seeds = if opts.quick { 1 } else { 3 };
    let seeds = util::seeds(opts.seed, n_seeds);
    let variants = [
        Variant::Residual,
        Variant::ResidualBn,
        Variant::SkipInit,
        Variant::Plain,
    ];
    let mut profiles: Vec<Vec<Profile>> = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        let mut per_seed = Vec::new();
        for &s in &seeds {
            opts.check_cancel()?;
            opts.report(k as f32 / variants.len() as f32, v.label());
            per_seed.push(measure(*v, s)?);
        }
        profiles.push(per_seed);
    }
    let seed_list = seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");

    // 1. Unnormalised: log2(MSA_20 / MSA_0) ≈ 20.
    let ratios: Vec<f64> = profiles[0]
        .iter()
        .map(|p| (p.skip[BLOCKS] / p.skip[0]).log2())
        .collect();
    let ok = ratios.iter().all(|r| (18.0..=22.0).contains(r));
    let mut c = Criterion::new(
        "unnormalised residual: log2(MSA_20 / MSA_0) in [18, 22] on every seed",
        format!(
            "{} (seeds {seed_list})",
            ratios
                .iter()
                .map(|&r| fmt(r))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ok,
    );
    for (s, r) in seeds.iter().zip(&ratios) {
        c = c.with(format!("log2 ratio seed {s}"), *r);
    }
    file.criteria.push(c);

    // 2. BN: branch MSA in [0.8, 1.2] at every block.
    let branch: Vec<f64> = profiles[1].iter().flat_map(|p| p.branch.clone()).collect();
    let (lo, hi) = min_max(&branch);
    file.criteria.push(
        Criterion::new(
            "BN in the branch: branch MSA in [0.8, 1.2] at every block",
            format!(
                "min {}, max {} over {} blocks × {} seeds",
                fmt(lo),
                fmt(hi),
                BLOCKS,
                n_seeds
            ),
            lo >= 0.8 && hi <= 1.2,
        )
        .with("branch MSA min", lo)
        .with("branch MSA max", hi),
    );

    // 3. BN: MSA_skip(l) / (l + MSA_0) in [0.8, 1.2].
    let rel: Vec<f64> = profiles[1]
        .iter()
        .flat_map(|p| {
            let m0 = p.skip[0];
            p.skip
                .iter()
                .enumerate()
                .map(move |(l, &m)| m / (l as f64 + m0))
        })
        .collect();
    let (lo, hi) = min_max(&rel);
    file.criteria.push(
        Criterion::new(
            "BN in the branch: MSA_skip(l) / (l + MSA_0) in [0.8, 1.2] for l = 0..20",
            format!("min {}, max {}", fmt(lo), fmt(hi)),
            lo >= 0.8 && hi <= 1.2,
        )
        .with("skip ratio min", lo)
        .with("skip ratio max", hi),
    );

    // 4. SkipInit: flat.
    let dev: f64 = profiles[2]
        .iter()
        .flat_map(|p| {
            let m0 = p.skip[0];
            p.skip.iter().map(move |&m| (m / m0).log2().abs())
        })
        .fold(0.0, f64::max);
    file.criteria.push(
        Criterion::new(
            "SkipInit (α = 0): the MSA is flat, |log2(MSA_l / MSA_0)| ≤ 0.01",
            format!("largest |log2(MSA_l / MSA_0)| {}", fmt(dev)),
            dev <= 0.01,
        )
        .with("max |log2 ratio|", dev),
    );

    // Figures: the first seed's profiles, and the mean over seeds of the log2 values.
    let mut skip_series = Vec::new();
    let mut branch_series = Vec::new();
    for (v, per_seed) in variants.iter().zip(&profiles) {
        let avg = |f: &dyn Fn(&Profile) -> &Vec<f64>, l: usize| {
            mean(&per_seed.iter().map(|p| f(p)[l].log2()).collect::<Vec<_>>())
        };
        skip_series.push(LineSeries {
            name: v.label().into(),
            points: (0..=BLOCKS)
                .map(|l| [l as f64, avg(&|p| &p.skip, l)])
                .collect(),
        });
        branch_series.push(LineSeries {
            name: v.label().into(),
            points: (0..BLOCKS)
                .map(|l| [(l + 1) as f64, avg(&|p| &p.branch, l)])
                .collect(),
        });
    }
    file.figures.push(Figure::lines(
        "Skip path: log2 MSA of x_l (block output) at initialisation",
        "block l",
        "log2 MSA",
        skip_series,
    ));
    file.figures.push(Figure::lines(
        "Residual branch: log2 MSA of f_l(x_{l-1}) at initialisation",
        "block l",
        "log2 MSA",
        branch_series,
    ));
    file.notes = format!(
        "Width {WIDTH}, {BLOCKS} blocks x_(l+1) = x_l + α·Linear(ReLU([BN](x_l))), He init, a batch of {BATCH} from N(0, I), BN in training mode; {n_seeds} seed(s) ({seed_list}); curves are means of log2 MSA over the seeds. Quick uses 1 seed instead of 3; nothing else changes."
    );
    Ok(file)
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}
