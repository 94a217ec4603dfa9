//! Balduzzi et al. 2017: the gradient of a deep plain network with respect to its input looks
//! like white noise ("shattered"), while a ResNet's stays correlated between nearby inputs.

use super::stats::{autocorrelation, linspace, mean};
use super::{
    Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure, LineSeries,
    fmt, util,
};
use crate::model::{Act, build};
use crate::spec::{InputShape, LayerOp, LayerSpec, NetSpec, SkipSpec, validate};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "shattered-gradients",
    title: "Shattered gradients: df/dx of plain nets and a ResNet over a 1-D input",
    citation: "Balduzzi, Frean, Leary, Lewis, Ma & McWilliams 2017, The Shattered Gradients Problem: If resnets are the answer, then what is the question? (ICML)",
    what_to_see: [
        "A 1-layer net's gradient is a smooth step function of x; with depth, plain nets with BN produce gradients that jump from one input to the next like noise.",
        "The autocorrelation R(1) of neighbouring gradients falls from ~1 to ~0 with plain depth: gradient descent then follows noise, not a direction that generalises between nearby inputs.",
        "The 50-block ResNet keeps R(1) high: each block adds a small change to an identity path, so the gradient stays mostly the identity's (switch BN off to see that He-init plain nets without BN shatter far less at this width).",
    ],
    run,
};

const WIDTH: usize = 200;
const POINTS: usize = 256;
const BIAS_STD: f32 = 0.1;
const MAX_LAG: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Net {
    Plain(usize),
    ResNet(usize),
}

impl Net {
    fn label(self) -> String {
        match self {
            Net::Plain(1) => "1 layer".into(),
            Net::Plain(d) => format!("plain-{d}"),
            Net::ResNet(b) => format!("ResNet-{b}"),
        }
    }
}

fn linear(name: String) -> LayerSpec {
    let mut l = LayerSpec::new(
        name,
        LayerOp::Linear {
            out: WIDTH,
            bias: true,
        },
    );
    l.bias_std = BIAS_STD;
    l
}

/// BN with momentum 1: one training-mode pass sets the running statistics to the batch's.
fn bn(name: String) -> LayerSpec {
    LayerSpec::new(
        name,
        LayerOp::BatchNorm {
            momentum: 1.0,
            epsilon: 1e-5,
        },
    )
}

fn spec(net: Net, batch_norm: bool) -> NetSpec {
    let mut layers = Vec::new();
    let mut skips = Vec::new();
    match net {
        Net::Plain(depth) => {
            for l in 1..=depth {
                layers.push(linear(format!("layer{l}.fc")));
                if batch_norm {
                    layers.push(bn(format!("layer{l}.bn")));
                }
                layers.push(LayerSpec::relu(format!("layer{l}.act")));
            }
        }
        Net::ResNet(blocks) => {
            layers.push(linear("stem.fc".into()));
            let mut prev = "stem.fc".to_string();
            for b in 1..=blocks {
                if batch_norm {
                    layers.push(bn(format!("block{b}.bn")));
                }
                layers.push(LayerSpec::relu(format!("block{b}.act")));
                let fc = format!("block{b}.fc");
                layers.push(linear(fc.clone()));
                skips.push(SkipSpec::identity(&prev, &fc));
                prev = fc;
            }
        }
    }
    let mut head = LayerSpec::new("head", LayerOp::Head { outputs: 1 });
    head.bias_std = BIAS_STD;
    layers.push(head);
    NetSpec {
        name: format!("shattered {}", net.label()),
        input: InputShape::Flat { features: 1 },
        layers,
        skips,
    }
}

