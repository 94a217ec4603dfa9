//! The desktop lab driven through egui_kittest (no GPU, no display): train, pause, stop, open a
//! run and read its values from the accessibility tree, survive a broken file, save on close.

mod common;

use common::lab::{DroppedPath, MemStorage, harness, last_step, small_settings, step_until};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use reslab::metrics::series;
use reslab::numbers::sig as format_sig;
use reslab::runfile::RunStatus;
use reslab::spec::{DataSource, DatasetSpec, Duration as Steps};
use reslab::ui::LabApp;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn loss_points(app: &LabApp) -> usize {
    app.registry()
        .shown()
        .and_then(|r| r.history().get(series::LOSS, ""))
        .map_or(0, |s| s.len())
}

#[test]
fn train_fills_the_loss_plot_and_pause_resume_stop_work() {
    let dir = common::temp_dir("app", "train");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 100_000);
    h.step();
    h.get_by_label("Train").click();
    step_until(&mut h, "loss points", |a| loss_points(a) >= 20);
    assert!(h.state().registry().is_training());
    // The loss panel's summary names the latest values.
    let last = h
        .state()
        .registry()
        .shown()
        .and_then(|r| r.history().get(series::LOSS, "")?.last())
        .unwrap();
    assert!(last.is_finite() && last > 0.0, "loss {last}");
    assert!(h.query_by_label_contains("train loss").is_some());
    assert!(h.query_by_label_contains("training · step").is_some());

    h.get_by_label("Pause").click();
    step_until(&mut h, "the pause", |a| a.registry().is_paused());
    // The worker finishes the step it is in; after that the count stays put.
    std::thread::sleep(Duration::from_millis(300));
    h.step();
    let paused_at = last_step(h.state());
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(
        last_step(h.state()),
        paused_at,
        "steps went on while paused"
    );
    assert!(h.query_by_label_contains("paused · step").is_some());

    h.get_by_label("Resume").click();
    step_until(&mut h, "steps after resuming", |a| {
        last_step(a) > paused_at + 5
    });

    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", |a| !a.registry().is_training());
    let run = h.state().registry().shown().unwrap();
    assert_eq!(run.file.status, RunStatus::Stopped);
    assert!(run.history().last_step < 100_000);
    assert!(run.checkpoint.is_some(), "a stopped run keeps its weights");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_example_run_opens_and_its_values_are_in_the_accessibility_tree() {
    let dir = common::temp_dir("app", "open");
    let mut h = harness(&dir);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("saved_runs/mlp-res-20-mnist.reslab.json");
    let file = reslab::runfile::load(&path).unwrap().run;
    let mut history = file.history.clone();
    history.reindex();
    let loss = history.get(series::LOSS, "").unwrap().last().unwrap();
    let val = history
        .get(series::VAL_ACCURACY, "")
        .unwrap()
        .last()
        .unwrap();

    // Opened the way a user opens it: dropped on the window.
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(path.clone())));
    step_until(&mut h, "the run to load", |a| {
        a.registry().shown().is_some()
    });
    h.run_steps(3);
    let runs = h.state().registry();
    assert_eq!(runs.runs().len(), 1);
    assert_eq!(runs.shown().unwrap().file.name, file.name);
    assert_eq!(runs.shown().unwrap().history().last_step, 400);
    // The values a user sees, found the way a screen reader finds them.
    h.get_by_label_contains(&format!("train loss {}", format_sig(loss as f64)));
    h.get_by_label_contains(&format!("validation accuracy {:.1}%", 100.0 * val));
    assert!(h.query_all_by_label_contains("step 400").count() >= 1);
    assert!(h.query_by_label_contains("opened").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the message bar has a line starting with `start`.
fn said(app: &LabApp, start: &str) -> bool {
    app.messages().iter().any(|m| m.text.starts_with(start))
}

#[test]
fn a_broken_run_file_shows_an_error_and_the_app_keeps_working() {
    let dir = common::temp_dir("app", "broken");
    let broken = dir.join("broken.reslab.json");
    std::fs::write(
        &broken,
        br#"{"format": "reslab-run", "version": 1, "name": "x", "spec": 7"#,
    )
    .unwrap();
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 30);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(broken.clone())));
    h.step();
    step_until(&mut h, "the error", |a| {
        a.messages().iter().any(|m| m.error)
    });
    let msg = h
        .state()
        .messages()
        .iter()
        .find(|m| m.error)
        .unwrap()
        .clone();
    assert!(
        msg.text.contains("broken.reslab.json"),
        "the error names the file: {}",
        msg.text
    );
    h.get_by_label_contains("could not open");
    assert!(h.state().registry().runs().is_empty());
    // Still working: a run trains to its end.
    h.get_by_label("Train").click();
    step_until(&mut h, "the run to finish", |a| {
        a.registry()
            .shown()
            .is_some_and(|r| r.file.status == RunStatus::Finished)
    });
    assert_eq!(last_step(h.state()), 30);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn closing_the_window_during_training_saves_the_run() {
    let dir = common::temp_dir("app", "close");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 100_000);
    h.get_by_label("Train").click();
    step_until(&mut h, "some steps", |a| last_step(a) >= 20);
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
    // Closing asks once what to do with the run.
    h.run_steps(2);
    h.get_by_label_contains("is training: closing stops it");
    h.get_by_label("Save and close").click();
    h.step();
    step_until(&mut h, "the save", |a| {
        let runs = a.registry();
        !runs.is_training() && runs.runs().iter().all(|r| !r.dirty) && said(a, "saved ")
    });
    let saved: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".reslab.json"))
        .collect();
    assert_eq!(saved.len(), 1, "one run file in {}", dir.display());
    let loaded = reslab::runfile::load(&saved[0]).unwrap();
    assert_eq!(loaded.run.status, RunStatus::Stopped);
    assert!(loaded.run.history.last_step >= 20);
    let ck = loaded.checkpoint.expect("weights saved");
    assert_eq!(ck.step, loaded.run.history.last_step);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Switches to the Experiments tab with `name` selected at the quick scale.
