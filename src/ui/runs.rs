//! The runs the lab holds: the live one and every opened or finished one. A live run and a
//! loaded run are the same [`ShownRun`]; the panels cannot tell them apart.

use crate::metrics::{Checkpoint, History, StepRecord};
use crate::runfile::RunFile;
use crate::train::{EndReason, RunHandle, TrainEvent};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A run shown in the lab.
pub struct ShownRun {
    /// Identifies the run in this session.
    pub id: u64,
    /// Spec, config, dataset, status and the history.
    pub file: RunFile,
    /// The latest weights and optimiser state, when known.
    pub checkpoint: Option<Box<Checkpoint>>,
    /// The run file it was loaded from or last saved to.
    pub path: Option<PathBuf>,
    /// Whether it changed since it was loaded or saved.
    pub dirty: bool,
    /// Shown in Compare.
    pub compare: bool,
    /// Colour index in Compare.
    pub color: usize,
}

impl ShownRun {
    /// The run as the figure views read it.
    pub fn view(&self) -> crate::views::RunView<'_> {
        crate::views::RunView {
            name: &self.file.name,
            history: &self.file.history,
            spec: &self.file.spec,
            color: self.color,
        }
    }

    /// The history.
    pub fn history(&self) -> &History {
        &self.file.history
    }

    /// A short label: the name and the status.
    pub fn label(&self) -> String {
        let name: String = self.file.name.chars().take(32).collect();
        let cut = if name.len() < self.file.name.len() {
            "…"
        } else {
            ""
        };
        format!("{name}{cut} ({})", self.file.status.word())
    }
}

/// What the user asked for of one run (in Compare's list or the Runs tab).
#[derive(Clone, Debug, PartialEq)]
pub enum RunAction {
    /// Show or hide a run in Compare.
    Toggle(u64),
    /// Remove a run from the lab (its file stays on disk).
    Remove(u64),
    /// Show this run in the panels.
    Show(u64),
    /// Save this run.
    Save(u64),
    /// Drop a run no file holds, without saving it.
    Discard(u64),
}

/// What the app must do after events were applied.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// A snapshot arrived (a pending save can go ahead).
    pub snapshot: bool,
    /// The run ended.
    pub finished: bool,
    /// The run failed with this message.
    pub failed: Option<String>,
    /// The run diverged: step, tensor, value.
    pub diverged: Option<(u64, String, f32)>,
}

/// A run being trained: the worker's handle and the live status.
pub struct LiveRun {
    /// The [`ShownRun`] its events go into.
    pub run_id: u64,
    /// The worker.
    pub handle: RunHandle,
    /// When it started (wall clock of this session).
    pub started: Instant,
    /// Time spent paused so far.
    pub paused_total: Duration,
    /// When the current pause began.
    pub paused_since: Option<Instant>,
    /// Steps the run will take.
    pub total_steps: u64,
    /// The device, in words.
    pub device: String,
    /// The latest step record.
    pub last: Option<StepRecord>,
    /// Set once the run ended.
    pub ended: Option<EndReason>,
    /// When the window learnt that it ended (the clock stops there).
    pub ended_at: Option<Instant>,
    /// Its step records of the last seconds, for the rate and the time left.
    pub pace: Pace,
    /// The lock of the run file it saves to, held from its first save while it trains, so that
    /// no other process writes that file meanwhile (released when the run ends).
    pub file_lock: Option<crate::safe_fs::FileLock>,
}

impl LiveRun {
    /// A live run for a freshly spawned worker.
    pub fn new(run_id: u64, handle: RunHandle) -> Self {
        Self {
            run_id,
            handle,
            started: Instant::now(),
            paused_total: Duration::ZERO,
            paused_since: None,
            total_steps: 0,
            device: String::new(),
            last: None,
            ended: None,
            ended_at: None,
            pace: Pace::default(),
            file_lock: None,
        }
    }

    /// Training time so far, pauses excluded; it stops when the run ends.
    pub fn elapsed(&self) -> Duration {
        let now = self.ended_at.unwrap_or_else(Instant::now);
        let paused = self.paused_total
            + self
                .paused_since
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        now.saturating_duration_since(self.started)
            .saturating_sub(paused)
    }

    /// The run ended (for `reason`): the clock stops, a pause ends, the run file's lock goes.
    fn end(&mut self, reason: EndReason) {
        let now = Instant::now();
        self.ended = Some(reason);
        self.ended_at = Some(now);
        self.file_lock = None;
        if let Some(t) = self.paused_since.take() {
            self.paused_total += now.saturating_duration_since(t);
        }
    }

    /// Whether steps are being taken now (not paused, not ended).
    pub fn is_running(&self) -> bool {
        self.ended.is_none() && self.paused_since.is_none()
    }

    /// Pauses the worker.
    pub fn pause(&mut self) {
        if self.paused_since.is_none() && self.ended.is_none() {
            self.handle.pause();
            self.paused_since = Some(Instant::now());
        }
    }

