//! Panel pictures: a panel's figures, made from its options and the runs whatever is on
//! screen, drawn at a fixed size as PNG and SVG with their data as CSV into `exports/` by a
//! background job (`figure::files`: numbered names, nothing overwritten).

use super::LabApp;
use crate::figure::Figure;
use crate::views::{Input, PanelKind};
use std::path::{Path, PathBuf};

/// The size of an exported panel picture, in pixels.
pub const EXPORT_SIZE: (u32, u32) = (1600, 1000);

/// Where exported pictures go: `exports/` next to the runs folder.
pub fn exports_dir(runs_dir: &Path) -> PathBuf {
    runs_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("exports"), |p| p.join("exports"))
}

impl LabApp {
    /// What the views read: the shown run and the runs in Compare.
    fn views_input(&self) -> Input<'_> {
        Input {
            run: self.registry.shown().map(|r| r.view()),
            runs: self
                .registry
                .runs()
                .iter()
                .filter(|r| r.compare)
                .map(|r| r.view())
                .collect(),
        }
    }

    /// A panel's figures with its current options, whether or not it is on screen.
    pub fn panel_figures(&self, kind: PanelKind) -> Vec<Figure> {
        self.state.panels.figures(kind, &self.views_input())
    }

    /// Exports a panel's picture (PNG, SVG and CSV) in the background, or says why not.
    pub(super) fn export_panel(&mut self, kind: PanelKind) {
        let figures = self.panel_figures(kind);
        if figures.is_empty() {
            self.error(format!(
                "the {} panel has nothing to draw yet",
                kind.title()
            ));
            return;
        }
        let shown = self.registry.shown();
        let step = shown.map_or(0, |r| r.history().last_step);
        let run = shown.map_or("no-run", |r| r.file.name.as_str());
        let stem = format!("{}-{run}-step{step}", kind.slug());
        let title = format!("{run}: {}", kind.title());
        let dir = exports_dir(&self.state.settings.runs_dir);
        self.jobs
            .write_pictures(dir, stem, title, figures, EXPORT_SIZE);
    }
}
