//! Run files, version 2: the append-only history side file (crash safety, exact values,
//! tampering), a run saved where it was opened, loads checked against the network, and the
//! spec-level tensor list agreeing with the model builder.

mod common;

use common::session;
use reslab::metrics::{Checkpoint, History};
use reslab::runfile::{self, Environment, LoadError, RunFile};
use reslab::spec::*;
use std::path::{Path, PathBuf};

fn env() -> Environment {
    Environment {
        backend: "flex".into(),
        device: "cpu".into(),
        reslab_version: "test".into(),
    }
}

fn setup() -> (NetSpec, TrainConfig, DatasetSpec) {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = common::mlp("mlp-res-2", &dataset, 8, true);
    let config = TrainConfig {
        batch_size: 32,
        duration: Duration::Steps(200),
        probe_every: 5,
        ..TrainConfig::default()
    };
    (spec, config, dataset)
}

/// A run trained `steps` steps with its history and checkpoint.
struct Trained {
    run: RunFile,
    session: reslab::train::Session,
}

fn start(name: &str) -> Trained {
    let (spec, config, dataset) = setup();
    let session = session(&spec, &config, &dataset);
    let mut run = RunFile::new(name, spec, config, dataset, env());
    run.history = History::new(session.layout.clone());
    Trained { run, session }
}

impl Trained {
    fn train(&mut self, n: u64) {
        for _ in 0..n {
            let o = self.session.train_step();
            self.run.history.push_step(&o.record);
            if let Some(p) = o.probe {
                self.run.history.push_probe(p);
            }
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        self.session.checkpoint()
    }
}

fn header(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn side_file(path: &Path) -> PathBuf {
    let v = header(path);
    path.parent()
        .unwrap()
        .join(v["history"]["file"]["path"].as_str().unwrap())
}

fn same(a: &History, b: &History) -> bool {
    serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
}

#[test]
fn autosaves_append_one_chunk_each_and_load_back_exactly() {
    let dir = common::temp_dir("rf2", "append");
    let mut t = start("grow");
    let mut sizes = Vec::new();
    let mut path = PathBuf::new();
    for _ in 0..6 {
        t.train(10);
        path = runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
        sizes.push(std::fs::metadata(side_file(&path)).unwrap().len());
    }
    let v = header(&path);
    assert_eq!(v["version"], runfile::VERSION);
    assert_eq!(v["history"]["file"]["chunks"], 6);
    // Each save wrote one chunk of about the same size: the file grows linearly.
    let steps: Vec<u64> = sizes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.iter().all(|&d| d * 10 < sizes[0] * 15), "{sizes:?}");
    let loaded = runfile::load(&path).unwrap();
    assert!(same(&loaded.run.history, &t.run.history));
    assert_eq!(loaded.checkpoint.unwrap().step, 60);
    // A save without new points appends nothing.
    runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    assert_eq!(header(&path)["history"]["file"]["chunks"], 6);
}

#[test]
fn non_finite_values_survive_the_side_file_bit_for_bit() {
    let dir = common::temp_dir("rf2", "nan");
    let mut t = start("nan");
    t.train(3);
    for (i, v) in [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        f32::MIN_POSITIVE,
    ]
    .into_iter()
    .enumerate()
    {
        t.run.history.push("loss", "", 10 + i as u64, v);
    }
    let path = runfile::save(&dir, &t.run, None).unwrap();
    let loaded = runfile::load(&path).unwrap().run.history;
    let a = &loaded.get("loss", "").unwrap().values;
    let b = &t.run.history.get("loss", "").unwrap().values;
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn a_torn_append_is_ignored_and_the_next_save_starts_a_new_side_file() {
    let dir = common::temp_dir("rf2", "torn");
    let mut t = start("torn");
    t.train(20);
    let path = runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    let torn = side_file(&path);
    // What `kill -9` between appending and replacing the run file leaves: bytes past the
    // committed length (here half a chunk of garbage).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&torn)
        .unwrap();
    std::io::Write::write_all(&mut f, b"RLH1 half a chunk of garbage").unwrap();
    drop(f);
    let loaded = runfile::load(&path).unwrap();
    assert!(same(&loaded.run.history, &t.run.history));
    // Bytes past the committed length may also be another run file's (an older copy moved
    // back in place shares the side file), so the next save never cuts them off: it writes
    // the whole history into a new side file and removes the old one, which no file names.
    t.train(10);
    runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    let loaded = runfile::load(&path).unwrap();
    assert!(same(&loaded.run.history, &t.run.history));
    let v = header(&path);
    assert_eq!(v["history"]["file"]["chunks"], 1);
    assert_ne!(side_file(&path), torn);
    assert!(!torn.exists());
    // And appends go on from there.
    t.train(5);
    runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    assert_eq!(header(&path)["history"]["file"]["chunks"], 2);
    assert!(same(
        &runfile::load(&path).unwrap().run.history,
        &t.run.history
    ));
}

#[test]
fn a_damaged_side_file_is_refused_with_the_reason() {
    let dir = common::temp_dir("rf2", "damaged");
    let mut t = start("damaged");
    t.train(20);
    let path = runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    let side = side_file(&path);
    let good = std::fs::read(&side).unwrap();
    let expect = |what: &str| {
        let e = runfile::load(&path).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains("damaged.reslab.json"), "{e}");
    };
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&side, &bad).unwrap();
    expect("sha256");
    std::fs::write(&side, &good[..good.len() / 2]).unwrap();
    expect("commits to");
    std::fs::remove_file(&side).unwrap();
    expect("history file");
    std::fs::write(&side, &good).unwrap();
    assert!(runfile::load(&path).is_ok());
    // A side file outside the run file's folder is never opened.
    let good_json = std::fs::read(&path).unwrap();
    let mut v = header(&path);
    v["history"]["file"]["path"] = serde_json::json!("../../etc/passwd");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    expect("history.file.path");
    std::fs::write(&path, &good_json).unwrap();
    // The run file's table claims more points than the side file can hold.
    let mut v = header(&path);
    v["history"]["series"][0]["points"] = serde_json::json!(u64::MAX / 2);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    expect("points");
}

