//! Construction of a [`Model`] from a [`ValidSpec`], with seeded host-side initialisation.

use super::attention::{PatchEmbed, SelfAttention};
use super::path::{PathVisit, is_buffer, visit_with_path};
use super::{Model, Net, NodeModule, SkipModule};
use crate::spec::{Init, LayerOp, LayerSpec, Shape, Shortcut, SkipInfo, SkipSpec, ValidSpec};
use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{
    BatchNormConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::rng::normal;

/// Standard deviation of a weight initialisation.
pub fn init_std(init: Init, fan_in: usize, fan_out: usize) -> f32 {
    match init {
        Init::He => (2.0 / fan_in as f32).sqrt(),
        Init::Xavier => (2.0 / (fan_in + fan_out) as f32).sqrt(),
        Init::Torch => (1.0 / (3 * fan_in) as f32).sqrt(),
        Init::Zero => 0.0,
    }
}

fn host_normal(rng: &mut ChaCha8Rng, n: usize, std: f32) -> Vec<f32> {
    if std == 0.0 {
        return vec![0.0; n];
    }
    (0..n).map(|_| std * normal(rng)).collect()
}

fn param<const D: usize>(data: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(data, shape), device))
}

/// Builds the module for a valid spec on `device`, initialised from `seed`.
///
/// Weights are drawn on the host from a ChaCha8 generator seeded with `seed` and the layer index,
/// so a seed gives the same network on every backend. Linear weights are `[in, out]`, conv
/// weights `[out, in, k, k]`; biases are zero unless the layer asks for `bias_std`; BatchNorm
/// starts with γ = 1, β = 0, running mean 0 and running variance 1.
pub fn build(spec: &ValidSpec, device: &Device, seed: u64) -> Model {
    let mut nodes = Vec::with_capacity(spec.layers.len());
    let mut input = spec.input;
    for (i, (layer, info)) in spec.spec.layers.iter().zip(&spec.layers).enumerate() {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64);
        nodes.push(build_node(layer, input, device, &mut rng));
        input = info.output;
    }
    let mut skips = Vec::with_capacity(spec.skips.len());
    for (k, (skip, info)) in spec.spec.skips.iter().zip(&spec.skips).enumerate() {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (k as u64 + 1));
        skips.push(build_skip(skip, info, device, &mut rng));
    }
    Model::new(Net { nodes, skips }, spec.clone())
}

/// The module of one layer whose input has shape `input`, its weights drawn from `rng`; `None`
/// for an op without state.
fn build_node(
    layer: &LayerSpec,
    input: Shape,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Option<NodeModule> {
    let bias = |rng: &mut ChaCha8Rng, n: usize| host_normal(rng, n, layer.bias_std);
    match &layer.op {
        LayerOp::Linear {
            out,
            bias: has_bias,
        } => {
            let d = input.channels();
            let mut lin = LinearConfig::new(d, *out).with_bias(*has_bias).init(device);
            let std = init_std(layer.init, d, *out);
            lin.weight = param(host_normal(rng, d * out, std), [d, *out], device);
            if *has_bias {
                lin.bias = Some(param(bias(rng, *out), [*out], device));
            }
            Some(NodeModule::Linear(lin))
        }
        LayerOp::Head { outputs } => {
            let d = input.numel();
            let mut lin = LinearConfig::new(d, *outputs).init(device);
            let std = init_std(layer.init, d, *outputs);
            lin.weight = param(host_normal(rng, d * outputs, std), [d, *outputs], device);
            lin.bias = Some(param(bias(rng, *outputs), [*outputs], device));
            Some(NodeModule::Linear(lin))
        }
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias: has_bias,
        } => {
            let c = input.channels();
            let mut conv = Conv2dConfig::new([c, *out], [*kernel, *kernel])
                .with_stride([*stride, *stride])
                .with_padding(PaddingConfig2d::Explicit(
                    *padding, *padding, *padding, *padding,
                ))
                .with_bias(*has_bias)
                .init(device);
            let fan_in = c * kernel * kernel;
            let std = init_std(layer.init, fan_in, out * kernel * kernel);
            conv.weight = param(
                host_normal(rng, out * fan_in, std),
                [*out, c, *kernel, *kernel],
                device,
            );
            if *has_bias {
                conv.bias = Some(param(bias(rng, *out), [*out], device));
            }
            Some(NodeModule::Conv(conv))
        }
        LayerOp::BatchNorm { momentum, epsilon } => Some(NodeModule::BatchNorm(
            BatchNormConfig::new(input.channels())
                .with_momentum(*momentum)
                .with_epsilon(*epsilon)
                .init(device),
        )),
        LayerOp::LayerNorm { epsilon } => Some(NodeModule::Norm(group_norm(
            1,
            input.channels(),
            *epsilon,
            device,
        ))),
        LayerOp::GroupNorm { groups, epsilon } => Some(NodeModule::Norm(group_norm(
            *groups,
            input.channels(),
            *epsilon,
            device,
        ))),
        LayerOp::PatchEmbed { patch, dim } => Some(NodeModule::Patches(patch_embed(
            layer,
            input,
            (*patch, *dim),
            device,
            rng,
        ))),
        LayerOp::SelfAttention { heads } => Some(NodeModule::Attention(SelfAttention {
            qkv: linear(layer, input.channels(), 3 * input.channels(), device, rng),
            out: linear(layer, input.channels(), input.channels(), device, rng),
            heads: *heads,
        })),
        LayerOp::Activation { .. } | LayerOp::GlobalAvgPool | LayerOp::Flatten => None,
    }
}

