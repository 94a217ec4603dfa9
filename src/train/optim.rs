//! Optimisers with PyTorch's update rules, applied through burn's module mapper.
//!
//! The state (momentum buffers, Adam moments) is kept per tensor under its stable name as a flat
//! `[numel]` tensor, so it can be saved beside the weights and a resumed run continues exactly.
//!
//! - SGD: `g' = g + wd·w`; `b = μ·b + g'` (first step `b = g'`); `d = g' + μ·b` (Nesterov) or
//!   `d = b`; `w ← w − lr·d`. With μ = 0, `d = g'`.
//! - Adam: `g' = g + wd·w`; `m = β₁m + (1−β₁)g'`; `v = β₂v + (1−β₂)g'²`;
//!   `w ← w − lr·(m/(1−β₁ᵗ)) / (sqrt(v/(1−β₂ᵗ)) + ε)`.
//! - AdamW: `w ← w·(1 − lr·wd)`, then the Adam update with `g`.

use crate::model::path::{PathMap, map_with_path};
use crate::spec::OptimizerSpec;
use burn::module::{Module, Param};
use burn::tensor::{Gradients, Tensor};
use std::collections::HashMap;

/// State of one tensor.
#[derive(Clone, Debug)]
pub struct SlotState {
    /// Momentum buffer (SGD) or first moment (Adam).
    pub m: Option<Tensor<1>>,
    /// Second moment (Adam).
    pub v: Option<Tensor<1>>,
}

/// An optimiser and its state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// Which rule.
    pub spec: OptimizerSpec,
    /// Weight decay.
    pub weight_decay: f64,
    /// Steps taken (Adam's bias correction uses it).
    pub steps: u64,
    /// Per-tensor state keyed by burn's module path.
    pub state: HashMap<String, SlotState>,
}

/// On-device reductions gathered during a step, one tensor per trainable tensor.
#[derive(Debug, Default)]
pub struct StepReductions {
    /// Per tensor `[Σg²]` (width 1) or `[Σg², Σw², Σ(w_after − w_before)²]` (width 3), with `w`
    /// the weights before the step; zeros for a tensor without gradient.
    pub sums: Vec<Tensor<1>>,
    /// 3 when probing or on the CPU backend (whose fused update computes all three in its one
    /// pass), else 1.
    pub width: usize,
}

