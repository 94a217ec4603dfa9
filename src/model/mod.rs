//! Builds a burn module from a validated [`NetSpec`](crate::spec::NetSpec) on a runtime
//! [`Device`](burn::tensor::Device) and runs it forward with probes on or off.
//!
//! Every layer and parameter has a stable path name taken from the spec (e.g.
//! `stage2.block1.conv2.weight`), used in probes, gradient statistics and weight files.

mod act;
pub mod attention;
mod build;
pub mod conv;
mod dense;
mod device;
pub mod fused;
mod node;
mod norm_act;
mod serve;
pub use dense::{DenseBlockOut, dense_block, fusable};
pub use norm_act::{Epilogue, Stats};
pub mod path;
pub mod probe;

pub use act::Act;
pub(crate) use act::map_act;
pub use build::{ParamEntry, build, param_layout, stable_name};
pub use device::{DeviceError, catch_quietly, make_device, panic_text, remote_device};
pub use node::{NodeModule, apply as apply_layer};
pub use serve::serve;

use crate::spec::{Activation, LayerOp, Shape, Shortcut, ValidSpec};
use burn::module::{Module, Param};
use burn::nn::{BatchNorm, Linear, conv::Conv2d};
use burn::tensor::{Tensor, s};
use conv::BlockNorm;
use node::apply;

/// The trainable state of one skip: an optional projection (and its BN), an optional α.
#[derive(Module, Debug)]
pub struct SkipModule {
    /// Projection of a flat shortcut, `weight: [in, out]`, no bias.
    pub proj_linear: Option<Linear>,
    /// 1×1 projection of an image shortcut, `weight: [out, in, 1, 1]`.
    pub proj_conv: Option<Conv2d>,
    /// BatchNorm after the projection.
    pub proj_bn: Option<BatchNorm>,
    /// A learnable branch scale α, `[1]`.
    pub alpha: Option<Param<Tensor<1>>>,
}

/// The burn module: one [`NodeModule`] per layer and one [`SkipModule`] per skip.
#[derive(Module, Debug)]
pub struct Net {
    /// One entry per layer of the spec, in order (`None` for a layer without state).
    pub nodes: Vec<Option<NodeModule>>,
    /// One entry per skip of the spec, in order.
    pub skips: Vec<SkipModule>,
}

/// A network ready to run: the burn module and the validated spec it was built from.
#[derive(Debug)]
pub struct Model {
    /// The trainable module.
    pub net: Net,
    /// The spec with inferred shapes.
    pub spec: ValidSpec,
    /// Whether each layer's output feeds a later skip (so the forward pass keeps it).
    keep: Vec<bool>,
    /// Layer probes hand back the raw outputs for [`probe::host_layer_stats`] instead of
    /// reducing them with tensor ops; right on the CPU backend, where the host is the device.
    pub host_reductions: bool,
    /// Optional per-channel noise after every BatchNorm layer ("noisy BN"); `None` (the default)
    /// leaves the network as its spec describes it.
    pub bn_noise: Option<BnNoise>,
    /// Whether `Linear → BatchNorm (→ ReLU)` blocks run as one fused node where they can
    /// ([`dense_block`]); on by default, off to compare against the layer-by-layer path.
    pub fused_blocks: bool,
}

/// A random shift and scale applied after BatchNorm layers, `y ← y · scale + shift`: the "noisy
/// BN" of Santurkar et al. 2018, who redraw it every step to show that BN helps even when the
/// layer inputs' distributions keep moving.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BnNoise {
    /// Per layer index: `(scale, shift)` for the BatchNorm layers that get noise, `None` (or a
    /// missing entry) for every other layer. Each vector holds either one value per channel
    /// (`[C]`, shared by the batch) or one value per activation (the layer output's whole
    /// shape, e.g. `[batch, C]`, row-major).
    pub per_layer: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

