//! The experiments: each `--quick` library run with a fixed seed passes its criteria with the
//! expected values; the statistics against hand computations; the file round trip; the CLI.

use reslab::experiments::stats::{Grid, autocorrelation, filter_normalize, mean_square};
use reslab::experiments::{
    self, Criterion, ExperimentFile, ExperimentOptions, Figure, FigureKind, LineSeries,
    Reproduction,
};
use std::process::Command;
use std::time::Instant;

mod common;

fn quick(name: &str) -> ExperimentFile {
    let started = Instant::now();
    let mut opts = ExperimentOptions::new(true, 0);
    let file = experiments::run(name, &mut opts).unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{name} --quick: {secs:.1} s");
    print_verdicts("", &file.criteria);
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
fn shattered_gradients_quick() {
    let f = quick("shattered-gradients");
    assert!(value(&f, "1 layer", "1 layer mean R(1)") > 0.8);
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

/// The lab's mean R(1) per depth agrees with the PyTorch reference's within 0.1 (the issue's
/// tolerance; the reference numbers and the command that makes them are in `PYTORCH_R1`).
#[test]
fn shattered_gradients_agree_with_the_pytorch_reference_within_0_1() {
    use reslab::experiments::Reproduction;
    use reslab::experiments::shattered::{PYTORCH_R1, Shattered};
    let m = Shattered::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    let v = m.with_bn();
    let mut all = vec![&v.shallow];
    all.extend(&v.deep);
    all.push(&v.resnet);
    for (net, reference) in PYTORCH_R1 {
        let ours = all.iter().find(|n| n.net == net).unwrap().mean_r1();
        eprintln!("{}: lab {ours:.3}, PyTorch {reference:.3}", net.label());
        assert!(
            (ours - reference).abs() <= 0.1,
            "{}: {ours} vs {reference}",
            net.label()
        );
    }
}

/// Prints and returns the criteria of a measurement.
fn judged<R: Reproduction>(name: &str, m: &R::Measured) -> Vec<Criterion> {
    let c = R::criteria(m);
    print_verdicts(&format!("{name}: "), &c);
    c
}

/// Prints each criterion's verdict, name and measured values, after `prefix`.
fn print_verdicts(prefix: &str, criteria: &[Criterion]) {
    for c in criteria {
        let verdict = if c.passed { "PASS" } else { "FAIL" };
        eprintln!("  {prefix}{verdict} {}: {}", c.name, c.measured);
    }
}

/// Runs the control `control` of `name` at the quick scale (a measurement of its own: other
/// networks, a fresh seed or zero noise) and asserts that the criteria reject it: the
/// control's `rejected_by` criterion fails.
fn control_rejected(name: &str, control: &str) -> ExperimentFile {
    let started = Instant::now();
    let mut opts = ExperimentOptions::new(true, 0);
    let file = experiments::run_as(name, Some(control), &mut opts).unwrap();
    eprintln!(
        "{name} --control {control} --quick: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    print_verdicts("", &file.criteria);
    assert_eq!(file.control.as_deref(), Some(control));
    assert!(file.notes.starts_with(&format!("CONTROL {control}: ")));
    assert_eq!(
        file.control_rejected(),
        Some(true),
        "{name}/{control}: the criteria did not reject the control"
    );
    assert!(!file.runs.is_empty() || name == "shattered-gradients");
    file
}

fn verdict(c: &[Criterion], prefix: &str) -> bool {
    c.iter()
        .find(|x| x.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no criterion {prefix}"))
        .passed
}

/// The quick measurement passes.
#[test]
fn degradation_quick_passes() {
    use reslab::experiments::degradation::Degradation;
    let started = Instant::now();
    let m = Degradation::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    eprintln!(
        "degradation --quick: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let c = judged::<Degradation>("degradation", &m);
    assert!(c.iter().all(|x| x.passed));
    assert_eq!(m.runs.len(), 24, "4 nets × 3 seeds × 2 regimes");
    let steps: Vec<u64> = m.runs.iter().map(|r| r.history.last_step).collect();
    assert_eq!(steps.iter().filter(|&&s| s == 400).count(), 12, "{steps:?}");
    assert_eq!(
        steps.iter().filter(|&&s| s == 2000).count(),
        12,
        "{steps:?}"
    );
    let figures = Degradation::figures(&m);
    // Gradient probes are on: the figure of gradient norms per layer is there.
    assert!(
        figures
            .iter()
            .any(|g| g.title.starts_with("Gradient norm per Linear weight"))
    );
    assert!(
        figures
            .iter()
            .any(|g| g.title.starts_with("Late loss spikes"))
    );
}

/// The control trains mlp-res-8 and mlp-res-32 in the plain roles (each once per seed and
/// regime): no degradation, so "far above" must fail.
#[test]
fn degradation_control_residual_nets_in_the_plain_roles_is_rejected() {
    let f = control_rejected("degradation", "residual-plain-roles");
    assert_eq!(f.runs.len(), 12, "2 nets × 3 seeds × 2 regimes");
    assert!(
        f.runs.iter().all(|r| r.spec.name.contains("res")),
        "only residual nets ran"
    );
}

/// The quick measurement passes.
#[test]
fn lesion_quick_passes() {
    use reslab::experiments::lesion::LesionStudy;
    let m = LesionStudy::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    let c = judged::<LesionStudy>("lesion", &m);
    assert!(c.iter().all(|x| x.passed));
    assert!(
        m.residual.base.iter().all(|&a| a > 85.0),
        "{:?}",
        m.residual.base
    );
    assert_eq!(m.runs.len(), 6, "2 nets × 3 seeds");
}

/// The control lesions a second mlp-res-16, trained from seeds 1000–1002, in the plain role.
#[test]
fn lesion_control_a_second_residual_net_is_rejected() {
    let f = control_rejected("lesion", "residual-fresh-seed");
    assert!(!verdict(&f.criteria, "mlp-res-16: mean drop > 20 points"));
    let names: Vec<&str> = f.runs.iter().map(|r| r.name.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("seed1000")), "{names:?}");
}

/// The quick measurement passes (log colour scales, both comparisons).
#[test]
fn loss_landscape_quick_passes() {
    use reslab::experiments::landscape::{Landscape, paired_ratios};
    let m = Landscape::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    let c = judged::<Landscape>("loss-landscape", &m);
    eprintln!(
        "  paired ratios at matched loss {:?}, after the budget {:?}; reached {:?}",
        paired_ratios(&m.plain, &m.matched),
        paired_ratios(&m.plain, &m.budget),
        m.matched.reached
    );
    assert!(verdict(&c, "after the same budget"));
    let figures = Landscape::figures(&m);
    let heatmaps: Vec<&Figure> = figures
        .iter()
        .filter(|g| matches!(g.kind, FigureKind::Heatmap { nx: 11, ny: 11, .. }))
        .collect();
    assert_eq!(heatmaps.len(), 3);
    // Log colour for the heatmaps and a log axis for the cut.
    assert!(heatmaps.iter().all(|g| g.log_y));
    assert!(
        figures
            .iter()
            .any(|g| g.title.starts_with("Cut along α") && g.log_y)
    );
    assert_eq!(m.plain.surfaces.len(), 6, "3 seeds × 2 direction pairs");
}

/// The control trains two copies of mlp-plain-32 (seeds s and s + 1000): their difference is
/// chance, so the budget comparison must fail.
#[test]
fn loss_landscape_control_two_copies_of_one_net_is_rejected() {
    let f = control_rejected("loss-landscape", "two-plain-copies");
    assert!(f.runs.iter().all(|r| r.spec.name.contains("plain")));
}

/// The quick measurement passes.
#[test]
fn bn_smoothness_quick_passes() {
    use reslab::experiments::bn_smoothness::BnSmoothness;
    let m = BnSmoothness::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    let c = judged::<BnSmoothness>("bn-smoothness", &m);
    assert!(c.iter().all(|x| x.passed));
    let notes = BnSmoothness::notes(&m);
    assert!(notes.contains("Internal covariate shift:"));
    assert!(notes.contains("ℓ2 ‖G − G'‖"), "{notes}");
    // Moments before every step of the smoothness-rate runs: 600 steps, 9 ReLU layers.
    let r = &m.results[1][1][0];
    assert_eq!(r.moments.len(), 600);
    assert!(r.moments.iter().all(|l| l.len() == 9), "{:?}", r.moments[0]);
}

/// The control trains noisy BN with noise of zero strength: its inputs do not drift, so the
/// drift criterion must fail.
#[test]
fn bn_smoothness_control_zero_noise_is_rejected() {
    control_rejected("bn-smoothness", "zero-noise");
}

/// Both shattered-gradients controls measure other nets: residual nets of the plain depths,
/// and every net without BN.
#[test]
fn shattered_gradients_controls_are_rejected() {
    let f = control_rejected("shattered-gradients", "residual-deep");
    assert!(!verdict(&f.criteria, "ResNet-24: mean R(1) < 0.3"));
    let f = control_rejected("shattered-gradients", "no-bn");
    assert!(!verdict(&f.criteria, "plain-24: mean R(1) < 0.3"));
    assert!(f.criteria[0].measured.contains("without BN"));
}

/// The quick measurement passes but for the α = 1 small-rate criterion, which fails as a
/// finding (EXPERIMENTS_NOTES.md): no rate trains the 64-block α = 1 net within the budget.
#[test]
fn distribution_shift_quick_passes_with_sample_images_and_the_bn_overlay() {
    let file = quick("distribution-shift");
    let colour = value(
        &file,
        "a colour the net never saw",
        "red-trained colour drop",
    );
    assert!(colour >= 4.0, "{colour}");
    // One sample image per test set, each 28 × 28 RGB.
    let images = file
        .figures
        .iter()
        .find_map(|f| match &f.kind {
            FigureKind::Images { images } => Some(images),
            _ => None,
        })
        .expect("a figure of sample images");
    assert_eq!(images.len(), 15);
    assert!(images.iter().all(|t| t.rgb.len() == 28 * 28 * 3));
    // The overlay: the first BN layer's running mean beside what red, green and the per-image
    // contrast produce there, 16 channels each.
    let overlay = file
        .figures
        .iter()
        .find(|f| f.title.starts_with("conv1.bn: running mean"))
        .expect("the BN overlay");
    let FigureKind::Bars { categories, series } = &overlay.kind else {
        panic!("bars");
    };
    assert_eq!(categories.len(), 16);
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["running", "red", "green", "image-contrast:0.5"]);
    assert_eq!(file.runs.len(), 5);
}

/// Two trainings of five nets each: run with `--ignored`.
#[test]
#[ignore = "five CNN trainings a control (about two minutes each on two cores)"]
fn distribution_shift_controls_are_rejected() {
    control_rejected("distribution-shift", "all-palettes");
    let file = control_rejected("distribution-shift", "groupnorm-as-bn");
    assert!(!verdict(&file.criteria, "test-time statistics recover"));
}

#[test]
fn init_variance_quick_passes_but_for_the_small_rate_finding() {
    use reslab::experiments::init_variance::{InitVariance, SMALL_LR};
    let m = InitVariance::measure(&mut ExperimentOptions::new(true, 0)).unwrap();
    let c = judged::<InitVariance>("init-variance", &m);
    for x in &c {
        let small = x.name.contains(&format!("at lr {SMALL_LR}"));
        assert_eq!(x.passed, !small, "{}: {}", x.name, x.measured);
    }
    let r = m.at_init[0][0].skip[20] / m.at_init[0][0].skip[0];
    assert!((18.0..=22.0).contains(&r.log2()), "{r}");
    assert_eq!(InitVariance::figures(&m).len(), 3);
    assert_eq!(
        m.runs.len(),
        4,
        "α = 1, SkipInit, BN, α = 1 at the small rate × 1 seed"
    );
    let skip = &m.trained[1].1[0];
    assert!(
        skip.alpha > 0.0 && skip.deleted_loss > skip.val_loss,
        "{skip:?}"
    );
}

/// The control freezes SkipInit's α at 0: the net is its stem and head, and must not pass
/// "uses its blocks".
#[test]
fn init_variance_control_alpha_frozen_is_rejected() {
    let f = control_rejected("init-variance", "alpha-frozen");
    let c = f
        .criterion("SkipInit with α frozen at 0 (control), no normalisation: uses")
        .unwrap();
    assert!(c.measured.contains("mean |α| 0"), "{}", c.measured);
}

/// Every experiment's protocol fingerprint is registered in docs/PROTOCOLS.md: editing a
/// threshold, a seed count, the statistic or a control without registering it fails here.
#[test]
fn every_protocol_fingerprint_is_registered() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOLS.md")).unwrap();
    let registry = experiments::parse_registry(&text);
    let mut missing = Vec::new();
    for e in experiments::EXPERIMENTS {
        let fp = e.fingerprint();
        if !registry
            .iter()
            .any(|r| r.experiment == e.name && r.fingerprint == fp)
        {
            missing.push(format!(
                "| `{}` | `{fp}` | YYYY-MM-DD | what changed and why | held-out runs |\n  protocol text:\n{}",
                e.name,
                e.protocol.canonical(e.name, e.controls)
            ));
        }
        assert!(!e.controls.is_empty(), "{} has no control", e.name);
    }
    assert!(
        missing.is_empty(),
        "unregistered protocols; add a row to docs/PROTOCOLS.md for each:\n{}",
        missing.join("\n")
    );
}

/// The fingerprint moves with every threshold, seed count, statistic and control.
#[test]
fn a_fingerprint_changes_with_every_part_of_the_protocol() {
    let e = experiments::find("lesion").unwrap();
    let base = e.fingerprint();
    let mut thresholds = e.protocol.thresholds.to_vec();
    thresholds[0].1 += 0.5;
    let moved = experiments::Protocol {
        thresholds: Box::leak(thresholds.into_boxed_slice()),
        ..e.protocol
    };
    assert_ne!(moved.fingerprint(e.name, e.controls), base);
    let seeds = experiments::Protocol {
        full_seeds: 6,
        ..e.protocol
    };
    assert_ne!(seeds.fingerprint(e.name, e.controls), base);
    assert_ne!(e.protocol.fingerprint(e.name, &[]), base);
    assert_ne!(e.protocol.fingerprint("other", e.controls), base);
    assert_eq!(base.len(), 12);
    // The registry's rows parse; a row of another table does not count.
    let rows = experiments::parse_registry(
        "| experiment | fingerprint |\n|---|---|\n| `lesion` | `abc` | 2026-12-06 | first | seeds 1000 |\n| lesion | abc | x | y | z |\n",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].date, "2026-12-06");
    assert_eq!(rows[0].held_out, "seeds 1000");
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
    // One outlier does not move it: the reason loss-landscape reads it over surfaces.
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
    // A constant sequence has no variance: its autocorrelation is undefined (NaN), not 1, so a
    // dead network's zero gradient cannot pass "R(1) > 0.8".
    assert!(autocorrelation(&[3.0; 5], 2).iter().all(|r| r.is_nan()));
    assert!(autocorrelation(&[0.0; 256], 1).iter().all(|r| r.is_nan()));
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
            style: Default::default(),
            color: None,
            name: "s".into(),
            points: vec![[0.0, f64::NAN], [1.0, f64::NEG_INFINITY], [2.0, 3.5]],
        }],
    ));
    let dir = common::temp_dir("experiments", "file");
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
fn the_registry_has_the_six_documented_experiments_the_cnn_degradation_red_roses_and_transformers()
{
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
            "bn-smoothness",
            "distribution-shift",
            "transformer-residuals"
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

/// `reslab experiment ARGS --out DIR`.
fn experiment_cli(args: &[&str], out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reslab"))
        .arg("experiment")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn the_cli_runs_the_quickest_experiment_and_refuses_an_unknown_one() {
    let dir = common::temp_dir("experiments", "cli");
    let o = experiment_cli(
        &[
            "shattered-gradients",
            "--quick",
            "--seed",
            "0",
            "--markdown",
        ],
        &dir,
    );
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
    assert!(stdout.contains("plain-24: mean R(1) < 0.3"), "{stdout}");
    // Each verdict is followed by the paper's claim, and --markdown adds the table.
    assert_eq!(stdout.matches("      claim: ").count(), 4, "{stdout}");
    assert!(
        stdout.contains("| experiment | claim | test | measured | result |"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("| `shattered-gradients` |").count(),
        4,
        "{stdout}"
    );
    let file = dir.join("shattered-gradients.reslab-experiment.json");
    assert!(ExperimentFile::load(&file).unwrap().passed());

    // The controls from the CLI: each is run, saved beside the experiment, and rejected.
    let o = experiment_cli(
        &["shattered-gradients", "--control", "--quick", "--markdown"],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout
            .matches("rejected by the criteria, as it must be")
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("| `shattered-gradients` | `no-bn` |"),
        "{stdout}"
    );
    assert!(stdout.contains("REJECTED |"), "{stdout}");
    let control = dir.join("shattered-gradients.control-no-bn.reslab-experiment.json");
    let control = ExperimentFile::load(&control).unwrap();
    assert_eq!(control.control_rejected(), Some(true));
    assert_eq!(
        control.fingerprint,
        experiments::find("shattered-gradients")
            .unwrap()
            .fingerprint()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(["experiment", "lesion", "--control", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("residual-fresh-seed"), "{stderr}");

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
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("De & Smith 2020"));
    let n = experiments::EXPERIMENTS.len();
    assert_eq!(n, 9);
    assert_eq!(list.matches("Protocol: ").count(), n, "{list}");
    assert_eq!(list.matches("protocol fingerprint ").count(), n, "{list}");
    assert!(!list.contains("NOT REGISTERED"), "{list}");
    assert!(list.contains("control no-bn: "), "{list}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_markdown_table_has_a_row_per_criterion_and_escapes_pipes() {
    let e = experiments::find("lesion").unwrap();
    let mut f = ExperimentFile::new(e, Default::default());
    f.criteria
        .push(Criterion::new("a | b", "1", true).claim("c"));
    f.criteria.push(Criterion::new("d", "2", false));
    let md = experiments::markdown(&[f]);
    assert!(md.contains("| `lesion` | c | a \\| b | 1 | PASS |"), "{md}");
    assert!(md.contains("| `lesion` |  | d | 2 | **FAIL** |"), "{md}");
    assert!(
        md.starts_with("Generated by `reslab experiment --all --seed 0 --markdown`"),
        "{md}"
    );
}

/// A network of one BatchNorm layer over 2 features, in inference mode: running mean 0,
/// variance 1, so it is (almost) the identity.
fn one_batch_norm() -> reslab::model::Model {
    use reslab::spec::{InputShape, LayerSpec, NetSpec, validate};
    let spec = NetSpec {
        name: "bn".into(),
        input: InputShape::Flat { features: 2 },
        layers: vec![LayerSpec::batch_norm("bn")],
        skips: vec![],
    };
    reslab::model::build(&validate(&spec).unwrap(), &burn::tensor::Device::flex(), 0).valid()
}

/// `model` on the fixed batch `[[1, 2], [3, 4]]`, flattened.
fn bn_out(model: &reslab::model::Model) -> Vec<f32> {
    use burn::tensor::{Device, Tensor, TensorData};
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
        &Device::flex(),
    );
    model
        .forward(reslab::model::Act::Flat(x))
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn bn_noise_scales_and_shifts_the_batch_norm_output_per_channel() {
    use reslab::model::BnNoise;
    let mut model = one_batch_norm();
    let plain = bn_out(&model);
    model.bn_noise = Some(BnNoise {
        per_layer: vec![Some((vec![2.0, 3.0], vec![1.0, -1.0]))],
    });
    let noisy = bn_out(&model);
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
    assert_eq!(bn_out(&model.valid()), plain);
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

/// The CNN depth test at a tiny scale (3 steps of 4 samples): all four nets train, every
/// criterion is computed from real runs, and the figures and runs are there. (Its quick and
/// full scales train for minutes to hours on two cores: run them from the CLI.)
/// degradation-cnn at a scale that only checks the plumbing: 3 steps of 4.
const TINY_CNN: reslab::experiments::degradation_cnn::Scale =
    reslab::experiments::degradation_cnn::Scale {
        steps: 3,
        batch: 4,
        lr: 0.05,
        evals: 1,
    };

/// A kept run is written as it ends and read back instead of trained again; a file that is
/// not this job's run is an error naming it, and nothing is overwritten.
#[test]
fn degradation_cnn_keeps_its_runs_and_reads_them_back() {
    use reslab::experiments::degradation_cnn::{NETS, measure_with};
    use reslab::experiments::kept::SUFFIX;
    use reslab::spec::{DataSource, DatasetSpec};
    use std::sync::{Arc, Mutex};
    let dir = common::temp_dir("experiments", "kept");
    let tiny = TINY_CNN;
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let nets = &NETS[..2];
    let run = |messages: Arc<Mutex<Vec<String>>>| {
        let mut opts = ExperimentOptions::new(true, 0);
        opts.keep_runs = Some(dir.clone());
        opts.progress = Some(Box::new(move |_, m| {
            messages.lock().unwrap().push(m.into())
        }));
        measure_with(nets, tiny, &[0], &dataset, &mut opts).map_err(|e| e.to_string())
    };
    let first_log = Arc::new(Mutex::new(Vec::new()));
    let first = run(first_log.clone()).unwrap();
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    // The second start trains nothing: no step is reported, the results are the same.
    let second_log = Arc::new(Mutex::new(Vec::new()));
    let second = run(second_log.clone()).unwrap();
    let log = second_log.lock().unwrap();
    assert!(log.iter().all(|m| !m.contains(": step ")), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|m| m.contains("kept run read back"))
            .count(),
        2
    );
    assert_eq!(first.nets, second.nets);
    assert_eq!(first.runs, second.runs);
    // A damaged kept file is named, and left alone.
    std::fs::write(&kept[0], b"{not json").unwrap();
    let err = run(Arc::new(Mutex::new(Vec::new())))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&kept[0].display().to_string()), "{err}");
    assert!(err.contains("remove the file"), "{err}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"{not json");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The degradation-cnn control at the quick scale: cifar-resnet-20 and -56 in the plain roles.
/// Ignored by default (two CNN trainings, about two minutes here): run with `--ignored`. At
/// this scale the 56-layer ResNet may itself still trail the 20-layer one (EXPERIMENTS_NOTES.md
/// reports each seed), so this control is the measurement that says whether the quick scale can
/// tell residual from plain degradation at all.
#[test]
#[ignore]
fn degradation_cnn_control_residual_nets_in_the_plain_roles_is_rejected() {
    let f = control_rejected("degradation-cnn", "residual-plain-roles");
    assert_eq!(f.runs.len(), 2, "cifar-resnet-20 and -56 once each");
}

#[test]
fn degradation_cnn_runs_end_to_end_at_a_tiny_scale() {
    use reslab::experiments::degradation_cnn::{DegradationCnn, NETS, measure_with};
    use reslab::spec::{DataSource, DatasetSpec};
    let started = Instant::now();
    let tiny = TINY_CNN;
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let m = measure_with(
        &NETS,
        tiny,
        &[0],
        &dataset,
        &mut ExperimentOptions::new(true, 0),
    )
    .unwrap();
    eprintln!(
        "degradation-cnn tiny: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(m.runs.len(), 4);
    let names: Vec<&str> = m.runs.iter().map(|r| r.spec.name.as_str()).collect();
    assert_eq!(names, NETS);
    assert!(m.runs.iter().all(|r| r.history.last_step == 3));
    for n in &m.nets {
        assert!(
            n.losses().iter().all(|l| l.is_finite() && *l > 0.0),
            "{n:?}"
        );
        assert!(n.accuracies().iter().all(|a| (0.0..=100.0).contains(a)));
    }
    let c = DegradationCnn::criteria(&m);
    assert_eq!(c.len(), 3);
    assert!(
        c.iter()
            .all(|x| x.values.iter().all(|v| v.value.is_finite())),
        "{c:#?}"
    );
    assert_eq!(DegradationCnn::figures(&m).len(), 2);
    assert!(DegradationCnn::notes(&m).contains("cifar-resnet-56 loss"));
}

#[test]
fn per_activation_bn_noise_uses_one_value_per_output() {
    use reslab::model::BnNoise;
    let mut model = one_batch_norm();
    let plain = bn_out(&model);
    let (scale, shift) = (vec![2.0, 3.0, 4.0, 5.0], vec![0.5, -0.5, 1.0, -1.0]);
    model.bn_noise = Some(BnNoise {
        per_layer: vec![Some((scale.clone(), shift.clone()))],
    });
    let noisy = bn_out(&model);
    for i in 0..4 {
        assert!(
            (noisy[i] - (plain[i] * scale[i] + shift[i])).abs() < 1e-5,
            "{noisy:?}"
        );
    }
}

/// The transformer experiment end to end at 30 steps a run (its quick scale trains 300 and takes
/// about two minutes, run with `--ignored`): the rank stacks at their full depth (the rank
/// criterion judges them at initialisation, so it passes already), the five training roles
/// with their run files, the figures.
#[test]
fn transformer_residuals_runs_end_to_end_at_a_short_scale() {
    use reslab::experiments::transformer_residuals::{
        CAST, DEPTH, ROLES, STACKS, TransformerResiduals, measure_cast,
    };
    let mut opts = ExperimentOptions::new(true, 0);
    let m = measure_cast(&CAST, 1, 30, &mut opts).unwrap();
    let c = judged::<TransformerResiduals>("transformer-residuals", &m);
    assert!(verdict(&c, "without adds, the tokens collapse"));
    assert_eq!(m.rank.len(), STACKS.len());
    assert!(m.rank.iter().all(|s| s[0].len() == DEPTH + 1));
    // Without adds the tokens are equal (to f32) by layer 3; with adds they stay apart.
    assert!(
        m.rank[0][0][3] < 1e-4 * m.rank[0][0][0],
        "{:?}",
        m.rank[0][0]
    );
    assert!(
        m.rank[1][0][DEPTH] > 0.5 * m.rank[1][0][0],
        "{:?}",
        m.rank[1][0]
    );
    assert_eq!(m.roles.len(), ROLES.len());
    assert!(m.roles.iter().all(|r| r[0].losses.len() == 30));
    assert!(
        m.grads
            .iter()
            .all(|g| g[0].len() == DEPTH && g[0].iter().all(|v| *v > 0.0))
    );
    // Every stack's attention layers have an entropy at init, at most ln(16).
    assert!(m.entropy.iter().all(|s| s[0].len() == DEPTH));
    assert!(
        m.entropy
            .iter()
            .flatten()
            .flatten()
            .all(|&e| e > 0.0 && e <= 16f64.ln() + 1e-4)
    );
    assert_eq!(TransformerResiduals::figures(&m).len(), 4);
    let runs = TransformerResiduals::into_runs(m);
    assert_eq!(runs.len(), ROLES.len());
}

/// The quick scale on seed 0 passes every criterion (three minutes on two cores).
#[test]
#[ignore = "the quick scale trains five 12-block transformers for 300 steps (about two minutes on two cores)"]
fn transformer_residuals_quick_passes() {
    quick("transformer-residuals");
}

#[test]
#[ignore = "each control trains five 12-block transformers (about two minutes each on two cores)"]
fn transformer_residuals_controls_are_rejected() {
    control_rejected("transformer-residuals", "adds-in-plain-roles");
    control_rejected("transformer-residuals", "pre-ln-as-post-ln");
}
