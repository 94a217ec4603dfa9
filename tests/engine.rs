//! The model, probes, optimiser and session: every statistic against a hand computation.

use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use reslab::data::{Dataset, Split, Targets, Task};
use reslab::model::probe::{HIST_BINS, layer_stats};
use reslab::model::{Act, Probe, build, param_layout};
use reslab::spec::*;
use reslab::train::{Optimizer, Session};

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

#[test]
fn layer_stats_match_a_hand_computation() {
    let device = Device::flex();
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![-2.0f32, 0.0, 1.0, 3.0, 3.0, 7.0], [2, 3]),
        &device,
    );
    let s = floats(layer_stats(x));
    assert_eq!(s.len(), 5 + HIST_BINS);
    // mean 2, population variance (16 + 4 + 1 + 1 + 1 + 25) / 6 = 8
    assert!((s[0] - 2.0).abs() < 1e-6);
    assert!((s[1] - 8f32.sqrt()).abs() < 1e-5);
    assert_eq!((s[2], s[3]), (-2.0, 7.0));
    // -2 and 0 are ≤ 0
    assert!((s[4] - 2.0 / 6.0).abs() < 1e-6);
    // bins of width 9/32 from -2: -2 -> 0, 0 -> floor(2·32/9) = 7, 1 -> 10, 3 -> 17 (twice),
    // 7 -> 32 clamped to 31.
    let hist = &s[5..];
    let mut expected = [0f32; HIST_BINS];
    for b in [0, 7, 10, 17, 17, 31] {
        expected[b] += 1.0;
    }
    assert_eq!(hist, expected.as_slice());
}

#[test]
fn constant_tensor_goes_to_bin_zero() {
    // The host form (the CPU's) too: it once put a constant layer into the last bin.
    let host = reslab::model::probe::host_layer_stats(&[5.0, 5.0, 5.0]);
    assert_eq!(
        (host[0], host[1], host[2], host[3], host[4]),
        (5.0, 0.0, 5.0, 5.0, 0.0)
    );
    assert_eq!(host[5], 3.0);
    assert_eq!(host[6..].iter().sum::<f32>(), 0.0);
    let device = Device::flex();
    let s = floats(layer_stats(Tensor::<1>::from_floats(
        [5.0, 5.0, 5.0],
        &device,
    )));
    assert_eq!((s[0], s[1], s[2], s[3], s[4]), (5.0, 0.0, 5.0, 5.0, 0.0));
    assert_eq!(s[5], 3.0);
    assert_eq!(s[6..].iter().sum::<f32>(), 0.0);
}

fn dataset(x: Vec<f32>, labels: Vec<u32>, features: usize, classes: usize) -> Dataset {
    let n = labels.len();
    let split = Split {
        x,
        y: Targets::Classes(labels),
        len: n,
    };
    Dataset {
        name: "hand".into(),
        sample_shape: Shape::Flat(features),
        task: Task::Classification { classes },
        valid: split.clone(),
        train: split,
        input_norm: Vec::new(),
        eval_sets: Vec::new(),
    }
}

/// BN sits directly on the input, so its batch statistics depend only on the data, and the
/// running statistics after 3 steps follow burn's rule from the batches the sampler drew.
#[test]
fn batch_norm_running_stats_follow_the_update_rule_after_three_steps() {
    let spec = NetSpec {
        name: "bn".into(),
        input: InputShape::Flat { features: 2 },
        layers: vec![
            LayerSpec::batch_norm("bn"),
            LayerSpec::new("head", LayerOp::Head { outputs: 2 }),
        ],
        skips: vec![],
    };
    let x: Vec<f32> = (0..16).map(|i| ((i * 7) % 11) as f32 * 0.5 - 1.0).collect();
    let labels: Vec<u32> = (0..8).map(|i| i % 2).collect();
    let data = dataset(x.clone(), labels, 2, 2);
    let config = TrainConfig {
        batch_size: 4,
        duration: Duration::Steps(3),
        probe_every: 1,
        ..TrainConfig::default()
    };
    let valid = validate(&spec).unwrap();
    let mut s = Session::new(&valid, &config, data, Device::flex().autodiff()).unwrap();
    let mut sampler = reslab::data::BatchSampler::new(8, 4, config.seed);
    let (mut rm, mut rv) = ([0f64; 2], [1f64; 2]);
    let mut last = None;
    for _ in 0..3 {
        let out = s.train_step();
        let idx = sampler.next_batch().to_vec();
        for c in 0..2 {
            let vals: Vec<f64> = idx.iter().map(|&i| x[i * 2 + c] as f64).collect();
            let mean = vals.iter().sum::<f64>() / 4.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            rm[c] = 0.9 * rm[c] + 0.1 * mean;
            rv[c] = 0.9 * rv[c] + 0.1 * var;
        }
        last = out.probe;
    }
    let bn = &last.unwrap().batch_norms[0];
    for c in 0..2 {
        assert!(
            (bn.running_mean[c] as f64 - rm[c]).abs() < 1e-5,
            "{bn:?} vs {rm:?}"
        );
        assert!(
            (bn.running_var[c] as f64 - rv[c]).abs() < 1e-5,
            "{bn:?} vs {rv:?}"
        );
    }
}

