//! `reslab eval RUN`: a saved run's loss, accuracy and confusion matrix on its validation split
//! or another dataset, optionally shifted at test time, with a chosen way for BatchNorm to
//! normalise, and a CSV of every prediction.
//!
//! The evaluation data are normalised with the statistics of the run's own training split, as
//! the run file records them (version 3; older files get them recomputed from the dataset,
//! split with the run's seed, and the command says so), after the shifts: a red-trained network
//! meets green digits as its training pipeline would show them.

use super::{CliError, bad_input, runtime};
use crate::data::shift::Shift;
use crate::data::{self, Split, Targets, Task};
use crate::runfile;
use crate::spec::{DatasetSpec, validate};
use crate::train::{EvalData, EvalOptions, Evaluation, NormMode, Session, evaluate};
use std::path::{Path, PathBuf};

/// Arguments of `reslab eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The run file (it must have weights).
    pub run: PathBuf,
    /// Evaluate on this dataset's validation split (default: the run's own), e.g.
    /// coloured-mnist:green.
    #[arg(long)]
    pub dataset: Option<String>,
    /// A test-time shift KIND:STRENGTH, applied in the order given (brightness, contrast,
    /// image-contrast, image-gain, tint, scale, noise, impulse, invert, translate, rotate).
    #[arg(long = "shift", value_parser = Shift::parse)]
    pub shifts: Vec<Shift>,
    /// How BatchNorm normalises: running (the saved statistics), batch (each test batch's),
    /// adabn:N (re-estimated on N test batches) or prior:N (Schneider et al.'s mix).
    #[arg(long, default_value = "running", value_parser = parse_mode)]
    pub norm_mode: NormMode,
    /// Samples per test batch.
    #[arg(long, default_value_t = 500, allow_hyphen_values = true, value_parser = super::whole_usize)]
    pub batch: usize,
    /// Write every prediction as CSV: index, label, predicted, loss, then the logits.
    #[arg(long, value_name = "FILE.csv")]
    pub predictions: Option<PathBuf>,
}

/// Parses `running`, `batch`, `adabn:N`, `prior:N`.
pub fn parse_mode(text: &str) -> Result<NormMode, String> {
    let number = |v: &str, what: &str| -> Result<f64, String> {
        v.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("\"{text}\": {what} must be a number ≥ 0"))
    };
    match text.split_once(':') {
        None if text == "running" => Ok(NormMode::Running),
        None if text == "batch" => Ok(NormMode::Batch),
        Some(("adabn", n)) => {
            let b = number(n, "the batches")?;
            if b < 1.0 || b.fract() != 0.0 {
                return Err(format!(
                    "\"{text}\": AdaBN needs a whole number of batches ≥ 1"
                ));
            }
            Ok(NormMode::AdaBn {
                batches: b as usize,
            })
        }
        Some(("prior", n)) => Ok(NormMode::Prior {
            strength: number(n, "the prior's strength")?,
        }),
        _ => Err(format!(
            "unknown normalisation mode \"{text}\"; use running, batch, adabn:N or prior:N"
        )),
    }
}

pub(crate) fn run(args: EvalArgs) -> Result<(), CliError> {
    if args.batch == 0 {
        return Err(bad_input("--batch: must be at least 1"));
    }
    if let Some(out) = &args.predictions {
        super::run::refuse_run_data(out, &args.run)?;
    }
    let loaded = runfile::load(&args.run).map_err(bad_input)?;
    let Some(checkpoint) = loaded.checkpoint else {
        return Err(bad_input(format!(
            "{}: the run has no weights to evaluate",
            args.run.display()
        )));
    };
    let run = loaded.run;
    let trained = data::load_raw(&run.dataset).map_err(bad_input)?;
    let (shape, task) = (trained.sample_shape, trained.task);
    let stats = recorded_norm(&run).unwrap_or_else(|| {
        crate::say!(
            "{}: the run file does not record its input normalisation (before version 3); recomputed from the dataset",
            args.run.display()
        );
        data::norm_stats(&trained.train, shape)
    });
    let (label, mut eval) = match &args.dataset {
        None => (run.dataset.label(), trained),
        Some(name) => {
            let spec =
                DatasetSpec::from_name(name).map_err(|e| bad_input(format!("--dataset: {e}")))?;
            // The run's split seed and fraction: the same samples, seen another way.
            let spec = DatasetSpec {
                seed: run.dataset.seed,
                validation_fraction: run.dataset.validation_fraction,
                ..spec
            };
            (spec.label(), data::load_raw(&spec).map_err(bad_input)?)
        }
    };
    if eval.sample_shape != shape || eval.task != task {
        return Err(bad_input(format!(
            "--dataset: {label} has samples of {} ({:?}) but the run trained on {} ({task:?})",
            eval.sample_shape, eval.task, shape
        )));
    }
    for (k, s) in args.shifts.iter().enumerate() {
        s.apply(
            &mut eval.valid.x,
            eval.sample_shape,
            run.dataset.seed ^ k as u64,
        );
    }
    data::apply_norm(&mut eval.valid, &stats, eval.sample_shape);
    let (valid, task) = (eval.valid.clone(), eval.task);
    let e = lab_outputs(&run, &checkpoint, eval, (args.norm_mode, args.batch))?;
    report(&args, &label, &valid, task, &e);
    if let Some(out) = &args.predictions {
        write_predictions(out, &valid, task, &e)?;
        crate::say!("predictions written to {}", out.display());
    }
    Ok(())
}

