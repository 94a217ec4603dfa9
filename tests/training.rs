//! Training behaviour: learning, the depth effect, determinism, divergence, control.

mod common;

use common::{mlp, session};
use reslab::metrics::{History, RunStatus};
use reslab::spec::*;
use reslab::train::{EndReason, Session, TrainEvent, apply_event, spawn};
use std::time::{Duration as Wall, Instant};

/// Runs a session to the end; returns the losses and whether it diverged.
fn run(s: &mut Session) -> (Vec<f32>, bool) {
    let mut losses = Vec::new();
    while !s.is_done() {
        let out = s.train_step();
        losses.push(out.record.loss);
        if out.diverged.is_some() {
            return (losses, true);
        }
    }
    (losses, false)
}

fn tail_mean(v: &[f32], n: usize) -> f32 {
    v[v.len() - n..].iter().sum::<f32>() / n as f32
}

#[test]
fn residual_mlp_learns_two_spirals() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = mlp("mlp-res-4", &dataset, 64, true);
    let config = TrainConfig {
        optimizer: OptimizerSpec::adam(),
        lr: 0.01,
        duration: Duration::Steps(600),
        probe_every: 0,
        ..TrainConfig::default()
    };
    let mut s = session(&spec, &config, &dataset);
    let (_, diverged) = run(&mut s);
    assert!(!diverged);
    let eval = s.evaluate();
    assert!(eval.accuracy > 0.9, "validation accuracy {}", eval.accuracy);
}

fn depth_config(lr: f64) -> TrainConfig {
    TrainConfig {
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        lr,
        batch_size: 128,
        duration: Duration::Steps(400),
        probe_every: 0,
        ..TrainConfig::default()
    }
}

/// He et al.'s degradation: with BN in both, a 32-block plain MLP trains far worse than its
/// residual twin on the same budget (PyTorch on this setup: plain ≈ 1.4, residual ≈ 0.19).
#[test]
fn depth_hurts_the_plain_mlp_and_not_the_residual_one() {
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let plain = mlp("mlp-plain-32", &dataset, 64, true);
    let res = mlp("mlp-res-32", &dataset, 64, true);
    let (lp, dp) = run(&mut session(&plain, &depth_config(0.05), &dataset));
    let (lr, dr) = run(&mut session(&res, &depth_config(0.05), &dataset));
    assert!(!dp && !dr);
    let (p, r) = (tail_mean(&lp, 50), tail_mean(&lr, 50));
    eprintln!("last-50 training loss: plain-32 {p:.3}, res-32 {r:.3}");
    assert!(r < 0.5, "residual loss {r}");
    assert!(p > 2.0 * r, "plain {p} vs residual {r}");
}

/// Without BN, each residual block of a He-initialised MLP doubles the activation variance at
/// initialisation (De & Smith 2020), so 32 blocks diverge even at lr 0.01.
#[test]
fn residual_mlp_without_bn_diverges_at_depth_32() {
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let res = mlp("mlp-res-32", &dataset, 64, false);
    let (losses, diverged) = run(&mut session(&res, &depth_config(0.01), &dataset));
    assert!(
        diverged,
        "expected divergence; losses end at {:?}",
        losses.last()
    );
}

#[test]
fn the_same_seed_repeats_the_loss_sequence_and_another_seed_does_not() {
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let spec = mlp("mlp-res-4", &dataset, 32, true);
    let mut config = TrainConfig {
        duration: Duration::Steps(25),
        probe_every: 5,
        ..TrainConfig::default()
    };
    let (a, _) = run(&mut session(&spec, &config, &dataset));
    let (b, _) = run(&mut session(&spec, &config, &dataset));
    assert_eq!(a, b);
    config.seed = 1;
    let (c, _) = run(&mut session(&spec, &config, &dataset));
    assert_ne!(a, c);
}