struct GradNorms<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<f32>,
}

impl ModuleVisitor for GradNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !param.val().is_require_grad() {
            return; // BN running statistics
        }
        let g = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        let sq: f64 = floats(g).iter().map(|&v| (v as f64).powi(2)).sum();
        self.out.push(sq.sqrt() as f32);
    }
}

#[test]
fn gradient_norms_equal_the_norms_of_burns_gradients() {
    use burn::module::Module;
    let spec = preset(
        "mlp-res-3",
        &PresetOptions {
            input: Some(InputShape::Flat { features: 5 }),
            width: 6,
            classes: 3,
            ..PresetOptions::default()
        },
    )
    .unwrap();
    let valid = validate(&spec).unwrap();
    let device = Device::flex().autodiff();
    let model = build(&valid, &device, 3);
    let x = reslab::model::input_from_host(
        (0..40).map(|i| (i as f32).sin()).collect(),
        8,
        Shape::Flat(5),
        &device,
    );
    let (logits, _) = model.forward_with(x, Probe::Off, None);
    let loss = logits.square().mean();
    let grads = loss.backward();
    let mut v = GradNorms {
        grads: &grads,
        out: Vec::new(),
    };
    model.net.visit(&mut v);
    let mut opt = Optimizer::new(
        OptimizerSpec::Sgd {
            momentum: 0.0,
            nesterov: false,
        },
        0.0,
    );
    let (_, red) = opt.step(model.net, &grads, 0.1, true);
    let ours: Vec<f32> = red.sums.into_iter().map(|t| floats(t)[0].sqrt()).collect();
    assert_eq!(ours.len(), v.out.len());
    assert_eq!(ours.len(), param_layout(&build(&valid, &device, 3)).len());
    for (a, b) in ours.iter().zip(&v.out) {
        assert!((a - b).abs() <= 1e-5 * b.max(1.0), "{a} vs {b}");
    }
}

#[test]
fn sgd_momentum_and_adam_updates_match_hand_computation() {
    use burn::nn::LinearConfig;
    let device = Device::flex().autodiff();
    let mut lin = LinearConfig::new(2, 1).with_bias(false).init(&device);
    lin.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 2.0], [2, 1]),
        &device,
    ));
    // loss = sum(x·W) with x = [3, 4] gives dL/dW = [3, 4] at every step.
    let x = Tensor::<2>::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 2]), &device);
    let mut opt = Optimizer::new(
        OptimizerSpec::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        0.0,
    );
    for _ in 0..2 {
        let grads = lin.forward(x.clone()).sum().backward();
        lin = opt.step(lin, &grads, 0.1, false).0;
    }
    // buf1 = g, w1 = w0 - 0.1 g; buf2 = 0.9 g + g = 1.9 g, w2 = w1 - 0.19 g = w0 - 0.29 g.
    let w = floats(lin.weight.val());
    assert!((w[0] - (1.0 - 0.29 * 3.0)).abs() < 1e-6, "{w:?}");
    assert!((w[1] - (2.0 - 0.29 * 4.0)).abs() < 1e-6, "{w:?}");

    let mut lin2 = LinearConfig::new(2, 1).with_bias(false).init(&device);
    lin2.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 2.0], [2, 1]),
        &device,
    ));
    let mut adam = Optimizer::new(OptimizerSpec::adam(), 0.0);
    let grads = lin2.forward(x.clone()).sum().backward();
    lin2 = adam.step(lin2, &grads, 0.01, false).0;
    // First Adam step: m̂ = g, v̂ = g², so w -= lr · g / (|g| + ε) ≈ lr · sign(g).
    let w = floats(lin2.weight.val());
    assert!(
        (w[0] - 0.99).abs() < 1e-6 && (w[1] - 1.99).abs() < 1e-6,
        "{w:?}"
    );
}

