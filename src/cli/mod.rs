//! Command-line interface: `train`, `resume`, `presets`, `eval`, `inspect`, `cp`, `mv`,
//! `export`, `plot`, `sweep`, `serve`, `bench`, `experiment`.
//!
//! Exit codes: 0 success (a run that was stopped or diverged still ends in 0: it was saved),
//! 1 runtime failure, 2 usage or bad input. The reason goes to stderr.

mod bench;
mod drive;
mod eval;
mod experiment;
mod export_torch;
mod files;
mod first_probe;
pub mod out;
mod plot;
mod run;
mod serve;
mod sweep;

use crate::spec::PRESET_EXAMPLES;
use clap::{Parser, Subcommand};
use std::path::Path;

pub use experiment::list_text as experiment_list_text;
pub use run::{MAX_RUN_FILE_NAME, inspect_text, run_file_for};

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
    /// Train a network headless, with a progress bar, and save it as a run file.
    #[command(
        after_help = "Examples:\n  reslab train --preset mlp-res-20 --dataset mnist --steps 400 --out saved_runs/res20\n  reslab train --preset mlp-plain-32 --width 64 --dataset mnist --out saved_runs/plain32\n  reslab train --spec my-net.json --config my-config.json --dataset spirals --out runs/mine\n  reslab train --preset cifar-resnet-20 --dataset cifar10:/data/cifar --device gpu --out runs/c20"
    )]
    Train(run::TrainArgs),
    /// Continue a saved run from its weights; the step counter and history go on.
    #[command(
        after_help = "Examples:\n  reslab resume saved_runs/res20.reslab.json --steps 200\n  reslab resume runs/interrupted.reslab.json"
    )]
    Resume(run::ResumeArgs),
    /// List the preset networks with their parameter counts.
    #[command(after_help = "Example:\n  reslab presets")]
    Presets,
    /// Evaluate a saved run on its validation split or another dataset, shifted or not, with a
    /// choice of how BatchNorm normalises at test time.
    #[command(
        after_help = "Examples:\n  reslab eval runs/red.reslab.json\n  reslab eval runs/red.reslab.json --dataset coloured-mnist:green --norm-mode adabn:8\n  reslab eval runs/red.reslab.json --shift brightness:0.3 --norm-mode batch --batch 4\n  reslab eval runs/res20.reslab.json --shift rotate:15 --predictions preds.csv"
    )]
    Eval(eval::EvalArgs),
    /// Summarise a run file: network table, status, final metrics, last probe.
    #[command(after_help = "Example:\n  reslab inspect saved_runs/mlp-res-20.reslab.json")]
    Inspect(run::InspectArgs),
    /// Copy a run file with its weights and history to another name or folder.
    #[command(
        after_help = "Examples:\n  reslab cp saved_runs/res20.reslab.json backups/\n  reslab cp saved_runs/res20.reslab.json saved_runs/res20-before-resume\n\nA plain `cp` of a run file within its folder is safe too; to another folder the side files\nmust come along, which this does."
    )]
    Cp(files::CopyArgs),
    /// Move a run file with its weights and history to another name or folder.
    #[command(
        after_help = "Examples:\n  reslab mv saved_runs/res20.reslab.json archive/\n  reslab mv runs/tmp.reslab.json runs/keep"
    )]
    Mv(files::CopyArgs),
    /// Export a run's history as CSV, its weights as safetensors, or the run as a PyTorch model.
    #[command(
        after_help = "Examples:\n  reslab export saved_runs/mlp-res-20.reslab.json --csv res20.csv\n  reslab export saved_runs/mlp-res-20.reslab.json --weights res20.safetensors\n  reslab export saved_runs/mlp-res-20-mnist.reslab.json --pytorch res20-torch/"
    )]
    Export(run::ExportArgs),
    /// Draw a run's panels or an experiment's figures as PNG or SVG, with their data as CSV.
    #[command(
        after_help = "Examples:\n  reslab plot saved_runs/mlp-res-20-mnist.reslab.json --out plots/res20.png\n  reslab plot saved_runs/mlp-res-20-mnist.reslab.json --panel gradients --out grad.svg --size 1200x800\n  reslab plot experiments/distribution-shift.reslab-experiment.json --out shift.png"
    )]
    Plot(plot::PlotArgs),
    /// Train a grid of runs over depth (families × depths × seeds, × lrs, × norms); resumable.
    #[command(
        after_help = "Examples:\n  reslab sweep --quick --out saved_runs/depth-sweep\n  reslab sweep --families cifar-plain,cifar-resnet --depths 8,14,20,32 --seeds 2 --dataset mnist --out saved_runs/cnn-depth\n  reslab sweep saved_runs/depth-sweep.reslab-sweep.json     # go on after Ctrl-C\n\nThe runs go into NAME/ beside NAME.reslab-sweep.json; `reslab plot NAME.reslab-sweep.json --out f.png`\ndraws the training loss and validation accuracy against depth."
    )]
    Sweep(sweep::SweepArgs),
    /// Serve this machine's CPU or GPU to `--device remote:ws://…` runs on other machines.
    #[command(
        after_help = "Examples:\n  reslab serve --device gpu              # ws://127.0.0.1:4600, prints a token\n  RESLAB_REMOTE_TOKEN=s3cret reslab serve --device cpu --port 4700\n\nFrom another machine, through an SSH tunnel (the port stays closed to the network):\n  ssh -N -L 4600:127.0.0.1:4600 gpu-box &\n  RESLAB_REMOTE_TOKEN=<token> reslab train --preset cifar-resnet-20 --dataset mnist --device remote:ws://127.0.0.1:4600 --out runs/r20"
    )]
    Serve(serve::ServeArgs),
    /// Measure training throughput of the reference models (see BENCHMARKS.md).
    #[command(
        after_help = "Examples:\n  reslab bench --json\n  reslab bench --models mlp-res-20 --steps 100\n  reslab bench --models cifar-resnet-20 --probe-every 0,1 --repeat 3\n  reslab bench --models cifar-resnet-20 --unfused   # burn's ops layer by layer\n  reslab bench --device gpu --models mlp-res-20\n  reslab bench --first-probe --repeat 3   # how soon the lab's CNN run shows numbers"
    )]
    Bench(bench::BenchArgs),
    /// Reproduce a published figure, check its claims (exit 1 if one fails) and save it.
    #[command(
        after_help = "Examples:\n  reslab experiment --list\n  reslab experiment init-variance --quick\n  reslab experiment degradation --seed 1 --out experiments\n  reslab experiment lesion --control --quick   # its controls: the criteria must reject each\n  reslab experiment --all --control --quick --markdown   # every control, then a README table\n  reslab experiment --all --quick --seed 0 --markdown   # every experiment, then a README table"
    )]
    Experiment(experiment::ExperimentArgs),
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// 1 runtime, 2 usage or bad input.
    pub code: i32,
    /// The message for stderr.
    pub message: String,
}