/// Takes events until the run ends (or `timeout`), recording them the way the lab and the CLI
/// do ([`apply_event`]); returns them with the status they gave the run.
fn collect(
    handle: &reslab::train::RunHandle,
    history: &mut History,
    timeout: Wall,
) -> (Vec<TrainEvent>, RunStatus) {
    let start = Instant::now();
    let mut events = Vec::new();
    let mut status = RunStatus::Running;
    while start.elapsed() < timeout {
        let Some(e) = handle.next_timeout(Wall::from_millis(100)) else {
            continue;
        };
        apply_event(history, &mut status, &e);
        let done = matches!(e, TrainEvent::Finished { .. } | TrainEvent::Failed(_));
        events.push(e);
        if done {
            break;
        }
    }
    (events, status)
}

#[test]
fn a_huge_learning_rate_ends_in_diverged_naming_the_step() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = mlp("mlp-plain-4", &dataset, 32, false);
    let config = TrainConfig {
        lr: 1e3,
        duration: Duration::Steps(500),
        ..TrainConfig::default()
    };
    let handle = spawn(spec, config, dataset, Box::new(|| {})).unwrap();
    let mut history = History::default();
    let (events, status) = collect(&handle, &mut history, Wall::from_secs(120));
    assert_eq!(status, RunStatus::Diverged);
    let diverged = events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Diverged { step, tensor, .. } => Some((*step, tensor.clone())),
            _ => None,
        })
        .expect("a Diverged event");
    assert!(diverged.0 >= 1 && diverged.0 < 500);
    assert!(!diverged.1.is_empty());
    assert!(matches!(
        events.last(),
        Some(TrainEvent::Finished {
            reason: EndReason::Diverged,
            step
        }) if *step == diverged.0
    ));
    // Every step up to the divergence is in the history.
    assert_eq!(history.get("loss", "").unwrap().len() as u64, diverged.0);
    let (session, _) = handle.join();
    assert_eq!(session.unwrap().step, diverged.0);
}

#[test]
fn stop_ends_within_a_step_and_keeps_the_history() {
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let spec = mlp("mlp-res-8", &dataset, 64, true);
    let config = TrainConfig {
        duration: Duration::Steps(100_000),
        probe_every: 5,
        eval_every: 0,
        ..TrainConfig::default()
    };
    let handle = spawn(spec, config, dataset, Box::new(|| {})).unwrap();
    let mut history = History::default();
    // Wait for 20 steps.
    let start = Instant::now();
    while history.get("loss", "").map_or(0, |s| s.len()) < 20 {
        assert!(start.elapsed() < Wall::from_secs(120), "no progress");
        collect_one(&handle, &mut history);
    }
    handle.pause();
    std::thread::sleep(Wall::from_millis(300));
    while collect_one(&handle, &mut history) {}
    let paused_at = history.last_step;
    std::thread::sleep(Wall::from_millis(300));
    assert!(handle.try_next().is_none(), "no steps while paused");
    handle.resume();
    while history.last_step < paused_at + 5 {
        collect_one(&handle, &mut history);
    }
    // Take what the worker already sent, so that `asked_at` is where the worker is (a busy
    // machine can leave the reader several steps behind), not where the reader got to.
    while let Some(e) = handle.try_next() {
        record(e, &mut history);
    }
    let asked_at = history.last_step;
    handle.stop();
    let (events, status) = collect(&handle, &mut history, Wall::from_secs(60));
    let Some(TrainEvent::Finished { step, reason }) = events.last() else {
        panic!("no Finished event: {events:?}");
    };
    assert_eq!(*reason, EndReason::Stopped);
    assert_eq!(status, RunStatus::Stopped);
    assert!(
        *step <= asked_at + 1,
        "stopped at {step}, asked at {asked_at}"
    );
    let loss = history.get("loss", "").unwrap();
    assert_eq!(loss.len() as u64, *step);
    assert_eq!(loss.steps, (1..=*step as u32).collect::<Vec<_>>());
    let (session, _) = handle.join();
    assert_eq!(session.unwrap().step, *step);
}

