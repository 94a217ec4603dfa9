//! The Runs tab: the table of runs ([`crate::ui::runs_table`]) and what its buttons do: rename
//! a run and its file, delete a run file (after the table asked), open, refresh. Renames and
//! deletes of files run as background jobs; a run the lab holds follows its file.

use super::super::runs_table::{RowKey, TableAction, TableCtx};
use super::LabApp;
use super::commands::Command;
use crate::runfile;
use egui::Ui;
use std::path::{Path, PathBuf};

impl LabApp {
    /// Draws the tab (and reads the runs folder the first time).
    pub(super) fn runs_tab(&mut self, ui: &mut Ui) {
        if !self.runs_table.scanned {
            self.rescan_runs();
        }
        let ctx = TableCtx {
            runs: self.registry.runs(),
            shown: self.registry.shown_id(),
            training: self.registry.training().map(|l| l.run_id),
            dir: &self.state.settings.runs_dir,
        };
        let always_save = &mut self.state.always_save_on_close;
        if let Some(a) = self.runs_table.ui(ui, &ctx, always_save) {
            self.commands.push(Command::Table(a));
        }
    }

    /// Reads the runs folder again in the background.
    pub(super) fn rescan_runs(&mut self) {
        self.runs_table.scanned = true;
        self.runs_table.scan += 1;
        let dir = self.state.settings.runs_dir.clone();
        self.jobs.scan_run_files(dir, self.runs_table.scan);
    }

    pub(super) fn table_action(&mut self, a: TableAction) {
        match a {
            TableAction::Run(a) => self.run_action(a),
            TableAction::Open(p) => self.open_path(p),
            TableAction::Rename(key, name) => self.rename_run(key, &name),
            TableAction::Delete(key) => self.delete_run(key),
            TableAction::Refresh => self.rescan_runs(),
        }
    }

    fn rename_run(&mut self, key: RowKey, name: &str) {
        if name.trim().is_empty() {
            self.error("a run needs a name: nothing was renamed");
            return;
        }
        let new = runfile::sanitize_name(name);
        let from = match key {
            RowKey::File(p) => p,
            RowKey::Held(id) => {
                let training = self.registry.is_training_run(id);
                let idle = self.saves.idle();
                let Some(run) = self.registry.get_mut(id) else {
                    return;
                };
                match run.path.clone() {
                    None => {
                        run.file.name = new.clone();
                        self.info(format!("renamed the run to {new} (no file holds it yet)"));
                        return;
                    }
                    Some(_) if training => {
                        self.error("wait until the run ends to rename its file");
                        return;
                    }
                    Some(_) if !idle => {
                        self.error("a save is under way: rename the run when it is done");
                        return;
                    }
                    Some(p) => p,
                }
            }
        };
        let to = runfile::run_path(crate::safe_fs::parent_dir(&from), &new);
        if to == from {
            return;
        }
        if std::fs::symlink_metadata(&to).is_ok() {
            self.error(format!(
                "{}: already exists; choose another name (nothing was renamed)",
                to.display()
            ));
            return;
        }
        self.saves.files_changing.push(from.clone());
        self.jobs.change_run_file(from, Some(to));
    }

    fn delete_run(&mut self, key: RowKey) {
        let path = match key {
            RowKey::File(p) => p,
            RowKey::Held(id) => {
                if self.registry.is_training_run(id) {
                    self.error("stop the run before deleting it");
                    return;
                }
                if !self.saves.idle() {
                    self.error("a save is under way: delete the run when it is done");
                    return;
                }
                let Some(path) = self.registry.get(id).map(|r| r.path.clone()) else {
                    return;
                };
                // The run leaves the lab first, so no save can write its file again.
                self.registry.remove(id);
                match path {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        self.saves.files_changing.push(path.clone());
        self.jobs.change_run_file(path, None);
    }

    /// A rename or delete ended: a run the lab holds follows its file; the table is read again.
    pub(super) fn run_file_changed(
        &mut self,
        from: PathBuf,
        to: Option<PathBuf>,
        result: Result<(), String>,
    ) {
        self.saves.files_changing.retain(|p| *p != from);
        let what = if to.is_some() { "rename" } else { "delete" };
        match (result, to) {
            (Err(e), _) => self.error(format!("could not {what} {}: {e}", from.display())),
            (Ok(()), Some(to)) => {
                let name = runfile::name_of_path(&to);
                for run in self.registry.runs_mut() {
                    if run.path.as_deref() == Some(from.as_path()) {
                        run.path = Some(to.clone());
                        run.file.name = name.clone();
                    }
                }
                self.follow_recent(&from, Some(&to));
                self.info(format!("renamed {} to {}", from.display(), to.display()));
            }
            (Ok(()), None) => {
                self.follow_recent(&from, None);
                self.info(format!("deleted {}", from.display()));
            }
        }
        self.runs_table.forget(&RowKey::File(from));
        self.rescan_runs();
    }

    /// The recent runs on the left follow a renamed or deleted file.
    fn follow_recent(&mut self, from: &Path, to: Option<&Path>) {
        match to {
            Some(to) => {
                for p in &mut self.recent {
                    if p == from {
                        *p = to.to_path_buf();
                    }
                }
            }
            None => self.recent.retain(|p| p != from),
        }
    }
}
