//! NetSpec validation, shape inference, parameter counts, FLOPs and presets.

use reslab::spec::*;

fn mlp_spec() -> NetSpec {
    NetSpec {
        name: "t".into(),
        input: InputShape::Flat { features: 4 },
        layers: vec![
            LayerSpec::linear("fc1", 8),
            LayerSpec::relu("act1"),
            LayerSpec::linear("fc2", 8),
            LayerSpec::new("head", LayerOp::Head { outputs: 3 }),
        ],
        skips: vec![],
    }
}

#[test]
fn cifar_resnet_20_with_option_a_has_the_papers_269722_parameters() {
    let opts = PresetOptions {
        shortcut: Shortcut::ZeroPad,
        ..PresetOptions::default()
    };
    let v = validate(&preset("cifar-resnet-20", &opts).unwrap()).unwrap();
    // stem 432 + 32, stage1 13824 + 192, stage2 50688 + 384, stage3 202752 + 768, fc 650.
    assert_eq!(v.total_params(), 269_722);
    assert_eq!(v.output_features(), 10);
    let last_conv = v
        .layers
        .iter()
        .find(|l| l.name == "stage3.block3.conv2")
        .unwrap();
    assert_eq!(last_conv.output, Shape::Image(64, 8, 8));
}

#[test]
fn cifar_resnet_20_with_projections_adds_the_1x1_convs_and_their_bn() {
    let v = validate(&preset("cifar-resnet-20", &PresetOptions::default()).unwrap()).unwrap();
    // 16·32 + 32·64 projection weights, 2·(32 + 64) BN parameters.
    assert_eq!(v.total_params(), 269_722 + 2560 + 192);
    assert_eq!(v.skips.len(), 9);
    assert_eq!(v.skips[3].stride, 2);
}

#[test]
fn plain_and_residual_presets_differ_only_in_skips() {
    let o = PresetOptions::default();
    let res = preset("cifar-resnet-20", &o).unwrap();
    let plain = preset("cifar-plain-20", &o).unwrap();
    assert_eq!(res.layers, plain.layers);
    assert!(plain.skips.is_empty());
    let mres = preset("mlp-res-20", &o).unwrap();
    let mplain = preset("mlp-plain-20", &o).unwrap();
    assert_eq!(mres.layers, mplain.layers);
    assert_eq!(mres.skips.len(), 20);
}

#[test]
fn mlp_res_20_matches_the_reference_scripts_shapes() {
    let v = validate(&preset("mlp-res-20", &PresetOptions::default()).unwrap()).unwrap();
    // 784·128+128, 20·(128·128+128 + 2·128), 128·10+10
    assert_eq!(
        v.total_params(),
        (784 * 128 + 128) + 20 * (128 * 128 + 128 + 256) + 1290
    );
    // forward FLOPs per sample: 2·(784·128 + 20·128² + 1280) for the matmuls, plus element-wise.
    let matmul = 2 * (784 * 128 + 20 * 128 * 128 + 1280) as u64;
    assert!(v.total_flops() > matmul && v.total_flops() < matmul + 20 * 128 * 10);
}

#[test]
fn preact_resnet_validates_and_every_preset_example_builds() {
    for name in PRESET_EXAMPLES {
        let spec = preset(name, &PresetOptions::default()).unwrap();
        let v = validate(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.total_params() > 0, "{name}");
    }
}

#[test]
fn preset_names_are_checked() {
    let o = PresetOptions::default();
    assert!(matches!(
        preset("resnet-20", &o),
        Err(PresetError::Unknown(_))
    ));
    assert!(matches!(
        preset("cifar-resnet-21", &o),
        Err(PresetError::BadDepth { .. })
    ));
    assert!(matches!(
        preset("mlp-res-x", &o),
        Err(PresetError::BadDepth { .. })
    ));
    assert!(matches!(
        preset("mlp-res-0", &o),
        Err(PresetError::BadDepth { .. })
    ));
}

