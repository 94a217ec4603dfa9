//! Driving a training run from the terminal: progress bar, autosaves, Ctrl-C / SIGTERM /
//! SIGHUP, the final save, and the exit code a failure deserves.

use super::run::summary_line;
use super::{CliError, bad_input, runtime};
use crate::metrics::{Checkpoint, History};
use crate::runfile::{self, RunFile};
use crate::safe_fs;
use crate::train::{Autosave, RunRequest, TrainError, TrainEvent, spawn_run};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The exit code of a run that could not start or go on: 2 when the input is at fault (the
/// network, the config, the data, a network that does not fit the data or the memory), 1 for
/// the machine (no device, a crashed thread).
fn failure(e: &TrainError) -> CliError {
    match e {
        TrainError::Spec(_)
        | TrainError::Config(_)
        | TrainError::Data(_)
        | TrainError::Mismatch(_)
        | TrainError::TooLarge(_) => bad_input(e),
        TrainError::Device(_) | TrainError::Lost(_) | TrainError::Panicked(_) => runtime(e),
    }
}

fn progress_bar() -> ProgressBar {
    let bar = if std::io::stdout().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("valid template"),
    );
    bar
}

/// A run being driven: the record that is saved, its history, the progress bar.
struct Driving<'a> {
    run: RunFile,
    history: History,
    target: &'a Path,
    bar: ProgressBar,
    last_val: f32,
    last_checkpoint: Option<Box<Checkpoint>>,
    /// Whether a step ran: before the first one nothing is saved, so a run that cannot start
    /// leaves the folder as it was.
    stepped: bool,
}

/// What an event means for the loop: go on, or the run ended (its last step, or why not).
enum Next {
    Continue,
    End(Result<u64, CliError>),
}

impl Driving<'_> {
    /// Saves the run with the history swapped in (no copy of the history is made).
    fn save(&mut self, ck: Option<&Checkpoint>) -> Result<(), CliError> {
        self.run.history = std::mem::take(&mut self.history);
        let result = runfile::save_to(self.target, &self.run, ck);
        self.history = std::mem::take(&mut self.run.history);
        result.map(|_| ()).map_err(runtime)
    }

    fn on_event(&mut self, event: TrainEvent) -> Result<Next, CliError> {
        crate::train::apply_event(&mut self.history, &mut self.run.status, &event);
        match event {
            TrainEvent::Started {
                total_steps,
                device,
                ..
            } => {
                self.run.environment.device = device;
                self.bar.set_length(total_steps);
                self.bar.set_position(self.history.last_step);
            }
            TrainEvent::Step(r) => {
                self.stepped = true;
                self.bar.set_position(r.step);
                let val = if self.last_val.is_nan() {
                    "–".to_string()
                } else {
                    format!("{:.1}%", 100.0 * self.last_val)
                };
                self.bar.set_message(format!(
                    "loss {:.4}  val acc {val}  {:.0} samples/s",
                    r.loss, r.samples_per_sec
                ));
            }
            TrainEvent::Eval(e) => self.last_val = e.accuracy,
            TrainEvent::Diverged {
                step,
                tensor,
                value,
            } => {
                self.bar
                    .println(format!("diverged at step {step}: {tensor} = {value}"));
            }
            TrainEvent::Snapshot(ck) => {
                if self.stepped {
                    self.save(Some(&ck))?;
                }
                self.last_checkpoint = Some(ck);
            }
            TrainEvent::Finished { step, .. } => return Ok(Next::End(Ok(step))),
            TrainEvent::Failed(msg) => return Ok(Next::End(Err(runtime(msg)))),
            TrainEvent::Probe(_) | TrainEvent::Boundary(_) => {}
        }
        Ok(Next::Continue)
    }
}

/// Runs a training request to its end, showing progress and saving the run to the run file
/// `target` on every snapshot (autosave) and at the end. Ctrl-C, SIGTERM and SIGHUP stop the
/// run after the current step and save it. Holds the run file's lock throughout: a run file
/// another process writes is refused. Nothing is written before the first step: a run that
/// cannot start (its data, its network, the memory) leaves the folder as it was.
pub(super) fn drive(
    run: RunFile,
    target: &Path,
    resume: Option<Checkpoint>,
    autosave: Autosave,
) -> Result<(), CliError> {
    let dir = safe_fs::parent_dir(target);
    let created = prepare_folder(dir)
        .map_err(|e| bad_input(format!("{}: cannot save there: {e}", target.display())))?;
    let lock = runfile::lock(target).map_err(bad_input);
    let outcome = lock.and_then(|_lock| drive_locked(run, target, resume, autosave));
    if !matches!(outcome, Ok(true)) {
        remove_made(&created);
    }
    outcome.map(|_| ())
}

