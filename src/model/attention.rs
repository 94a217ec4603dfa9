//! The sequence layers' modules: multi-head self-attention ([`SelfAttention`]) and the patch
//! embedding that turns an image into tokens ([`PatchEmbed`]), on burn's tensor ops (the
//! attention core through `fused::FusedAttention` on burn-flex).

use super::fused;
use burn::module::{Module, Param};
use burn::nn::{Linear, conv::Conv2d};
use burn::tensor::{Tensor, activation};

/// Multi-head self-attention: `qkv` maps each token to its query, key and value (`[d, 3d]`,
/// queries first, each head's `d / heads` features side by side), `out` maps the heads'
/// outputs back (`[d, d]`).
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Queries, keys and values of each token.
    pub qkv: Linear,
    /// The output map.
    pub out: Linear,
    /// Heads.
    pub heads: usize,
}

impl SelfAttention {
    /// `[b, n, d] -> [b, n, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_weights(x).0
    }

    /// The output and every head's attention matrix `[b, heads, n, n]` (its rows sum to 1):
    /// the fused core on burn-flex, [`Self::forward_weights_ops`] elsewhere.
    pub fn forward_weights(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        if !fused::is_flex(&x.device()) {
            return self.forward_weights_ops(x);
        }
        let qkv = self.qkv.forward(x).into_dispatch();
        let r =
            <burn::backend::Dispatch as fused::FusedAttention>::fused_attention(qkv, self.heads);
        let heads = Tensor::<3>::from_dispatch(r.heads);
        (self.out.forward(heads), Tensor::from_dispatch(r.weights))
    }

    /// [`Self::forward_weights`] on burn's tensor operations, on any backend.
    pub fn forward_weights_ops(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let dh = d / h;
        // [b, n, 3, h, dh] -> [3, b, h, n, dh]
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, h, dh])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b, h, n, dh]);
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f32).sqrt());
        let weights = activation::softmax(scores, 3);
        let heads = weights.clone().matmul(v).swap_dims(1, 2).reshape([b, n, d]);
        (self.out.forward(heads), weights)
    }
}

/// Patches of an image as tokens: `proj` (a convolution with kernel and stride the patch side)
/// maps each patch to a token, `position` (`[tokens, dim]`) is added to each sample's tokens.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// The patch projection.
    pub proj: Conv2d,
    /// The learned position embedding.
    pub position: Param<Tensor<2>>,
}

impl PatchEmbed {
    /// `[b, c, h, w] -> [b, (h/p)·(w/p), dim]`, patches in row-major order.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let y = self.proj.forward(x);
        let [b, d, hp, wp] = y.dims();
        let tokens = y.reshape([b, d, hp * wp]).swap_dims(1, 2);
        tokens + self.position.val().unsqueeze()
    }
}
