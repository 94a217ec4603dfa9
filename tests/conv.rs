//! The fused convolution path (`model::conv`) against burn's own operations: every product
//! (forward, input gradient, weight gradient) on the direct and the Winograd kernels, and the
//! whole fused block (convolution, BatchNorm statistics and gradients, skip, ReLU) against the
//! same layers run one by one, on small shapes: strides 1 and 2, padding 0 and 1, 1×1 and 3×3
//! kernels, odd sizes, batch 1, channel counts around the 16-wide kernel blocks.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData, activation};
use reslab::model::conv::winograd::{self, Tile};
use reslab::model::conv::{self, BlockNorm, Geometry, direct};
use reslab::model::fused;

mod common;
use common::kernels::{assert_close, assert_close_at, conv_layer, floats, on_threads, values};

/// `[b, c, h, w]` values reordered to `[b, h, w, c]`.
fn to_nhwc(v: &[f32], [b, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for n in 0..b {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out[((n * h + y) * w + x) * c + ch] = v[((n * c + ch) * h + y) * w + x];
                }
            }
        }
    }
    out
}

/// burn's forward output and its gradients for x and the weight under `loss = Σ z·r`, all
/// channels-last, with `r` the output-gradient it used.
struct Reference {
    z: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    r: Vec<f32>,
    x: Vec<f32>,
    w: Vec<f32>,
}

fn reference(g: &Geometry) -> Reference {
    let device = Device::flex().autodiff();
    let xs = [g.batch, g.cin, g.h, g.w];
    let ws = [g.cout, g.cin, g.k, g.k];
    let zs = [g.batch, g.cout, g.oh, g.ow];
    let xv = values(xs.iter().product(), 1);
    let wv = values(ws.iter().product(), 2);
    let rv = values(zs.iter().product(), 3);
    let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), xs), &device).require_grad();
    let w = Tensor::<4>::from_data(TensorData::new(wv.clone(), ws), &device).require_grad();
    let r = Tensor::<4>::from_data(TensorData::new(rv.clone(), zs), &device);
    let options = ConvOptions::new([g.stride; 2], [g.pad; 2], [1, 1], 1);
    let z = conv2d(x.clone(), w.clone(), None, options);
    let grads = (z.clone() * r).sum().backward();
    Reference {
        z: to_nhwc(&floats(z), zs),
        dx: to_nhwc(&floats(x.grad(&grads).unwrap()), xs),
        dw: floats(w.grad(&grads).unwrap()),
        r: to_nhwc(&rv, zs),
        x: to_nhwc(&xv, xs),
        w: wv,
    }
}

/// `(batch, h, w, cin, cout, k, stride, pad)`.
type Shape8 = (usize, usize, usize, usize, usize, usize, usize, usize);

/// The geometries the products are checked on.
const SHAPES: &[Shape8] = &[
    (2, 8, 8, 16, 16, 3, 1, 1),
    (1, 7, 5, 3, 5, 3, 1, 1),
    (3, 9, 7, 20, 33, 3, 1, 1),
    (2, 7, 9, 6, 10, 3, 2, 1),
    (1, 8, 8, 17, 32, 3, 2, 1),
    (2, 6, 5, 4, 7, 3, 1, 0),
    (2, 9, 8, 16, 32, 1, 2, 0),
    (1, 5, 5, 3, 4, 1, 1, 0),
    (2, 5, 6, 4, 3, 5, 2, 2),
];

fn geometries() -> impl Iterator<Item = Geometry> {
    SHAPES
        .iter()
        .map(|&(b, h, w, ci, co, k, s, p)| Geometry::new(b, h, w, ci, co, k, s, p).unwrap())
}

#[test]
fn direct_products_match_burns_convolution() {
    for g in geometries() {
        let r = reference(&g);
        let what = |p: &str| format!("{p} {g:?}");
        assert_close(&direct::forward(&g, &r.x, &r.w), &r.z, 1e-5, &what("z"));
        assert_close(
            &direct::input_grad(&g, &r.r, &r.w),
            &r.dx,
            1e-5,
            &what("dx"),
        );
        assert_close(
            &direct::weight_grad(&g, &r.x, &r.r),
            &r.dw,
            1e-5,
            &what("dw"),
        );
    }
}

