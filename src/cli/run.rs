//! `train`, `resume`, `inspect` and `export`: runs driven from the terminal and saved as run
//! files.

use super::drive::drive;
use super::{CliError, bad_input, read_json, runtime};
use crate::metrics::series;
use crate::runfile::{self, Environment, RunFile, SUFFIX};
use crate::safe_fs;
use crate::spec::{
    DatasetSpec, DeviceChoice, Duration, MAX_STEPS, NetSpec, PresetOptions, TrainConfig, ValidSpec,
    validate,
};
use crate::train::Autosave;
use std::path::{Path, PathBuf};

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
    /// coloured-mnist[:PALETTE], mnist:DIR, fashion:DIR or cifar10:DIR.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// An evaluation set validated on beside the validation split, repeatable (at most 8):
    /// NAME=DATASET and/or NAME=SHIFT[,SHIFT…], e.g. green=coloured-mnist:green,
    /// dim=scale:0.4.
    #[arg(long = "eval-set", value_parser = crate::spec::EvalSet::parse)]
    pub eval_sets: Vec<crate::spec::EvalSet>,
    /// Optimiser steps.
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole)]
    pub steps: Option<u64>,
    /// Seed of initialisation, data split and batch order.
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole)]
    pub seed: Option<u64>,
    /// Learning rate (must be > 0; `--lr -1` is read as a number and refused with the reason).
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Hidden width of MLP presets (of the token-wise MLP in transformer presets).
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole_usize)]
    pub width: Option<usize>,
    /// Build presets without batch normalisation (the same as `--norm none`).
    #[arg(long, conflicts_with = "norm")]
    pub no_bn: bool,
    /// The normalisation in a preset's blocks: none, batch (the default), layer or group:G.
    #[arg(long, value_parser = crate::spec::Norm::parse)]
    pub norm: Option<crate::spec::Norm>,
    /// Probe every N steps (0: never).
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole)]
    pub probe_every: Option<u64>,
    /// Where to train: cpu, gpu or remote:ws://HOST:PORT (a `reslab serve`; its token from
    /// RESLAB_REMOTE_TOKEN).
    #[arg(long, value_parser = DeviceChoice::parse)]
    pub device: Option<DeviceChoice>,
    /// Where to save: a path like `saved_runs/my-run` (the `.reslab.json` suffix is optional).
    #[arg(long)]
    pub out: PathBuf,
    /// Autosave every N steps (0: off).
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole, default_value_t = 500)]
    pub autosave_steps: u64,
    /// Autosave every S seconds (0: off).
    #[arg(long, allow_hyphen_values = true, default_value_t = 60.0)]
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
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole)]
    pub steps: Option<u64>,
    /// Autosave every N steps (0: off).
    #[arg(long, allow_hyphen_values = true, value_parser = super::whole, default_value_t = 500)]
    pub autosave_steps: u64,
    /// Autosave every S seconds (0: off).
    #[arg(long, allow_hyphen_values = true, default_value_t = 60.0)]
    pub autosave_secs: f64,
    /// Where to go on training (default: where it trained): cpu, gpu or remote:ws://HOST:PORT.
    #[arg(long, value_parser = DeviceChoice::parse)]
    pub device: Option<DeviceChoice>,
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
    /// Write the run as a PyTorch model into this folder: model.py, model.safetensors,
    /// preprocess.json, and samples.safetensors with check.py when the run's data can be loaded.
    #[arg(long, value_name = "DIR")]
    pub pytorch: Option<PathBuf>,
}

/// The run file `--out` (or `cp`'s destination) names: `saved_runs/x` and `saved_runs/x.reslab.json` both give
/// `saved_runs/x.reslab.json`, with the name exactly as given. Refused, with the reason, when
/// it names no file (`/`, `.`, `..`, a path ending in `/`, an existing folder), holds a control
/// character, or is too long for a file name.
pub fn run_file_for(out: &Path) -> Result<PathBuf, String> {
    let text = out.to_string_lossy();
    let refuse = |why: &str| Err(format!("{}: {why}", super::out::printable(&text)));
    if text.ends_with('/') || out.is_dir() {
        return refuse("names a folder; name a run file in it, e.g. saved_runs/my-run");
    }
    let Some(file) = out.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return refuse("names no file; name a run file, e.g. saved_runs/my-run");
    };
    let name = file.strip_suffix(SUFFIX).unwrap_or(&file);
    if name.is_empty() || name == "." || name == ".." {
        return refuse("names no file; name a run file, e.g. saved_runs/my-run");
    }
    if name.chars().any(char::is_control) {
        return refuse("holds a control character");
    }
    let full = format!("{name}{SUFFIX}");
    if full.len() > MAX_RUN_FILE_NAME {
        return refuse(&format!(
            "the file name {full:?} has {} bytes, at most {MAX_RUN_FILE_NAME}",
            full.len()
        ));
    }
    Ok(safe_fs::parent_dir(out).join(full))
}

