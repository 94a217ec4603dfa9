//! The Runs tab's table: every run the lab holds and every run file in the runs folder, one row
//! each (name, status, steps, the last loss and accuracy, when it was saved, where it ran), with
//! what can be done to it (show, compare, save, rename, discard, remove, delete). The table
//! draws and says what was asked; the app does it (`ui/app/runs_tab.rs`).

use super::plot::run_swatch;
use super::runs::{RunAction, ShownRun, date_time};
use crate::numbers::sig;
use crate::runfile::{self, RunSummary};
use egui::{RichText, Ui};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Run files the scan reads at most (the newest).
pub const SCAN_MAX: usize = 200;

/// A run file found in the runs folder.
#[derive(Clone, Debug)]
pub struct FileRow {
    /// The run file.
    pub path: PathBuf,
    /// When it was last written.
    pub modified: Option<SystemTime>,
    /// Its summary, or why it cannot be read.
    pub summary: Result<RunSummary, String>,
}

/// A row: a run the lab holds (by id) or a run file it does not.
#[derive(Clone, Debug, PartialEq)]
pub enum RowKey {
    /// A run the lab holds.
    Held(u64),
    /// A run file only.
    File(PathBuf),
}

/// What the user asked for in the table.
#[derive(Clone, Debug, PartialEq)]
pub enum TableAction {
    /// Something of a run the lab holds.
    Run(RunAction),
    /// Open a run file into the lab.
    Open(PathBuf),
    /// Give a run a new name (its file too).
    Rename(RowKey, String),
    /// Delete a run's file (after the user confirmed).
    Delete(RowKey),
    /// Read the runs folder again.
    Refresh,
}

/// What the table draws from.
pub struct TableCtx<'a> {
    /// The runs the lab holds.
    pub runs: &'a [ShownRun],
    /// The run the panels show.
    pub shown: Option<u64>,
    /// The run training now.
    pub training: Option<u64>,
    /// The runs folder.
    pub dir: &'a Path,
}

/// The table's state: the last scan, a rename being typed, a delete being confirmed.
#[derive(Default)]
pub struct RunsTable {
    /// The run files of the last scan.
    pub files: Vec<FileRow>,
    /// A scan was asked for (the tab asks once when first shown, then on Refresh and changes).
    pub scanned: bool,
    /// The number of the last scan asked for; only its result is taken.
    pub scan: u64,
    renaming: Option<(RowKey, String)>,
    deleting: Option<(RowKey, String)>,
}

/// Lists the run files in `dir` (newest first, at most [`SCAN_MAX`]) with their summaries; the
/// weights are not read.
pub fn scan(dir: &Path) -> Vec<FileRow> {
    super::jobs::run_files_newest_first(dir)
        .into_iter()
        .take(SCAN_MAX)
        .map(|path| FileRow {
            modified: std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            summary: runfile::load_without_weights(&path)
                .map(|r| runfile::summarize(&r))
                .map_err(|e| e.to_string()),
            path,
        })
        .collect()
}

/// One row's cells, whichever kind it is.
struct Cells {
    key: RowKey,
    summary: Result<RunSummary, String>,
    status: String,
    saved: String,
    path: Option<PathBuf>,
}

