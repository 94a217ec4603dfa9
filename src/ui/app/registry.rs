//! The runs the lab holds, in one place: every run (live, opened, finished, an experiment's),
//! the one shown in the panels, the live one, and the two rules every save and close path asks:
//! which runs are unsaved, and where a run's save goes.

use super::super::runs::{Applied, LiveRun, ShownRun};
use crate::metrics::Checkpoint;
use crate::runfile::{self, RunFile};
use crate::spec::NetSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a run is saved: the run file and the name the run takes (its label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveTarget {
    /// The run file.
    pub path: PathBuf,
    /// The run's name: the file's name without `.reslab.json`.
    pub name: String,
}

/// The runs of this session.
#[derive(Default)]
pub struct RunRegistry {
    runs: Vec<ShownRun>,
    next_id: u64,
    shown: Option<u64>,
    live: Option<LiveRun>,
}

impl RunRegistry {
    /// Every run, in the order they joined the lab.
    pub fn runs(&self) -> &[ShownRun] {
        &self.runs
    }

    /// The run with this id.
    pub fn get(&self, id: u64) -> Option<&ShownRun> {
        self.runs.iter().find(|r| r.id == id)
    }

    pub(super) fn runs_mut(&mut self) -> impl Iterator<Item = &mut ShownRun> {
        self.runs.iter_mut()
    }

    /// A run, to change.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut ShownRun> {
        self.runs.iter_mut().find(|r| r.id == id)
    }

    /// The id of the run shown in the panels.
    pub fn shown_id(&self) -> Option<u64> {
        self.shown
    }

    /// The run shown in the panels.
    pub fn shown(&self) -> Option<&ShownRun> {
        self.shown.and_then(|id| self.get(id))
    }

    /// Shows this run in the panels (`None` clears them).
    pub(super) fn show(&mut self, id: Option<u64>) {
        self.shown = id;
    }

    /// The run being trained (or the last one trained in this session).
    pub fn live(&self) -> Option<&LiveRun> {
        self.live.as_ref()
    }

    pub(super) fn live_mut(&mut self) -> Option<&mut LiveRun> {
        self.live.as_mut()
    }

    /// The live run, while it has not ended (training or paused).
    pub fn training(&self) -> Option<&LiveRun> {
        self.live.as_ref().filter(|l| l.ended.is_none())
    }

    /// Whether a run is training (or paused) right now.
    pub fn is_training(&self) -> bool {
        self.training().is_some()
    }

    /// Whether the live run is paused.
    pub fn is_paused(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.is_paused())
    }

    /// Whether `id` is the run training now.
    pub fn is_training_run(&self, id: u64) -> bool {
        self.training().is_some_and(|l| l.run_id == id)
    }

    /// The spec of the run training now.
    pub fn running_spec(&self) -> Option<&NetSpec> {
        self.training()
            .and_then(|l| self.get(l.run_id))
            .map(|r| &r.file.spec)
    }

    /// Adds a run and returns its id. Each run gets the next colour in Compare.
    pub(super) fn add(
        &mut self,
        file: RunFile,
        checkpoint: Option<Box<Checkpoint>>,
        path: Option<PathBuf>,
        dirty: bool,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let color = self.runs.iter().map(|r| r.color + 1).max().unwrap_or(0);
        self.runs.push(ShownRun {
            id,
            file,
            checkpoint,
            path,
            dirty,
            compare: true,
            color,
        });
        id
    }

    /// Adds a freshly started run as the live one and shows it.
    pub(super) fn add_live(&mut self, file: RunFile, handle: crate::train::RunHandle) -> u64 {
        let id = self.add(file, None, None, true);
        self.live = Some(LiveRun::new(id, handle));
        self.shown = Some(id);
        id
    }

    /// Drops a run from the lab (it stays on disk); the caller saves it first if unsaved.
    pub(super) fn remove(&mut self, id: u64) {
        if self.live.as_ref().is_some_and(|l| l.run_id == id) {
            self.live = None;
        }
        self.runs.retain(|r| r.id != id);
        if self.shown == Some(id) {
            self.shown = None;
        }
    }

    /// Takes the live run's waiting events (for at most `budget`) into its run. Returns the
    /// run's id and what the app must do about them.
    pub(super) fn apply_live_events(&mut self, budget: Duration) -> Option<(u64, Applied)> {
        let live = self.live.as_mut()?;
        let run = self.runs.iter_mut().find(|r| r.id == live.run_id)?;
        Some((live.run_id, live.apply_events(run, budget)))
    }

    /// The runs that hold steps no file has: what closing must save first.
    pub fn unsaved(&self) -> impl Iterator<Item = &ShownRun> {
        self.runs.iter().filter(|r| r.is_unsaved())
    }

    /// Whether closing now would lose work: a run training, or a run with unsaved steps.
    pub fn needs_saving(&self) -> bool {
        self.is_training() || self.unsaved().next().is_some()
    }

    /// Where a save of run `id` goes: `target` (a run-file path the user gave), else the file
    /// the run came from or was last saved to, else a new file in `runs_dir` named after the
    /// run (`name.reslab.json`, or `name-2.reslab.json`, … when that exists or another run of
    /// this session will save there): a new run never takes another run's file.
    pub fn save_target(
        &self,
        id: u64,
        target: Option<&Path>,
        runs_dir: &Path,
    ) -> Option<SaveTarget> {
        let run = self.get(id)?;
        Some(match target.or(run.path.as_deref()) {
            Some(p) => split_run_path(p),
            None => self.free_target(runs_dir, &run.file.name),
        })
    }

    /// The first `name[-k].reslab.json` in `dir` that no file and no run of this session has.
    fn free_target(&self, dir: &Path, name: &str) -> SaveTarget {
        let base = runfile::sanitize_name(name);
        (1u64..)
            .map(|k| match k {
                1 => base.clone(),
                k => format!("{base}-{k}"),
            })
            .map(|n| SaveTarget {
                path: runfile::run_path(dir, &n),
                name: n,
            })
            .find(|t| {
                std::fs::symlink_metadata(&t.path).is_err()
                    && !self.runs.iter().any(|r| r.path.as_deref() == Some(&t.path))
            })
            .expect("some name is free")
    }
}

impl ShownRun {
    /// Whether the run holds steps that no file has.
    pub fn is_unsaved(&self) -> bool {
        self.dirty && self.history().last_step > 0
    }
}

/// `dir/name.reslab.json` → that file, named `name`; a path without the suffix gets it
/// (`dir/name` → `dir/name.reslab.json`; `dir/name.json` stays as it is).
fn split_run_path(p: &Path) -> SaveTarget {
    let file = p
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let name = file
        .strip_suffix(runfile::SUFFIX)
        .or_else(|| file.strip_suffix(".json"))
        .unwrap_or(&file)
        .to_string();
    let path = if file.ends_with(".json") {
        p.to_path_buf()
    } else {
        crate::safe_fs::parent_dir(p).join(format!("{file}{}", runfile::SUFFIX))
    };
    SaveTarget { path, name }
}