/// The longest run-file name `--out` takes (with `.reslab.json`), leaving room for the lock
/// file's name within the 255 bytes file systems allow.
pub const MAX_RUN_FILE_NAME: usize = 240;

pub(crate) fn train(args: TrainArgs) -> Result<(), CliError> {
    let mut dataset = DatasetSpec::from_name(&args.dataset).map_err(bad_input)?;
    if let Some(s) = args.seed {
        dataset.seed = s;
    }
    dataset.eval_sets = args.eval_sets.clone();
    dataset
        .validate()
        .map_err(|(f, r)| bad_input(format!("--eval-set: {f}: {r}")))?;
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
        config.device = d;
    }
    config.validate().map_err(bad_input)?;
    let spec: NetSpec = match &args.spec {
        Some(p) => read_json(p, "network spec")?,
        None => {
            let opts = PresetOptions {
                width: args.width.unwrap_or(128),
                norm: match (args.no_bn, args.norm) {
                    (true, _) => crate::spec::Norm::None,
                    (false, norm) => norm.unwrap_or_default(),
                },
                ..PresetOptions::for_dataset(&dataset)
            };
            crate::spec::preset(&args.preset, &opts).map_err(bad_input)?
        }
    };
    validate(&spec).map_err(|e| match &args.spec {
        Some(p) => bad_input(format!("{}: {e}", p.display())),
        None => bad_input(e),
    })?;
    let target = run_file_for(&args.out).map_err(|e| bad_input(format!("--out {e}")))?;
    let name = runfile::name_of_path(&target);
    let env = Environment::for_device(&config.device);
    let mut run = RunFile::new(&name, spec, config, dataset, env);
    run.notes = args.notes;
    let autosave = autosave(args.autosave_steps, args.autosave_secs)?;
    drive(run, &target, None, autosave)
}

fn autosave(every_steps: u64, every_secs: f64) -> Result<Autosave, CliError> {
    if !(every_secs.is_finite() && every_secs >= 0.0) {
        return Err(bad_input(format!(
            "--autosave-secs {every_secs}: must be a number of seconds ≥ 0 (0: off)"
        )));
    }
    Ok(Autosave {
        every_steps,
        every_secs,
    })
}

/// The step a resumed run ends at: `--steps N` more, or what the run still has to do; refused
/// past [`MAX_STEPS`] (a sum near `u64::MAX` would wrap around).
fn resume_total(
    file: &Path,
    done: u64,
    config: &TrainConfig,
    steps: Option<u64>,
) -> Result<u64, CliError> {
    let planned = match config.duration {
        Duration::Steps(n) => n,
        Duration::Epochs(_) => done,
    };
    let total = match steps {
        Some(n) => done.checked_add(n).filter(|&t| t <= MAX_STEPS).ok_or_else(|| {
            bad_input(format!(
                "{}: the run is at step {done}; {n} more steps would pass the {MAX_STEPS} steps a run may take",
                file.display()
            ))
        })?,
        None if planned > done => planned,
        None => {
            return Err(bad_input(format!(
                "{}: the run already did its {done} steps; pass --steps N to train N more",
                file.display()
            )));
        }
    };
    Ok(total)
}

pub(crate) fn resume(args: ResumeArgs) -> Result<(), CliError> {
    // Locked before it is read: a run file read before another writer's last save would
    // overwrite that save's steps. `drive` takes the same lock again (re-entrant).
    let _lock = match std::fs::symlink_metadata(&args.file) {
        Ok(_) => Some(runfile::lock(&args.file).map_err(bad_input)?),
        Err(_) => None,
    };
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    let Some(checkpoint) = loaded.checkpoint else {
        return Err(bad_input(format!(
            "{}: the run has no weights to resume from",
            args.file.display()
        )));
    };
    let mut run = loaded.run;
    let total = resume_total(&args.file, checkpoint.step, &run.config, args.steps)?;
    run.config.duration = Duration::Steps(total);
    if let Some(d) = args.device {
        run.environment.backend = d.backend().into();
        run.config.device = d;
    }
    let autosave = autosave(args.autosave_steps, args.autosave_secs)?;
    // The run belongs to the file it was opened from, whatever name is stored inside it.
    drive(run, &args.file, Some(checkpoint), autosave)
}