#[test]
fn linear_and_conv_parameters_and_flops_match_hand_counts() {
    let v = validate(&mlp_spec()).unwrap();
    assert_eq!(v.layers[0].params, 4 * 8 + 8);
    assert_eq!(v.layers[0].flops, 2 * 4 * 8);
    assert_eq!(v.layers[1].flops, 8);
    assert_eq!(v.layers[3].params, 8 * 3 + 3);
    let conv = NetSpec {
        name: "c".into(),
        input: InputShape::Image {
            channels: 3,
            height: 9,
            width: 9,
        },
        layers: vec![
            LayerSpec::conv("c1", 5, 3, 2, 1),
            LayerSpec::new("pool", LayerOp::GlobalAvgPool),
            LayerSpec::new("head", LayerOp::Head { outputs: 2 }),
        ],
        skips: vec![],
    };
    let v = validate(&conv).unwrap();
    // (9 + 2 - 3) / 2 + 1 = 5
    assert_eq!(v.layers[0].output, Shape::Image(5, 5, 5));
    assert_eq!(v.layers[0].params, 5 * 3 * 9);
    assert_eq!(v.layers[0].flops, 2 * 3 * 9 * 5 * 25);
    assert_eq!(v.layers[1].output, Shape::Flat(5));
}

#[test]
fn empty_network_is_rejected() {
    let mut s = mlp_spec();
    s.layers.clear();
    assert_eq!(validate(&s), Err(SpecError::Empty));
}

#[test]
fn names_must_be_present_unique_and_not_input() {
    let mut s = mlp_spec();
    s.layers[1].name = " ".into();
    assert_eq!(validate(&s), Err(SpecError::EmptyName { index: 1 }));
    let mut s = mlp_spec();
    s.layers[2].name = "input".into();
    assert_eq!(validate(&s), Err(SpecError::ReservedName { index: 2 }));
    let mut s = mlp_spec();
    s.layers[2].name = "fc1".into();
    let e = validate(&s).unwrap_err();
    assert_eq!(
        e,
        SpecError::DuplicateName {
            name: "fc1".into(),
            first: 0,
            second: 2
        }
    );
    assert!(e.to_string().contains("fc1"));
}

#[test]
fn zero_and_absurd_sizes_name_the_node() {
    let mut s = mlp_spec();
    s.layers[2] = LayerSpec::linear("fc2", 0);
    let e = validate(&s).unwrap_err();
    assert_eq!(
        e,
        SpecError::ZeroSize {
            node: "fc2".into(),
            field: "out"
        }
    );
    let mut s = mlp_spec();
    s.layers[2] = LayerSpec::linear("fc2", 1_000_000);
    assert!(
        matches!(validate(&s), Err(SpecError::TooLarge { node, field: "out", .. }) if node == "fc2")
    );
    let mut s = mlp_spec();
    s.input = InputShape::Flat { features: 0 };
    assert!(matches!(validate(&s), Err(SpecError::ZeroSize { node, .. }) if node == "input"));
    let mut s = mlp_spec();
    s.layers = (0..10_001)
        .map(|i| LayerSpec::relu(format!("a{i}")))
        .collect();
    assert!(matches!(
        validate(&s),
        Err(SpecError::TooManyLayers { count: 10_001 })
    ));
}

