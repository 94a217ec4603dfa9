//! The top bar: the tabs, run control (Train/Resume, Pause, Stop, Reset), files (Open, Save,
//! Save as) and the device; the status line it makes is drawn in the bar at the bottom.

use super::super::settings::{GpuState, software_gpu_text};
use super::commands::Command;
use super::{LabApp, Tab};
use crate::numbers::sig;
use crate::spec::DeviceChoice;
use egui::Ui;

impl LabApp {
    pub(super) fn top_bar(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.state.tab, Tab::Lab, "Lab");
            ui.selectable_value(&mut self.state.tab, Tab::Designer, "Designer");
            ui.selectable_value(&mut self.state.tab, Tab::Experiments, "Experiments");
            ui.selectable_value(&mut self.state.tab, Tab::Runs, "Runs");
            if matches!(self.state.tab, Tab::Lab | Tab::Designer) {
                ui.toggle_value(&mut self.state.settings_open, "Settings")
                    .on_hover_text("show or hide the settings on the left");
            }
            ui.separator();
            self.run_buttons(ui);
            ui.separator();
            self.file_buttons(ui);
            ui.separator();
            self.device_label(ui);
        });
    }

    fn run_buttons(&mut self, ui: &mut Ui) {
        let training = self.registry.is_training();
        let paused = self.registry.is_paused();
        let blocker = self.train_blocker();
        let label = if paused { "Resume" } else { "Train" };
        let r = ui
            .add_enabled(blocker.is_none() || paused, egui::Button::new(label))
            .on_hover_text("train the network on the left (CPU by default)");
        let r = match &blocker {
            Some(why) => r.on_disabled_hover_text(why.as_str()),
            None => r,
        };
        if r.clicked() {
            self.commands.push(if paused {
                Command::Resume
            } else {
                Command::Train
            });
        }
        if ui
            .add_enabled(training && !paused, egui::Button::new("Pause"))
            .clicked()
        {
            self.commands.push(Command::Pause);
        }
        if ui
            .add_enabled(training, egui::Button::new("Stop"))
            .clicked()
        {
            self.commands.push(Command::Stop);
        }
        if ui
            .add_enabled(
                self.registry.shown_id().is_some(),
                egui::Button::new("Reset"),
            )
            .on_hover_text("stop, and clear the panels (the run stays in Compare)")
            .clicked()
        {
            self.commands.push(Command::Reset);
        }
    }

    fn file_buttons(&mut self, ui: &mut Ui) {
        if ui.button("Open…").clicked() {
            self.commands.push(Command::OpenDialog);
        }
        let shown = self.registry.shown_id();
        if ui
            .add_enabled(shown.is_some(), egui::Button::new("Save"))
            .clicked()
            && let Some(id) = shown
        {
            self.commands.push(Command::Save(id));
        }
        if ui
            .add_enabled(shown.is_some(), egui::Button::new("Save as…"))
            .clicked()
            && let Some(id) = shown
        {
            self.commands.push(Command::SaveAsDialog(id));
        }
    }

    /// The device training would use, what the GPU check found, and why in the hover text.
    fn device_label(&self, ui: &mut Ui) {
        let gpu = match &self.gpu {
            GpuState::Available(_) => "GPU available",
            GpuState::Software(_) => "software GPU only",
            GpuState::Unavailable(_) => "no GPU",
            GpuState::Checking => "checking for a GPU",
            GpuState::Unknown => "GPU not checked",
        };
        let device = match &self.state.settings.config.device {
            DeviceChoice::Cpu => format!("device: CPU ({gpu})"),
            DeviceChoice::Gpu => format!("device: GPU ({gpu})"),
            DeviceChoice::Remote(e) => format!("device: {e} ({})", self.remote.word(e)),
        };
        let r = ui.label(device);
        match &self.gpu {
            GpuState::Available(d) => {
                r.on_hover_text(format!("wgpu found an adapter: {d}; pick it on the left"));
            }
            GpuState::Software(d) => {
                r.on_hover_text(software_gpu_text(d));
            }
            GpuState::Unavailable(why) => {
                r.on_hover_text(why.as_str());
            }
            GpuState::Checking | GpuState::Unknown => {}
        }
    }

    /// The status line: step, loss, samples/s, elapsed.
    pub(super) fn status_text(&self) -> String {
        let Some(run) = self.registry.shown() else {
            return "no run: press Train, or open a run file".into();
        };
        let live = self.registry.live().filter(|l| l.run_id == run.id);
        let h = run.history();
        let loss = h
            .get(crate::metrics::series::LOSS, "")
            .and_then(|s| s.last())
            .map_or("–".into(), |l| sig(l as f64));
        match live {
            Some(l) => {
                let state = match (l.ended, l.is_paused()) {
                    (Some(_), _) => run.file.status.word(),
                    (None, true) => "paused",
                    (None, false) => "training",
                };
                // The rate and the time left only while steps are being taken.
                let (rate, left) = match (l.is_running(), l.pace.samples_per_sec()) {
                    (true, Some(sps)) => (
                        format!("{} samples/s", crate::numbers::si(sps)),
                        l.pace
                            .time_left(l.total_steps)
                            .map_or(String::new(), |t| format!(" · {} left", clock(t))),
                    ),
                    _ => ("– samples/s".into(), String::new()),
                };
                format!(
                    "{state} · step {}/{} · loss {loss} · {rate} · {}{left}",
                    h.last_step,
                    l.total_steps,
                    clock(l.elapsed()),
                )
            }
            None => format!(
                "{} · {} · step {} · loss {loss}",
                run.file.name,
                run.file.status.word(),
                h.last_step
            ),
        }
    }
}

/// `mm:ss`, or `h:mm:ss` from an hour.
fn clock(t: std::time::Duration) -> String {
    let secs = t.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}
