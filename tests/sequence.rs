//! The sequence layers: LayerNorm on tokens, self-attention, GELU and the patch embedding,
//! forward and backward against hand computations (in f64, gradients by central differences of
//! the hand computation) on tiny inputs; attention rows sum to 1; token shapes and their errors;
//! the transformer presets.

mod common;

use burn::module::Param;
use burn::nn::{GroupNormConfig, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use common::kernels::{assert_close, floats, values};
use reslab::model::attention::{PatchEmbed, SelfAttention};
use reslab::model::{Act, NodeModule, apply_layer};
use reslab::spec::{
    Activation, InputShape, LayerOp, LayerSpec, NetSpec, PresetOptions, Shape, SkipSpec, SpecError,
    preset, validate,
};

fn device() -> Device {
    Device::flex().autodiff()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &device())
}

/// The gradient of `Σ r·f(x)` by central differences of the hand computation `f`.
fn numeric_grad(f: &dyn Fn(&[f64]) -> Vec<f64>, x: &[f64], r: &[f64]) -> Vec<f32> {
    let loss = |x: &[f64]| f(x).iter().zip(r).map(|(a, b)| a * b).sum::<f64>();
    (0..x.len())
        .map(|i| {
            let h = 1e-5;
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            ((loss(&a) - loss(&b)) / (2.0 * h)) as f32
        })
        .collect()
}

/// The token tensor of an activation.
fn tokens(a: Act) -> Tensor<3> {
    match a {
        Act::Tokens(t) => t,
        other => panic!("expected tokens, got {other:?}"),
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// LayerNorm of each row of `d` values (γ = 1 + 0.1·j, β = 0.05·j).
fn layer_norm_by_hand(x: &[f64], d: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(d) {
        let m = row.iter().sum::<f64>() / d as f64;
        let v = row.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / d as f64;
        for (j, a) in row.iter().enumerate() {
            y.push((a - m) / (v + 1e-5).sqrt() * (1.0 + 0.1 * j as f64) + 0.05 * j as f64);
        }
    }
    y
}

#[test]
fn layer_norm_on_tokens_normalises_each_token_forward_and_backward() {
    let (b, n, d) = (2, 3, 4);
    let xv: Vec<f32> = values(b * n * d, 1).iter().map(|v| 3.0 * v + 0.5).collect();
    let mut gn = GroupNormConfig::new(1, d).init(&device());
    let gamma: Vec<f32> = (0..d).map(|j| 1.0 + 0.1 * j as f32).collect();
    let beta: Vec<f32> = (0..d).map(|j| 0.05 * j as f32).collect();
    gn.gamma = Some(Param::from_tensor(tensor(&gamma, [d])));
    gn.beta = Some(Param::from_tensor(tensor(&beta, [d])));
    let node = NodeModule::Norm(gn);
    let x = tensor(&xv, [b, n, d]).require_grad();
    let op = LayerOp::LayerNorm { epsilon: 1e-5 };
    let y = tokens(apply_layer(&op, Some(&node), Act::Tokens(x.clone())));
    assert_eq!(y.dims(), [b, n, d]);
    let hand = layer_norm_by_hand(&f64s(&xv), d);
    let want: Vec<f32> = hand.iter().map(|&v| v as f32).collect();
    assert_close(&floats(y.clone()), &want, 1e-4, "LayerNorm forward");
    let r = values(b * n * d, 2);
    let grads = (y * tensor(&r, [b, n, d])).sum().backward();
    let dx = floats(x.grad(&grads).unwrap());
    let num = numeric_grad(&|x| layer_norm_by_hand(x, d), &f64s(&xv), &f64s(&r));
    assert_close(&dx, &num, 2e-3, "LayerNorm dx");
}

/// GELU's exact (erf) form and its derivative Φ(x) + x·φ(x).
fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / 2f64.sqrt()))
}

