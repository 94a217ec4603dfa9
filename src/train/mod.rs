//! The training loop on a worker thread, its control (pause, resume, stop) and its events.
//!
//! [`spawn`] validates the spec and config, then starts a thread that loads the data, builds
//! the model and runs [`Session`] step by step, sending [`TrainEvent`]s.
//!
//! # Event policy
//!
//! The worker never waits on the consumer: events go into an unbounded channel, and each event
//! is a small host-side record (a step is 32 bytes; a probe is about 40 floats per layer plus the
//! BN channels). A consumer that falls behind only delays its own display; nothing is dropped,
//! so the history a consumer builds is complete. The waker is called at most every 30 ms while
//! steps stream, and always after the first and the last event, so a UI repaints at ≤ ~30 Hz.

mod apply;
pub mod drive;
mod evaluate;
mod optim;
mod session;
mod state;

pub use apply::apply_event;
pub use evaluate::{
    ChannelStats, EvalData, EvalOptions, Evaluation, NormMode, data_statistics, evaluate,
    evaluate_each, running_statistics,
};
pub use optim::{Optimizer, SlotState, StepReductions};
pub use session::{Session, StepOutcome};

use crate::data::{self, DataError};
use crate::metrics::{BoundaryRecord, Checkpoint, EvalRecord, ProbeRecord, RunLayout, StepRecord};
use crate::model::{DeviceError, make_device};
use crate::spec::{
    ConfigError, DatasetSpec, NetSpec, SpecError, TrainConfig, ValidSpec, estimate_memory,
    format_bytes, validate,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a run could not start or go on.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The network spec is invalid.
    #[error("network: {0}")]
    Spec(#[from] SpecError),
    /// The training config is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The data could not be loaded.
    #[error("data: {0}")]
    Data(#[from] DataError),
    /// The device is not available.
    #[error("{0}")]
    Device(#[from] DeviceError),
    /// The network does not fit the data.
    #[error("the network does not fit the data: {0}")]
    Mismatch(String),
    /// The run would need more memory (or more steps) than the lab allows.
    #[error("{0}")]
    TooLarge(String),
    /// The device stopped answering during the run (a remote server that went away).
    #[error("{0}")]
    Lost(String),
    /// The worker thread panicked.
    #[error("the training thread failed: {0}")]
    Panicked(String),
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// All steps done.
    Completed,
    /// Stopped on request.
    Stopped,
    /// A non-finite loss or gradient.
    Diverged,
}

/// What the worker reports. All host-side, small.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// The run started: what it reports on and how long it runs.
    Started {
        /// Names of layers, BN layers, skips and tensors.
        layout: Box<RunLayout>,
        /// Steps the run will take.
        total_steps: u64,
        /// The device, in words.
        device: String,
        /// Training samples.
        train_samples: usize,
        /// Validation samples.
        valid_samples: usize,
    },
    /// One step.
    Step(StepRecord),
    /// A probe step's statistics.
    Probe(Box<ProbeRecord>),
    /// A validation pass.
    Eval(EvalRecord),
    /// The first non-finite loss or gradient; the run stops after this step.
    Diverged {
        /// The step.
        step: u64,
        /// `loss` or the tensor whose gradient is not finite.
        tensor: String,
        /// The value.
        value: f32,
    },
    /// The run ended (completed, stopped or diverged).
    Finished {
        /// Steps completed.
        step: u64,
        /// Why.
        reason: EndReason,
    },
    /// The run's state, sent when an autosave is due and once more just before `Finished`, so a
    /// consumer can save the run without touching the worker's tensors.
    Snapshot(Box<Checkpoint>),
    /// The decision boundary of a classifier on 2-D data, every
    /// [`BOUNDARY_EVERY_PROBES`] probe steps and at the end.
    Boundary(Box<BoundaryRecord>),
    /// The run could not start or go on.
    Failed(String),
}

/// A run on 2-D classification data sends a [`TrainEvent::Boundary`] every this many probe
/// steps (a 64 × 64 grid of forward passes; cheap next to a step of training).
pub const BOUNDARY_EVERY_PROBES: u64 = 4;

/// Cells per side of the decision-boundary grid.
pub const BOUNDARY_RESOLUTION: usize = 64;

/// When the worker sends [`TrainEvent::Snapshot`]s during a run (it always sends one at the end).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Autosave {
    /// Every this many steps (0: never).
    pub every_steps: u64,
    /// Every this many seconds (0: never).
    pub every_secs: f64,
}

/// Everything a run starts from.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The network.
    pub spec: NetSpec,
    /// How to train.
    pub config: TrainConfig,
    /// On what.
    pub dataset: DatasetSpec,
    /// The state to continue from, for a resumed run.
    pub resume: Option<Checkpoint>,
    /// Snapshot policy.
    pub autosave: Autosave,
}

