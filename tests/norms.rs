//! LayerNorm and GroupNorm as layer ops: shapes and validation, the per-sample normalisation
//! against a hand computation, independence of the batch (what BatchNorm lacks), the tensors
//! a run saves, and training.

use burn::tensor::{Device, Tensor, TensorData};
use reslab::model::{Act, build, param_layout};
use reslab::spec::*;

mod common;

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// `input` features → one norm layer → head(2).
fn flat_net(features: usize, norm: LayerSpec) -> NetSpec {
    NetSpec {
        name: "norm".into(),
        input: InputShape::Flat { features },
        layers: vec![norm, LayerSpec::new("head", LayerOp::Head { outputs: 2 })],
        skips: Vec::new(),
    }
}

/// A `[c, 2, 2]` image → one norm layer → flatten → head(2).
fn image_net(channels: usize, norm: LayerSpec) -> NetSpec {
    NetSpec {
        name: "norm".into(),
        input: InputShape::Image {
            channels,
            height: 2,
            width: 2,
        },
        layers: vec![
            norm,
            LayerSpec::new("flatten", LayerOp::Flatten),
            LayerSpec::new("head", LayerOp::Head { outputs: 2 }),
        ],
        skips: Vec::new(),
    }
}

/// The norm layer's output (layer 0) for a batch of host samples.
fn norm_output(spec: &NetSpec, x: Vec<f32>, batch: usize) -> Vec<f32> {
    let valid = validate(spec).unwrap();
    let device = Device::flex();
    let model = build(&valid, &device, 0).valid();
    let input = reslab::model::input_from_host(x, batch, valid.input, &device);
    let mut model = model;
    model.host_reductions = true;
    let (_, probes) = model.forward_with(input, reslab::model::Probe::On, None);
    floats(probes.layers[0].clone())
}

#[test]
fn shapes_parameters_and_labels() {
    let v = validate(&flat_net(6, LayerSpec::layer_norm("ln"))).unwrap();
    assert_eq!(v.layers[0].output, Shape::Flat(6));
    assert_eq!(v.layers[0].params, 12, "γ and β per feature");
    let v = validate(&image_net(4, LayerSpec::group_norm("gn", 2))).unwrap();
    assert_eq!(v.layers[0].output, Shape::Image(4, 2, 2));
    assert_eq!(v.layers[0].params, 8, "γ and β per channel");
    assert_eq!(LayerSpec::group_norm("gn", 2).op_label(), "groupnorm 2");
    assert_eq!(LayerSpec::layer_norm("ln").op_label(), "layernorm");
    assert!(LayerSpec::layer_norm("ln").is_norm() && !LayerSpec::layer_norm("ln").has_weights());
}

