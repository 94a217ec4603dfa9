//! Closing the window without losing a run: a close request while a run trains or a run has
//! unsaved steps is cancelled and the lab asks once what to do (save them all, close without
//! saving, or stay), unless the user chose to always save or the process was asked to stop (a
//! signal cannot be asked back). Saving stops the run after its step, saves every unsaved run
//! (into its own file, or the runs folder), and then the window closes.
//!
//! A save that fails on the way keeps the window open with the reason in the message bar, so the
//! user can save elsewhere; a second close request then closes the window (the exit path tries
//! each unsaved run once more, on the UI thread, where no background thread is needed).

use super::LabApp;
use std::time::{Duration, Instant};

/// Where closing the window stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Closing {
    /// Not closing.
    #[default]
    Open,
    /// Asked to close with unsaved runs: the lab asks what to do.
    Asking,
    /// Asked to close: stopping the run, then saving what is unsaved.
    Saving,
    /// A save made while closing failed: the window stays open until the user asks again.
    SaveFailed,
    /// The user chose to close without saving: waiting for the run to stop and for saves and
    /// file changes already under way (the window never closes under them), then closing.
    Discarding,
    /// Nothing is left to wait for: the window may close.
    Done,
}

impl Closing {
    /// Whether a close request is being handled (the signal hook then sends no other).
    pub(super) fn is_closing(self) -> bool {
        !matches!(self, Closing::Open | Closing::Asking)
    }
}

/// What the user chose in the close dialog.
enum CloseChoice {
    Save,
    Discard,
    Stay,
}

