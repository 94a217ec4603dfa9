//! The fused convolutional block as a burn backend extension: `Conv2d → BatchNorm
//! (+ α·branch + shortcut) → ReLU` as one autodiff node on burn-flex, with a hand-written
//! backward pass (see the module documentation of [`super`]).

use super::geometry::Geometry;
use super::layout::{dims4, flat_view, image_view, nhwc_kept, nhwc_values};
use super::{direct, winograd};
use crate::model::fused::{flex_from, values};
use crate::model::norm_act::{self, Epilogue, Saved};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use std::borrow::Cow;
use std::sync::{Arc, Mutex};

/// What a fused convolutional block returns.
#[derive(ExtensionType)]
pub struct ConvOut<B: Backend> {
    /// `y = max(h, 0)` (or `h` without the ReLU) `[batch, out, oh, ow]`, differentiable; a
    /// channels-last buffer behind a permuted view.
    pub output: FloatTensor<B>,
    /// The convolution's output `z`, detached, flat in channels-last order (for the probes).
    pub conv: FloatTensor<B>,
    /// The BatchNorm layer's output after its skip, `h = α·f + s`, detached and flat: all
    /// values on probe steps (and always without a ReLU, where it is the output), else `[0]`.
    pub pre: FloatTensor<B>,
    /// The output's values, detached and flat (a view of its buffer, for the probes).
    pub output_flat: FloatTensor<B>,
    /// Batch mean `[out]`, detached (GroupNorm: per sample and channel).
    pub mean: FloatTensor<B>,
    /// Biased batch variance `[out]`, detached (GroupNorm: per sample and channel).
    pub var: FloatTensor<B>,
    /// `[Σ f², Σ s², α]` on probe steps with a skip, else zeros.
    pub skip_sums: FloatTensor<B>,
}

/// The scalars of one convolutional block: the convolution's square stride and zero padding,
/// and the BatchNorm epilogue's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvBlockParams {
    /// The stride, the same along both axes.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// α, ε, the ReLU and the probe.
    pub epilogue: Epilogue,
}

/// The fused convolutional block of the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedConv: Backend {
    /// One block: `x` `[batch, in, h, w]`, `weight` `[out, in, k, k]`, `bias` `[out]` or `[0]`,
    /// `gamma`/`beta` `[out]`, `shortcut` `[batch, out, oh, ow]` or `[0]` (then `alpha` is
    /// ignored); square `stride` and zero `padding`. `probe` asks for `h` and the skip's sums.
    fn fused_conv_block(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        params: ConvBlockParams,
    ) -> ConvOut<Self>;
}

/// Whether the Winograd products serve a geometry: 3×3, stride 1, padding 1, and at least 16
/// channels on both sides. With fewer (the 3-channel stem of a CIFAR net), each of the 36 small
/// products would be 3 deep, and one 27-deep direct product is faster. On this project's
/// machine (thread CPU time, best of 15, `examples/conv_profile.rs`), F(4×4, 3×3) against the
/// direct product, forward / weight gradient: 16 channels 6.7 / 7.2 ms against 7.5 / 8.6 ms,
/// 32 channels 4.2 / 4.3 against 6.3 / 6.7 ms, 64 channels 3.5 / 4.0 against 5.8 / 6.1 ms.
fn use_winograd(g: &Geometry) -> bool {
    g.is_winograd() && g.cin.min(g.cout) >= 16
}

/// The Winograd variant the block uses.
const TILE: winograd::Tile = winograd::Tile::F4;

/// `z = conv(x, weight)`, channels last, and the input as [`conv_weight_grad`] reads it, kept
/// for the backward pass: for the direct products the zero-padded copy the forward product read
/// (so the backward pass does not pad it again), else `x`'s channels-last values (a view when
/// it already is channels last).
pub(super) fn conv_forward(g: &Geometry, x: &FlexTensor, weight: &[f32]) -> (Vec<f32>, FlexTensor) {
    let xv = nhwc_values(x);
    if use_winograd(g) {
        let z = winograd::forward(g, &xv, weight, TILE);
        return (z, nhwc_kept(x, xv));
    }
    match direct::padded(g, &xv) {
        Cow::Owned(xp) => {
            let z = direct::forward_padded(g, &xp, weight);
            let len = xp.len();
            (z, flex_from(xp, vec![len]))
        }
        Cow::Borrowed(_) => {
            let z = direct::forward_padded(g, &xv, weight);
            (z, nhwc_kept(x, xv))
        }
    }
}

/// `∂L/∂x` from `dz`, channels last.
pub(super) fn conv_input_grad(g: &Geometry, dz: &[f32], weight: &[f32]) -> Vec<f32> {
    if use_winograd(g) {
        winograd::input_grad(g, dz, weight, TILE)
    } else {
        direct::input_grad(g, dz, weight)
    }
}