pub(crate) fn bad_input(message: impl ToString) -> CliError {
    CliError {
        code: 2,
        message: message.to_string(),
    }
}

pub(crate) fn runtime(message: impl ToString) -> CliError {
    CliError {
        code: 1,
        message: message.to_string(),
    }
}

/// A whole number ≥ 0 from the command line; `-1`, `1.5` or `x` are refused with the reason
/// (clap alone would call `-1` an unexpected argument).
pub(crate) fn whole(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| match s.trim().parse::<f64>() {
            Ok(v) if v < 0.0 => format!("{s} is negative; it must be a whole number ≥ 0"),
            Ok(_) => format!("{s} is not a whole number ≥ 0 (up to {})", u64::MAX),
            Err(_) => format!("{s} is not a number; it must be a whole number ≥ 0"),
        })
}

/// [`whole`] for sizes.
pub(crate) fn whole_usize(s: &str) -> Result<usize, String> {
    whole(s).and_then(|v| usize::try_from(v).map_err(|_| format!("{s} is too large")))
}

/// The largest spec or config JSON file the CLI reads.
pub const MAX_INPUT_JSON_BYTES: u64 = 64 << 20;

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<T, CliError> {
    let bytes = crate::safe_fs::read_regular(path, MAX_INPUT_JSON_BYTES)
        .map_err(|e| bad_input(format!("{}: the {what}: {e}", path.display())))?;
    let invalid = |e: String| bad_input(format!("{}: not a valid {what}: {e}", path.display()));
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("it must be a JSON object ({ … })".into()));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        invalid(format!("field {field}: {}", e.into_inner()))
    })
}

/// Runs a subcommand.
pub fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Presets => {
            crate::say!(
                "{:<20} {:>12} {:>16}",
                "preset",
                "parameters",
                "FLOPs/sample"
            );
            for name in PRESET_EXAMPLES {
                let spec = crate::spec::preset(name, &crate::spec::PresetOptions::default())
                    .map_err(runtime)?;
                let v = crate::spec::validate(&spec).map_err(runtime)?;
                crate::say!(
                    "{name:<20} {:>12} {:>16}",
                    v.total_params(),
                    v.total_flops()
                );
            }
            crate::say!(
                "\nAny depth works: mlp-plain-N / mlp-res-N for N ≥ 1, cifar-plain-N / cifar-resnet-N / preact-resnet-N for N = 6n + 2, cnn-N for N ≥ 1."
            );
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
        Command::Train(args) => run::train(args),
        Command::Resume(args) => run::resume(args),
        Command::Inspect(args) => run::inspect(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => run::export(args),
        Command::Plot(args) => plot::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Cp(args) => files::copy(args, false),
        Command::Mv(args) => files::copy(args, true),
        Command::Experiment(args) => experiment::run(args),
    }
}
