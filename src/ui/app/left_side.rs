//! The left side: the settings (network, dataset, training), then the Runs section (a path field
//! for machines without a file dialog, and the recent runs).

use super::super::settings::{SettingsAction, spec_summary};
use super::LabApp;
use super::commands::Command;
use crate::runfile;
use egui::{RichText, Ui};
use std::path::PathBuf;

impl LabApp {
    pub(super) fn left_side(&mut self, ui: &mut Ui) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            let settings = &self.state.settings;
            let summary = spec_summary(&self.spec, &settings.config, &settings.dataset);
            if self.registry.is_training() {
                let state = if self.registry.is_paused() {
                    "A run is paused"
                } else {
                    "A run is training"
                };
                ui.label(
                    RichText::new(format!("{state}; it keeps the settings it started with."))
                        .weak(),
                );
            }
            if let Some(name) = self.custom_name() {
                ui.label(
                    RichText::new(format!(
                        "Network: {name}, edited in the Designer; the settings below built it \
                         before the edits, and changing one starts again from them."
                    ))
                    .color(ui.visuals().warn_fg_color),
                );
            }
            let twin = self.twin().map(|(label, _)| label);
            let devices = crate::ui::settings::Devices {
                gpu: &self.gpu,
                remote: &self.remote,
            };
            let action = self.state.settings.ui(ui, devices, &summary);
            if let Some(label) = twin
                && ui
                    .add_enabled(!self.registry.is_training(), egui::Button::new(label))
                    .on_hover_text(
                        "the same depth and settings with the skips taken away (or put in): \
                         both runs are then in Compare",
                    )
                    .on_disabled_hover_text("wait for the run that trains")
                    .clicked()
            {
                self.commands.push(Command::TrainTwin);
            }
            match action {
                SettingsAction::None => {}
                SettingsAction::NetChanged => self.commands.push(Command::RebuildSpec),
                SettingsAction::DatasetChanged => self.commands.push(Command::AdaptSpec),
                SettingsAction::PickDataFolder => self.commands.push(Command::PickDataFolder),
                SettingsAction::CheckGpu => self.commands.push(Command::CheckGpu),
                SettingsAction::CheckRemote(e) => self.commands.push(Command::CheckRemote(e)),
            }
            ui.separator();
            ui.heading("Runs");
            self.path_row(ui);
            self.recent_runs(ui);
        });
    }

    /// The network's name when the designer's network is not what the settings build.
    fn custom_name(&self) -> Option<String> {
        let name = self.train_spec().ok()?.name.clone();
        self.network_is_custom().then_some(name)
    }

    /// A run-file path to open, or to save the shown run to.
    fn path_row(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let r = ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .hint_text("path/to/run.reslab.json")
                    .desired_width(170.0),
            );
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let path = self.path_field.trim();
            if (ui.button("Open path").clicked() || enter) && !path.is_empty() {
                self.commands.push(Command::Open(PathBuf::from(path)));
            }
            if let Some(id) = self.registry.shown_id()
                && ui
                    .button("Save to path")
                    .on_hover_text("save the shown run to this path")
                    .clicked()
                && !path.is_empty()
            {
                self.commands.push(Command::SaveTo(id, PathBuf::from(path)));
            }
        });
    }

    /// The run files in the runs folder (and those saved or opened since), newest first.
    fn recent_runs(&mut self, ui: &mut Ui) {
        ui.label(RichText::new(format!(
            "Recent runs in {}",
            self.state.settings.runs_dir.display()
        )));
        if self.recent.is_empty() {
            ui.label(RichText::new("none yet").weak());
        }
        for p in &self.recent {
            let name = p
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .trim_end_matches(runfile::SUFFIX)
                        .to_string()
                })
                .unwrap_or_default();
            if ui
                .link(name)
                .on_hover_text(p.display().to_string())
                .clicked()
            {
                self.commands.push(Command::Open(p.clone()));
            }
        }
    }
}
