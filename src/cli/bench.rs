//! `reslab bench`: training throughput of the reference models of
//! `scripts/pytorch/bench_models.py` (same shapes, batch 128, SGD momentum 0.9, random inputs).

use super::{CliError, bad_input, runtime};
use crate::data::{Dataset, Split, Targets, Task};
use crate::experiments::stats::median;
use crate::model::make_device;
use crate::spec::{
    DeviceChoice, Duration, InputShape, NetSpec, OptimizerSpec, PresetOptions, Shape, TrainConfig,
    preset, validate,
};
use crate::train::Session;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Arguments of `reslab bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Comma-separated models: mlp-plain-20, mlp-res-20, cifar-plain-20, cifar-resnet-20,
    /// cifar-resnet-20-gn, cifar-resnet-20-ln, vit-res-12, vit-plain-12.
    #[arg(
        long,
        default_value = "mlp-plain-20,mlp-res-20,cifar-plain-20,cifar-resnet-20"
    )]
    pub models: String,
    /// Comma-separated probe intervals (0 = probes off).
    #[arg(long, default_value = "0,1,10")]
    pub probe_every: String,
    /// Timed steps per measurement (0: 50 for MLPs and transformers, 8 for CIFAR nets, as the
    /// reference script).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = super::whole)]
    pub steps: u64,
    /// Samples per step.
    #[arg(long, default_value_t = 128, allow_hyphen_values = true, value_parser = super::whole_usize)]
    pub batch: usize,
    /// Device: cpu, gpu or remote:ws://HOST:PORT (a `reslab serve`).
    #[arg(long, value_parser = DeviceChoice::parse, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Repetitions: each round measures every probe interval of a model in turn, and the median
    /// over rounds is reported. On a shared machine whose speed drifts by 10–20 %, interleaving
    /// is what makes the probe intervals comparable.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Run every layer through burn's own operations (no fused blocks), to compare with the
    /// fused path.
    #[arg(long)]
    pub unfused: bool,
    /// Instead of throughput: how soon the lab's CNN run (cifar-resnet-20 on the shipped
    /// MNIST-10k with the lab's default settings) reports its start, first step and first
    /// probe, `--repeat` times.
    #[arg(long)]
    pub first_probe: bool,
}

/// The reference script's network for a model name.
pub fn reference_spec(name: &str) -> Option<NetSpec> {
    let mlp = PresetOptions {
        input: Some(InputShape::Flat { features: 784 }),
        width: 128,
        ..PresetOptions::default()
    };
    match name {
        // The reference's plain MLP has no batch norm; its residual one has.
        "mlp-plain-20" => preset(
            name,
            &PresetOptions {
                norm: crate::spec::Norm::None,
                ..mlp
            },
        )
        .ok(),
        "mlp-res-20" => preset(name, &mlp).ok(),
        "cifar-plain-20" | "cifar-resnet-20" => preset(name, &PresetOptions::default()).ok(),
        // GroupNorm with 8 groups or LayerNorm (one group) in place of every block's BN, as the
        // PyTorch script's; the two projection shortcuts keep their BN (PyTorch's use the norm).
        "cifar-resnet-20-gn" | "cifar-resnet-20-ln" => {
            let norm = if name.ends_with("gn") {
                crate::spec::Norm::Group { groups: 8 }
            } else {
                crate::spec::Norm::Layer
            };
            preset(
                "cifar-resnet-20",
                &PresetOptions {
                    norm,
                    ..PresetOptions::default()
                },
            )
            .ok()
            .map(|mut s| {
                s.name = name.into();
                s
            })
        }
        // 7×7 patches of 1×28×28 inputs: 16 tokens of 64, 4 heads, MLP 128, GELU, as the
        // reference's (its position embedding starts at zero, the lab's at N(0, 0.02²)).
        "vit-res-12" | "vit-plain-12" => preset(name, &PresetOptions::default()).ok(),
        _ => None,
    }
}

/// A dataset of `n` random N(0, 1) samples with random labels.
pub fn random_dataset(shape: Shape, n: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let numel = shape.numel();
    let x: Vec<f32> = (0..n * numel)
        .map(|_| crate::rng::normal(&mut rng))
        .collect();
    let y: Vec<u32> = (0..n)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    let split = Split {
        x,
        y: Targets::Classes(y),
        len: n,
    };
    Dataset {
        name: "random".into(),
        sample_shape: shape,
        task: Task::Classification { classes },
        valid: split.clone(),
        train: split,
        input_norm: Vec::new(),
        eval_sets: Vec::new(),
    }
}

/// One measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// Model name.
    pub model: String,
    /// Probe interval (0 = off).
    pub probe_every: u64,
    /// Training throughput.
    pub samples_per_sec: f64,
    /// Arithmetic rate: [`BenchResult::samples_per_sec`] × the training FLOPs of a sample
    /// ([`train_flops`]), in GFLOP/s.
    pub gflops: f64,
    /// Mean wall time of a step.
    pub ms_per_step: f64,
    /// Timed steps.
    pub steps: u64,
    /// Median wall time of the timed steps that recorded probes (`None` if none did).
    pub probe_step_ms: Option<f64>,
    /// Median wall time of the timed steps without probes (`None` if every step probed).
    pub plain_step_ms: Option<f64>,
}

impl BenchResult {
    /// The probe cost averaged over the interval, from this run alone: `(probe step − plain
    /// step) / (interval × plain step)`. Both medians come from the same run, interleaved step
    /// by step, so the machine's drift cancels out. `None` unless the run had both kinds.
    pub fn amortized_cost(&self) -> Option<f64> {
        let (p, q) = (self.probe_step_ms?, self.plain_step_ms?);
        (self.probe_every > 0).then(|| (p - q) / (self.probe_every as f64 * q))
    }
}