fn open_experiment_tab(h: &mut Harness<'static, LabApp>, name: &str) {
    h.get_by_label("Experiments").click();
    h.step();
    h.state_mut().experiments_mut().selected = name.into();
    h.state_mut().experiments_mut().quick = true;
    h.step();
}

#[test]
fn the_experiments_tab_runs_an_experiment_and_shows_each_criterion_with_its_claim() {
    let dir = common::temp_dir("app", "experiment");
    let mut h = harness(&dir);
    open_experiment_tab(&mut h, "shattered-gradients");
    h.get_by_label("Run experiment").click();
    step_until(&mut h, "the experiment", |a| {
        !a.experiments().is_running() && a.experiments().result().is_some()
    });
    h.run_steps(2);
    let file = h.state().experiments().result().unwrap().clone();
    assert_eq!(file.name, "shattered-gradients");
    assert!(file.passed(), "criteria: {:?}", file.criteria);
    // Every criterion is on screen with its verdict, measured values and the paper's claim.
    for c in &file.criteria {
        h.get_by_label_contains(&format!("{}: {}", c.name, c.measured));
        assert!(!c.claim.is_empty());
        h.get_by_label_contains(&format!("claim: {}", c.claim));
    }
    assert_eq!(
        h.query_all_by_label("PASS").count(),
        file.criteria.len(),
        "one PASS per criterion"
    );
    // The result was saved as an experiment file next to the runs.
    let saved = dir.join("experiments/shattered-gradients.reslab-experiment.json");
    assert!(saved.is_file(), "{} exists", saved.display());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Drops an experiment file on the window and waits until the Experiments tab shows it.
fn open_dropped_experiment(h: &mut Harness<'static, LabApp>, path: std::path::PathBuf) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(path)));
    h.step();
    step_until(h, "the file", |a| a.experiments().result().is_some());
    h.run_steps(2);
}

/// A heatmap figure asking for a log colour scale is drawn with one, with its colour bar
/// labelled in powers of ten and the range in words.
#[test]
fn an_opened_experiment_file_draws_a_log_coloured_heatmap_with_its_legend() {
    use reslab::experiments::{self, ExperimentFile, Figure, FigureKind};
    let dir = common::temp_dir("app", "heatmap");
    let mut file = ExperimentFile::new(
        experiments::find("loss-landscape").unwrap(),
        Default::default(),
    );
    file.figures.push(Figure {
        look: Default::default(),
        title: "a landscape".into(),
        x_label: "α".into(),
        y_label: "β".into(),
        log_y: true,
        variant: String::new(),
        kind: FigureKind::Heatmap {
            x_range: [-1.0, 1.0],
            y_range: [-1.0, 1.0],
            nx: 3,
            ny: 3,
            values: vec![1000.0, 10.0, 1000.0, 10.0, 1.0, 10.0, 1000.0, 10.0, 1000.0],
            contours: vec![2.0],
        },
    });
    let path = file.save(&dir).unwrap();
    let mut h = harness(&dir);
    open_dropped_experiment(&mut h, path);
    h.get_by_label_contains("colour (log scale): 1.00 (dark) to 1000 (yellow)");
    h.get_by_label("a landscape");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A control's file says it is a control and whether the criteria rejected it.
#[test]
fn an_opened_control_file_says_whether_the_criteria_rejected_it() {
    use reslab::experiments::{self, Criterion, ExperimentFile};
    let dir = common::temp_dir("app", "control");
    let mut file = ExperimentFile::new(experiments::find("lesion").unwrap(), Default::default());
    file.control = Some("residual-fresh-seed".into());
    file.criteria.push(Criterion::new(
        "mlp-res-16: mean drop > 20 points and > 3 × mlp-res-16's",
        "0.43 points",
        false,
    ));
    let path = file.save(&dir).unwrap();
    assert!(path.ends_with("lesion.control-residual-fresh-seed.reslab-experiment.json"));
    let mut h = harness(&dir);
    open_dropped_experiment(&mut h, path);
    h.get_by_label_contains("CONTROL residual-fresh-seed: rejected by the criteria");
    h.get_by_label("FAIL");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_experiment_file_shows_an_error_in_the_experiments_tab() {
    let dir = common::temp_dir("app", "broken-exp");
    let broken = dir.join("x.reslab-experiment.json");
    std::fs::write(
        &broken,
        b"{\"format\": \"reslab-experiment\", \"version\": 99}",
    )
    .unwrap();
    let mut h = harness(&dir);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DroppedPath(broken.clone())));
    h.step();
    step_until(&mut h, "the error", |a| a.experiments().error().is_some());
    let err = h.state().experiments().error().unwrap().to_string();
    assert!(
        err.contains("x.reslab-experiment.json"),
        "names the file: {err}"
    );
    assert_eq!(h.state().tab(), reslab::ui::Tab::Experiments);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_settings_and_layout_survive_a_restart() {
    let ctx = egui::Context::default();
    let mut app = LabApp::with_runs_dir(&ctx, common::temp_dir("app", "persist"));
    small_settings(&mut app, 1234);
    app.settings_mut().config.lr = 0.0123;
    app.panels_mut().loss.options.smoothing = 0.25;
    app.panels_mut().gradients.options.all_tensors = true;
    let before = app.settings().clone();
    let mut storage = MemStorage::default();
    eframe::App::save(&mut app, &mut storage);
    let restored = LabApp::restore(&ctx, Some(&storage));
    assert_eq!(*restored.settings(), before);
    // The panels' options too.
    assert_eq!(restored.panels().loss.options.smoothing, 0.25);
    assert!(restored.panels().gradients.options.all_tensors);
    // State stored before the panels were one list (each panel's options at the top level)
    // still reads: everything else is kept, the panels' options start from their defaults.
    let mut old = MemStorage::default();
    let before_lists = "(columns: 3, loss: (options: (smoothing: 0.4, log_y: false, show_raw: \
                        true)), gradients: (options: (all_tensors: true)), tab: Designer)";
    eframe::Storage::set_string(&mut old, eframe::APP_KEY, before_lists.into());
    let upgraded = LabApp::restore(&ctx, Some(&old));
    assert_eq!(upgraded.tab(), reslab::ui::app::Tab::Designer);
    assert_eq!(upgraded.panels().loss.options.smoothing, 0.8);
    assert_eq!(restored.settings().config.duration, Steps::Steps(1234));
    // Nothing stored (first launch) or unreadable: the defaults.
    let mut broken = MemStorage::default();
    eframe::Storage::set_string(&mut broken, eframe::APP_KEY, "not ron at all (".into());
    let fresh = LabApp::restore(&ctx, Some(&broken));
    assert_eq!(*fresh.settings(), reslab::ui::settings::Settings::default());
}

/// A software rasteriser is usable but labelled as such, and it can still be chosen; a GPU
/// that cannot be used puts a GPU choice back on the CPU with a message.
#[test]
fn the_gpu_check_labels_a_software_adapter_and_refuses_a_missing_one() {
    use reslab::spec::DeviceChoice;
    use reslab::ui::settings::GpuState;
    let dir = common::temp_dir("app", "gpu-label");
    let mut h = harness(&dir);
    h.state_mut()
        .gpu_checked(GpuState::Software("llvmpipe (Cpu, Vulkan)".into()));
    h.run();
    assert!(
        h.query_by_label("device: CPU (software GPU only)")
            .is_some()
    );
    assert!(h.query_by_label("GPU available").is_none());
    h.get_by_label("GPU (software)").click();
    h.run();
    assert_eq!(h.state().settings().config.device, DeviceChoice::Gpu);
    assert!(
        h.query_by_label("device: GPU (software GPU only)")
            .is_some()
    );

    h.state_mut()
        .gpu_checked(GpuState::Unavailable("no adapter".into()));
    h.run();
    assert_eq!(h.state().settings().config.device, DeviceChoice::Cpu);
    assert_eq!(h.state().gpu(), &GpuState::Unavailable("no adapter".into()));
    let last = h.state().messages().last().unwrap();
    assert!(
        last.error && last.text.contains("no adapter; training on the CPU"),
        "{}",
        last.text
    );
    assert!(h.query_by_label("device: CPU (no GPU)").is_some());
    assert!(h.query_by_label("GPU (n/a)").is_some());
}

#[test]
fn the_network_summary_shows_the_memory_estimate_and_a_refusal_above_the_limit() {
    let dir = common::temp_dir("app", "memory");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 100);
    h.step();
    let spec = h.state().train_spec().unwrap().clone();
    let config = h.state().settings().config.clone();
    let dataset = h.state().settings().dataset.clone();
    let estimate =
        reslab::spec::estimate_memory(&reslab::spec::validate(&spec).unwrap(), &config, &dataset);
    let expected = format!("training memory ≈ {}", estimate.describe());
    assert!(
        h.query_by_label_contains(&expected).is_some(),
        "the summary shows {expected}"
    );
    assert!(h.query_by_label_contains("Train will refuse").is_none());
    // A CIFAR ResNet deep enough to pass this machine's limit at the largest batch the settings
    // allow (4,096); the data folder need not exist for the estimate.
    let limit = reslab::train::memory_limit();
    let mut n = 9;
    loop {
        let s = h.state_mut().settings_mut();
        s.dataset = DatasetSpec::new(DataSource::Cifar10Dir {
            dir: dir.join("no-data"),
        });
        s.net.family = "cifar-resnet".into();
        s.net.depth = n;
        s.config.batch_size = 4096;
        h.state_mut().rebuild_spec();
        h.step();
        let spec = h.state().train_spec().unwrap().clone();
        let config = h.state().settings().config.clone();
        let dataset = h.state().settings().dataset.clone();
        let v = reslab::spec::validate(&spec).unwrap();
        if reslab::spec::estimate_memory(&v, &config, &dataset).total() > limit {
            break;
        }
        n *= 2;
        assert!(n < 1000, "no preset passes a {limit}-byte limit");
    }
    h.step();
    let shown = h
        .query_by_label_contains("training memory")
        .map(|n| format!("{n:?}"));
    assert!(
        h.query_by_label_contains("Train will refuse").is_some(),
        "a network over the limit is flagged before Train: {shown:?}"
    );
}

/// The commands egui was asked to carry out for the window in the last frame.
fn window_commands(h: &Harness<'static, LabApp>) -> Vec<egui::ViewportCommand> {
    h.output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .map(|v| v.commands.clone())
        .unwrap_or_default()
}

fn request_close(h: &mut Harness<'static, LabApp>) {
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
}

#[test]
fn an_exported_spec_is_not_listed_among_the_recent_runs() {
    let dir = common::temp_dir("app", "spec-export");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 30);
    // A saved run is listed (so the list below can tell)...
    h.get_by_label("Train").click();
    step_until(&mut h, "the run to finish", |a| {
        a.registry()
            .shown()
            .is_some_and(|r| r.file.status == RunStatus::Finished)
    });
    // The top bar's Save (the Compare panel has one per run too).
    h.query_all_by_label("Save").next().unwrap().click();
    step_until(&mut h, "the save", |a| said(a, "saved "));
    let run_name = h.state().registry().shown().unwrap().file.name.clone();
    assert!(
        h.query_all_by_label(&run_name).count() >= 1,
        "{run_name} is listed"
    );
    // ... an exported spec is not: it is not a run.
    h.get_by_label("Designer").click();
    h.run_ok();
    let path = dir.join("net.json");
    h.get_by_label("Spec file").focus();
    h.get_by_label("Spec file")
        .type_text(path.to_str().unwrap());
    h.run_ok();
    h.get_by_label("Export to path").click();
    step_until(&mut h, "the export", |a| said(a, "exported the spec to"));
    assert!(path.is_file());
    h.get_by_label_contains("exported the spec to");
    assert!(
        h.query_by_label("net.json").is_none(),
        "the spec is not a recent run"
    );
    assert!(h.query_by_label("net").is_none());
    assert!(
        h.query_all_by_label(&run_name).count() >= 1,
        "{run_name} is still listed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts every background thread but the saves' (as if the process had run out of threads).
fn no_threads_for_saves(name: &str, work: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    if name == "save" {
        return Err(std::io::Error::other("simulated: no thread left"));
    }
    reslab::ui::jobs::spawn_thread(name, work)
}

#[test]
fn a_save_whose_thread_cannot_start_shows_the_error_and_the_window_can_still_close() {
    let dir = common::temp_dir("app", "spawn-fail");
    let mut h = common::lab::harness_with_spawner(&dir, no_threads_for_saves);
    small_settings(h.state_mut(), 100_000);
    h.get_by_label("Train").click();
    step_until(&mut h, "some steps", |a| last_step(a) >= 20);
    // Closing stops the run and tries to save it; the save cannot start.
    request_close(&mut h);
    h.step();
    assert!(window_commands(&h).contains(&egui::ViewportCommand::CancelClose));
    h.run_steps(2);
    h.get_by_label("Save and close").click();
    step_until(&mut h, "the failed save", |a| said(a, "could not save"));
    h.get_by_label_contains("could not start a background thread for the save");
    h.get_by_label_contains("close the window again to quit");
    let run = h.state().registry().shown().unwrap();
    assert_eq!(run.file.status, RunStatus::Stopped);
    assert!(run.dirty, "the run is still unsaved");
    // The window stays open meanwhile ...
    for _ in 0..5 {
        h.step();
        assert!(!window_commands(&h).contains(&egui::ViewportCommand::Close));
    }
    // ... and a second close request is not cancelled: the window closes.
    request_close(&mut h);
    h.step();
    assert!(!window_commands(&h).contains(&egui::ViewportCommand::CancelClose));
    // On the way out the run is saved on the UI thread, which needs no new thread.
    eframe::App::on_exit(h.state_mut());
    let saved: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".reslab.json"))
        .collect();
    assert_eq!(saved.len(), 1, "one run file in {}", dir.display());
    let loaded = reslab::runfile::load(&saved[0]).unwrap();
    assert_eq!(loaded.run.status, RunStatus::Stopped);
    assert!(loaded.run.history.last_step >= 20);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_runs_of_one_name_are_saved_to_two_files_and_a_file_in_the_way_is_kept() {
    let dir = common::temp_dir("app", "two-names");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 30);
    let mut saved = Vec::new();
    for k in 0..2 {
        h.get_by_label("Train").click();
        step_until(&mut h, "the run to finish", |a| {
            a.registry().runs().len() == k + 1
                && a.registry()
                    .shown()
                    .is_some_and(|r| r.file.status == RunStatus::Finished)
        });
        let name = h.state().registry().shown().unwrap().file.name.clone();
        if k == 0 {
            // A file of another run already holds the name the first run would take.
            std::fs::write(dir.join(format!("{name}.reslab.json")), b"someone else's").unwrap();
        }
        h.query_all_by_label("Save").next().unwrap().click();
        step_until(&mut h, "the save", |a| {
            a.registry()
                .shown()
                .is_some_and(|r| r.path.is_some() && !r.dirty)
        });
        saved.push(h.state().registry().shown().unwrap().path.clone().unwrap());
    }
    assert_ne!(saved[0], saved[1], "two runs, two files: {saved:?}");
    for p in &saved {
        assert!(reslab::runfile::load(p).is_ok(), "{}", p.display());
    }
    let kept = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read(e.path()).is_ok_and(|b| b == b"someone else's"))
        .count();
    assert_eq!(kept, 1, "the other file is untouched");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Coloured MNIST in the Lab's settings: a palette picker, and the network's input follows the