#[test]
fn groups_that_do_not_divide_the_channels_are_refused_by_name() {
    let err = validate(&image_net(6, LayerSpec::group_norm("gn", 4))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("gn: 4 groups do not divide the 6 channels"),
        "{text}"
    );
    assert_eq!(err.node(), Some("gn"));
    let err = validate(&image_net(6, LayerSpec::group_norm("gn", 0))).unwrap_err();
    assert!(err.to_string().contains("groups"), "{err}");
    let mut bad = LayerSpec::layer_norm("ln");
    bad.op = LayerOp::LayerNorm { epsilon: -1.0 };
    assert!(
        validate(&flat_net(3, bad))
            .unwrap_err()
            .to_string()
            .contains("epsilon")
    );
    // A spec file names the ops as the docs do; unknown fields are errors.
    let op: LayerOp = serde_json::from_str(r#"{"type": "group_norm", "groups": 2}"#).unwrap();
    assert_eq!(
        op,
        LayerOp::GroupNorm {
            groups: 2,
            epsilon: 1e-5
        }
    );
    assert!(serde_json::from_str::<LayerOp>(r#"{"type": "layer_norm", "eps": 1}"#).is_err());
}

#[test]
fn layer_norm_normalises_each_sample_over_its_features() {
    // Sample 1: [1, 2, 3, 6]: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5.
    // Sample 2: [10, 10, 10, 14]: mean 11, variance (1 + 1 + 1 + 9) / 4 = 3.
    let x = vec![1.0, 2.0, 3.0, 6.0, 10.0, 10.0, 10.0, 14.0];
    let y = norm_output(&flat_net(4, LayerSpec::layer_norm("ln")), x, 2);
    let expect = |v: f32, m: f32, var: f32| (v - m) / (var + 1e-5).sqrt();
    let want = [
        expect(1.0, 3.0, 3.5),
        expect(2.0, 3.0, 3.5),
        expect(3.0, 3.0, 3.5),
        expect(6.0, 3.0, 3.5),
        expect(10.0, 11.0, 3.0),
        expect(10.0, 11.0, 3.0),
        expect(10.0, 11.0, 3.0),
        expect(14.0, 11.0, 3.0),
    ];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{y:?} vs {want:?}");
    }
}

#[test]
fn group_norm_normalises_each_group_of_channels_of_each_sample() {
    // One sample, 4 channels of 2×2, 2 groups: channels 0–1 hold 0..8, channels 2–3 hold
    // 100 + 2·(0..8). Group 1: mean 3.5, variance 5.25; group 2: mean 107, variance 21.
    let mut x: Vec<f32> = (0..8).map(|v| v as f32).collect();
    x.extend((0..8).map(|v| 100.0 + 2.0 * v as f32));
    let y = norm_output(&image_net(4, LayerSpec::group_norm("gn", 2)), x.clone(), 1);
    for (i, (&a, &v)) in y.iter().zip(&x).enumerate() {
        let (m, var) = if i < 8 { (3.5, 5.25) } else { (107.0, 21.0) };
        let want = (v - m) / (var + 1e-5f32).sqrt();
        assert!((a - want).abs() < 1e-4, "value {i}: {a} vs {want}");
    }
}

#[test]
fn layer_and_group_norm_do_not_depend_on_the_batch_unlike_batch_norm_in_training() {
    // The same sample alone and inside a batch of 4 gives the same output; BatchNorm's
    // training-mode output changes with the other samples.
    let sample: Vec<f32> = (0..16).map(|v| (v as f32 * 0.37).sin()).collect();
    let mut batch = sample.clone();
    batch.extend((0..48).map(|v| (v as f32 * 1.3).cos() * 3.0 + 1.0));
    for norm in [LayerSpec::layer_norm("n"), LayerSpec::group_norm("n", 2)] {
        let spec = image_net(4, norm);
        let alone = norm_output(&spec, sample.clone(), 1);
        let inside = norm_output(&spec, batch.clone(), 4);
        for (a, b) in alone.iter().zip(&inside[..16]) {
            assert!((a - b).abs() < 1e-5, "{alone:?} vs {:?}", &inside[..16]);
        }
    }
    let spec = image_net(4, LayerSpec::batch_norm("n"));
    let valid = validate(&spec).unwrap();
    let device = Device::flex().autodiff();
    let model = build(&valid, &device, 0);
    let out = |x: Vec<f32>, b: usize| {
        let input = Act::Image(Tensor::from_data(TensorData::new(x, [b, 4, 2, 2]), &device));
        floats(model.forward(input))
    };
    let (alone, inside) = (out(sample.clone(), 1), out(batch, 4));
    assert!(
        alone
            .iter()
            .zip(&inside[..2])
            .any(|(a, b)| (a - b).abs() > 1e-3),
        "{alone:?} {inside:?}"
    );
}

#[test]
fn the_tensors_a_run_saves_are_the_spec_level_list() {
    for spec in [
        flat_net(6, LayerSpec::layer_norm("ln")),
        image_net(4, LayerSpec::group_norm("gn", 2)),
    ] {
        let valid = validate(&spec).unwrap();
        let model = build(&valid, &Device::flex().autodiff(), 0);
        let saved: Vec<(String, Vec<usize>)> = param_layout(&model)
            .into_iter()
            .map(|p| (p.name, p.shape))
            .collect();
        let expected: Vec<(String, Vec<usize>)> = expected_tensors(&valid)
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(saved, expected);
    }
}

#[test]
fn mlps_with_layer_or_group_norm_train_on_spirals_and_save_and_load() {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    for (k, norm) in [LayerSpec::layer_norm("n"), LayerSpec::group_norm("n", 4)]
        .into_iter()
        .enumerate()
    {
        let mut spec = common::mlp("mlp-res-2", &dataset, 16, true);
        // Every BatchNorm becomes this norm (names kept apart).
        let mut count = 0;
        for l in spec.layers.iter_mut().filter(|l| l.is_norm()) {
            l.op = norm.op.clone();
            count += 1;
        }
        assert!(count >= 2, "{spec:?}");
        let config = TrainConfig {
            duration: Duration::Steps(150),
            lr: 0.05,
            seed: k as u64,
            probe_every: 50,
            ..TrainConfig::default()
        };
        let mut session = common::session(&spec, &config, &dataset);
        let mut losses = Vec::new();
        while !session.is_done() {
            let out = session.train_step();
            assert!(out.diverged.is_none());
            losses.push(out.record.loss);
        }
        let head: f32 = losses[..10].iter().sum::<f32>() / 10.0;
        let tail: f32 = losses[losses.len() - 10..].iter().sum::<f32>() / 10.0;
        assert!(tail < 0.8 * head, "{:?}: {head} → {tail}", norm.op);
    }
}

/// Every preset builds with every normalisation: the blocks get `*.bn`, `*.ln` or `*.gn`
/// layers (none for `Norm::None`), the skips still add after the norm, and the net validates.
#[test]
fn presets_take_any_normalisation() {
    let cifar = DatasetSpec::from_name("cifar10:/nonexistent").unwrap();
    for norm in [
        Norm::None,
        Norm::Batch,
        Norm::Layer,
        Norm::Group { groups: 8 },
    ] {
        for name in [
            "mlp-res-3",
            "mlp-plain-3",
            "cifar-resnet-8",
            "preact-resnet-8",
        ] {
            let opts = PresetOptions {
                norm,
                width: 16,
                ..PresetOptions::for_dataset(&cifar)
            };
            let spec = preset(name, &opts).unwrap();
            let norms: Vec<&LayerSpec> = spec.layers.iter().filter(|l| l.is_norm()).collect();
            if norm == Norm::None {
                assert!(norms.is_empty(), "{name}");
            } else {
                assert!(!norms.is_empty(), "{name} {norm:?}");
                let suffix = format!(".{}", norm.suffix());
                assert!(
                    norms.iter().all(|l| l.name.contains(&suffix)),
                    "{name}: {norms:?}"
                );
                assert!(
                    norms.iter().all(|l| match (norm, &l.op) {
                        (Norm::Batch, LayerOp::BatchNorm { .. }) => true,
                        (Norm::Layer, LayerOp::LayerNorm { .. }) => true,
                        (Norm::Group { groups }, LayerOp::GroupNorm { groups: g, .. }) =>
                            groups == *g,
                        _ => false,
                    }),
                    "{name} {norm:?}"
                );
            }
            validate(&spec).unwrap_or_else(|e| panic!("{name} {norm:?}: {e}"));
            // In the post-activation CIFAR blocks the skip adds after the second norm.
            if name == "cifar-resnet-8" && norm != Norm::None {
                let s = &spec.skips[0];
                assert!(s.to.ends_with(&format!("{}2", norm.suffix())), "{s:?}");
            }
        }
    }
}

#[test]
fn normalisations_parse_from_their_names() {
    for n in [
        Norm::None,
        Norm::Batch,
        Norm::Layer,
        Norm::Group { groups: 4 },
    ] {
        assert_eq!(Norm::parse(&n.name()).unwrap(), n);
    }
    assert!(
        Norm::parse("instance")
            .unwrap_err()
            .contains("none, batch, layer or group:G")
    );
    assert!(Norm::parse("group:0").unwrap_err().contains("≥ 1"));
    assert!(Norm::parse("group:x").is_err());
}

/// `reslab train --norm`: a preset with LayerNorm trains; groups that do not divide the width
/// are refused by name (exit 2); `--no-bn` and `--norm` together are refused.
#[test]
fn the_cli_trains_a_preset_with_the_chosen_norm() {
    let dir = common::temp_dir("norms", "cli");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--preset",
            "mlp-res-2",
            "--width",
            "12",
            "--dataset",
            "spirals",
            "--steps",
            "20",
            "--out",
        ];
        let out = dir.join(format!("n{}.reslab.json", extra.len()));
        let out = out.to_string_lossy().to_string();
        args.push(&out);
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_reslab"))
            .args(&args)
            .output()
            .unwrap()
    };
    let ok = run(&["--norm", "layer"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let saved = std::fs::read_to_string(dir.join("n2.reslab.json")).unwrap();
    assert!(
        saved.contains("\"layer_norm\""),
        "the run's spec has LayerNorm layers"
    );
    let bad = run(&["--norm", "group:5", "--seed", "1"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("5 groups do not divide the 12 channels"),
        "{err}"
    );
    let both = run(&["--norm", "layer", "--no-bn"]);
    assert_eq!(both.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `reslab bench` knows the PyTorch script's GroupNorm and LayerNorm CIFAR nets.
#[test]
fn the_bench_runs_the_group_and_layer_norm_cifar_nets() {
    for model in ["cifar-resnet-20-gn", "cifar-resnet-20-ln"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_reslab"))
            .args([
                "bench",
                "--models",
                model,
                "--steps",
                "1",
                "--probe-every",
                "0",
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let line = String::from_utf8_lossy(&o.stdout);
        let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        assert_eq!(v["model"], model);
        assert!(v["samples_per_sec"].as_f64().unwrap() > 0.0);
    }
}

/// LayerNorm's and GroupNorm's γ and β are probed per channel (the BatchNorm panel shows them
/// for networks without BatchNorm): at step 1 the values before the first update (ones and
/// zeros), at step 2 the values the first update left; run files keep them and refuse a probe
/// that does not fit the layout.
#[test]
fn layer_and_group_norm_scales_and_shifts_are_probed_per_channel() {
    let dataset = DatasetSpec::new(DataSource::ColouredMnist {
        palette: Palette::Red,
    });
    let net = preset(
        "cnn-2",
        &PresetOptions {
            norm: Norm::Group { groups: 4 },
            ..PresetOptions::for_dataset(&dataset)
        },
    )
    .unwrap();
    let config = TrainConfig {
        lr: 0.5,
        batch_size: 16,
        duration: Duration::Steps(2),
        probe_every: 1,
        ..TrainConfig::default()
    };
    let mut s = reslab::train::Session::new(
        &validate(&net).unwrap(),
        &config,
        reslab::data::load(&dataset).unwrap(),
        Device::flex().autodiff(),
    )
    .unwrap();
    assert_eq!(s.layout.affine_norms, ["conv1.gn", "conv2.gn"]);
    assert_eq!(s.layout.affine_norm_channels, [16, 32]);
    let first = s.train_step().probe.expect("a probe at step 1");
    assert_eq!(first.affine_norms.len(), 2);
    assert_eq!(first.affine_norms[1].gamma, vec![1.0; 32]);
    assert_eq!(first.affine_norms[1].beta, vec![0.0; 32]);
    let gn = s.model.net.nodes[4]
        .as_ref()
        .and_then(|n| n.group_norm())
        .expect("conv2.gn");
    let gamma_after = floats(gn.gamma.as_ref().unwrap().val().inner());
    let beta_after = floats(gn.beta.as_ref().unwrap().val().inner());
    assert!(gamma_after.iter().any(|&g| g != 1.0), "the step moved γ");
    let second = s.train_step().probe.expect("a probe at step 2");
    assert_eq!(second.affine_norms[1].gamma, gamma_after);
    assert_eq!(second.affine_norms[1].beta, beta_after);

    // Through a run file and back; a probe with the wrong number of channels is refused.
    let mut history = reslab::metrics::History::new(s.layout.clone());
    history.push_probe(second.clone());
    let mut run = reslab::runfile::RunFile::new(
        "gn",
        net.clone(),
        config.clone(),
        dataset.clone(),
        reslab::runfile::Environment::for_device(&DeviceChoice::Cpu),
    );
    run.history = history;
    let bytes = serde_json::to_vec(&run).unwrap();
    let back = reslab::runfile::parse(&bytes).unwrap();
    assert_eq!(
        back.history.latest_probe.unwrap().affine_norms,
        second.affine_norms
    );
    run.history.latest_probe.as_mut().unwrap().affine_norms[0]
        .gamma
        .pop();
    let e = reslab::runfile::parse(&serde_json::to_vec(&run).unwrap()).unwrap_err();
    assert!(e.to_string().contains("history.latest_probe"), "{e}");
}
