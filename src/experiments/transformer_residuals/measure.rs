//! The measurements: how far each layer's tokens are from rank one at initialisation, the
//! gradient of each block's last MLP weight at initialisation, and the training runs.

use super::super::stats::tail_mean;
use super::super::util::{self, Job};
use super::super::{ExperimentError, ExperimentOptions};
use crate::data::Dataset;
use crate::model::{build, input_from_host, probe::token_residual};
use crate::runfile::RunFile;
use crate::spec::{
    DatasetSpec, Duration, LayerSpec, NetSpec, OptimizerSpec, PresetOptions, Schedule, Shape,
    SkipSpec, TrainConfig, VitLayout, probe_names, validate, vit,
};
use burn::tensor::Device;

/// Blocks (or attention layers) of every net.
pub const DEPTH: usize = 12;
/// Digits the rank measurement puts through each net.
pub const RANK_BATCH: usize = 64;
/// Training steps of every run (batch 128).
pub const STEPS: u64 = 300;
/// Steps of the linear warm-up where a role has one (a quarter of the run).
pub const WARMUP: u64 = 75;
/// Batch losses the final training loss averages.
pub const TAIL: usize = 20;

/// A stack whose tokens' rank is measured at initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// Patch embedding, then [`DEPTH`] self-attention layers (with their output maps, no
    /// LayerNorm, no MLP), each added to its input or not.
    Attention {
        /// Whether each layer is added to its input.
        adds: bool,
    },
    /// A transformer preset of [`DEPTH`] blocks.
    Blocks(VitLayout),
}

/// The stacks of the rank figure, with their labels; the first two are the criterion's.
pub const STACKS: [(&str, Stack); 5] = [
    ("attention, no adds", Stack::Attention { adds: false }),
    ("attention + adds", Stack::Attention { adds: true }),
    ("blocks, no adds", Stack::Blocks(VitLayout::Plain)),
    ("pre-LN blocks", Stack::Blocks(VitLayout::PreLn)),
    ("post-LN blocks", Stack::Blocks(VitLayout::PostLn)),
];

/// A training run's role: a net, an Adam rate and a warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Role {
    /// Its label.
    pub name: &'static str,
    /// The preset.
    pub net: &'static str,
    /// Adam's learning rate.
    pub lr: f64,
    /// Linear warm-up steps (0: none).
    pub warmup: u64,
}

const fn role(name: &'static str, net: &'static str, lr: f64, warmup: u64) -> Role {
    Role {
        name,
        net,
        lr,
        warmup,
    }
}

/// The training roles, in the order the criteria read them.
pub const ROLES: [Role; 5] = [
    role("pre-LN, lr 1e-3", "vit-res-12", 1e-3, 0),
    role("no adds, lr 1e-3", "vit-plain-12", 1e-3, 0),
    role("pre-LN, lr 5e-3", "vit-res-12", 5e-3, 0),
    role("post-LN, lr 5e-3", "vit-postln-12", 5e-3, 0),
    role("post-LN, lr 5e-3, warm-up", "vit-postln-12", 5e-3, WARMUP),
];

/// Which nets fill the roles: the experiment's, or a control's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cast {
    /// The stacks, in the roles of [`STACKS`].
    pub stacks: [Stack; 5],
    /// The nets, in the roles of [`ROLES`].
    pub nets: [&'static str; 5],
}

/// The experiment's cast.
pub const CAST: Cast = Cast {
    stacks: [
        STACKS[0].1,
        STACKS[1].1,
        STACKS[2].1,
        STACKS[3].1,
        STACKS[4].1,
    ],
    nets: [
        ROLES[0].net,
        ROLES[1].net,
        ROLES[2].net,
        ROLES[3].net,
        ROLES[4].net,
    ],
};

/// One training run, reduced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoleRun {
    /// The batch loss per step.
    pub losses: Vec<f32>,
    /// Mean of the last [`TAIL`] batch losses; +∞ for a run that diverged.
    pub final_loss: f64,
    /// Validation accuracy (%) at the end.
    pub accuracy: f64,
}

/// What the measurement found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Per stack of [`STACKS`], per seed: the token residual of the embedding (layer 0) and of
    /// each of the [`DEPTH`] layers or blocks.
    pub rank: Vec<Vec<Vec<f64>>>,
    /// Per stack, per seed: each attention layer's mean row entropy (nats, mean over heads) at
    /// initialisation, on the same digits.
    pub entropy: Vec<Vec<Vec<f64>>>,
    /// Per layout (pre-LN, post-LN), per seed: ‖∂L/∂W‖ of each block's last MLP weight at
    /// initialisation (one batch of 128).
    pub grads: Vec<Vec<Vec<f64>>>,
    /// Per role of [`ROLES`], one run per seed.
    pub roles: Vec<Vec<RoleRun>>,
    /// The training runs.
    pub runs: Vec<RunFile>,
}

