//! The fused CPU kernels (`model::fused`) against burn's own operations and hand computations:
//! the numbers must not change when the fast path is taken.

use burn::module::Param;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use reslab::model::fused::{self, FusedRule, FusedStep, optimizer_step_host};

mod common;
use common::kernels::on_threads;

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// A BatchNorm with non-trivial γ and β, the same in both copies.
fn bn_pair(channels: usize, device: &Device) -> (BatchNorm, BatchNorm) {
    let make = || {
        let mut bn = BatchNormConfig::new(channels).init(device);
        let gamma: Vec<f32> = (0..channels).map(|c| 0.5 + 0.25 * c as f32).collect();
        let beta: Vec<f32> = (0..channels).map(|c| 0.1 * c as f32 - 0.2).collect();
        bn.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(gamma, [channels]),
            device,
        ));
        bn.beta = Param::from_tensor(Tensor::from_data(TensorData::new(beta, [channels]), device));
        bn
    };
    (make(), make())
}

/// Forward output, running statistics after two steps, and the gradients of x, γ and β under
/// a weighted-sum loss, through burn's BatchNorm and through the fused kernel.
fn compare_with_burn<const D: usize>(shape: [usize; D]) {
    let device = Device::flex().autodiff();
    let channels = shape[1];
    let (reference, ours) = bn_pair(channels, &device);
    let x = Tensor::<D>::random(shape, Distribution::Normal(0.5, 2.0), &device).require_grad();
    let n: usize = shape.iter().product();
    let weights = Tensor::<D>::from_data(
        TensorData::new(
            (0..n)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
            shape,
        ),
        &device,
    );
    let mut results = Vec::new();
    for (bn, fused_path) in [(&reference, false), (&ours, true)] {
        let run = |x: Tensor<D>| {
            if fused_path {
                fused::batch_norm(bn, x)
            } else {
                bn.forward(x)
            }
        };
        let _ = run(x.clone()); // a first step moves the running statistics
        let y = run(x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        results.push((
            floats(y),
            floats(bn.running_mean.value_sync()),
            floats(bn.running_var.value_sync()),
            floats(x.grad(&grads).unwrap()),
            floats(bn.gamma.val().grad(&grads).unwrap()),
            floats(bn.beta.val().grad(&grads).unwrap()),
        ));
    }
    let (r, f) = (&results[0], &results[1]);
    assert_close(&f.0, &r.0, 1e-5, "output");
    assert_close(&f.1, &r.1, 1e-5, "running mean");
    assert_close(&f.2, &r.2, 1e-5, "running var");
    assert_close(&f.3, &r.3, 1e-4, "dx");
    assert_close(&f.4, &r.4, 1e-4, "dgamma");
    assert_close(&f.5, &r.5, 1e-4, "dbeta");
}

#[test]
fn fused_batch_norm_matches_burn_on_flat_inputs() {
    compare_with_burn([64, 12]);
}

#[test]
fn fused_batch_norm_matches_burn_on_images() {
    compare_with_burn([6, 5, 7, 9]);
}

/// One channel of four values: mean 2.5, biased variance 1.25, hand-computed output and
/// gradients of `loss = Σ w·y`.
#[test]
fn fused_batch_norm_matches_a_hand_computation() {
    let device = Device::flex().autodiff();
    let mut bn = BatchNormConfig::new(1).with_epsilon(1e-12).init(&device);
    bn.gamma = Param::from_tensor(Tensor::from_floats([2.0], &device));
    bn.beta = Param::from_tensor(Tensor::from_floats([1.0], &device));
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1]),
        &device,
    )
    .require_grad();
    let w = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.0, -1.0], [4, 1]),
        &device,
    );
    let y = fused::batch_norm(&bn, x.clone());
    let sd = 1.25f32.sqrt();
    let xhat: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .map(|v| (v - 2.5) / sd)
        .collect();
    let expect: Vec<f32> = xhat.iter().map(|h| 2.0 * h + 1.0).collect();
    assert_close(&floats(y.clone()), &expect, 1e-6, "y");
    // Running statistics after one step from (0, 1) with momentum 0.1.
    assert_close(
        &floats(bn.running_mean.value_sync()),
        &[0.25],
        1e-6,
        "running mean",
    );
    assert_close(
        &floats(bn.running_var.value_sync()),
        &[0.9 + 0.125],
        1e-6,
        "running var",
    );
    let grads = (y * w.clone()).sum().backward();
    // dβ = Σw = 0, dγ = Σ w·x̂ = x̂0 − x̂3, dx = γ/σ·(w − mean(w) − x̂·mean(w·x̂)).
    let g = [1.0f32, 0.0, 0.0, -1.0];
    let mean_wx = (xhat[0] - xhat[3]) / 4.0;
    let dx: Vec<f32> = (0..4)
        .map(|i| 2.0 / sd * (g[i] - 0.0 - xhat[i] * mean_wx))
        .collect();
    assert_close(&floats(x.grad(&grads).unwrap()), &dx, 1e-5, "dx");
    assert_close(
        &floats(bn.gamma.val().grad(&grads).unwrap()),
        &[xhat[0] - xhat[3]],
        1e-5,
        "dgamma",
    );
    assert_close(
        &floats(bn.beta.val().grad(&grads).unwrap()),
        &[0.0],
        1e-6,
        "dbeta",
    );
}

