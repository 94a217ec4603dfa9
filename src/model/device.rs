//! Runtime device selection: burn-flex on the CPU, wgpu when asked and available, or a
//! `reslab serve` endpoint through burn's remote backend.

use crate::spec::{DeviceChoice, Endpoint, TOKEN_VAR};
use burn::tensor::{Device, Tensor};
use thiserror::Error;

/// Why the asked-for device cannot be used.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DeviceError {
    /// No usable wgpu adapter.
    #[error("the GPU device is not available ({0}); use the CPU device instead")]
    GpuUnavailable(String),
    /// No `reslab serve` answered at the endpoint, or it refused the token.
    #[error("the remote device {endpoint} is not available: {reason}")]
    RemoteUnavailable {
        /// The endpoint asked for.
        endpoint: String,
        /// What failed.
        reason: String,
    },
}

/// Makes the device for a choice, with autodiff enabled when `autodiff` is true.
///
/// The GPU and remote paths run a two-element sum on the new device inside `catch_unwind`,
/// because burn reports a missing adapter or a lost connection by panicking; the panic becomes
/// a [`DeviceError`] naming the reason. A remote device connects first (burn's `init`), with the
/// token from [`TOKEN_VAR`] when it is set.
pub fn make_device(choice: &DeviceChoice, autodiff: bool) -> Result<Device, DeviceError> {
    let device = match choice {
        DeviceChoice::Cpu => Device::flex(),
        DeviceChoice::Gpu => {
            // burn reports a missing adapter by panicking, at creation or at first use.
            let device = catch_quietly(|| Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
                .map_err(DeviceError::GpuUnavailable)?;
            check_sum(&device).map_err(DeviceError::GpuUnavailable)?
        }
        DeviceChoice::Remote(endpoint) => {
            let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
            remote_device(endpoint, token.as_deref())?
        }
    };
    Ok(if autodiff { device.autodiff() } else { device })
}

/// The device of the `reslab serve` at `endpoint`, presenting `token`: connected (burn's `init`)
/// and checked with a two-element sum.
pub fn remote_device(endpoint: &Endpoint, token: Option<&str>) -> Result<Device, DeviceError> {
    use burn::tensor::remote::{ConnectError, RemoteHost};
    let unavailable = |reason: String| DeviceError::RemoteUnavailable {
        endpoint: endpoint.to_string(),
        reason,
    };
    let mut host = RemoteHost::websocket(endpoint.url());
    if let Some(token) = token {
        host = host.with_credential(token.to_string());
    }
    let device = Device::remote_options(&host).init().map_err(|e| {
        unavailable(match e {
            ConnectError::Unauthorized => format!(
                "the server refused the token (set {TOKEN_VAR} to the token `reslab serve` printed)"
            ),
            e => format!("no reslab serve answered ({e})"),
        })
    })?;
    // burn 0.22.1 keeps a process's first session with an address (and token) for the life of
    // the process: a server restarted there answers only a new process (tests/remote.rs).
    check_sum(&device).map_err(|why| {
        unavailable(format!(
            "it stopped answering ({why}); if it was restarted, restart this reslab too (burn \
             keeps one session per address and token for the life of a process)"
        ))
    })
}

/// Runs `[1, 2].sum()` on `device` and reads it back: the device if it gives 3, else why not.
fn check_sum(device: &Device) -> Result<Device, String> {
    let probe = catch_quietly(|| {
        let t = Tensor::<1>::from_floats([1.0, 2.0], device);
        t.sum().into_scalar::<f32>()
    });
    match probe {
        Ok(3.0) => Ok(device.clone()),
        Ok(v) => Err(format!("a test sum gave {v} instead of 3")),
        Err(e) if e.is_empty() => Err("it could not start".to_string()),
        Err(e) => Err(e),
    }
}

/// The message of a caught panic, when it carried one.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> Option<String> {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
}

thread_local! {
    /// Whether this thread runs inside [`catch_quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `catch_quietly` sections running in the process.
static QUIET_SECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `f`, turning a panic into its message (empty when it carried none) without printing the
/// panic's report: burn reports a lost GPU or remote server by panicking, and the caller says it
/// better. A process-wide panic hook, installed once, stays quiet for a panic on a thread inside
/// `catch_quietly`, and on an unnamed thread (a worker pool's, whose panic reaches the caller)
/// while one runs; every other panic goes to the hook that was there before.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    use std::sync::atomic::Ordering::SeqCst;
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let pool = std::thread::current().name().is_none() && QUIET_SECTIONS.load(SeqCst) > 0;
            if !(QUIET.get() || pool) {
                before(info);
            }
        }));
    });
    let was = QUIET.replace(true);
    QUIET_SECTIONS.fetch_add(1, SeqCst);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_SECTIONS.fetch_sub(1, SeqCst);
    QUIET.set(was);
    out.map_err(|e| panic_text(e.as_ref()).unwrap_or_default())
}
