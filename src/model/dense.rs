//! A fused dense block for the CPU backend: `Linear → BatchNorm (+ α·branch + shortcut) → ReLU`
//! as one autodiff node.
//!
//! Run layer by layer, such a block is five autodiff nodes on burn-flex (the product, the bias
//! add, the BatchNorm, the skip add, the ReLU), each with its own output buffer, graph entry and
//! passes over the data, forward and backward. Measured on 20 blocks of 128 × 128 at batch 128,
//! everything but the three matrix products cost about as much as the products themselves. Here
//! the products run through gemm (`fused::matmul`: two halves of rows on rayon's threads where
//! burn-flex would keep a product on one), and the rest is one pass for the batch
//! statistics plus one for the output, forward; two passes plus the two products, backward.
//!
//! [`Model`](super::Model) takes this path on burn-flex with autodiff for every `Linear` followed
//! by a `BatchNorm` (with an optional ReLU after it) whose intermediate outputs feed no later
//! skip, whose skip (if any) has a fixed α, and which no lesion or BatchNorm noise touches; it
//! falls back to the layer-by-layer path everywhere else. The numbers are the same to f32
//! rounding: the block computes `z = x·W + b`, `f = (z − μ)/sqrt(σ² + ε)·γ + β` with the batch's
//! biased variance, `h = α·f + s`, `y = max(h, 0)`, and hands back `z` and `h` for the probes.

use super::fused::{block_operands, flex_from, is_flex, matmul, shape_of, update_running, values};
use super::norm_act::{self, Epilogue, Saved};
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, ExtensionType, Flex, backend_extension};
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;

/// What a fused dense block returns.
#[derive(ExtensionType)]
pub struct DenseOut<B: Backend> {
    /// `y = max(h, 0)` (or `h` without the ReLU) `[batch, out]`, differentiable.
    pub output: FloatTensor<B>,
    /// The Linear layer's output `z` `[batch, out]`, detached (for the probes).
    pub linear: FloatTensor<B>,
    /// The BatchNorm layer's output after its skip, `h = α·f + s`, detached: `[batch, out]` on
    /// probe steps (and always without a ReLU, where it is the output), else `[0]`.
    pub pre: FloatTensor<B>,
    /// Batch mean `[out]`, detached.
    pub mean: FloatTensor<B>,
    /// Biased batch variance `[out]`, detached.
    pub var: FloatTensor<B>,
    /// `[Σ f², Σ s², α]` over the batch (the residual branch before α, the shortcut, the branch
    /// scale: what the skip probe records) on probe steps with a skip, else zeros.
    pub skip_sums: FloatTensor<B>,
}

/// The fused dense block of the CPU backend; see the module documentation.
#[backend_extension(Flex, Autodiff)]
pub trait FusedDense: Backend {
    /// One block. `bias` is `[0]` for a Linear without bias, `shortcut` `[0]` for a block
    /// without a skip (then `alpha` is ignored and `h = f`); `probe` asks for `h` and the skip's sums.
    fn fused_dense_block(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epi: Epilogue,
    ) -> DenseOut<Self>;
}

/// The forward pass on flex tensors.
fn forward_flex(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    shortcut: &FlexTensor,
    epi: Epilogue,
) -> (DenseOut<Flex>, Saved) {
    let Epilogue {
        stats,
        alpha,
        epsilon,
        relu,
        probe,
    } = epi;
    let mut z = matmul(x.clone(), weight.clone());
    if !z.is_contiguous() {
        z = z.to_contiguous();
    }
    let shape = shape_of(&z);
    let (rows, c) = (shape[0], shape[1]);
    let n = rows * c;
    {
        // The product is a contiguous buffer of its own: the bias goes in in place.
        let zs = &mut z.storage_mut::<f32>()[..n];
        norm_act::add_bias(zs, &values(bias), c);
    }
    let zv = values(&z);
    let gv = values(gamma);
    let betav = values(beta);
    let sv = values(shortcut);
    let f = norm_act::forward(
        &zv,
        rows,
        c,
        &norm_act::Params {
            stats,
            samples: rows,
            gamma: &gv,
            beta: &betav,
            shortcut: &sv,
            alpha,
            epsilon,
            relu,
            probe,
        },
    );
    drop(zv);
    let output = flex_from(f.output, shape.clone());
    let pre = if relu {
        flex_from(f.pre, vec![if probe { rows } else { 0 }, c])
    } else {
        output.clone()
    };
    let out = DenseOut {
        output,
        linear: z,
        pre,
        mean: flex_from(f.mean, vec![c]),
        var: flex_from(f.var, vec![c]),
        skip_sums: flex_from(f.skip_sums, vec![3]),
    };
    (out, f.saved)
}

impl FusedDense for Flex {
    fn fused_dense_block(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        shortcut: FlexTensor,
        epi: Epilogue,
    ) -> DenseOut<Self> {
        forward_flex(&x, &weight, &bias, &gamma, &beta, &shortcut, epi).0
    }
}

#[derive(Debug)]
struct FusedDenseBackward;

/// The tensors and values the backward pass needs.
#[derive(Clone)]
struct DenseState {
    x: FlexTensor,
    weight: FlexTensor,
    z: FlexTensor,
    output: FlexTensor,
    saved: Saved,
    alpha: f32,
    relu: bool,
}