/// `∂L/∂W` `[out, in, k, k]` from the input [`conv_forward`] kept and `dz`.
pub(super) fn conv_weight_grad(g: &Geometry, kept: &[f32], dz: &[f32]) -> Vec<f32> {
    if use_winograd(g) {
        winograd::weight_grad(g, kept, dz, TILE)
    } else {
        direct::weight_grad_padded(g, kept, dz)
    }
}

/// The geometry of a block's convolution.
pub(super) fn geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    padding: usize,
) -> Geometry {
    let [b, cin, h, w] = dims4(x);
    let [cout, wcin, k, k2] = dims4(weight);
    assert!(
        wcin == cin && k == k2,
        "fused conv: weight [{cout}, {wcin}, {k}, {k2}] does not fit an input of {cin} channels"
    );
    Geometry::new(b, h, w, cin, cout, k, stride, padding)
        .expect("fused conv: the kernel does not fit the padded input")
}

/// What the backward pass needs.
#[derive(Clone)]
struct ConvState {
    /// The input as the weight gradient reads it ([`conv_forward`]).
    x: FlexTensor,
    weight: FlexTensor,
    /// The convolution's output, channels last.
    z: FlexTensor,
    /// The block's output, channels last.
    output: FlexTensor,
    geometry: Geometry,
    saved: Saved,
    alpha: f32,
    relu: bool,
    /// Where a later block leaves its shortcut's gradient when that shortcut is this block's
    /// input (see [`Pairing`]); added to `∂L/∂x` before it is registered.
    incoming: Option<Mailbox>,
    /// Where this block leaves its shortcut's gradient instead of registering it: the mailbox
    /// of the block whose input the shortcut is.
    outgoing: Option<Mailbox>,
}

/// A gradient handed from one block's backward pass to another's, channels last.
#[derive(Clone, Default)]
struct Mailbox(Arc<Mutex<Option<Vec<f32>>>>);

impl Mailbox {
    /// Leaves a gradient, whether or not another thread panicked holding the lock.
    fn post(&self, gradient: Vec<f32>) {
        *self.slot() = Some(gradient);
    }

    /// Takes the gradient left here, if any.
    fn take(&self) -> Option<Vec<f32>> {
        self.slot().take()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Vec<f32>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The basic block of a ResNet, `y → block A → block B (+ y)`, uses `y` twice: as A's input and
/// as B's identity shortcut. burn sums the two gradients of `y` itself, and both are
/// channels-last views, which its element-wise add walks in logical order, one value at a time,
/// into a new channels-first buffer that the next backward pass transposes back (8 % of a
/// CIFAR ResNet-20 step, `perf`). Paired blocks sum them here instead: B leaves its shortcut's
/// gradient in A's mailbox, and A adds it to its input's gradient, in place, before registering
/// it.
///
/// The pairing is exact about the pattern: B's input must be A's output and B's shortcut A's
/// input (the same autodiff nodes). B's node is then a child of A's, so burn's backward pass,
/// which runs the deepest nodes first, always runs B before A, and A always runs when B does
/// (B registers the gradient of A's output). The two gradients are the same tensor's, so both
/// are tracked or neither.
struct Pairing {
    /// A's output node.
    output: NodeId,
    /// A's input node.
    input: NodeId,
    /// A's mailbox.
    mailbox: Mailbox,
}

thread_local! {
    /// The last fused block built on this thread (a forward pass builds its blocks in order, so
    /// B finds A here when A is the block just before it).
    static LAST_BLOCK: std::cell::RefCell<Option<Pairing>> = const { std::cell::RefCell::new(None) };
}

impl std::fmt::Debug for ConvState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvState")
            .field("geometry", &self.geometry)
            .field("alpha", &self.alpha)
            .field("relu", &self.relu)
            .finish_non_exhaustive()
    }
}

/// The forward pass on flex tensors: the outputs and the backward state.
fn forward_flex(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    shortcut: &FlexTensor,
    params: ConvBlockParams,
) -> (ConvOut<Flex>, ConvState) {
    let ConvBlockParams {
        stride,
        padding,
        epilogue,
    } = params;
    let Epilogue { alpha, relu, .. } = epilogue;
    let g = geometry(x, weight, stride, padding);
    let (mut z, x_kept) = conv_forward(&g, x, &values(weight));
    let (rows, c) = (g.out_pixels(), g.cout);
    norm_act::add_bias(&mut z, &values(bias), c);
    let sv = if shortcut.layout().num_elements() == z.len() {
        nhwc_values(shortcut)
    } else {
        std::borrow::Cow::Borrowed(&[][..])
    };
    let f = norm_act::forward(
        &z,
        rows,
        c,
        &norm_act::Params {
            stats: epilogue.stats,
            samples: g.batch,
            gamma: &values(gamma),
            beta: &values(beta),
            shortcut: &sv,
            alpha,
            epsilon: epilogue.epsilon,
            relu,
            probe: epilogue.probe,
        },
    );
    let n = z.len();
    let mean_len = f.mean.len();
    let output = image_view(f.output, [g.batch, g.oh, g.ow, c]);
    let output_flat = flat_view(&output);
    let pre = if relu {
        let len = f.pre.len();
        flex_from(f.pre, vec![len])
    } else {
        output_flat.clone()
    };
    let z = flex_from(z, vec![n]);
    let out = ConvOut {
        output,
        conv: z.clone(),
        pre,
        output_flat: output_flat.clone(),
        mean: flex_from(f.mean, vec![mean_len]),
        var: flex_from(f.var, vec![mean_len]),
        skip_sums: flex_from(f.skip_sums, vec![3]),
    };
    let state = ConvState {
        x: x_kept,
        weight: weight.clone(),
        z,
        output: output_flat,
        geometry: g,
        saved: f.saved,
        alpha: if sv.is_empty() { 1.0 } else { alpha },
        relu,
        incoming: None,
        outgoing: None,
    };
    (out, state)
}