/// Measures `cast` on `seeds` seeds from the options' base seed, each training run `steps`
/// steps long (the experiment's: [`STEPS`]; tests run fewer).
pub fn measure_cast(
    cast: &Cast,
    seeds: usize,
    steps: u64,
    opts: &mut ExperimentOptions,
) -> Result<Measured, ExperimentError> {
    let (spec, data) = util::mnist()?;
    let device = opts.burn_device(false)?;
    let seeds: Vec<u64> = (0..seeds as u64).map(|k| opts.seed + k).collect();
    let mut m = Measured {
        seeds: seeds.clone(),
        ..Measured::default()
    };
    for stack in cast.stacks {
        let per_seed: Vec<(Vec<f64>, Vec<f64>)> = seeds
            .iter()
            .map(|&s| rank_curve(stack, &spec, (&data, &device), s))
            .collect::<Result<_, _>>()?;
        let (rank, entropy) = per_seed.into_iter().unzip();
        m.rank.push(rank);
        m.entropy.push(entropy);
    }
    for layout in [VitLayout::PreLn, VitLayout::PostLn] {
        m.grads.push(
            seeds
                .iter()
                .map(|&s| init_grads(layout, &spec, (&data, &device), s))
                .collect::<Result<_, _>>()?,
        );
    }
    let total = (ROLES.len() * seeds.len()) as f32;
    for (r, (role, net)) in ROLES.iter().zip(cast.nets).enumerate() {
        let mut runs = Vec::new();
        for (k, &seed) in seeds.iter().enumerate() {
            let done = (r * seeds.len() + k) as f32;
            let span = (done / total, (done + 1.0) / total);
            let job = (role, net, seed, steps);
            let (run, file) = train_role(job, (&spec, &data), span, opts)?;
            runs.push(run);
            m.runs.push(file);
        }
        m.roles.push(runs);
    }
    Ok(m)
}

/// The net of a stack on 1×28×28 digits.
pub fn stack_spec(stack: Stack, dataset: &DatasetSpec) -> NetSpec {
    let opts = PresetOptions::for_dataset(dataset);
    match stack {
        Stack::Blocks(layout) => vit("blocks", DEPTH, layout, &opts),
        Stack::Attention { adds } => attention_stack(adds, &opts),
    }
}

/// Patch embedding, [`DEPTH`] self-attention layers (each added to its input when `adds`),
/// pooling and a head: the preset's embedding and attention layers without LayerNorms or MLPs.
fn attention_stack(adds: bool, opts: &PresetOptions) -> NetSpec {
    let mut net = vit("attention", 1, VitLayout::Plain, opts);
    let template = net.layers[net.index_of("block1.attn").unwrap_or(2)].clone();
    let tail = net.layers.split_off(net.layers.len() - 2);
    net.layers.truncate(1);
    for l in 1..=DEPTH {
        let attn = LayerSpec {
            name: format!("attn{l}"),
            ..template.clone()
        };
        if adds {
            let from = net.layers[net.layers.len() - 1].name.clone();
            net.skips.push(SkipSpec::identity(from, attn.name.clone()));
        }
        net.layers.push(attn);
    }
    net.layers.extend(tail);
    net
}

/// The layers whose outputs a rank curve reads: the embedding, then each attention layer or
/// each block's last layer.
fn curve_layers(stack: Stack, spec: &NetSpec) -> Vec<usize> {
    let last = |b: usize| match stack {
        Stack::Attention { .. } => format!("attn{b}"),
        Stack::Blocks(VitLayout::PostLn) => format!("block{b}.ln2"),
        Stack::Blocks(_) => format!("block{b}.fc2"),
    };
    std::iter::once("embed".to_string())
        .chain((1..=DEPTH).map(last))
        .filter_map(|name| spec.index_of(&name))
        .collect()
}

