//! The experiments: each `--quick` library run with a fixed seed passes its criteria with the
//! expected values; the statistics against hand computations; the file round trip; the CLI.

use reslab::experiments::stats::{Grid, autocorrelation, filter_normalize, mean_square};
use reslab::experiments::{
    self, Criterion, ExperimentFile, ExperimentOptions, Figure, FigureKind, LineSeries,
};
use std::process::Command;
use std::time::Instant;

fn quick(name: &str) -> ExperimentFile {
    let started = Instant::now();
    let mut opts = ExperimentOptions::new(true, 0);
    let file = experiments::run(name, &mut opts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{name} --quick: {secs:.1} s");
    for c in &file.criteria {
        eprintln!(
            "  {} {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.measured
        );
    }
    assert!(file.passed(), "{name}: a criterion failed");
    // The file survives JSON with its NaNs.
    let bytes = serde_json::to_vec(&file).unwrap();
    let back = ExperimentFile::parse(&bytes).unwrap();
    assert_eq!(back.criteria.len(), file.criteria.len());
    assert_eq!(back.figures.len(), file.figures.len());
    assert_eq!(back.runs.len(), file.runs.len());
    file
}

fn value(file: &ExperimentFile, criterion: &str, value: &str) -> f64 {
    file.criterion(criterion)
        .and_then(|c| c.value(value))
        .unwrap_or_else(|| panic!("no value {value} in {criterion}"))
}

#[test]
fn init_variance_quick() {
    let f = quick("init-variance");
    let r = value(&f, "unnormalised", "log2 ratio seed 0");
    assert!((18.0..=22.0).contains(&r), "{r}");
    let lo = value(&f, "BN in the branch: branch", "branch MSA min");
    let hi = value(&f, "BN in the branch: branch", "branch MSA max");
    assert!(lo >= 0.8 && hi <= 1.2, "{lo} {hi}");
    assert!(value(&f, "SkipInit", "max |log2 ratio|") < 1e-3);
    assert_eq!(f.figures.len(), 2);
}

#[test]
fn shattered_gradients_quick() {
    let f = quick("shattered-gradients");
    assert!(value(&f, "1 layer", "1 layer min R(1)") > 0.8);
    let (p4, p12, p24) = (
        value(&f, "mean R(1) falls", "plain-4 mean R(1)"),
        value(&f, "mean R(1) falls", "plain-12 mean R(1)"),
        value(&f, "plain-24", "plain-24 mean R(1)"),
    );
    assert!(p4 > p12 && p12 > p24 && p24 < 0.3, "{p4} {p12} {p24}");
    assert!(value(&f, "ResNet-50", "ResNet-50 mean R(1)") > 0.5);
    // Both the BN and the no-BN views are there.
    assert!(f.figures.iter().any(|g| g.variant == "with BN"));
    assert!(f.figures.iter().any(|g| g.variant == "without BN"));
}

#[test]
fn degradation_quick() {
    let f = quick("degradation");
    let (p8, p32) = (
        value(&f, "plain-32 training loss", "plain-8 loss"),
        value(&f, "plain-32 training loss", "plain-32 loss"),
    );
    let r32 = value(&f, "res-32 training loss", "res-32 loss");
    assert!(p32 > 2.0 * p8 && r32 < 0.5 * p32, "{p8} {p32} {r32}");
    assert_eq!(f.runs.len(), 12, "4 nets × 3 seeds");
    assert!(f.runs.iter().all(|r| r.history.last_step == 400));
}

#[test]
fn lesion_quick() {
    let f = quick("lesion");
    let res = value(&f, "ResNet", "ResNet mean drop");
    let plain = value(&f, "plain net", "plain mean drop");
    assert!(res < 5.0 && plain > 3.0 * res, "{res} {plain}");
    assert!(value(&f, "ResNet", "ResNet accuracy %") > 85.0);
}

#[test]
fn loss_landscape_quick() {
    let f = quick("loss-landscape");
    let p = value(&f, "mean loss rise", "plain-32 ring rise");
    let r = value(&f, "mean loss rise", "res-32 ring rise");
    assert!(p > r && r > 0.0, "{p} {r}");
    let heatmaps = f
        .figures
        .iter()
        .filter(|g| matches!(g.kind, FigureKind::Heatmap { nx: 11, ny: 11, .. }))
        .count();
    assert_eq!(heatmaps, 2);
}

#[test]
fn bn_smoothness_quick() {
    let f = quick("bn-smoothness");
    let ratio = value(&f, "BN / no-BN", "ratio");
    assert!(ratio < 0.7, "{ratio}");
    let (noisy, bn) = (
        value(&f, "noisy-BN", "noisy-BN accuracy %"),
        value(&f, "noisy-BN", "BN accuracy %"),
    );
    assert!((noisy - bn).abs() <= 5.0 && bn > 80.0, "{noisy} {bn}");
}

#[test]
fn mean_square_by_hand() {
    assert_eq!(mean_square(&[1.0, -2.0, 3.0, 0.0]), 14.0 / 4.0);
    assert!(mean_square(&[]).is_nan());
}

#[test]
fn median_by_hand() {
    use reslab::experiments::stats::median;
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    // One outlier does not move it: the reason degradation uses it over seeds.
    assert_eq!(median(&[91.8, 92.0, 75.4, 91.5, 91.9]), 91.8);
    assert!(median(&[]).is_nan());
    assert!(median(&[1.0, f64::NAN]).is_nan());
}

#[test]
fn moving_average_by_hand() {
    use reslab::experiments::stats::moving_average;
    // Window 2 over 1, 3, 5: [1], [1, 3], [3, 5].
    assert_eq!(
        moving_average(&[1.0, 3.0, 5.0], 2),
        vec![[1.0, 1.0], [2.0, 2.0], [3.0, 4.0]]
    );
    assert!(moving_average(&[], 10).is_empty());
}

#[test]
fn autocorrelation_by_hand() {
    // g = [1, 2, 3, 4]: mean 2.5, centred [-1.5, -0.5, 0.5, 1.5], Σc² = 5;
    // R(1) = (0.75 - 0.25 + 0.75) / 5 = 0.25, R(2) = (-0.75 - 0.75) / 5 = -0.3,
    // R(3) = -2.25 / 5 = -0.45.
    let r = autocorrelation(&[1.0, 2.0, 3.0, 4.0], 4);
    let expected = [1.0, 0.25, -0.3, -0.45];
    for (a, b) in r.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{r:?}");
    }
    assert!(r[4].is_nan());
    // Alternating signs: R(1) = -Σ_{i<3} 1 / 4 = -0.75.
    let r = autocorrelation(&[1.0, -1.0, 1.0, -1.0], 1);
    assert!((r[1] + 0.75).abs() < 1e-12);
    // A constant sequence is perfectly correlated.
    assert_eq!(autocorrelation(&[3.0; 5], 2), vec![1.0; 3]);
}

