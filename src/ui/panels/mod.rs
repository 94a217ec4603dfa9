//! The centre panels. Each is a plain struct with its display options and a
//! `ui(&mut self, ui, ctx)` method; the app arranges the visible ones in a grid.

mod activations;
mod batchnorm;
mod boundary;
mod compare;
pub mod gradients;
mod loss;

pub use activations::ActivationsPanel;
pub use batchnorm::BatchNormPanel;
pub use boundary::BoundaryPanel;
pub use compare::{CompareAction, ComparePanel};
pub use gradients::GradientsPanel;
pub use loss::{LossPanel, summary as loss_summary};

use super::runs::ShownRun;
use serde::{Deserialize, Serialize};

/// The panels, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PanelKind {
    /// Loss and accuracy.
    Loss,
    /// Per-layer activation statistics.
    Activations,
    /// BatchNorm running statistics, γ and β.
    BatchNorm,
    /// Gradient norms and update ratios.
    Gradients,
    /// Decision boundary of a 2-D classifier.
    Boundary,
    /// Several runs overlaid.
    Compare,
}

impl PanelKind {
    /// All panels.
    pub const ALL: [PanelKind; 6] = [
        PanelKind::Loss,
        PanelKind::Activations,
        PanelKind::BatchNorm,
        PanelKind::Gradients,
        PanelKind::Boundary,
        PanelKind::Compare,
    ];

    /// The panel's title.
    pub fn title(self) -> &'static str {
        match self {
            PanelKind::Loss => "Loss & accuracy",
            PanelKind::Activations => "Activations",
            PanelKind::BatchNorm => "BatchNorm",
            PanelKind::Gradients => "Gradient flow",
            PanelKind::Boundary => "Decision boundary",
            PanelKind::Compare => "Compare",
        }
    }

    /// A file-name stem for exported pictures.
    pub fn slug(self) -> &'static str {
        match self {
            PanelKind::Loss => "loss",
            PanelKind::Activations => "activations",
            PanelKind::BatchNorm => "batchnorm",
            PanelKind::Gradients => "gradients",
            PanelKind::Boundary => "boundary",
            PanelKind::Compare => "compare",
        }
    }

    /// Position in [`PanelKind::ALL`].
    pub fn index(self) -> usize {
        PanelKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// What panels draw from.
pub struct PanelCtx<'a> {
    /// The run shown (live or loaded), if any.
    pub run: Option<&'a ShownRun>,
    /// Every run the lab holds (for Compare).
    pub runs: &'a [ShownRun],
    /// Height available to one panel's plots.
    pub height: f32,
}

/// The x axes of all time-series plots move together.
pub fn step_link() -> egui::Id {
    egui::Id::unique("reslab-steps")
}

/// Shown where a panel has nothing to draw yet.
pub fn empty_note(ui: &mut egui::Ui, what: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(what).italics().weak());
}

/// A cache key for derived data: the run and how much it has recorded.
pub fn history_key(run: &ShownRun) -> u64 {
    let h = run.history();
    run.id
        .wrapping_mul(1_000_003)
        .wrapping_add(h.last_step.wrapping_mul(31))
        .wrapping_add(h.latest_probe.as_ref().map_or(0, |p| p.step))
}

/// Indices of the layers a per-layer plot shows: the activation outputs when `only_acts` and
/// the network has any, otherwise every layer.
pub fn shown_layers(run: &ShownRun, only_acts: bool) -> Vec<usize> {
    let names = &run.history().layout.layers;
    if only_acts {
        let acts: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| is_activation_layer(&run.file.spec, n))
            .map(|(i, _)| i)
            .collect();
        if !acts.is_empty() {
            return acts;
        }
    }
    (0..names.len()).collect()
}

fn is_activation_layer(spec: &crate::spec::NetSpec, name: &str) -> bool {
    spec.layers
        .iter()
        .find(|l| l.name == name)
        .is_some_and(|l| matches!(l.op, crate::spec::LayerOp::Activation { .. }))
}
