//! Work that must not run on the UI thread: loading and saving run files, writing pictures and
//! spec files, file dialogs, probing the GPU, running or opening an experiment. Each job runs on
//! its own short-lived thread and reports back over one channel; the app polls it once per frame
//! and the job's end requests a repaint.
//!
//! A job whose thread cannot be started still reports: its result is the failure, through the
//! same channel, so whoever waits for it (a save the close protocol counts, the Experiments tab's
//! progress) stops waiting and the user is told why.

use super::settings::GpuState;
use crate::experiments::{self, ExperimentFile, ExperimentOptions};
use crate::metrics::Checkpoint;
use crate::runfile::{self, LoadedRun, RunFile};
use crate::spec::{DatasetSpec, DeviceChoice};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// What a finished job hands back.
#[derive(Debug)]
pub enum JobResult {
    /// A run file was loaded (or failed to load).
    Loaded {
        /// Where from.
        path: PathBuf,
        /// The run, or the error text naming the file and the reason.
        result: Result<Box<LoadedRun>, String>,
        /// Whether the run should replace the one shown (as opposed to only joining Compare).
        show: bool,
    },
    /// A run was saved (or failed to save).
    Saved {
        /// Which run (its id in the app).
        run_id: u64,
        /// The run file's path, or the error text.
        result: Result<PathBuf, String>,
    },
    /// The designer's spec was written as JSON (or not).
    SpecExported(Result<PathBuf, String>),
    /// A file dialog ended; `None` when the user cancelled or no dialog could be shown.
    Picked {
        /// What the path is for.
        purpose: PickPurpose,
        /// The chosen path.
        path: Option<PathBuf>,
    },
    /// The GPU check ended: the device in words, or why it cannot be used.
    Gpu(GpuState),
    /// A remote endpoint's check ended: the device in words, or why it cannot be used.
    Remote(crate::spec::Endpoint, Result<String, String>),
    /// The run files found in the recent-runs folder.
    Recent(Vec<PathBuf>),
    /// Sweep files read (the runs folder's at launch, or one opened), and whether to show the
    /// first.
    Sweeps(
        Vec<Result<(crate::sweep::SweepFile, PathBuf), String>>,
        bool,
    ),
    /// The run files of the runs folder with their summaries (the Runs tab), and the number of
    /// the scan (a later scan's result replaces an earlier one's, never the reverse).
    RunFiles(Vec<super::runs_table::FileRow>, u64),
    /// A run file was renamed (`to`) or deleted (`to` is `None`), or could not be.
    FileChanged {
        /// The run file.
        from: PathBuf,
        /// Its new path, for a rename.
        to: Option<PathBuf>,
        /// What went wrong, if anything.
        result: Result<(), String>,
    },
    /// A panel picture was written (or not).
    Exported(Result<Vec<PathBuf>, String>),
    /// An experiment ran or an experiment file was read: the file and where it is saved, or
    /// the error.
    Experiment(Result<(Box<ExperimentFile>, Option<PathBuf>), String>),
    /// A job whose failure concerns nobody but the user could not start (a dialog, the recent
    /// runs' scan): why.
    NotStarted(String),
}

/// Why a file dialog was opened.
#[derive(Clone, Debug, PartialEq)]
pub enum PickPurpose {
    /// Open a run file.
    Open,
    /// Save the run with this id under a new name.
    SaveAs(u64),
    /// Pick a dataset folder.
    DataFolder,
    /// Export the designer's spec as JSON.
    ExportSpec,
    /// Import a spec from JSON.
    ImportSpec,
}

/// An experiment to run in the background, with the handles the tab keeps to follow it.
pub struct ExperimentJob {
    /// The experiment's name.
    pub name: String,
    /// One of its controls to run instead, by name.
    pub control: Option<String>,
    /// Quick or full scale.
    pub quick: bool,
    /// Base seed.
    pub seed: u64,
    /// Where the result is saved.
    pub out_dir: PathBuf,
    /// The dataset for experiments that take one.
    pub dataset: Option<DatasetSpec>,
    /// Where it trains (the lab's device setting).
    pub device: DeviceChoice,
    /// Set to stop the experiment early.
    pub cancel: Arc<AtomicBool>,
    /// The fraction done and what is being done, as the experiment reports it.
    pub progress: Arc<Mutex<(f32, String)>>,
}