/// `df/dx` at the evenly spaced inputs, BN statistics from one training-mode pass over them.
fn gradient(
    net: Net,
    batch_norm: bool,
    seed: u64,
    xs: &[f64],
) -> Result<Vec<f64>, ExperimentError> {
    let valid = validate(&spec(net, batch_norm))?;
    let device = Device::flex().autodiff();
    let model = build(&valid, &device, seed);
    let data: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let input = || Tensor::<2>::from_data(TensorData::new(data.clone(), [xs.len(), 1]), &device);
    // One pass in training mode: BN (momentum 1) takes this batch's statistics.
    let _ = model.forward(Act::Flat(input()));
    // Inference mode on the autodiff device: BN uses the running statistics, and only the
    // input asks for a gradient. The pending running-statistics update is applied first, since
    // a mapper such as `freeze` reads the stored value.
    model.sync_batch_norm();
    let frozen = model.net.clone().freeze();
    let model = model.with_net(frozen);
    let x = input().require_grad();
    let out = model.forward(Act::Flat(x.clone()));
    // The samples do not interact in inference mode, so d(Σ f)/dx_i = df(x_i)/dx_i.
    let grads = out.sum().backward();
    let g = x
        .grad(&grads)
        .map(|g| g.into_data().try_into_vec_as::<f32>().unwrap_or_default())
        .unwrap_or_default();
    Ok(g.into_iter().map(|v| v as f64).collect())
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    let seeds = util::seeds(opts.seed, 5);
    let nets = [
        Net::Plain(1),
        Net::Plain(4),
        Net::Plain(12),
        Net::Plain(24),
        Net::ResNet(50),
    ];
    let xs = linspace(-2.0, 2.0, POINTS);
    let total = (2 * nets.len() * seeds.len()) as f32;
    let mut done = 0.0;
    // r1[bn][net][seed], acf and gradients of the first seed for the figures.
    let mut r1 = vec![vec![Vec::new(); nets.len()]; 2];
    let mut acf_mean = vec![vec![vec![0.0; MAX_LAG + 1]; nets.len()]; 2];
    let mut first_grads = vec![vec![Vec::new(); nets.len()]; 2];
    for (b, batch_norm) in [true, false].into_iter().enumerate() {
        for (k, &net) in nets.iter().enumerate() {
            for (si, &s) in seeds.iter().enumerate() {
                opts.check_cancel()?;
                opts.report(done / total, &net.label());
                done += 1.0;
                let g = gradient(net, batch_norm, s, &xs)?;
                let acf = autocorrelation(&g, MAX_LAG);
                r1[b][k].push(acf[1]);
                for (a, v) in acf_mean[b][k].iter_mut().zip(&acf) {
                    *a += v / seeds.len() as f64;
                }
                if si == 0 {
                    first_grads[b][k] = g;
                }
            }
        }
    }
    let m = |b: usize, k: usize| mean(&r1[b][k]);
    let list = |v: &[f64]| v.iter().map(|&x| fmt(x)).collect::<Vec<_>>().join(", ");
    let one = &r1[0][0];
    file.criteria.push(
        Criterion::new(
            "1 layer: R(1) > 0.8 on every seed",
            format!("R(1) per seed: {}", list(one)),
            one.iter().all(|&r| r > 0.8),
        )
        .with(
            "1 layer min R(1)",
            one.iter().copied().fold(f64::INFINITY, f64::min),
        ),
    );
    file.criteria.push(
        Criterion::new(
            "plain-24: mean R(1) < 0.3",
            format!("mean R(1) {} (per seed {})", fmt(m(0, 3)), list(&r1[0][3])),
            m(0, 3) < 0.3,
        )
        .with("plain-24 mean R(1)", m(0, 3)),
    );
    file.criteria.push(
        Criterion::new(
            "ResNet-50: mean R(1) > 0.5",
            format!("mean R(1) {} (per seed {})", fmt(m(0, 4)), list(&r1[0][4])),
            m(0, 4) > 0.5,
        )
        .with("ResNet-50 mean R(1)", m(0, 4)),
    );
    file.criteria.push(
        Criterion::new(
            "mean R(1) falls from plain-4 to plain-12 to plain-24",
            format!(
                "plain-4 {}, plain-12 {}, plain-24 {}",
                fmt(m(0, 1)),
                fmt(m(0, 2)),
                fmt(m(0, 3))
            ),
            m(0, 1) > m(0, 2) && m(0, 2) > m(0, 3),
        )
        .with("plain-4 mean R(1)", m(0, 1))
        .with("plain-12 mean R(1)", m(0, 2)),
    );
    for (b, variant) in ["with BN", "without BN"].into_iter().enumerate() {
        for (k, net) in nets.iter().enumerate() {
            file.figures.push(
                Figure::lines(
                    format!("{}: df/dx ({variant}, seed {})", net.label(), seeds[0]),
                    "x",
                    "df/dx",
                    vec![LineSeries {
                        name: net.label(),
                        points: xs
                            .iter()
                            .zip(&first_grads[b][k])
                            .map(|(&x, &g)| [x, g])
                            .collect(),
                    }],
                )
                .variant(variant),
            );
        }
        file.figures.push(
            Figure::lines(
                format!("Autocorrelation R(k) of the gradients ({variant}, mean of 5 seeds)"),
                "lag k",
                "R(k)",
                nets.iter()
                    .enumerate()
                    .map(|(k, net)| LineSeries {
                        name: format!("{} (R(1) = {})", net.label(), fmt(m(b, k))),
                        points: acf_mean[b][k]
                            .iter()
                            .enumerate()
                            .map(|(lag, &r)| [lag as f64, r])
                            .collect(),
                    })
                    .collect(),
            )
            .variant(variant),
        );
    }
    let no_bn = nets
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{} {}", n.label(), fmt(m(1, k))))
        .collect::<Vec<_>>()
        .join(", ");
    file.notes = format!(
        "Width {WIDTH}, He init, biases N(0, {BIAS_STD}²), {POINTS} inputs evenly spaced in [-2, 2]; plain nets Linear → BN → ReLU, ResNet-50: stem Linear, 50 blocks BN → ReLU → Linear added to their input, then a Linear head. BN statistics from one training-mode pass over the {POINTS} inputs (momentum 1), then inference mode. R(k) is the sample autocorrelation of df/dx over the inputs; 5 seeds. Without BN the mean R(1) is: {no_bn}. Quick changes nothing (it already takes a few seconds)."
    );
    Ok(file)
}