#[test]
fn filter_normalization_by_hand() {
    // Linear [in = 2, out = 2]: columns of w have norms 5 ([3, 4]) and 1 ([0, 1]);
    // columns of d have norms 1 ([1, 0]) and 2 ([0, 2]).
    let w = [3.0, 0.0, 4.0, 1.0];
    let mut d = [1.0, 0.0, 0.0, 2.0];
    filter_normalize(&mut d, &w, &[2, 2]);
    assert_eq!(d, [5.0, 0.0, 0.0, 1.0]);
    // Conv [out = 2, in = 1, 1, 2]: filter 0 of w has norm 2, filter 1 norm 0.
    let w = [2.0, 0.0, 0.0, 0.0];
    let mut d = [0.0, 4.0, 1.0, 1.0];
    filter_normalize(&mut d, &w, &[2, 1, 1, 2]);
    assert_eq!(d, [0.0, 2.0, 0.0, 0.0]);
    // Biases and BN parameters get no direction.
    let mut d = [1.0, 2.0];
    filter_normalize(&mut d, &[5.0, 5.0], &[2]);
    assert_eq!(d, [0.0, 0.0]);
}

#[test]
fn ring_mean_by_hand() {
    // A linear surface 1 + 2x + 3y on a 5 × 5 grid over [-1, 1]²: bilinear interpolation is
    // exact, and the mean over a circle around the origin is the centre value.
    let xs = [-1.0, -0.5, 0.0, 0.5, 1.0];
    let values: Vec<f64> = xs
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| 1.0 + 2.0 * x + 3.0 * y))
        .collect();
    let g = Grid {
        x_range: [-1.0, 1.0],
        y_range: [-1.0, 1.0],
        nx: 5,
        ny: 5,
        values,
    };
    assert!((g.interpolate(0.25, -0.75) - (1.0 + 0.5 - 2.25)).abs() < 1e-12);
    assert!((g.ring_mean(0.5, 64) - 1.0).abs() < 1e-12);
    // x² + y² sampled at the grid points: at radius 0.5 on the axes the grid is exact (0.25);
    // the four diagonal points interpolate between 0.25 at (±0.5, 0) and 0.5 at (±0.5, ±0.5).
    let values: Vec<f64> = xs
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| x * x + y * y))
        .collect();
    let g = Grid { values, ..g };
    assert!((g.ring_mean(0.5, 4) - 0.25).abs() < 1e-12);
    let d = 0.5 / 2f64.sqrt();
    // Bilinear at (d, d) in the cell [0, 0.5]²: corners 0, 0.25, 0.25, 0.5 → 0.5·(2d)·... = d·1.
    assert!((g.interpolate(d, d) - 2.0 * d * 0.5).abs() < 1e-12);
}

