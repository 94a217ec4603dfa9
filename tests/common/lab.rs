//! The desktop lab in egui_kittest: a harness on a runs folder, a quick network, stepping the
//! window until the worker has done something.

use egui_kittest::Harness;
use reslab::spec::{DataSource, DatasetSpec, Duration as Steps};
use reslab::ui::LabApp;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn harness(runs_dir: &Path) -> Harness<'static, LabApp> {
    harness_with_spawner(runs_dir, reslab::ui::jobs::spawn_thread)
}

/// [`harness`] whose background threads `spawner` starts (to slow or fail some jobs).
pub fn harness_with_spawner(
    runs_dir: &Path,
    spawner: reslab::ui::jobs::Spawner,
) -> Harness<'static, LabApp> {
    let dir = runs_dir.to_path_buf();
    Harness::builder()
        .with_size([1500.0, 950.0])
        .with_accessibility_check(false)
        .allow_missing_glyphs()
        .with_max_steps(20)
        .build_eframe(move |cc| {
            LabApp::with_runs_dir_and_spawner(&cc.egui_ctx, dir.clone(), spawner)
        })
}

/// A small, quick network on spirals, so the test trains many steps per second.
pub fn small_settings(app: &mut LabApp, steps: u64) {
    let s = app.settings_mut();
    s.dataset = DatasetSpec::new(DataSource::Spirals {
        samples: 600,
        classes: 2,
        noise: 0.05,
    });
    s.net.family = "mlp-res".into();
    s.net.depth = 3;
    s.net.width = 16;
    s.config.duration = Steps::Steps(steps);
    s.config.batch_size = 32;
    s.config.probe_every = 5;
    s.config.eval_every = 20;
    app.rebuild_spec();
}

/// Steps the UI until `done` holds (the worker runs on its own thread meanwhile).
pub fn step_until(h: &mut Harness<'static, LabApp>, what: &str, done: impl Fn(&LabApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(15));
    }
    h.step();
}

/// The last step of the shown run.
pub fn last_step(app: &LabApp) -> u64 {
    app.registry().shown().map_or(0, |r| r.history().last_step)
}

/// A file dropped on the window (the path; its bytes read on demand).
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// eframe's storage in memory: what the lab saves on one launch and reads on the next.
#[derive(Clone, Default)]
pub struct MemStorage(pub std::collections::HashMap<String, String>);

impl eframe::Storage for MemStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}