/// Shared control flags of a run.
#[derive(Debug, Default)]
struct Control {
    stop: AtomicBool,
    snapshot: AtomicBool,
    paused: Mutex<bool>,
    wake: Condvar,
}

/// A running training thread.
pub struct RunHandle {
    events: Receiver<TrainEvent>,
    control: Arc<Control>,
    thread: Option<JoinHandle<Result<Session, TrainError>>>,
}

/// A repaint request from the worker; the app fills it with `ctx.request_repaint()`.
pub type Waker = Box<dyn Fn() + Send + 'static>;

impl RunHandle {
    /// Pauses after the current step.
    pub fn pause(&self) {
        *self.control.paused.lock().expect("control lock") = true;
    }

    /// Resumes a paused run.
    pub fn resume(&self) {
        *self.control.paused.lock().expect("control lock") = false;
        self.control.wake.notify_all();
    }

    /// Whether the run is paused.
    pub fn is_paused(&self) -> bool {
        *self.control.paused.lock().expect("control lock")
    }

    /// Asks the run to stop after the current step (also wakes a paused run).
    pub fn stop(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.resume();
    }

    /// Asks for a [`TrainEvent::Snapshot`] after the current step (also while paused), so a
    /// consumer can save a run that is still going on.
    pub fn request_snapshot(&self) {
        // Set under the lock the worker waits with, so a paused worker cannot miss the wake-up.
        let _guard = self.control.paused.lock().expect("control lock");
        self.control.snapshot.store(true, Ordering::SeqCst);
        self.control.wake.notify_all();
    }

    /// The next event, if one is waiting.
    pub fn try_next(&self) -> Option<TrainEvent> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_timeout(&self, timeout: Duration) -> Option<TrainEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Takes waiting events for at most `budget` of wall time (the UI's per-frame budget).
    pub fn drain(&self, budget: Duration) -> Vec<TrainEvent> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < budget {
            match self.try_next() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Whether the worker thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the worker and hands back the session (model, optimiser, step counter).
    /// Events not yet taken stay readable through [`RunHandle::events`].
    pub fn join(mut self) -> (Result<Session, TrainError>, Receiver<TrainEvent>) {
        let result = match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|e| {
                let msg = crate::model::panic_text(e.as_ref());
                Err(TrainError::Panicked(
                    msg.unwrap_or_else(|| "unknown panic".into()),
                ))
            }),
            None => Err(TrainError::Panicked("already joined".into())),
        };
        let (_, closed) = channel();
        let events = std::mem::replace(&mut self.events, closed);
        (result, events)
    }

    /// The event channel.
    pub fn events(&self) -> &Receiver<TrainEvent> {
        &self.events
    }
}

impl Drop for RunHandle {
    /// A handle dropped while its run goes on stops the run: nobody would receive its events.
    /// The worker still finishes its current step and ends cleanly.
    fn drop(&mut self) {
        if self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            self.stop();
        }
    }
}

/// The shortest time between two wake-ups of the window by a run's events (10 a second; the
/// first event of a run, its end and failures wake it at once).
const WAKE_EVERY: Duration = Duration::from_millis(100);

