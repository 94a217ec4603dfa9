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
        eprintln!("The desktop lab is not built yet; use a subcommand (see `reslab --help`).");
        std::process::exit(2);
    };
    if let Err(e) = run(command) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