/// A Linear map with bias of a sequence layer, its weights drawn by the layer's `init`, its
/// bias by its `bias_std`.
fn linear(
    layer: &LayerSpec,
    d_in: usize,
    d_out: usize,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> Linear {
    let mut lin = LinearConfig::new(d_in, d_out).init(device);
    let std = init_std(layer.init, d_in, d_out);
    lin.weight = param(host_normal(rng, d_in * d_out, std), [d_in, d_out], device);
    lin.bias = Some(param(
        host_normal(rng, d_out, layer.bias_std),
        [d_out],
        device,
    ));
    lin
}

/// Standard deviation of the position embedding's initial values (as ViT implementations and
/// the PyTorch reference draw it).
pub const POSITION_STD: f32 = 0.02;

/// A patch embedding: the projection drawn like a convolution's by the layer's `init`, the
/// position embedding from N(0, [`POSITION_STD`]²).
fn patch_embed(
    layer: &LayerSpec,
    input: Shape,
    (patch, dim): (usize, usize),
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> PatchEmbed {
    let Shape::Image(c, h, w) = input else {
        unreachable!("validation guarantees patches of an image")
    };
    let mut proj = Conv2dConfig::new([c, dim], [patch, patch])
        .with_stride([patch, patch])
        .init(device);
    let fan_in = c * patch * patch;
    let std = init_std(layer.init, fan_in, dim * patch * patch);
    proj.weight = param(
        host_normal(rng, dim * fan_in, std),
        [dim, c, patch, patch],
        device,
    );
    proj.bias = Some(param(host_normal(rng, dim, layer.bias_std), [dim], device));
    let n = (h / patch) * (w / patch);
    let position = param(host_normal(rng, n * dim, POSITION_STD), [n, dim], device);
    PatchEmbed { proj, position }
}

/// The module of one skip: its projection (and the projection's BN) and a learnable α.
fn build_skip(
    skip: &SkipSpec,
    info: &SkipInfo,
    device: &Device,
    rng: &mut ChaCha8Rng,
) -> SkipModule {
    let mut module = SkipModule {
        proj_linear: None,
        proj_conv: None,
        proj_bn: None,
        alpha: skip
            .scale
            .learnable
            .then(|| param(vec![skip.scale.value], [1], device)),
    };
    if let Shortcut::Projection { batch_norm } = skip.shortcut {
        let (cin, cout) = (info.from_shape.channels(), info.to_shape.channels());
        let std = init_std(Init::He, cin, cout);
        match info.from_shape {
            Shape::Flat(_) | Shape::Tokens(..) => {
                let mut lin = LinearConfig::new(cin, cout).with_bias(false).init(device);
                lin.weight = param(host_normal(rng, cin * cout, std), [cin, cout], device);
                module.proj_linear = Some(lin);
            }
            Shape::Image(..) => {
                let mut conv = Conv2dConfig::new([cin, cout], [1, 1])
                    .with_stride([info.stride, info.stride])
                    .with_bias(false)
                    .init(device);
                conv.weight = param(host_normal(rng, cin * cout, std), [cout, cin, 1, 1], device);
                module.proj_conv = Some(conv);
            }
        }
        if batch_norm {
            module.proj_bn = Some(BatchNormConfig::new(cout).init(device));
        }
    }
    module
}

/// One trainable tensor of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// burn's module path, e.g. `nodes.3.Linear.weight`.
    pub module_path: String,
    /// The stable name, e.g. `block1.fc.weight`.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

struct Collector<'a> {
    spec: &'a ValidSpec,
    out: Vec<ParamEntry>,
}

impl PathVisit for Collector<'_> {
    fn visit<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
        if is_buffer(path) {
            return;
        }
        self.out.push(ParamEntry {
            name: stable_name(self.spec, path),
            module_path: path.join("."),
            shape: param.shape().dims::<D>().to_vec(),
        });
    }
}

/// Maps burn's module path (as a list of segments) to the stable parameter name.
///
/// A node's tensors keep their place inside the op's module after the layer's name, without
/// burn's index and variant (`nodes.3.Linear.weight` → `<layer>.weight`, `<layer>.gamma`,
/// `nodes.7.Attention.qkv.weight` → `<layer>.qkv.weight`); skip parameters become
/// `<target>.shortcut.weight`, `<target>.shortcut.bn.gamma`, `<target>.alpha`. These are the
/// names `spec::expected_tensors` lists.
pub fn stable_name(spec: &ValidSpec, path: &[String]) -> String {
    let seg = |i: usize| path.get(i).map(String::as_str).unwrap_or("");
    let index: usize = seg(1).parse().unwrap_or(usize::MAX);
    match seg(0) {
        "nodes" if index < spec.layers.len() && path.len() > 3 => {
            let layer = &spec.layers[index].name;
            format!("{layer}.{}", path[3..].join("."))
        }
        "skips" if index < spec.skips.len() => {
            let to = &spec.layers[spec.skips[index].to].name;
            match seg(2) {
                "alpha" => format!("{to}.alpha"),
                "proj_bn" => format!("{to}.shortcut.bn.{}", seg(3)),
                _ => format!("{to}.shortcut.{}", seg(3)),
            }
        }
        _ => path.join("."),
    }
}

/// Every trainable tensor of a model, in module order, with its stable name.
pub fn param_layout(model: &Model) -> Vec<ParamEntry> {
    let c = Collector {
        spec: &model.spec,
        out: Vec::new(),
    };
    visit_with_path(&model.net, c).out
}

/// A GroupNorm module (γ = 1, β = 0, as PyTorch and burn initialise it); one group is LayerNorm.
fn group_norm(groups: usize, channels: usize, epsilon: f64, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(epsilon)
        .init(device)
}
