//! Setup shared by the integration tests: a fresh temporary folder, a preset network for a
//! dataset and a training session.
// Each test crate uses its own subset of these.
#![allow(dead_code)]

pub mod cli;
pub mod kernels;
pub mod lab;

use burn::tensor::Device;
use reslab::data;
use reslab::spec::{DatasetSpec, NetSpec, PresetOptions, TrainConfig, preset, validate};
use reslab::train::Session;

/// The MLP preset `name` sized for `dataset`'s input and classes.
pub fn mlp(name: &str, dataset: &DatasetSpec, width: usize, bn: bool) -> NetSpec {
    preset(
        name,
        &PresetOptions {
            width,
            norm: if bn {
                reslab::spec::Norm::Batch
            } else {
                reslab::spec::Norm::None
            },
            ..PresetOptions::for_dataset(dataset)
        },
    )
    .unwrap()
}

/// A session on `device` for a valid spec, config and dataset.
pub fn session_on(
    spec: &NetSpec,
    config: &TrainConfig,
    dataset: &DatasetSpec,
    device: Device,
) -> Session {
    Session::new(
        &validate(spec).unwrap(),
        config,
        data::load(dataset).unwrap(),
        device,
    )
    .unwrap()
}

/// A session on the CPU (flex, autodiff).
pub fn session(spec: &NetSpec, config: &TrainConfig, dataset: &DatasetSpec) -> Session {
    session_on(spec, config, dataset, Device::flex().autodiff())
}

/// A fresh, empty folder `reslab-{suite}-{name}-{pid}` in the system's temporary folder (the
/// process id keeps concurrent test runs apart; what an earlier run left there is removed).
pub fn temp_dir(suite: &str, name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("reslab-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
