//! Work that must not run on the UI thread: loading and saving run files, file dialogs,
//! probing the GPU. Each job runs on its own short-lived thread and reports back over a
//! channel; the app polls it once per frame and the job's end requests a repaint.

use super::settings::GpuState;
use crate::metrics::Checkpoint;
use crate::runfile::{self, LoadedRun, RunFile};
use crate::spec::DeviceChoice;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};

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
        /// Close the window once this save is done (the close-while-training path).
        then_close: bool,
    },
    /// A file dialog ended; `None` when the user cancelled or no dialog could be shown.
    Picked {
        /// What the path is for.
        purpose: PickPurpose,
        /// The chosen path.
        path: Option<PathBuf>,
    },
    /// The GPU check ended: the device in words, or why it cannot be used.
    Gpu(GpuState),
    /// The run files found in the recent-runs folder.
    Recent(Vec<PathBuf>),
    /// A panel picture was written (or not).
    Exported(Result<PathBuf, String>),
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

/// The queue of running jobs.
pub struct Jobs {
    tx: Sender<JobResult>,
    rx: Receiver<JobResult>,
    running: usize,
    repaint: std::sync::Arc<dyn Fn() + Send + Sync>,
}

impl Jobs {
    /// A queue whose jobs call `repaint` when they end.
    pub fn new(repaint: std::sync::Arc<dyn Fn() + Send + Sync>) -> Self {
        let (tx, rx) = channel();
        Self {
            tx,
            rx,
            running: 0,
            repaint,
        }
    }

    /// Jobs started and not yet collected.
    pub fn running(&self) -> usize {
        self.running
    }

    fn spawn(&mut self, name: &str, work: impl FnOnce() -> JobResult + Send + 'static) {
        let tx = self.tx.clone();
        let repaint = self.repaint.clone();
        self.running += 1;
        let started = std::thread::Builder::new()
            .name(format!("reslab-{name}"))
            .spawn(move || {
                let _ = tx.send(work());
                repaint();
            });
        if started.is_err() {
            self.running -= 1;
        }
    }

    /// Loads a run file in the background.
    pub fn load(&mut self, path: PathBuf, show: bool) {
        self.spawn("load", move || JobResult::Loaded {
            result: runfile::load(&path)
                .map(Box::new)
                .map_err(|e| e.to_string()),
            path,
            show,
        });
    }

    /// Saves a run (and its weights) in the background into `dir`.
    pub fn save(
        &mut self,
        run_id: u64,
        dir: PathBuf,
        run: RunFile,
        checkpoint: Option<Box<Checkpoint>>,
        then_close: bool,
    ) {
        self.spawn("save", move || JobResult::Saved {
            run_id,
            result: runfile::save(&dir, &run, checkpoint.as_deref()).map_err(|e| e.to_string()),
            then_close,
        });
    }

    /// Opens a native file dialog in the background. Where no dialog can be shown (no desktop
    /// portal), the result is `None` and the app offers its path field instead.
    pub fn pick(&mut self, purpose: PickPurpose, start_dir: PathBuf, suggested_name: String) {
        self.spawn("dialog", move || {
            let dialog = rfd::FileDialog::new().set_directory(&start_dir);
            let path = match &purpose {
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
            };
            JobResult::Picked { purpose, path }
        });
    }

    /// Checks the GPU in the background: whether burn can use it, then what wgpu's adapters
    /// are (a software rasteriser on the CPU is usable but slower than the CPU backend).
    pub fn probe_gpu(&mut self) {
        self.spawn("gpu", || {
            JobResult::Gpu(match crate::train::probe_device(DeviceChoice::Gpu) {
                Err(e) => GpuState::Unavailable(e),
                Ok(d) => match wgpu_adapters() {
                    Some((names, true)) => GpuState::Software(names),
                    Some((names, false)) => GpuState::Available(names),
                    None => GpuState::Available(d),
                },
            })
        });
    }

    /// Lists the run files in `dir`, newest first.
    pub fn scan_recent(&mut self, dir: PathBuf) {
        self.spawn("scan", move || {
            let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
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
            JobResult::Recent(found.into_iter().map(|(_, p)| p).collect())
        });
    }

    /// Runs arbitrary work (e.g. writing a PNG) in the background.
    pub fn run(&mut self, name: &str, work: impl FnOnce() -> JobResult + Send + 'static) {
        self.spawn(name, work);
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