struct Emitter {
    tx: Sender<TrainEvent>,
    waker: Waker,
    last_wake: Option<Instant>,
    /// Events were sent since the last wake-up.
    unseen: bool,
}

impl Emitter {
    fn send(&mut self, e: TrainEvent, force_wake: bool) {
        // A receiver that has gone away is not an error: the run goes on and can still be
        // joined, e.g. by a CLI that only wants the final session.
        let _ = self.tx.send(e);
        let due = self.last_wake.is_none_or(|t| t.elapsed() >= WAKE_EVERY);
        self.unseen = true;
        if force_wake || due {
            self.wake();
        }
    }

    fn wake(&mut self) {
        (self.waker)();
        self.last_wake = Some(Instant::now());
        self.unseen = false;
    }

    /// Wakes the window if it has not seen the latest events (before the run waits in a pause:
    /// a paused window does not come back by itself).
    fn flush(&mut self) {
        if self.unseen {
            self.wake();
        }
    }
}

/// Checks whether a device can be used, by making it and running a tiny computation on it.
/// Returns the device in words, or why it cannot be used. For the GPU this can take a second
/// (adapter discovery), so call it off the UI thread.
pub fn probe_device(choice: &crate::spec::DeviceChoice) -> Result<String, String> {
    make_device(choice, false)
        .map(|_| choice.describe())
        .map_err(|e| e.to_string())
}

/// Starts a run on a worker thread.
///
/// The spec and config are checked here, so a bad one is an immediate error; data loading and
/// model building happen on the worker, and their failures arrive as [`TrainEvent::Failed`].
pub fn spawn(
    spec: NetSpec,
    config: TrainConfig,
    dataset: DatasetSpec,
    waker: Waker,
) -> Result<RunHandle, TrainError> {
    spawn_run(
        RunRequest {
            spec,
            config,
            dataset,
            resume: None,
            autosave: Autosave::default(),
        },
        waker,
    )
}

/// Starts a run, possibly resumed from a checkpoint, with an autosave policy.
pub fn spawn_run(request: RunRequest, waker: Waker) -> Result<RunHandle, TrainError> {
    let RunRequest {
        spec,
        config,
        dataset,
        resume,
        autosave,
    } = request;
    let valid = validate(&spec)?;
    config.validate()?;
    check_memory(&valid, &config, &dataset, memory_limit())?;
    let control = Arc::new(Control::default());
    let (tx, rx) = channel();
    let ctl = control.clone();
    let thread = std::thread::Builder::new()
        .name("reslab-train".into())
        .spawn(move || {
            let mut em = Emitter {
                tx,
                waker,
                last_wake: None,
                unseen: false,
            };
            let session = (|| -> Result<Session, TrainError> {
                let device = make_device(&config.device, true)?;
                let data = data::load(&dataset)?;
                let mut s = Session::new(&valid, &config, data, device)?;
                if let Some(ck) = &resume {
                    s.restore(ck)?;
                }
                Ok(s)
            })();
            match session {
                Ok(s) => run_loop(s, &ctl, &mut em, autosave),
                Err(e) => {
                    em.send(TrainEvent::Failed(e.to_string()), true);
                    Err(e)
                }
            }
        })
        .map_err(|e| TrainError::Panicked(e.to_string()))?;
    Ok(RunHandle {
        events: rx,
        control,
        thread: Some(thread),
    })
}

/// The memory a run may use: `RESLAB_MEMORY_LIMIT_GB` when set, else 80 % of the machine's
/// memory (`MemTotal` in `/proc/meminfo`), else 16 GB.
pub fn memory_limit() -> u64 {
    if let Some(gb) = std::env::var("RESLAB_MEMORY_LIMIT_GB")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|g| g.is_finite() && *g > 0.0)
    {
        return (gb * 1e9) as u64;
    }
    let total_kb = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    total_kb.map_or(16_000_000_000, |kb| kb * 1024 / 5 * 4)
}