/// Starts a background thread: [`spawn_thread`] in the app. Tests pass one that fails, to see
/// what the lab does when no thread can be started.
pub type Spawner = fn(name: &str, work: Box<dyn FnOnce() + Send>) -> std::io::Result<()>;

/// Starts `work` on a named thread (`reslab-<name>`).
pub fn spawn_thread(name: &str, work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("reslab-{name}"))
        .spawn(work)
        .map(|_| ())
}

/// The queue of running jobs.
pub struct Jobs {
    tx: Sender<JobResult>,
    rx: Receiver<JobResult>,
    running: usize,
    repaint: Arc<dyn Fn() + Send + Sync>,
    spawner: Spawner,
}

impl Jobs {
    /// A queue whose jobs call `repaint` when they end and start their threads with `spawner`.
    pub fn new(repaint: Arc<dyn Fn() + Send + Sync>, spawner: Spawner) -> Self {
        let (tx, rx) = channel();
        Self {
            tx,
            rx,
            running: 0,
            repaint,
            spawner,
        }
    }

    /// Jobs started and not yet collected.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Runs `work` on its own thread; when the thread cannot start, `failed` makes the result
    /// from the reason.
    fn spawn(
        &mut self,
        name: &str,
        work: impl FnOnce() -> JobResult + Send + 'static,
        failed: impl FnOnce(String) -> JobResult,
    ) {
        let tx = self.tx.clone();
        let repaint = self.repaint.clone();
        self.running += 1;
        let started = (self.spawner)(
            name,
            Box::new(move || {
                let _ = tx.send(work());
                repaint();
            }),
        );
        if let Err(e) = started {
            let why = format!("could not start a background thread for the {name}: {e}");
            let _ = self.tx.send(failed(why));
            (self.repaint)();
        }
    }

    /// Loads a run file in the background.
    pub fn load(&mut self, path: PathBuf, show: bool) {
        let p = path.clone();
        self.spawn(
            "load",
            move || JobResult::Loaded {
                result: runfile::load(&path)
                    .map(Box::new)
                    .map_err(|e| e.to_string()),
                path,
                show,
            },
            move |why| JobResult::Loaded {
                path: p,
                result: Err(why),
                show,
            },
        );
    }

    /// Saves a run (and its weights) in the background to the run file `path`.
    pub fn save(
        &mut self,
        run_id: u64,
        path: PathBuf,
        run: RunFile,
        checkpoint: Option<Box<Checkpoint>>,
    ) {
        self.spawn(
            "save",
            move || JobResult::Saved {
                run_id,
                result: runfile::save_to(&path, &run, checkpoint.as_deref())
                    .map_err(|e| e.to_string()),
            },
            move |why| JobResult::Saved {
                run_id,
                result: Err(why),
            },
        );
    }

    /// Writes a spec as pretty JSON in the background.
    pub fn export_spec(&mut self, spec: crate::spec::NetSpec, path: PathBuf) {
        self.spawn(
            "spec export",
            move || {
                let result = serde_json::to_vec_pretty(&spec)
                    .map_err(|e| e.to_string())
                    .and_then(|b| runfile::write_atomic(&path, &b).map_err(|e| e.to_string()))
                    .map(|()| path.clone())
                    .map_err(|e| format!("{}: {e}", path.display()));
                JobResult::SpecExported(result)
            },
            |why| JobResult::SpecExported(Err(why)),
        );
    }

    /// Draws a panel's figures as PNG and SVG and writes them with their CSV in the
    /// background (`figure::files::write_pictures`: the next free numbered name).
    pub fn write_pictures(
        &mut self,
        dir: PathBuf,
        stem: String,
        title: String,
        figures: Vec<crate::figure::Figure>,
        size: (u32, u32),
    ) {
        use crate::figure::draw::Format;
        self.spawn(
            "picture",
            move || {
                let formats = [Format::Png, Format::Svg];
                let result = crate::figure::files::write_pictures(
                    &dir, &stem, &title, &figures, size, &formats,
                );
                JobResult::Exported(result)
            },
            |why| JobResult::Exported(Err(why)),
        );
    }