#[test]
fn a_network_over_50m_parameters_is_refused_with_its_largest_layer() {
    let mut s = mlp_spec();
    s.input = InputShape::Flat { features: 60_000 };
    s.layers[0] = LayerSpec::linear("huge", 60_000);
    s.layers[2] = LayerSpec::linear("fc2", 8);
    let e = validate(&s).unwrap_err();
    match &e {
        SpecError::TooManyParameters { largest, .. } => assert_eq!(largest, "huge"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("50000000"));
}

#[test]
fn wrong_input_kinds_and_bad_values_are_reported() {
    let mut s = mlp_spec();
    s.layers.insert(0, LayerSpec::conv("c", 4, 3, 1, 1));
    assert!(matches!(validate(&s), Err(SpecError::WrongInput { node, .. }) if node == "c"));
    let mut s = mlp_spec();
    s.layers
        .insert(0, LayerSpec::new("pool", LayerOp::GlobalAvgPool));
    assert!(matches!(validate(&s), Err(SpecError::WrongInput { node, .. }) if node == "pool"));
    let mut s = mlp_spec();
    s.layers[1] = LayerSpec::new(
        "bn",
        LayerOp::BatchNorm {
            momentum: 2.0,
            epsilon: 1e-5,
        },
    );
    assert!(matches!(
        validate(&s),
        Err(SpecError::BadValue {
            field: "momentum",
            ..
        })
    ));
    let mut s = mlp_spec();
    s.layers[0].bias_std = -1.0;
    assert!(matches!(
        validate(&s),
        Err(SpecError::BadValue {
            field: "bias_std",
            ..
        })
    ));
}

#[test]
fn image_nets_must_end_flat_and_kernels_must_fit() {
    let s = NetSpec {
        name: "c".into(),
        input: InputShape::Image {
            channels: 1,
            height: 4,
            width: 4,
        },
        layers: vec![LayerSpec::conv("c1", 2, 3, 1, 1)],
        skips: vec![],
    };
    assert!(matches!(validate(&s), Err(SpecError::OutputNotFlat { node, .. }) if node == "c1"));
    let mut s2 = s.clone();
    s2.layers = vec![LayerSpec::conv("c1", 2, 7, 1, 1)];
    assert!(matches!(validate(&s2), Err(SpecError::KernelTooLarge { node, .. }) if node == "c1"));
}

#[test]
fn skip_errors_name_the_skip_and_nodes() {
    let mut s = mlp_spec();
    s.skips = vec![SkipSpec::identity("nope", "fc2")];
    assert_eq!(
        validate(&s),
        Err(SpecError::UnknownSkipNode {
            index: 0,
            name: "nope".into()
        })
    );
    s.skips = vec![SkipSpec::identity("fc2", "fc2")];
    assert!(matches!(
        validate(&s),
        Err(SpecError::SkipOntoItself { .. })
    ));
    s.skips = vec![SkipSpec::identity("fc2", "fc1")];
    assert!(matches!(validate(&s), Err(SpecError::SkipBackward { .. })));
    s.skips = vec![
        SkipSpec::identity("fc1", "fc2"),
        SkipSpec::identity("act1", "fc2"),
    ];
    assert!(matches!(
        validate(&s),
        Err(SpecError::DuplicateSkipTarget {
            index: 1,
            other: 0,
            ..
        })
    ));
    let mut bad = SkipSpec::identity("fc1", "fc2");
    bad.scale.value = f32::NAN;
    s.skips = vec![bad];
    assert!(matches!(validate(&s), Err(SpecError::BadScale { .. })));
}

#[test]
fn skip_shape_mismatch_needs_a_projection() {
    let mut s = mlp_spec();
    // input has 4 features, fc2 outputs 8: identity is invalid.
    s.skips = vec![SkipSpec::identity("input", "fc2")];
    let e = validate(&s).unwrap_err();
    assert!(matches!(e, SpecError::SkipShapeMismatch { .. }));
    assert!(e.to_string().contains("projection"), "{e}");
    // Zero-padding 4 -> 8 features is allowed, and so is a projection.
    s.skips[0].shortcut = Shortcut::ZeroPad;
    assert!(validate(&s).is_ok());
    s.skips[0].shortcut = Shortcut::Projection { batch_norm: false };
    let v = validate(&s).unwrap();
    assert_eq!(v.skips[0].params, 4 * 8);
    // Zero-padding cannot shrink: fc2 (8) -> head (3).
    s.skips = vec![SkipSpec {
        shortcut: Shortcut::ZeroPad,
        ..SkipSpec::identity("fc2", "head")
    }];
    assert!(matches!(
        validate(&s),
        Err(SpecError::SkipShapeMismatch { .. })
    ));
}

#[test]
fn learnable_alpha_counts_as_one_parameter() {
    let mut s = mlp_spec();
    s.skips = vec![SkipSpec {
        scale: BranchScale::skip_init(),
        ..SkipSpec::identity("fc1", "fc2")
    }];
    let base = validate(&mlp_spec()).unwrap().total_params();
    assert_eq!(validate(&s).unwrap().total_params(), base + 1);
}

#[test]
fn specs_round_trip_through_json() {
    for name in PRESET_EXAMPLES {
        let spec = preset(name, &PresetOptions::default()).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        let back: NetSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }
    let cfg = TrainConfig::default();
    let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn train_config_ranges_are_checked() {
    let ok = TrainConfig::default();
    assert!(ok.validate().is_ok());
    let mut c = ok.clone();
    c.lr = -1.0;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::BadValue { field: "lr", .. })
    ));
    let mut c = ok.clone();
    c.batch_size = 0;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::BadValue {
            field: "batch_size",
            ..
        })
    ));
    let mut c = ok.clone();
    c.optimizer = OptimizerSpec::Sgd {
        momentum: 1.0,
        nesterov: false,
    };
    assert!(c.validate().is_err());
    let mut c = ok;
    c.duration = Duration::Steps(0);
    assert!(c.validate().is_err());
}