#[test]
fn winograd_products_match_burns_convolution() {
    let extra = [
        Geometry::new(1, 13, 11, 32, 24, 3, 1, 1).unwrap(),
        Geometry::new(2, 4, 4, 64, 64, 3, 1, 1).unwrap(),
        // Enough tiles for several blocks, so the products run as several parallel tile
        // ranges (the last one short).
        many_tiles(),
    ];
    for g in geometries().filter(Geometry::is_winograd).chain(extra) {
        let r = reference(&g);
        for tile in [Tile::F2, Tile::F4] {
            let what = |p: &str| format!("{p} {tile:?} {g:?}");
            // F(4×4)'s constants (up to 8 and 1/24) cost a few bits more than F(2×2)'s.
            let tol = if tile == Tile::F2 { 1e-5 } else { 5e-5 };
            let z = winograd::forward(&g, &r.x, &r.w, tile);
            assert_close(&z, &r.z, tol, &what("z"));
            let dx = winograd::input_grad(&g, &r.r, &r.w, tile);
            assert_close(&dx, &r.dx, tol, &what("dx"));
            let dw = winograd::weight_grad(&g, &r.x, &r.r, tile);
            assert_close(&dw, &r.dw, tol, &what("dw"));
        }
    }
}

/// A geometry with enough tiles that a Winograd product splits into several ranges (F(2×2):
/// 1,560 tiles, F(4×4): 448, in blocks of at most 160).
fn many_tiles() -> Geometry {
    Geometry::new(8, 30, 26, 16, 16, 3, 1, 1).unwrap()
}

#[test]
fn winograd_products_do_not_depend_on_the_number_of_threads() {
    let g = many_tiles();
    let r = reference(&g);
    let run = |threads: usize| {
        on_threads(threads, || {
            [Tile::F2, Tile::F4].map(|tile| {
                (
                    winograd::forward(&g, &r.x, &r.w, tile),
                    winograd::input_grad(&g, &r.r, &r.w, tile),
                    winograd::weight_grad(&g, &r.x, &r.r, tile),
                )
            })
        })
    };
    // Bit for bit: the tile ranges and the order their sums are added in are fixed.
    assert_eq!(run(1), run(3));
}

/// Direct products large enough to run in row ranges on rayon's threads (a stride-2 3×3
/// convolution of 16 samples, 16 → 32 channels: the forward product, the input gradient's
/// four-tap phase and the weight gradient's chunk sums all split) give the same values bit
/// for bit on one thread and on three, and match burn's convolution.
#[test]
fn direct_products_do_not_depend_on_the_number_of_threads() {
    let g = Geometry::new(16, 30, 26, 16, 32, 3, 2, 1).unwrap();
    let r = reference(&g);
    let run = |threads: usize| {
        on_threads(threads, || {
            (
                direct::forward(&g, &r.x, &r.w),
                direct::input_grad(&g, &r.r, &r.w),
                direct::weight_grad(&g, &r.x, &r.r),
            )
        })
    };
    let one = run(1);
    assert_close(&one.0, &r.z, 1e-5, "z");
    assert_close(&one.1, &r.dx, 1e-5, "dx");
    assert_close(&one.2, &r.dw, 1e-5, "dw");
    assert!(one == run(3), "the thread count changed a direct product");
}

/// The zero-padded copy the direct products read equals padding by hand, on one thread and on
/// three, for an input large enough that its images are copied on rayon's threads, with
/// different padding before and after (the input gradient's).
#[test]
fn padding_matches_a_hand_copy_on_any_number_of_threads() {
    let (b, h, w, c, lo, hi) = (9, 29, 23, 512, 2, 1);
    let x: Vec<f32> = (0..b * h * w * c)
        .map(|i| (i % 1009) as f32 - 500.0)
        .collect();
    let (hp, wp) = (h + lo + hi, w + lo + hi);
    let mut want = vec![0f32; b * hp * wp * c];
    for n in 0..b {
        for y in 0..h {
            for xx in 0..w {
                for ch in 0..c {
                    want[((n * hp + y + lo) * wp + xx + lo) * c + ch] =
                        x[((n * h + y) * w + xx) * c + ch];
                }
            }
        }
    }
    assert!(want.len() >= 1 << 20, "large enough for the parallel copy");
    for threads in [1, 3] {
        let got = on_threads(threads, || conv::geometry::pad_nhwc(&x, b, h, w, c, lo, hi));
        assert!(got == want, "{threads} threads: the padded copy differs");
    }
}