impl FusedConv for Flex {
    fn fused_conv_block(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        shortcut: FlexTensor,
        params: ConvBlockParams,
    ) -> ConvOut<Self> {
        forward_flex(&x, &weight, &bias, &gamma, &beta, &shortcut, params).0
    }
}

#[derive(Debug)]
struct FusedConvBackward;

impl Backward<Flex, 6> for FusedConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b, node_gamma, node_beta, node_s] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let g = st.geometry;
        let (rows, c) = (g.out_pixels(), g.cout);
        let back = norm_act::backward(
            &nhwc_values(&dy),
            &values(&st.output),
            &values(&st.z),
            rows,
            c,
            &st.saved,
            st.alpha,
            st.relu,
        );
        drop(dy);
        if let Some(node) = node_b {
            let db = norm_act::column_sums(&back.dz, rows, c);
            grads.register::<Flex>(node.id, flex_from(db, vec![c]));
        }
        if let Some(node) = node_w {
            let dw = conv_weight_grad(&g, &values(&st.x), &back.dz);
            grads.register::<Flex>(node.id, flex_from(dw, vec![g.cout, g.cin, g.k, g.k]));
        }
        if let Some(node) = node_x {
            let mut dx = conv_input_grad(&g, &back.dz, &values(&st.weight));
            if let Some(ds) = st.incoming.as_ref().and_then(Mailbox::take) {
                assert_eq!(ds.len(), dx.len(), "a paired shortcut's gradient");
                for (d, s) in dx.iter_mut().zip(&ds) {
                    *d += s;
                }
            }
            grads.register::<Flex>(node.id, image_view(dx, [g.batch, g.h, g.w, g.cin]));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_from(back.dgamma, vec![c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_from(back.dbeta, vec![c]));
        }
        if let Some(node) = node_s {
            match &st.outgoing {
                Some(mailbox) => mailbox.post(back.g),
                None => {
                    grads.register::<Flex>(node.id, image_view(back.g, [g.batch, g.oh, g.ow, c]))
                }
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedConv for Autodiff<Flex, C> {
    fn fused_conv_block(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        params: ConvBlockParams,
    ) -> ConvOut<Self> {
        use burn::backend::AutodiffBackend;
        let prep = FusedConvBackward
            .prepare::<C>([
                x.node(),
                weight.node(),
                bias.node(),
                gamma.node(),
                beta.node(),
                shortcut.node(),
            ])
            .compute_bound()
            .stateful();
        let (x_id, s_id) = (x.id(), shortcut.id());
        let has_shortcut = shortcut.primitive().layout().num_elements() > 0;
        let (r, mut state) = forward_flex(
            x.primitive(),
            weight.primitive(),
            bias.primitive(),
            gamma.primitive(),
            beta.primitive(),
            shortcut.primitive(),
            params,
        );
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let mailbox = Mailbox::default();
                state.incoming = Some(mailbox.clone());
                state.outgoing = LAST_BLOCK.with_borrow_mut(|last| {
                    let a = last.take()?;
                    (has_shortcut && a.output == x_id && a.input == s_id).then_some(a.mailbox)
                });
                let output = prep.finish(state, r.output);
                let pairing = Pairing {
                    output: output.id(),
                    input: x_id,
                    mailbox,
                };
                LAST_BLOCK.set(Some(pairing));
                output
            }
            OpsKind::UnTracked(prep) => {
                LAST_BLOCK.set(None);
                prep.finish(r.output)
            }
        };
        let inner = <Self as AutodiffBackend>::from_inner;
        ConvOut {
            output,
            conv: inner(r.conv),
            pre: inner(r.pre),
            output_flat: inner(r.output_flat),
            mean: inner(r.mean),
            var: inner(r.var),
            skip_sums: inner(r.skip_sums),
        }
    }
}