/// On-device probe tensors of one forward pass, read back in one transaction.
#[derive(Debug, Default)]
pub struct ForwardProbes {
    /// Per layer `[mean, std, min, max, frac ≤ 0, hist[32]]` of its output (after its skip),
    /// or, when [`Model::host_reductions`] is set, the output itself, flattened.
    pub layers: Vec<Tensor<1>>,
    /// Per skip `[sum((f_to)²), sum(shortcut²), α]`: the residual branch before scaling, the
    /// shortcut, and the branch scale.
    pub skips: Vec<Tensor<1>>,
    /// Per skip, the number of values the sums run over (batch × sample size).
    pub skip_numel: Vec<usize>,
    /// Per layer whose output is tokens, in layer order, `[‖X − 1·x̄ᵀ‖ / ‖X‖]`
    /// ([`probe::token_residual_of`]).
    pub tokens: Vec<Tensor<1>>,
    /// Per self-attention layer, each head's attention averaged over the batch (`heads ×
    /// tokens × tokens`) then each head's mean row entropy (`heads`).
    pub attention: Vec<Tensor<1>>,
}

/// Where a probed forward pass puts what it records: each layer's output (its statistics, its
/// flattened values, or handed to a sink as soon as it exists) and each skip's sums, by skip.
struct Recorder<'s> {
    probes: ForwardProbes,
    skip_slots: Vec<Option<(Tensor<1>, usize)>>,
    sink: Option<&'s mut dyn FnMut(Tensor<1>)>,
    /// Keep the flattened values instead of on-device statistics ([`Model::host_reductions`]).
    host: bool,
}

impl<'s> Recorder<'s> {
    fn new(skips: usize, sink: Option<&'s mut dyn FnMut(Tensor<1>)>, host: bool) -> Self {
        Self {
            probes: ForwardProbes {
                skips: Vec::with_capacity(skips),
                ..ForwardProbes::default()
            },
            skip_slots: vec![None; skips],
            sink,
            host,
        }
    }

    /// One layer's output.
    fn layer(&mut self, y: &Act) {
        if let Act::Tokens(t) = y {
            self.probes.tokens.push(probe::token_residual_of(t.clone()));
        }
        match self.sink.as_mut() {
            Some(sink) => sink(y.flat_inner()),
            None if self.host => self.probes.layers.push(y.flat_inner()),
            None => self.probes.layers.push(y.stats()),
        }
    }

    /// A fused block's layers (the product, the BatchNorm, the ReLU when it joined) and the
    /// sums of the skip into its BatchNorm.
    fn block(&mut self, b: &FusedBlock, relu: bool) {
        self.layer(&b.conv_or_linear);
        if let Some((k, sums, numel)) = &b.skip_sums {
            self.skip_slots[*k] = Some((sums.clone(), *numel));
        }
        self.layer(&b.pre);
        if relu {
            self.layer(&b.output_values);
        }
    }

    /// The probes, the skips' sums in skip order.
    fn finish(mut self) -> ForwardProbes {
        for (sums, numel) in self.skip_slots.into_iter().flatten() {
            self.probes.skips.push(sums);
            self.probes.skip_numel.push(numel);
        }
        self.probes
    }
}

/// What a forward pass records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing: the fast path.
    Off,
    /// Layer statistics and skip norms.
    On,
}

/// Block deletion for lesion studies: the layers of each deleted range `[start, end]` pass
/// their input through, and the skip into a range's last layer adds the shortcut alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lesion {
    /// The deleted ranges, first and last layer (inclusive).
    ranges: Vec<(usize, usize)>,
}

impl Lesion {
    /// Deletes layers `start..=end` (one block).
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            ranges: vec![(start, end)],
        }
    }

    /// Deletes several blocks at once.
    pub fn blocks(ranges: impl IntoIterator<Item = (usize, usize)>) -> Self {
        Self {
            ranges: ranges.into_iter().collect(),
        }
    }

    /// Whether layer `i` is deleted.
    pub fn deletes(&self, i: usize) -> bool {
        self.ranges.iter().any(|&(a, b)| (a..=b).contains(&i))
    }

    /// Whether a deleted range ends at layer `i` (its skip then adds the shortcut alone).
    pub fn ends_at(&self, i: usize) -> bool {
        self.ranges.iter().any(|&(_, b)| b == i)
    }

    /// Whether any deleted layer lies in `first..=last`.
    pub fn touches(&self, first: usize, last: usize) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= last && first <= b)
    }
}

/// A block [`Model::block_plan`] fuses: the BatchNorm layer's skip, and whether a ReLU joins.
#[derive(Clone, Copy, Debug)]
struct BlockPlan {
    skip: Option<usize>,
    relu: bool,
}