/// Waits up to 50 ms for an event and records it; false when none came.
fn collect_one(handle: &reslab::train::RunHandle, history: &mut History) -> bool {
    match handle.next_timeout(Wall::from_millis(50)) {
        Some(e) => {
            record(e, history);
            true
        }
        None => false,
    }
}

fn record(e: TrainEvent, history: &mut History) {
    apply_event(history, &mut RunStatus::Running, &e);
}

#[test]
fn a_bad_dataset_folder_arrives_as_a_failed_event() {
    let dataset = DatasetSpec::from_name("mnist:/nonexistent/folder").unwrap();
    let spec = mlp("mlp-res-2", &dataset, 16, true);
    let handle = spawn(spec, TrainConfig::default(), dataset, Box::new(|| {})).unwrap();
    let mut history = History::default();
    let (events, status) = collect(&handle, &mut history, Wall::from_secs(30));
    match events.last() {
        Some(TrainEvent::Failed(msg)) => assert!(msg.contains("/nonexistent/folder"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(status, RunStatus::Failed);
    assert!(handle.join().0.is_err());
}

#[test]
fn an_invalid_spec_or_mismatched_head_is_refused() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let mut spec = mlp("mlp-res-2", &dataset, 16, true);
    spec.layers.clear();
    assert!(
        spawn(
            spec,
            TrainConfig::default(),
            dataset.clone(),
            Box::new(|| {})
        )
        .is_err()
    );
    // A head of 10 on a 2-class set: refused when the session starts, as a Failed event.
    let wrong = preset(
        "mlp-res-2",
        &PresetOptions {
            input: Some(InputShape::Flat { features: 2 }),
            ..PresetOptions::default()
        },
    )
    .unwrap();
    let handle = spawn(wrong, TrainConfig::default(), dataset, Box::new(|| {})).unwrap();
    let mut history = History::default();
    let (events, _) = collect(&handle, &mut history, Wall::from_secs(30));
    assert!(matches!(events.last(), Some(TrainEvent::Failed(m)) if m.contains("10 outputs")));
}

#[test]
fn dropping_the_handle_stops_the_worker() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = mlp("mlp-res-2", &dataset, 16, true);
    let config = TrainConfig {
        duration: Duration::Steps(10_000_000),
        ..TrainConfig::default()
    };
    // The waker lives as long as the worker: its captured Arc tells when the worker has ended.
    let alive = std::sync::Arc::new(());
    let in_worker = alive.clone();
    let handle = spawn(
        spec,
        config,
        dataset,
        Box::new(move || {
            let _ = &in_worker;
        }),
    )
    .unwrap();
    let start = Instant::now();
    while !matches!(
        handle.next_timeout(Wall::from_millis(100)),
        Some(TrainEvent::Step(_))
    ) {
        assert!(start.elapsed() < Wall::from_secs(60));
    }
    drop(handle);
    let deadline = Instant::now() + Wall::from_secs(20);
    while std::sync::Arc::strong_count(&alive) > 1 {
        assert!(
            Instant::now() < deadline,
            "the worker kept running after its handle was dropped"
        );
        std::thread::sleep(Wall::from_millis(20));
    }
}

#[test]
fn a_checkpoint_holds_the_bn_running_statistics_of_the_last_step() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = mlp("mlp-res-2", &dataset, 8, true);
    let config = TrainConfig {
        duration: Duration::Steps(3),
        batch_size: 32,
        probe_every: 0,
        ..TrainConfig::default()
    };
    let mut s = session(&spec, &config, &dataset);
    for _ in 0..3 {
        s.train_step();
    }
    let ck = s.checkpoint();
    // What the model uses now (synced), per BN layer: running mean, running var, γ, β.
    let state: Vec<Vec<f32>> = s
        .model
        .batch_norm_state()
        .into_iter()
        .map(|t| t.into_data().try_into_vec_as::<f32>().unwrap())
        .collect();
    let find = |name: &str| {
        ck.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} in {:?}",
                    ck.tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
                )
            })
            .data
            .clone()
    };
    let mean = find("block1.bn.running_mean");
    let var = find("block1.bn.running_var");
    assert_eq!(mean, state[0][..8].to_vec());
    assert_eq!(var, state[0][8..16].to_vec());
    // Three updates with momentum 0.1 have moved the mean away from its initial zeros.
    assert!(mean.iter().any(|&m| m.abs() > 1e-4), "{mean:?}");
}

