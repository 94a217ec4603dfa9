//! Frame cost of the lab's panels with a long history (issue: < 8 ms per panel frame at the
//! 99th percentile, history < 500 MB).
//!
//! Builds the history of a 100k-step run of cifar-resnet-56 probed every 10 steps (10,000
//! probes, synthetic values shaped like a real run), then times building and tessellating one
//! frame of each panel: 200 frames with an unchanged history (what a user scrolling or hovering
//! sees) and 200 frames while the history grows by one probe per frame (live training, so every
//! cache is rebuilt each frame).
//!
//! Run: `cargo bench --bench ui_frames` (add `-- --quick` for a 10k-step history).

use reslab::data;
use reslab::metrics::{
    ActStats, BnStats, EvalRecord, History, ParamStats, ProbeRecord, SkipStats, StepRecord,
};
use reslab::runfile::{Environment, RunFile};
use reslab::spec::{DatasetSpec, PresetOptions, TrainConfig, preset, validate};
use reslab::train::Session;
use reslab::ui::panels::{PanelCtx, PanelKind, Panels};
use reslab::ui::runs::ShownRun;
use std::time::Instant;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |pages| pages * 4096.0 / 1e6)
}

fn probe(layout: &reslab::metrics::RunLayout, step: u64) -> ProbeRecord {
    let t = step as f32;
    let wobble = |i: usize| 1.0 + 0.1 * ((t * 0.001 + i as f32).sin());
    ProbeRecord {
        token_residual: Vec::new(),
        attention: Vec::new(),
        step,
        layers: (0..layout.layers.len())
            .map(|i| ActStats {
                mean: 0.1 * wobble(i),
                std: (1.0 + i as f32 * 0.05) * wobble(i),
                min: -3.0,
                max: 3.0 * wobble(i),
                frac_nonpos: 0.5,
                hist: (0..32).map(|b| (b * 7 % 31) as u32).collect(),
            })
            .collect(),
        batch_norms: layout
            .batch_norm_channels
            .iter()
            .enumerate()
            .map(|(i, &c)| BnStats {
                running_mean: (0..c).map(|k| 0.01 * k as f32 * wobble(i)).collect(),
                running_var: (0..c).map(|k| 1.0 + 0.02 * k as f32 * wobble(i)).collect(),
                gamma: vec![1.0; c],
                beta: vec![0.0; c],
            })
            .collect(),
        skips: (0..layout.skips.len())
            .map(|i| SkipStats {
                branch_norm: wobble(i),
                shortcut_norm: 2.0,
                alpha: 1.0,
                numel: 1000,
            })
            .collect(),
        params: (0..layout.params.len())
            .map(|i| ParamStats {
                grad_norm: 0.01 * wobble(i) / (1.0 + i as f32 * 0.01),
                weight_norm: 3.0,
                update_ratio: 1e-3 * wobble(i),
            })
            .collect(),
        affine_norms: Vec::new(),
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let steps: u64 = if quick { 10_000 } else { 100_000 };
    let probe_every = 10;
    let rss0 = rss_mb();

    // The real layout of cifar-resnet-56 (names of layers, BN layers, skips, tensors).
    let dataset = DatasetSpec::from_name("mnist").unwrap();
    let (input, classes) = dataset.expected_io();
    let spec = preset(
        "cifar-resnet-56",
        &PresetOptions {
            input: Some(input),
            classes,
            ..PresetOptions::default()
        },
    )
    .unwrap();
    let valid = validate(&spec).unwrap();
    let session = Session::new(
        &valid,
        &TrainConfig::default(),
        data::load(&dataset).unwrap(),
        reslab::model::make_device(&reslab::spec::DeviceChoice::Cpu, true).unwrap(),
    )
    .unwrap();
    let layout = session.layout.clone();
    drop(session);
    println!(
        "cifar-resnet-56 layout: {} layers, {} BN layers, {} skips, {} tensors",
        layout.layers.len(),
        layout.batch_norms.len(),
        layout.skips.len(),
        layout.params.len()
    );

    let rss1 = rss_mb();
    let t = Instant::now();
    let mut history = History::new(layout.clone());
    for step in 1..=steps {
        let x = step as f32;
        history.push_step(&StepRecord {
            step,
            loss: 2.3 * (-x / 20_000.0).exp() + 0.05 * (x * 0.37).sin().abs(),
            accuracy: 1.0 - (-x / 20_000.0).exp() * 0.9,
            lr: 0.1,
            samples_per_sec: 60.0,
            grad_norm: 1.0,
        });
        if step % probe_every == 0 {
            history.push_probe(probe(&layout, step));
        }
        if step % 1000 == 0 {
            history.push_eval(&EvalRecord {
                step,
                loss: 2.0 * (-x / 20_000.0).exp() + 0.1,
                accuracy: 0.9,
                sets: Vec::new(),
                set_bn: Vec::new(),
            });
        }
    }
    let fill_s = t.elapsed().as_secs_f64();
    let rss2 = rss_mb();
    println!(
        "history: {steps} steps, probes every {probe_every}: {} points, {:.0} MB by History::memory_bytes, process RSS +{:.0} MB (total {:.0} MB, {:.0} MB before the history); filled in {fill_s:.1} s",
        history.points(),
        history.memory_bytes() as f64 / 1e6,
        rss2 - rss1,
        rss2,
        rss0
    );

    let mut file = RunFile::new(
        "bench",
        spec.clone(),
        TrainConfig::default(),
        dataset.clone(),
        Environment {
            backend: "flex".into(),
            device: "CPU (burn-flex)".into(),
            reslab_version: env!("CARGO_PKG_VERSION").into(),
        },
    );
    file.history = history;
    let mut runs = vec![ShownRun {
        id: 1,
        file,
        checkpoint: None,
        path: None,
        dirty: false,
        compare: true,
        color: 0,
    }];

    let ctx = egui::Context::default();
    let mut panels = Panels::default();
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(760.0, 560.0),
        )),
        ..Default::default()
    };
    println!("\nper-panel frame time (build + tessellate), 760×560 points:");
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10}",
        "panel", "static p50", "static p99", "live p50", "live p99"
    );
    let mut worst = 0.0f64;
    for kind in PanelKind::ALL {
        let mut results = Vec::new();
        for live in [false, true] {
            let mut times = Vec::new();
            let mut next_step = steps;
            for frame in 0..220 {
                if live {
                    // One more probe per frame: every cache keyed on the history is rebuilt.
                    next_step += probe_every;
                    let rec = probe(&layout, next_step);
                    let h = &mut runs[0].file.history;
                    h.push_step(&StepRecord {
                        step: next_step,
                        loss: 0.1,
                        accuracy: 0.9,
                        lr: 0.1,
                        samples_per_sec: 60.0,
                        grad_norm: 1.0,
                    });
                    h.push_probe(rec);
                }
                let t = Instant::now();
                let out = ctx.run_ui(input(), |ui| {
                    let pctx = PanelCtx {
                        run: runs.first(),
                        runs: &runs,
                        height: 520.0,
                        training: None,
                    };
                    let _ = panels.ui(kind, ui, &pctx);
                });
                let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
                std::hint::black_box(prims);
                if frame >= 20 {
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let p50 = percentile(&mut times, 0.5);
            let p99 = percentile(&mut times, 0.99);
            if std::env::var_os("RESLAB_BENCH_DETAIL").is_some() {
                let slow: Vec<String> = times
                    .iter()
                    .filter(|&&t| t > 4.0)
                    .map(|t| format!("{t:.1}"))
                    .collect();
                eprintln!(
                    "{} {}: p90 {:.2} max {:.2}; frames over 4 ms: {:?}",
                    kind.title(),
                    if live { "live" } else { "static" },
                    percentile(&mut times, 0.9),
                    percentile(&mut times, 1.0),
                    slow
                );
            }
            worst = worst.max(p99);
            results.push((p50, p99));
        }
        println!(
            "{:<18} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            kind.title(),
            results[0].0,
            results[0].1,
            results[1].0,
            results[1].1
        );
    }
    println!(
        "\nworst p99: {worst:.2} ms (target < 8 ms); history {:.0} MB (target < 500 MB)",
        runs[0].history().memory_bytes() as f64 / 1e6
    );
}