pub(super) fn summary_line(run: &RunFile) -> String {
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

/// The text `reslab inspect` prints for a run: what it is, then a table of its layers.
pub fn inspect_text(run: &RunFile) -> Result<String, String> {
    let valid = validate(&run.spec).map_err(|e| e.to_string())?;
    let mut out = String::new();
    inspect_header(&mut out, run, &valid);
    layer_table(&mut out, run, &valid);
    Ok(out)
}

/// The run's name, status, network, dataset, optimiser, backend, final values and notes.
fn inspect_header(w: &mut String, run: &RunFile, valid: &ValidSpec) {
    use std::fmt::Write;
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
    for set in &run.dataset.eval_sets {
        let last = |name: &str| run.history.get(name, &set.name).and_then(|s| s.last());
        let _ = writeln!(
            w,
            "eval set   {} ({}): loss {}, accuracy {}",
            set.name,
            set.describe(),
            last(crate::metrics::series::VAL_LOSS).map_or("-".into(), |v| format!("{v:.4}")),
            last(crate::metrics::series::VAL_ACCURACY)
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
        );
    }
    if !run.notes.is_empty() {
        let _ = writeln!(w, "notes      {}", run.notes);
    }
}

/// Per layer: op, output shape, parameters, the skip into it, and the activation std and
/// gradient norm at the latest probe.
fn layer_table(w: &mut String, run: &RunFile, valid: &ValidSpec) {
    use std::fmt::Write;
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
}

pub(crate) fn inspect(args: InspectArgs) -> Result<(), CliError> {
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    let text = inspect_text(&loaded.run).map_err(bad_input)?;
    crate::cli::out::say(format_args!("{text}"));
    let norm = match super::eval::input_norm(&loaded.run) {
        Ok((stats, true)) => format!("{} (recorded)", norm_text(&stats)),
        Ok((stats, false)) => format!(
            "{} (not recorded: a run file from before version 3; recomputed from the dataset)",
            norm_text(&stats)
        ),
        Err(e) => format!("not recorded, and the dataset cannot be read to recompute it: {e}"),
    };
    crate::say!("input norm {norm}");
    Ok(())
}

/// `mean ± std` per input channel or feature (the first 8, then how many more).
fn norm_text(stats: &[(f32, f32)]) -> String {
    let shown: Vec<String> = stats
        .iter()
        .take(8)
        .map(|(m, s)| format!("{m:.4} ± {s:.4}"))
        .collect();
    let more = stats.len().saturating_sub(8);
    format!(
        "{}{}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

pub(crate) fn export(args: ExportArgs) -> Result<(), CliError> {
    if args.csv.is_none() && args.weights.is_none() && args.pytorch.is_none() {
        return Err(bad_input(
            "export needs --csv OUT, --weights OUT or --pytorch DIR (or several)",
        ));
    }
    let loaded = runfile::load(&args.file).map_err(bad_input)?;
    if let Some(dir) = &args.pytorch {
        super::export_torch::export(&loaded, &args.file, dir)?;
    }
    for out in args.csv.iter().chain(&args.weights) {
        refuse_run_data(out, &args.file)?;
    }
    if let Some(out) = &args.csv {
        // Streamed row by row into the temporary file: memory stays flat whatever the history.
        safe_fs::write_atomic_with(out, |w| {
            w.write_all(b"step,series,layer,value\n")?;
            for (key, s) in loaded.run.history.iter() {
                let layer = csv_field(&key.layer);
                let name = csv_field(&key.name);
                for (step, value) in s.steps.iter().zip(&s.values) {
                    writeln!(w, "{step},{name},{layer},{value}")?;
                }
            }
            Ok(())
        })
        .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))?;
        crate::say!("wrote {}", out.display());
    }
    if let Some(out) = &args.weights {
        let Some(ck) = &loaded.checkpoint else {
            return Err(bad_input(format!(
                "{}: the run has no weights",
                args.file.display()
            )));
        };
        let bytes = runfile::encode_weights(ck).map_err(runtime)?;
        safe_fs::write_atomic(out, &bytes)
            .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))?;
        crate::say!("wrote {} ({} tensors)", out.display(), ck.tensors.len());
    }
    Ok(())
}

/// Refuses an export target that is the run file (by any path), any run file, a lock file, or
/// any run's side file ([`runfile::is_run_data`]), or that cannot be written as a plain file
/// (a symlink, a folder): an export never writes over a run.
pub(super) fn refuse_run_data(out: &Path, file: &Path) -> Result<(), CliError> {
    let same_as_input = match (std::fs::metadata(out), std::fs::metadata(file)) {
        (Ok(x), Ok(y)) => safe_fs::same_file(&x, &y),
        _ => false,
    };
    if same_as_input || runfile::is_run_data(out) {
        return Err(bad_input(format!(
            "{}: refusing to write over a run file or one of its side files; name another file",
            out.display()
        )));
    }
    safe_fs::check_target(out)
        .map_err(|e| bad_input(format!("{}: cannot write there: {e}", out.display())))
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
