//! "Train the plain twin" / "Train the residual twin": the same network without its skips, or a
//! plain preset's residual counterpart of the same depth and width, trained in one click beside
//! the network on the left (which stays as it is); both runs are named for what they are.

use super::LabApp;
use crate::spec::NetSpec;
use crate::spec::edit::remove_all_skips;

/// The residual family of a plain one.
const RESIDUAL_OF: [(&str, &str); 3] = [
    ("mlp-plain", "mlp-res"),
    ("cifar-plain", "cifar-resnet"),
    ("vit-plain", "vit-res"),
];

impl LabApp {
    /// The twin of the network Train uses, with the button's words: its plain twin when it has
    /// skips, else the residual twin of a plain preset from the left; `None` otherwise.
    pub fn twin(&self) -> Option<(String, NetSpec)> {
        let spec = self.spec.as_ref().ok()?;
        if !spec.skips.is_empty() {
            let mut plain = spec.clone();
            remove_all_skips(&mut plain);
            return Some((format!("Train the plain twin ({})", plain.name), plain));
        }
        if self.custom {
            return None;
        }
        let net = &self.state.settings.net;
        let (_, res) = RESIDUAL_OF.iter().find(|(p, _)| *p == net.family)?;
        let mut twin = net.clone();
        twin.family = res.to_string();
        let spec = twin.build(&self.state.settings.dataset).ok()?;
        Some((format!("Train the residual twin ({})", spec.name), spec))
    }

    /// Trains the twin (see [`LabApp::twin`]) with the settings on the left.
    pub(super) fn train_twin(&mut self) {
        match self.twin() {
            Some((_, spec)) => self.start_training_with(spec),
            None => self.error("this network has no twin to train"),
        }
    }
}
