//! Run files: round trip, exact resume, validated loads with crafted bad files, fuzzing,
//! crash safety of saves, name sanitising.

mod common;

use common::session;
use proptest::prelude::*;
use reslab::metrics::{Checkpoint, History};
use reslab::runfile::{self, Environment, LoadError, RunFile, RunStatus};
use reslab::spec::*;
use reslab::train::Session;
use std::path::{Path, PathBuf};

fn setup(steps: u64) -> (NetSpec, TrainConfig, DatasetSpec) {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = common::mlp("mlp-res-3", &dataset, 16, true);
    let config = TrainConfig {
        optimizer: OptimizerSpec::adam(),
        lr: 0.01,
        batch_size: 32,
        duration: Duration::Steps(steps),
        probe_every: 10,
        ..TrainConfig::default()
    };
    (spec, config, dataset)
}

/// Trains `n` steps, recording into `history`; returns the losses.
fn train(s: &mut Session, n: u64, history: &mut History) -> Vec<f32> {
    let mut out = Vec::new();
    for _ in 0..n {
        let o = s.train_step();
        history.push_step(&o.record);
        if let Some(p) = o.probe {
            history.push_probe(p);
        }
        out.push(o.record.loss);
    }
    out
}

/// Histories compared through their JSON form, where NaN (e.g. the update ratio of a zero
/// bias at step 1) equals NaN.
fn same_history(a: &History, b: &History) -> bool {
    serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
}

fn env() -> Environment {
    Environment {
        backend: "flex".into(),
        device: "cpu".into(),
        reslab_version: "test".into(),
    }
}

fn saved_run(dir: &Path, name: &str, steps: u64) -> (PathBuf, RunFile, Checkpoint) {
    let (spec, config, dataset) = setup(100);
    let mut s = session(&spec, &config, &dataset);
    let mut history = History::new(s.layout.clone());
    train(&mut s, steps, &mut history);
    let mut run = RunFile::new(name, spec, config, dataset, env());
    run.history = history;
    run.status = RunStatus::Stopped;
    run.notes = "a note".into();
    let ck = s.checkpoint();
    let path = runfile::save(dir, &run, Some(&ck)).unwrap();
    (path, run, ck)
}

#[test]
fn save_then_load_gives_an_equal_run() {
    let dir = common::temp_dir("rf", "roundtrip");
    let (path, run, ck) = saved_run(&dir, "round", 30);
    assert_eq!(path, dir.join("round.reslab.json"));
    let loaded = runfile::load(&path).unwrap();
    assert_eq!(loaded.run.spec, run.spec);
    assert_eq!(loaded.run.config, run.config);
    assert_eq!(loaded.run.dataset, run.dataset);
    assert_eq!(loaded.run.notes, "a note");
    assert_eq!(loaded.run.status, RunStatus::Stopped);
    assert!(same_history(&loaded.run.history, &run.history));
    assert_eq!(loaded.run.progress.step, 30);
    let lck = loaded.checkpoint.unwrap();
    assert_eq!(lck.step, 30);
    assert_eq!(lck.optimizer_steps, 30);
    let mut a = ck.tensors.clone();
    a.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(lck.tensors, a);
    assert!(lck.get("block1.fc.weight").is_some());
    assert!(lck.get("block1.bn.running_var").is_some());
    assert!(lck.get("optim.v.block1.fc.weight").is_some());
}

#[test]
fn resume_is_exact_100_straight_equals_50_saved_loaded_50() {
    let (spec, config, dataset) = setup(100);
    let mut straight = session(&spec, &config, &dataset);
    let mut h = History::default();
    let all = train(&mut straight, 100, &mut h);

    let dir = common::temp_dir("rf", "resume");
    let mut first = session(&spec, &config, &dataset);
    let mut h2 = History::default();
    let a = train(&mut first, 50, &mut h2);
    let mut run = RunFile::new("half", spec.clone(), config.clone(), dataset.clone(), env());
    run.history = h2;
    let path = runfile::save(&dir, &run, Some(&first.checkpoint())).unwrap();
    drop(first);
    let loaded = runfile::load(&path).unwrap();
    let mut second = session(&spec, &config, &dataset);
    second.restore(&loaded.checkpoint.unwrap()).unwrap();
    assert_eq!(second.step, 50);
    let b = train(&mut second, 50, &mut loaded.run.history.clone());
    let resumed: Vec<f32> = a.into_iter().chain(b).collect();
    assert_eq!(resumed.len(), 100);
    for (i, (x, y)) in all.iter().zip(&resumed).enumerate() {
        assert!((x - y).abs() <= 1e-5, "step {}: {x} vs {y}", i + 1);
    }
}

fn expect_err(path: &Path) -> LoadError {
    let e = runfile::load(path).unwrap_err();
    assert_eq!(e.path, path, "the error names the file");
    assert!(e.to_string().contains(&path.display().to_string()));
    e.kind
}

