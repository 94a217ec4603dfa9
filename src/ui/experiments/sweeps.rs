//! Sweeps in the Experiments tab: every sweep file of the runs folder (read in the background at
//! launch) and any opened or dropped one, listed under the experiments; selecting one shows its
//! grid, how far it got, and the training loss and validation accuracy against depth
//! ([`crate::sweep::figures`]).

use crate::figure::Figure;
use crate::sweep::SweepFile;
use crate::ui::figure::FigurePainter;
use egui::{RichText, Ui};
use std::path::{Path, PathBuf};

/// The prefix of a sweep's entry in the tab's selection.
pub const SELECTED: &str = "sweep:";

/// A sweep the tab shows: the file, where it was read from, and its figures (made once, when
/// it is read).
struct Entry {
    sweep: SweepFile,
    path: PathBuf,
    figures: Vec<Figure>,
}

/// The sweeps the tab shows.
#[derive(Default)]
pub struct Sweeps {
    list: Vec<Entry>,
    painter: FigurePainter,
}

/// The selection value of the sweep read from `path`.
pub fn key(path: &Path) -> String {
    format!("{SELECTED}{}", path.display())
}

impl Sweeps {
    /// Adds (or replaces) a sweep read from `path`.
    pub fn add(&mut self, sweep: SweepFile, path: PathBuf) {
        self.list.retain(|e| e.path != path);
        let figures = crate::sweep::figures(&sweep);
        self.list.push(Entry {
            sweep,
            path,
            figures,
        });
        self.list.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// The entries of the list: the selection value and the sweep's name.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .map(|e| (key(&e.path), e.sweep.name.clone()))
            .collect()
    }

    /// Draws the sweep `selected` names; returns a run file the user asked to open.
    pub fn show(&mut self, ui: &mut Ui, selected: &str) -> Option<PathBuf> {
        let Sweeps { list, painter } = self;
        let Entry {
            sweep,
            path,
            figures,
        } = list.iter().find(|e| key(&e.path) == selected)?;
        let g = &sweep.grid;
        ui.heading(format!("Sweep {}: {}", sweep.name, g.dataset.label()));
        ui.label(
            RichText::new(
                "He et al. 2016, Deep Residual Learning for Image Recognition (CVPR), Fig. 1 and 6",
            )
            .italics(),
        );
        ui.add_space(4.0);
        ui.label(RichText::new("What to see, and why").strong());
        ui.label(
            "• Deeper plain nets train worse beyond some depth (the degradation problem): their \
             final training loss rises with depth, although a deeper net could copy a shallower \
             one and add identities.",
        );
        ui.label(
            "• Residual nets of the same depths keep their loss far lower: each block only adds a \
             correction to an identity path, so depth stops hurting optimisation.",
        );
        let total = g.cells().len();
        ui.label(
            RichText::new(format!(
                "Grid: {} × depths {:?} × {} seeds × lr {:?} × norms {:?}; width {}, {} steps a \
                 run; {} of {total} cells done. File: {} (`reslab sweep FILE` runs the rest; \
                 `reslab plot FILE --out f.png` draws these figures).",
                g.families.join(", "),
                g.depths,
                g.seeds.len(),
                g.lrs,
                g.norms,
                g.width,
                g.steps,
                sweep.results.len(),
                path.display()
            ))
            .weak(),
        );
        ui.add_space(6.0);
        let figures: Vec<&Figure> = figures.iter().collect();
        let id = format!("sweep-fig-{}", path.display());
        painter.grid(ui, &figures, &id, 320.0);
        cells(ui, sweep, path)
    }
}

/// The finished cells, one row each, with Open for its run file (in the sweep's folder).
fn cells(ui: &mut Ui, sweep: &SweepFile, path: &Path) -> Option<PathBuf> {
    let mut open = None;
    egui::CollapsingHeader::new(format!("Cells ({})", sweep.results.len()))
        .id_salt("sweep-cells")
        .show(ui, |ui| {
            egui::Grid::new("sweep-cell-table")
                .striped(true)
                .show(ui, |ui| {
                    for h in [
                        "run",
                        "status",
                        "steps",
                        "final loss",
                        "accuracy",
                        "seconds",
                        "",
                    ] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    let num = |v: Option<f64>| v.map_or("–".to_string(), crate::numbers::sig);
                    for r in &sweep.results {
                        ui.label(r.cell.name());
                        ui.label(r.status.word());
                        ui.label(r.steps.to_string());
                        ui.label(num(r.final_loss));
                        ui.label(
                            r.val_accuracy
                                .map_or("–".into(), |a| format!("{:.1}%", 100.0 * a)),
                        );
                        ui.label(format!("{:.1}", r.seconds));
                        let file = crate::sweep::run_file(&crate::sweep::paths(path).1, &r.cell);
                        if ui
                            .button("Open")
                            .on_hover_text(format!("open {} in the lab", file.display()))
                            .clicked()
                        {
                            open = Some(file);
                        }
                        ui.end_row();
                    }
                });
        });
    open
}