impl RunsTable {
    /// Draws the table and the closing setting (`always_save`); returns what the user asked
    /// for.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        ctx: &TableCtx,
        always_save: &mut bool,
    ) -> Option<TableAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            ui.heading("Runs");
            if ui
                .button("Refresh")
                .on_hover_text("read the runs folder again")
                .clicked()
            {
                action = Some(TableAction::Refresh);
            }
            ui.label(format!("runs folder: {}", ctx.dir.display()));
        });
        ui.label(
            "The runs the lab holds (with their colour in Compare), then the other run files of \
             the runs folder. Click a name to show the run in the panels.",
        );
        ui.checkbox(
            always_save,
            "closing the window saves unsaved runs without asking",
        );
        let held = self.held_rows(ctx);
        let files = self.file_rows(ctx);
        egui::ScrollArea::both()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                egui::Grid::new("runs-table")
                    .striped(true)
                    .num_columns(10)
                    .show(ui, |ui| {
                        header(ui);
                        for (cells, run) in
                            held.into_iter().chain(files.into_iter().map(|c| (c, None)))
                        {
                            if let Some(a) = self.row(ui, ctx, &cells, run) {
                                action = Some(a);
                            }
                            ui.end_row();
                        }
                    });
            });
        if let Some(a) = self.confirm_delete(ui) {
            action = Some(a);
        }
        action
    }

    fn held_rows<'a>(&self, ctx: &TableCtx<'a>) -> Vec<(Cells, Option<&'a ShownRun>)> {
        ctx.runs
            .iter()
            .map(|r| {
                let training = ctx.training == Some(r.id);
                let modified = r.path.as_ref().and_then(|p| self.modified(p));
                let saved = match (&r.path, r.dirty, modified) {
                    (None, _, _) => "not saved".to_string(),
                    (Some(_), true, Some(t)) => format!("{} (changed since)", date_time(t)),
                    (Some(_), _, Some(t)) => date_time(t),
                    (Some(_), _, None) => "saved".to_string(),
                };
                let cells = Cells {
                    key: RowKey::Held(r.id),
                    summary: Ok(runfile::summarize(&r.file)),
                    status: if training {
                        "training".into()
                    } else {
                        r.file.status.word().to_string()
                    },
                    saved,
                    path: r.path.clone(),
                };
                (cells, Some(r))
            })
            .collect()
    }

    fn file_rows(&self, ctx: &TableCtx) -> Vec<Cells> {
        let held = |p: &Path| ctx.runs.iter().any(|r| r.path.as_deref() == Some(p));
        self.files
            .iter()
            .filter(|f| !held(&f.path))
            .map(|f| Cells {
                key: RowKey::File(f.path.clone()),
                status: match &f.summary {
                    Ok(s) => s.status.word().to_string(),
                    Err(_) => "unreadable".into(),
                },
                summary: f.summary.clone(),
                saved: f.modified.map_or_else(String::new, date_time),
                path: Some(f.path.clone()),
            })
            .collect()
    }

    /// When the scan saw `path` written.
    fn modified(&self, path: &Path) -> Option<SystemTime> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| f.modified)
    }

    fn row(
        &mut self,
        ui: &mut Ui,
        ctx: &TableCtx,
        c: &Cells,
        run: Option<&ShownRun>,
    ) -> Option<TableAction> {
        let mut action = None;
        match run {
            Some(r) => {
                let mut on = r.compare;
                if ui
                    .checkbox(&mut on, "")
                    .on_hover_text("show in Compare")
                    .changed()
                {
                    action = Some(TableAction::Run(RunAction::Toggle(r.id)));
                }
                run_swatch(ui, r.color);
            }
            None => {
                ui.label("");
                ui.label("");
            }
        }
        if let Some(a) = self.name_cell(ui, ctx, c, run) {
            action = Some(a);
        }
        ui.label(&c.status);
        match &c.summary {
            Ok(s) => {
                ui.label(s.steps.to_string());
                ui.label(s.loss.map_or("–".into(), |l| sig(l as f64)));
                ui.label(
                    s.accuracy
                        .map_or("–".into(), |a| format!("{:.1}%", 100.0 * a)),
                );
            }
            Err(e) => {
                ui.label(RichText::new("–").color(ui.visuals().error_fg_color))
                    .on_hover_text(e.as_str());
                ui.label("");
                ui.label("");
            }
        }
        ui.label(&c.saved);
        ui.label(c.summary.as_ref().map_or("", |s| s.device.as_str()));
        ui.horizontal(|ui| {
            if let Some(a) = self.buttons(ui, ctx, c, run) {
                action = Some(a);
            }
        });
        action
    }

    /// The name (click: show it), or the field a rename is typed in.
    fn name_cell(
        &mut self,
        ui: &mut Ui,
        ctx: &TableCtx,
        c: &Cells,
        run: Option<&ShownRun>,
    ) -> Option<TableAction> {
        if let Some((key, text)) = self.renaming.as_mut().filter(|(k, _)| *k == c.key) {
            let mut action = None;
            ui.horizontal(|ui| {
                let r = ui.add(egui::TextEdit::singleline(text).desired_width(180.0));
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("OK").clicked() || enter {
                    action = Some(TableAction::Rename(key.clone(), text.trim().to_string()));
                }
                if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                    action = Some(TableAction::Refresh);
                }
            });
            if action.is_some() {
                self.renaming = None;
                // Cancel reads nothing again: it only closes the field.
                action = action.filter(|a| *a != TableAction::Refresh);
            }
            return action;
        }
        let name = match &c.summary {
            Ok(s) => s.name.clone(),
            Err(_) => c
                .path
                .as_deref()
                .map(runfile::name_of_path)
                .unwrap_or_default(),
        };
        let r = match run {
            Some(r) => ui.selectable_label(ctx.shown == Some(r.id), name),
            None => ui.label(name),
        };
        let r = match &c.path {
            Some(p) => r.on_hover_text(p.display().to_string()),
            None => r.on_hover_text("no file holds this run yet"),
        };
        match run {
            Some(run) if r.clicked() => Some(TableAction::Run(RunAction::Show(run.id))),
            _ => None,
        }
    }

    /// The row's buttons: Save or Open, Rename, then Discard and Remove for a held run, Delete
    /// for a run with a file.
    fn buttons(
        &mut self,
        ui: &mut Ui,
        ctx: &TableCtx,
        c: &Cells,
        run: Option<&ShownRun>,
    ) -> Option<TableAction> {
        let training = run.is_some_and(|r| ctx.training == Some(r.id));
        let mut action = match (run, &c.path) {
            (Some(r), _) if r.dirty && ui.button("Save").clicked() => {
                Some(TableAction::Run(RunAction::Save(r.id)))
            }
            (None, Some(p))
                if ui
                    .button("Open")
                    .on_hover_text("open into the lab")
                    .clicked() =>
            {
                Some(TableAction::Open(p.clone()))
            }
            _ => None,
        };
        let name = c.summary.as_ref().map_or(String::new(), |s| s.name.clone());
        if ui
            .add_enabled(!(training && c.path.is_some()), egui::Button::new("Rename"))
            .on_hover_text("a new name for the run, and its file")
            .on_disabled_hover_text("wait until the run ends")
            .clicked()
        {
            self.renaming = Some((c.key.clone(), name));
        }
        if let Some(a) = run.and_then(|r| held_buttons(ui, r, training)) {
            action = Some(a);
        }
        if let Some(p) = &c.path
            && ui
                .add_enabled(!training, egui::Button::new("Delete"))
                .on_hover_text("delete the run file (asks first)")
                .on_disabled_hover_text("stop the run first")
                .clicked()
        {
            self.deleting = Some((
                c.key.clone(),
                delete_question(p, run.is_some_and(|r| r.dirty)),
            ));
        }
        action
    }

    /// The delete confirmation, while one is open.
    fn confirm_delete(&mut self, ui: &mut Ui) -> Option<TableAction> {
        let (key, text) = self.deleting.clone()?;
        let mut action = None;
        let r = egui::Modal::new(egui::Id::unique("confirm-delete")).show(ui.ctx(), |ui| {
            ui.set_max_width(420.0);
            ui.label(text);
            ui.horizontal(|ui| {
                if ui.button("Delete").clicked() {
                    action = Some(TableAction::Delete(key.clone()));
                    self.deleting = None;
                }
                if ui.button("Cancel").clicked() {
                    self.deleting = None;
                }
            });
        });
        if r.should_close() {
            self.deleting = None;
        }
        action
    }

    /// Forgets a rename being typed and a delete being confirmed for `key` (the row is gone).
    pub fn forget(&mut self, key: &RowKey) {
        if self.renaming.as_ref().is_some_and(|(k, _)| k == key) {
            self.renaming = None;
        }
        if self.deleting.as_ref().is_some_and(|(k, _)| k == key) {
            self.deleting = None;
        }
    }
}

