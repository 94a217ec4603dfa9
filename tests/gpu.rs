//! The wgpu path: trains like the CPU path when an adapter exists, and says clearly why not when
//! none does. CI installs Mesa's software Vulkan driver and sets `RESLAB_EXPECT_GPU=1`, so there
//! the GPU path must work.

mod common;

use reslab::model::{DeviceError, make_device};
use reslab::spec::*;

fn losses(device: burn::tensor::Device) -> Vec<f32> {
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let spec = common::mlp("mlp-res-2", &dataset, 16, true);
    let config = TrainConfig {
        duration: Duration::Steps(5),
        batch_size: 64,
        probe_every: 2,
        ..TrainConfig::default()
    };
    let mut s = common::session_on(&spec, &config, &dataset, device);
    let mut out = Vec::new();
    while !s.is_done() {
        let step = s.train_step();
        if let Some(p) = &step.probe {
            assert_eq!(p.layers.len(), spec.layers.len());
        }
        out.push(step.record.loss);
    }
    out
}

#[test]
fn gpu_device_trains_like_the_cpu_or_explains_why_it_cannot() {
    match make_device(&DeviceChoice::Gpu, true) {
        Ok(device) => {
            let gpu = losses(device);
            let cpu = losses(make_device(&DeviceChoice::Cpu, true).unwrap());
            for (g, c) in gpu.iter().zip(&cpu) {
                assert!(
                    (g - c).abs() < 1e-3 * c.abs().max(1.0),
                    "gpu {gpu:?} vs cpu {cpu:?}"
                );
            }
        }
        Err(DeviceError::GpuUnavailable(reason)) => {
            assert!(
                std::env::var_os("RESLAB_EXPECT_GPU").is_none(),
                "a GPU adapter was expected here: {reason}"
            );
            let msg = DeviceError::GpuUnavailable(reason).to_string();
            assert!(msg.contains("GPU device is not available"), "{msg}");
        }
        Err(e) => panic!("the GPU gave another device's error: {e}"),
    }
}