impl std::fmt::Debug for DenseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseState")
            .field("alpha", &self.alpha)
            .field("relu", &self.relu)
            .finish_non_exhaustive()
    }
}

impl Backward<Flex, 6> for FusedDenseBackward {
    type State = DenseState;

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b, node_gamma, node_beta, node_s] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let shape = shape_of(&st.z);
        let (rows, c) = (shape[0], shape[1]);
        let dyv = values(&dy);
        let ov = values(&st.output);
        let zv = values(&st.z);
        let norm_act::Backward {
            g,
            dz,
            dgamma,
            dbeta,
        } = norm_act::backward(&dyv, &ov, &zv, rows, c, &st.saved, st.alpha, st.relu);
        if let Some(node) = node_b {
            let db = norm_act::column_sums(&dz, rows, c);
            grads.register::<Flex>(node.id, flex_from(db, vec![c]));
        }
        let dz = flex_from(dz, shape.clone());
        if let Some(node) = node_w {
            let xt = Flex::float_swap_dims(st.x.clone(), 0, 1);
            grads.register::<Flex>(node.id, matmul(xt, dz.clone()));
        }
        if let Some(node) = node_x {
            let wt = Flex::float_swap_dims(st.weight.clone(), 0, 1);
            grads.register::<Flex>(node.id, matmul(dz, wt));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_from(dgamma, vec![c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_from(dbeta, vec![c]));
        }
        if let Some(node) = node_s {
            grads.register::<Flex>(node.id, flex_from(g, shape));
        }
    }
}

impl<C: CheckpointStrategy> FusedDense for Autodiff<Flex, C> {
    fn fused_dense_block(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epi: Epilogue,
    ) -> DenseOut<Self> {
        use burn::backend::AutodiffBackend;
        let Epilogue { alpha, relu, .. } = epi;
        let prep = FusedDenseBackward
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
        let xp = x.primitive().clone();
        let wp = weight.primitive().clone();
        let (r, saved) = forward_flex(
            &xp,
            &wp,
            bias.primitive(),
            gamma.primitive(),
            beta.primitive(),
            shortcut.primitive(),
            epi,
        );
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let state = DenseState {
                    x: xp,
                    weight: wp,
                    z: r.linear.clone(),
                    output: r.output.clone(),
                    saved,
                    alpha: if shortcut.primitive().layout().num_elements() > 0 {
                        alpha
                    } else {
                        1.0
                    },
                    relu,
                };
                prep.finish(state, r.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(r.output),
        };
        let inner = <Self as AutodiffBackend>::from_inner;
        DenseOut {
            output,
            linear: inner(r.linear),
            pre: inner(r.pre),
            mean: inner(r.mean),
            var: inner(r.var),
            skip_sums: inner(r.skip_sums),
        }
    }
}

/// The outputs of [`dense_block`] as tensors of the caller's device.
#[derive(Debug)]
pub struct DenseBlockOut {
    /// The block's output (the ReLU's, or the BatchNorm layer's without one), differentiable.
    pub output: Tensor<2>,
    /// The Linear layer's output, detached.
    pub linear: Tensor<2>,
    /// The BatchNorm layer's output after its skip, detached (`[batch, out]` when probing).
    pub pre: Tensor<2>,
    /// `[Σ f², Σ s², α]`: the skip probe's record (when probing a block with a skip).
    pub skip_sums: Tensor<1>,
}

/// Whether a block whose BatchNorm is `bn` takes the fused path for inputs on `device`:
/// burn-flex with autodiff, BatchNorm in training mode.
pub fn fusable(device: &burn::tensor::Device, bn: &BatchNorm) -> bool {
    is_flex(device) && device.is_autodiff() && bn.training.is_enabled()
}

/// `relu?(α·bn(linear(x)) + shortcut)` as one fused node, updating `bn`'s running statistics as
/// [`BatchNorm::forward`] would; `probe` also returns the BatchNorm layer's output and the
/// skip probe's sums. Call only where [`fusable`] holds.
pub fn dense_block(
    linear: &Linear,
    bn: &BatchNorm,
    x: Tensor<2>,
    shortcut: Option<(Tensor<2>, f32)>,
    relu: bool,
    probe: bool,
) -> DenseBlockOut {
    let ops = block_operands(
        linear.bias.as_ref().map(|b| b.val()),
        (bn.gamma.val(), bn.beta.val(), bn.epsilon),
        crate::model::norm_act::Stats::Batch,
        shortcut,
        (relu, probe),
        &x.device(),
    );
    let r = <burn::backend::Dispatch as FusedDense>::fused_dense_block(
        x.into_dispatch(),
        linear.weight.val().into_dispatch(),
        ops.bias,
        ops.gamma,
        ops.beta,
        ops.shortcut,
        ops.epilogue,
    );
    update_running(
        bn,
        Tensor::<1>::from_dispatch(r.mean),
        Tensor::<1>::from_dispatch(r.var),
    );
    DenseBlockOut {
        output: Tensor::from_dispatch(r.output),
        linear: Tensor::from_dispatch(r.linear),
        pre: Tensor::from_dispatch(r.pre),
        skip_sums: Tensor::from_dispatch(r.skip_sums),
    }
}
