//! Closing the window without losing a run: a close request while a run trains or a run has
//! unsaved steps is cancelled, the run is stopped after its step, every unsaved run is saved
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
    /// Asked to close: stopping the run, then saving what is unsaved.
    Saving,
    /// A save made while closing failed: the window stays open until the user asks again.
    SaveFailed,
    /// Nothing is left to wait for: the window may close.
    Done,
}

impl Closing {
    /// Whether a close request is being handled (the signal hook then sends no other).
    pub(super) fn is_closing(self) -> bool {
        self != Closing::Open
    }
}

impl LabApp {
    /// Runs the close protocol for this frame.
    pub(super) fn handle_close(&mut self, ui: &egui::Ui) {
        if ui.input(|i| i.viewport().close_requested()) {
            self.on_close_request(ui);
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
            Closing::Open | Closing::Saving => {
                // Saves still running count too: the window never closes under them.
                if !self.registry.needs_saving() && self.saves.idle() {
                    self.closing = Closing::Done;
                    return;
                }
                ui.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                if self.closing == Closing::Open {
                    self.closing = Closing::Saving;
                    self.info("closing: stopping the run and saving it…");
                    if let Some(l) = self.registry.training() {
                        l.handle.stop();
                    }
                }
            }
        }
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