/// three channels.
#[test]
fn coloured_mnist_offers_its_palettes_and_gives_the_network_three_channels() {
    use reslab::spec::{InputShape, Palette};
    let dir = common::temp_dir("app", "coloured");
    let mut h = harness(&dir);
    let s = h.state_mut().settings_mut();
    s.dataset = DatasetSpec::new(DataSource::ColouredMnist {
        palette: Palette::Green,
    });
    s.net.family = "cifar-resnet".into();
    s.net.depth = 8;
    h.state_mut().rebuild_spec();
    h.run_steps(2);
    h.get_by_label("Palette");
    assert!(h.query_by_label_contains("green").is_some() || h.query_by_value("green").is_some());
    let spec = h.state().train_spec().unwrap().clone();
    assert_eq!(
        spec.input,
        InputShape::Image {
            channels: 3,
            height: 28,
            width: 28
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Lab's network settings choose the normalisation of the preset's blocks.
#[test]
fn the_network_settings_choose_the_normalisation() {
    use reslab::spec::{LayerOp, Norm};
    let dir = common::temp_dir("app", "norm");
    let mut h = harness(&dir);
    h.get_by_label("Normalisation");
    h.get_by_label("the normalisation layer in every block")
        .click();
    h.run_steps(2);
    h.get_by_label("LayerNorm").click();
    h.run_steps(2);
    assert_eq!(h.state().settings().net.norm, Norm::Layer);
    h.state_mut().rebuild_spec();
    h.step();
    let spec = h.state().train_spec().unwrap().clone();
    assert!(
        spec.layers
            .iter()
            .any(|l| matches!(l.op, LayerOp::LayerNorm { .. }))
    );
    assert!(
        !spec
            .layers
            .iter()
            .any(|l| matches!(l.op, LayerOp::BatchNorm { .. }))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-convolution `cnn-1` with `norm` on red Coloured MNIST, `steps` steps of 16, probed
/// and validated every other step.
/// Presses Train and steps the lab until the run has ended with a probe recorded.
fn train_until_probed(h: &mut Harness<'static, LabApp>) {
    h.get_by_label("Train").click();
    step_until(h, "the end of the run", |a| {
        !a.registry().is_training()
            && a.registry()
                .shown()
                .is_some_and(|r| r.history().latest_probe.is_some())
    });
    h.run_steps(2);
}

fn red_cnn_settings(app: &mut LabApp, norm: reslab::spec::Norm, steps: u64) {
    let s = app.settings_mut();
    s.dataset = DatasetSpec::new(DataSource::ColouredMnist {
        palette: reslab::spec::Palette::Red,
    });
    s.net.family = "cnn".into();
    s.net.depth = 1;
    s.net.norm = norm;
    s.config.duration = Steps::Steps(steps);
    s.config.batch_size = 16;
    s.config.probe_every = 2;
    s.config.eval_every = 2;
    app.rebuild_spec();
}

/// Evaluation sets in the Lab: "+ every other palette" adds the palettes a red-trained net never
/// saw; a run validates on each (its own curve, its value in the loss summary), and the
/// BatchNorm panel's overlay shows what a set produces at the chosen layer.
#[test]
fn evaluation_sets_get_their_curves_and_the_batchnorm_overlay() {
    use reslab::spec::Norm;
    let dir = common::temp_dir("app", "eval-sets");
    let mut h = harness(&dir);
    red_cnn_settings(h.state_mut(), Norm::Batch, 6);
    h.run_steps(2);
    h.get_by_label("+ every other palette").click();
    h.run_steps(2);
    let names: Vec<String> = h
        .state()
        .settings()
        .dataset
        .eval_sets
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["orange", "green", "blue", "grey", "inverted"]);
    h.get_by_label("Train").click();
    step_until(&mut h, "the end of the run", |a| {
        !a.registry().is_training() && a.registry().shown().is_some()
    });
    let run = h.state().registry().shown().unwrap();
    let green = run
        .history()
        .get(series::VAL_ACCURACY, "green")
        .and_then(|s| s.last())
        .expect("the green set's accuracy");
    assert!(
        h.query_all_by_label_contains(&format!("green {:.1}%", 100.0 * green))
            .next()
            .is_some(),
        "the loss summary names the set's accuracy"
    );
    let set_bn = run.history().latest_set_bn.clone().expect("set statistics");
    assert_eq!(set_bn.sets.len(), 5);
    assert_eq!(set_bn.sets[1][0].mean.len(), 16);
    // The overlay: pick "green" for the BN layer.
    assert!(
        h.query_all_by_label_contains("overlay:").next().is_some(),
        "no overlay label"
    );
    h.get_by_value("none").click();
    h.run_steps(2);
    // The popup's entry (drawn last; the loss plot's legend has a "green" too).
    h.query_all_by_label("green").last().unwrap().click();
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("what \"green\" produces at this layer")
            .next()
            .is_some()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network with GroupNorm and no BatchNorm: the BatchNorm panel shows its layers' γ and β per
/// channel, and says why there are no running statistics.
#[test]
fn the_batchnorm_panel_shows_group_norm_scales_and_shifts() {
    use reslab::spec::Norm;
    let dir = common::temp_dir("app", "gn-panel");
    let mut h = harness(&dir);
    red_cnn_settings(h.state_mut(), Norm::Group { groups: 8 }, 4);
    h.run_steps(2);
    train_until_probed(&mut h);
    assert!(
        h.query_all_by_label_contains("LayerNorm / GroupNorm layer:")
            .next()
            .is_some()
    );
    assert!(
        h.query_all_by_label_contains("γ and β of conv1.gn per channel at step 4")
            .next()
            .is_some()
    );
    assert!(h.query_all_by_value("conv1.gn").next().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A state saved before the normalisation picker keeps its BatchNorm switch: off becomes no
/// normalisation, on (or absent) BatchNorm; the old field is not written again.
#[test]
fn an_old_batch_norm_switch_carries_over_into_the_normalisation() {
    use reslab::spec::Norm;
    use reslab::ui::settings::NetChoice;
    let mut off: NetChoice =
        serde_json::from_str(r#"{"family": "mlp-res", "depth": 3, "batch_norm": false}"#).unwrap();
    off.upgrade();
    assert_eq!(off.norm, Norm::None);
    assert_eq!(off.depth, 3);
    let mut on: NetChoice = serde_json::from_str(r#"{"batch_norm": true}"#).unwrap();
    on.upgrade();
    assert_eq!(on.norm, Norm::Batch);
    let written = serde_json::to_string(&off).unwrap();
    assert!(!written.contains("batch_norm"), "{written}");
    assert!(written.contains(r#""norm":"none""#), "{written}");
}

/// The Experiments tab runs a control too: the file says which, and the tab says whether the
/// criteria rejected it.
#[test]
fn the_experiments_tab_runs_a_control() {
    let dir = common::temp_dir("app", "control");
    let mut h = harness(&dir);
    open_experiment_tab(&mut h, "shattered-gradients");
    h.get_by_value("the experiment").click();
    h.run_steps(2);
    h.get_by_label("control no-bn").click();
    h.run_steps(2);
    assert_eq!(h.state().experiments().control, "no-bn");
    h.get_by_label("Run experiment").click();
    step_until(&mut h, "the control", |a| {
        !a.experiments().is_running() && a.experiments().result().is_some()
    });
    h.run_steps(2);
    let file = h.state().experiments().result().unwrap().clone();
    assert_eq!(file.control.as_deref(), Some("no-bn"));
    assert_eq!(file.control_rejected(), Some(true));
    h.get_by_label_contains("CONTROL no-bn: rejected by the criteria");
    let saved = dir.join("experiments/shattered-gradients.control-no-bn.reslab-experiment.json");
    assert!(saved.is_file(), "{} exists", saved.display());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A transformer run: the picker's transformer family trains, the Attention panel shows the
/// chosen layer's map at the latest probe with a hover value, the head picker, the entropy
/// lines, and the Activations panel offers the token rank.
#[test]
fn the_attention_panel_shows_a_transformer_runs_maps_and_entropy() {
    let dir = common::temp_dir("app", "attention-panel");
    let mut h = harness(&dir);
    {
        let s = h.state_mut().settings_mut();
        s.dataset = DatasetSpec::new(DataSource::Mnist10k);
        s.net.family = "vit-res".into();
        s.net.depth = 2;
        s.net.width = 32;
        s.config.duration = Steps::Steps(4);
        s.config.batch_size = 16;
        s.config.probe_every = 2;
        s.config.eval_every = 2;
    }
    h.state_mut().rebuild_spec();
    h.run_steps(2);
    assert!(
        h.query_all_by_value("Transformer, pre-LN residual")
            .next()
            .is_some()
    );
    train_until_probed(&mut h);
    assert!(
        h.query_all_by_label_contains("at step 4 (rows: query, columns: key)")
            .next()
            .is_some()
    );
    assert!(h.query_all_by_value("block1.attn").next().is_some());
    assert!(h.query_all_by_value("mean of heads").next().is_some());
    assert!(
        h.query_all_by_label_contains("attention entropy per layer")
            .next()
            .is_some()
    );
    assert!(h.query_all_by_label("token rank").next().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A window whose small network trained to its end (20 steps), unsaved.
fn finished_run(dir: &Path) -> Harness<'static, LabApp> {
    let mut h = harness(dir);
    small_settings(h.state_mut(), 20);
    h.get_by_label("Train").click();
    step_until(&mut h, "the run's end", |a| {
        !a.registry().is_training() && last_step(a) >= 20
    });
    h
}

/// Closing with an unsaved run asks once: Cancel keeps the window and the run; "Close without
/// saving" closes and writes nothing, not even on the way out; "always save" is remembered and
/// then closing saves without asking.
#[test]
fn closing_asks_once_and_can_close_without_saving_or_always_save() {
    let dir = common::temp_dir("app", "close-ask");
    let mut h = finished_run(&dir);
    request_close(&mut h);
    h.run_steps(3);
    assert!(!window_commands(&h).contains(&egui::ViewportCommand::Close));
    h.get_by_label_contains("1 run holds steps no file has yet");
    // Cancel: the window stays, the run is still there and unsaved.
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.query_by_label("Close the lab?").is_none());
    assert!(h.state().registry().needs_saving());
    // Close without saving: the window closes and no file is written, on the way out either.
    request_close(&mut h);
    h.run_steps(2);
    h.get_by_label("Close without saving").click();
    h.step();
    assert!(window_commands(&h).contains(&egui::ViewportCommand::Close));
    eframe::App::on_exit(h.state_mut());
    let files = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let written: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".reslab.json"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    drop(h);

    // "Always save": ticked in the dialog, kept between launches; closing then saves unasked.
    let mut h = finished_run(&dir);
    request_close(&mut h);
    h.run_steps(2);
    h.get_by_label("always save unsaved runs when closing, without asking")
        .click();
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    let mut storage = MemStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let stored = eframe::Storage::get_string(&storage, eframe::APP_KEY).unwrap();
    assert!(stored.contains("always_save_on_close:true"), "{stored}");
    request_close(&mut h);
    h.step();
    step_until(&mut h, "the save", |a| {
        !a.registry().needs_saving() && said(a, "saved ")
    });
    assert!(h.query_by_label("Close the lab?").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Remote device: chosen with one click (an endpoint field appears), checked in the
/// background on Connect; an endpoint where no `reslab serve` answers is named in the top bar
/// and the messages, and Train refuses it with the reason.
#[test]
fn a_remote_device_is_checked_in_the_background_and_refused_when_nothing_answers() {
    use reslab::spec::DeviceChoice;
    use reslab::ui::device_picker::RemoteState;
    let dir = common::temp_dir("app", "remote");
    let mut h = harness(&dir);
    h.get_by_label("Remote").click();
    h.run();
    // A port nobody listens on: bound, read and closed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let DeviceChoice::Remote(first) = h.state().settings().config.device.clone() else {
        panic!("Remote did not choose a remote device");
    };
    assert!(
        h.query_by_label(&format!("device: {first} (not checked)"))
            .is_some()
    );
    let value = first.url().to_string();
    let is_field = |n: &egui_kittest::kittest::AccessKitNode<'_>| {
        n.role() == egui::accesskit::Role::TextInput && n.value().as_deref() == Some(&value)
    };
    h.get_by(is_field).click();
    h.run();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run();
    h.get_by(is_field).type_text(&url);
    h.run();
    let DeviceChoice::Remote(typed) = h.state().settings().config.device.clone() else {
        panic!("typing left the remote device");
    };
    assert_eq!(typed.url(), url);
    h.get_by_label("Connect").click();
    h.run();
    common::lab::step_until(&mut h, "the remote check", |app| {
        matches!(app.remote(), RemoteState::Unreachable(..))
    });
    assert!(
        h.query_by_label(&format!("device: {url} (unreachable)"))
            .is_some()
    );
    let last = h.state().messages().last().unwrap();
    assert!(
        last.error && last.text.contains("no reslab serve answered"),
        "{}",
        last.text
    );
    let blocker = h.state().train_blocker().expect("Train refuses it");
    assert!(blocker.contains(&url), "{blocker}");
}
