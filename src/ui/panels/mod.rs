//! The centre panels. Each is its display options (a [`crate::views`] `View`, whose figures are
//! what the panel shows) with the controls that change them; the figures are made again only
//! when the run records something new or an option changes ([`PanelFigures`]) and drawn by the
//! one egui figure renderer ([`crate::ui::figure`]). The app arranges the visible panels in a
//! grid.
//!
//! A panel here is its options' [`PanelControls`] (caption, controls, notes, then the
//! figures); [`Panels`], the state of every panel, is made from [`crate::with_panels!`], the one
//! list of panels.

mod activations;
mod attention;
mod batchnorm;
mod boundary;
mod compare;
pub mod gradients;
mod loss;

pub use loss::summary as loss_summary;

use super::figure::FigurePainter;
use super::runs::{RunAction, ShownRun};
use crate::figure::Figure;
use crate::views::{Input, PanelView, View};
use egui::Ui;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

pub use super::plot::step_link;
pub use crate::views::PanelKind;

/// What a panel draws around its figures: the caption, the controls that change its options,
/// notes where there is nothing to draw, and the figures (through `figures`).
pub trait PanelControls: PanelView {
    /// Draws the panel; returns what the user asked for of a run, if anything.
    fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx, figures: &mut PanelFigures) -> Option<RunAction>;
}

/// One panel's state: its options (kept between launches) and its figures.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Panel<O> {
    /// What the figures show.
    pub options: O,
    #[serde(skip)]
    figures: PanelFigures,
}

impl<O: PanelControls> Panel<O> {
    /// Draws the panel.
    pub fn ui(&mut self, ui: &mut Ui, ctx: &PanelCtx) -> Option<RunAction> {
        self.options.ui(ui, ctx, &mut self.figures)
    }
}

macro_rules! panels {
    ($($kind:ident $field:ident: $options:ty,)*) => {
        /// Every panel's state, one field per line of [`crate::with_panels!`].
        #[derive(Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Panels {
            $(
                #[doc = concat!("The ", stringify!($field), " panel.")]
                pub $field: Panel<$options>,
            )*
        }

        impl Panels {
            /// Draws one panel; returns what the user asked for of a run.
            pub fn ui(&mut self, kind: PanelKind, ui: &mut Ui, ctx: &PanelCtx) -> Option<RunAction> {
                match kind {
                    $(PanelKind::$kind => self.$field.ui(ui, ctx),)*
                }
            }

            /// A panel's figures for `input` with its current options, on screen or not.
            pub fn figures(&self, kind: PanelKind, input: &Input) -> Vec<Figure> {
                match kind {
                    $(PanelKind::$kind => self.$field.options.figures(input),)*
                }
            }
        }
    };
}

crate::with_panels!(panels);

/// What panels draw from.
pub struct PanelCtx<'a> {
    /// The run shown (live or loaded), if any.
    pub run: Option<&'a ShownRun>,
    /// Every run the lab holds (for Compare).
    pub runs: &'a [ShownRun],
    /// Height available to one panel's plots.
    pub height: f32,
    /// The run training now, if one is.
    pub training: Option<u64>,
}

impl PanelCtx<'_> {
    /// What the views read: the shown run, and the runs shown in Compare.
    pub fn input(&self) -> Input<'_> {
        Input {
            run: self.run.map(ShownRun::view),
            runs: self
                .runs
                .iter()
                .filter(|r| r.compare)
                .map(ShownRun::view)
                .collect(),
        }
    }

    /// A key that changes when anything the views read changes (new records, other runs shown).
    pub fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.run.map(history_key).hash(&mut h);
        for r in self.runs.iter().filter(|r| r.compare) {
            (history_key(r), r.color).hash(&mut h);
        }
        h.finish()
    }
}

/// Shown where a panel has nothing to draw yet.
pub fn empty_note(ui: &mut egui::Ui, what: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(what).italics());
}

/// A cache key for derived data: the run and how much it has recorded.
pub fn history_key(run: &ShownRun) -> u64 {
    let h = run.history();
    run.id
        .wrapping_mul(1_000_003)
        .wrapping_add(h.last_step.wrapping_mul(31))
        .wrapping_add(h.latest_probe.as_ref().map_or(0, |p| p.step))
}

/// A panel's figures and their painter: made from the panel's options when the data or the
/// options change (at most once per frame, usually once per new probe), drawn every frame.
#[derive(Default)]
pub struct PanelFigures {
    key: Option<u64>,
    figures: Vec<Figure>,
    painter: FigurePainter,
}

/// A key for a panel's options (they are small; their debug text is hashed).
fn options_key(options: &impl std::fmt::Debug) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{options:?}").hash(&mut h);
    h.finish()
}

impl PanelFigures {
    /// The figures of `view` for `ctx`, made again when the data or the options changed.
    pub fn update<V: View + std::fmt::Debug>(&mut self, view: &V, ctx: &PanelCtx) -> &[Figure] {
        let key = ctx.key() ^ options_key(view).rotate_left(17);
        if self.key != Some(key) {
            self.key = Some(key);
            self.figures = view.figures(&ctx.input());
        }
        &self.figures
    }

    /// Draws the figures in a grid of `columns` (one when the panel is narrow), sharing
    /// `height` between the rows; plot ids start with `id`.
    pub fn show(&mut self, ui: &mut egui::Ui, id: &str, columns: usize, height: f32) {
        let key = self.key.unwrap_or(0);
        let n = self.figures.len();
        if n == 0 {
            return;
        }
        let cols = if ui.available_width() < 620.0 {
            1
        } else {
            columns.clamp(1, n)
        };
        let rows = n.div_ceil(cols);
        let plot_h = (height / rows as f32 - 56.0).max(110.0);
        let (figures, painter) = (&self.figures, &mut self.painter);
        for (r, row) in figures.chunks(cols).enumerate() {
            ui.columns(cols, |cs| {
                for (c, (fig, ui)) in row.iter().zip(cs.iter_mut()).enumerate() {
                    let k = r * cols + c;
                    painter.show(ui, fig, &format!("{id}-{k}"), key, plot_h);
                }
            });
        }
    }
}
