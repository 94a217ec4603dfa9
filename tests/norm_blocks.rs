//! The fused convolutional block with the normalisations other than BatchNorm in training
//! (`model::conv::BlockNorm`): GroupNorm and LayerNorm (GroupNorm with one group) forward and
//! backward, and BatchNorm at inference with its running statistics folded in, each against
//! burn's own layers run one by one; and whole models evaluated fused and layer by layer.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig};
use burn::tensor::{Device, Tensor, TensorData, activation};
use reslab::data::{Split, Targets};
use reslab::model::conv::{self, BlockNorm, Geometry};
use reslab::spec::{
    DataSource, DatasetSpec, Duration, Norm, Palette, PresetOptions, TrainConfig, preset,
};
use reslab::train::{EvalData, EvalOptions, NormMode, evaluate};

mod common;
use common::kernels::{assert_close, assert_close_at, conv_layer, floats, values};

/// A convolution of geometry `g` with fixed weights and a bias.
fn conv_with_bias(g: &Geometry, device: &Device) -> Conv2d {
    let bias: Vec<f32> = (0..g.cout).map(|k| 0.1 * k as f32 - 0.3).collect();
    let w = values(g.cout * g.cin * g.k * g.k, 6);
    conv_layer(g, &w, Some(&bias), device)
}

fn group_layer(groups: usize, c: usize, device: &Device) -> GroupNorm {
    let mut gn = GroupNormConfig::new(groups, c).init(device);
    let gamma: Vec<f32> = (0..c).map(|k| 0.5 + 0.1 * k as f32).collect();
    let beta: Vec<f32> = (0..c).map(|k| 0.05 * k as f32 - 0.2).collect();
    gn.gamma = Some(Param::from_tensor(Tensor::from_floats(
        gamma.as_slice(),
        device,
    )));
    gn.beta = Some(Param::from_tensor(Tensor::from_floats(
        beta.as_slice(),
        device,
    )));
    gn
}