/// What a fused block hands the forward pass.
struct FusedBlock {
    /// The block's output (the ReLU's, or the BatchNorm layer's without one).
    output: Act,
    /// The Linear or Conv2d layer's output, for the probes (convolutions: flat, channels last).
    conv_or_linear: Act,
    /// The BatchNorm layer's output after its skip, for the probes.
    pre: Act,
    /// The output's values for the probes (the output itself, or flat and channels last).
    output_values: Act,
    /// `(skip, [Σf², Σs², α], values summed over)` on probe steps of a block with a skip.
    skip_sums: Option<(usize, Tensor<1>, usize)>,
}

impl Model {
    pub(crate) fn new(net: Net, spec: ValidSpec) -> Self {
        let mut keep = vec![false; spec.layers.len()];
        for s in &spec.skips {
            if let Some(f) = s.from {
                keep[f] = true;
            }
        }
        Self {
            net,
            spec,
            keep,
            host_reductions: false,
            bn_noise: None,
            fused_blocks: true,
        }
    }

    /// A copy for evaluation: no autodiff, batch norm in inference mode (running statistics),
    /// no BatchNorm noise.
    pub fn valid(&self) -> Model {
        Model {
            net: self.net.valid(),
            spec: self.spec.clone(),
            keep: self.keep.clone(),
            host_reductions: self.host_reductions,
            bn_noise: None,
            fused_blocks: self.fused_blocks,
        }
    }

    /// Replaces the module (e.g. after an optimiser step), keeping the spec.
    pub fn with_net(self, net: Net) -> Model {
        Model { net, ..self }
    }

    /// Runs the network: `[batch, sample...] -> [batch, outputs]`.
    pub fn forward(&self, input: Act) -> Tensor<2> {
        self.forward_with(input, Probe::Off, None).0
    }

    /// Runs the network, recording probes when asked and optionally deleting a block.
    pub fn forward_with(
        &self,
        input: Act,
        probe: Probe,
        lesion: Option<&Lesion>,
    ) -> (Tensor<2>, ForwardProbes) {
        self.forward_impl(input, probe, lesion, None)
    }

    /// A probed forward pass that hands each layer's raw output (flattened, as
    /// [`ForwardProbes::layers`] holds it with [`Model::host_reductions`]) to `sink` as soon as
    /// the layer has run, instead of collecting them: the caller can reduce them while the pass
    /// goes on, and no output is kept alive longer than the pass itself keeps it. The returned
    /// probes hold the skip norms; their `layers` is empty.
    pub fn forward_streaming(
        &self,
        input: Act,
        lesion: Option<&Lesion>,
        sink: &mut dyn FnMut(Tensor<1>),
    ) -> (Tensor<2>, ForwardProbes) {
        self.forward_impl(input, Probe::On, lesion, Some(sink))
    }

    fn forward_impl(
        &self,
        input: Act,
        probe: Probe,
        lesion: Option<&Lesion>,
        sink: Option<&mut dyn FnMut(Tensor<1>)>,
    ) -> (Tensor<2>, ForwardProbes) {
        let on = probe == Probe::On;
        let mut rec = Recorder::new(self.spec.skips.len(), sink, self.host_reductions);
        let keep_input = self.spec.skips.iter().any(|s| s.from.is_none());
        let input_kept = keep_input.then(|| input.clone());
        let mut kept: Vec<Option<Act>> = vec![None; self.spec.layers.len()];
        let mut cur = input;
        // Layers before `resume` ran inside a fused block.
        let mut resume = 0;
        for (i, (layer, node)) in self
            .spec
            .spec
            .layers
            .iter()
            .zip(self.net.nodes.iter())
            .enumerate()
        {
            if i < resume {
                continue;
            }
            let source = |k: usize| match self.spec.skips[k].from {
                None => input_kept.clone().expect("input kept for skips"),
                Some(f) => kept[f].clone().expect("source kept for skips"),
            };
            if let Some(plan) = self.block_plan(i, lesion, &cur) {
                let b = self.fused_block(i, plan, &cur, source, on);
                if on {
                    rec.block(&b, plan.relu);
                }
                let last = i + 1 + usize::from(plan.relu);
                if self.keep[last] {
                    kept[last] = Some(b.output.clone());
                }
                cur = b.output;
                resume = last + 1;
                continue;
            }
            if let Some(relu) = self.plain_conv_plan(i, lesion, &cur) {
                let out = self.plain_conv(i, &cur, relu, if on { Some(&mut rec) } else { None });
                let last = i + usize::from(relu);
                if self.keep[last] {
                    kept[last] = Some(out.clone());
                }
                cur = out;
                resume = last + 1;
                continue;
            }
            let deleted = lesion.is_some_and(|l| l.deletes(i));
            let branch_input = cur;
            let attention = node.as_ref().and_then(NodeModule::attention);
            let mut y = match attention {
                _ if deleted => branch_input.clone(),
                Some(attn) if on => {
                    let (out, weights) = attn.forward_weights(branch_input.clone().into_tokens());
                    rec.probes.attention.push(probe::attention_summary(weights));
                    Act::Tokens(out)
                }
                _ => apply(&layer.op, node.as_ref(), branch_input.clone()),
            };
            if !deleted && let Some((scale, shift)) = self.noise_of(i) {
                y = add_bn_noise(y, scale, shift);
            }
            if let Some(k) = self.spec.layers[i].skip_in {
                let deleted_branch = lesion.is_some_and(|l| l.ends_at(i));
                let (joined, sums) = self.join_skip(k, y, source(k), deleted_branch, on);
                rec.skip_slots[k] = sums;
                y = joined;
            }
            if on {
                rec.layer(&y);
            }
            if self.keep[i] {
                kept[i] = Some(y.clone());
            }
            cur = y;
        }
        (cur.into_flat(), rec.finish())
    }

