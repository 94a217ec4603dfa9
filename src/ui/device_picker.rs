//! The Device row of the training settings: CPU, GPU (labelled by what its check found) or a
//! remote `reslab serve` endpoint (typed, then checked in the background).

use super::settings::{GpuState, software_gpu_text};
use crate::spec::{DeviceChoice, Endpoint};
use egui::Ui;

/// What the last check of a remote endpoint found.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RemoteState {
    /// Not checked.
    #[default]
    Unknown,
    /// Being checked.
    Checking(Endpoint),
    /// A server answered (and took the token).
    Reached(Endpoint),
    /// Nothing answered, or the token was refused: why.
    Unreachable(Endpoint, String),
}

impl RemoteState {
    /// Why `endpoint` cannot be trained on, when its last check said so.
    pub fn refusal(&self, endpoint: &Endpoint) -> Option<&str> {
        match self {
            RemoteState::Unreachable(e, why) if e == endpoint => Some(why),
            _ => None,
        }
    }

    /// The state of `endpoint` in a few words.
    pub fn word(&self, endpoint: &Endpoint) -> &'static str {
        match self {
            RemoteState::Checking(e) if e == endpoint => "connecting",
            RemoteState::Reached(e) if e == endpoint => "connected",
            RemoteState::Unreachable(e, _) if e == endpoint => "unreachable",
            _ => "not checked",
        }
    }
}

/// What the device row asks the app to do.
#[derive(Debug, PartialEq)]
pub enum DeviceAction {
    /// Nothing.
    None,
    /// Check whether the GPU can be used.
    CheckGpu,
    /// Connect to this endpoint in the background.
    CheckRemote(Endpoint),
}

/// The device row of the settings grid. `remote_text` is the endpoint as typed (kept while it
/// does not parse; the device changes to it when it does).
pub fn device_row(
    ui: &mut Ui,
    (device, remote_text): (&mut DeviceChoice, &mut String),
    (gpu, remote): (&GpuState, &RemoteState),
) -> DeviceAction {
    let mut action = DeviceAction::None;
    ui.label("Device");
    ui.horizontal(|ui| {
        ui.selectable_value(device, DeviceChoice::Cpu, "CPU");
        if gpu_button(ui, device, gpu) && *gpu == GpuState::Unknown {
            action = DeviceAction::CheckGpu;
        }
        let remote_on = matches!(device, DeviceChoice::Remote(_));
        let r = ui.selectable_label(remote_on, "Remote").on_hover_text(
            "train on a `reslab serve` on another machine (README: remote training)",
        );
        if r.clicked()
            && !remote_on
            && let Ok(e) = Endpoint::parse(remote_text.trim())
        {
            *device = DeviceChoice::Remote(e.clone());
            action = DeviceAction::CheckRemote(e);
        } else if r.clicked() && !remote_on {
            *device = DeviceChoice::Remote(placeholder());
        }
    });
    ui.end_row();
    if let DeviceChoice::Remote(current) = device {
        ui.label("Server");
        ui.horizontal(|ui| {
            if let Some(a) = remote_rows(ui, current, remote_text, remote) {
                action = a;
            }
        });
        ui.end_row();
    }
    action
}

/// The address a Remote click starts from when nothing valid was typed.
fn placeholder() -> Endpoint {
    Endpoint::parse("ws://127.0.0.1:4600").expect("a valid endpoint")
}

/// The GPU button; true when it was clicked (the GPU is then chosen).
fn gpu_button(ui: &mut Ui, device: &mut DeviceChoice, gpu: &GpuState) -> bool {
    let label = match gpu {
        GpuState::Available(_) => "GPU (ok)",
        GpuState::Software(_) => "GPU (software)",
        GpuState::Unavailable(_) => "GPU (n/a)",
        GpuState::Checking => "GPU …",
        GpuState::Unknown => "GPU",
    };
    let r = ui.add_enabled(
        !matches!(gpu, GpuState::Unavailable(_)),
        egui::Button::selectable(*device == DeviceChoice::Gpu, label),
    );
    let r = match gpu {
        GpuState::Available(d) => r.on_hover_text(d.as_str()),
        GpuState::Software(d) => r.on_hover_text(software_gpu_text(d)),
        GpuState::Unavailable(why) => r.on_disabled_hover_text(why.as_str()),
        GpuState::Checking => r.on_hover_text("checking for a GPU…"),
        GpuState::Unknown => r.on_hover_text("click to check for a GPU"),
    };
    if r.clicked() {
        *device = DeviceChoice::Gpu;
    }
    r.clicked()
}

/// The endpoint field, what its check found and a Connect button.
fn remote_rows(
    ui: &mut Ui,
    current: &mut Endpoint,
    text: &mut String,
    remote: &RemoteState,
) -> Option<DeviceAction> {
    if text.is_empty() {
        *text = current.url().to_string();
    }
    let edit = ui.add(
        egui::TextEdit::singleline(text)
            .desired_width(180.0)
            .hint_text("ws://HOST:PORT"),
    );
    let parsed = Endpoint::parse(text.trim());
    if let Ok(e) = &parsed {
        *current = e.clone();
    }
    let checking = matches!(remote, RemoteState::Checking(e) if e == current);
    let connect = ui
        .add_enabled(parsed.is_ok() && !checking, egui::Button::new("Connect"))
        .on_hover_text(format!(
            "check that a reslab serve answers there (its token from {})",
            crate::spec::TOKEN_VAR
        ));
    match (&parsed, remote) {
        (Err(why), _) => {
            ui.colored_label(ui.visuals().error_fg_color, "not ws://HOST:PORT")
                .on_hover_text(why.as_str());
        }
        (Ok(_), RemoteState::Unreachable(e, why)) if e == current => {
            ui.colored_label(ui.visuals().error_fg_color, "unreachable")
                .on_hover_text(why.as_str());
        }
        (Ok(_), r) => {
            ui.label(r.word(current));
        }
    }
    let submitted = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    (parsed.is_ok() && (connect.clicked() || submitted))
        .then(|| DeviceAction::CheckRemote(current.clone()))
}
