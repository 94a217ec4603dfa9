//! A convolution that BatchNorm does not follow, `relu?(conv(x) + bias)`, as one autodiff node
//! on burn-flex with the block's products (Winograd or direct, channels last) and a
//! hand-written backward pass: the layer under GroupNorm, LayerNorm or no normalisation. Layer
//! by layer, burn-flex converts the convolution's input to channels-last and back on every call
//! and computes its backward pass through a generic transposed convolution (a `cnn-3` without
//! normalisation trained 2 × slower than with BatchNorm's fused block, EXPERIMENTS_NOTES.md).

use super::block::{conv_forward, conv_input_grad, conv_weight_grad, geometry};
use super::geometry::Geometry;
use super::layout::{flat_view, image_view, nhwc_values};
use crate::model::fused::{flex_from, values};
use crate::model::norm_act;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};

/// What the fused convolution returns.
#[derive(ExtensionType)]
pub struct PlainConvOut<B: Backend> {
    /// `max(z, 0)` (or `z` without the ReLU) `[batch, out, oh, ow]`, differentiable; a
    /// channels-last buffer behind a permuted view.
    pub output: FloatTensor<B>,
    /// The convolution's output `z` (with its bias), detached, flat in channels-last order
    /// (for the probes; the output's own values without a ReLU).
    pub conv: FloatTensor<B>,
    /// The output's values, detached and flat (a view of its buffer, for the probes).
    pub output_flat: FloatTensor<B>,
}

/// The scalars of a fused convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainConvParams {
    /// The stride, the same along both axes.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Whether a ReLU follows and joins the node.
    pub relu: bool,
}

/// The fused convolution of the CPU backend.
#[backend_extension(Flex, Autodiff)]
pub trait FusedPlainConv: Backend {
    /// `x` `[batch, in, h, w]`, `weight` `[out, in, k, k]`, `bias` `[out]` or `[0]`.
    fn fused_plain_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: PlainConvParams,
    ) -> PlainConvOut<Self>;
}

/// What the backward pass needs.
#[derive(Clone, Debug)]
struct PlainState {
    /// The input as the weight gradient reads it (`block::conv_forward`).
    x: FlexTensor,
    weight: FlexTensor,
    /// The output's values, channels last (for the ReLU's mask).
    output: FlexTensor,
    geometry: Geometry,
    relu: bool,
}

fn forward_flex(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    params: PlainConvParams,
) -> (PlainConvOut<Flex>, PlainState) {
    let g = geometry(x, weight, params.stride, params.padding);
    let (mut z, x_kept) = conv_forward(&g, x, &values(weight));
    let c = g.cout;
    norm_act::add_bias(&mut z, &values(bias), c);
    let n = z.len();
    let (conv, y) = if params.relu {
        let y: Vec<f32> = z.iter().map(|&v| v.max(0.0)).collect();
        (flex_from(z, vec![n]), y)
    } else {
        (flex_from(Vec::new(), vec![0]), z)
    };
    let output = image_view(y, [g.batch, g.oh, g.ow, c]);
    let output_flat = flat_view(&output);
    let conv = if params.relu {
        conv
    } else {
        output_flat.clone()
    };
    let state = PlainState {
        x: x_kept,
        weight: weight.clone(),
        output: output_flat.clone(),
        geometry: g,
        relu: params.relu,
    };
    let out = PlainConvOut {
        output,
        conv,
        output_flat,
    };
    (out, state)
}

impl FusedPlainConv for Flex {
    fn fused_plain_conv(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        params: PlainConvParams,
    ) -> PlainConvOut<Self> {
        forward_flex(&x, &weight, &bias, params).0
    }
}

#[derive(Debug)]
struct PlainConvBackward;

impl Backward<Flex, 3> for PlainConvBackward {
    type State = PlainState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let g = st.geometry;
        let mut dz = nhwc_values(&dy).into_owned();
        drop(dy);
        if st.relu {
            for (d, &y) in dz.iter_mut().zip(values(&st.output).iter()) {
                if y <= 0.0 {
                    *d = 0.0;
                }
            }
        }
        if let Some(node) = node_b {
            let db = norm_act::column_sums(&dz, g.out_pixels(), g.cout);
            grads.register::<Flex>(node.id, flex_from(db, vec![g.cout]));
        }
        if let Some(node) = node_w {
            let dw = conv_weight_grad(&g, &values(&st.x), &dz);
            grads.register::<Flex>(node.id, flex_from(dw, vec![g.cout, g.cin, g.k, g.k]));
        }
        if let Some(node) = node_x {
            let dx = conv_input_grad(&g, &dz, &values(&st.weight));
            grads.register::<Flex>(node.id, image_view(dx, [g.batch, g.h, g.w, g.cin]));
        }
    }
}

impl<C: CheckpointStrategy> FusedPlainConv for Autodiff<Flex, C> {
    fn fused_plain_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: PlainConvParams,
    ) -> PlainConvOut<Self> {
        use burn::backend::AutodiffBackend;
        let prep = PlainConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful();
        let (r, state) = forward_flex(x.primitive(), weight.primitive(), bias.primitive(), params);
        let output = match prep {
            OpsKind::Tracked(prep) => prep.finish(state, r.output),
            OpsKind::UnTracked(prep) => prep.finish(r.output),
        };
        let inner = <Self as AutodiffBackend>::from_inner;
        PlainConvOut {
            output,
            conv: inner(r.conv),
            output_flat: inner(r.output_flat),
        }
    }
}