/// Removes the folders a run made (outermost first in `made`), deepest first, each only if
/// empty: a run that saved nothing leaves no folder behind.
fn remove_made(made: &[PathBuf]) {
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Makes sure `dir` can take the run file: creates what is missing of it (returning the
/// folders made, outermost first) and checks a file can be created there, so that an unusable
/// folder fails now and not at the first autosave.
fn prepare_folder(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(p.to_path_buf());
        d = p.parent();
    }
    missing.reverse();
    if let Err(e) = safe_fs::check_writable_dir(dir) {
        remove_made(&missing);
        return Err(e);
    }
    Ok(missing)
}

/// [`drive`] once the lock is held; `Ok(true)` when the run was saved, `Ok(false)` when it
/// ended before its first step (nothing written).
fn drive_locked(
    mut run: RunFile,
    target: &Path,
    resume: Option<Checkpoint>,
    autosave: Autosave,
) -> Result<bool, CliError> {
    safe_fs::check_target(target)
        .map_err(|e| bad_input(format!("{}: cannot save there: {e}", target.display())))?;
    crate::signals::install();
    let request = RunRequest {
        spec: run.spec.clone(),
        config: run.config.clone(),
        dataset: run.dataset.clone(),
        resume: resume.clone(),
        autosave,
    };
    let handle = spawn_run(request, Box::new(|| {})).map_err(|e| failure(&e))?;
    let mut history = std::mem::take(&mut run.history);
    history.reindex();
    let mut d = Driving {
        run,
        history,
        target,
        bar: progress_bar(),
        last_val: f32::NAN,
        last_checkpoint: resume.map(Box::new),
        stepped: false,
    };
    let outcome = event_loop(&mut d, &handle);
    d.bar.finish_and_clear();
    if outcome.is_err() {
        // A failed save: stop the worker rather than wait for the rest of the run.
        handle.stop();
    }
    let (joined, _) = handle.join();
    let outcome = match (outcome, joined) {
        (Ok(step), _) => Ok(step),
        (Err(_), Err(e)) => Err(failure(&e)),
        (Err(e), Ok(_)) => Err(e),
    };
    if !d.stepped {
        // Not one step: the run file (if any) stays exactly as it was.
        outcome?;
        crate::say!("nothing trained; {} left as it was", target.display());
        return Ok(false);
    }
    // The final save: the last snapshot's weights with the final status and history. A run
    // whose device failed goes back to that snapshot: what came after it is gone with the device.
    let ck = d.last_checkpoint.take();
    if let (Err(_), Some(ck)) = (&outcome, &ck)
        && d.history.last_step > ck.step
    {
        crate::say!(
            "going back to step {} (the last saved weights); `reslab resume {}` goes on from there",
            ck.step,
            target.display()
        );
        d.history.truncate(ck.step);
    }
    d.save(ck.as_deref())?;
    d.run.history = std::mem::take(&mut d.history);
    let step = outcome?;
    let run = &d.run;
    crate::say!(
        "{} after {step} steps ({:?}); {}\nsaved {}",
        run.status.word(),
        run.status,
        summary_line(run),
        target.display()
    );
    Ok(true)
}

/// Takes events until the run ends; a stop signal stops it after the current step.
fn event_loop(d: &mut Driving<'_>, handle: &crate::train::RunHandle) -> Result<u64, CliError> {
    let mut stop_sent = false;
    loop {
        if crate::signals::stop_requested() && !stop_sent {
            handle.stop();
            stop_sent = true;
            d.bar.println("stopping after the current step and saving…");
        }
        let Some(event) = handle.next_timeout(std::time::Duration::from_millis(100)) else {
            if handle.is_finished() && handle.events().try_recv().is_err() {
                return Err(runtime("the training thread ended without a result"));
            }
            continue;
        };
        if let Next::End(end) = d.on_event(event)? {
            return end;
        }
    }
}
