//! `reslab sweep` (issue 24 item 4): a grid of runs over depth, each a run file, one sweep file;
//! resumable (finished cells are skipped, a cell whose run file is gone runs again, a finished
//! run file the sweep file missed is recorded without training); bad grids and sweep files are
//! refused naming the field; the figures are medians over seeds with a band.

mod common;

use reslab::runfile::RunStatus;
use reslab::spec::{DatasetSpec, Norm};
use reslab::sweep::{Cell, CellResult, Grid, SweepFile, figures};
use std::path::Path;
use std::process::{Command, Output};

fn reslab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn grid() -> Grid {
    Grid {
        families: vec!["mlp-plain".into(), "mlp-res".into()],
        depths: vec![4, 8],
        seeds: vec![0, 1, 2],
        lrs: vec![0.05],
        norms: vec![Norm::Batch],
        width: 16,
        steps: 10,
        probe_every: 0,
        dataset: DatasetSpec::from_name("spirals").unwrap(),
    }
}

#[test]
fn a_grid_is_checked_and_lists_its_cells_in_order() {
    let g = grid();
    let cells = g.cells();
    assert_eq!(cells.len(), 12);
    assert_eq!(cells[0].preset(), "mlp-plain-4");
    assert_eq!(cells[11].name(), "mlp-res-8-bn-lr0.05-seed2");
    assert!(g.check().is_ok());
    let bad = |f: &dyn Fn(&mut Grid), word: &str| {
        let mut g = grid();
        f(&mut g);
        let e = g.check().unwrap_err();
        assert!(e.contains(word), "{e}");
    };
    bad(&|g| g.depths.clear(), "grid.depths");
    bad(&|g| g.lrs = vec![-0.1], "grid.lrs");
    bad(&|g| g.steps = 0, "grid.steps");
    bad(&|g| g.seeds = (0..10_000).collect(), "cells");
}

fn result(family: &str, depth: usize, seed: u64, loss: f64) -> CellResult {
    CellResult {
        cell: Cell {
            family: family.into(),
            depth,
            seed,
            lr: 0.05,
            norm: Norm::Batch,
        },
        run: String::new(),
        status: RunStatus::Finished,
        steps: 10,
        final_loss: Some(loss),
        val_loss: None,
        val_accuracy: Some(1.0 - loss / 10.0),
        seconds: 1.0,
    }
}

#[test]
fn the_figures_are_medians_over_seeds_with_the_range_as_a_band() {
    let mut s = SweepFile::new("t", grid());
    for (seed, loss) in [(0, 0.3), (1, 0.1), (2, 0.2)] {
        s.record(result("mlp-plain", 4, seed, loss));
    }
    for (seed, loss) in [(0, 0.9), (1, 1.1)] {
        s.record(result("mlp-plain", 8, seed, loss));
    }
    s.record(result("mlp-res", 8, 0, 0.05));
    let figs = figures(&s);
    assert_eq!(figs.len(), 2);
    let reslab::figure::FigureKind::Lines { series } = &figs[0].kind else {
        panic!("lines")
    };
    assert_eq!(series[0].points, vec![[4.0, 0.2], [8.0, 1.0]]);
    assert_eq!(series[1].points, vec![[8.0, 0.05]]);
    assert!(figs[0].log_y);
    let band = &figs[0].look.bands[0];
    assert_eq!(band.points, vec![[4.0, 0.1, 0.3], [8.0, 0.9, 1.1]]);
    assert_eq!(band.color, series[0].color, "the band in its line's colour");
    assert_eq!(figs[0].look.bands.len(), 1, "one seed draws no band");
}

