//! The one `evaluate` and its test-time normalisation modes, on a small MLP whose first layer is
//! Linear → BN, trained on spirals, and
//! on a copy of its validation split shifted by a constant (an affine change every BN with
//! batch statistics undoes exactly).

use reslab::data::Split;
use reslab::spec::*;
use reslab::train::{EvalData, EvalOptions, Evaluation, NormMode, Session, evaluate};

mod common;

/// Linear(2 → 16) → norm → ReLU → Linear(16 → 16) → norm → ReLU → head, trained 300 steps on
/// spirals; the norm is BatchNorm unless another op is given.
fn trained(norm: Option<LayerOp>) -> Session {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let norm = |name: &str| match &norm {
        Some(op) => LayerSpec::new(name, op.clone()),
        None => LayerSpec::batch_norm(name),
    };
    let spec = NetSpec {
        name: "eval".into(),
        input: InputShape::Flat { features: 2 },
        layers: vec![
            LayerSpec::linear("fc1", 16),
            norm("n1"),
            LayerSpec::relu("a1"),
            LayerSpec::linear("fc2", 16),
            norm("n2"),
            LayerSpec::relu("a2"),
            LayerSpec::new("head", LayerOp::Head { outputs: 2 }),
        ],
        skips: Vec::new(),
    };
    let config = TrainConfig {
        duration: Duration::Steps(300),
        lr: 0.05,
        schedule: Schedule::Cosine {
            final_fraction: 0.0,
        },
        ..TrainConfig::default()
    };
    let mut s = common::session(&spec, &config, &dataset);
    while !s.is_done() {
        s.train_step();
    }
    s
}

fn shifted(split: &Split, by: f32) -> Split {
    Split {
        x: split.x.iter().map(|v| v + by).collect(),
        ..split.clone()
    }
}

fn eval(s: &Session, split: &Split, mode: NormMode, batch: usize) -> Evaluation {
    let data = EvalData {
        split,
        task: s.data.task,
        shape: s.data.sample_shape,
    };
    let opts = EvalOptions {
        mode,
        batch,
        ..EvalOptions::default()
    };
    evaluate(&s.model, data, &opts, &s.device)
}

#[test]
fn running_mode_is_what_the_worker_records() {
    let s = trained(None);
    let e = eval(&s, &s.data.valid, NormMode::Running, 500);
    let r = s.evaluate();
    assert_eq!((e.loss, e.accuracy), (r.loss, r.accuracy));
    assert!(e.accuracy > 0.8, "{e:?}");
    // The batch size does not change anything with running statistics.
    let small = eval(&s, &s.data.valid, NormMode::Running, 7);
    assert!((small.loss - e.loss).abs() < 1e-4 && small.accuracy == e.accuracy);
}

#[test]
fn batch_statistics_undo_a_constant_shift_that_running_statistics_cannot() {
    let s = trained(None);
    let v = &s.data.valid;
    let moved = shifted(v, 3.0);
    let running = eval(&s, &moved, NormMode::Running, 500);
    let batch = eval(&s, &moved, NormMode::Batch, 500);
    let batch_clean = eval(&s, v, NormMode::Batch, 500);
    let clean = eval(&s, v, NormMode::Running, 500);
    eprintln!("clean {clean:?}; shifted: running {running:?}, batch {batch:?}");
    assert!(
        running.accuracy < clean.accuracy - 0.2,
        "{running:?} vs {clean:?}"
    );
    // The first layer is Linear → BN: a constant shift of the input is a constant shift of the
    // BN input, which the batch's own mean removes.
    assert!((batch.accuracy - batch_clean.accuracy).abs() < 1e-6);
    assert!((batch.loss - batch_clean.loss).abs() < 1e-3);
    // The running statistics were left alone.
    let again = eval(&s, v, NormMode::Running, 500);
    assert_eq!((again.loss, again.accuracy), (clean.loss, clean.accuracy));
}

#[test]
fn adabn_and_the_prior_sit_between_the_running_and_the_batch_statistics() {
    let s = trained(None);
    let moved = shifted(&s.data.valid, 3.0);
    let running = eval(&s, &moved, NormMode::Running, 100);
    let batch = eval(&s, &moved, NormMode::Batch, 100);
    let adabn = eval(&s, &moved, NormMode::AdaBn { batches: 4 }, 100);
    eprintln!("running {running:?} batch {batch:?} adabn {adabn:?}");
    assert!(
        adabn.accuracy > running.accuracy + 0.2,
        "{adabn:?} vs {running:?}"
    );
    assert!(
        (adabn.accuracy - batch.accuracy).abs() < 0.05,
        "{adabn:?} vs {batch:?}"
    );
    // The prior: strength 0 is the batch's statistics, a huge strength the running ones.
    let none = eval(&s, &moved, NormMode::Prior { strength: 0.0 }, 100);
    assert!(
        (none.accuracy - batch.accuracy).abs() < 1e-6,
        "{none:?} vs {batch:?}"
    );
    let all = eval(&s, &moved, NormMode::Prior { strength: 1e12 }, 100);
    assert!(
        (all.accuracy - running.accuracy).abs() < 1e-6,
        "{all:?} vs {running:?}"
    );
    // Strength 100 with batches of 100 weighs both halves equally: its loss lies between
    // (its accuracy need not: half a correction can move points across the boundary).
    let mid = eval(&s, &moved, NormMode::Prior { strength: 100.0 }, 100);
    assert!(
        batch.loss < mid.loss && mid.loss < running.loss,
        "{batch:?} < {mid:?} < {running:?}"
    );
    // Adapting a copy leaves the model's own running statistics alone.
    let after = eval(&s, &moved, NormMode::Running, 100);
    assert_eq!(
        (after.loss, after.accuracy),
        (running.loss, running.accuracy)
    );
}

#[test]
fn tiny_test_batches_cost_batch_statistics_accuracy_but_not_layer_norm() {
    let s = trained(None);
    let v = &s.data.valid;
    let big = eval(&s, v, NormMode::Batch, 500);
    let tiny = eval(&s, v, NormMode::Batch, 2);
    eprintln!("BN batch statistics: batches of 500 {big:?}, of 2 {tiny:?}");
    assert!(tiny.accuracy < big.accuracy - 0.05, "{tiny:?} vs {big:?}");
    let ln = trained(Some(LayerOp::LayerNorm { epsilon: 1e-5 }));
    let modes = [
        NormMode::Running,
        NormMode::Batch,
        NormMode::AdaBn { batches: 2 },
        NormMode::Prior { strength: 10.0 },
    ];
    let first = eval(&ln, v, NormMode::Running, 500);
    for mode in modes {
        for batch in [2, 500] {
            let e = eval(&ln, v, mode, batch);
            assert!(
                (e.accuracy - first.accuracy).abs() < 1e-6,
                "{mode:?} {batch}: {e:?}"
            );
        }
    }
}