    /// Opens a native file dialog in the background. Where no dialog can be shown (no desktop
    /// portal), the result is `None` and the app offers its path field instead.
    pub fn pick(&mut self, purpose: PickPurpose, start_dir: PathBuf, suggested_name: String) {
        self.spawn(
            "dialog",
            move || {
                let path = pick_path(&purpose, start_dir, suggested_name);
                JobResult::Picked { purpose, path }
            },
            JobResult::NotStarted,
        );
    }

    /// Connects to a remote endpoint in the background (a server that does not answer can take
    /// the network's time to say so).
    pub fn probe_remote(&mut self, endpoint: crate::spec::Endpoint) {
        let back = endpoint.clone();
        self.spawn(
            "remote check",
            move || {
                let device = DeviceChoice::Remote(endpoint.clone());
                JobResult::Remote(endpoint, crate::train::probe_device(&device))
            },
            move |why| JobResult::Remote(back, Err(why)),
        );
    }

    /// Checks the GPU in the background: whether burn can use it, then what wgpu's adapters
    /// are (a software rasteriser on the CPU is usable but slower than the CPU backend).
    pub fn probe_gpu(&mut self) {
        self.spawn(
            "gpu check",
            || {
                JobResult::Gpu(match crate::train::probe_device(&DeviceChoice::Gpu) {
                    Err(e) => GpuState::Unavailable(e),
                    Ok(d) => match wgpu_adapters() {
                        Some((names, true)) => GpuState::Software(names),
                        Some((names, false)) => GpuState::Available(names),
                        None => GpuState::Available(d),
                    },
                })
            },
            |why| JobResult::Gpu(GpuState::Unavailable(why)),
        );
    }

    /// Lists the run files in `dir`, newest first.
    pub fn scan_recent(&mut self, dir: PathBuf) {
        self.spawn(
            "recent runs' scan",
            move || JobResult::Recent(run_files_newest_first(&dir)),
            JobResult::NotStarted,
        );
    }

    /// Reads the sweep files in `dir` (at launch; none shown) or, with `select`, the one file
    /// `path` names (shown).
    pub fn read_sweeps(&mut self, path: PathBuf, select: bool) {
        self.spawn(
            "sweep files",
            move || {
                let files = if select {
                    vec![path]
                } else {
                    sweep_files(&path)
                };
                let read = files
                    .into_iter()
                    .map(|p| crate::sweep::SweepFile::load(&p).map(|s| (s, p)))
                    .collect();
                JobResult::Sweeps(read, select)
            },
            move |why| JobResult::Sweeps(vec![Err(why)], select),
        );
    }

    /// Lists the run files in `dir` with their summaries, newest first (the Runs tab).
    pub fn scan_run_files(&mut self, dir: PathBuf, scan: u64) {
        self.spawn(
            "runs folder's scan",
            move || JobResult::RunFiles(super::runs_table::scan(&dir), scan),
            JobResult::NotStarted,
        );
    }

    /// Renames (moves) the run file `from` to `to` with its side files, or with `to` `None`
    /// deletes it and the side files no other run file names.
    pub fn change_run_file(&mut self, from: PathBuf, to: Option<PathBuf>) {
        let (f, t) = (from.clone(), to.clone());
        self.spawn(
            "run file's rename or delete",
            move || {
                let result = match &to {
                    Some(to) => runfile::transfer(&from, to, true).map_err(|e| e.to_string()),
                    None => runfile::remove(&from).map_err(|e| e.to_string()),
                };
                JobResult::FileChanged { from, to, result }
            },
            move |why| JobResult::FileChanged {
                from: f,
                to: t,
                result: Err(why),
            },
        );
    }

