//! The `reslab` binary: the desktop lab, or a headless subcommand.

use clap::Parser;
use reslab::cli::{Cli, run};

/// burn-flex allocates a fresh buffer for every tensor operation. glibc's malloc hands buffers
/// over 128 KiB to `mmap` and trims the heap on free, so every step of a training run page-faults
/// its activations in again; mimalloc keeps freed pages for reuse (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Ctrl-C, SIGTERM and SIGHUP ask a run to stop after its step and save, in the CLI and the
    // lab alike, instead of killing the process with unsaved work.
    reslab::signals::install();
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
        // No subcommand: the desktop lab.
        if let Err(e) = reslab::ui::run_window() {
            eprintln!(
                "error: {e}\n\
                 The lab needs a display (X11 or Wayland). Everything also runs headless: \
                 see `reslab --help`, e.g.\n  reslab train --preset mlp-res-20 --dataset mnist --steps 400"
            );
            std::process::exit(1);
        }
        return;
    };
    if let Err(e) = run(command) {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