/// On the CPU a probe step's layer statistics are reduced on a second thread while the
/// training thread runs the backward pass; they must equal the on-device reduction of the same
/// forward pass, step after step, and the losses must not change.
#[test]
fn layer_statistics_reduced_beside_the_backward_pass_equal_the_device_reduction() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = mlp("mlp-res-4", &dataset, 32, true);
    let config = TrainConfig {
        duration: Duration::Steps(4),
        probe_every: 1,
        ..TrainConfig::default()
    };
    let mut beside = session(&spec, &config, &dataset);
    let mut on_device = session(&spec, &config, &dataset);
    assert!(beside.model.host_reductions);
    on_device.model.host_reductions = false;
    for step in 1..=4 {
        let a = beside.train_step();
        let b = on_device.train_step();
        assert_eq!(a.record.loss, b.record.loss, "step {step} loss");
        let (pa, pb) = (a.probe.expect("probe step"), b.probe.expect("probe step"));
        assert_eq!(pa.layers.len(), beside.layout.layers.len());
        assert_eq!(pa.layers.len(), pb.layers.len());
        for (k, (x, y)) in pa.layers.iter().zip(&pb.layers).enumerate() {
            for (u, v) in [
                (x.mean, y.mean),
                (x.std, y.std),
                (x.min, y.min),
                (x.max, y.max),
            ] {
                assert!(
                    (u - v).abs() <= 1e-4 * v.abs().max(1.0),
                    "step {step} layer {k}: {x:?} vs {y:?}"
                );
            }
            assert!((x.frac_nonpos - y.frac_nonpos).abs() < 1e-6);
            assert_eq!(x.hist, y.hist, "step {step} layer {k}");
            let width = beside.model.spec.layers[k].output.channels();
            assert_eq!(
                x.hist.iter().sum::<u32>() as usize,
                config.batch_size * width,
                "every value counted"
            );
        }
    }
}