#[test]
fn an_experiment_file_round_trips_nan_and_infinity_and_bad_files_are_named() {
    let e = experiments::find("init-variance").unwrap();
    let mut f = ExperimentFile::new(e, Default::default());
    f.criteria.push(
        Criterion::new("c", "m", false)
            .with("nan", f64::NAN)
            .with("inf", f64::INFINITY),
    );
    f.figures.push(Figure::lines(
        "t",
        "x",
        "y",
        vec![LineSeries {
            name: "s".into(),
            points: vec![[0.0, f64::NAN], [1.0, f64::NEG_INFINITY], [2.0, 3.5]],
        }],
    ));
    let dir = std::env::temp_dir().join(format!("reslab-exp-file-{}", std::process::id()));
    let path = f.save(&dir).unwrap();
    assert!(path.ends_with("init-variance.reslab-experiment.json"));
    let back = ExperimentFile::load(&path).unwrap();
    let c = &back.criteria[0];
    assert!(c.value("nan").unwrap().is_nan());
    assert_eq!(c.value("inf"), Some(f64::INFINITY));
    let FigureKind::Lines { series } = &back.figures[0].kind else {
        panic!()
    };
    assert!(series[0].points[0][1].is_nan());
    assert_eq!(series[0].points[1][1], f64::NEG_INFINITY);
    assert_eq!(series[0].points[2], [2.0, 3.5]);
    // Broken files: an error naming the file, never a panic.
    for (name, bytes) in [
        ("trunc.json", &b"{\"format\": \"reslab-experiment\", "[..]),
        (
            "other.json",
            &b"{\"format\": \"reslab-run\", \"version\": 1}"[..],
        ),
        (
            "newer.json",
            &b"{\"format\": \"reslab-experiment\", \"version\": 9}"[..],
        ),
        (
            "field.json",
            &b"{\"format\": \"reslab-experiment\", \"version\": 1}"[..],
        ),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = ExperimentFile::load(&p).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
    let missing = ExperimentFile::load(&dir.join("none.json")).unwrap_err();
    assert!(missing.to_string().contains("none.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_registry_has_the_six_documented_experiments_and_the_cnn_degradation() {
    let names = experiments::names();
    assert_eq!(
        names,
        [
            "init-variance",
            "shattered-gradients",
            "degradation",
            "degradation-cnn",
            "lesion",
            "loss-landscape",
            "bn-smoothness"
        ]
    );
    for e in experiments::EXPERIMENTS {
        assert!(!e.title.is_empty() && !e.citation.is_empty());
        assert!(e.what_to_see.iter().all(|l| l.len() > 20), "{}", e.name);
    }
    assert!(matches!(
        experiments::run("nope", &mut ExperimentOptions::new(true, 0)),
        Err(experiments::ExperimentError::Unknown(_))
    ));
}

#[test]
fn a_cancelled_experiment_stops_with_cancelled() {
    let mut opts = ExperimentOptions::new(true, 0);
    opts.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        experiments::run("degradation", &mut opts),
        Err(experiments::ExperimentError::Cancelled)
    ));
}

#[test]
fn the_cli_runs_the_quickest_experiment_and_refuses_an_unknown_one() {
    let dir = std::env::temp_dir().join(format!("reslab-exp-cli-{}", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args([
            "experiment",
            "init-variance",
            "--quick",
            "--seed",
            "0",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .collect();
    assert_eq!(verdicts.len(), 4, "{stdout}");
    assert!(verdicts.iter().all(|l| l.starts_with("PASS  ")), "{stdout}");
    assert!(
        stdout.contains("log2(MSA_20 / MSA_0) in [18, 22]"),
        "{stdout}"
    );
    let file = dir.join("init-variance.reslab-experiment.json");
    assert!(ExperimentFile::load(&file).unwrap().passed());

    let o = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(["experiment", "no-such-thing"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("shattered-gradients") && stderr.contains("bn-smoothness"),
        "{stderr}"
    );

    let o = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(["experiment", "--list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("De & Smith 2020"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bn_noise_scales_and_shifts_the_batch_norm_output_per_channel() {
    use burn::tensor::{Device, Tensor, TensorData};
    use reslab::model::{Act, BnNoise, build};
    use reslab::spec::{InputShape, LayerSpec, NetSpec, validate};
    let spec = NetSpec {
        name: "bn".into(),
        input: InputShape::Flat { features: 2 },
        layers: vec![LayerSpec::batch_norm("bn")],
        skips: vec![],
    };
    let device = Device::flex();
    // Inference mode: running mean 0, variance 1, so BN is (almost) the identity.
    let mut model = build(&validate(&spec).unwrap(), &device, 0).valid();
    let x = || {
        Act::Flat(Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &device,
        ))
    };
    let out = |m: &reslab::model::Model| -> Vec<f32> {
        m.forward(x()).into_data().try_into_vec_as::<f32>().unwrap()
    };
    let plain = out(&model);
    model.bn_noise = Some(BnNoise {
        per_layer: vec![Some((vec![2.0, 3.0], vec![1.0, -1.0]))],
    });
    let noisy = out(&model);
    let (scale, shift) = ([2.0, 3.0], [1.0, -1.0]);
    for (i, (p, n)) in plain.iter().zip(&noisy).enumerate() {
        let c = i % 2;
        assert!(
            (n - (p * scale[c] + shift[c])).abs() < 1e-5,
            "{plain:?} {noisy:?}"
        );
    }
    // An evaluation copy has no noise.
    assert!(model.valid().bn_noise.is_none());
    assert_eq!(out(&model.valid()), plain);
}

#[test]
fn experiment_help_has_examples() {
    let o = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(["experiment", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Example"));
}

#[test]
fn degradation_cnn_quick_trains_both_cnns_and_reports_their_losses() {
    let started = Instant::now();
    let file = experiments::run("degradation-cnn", &mut ExperimentOptions::new(true, 0)).unwrap();
    eprintln!(
        "degradation-cnn --quick: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(file.runs.len(), 2);
    assert_eq!(file.runs[0].spec.name, "cifar-plain-20");
    assert_eq!(file.runs[1].spec.name, "cifar-resnet-20");
    assert!(file.runs.iter().all(|r| r.history.last_step == 20));
    // A view without criteria; the notes carry the numbers.
    assert!(file.criteria.is_empty());
    assert!(file.notes.contains("resnet-20") && file.notes.contains("plain-20"));
    assert_eq!(file.figures.len(), 2);
    for run in &file.runs {
        let loss = run.history.get("loss", "").unwrap();
        assert_eq!(loss.len(), 20);
        assert!(loss.values.iter().all(|l| l.is_finite() && *l > 0.0));
        // One validation pass, at the end.
        assert_eq!(run.history.get("val_accuracy", "").unwrap().len(), 1);
    }
}