/// Discard (a run no file holds) and Remove (out of the lab) for a run the lab holds.
fn held_buttons(ui: &mut Ui, r: &ShownRun, training: bool) -> Option<TableAction> {
    let mut action = None;
    if r.path.is_none()
        && !training
        && ui
            .button("Discard")
            .on_hover_text("drop this run without saving it: it leaves no file")
            .clicked()
    {
        action = Some(TableAction::Run(RunAction::Discard(r.id)));
    }
    if ui
        .add_enabled(!training, egui::Button::new("Remove"))
        .on_hover_text("take out of the lab (an unsaved run is saved first; the file stays)")
        .on_disabled_hover_text("stop the run first")
        .clicked()
    {
        action = Some(TableAction::Run(RunAction::Remove(r.id)));
    }
    action
}

/// What Delete asks before it deletes `path`.
fn delete_question(path: &Path, unsaved: bool) -> String {
    let mut text = format!(
        "Delete {} and the side files no other run file names? This cannot be undone.",
        path.display()
    );
    if unsaved {
        text.push_str(" The steps the lab holds and the file does not are lost too.");
    }
    text
}

fn header(ui: &mut Ui) {
    for h in [
        "compare",
        "",
        "name",
        "status",
        "steps",
        "loss",
        "accuracy",
        "saved (UTC)",
        "device",
        "",
    ] {
        ui.strong(h);
    }
    ui.end_row();
}