#[test]
fn a_run_saves_to_its_own_file_whatever_name_it_stores() {
    let dir = common::temp_dir("rf2", "label");
    let mut t = start("stored-label");
    t.train(10);
    let a = runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    assert_eq!(a, dir.join("stored-label.reslab.json"));
    // A copy of the run file, saved to its own path, gets its own side and weights files.
    let b = dir.join("copy.reslab.json");
    std::fs::copy(&a, &b).unwrap();
    let mut loaded = runfile::load(&b).unwrap();
    assert_eq!(loaded.run.name, "stored-label");
    loaded.run.history.push("loss", "", 10, 0.5);
    runfile::save_to(&b, &loaded.run, loaded.checkpoint.as_ref()).unwrap();
    let vb = header(&b);
    assert!(
        vb["history"]["file"]["path"]
            .as_str()
            .unwrap()
            .starts_with("copy.")
    );
    assert!(vb["weights"]["path"].as_str().unwrap().starts_with("copy."));
    assert_eq!(vb["name"], "stored-label", "the label is kept");
    assert!(runfile::load(&a).is_ok(), "the original is untouched");
    assert_eq!(
        runfile::load(&b)
            .unwrap()
            .run
            .history
            .get("loss", "")
            .unwrap()
            .len(),
        11
    );
}