#[test]
fn schedules_give_the_hand_computed_rates() {
    let mut c = TrainConfig {
        lr: 0.1,
        warmup_steps: 4,
        ..TrainConfig::default()
    };
    assert!((c.lr_at(0, 100) - 0.025).abs() < 1e-12);
    assert!((c.lr_at(3, 100) - 0.1).abs() < 1e-12);
    assert_eq!(c.lr_at(50, 100), 0.1);
    c.schedule = Schedule::Step {
        every: 10,
        gamma: 0.5,
    };
    assert!((c.lr_at(4 + 25, 100) - 0.025).abs() < 1e-12);
    c.schedule = Schedule::Cosine {
        final_fraction: 0.0,
    };
    // Halfway through the post-warm-up span the cosine is at half the peak.
    assert!((c.lr_at(4 + 48, 100) - 0.05).abs() < 1e-9);
    assert!(c.lr_at(99, 100) < 0.001);
}

#[test]
fn dataset_names_parse_and_bad_ones_explain() {
    assert_eq!(
        DatasetSpec::from_name("mnist").unwrap().source,
        DataSource::Mnist10k
    );
    assert!(matches!(
        DatasetSpec::from_name("cifar10:/data/c").unwrap().source,
        DataSource::Cifar10Dir { .. }
    ));
    assert!(matches!(
        DatasetSpec::from_name("cifar10"),
        Err(DatasetNameError::MissingDir(_))
    ));
    assert!(matches!(
        DatasetSpec::from_name("imagenet"),
        Err(DatasetNameError::Unknown(_))
    ));
}

#[test]
fn preset_options_for_a_dataset_take_its_input_and_classes() {
    let o = PresetOptions::for_dataset(&DatasetSpec::new(DataSource::Mnist10k));
    assert_eq!(
        o.input,
        Some(InputShape::Image {
            channels: 1,
            height: 28,
            width: 28
        })
    );
    assert_eq!(o.classes, 10);
    assert_eq!(o.width, PresetOptions::default().width);
    let spirals = DatasetSpec::from_name("spirals").unwrap();
    let o = PresetOptions::for_dataset(&spirals);
    assert_eq!(o.input, Some(InputShape::Flat { features: 2 }));
    assert_eq!(o.classes, spirals.expected_io().1);
}

