//! `train`, `resume`, `inspect` and `export`: runs driven from the terminal and saved as run
//! files.

use super::{CliError, DeviceArg, bad_input, read_json, runtime};
use crate::metrics::{Checkpoint, series};
use crate::runfile::{self, Environment, RunFile, RunStatus, SUFFIX};
use crate::spec::{
    DatasetSpec, DeviceChoice, Duration, NetSpec, PresetOptions, TrainConfig, validate,
};
use crate::train::{Autosave, EndReason, RunRequest, TrainEvent, spawn_run};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `reslab train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A preset network, e.g. mlp-res-20 or cifar-resnet-20 (see `reslab presets`).
    #[arg(long, default_value = "mlp-res-20")]
    pub preset: String,
    /// A NetSpec JSON file; replaces --preset.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// A TrainConfig JSON file; the flags below override its fields.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// spirals, circles, moons, xor, checkerboard, gaussians, regression, mnist (shipped 10k),
    /// mnist:DIR, fashion:DIR or cifar10:DIR.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Optimiser steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Seed of initialisation, data split and batch order.
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
    /// Where to save: a path like `saved_runs/my-run` (the `.reslab.json` suffix is optional).
    #[arg(long)]
    pub out: PathBuf,
    /// Autosave every N steps (0: off).
    #[arg(long, default_value_t = 500)]
    pub autosave_steps: u64,
    /// Autosave every S seconds (0: off).
    #[arg(long, default_value_t = 60.0)]
    pub autosave_secs: f64,
    /// Free-text notes stored in the run file.
    #[arg(long, default_value = "")]
    pub notes: String,
}

/// Arguments of `reslab resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run file.
    pub file: PathBuf,
    /// Steps to add (default: the steps the run still has to do).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Autosave every N steps (0: off).
    #[arg(long, default_value_t = 500)]
    pub autosave_steps: u64,
    /// Autosave every S seconds (0: off).
    #[arg(long, default_value_t = 60.0)]
    pub autosave_secs: f64,
}

/// Arguments of `reslab inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The run file.
    pub file: PathBuf,
}

/// Arguments of `reslab export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run file.
    pub file: PathBuf,
    /// Write the history as CSV (long format: step,series,layer,value).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the weights (and optimiser state) as safetensors.
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

/// Splits `--out` into a folder and a run name: `saved_runs/x` and `saved_runs/x.reslab.json`
/// both give (`saved_runs`, `x`).
pub fn run_dir_and_name(out: &Path) -> (PathBuf, String) {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let file = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file.strip_suffix(SUFFIX).unwrap_or(&file).to_string();
    (dir, runfile::sanitize_name(&name))
}

fn device_choice(d: Option<DeviceArg>, default: DeviceChoice) -> DeviceChoice {
    match d {
        Some(DeviceArg::Cpu) => DeviceChoice::Cpu,
        Some(DeviceArg::Gpu) => DeviceChoice::Gpu,
        None => default,
    }
}

pub(crate) fn train(args: TrainArgs) -> Result<(), CliError> {
    let mut dataset = DatasetSpec::from_name(&args.dataset).map_err(bad_input)?;
    if let Some(s) = args.seed {
        dataset.seed = s;
    }
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
    config.device = device_choice(args.device, config.device);
    config.validate().map_err(bad_input)?;
    let spec: NetSpec = match &args.spec {
        Some(p) => read_json(p, "network spec")?,
        None => {
            let opts = PresetOptions {
                width: args.width.unwrap_or(128),
                batch_norm: !args.no_bn,
                ..PresetOptions::for_dataset(&dataset)
            };
            crate::spec::preset(&args.preset, &opts).map_err(bad_input)?
        }
    };
    validate(&spec).map_err(bad_input)?;
    let (dir, name) = run_dir_and_name(&args.out);
    let env = environment(config.device);
    let mut run = RunFile::new(&name, spec, config, dataset, env);
    run.notes = args.notes;
    drive(
        run,
        &dir,
        None,
        Autosave {
            every_steps: args.autosave_steps,
            every_secs: args.autosave_secs,
        },
    )
}

fn environment(device: DeviceChoice) -> Environment {
    Environment {
        backend: match device {
            DeviceChoice::Cpu => "flex".into(),
            DeviceChoice::Gpu => "wgpu".into(),
        },
        device: String::new(),
        reslab_version: env!("CARGO_PKG_VERSION").into(),
    }
}