#[test]
fn weights_of_another_network_are_refused_even_with_a_matching_hash() {
    let dir = common::temp_dir("rf2", "other-net");
    let mut t = start("net");
    t.train(5);
    let ck = t.checkpoint();
    // The same run file, but a network whose first layer is named differently.
    let mut other = t.run.clone();
    other.spec.layers[0].name = "stem.fc".into();
    other.spec.skips.iter_mut().for_each(|s| {
        if s.from == "input.fc" {
            s.from = "stem.fc".into();
        }
    });
    other.history = History::default();
    let path = runfile::save(&dir, &other, Some(&ck)).unwrap();
    match runfile::load(&path).unwrap_err().kind {
        LoadError::WeightsMismatch { reason, .. } => {
            assert!(reason.contains("input.fc"), "{reason}")
        }
        e => panic!("{e:?}"),
    }
    // Same names, another shape.
    let mut wider = ck.clone();
    let w = wider
        .tensors
        .iter_mut()
        .find(|t| t.name == "head.bias")
        .unwrap();
    w.shape = vec![1, 2];
    let path = runfile::save(&dir, &t.run, Some(&wider)).unwrap();
    match runfile::load(&path).unwrap_err().kind {
        LoadError::WeightsMismatch { reason, .. } => {
            assert!(reason.contains("head.bias"), "{reason}")
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn the_spec_level_tensor_list_matches_what_the_model_saves() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let mut specs = vec![
        common::mlp("mlp-res-3", &dataset, 8, true),
        common::mlp("mlp-plain-2", &dataset, 8, false),
    ];
    // Projections (with and without BN) and a learnable α.
    let mut proj = common::mlp("mlp-res-2", &dataset, 8, true);
    proj.skips[0].shortcut = Shortcut::Projection { batch_norm: true };
    proj.skips[1].shortcut = Shortcut::Projection { batch_norm: false };
    proj.skips[1].scale = BranchScale::skip_init();
    specs.push(proj);
    let cifar = DatasetSpec::from_name("cifar10:/nonexistent").unwrap();
    let opts = PresetOptions {
        width: 4,
        ..PresetOptions::for_dataset(&cifar)
    };
    specs.push(preset("cifar-resnet-8", &opts).unwrap());
    specs.push(preset("preact-resnet-8", &opts).unwrap());
    // Sequence layers: the tensors of patch embeddings and attention keep their sub-modules.
    let vit_opts = PresetOptions::default();
    specs.push(preset("vit-res-2", &vit_opts).unwrap());
    let mut rezero = preset("vit-postln-1", &vit_opts).unwrap();
    rezero.skips[0].scale = BranchScale::skip_init();
    rezero.skips[1].shortcut = Shortcut::Projection { batch_norm: true };
    specs.push(rezero);
    for spec in specs {
        let valid = validate(&spec).unwrap();
        let device = burn::tensor::Device::flex().autodiff();
        let model = reslab::model::build(&valid, &device, 0);
        let expected = expected_tensors(&valid);
        let params: Vec<(String, Vec<usize>)> = reslab::model::param_layout(&model)
            .into_iter()
            .map(|p| (p.name, p.shape))
            .collect();
        let trained: Vec<(String, Vec<usize>)> = expected
            .iter()
            .filter(|t| t.trainable)
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        assert_eq!(trained, params, "{}", spec.name);
        let trained_numel: u64 = expected
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.numel())
            .sum();
        assert_eq!(trained_numel, valid.total_params(), "{}", spec.name);
        assert_eq!(
            probe_names(&valid).params,
            params.into_iter().map(|p| p.0).collect::<Vec<_>>()
        );
    }
    // The whole checkpoint (buffers and optimiser state included) of a trained session, and its
    // layout, against the spec-level lists.
    let t = start("layout");
    let names = probe_names(&validate(&t.run.spec).unwrap());
    let l = &t.session.layout;
    assert_eq!(
        (
            &names.layers,
            &names.batch_norms,
            &names.batch_norm_channels,
            &names.skips,
            &names.params
        ),
        (
            &l.layers,
            &l.batch_norms,
            &l.batch_norm_channels,
            &l.skips,
            &l.params
        )
    );
    let mut ck: Vec<(String, Vec<usize>)> = t
        .checkpoint()
        .tensors
        .into_iter()
        .filter(|t| !t.name.starts_with("optim."))
        .map(|t| (t.name, t.shape))
        .collect();
    let mut want: Vec<(String, Vec<usize>)> = expected_tensors(&validate(&t.run.spec).unwrap())
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    ck.sort();
    want.sort();
    assert_eq!(ck, want);
}

#[test]
fn the_memory_estimate_grows_with_the_batch_and_refuses_above_the_limit() {
    let (spec, config, dataset) = setup();
    let valid = validate(&spec).unwrap();
    let small = estimate_memory(&valid, &config, &dataset);
    let big = estimate_memory(
        &valid,
        &TrainConfig {
            batch_size: 64,
            ..config.clone()
        },
        &dataset,
    );
    assert_eq!(big.activations, 2 * small.activations);
    assert_eq!(big.parameters, small.parameters);
    // SGD with momentum keeps one buffer per trained value.
    assert_eq!(small.optimizer, 4 * valid.total_params());
    assert!(reslab::train::check_memory(&valid, &config, &dataset, small.total()).is_ok());
    let e = reslab::train::check_memory(&valid, &config, &dataset, small.total() - 1).unwrap_err();
    assert!(e.to_string().contains("needs about"), "{e}");
    // The reproducer: one 65,536-channel conv on 28×28 at batch 128 is tens of GB.
    let wide: NetSpec = serde_json::from_value(serde_json::json!({
        "name": "wide", "input": {"kind": "image", "channels": 1, "height": 28, "width": 28},
        "layers": [
            {"name": "conv", "op": {"type": "conv2d", "out": 65536, "kernel": 3, "padding": 1}},
            {"name": "pool", "op": {"type": "global_avg_pool"}},
            {"name": "head", "op": {"type": "head", "outputs": 10}}],
        "skips": []}))
    .unwrap();
    let e = estimate_memory(
        &validate(&wide).unwrap(),
        &TrainConfig {
            batch_size: 128,
            ..config
        },
        &DatasetSpec::new(reslab::spec::DataSource::Mnist10k),
    );
    assert!(e.activations > 26_000_000_000, "{}", e.describe());
}

#[test]
fn a_sampler_seeks_to_a_saved_position_exactly_as_replaying_gets_there() {
    use reslab::data::BatchSampler;
    for (len, batch) in [(100, 32), (64, 64), (10, 128), (1000, 7)] {
        for steps in [0u64, 1, 2, 3, 4, 5, 13, 29, 100] {
            let mut replayed = BatchSampler::new(len, batch, 5);
            replayed.skip(steps);
            let (epoch, start, cursor) = replayed.position();
            assert_eq!(
                (epoch, cursor),
                replayed.expected_position(steps),
                "{len} {batch} {steps}"
            );
            let mut seeked = BatchSampler::new(len, batch, 5);
            assert!(seeked.seek(epoch, start, cursor));
            for _ in 0..40 {
                assert_eq!(
                    seeked.next_batch(),
                    replayed.next_batch(),
                    "{len} {batch} {steps}"
                );
            }
        }
    }
    // A position that cannot be this sampler's is refused.
    let mut s = BatchSampler::new(100, 32, 5);
    assert!(!s.seek(1, 0, 33));
    assert!(!s.seek(1, 0, 128));
}

#[test]
fn resuming_at_the_largest_step_count_seeks_instead_of_replaying() {
    let mut t = start("far");
    t.train(3);
    let mut ck = t.checkpoint();
    let far = MAX_STEPS - 10;
    ck.step = far;
    ck.optimizer_steps = far;
    let (epoch, cursor) = t.session.sampler.expected_position(far);
    let p = ck.sampler.as_mut().unwrap();
    (p.epoch, p.cursor) = (epoch, cursor);
    let (spec, config, dataset) = setup();
    let mut fresh = session(&spec, &config, &dataset);
    let started = std::time::Instant::now();
    fresh.restore(&ck).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "restore took {:?}",
        started.elapsed()
    );
    assert_eq!(fresh.step, far);
    assert_eq!(fresh.sampler.position().0, epoch);
    // The position goes through the weights file.
    let dir = common::temp_dir("rf2", "far");
    let path = runfile::save(&dir, &t.run, Some(&ck)).unwrap();
    assert_eq!(
        runfile::load(&path).unwrap().checkpoint.unwrap().sampler,
        ck.sampler
    );
}