/// What one run of `relu?(α·gn(conv(x)) + x)` yields: the output (NCHW) and the gradients of
/// x, the weight, the bias, γ and β under `loss = Σ y·r`.
struct Run {
    y: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

fn run_group(g: &Geometry, groups: usize, skip: bool, relu: bool, fused: bool) -> Run {
    let device = Device::flex().autodiff();
    let xs = [g.batch, g.cin, g.h, g.w];
    let x = Tensor::<4>::from_data(TensorData::new(values(xs.iter().product(), 5), xs), &device)
        .require_grad();
    let conv = conv_with_bias(g, &device);
    let gn = group_layer(groups, g.cout, &device);
    let alpha = 0.5;
    let shortcut = skip.then(|| x.clone());
    let y = if fused {
        let norm = BlockNorm::Group(&gn);
        assert!(conv::fusable(&device, norm));
        let sc = shortcut.map(|s| (s, alpha));
        conv::conv_block(&conv, norm, x.clone(), (g.stride, g.pad), sc, relu, true).output
    } else {
        let f = gn.forward(conv.forward(x.clone()));
        let h = match shortcut {
            Some(s) => f.mul_scalar(alpha) + s,
            None => f,
        };
        if relu { activation::relu(h) } else { h }
    };
    let os = y.dims();
    let r = Tensor::<4>::from_data(TensorData::new(values(os.iter().product(), 8), os), &device);
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: Option<Tensor<1>>| floats(t.expect("a gradient"));
    Run {
        y: floats(y),
        grads: vec![
            floats(x.grad(&grads).expect("dx")),
            floats(conv.weight.val().grad(&grads).expect("dW")),
            grad(conv.bias.as_ref().unwrap().val().grad(&grads)),
            grad(gn.gamma.as_ref().unwrap().val().grad(&grads)),
            grad(gn.beta.as_ref().unwrap().val().grad(&grads)),
        ],
    }
}

#[test]
fn the_fused_group_norm_block_matches_burns_group_norm_forward_and_backward() {
    let same = Geometry::new(3, 7, 6, 8, 8, 3, 1, 1).unwrap();
    let down = Geometry::new(2, 9, 7, 4, 12, 3, 2, 1).unwrap();
    let wide = Geometry::new(2, 8, 8, 16, 32, 3, 1, 1).unwrap();
    let cases = [
        (same, 1, true, true),
        (same, 4, true, true),
        (same, 8, true, false),
        (same, 2, false, true),
        (down, 1, false, true),
        (down, 3, false, false),
        (down, 12, false, true),
        (wide, 4, false, true),
    ];
    for (g, groups, skip, relu) in cases {
        let f = run_group(&g, groups, skip, relu, true);
        let l = run_group(&g, groups, skip, relu, false);
        let what = |p: &str| format!("{p}: {g:?} groups {groups} skip {skip} relu {relu}");
        assert_close(&f.y, &l.y, 1e-5, &what("output"));
        for (name, (a, b)) in ["dx", "dW", "db", "dγ", "dβ"]
            .iter()
            .zip(f.grads.iter().zip(&l.grads))
        {
            // The bias gradient is its group's centred sum (zero for groups of one channel, up
            // to rounding): compare it at the scale of β's gradient.
            let scale = match *name {
                "db" => l.grads[4].iter().fold(1e-3f32, |m, v| m.max(v.abs())),
                _ => b.iter().fold(1e-3f32, |m, v| m.max(v.abs())),
            };
            assert_close_at(a, b, 2e-4, scale, &what(name));
        }
    }
}

#[test]
fn the_fused_group_norm_block_normalises_a_sample_by_hand() {
    let device = Device::flex();
    let g = Geometry::new(1, 1, 2, 1, 2, 1, 1, 0).unwrap();
    let mut conv = Conv2dConfig::new([1, 2], [1, 1]).init(&device);
    // x = [1, 3] on one channel; weight [1, 1] and bias [0, 4] give z = [[1, 3], [5, 7]].
    conv.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 1.0], [2, 1, 1, 1]),
        &device,
    ));
    conv.bias = Some(Param::from_tensor(Tensor::from_floats([0.0, 4.0], &device)));
    let gn = GroupNormConfig::new(1, 2).init(&device);
    let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 3.0], [1, 1, 1, 2]), &device);
    let y = conv::conv_block(&conv, BlockNorm::Group(&gn), x, (1, 0), None, false, false);
    let s = (5.0f64 + 1e-5).sqrt();
    let want: Vec<f32> = [-3.0, -1.0, 1.0, 3.0]
        .iter()
        .map(|v| (v / s) as f32)
        .collect();
    assert_eq!(g.out_pixels(), 2);
    assert_close(&floats(y.output), &want, 1e-6, "group norm by hand");
}

fn bn_with_running(c: usize, device: &Device) -> BatchNorm {
    let bn = BatchNormConfig::new(c).init(device);
    let gamma: Vec<f32> = (0..c).map(|k| 0.5 + 0.1 * k as f32).collect();
    let beta: Vec<f32> = (0..c).map(|k| 0.05 * k as f32 - 0.2).collect();
    let mean: Vec<f32> = (0..c).map(|k| 0.3 - 0.07 * k as f32).collect();
    let var: Vec<f32> = (0..c).map(|k| 0.4 + 0.2 * k as f32).collect();
    let bn = BatchNorm {
        gamma: Param::from_tensor(Tensor::from_floats(gamma.as_slice(), device)),
        beta: Param::from_tensor(Tensor::from_floats(beta.as_slice(), device)),
        ..bn
    };
    bn.running_mean
        .update(Tensor::from_floats(mean.as_slice(), device));
    bn.running_var
        .update(Tensor::from_floats(var.as_slice(), device));
    bn
}