/// The measurements of one (model, probe interval) over all repetitions.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchSummary {
    /// Model name.
    pub model: String,
    /// Probe interval (0 = off).
    pub probe_every: u64,
    /// Median throughput over the repetitions.
    pub samples_per_sec: f64,
    /// The median throughput's arithmetic rate in GFLOP/s (see [`BenchResult::gflops`]).
    pub gflops: f64,
    /// Median wall time of a step.
    pub ms_per_step: f64,
    /// Timed steps per repetition.
    pub steps: u64,
    /// Throughput of each repetition, in order.
    pub runs: Vec<f64>,
    /// The median over rounds of the extra time per step against probes off in the same round
    /// (`0.05` = 5 % slower); `None` for probes off or when 0 was not measured.
    pub cost_vs_off: Option<f64>,
    /// The median over rounds of [`BenchResult::amortized_cost`]: for an interval above 1, the
    /// probe cost measured within each run; `None` otherwise.
    pub amortized_cost: Option<f64>,
}

/// Summarises `rounds[r][k]` (round r, probe interval `probes[k]`) per probe interval.
pub fn summarise(model: &str, probes: &[u64], rounds: &[Vec<BenchResult>]) -> Vec<BenchSummary> {
    let off = probes.iter().position(|&p| p == 0);
    probes
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let runs: Vec<f64> = rounds.iter().map(|r| r[k].samples_per_sec).collect();
            let ms: Vec<f64> = rounds.iter().map(|r| r[k].ms_per_step).collect();
            let cost_vs_off = off.filter(|&o| o != k).map(|o| {
                let costs: Vec<f64> = rounds
                    .iter()
                    .map(|r| r[k].ms_per_step / r[o].ms_per_step - 1.0)
                    .collect();
                median(&costs)
            });
            let amortized: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r[k].amortized_cost())
                .collect();
            let per_sample = rounds
                .first()
                .map_or(0.0, |r| r[k].gflops / r[k].samples_per_sec.max(1e-12));
            BenchSummary {
                amortized_cost: (!amortized.is_empty()).then(|| median(&amortized)),
                model: model.to_string(),
                probe_every: p,
                samples_per_sec: median(&runs),
                gflops: median(&runs) * per_sample,
                ms_per_step: median(&ms),
                steps: rounds.first().map_or(0, |r| r[k].steps),
                runs,
                cost_vs_off,
            }
        })
        .collect()
}

/// The FLOPs of one sample's training step: the forward pass (a multiply-add counts as 2, as
/// `reslab presets` counts) and twice that for the backward pass (the input and the weight
/// gradient of every product), the convention of the "GFLOP/s" and of most papers.
pub fn train_flops(spec: &crate::spec::ValidSpec) -> f64 {
    3.0 * spec.total_flops() as f64
}

/// Measures one model at one probe interval: 3 warm-up steps, then `steps` timed steps;
/// `fused` false runs burn's own operations layer by layer.
pub fn measure(
    model: &str,
    probe_every: u64,
    steps: u64,
    batch: usize,
    device: &DeviceChoice,
    fused: bool,
) -> Result<BenchResult, CliError> {
    crate::train::drive::guarded(device, || {
        measure_on(model, probe_every, steps, batch, device, fused)
    })
    .map_err(runtime)?
}