/// The fused `Linear → BatchNorm (+ skip) → ReLU` blocks give the numbers of the layer-by-layer
/// path: losses, every probe (layer statistics, skip norms, BN running statistics, gradient
/// and update norms) over five steps, for identity skips with α = 1 and α = 0.5, a projection
/// shortcut, a plain BN net, and a learnable α (which keeps the layer-by-layer path).
#[test]
fn fused_dense_blocks_train_exactly_like_the_layer_by_layer_path() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let base = PresetOptions {
        width: 24,
        ..PresetOptions::for_dataset(&dataset)
    };
    let variants = [
        ("mlp-res-3", base),
        (
            "mlp-res-3",
            PresetOptions {
                scale: BranchScale {
                    value: 0.5,
                    learnable: false,
                },
                ..base
            },
        ),
        (
            "mlp-res-3",
            PresetOptions {
                shortcut: Shortcut::Projection { batch_norm: true },
                ..base
            },
        ),
        ("mlp-plain-3", base),
        (
            "mlp-res-3",
            PresetOptions {
                scale: BranchScale {
                    value: 0.0,
                    learnable: true,
                },
                ..base
            },
        ),
    ];
    let config = TrainConfig {
        duration: Duration::Steps(5),
        probe_every: 1,
        ..TrainConfig::default()
    };
    let close = |a: f32, b: f32, what: &str| {
        assert!(
            (a - b).abs() <= 2e-4 * b.abs().max(1e-2) || (a.is_nan() && b.is_nan()),
            "{what}: fused {a} vs layer by layer {b}"
        );
    };
    for (name, opts) in variants {
        let spec = preset(name, &opts).unwrap();
        let mut fused = session(&spec, &config, &dataset);
        let mut plain = session(&spec, &config, &dataset);
        plain.model.fused_blocks = false;
        // Non-zero biases (they start at zero), so that the Linear outputs show them.
        for s in [&mut fused, &mut plain] {
            let device = s.device.clone();
            for node in s.model.net.nodes.iter_mut().flatten() {
                if let reslab::model::NodeModule::Linear(lin) = node
                    && let Some(bias) = lin.bias.as_mut()
                {
                    let n = bias.dims()[0];
                    let values: Vec<f32> = (0..n).map(|k| 0.3 - 0.05 * k as f32).collect();
                    *bias = burn::module::Param::from_tensor(
                        burn::tensor::Tensor::<1>::from_floats(values.as_slice(), &device),
                    );
                }
            }
        }
        for step in 1..=5 {
            let (a, b) = (fused.train_step(), plain.train_step());
            let at = |what: &str| format!("{name} {:?} step {step} {what}", opts.scale);
            close(a.record.loss, b.record.loss, &at("loss"));
            close(a.record.grad_norm, b.record.grad_norm, &at("grad norm"));
            let (pa, pb) = (a.probe.unwrap(), b.probe.unwrap());
            assert_eq!(pa.layers.len(), pb.layers.len());
            for (k, (x, y)) in pa.layers.iter().zip(&pb.layers).enumerate() {
                close(x.mean, y.mean, &at(&format!("layer {k} mean")));
                close(x.std, y.std, &at(&format!("layer {k} std")));
                close(x.min, y.min, &at(&format!("layer {k} min")));
                close(x.max, y.max, &at(&format!("layer {k} max")));
                close(x.frac_nonpos, y.frac_nonpos, &at(&format!("layer {k} ≤ 0")));
                let moved: u32 = x
                    .hist
                    .iter()
                    .zip(&y.hist)
                    .map(|(p, q)| p.abs_diff(*q))
                    .sum();
                assert!(
                    moved <= 2,
                    "{}: {:?} vs {:?}",
                    at(&format!("layer {k} histogram")),
                    x.hist,
                    y.hist
                );
            }
            assert_eq!(pa.skips.len(), pb.skips.len());
            for (k, (x, y)) in pa.skips.iter().zip(&pb.skips).enumerate() {
                close(
                    x.branch_norm,
                    y.branch_norm,
                    &at(&format!("skip {k} branch")),
                );
                close(
                    x.shortcut_norm,
                    y.shortcut_norm,
                    &at(&format!("skip {k} shortcut")),
                );
                close(x.alpha, y.alpha, &at(&format!("skip {k} α")));
                assert_eq!(x.numel, y.numel);
            }
            for (k, (x, y)) in pa.batch_norms.iter().zip(&pb.batch_norms).enumerate() {
                for (u, v) in x.running_mean.iter().zip(&y.running_mean) {
                    close(*u, *v, &at(&format!("bn {k} running mean")));
                }
                for (u, v) in x.running_var.iter().zip(&y.running_var) {
                    close(*u, *v, &at(&format!("bn {k} running var")));
                }
            }
            assert_eq!(pa.params.len(), pb.params.len());
            for (k, (x, y)) in pa.params.iter().zip(&pb.params).enumerate() {
                let p = &fused.layout.params[k];
                close(x.grad_norm, y.grad_norm, &at(&format!("{p} grad")));
                close(x.weight_norm, y.weight_norm, &at(&format!("{p} weight")));
            }
        }
    }
}