/// Under `loss = Σ y` the incoming gradient is a broadcast view (stride 0), not a dense buffer:
/// the backward reads it through its layout. With a plain sum, dx is 0 and dβ counts the values.
#[test]
fn fused_batch_norm_backward_reads_a_broadcast_gradient() {
    let device = Device::flex().autodiff();
    let (_, bn) = bn_pair(4, &device);
    let x =
        Tensor::<4>::random([3, 4, 2, 5], Distribution::Normal(1.0, 3.0), &device).require_grad();
    let grads = fused::batch_norm(&bn, x.clone()).sum().backward();
    let dx = floats(x.grad(&grads).unwrap());
    assert_eq!(dx.len(), 120);
    assert!(dx.iter().all(|v| v.abs() < 1e-5), "{dx:?}");
    assert_close(
        &floats(bn.beta.val().grad(&grads).unwrap()),
        &[30.0; 4],
        1e-6,
        "dbeta",
    );
    assert_close(
        &floats(bn.gamma.val().grad(&grads).unwrap()),
        &[0.0; 4],
        1e-4,
        "dgamma",
    );
}

/// Outside training (no autodiff, or BN frozen) the fused path is burn's inference forward.
#[test]
fn fused_batch_norm_uses_running_statistics_without_autodiff() {
    let device = Device::flex();
    let (reference, ours) = bn_pair(3, &device);
    let x = Tensor::<2>::random([8, 3], Distribution::Normal(0.0, 1.0), &device);
    let a = floats(reference.forward(x.clone()));
    let b = floats(fused::batch_norm(&ours, x));
    assert_eq!(a, b);
    assert_eq!(floats(ours.running_mean.value_sync()), vec![0.0; 3]);
}

/// PyTorch's rules in f64, one element at a time.
fn reference_step(
    w: f64,
    g: f64,
    m: Option<f64>,
    v: Option<f64>,
    rule: &str,
    t: i32,
) -> (f64, f64, f64) {
    let (lr, wd) = (0.1, 0.01);
    match rule {
        "sgd" => {
            let g = g + wd * w;
            let buf = m.map_or(g, |m| 0.9 * m + g);
            (w - lr * buf, buf, 0.0)
        }
        "nesterov" => {
            let g = g + wd * w;
            let buf = m.map_or(g, |m| 0.9 * m + g);
            (w - lr * (g + 0.9 * buf), buf, 0.0)
        }
        "adam" | "adamw" => {
            let (b1, b2, eps) = (0.9, 0.999, 1e-8);
            let (w0, g) = if rule == "adamw" {
                (w * (1.0 - lr * wd), g)
            } else {
                (w, g + wd * w)
            };
            let m = b1 * m.unwrap_or(0.0) + (1.0 - b1) * g;
            let v = b2 * v.unwrap_or(0.0) + (1.0 - b2) * g * g;
            let mh = m / (1.0 - b1.powi(t));
            let vh = v / (1.0 - b2.powi(t));
            (w0 - lr * mh / (vh.sqrt() + eps), m, v)
        }
        _ => unreachable!(),
    }
}

fn fused_rule(rule: &str, t: i32) -> (FusedRule, f32) {
    let (lr, wd) = (0.1f64, 0.01f64);
    match rule {
        "sgd" | "nesterov" => (
            FusedRule::Sgd {
                momentum: 0.9,
                nesterov: rule == "nesterov",
            },
            wd as f32,
        ),
        _ => {
            let (b1, b2) = (0.9f64, 0.999f64);
            let adamw = rule == "adamw";
            (
                FusedRule::Adam {
                    beta1: b1 as f32,
                    one_minus_beta1: (1.0 - b1) as f32,
                    beta2: b2 as f32,
                    one_minus_beta2: (1.0 - b2) as f32,
                    epsilon: 1e-8,
                    step_size: (lr / (1.0 - b1.powi(t))) as f32,
                    inv_bias2: (1.0 / (1.0 - b2.powi(t))) as f32,
                    decay_factor: adamw.then_some((1.0 - lr * wd) as f32),
                },
                if adamw { 0.0 } else { wd as f32 },
            )
        }
    }
}