fn measure_on(
    model: &str,
    probe_every: u64,
    steps: u64,
    batch: usize,
    device: &DeviceChoice,
    fused: bool,
) -> Result<BenchResult, CliError> {
    let spec = reference_spec(model)
        .ok_or_else(|| bad_input(format!("unknown bench model \"{model}\"")))?;
    let valid = validate(&spec).map_err(runtime)?;
    let config = TrainConfig {
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        lr: 0.05,
        batch_size: batch,
        duration: Duration::Steps(steps + 3),
        probe_every,
        eval_every: 0,
        device: device.clone(),
        ..TrainConfig::default()
    };
    // One batch of data, reused every step as in the reference script.
    let data = random_dataset(valid.input, batch, 10, 0);
    let dev = make_device(device, true).map_err(runtime)?;
    let mut session = Session::new(&valid, &config, data, dev).map_err(runtime)?;
    session.model.fused_blocks = fused;
    for _ in 0..3 {
        session.train_step();
    }
    let (mut probe_ms, mut plain_ms) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..steps {
        let t = Instant::now();
        let probed = session.train_step().probe.is_some();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if probed {
            probe_ms.push(ms);
        } else {
            plain_ms.push(ms);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let med = |v: &[f64]| (!v.is_empty()).then(|| median(v));
    let samples_per_sec = (batch as u64 * steps) as f64 / secs;
    Ok(BenchResult {
        model: model.to_string(),
        probe_every,
        samples_per_sec,
        gflops: samples_per_sec * train_flops(&valid) / 1e9,
        ms_per_step: secs * 1e3 / steps as f64,
        steps,
        probe_step_ms: med(&probe_ms),
        plain_step_ms: med(&plain_ms),
    })
}

/// Runs `reslab bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if args.first_probe {
        return super::first_probe::run(args.repeat);
    }
    let device = &args.device;
    let probes: Vec<u64> = args
        .probe_every
        .split(',')
        .map(|s| s.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| bad_input(format!("--probe-every: {e}")))?;
    if !args.json {
        crate::say!(
            "{:<16} {:>11} {:>12} {:>8} {:>10} {:>17} {:>12} {:>10}",
            "model",
            "probe_every",
            "samples/s",
            "GFLOP/s",
            "ms/step",
            "range",
            "cost vs off",
            "in-run"
        );
    }
    for model in args.models.split(',').map(str::trim) {
        let steps = if args.steps > 0 {
            args.steps
        } else if model.starts_with("mlp") || model.starts_with("vit") {
            50
        } else {
            8
        };
        let mut rounds = Vec::new();
        for _ in 0..args.repeat {
            let round = probes
                .iter()
                .map(|&p| measure(model, p, steps, args.batch, device, !args.unfused))
                .collect::<Result<Vec<_>, _>>()?;
            rounds.push(round);
        }
        for r in summarise(model, &probes, &rounds) {
            if args.json {
                crate::say!("{}", serde_json::to_string(&r).map_err(runtime)?);
            } else {
                let lo = r.runs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let pct = |c: Option<f64>| {
                    c.map_or_else(|| "–".to_string(), |c| format!("{:+.1} %", 100.0 * c))
                };
                crate::say!(
                    "{:<16} {:>11} {:>12.0} {:>8.1} {:>10.2} {:>17} {:>12} {:>10}",
                    r.model,
                    r.probe_every,
                    r.samples_per_sec,
                    r.gflops,
                    r.ms_per_step,
                    format!("{lo:.0}–{hi:.0}"),
                    pct(r.cost_vs_off),
                    pct(r.amortized_cost),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(probe_every: u64, ms: f64) -> BenchResult {
        BenchResult {
            model: "m".into(),
            probe_every,
            samples_per_sec: 128.0 / (ms / 1e3),
            gflops: 0.5 * 128.0 / (ms / 1e3),
            ms_per_step: ms,
            steps: 10,
            probe_step_ms: None,
            plain_step_ms: None,
        }
    }

    /// Three rounds of (off, every step): the medians, and the cost taken per round before the
    /// median (the slow second round does not count as probe cost).
    #[test]
    fn summaries_take_medians_and_the_per_round_cost() {
        let rounds = vec![
            vec![result(0, 8.0), result(1, 10.0)],
            vec![result(0, 16.0), result(1, 17.6)],
            vec![result(0, 10.0), result(1, 13.0)],
        ];
        let s = summarise("m", &[0, 1], &rounds);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ms_per_step, 10.0);
        assert_eq!(s[1].ms_per_step, 13.0);
        assert_eq!(s[0].samples_per_sec, 128.0 / 0.010);
        // 0.5 GFLOP per sample in `result`: the rate follows the median throughput.
        assert!((s[0].gflops - 0.5 * 128.0 / 0.010).abs() < 1e-9);
        assert_eq!(s[1].runs.len(), 3);
        assert_eq!(s[0].cost_vs_off, None);
        // Per-round costs 25 %, 10 %, 30 %: the median is 25 %.
        let c = s[1].cost_vs_off.unwrap();
        assert!((c - 0.25).abs() < 1e-12, "{c}");
        // Without probes off in the list there is nothing to compare with.
        let only = summarise("m", &[1], &[vec![result(1, 10.0)]]);
        assert_eq!(only[0].cost_vs_off, None);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(s[1].amortized_cost, None);
    }

    /// Probe steps of 10 ms among plain steps of 8 ms, every 10 steps: the probe cost spread
    /// over the interval is 2 / (10 · 8) = 2.5 %.
    #[test]
    fn the_in_run_cost_spreads_the_probe_step_over_the_interval() {
        let mut r = result(10, 8.2);
        r.probe_step_ms = Some(10.0);
        r.plain_step_ms = Some(8.0);
        assert!((r.amortized_cost().unwrap() - 0.025).abs() < 1e-12);
        let s = summarise("m", &[10], &[vec![r.clone()], vec![r]]);
        assert!((s[0].amortized_cost.unwrap() - 0.025).abs() < 1e-12);
        // Probes every step: no plain step to compare with inside the run.
        let mut every = result(1, 10.0);
        every.probe_step_ms = Some(10.0);
        assert_eq!(every.amortized_cost(), None);
    }
}
