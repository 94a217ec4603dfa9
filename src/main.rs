//! The `reslab` binary: the desktop lab, or a headless subcommand.

use clap::Parser;
use reslab::cli::{Cli, run};

/// burn-flex allocates a fresh buffer for every tensor operation. glibc's malloc hands buffers
/// over 128 KiB to `mmap` and trims the heap on free, so every step of a training run page-faults
/// its activations in again; mimalloc keeps freed pages for reuse (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        // No subcommand: the desktop lab. Ctrl-C, SIGTERM and SIGHUP close it through its usual
        // path (stop the run after its step, save what is unsaved) instead of killing it; `train`
        // and `resume` install the same handler; the other subcommands keep the default.
        reslab::signals::install();
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
