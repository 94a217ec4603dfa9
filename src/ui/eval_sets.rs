//! The Lab's editor of evaluation sets: the sets a run validates on beside its validation split
//! (other palettes of Coloured MNIST, shifted data), typed as `reslab train --eval-set` takes
//! them, or added in one click for the palettes a red-trained net never saw.

use crate::spec::{DataSource, DatasetSpec, EvalSet, MAX_EVAL_SETS, Palette};
use egui::Ui;

/// Draws the editor under the dataset settings; returns whether the sets changed.
pub fn eval_sets_ui(ui: &mut Ui, dataset: &mut DatasetSpec) -> bool {
    let before = dataset.eval_sets.clone();
    ui.label("Evaluation sets").on_hover_text(
        "Validated on beside the validation split, normalised with the training statistics; \
         each gets its own curve in Loss & accuracy.",
    );
    let mut remove = None;
    for (k, set) in dataset.eval_sets.iter().enumerate() {
        ui.horizontal(|ui| {
            if ui.small_button("×").on_hover_text("remove").clicked() {
                remove = Some(k);
            }
            ui.label(format!("{}: {}", set.name, set.describe()));
        });
    }
    if let Some(k) = remove {
        dataset.eval_sets.remove(k);
    }
    let id = egui::Id::unique("eval-set-draft");
    let mut draft: String = ui.data_mut(|d| d.get_temp(id)).unwrap_or_default();
    let mut error: Option<String> = None;
    ui.horizontal(|ui| {
        let edit = ui.add(
            egui::TextEdit::singleline(&mut draft)
                .hint_text("bright=brightness:0.3")
                .desired_width(150.0),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Add").clicked() || enter) && !draft.trim().is_empty() {
            match add(dataset, EvalSet::parse(draft.trim())) {
                Ok(()) => draft.clear(),
                Err(e) => error = Some(e),
            }
        }
    });
    if matches!(dataset.source, DataSource::ColouredMnist { .. })
        && ui
            .button("+ every other palette")
            .on_hover_text("orange, green, blue, grey and inverted digits")
            .clicked()
    {
        error = add_palettes(dataset).err();
    }
    ui.data_mut(|d| d.insert_temp(id, draft));
    if let Some(e) = error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    dataset.eval_sets != before
}

/// Adds a parsed set unless its name is taken or the list is full.
fn add(dataset: &mut DatasetSpec, set: Result<EvalSet, String>) -> Result<(), String> {
    let set = set?;
    if dataset.eval_sets.iter().any(|s| s.name == set.name) {
        return Err(format!("there is already a set \"{}\"", set.name));
    }
    if dataset.eval_sets.len() >= MAX_EVAL_SETS {
        return Err(format!("at most {MAX_EVAL_SETS} sets"));
    }
    dataset.eval_sets.push(set);
    Ok(())
}

/// Adds every single-colour palette the training palette is not, as sets named after them.
fn add_palettes(dataset: &mut DatasetSpec) -> Result<(), String> {
    let DataSource::ColouredMnist { palette: trained } = dataset.source else {
        return Ok(());
    };
    for p in Palette::ALL {
        if p == trained || p == Palette::All || dataset.eval_sets.iter().any(|s| s.name == p.name())
        {
            continue;
        }
        add(
            dataset,
            Ok(EvalSet {
                name: p.name().to_string(),
                source: Some(DataSource::ColouredMnist { palette: p }),
                shifts: Vec::new(),
            }),
        )?;
    }
    Ok(())
}