/// The layer names of the block `prefix` in `spec`, in order.
fn block_names(spec: &NetSpec, prefix: &str) -> Vec<String> {
    spec.layers
        .iter()
        .filter(|l| l.name.starts_with(prefix))
        .map(|l| l.name.trim_start_matches(prefix).to_string())
        .collect()
}

#[test]
fn the_two_block_layouts_put_bn_activation_and_the_skip_where_the_papers_do() {
    for bn in [true, false] {
        let opts = PresetOptions {
            norm: if bn { Norm::Batch } else { Norm::None },
            ..PresetOptions::default()
        };
        let post = preset("cifar-resnet-8", &opts).unwrap();
        let pre = preset("preact-resnet-8", &opts).unwrap();
        let (post_names, pre_names): (Vec<&str>, Vec<&str>) = if bn {
            (
                vec!["conv1", "bn1", "act1", "conv2", "bn2", "act2"],
                vec!["bn1", "act1", "conv1", "bn2", "act2", "conv2"],
            )
        } else {
            (
                vec!["conv1", "act1", "conv2", "act2"],
                vec!["act1", "conv1", "act2", "conv2"],
            )
        };
        assert_eq!(block_names(&post, "stage2.block1."), post_names);
        assert_eq!(block_names(&pre, "stage2.block1."), pre_names);
        // Post-activation: the skip adds after the second BN (the second conv without BN) and
        // starts at the previous block's last activation; pre-activation: it adds after the
        // second conv and starts at the previous block's second conv.
        let into = |s: &NetSpec, to: &str| s.skips.iter().find(|k| k.to == to).cloned();
        let post_to = if bn {
            "stage2.block1.bn2"
        } else {
            "stage2.block1.conv2"
        };
        assert_eq!(into(&post, post_to).unwrap().from, "stage1.block1.act2");
        assert_eq!(
            into(&pre, "stage2.block1.conv2").unwrap().from,
            "stage1.block1.conv2"
        );
        // The first conv of a stage's first block strides; the second never does.
        let stride = |s: &NetSpec, name: &str| match s.layers[s.index_of(name).unwrap()].op {
            LayerOp::Conv2d { stride, .. } => stride,
            _ => 0,
        };
        assert_eq!(stride(&post, "stage2.block1.conv1"), 2);
        assert_eq!(stride(&post, "stage2.block1.conv2"), 1);
        assert_eq!(stride(&pre, "stage3.block1.conv1"), 2);
    }
}

#[test]
fn every_data_kind_has_one_label_name_and_default_source() {
    for kind in DataKind::ALL {
        let source = kind.default_source("/data/x".into());
        assert_eq!(DataKind::of(&source), kind, "{kind:?}");
        assert!(!kind.label().is_empty());
        let name = if kind.needs_folder() {
            format!("{}:/data/x", kind.name())
        } else {
            kind.name().to_string()
        };
        assert_eq!(
            DatasetSpec::from_name(&name).unwrap().source,
            source,
            "{name}"
        );
    }
    assert!(matches!(
        DatasetSpec::from_name("spirals:/data/x"),
        Err(DatasetNameError::Unknown(_))
    ));
    assert!(matches!(
        DatasetSpec::from_name("fashion:"),
        Err(DatasetNameError::MissingDir(_))
    ));
}

/// Reads `good`, then `good` with an unknown `field` added (at `at`, a JSON pointer to an
/// object): the first is accepted, the second refused naming the field.
fn strict<T: serde::de::DeserializeOwned>(good: serde_json::Value, at: &str, field: &str) {
    let what = good.to_string();
    if let Err(e) = serde_json::from_value::<T>(good.clone()) {
        panic!("{what} is refused: {e}");
    }
    let mut bad = good;
    bad.pointer_mut(at).unwrap()[field] = serde_json::json!(1);
    match serde_json::from_value::<T>(bad) {
        Ok(_) => panic!("{what} with \"{field}\" at {at} is accepted"),
        Err(e) => assert!(e.to_string().contains(field), "{e}"),
    }
}

