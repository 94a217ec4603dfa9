//! `reslab experiment NAME`: runs a reproduction, prints each criterion with its measured values
//! and PASS or FAIL, and saves the experiment file.

use super::{CliError, bad_input, runtime};
use crate::experiments::{self, EXPERIMENTS, ExperimentOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Arguments of `reslab experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment: init-variance, shattered-gradients, degradation, lesion, loss-landscape,
    /// bn-smoothness (see --list).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the experiments with what each shows.
    #[arg(long)]
    pub list: bool,
    /// The reduced scale (each experiment under a minute on two cores; see the file's notes).
    #[arg(long)]
    pub quick: bool,
    /// Base seed (experiments over several seeds use S, S+1, ...).
    #[arg(long, default_value_t = 0)]
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
        out.push('\n');
    }
    out
}

pub(crate) fn run(args: ExperimentArgs) -> Result<(), CliError> {
    if args.list {
        print!("{}", list_text());
        return Ok(());
    }
    let name = args.name.unwrap_or_default();
    if experiments::find(&name).is_none() {
        return Err(bad_input(format!(
            "unknown experiment \"{name}\"; known experiments: {}",
            experiments::names().join(", ")
        )));
    }
    let mut options = ExperimentOptions::new(args.quick, args.seed);
    if std::io::stderr().is_terminal() {
        options.progress = Some(Box::new(|f, msg| {
            eprint!("\r\x1b[K[{:>3.0}%] {msg}", 100.0 * f);
            let _ = std::io::stderr().flush();
        }));
    }
    let file = experiments::run(&name, &mut options).map_err(runtime)?;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
    println!(
        "{} ({}{} seed {}, {:.1} s)",
        file.title,
        file.name,
        if args.quick { ", quick," } else { "," },
        args.seed,
        file.seconds
    );
    for c in &file.criteria {
        println!(
            "{}  {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.measured
        );
    }
    let path = file.save(&args.out).map_err(runtime)?;
    println!("saved {}", path.display());
    let failed = file.criteria.iter().filter(|c| !c.passed).count();
    if failed > 0 {
        return Err(runtime(format!(
            "{failed} of {} criteria failed",
            file.criteria.len()
        )));
    }
    Ok(())
}