pub(crate) fn resume(args: ResumeArgs) -> Result<(), CliError> {
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    let Some(checkpoint) = loaded.checkpoint else {
        return Err(bad_input(format!(
            "{}: the run has no weights to resume from",
            args.file.display()
        )));
    };
    let mut run = loaded.run;
    let done = checkpoint.step;
    let data_len_hint = match run.config.duration {
        Duration::Steps(n) => n,
        Duration::Epochs(_) => done,
    };
    let total = match args.steps {
        Some(n) => done + n,
        None if data_len_hint > done => data_len_hint,
        None => {
            return Err(bad_input(format!(
                "{}: the run already did its {done} steps; pass --steps N to train N more",
                args.file.display()
            )));
        }
    };
    run.config.duration = Duration::Steps(total);
    let dir = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    drive(
        run,
        &dir,
        Some(checkpoint),
        Autosave {
            every_steps: args.autosave_steps,
            every_secs: args.autosave_secs,
        },
    )
}

/// Runs a training request to its end, showing progress and saving the run file on every
/// snapshot (autosave) and at the end. Ctrl-C stops the run after the current step and saves it.
fn drive(
    mut run: RunFile,
    dir: &Path,
    resume: Option<Checkpoint>,
    autosave: Autosave,
) -> Result<(), CliError> {
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // A second handler cannot be installed in one process (tests call this twice); the
        // first one keeps working, so the error is ignored.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let request = RunRequest {
        spec: run.spec.clone(),
        config: run.config.clone(),
        dataset: run.dataset.clone(),
        resume,
        autosave,
    };
    let handle = spawn_run(request, Box::new(|| {})).map_err(bad_input)?;
    let tty = std::io::stdout().is_terminal();
    let bar = if tty {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("valid template"),
    );
    let mut history = std::mem::take(&mut run.history);
    history.reindex();
    let mut last_val = f32::NAN;
    let mut last_checkpoint: Option<Box<Checkpoint>> = None;
    let mut stop_sent = false;
    let outcome = loop {
        if interrupted.load(Ordering::SeqCst) && !stop_sent {
            handle.stop();
            stop_sent = true;
            bar.println("stopping after the current step and saving…");
        }
        let Some(event) = handle.next_timeout(std::time::Duration::from_millis(100)) else {
            if handle.is_finished() && handle.events().try_recv().is_err() {
                break Err(runtime("the training thread ended without a result"));
            }
            continue;
        };
        match event {
            TrainEvent::Started {
                layout,
                total_steps,
                device,
                ..
            } => {
                if history.layout.layers.is_empty() {
                    history.layout = layout;
                }
                run.environment.device = device;
                bar.set_length(total_steps);
                bar.set_position(history.last_step);
            }
            TrainEvent::Step(r) => {
                history.push_step(&r);
                bar.set_position(r.step);
                bar.set_message(format!(
                    "loss {:.4}  val acc {}  {:.0} samples/s",
                    r.loss,
                    if last_val.is_nan() {
                        "–".to_string()
                    } else {
                        format!("{:.1}%", 100.0 * last_val)
                    },
                    r.samples_per_sec
                ));
            }
            TrainEvent::Probe(p) => history.push_probe(*p),
            TrainEvent::Boundary(b) => history.push_boundary(*b),
            TrainEvent::Eval(e) => {
                history.push_eval(&e);
                last_val = e.accuracy;
            }
            TrainEvent::Diverged {
                step,
                tensor,
                value,
            } => {
                bar.println(format!("diverged at step {step}: {tensor} = {value}"));
                run.status = RunStatus::Diverged;
            }
            TrainEvent::Snapshot(ck) => {
                run.history = history.clone();
                runfile::save(dir, &run, Some(&ck)).map_err(runtime)?;
                last_checkpoint = Some(ck);
            }
            TrainEvent::Finished { step, reason } => {
                run.status = match reason {
                    EndReason::Completed => RunStatus::Finished,
                    EndReason::Stopped => RunStatus::Stopped,
                    EndReason::Diverged => RunStatus::Diverged,
                };
                break Ok(step);
            }
            TrainEvent::Failed(msg) => {
                run.status = RunStatus::Failed;
                break Err(runtime(msg));
            }
        }
    };
    bar.finish_and_clear();
    // The final save: the last snapshot's weights with the final status and history.
    run.history = history;
    let path = runfile::save(dir, &run, last_checkpoint.as_deref()).map_err(runtime)?;
    let (_, _) = handle.join();
    let step = outcome?;
    let summary = summary_line(&run);
    println!(
        "{} after {step} steps ({:?}); {summary}\nsaved {}",
        match run.status {
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Diverged => "diverged",
            _ => "ended",
        },
        run.status,
        path.display()
    );
    Ok(())
}