    /// Runs an experiment in the background and saves its file (a failed save still shows the
    /// result).
    pub fn run_experiment(&mut self, job: ExperimentJob) {
        self.spawn(
            "experiment",
            move || {
                let mut opts = ExperimentOptions::new(job.quick, job.seed);
                opts.cancel = job.cancel;
                opts.dataset = job.dataset;
                opts.device = job.device;
                let progress = job.progress;
                // The app repaints every 100 ms while a job runs; the tab reads this then.
                opts.progress = Some(Box::new(move |f, msg| {
                    if let Ok(mut g) = progress.lock() {
                        *g = (f, msg.to_string());
                    }
                }));
                let result = experiments::run_as(&job.name, job.control.as_deref(), &mut opts)
                    .map_err(|e| e.to_string())
                    .map(|file| {
                        let path = file.save(&job.out_dir).ok();
                        (Box::new(file), path)
                    });
                JobResult::Experiment(result)
            },
            |why| JobResult::Experiment(Err(why)),
        );
    }

    /// Reads an experiment file in the background.
    pub fn open_experiment(&mut self, path: PathBuf) {
        self.spawn(
            "experiment file",
            move || {
                JobResult::Experiment(
                    ExperimentFile::load(&path)
                        .map(|f| (Box::new(f), Some(path.clone())))
                        .map_err(|e| e.to_string()),
                )
            },
            |why| JobResult::Experiment(Err(why)),
        );
    }

    /// Results of jobs that ended since the last call.
    pub fn poll(&mut self) -> Vec<JobResult> {
        let out: Vec<JobResult> = self.rx.try_iter().collect();
        self.running = self.running.saturating_sub(out.len());
        out
    }

    /// Waits up to `timeout` for the next result (the exit path and tests use this).
    pub fn wait(&mut self, timeout: std::time::Duration) -> Option<JobResult> {
        let r = self.rx.recv_timeout(timeout).ok();
        if r.is_some() {
            self.running = self.running.saturating_sub(1);
        }
        r
    }
}

/// Shows the native dialog for `purpose`.
fn pick_path(purpose: &PickPurpose, start_dir: PathBuf, suggested_name: String) -> Option<PathBuf> {
    let dialog = rfd::FileDialog::new().set_directory(&start_dir);
    match purpose {
        PickPurpose::Open => dialog
            .add_filter("reslab run", &["json"])
            .set_title("Open a run file")
            .pick_file(),
        PickPurpose::SaveAs(_) => dialog
            .add_filter("reslab run", &["json"])
            .set_title("Save the run as")
            .set_file_name(suggested_name)
            .save_file(),
        PickPurpose::DataFolder => dialog.set_title("Dataset folder").pick_folder(),
        PickPurpose::ExportSpec => dialog
            .add_filter("network spec", &["json"])
            .set_file_name(suggested_name)
            .save_file(),
        PickPurpose::ImportSpec => dialog.add_filter("network spec", &["json"]).pick_file(),
    }
}

/// The sweep files in `dir` (at most 64, by name).
fn sweep_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(crate::sweep::SUFFIX))
        .collect();
    found.sort();
    found.truncate(64);
    found
}

/// The run files in `dir`, newest first (hidden files and temporaries left out).
pub(crate) fn run_files_newest_first(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_name()?.to_string_lossy().into_owned();
            if !name.ends_with(runfile::SUFFIX) || name.starts_with('.') {
                return None;
            }
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, p))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, p)| p).collect()
}

/// wgpu's adapters in words, and whether every one of them is a software (CPU) adapter; `None`
/// when there are none or the enumeration does not finish at once.
fn wgpu_adapters() -> Option<(String, bool)> {
    use eframe::wgpu;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let instance = wgpu::Instance::default();
    let mut adapters = std::pin::pin!(instance.enumerate_adapters(wgpu::Backends::all()));
    // On native platforms the enumeration is synchronous and the future is ready at once.
    let Poll::Ready(adapters) = adapters
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        return None;
    };
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    if infos.is_empty() {
        return None;
    }
    let software = infos.iter().all(|i| i.device_type == wgpu::DeviceType::Cpu);
    let names = infos
        .iter()
        .map(|i| format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend))
        .collect::<Vec<_>>()
        .join("; ");
    Some((names, software))
}