/// The token residual of the embedding and each layer of `stack` at initialisation (seed
/// `seed`), on the first [`RANK_BATCH`] training digits.
fn rank_curve(
    stack: Stack,
    dataset: &DatasetSpec,
    (data, device): (&Dataset, &Device),
    seed: u64,
) -> Result<(Vec<f64>, Vec<f64>), ExperimentError> {
    let spec = stack_spec(stack, dataset);
    let valid = validate(&spec)?;
    let model = build(&valid, device, seed);
    let numel = data.sample_shape.numel();
    let n = RANK_BATCH.min(data.train.len);
    let x = input_from_host(
        data.train.x[..n * numel].to_vec(),
        n,
        data.sample_shape,
        device,
    );
    let mut outputs = Vec::new();
    let (_, probes) = model.forward_streaming(x, None, &mut |t| outputs.push(t));
    // Each attention layer's probe is its heads' maps (`heads × n × n`), then their mean row
    // entropies (`heads`); the spec says how many heads each layer has.
    let shapes = probe_names(&valid).attention_shape;
    let entropy = (probes.attention.into_iter().zip(shapes))
        .map(|(t, [h, n])| {
            let v = t.into_data().try_into_vec_as::<f32>().unwrap_or_default();
            v.get(h * n * n..)
                .filter(|e| e.len() == h)
                .map_or(f64::NAN, |e| {
                    e.iter().map(|&x| x as f64).sum::<f64>() / h as f64
                })
        })
        .collect();
    let curve = curve_layers(stack, &spec)
        .into_iter()
        .map(|i| {
            let Shape::Tokens(tokens, dim) = valid.layers[i].output else {
                return f64::NAN;
            };
            let values = outputs[i]
                .clone()
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            token_residual(&values, tokens, dim)
        })
        .collect();
    Ok((curve, entropy))
}

/// Tokens of the presets on 28×28 digits (7×7 patches): the entropy figure's ln(tokens).
pub const TOKENS: usize = 16;

/// Adam at `lr` with a linear warm-up over `warmup` steps, batch 128, [`STEPS`] steps, one
/// evaluation at the end; `probe_every` 0 unless asked.
fn adam_config(lr: f64, warmup: u64, seed: u64) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerSpec::adam(),
        lr,
        schedule: Schedule::Constant,
        warmup_steps: warmup,
        batch_size: 128,
        duration: Duration::Steps(STEPS),
        seed,
        probe_every: 0,
        eval_every: STEPS,
        ..util::sgd_config(STEPS, seed)
    }
}

/// ‖∂L/∂W‖ of each block's `fc2.weight` at initialisation: one probed step of the preset.
fn init_grads(
    layout: VitLayout,
    dataset: &DatasetSpec,
    (data, device): (&Dataset, &Device),
    seed: u64,
) -> Result<Vec<f64>, ExperimentError> {
    let spec = stack_spec(Stack::Blocks(layout), dataset);
    let config = TrainConfig {
        probe_every: 1,
        duration: Duration::Steps(1),
        ..adam_config(1e-3, 0, seed)
    };
    let valid = validate(&spec)?;
    let mut s =
        crate::train::Session::new(&valid, &config, data.clone(), device.clone().autodiff())?;
    let Some(probe) = s.train_step().probe else {
        return Ok(vec![f64::NAN; DEPTH]);
    };
    let grads = (1..=DEPTH)
        .map(|b| {
            let name = format!("block{b}.fc2.weight");
            s.layout
                .params
                .iter()
                .position(|p| *p == name)
                .and_then(|k| probe.params.get(k))
                .map_or(f64::NAN, |p| p.grad_norm as f64)
        })
        .collect();
    Ok(grads)
}

/// Trains `net` in `role` on `seed` for `steps` steps.
fn train_role(
    (role, net, seed, steps): (&Role, &str, u64, u64),
    data: (&DatasetSpec, &Dataset),
    span: (f32, f32),
    opts: &mut ExperimentOptions,
) -> Result<(RoleRun, RunFile), ExperimentError> {
    let spec = util::preset_spec(net, &PresetOptions::for_dataset(data.0))?;
    let job = Job {
        name: format!(
            "{}-seed{seed}",
            role.name.replace([',', ' '], "-").replace("--", "-")
        ),
        spec,
        config: TrainConfig {
            duration: Duration::Steps(steps),
            eval_every: steps,
            ..adam_config(role.lr, role.warmup, seed)
        },
        dataset: data.0,
        data: data.1,
        span,
    };
    let t = util::train(&job, opts, None)?;
    let final_loss = if t.diverged {
        f64::INFINITY
    } else {
        tail_mean(&t.losses, TAIL)
    };
    let accuracy = t
        .run
        .history
        .get(crate::metrics::series::VAL_ACCURACY, "")
        .and_then(|s| s.last())
        .map_or(f64::NAN, |a| a as f64 * 100.0);
    let run = RoleRun {
        losses: t.losses,
        final_loss,
        accuracy,
    };
    Ok((run, t.run))
}