struct StepMapper<'a> {
    opt: &'a mut Optimizer,
    grads: &'a Gradients,
    lr: f64,
    probe: bool,
    out: StepReductions,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(spec: OptimizerSpec, weight_decay: f64) -> Self {
        Self {
            spec,
            weight_decay,
            steps: 0,
            state: HashMap::new(),
        }
    }

    /// Applies one update to every tensor of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(
        &mut self,
        module: M,
        grads: &Gradients,
        lr: f64,
        probe: bool,
    ) -> (M, StepReductions) {
        self.steps += 1;
        let mapper = StepMapper {
            opt: self,
            grads,
            lr,
            probe,
            out: StepReductions {
                sums: Vec::new(),
                width: if probe { 3 } else { 1 },
            },
        };
        let (module, mapper) = map_with_path(module, mapper);
        (module, mapper.out)
    }

    /// The update as one fused pass on burn-flex (`model::fused`): returns the new weights and
    /// `[Σg², Σw², Σu²]`.
    fn update_fused<const D: usize>(
        &mut self,
        key: &str,
        w: Tensor<D>,
        g: Tensor<D>,
        lr: f64,
    ) -> (Tensor<D>, Tensor<1>) {
        use crate::model::fused::{FusedRule, FusedStep, optimizer_step};
        let dims = w.dims();
        let n = w.shape().num_elements();
        let wd = self.weight_decay;
        let t = self.steps as i32;
        let (rule, coupled_wd) = match self.spec {
            OptimizerSpec::Sgd { momentum, nesterov } => (
                FusedRule::Sgd {
                    momentum: momentum as f32,
                    nesterov,
                },
                wd,
            ),
            _ => {
                let (beta1, beta2, epsilon, decoupled) = self.spec.adam_parts().unwrap_or_default();
                (
                    FusedRule::Adam {
                        beta1: beta1 as f32,
                        one_minus_beta1: (1.0 - beta1) as f32,
                        beta2: beta2 as f32,
                        one_minus_beta2: (1.0 - beta2) as f32,
                        epsilon: epsilon as f32,
                        step_size: (lr / (1.0 - beta1.powi(t))) as f32,
                        inv_bias2: (1.0 / (1.0 - beta2.powi(t))) as f32,
                        decay_factor: (decoupled && wd > 0.0).then_some((1.0 - lr * wd) as f32),
                    },
                    if decoupled { 0.0 } else { wd },
                )
            }
        };
        let slot = self
            .state
            .entry(key.to_string())
            .or_insert(SlotState { m: None, v: None });
        let (nw, m, v, sums) = optimizer_step(
            w.reshape([n]),
            g.reshape([n]),
            slot.m.take(),
            slot.v.take(),
            FusedStep {
                lr: lr as f32,
                weight_decay: coupled_wd as f32,
                rule,
            },
        );
        slot.m = m;
        slot.v = v;
        (nw.reshape(dims), sums)
    }

    /// One update of one tensor. The state is stored flat and reshaped to the tensor's shape
    /// here; both are contiguous, so neither reshape copies.
    fn update<const D: usize>(
        &mut self,
        key: &str,
        w: Tensor<D>,
        g: Tensor<D>,
        lr: f64,
    ) -> Tensor<D> {
        let dims = w.dims();
        let n = w.shape().num_elements();
        let load = |t: Option<Tensor<1>>| t.map(|t| t.reshape(dims));
        let wd = self.weight_decay;
        let t = self.steps as i32;
        let slot = self
            .state
            .entry(key.to_string())
            .or_insert(SlotState { m: None, v: None });
        match self.spec {
            OptimizerSpec::Sgd { momentum, nesterov } => {
                let g = if wd > 0.0 {
                    g + w.clone().mul_scalar(wd)
                } else {
                    g
                };
                let d = if momentum > 0.0 {
                    let buf = match load(slot.m.take()) {
                        Some(b) => b.mul_scalar(momentum) + g.clone(),
                        None => g.clone(),
                    };
                    slot.m = Some(buf.clone().reshape([n]));
                    if nesterov {
                        g + buf.mul_scalar(momentum)
                    } else {
                        buf
                    }
                } else {
                    g
                };
                w - d.mul_scalar(lr)
            }
            _ => {
                let (beta1, beta2, epsilon, decoupled) = self.spec.adam_parts().unwrap_or_default();
                let (w, g) = if wd > 0.0 && decoupled {
                    (w.mul_scalar(1.0 - lr * wd), g)
                } else if wd > 0.0 {
                    let g = g + w.clone().mul_scalar(wd);
                    (w, g)
                } else {
                    (w, g)
                };
                let m = match load(slot.m.take()) {
                    Some(m) => m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1),
                    None => g.clone().mul_scalar(1.0 - beta1),
                };
                let v = match load(slot.v.take()) {
                    Some(v) => v.mul_scalar(beta2) + g.square().mul_scalar(1.0 - beta2),
                    None => g.square().mul_scalar(1.0 - beta2),
                };
                slot.m = Some(m.clone().reshape([n]));
                slot.v = Some(v.clone().reshape([n]));
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                let denom = v.mul_scalar(1.0 / bc2).sqrt().add_scalar(epsilon);
                w - (m.mul_scalar(lr / bc1) / denom)
            }
        }
    }
}

impl PathMap for StepMapper<'_> {
    fn map<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        // BatchNorm running statistics pass through mappers as floats; they are buffers that
        // the optimiser neither updates nor reports.
        if !tensor.is_require_grad() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let device = tensor.device();
        let fused = crate::model::fused::is_flex(&device);
        if fused {
            self.out.width = 3;
        }
        let Some(grad) = tensor.grad(self.grads) else {
            let inner = device.clone().inner();
            let zero = Tensor::<1>::zeros([1], &inner);
            self.out.sums.push(if self.out.width == 3 {
                Tensor::cat(
                    vec![
                        zero.clone(),
                        crate::model::probe::sum_sq(tensor.clone()),
                        zero,
                    ],
                    0,
                )
            } else {
                zero
            });
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let w = tensor.inner();
        let key = path.join(".");
        let new = if fused {
            let (new, sums) = self.opt.update_fused(&key, w, grad, self.lr);
            self.out.sums.push(sums);
            new
        } else {
            let g_sq = grad.clone().square().sum();
            let new = self.opt.update(&key, w.clone(), grad, self.lr);
            self.out.sums.push(if self.probe {
                Tensor::cat(
                    vec![
                        g_sq,
                        w.clone().square().sum(),
                        (new.clone() - w).square().sum(),
                    ],
                    0,
                )
            } else {
                g_sq
            });
            new
        };
        let mut t: Tensor<D> = Tensor::from_inner(new);
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}
