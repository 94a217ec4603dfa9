//! `reslab bench`: training throughput of the reference models of
//! `shared/bench/pytorch_reference.py` (same shapes, batch 128, SGD momentum 0.9, random inputs).

use super::{CliError, bad_input, runtime};
use crate::data::{Dataset, Split, Targets, Task};
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
    /// Comma-separated models: mlp-plain-20, mlp-res-20, cifar-plain-20, cifar-resnet-20.
    #[arg(
        long,
        default_value = "mlp-plain-20,mlp-res-20,cifar-plain-20,cifar-resnet-20"
    )]
    pub models: String,
    /// Comma-separated probe intervals (0 = probes off).
    #[arg(long, default_value = "0,1,10")]
    pub probe_every: String,
    /// Timed steps per measurement (0: 50 for MLPs, 8 for CIFAR nets, as the reference script).
    #[arg(long, default_value_t = 0)]
    pub steps: u64,
    /// Samples per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Device.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: super::DeviceArg,
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
                batch_norm: false,
                ..mlp
            },
        )
        .ok(),
        "mlp-res-20" => preset(name, &mlp).ok(),
        "cifar-plain-20" | "cifar-resnet-20" => preset(name, &PresetOptions::default()).ok(),
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
    /// Mean wall time of a step.
    pub ms_per_step: f64,
    /// Timed steps.
    pub steps: u64,
}

/// Measures one model at one probe interval: 3 warm-up steps, then `steps` timed steps.
pub fn measure(
    model: &str,
    probe_every: u64,
    steps: u64,
    batch: usize,
    device: DeviceChoice,
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
        device,
        ..TrainConfig::default()
    };
    // One batch of data, reused every step as in the reference script.
    let data = random_dataset(valid.input, batch, 10, 0);
    let dev = make_device(device, true).map_err(runtime)?;
    let mut session = Session::new(&valid, &config, data, dev).map_err(runtime)?;
    for _ in 0..3 {
        session.train_step();
    }
    let start = Instant::now();
    for _ in 0..steps {
        session.train_step();
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(BenchResult {
        model: model.to_string(),
        probe_every,
        samples_per_sec: (batch as u64 * steps) as f64 / secs,
        ms_per_step: secs * 1e3 / steps as f64,
        steps,
    })
}

/// Runs `reslab bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let device = match args.device {
        super::DeviceArg::Cpu => DeviceChoice::Cpu,
        super::DeviceArg::Gpu => DeviceChoice::Gpu,
    };
    let probes: Vec<u64> = args
        .probe_every
        .split(',')
        .map(|s| s.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| bad_input(format!("--probe-every: {e}")))?;
    if !args.json {
        println!(
            "{:<16} {:>11} {:>12} {:>10}",
            "model", "probe_every", "samples/s", "ms/step"
        );
    }
    for model in args.models.split(',').map(str::trim) {
        let steps = if args.steps > 0 {
            args.steps
        } else if model.starts_with("mlp") {
            50
        } else {
            8
        };
        for &p in &probes {
            let r = measure(model, p, steps, args.batch, device)?;
            if args.json {
                println!("{}", serde_json::to_string(&r).map_err(runtime)?);
            } else {
                println!(
                    "{:<16} {:>11} {:>12.0} {:>10.2}",
                    r.model, r.probe_every, r.samples_per_sec, r.ms_per_step
                );
            }
        }
    }
    Ok(())
}