/// erf by its series (|x| ≤ 3 here; the series converges everywhere).
fn erf(x: f64) -> f64 {
    let mut sum = 0.0;
    let mut term = x;
    for k in 0..200 {
        sum += term / (2 * k + 1) as f64;
        term *= -x * x / (k + 1) as f64;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

#[test]
fn gelu_matches_its_erf_form_forward_and_backward() {
    let xv: Vec<f32> = values(24, 3).iter().map(|v| 3.0 * v).collect();
    let x = tensor(&xv, [2, 3, 4]).require_grad();
    let op = LayerOp::Activation {
        function: Activation::Gelu,
    };
    let y = tokens(apply_layer(&op, None, Act::Tokens(x.clone())));
    let want: Vec<f32> = xv.iter().map(|&v| gelu(v as f64) as f32).collect();
    assert_close(&floats(y.clone()), &want, 1e-5, "GELU forward");
    let grads = y.sum().backward();
    let dx = floats(x.grad(&grads).unwrap());
    let pdf = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = |x: f64| 0.5 * (1.0 + erf(x / 2f64.sqrt()));
    let want: Vec<f32> = xv
        .iter()
        .map(|&v| (cdf(v as f64) + v as f64 * pdf(v as f64)) as f32)
        .collect();
    assert_close(&dx, &want, 1e-4, "GELU dx");
}

/// Self-attention by hand: `x` `[n, d]` of one sample, `wqkv` `[d, 3d]`, `bqkv`, `wout` `[d, d]`,
/// `bout`; returns the output `[n, d]` and the attention matrices `[heads, n, n]`.
fn attention_by_hand(
    x: &[f64],
    (n, d, heads): (usize, usize, usize),
    (wqkv, bqkv, wout, bout): (&[f64], &[f64], &[f64], &[f64]),
) -> (Vec<f64>, Vec<f64>) {
    let dh = d / heads;
    let lin = |x: &[f64], w: &[f64], b: &[f64], din: usize, dout: usize| {
        let mut y = vec![0.0; n * dout];
        for t in 0..n {
            for o in 0..dout {
                y[t * dout + o] = b[o]
                    + (0..din)
                        .map(|i| x[t * din + i] * w[i * dout + o])
                        .sum::<f64>();
            }
        }
        y
    };
    let qkv = lin(x, wqkv, bqkv, d, 3 * d);
    let at = |t: usize, part: usize, h: usize, j: usize| qkv[t * 3 * d + part * d + h * dh + j];
    let mut heads_out = vec![0.0; n * d];
    let mut weights = vec![0.0; heads * n * n];
    for h in 0..heads {
        for i in 0..n {
            let scores: Vec<f64> = (0..n)
                .map(|k| {
                    (0..dh)
                        .map(|j| at(i, 0, h, j) * at(k, 1, h, j))
                        .sum::<f64>()
                        / (dh as f64).sqrt()
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for k in 0..n {
                weights[(h * n + i) * n + k] = e[k] / z;
                for j in 0..dh {
                    heads_out[i * d + h * dh + j] += e[k] / z * at(k, 2, h, j);
                }
            }
        }
    }
    (lin(&heads_out, wout, bout, d, d), weights)
}

fn linear(w: &[f32], b: &[f32], din: usize, dout: usize) -> burn::nn::Linear {
    let mut l = LinearConfig::new(din, dout).init(&device());
    l.weight = Param::from_tensor(tensor(w, [din, dout]));
    l.bias = Some(Param::from_tensor(tensor(b, [dout])));
    l
}

#[test]
fn self_attention_matches_a_hand_computation_forward_and_backward() {
    let (b, n, d, heads) = (2, 3, 4, 2);
    let xv = values(b * n * d, 4);
    let wqkv: Vec<f32> = values(d * 3 * d, 5).iter().map(|v| 1.5 * v).collect();
    let bqkv: Vec<f32> = values(3 * d, 6).iter().map(|v| 0.2 * v).collect();
    let wout = values(d * d, 7);
    let bout: Vec<f32> = values(d, 8).iter().map(|v| 0.1 * v).collect();
    let attn = SelfAttention {
        qkv: linear(&wqkv, &bqkv, d, 3 * d),
        out: linear(&wout, &bout, d, d),
        heads,
    };
    let x = tensor(&xv, [b, n, d]).require_grad();
    let (y, weights) = attn.forward_weights(x.clone());
    let params = (f64s(&wqkv), f64s(&bqkv), f64s(&wout), f64s(&bout));
    let p = (&params.0[..], &params.1[..], &params.2[..], &params.3[..]);
    let per_sample = |x: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let (mut y, mut w) = (Vec::new(), Vec::new());
        for s in x.chunks(n * d) {
            let (ys, ws) = attention_by_hand(s, (n, d, heads), p);
            y.extend(ys);
            w.extend(ws);
        }
        (y, w)
    };
    let (want_y, want_w) = per_sample(&f64s(&xv));
    let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
    assert_close(&floats(y.clone()), &f32s(&want_y), 1e-4, "attention output");
    let w = floats(weights);
    assert_close(&w, &f32s(&want_w), 1e-4, "attention weights");
    for (i, row) in w.chunks(n).enumerate() {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
        assert!(row.iter().all(|&a| a > 0.0), "row {i}: {row:?}");
    }
    // The model's layer is this module.
    let node = NodeModule::Attention(attn);
    let op = LayerOp::SelfAttention { heads };
    let via_layer = tokens(apply_layer(&op, Some(&node), Act::Tokens(x.clone())));
    assert_close(&floats(via_layer), &f32s(&want_y), 1e-4, "attention layer");
    // Backward: the input's gradient and the qkv weights'.
    let r = values(b * n * d, 9);
    let grads = (y * tensor(&r, [b, n, d])).sum().backward();
    let dx = floats(x.grad(&grads).unwrap());
    let num = numeric_grad(&|x| per_sample(x).0, &f64s(&xv), &f64s(&r));
    assert_close(&dx, &num, 2e-3, "attention dx");
    let NodeModule::Attention(attn) = &node else {
        unreachable!()
    };
    let dw = floats(attn.qkv.weight.val().grad(&grads).unwrap());
    let xs = f64s(&xv);
    let by_w = |w: &[f64]| {
        let mut y = Vec::new();
        for s in xs.chunks(n * d) {
            y.extend(attention_by_hand(s, (n, d, heads), (w, p.1, p.2, p.3)).0);
        }
        y
    };
    let num_w = numeric_grad(&by_w, &f64s(&wqkv), &f64s(&r));
    assert_close(&dw, &num_w, 2e-3, "attention dW_qkv");
}

#[test]
fn the_patch_embedding_cuts_row_major_patches_and_adds_positions() {
    // One 1×4×4 image, 2×2 patches, dim 2: token t = patch t's values · W + b + position[t].
    let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let (p, dim, n) = (2, 2, 4);
    let w: Vec<f32> = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]; // dim 0: top-left, dim 1: bottom-right
    let g = reslab::model::conv::Geometry {
        batch: 1,
        h: 4,
        w: 4,
        cin: 1,
        cout: dim,
        k: p,
        stride: p,
        pad: 0,
        oh: 2,
        ow: 2,
    };
    let proj = common::kernels::conv_layer(&g, &w, Some(&[0.5, -0.5]), &device());
    let pos: Vec<f32> = (0..n * dim).map(|v| 100.0 * v as f32).collect();
    let embed = PatchEmbed {
        proj,
        position: Param::from_tensor(tensor(&pos, [n, dim])),
    };
    let y = floats(embed.forward(tensor(&img, [1, 1, 4, 4])));
    // Patches (row-major): top-left pixels 0, 2, 8, 10; bottom-right 5, 7, 13, 15.
    let want = [0.5, 104.5, 202.5, 306.5, 408.5, 512.5, 610.5, 714.5];
    assert_close(&y, &want, 1e-6, "patch embedding");
}

/// A tiny token net: 1×8×8 images, patches of 4 (4 tokens of 8), then `body`, pool, head.
fn token_net(body: Vec<LayerSpec>, skips: Vec<SkipSpec>) -> NetSpec {
    let mut layers = vec![LayerSpec::new(
        "embed",
        LayerOp::PatchEmbed { patch: 4, dim: 8 },
    )];
    layers.extend(body);
    layers.push(LayerSpec::new("pool", LayerOp::GlobalAvgPool));
    layers.push(LayerSpec::new("head", LayerOp::Head { outputs: 3 }));
    NetSpec {
        name: "tokens".into(),
        input: InputShape::Image {
            channels: 1,
            height: 8,
            width: 8,
        },
        layers,
        skips,
    }
}

#[test]
fn token_shapes_are_inferred_and_wrong_ones_named() {
    let attn = |heads| LayerSpec::new("attn", LayerOp::SelfAttention { heads });
    let v = validate(&token_net(
        vec![
            LayerSpec::layer_norm("ln"),
            attn(2),
            LayerSpec::linear("fc", 16),
            LayerSpec::batch_norm("bn"),
        ],
        vec![],
    ))
    .unwrap();
    let shapes: Vec<Shape> = v.layers.iter().map(|l| l.output).collect();
    assert_eq!(
        shapes,
        [
            Shape::Tokens(4, 8),
            Shape::Tokens(4, 8),
            Shape::Tokens(4, 8),
            Shape::Tokens(4, 16),
            Shape::Tokens(4, 16),
            Shape::Flat(16),
            Shape::Flat(3)
        ]
    );
    // Parameters: embed 8·16 + 8 + 4·8; ln 16; attn 8·24 + 24 + 8·8 + 8; fc 8·16 + 16; bn 32; head 16·3 + 3.
    assert_eq!(
        v.total_params(),
        (128 + 8 + 32) + 16 + (192 + 24 + 64 + 8) + (128 + 16) + 32 + 51
    );
    let err = |net: NetSpec| validate(&net).unwrap_err();
    assert!(matches!(
        err(token_net(vec![attn(3)], vec![])),
        SpecError::DoesNotDivide {
            field: "heads",
            value: 3,
            size: 8,
            ..
        }
    ));
    let e = err(token_net(vec![attn(3)], vec![])).to_string();
    assert!(
        e.contains("attn: heads = 3 does not divide the 8 features"),
        "{e}"
    );
    let mut net = token_net(vec![], vec![]);
    net.layers[0].op = LayerOp::PatchEmbed { patch: 3, dim: 8 };
    assert!(matches!(
        err(net),
        SpecError::DoesNotDivide {
            field: "patch",
            value: 3,
            size: 8,
            ..
        }
    ));
    // Attention on an image, a convolution on tokens.
    let mut net = token_net(vec![], vec![]);
    net.layers.insert(0, attn(1));
    let e = err(net).to_string();
    assert!(
        e.contains("attn: attn 1 heads needs a token input but gets 1×8×8"),
        "{e}"
    );
    let conv = LayerSpec::conv("conv", 4, 3, 1, 1);
    assert!(matches!(
        err(token_net(vec![conv], vec![])),
        SpecError::WrongInput { .. }
    ));
    // A skip from the image into the tokens, and between different token counts' widths.
    let e = err(token_net(
        vec![attn(2)],
        vec![SkipSpec::identity("input", "attn")],
    ))
    .to_string();
    assert!(e.contains("different kinds"), "{e}");
    let e = err(token_net(
        vec![LayerSpec::linear("fc", 16)],
        vec![SkipSpec::identity("embed", "fc")],
    ))
    .to_string();
    assert!(e.contains("identity shortcut needs equal shapes"), "{e}");
}

#[test]
fn the_transformer_presets_have_their_adds_where_the_papers_put_them() {
    let opts = PresetOptions::default();
    let res = validate(&preset("vit-res-2", &opts).unwrap()).unwrap();
    assert_eq!(res.layers[0].output, Shape::Tokens(16, 64));
    let names: Vec<&str> = res.spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        &names[..7],
        [
            "embed",
            "block1.ln1",
            "block1.attn",
            "block1.ln2",
            "block1.fc1",
            "block1.act",
            "block1.fc2"
        ]
    );
    assert_eq!(names[names.len() - 3..], ["final.ln", "pool", "head"]);
    let edges = |s: &NetSpec| -> Vec<(String, String)> {
        s.skips
            .iter()
            .map(|k| (k.from.clone(), k.to.clone()))
            .collect()
    };
    let e = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        edges(&res.spec),
        [
            e("embed", "block1.attn"),
            e("block1.attn", "block1.fc2"),
            e("block1.fc2", "block2.attn"),
            e("block2.attn", "block2.fc2")
        ]
    );
    let post = preset("vit-postln-2", &opts).unwrap();
    validate(&post).unwrap();
    assert_eq!(
        edges(&post),
        [
            e("embed", "block1.attn"),
            e("block1.ln1", "block1.fc2"),
            e("block1.ln2", "block2.attn"),
            e("block2.ln1", "block2.fc2")
        ]
    );
    // The LayerNorm follows each add in post-LN.
    let i = post.index_of("block1.attn").unwrap();
    assert_eq!(post.layers[i + 1].name, "block1.ln1");
    assert!(!post.layers.iter().any(|l| l.name == "final.ln"));
    // vit-plain-N is vit-res-N without its adds.
    let plain = preset("vit-plain-2", &opts).unwrap();
    assert_eq!(plain.layers, res.spec.without_skips().layers);
    assert!(plain.skips.is_empty());
    // vit-res-12: the reference bench's shapes (16 tokens of 64, 4 heads, MLP 128).
    let v12 = validate(&preset("vit-res-12", &opts).unwrap()).unwrap();
    let per_block =
        2 * 64 + (64 * 192 + 192 + 64 * 64 + 64) + 2 * 64 + (64 * 128 + 128) + (128 * 64 + 64);
    let embed = 49 * 64 + 64 + 16 * 64;
    assert_eq!(
        v12.total_params(),
        (embed + 12 * per_block + 2 * 64 + 64 * 10 + 10) as u64
    );
}

