//! The lab's status tells the truth and a still window costs nothing (issue 23): no repaint is
//! asked for while a run is paused or nothing runs; the clock stops with the run; the rate is an
//! average while steps are taken, with the time left, and blank otherwise; labels follow the
//! run's state.

mod common;

use common::lab::{harness, small_settings, step_until};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use reslab::ui::LabApp;
use std::time::Duration;

/// The top bar's status line (it starts with the run's state).
fn status(h: &Harness<'static, LabApp>) -> String {
    for state in ["training", "paused", "finished", "stopped"] {
        if let Some(node) = h.query_by_label_contains(&format!("{state} · step")) {
            // AccessKit keeps a label widget's text in its value.
            let n = node.accesskit_node();
            return n.value().or_else(|| n.label()).unwrap_or_default();
        }
    }
    panic!("no status line");
}

/// Steps a few frames and says whether the last one asked for another.
fn wants_repaint(h: &mut Harness<'static, LabApp>) -> bool {
    for _ in 0..3 {
        h.step();
    }
    h.ctx.has_requested_repaint()
}

#[test]
fn a_paused_or_idle_window_asks_for_no_repaint() {
    let dir = common::temp_dir("app-status", "repaint");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 100_000);
    // The recent-runs scan at start is a job that repaints until it ends (slow on a busy
    // machine); after it, nothing.
    step_until(&mut h, "the start's jobs", |a| a.background_jobs() == 0);
    // A job's thread wakes the window once more after handing over its result (a single
    // wake-up, not a loop): let that frame pass.
    std::thread::sleep(Duration::from_millis(100));
    h.step();
    let w = wants_repaint(&mut h);
    assert!(!w, "idle, before any run: {:?}", h.ctx.repaint_causes());
    h.get_by_label("Train").click();
    step_until(&mut h, "steps", |a| common::lab::last_step(a) >= 20);
    assert!(
        wants_repaint(&mut h),
        "training: the window comes back by itself"
    );
    assert!(h.query_by_label_contains("A run is training").is_some());

    h.get_by_label("Pause").click();
    step_until(&mut h, "the pause", |a| a.registry().is_paused());
    // The worker's last events arrive with its wake-up; after that, nothing.
    std::thread::sleep(Duration::from_millis(300));
    h.step();
    assert!(!wants_repaint(&mut h), "paused");
    assert!(h.query_by_label_contains("A run is paused").is_some());
    assert!(status(&h).contains("– samples/s"), "{}", status(&h));

    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", |a| !a.registry().is_training());
    std::thread::sleep(Duration::from_millis(300));
    h.step();
    assert!(!wants_repaint(&mut h), "after the run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_clock_stops_with_the_run_and_the_rate_is_blank_after_it() {
    let dir = common::temp_dir("app-status", "clock");
    let mut h = harness(&dir);
    small_settings(h.state_mut(), 1_500);
    h.state_mut().settings_mut().config.probe_every = 50;
    h.state_mut().rebuild_spec();
    h.step();
    h.get_by_label("Train").click();
    step_until(&mut h, "steps", |a| common::lab::last_step(a) >= 300);
    let training = status(&h);
    // "training · step 312/1500 · loss 0.41 · 3.2k samples/s · 00:01 · 00:03 left"
    assert!(
        training.contains(" samples/s · ") && training.ends_with(" left"),
        "{training}"
    );
    assert!(!training.contains("– samples/s"), "{training}");
    step_until(&mut h, "the end", |a| !a.registry().is_training());
    let ended = status(&h);
    assert!(ended.starts_with("finished · step 1500/1500"), "{ended}");
    assert!(
        ended.contains("– samples/s") && !ended.contains("left"),
        "{ended}"
    );
    std::thread::sleep(Duration::from_millis(2_100));
    h.step();
    assert_eq!(status(&h), ended, "the clock went on after the run");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the CPU chosen (the default) the window does not check the GPU at start: the check
/// leaves a device thread of burn's waking every 150 µs. The GPU button offers the check.
#[test]
fn the_gpu_is_checked_at_start_only_when_the_settings_train_on_it() {
    let h = Harness::builder()
        .with_size([1500.0, 950.0])
        .with_accessibility_check(false)
        .allow_missing_glyphs()
        .build_eframe(|cc| LabApp::new(cc));
    assert_eq!(
        h.state().settings().config.device,
        reslab::spec::DeviceChoice::Cpu
    );
    assert_eq!(h.state().gpu(), &reslab::ui::settings::GpuState::Unknown);
    assert!(h.query_by_label("GPU").is_some());
}
