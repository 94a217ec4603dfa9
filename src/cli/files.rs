//! `cp` and `mv`: a run file with its side files, to another name or folder.
//!
//! Within one folder a plain `cp` or `mv` of a run file is safe too (the copy names the same
//! side files, which stay while a run file names them); to another folder the side files must
//! come along, which is what these commands do: the run is loaded (every hash checked), saved
//! at the destination with side files of its own, and for `mv` the source is removed after.

use super::run::run_file_for;
use super::{CliError, bad_input, runtime};
use crate::runfile;
use std::path::{Path, PathBuf};

/// Arguments of `reslab cp` and `reslab mv`.
#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The run file.
    pub from: PathBuf,
    /// The new run file (`.reslab.json` optional), or a folder to put it in under its own name
    /// (an existing folder, or `dir/`, which is made).
    pub to: PathBuf,
}

/// The destination run file: `to` itself, or the source's file name inside the folder `to`
/// (an existing folder, or a path ending in `/`, which is created).
fn destination(from: &Path, to: &Path) -> Result<PathBuf, CliError> {
    let folder = to.is_dir() || to.to_string_lossy().ends_with('/');
    let to = match from.file_name() {
        Some(name) if folder => to.join(name),
        _ => to.to_path_buf(),
    };
    run_file_for(&to).map_err(bad_input)
}

/// Copies (or, with `remove_source`, moves) a run with its side files.
pub(crate) fn copy(args: CopyArgs, remove_source: bool) -> Result<(), CliError> {
    if std::fs::symlink_metadata(&args.from).is_err() {
        return Err(bad_input(format!(
            "{}: no such run file",
            args.from.display()
        )));
    }
    let to = destination(&args.from, &args.to)?;
    runfile::transfer(&args.from, &to, remove_source).map_err(|e| match e {
        runfile::TransferError::Input(m) => bad_input(m),
        runfile::TransferError::Save(e) => runtime(e),
    })?;
    if remove_source {
        crate::say!("moved {} to {}", args.from.display(), to.display());
    } else {
        crate::say!("copied {} to {}", args.from.display(), to.display());
    }
    Ok(())
}