#[test]
fn layers_and_parameters_have_stable_path_names() {
    let valid = validate(&preset("cifar-resnet-20", &PresetOptions::default()).unwrap()).unwrap();
    let model = build(&valid, &Device::flex(), 0);
    let names: Vec<String> = param_layout(&model).into_iter().map(|p| p.name).collect();
    for expected in [
        "stem.conv.weight",
        "stage2.block1.conv2.weight",
        "stage2.block1.bn2.gamma",
        "stage3.block3.bn2.beta",
        "stage2.block1.bn2.shortcut.weight",
        "stage2.block1.bn2.shortcut.bn.gamma",
        "head.weight",
        "head.bias",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "names are unique");
}

#[test]
fn he_init_has_the_expected_variance_and_seeds_repeat() {
    let spec = preset(
        "mlp-plain-1",
        &PresetOptions {
            width: 256,
            ..PresetOptions::default()
        },
    )
    .unwrap();
    let valid = validate(&spec).unwrap();
    let a = build(&valid, &Device::flex(), 11);
    let b = build(&valid, &Device::flex(), 11);
    let c = build(&valid, &Device::flex(), 12);
    let w = |m: &reslab::model::Model, i: usize| {
        floats(
            m.net.nodes[i]
                .as_ref()
                .and_then(|n| n.linear())
                .unwrap()
                .weight
                .val(),
        )
    };
    let wa = w(&a, 0);
    assert_eq!(wa, w(&b, 0));
    assert_ne!(wa, w(&c, 0));
    let var = wa.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / wa.len() as f64;
    // He normal on fan_in 784: variance 2 / 784.
    assert!((var / (2.0 / 784.0) - 1.0).abs() < 0.02, "{var}");
}

#[test]
fn skip_probes_report_branch_and_shortcut_norms() {
    // fc (zero init) with a skip from the input: the branch is zero, the shortcut is the input.
    let mut fc = LayerSpec::linear("fc", 3);
    fc.init = Init::Zero;
    let spec = NetSpec {
        name: "s".into(),
        input: InputShape::Flat { features: 3 },
        layers: vec![fc, LayerSpec::new("head", LayerOp::Head { outputs: 2 })],
        skips: vec![SkipSpec::identity("input", "fc")],
    };
    let valid = validate(&spec).unwrap();
    let device = Device::flex();
    let model = build(&valid, &device, 0);
    let x = reslab::model::input_from_host(
        vec![1.0, 2.0, 2.0, 0.0, 0.0, 0.0],
        2,
        Shape::Flat(3),
        &device,
    );
    let (_, p) = model.forward_with(x, Probe::On, None);
    let s = floats(p.skips[0].clone());
    assert_eq!(s, vec![0.0, 9.0, 1.0]);
    assert_eq!(p.skip_numel, vec![6]);
    let fc_stats = floats(p.layers[0].clone());
    // The output of fc is the input itself: mean 5/6.
    assert!((fc_stats[0] - 5.0 / 6.0).abs() < 1e-6);
    let _ = Act::Flat(Tensor::<2>::zeros([1, 1], &device));
}

#[test]
fn host_layer_stats_match_the_hand_computation_and_the_device_form() {
    use reslab::model::probe::host_layer_stats;
    let s = host_layer_stats(&[-2.0, 0.0, 1.0, 3.0, 3.0, 7.0]);
    assert!((s[0] - 2.0).abs() < 1e-6);
    assert!((s[1] - 8f32.sqrt()).abs() < 1e-6);
    assert_eq!((s[2], s[3]), (-2.0, 7.0));
    assert!((s[4] - 2.0 / 6.0).abs() < 1e-6);
    let mut expected = [0f32; HIST_BINS];
    for b in [0, 7, 10, 17, 17, 31] {
        expected[b] += 1.0;
    }
    assert_eq!(&s[5..], expected.as_slice());
    // On 4096 pseudo-random values the two forms agree: moments to f32 rounding, counts exactly.
    let values: Vec<f32> = (0..4096u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 8) as f32 / 16_777_216.0 - 0.3) * 5.0)
        .collect();
    let host = host_layer_stats(&values);
    let device = floats(layer_stats(Tensor::<1>::from_floats(
        values.as_slice(),
        &Device::flex(),
    )));
    for k in 0..5 {
        assert!(
            (host[k] - device[k]).abs() <= 1e-4 * device[k].abs().max(1.0),
            "{k}: {host:?} vs {device:?}"
        );
    }
    assert_eq!(&host[5..], &device[5..]);
    assert_eq!(host[5..].iter().sum::<f32>(), 4096.0);
    // Infinite values (a diverging layer) still count every value into some bin.
    let s = host_layer_stats(&[1.0, f32::INFINITY, -2.0, f32::NEG_INFINITY, 0.5]);
    assert_eq!((s[2], s[3]), (f32::NEG_INFINITY, f32::INFINITY));
    assert_eq!(s[5..].iter().sum::<f32>(), 5.0);
    assert!(s[0].is_nan(), "the mean of +inf and -inf");
}

