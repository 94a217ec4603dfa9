//! The history: series, reductions of probe records, decimation, memory.

use reslab::metrics::*;

fn layout() -> RunLayout {
    RunLayout {
        layers: vec!["fc".into(), "bn".into()],
        batch_norms: vec!["bn".into()],
        batch_norm_channels: vec![5],
        skips: vec!["bn".into()],
        params: vec!["fc.weight".into()],
        ..RunLayout::default()
    }
}

fn probe(step: u64) -> ProbeRecord {
    let act = |m: f32| ActStats {
        mean: m,
        std: 1.0,
        min: -1.0,
        max: 2.0,
        frac_nonpos: 0.25,
        hist: vec![1; HIST_BINS],
    };
    ProbeRecord {
        token_residual: Vec::new(),
        attention: Vec::new(),
        step,
        layers: vec![act(0.5), act(1.5)],
        batch_norms: vec![BnStats {
            running_mean: vec![3.0, -1.0, 2.0, 0.0, 10.0],
            running_var: vec![1.0, 4.0, 2.0, 3.0, 5.0],
            gamma: vec![1.0, 1.0, 1.0, 1.0, 2.0],
            beta: vec![0.0; 5],
        }],
        skips: vec![SkipStats {
            branch_norm: 3.0,
            shortcut_norm: 4.0,
            alpha: 0.5,
            numel: 10,
        }],
        params: vec![ParamStats {
            grad_norm: 0.1,
            weight_norm: 2.0,
            update_ratio: 0.01,
        }],
        affine_norms: Vec::new(),
    }
}

#[test]
fn probe_records_become_series_with_hand_computed_reductions() {
    let mut h = History::new(layout());
    h.push_probe(probe(10));
    assert_eq!(h.get(series::ACT_MEAN, "bn").unwrap().values, vec![1.5]);
    // running mean [3, -1, 2, 0, 10]: min -1, median 2, max 10
    assert_eq!(h.get("bn_mean_min", "bn").unwrap().values, vec![-1.0]);
    assert_eq!(h.get("bn_mean_median", "bn").unwrap().values, vec![2.0]);
    assert_eq!(h.get("bn_mean_max", "bn").unwrap().values, vec![10.0]);
    assert_eq!(h.get("bn_var_median", "bn").unwrap().values, vec![3.0]);
    assert_eq!(
        h.get(series::BN_GAMMA_MEAN, "bn").unwrap().values,
        vec![1.2]
    );
    assert_eq!(h.get("bn_mean_ch1", "bn").unwrap().values, vec![-1.0]);
    assert!(
        h.get("bn_mean_ch4", "bn").is_none(),
        "only 4 tracked channels"
    );
    // ‖α·f‖ / ‖x‖ = 0.5 · 3 / 4
    assert_eq!(h.get(series::SKIP_RATIO, "bn").unwrap().values, vec![0.375]);
    assert_eq!(
        h.get(series::GRAD_NORM, "fc.weight").unwrap().values,
        vec![0.1]
    );
    assert_eq!(
        h.get(series::GRAD_NORM, "fc.weight").unwrap().steps,
        vec![10]
    );
    assert_eq!(h.latest_probe.as_ref().unwrap().step, 10);
}

#[test]
fn steps_and_evals_append_in_order() {
    let mut h = History::new(RunLayout {
        eval_sets: vec!["green".into(), "dim".into()],
        ..layout()
    });
    for s in 1..=3 {
        h.push_step(&StepRecord {
            step: s,
            loss: s as f32,
            accuracy: 0.5,
            lr: 0.1,
            samples_per_sec: 1000.0,
            grad_norm: 1.0,
        });
    }
    h.push_eval(&EvalRecord {
        step: 3,
        loss: 0.7,
        accuracy: 0.8,
        sets: vec![[2.5, 0.3], [0.9, 0.6]],
        set_bn: Vec::new(),
    });
    let loss = h.get(series::LOSS, "").unwrap();
    assert_eq!(loss.steps, vec![1, 2, 3]);
    assert_eq!(loss.values, vec![1.0, 2.0, 3.0]);
    assert_eq!(h.get(series::VAL_ACCURACY, "").unwrap().values, vec![0.8]);
    // Each evaluation set's series carry its name.
    assert_eq!(h.get(series::VAL_LOSS, "green").unwrap().values, vec![2.5]);
    assert_eq!(
        h.get(series::VAL_ACCURACY, "green").unwrap().values,
        vec![0.3]
    );
    assert_eq!(h.get(series::VAL_ACCURACY, "dim").unwrap().steps, vec![3]);
    assert_eq!(h.last_step, 3);
}

#[test]
fn decimation_keeps_each_buckets_min_and_max() {
    let s = Series {
        steps: (0..1000).collect(),
        values: (0..1000)
            .map(|i| if i == 537 { 100.0 } else { (i % 10) as f32 })
            .collect(),
    };
    let d = s.decimated(100);
    assert!(d.len() <= 100);
    assert!(d.iter().any(|p| p == &[537.0, 100.0]), "the spike survives");
    assert!(
        d.windows(2).all(|w| w[0][0] <= w[1][0]),
        "steps stay ordered"
    );
    let short = Series {
        steps: vec![1, 2],
        values: vec![3.0, 4.0],
    };
    assert_eq!(short.decimated(100), vec![[1.0, 3.0], [2.0, 4.0]]);
}

#[test]
fn a_history_round_trips_through_json_and_reindexes() {
    let mut h = History::new(layout());
    h.push_probe(probe(1));
    let json = serde_json::to_string(&h).unwrap();
    let mut back: History = serde_json::from_str(&json).unwrap();
    assert!(
        back.get(series::ACT_MEAN, "fc").is_none(),
        "index not serialised"
    );
    back.reindex();
    assert_eq!(back.get(series::ACT_MEAN, "fc").unwrap().values, vec![0.5]);
    assert_eq!(back.points(), h.points());
}

#[test]
fn memory_grows_by_about_eight_bytes_a_point() {
    let mut h = History::new(layout());
    for s in 0..10_000 {
        h.push(series::LOSS, "", s, 1.0);
    }
    let bytes = h.memory_bytes();
    assert!((80_000..200_000).contains(&bytes), "{bytes}");
}

#[test]
fn nan_and_infinite_values_survive_json() {
    let mut h = History::new(layout());
    h.push(series::ACCURACY, "", 1, f32::NAN);
    h.push(series::ACCURACY, "", 2, f32::INFINITY);
    h.push(series::ACCURACY, "", 3, f32::NEG_INFINITY);
    h.push(series::ACCURACY, "", 4, 0.25);
    let mut p = probe(4);
    p.params[0].update_ratio = f32::NAN;
    h.push_probe(p);
    let json = serde_json::to_string(&h).unwrap();
    let mut back: History = serde_json::from_str(&json).unwrap();
    back.reindex();
    let v = &back.get(series::ACCURACY, "").unwrap().values;
    assert!(v[0].is_nan());
    assert_eq!(&v[1..], &[f32::INFINITY, f32::NEG_INFINITY, 0.25]);
    assert!(back.latest_probe.unwrap().params[0].update_ratio.is_nan());
}
