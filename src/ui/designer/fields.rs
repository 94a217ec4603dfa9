//! The editable fields of one layer (its op's numbers and choices, its init), as rows of the
//! inspector's grid. Edits go into the copy it is given; the inspector compares and reports.

use crate::spec::{Activation, Init, LayerOp, LayerSpec};
use egui::{ComboBox, DragValue, Ui};

/// The fields of one layer, as grid rows: its op's, then for a layer with weights its
/// initialisation.
pub(super) fn layer_fields(ui: &mut Ui, l: &mut LayerSpec) {
    op_fields(ui, &mut l.op);
    if l.has_weights() {
        init_fields(ui, l);
    }
}

/// The numbers and choices of one op.
fn op_fields(ui: &mut Ui, op: &mut LayerOp) {
    match op {
        LayerOp::Linear { out, bias } => {
            ui.label("Outputs");
            ui.add(DragValue::new(out).range(1..=65_536).prefix("out "));
            ui.end_row();
            ui.label("Bias");
            ui.checkbox(bias, "bias");
            ui.end_row();
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => {
            ui.label("Channels");
            ui.add(DragValue::new(out).range(1..=65_536).prefix("out "));
            ui.end_row();
            ui.label("Kernel");
            ui.add(DragValue::new(kernel).range(1..=31).prefix("k "));
            ui.end_row();
            ui.label("Stride");
            ui.add(DragValue::new(stride).range(1..=31).prefix("s "));
            ui.end_row();
            ui.label("Padding");
            ui.add(DragValue::new(padding).range(0..=31).prefix("p "));
            ui.end_row();
            ui.label("Bias");
            ui.checkbox(bias, "bias");
            ui.end_row();
        }
        LayerOp::BatchNorm { momentum, epsilon } => {
            ui.label("Momentum");
            ui.add(
                DragValue::new(momentum)
                    .range(0.0..=1.0)
                    .speed(0.01)
                    .prefix("m "),
            );
            ui.end_row();
            epsilon_field(ui, epsilon);
        }
        LayerOp::LayerNorm { epsilon } => epsilon_field(ui, epsilon),
        LayerOp::GroupNorm { groups, epsilon } => {
            ui.label("Groups");
            ui.add(DragValue::new(groups).range(1..=65_536).prefix("groups "))
                .on_hover_text("must divide the input's channels; 1 is LayerNorm");
            ui.end_row();
            epsilon_field(ui, epsilon);
        }
        LayerOp::Activation { function } => {
            ui.label("Function");
            ComboBox::from_id_salt("designer-activation")
                .selected_text(format!("{function:?}"))
                .show_ui(ui, |ui| {
                    for a in Activation::ALL {
                        ui.selectable_value(function, a, format!("{a:?}"));
                    }
                });
            ui.end_row();
        }
        LayerOp::Head { outputs } => {
            ui.label("Outputs");
            ui.add(DragValue::new(outputs).range(1..=65_536).prefix("out "));
            ui.end_row();
        }
        LayerOp::PatchEmbed { patch, dim } => {
            ui.label("Patch");
            ui.add(DragValue::new(patch).range(1..=4_096).prefix("p "))
                .on_hover_text("side of a square patch; must divide the image's height and width");
            ui.end_row();
            ui.label("Dim");
            ui.add(DragValue::new(dim).range(1..=65_536).prefix("dim "))
                .on_hover_text("features of each token");
            ui.end_row();
        }
        LayerOp::SelfAttention { heads } => {
            ui.label("Heads");
            ui.add(DragValue::new(heads).range(1..=65_536).prefix("heads "))
                .on_hover_text("must divide the tokens' features");
            ui.end_row();
        }
        LayerOp::GlobalAvgPool | LayerOp::Flatten => {}
    }
}

/// A normalisation's ε.
fn epsilon_field(ui: &mut Ui, epsilon: &mut f64) {
    ui.label("Epsilon");
    ui.add(
        DragValue::new(epsilon)
            .range(1e-12..=1.0)
            .speed(1e-6)
            .prefix("eps "),
    );
    ui.end_row();
}

/// The weight initialisation and the bias's standard deviation.
fn init_fields(ui: &mut Ui, l: &mut LayerSpec) {
    ui.label("Init");
    ComboBox::from_id_salt("designer-init")
        .selected_text(format!("{:?}", l.init))
        .show_ui(ui, |ui| {
            for i in [Init::He, Init::Xavier, Init::Torch, Init::Zero] {
                ui.selectable_value(&mut l.init, i, format!("{i:?}"));
            }
        });
    ui.end_row();
    ui.label("Bias std");
    ui.add(
        DragValue::new(&mut l.bias_std)
            .range(0.0..=10.0)
            .speed(0.01)
            .prefix("std "),
    );
    ui.end_row();
}
