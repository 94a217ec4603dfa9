//! Ctrl-C, SIGTERM and SIGHUP as a request to stop and save: one process-wide flag, set by the
//! handler that [`install`] registers (the `ctrlc` crate with its `termination` feature) and
//! read by whoever drives a run (the CLI's training loop, the lab's close path). A leaf module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static WAKER: Mutex<Option<Box<dyn Fn() + Send>>> = Mutex::new(None);

/// Installs the handler once per process; later calls do nothing. Returns whether a handler is
/// in place (another library may have taken the signals first).
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            REQUESTED.store(true, Ordering::SeqCst);
            if let Ok(w) = WAKER.lock()
                && let Some(w) = w.as_ref()
            {
                w();
            }
        })
        .is_ok()
    })
}

/// Whether Ctrl-C, SIGTERM or SIGHUP arrived.
pub fn stop_requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Called from the signal-handling thread after the flag is set, e.g. to wake an idle window so
/// that it notices the request.
pub fn set_waker(waker: Box<dyn Fn() + Send>) {
    if let Ok(mut w) = WAKER.lock() {
        *w = Some(waker);
    }
}
