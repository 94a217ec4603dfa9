//! A run in one line: what a list of runs shows (name, status, steps, the last loss and
//! accuracy, where it ran).

use super::{RunFile, RunStatus};
use crate::metrics::series;

/// A run's summary.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run's name.
    pub name: String,
    /// How it ended (or that it runs).
    pub status: RunStatus,
    /// Steps recorded.
    pub steps: u64,
    /// The last training loss.
    pub loss: Option<f32>,
    /// The last validation accuracy (a fraction).
    pub accuracy: Option<f32>,
    /// Where it ran: the device in words, else the backend.
    pub device: String,
}

/// The summary of a run.
pub fn summarize(run: &RunFile) -> RunSummary {
    let h = &run.history;
    let last = |name: &str| h.get(name, "").and_then(|s| s.last());
    let env = &run.environment;
    RunSummary {
        name: run.name.clone(),
        status: run.status,
        steps: h.last_step,
        loss: last(series::LOSS).filter(|v| v.is_finite()),
        accuracy: last(series::VAL_ACCURACY).filter(|v| v.is_finite()),
        device: if env.device.is_empty() {
            env.backend.clone()
        } else {
            env.device.clone()
        },
    }
}