fn summary_line(run: &RunFile) -> String {
    let h = &run.history;
    let loss = h.get(series::LOSS, "").and_then(|s| s.last());
    let val = h.get(series::VAL_ACCURACY, "").and_then(|s| s.last());
    let val_loss = h.get(series::VAL_LOSS, "").and_then(|s| s.last());
    let mut parts = Vec::new();
    if let Some(l) = loss {
        parts.push(format!("training loss {l:.4}"));
    }
    if let Some(l) = val_loss {
        parts.push(format!("validation loss {l:.4}"));
    }
    if let Some(a) = val.filter(|a| !a.is_nan()) {
        parts.push(format!("validation accuracy {:.2}%", 100.0 * a));
    }
    parts.join(", ")
}

/// The text `reslab inspect` prints for a run.
pub fn inspect_text(run: &RunFile) -> Result<String, String> {
    use std::fmt::Write;
    let valid = validate(&run.spec).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "run        {}", run.name);
    let _ = writeln!(
        w,
        "status     {:?} after {} steps",
        run.status, run.history.last_step
    );
    let _ = writeln!(
        w,
        "network    {} ({} parameters, {} FLOPs/sample)",
        run.spec.name,
        valid.total_params(),
        valid.total_flops()
    );
    let _ = writeln!(w, "dataset    {}", run.dataset.label());
    let _ = writeln!(
        w,
        "optimiser  {:?}, lr {}, batch {}, seed {}",
        run.config.optimizer, run.config.lr, run.config.batch_size, run.config.seed
    );
    let _ = writeln!(
        w,
        "backend    {} {}",
        run.environment.backend, run.environment.device
    );
    let _ = writeln!(w, "final      {}", summary_line(run));
    if !run.notes.is_empty() {
        let _ = writeln!(w, "notes      {}", run.notes);
    }
    let probe = run.history.latest_probe.as_ref();
    let grad_of = |layer: &str| -> Option<f32> {
        let i = run
            .history
            .layout
            .params
            .iter()
            .position(|p| p == &format!("{layer}.weight"))?;
        probe.and_then(|p| p.params.get(i)).map(|s| s.grad_norm)
    };
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "{:<28} {:<18} {:>12} {:>10}  {:<22} {:>12} {:>12}",
        "layer", "op", "output", "params", "skip from", "act std", "grad norm"
    );
    for (i, (layer, info)) in run.spec.layers.iter().zip(&valid.layers).enumerate() {
        let skip = info
            .skip_in
            .map(|k| {
                let s = &run.spec.skips[k];
                format!("{} ({:?})", s.from, s.shortcut)
                    .chars()
                    .take(22)
                    .collect::<String>()
            })
            .unwrap_or_default();
        let std = probe
            .and_then(|p| p.layers.get(i))
            .map(|a| format!("{:.4}", a.std))
            .unwrap_or_else(|| "–".into());
        let grad = grad_of(&layer.name)
            .map(|g| format!("{g:.3e}"))
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            w,
            "{:<28} {:<18} {:>12} {:>10}  {:<22} {:>12} {:>12}",
            layer.name,
            layer.op_label(),
            info.output.to_string(),
            info.params,
            skip,
            std,
            grad
        );
    }
    if let Some(p) = probe {
        let _ = writeln!(
            w,
            "\n(activation std and gradient norms from the probe at step {})",
            p.step
        );
    }
    Ok(out)
}

pub(crate) fn inspect(args: InspectArgs) -> Result<(), CliError> {
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    let text = inspect_text(&loaded.run).map_err(bad_input)?;
    print!("{text}");
    Ok(())
}

pub(crate) fn export(args: ExportArgs) -> Result<(), CliError> {
    if args.csv.is_none() && args.weights.is_none() {
        return Err(bad_input(
            "export needs --csv OUT or --weights OUT (or both)",
        ));
    }
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    if let Some(out) = &args.csv {
        let mut text = String::from("step,series,layer,value\n");
        for (key, s) in loaded.run.history.iter() {
            for (step, value) in s.steps.iter().zip(&s.values) {
                text.push_str(&format!(
                    "{step},{},{},{value}\n",
                    key.name,
                    csv_field(&key.layer)
                ));
            }
        }
        runfile::write_atomic(out, text.as_bytes())
            .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))?;
        println!("wrote {}", out.display());
    }
    if let Some(out) = &args.weights {
        let Some(ck) = &loaded.checkpoint else {
            return Err(bad_input(format!(
                "{}: the run has no weights",
                args.file.display()
            )));
        };
        let bytes = runfile::encode_weights(ck).map_err(runtime)?;
        runfile::write_atomic(out, &bytes)
            .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))?;
        println!("wrote {} ({} tensors)", out.display(), ck.tensors.len());
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains(',') || s.contains('"') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
