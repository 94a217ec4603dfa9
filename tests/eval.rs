//! `reslab eval`: a saved run evaluated as it trained (the run's own numbers), under a shift,
//! with test-time BN modes, with its predictions as CSV; bad input exits 2 naming what is wrong.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

/// Linear → BN → ReLU twice and a head, on spirals: a constant shift of the input is undone by
/// the first BN's batch statistics.
const NET: &str = r#"{"name": "eval", "input": {"kind": "flat", "features": 2}, "layers": [
  {"name": "fc1", "op": {"type": "linear", "out": 16}}, {"name": "n1", "op": {"type": "batch_norm"}},
  {"name": "a1", "op": {"type": "activation", "function": "relu"}},
  {"name": "fc2", "op": {"type": "linear", "out": 16}}, {"name": "n2", "op": {"type": "batch_norm"}},
  {"name": "a2", "op": {"type": "activation", "function": "relu"}},
  {"name": "head", "op": {"type": "head", "outputs": 2}}], "skips": []}"#;

use common::cli::{reslab, text};

/// Trains the net 300 steps on spirals into `dir`; returns the run file.
fn trained(dir: &Path) -> PathBuf {
    let net = dir.join("net.json");
    std::fs::write(&net, NET).unwrap();
    let out = dir.join("run");
    let o = reslab(&[
        "train",
        "--spec",
        &net.to_string_lossy(),
        "--dataset",
        "spirals",
        "--steps",
        "300",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    dir.join("run.reslab.json")
}

fn accuracy(o: &Output) -> f64 {
    let t = text(o);
    let line = t
        .lines()
        .find(|l| l.starts_with("accuracy "))
        .unwrap_or_else(|| panic!("{t}"));
    line["accuracy ".len()..]
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

#[test]
fn eval_reproduces_the_run_and_shows_what_a_shift_and_the_bn_modes_do() {
    let dir = common::temp_dir("eval", "modes");
    let run = trained(&dir);
    let r = run.to_string_lossy().to_string();
    let own = reslab(&["eval", &r]);
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));
    // The same numbers as the run's last validation pass.
    let loaded = reslab::runfile::load(&run).unwrap();
    let val = loaded
        .run
        .history
        .get(reslab::metrics::series::VAL_ACCURACY, "")
        .and_then(|s| s.last())
        .unwrap() as f64;
    assert!(
        (accuracy(&own) - 100.0 * val).abs() < 0.01,
        "{}",
        text(&own)
    );
    let t = text(&own);
    assert!(
        t.contains("confusion matrix") && t.contains("400 samples of spirals"),
        "{t}"
    );
    // Shifted by a constant: the running statistics fail, the batch's and AdaBN's undo it.
    let shifted = reslab(&["eval", &r, "--shift", "brightness:3"]);
    let batch = reslab(&[
        "eval",
        &r,
        "--shift",
        "brightness:3",
        "--norm-mode",
        "batch",
    ]);
    let adabn = reslab(&[
        "eval",
        &r,
        "--shift",
        "brightness:3",
        "--norm-mode",
        "adabn:2",
    ]);
    eprintln!(
        "own {} shifted {} batch {} adabn {}",
        accuracy(&own),
        accuracy(&shifted),
        accuracy(&batch),
        accuracy(&adabn)
    );
    assert!(accuracy(&shifted) < accuracy(&own) - 20.0);
    assert!(accuracy(&batch) > accuracy(&own) - 2.0);
    assert!(accuracy(&adabn) > accuracy(&own) - 2.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predictions_are_a_csv_row_per_sample_with_the_logits() {
    let dir = common::temp_dir("eval", "csv");
    let run = trained(&dir);
    let csv = dir.join("preds.csv");
    let o = reslab(&[
        "eval",
        &run.to_string_lossy(),
        "--predictions",
        &csv.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let body = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "index,label,predicted,loss,logit_0,logit_1");
    assert_eq!(lines.len(), 401);
    let right = lines[1..]
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            // The predicted class is the larger logit, and right when it is the label.
            let (a, b): (f32, f32) = (f[4].parse().unwrap(), f[5].parse().unwrap());
            assert_eq!(f[2], if b > a { "1" } else { "0" });
            f[1] == f[2]
        })
        .count();
    assert!((right as f64 / 4.0 - accuracy(&o)).abs() < 0.01);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    let dir = common::temp_dir("eval", "bad");
    let run = trained(&dir);
    let r = run.to_string_lossy().to_string();
    let cases: [(&[&str], &str); 8] = [
        (
            &["--norm-mode", "adabn:0"],
            "AdaBN needs a whole number of batches",
        ),
        (&["--norm-mode", "sometimes"], "unknown normalisation mode"),
        (&["--shift", "blur:1"], "unknown shift \"blur\""),
        (&["--batch", "0"], "--batch"),
        (
            &["--dataset", "mnist"],
            "--dataset: MNIST-10k has samples of",
        ),
        (&["--dataset", "nope"], "--dataset: unknown dataset"),
        (&["--predictions", &r], "refusing to write over a run file"),
        (&["--dataset", "fashion:/no/such/folder"], "/no/such/folder"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["eval", r.as_str()];
        args.extend_from_slice(extra);
        let o = reslab(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{extra:?}: {}", text(&o));
    }
    let missing = dir.join("none.reslab.json");
    let o = reslab(&["eval", &missing.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("none.reslab.json"), "{}", text(&o));
    // The run file is untouched by all of it.
    assert!(reslab::runfile::load(&run).unwrap().checkpoint.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