#[test]
fn vit_res_2_trains_on_mnist_above_chance() {
    use reslab::spec::{DatasetSpec, Duration, OptimizerSpec, TrainConfig};
    let dataset = DatasetSpec::from_name("mnist").unwrap();
    let spec = preset("vit-res-2", &PresetOptions::for_dataset(&dataset)).unwrap();
    let config = TrainConfig {
        optimizer: OptimizerSpec::adam(),
        lr: 1e-3,
        batch_size: 64,
        duration: Duration::Steps(120),
        probe_every: 40,
        ..TrainConfig::default()
    };
    let mut s = common::session(&spec, &config, &dataset);
    let mut first = None;
    let mut probes = Vec::new();
    for _ in 0..120 {
        let out = s.train_step();
        first.get_or_insert(out.record.loss);
        // Probes on token layers: one statistics record per layer, the token residual of every
        // token layer, each attention layer's map (rows sum to 1) and entropy (0 to ln 16).
        if let Some(p) = &out.probe {
            assert_eq!(p.layers.len(), spec.layers.len());
            assert_eq!(p.token_residual.len(), s.layout.token_layers.len());
            assert!(
                p.token_residual.iter().all(|r| (0.0..=1.0).contains(r)),
                "{:?}",
                p.token_residual
            );
            assert_eq!(s.layout.attention, ["block1.attn", "block2.attn"]);
            assert_eq!(s.layout.attention_shape, [[4, 16], [4, 16]]);
            for a in &p.attention {
                assert_eq!(a.weights.len(), 4 * 16 * 16);
                for row in a.weights.chunks(16) {
                    let sum: f32 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-4, "{sum}");
                }
                assert!(
                    a.entropy.iter().all(|&e| e > 0.0 && e <= 16f32.ln() + 1e-4),
                    "{:?}",
                    a.entropy
                );
            }
            probes.push(p.clone());
        }
    }
    assert_eq!(probes.len(), 4, "steps 1, 40, 80, 120");
    // The history keeps them as series, and a run file with them loads.
    let mut history = reslab::metrics::History::new(s.layout.clone());
    for p in probes {
        history.push_probe(p);
    }
    let series = reslab::metrics::series::ATTN_ENTROPY;
    assert_eq!(history.get(series, "block2.attn").map(|s| s.len()), Some(4));
    let token = reslab::metrics::series::TOKEN_RESIDUAL;
    assert_eq!(history.get(token, "embed").map(|s| s.len()), Some(4));
    let eval = s.evaluate();
    assert!(
        eval.accuracy > 0.5,
        "vit-res-2 after 120 steps: {} % (chance 10 %), loss {} from {:?}",
        eval.accuracy * 100.0,
        eval.loss,
        first
    );
}

