//! `reslab experiment NAME`: runs a reproduction, prints each criterion with its measured values
//! and PASS or FAIL, and saves the experiment file.

use super::{CliError, bad_input, runtime};
use crate::experiments::{self, EXPERIMENTS, ExperimentOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Arguments of `reslab experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment (see --list).
    #[arg(required_unless_present_any = ["list", "all"], conflicts_with = "all")]
    pub name: Option<String>,
    /// List the experiments with what each shows.
    #[arg(long)]
    pub list: bool,
    /// Run every experiment in turn.
    #[arg(long)]
    pub all: bool,
    /// Also print the results as a Markdown table (the README's experiments table).
    #[arg(long)]
    pub markdown: bool,
    /// The reduced scale (each experiment under a minute on two cores; see the file's notes).
    #[arg(long)]
    pub quick: bool,
    /// Base seed (experiments over several seeds use S, S+1, ...).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = super::whole)]
    pub seed: u64,
    /// Folder for `<name>.reslab-experiment.json`.
    #[arg(long, default_value = "experiments")]
    pub out: PathBuf,
    /// Run the experiment's controls instead (all of them, or the one named): the same
    /// measurement where the paper predicts no effect; exit 1 unless the criteria reject each.
    #[arg(long, value_name = "CONTROL", num_args = 0..=1, default_missing_value = "")]
    pub control: Option<String>,
    /// Keep each training run in this folder as it ends, and read finished runs back from it:
    /// an interrupted degradation or degradation-cnn run restarts where it stopped.
    #[arg(long, value_name = "DIR")]
    pub keep_runs: Option<PathBuf>,
    /// Where the networks train and are measured: cpu (default), gpu or remote:ws://HOST:PORT
    /// (a `reslab serve`; burn's ops there, as on the GPU: results agree with the CPU's to
    /// rounding, not bit for bit).
    #[arg(long, value_parser = crate::spec::DeviceChoice::parse, default_value = "cpu")]
    pub device: crate::spec::DeviceChoice,
}

/// The text of `reslab experiment --list`.
pub fn list_text() -> String {
    let mut out = String::new();
    for e in EXPERIMENTS {
        out.push_str(&format!("{:<22} {}\n", e.name, e.title));
        out.push_str(&format!("{:<22} {}\n", "", e.citation));
        for line in e.what_to_see {
            out.push_str(&format!("{:<22} - {line}\n", ""));
        }
        out.push_str(&format!("{:<22} {}\n", "", e.protocol.describe()));
        let fingerprint = e.fingerprint();
        let status = match experiments::registered(e.name, &fingerprint) {
            Some(r) => format!("registered {} in docs/PROTOCOLS.md", r.date),
            None => "NOT REGISTERED in docs/PROTOCOLS.md".into(),
        };
        out.push_str(&format!(
            "{:<22} protocol fingerprint {fingerprint} ({status})\n",
            ""
        ));
        for c in e.controls {
            out.push_str(&format!(
                "{:<22} control {}: {} Must fail: \"{}\".\n",
                "", c.name, c.runs, c.rejected_by
            ));
        }
        out.push('\n');
    }
    out
}

pub(crate) fn run(args: ExperimentArgs) -> Result<(), CliError> {
    if args.list {
        crate::cli::out::say(format_args!("{}", list_text()));
        return Ok(());
    }
    let names: Vec<String> = if args.all {
        experiments::names().iter().map(|n| n.to_string()).collect()
    } else {
        vec![args.name.clone().unwrap_or_default()]
    };
    let mut jobs: Vec<(String, Option<String>)> = Vec::new();
    for name in &names {
        let Some(e) = experiments::find(name) else {
            return Err(bad_input(format!(
                "unknown experiment \"{name}\"; known experiments: {}",
                experiments::names().join(", ")
            )));
        };
        match args.control.as_deref() {
            None => jobs.push((name.clone(), None)),
            Some("") => jobs.extend(
                e.controls
                    .iter()
                    .map(|c| (name.clone(), Some(c.name.into()))),
            ),
            Some(c) if e.control(c).is_some() => jobs.push((name.clone(), Some(c.into()))),
            Some(c) => {
                return Err(bad_input(format!(
                    "--control: experiment \"{name}\" has no control \"{c}\"; its controls: {}",
                    e.controls
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let mut files = Vec::new();
    for (name, control) in &jobs {
        files.push(run_one(name, control.as_deref(), &args)?);
    }
    if args.control.is_some() {
        return controls_verdict(&files, args.markdown);
    }
    if args.markdown {
        crate::say!("\n{}", experiments::markdown(&files));
    }
    let (failed, total) = files
        .iter()
        .flat_map(|f| &f.criteria)
        .fold((0, 0), |(f, t), c| (f + usize::from(!c.passed), t + 1));
    if failed > 0 {
        return Err(runtime(format!("{failed} of {total} criteria failed")));
    }
    Ok(())
}

/// Prints whether the criteria rejected every control run; exit 1 when one was not rejected.
fn controls_verdict(files: &[experiments::ExperimentFile], markdown: bool) -> Result<(), CliError> {
    if markdown {
        crate::say!("\n{}", experiments::control_markdown(files));
    }
    let not_rejected: Vec<String> = files
        .iter()
        .filter(|f| f.control_rejected() != Some(true))
        .map(|f| format!("{}/{}", f.name, f.control.as_deref().unwrap_or("")))
        .collect();
    if not_rejected.is_empty() {
        Ok(())
    } else {
        Err(runtime(format!(
            "the criteria did not reject {} control(s): {}",
            not_rejected.len(),
            not_rejected.join(", ")
        )))
    }
}

/// Runs one experiment (or one of its controls), prints its verdicts and saves its file.
fn run_one(
    name: &str,
    control: Option<&str>,
    args: &ExperimentArgs,
) -> Result<experiments::ExperimentFile, CliError> {
    let mut options = ExperimentOptions::new(args.quick, args.seed);
    options.keep_runs = args.keep_runs.clone();
    options.device = args.device.clone();
    if std::io::stderr().is_terminal() {
        options.progress = Some(Box::new(|f, msg| {
            eprint!("\r\x1b[K[{:>3.0}%] {msg}", 100.0 * f);
            let _ = std::io::stderr().flush();
        }));
    }
    let file = experiments::run_as(name, control, &mut options).map_err(runtime)?;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    crate::say!(
        "{} ({}{}{} seed {}, {:.1} s, protocol {})",
        file.title,
        file.name,
        control.map_or(String::new(), |c| format!(", CONTROL {c}")),
        if args.quick { ", quick," } else { "," },
        args.seed,
        file.seconds,
        file.fingerprint
    );
    for c in &file.criteria {
        crate::say!(
            "{}  {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.measured
        );
        if !c.claim.is_empty() {
            crate::say!("      claim: {}", c.claim);
        }
    }
    if file.criteria.is_empty() {
        crate::say!("no criteria (a view, not a test): {}", file.notes);
    }
    if let Some(rejected) = file.control_rejected() {
        crate::say!(
            "CONTROL {}: {}",
            control.unwrap_or(""),
            if rejected {
                "rejected by the criteria, as it must be"
            } else {
                "NOT rejected: the criteria cannot tell this control from the effect"
            }
        );
    }
    let path = file.save(&args.out).map_err(runtime)?;
    crate::say!("saved {}", path.display());
    Ok(file)
}
