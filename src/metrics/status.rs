//! How a run ended, or that it is still going: the one status vocabulary of the lab, the CLI,
//! the run files and the experiments.

use serde::{Deserialize, Serialize};

/// How a run ended, or that it is still going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Saved while training (an autosave).
    Running,
    /// All steps done.
    Finished,
    /// Stopped by the user.
    Stopped,
    /// Ended by a non-finite loss or gradient.
    Diverged,
    /// Could not start or go on.
    Failed,
}

impl RunStatus {
    /// The status in one word, as the lab's status line and the CLI print it.
    pub fn word(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
        }
    }
}