/// The fused GELU (a polynomial erf) against burn's (libm's erf), forward and backward, over
/// values from −8 to 8, on a tensor big enough for several parallel chunks.
#[test]
fn the_fused_gelu_matches_burns_forward_and_backward() {
    let n = 40_000;
    let xv: Vec<f32> = (0..n).map(|i| -8.0 + 16.0 * i as f32 / n as f32).collect();
    let g = values(n, 11);
    let run = |fused: bool| {
        let x = tensor(&xv, [n]).require_grad();
        let y = if fused {
            reslab::model::fused::gelu(x.clone())
        } else {
            burn::tensor::activation::gelu(x.clone())
        };
        let grads = (y.clone() * tensor(&g, [n])).sum().backward();
        (floats(y), floats(x.grad(&grads).unwrap()))
    };
    let ((y, dx), (y_ref, dx_ref)) = (run(true), run(false));
    for i in 0..n {
        assert!(
            (y[i] - y_ref[i]).abs() <= 1e-6 * y_ref[i].abs().max(1.0),
            "y({}) {} vs {}",
            xv[i],
            y[i],
            y_ref[i]
        );
        assert!(
            (dx[i] - dx_ref[i]).abs() <= 2e-6,
            "dx({}) {} vs {}",
            xv[i],
            dx[i],
            dx_ref[i]
        );
    }
}