/// Two steps of every rule with weight decay over 1,003 values (not a multiple of the kernel's
/// lanes): weights, state and the three sums against the f64 reference.
#[test]
fn fused_optimizer_steps_follow_pytorchs_rules() {
    let n = 1003;
    let w0: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let grads: [Vec<f32>; 2] = [
        (0..n).map(|i| ((i as f32) * 0.11).cos() * 0.5).collect(),
        (0..n).map(|i| ((i as f32) * 0.23).sin() * 0.3).collect(),
    ];
    for rule in ["sgd", "nesterov", "adam", "adamw"] {
        let (mut w, mut m, mut v) = (w0.clone(), Vec::new(), Vec::new());
        let mut rw: Vec<f64> = w0.iter().map(|&x| x as f64).collect();
        let mut rm: Vec<Option<f64>> = vec![None; n];
        let mut rv: Vec<Option<f64>> = vec![None; n];
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            let (fr, wd) = fused_rule(rule, t);
            let (nw, nm, nv, sums) = optimizer_step_host(&w, g, &m, &v, step(0.1, wd, fr));
            let (mut gs, mut ws, mut us) = (0f64, 0f64, 0f64);
            for i in 0..n {
                let (a, b, c) = reference_step(rw[i], g[i] as f64, rm[i], rv[i], rule, t);
                gs += (g[i] as f64).powi(2);
                ws += (w[i] as f64).powi(2);
                us += (nw[i] as f64 - w[i] as f64).powi(2);
                assert!(
                    (nw[i] as f64 - a).abs() < 1e-5,
                    "{rule} step {t} w[{i}]: {} vs {a}",
                    nw[i]
                );
                assert!((nm[i] as f64 - b).abs() < 1e-5, "{rule} step {t} m[{i}]");
                if rule.starts_with("adam") {
                    assert!((nv[i] as f64 - c).abs() < 1e-6, "{rule} step {t} v[{i}]");
                }
                rw[i] = a;
                rm[i] = Some(b);
                rv[i] = Some(c);
            }
            assert!(!rule.starts_with("sgd") || nv.is_empty());
            for (got, want, what) in [
                (sums[0], gs, "Σg²"),
                (sums[1], ws, "Σw²"),
                (sums[2], us, "Σu²"),
            ] {
                assert!(
                    ((got as f64) - want).abs() <= 1e-5 * want.max(1e-3),
                    "{rule} {what}: {got} vs {want}"
                );
            }
            (w, m, v) = (nw, nm, nv);
        }
    }
}

/// SGD without momentum keeps no state.
#[test]
fn plain_sgd_keeps_no_momentum_buffer() {
    let w = vec![1.0f32, -2.0, 3.0];
    let g = vec![0.5f32, 0.5, -1.0];
    let (nw, nm, nv, sums) = optimizer_step_host(
        &w,
        &g,
        &[],
        &[],
        step(
            0.1,
            0.0,
            FusedRule::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
        ),
    );
    assert_eq!(nw, vec![0.95, -2.05, 3.1]);
    assert!(nm.is_empty() && nv.is_empty());
    assert_close(&sums, &[1.5, 14.0, 0.015], 1e-6, "sums");
}

/// The CPU backend's layer statistics read the tensor's own buffer, contiguous or not, and
/// give exactly the host form's numbers.
#[test]
fn fused_layer_stats_equal_the_host_form_on_contiguous_and_strided_tensors() {
    use reslab::model::probe::host_layer_stats;
    let device = Device::flex();
    let values: Vec<f32> = (0..600)
        .map(|i| ((i as f32) * 0.731).sin() * 3.0 - 0.4)
        .collect();
    let t = Tensor::<1>::from_floats(values.as_slice(), &device);
    assert_eq!(
        fused::layer_stats_host(t.clone()),
        host_layer_stats(&values).to_vec()
    );
    // A transposed [20, 30] view: the statistics do not depend on the order of the values.
    let strided = t.reshape([20, 30]).transpose().reshape([600]);
    let got = fused::layer_stats_host(strided);
    let want = host_layer_stats(&values);
    assert_close(&got[..5], &want[..5], 1e-5, "moments");
    assert_eq!(&got[5..], &want[5..], "histogram");
    assert_eq!(got[5..].iter().sum::<f32>(), 600.0);
}

/// The fused step updates a weight tensor in place only when nothing else holds it: a clone
/// kept elsewhere (a snapshot of the model) keeps the old values, and both paths give the same
/// new weights, momentum and sums as the host form.
#[test]
fn the_fused_step_leaves_a_shared_weight_tensor_unchanged() {
    let device = Device::flex();
    let n = 37;
    let w: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos()).collect();
    let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin() * 0.2).collect();
    let rule = FusedRule::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    let (hw, hm, _, hs) = optimizer_step_host(&w, &g, &[], &[], step(0.05, 1e-3, rule));
    let tensor = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
    // Unique: updated in place.
    let (nw, nm, nv, sums) =
        fused::optimizer_step(tensor(&w), tensor(&g), None, None, step(0.05, 1e-3, rule));
    assert_eq!(floats(nw), hw);
    assert_eq!(floats(nm.expect("momentum kept")), hm);
    assert!(nv.is_none());
    assert_eq!(floats(sums), hs.to_vec());
    // Shared: copied, the other holder keeps its values.
    let shared = tensor(&w);
    let snapshot = shared.clone();
    let (nw, _, _, _) =
        fused::optimizer_step(shared, tensor(&g), None, None, step(0.05, 1e-3, rule));
    assert_eq!(floats(nw), hw);
    assert_eq!(floats(snapshot), w);
}