/// A block large enough that its BatchNorm/ReLU passes run in row ranges on rayon's threads
/// (≥ 2¹⁷ output values) equals the layers one by one, with an identity skip (α = 0.5) and a
/// projection; and its output, conv and BN outputs, running statistics and every gradient are
/// the same bit for bit on one thread and on three.
#[test]
fn a_large_fused_block_matches_the_layers_on_any_number_of_threads() {
    let g = Geometry::new(4, 24, 22, 64, 64, 3, 1, 1).unwrap();
    assert!(g.output_len() >= 1 << 17);
    let run =
        |threads: usize, skip: Skip| on_threads(threads, || run_block(&g, skip, 0.5, true, true));
    for skip in [Skip::Identity, Skip::Projection] {
        compare_block(&g, skip, 0.5, true);
        let (one, three) = (run(1, skip), run(3, skip));
        assert_eq!(one.y, three.y, "{skip:?} output");
        assert_eq!(one.z_sorted, three.z_sorted, "{skip:?} conv");
        assert_eq!(one.h_sorted, three.h_sorted, "{skip:?} BN");
        assert_eq!(one.running, three.running, "{skip:?} running statistics");
        assert_eq!(one.grads, three.grads, "{skip:?} gradients");
    }
}

/// A conv layer with the given weights (and no bias unless asked).
fn bn_layer(c: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(c).init(device);
    let gamma: Vec<f32> = (0..c).map(|k| 0.5 + 0.1 * k as f32).collect();
    let beta: Vec<f32> = (0..c).map(|k| 0.05 * k as f32 - 0.2).collect();
    bn.gamma = Param::from_tensor(Tensor::from_floats(gamma.as_slice(), device));
    bn.beta = Param::from_tensor(Tensor::from_floats(beta.as_slice(), device));
    bn
}

/// How the block's shortcut is made.
#[derive(Clone, Copy, Debug)]
enum Skip {
    None,
    /// The block's own input (identity; the geometry keeps the shape).
    Identity,
    /// Every other pixel of the input, zero channels appended (He et al.'s option A).
    ZeroPad,
    /// A 1×1 convolution with the block's stride, then BatchNorm (option B), itself fused.
    Projection,
}