#[test]
fn every_spec_type_refuses_unknown_fields_and_accepts_every_tag() {
    use serde_json::json;
    let ops = [
        json!({"type": "linear", "out": 4}),
        json!({"type": "conv2d", "out": 4, "kernel": 3}),
        json!({"type": "batch_norm"}),
        json!({"type": "activation", "function": "gelu"}),
        json!({"type": "global_avg_pool"}),
        json!({"type": "flatten"}),
        json!({"type": "head", "outputs": 2}),
    ];
    for op in ops {
        strict::<LayerOp>(op.clone(), "", "bais");
        strict::<LayerSpec>(json!({"name": "x", "op": op}), "", "bias_sd");
    }
    for shape in [
        json!({"kind": "flat", "features": 2}),
        json!({"kind": "image", "channels": 1, "height": 2, "width": 2}),
    ] {
        strict::<InputShape>(shape, "", "depth");
    }
    for shortcut in [
        json!({"type": "identity"}),
        json!({"type": "zero_pad"}),
        json!({"type": "projection"}),
        json!({"type": "projection", "batch_norm": false}),
    ] {
        strict::<Shortcut>(shortcut.clone(), "", "stride");
        strict::<SkipSpec>(
            json!({"from": "a", "to": "b", "shortcut": shortcut}),
            "",
            "form",
        );
    }
    strict::<BranchScale>(json!({"value": 0.0, "learnable": true}), "", "learned");
    let spec = serde_json::to_value(mlp_spec()).unwrap();
    strict::<NetSpec>(spec.clone(), "", "skip");
    strict::<NetSpec>(spec, "/layers/0", "bais");
}