    /// Adds skip `k`'s shortcut of `source` into a layer's output `y`, the branch scaled by α
    /// (or, when the lesion deleted the branch, the shortcut alone). With `probe`, also the
    /// skip's `[Σ branch², Σ shortcut², α]` and the number of values the sums run over.
    fn join_skip(
        &self,
        k: usize,
        y: Act,
        source: Act,
        deleted_branch: bool,
        probe: bool,
    ) -> (Act, Option<(Tensor<1>, usize)>) {
        let sc = self.shortcut(k, source);
        let spec_skip = &self.spec.spec.skips[k];
        let sums = probe.then(|| {
            let alpha_t = match &self.net.skips[k].alpha {
                Some(a) => a.val().inner(),
                None => Tensor::<1>::from_floats([spec_skip.scale.value], &sc.device().inner()),
            };
            let b = if deleted_branch {
                Tensor::<1>::zeros([1], &sc.device().inner())
            } else {
                y.sum_sq()
            };
            let v = Tensor::cat(vec![b, sc.sum_sq(), alpha_t], 0);
            (v, sc.numel())
        });
        let y = if deleted_branch {
            // A deleted block contributes nothing: the output is the shortcut alone.
            sc
        } else {
            let scaled = match &self.net.skips[k].alpha {
                Some(a) => y.mul_alpha(a.val()),
                None if spec_skip.scale.value == 1.0 => y,
                None => y.mul_scalar(spec_skip.scale.value),
            };
            scaled.add(sc)
        };
        (y, sums)
    }

