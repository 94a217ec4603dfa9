//! Evaluation sets beside the validation split, and the input normalisation a run records:
//! parsing, the engine's numbers against a separate evaluation, run files (version 3 records
//! both; version 2 files load and get the normalisation recomputed), the CLI.

use reslab::data::{self, norm_stats};
use reslab::metrics::series;
use reslab::spec::{DataSource, DatasetSpec, EvalSet, Palette, Shift, ShiftKind};
use reslab::train::{EvalData, EvalOptions, evaluate};

mod common;

use common::cli::{reslab, text};

#[test]
fn a_set_is_a_dataset_and_or_shifts_and_bad_ones_say_why() {
    let s = EvalSet::parse("green=coloured-mnist:green").unwrap();
    assert_eq!(
        s.source,
        Some(DataSource::ColouredMnist {
            palette: Palette::Green
        })
    );
    assert!(s.shifts.is_empty());
    let s = EvalSet::parse("both=coloured-mnist:blue,scale:0.4,rotate:25").unwrap();
    assert_eq!(s.name, "both");
    assert_eq!(
        s.shifts,
        vec![
            Shift {
                kind: ShiftKind::Scale,
                strength: 0.4
            },
            Shift {
                kind: ShiftKind::Rotate,
                strength: 25.0
            }
        ]
    );
    assert_eq!(
        s.describe(),
        "Coloured MNIST-10k (blue), scale:0.4, rotate:25"
    );
    for (bad, says) in [
        ("green", "NAME=DATASET"),
        ("=scale:0.4", "a set's name"),
        ("a b=scale:0.4", "a set's name"),
        ("x=", "neither a dataset nor a shift"),
        ("x=wobble:3", "neither a shift"),
        ("x=mnist,coloured-mnist", "more than one dataset"),
        ("x=rotate:1000", "neither a shift"),
    ] {
        let e = EvalSet::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    // Shifts are written as KIND:STRENGTH in files.
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.contains(r#""shifts":["scale:0.4","rotate:25"]"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<EvalSet>(&json).unwrap(), s);
    assert!(serde_json::from_str::<EvalSet>(r#"{"name":"x","shifts":["nope:1"]}"#).is_err());
}

#[test]
fn duplicate_or_too_many_sets_are_refused_with_the_field() {
    let mut d = DatasetSpec::new(DataSource::Mnist10k);
    d.eval_sets = vec![
        EvalSet::parse("a=scale:0.5").unwrap(),
        EvalSet::parse("a=scale:0.6").unwrap(),
    ];
    let (field, reason) = d.validate().unwrap_err();
    assert_eq!(field, "eval_sets[1].name");
    assert!(reason.contains("twice"), "{reason}");
    d.eval_sets = (0..9)
        .map(|k| EvalSet::parse(&format!("s{k}=scale:0.5")).unwrap())
        .collect();
    assert!(d.validate().unwrap_err().1.contains("at most 8"));
}

/// The engine's numbers for a set are the one `evaluate` on the set built by hand: the green
/// digits' validation split, normalised with the *red* training split's statistics.
#[test]
fn the_engine_evaluates_each_set_normalised_like_the_training_data() {
    let mut spec = DatasetSpec::new(DataSource::ColouredMnist {
        palette: Palette::Red,
    });
    spec.eval_sets = vec![
        EvalSet::parse("green=coloured-mnist:green").unwrap(),
        EvalSet::parse("dim=scale:0.4").unwrap(),
    ];
    let data = data::load(&spec).unwrap();
    let raw = data::load_raw(&spec).unwrap();
    let stats = norm_stats(&raw.train, raw.sample_shape);
    assert_eq!(data.input_norm, stats);
    assert_eq!(data.input_norm.len(), 3);
    let mut green = data::load_raw(&DatasetSpec::new(DataSource::ColouredMnist {
        palette: Palette::Green,
    }))
    .unwrap()
    .valid;
    data::apply_norm(&mut green, &stats, raw.sample_shape);
    assert_eq!(data.eval_sets[0].0, "green");
    assert_eq!(data.eval_sets[0].1, green);
    // The shifted set is the red validation digits, dimmed, then normalised.
    let mut dim = raw.valid.clone();
    dim.x.iter_mut().for_each(|v| *v *= 0.4);
    data::apply_norm(&mut dim, &stats, raw.sample_shape);
    assert_eq!(data.eval_sets[1].1, dim);

    let net =
        reslab::spec::preset("cnn-1", &reslab::spec::PresetOptions::for_dataset(&spec)).unwrap();
    let config = reslab::spec::TrainConfig {
        duration: reslab::spec::Duration::Steps(3),
        probe_every: 0,
        ..reslab::spec::TrainConfig::default()
    };
    let mut session = reslab::train::Session::new(
        &reslab::spec::validate(&net).unwrap(),
        &config,
        data,
        burn::tensor::Device::flex().autodiff(),
    )
    .unwrap();
    for _ in 0..3 {
        session.train_step();
    }
    assert_eq!(session.layout.eval_sets, ["green", "dim"]);
    assert_eq!(session.layout.input_norm.len(), 3);
    let record = session.evaluate();
    assert_eq!(record.sets.len(), 2);
    let by_hand = evaluate(
        &session.model,
        EvalData {
            split: &green,
            task: session.data.task,
            shape: session.data.sample_shape,
        },
        &EvalOptions::default(),
        &session.device,
    );
    assert_eq!(record.sets[0], [by_hand.loss, by_hand.accuracy]);
}

#[test]
fn a_run_records_its_sets_and_normalisation_and_old_files_get_it_recomputed() {
    let dir = common::temp_dir("eval_sets", "cli");
    let out = dir.join("run");
    let o = reslab(&[
        "train",
        "--preset",
        "cnn-1",
        "--dataset",
        "coloured-mnist",
        "--steps",
        "20",
        "--eval-set",
        "green=coloured-mnist:green",
        "--eval-set",
        "dim=scale:0.4",
        "--out",
        &out.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let file = dir.join("run.reslab.json");
    let run = reslab::runfile::load(&file).unwrap().run;
    assert_eq!(run.history.layout.eval_sets, ["green", "dim"]);
    assert_eq!(run.history.layout.input_norm.len(), 3);
    let green = run
        .history
        .get(series::VAL_ACCURACY, "green")
        .and_then(|s| s.last())
        .expect("the green set's accuracy");
    let json = std::fs::read_to_string(&file).unwrap();
    assert!(json.contains(r#""version":3"#));

    let f = file.to_string_lossy().to_string();
    let inspect = text(&reslab(&["inspect", &f]));
    assert!(
        inspect.contains("eval set   green (Coloured MNIST-10k (green))"),
        "{inspect}"
    );
    assert!(inspect.contains("(recorded)"), "{inspect}");
    // `eval` on the green digits gives the run's recorded number for the set.
    let eval = reslab(&["eval", &f, "--dataset", "coloured-mnist:green"]);
    let t = text(&eval);
    assert!(!t.contains("recomputed"), "{t}");
    assert!(
        t.contains(&format!("accuracy {:.2}%", 100.0 * green)),
        "{t}\nrecorded {green}"
    );

    // The same file as version 2 wrote it: no input normalisation, no sets in the layout.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["version"] = 2.into();
    let layout = v["history"]["layout"].as_object_mut().unwrap();
    layout.remove("input_norm");
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let old = reslab::runfile::load(&file).unwrap().run;
    assert!(old.history.layout.input_norm.is_empty());
    let inspect = text(&reslab(&["inspect", &f]));
    assert!(inspect.contains("recomputed from the dataset"), "{inspect}");
    let eval = reslab(&["eval", &f, "--dataset", "coloured-mnist:green"]);
    let t = text(&eval);
    assert!(t.contains("recomputed from the dataset"), "{t}");
    assert!(
        t.contains(&format!("accuracy {:.2}%", 100.0 * green)),
        "{t}"
    );

    // A layout whose normalisation does not fit the network is refused, naming the field.
    let layout = v["history"]["layout"].as_object_mut().unwrap();
    layout.insert("input_norm".into(), serde_json::json!([[0.1, 0.2]]));
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let e = reslab::runfile::load(&file).unwrap_err().to_string();
    assert!(e.contains("history.layout.input_norm"), "{e}");
    // What the sets produce at the BN layer is kept for the overlay, and checked on load.
    let layout = v["history"]["layout"].as_object_mut().unwrap();
    layout.remove("input_norm");
    let set_bn = &mut v["history"]["latest_set_bn"];
    assert_eq!(set_bn["sets"].as_array().unwrap().len(), 2, "{set_bn}");
    set_bn["sets"] = serde_json::json!([[]]);
    std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let e = reslab::runfile::load(&file).unwrap_err().to_string();
    assert!(e.contains("history.latest_set_bn"), "{e}");

    let bad = reslab(&[
        "train",
        "--dataset",
        "mnist",
        "--eval-set",
        "x=wobble:1",
        "--out",
        &dir.join("bad").to_string_lossy(),
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("neither a shift"), "{}", text(&bad));
    let _ = std::fs::remove_dir_all(&dir);
}
