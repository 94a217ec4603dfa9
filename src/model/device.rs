//! Runtime device selection: burn-flex on the CPU, wgpu when asked and available.

use crate::spec::DeviceChoice;
use burn::tensor::{Device, Tensor};
use thiserror::Error;

/// Why the asked-for device cannot be used.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DeviceError {
    /// No usable wgpu adapter.
    #[error("the GPU device is not available ({0}); use the CPU device instead")]
    GpuUnavailable(String),
}

/// Makes the device for a choice, with autodiff enabled when `autodiff` is true.
///
/// The GPU path creates a wgpu device and runs a one-element computation on it inside
/// `catch_unwind`, because burn reports a missing adapter by panicking; the panic becomes a
/// [`DeviceError::GpuUnavailable`] naming the reason.
pub fn make_device(choice: DeviceChoice, autodiff: bool) -> Result<Device, DeviceError> {
    let device = match choice {
        DeviceChoice::Cpu => Device::flex(),
        DeviceChoice::Gpu => {
            let probe = std::panic::catch_unwind(|| {
                let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
                let t = Tensor::<1>::from_floats([1.0, 2.0], &device);
                let v: f32 = t.sum().into_scalar();
                (device, v)
            });
            match probe {
                Ok((device, 3.0)) => device,
                Ok((_, v)) => {
                    return Err(DeviceError::GpuUnavailable(format!(
                        "a test sum gave {v} instead of 3"
                    )));
                }
                Err(e) => {
                    let reason = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "wgpu could not start".to_string());
                    return Err(DeviceError::GpuUnavailable(reason));
                }
            }
        }
    };
    Ok(if autodiff { device.autodiff() } else { device })
}

/// The device in words, for run files and status bars.
pub fn describe(choice: DeviceChoice) -> &'static str {
    match choice {
        DeviceChoice::Cpu => "CPU (burn-flex)",
        DeviceChoice::Gpu => "GPU (wgpu)",
    }
}
