//! The CLI as a user runs it: the real binary, its exit codes and messages.

mod common;

use std::process::{Command, Output};

fn reslab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn train_inspect_export_resume_as_a_user_would() {
    let dir = common::temp_dir("cli", "flow");
    let out = dir.join("spiral-run");
    let o = reslab(&[
        "train",
        "--preset",
        "mlp-res-3",
        "--width",
        "16",
        "--dataset",
        "spirals",
        "--steps",
        "60",
        "--probe-every",
        "10",
        "--out",
        out.to_str().unwrap(),
        "--notes",
        "cli test",
    ]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("finished after 60 steps"), "{stdout}");
    let file = dir.join("spiral-run.reslab.json");
    assert!(file.is_file());
    let weights = reslab::runfile::load(&file).unwrap().run.weights.unwrap();
    assert!(
        weights.path.starts_with("spiral-run.") && weights.path.ends_with(".weights.safetensors")
    );
    assert!(dir.join(&weights.path).is_file());

    let o = reslab(&["inspect", file.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("Finished after 60 steps"), "{stdout}");
    assert!(stdout.contains("block3.bn"), "the layer table: {stdout}");
    assert!(stdout.contains("notes      cli test"));

    let csv = dir.join("h.csv");
    let st = dir.join("w.safetensors");
    let o = reslab(&[
        "export",
        file.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--weights",
        st.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("step,series,layer,value\n"));
    assert!(
        csv_text.lines().any(|l| l.starts_with("60,loss,,")),
        "the last loss row"
    );
    assert!(
        csv_text
            .lines()
            .any(|l| l.starts_with("60,act_std,block1.fc,"))
    );
    let bytes = std::fs::read(&st).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        tensors.tensor("block1.fc.weight").unwrap().shape(),
        &[16, 16]
    );
    assert_eq!(tensors.tensor("input.fc.weight").unwrap().shape(), &[2, 16]);

    let o = reslab(&["resume", file.to_str().unwrap(), "--steps", "20"]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("after 80 steps"), "{stdout}");
    let o = reslab(&["inspect", file.to_str().unwrap()]);
    assert!(text(&o).0.contains("Finished after 80 steps"));
    let o = reslab(&["resume", file.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "nothing left to do without --steps"
    );
}

#[test]
fn bad_arguments_exit_2_without_a_panic() {
    for args in [
        vec!["train", "--no-such-flag"],
        vec!["train", "--preset", "resnet-9000", "--out", "/tmp/x"],
        vec!["train", "--dataset", "imagenet", "--out", "/tmp/x"],
        vec!["train", "--lr", "-1", "--out", "/tmp/x"],
        vec!["export", "x.reslab.json"],
        vec!["frobnicate"],
    ] {
        let o = reslab(&args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?} gives a reason");
    }
}

#[test]
fn a_bad_run_file_exits_2_with_the_file_and_reason() {
    let dir = common::temp_dir("cli", "badfile");
    let f = dir.join("broken.reslab.json");
    std::fs::write(&f, r#"{"format": "reslab-run", "version": 99}"#).unwrap();
    for cmd in ["inspect", "resume"] {
        let o = reslab(&[cmd, f.to_str().unwrap()]);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("broken.reslab.json"), "{stderr}");
        assert!(stderr.contains("version 99"), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn help_lists_examples_for_every_subcommand() {
    for cmd in ["train", "resume", "presets", "inspect", "export", "bench"] {
        let o = reslab(&[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(text(&o).0.contains("Example"), "{cmd}");
    }
    let o = reslab(&["presets"]);
    assert!(text(&o).0.contains("cifar-resnet-20"));
}

/// `bench --first-probe` starts the lab's CNN run through the lab's worker and reports when it
/// started, stepped and probed, in that order (the times themselves are BENCHMARKS.md's).
#[test]
fn bench_first_probe_reports_start_step_and_probe_in_order() {
    let o = reslab(&["bench", "--first-probe"]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("cifar-resnet-20, MNIST-10k"), "{stdout}");
    let median = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("median"))
        .unwrap_or_else(|| panic!("no median line in {stdout}"));
    let secs: Vec<f64> = median
        .split_whitespace()
        .skip(1)
        .map(|v| v.trim_end_matches('s').parse().expect("seconds"))
        .collect();
    assert_eq!(secs.len(), 3, "{median}");
    assert!(
        0.0 < secs[0] && secs[0] <= secs[1] && secs[1] <= secs[2],
        "{median}"
    );
}

fn wait_for(path: &std::path::Path, secs: u64) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < secs {
        if path.is_file() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn long_train(out: &std::path::Path, autosave_steps: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args([
            "train",
            "--preset",
            "mlp-res-4",
            "--width",
            "32",
            "--dataset",
            "mnist",
            "--steps",
            "1000000",
            "--probe-every",
            "50",
            "--autosave-steps",
            autosave_steps,
            "--autosave-secs",
            "0",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ctrl_c_stops_the_run_and_saves_it() {
    let dir = common::temp_dir("cli", "sigint");
    let out = dir.join("interrupted");
    let child = long_train(&out, "20");
    let file = dir.join("interrupted.reslab.json");
    assert!(wait_for(&file, 120), "an autosave appears");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("stopped after"), "{stdout}");
    let loaded = reslab::runfile::load(&file).unwrap();
    assert_eq!(loaded.run.status, reslab::runfile::RunStatus::Stopped);
    let steps = loaded.run.history.get("loss", "").unwrap().len() as u64;
    assert_eq!(
        loaded.checkpoint.unwrap().step,
        steps,
        "weights and history agree"
    );
}

#[test]
fn a_killed_run_keeps_its_last_autosave() {
    let dir = common::temp_dir("cli", "sigkill");
    let out = dir.join("killed");
    let mut child = long_train(&out, "10");
    let file = dir.join("killed.reslab.json");
    assert!(wait_for(&file, 120), "an autosave appears");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    let _ = child.wait();
    let loaded = reslab::runfile::load(&file).unwrap();
    assert_eq!(loaded.run.status, reslab::runfile::RunStatus::Running);
    let step = loaded.checkpoint.unwrap().step;
    assert!(
        step >= 10 && step.is_multiple_of(10),
        "autosaved at step {step}"
    );
    assert_eq!(
        loaded.run.history.get("loss", "").unwrap().len() as u64,
        step
    );
}