    /// Resumes the worker.
    pub fn resume(&mut self) {
        if let Some(t) = self.paused_since.take() {
            self.paused_total += t.elapsed();
        }
        self.handle.resume();
    }

    /// Asks the worker to stop after its step; a pause ends there.
    pub fn stop(&mut self) {
        self.handle.stop();
        if let Some(t) = self.paused_since.take() {
            self.paused_total += t.elapsed();
        }
    }

    /// Whether the run is paused.
    pub fn is_paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Takes waiting events for at most `budget` and applies them to `run`.
    pub fn apply_events(&mut self, run: &mut ShownRun, budget: Duration) -> Applied {
        let events = self.handle.drain(budget);
        let mut out = Applied::default();
        for e in events {
            apply(self, run, e, &mut out);
        }
        out
    }
}

fn apply(live: &mut LiveRun, run: &mut ShownRun, e: TrainEvent, out: &mut Applied) {
    crate::train::apply_event(&mut run.file.history, &mut run.file.status, &e);
    match e {
        TrainEvent::Started {
            total_steps,
            device,
            ..
        } => {
            live.total_steps = total_steps;
            live.device = device.clone();
            run.file.environment.device = device;
        }
        TrainEvent::Step(r) => {
            live.pace.push(Instant::now(), &r);
            live.last = Some(r);
            run.dirty = true;
        }
        TrainEvent::Diverged {
            step,
            tensor,
            value,
        } => out.diverged = Some((step, tensor, value)),
        TrainEvent::Snapshot(ck) => {
            run.file.progress.step = ck.step;
            run.file.progress.optimizer_steps = ck.optimizer_steps;
            run.checkpoint = Some(ck);
            out.snapshot = true;
        }
        TrainEvent::Finished { reason, .. } => {
            live.end(reason);
            out.finished = true;
        }
        TrainEvent::Failed(msg) => {
            // The weights after the last snapshot went with the device: the history goes back
            // to it, so the run saves as it can be resumed.
            if let Some(ck) = &run.checkpoint {
                run.file.history.truncate(ck.step);
                run.dirty = true;
            }
            live.end(EndReason::Stopped);
            out.failed = Some(msg);
            out.finished = true;
        }
        TrainEvent::Probe(_) | TrainEvent::Eval(_) | TrainEvent::Boundary(_) => {}
    }
}

/// The recent pace of a run: its step records of the last [`Pace::WINDOW`], with the time the
/// window received each.
#[derive(Debug, Default)]
pub struct Pace {
    recent: VecDeque<(Instant, u64, f32)>,
}

impl Pace {
    /// How far back the rates look.
    pub const WINDOW: Duration = Duration::from_secs(3);

    /// A step record received at `now`.
    pub fn push(&mut self, now: Instant, r: &StepRecord) {
        self.recent.push_back((now, r.step, r.samples_per_sec));
        while self.recent.len() > 2
            && self
                .recent
                .front()
                .is_some_and(|&(t, _, _)| now.saturating_duration_since(t) > Self::WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// Samples per second over the window: the steps' own rates averaged as total samples over
    /// total time (the batch is the same for every step, so the harmonic mean).
    pub fn samples_per_sec(&self) -> Option<f64> {
        let rates: Vec<f64> = (self.recent.iter())
            .map(|&(_, _, r)| r as f64)
            .filter(|r| r.is_finite() && *r > 0.0)
            .collect();
        let time: f64 = rates.iter().map(|r| 1.0 / r).sum();
        (!rates.is_empty()).then(|| rates.len() as f64 / time)
    }

    /// The time left to step `total` at the window's pace in steps per second of wall clock
    /// (probes and evaluations included); `None` until the window holds two steps.
    pub fn time_left(&self, total: u64) -> Option<Duration> {
        let (&(t0, s0, _), &(t1, s1, _)) = (self.recent.front()?, self.recent.back()?);
        let secs = t1.saturating_duration_since(t0).as_secs_f64();
        if s1 <= s0 || secs <= 0.0 {
            return None;
        }
        let per_step = secs / (s1 - s0) as f64;
        Some(Duration::from_secs_f64(
            total.saturating_sub(s1) as f64 * per_step,
        ))
    }
}

/// `YYYYMMDD-HHMMSS` in UTC, for run names.
pub fn timestamp() -> String {
    let [y, m, d, h, min, sec] = utc(std::time::SystemTime::now());
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{sec:02}")
}

/// `YYYY-MM-DD HH:MM` in UTC (the Runs tab's dates).
pub fn date_time(t: std::time::SystemTime) -> String {
    let [y, m, d, h, min, _] = utc(t);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
}

/// Year, month, day, hour, minute, second in UTC.
fn utc(t: std::time::SystemTime) -> [i64; 6] {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, (secs % 86_400) as i64);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    [y, m, d, rem / 3600, rem / 60 % 60, rem % 60]
}

#[cfg(test)]
mod tests {
    use super::date_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date_time(UNIX_EPOCH), "1970-01-01 00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_571_234);
        assert_eq!(date_time(t), "2026-12-06 15:33");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(date_time(t), "2000-02-29 00:00");
    }
}
