//! The lab's work comes back (issue 23): after a relaunch the runs it held are in Compare again
//! (with their Compare choice and the shown run) and the experiment results it showed are back
//! in the Experiments tab; a scratch run discarded from Compare leaves no file, even through
//! closing; the Runs tab lists held runs and the runs folder's files, renames a run with its
//! file and deletes a file after asking.

mod common;

use common::lab::{DroppedPath, MemStorage, harness, small_settings, step_until};
use eframe::App;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{By, Queryable};
use reslab::ui::LabApp;
use std::path::{Path, PathBuf};

fn run_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".reslab.json"))
                .collect()
        })
        .unwrap_or_default()
}

/// Trains the small network to its end and returns the harness.
fn trained(dir: &Path) -> Harness<'static, LabApp> {
    trained_in(harness(dir))
}

/// Trains the small network to its end in `h`.
fn trained_in(mut h: Harness<'static, LabApp>) -> Harness<'static, LabApp> {
    small_settings(h.state_mut(), 20);
    h.get_by_label("Train").click();
    step_until(&mut h, "the run's end", |a| {
        !a.registry().is_training() && common::lab::last_step(a) >= 20
    });
    h
}

/// Trains the small network, saves it with the top bar's Save (Compare's list has one too) and
/// returns the harness and the run file.
fn trained_and_saved(dir: &Path) -> (Harness<'static, LabApp>, PathBuf) {
    saved(trained(dir))
}

/// Saves the run of `h` with the top bar's Save; the harness and the run file.
fn saved(mut h: Harness<'static, LabApp>) -> (Harness<'static, LabApp>, PathBuf) {
    h.get_all_by_label("Save").next().unwrap().click();
    step_until(&mut h, "the save", |a| {
        a.registry()
            .runs()
            .iter()
            .all(|r| r.path.is_some() && !r.dirty)
    });
    let saved = h.state().registry().runs()[0].path.clone().unwrap();
    (h, saved)
}

#[test]
fn a_relaunch_restores_compare_and_the_experiment_results() {
    use reslab::experiments::{self, ExperimentFile};
    let dir = common::temp_dir("app-runs", "relaunch");
    let (mut h, saved) = trained_and_saved(&dir);
    // An experiment result shown in the Experiments tab.
    let exp = ExperimentFile::new(
        experiments::find("init-variance").unwrap(),
        Default::default(),
    );
    let exp_path = exp.save(&dir.join("experiments")).unwrap();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(exp_path)));
    h.step();
    step_until(&mut h, "the experiment file", |a| {
        a.experiments().result().is_some()
    });
    let mut memory = MemStorage::default();
    h.state_mut().save(&mut memory);
    drop(h);

    let stored = memory.clone();
    let mut again = Harness::builder()
        .with_size([1500.0, 950.0])
        .with_accessibility_check(false)
        .allow_missing_glyphs()
        .with_max_steps(20)
        .build_eframe(move |cc| LabApp::restore(&cc.egui_ctx, Some(&stored)));
    step_until(&mut again, "the runs and results", |a| {
        a.registry().runs().len() == 1 && a.experiments().result().is_some()
    });
    let run = &again.state().registry().runs()[0];
    assert_eq!(run.path.as_deref(), Some(saved.as_path()));
    assert!(run.compare, "shown in Compare again");
    assert_eq!(again.state().registry().shown_id(), Some(run.id));
    assert_eq!(
        again.state().experiments().result().unwrap().name,
        "init-variance"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn discarding_a_scratch_run_leaves_no_file() {
    let dir = common::temp_dir("app-runs", "discard");
    let mut h = trained(&dir);
    assert_eq!(h.state().registry().runs().len(), 1);
    h.state_mut()
        .set_panels(&[reslab::ui::panels::PanelKind::Compare], 1);
    h.run_steps(2);
    h.get_by_label("Discard").click();
    h.run_steps(3);
    let said: Vec<String> = h
        .state()
        .messages()
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert!(h.state().registry().runs().is_empty(), "{said:?}");
    assert!(!h.state().registry().needs_saving(), "nothing left to save");
    // Closing saves every unsaved run: there is none.
    h.state_mut().on_exit();
    assert!(run_files(&dir).is_empty(), "{:?}", run_files(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clicks the `k`-th widget labelled `label`.
fn click_nth(h: &mut Harness<'static, LabApp>, label: &str, k: usize) {
    h.get_all_by_label(label).nth(k).unwrap().click();
}

#[test]
fn the_runs_tab_lists_renames_and_deletes_runs() {
    let dir = common::temp_dir("app-runs", "table");
    let (mut h, saved) = trained_and_saved(&dir);
    // Another run file in the folder, which the lab does not hold.
    let other = dir.join("other.reslab.json");
    reslab::runfile::transfer(&saved, &other, false).unwrap();
    h.get_by_role_and_label(Role::Button, "Runs").click();
    h.run_steps(2);
    step_until(&mut h, "the folder's scan", |a| a.background_jobs() == 0);
    h.run_steps(2);
    let name = h.state().registry().runs()[0].file.name.clone();
    // One row for the held run (its file is not listed twice), one for the other file.
    assert_eq!(h.get_all_by_label(&name).count(), 1);
    h.get_by_label("other");
    assert_eq!(h.get_all_by_label("finished").count(), 2);
    assert_eq!(h.get_all_by_label("20").count(), 2, "steps");
    assert_eq!(
        h.get_all_by_label("Open").count(),
        1,
        "only the file row opens"
    );
    // Rename the held run: its file moves, the run follows it.
    click_nth(&mut h, "Rename", 0);
    h.run_steps(2);
    let field = || By::new().role(Role::TextInput).value(&name);
    h.get(field()).focus();
    h.run_steps(1);
    h.get(field()).type_text("-renamed");
    h.run_steps(1);
    h.get_by_label("OK").click();
    step_until(&mut h, "the rename", |a| {
        a.messages().iter().any(|m| m.text.starts_with("renamed "))
    });
    let run = &h.state().registry().runs()[0];
    let new_name = run.file.name.clone();
    assert!(
        new_name.contains("renamed") && new_name.len() == name.len() + 8,
        "{new_name}"
    );
    let renamed = dir.join(format!("{new_name}.reslab.json"));
    assert_eq!(run.path.as_deref(), Some(renamed.as_path()));
    assert!(
        renamed.is_file() && !saved.exists(),
        "{:?}",
        run_files(&dir)
    );
    let loaded = reslab::runfile::load(&renamed).unwrap();
    assert_eq!(loaded.run.name, new_name);
    assert_eq!(loaded.run.history.last_step, 20);
    // The held run's row has the date its file was written (the scan after the rename).
    step_until(&mut h, "the folder's scan", |a| a.background_jobs() == 0);
    h.run_steps(2);
    let today = reslab::ui::runs::date_time(std::time::SystemTime::now());
    assert!(
        h.query_all_by_label_contains(&today[..10]).count() >= 2,
        "dates of today"
    );
    // Delete the other file: asked first; Cancel keeps it, Delete removes it.
    click_nth(&mut h, "Delete", 1);
    h.run_steps(2);
    h.get_by_label_contains("This cannot be undone");
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(other.is_file());
    click_nth(&mut h, "Delete", 1);
    h.run_steps(2);
    let buttons = h.get_all_by_label("Delete").count();
    click_nth(&mut h, "Delete", buttons - 1);
    step_until(&mut h, "the delete", |a| {
        a.messages().iter().any(|m| m.text.starts_with("deleted "))
    });
    assert!(!other.exists());
    assert_eq!(run_files(&dir), vec![renamed.clone()]);
    step_until(&mut h, "the folder's scan", |a| a.background_jobs() == 0);
    h.run_steps(2);
    assert!(h.query_by_label("other").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts every background thread; the Runs tab's rename or delete waits a moment first, so a
/// save can be asked for while it runs.
fn slow_file_changes(name: &str, work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    let slow = name.starts_with("run file");
    reslab::ui::jobs::spawn_thread(
        name,
        Box::new(move || {
            if slow {
                std::thread::sleep(std::time::Duration::from_millis(400));
            }
            work()
        }),
    )
}

/// A save asked for while the run's file is being renamed is refused with the reason (it would
/// write the old file under the rename), and the run follows its file once the rename is done.
#[test]
fn no_save_writes_a_run_file_while_it_is_renamed() {
    let dir = common::temp_dir("app-runs", "rename-race");
    let slowed = common::lab::harness_with_spawner(&dir, slow_file_changes);
    let (mut h, saved) = saved(trained_in(slowed));
    h.get_by_role_and_label(Role::Button, "Runs").click();
    h.run_steps(2);
    h.get_all_by_label("Rename").next().unwrap().click();
    h.run_steps(2);
    let name = h.state().registry().runs()[0].file.name.clone();
    let field = || By::new().role(Role::TextInput).value(&name);
    h.get(field()).focus();
    h.run_steps(1);
    h.get(field()).type_text("-b");
    h.run_steps(1);
    h.get_by_label("OK").click();
    h.run_steps(1);
    // The top bar's Save while the rename runs.
    h.get_all_by_label("Save").next().unwrap().click();
    h.run_steps(1);
    assert!(
        h.state()
            .messages()
            .iter()
            .any(|m| m.error && m.text.contains("is being renamed or deleted")),
        "{:?}",
        h.state()
            .messages()
            .iter()
            .map(|m| &m.text)
            .collect::<Vec<_>>()
    );
    step_until(&mut h, "the rename", |a| {
        a.messages().iter().any(|m| m.text.starts_with("renamed "))
    });
    let run = &h.state().registry().runs()[0];
    assert_ne!(run.path.as_deref(), Some(saved.as_path()));
    assert!(!saved.exists() && run.path.as_ref().unwrap().is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