/// Everything a block run yields, all in NCHW order.
#[derive(Debug)]
struct BlockRun {
    y: Vec<f32>,
    z_sorted: Vec<f32>,
    h_sorted: Vec<f32>,
    running: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

fn sorted(mut v: Vec<f32>) -> Vec<f32> {
    v.sort_by(f32::total_cmp);
    v
}

/// Runs `relu?(α·bn(conv(x)) + shortcut)` twice (the running statistics move) fused or layer
/// by layer, and returns the second run's output, the conv and pre-ReLU values (sorted: the
/// fused path hands them over channels-last), the running statistics and the gradients of x,
/// the weight, the bias, γ, β and the projection's weight.
fn run_block(g: &Geometry, skip: Skip, alpha: f32, relu: bool, fused_path: bool) -> BlockRun {
    let device = Device::flex().autodiff();
    let xs = [g.batch, g.cin, g.h, g.w];
    let x = Tensor::<4>::from_data(TensorData::new(values(xs.iter().product(), 5), xs), &device)
        .require_grad();
    let wv = values(g.cout * g.cin * g.k * g.k, 6);
    let bias: Vec<f32> = (0..g.cout).map(|k| 0.1 * k as f32).collect();
    let conv = conv_layer(g, &wv, Some(&bias), &device);
    let bn = bn_layer(g.cout, &device);
    let pg = Geometry::new(g.batch, g.h, g.w, g.cin, g.cout, 1, g.stride, 0).unwrap();
    let proj = conv_layer(&pg, &values(g.cout * g.cin, 7), None, &device);
    let proj_bn = bn_layer(g.cout, &device);
    let zs = [g.batch, g.cout, g.oh, g.ow];
    let r = Tensor::<4>::from_data(TensorData::new(values(zs.iter().product(), 8), zs), &device);
    let mut out = None;
    for _ in 0..2 {
        let shortcut = match skip {
            Skip::None => None,
            Skip::Identity => Some(x.clone()),
            Skip::ZeroPad => {
                let s = x
                    .clone()
                    .slice(burn::tensor::s![.., .., ..;g.stride, ..;g.stride]);
                let [b, c, h, w] = s.dims();
                let pad = Tensor::<4>::zeros([b, g.cout - c, h, w], &device);
                Some(Tensor::cat(vec![s, pad], 1))
            }
            Skip::Projection if fused_path => Some(
                conv::conv_block(
                    &proj,
                    BlockNorm::Batch(&proj_bn),
                    x.clone(),
                    (g.stride, 0),
                    None,
                    false,
                    false,
                )
                .output,
            ),
            Skip::Projection => Some(fused::batch_norm(&proj_bn, proj.forward(x.clone()))),
        };
        let (y, z, h) = if fused_path {
            let o = conv::conv_block(
                &conv,
                BlockNorm::Batch(&bn),
                x.clone(),
                (g.stride, g.pad),
                shortcut.map(|s| (s, alpha)),
                relu,
                true,
            );
            (o.output, floats(o.conv), floats(o.pre))
        } else {
            let z = conv.forward(x.clone());
            let f = fused::batch_norm(&bn, z.clone());
            let h = match shortcut {
                Some(s) => f.mul_scalar(alpha) + s,
                None => f,
            };
            let y = if relu {
                activation::relu(h.clone())
            } else {
                h.clone()
            };
            (y, floats(z), floats(h))
        };
        out = Some((y, z, h));
    }
    let (y, z, h) = out.unwrap();
    let grads = (y.clone() * r).sum().backward();
    let grad = |t: Option<Tensor<4>>| t.map(floats).unwrap_or_default();
    BlockRun {
        y: floats(y),
        z_sorted: sorted(z),
        h_sorted: sorted(h),
        running: [
            floats(bn.running_mean.value_sync()),
            floats(bn.running_var.value_sync()),
        ]
        .concat(),
        grads: vec![
            grad(x.grad(&grads)),
            grad(conv.weight.val().grad(&grads)),
            conv.bias
                .as_ref()
                .and_then(|b| b.val().grad(&grads))
                .map(floats)
                .unwrap_or_default(),
            floats(bn.gamma.val().grad(&grads).unwrap()),
            floats(bn.beta.val().grad(&grads).unwrap()),
            grad(proj.weight.val().grad(&grads)),
        ],
    }
}

fn compare_block(g: &Geometry, skip: Skip, alpha: f32, relu: bool) {
    let f = run_block(g, skip, alpha, relu, true);
    let l = run_block(g, skip, alpha, relu, false);
    let what = |p: &str| format!("{p}: {g:?} {skip:?} α {alpha} relu {relu}");
    assert_close(&f.y, &l.y, 1e-5, &what("output"));
    assert_close(&f.z_sorted, &l.z_sorted, 1e-5, &what("conv output"));
    assert_close(&f.h_sorted, &l.h_sorted, 1e-5, &what("BN output"));
    assert_close(&f.running, &l.running, 1e-5, &what("running statistics"));
    let names = ["dx", "dW", "db", "dγ", "dβ", "d projection"];
    for (k, (a, b)) in f.grads.iter().zip(&l.grads).enumerate() {
        if k == 2 {
            // The bias before a BatchNorm has a zero gradient up to rounding: compare it at
            // the scale of β's gradient (the same sums before centring).
            let scale = l.grads[4].iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            assert_close_at(a, b, 1e-4, scale, &what(names[k]));
        } else {
            assert_close(a, b, 1e-4, &what(names[k]));
        }
    }
}

#[test]
fn the_fused_block_matches_the_layers_without_a_skip() {
    for &(b, h, w, ci, co, k, s, p) in SHAPES {
        let g = Geometry::new(b, h, w, ci, co, k, s, p).unwrap();
        compare_block(&g, Skip::None, 1.0, true);
    }
    let g = Geometry::new(2, 7, 5, 6, 5, 3, 2, 1).unwrap();
    compare_block(&g, Skip::None, 1.0, false);
}

#[test]
fn the_fused_block_matches_the_layers_with_every_shortcut_kind() {
    let same = Geometry::new(2, 7, 9, 16, 16, 3, 1, 1).unwrap();
    let batch_one = Geometry::new(1, 5, 5, 8, 8, 3, 1, 1).unwrap();
    let down = Geometry::new(2, 9, 7, 8, 16, 3, 2, 1).unwrap();
    for (g, skip) in [
        (same, Skip::Identity),
        (batch_one, Skip::Identity),
        (down, Skip::ZeroPad),
        (down, Skip::Projection),
        (same, Skip::Projection),
    ] {
        compare_block(&g, skip, 1.0, true);
        compare_block(&g, skip, 0.5, true);
    }
    compare_block(&same, Skip::Identity, 0.25, false);
}

/// One fused `conv → BN (+ shortcut) → ReLU` block with stride 1 and padding 1, no probes.
fn relu_block(
    c: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    shortcut: Option<(Tensor<4>, f32)>,
) -> Tensor<4> {
    conv::conv_block(c, BlockNorm::Batch(bn), x, (1, 1), shortcut, true, false).output
}

/// Two fused blocks in a row: the second reads the first's channels-last output as it is, and
/// the gradient reaching the first comes back channels-last; the result equals the layers'.
#[test]
fn chained_fused_blocks_match_the_layers() {
    let g1 = Geometry::new(2, 6, 6, 3, 16, 3, 1, 1).unwrap();
    let g2 = Geometry::new(2, 6, 6, 16, 16, 3, 1, 1).unwrap();
    let run = |fused_path: bool| {
        let device = Device::flex().autodiff();
        let xs = [2, 3, 6, 6];
        let x =
            Tensor::<4>::from_data(TensorData::new(values(72 * 3, 9), xs), &device).require_grad();
        let c1 = conv_layer(&g1, &values(16 * 27, 10), None, &device);
        let c2 = conv_layer(&g2, &values(16 * 144, 11), None, &device);
        let (b1, b2) = (bn_layer(16, &device), bn_layer(16, &device));
        let y = if fused_path {
            let a = relu_block(&c1, &b1, x.clone(), None);
            relu_block(&c2, &b2, a.clone(), Some((a, 1.0)))
        } else {
            let a = activation::relu(fused::batch_norm(&b1, c1.forward(x.clone())));
            let h = fused::batch_norm(&b2, c2.forward(a.clone())) + a;
            activation::relu(h)
        };
        let r =
            Tensor::<4>::from_data(TensorData::new(values(72 * 16, 12), [2, 16, 6, 6]), &device);
        let grads = (y.clone() * r).sum().backward();
        (
            floats(y),
            floats(x.grad(&grads).unwrap()),
            floats(c1.weight.val().grad(&grads).unwrap()),
        )
    };
    let (f, l) = (run(true), run(false));
    assert_close(&f.0, &l.0, 1e-5, "output");
    assert_close(&f.1, &l.1, 1e-4, "dx");
    assert_close(&f.2, &l.2, 1e-4, "dW of the first block");
}

/// A ResNet basic block, `x → A → B (+ x)`: `x` is A's input and B's identity shortcut, and the
/// fused blocks sum its two gradients themselves (B hands its shortcut's gradient to A); the
/// gradient of `x` and of both weights equal the layers', with α = 1 and 0.5, and when `x` is
/// used a third time after the block.
#[test]
fn a_basic_block_sums_its_inputs_two_gradients_like_the_layers() {
    let g = Geometry::new(2, 5, 6, 16, 16, 3, 1, 1).unwrap();
    for (alpha, third_use) in [(1.0, false), (0.5, false), (1.0, true)] {
        let run = |fused_path: bool| {
            let device = Device::flex().autodiff();
            let xs = [2, 16, 5, 6];
            let x = Tensor::<4>::from_data(TensorData::new(values(960, 13), xs), &device)
                .require_grad();
            let c1 = conv_layer(&g, &values(16 * 144, 14), None, &device);
            let c2 = conv_layer(&g, &values(16 * 144, 15), None, &device);
            let (b1, b2) = (bn_layer(16, &device), bn_layer(16, &device));
            let mut y = if fused_path {
                let a = relu_block(&c1, &b1, x.clone(), None);
                let s = Some((x.clone(), alpha));
                relu_block(&c2, &b2, a, s)
            } else {
                let a = activation::relu(fused::batch_norm(&b1, c1.forward(x.clone())));
                let h = fused::batch_norm(&b2, c2.forward(a)).mul_scalar(alpha) + x.clone();
                activation::relu(h)
            };
            if third_use {
                y = y + x.clone().mul_scalar(0.25);
            }
            let r = Tensor::<4>::from_data(TensorData::new(values(960, 16), xs), &device);
            let grads = (y.clone() * r).sum().backward();
            (
                floats(y),
                floats(x.grad(&grads).unwrap()),
                floats(c1.weight.val().grad(&grads).unwrap()),
                floats(c2.weight.val().grad(&grads).unwrap()),
            )
        };
        let (f, l) = (run(true), run(false));
        let what = |w: &str| format!("{w} (alpha {alpha}, third use {third_use})");
        assert_close(&f.0, &l.0, 1e-5, &what("output"));
        assert_close(&f.1, &l.1, 1e-4, &what("dx"));
        assert_close(&f.2, &l.2, 1e-4, &what("dW of A"));
        assert_close(&f.3, &l.3, 1e-4, &what("dW of B"));
    }
}

/// A session of `spec` on 32 random 3×9×7 images in 4 classes, batch 8, probes every step.
fn image_session(spec: &reslab::spec::NetSpec) -> reslab::train::Session {
    use reslab::data::{Dataset, Split, Targets, Task};
    use reslab::spec::{Duration, OptimizerSpec, Shape, TrainConfig, validate};
    let shape = Shape::Image(3, 9, 7);
    let n = 32;
    let split = Split {
        x: values(n * shape.numel(), 21)
            .iter()
            .map(|v| 2.0 * v)
            .collect(),
        y: Targets::Classes((0..n as u32).map(|i| i * 7 % 4).collect()),
        len: n,
    };
    let data = Dataset {
        name: "random images".into(),
        sample_shape: shape,
        task: Task::Classification { classes: 4 },
        train: split.clone(),
        valid: split,
        input_norm: Vec::new(),
        eval_sets: Vec::new(),
    };
    let config = TrainConfig {
        optimizer: OptimizerSpec::Sgd {
            momentum: 0.9,
            nesterov: false,
        },
        lr: 0.05,
        batch_size: 8,
        duration: Duration::Steps(5),
        probe_every: 1,
        ..TrainConfig::default()
    };
    let valid = validate(spec).unwrap();
    reslab::train::Session::new(&valid, &config, data, Device::flex().autodiff()).unwrap()
}

/// The fused convolutional blocks give the numbers of the layer-by-layer path over five
/// training steps: the losses within 1e-4, every probe (layer statistics, skip norms, BN running
/// statistics, gradient and weight norms) within 2e-4, for a CIFAR ResNet with projection
/// shortcuts (fused) and with zero-padding shortcuts, α = 0.5, a projection without BatchNorm
/// (burn's convolution), a learnable α (the layer-by-layer path), the plain net, and
/// convolutions that BatchNorm does not follow (the fused plain convolution, with a bias and a
/// joined ReLU without normalisation, before GroupNorm or LayerNorm, inside residual blocks).
#[test]
fn fused_conv_blocks_train_exactly_like_the_layer_by_layer_path() {
    use reslab::spec::{BranchScale, InputShape, Norm, PresetOptions, Shortcut, preset};
    let base = PresetOptions {
        input: Some(InputShape::Image {
            channels: 3,
            height: 9,
            width: 7,
        }),
        classes: 4,
        ..PresetOptions::default()
    };
    let scale = |value, learnable| BranchScale { value, learnable };
    let variants = [
        ("cifar-resnet-8", base),
        (
            "cifar-resnet-8",
            PresetOptions {
                shortcut: Shortcut::ZeroPad,
                scale: scale(0.5, false),
                ..base
            },
        ),
        (
            "cifar-resnet-8",
            PresetOptions {
                shortcut: Shortcut::Projection { batch_norm: false },
                ..base
            },
        ),
        (
            "cifar-resnet-8",
            PresetOptions {
                scale: scale(0.0, true),
                ..base
            },
        ),
        ("cifar-plain-8", base),
        // Convolutions that BatchNorm does not follow (the fused plain convolution).
        (
            "cnn-3",
            PresetOptions {
                norm: Norm::None,
                ..base
            },
        ),
        (
            "cnn-3",
            PresetOptions {
                norm: Norm::Group { groups: 4 },
                ..base
            },
        ),
        (
            "cnn-3",
            PresetOptions {
                norm: Norm::Layer,
                ..base
            },
        ),
        (
            "cifar-resnet-8",
            PresetOptions {
                norm: Norm::Group { groups: 4 },
                ..base
            },
        ),
        (
            "cifar-resnet-8",
            PresetOptions {
                norm: Norm::None,
                shortcut: Shortcut::ZeroPad,
                ..base
            },
        ),
    ];
    let close = |a: f32, b: f32, tol: f32, what: &str| {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1e-2) || (a.is_nan() && b.is_nan()),
            "{what}: fused {a} vs layer by layer {b}"
        );
    };
    for (name, opts) in variants {
        let spec = preset(name, &opts).unwrap();
        let mut fused = image_session(&spec);
        let mut plain = image_session(&spec);
        plain.model.fused_blocks = false;
        for step in 1..=5 {
            let (a, b) = (fused.train_step(), plain.train_step());
            let at = |what: &str| format!("{name} {:?} step {step} {what}", opts.shortcut);
            close(a.record.loss, b.record.loss, 1e-4, &at("loss"));
            close(
                a.record.grad_norm,
                b.record.grad_norm,
                2e-4,
                &at("grad norm"),
            );
            let (pa, pb) = (a.probe.unwrap(), b.probe.unwrap());
            assert_eq!(pa.layers.len(), pb.layers.len());
            for (k, (x, y)) in pa.layers.iter().zip(&pb.layers).enumerate() {
                let layer = |s: &str| at(&format!("layer {k} {s}"));
                close(x.mean, y.mean, 2e-4, &layer("mean"));
                close(x.std, y.std, 2e-4, &layer("std"));
                close(x.min, y.min, 2e-4, &layer("min"));
                close(x.max, y.max, 2e-4, &layer("max"));
                close(x.frac_nonpos, y.frac_nonpos, 2e-4, &layer("≤ 0"));
                let moved: u32 = x
                    .hist
                    .iter()
                    .zip(&y.hist)
                    .map(|(p, q)| p.abs_diff(*q))
                    .sum();
                assert!(
                    moved <= 2,
                    "{}: {:?} vs {:?}",
                    layer("histogram"),
                    x.hist,
                    y.hist
                );
            }
            assert_eq!(pa.skips.len(), pb.skips.len());
            for (k, (x, y)) in pa.skips.iter().zip(&pb.skips).enumerate() {
                close(
                    x.branch_norm,
                    y.branch_norm,
                    2e-4,
                    &at(&format!("skip {k} branch")),
                );
                close(
                    x.shortcut_norm,
                    y.shortcut_norm,
                    2e-4,
                    &at(&format!("skip {k} shortcut")),
                );
                close(x.alpha, y.alpha, 2e-4, &at(&format!("skip {k} α")));
                assert_eq!(x.numel, y.numel);
            }
            for (k, (x, y)) in pa.batch_norms.iter().zip(&pb.batch_norms).enumerate() {
                for (u, v) in x.running_mean.iter().zip(&y.running_mean) {
                    close(*u, *v, 2e-4, &at(&format!("bn {k} running mean")));
                }
                for (u, v) in x.running_var.iter().zip(&y.running_var) {
                    close(*u, *v, 2e-4, &at(&format!("bn {k} running var")));
                }
            }
            assert_eq!(pa.params.len(), pb.params.len());
            for (k, (x, y)) in pa.params.iter().zip(&pb.params).enumerate() {
                let p = &fused.layout.params[k];
                close(x.grad_norm, y.grad_norm, 2e-4, &at(&format!("{p} grad")));
                close(
                    x.weight_norm,
                    y.weight_norm,
                    2e-4,
                    &at(&format!("{p} weight")),
                );
            }
        }
    }
}

/// The blocked NCHW → NHWC transpose (used for the network's input and for gradients burn sums
/// in logical order) equals a plain one, at sizes around its 16 × 64 blocks, and at a size it
/// transposes on rayon's threads, on one thread and on three.
#[test]
fn the_channels_last_transpose_moves_every_value() {
    for (b, c, s) in [(1, 1, 1), (2, 3, 5), (1, 16, 64), (2, 17, 65), (3, 33, 130)] {
        let v = values(b * c * s, 13);
        let t = conv::layout::nchw_to_nhwc(&v, b, c, s);
        assert_eq!(t, to_nhwc(&v, [b, c, s, 1]), "[{b}, {c}, {s}]");
    }
    let (b, c, s) = (7, 3, 28 * 28 * 16 + 3);
    assert!(
        b * c * s >= 1 << 18,
        "large enough for the parallel transpose"
    );
    let v = values(b * c * s, 17);
    let want = to_nhwc(&v, [b, c, s, 1]);
    for threads in [1, 3] {
        let t = on_threads(threads, || conv::layout::nchw_to_nhwc(&v, b, c, s));
        assert!(t == want, "{threads} threads: [{b}, {c}, {s}]");
    }
}