fn run_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".reslab.json"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_sweep_trains_every_cell_and_goes_on_where_it_stopped() {
    let dir = common::temp_dir("sweep", "resume");
    let out = dir.join("depth");
    let args = [
        "sweep",
        "--families",
        "mlp-plain,mlp-res",
        "--depths",
        "1,2",
        "--seeds",
        "1",
        "--steps",
        "20",
        "--width",
        "16",
        "--dataset",
        "spirals",
        "--out",
    ];
    let mut first = args.to_vec();
    first.push(out.to_str().unwrap());
    let o = reslab(&first);
    assert!(o.status.success(), "{}", said(&o));
    let file = dir.join("depth.reslab-sweep.json");
    let sweep = SweepFile::load(&file).unwrap();
    assert_eq!(sweep.name, "depth");
    assert_eq!(sweep.results.len(), 4);
    assert!(
        sweep
            .results
            .iter()
            .all(|r| r.status == RunStatus::Finished && r.steps == 20)
    );
    let runs = run_files(&out);
    assert_eq!(runs.len(), 4, "{runs:?}");
    let run = reslab::runfile::load(&out.join(&runs[0])).unwrap();
    assert!(run.checkpoint.is_some(), "runs keep their weights");
    assert!(
        said(&o).contains("mlp-res (median over seeds)"),
        "{}",
        said(&o)
    );
    // The same --out again is refused: the sweep file exists.
    let o = reslab(&first);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("to go on with it"));
    // Going on: nothing left to run.
    let f = file.to_str().unwrap();
    let o = reslab(&["sweep", f]);
    assert!(
        o.status.success() && said(&o).contains("4 cells, 0 to run"),
        "{}",
        said(&o)
    );
    // A run file gone runs again; a finished run the sweep file missed is recorded, not rerun.
    std::fs::remove_file(out.join(&runs[1])).unwrap();
    let mut s = SweepFile::load(&file).unwrap();
    let dropped = s.results.remove(2);
    s.save(&file).unwrap();
    let o = reslab(&["sweep", f]);
    assert!(
        o.status.success() && said(&o).contains("4 cells, 1 to run"),
        "{}",
        said(&o)
    );
    let s = SweepFile::load(&file).unwrap();
    assert_eq!(s.results.len(), 4);
    assert_eq!(
        s.result(&dropped.cell).unwrap().seconds,
        0.0,
        "recorded from its file"
    );
    // Another grid at the same place (more steps): its cells' files are another run's, never
    // taken as results nor trained over.
    std::fs::remove_file(&file).unwrap();
    let before = std::fs::read(out.join(&runs[0])).unwrap();
    let mut other = first.clone();
    other[8] = "30";
    let o = reslab(&other);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("is not this sweep's run"), "{}", said(&o));
    assert_eq!(std::fs::read(out.join(&runs[0])).unwrap(), before);
    let o = reslab(&first);
    assert!(
        o.status.success() && said(&o).contains("4 cells, 0 to run"),
        "{}",
        said(&o)
    );
    // The sweep as figures.
    let png = dir.join("sweep.png");
    let o = reslab(&["plot", f, "--out", png.to_str().unwrap()]);
    assert!(o.status.success() && png.is_file(), "{}", said(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_sweeps_are_refused_naming_the_field() {
    let dir = common::temp_dir("sweep", "bad");
    let out = dir.join("x");
    let o = reslab(&[
        "sweep",
        "--families",
        "mlp-plain",
        "--depths",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let o = reslab(&[
        "sweep",
        "--families",
        "nonesuch",
        "--depths",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let o = reslab(&["sweep", "--lrs", "-1", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let o = reslab(&["sweep"]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    let o = reslab(&["sweep", "--depths", "4,4", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(
        said(&o).contains("grid.depths: a value appears twice"),
        "{}",
        said(&o)
    );
    // A norm the presets cannot build at this width is refused before any data is read.
    let o = reslab(&[
        "sweep",
        "--norms",
        "group:5",
        "--width",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(!dir.join("x.reslab-sweep.json").exists());
    // A result pointing outside the sweep's folder is refused.
    let mut json = serde_json::to_value(SweepFile::new("b", grid())).unwrap();
    let mut r = serde_json::to_value(result("mlp-plain", 4, 0, 0.1)).unwrap();
    r["run"] = serde_json::json!("../../etc/x.reslab.json");
    json["results"] = serde_json::json!([r]);
    let escape = dir.join("e.reslab-sweep.json");
    std::fs::write(&escape, serde_json::to_vec(&json).unwrap()).unwrap();
    let o = reslab(&["sweep", escape.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("results[0].run"), "{}", said(&o));
    // A sweep file with an unknown field, or a wrong value, names it.
    let mut json = serde_json::to_value(SweepFile::new("b", grid())).unwrap();
    json["grid"]["colour"] = serde_json::json!("red");
    let bad = dir.join("b.reslab-sweep.json");
    std::fs::write(&bad, serde_json::to_vec(&json).unwrap()).unwrap();
    let o = reslab(&["sweep", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(
        said(&o).contains("b.reslab-sweep.json") && said(&o).contains("colour"),
        "{}",
        said(&o)
    );
    let mut json = serde_json::to_value(SweepFile::new("b", grid())).unwrap();
    json["grid"]["steps"] = serde_json::json!(-3);
    std::fs::write(&bad, serde_json::to_vec(&json).unwrap()).unwrap();
    let o = reslab(&["sweep", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("grid.steps"), "{}", said(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped quick sweep is in the Experiments tab at launch (read from the runs folder in
/// the background) and shows its figures; a broken sweep file opened from the tab says why.
#[test]
fn the_lab_lists_the_runs_folders_sweeps_and_shows_one() {
    use egui_kittest::kittest::Queryable;
    let dir = common::temp_dir("sweep", "lab");
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("saved_runs/depth-sweep.reslab-sweep.json");
    std::fs::copy(&shipped, dir.join("depth-sweep.reslab-sweep.json")).unwrap();
    let mut h = common::lab::harness(&dir);
    common::lab::step_until(&mut h, "the launch's reads", |a| a.background_jobs() == 0);
    h.get_by_label("Experiments").click();
    h.run_steps(2);
    h.get_by_label("depth-sweep").click();
    h.run_steps(3);
    h.get_by_label_contains("Sweep depth-sweep: MNIST-10k");
    h.get_by_label_contains("30 of 30 cells done");
    h.get_by_label("validation accuracy at the end against depth");
    assert_eq!(
        h.get_all_by_label("mlp-plain (median over seeds)").count(),
        2
    );
    // Each cell's run opens from the table; the shipped sweep's run files are not shipped, so
    // the lab says which file is missing (and stays usable).
    h.get_by_label("Cells (30)").click();
    h.run_steps(2);
    h.get_by_label("mlp-plain-4-bn-lr0.05-seed0");
    // The first Open is the path field's (the list on the left); the second the first cell's.
    h.get_all_by_label("Open").nth(1).unwrap().click();
    common::lab::step_until(&mut h, "the run's load", |a| {
        a.messages()
            .iter()
            .any(|m| m.error && m.text.contains("mlp-plain-4-bn-lr0.05-seed0.reslab.json"))
    });
    assert_eq!(h.state().tab(), reslab::ui::app::Tab::Lab);
    h.get_by_label("Experiments").click();
    h.run_steps(2);
    // A broken sweep file opened from the tab's path field: the reason, naming the file.
    let bad = dir.join("broken.reslab-sweep.json");
    std::fs::write(&bad, "{\"format\": 1}").unwrap();
    h.state_mut().experiments_mut().selected = "init-variance".into();
    h.run_steps(1);
    let path = bad.to_str().unwrap().to_string();
    h.get_all_by_role(egui::accesskit::Role::TextInput)
        .last()
        .unwrap()
        .focus();
    h.run_steps(1);
    h.get_all_by_role(egui::accesskit::Role::TextInput)
        .last()
        .unwrap()
        .type_text(&path);
    h.run_steps(1);
    h.get_all_by_label("Open").last().unwrap().click();
    common::lab::step_until(&mut h, "the read", |a| a.experiments().error().is_some());
    let e = h.state().experiments().error().unwrap().to_string();
    assert!(e.contains("broken.reslab-sweep.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) stops a sweep after the current step: the finished cells are in the sweep
/// file, the stopped one left no run file, and the sweep says how far it got.
#[test]
fn an_interrupted_sweep_keeps_what_finished() {
    let dir = common::temp_dir("sweep", "interrupt");
    let out = dir.join("s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args([
            "sweep",
            "--families",
            "mlp-res",
            "--depths",
            "1,2",
            "--seeds",
            "1",
            "--steps",
            "1000000",
            "--width",
            "8",
            "--dataset",
            "spirals",
            "--out",
        ])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let file = dir.join("s.reslab-sweep.json");
    // Both cells take a million steps: wait until the first is under way, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut said).unwrap();
    assert!(status.success(), "{status:?} {said}");
    assert!(said.contains("0 of 2 cells done"), "{said}");
    assert!(SweepFile::load(&file).unwrap().results.is_empty());
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "no run file of a stopped cell"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--jobs 2` trains two cells at a time; every cell ends up in the sweep file once, in grid
/// order, whichever finished first, and each run equals the same cell trained alone.
#[test]
fn two_jobs_at_a_time_give_the_same_sweep() {
    let dir = common::temp_dir("sweep", "jobs");
    let run = |jobs: &str, name: &str| {
        let out = dir.join(name);
        let o = reslab(&[
            "sweep",
            "--families",
            "mlp-plain,mlp-res",
            "--depths",
            "1,3",
            "--seeds",
            "1",
            "--steps",
            "30",
            "--width",
            "8",
            "--dataset",
            "spirals",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", said(&o));
        SweepFile::load(&dir.join(format!("{name}.reslab-sweep.json"))).unwrap()
    };
    let (two, one) = (run("2", "two"), run("1", "one"));
    let cells: Vec<_> = two.results.iter().map(|r| r.cell.clone()).collect();
    assert_eq!(cells, two.grid.cells());
    for (a, b) in two.results.iter().zip(&one.results) {
        assert_eq!(
            (a.final_loss, a.val_accuracy),
            (b.final_loss, b.val_accuracy),
            "{:?}",
            a.cell
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