#[test]
fn configs_and_datasets_refuse_unknown_fields_and_accept_every_tag() {
    use serde_json::json;
    strict::<TrainConfig>(json!({}), "", "learning_rate");
    for optimizer in [
        json!({"type": "sgd", "momentum": 0.9}),
        json!({"type": "adam", "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8}),
        json!({"type": "adam_w", "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8}),
    ] {
        strict::<OptimizerSpec>(optimizer.clone(), "", "nesterow");
        strict::<TrainConfig>(json!({"optimizer": optimizer}), "/optimizer", "beta3");
    }
    for schedule in [
        json!({"type": "constant"}),
        json!({"type": "step", "every": 3, "gamma": 0.5}),
        json!({"type": "cosine"}),
    ] {
        strict::<Schedule>(schedule, "", "final");
    }
    // `duration` is externally tagged: a second key is refused (serde does not name it).
    for duration in [json!({"steps": 3}), json!({"epochs": 3})] {
        assert!(serde_json::from_value::<TrainConfig>(json!({"duration": duration})).is_ok());
        let mut two = duration.clone();
        two["steps_"] = json!(1);
        assert!(serde_json::from_value::<TrainConfig>(json!({"duration": two})).is_err());
    }
    for kind in DataKind::ALL {
        let d = DatasetSpec::new(kind.default_source("/data".into()));
        let v = serde_json::to_value(&d).unwrap();
        strict::<DataSource>(v["source"].clone(), "", "sample");
        strict::<DatasetSpec>(v, "", "validation_fraktion");
    }
}

#[test]
fn layer_names_whose_tensors_collide_are_refused_naming_both() {
    // `optim.` is the optimiser's state in weight files.
    assert!(reslab::metrics::Checkpoint::MOMENT1.starts_with(RESERVED_PREFIX));
    assert!(reslab::metrics::Checkpoint::MOMENT2.starts_with(RESERVED_PREFIX));
    let mut spec = mlp_spec();
    spec.layers[2].name = "optim.m.fc1".into();
    let e = validate(&spec).unwrap_err();
    assert!(
        matches!(e, SpecError::ReservedPrefix { index: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("\"optim.m.fc1\""), "{e}");
    // A layer `fc2.shortcut` beside a projection into `fc2`.
    let mut spec = mlp_spec();
    spec.layers.insert(3, LayerSpec::linear("fc2.shortcut", 8));
    spec.skips.push(SkipSpec {
        shortcut: Shortcut::Projection { batch_norm: true },
        ..SkipSpec::identity("fc1", "fc2")
    });
    let e = validate(&spec).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("layer \"fc2.shortcut\"")
            && text.contains("skip #0 into \"fc2\"")
            && text.contains("\"fc2.shortcut.weight\""),
        "{text}"
    );
    assert_eq!(e.node(), Some("fc2"));
    // A BatchNorm `fc2.shortcut.bn` beside the projection's BatchNorm.
    let mut spec = mlp_spec();
    spec.layers
        .insert(3, LayerSpec::batch_norm("fc2.shortcut.bn"));
    spec.skips.push(SkipSpec {
        shortcut: Shortcut::Projection { batch_norm: true },
        ..SkipSpec::identity("fc1", "fc2")
    });
    let text = validate(&spec).unwrap_err().to_string();
    assert!(text.contains("\"fc2.shortcut.bn.gamma\""), "{text}");
    // Names that only look alike are fine: `fc2.alpha` holds `fc2.alpha.weight`.
    let mut spec = mlp_spec();
    spec.layers.insert(3, LayerSpec::linear("fc2.alpha", 8));
    spec.skips.push(SkipSpec {
        scale: BranchScale::skip_init(),
        ..SkipSpec::identity("fc1", "fc2")
    });
    validate(&spec).unwrap();
}

#[test]
fn the_memory_estimate_counts_the_evaluation_chunks_and_the_data() {
    let wide = NetSpec {
        name: "wide".into(),
        input: InputShape::Image {
            channels: 1,
            height: 28,
            width: 28,
        },
        layers: vec![
            LayerSpec::conv("conv", 1024, 3, 1, 1),
            LayerSpec::new("pool", LayerOp::GlobalAvgPool),
            LayerSpec::new("head", LayerOp::Head { outputs: 10 }),
        ],
        skips: vec![],
    };
    let v = validate(&wide).unwrap();
    let batch1 = TrainConfig {
        batch_size: 1,
        ..TrainConfig::default()
    };
    let mnist = DatasetSpec::new(DataSource::Mnist10k);
    let e = estimate_memory(&v, &batch1, &mnist);
    // 500 samples of 1,024 × 28 × 28 outputs, three copies: the 4.7 GB the issue measured.
    assert!(e.activations < 20_000_000, "{}", e.describe());
    assert!(e.evaluation > 4_500_000_000, "{}", e.describe());
    assert!(e.total() >= e.evaluation);
    // MNIST-10k: 10,000 samples of 784 features and a label.
    assert_eq!(e.data, 10_000 * 785 * 4);
    // At a batch above the chunk the training step is the larger; both are not added.
    let big = TrainConfig {
        batch_size: 1000,
        ..TrainConfig::default()
    };
    let e = estimate_memory(&v, &big, &mnist);
    assert!(e.activations > e.evaluation);
    assert_eq!(
        e.total(),
        e.parameters + e.optimizer + e.activations + e.data
    );
    // The largest synthetic set allowed is counted in full.
    let gaussians = |samples, dim| {
        DatasetSpec::new(DataSource::Gaussians {
            samples,
            classes: 2,
            dim,
            spread: 1.0,
        })
    };
    let d = gaussians(262_144, 1024);
    assert!(d.validate().is_ok());
    let e = estimate_memory(&v, &batch1, &d);
    assert!(e.data > 1 << 30, "{}", e.describe());
    let (field, reason) = gaussians(1_000_000, 4096).validate().unwrap_err();
    assert_eq!(field, "source.samples");
    assert!(reason.contains("4096 features"), "{reason}");
}