/// `mlp-res-2` on 6 inputs, width 12, 3 classes, on flex without autodiff, seed 5.
fn small_residual_mlp() -> (reslab::spec::ValidSpec, reslab::model::Model) {
    let valid = validate(
        &preset(
            "mlp-res-2",
            &PresetOptions {
                input: Some(InputShape::Flat { features: 6 }),
                width: 12,
                classes: 3,
                ..PresetOptions::default()
            },
        )
        .unwrap(),
    )
    .unwrap();
    let model = build(&valid, &Device::flex(), 5);
    (valid, model)
}

#[test]
fn probes_are_the_same_through_host_and_device_reductions() {
    let (_, mut model) = small_residual_mlp();
    let device = Device::flex();
    let input = || {
        reslab::model::input_from_host(
            (0..48).map(|i| (i as f32 * 0.37).sin()).collect(),
            8,
            Shape::Flat(6),
            &device,
        )
    };
    let (_, on_device) = model.forward_with(input(), Probe::On, None);
    model.host_reductions = true;
    let (_, raw) = model.forward_with(input(), Probe::On, None);
    for (d, r) in on_device.layers.into_iter().zip(raw.layers) {
        let d = floats(d);
        let h = reslab::model::probe::host_layer_stats(&floats(r));
        for k in 0..5 {
            assert!((d[k] - h[k]).abs() <= 1e-5 * d[k].abs().max(1.0));
        }
        assert_eq!(&d[5..], &h[5..]);
    }
}

#[test]
fn a_streaming_forward_hands_over_every_layer_output_in_order() {
    let (valid, mut model) = small_residual_mlp();
    let device = Device::flex();
    model.host_reductions = true;
    let input = || {
        reslab::model::input_from_host(
            (0..48).map(|i| (i as f32 * 0.37).cos()).collect(),
            8,
            Shape::Flat(6),
            &device,
        )
    };
    let (logits, collected) = model.forward_with(input(), Probe::On, None);
    let mut streamed = Vec::new();
    let (logits2, probes) = model.forward_streaming(input(), None, &mut |t| streamed.push(t));
    assert!(probes.layers.is_empty());
    assert_eq!(streamed.len(), valid.layers.len());
    assert_eq!(streamed.len(), collected.layers.len());
    for (k, (a, b)) in streamed.into_iter().zip(collected.layers).enumerate() {
        let a = floats(a);
        assert_eq!(a.len(), 8 * valid.layers[k].output.channels(), "layer {k}");
        assert_eq!(a, floats(b), "layer {k}");
    }
    assert_eq!(floats(logits), floats(logits2));
    assert_eq!(probes.skips.len(), collected.skips.len());
}

/// The host statistics walk their input in lanes, chunks and blocks; at every length around
/// those boundaries they equal a plain one-value-at-a-time computation: moments to f32
/// rounding, extremes, the fraction ≤ 0 and every histogram count exactly.
#[test]
fn host_layer_stats_equal_a_plain_computation_at_every_chunk_boundary() {
    use reslab::model::probe::host_layer_stats;
    for n in [
        1usize, 7, 8, 9, 255, 256, 257, 511, 512, 513, 1001, 4096, 100_003,
    ] {
        let x: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.61).sin() * 2.5 + ((i % 7) as f32) * 0.1 - 0.3)
            .collect();
        let s = host_layer_stats(&x);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let nonpos = x.iter().filter(|&&v| v <= 0.0).count() as f32 / n as f32;
        assert!(
            (s[0] as f64 - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "n {n} mean"
        );
        assert!(
            (s[1] as f64 - var.sqrt()).abs() <= 1e-5 * var.sqrt().max(1.0),
            "n {n} std"
        );
        assert_eq!((s[2], s[3]), (lo, hi), "n {n} extremes");
        assert_eq!(s[4], nonpos, "n {n} fraction ≤ 0");
        let width = (hi - lo).max(f32::MIN_POSITIVE);
        let scale = (1.0 / width) * HIST_BINS as f32;
        let mut hist = vec![0f32; HIST_BINS];
        for &v in &x {
            let t = ((v - lo) * scale).clamp(0.0, (HIST_BINS - 1) as f32);
            hist[t as usize] += 1.0;
        }
        assert_eq!(&s[5..], hist.as_slice(), "n {n} histogram");
    }
}
