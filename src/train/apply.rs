//! What a training event means for the run that receives it: the one policy that turns
//! [`TrainEvent`]s into a run's [`History`] and [`RunStatus`], shared by the lab (a live run's
//! panels) and the CLI (the run file it saves). Each consumer adds only its own extras (a
//! progress bar, a pending save, the live status line).

use super::{EndReason, TrainEvent};
use crate::metrics::{History, RunStatus};

impl From<EndReason> for RunStatus {
    fn from(reason: EndReason) -> Self {
        match reason {
            EndReason::Completed => RunStatus::Finished,
            EndReason::Stopped => RunStatus::Stopped,
            EndReason::Diverged => RunStatus::Diverged,
        }
    }
}

/// Records `event` into a run's history and status: the layout from `Started` (unless the
/// history already has one, as a resumed run's does; then only a missing input normalisation), every step, probe, evaluation and
/// decision boundary, and the status a divergence, the end or a failure gives the run.
/// Snapshots leave both alone: what to do with the weights is the consumer's business.
pub fn apply_event(history: &mut History, status: &mut RunStatus, event: &TrainEvent) {
    match event {
        TrainEvent::Started { layout, .. } => {
            if history.layout.layers.is_empty() {
                history.layout = (**layout).clone();
            } else if history.layout.input_norm.is_empty() {
                // A run saved before input normalisation was recorded, resumed: record it now.
                history.layout.input_norm = layout.input_norm.clone();
            }
        }
        TrainEvent::Step(r) => history.push_step(r),
        TrainEvent::Probe(p) => history.push_probe(p.as_ref().clone()),
        TrainEvent::Eval(r) => history.push_eval(r),
        TrainEvent::Boundary(b) => history.push_boundary(b.as_ref().clone()),
        TrainEvent::Diverged { .. } => *status = RunStatus::Diverged,
        TrainEvent::Finished { reason, .. } => *status = (*reason).into(),
        TrainEvent::Failed(_) => *status = RunStatus::Failed,
        TrainEvent::Snapshot(_) => {}
    }
}
