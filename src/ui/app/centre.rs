//! The centre: the Lab tab's grid of panels or the designer, the message bar, and dropped files.

use super::super::designer::DesignerCtx;
use super::super::panels::{PanelCtx, PanelKind};
use super::commands::Command;
use super::{LabApp, Tab};
use egui::{Color32, RichText, Ui};

/// The narrowest a panel is drawn, in points (its figures need about this much).
const MIN_PANEL_W: f32 = 440.0;

impl LabApp {
    pub(super) fn centre(&mut self, ui: &mut Ui) {
        match self.state.tab {
            Tab::Designer => self.designer_tab(ui),
            _ => self.lab(ui),
        }
    }

    fn designer_tab(&mut self, ui: &mut Ui) {
        let ctx = DesignerCtx {
            running_spec: self.registry.running_spec(),
            io: self.state.settings.dataset.expected_io(),
        };
        if let Some(a) = self.state.designer.ui(ui, &ctx) {
            self.commands.push(Command::Designer(a));
        }
        self.sync_spec();
    }

    /// The panel toggles, then the visible panels in a grid of 1–3 columns (as many as fit).
    fn lab(&mut self, ui: &mut Ui) {
        self.panel_toggles(ui);
        let visible = self.state.visible.clone();
        if visible.is_empty() {
            ui.label("All panels are hidden: switch one on above.");
            return;
        }
        // As many of the chosen columns as fit at their smallest width; narrower than one, the
        // panels keep that width and the area scrolls sideways.
        let width = ui.available_width();
        let fit = ((width + 12.0) / (MIN_PANEL_W + 12.0)).floor().max(1.0) as usize;
        let columns = self.state.columns.clamp(1, 3).min(fit);
        let rows = visible.len().div_ceil(columns);
        let avail = ui.available_height();
        let height = if rows <= 1 {
            (avail - 60.0).max(360.0)
        } else {
            ((avail - 20.0) / 2.0 - 50.0).max(360.0)
        };
        egui::ScrollArea::both()
            .id_salt("panels")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let width = ui.available_width();
                let col_w =
                    ((width - 12.0 * (columns as f32 - 1.0)) / columns as f32).max(MIN_PANEL_W);
                for row in visible.chunks(columns) {
                    ui.horizontal_top(|ui| {
                        for &kind in row {
                            self.framed_panel(ui, kind, [col_w, height]);
                        }
                    });
                    ui.add_space(6.0);
                }
            });
    }

    fn panel_toggles(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Panels:");
            for kind in PanelKind::ALL {
                let mut on = self.state.visible.contains(&kind);
                if ui.toggle_value(&mut on, kind.title()).changed() {
                    if on {
                        self.state.visible.push(kind);
                        self.state.visible.sort_by_key(|k| k.index());
                    } else {
                        self.state.visible.retain(|k| *k != kind);
                    }
                }
            }
            if ui
                .button("PNG (all)")
                .on_hover_text("export every visible panel as PNG, SVG and CSV into exports/")
                .clicked()
            {
                self.commands.push(Command::ExportAll);
            }
            ui.separator();
            ui.label("columns");
            for c in 1..=3 {
                ui.selectable_value(&mut self.state.columns, c, c.to_string());
            }
            ui.separator();
            ui.label("redraw").on_hover_text(
                "frames a second while a run trains; each frame takes CPU from the training, a \
                 lot with software rendering (auto: 10 on a GPU, 1 with a software renderer; \
                 moving the pointer redraws at once)",
            );
            for r in super::Redraw::ALL {
                ui.selectable_value(&mut self.state.redraw, r, r.label());
            }
        });
    }

    /// One panel in its frame, `[width, height]` points.
    fn framed_panel(&mut self, ui: &mut Ui, kind: PanelKind, [col_w, height]: [f32; 2]) {
        ui.allocate_ui_with_layout(
            egui::vec2(col_w, height + 40.0),
            egui::Layout::top_down(egui::Align::Min),
            |ui| {
                ui.set_width(col_w);
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.set_width(col_w - 14.0);
                    ui.set_min_height(height);
                    self.panel(ui, kind, height);
                })
            },
        );
    }

    fn panel(&mut self, ui: &mut Ui, kind: PanelKind, height: f32) {
        ui.horizontal(|ui| {
            ui.strong(kind.title());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui
                    .small_button("PNG")
                    .on_hover_text("export this panel as PNG, SVG and CSV into exports/ (the whole panel, 1600×1000, scrolled into view or not)")
                    .clicked()
                {
                    self.commands.push(Command::Export(kind));
                }
            });
        });
        let ctx = PanelCtx {
            run: self.registry.shown(),
            runs: self.registry.runs(),
            height,
            training: self.registry.training().map(|l| l.run_id),
        };
        let panels = &mut self.state.panels;
        if let Some(a) = ui
            .push_id(kind.slug(), |ui| panels.ui(kind, ui, &ctx))
            .inner
        {
            self.commands.push(Command::Run(a));
        }
    }

    pub(super) fn message_bar(&mut self, ui: &mut Ui) {
        let mut dismiss = None;
        for (i, m) in self.messages.iter().enumerate().rev().take(3) {
            ui.horizontal(|ui| {
                let color = if m.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                if ui.small_button("×").on_hover_text("dismiss").clicked() {
                    dismiss = Some(i);
                }
                ui.label(RichText::new(&m.text).color(color));
            });
        }
        if let Some(i) = dismiss {
            self.messages.remove(i);
        }
    }

    /// Files dropped on the window open like Open… does.
    pub(super) fn handle_drops(&mut self, ui: &Ui) {
        let dropped = ui.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let p = f.path().to_path_buf();
            if !p.as_os_str().is_empty() {
                self.commands.push(Command::Open(p));
            }
        }
    }
}

/// While files are dragged over the window, says what dropping them does.
pub(super) fn drop_hint(ui: &Ui, ctx: &egui::Context) {
    if ui.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop-hint"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(140));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop a run file to open it",
        egui::FontId::proportional(24.0),
        Color32::WHITE,
    );
}