#[test]
fn each_bad_file_gets_an_error_naming_the_file_and_the_problem() {
    let dir = common::temp_dir("rf", "bad");
    let (path, _, _) = saved_run(&dir, "good", 12);
    // The whole run in one JSON (the layout of version 1, which every build reads), so that the
    // history itself can be edited below.
    let text = serde_json::to_string(&runfile::load(&path).unwrap().run).unwrap();

    let p = dir.join("notjson.reslab.json");
    std::fs::write(&p, "this is not json").unwrap();
    assert!(matches!(expect_err(&p), LoadError::NotJson(_)));

    let p = dir.join("other.reslab.json");
    std::fs::write(&p, r#"{"format": "something-else", "version": 1}"#).unwrap();
    assert!(matches!(expect_err(&p), LoadError::WrongFormat(f) if f.contains("something-else")));

    let p = dir.join("newer.reslab.json");
    let version = format!("\"version\":{}", runfile::VERSION);
    std::fs::write(&p, text.replacen(&version, "\"version\":7", 1)).unwrap();
    assert!(matches!(
        expect_err(&p),
        LoadError::NewerVersion {
            found: 7,
            supported: runfile::VERSION
        }
    ));

    let p = dir.join("trunc.reslab.json");
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    assert!(matches!(expect_err(&p), LoadError::Truncated { .. }));

    // Inconsistent history: drop one value from the first series.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["history"]["series"][0][1]["values"]
        .as_array_mut()
        .unwrap()
        .pop();
    let p = dir.join("inconsistent.reslab.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    assert!(
        matches!(expect_err(&p), LoadError::InconsistentHistory { values, steps, .. } if values + 1 == steps)
    );

    // An invalid network inside.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["spec"]["layers"] = serde_json::json!([]);
    let p = dir.join("badspec.reslab.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    assert!(matches!(expect_err(&p), LoadError::Field { field, .. } if field == "spec"));

    // Weights: missing, then corrupted (hash mismatch).
    let weights = dir.join(&runfile::load(&path).unwrap().run.weights.unwrap().path);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    assert!(matches!(
        expect_err(&path),
        LoadError::WeightsMissing { .. }
    ));
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&weights, &bad).unwrap();
    match expect_err(&path) {
        LoadError::WeightsMismatch { reason, .. } => assert!(reason.contains("sha256"), "{reason}"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&weights, &bytes).unwrap();
    assert!(runfile::load(&path).is_ok());

    // A weights path that tries to leave the folder.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["weights"]["path"] = serde_json::json!("../../etc/passwd");
    let p = dir.join("escape.reslab.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    assert!(matches!(expect_err(&p), LoadError::Field { field, .. } if field == "weights.path"));

    // Missing file.
    assert!(matches!(
        expect_err(&dir.join("nope.reslab.json")),
        LoadError::Io(_)
    ));
}

#[test]
fn a_file_claiming_a_trillion_steps_loads_without_allocating_for_them() {
    let dir = common::temp_dir("rf", "huge");
    let (path, _, _) = saved_run(&dir, "huge", 5);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["progress"]["step"] = serde_json::json!(1_000_000_000_000u64);
    v["config"]["duration"] = serde_json::json!({"steps": 1_000_000_000_000u64});
    let p = dir.join("claims.reslab.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    // The config refuses more than 100 M steps; nothing is sized from the claim.
    assert!(matches!(expect_err(&p), LoadError::Field { field, .. } if field == "config"));
}

#[test]
fn an_interrupted_save_leaves_the_previous_version_loadable() {
    let dir = common::temp_dir("rf", "crash");
    let (path, run, _) = saved_run(&dir, "crashy", 10);
    // A crash after writing the temporary file but before the rename leaves it behind.
    std::fs::write(
        dir.join(".crashy.reslab.json.tmp-99999"),
        b"{\"format\": \"reslab-run\", \"vers",
    )
    .unwrap();
    let loaded = runfile::load(&path).unwrap();
    assert!(same_history(&loaded.run.history, &run.history));
    // A crash in the middle of the weights' temporary file does not touch the live weights.
    std::fs::write(
        dir.join(".crashy.weights.safetensors.tmp-99999"),
        b"partial",
    )
    .unwrap();
    assert!(runfile::load(&path).is_ok());
    // A new save replaces both files and the new version loads.
    let (path2, run2, _) = saved_run(&dir, "crashy", 20);
    assert_eq!(path2, path);
    assert!(same_history(
        &runfile::load(&path).unwrap().run.history,
        &run2.history
    ));
}

fn weights_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".weights.safetensors"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_save_killed_between_the_weights_and_the_run_file_leaves_the_old_pair_loadable() {
    let dir = common::temp_dir("rf", "killed-mid-save");
    let (path, run, ck10) = saved_run(&dir, "autosaved", 10);
    let first = runfile::load(&path).unwrap().run.weights.unwrap();
    assert_eq!(weights_files(&dir), vec![first.path.clone()]);

    // The first half of the next autosave: newer weights are on disk, the run file is not
    // rewritten yet (this is where `kill -9` struck the CLI's autosave).
    let (spec, config, dataset) = setup(100);
    let mut s = session(&spec, &config, &dataset);
    let mut history = History::new(s.layout.clone());
    train(&mut s, 20, &mut history);
    let ck20 = s.checkpoint();
    let newer = runfile::write_weights(&dir, "autosaved", &ck20).unwrap();
    assert_ne!(
        newer.path, first.path,
        "new weights never overwrite the live ones"
    );
    assert_eq!(weights_files(&dir).len(), 2);

    let loaded = runfile::load(&path).unwrap();
    assert_eq!(loaded.run.progress.step, 10);
    assert!(same_history(&loaded.run.history, &run.history));
    let lck = loaded.checkpoint.unwrap();
    assert_eq!(lck.step, 10);
    let sorted = |ck: &Checkpoint| {
        let mut t = ck.tensors.clone();
        t.sort_by(|x, y| x.name.cmp(&y.name));
        t
    };
    assert_eq!(lck.tensors, sorted(&ck10), "the step-10 weights");
    assert_ne!(lck.tensors, sorted(&ck20));

    // The next complete save points at its own weights and removes both older files.
    let mut run20 = run.clone();
    run20.history = history;
    runfile::save(&dir, &run20, Some(&ck20)).unwrap();
    let loaded = runfile::load(&path).unwrap();
    assert_eq!(loaded.checkpoint.unwrap().step, 20);
    assert_eq!(
        weights_files(&dir),
        vec![loaded.run.weights.unwrap().path],
        "one weights file per run"
    );
}

#[test]
fn saving_a_run_keeps_the_weights_of_runs_with_longer_names() {
    let dir = common::temp_dir("rf", "neighbours");
    let (a, _, _) = saved_run(&dir, "net", 5);
    let (b, _, _) = saved_run(&dir, "net.v2", 5);
    let (c, _, _) = saved_run(&dir, "net-long", 5);
    // Saving "net" again must not take "net.v2"'s or "net-long"'s weights for its own.
    saved_run(&dir, "net", 6);
    for p in [a, b, c] {
        assert!(runfile::load(&p).is_ok(), "{}", p.display());
    }
    assert_eq!(weights_files(&dir).len(), 3);
}

#[test]
fn run_names_cannot_escape_the_folder() {
    for (name, expected) in [
        ("../../x", "____x"),
        ("a/b\\c", "a_b_c"),
        ("..", "run"),
        ("", "run"),
        (".hidden", "hidden"),
        ("ok-name_1.2", "ok-name_1.2"),
    ] {
        assert_eq!(runfile::sanitize_name(name), expected, "{name}");
    }
    let dir = common::temp_dir("rf", "names");
    let (path, _, _) = saved_run(&dir, "../../evil", 3);
    assert_eq!(path.parent().unwrap(), dir);
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with(".reslab.json")
    );
}

#[test]
fn exported_weights_read_back_with_the_safetensors_crate() {
    let dir = common::temp_dir("rf", "st");
    let (_, run, ck) = saved_run(&dir, "st", 5);
    let bytes = runfile::encode_weights(&ck).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let valid = validate(&run.spec).unwrap();
    let fc = st.tensor("block1.fc.weight").unwrap();
    assert_eq!(fc.dtype(), safetensors::Dtype::F32);
    assert_eq!(fc.shape(), &[16, 16]);
    assert_eq!(st.tensor("head.bias").unwrap().shape(), &[2]);
    assert_eq!(st.tensor("block2.bn.running_mean").unwrap().shape(), &[16]);
    // Every trainable parameter is there (plus BN buffers and Adam moments).
    let params = valid.total_params() as usize;
    let weights: usize = st
        .tensors()
        .iter()
        .filter(|(n, _)| !n.starts_with("optim.") && !n.contains("running_"))
        .map(|(_, v)| v.shape().iter().product::<usize>())
        .sum();
    assert_eq!(weights, params);
}

fn valid_bytes() -> Vec<u8> {
    static ONCE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = common::temp_dir("rf", "fuzzseed");
        let (path, _, _) = saved_run(&dir, "seed", 10);
        std::fs::read(path).unwrap()
    })
    .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// 1000 mutated run files (byte flips, cuts, inserted bytes): parsing never panics.
    #[test]
    fn mutated_run_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        insert in proptest::option::of((any::<prop::sample::Index>(), "[\\[\\]{}\",:0-9a-z-]{1,8}")),
    ) {
        let mut bytes = valid_bytes();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Some((i, s)) = insert {
            let i = i.index(bytes.len());
            bytes.splice(i..i, s.bytes());
        }
        if let Some(c) = cut {
            let c = c.index(bytes.len());
            bytes.truncate(c);
        }
        let _ = runfile::parse(&bytes);
    }
}
