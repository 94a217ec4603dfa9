//! The numbers the lab's panels show, against hand computations.

use reslab::figure::FigureKind;
use reslab::figure::hover::plotted;
use reslab::metrics::{History, RunLayout};
use reslab::numbers::sig as format_sig;
use reslab::views::{GradHealth, classify, ema, layer_heatmap};

#[test]
fn ema_is_debiased_like_tensorboard() {
    // w = 0.5: s1 = 0.5·2 = 1 → 1 / (1 − 0.5) = 2; s2 = 0.5·1 + 0.5·4 = 2.5 → 2.5 / 0.75.
    let out = ema(&[[1.0, 2.0], [2.0, 4.0]], 0.5);
    assert_eq!(out[0], [1.0, 2.0]);
    assert!((out[1][1] - 2.5 / 0.75).abs() < 1e-12);
    // No smoothing returns the values; NaN passes through without disturbing the average.
    let raw = [[1.0, 3.0], [2.0, f64::NAN], [3.0, 5.0]];
    let out = ema(&raw, 0.0);
    assert_eq!(out[0][1], 3.0);
    assert!(out[1][1].is_nan());
    assert_eq!(out[2][1], 5.0);
}

#[test]
fn a_log_axis_shows_only_positive_finite_values() {
    let p: Vec<Option<f64>> = [100.0, 0.0, -1.0, f64::INFINITY, 0.001]
        .iter()
        .map(|&v| plotted(v, true))
        .collect();
    assert_eq!(p, vec![Some(2.0), None, None, None, Some(-3.0)]);
    assert_eq!(plotted(-1.0, false), Some(-1.0));
    assert_eq!(format_sig(0.012345), "0.0123");
    assert_eq!(format_sig(123.456), "123");
    assert_eq!(format_sig(1.5e-7), "1.50e-7");
}

#[test]
fn heatmap_buckets_hold_geometric_means() {
    let layout = RunLayout {
        layers: vec!["a".into(), "b".into()],
        ..RunLayout::default()
    };
    let mut h = History::new(layout);
    let names = vec!["a".to_string(), "b".to_string()];
    // a: 1, 4, …, 1024 (powers of 4) at steps 0, 10, …, 50; b: 2, with one zero (skipped).
    for (i, (a, b)) in [
        (1.0, 2.0),
        (4.0, 2.0),
        (16.0, 0.0),
        (64.0, 2.0),
        (256.0, 2.0),
        (1024.0, 2.0),
    ]
    .iter()
    .enumerate()
    {
        h.push("act_std", "a", i as u64 * 10, *a);
        h.push("act_std", "b", i as u64 * 10, *b);
    }
    let fig = layer_heatmap("t", &h, "act_std", &names, 3).expect("a heatmap");
    let FigureKind::Heatmap { nx, .. } = fig.kind else {
        panic!("not a heatmap");
    };
    assert_eq!(nx, 3, "six probes in three buckets of two");
    // Geometric means sqrt(1·4) = 2, sqrt(16·64) = 32, sqrt(256·1024) = 512.
    for (c, want) in [2.0, 32.0, 512.0].iter().enumerate() {
        let v = fig.row_value(0, c).unwrap();
        assert!((v - want).abs() / want < 1e-9, "col {c}: {v}");
    }
    // b's middle bucket has one positive value (2) and the zero: its mean is 2.
    assert!((fig.row_value(1, 1).unwrap() - 2.0).abs() < 1e-9);
    let all = layer_heatmap("t", &h, "act_std", &names, 400).unwrap();
    let a16 = all.row_value(0, 2).unwrap();
    assert!((a16 - 16.0).abs() < 1e-9, "one probe per column: {a16}");
    assert!(
        all.row_value(1, 2).unwrap().is_nan(),
        "a bucket with only a zero has no value"
    );
}

#[test]
fn gradients_are_called_vanishing_and_exploding_by_the_documented_thresholds() {
    let g = [1e-7, 0.01, 0.02, 0.03, 5.0, 2e3, f32::NAN];
    // Median of the finite values (0.01, 0.02, 0.03, 5, 2000, 1e-7 sorted: 1e-7, 0.01, 0.02,
    // 0.03, 5, 2000) is the 4th = 0.03; 100× is 3, so 5 is exploding too.
    assert_eq!(
        classify(&g),
        vec![
            GradHealth::Vanishing,
            GradHealth::Normal,
            GradHealth::Normal,
            GradHealth::Normal,
            GradHealth::Exploding,
            GradHealth::Exploding,
            GradHealth::Exploding,
        ]
    );
}
