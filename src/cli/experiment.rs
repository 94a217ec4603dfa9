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
    for name in &names {
        if experiments::find(name).is_none() {
            return Err(bad_input(format!(
                "unknown experiment \"{name}\"; known experiments: {}",
                experiments::names().join(", ")
            )));
        }
    }
    let mut files = Vec::new();
    for name in &names {
        files.push(run_one(name, &args)?);
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

/// Runs one experiment, prints its verdicts and saves its file.
fn run_one(name: &str, args: &ExperimentArgs) -> Result<experiments::ExperimentFile, CliError> {
    let mut options = ExperimentOptions::new(args.quick, args.seed);
    if std::io::stderr().is_terminal() {
        options.progress = Some(Box::new(|f, msg| {
            eprint!("\r\x1b[K[{:>3.0}%] {msg}", 100.0 * f);
            let _ = std::io::stderr().flush();
        }));
    }
    let file = experiments::run(name, &mut options).map_err(runtime)?;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    crate::say!(
        "{} ({}{} seed {}, {:.1} s)",
        file.title,
        file.name,
        if args.quick { ", quick," } else { "," },
        args.seed,
        file.seconds
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
    let path = file.save(&args.out).map_err(runtime)?;
    crate::say!("saved {}", path.display());
    Ok(file)
}
