//! The `reslab` binary: the desktop lab, or a headless subcommand.

use clap::Parser;
use reslab::cli::{Cli, run};

/// burn-flex allocates a fresh buffer for every tensor operation. glibc's malloc hands buffers
/// over 128 KiB to `mmap` and trims the heap on free, so every step of a training run page-faults
/// its activations in again; mimalloc keeps freed pages for reuse (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (in the statically linked library; the `mimalloc` crate only
    /// declares it with its `extended` feature).
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same position in its v2 and v3).
const MI_OPTION_PURGE_DELAY: i32 = 15;

fn main() {
    // mimalloc returns freed pages to the OS 1 s after they were freed (v3's default); a CIFAR
    // training step frees and reallocates its activations every few hundred ms and then faults
    // them in again, zeroed by the kernel. Waiting 10 s keeps them for the next step and still
    // gives the memory back once training stops (measured in BENCHMARKS.md).
    // SAFETY: a plain option setter, called before any thread is started.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
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
        reslab::cli::out::complain(&e.message);
        std::process::exit(e.code);
    }
}
