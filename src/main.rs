//! The `reslab` binary: the desktop lab, or a headless subcommand.

use clap::Parser;
use reslab::cli::{Cli, run};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let Some(command) = cli.command else {
        // The desktop window is a separate piece of work that has not landed yet; until it does,
        // the bare command explains what the headless lab can do.
        use clap::CommandFactory;
        println!(
            "reslab: the desktop window is not part of this build yet; everything runs headless.\n\
             Try: reslab train --preset mlp-res-20 --dataset mnist --steps 400 --out saved_runs/my-run\n"
        );
        let _ = Cli::command().print_help();
        return;
    };
    if let Err(e) = run(command) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