    /// The normalisation of layer `i` as a fused block's: its BatchNorm, or its GroupNorm
    /// (LayerNorm, GroupNorm) on image activations.
    fn block_norm(&self, i: usize) -> Option<BlockNorm<'_>> {
        let node = self.net.nodes.get(i)?.as_ref()?;
        match self.spec.spec.layers[i].op {
            LayerOp::BatchNorm { .. } => node.batch_norm().map(BlockNorm::Batch),
            LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. } => {
                node.group_norm().map(BlockNorm::Group)
            }
            _ => None,
        }
    }

    /// Whether layer `i` starts a block that runs as one fused node: a `Linear` then a
    /// `BatchNorm` ([`dense_block`]) on burn-flex with autodiff in training mode, or a `Conv2d`
    /// then a normalisation where [`conv::fusable`] holds ([`conv::conv_block`]: BatchNorm in
    /// training or, without autodiff, at inference; GroupNorm and LayerNorm always); neither
    /// output feeding a later skip, the first layer receiving no skip, the normalisation's skip
    /// (if any) with a fixed α, no BatchNorm noise, and no lesion touching the block. Returns
    /// the normalisation's skip and whether a ReLU (receiving no skip) follows and joins the
    /// block.
    fn block_plan(&self, i: usize, lesion: Option<&Lesion>, cur: &Act) -> Option<BlockPlan> {
        if !self.fused_blocks {
            return None;
        }
        let layers = &self.spec.spec.layers;
        let norm = self.block_norm(i + 1)?;
        let fits = match (cur, &layers[i].op, norm) {
            (Act::Flat(x), LayerOp::Linear { .. }, BlockNorm::Batch(bn)) => {
                fusable(&x.device(), bn)
            }
            (Act::Image(x), LayerOp::Conv2d { .. }, norm) => conv::fusable(&x.device(), norm),
            _ => false,
        };
        if !fits
            || self.keep[i]
            || self.spec.layers[i].skip_in.is_some()
            || self.noise_of(i + 1).is_some()
        {
            return None;
        }
        let skip = self.spec.layers[i + 1].skip_in;
        if skip.is_some_and(|k| self.net.skips[k].alpha.is_some()) {
            return None;
        }
        let relu = !self.keep[i + 1]
            && layers.get(i + 2).is_some_and(|l| {
                matches!(
                    l.op,
                    LayerOp::Activation {
                        function: Activation::Relu
                    }
                )
            })
            && self.spec.layers[i + 2].skip_in.is_none();
        let last = i + 1 + usize::from(relu);
        if lesion.is_some_and(|l| l.touches(i, last)) {
            return None;
        }
        Some(BlockPlan { skip, relu })
    }

    /// Runs the fused block that [`Model::block_plan`] found at layer `i` on `cur`, with
    /// `source(k)` the tensor skip `k` reads; `probe` asks for the probe outputs.
    fn fused_block(
        &self,
        i: usize,
        plan: BlockPlan,
        cur: &Act,
        source: impl Fn(usize) -> Act,
        probe: bool,
    ) -> FusedBlock {
        let alpha = |k: usize| self.spec.spec.skips[k].scale.value;
        let shortcut = plan.skip.map(|k| (k, self.shortcut(k, source(k))));
        let norm = self.block_norm(i + 1).expect("norm built");
        let node = self.net.nodes[i].as_ref().expect("block built");
        let skip_numel = shortcut.as_ref().map(|(k, s)| (*k, s.numel()));
        let flat = Act::probe_values;
        let (output, first, pre, values, sums) = match cur {
            Act::Tokens(_) => unreachable!("the plan fuses flat and image blocks only"),
            Act::Flat(x) => {
                let sc = shortcut.map(|(k, s)| (s.into_flat(), alpha(k)));
                let lin = node.linear().expect("linear built");
                let BlockNorm::Batch(bn) = norm else {
                    unreachable!("the plan fuses dense blocks with BatchNorm only")
                };
                let r = dense_block(lin, bn, x.clone(), sc, plan.relu, probe);
                let y = Act::Flat(r.output);
                (
                    y.clone(),
                    Act::Flat(r.linear),
                    Act::Flat(r.pre),
                    y,
                    r.skip_sums,
                )
            }
            Act::Image(x) => {
                let sc = shortcut.map(|(k, s)| (s.into_image(), alpha(k)));
                let LayerOp::Conv2d {
                    stride, padding, ..
                } = self.spec.spec.layers[i].op
                else {
                    unreachable!("the plan fuses convolutions only here")
                };
                let conv_layer = node.conv().expect("conv built");
                let r = conv::conv_block(
                    conv_layer,
                    norm,
                    x.clone(),
                    (stride, padding),
                    sc,
                    plan.relu,
                    probe,
                );
                let y = Act::Image(r.output);
                if !probe {
                    // The probe outputs are not read; `pre` is empty then.
                    (y.clone(), y.clone(), y.clone(), y, r.skip_sums)
                } else {
                    let values = flat(r.output_flat);
                    (y, flat(r.conv), flat(r.pre), values, r.skip_sums)
                }
            }
        };
        FusedBlock {
            output,
            conv_or_linear: first,
            pre,
            output_values: values,
            skip_sums: skip_numel.map(|(k, n)| (k, sums.inner(), n)),
        }
    }

    /// Whether layer `i` is a convolution that can run as one fused node on this device (see
    /// `conv/plain.rs`), and whether a ReLU joins it: in training, one that BatchNorm does not
    /// follow (the fused block takes those); in inference (no autodiff), every convolution,
    /// forward only.
    fn plain_conv_plan(&self, i: usize, lesion: Option<&Lesion>, cur: &Act) -> Option<bool> {
        let layers = &self.spec.spec.layers;
        let Act::Image(x) = cur else {
            return None;
        };
        let device = x.device();
        let before_bn = matches!(
            layers.get(i + 1).map(|l| &l.op),
            Some(LayerOp::BatchNorm { .. })
        );
        let fits = self.fused_blocks
            && matches!(layers[i].op, LayerOp::Conv2d { .. })
            && fused::is_flex(&device)
            && (!before_bn || !device.is_autodiff())
            && !self.keep[i]
            && self.spec.layers[i].skip_in.is_none()
            && !lesion.is_some_and(|l| l.touches(i, i));
        if !fits {
            return None;
        }
        let relu = layers.get(i + 1).is_some_and(|l| {
            matches!(
                l.op,
                LayerOp::Activation {
                    function: Activation::Relu
                }
            )
        }) && !self.keep[i]
            && self.spec.layers[i + 1].skip_in.is_none()
            && !lesion.is_some_and(|l| l.touches(i, i + 1));
        Some(relu)
    }

    /// Runs the fused convolution of layer `i` (and the ReLU after it when `relu`), recording
    /// the layers' outputs when probing.
    fn plain_conv(&self, i: usize, cur: &Act, relu: bool, rec: Option<&mut Recorder<'_>>) -> Act {
        let (
            Act::Image(x),
            LayerOp::Conv2d {
                stride, padding, ..
            },
        ) = (cur, &self.spec.spec.layers[i].op)
        else {
            unreachable!("the plan fuses image convolutions only")
        };
        let conv_layer = self.net.nodes[i]
            .as_ref()
            .and_then(NodeModule::conv)
            .expect("conv built");
        let r = conv::plain_conv(conv_layer, x.clone(), (*stride, *padding), relu);
        if let Some(rec) = rec {
            rec.layer(&Act::probe_values(r.conv));
            if relu {
                rec.layer(&Act::probe_values(r.output_flat));
            }
        }
        Act::Image(r.output)
    }

    fn noise_of(&self, layer: usize) -> Option<(&[f32], &[f32])> {
        let noise = self.bn_noise.as_ref()?;
        let (scale, shift) = noise.per_layer.get(layer)?.as_ref()?;
        Some((scale, shift))
    }

    fn shortcut(&self, k: usize, x: Act) -> Act {
        let info = &self.spec.skips[k];
        let module = &self.net.skips[k];
        match (self.spec.spec.skips[k].shortcut, x) {
            (Shortcut::Identity, x) => x,
            (Shortcut::ZeroPad, x @ (Act::Flat(_) | Act::Tokens(_))) => x.map_rows(|t| {
                let [b, d] = t.dims();
                let target = info.to_shape.channels();
                if target == d {
                    t
                } else {
                    let pad = Tensor::<2>::zeros([b, target - d], &t.device());
                    Tensor::cat(vec![t, pad], 1)
                }
            }),
            (Shortcut::ZeroPad, Act::Image(t)) => {
                let s = info.stride;
                let t = if s > 1 {
                    t.slice(s![.., .., ..;s, ..;s])
                } else {
                    t
                };
                let [b, c, h, w] = t.dims();
                let target = info.to_shape.channels();
                if target == c {
                    Act::Image(t)
                } else {
                    let pad = Tensor::<4>::zeros([b, target - c, h, w], &t.device());
                    Act::Image(Tensor::cat(vec![t, pad], 1))
                }
            }
            (Shortcut::Projection { .. }, x @ (Act::Flat(_) | Act::Tokens(_))) => {
                let lin = module.proj_linear.as_ref().expect("projection built");
                x.map_rows(|t| {
                    let y = lin.forward(t);
                    match &module.proj_bn {
                        Some(bn) => fused::batch_norm(bn, y),
                        None => y,
                    }
                })
            }
            (Shortcut::Projection { .. }, Act::Image(t)) => {
                let conv = module.proj_conv.as_ref().expect("projection built");
                // A 1×1 projection with BatchNorm runs as a fused block (no ReLU, no skip).
                if let Some(bn) = &module.proj_bn
                    && self.fused_blocks
                    && conv::fusable(&t.device(), BlockNorm::Batch(bn))
                {
                    let norm = BlockNorm::Batch(bn);
                    let r = conv::conv_block(conv, norm, t, (info.stride, 0), None, false, false);
                    return Act::Image(r.output);
                }
                let y = conv.forward(t);
                Act::Image(match &module.proj_bn {
                    Some(bn) => fused::batch_norm(bn, y),
                    None => y,
                })
            }
        }
    }

    /// Names of the layers, in order.
    pub fn layer_names(&self) -> Vec<String> {
        self.spec.layers.iter().map(|l| l.name.clone()).collect()
    }

    /// Indices of the LayerNorm and GroupNorm layers.
    pub fn affine_norm_layers(&self) -> Vec<usize> {
        self.net
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_ref().and_then(NodeModule::group_norm).is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Per LayerNorm or GroupNorm layer `[gamma[C], beta[C]]` on the device (ones and zeros for
    /// a layer built without them).
    pub fn affine_norm_state(&self) -> Vec<Tensor<1>> {
        self.net
            .nodes
            .iter()
            .filter_map(|n| n.as_ref()?.group_norm())
            .map(|gn| {
                let device = gn
                    .gamma
                    .as_ref()
                    .map(|g| g.val().device())
                    .unwrap_or_default();
                let c = gn.num_channels;
                let gamma = gn
                    .gamma
                    .as_ref()
                    .map_or_else(|| Tensor::ones([c], &device), |g| g.val());
                let beta = gn
                    .beta
                    .as_ref()
                    .map_or_else(|| Tensor::zeros([c], &device), |b| b.val());
                Tensor::cat(vec![gamma.inner(), beta.inner()], 0)
            })
            .collect()
    }

    /// Indices of the BatchNorm layers.
    pub fn batch_norm_layers(&self) -> Vec<usize> {
        self.net
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.as_ref().and_then(NodeModule::batch_norm).is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Per BatchNorm layer `[running_mean[C], running_var[C], gamma[C], beta[C]]` on the device.
    pub fn batch_norm_state(&self) -> Vec<Tensor<1>> {
        self.net
            .nodes
            .iter()
            .filter_map(|n| n.as_ref()?.batch_norm())
            .map(|bn| {
                Tensor::cat(
                    vec![
                        bn.running_mean.value_sync().inner(),
                        bn.running_var.value_sync().inner(),
                        bn.gamma.val().inner(),
                        bn.beta.val().inner(),
                    ],
                    0,
                )
            })
            .collect()
    }
}

/// `y · scale + shift` with `scale` and `shift` per channel (channel axis 1) or per activation
/// (as many values as `y` has, in its row-major order).
fn add_bn_noise(y: Act, scale: &[f32], shift: &[f32]) -> Act {
    let axis = y.channel_axis();
    map_act!(y, a => scale_shift(a, axis, scale, shift))
}

fn scale_shift<const D: usize>(
    a: Tensor<D>,
    axis: usize,
    scale: &[f32],
    shift: &[f32],
) -> Tensor<D> {
    let dims = a.dims();
    let mut shape = [1; D];
    if scale.len() == dims[axis] {
        shape[axis] = dims[axis];
    } else {
        shape = dims;
    }
    let device = a.device();
    let t = |v: &[f32]| Tensor::<1>::from_floats(v, &device).reshape(shape);
    a * t(scale) + t(shift)
}

/// Turns a batch of host samples `[batch × numel]` into an input activation of `shape`.
pub fn input_from_host(
    data: Vec<f32>,
    batch: usize,
    shape: Shape,
    device: &burn::tensor::Device,
) -> Act {
    use burn::tensor::TensorData;
    match shape {
        Shape::Flat(d) => Act::Flat(Tensor::from_data(TensorData::new(data, [batch, d]), device)),
        Shape::Tokens(n, d) => Act::Tokens(Tensor::from_data(
            TensorData::new(data, [batch, n, d]),
            device,
        )),
        Shape::Image(c, h, w) => Act::Image(Tensor::from_data(
            TensorData::new(data, [batch, c, h, w]),
            device,
        )),
    }
}

/// An empty module, used while the real one is moved through the optimiser.
pub(crate) fn placeholder_net() -> Net {
    Net {
        nodes: Vec::new(),
        skips: Vec::new(),
    }
}