impl LabApp {
    /// Runs the close protocol for this frame.
    pub(super) fn handle_close(&mut self, ui: &egui::Ui) {
        if ui.input(|i| i.viewport().close_requested()) {
            self.on_close_request(ui);
        }
        if self.closing == Closing::Asking {
            self.close_dialog(ui);
        }
        if self.closing == Closing::Discarding && !self.registry.is_training() && self.saves.idle()
        {
            self.closing = Closing::Done;
            ui.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if self.closing != Closing::Saving || self.registry.is_training() || !self.saves.idle() {
            return;
        }
        let unsaved: Vec<u64> = self.registry.unsaved().map(|r| r.id).collect();
        if unsaved.is_empty() {
            self.closing = Closing::Done;
            ui.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        for id in unsaved {
            self.save_now(id, None);
            if let Some(r) = self.registry.get_mut(id) {
                // Marked clean once written; a failed save marks it dirty again.
                r.dirty = false;
            }
        }
    }

    fn on_close_request(&mut self, ui: &egui::Ui) {
        match self.closing {
            Closing::Done => {}
            Closing::SaveFailed => {
                self.closing = Closing::Done;
                self.info("closing; unsaved runs get one more try on the way out");
            }
            Closing::Discarding => ui.send_viewport_cmd(egui::ViewportCommand::CancelClose),
            Closing::Open | Closing::Asking | Closing::Saving => {
                // Saves still running count too: the window never closes under them.
                if !self.registry.needs_saving() && self.saves.idle() {
                    self.closing = Closing::Done;
                    return;
                }
                ui.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                let unasked = self.state.always_save_on_close || crate::signals::stop_requested();
                match self.closing {
                    Closing::Open | Closing::Asking if unasked => self.close_saving(),
                    Closing::Open if self.registry.needs_saving() => {
                        self.closing = Closing::Asking;
                    }
                    // Only saves under way: wait for them.
                    Closing::Open => self.closing = Closing::Saving,
                    _ => {}
                }
            }
        }
    }

    /// Closing, saving what is unsaved: the run training stops after its step.
    fn close_saving(&mut self) {
        self.closing = Closing::Saving;
        self.info("closing: stopping the run and saving it…");
        if let Some(l) = self.registry.training() {
            l.handle.stop();
        }
    }

    /// Asks once what closing does with the unsaved runs.
    fn close_dialog(&mut self, ui: &egui::Ui) {
        let text = self.close_question();
        let always = &mut self.state.always_save_on_close;
        match close_modal(ui, &text, always) {
            Some(CloseChoice::Save) => self.close_saving(),
            Some(CloseChoice::Discard) => {
                self.discard_on_exit = true;
                if let Some(l) = self.registry.training() {
                    l.handle.stop();
                }
                // Closes from `handle_close` once the run stopped and nothing is being written.
                self.closing = Closing::Discarding;
            }
            Some(CloseChoice::Stay) => self.closing = Closing::Open,
            None => {}
        }
    }

    /// What closing would do, in words: the run it stops, the runs no file holds.
    fn close_question(&self) -> String {
        let training = self.registry.training().map(|l| l.run_id);
        let training = training
            .and_then(|id| self.registry.get(id))
            .map(|r| r.file.name.clone());
        let mut text = String::new();
        if let Some(name) = &training {
            text.push_str(&format!("{name} is training: closing stops it. "));
        }
        let others: Vec<String> = self
            .registry
            .unsaved()
            .map(|r| r.file.name.clone())
            .filter(|n| Some(n) != training.as_ref())
            .collect();
        if !others.is_empty() {
            let runs = match others.len() {
                1 => "1 run holds steps".to_string(),
                n => format!("{n} runs hold steps"),
            };
            text.push_str(&format!("{runs} no file has yet: {}.", others.join(", ")));
        }
        text.trim_end().to_string()
    }

    /// A save failed: while closing, the window stays open (never close over a failed save
    /// unasked) and the user is told how to go on.
    pub(super) fn save_failed_while_closing(&mut self) {
        if self.closing == Closing::Saving {
            self.closing = Closing::SaveFailed;
            self.error(
                "the window stays open: save the run elsewhere (Save as…), or close the window \
                 again to quit (the lab tries once more to save on the way out)",
            );
        }
    }

    /// The window is going away (after the close protocol, or without it, e.g. the process is
    /// shut down): stop a run still training and save every unsaved run here; blocking is fine
    /// now, and needs no background thread.
    pub(super) fn save_before_exit(&mut self) {
        if self.discard_on_exit {
            // The user chose to close without saving: the run stops, nothing is written.
            if let Some(live) = self.registry.training() {
                live.handle.stop();
            }
            return;
        }
        if let Some(live) = self.registry.training() {
            live.handle.stop();
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.registry.is_training() && Instant::now() < deadline {
                self.registry.apply_live_events(Duration::from_millis(50));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let runs_dir = self.state.settings.runs_dir.clone();
        for run in self.registry.unsaved() {
            let Some(to) = self.registry.save_target(run.id, None, &runs_dir) else {
                continue;
            };
            let mut file = run.file.clone();
            file.name = to.name;
            if let Err(e) = crate::runfile::save_to(&to.path, &file, run.checkpoint.as_deref()) {
                eprintln!("reslab: could not save {} on exit: {e}", file.name);
            }
        }
    }
}

/// The close dialog: the question, the always-save setting and the three choices.
fn close_modal(ui: &egui::Ui, text: &str, always_save: &mut bool) -> Option<CloseChoice> {
    let mut choice = None;
    egui::Modal::new(egui::Id::unique("close-dialog")).show(ui.ctx(), |ui| {
        ui.set_max_width(460.0);
        ui.heading("Close the lab?");
        ui.label(text);
        ui.checkbox(
            always_save,
            "always save unsaved runs when closing, without asking",
        );
        ui.horizontal(|ui| {
            if ui.button("Save and close").clicked() {
                choice = Some(CloseChoice::Save);
            }
            if ui
                .button("Close without saving")
                .on_hover_text("the steps no file has are lost")
                .clicked()
            {
                choice = Some(CloseChoice::Discard);
            }
            if ui.button("Cancel").clicked() {
                choice = Some(CloseChoice::Stay);
            }
        });
    });
    choice
}
