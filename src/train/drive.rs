//! One step of a run as the events it produces: the one place that decides what a step
//! records (the step, a probe, a divergence, a decision boundary, an evaluation). The worker
//! thread sends these events to the lab and the CLI; the experiments and sweeps apply them to
//! their runs' histories synchronously, through the same [`super::apply_event`].

use super::{BOUNDARY_EVERY_PROBES, BOUNDARY_RESOLUTION, EndReason, Session, TrainEvent};

/// What one step produced, in the order the worker sends it.
pub struct StepEvents {
    /// The events.
    pub events: Vec<TrainEvent>,
    /// The run diverged at this step (it ends here).
    pub diverged: bool,
}

/// Takes one step of `s` and returns its events: the step record, the probe (on probe steps),
/// a divergence, the decision boundary of a 2-D classifier when `boundary` is set (the first
/// step, every [`BOUNDARY_EVERY_PROBES`] probes and the last), and an evaluation every
/// `eval_every` steps and at the last step (not after a divergence).
pub fn step(s: &mut Session, boundary: bool) -> StepEvents {
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
