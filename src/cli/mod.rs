//! Command-line interface: `reslab train`, `reslab presets`, `reslab bench`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or bad input (the reason on stderr).

mod bench;

use crate::spec::{
    DataSource, DatasetSpec, DeviceChoice, Duration, NetSpec, PRESET_EXAMPLES, PresetOptions,
    TrainConfig, validate,
};
use crate::train::{TrainEvent, spawn};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// reslab: why do skip connections and batch normalisation let deep networks train?
#[derive(Debug, Parser)]
#[command(name = "reslab", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a subcommand the desktop lab opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a network headless and print its progress.
    #[command(
        after_help = "Examples:\n  reslab train --preset mlp-res-20 --dataset mnist --steps 400\n  reslab train --preset mlp-plain-32 --dataset mnist --width 64 --lr 0.05\n  reslab train --spec my-net.json --dataset spirals --steps 2000"
    )]
    Train(TrainArgs),
    /// List the preset networks with their parameter counts.
    #[command(after_help = "Example:\n  reslab presets")]
    Presets,
    /// Measure training throughput of the reference models (see BENCHMARKS.md).
    #[command(
        after_help = "Examples:\n  reslab bench --json\n  reslab bench --models mlp-res-20 --steps 100"
    )]
    Bench(bench::BenchArgs),
}

/// Device names on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeviceArg {
    /// burn-flex on the CPU.
    Cpu,
    /// wgpu.
    Gpu,
}

/// Arguments of `reslab train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A preset network, e.g. mlp-res-20 or cifar-resnet-20 (see `reslab presets`).
    #[arg(long, default_value = "mlp-res-20")]
    pub preset: String,
    /// A NetSpec JSON file; overrides --preset.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// A TrainConfig JSON file; flags below override its fields.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// spirals, circles, moons, xor, checkerboard, gaussians, regression, mnist (shipped 10k),
    /// mnist:DIR, fashion:DIR or cifar10:DIR.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Optimiser steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed of initialisation, split and batch order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Hidden width of MLP presets.
    #[arg(long)]
    pub width: Option<usize>,
    /// Build presets without batch normalisation.
    #[arg(long)]
    pub no_bn: bool,
    /// Probe every N steps (0: never).
    #[arg(long)]
    pub probe_every: Option<u64>,
    /// Device.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// 1 runtime, 2 usage or bad input.
    pub code: i32,
    /// The message for stderr.
    pub message: String,
}

fn bad_input(message: impl ToString) -> CliError {
    CliError {
        code: 2,
        message: message.to_string(),
    }
}

fn runtime(message: impl ToString) -> CliError {
    CliError {
        code: 1,
        message: message.to_string(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf, what: &str) -> Result<T, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("{}: cannot read the {what}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| bad_input(format!("{}: not a valid {what}: {e}", path.display())))
}

/// Runs a subcommand.
pub fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Presets => {
            println!(
                "{:<20} {:>12} {:>16}",
                "preset", "parameters", "FLOPs/sample"
            );
            for name in PRESET_EXAMPLES {
                let spec = crate::spec::preset(name, &PresetOptions::default()).map_err(runtime)?;
                let v = validate(&spec).map_err(runtime)?;
                println!(
                    "{name:<20} {:>12} {:>16}",
                    v.total_params(),
                    v.total_flops()
                );
            }
            println!(
                "\nAny depth works: mlp-plain-N / mlp-res-N for N ≥ 1, cifar-plain-N / cifar-resnet-N / preact-resnet-N for N = 6n + 2."
            );
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> Result<(), CliError> {
    let mut dataset = DatasetSpec::from_name(&args.dataset).map_err(bad_input)?;
    if let Some(s) = args.seed {
        dataset.seed = s;
    }
    let (input, outputs) = dataset.expected_io();
    let mut config: TrainConfig = match &args.config {
        Some(p) => read_json(p, "train config")?,
        None => TrainConfig::default(),
    };
    if let Some(n) = args.steps {
        config.duration = Duration::Steps(n);
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(lr) = args.lr {
        config.lr = lr;
    }
    if let Some(p) = args.probe_every {
        config.probe_every = p;
    }
    if let Some(d) = args.device {
        config.device = match d {
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Gpu => DeviceChoice::Gpu,
        };
    }
    let spec: NetSpec = match &args.spec {
        Some(p) => read_json(p, "network spec")?,
        None => {
            let opts = PresetOptions {
                input: Some(input),
                classes: outputs,
                width: args.width.unwrap_or(128),
                batch_norm: !args.no_bn,
                ..PresetOptions::default()
            };
            crate::spec::preset(&args.preset, &opts).map_err(bad_input)?
        }
    };
    let regression = matches!(dataset.source, DataSource::Regression1d { .. });
    let handle = spawn(spec, config, dataset, Box::new(|| {})).map_err(bad_input)?;
    let mut total = 0;
    while let Some(event) = handle.next_timeout(std::time::Duration::from_secs(3600)) {
        match event {
            TrainEvent::Started {
                total_steps,
                device,
                train_samples,
                valid_samples,
                ..
            } => {
                total = total_steps;
                println!(
                    "training {total_steps} steps on {device}: {train_samples} training / {valid_samples} validation samples"
                );
            }
            TrainEvent::Step(r) => {
                if r.step % 50 == 0 || r.step == 1 || r.step == total {
                    println!(
                        "step {:>6}/{total}  loss {:.4}  {}  {:.0} samples/s",
                        r.step,
                        r.loss,
                        if regression {
                            String::new()
                        } else {
                            format!("acc {:.3}", r.accuracy)
                        },
                        r.samples_per_sec
                    );
                }
            }
            TrainEvent::Eval(e) => println!(
                "eval at step {}: validation loss {:.4}{}",
                e.step,
                e.loss,
                if regression {
                    String::new()
                } else {
                    format!(", accuracy {:.2}%", 100.0 * e.accuracy)
                }
            ),
            TrainEvent::Diverged {
                step,
                tensor,
                value,
            } => println!("diverged at step {step}: {tensor} = {value}"),
            TrainEvent::Finished { step, reason } => {
                println!("finished after {step} steps ({reason:?})");
                break;
            }
            TrainEvent::Failed(msg) => return Err(runtime(msg)),
            TrainEvent::Probe(_) => {}
        }
    }
    let (result, _) = handle.join();
    result.map(|_| ()).map_err(runtime)
}
