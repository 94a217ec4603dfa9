//! Fused CPU kernels for the operations burn-flex runs as many small tensor operations, one file
//! each: `batch_norm` (the BatchNorm forward and backward), `optim` (the optimiser step), `probe`
//! (layer statistics read from the tensor's own buffer); this file holds what they share.
//!
//! - **BatchNorm.** burn's `batch_norm_train` is one autodiff node, but on burn-flex its forward
//!   and backward fall back to generic bodies that transpose the input (`swap_dims` +
//!   `reshape`, a copy) and run about ten element-wise passes each way. Here both directions
//!   are one kernel over the data in its own layout. [`batch_norm`] picks this path on
//!   burn-flex with autodiff and burn's own `BatchNorm::forward` everywhere else.
//! - **GELU.** One pass each way with a polynomial erf instead of libm's per element (`gelu`).
//! - **Optimiser step.** SGD and Adam as one pass per tensor instead of a chain of element-wise
//!   operations ([`FusedOptim`]), also returning the sums the gradient panel shows.
//!
//! Both are registered through burn's backend-extension mechanism for `Flex` (and, for the
//! BatchNorm, `Autodiff<Flex>`); calling them on another backend would panic, so callers check
//! [`is_flex`] first. The kernels work on `f32` tensors, the only float type reslab uses.
//!
//! Conventions are burn's, so results agree with [`burn::nn::BatchNorm`] to rounding: the batch
//! variance is the biased (population) one, `y = (x − μ)/sqrt(σ² + ε)·γ + β`, and the running
//! statistics move by `r ← (1 − momentum)·r + momentum·batch` with the biased variance.

mod batch_norm;
mod gelu;
mod optim;
mod probe;

pub use batch_norm::{BnTrain, FusedOps, batch_norm};
pub(in crate::model) use batch_norm::{block_operands, bn_stats, channel_sums, update_running};
pub use gelu::{FusedGelu, gelu, gelu_backward, gelu_forward};
pub use optim::{
    FusedOptim, FusedRule, FusedStep, OptimStep, optimizer_step, optimizer_step_host,
    optimizer_step_in_place,
};
pub use probe::{FusedProbe, layer_stats_host};

use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

/// The f32 lanes the kernels accumulate in (a chunk of this many values vectorises).
const LANES: usize = 8;

/// `[batch, channels, spatial]` view of a `[batch, channels, ...]` shape.
fn bcs(dims: &[usize]) -> (usize, usize, usize) {
    let b = dims[0];
    let c = dims[1];
    let s = dims[2..].iter().product::<usize>();
    (b, c, s)
}

/// The values of a float tensor in row-major order (a copy only when the layout is strided).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .expect("the fused kernels take f32 tensors")
                .to_vec(),
        ),
    }
}

pub(super) fn flex_from(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Whether tensors on `device` take the fused CPU kernels.
pub fn is_flex(device: &burn::tensor::Device) -> bool {
    // The fused kernels are registered for burn-flex only; every other backend keeps burn's ops.
    let inner = device.clone().inner();
    inner == burn::tensor::Device::flex()
}