#[cfg(unix)]
fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[cfg(unix)]
#[test]
fn a_save_of_unchanged_weights_writes_no_weights_and_encodings_are_identical() {
    let dir = common::temp_dir("rf2", "weights-once");
    let mut t = start("once");
    t.train(6);
    let ck = t.checkpoint();
    let a = runfile::save(&dir, &t.run, Some(&ck)).unwrap();
    let weights = dir.join(header(&a)["weights"]["path"].as_str().unwrap());
    let before = inode(&weights);
    // The final save after the last autosave: same weights, a new status.
    t.run.status = reslab::metrics::RunStatus::Finished;
    runfile::save(&dir, &t.run, Some(&ck)).unwrap();
    let after = dir.join(header(&a)["weights"]["path"].as_str().unwrap());
    assert_eq!(after, weights, "the same file");
    assert_eq!(inode(&after), before, "not written again");
    let encodings: Vec<Vec<u8>> = (0..4)
        .map(|_| runfile::encode_weights(&ck).unwrap())
        .collect();
    assert!(encodings.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read(&weights).unwrap(), encodings[0]);
    let back = runfile::decode_weights(&encodings[0]).unwrap();
    assert_eq!(back.tensors.len(), ck.tensors.len());
}

#[test]
fn a_save_keeps_every_side_file_another_run_file_in_the_folder_names() {
    let dir = common::temp_dir("rf2", "shared");
    let mut t = start("orig");
    t.train(5);
    let a = runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    let b = dir.join("backup.reslab.json");
    std::fs::copy(&a, &b).unwrap();
    for _ in 0..3 {
        t.train(5);
        runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    }
    assert_eq!(runfile::load(&b).unwrap().checkpoint.unwrap().step, 5);
    assert_eq!(runfile::load(&a).unwrap().checkpoint.unwrap().step, 20);
    // Once the copy is gone, the next save of the original removes the files only the copy
    // named (they were made under the original's name).
    std::fs::remove_file(&b).unwrap();
    t.train(1);
    runfile::save(&dir, &t.run, Some(&t.checkpoint())).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".weights.safetensors"))
        .collect();
    assert_eq!(names.len(), 1, "the original's own: {names:?}");
}