/// The step of a rule at learning rate `lr` with coupled weight decay `weight_decay`.
fn step(lr: f32, weight_decay: f32, rule: FusedRule) -> FusedStep {
    FusedStep {
        lr,
        weight_decay,
        rule,
    }
}

/// BatchNorm's running statistics follow the exact moving average whichever thread takes each
/// step. burn keeps a running state's updates per thread and merges them only when the thread
/// that updated reads it again; the lab's steps run on whichever rayon worker picks them up, so
/// without committing each update at once a step on another thread started from a stale value
/// and the merge averaged the threads' separate averages (two identical runs ended with running
/// variances up to 1.5 apart while every weight was equal).
#[test]
fn running_statistics_are_the_moving_average_whichever_thread_steps() {
    let device = Device::flex().autodiff();
    let bn: BatchNorm = BatchNormConfig::new(2).with_momentum(0.1).init(&device);
    let batch = |k: f32| {
        Tensor::<2>::from_data(
            TensorData::new(vec![k, 2.0 * k, 3.0 * k, 6.0 * k], [2, 2]),
            &device,
        )
    };
    // Step k on its own thread: means (2k, 4k).
    for k in 1..=3 {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = fused::batch_norm(&bn, batch(k as f32));
            });
        });
    }
    let mut expect = [0.0f32, 0.0];
    for k in 1..=3 {
        let m = [2.0 * k as f32, 4.0 * k as f32];
        for c in 0..2 {
            expect[c] = 0.9 * expect[c] + 0.1 * m[c];
        }
    }
    let got = floats(bn.running_mean.value());
    assert_close(
        &got,
        &expect,
        1e-5,
        "running mean after steps on three threads",
    );
}

/// A `rows × cols` flex tensor of values spread over six decades, from `seed`.
fn flex_matrix(rows: usize, cols: usize, seed: u32) -> burn::backend::flex::FlexTensor {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let values: Vec<f32> = (0..rows * cols)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let unit = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            unit * 10f32.powi((state % 7) as i32 - 3)
        })
        .collect();
    burn::backend::flex::FlexTensor::from_data(TensorData::new(values, [rows, cols]))
}

/// The dense blocks' products, two halves of rows on rayon's threads, give burn-flex's one-call
/// product bit for bit, on one thread and on three, for the shapes of the blocks' three products
/// (transposed views included) and sizes that do not fill the register tiles; products outside
/// the split's range are burn-flex's own.
#[test]
fn split_matrix_products_equal_burn_flexs_bit_for_bit() {
    use burn::backend::Flex;
    use burn::backend::ops::FloatTensorOps;
    let bits = |t: burn::backend::flex::FlexTensor| -> Vec<u32> {
        let t = t.to_contiguous();
        t.storage::<f32>().iter().map(|v| v.to_bits()).collect()
    };
    // (m, k, n, lhs transposed, rhs transposed): x·W, xᵀ·dz, dz·Wᵀ at 128 × 128 and batch 128,
    // odd sizes, a tall product, one below the split and one above burn-flex's threshold.
    let shapes = [
        (128, 128, 128, false, false),
        (128, 128, 128, true, false),
        (128, 128, 128, false, true),
        (200, 100, 70, false, false),
        (331, 97, 33, true, true),
        (1024, 64, 16, false, false),
        (128, 64, 64, false, false),
        (128, 784, 128, false, false),
    ];
    for (i, &(m, k, n, ta, tb)) in shapes.iter().enumerate() {
        let seed = 10 * i as u32;
        let a = if ta {
            flex_matrix(k, m, seed + 1).transpose(0, 1)
        } else {
            flex_matrix(m, k, seed + 1)
        };
        let b = if tb {
            flex_matrix(n, k, seed + 2).transpose(0, 1)
        } else {
            flex_matrix(k, n, seed + 2)
        };
        let want = bits(Flex::float_matmul(a.clone(), b.clone()));
        for threads in [1, 3] {
            let got = on_threads(threads, || bits(fused::matmul(a.clone(), b.clone())));
            assert!(
                got == want,
                "{m}×{k}·{k}×{n} (transposed {ta}, {tb}) on {threads} threads differs from burn-flex's"
            );
        }
    }
}
