//! Moving a session's state to and from a host [`Checkpoint`]: weights and BN buffers under
//! their stable names, optimiser state under `optim.m.<name>` / `optim.v.<name>`.

use super::{Session, TrainError};
use crate::metrics::{Checkpoint, NamedTensor};
use crate::model::path::{PathMap, PathVisit, map_with_path, visit_with_path};
use crate::model::stable_name;
use crate::spec::ValidSpec;
use burn::module::Param;
use burn::tensor::{Tensor, TensorData};
use std::collections::HashMap;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.inner()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default()
}

struct Exporter<'a> {
    spec: &'a ValidSpec,
    out: Vec<NamedTensor>,
    /// burn path -> stable name, for the optimiser state.
    names: HashMap<String, String>,
}

impl PathVisit for Exporter<'_> {
    fn visit<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
        let name = stable_name(self.spec, path);
        let t = param.val();
        self.names.insert(path.join("."), name.clone());
        self.out.push(NamedTensor {
            name,
            shape: t.dims().to_vec(),
            data: host(t),
        });
    }
}

struct Importer<'a> {
    spec: &'a ValidSpec,
    tensors: HashMap<&'a str, &'a NamedTensor>,
    error: Option<String>,
    names: HashMap<String, String>,
}

impl PathMap for Importer<'_> {
    fn map<const D: usize>(
        &mut self,
        path: &[String],
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let name = stable_name(self.spec, path);
        self.names.insert(path.join("."), name.clone());
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let Some(t) = self.tensors.get(name.as_str()) else {
            self.error
                .get_or_insert(format!("the weights have no tensor \"{name}\""));
            return Param::from_mapped_value(id, tensor, mapper);
        };
        if t.shape != dims || t.data.len() != dims.iter().product::<usize>() {
            self.error.get_or_insert(format!(
                "tensor \"{name}\" has shape {:?} but the network needs {:?}",
                t.shape, dims
            ));
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let device = tensor.device();
        let require_grad = tensor.is_require_grad();
        let mut new: Tensor<D> = Tensor::from_data(TensorData::new(t.data.clone(), dims), &device);
        if require_grad {
            new = new.require_grad();
        }
        Param::from_mapped_value(id, new, mapper)
    }
}

impl Session {
    /// The session's state as host tensors.
    pub fn checkpoint(&self) -> Checkpoint {
        let e = visit_with_path(
            &self.model.net,
            Exporter {
                spec: &self.model.spec,
                out: Vec::new(),
                names: HashMap::new(),
            },
        );
        let mut tensors = e.out;
        let mut keys: Vec<&String> = self.optimizer.state.keys().collect();
        keys.sort();
        for key in keys {
            let slot = &self.optimizer.state[key];
            let name = e.names.get(key).cloned().unwrap_or_else(|| key.clone());
            for (prefix, t) in [
                (Checkpoint::MOMENT1, &slot.m),
                (Checkpoint::MOMENT2, &slot.v),
            ] {
                if let Some(t) = t {
                    tensors.push(NamedTensor {
                        name: format!("{prefix}{name}"),
                        shape: t.dims().to_vec(),
                        data: host(t.clone()),
                    });
                }
            }
        }
        let (epoch, epoch_start, cursor) = self.sampler.position();
        Checkpoint {
            step: self.step,
            optimizer_steps: self.optimizer.steps,
            tensors,
            sampler: Some(crate::metrics::SamplerPosition {
                epoch,
                epoch_start,
                cursor,
            }),
        }
    }

    /// Loads a checkpoint into this freshly built session: weights, BN buffers, optimiser state,
    /// the step counter and the position in the batch order, so training continues exactly.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), TrainError> {
        // Replaying the batch order costs a moment per step; a counter past the most steps a
        // run may take can only come from a damaged file (and would replay for ever).
        if ck.step > crate::spec::MAX_STEPS || ck.optimizer_steps > crate::spec::MAX_STEPS {
            return Err(TrainError::TooLarge(format!(
                "the checkpoint is at step {}, past the {} steps a run may take",
                ck.step.max(ck.optimizer_steps),
                crate::spec::MAX_STEPS
            )));
        }
        let imp = Importer {
            spec: &self.model.spec,
            tensors: ck.tensors.iter().map(|t| (t.name.as_str(), t)).collect(),
            error: None,
            names: HashMap::new(),
        };
        let net = std::mem::replace(&mut self.model.net, crate::model::placeholder_net());
        let (net, imp) = map_with_path(net, imp);
        self.model.net = net;
        if let Some(e) = imp.error {
            return Err(TrainError::Mismatch(e));
        }
        let inner = self.device.clone().inner();
        self.optimizer.state.clear();
        for (path, name) in &imp.names {
            let get = |prefix: &str| {
                ck.get(&format!("{prefix}{name}")).map(|t| {
                    Tensor::<1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]), &inner)
                })
            };
            let (m, v) = (get(Checkpoint::MOMENT1), get(Checkpoint::MOMENT2));
            if m.is_some() || v.is_some() {
                self.optimizer
                    .state
                    .insert(path.clone(), super::SlotState { m, v });
            }
        }
        self.optimizer.steps = ck.optimizer_steps;
        self.step = ck.step;
        self.sampler = crate::data::BatchSampler::new(
            self.data.train.len,
            self.config.batch_size,
            self.config.seed,
        );
        // Seek to the saved position when it is the one `step` batches lead to (one shuffle);
        // otherwise (an older file) replay the batch order.
        let expected = self.sampler.expected_position(ck.step);
        let seeked = ck.sampler.is_some_and(|p| {
            (p.epoch, p.cursor) == expected && self.sampler.seek(p.epoch, p.epoch_start, p.cursor)
        });
        if !seeked {
            self.sampler.skip(ck.step);
        }
        Ok(())
    }
}