/// Refuses a run whose estimated memory ([`estimate_memory`]: training step, evaluation and
/// data) is above `limit`, with the estimate in the message.
pub fn check_memory(
    valid: &ValidSpec,
    config: &TrainConfig,
    dataset: &DatasetSpec,
    limit: u64,
) -> Result<(), TrainError> {
    let estimate = estimate_memory(valid, config, dataset);
    if estimate.total() > limit {
        return Err(TrainError::TooLarge(format!(
            "training this network with batch size {} needs about {}, more than the {} this \
             machine allows (set RESLAB_MEMORY_LIMIT_GB to change the limit); use a smaller \
             batch or fewer channels",
            config.batch_size,
            estimate.describe(),
            format_bytes(limit)
        )));
    }
    Ok(())
}

/// Ends a run whose device failed: sends [`TrainEvent::Failed`] (the consumer saves what it
/// holds: the history and the last snapshot) and abandons the session.
fn failed(s: Session, em: &mut Emitter, why: String) -> Result<Session, TrainError> {
    em.send(TrainEvent::Failed(why.clone()), true);
    abandon(s, why)
}

/// Drops a session whose device failed. Dropping remote tensors talks to the server that is
/// gone; a panic there is caught, and what it leaves is leaked rather than brought down.
fn abandon(s: Session, why: String) -> Result<Session, TrainError> {
    let _ = crate::model::catch_quietly(move || drop(s));
    Err(TrainError::Lost(why))
}

/// Sends a snapshot of `s` (its checkpoint, read from the device), or why the device could not
/// give it.
fn snapshot(s: &Session, em: &mut Emitter, wake: bool) -> Result<(), String> {
    let ck = drive::guarded(&s.config.device, || s.checkpoint())?;
    em.send(TrainEvent::Snapshot(Box::new(ck)), wake);
    Ok(())
}

/// Trains `s` to its end, a stop, a divergence or a failed device, sending the events; the
/// session when the device still holds it.
fn run_loop(
    mut s: Session,
    ctl: &Control,
    em: &mut Emitter,
    autosave: Autosave,
) -> Result<Session, TrainError> {
    let mut last_save = (s.step, Instant::now());
    em.send(
        TrainEvent::Started {
            layout: Box::new(s.layout.clone()),
            total_steps: s.total_steps,
            device: s.config.device.describe(),
            train_samples: s.data.train.len,
            valid_samples: s.data.valid.len,
        },
        true,
    );
    let reason = loop {
        {
            let mut paused = ctl.paused.lock().expect("control lock");
            loop {
                if ctl.snapshot.swap(false, Ordering::SeqCst)
                    && let Err(why) = snapshot(&s, em, true)
                {
                    return failed(s, em, why);
                }
                if !*paused || ctl.stop.load(Ordering::SeqCst) {
                    break;
                }
                em.flush();
                paused = ctl.wake.wait(paused).expect("control lock");
            }
        }
        if ctl.stop.load(Ordering::SeqCst) {
            break EndReason::Stopped;
        }
        if s.is_done() {
            break EndReason::Completed;
        }
        let taken = drive::step(&mut s, true);
        let step = s.step;
        for e in taken.events {
            let wake = matches!(e, TrainEvent::Diverged { .. } | TrainEvent::Failed(_));
            em.send(e, wake);
        }
        if let Some(why) = taken.failed {
            return abandon(s, why);
        }
        if taken.diverged {
            break EndReason::Diverged;
        }
        // Saturating: `--autosave-steps` may be as large as u64 allows.
        let by_steps =
            autosave.every_steps > 0 && step >= last_save.0.saturating_add(autosave.every_steps);
        let by_time =
            autosave.every_secs > 0.0 && last_save.1.elapsed().as_secs_f64() >= autosave.every_secs;
        if (by_steps || by_time) && !s.is_done() {
            if let Err(why) = snapshot(&s, em, false) {
                return failed(s, em, why);
            }
            last_save = (step, Instant::now());
        }
    };
    if let Err(why) = snapshot(&s, em, false) {
        return failed(s, em, why);
    }
    em.send(
        TrainEvent::Finished {
            step: s.step,
            reason,
        },
        true,
    );
    Ok(s)
}
