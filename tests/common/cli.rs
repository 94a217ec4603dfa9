//! For the tests that drive the `reslab` binary: which binary, a path as an argument, and
//! waiting for a file a running process writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test: `RESLAB_BIN` when set (to run the tests against another build, e.g.
/// the one before a fix), else this build's.
pub fn bin() -> PathBuf {
    std::env::var_os("RESLAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reslab")))
}

/// `reslab train`'s arguments for the small spirals network the file tests train: mlp-res-2 of
/// width 8 (20 ms for 12 steps).
pub const SPIRALS_NET: [&str; 6] = [
    "--preset",
    "mlp-res-2",
    "--width",
    "8",
    "--dataset",
    "spirals",
];

/// [`SPIRALS_NET`] for 12 steps, probed every 4: a small finished run.
pub fn small_run_args() -> Vec<&'static str> {
    let mut args = SPIRALS_NET.to_vec();
    args.extend(["--steps", "12", "--probe-every", "4"]);
    args
}

/// Runs the binary under test with `args` and waits for it.
pub fn reslab(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Everything a finished command printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits up to `secs` seconds for `path` to be a file; whether it became one.
pub fn wait_for(path: &Path, secs: u64) -> bool {
    let start = Instant::now();
    while start.elapsed().as_secs() < secs {
        if path.is_file() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
