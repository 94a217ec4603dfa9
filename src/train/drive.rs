//! One step of a run as the events it produces: the one place that decides what a step
//! records (the step, a probe, a divergence, a decision boundary, an evaluation). The worker
//! thread sends these events to the lab and the CLI; the experiments and sweeps apply them to
//! their runs' histories synchronously, through the same [`super::apply_event`].

use crate::spec::DeviceChoice;

use super::{BOUNDARY_EVERY_PROBES, BOUNDARY_RESOLUTION, EndReason, Session, TrainEvent};

/// What one step produced, in the order the worker sends it.
pub struct StepEvents {
    /// The events.
    pub events: Vec<TrainEvent>,
    /// The run diverged at this step (it ends here).
    pub diverged: bool,
    /// The device failed during the step (a remote server that stopped answering): why, also
    /// the last event's ([`TrainEvent::Failed`]); the session must not be used again.
    pub failed: Option<String>,
}

/// Runs `f` on the session's device, turning a panic (how burn reports a read from a remote
/// server that stopped answering, or a lost GPU) into the message of a
/// [`TrainEvent::Failed`] that names the device. After an `Err` the session's tensors are gone.
///
/// The panic's own report is not printed (the event carries its last line; see
/// [`crate::model::catch_quietly`]).
pub fn guarded<T>(device: &DeviceChoice, f: impl FnOnce() -> T) -> Result<T, String> {
    crate::model::catch_quietly(f).map_err(|text| {
        let why = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("no reason given")
            .to_string();
        match device {
            DeviceChoice::Remote(endpoint) => {
                format!("the connection to the remote device {endpoint} was lost ({why})")
            }
            d => format!("training on {} failed ({why})", d.describe()),
        }
    })
}

/// Takes one step of `s` and returns its events: the step record, the probe (on probe steps),
/// a divergence, the decision boundary of a 2-D classifier when `boundary` is set (the first
/// step, every [`BOUNDARY_EVERY_PROBES`] probes and the last), and an evaluation every
/// `eval_every` steps and at the last step (not after a divergence).
///
/// A panic on the way (see [`guarded`]) ends the events with [`TrainEvent::Failed`].
pub fn step(s: &mut Session, boundary: bool) -> StepEvents {
    let device = s.config.device.clone();
    guarded(&device, || unguarded_step(s, boundary)).unwrap_or_else(|why| StepEvents {
        events: vec![TrainEvent::Failed(why.clone())],
        diverged: false,
        failed: Some(why),
    })
}

fn unguarded_step(s: &mut Session, boundary: bool) -> StepEvents {
    let mut events = Vec::with_capacity(4);
    let out = s.train_step();
    let step = out.record.step;
    events.push(TrainEvent::Step(out.record));
    if let Some(p) = out.probe {
        events.push(TrainEvent::Probe(Box::new(p)));
    }
    if let Some((tensor, value)) = out.diverged {
        events.push(TrainEvent::Diverged {
            step,
            tensor,
            value,
        });
        return StepEvents {
            events,
            diverged: true,
            failed: None,
        };
    }
    let boundary_due = s.config.probe_every > 0
        && step.is_multiple_of(s.config.probe_every.saturating_mul(BOUNDARY_EVERY_PROBES));
    if boundary
        && (boundary_due || step == 1 || s.is_done())
        && let Some(b) = s.decision_boundary(BOUNDARY_RESOLUTION)
    {
        events.push(TrainEvent::Boundary(Box::new(b)));
    }
    let eval_due = s.config.eval_every > 0 && step.is_multiple_of(s.config.eval_every);
    if eval_due || s.is_done() {
        events.push(TrainEvent::Eval(s.evaluate()));
    }
    StepEvents {
        events,
        diverged: false,
        failed: None,
    }
}

/// How a run that took its steps through [`step`] ended: diverged, or completed.
pub fn end_reason(diverged: bool) -> EndReason {
    if diverged {
        EndReason::Diverged
    } else {
        EndReason::Completed
    }
}
