//! The numbers the lab's panels show, against hand computations.

use reslab::metrics::{History, RunLayout};
use reslab::numbers::sig as format_sig;
use reslab::ui::panels::gradients::{GradHealth, classify};
use reslab::ui::plot::{LogBuckets, ema, log10_points};

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
fn log_points_drop_what_a_log_axis_cannot_show() {
    let p = log10_points(&[
        [0.0, 100.0],
        [1.0, 0.0],
        [2.0, -1.0],
        [3.0, f64::INFINITY],
        [4.0, 0.001],
    ]);
    assert_eq!(p, vec![[0.0, 2.0], [4.0, -3.0]]);
    assert_eq!(format_sig(0.012345), "0.0123");
    assert_eq!(format_sig(123.456), "123");
    assert_eq!(format_sig(1.5e-7), "1.50e-7");
}

#[test]
fn heatmap_buckets_hold_geometric_means_and_merge_as_the_run_grows() {
    let layout = RunLayout {
        layers: vec!["a".into(), "b".into()],
        ..RunLayout::default()
    };
    let mut h = History::new(layout);
    let names = vec!["a".to_string(), "b".to_string()];
    // a: 1, 4, 16, 64 (powers of 4); b: 2 everywhere, one non-positive value that is skipped.
    for (i, (a, b)) in [(1.0, 2.0), (4.0, 2.0), (16.0, 0.0), (64.0, 2.0)]
        .iter()
        .enumerate()
    {
        h.push("act_std", "a", i as u64 * 10, *a);
        h.push("act_std", "b", i as u64 * 10, *b);
    }
    let mut buckets = LogBuckets::default();
    buckets.update(1, &h, "act_std", &names, 4);
    assert_eq!(buckets.width(), 1);
    let d = buckets.data();
    assert_eq!((d.rows, d.cols), (2, 4));
    assert!((d.values[1] - 4.0).abs() < 1e-4);
    assert!(
        d.values[4 + 2].is_nan(),
        "a bucket with only a zero has no value"
    );
    // Two more points exceed 4 columns: buckets of 2 points, geometric means sqrt(1·4) = 2,
    // sqrt(16·64) = 32, sqrt(256·1024) = 512.
    for (i, a) in [(4u64, 256.0), (5, 1024.0)] {
        h.push("act_std", "a", i * 10, a);
        h.push("act_std", "b", i * 10, 2.0);
    }
    buckets.update(1, &h, "act_std", &names, 4);
    assert_eq!(buckets.width(), 2);
    let d = buckets.data();
    assert_eq!(d.cols, 3);
    for (c, want) in [2.0f32, 32.0, 512.0].iter().enumerate() {
        assert!(
            (d.values[c] - want).abs() / want < 1e-4,
            "col {c}: {}",
            d.values[c]
        );
    }
    // b's middle bucket has one positive value (2) and the zero: its mean is 2.
    assert!((d.values[3 + 1] - 2.0).abs() < 1e-4);
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

#[test]
fn incremental_min_max_lines_keep_spikes_and_match_a_fresh_pass() {
    use reslab::metrics::Series;
    use reslab::ui::plot::MinMaxLine;
    let mut s = Series::default();
    let mut grown = MinMaxLine::default();
    for i in 0..1000u32 {
        s.steps.push(i * 10);
        // A slow ramp with one spike at i = 617 and one dip at i = 300.
        s.values.push(match i {
            617 => 50.0,
            300 => -50.0,
            _ => i as f32 / 1000.0,
        });
        if i % 37 == 0 {
            grown.update(&s, 40);
        }
    }
    grown.update(&s, 40);
    let mut fresh = MinMaxLine::default();
    fresh.update(&s, 40);
    assert_eq!(grown.points(), fresh.points());
    let pts = fresh.points();
    assert!(pts.len() <= 40, "{} points", pts.len());
    assert!(pts.contains(&[6170.0, 50.0]) && pts.contains(&[3000.0, -50.0]));
    assert!(pts.windows(2).all(|w| w[0][0] < w[1][0]), "in step order");
    // Few points: every point, once.
    let short = Series {
        steps: vec![1, 2, 3],
        values: vec![3.0, 1.0, 2.0],
    };
    let mut line = MinMaxLine::default();
    line.update(&short, 40);
    assert_eq!(line.points(), vec![[1.0, 3.0], [2.0, 1.0], [3.0, 2.0]]);
}
