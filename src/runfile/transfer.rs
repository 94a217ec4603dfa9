//! Copying or moving a run with its side files (`reslab cp` / `reslab mv`, the lab's Rename):
//! the run is loaded (every hash checked) under the source's lock, saved at the destination
//! with side files of its own under the destination's lock, and for a move the source is
//! removed after (with the side files no other run file names). Nothing is overwritten.

use super::{SaveError, load, lock, remove, save_to};
use std::path::Path;

/// Why a copy or move did not happen (or, for a move, did not finish).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The source cannot be read or the destination is taken: nothing was written.
    #[error("{0}")]
    Input(String),
    /// Writing the copy, or removing the source after it, failed.
    #[error("{0}")]
    Save(#[from] SaveError),
}

/// Copies the run file `from` to the run file `to` (or moves it, with `remove_source`).
pub fn transfer(from: &Path, to: &Path, remove_source: bool) -> Result<(), TransferError> {
    let input = |e: &dyn std::fmt::Display| TransferError::Input(e.to_string());
    if std::fs::symlink_metadata(from).is_err() {
        return Err(TransferError::Input(format!(
            "{}: no such run file",
            from.display()
        )));
    }
    let _from = lock(from).map_err(|e| input(&e))?;
    let loaded = load(from).map_err(|e| input(&e))?;
    let dir = crate::safe_fs::parent_dir(to);
    std::fs::create_dir_all(dir)
        .map_err(|e| TransferError::Input(format!("{}: cannot create it: {e}", dir.display())))?;
    let _to = lock(to).map_err(|e| input(&e))?;
    // Checked under the destination's lock: no other reslab writes it meanwhile.
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(TransferError::Input(format!(
            "{}: already exists; choose another name (nothing was copied)",
            to.display()
        )));
    }
    let mut run = loaded.run;
    run.name = super::name_of_path(to);
    save_to(to, &run, loaded.checkpoint.as_ref())?;
    if remove_source {
        remove(from)?;
    }
    Ok(())
}
