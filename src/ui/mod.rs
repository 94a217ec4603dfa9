//! The desktop lab: an eframe app with a top bar (run control, files, device, status), the
//! settings on the left, and live panels in the centre.
//!
//! The UI thread never waits: training runs on the worker from [`crate::train`], whose events
//! are drained with a per-frame time budget; loading, saving, file dialogs and the GPU check run
//! as background jobs ([`jobs`]).

pub mod app;
pub mod designer;
pub mod device_picker;
pub mod eval_sets;
pub mod experiments;
pub mod figure;
pub mod jobs;
pub mod panels;
pub mod plot;
pub mod runs;
pub mod runs_table;
pub mod settings;

pub use app::{LabApp, Message, Redraw, RunRegistry, Tab};

/// The app id: the window class and the folder where eframe keeps the persisted state.
pub const APP_ID: &str = "reslab";

/// Opens the lab window and runs it until it is closed.
pub fn run_window() -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1480.0, 920.0])
            .with_min_inner_size([900.0, 560.0])
            .with_title("reslab: why do skip connections and batch norm let deep nets train?")
            .with_app_id(APP_ID)
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        APP_ID,
        options,
        Box::new(|cc| Ok(Box::new(LabApp::new(cc)))),
    )
    .map_err(|e| format!("the window could not open: {e}"))
}

/// The window's fonts: egui's own, with its monospace font (Hack) as the last fallback of the
/// proportional text too, for the arrows and signs (→, ≤, ‖) its text font lacks.
pub fn fonts() -> egui::FontDefinitions {
    let mut f = egui::FontDefinitions::default();
    if let Some(p) = f.families.get_mut(&egui::FontFamily::Proportional)
        && !p.iter().any(|n| n == "Hack")
    {
        p.push("Hack".to_string());
    }
    f
}

/// Ctrl-C, SIGTERM or SIGHUP close the window through its normal close path (stop the run after
/// its step, save what is unsaved), instead of killing the lab. Called every frame; the first
/// call lets the signal handler wake an idle window.
pub(crate) fn signal_hook(ui: &egui::Ui, ctx: &egui::Context, closing: bool) {
    static WAKER_SET: std::sync::Once = std::sync::Once::new();
    WAKER_SET.call_once(|| {
        let ctx = ctx.clone();
        crate::signals::set_waker(Box::new(move || ctx.request_repaint()));
    });
    if crate::signals::stop_requested() && !closing {
        ui.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}