/// The run's network with `checkpoint`'s weights, evaluated on `data`'s validation split (already
/// normalised) on the CPU, BatchNorm normalising as `mode` says, `batch` samples at a time; the
/// outputs are kept.
pub(crate) fn lab_outputs(
    run: &runfile::RunFile,
    checkpoint: &crate::metrics::Checkpoint,
    data: data::Dataset,
    (mode, batch): (NormMode, usize),
) -> Result<Evaluation, CliError> {
    let valid = validate(&run.spec).map_err(bad_input)?;
    let device =
        crate::model::make_device(&crate::spec::DeviceChoice::Cpu, true).map_err(runtime)?;
    let dataset = data::Dataset {
        train: data.valid.clone(),
        ..data
    };
    let mut session = Session::new(&valid, &run.config, dataset, device).map_err(runtime)?;
    session.restore(checkpoint).map_err(bad_input)?;
    let opts = EvalOptions {
        mode,
        batch,
        keep_outputs: true,
        ..EvalOptions::default()
    };
    let split = EvalData {
        split: &session.data.valid,
        task: session.data.task,
        shape: session.data.sample_shape,
    };
    Ok(evaluate(&session.model, split, &opts, &session.device))
}

/// The input normalisation a run trained with, `(mean, std)` per channel or feature, and
/// whether the run file recorded it (version 3); older files get it recomputed from their
/// dataset's training split, which the run's seed makes the same split.
pub(crate) fn input_norm(run: &runfile::RunFile) -> Result<(Vec<(f32, f32)>, bool), String> {
    if let Some(stats) = recorded_norm(run) {
        return Ok((stats, true));
    }
    let raw = data::load_raw(&run.dataset).map_err(|e| e.to_string())?;
    Ok((data::norm_stats(&raw.train, raw.sample_shape), false))
}

/// The input normalisation the run file records (version 3), if it does.
fn recorded_norm(run: &runfile::RunFile) -> Option<Vec<(f32, f32)>> {
    let recorded = &run.history.layout.input_norm;
    (!recorded.is_empty()).then(|| recorded.iter().map(|&[m, s]| (m, s)).collect())
}

/// The class each sample's outputs put first.
fn predicted(e: &Evaluation, classes: usize) -> Vec<usize> {
    e.outputs
        .chunks_exact(classes.max(1))
        .map(|o| {
            (0..o.len())
                .max_by(|&a, &b| o[a].total_cmp(&o[b]))
                .unwrap_or(0)
        })
        .collect()
}

fn report(args: &EvalArgs, label: &str, split: &Split, task: Task, e: &Evaluation) {
    let shifts: Vec<String> = args.shifts.iter().map(Shift::label).collect();
    crate::say!(
        "{}: {} samples of {label}{}; BatchNorm at test time: {:?}, batches of {}",
        args.run.display(),
        split.len,
        if shifts.is_empty() {
            String::new()
        } else {
            format!(", shifted by {}", shifts.join(" then "))
        },
        args.norm_mode,
        args.batch
    );
    crate::say!("loss {:.4}", e.loss);
    let (Task::Classification { classes }, Targets::Classes(labels)) = (task, &split.y) else {
        return;
    };
    crate::say!("accuracy {:.2}%", 100.0 * e.accuracy);
    let mut m = vec![vec![0usize; classes]; classes];
    for (&l, p) in labels.iter().zip(predicted(e, classes)) {
        if (l as usize) < classes {
            m[l as usize][p] += 1;
        }
    }
    crate::say!("confusion matrix (rows: true class, columns: predicted)");
    let head: Vec<String> = (0..classes).map(|c| format!("{c:>6}")).collect();
    crate::say!("      {}", head.join(""));
    for (t, row) in m.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|n| format!("{n:>6}")).collect();
        crate::say!("{t:>5} {}", cells.join(""));
    }
}

fn write_predictions(
    out: &Path,
    split: &Split,
    task: Task,
    e: &Evaluation,
) -> Result<(), CliError> {
    let outputs = match task {
        Task::Classification { classes } => classes,
        Task::Regression { outputs } => outputs,
    };
    let mut csv = String::from("index,label,predicted,loss");
    for k in 0..outputs {
        csv.push_str(&format!(",logit_{k}"));
    }
    csv.push('\n');
    let preds = predicted(e, outputs);
    for (i, o) in e.outputs.chunks_exact(outputs.max(1)).enumerate() {
        let (label, loss) = match &split.y {
            Targets::Classes(c) => {
                let l = c[i] as usize;
                let max = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = max + o.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
                (l.to_string(), lse - o.get(l).copied().unwrap_or(f32::NAN))
            }
            Targets::Values(v) => {
                let t = &v[i * outputs..(i + 1) * outputs];
                let mse =
                    t.iter().zip(o).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / outputs as f32;
                (String::new(), mse)
            }
        };
        csv.push_str(&format!("{i},{label},{},{loss}", preds[i]));
        for v in o {
            csv.push_str(&format!(",{v}"));
        }
        csv.push('\n');
    }
    crate::safe_fs::write_atomic(out, csv.as_bytes())
        .map_err(|e| runtime(format!("{}: cannot write: {e}", out.display())))
}