#[test]
fn the_fused_block_at_inference_uses_the_running_statistics_as_burns_batch_norm() {
    let device = Device::flex().autodiff();
    for (g, relu) in [
        (Geometry::new(3, 7, 6, 8, 8, 3, 1, 1).unwrap(), true),
        (Geometry::new(2, 9, 7, 4, 12, 3, 2, 1).unwrap(), false),
    ] {
        let conv = conv_with_bias(&g, &device).valid();
        let bn = bn_with_running(g.cout, &device).valid();
        let plain = Device::flex();
        let norm = BlockNorm::Batch(&bn);
        assert!(
            conv::fusable(&plain, norm),
            "inference fuses without autodiff"
        );
        assert!(!conv::fusable(&device, norm), "but not with autodiff");
        let xs = [g.batch, g.cin, g.h, g.w];
        let x = Tensor::<4>::from_data(TensorData::new(values(xs.iter().product(), 5), xs), &plain);
        let fused = conv::conv_block(&conv, norm, x.clone(), (g.stride, g.pad), None, relu, false);
        let layers = bn.forward(conv.forward(x));
        let layers = if relu {
            activation::relu(layers)
        } else {
            layers
        };
        let what = format!("inference {g:?} relu {relu}");
        assert_close(&floats(fused.output), &floats(layers), 1e-5, &what);
    }
}

/// Whole models evaluate the same fused and layer by layer, after 20 training steps (so the
/// running statistics and affine maps are not their initial values): BatchNorm under every
/// test-time mode, GroupNorm, LayerNorm and no normalisation (the inference paths of the fused
/// blocks and of the fused plain convolution).
#[test]
fn models_evaluate_the_same_fused_and_layer_by_layer() {
    let dataset = DatasetSpec::new(DataSource::ColouredMnist {
        palette: Palette::Red,
    });
    let config = TrainConfig {
        duration: Duration::Steps(20),
        batch_size: 32,
        ..TrainConfig::default()
    };
    for norm in [
        Norm::Batch,
        Norm::Group { groups: 4 },
        Norm::Layer,
        Norm::None,
    ] {
        let opts = PresetOptions {
            norm,
            ..PresetOptions::for_dataset(&dataset)
        };
        let spec = preset("cnn-3", &opts).unwrap();
        let mut s = common::session(&spec, &config, &dataset);
        while !s.is_done() {
            s.train_step();
        }
        let split = first(&s.data.valid, 96, s.data.sample_shape.numel());
        let (task, shape) = (s.data.task, s.data.sample_shape);
        let data = EvalData {
            split: &split,
            task,
            shape,
        };
        let modes = [
            NormMode::Running,
            NormMode::Batch,
            NormMode::AdaBn { batches: 2 },
            NormMode::Prior { strength: 16.0 },
        ];
        for mode in modes {
            let opts = EvalOptions {
                mode,
                batch: 32,
                keep_outputs: true,
                ..EvalOptions::default()
            };
            s.model.fused_blocks = true;
            let a = evaluate(&s.model, data, &opts, &s.device);
            s.model.fused_blocks = false;
            let b = evaluate(&s.model, data, &opts, &s.device);
            let what = format!("{norm:?} {mode:?}");
            assert_close(&a.outputs, &b.outputs, 1e-4, &what);
            assert!(
                (a.loss - b.loss).abs() < 1e-4,
                "{what}: loss {} vs {}",
                a.loss,
                b.loss
            );
            assert_eq!(a.accuracy, b.accuracy, "{what}: accuracy");
        }
    }
}

/// The first `n` samples of `split` (`numel` values each).
fn first(split: &Split, n: usize, numel: usize) -> Split {
    let y = match &split.y {
        Targets::Classes(c) => Targets::Classes(c[..n].to_vec()),
        Targets::Values(v) => Targets::Values(v[..n].to_vec()),
    };
    Split {
        x: split.x[..n * numel].to_vec(),
        y,
        len: n,
    }
}
