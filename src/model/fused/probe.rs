//! Layer statistics on burn-flex, read from the tensor's own buffer without a copy.

use super::{flex_from, values};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::tensor::Tensor;

/// Layer statistics of the CPU backend, read from the tensor's own buffer without a copy.
#[backend_extension(Flex)]
pub trait FusedProbe: Backend {
    /// [`host_layer_stats`](crate::model::probe::host_layer_stats) of all the values of `x`, as
    /// a `[LAYER_STATS_LEN]` tensor.
    fn fused_layer_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl FusedProbe for Flex {
    fn fused_layer_stats(x: FlexTensor) -> FlexTensor {
        let stats = crate::model::probe::host_layer_stats(&values(&x));
        flex_from(stats.to_vec(), vec![stats.len()])
    }
}

/// The statistics of a layer output on burn-flex ([`FusedProbe`]), read back to the host.
pub fn layer_stats_host(x: Tensor<1>) -> Vec<f32> {
    let stats = <burn::backend::Dispatch as FusedProbe>::fused_layer_stats(x.into_dispatch());
    Tensor::<1>::from_dispatch(stats)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}
