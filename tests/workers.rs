//! Training steps on rayon's workers (`model::fused::on_workers`): a step waits for its probe
//! statistics without taking its worker from the pool, so nothing stalls with one worker thread
//! or with two runs at once; and the numbers do not depend on where the step runs.
//!
//! This binary runs rayon's global pool with one thread, the case where a plain wait would hang.

mod common;

use common::{mlp, session};
use reslab::model::fused::recv_on_worker;
use reslab::spec::{DatasetSpec, TrainConfig};
use std::sync::mpsc::channel;
use std::time::Duration;

fn one_thread_pool() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global()
            .expect("the global pool is built here first");
    });
}

/// Runs `f` on a thread of its own and fails the test if it has not finished in `limit`.
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("still waiting: the pool's only worker is stuck")
}

/// The pool's only worker waits for a thread that itself needs the pool: a plain `recv` would
/// wait forever; `recv_on_worker` runs the queued work meanwhile.
#[test]
fn a_worker_waiting_for_a_helper_that_needs_the_pool_does_not_hang() {
    one_thread_pool();
    let got = within(Duration::from_secs(20), || {
        rayon::scope(|_| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let (a, b) = rayon::join(|| 6, || 7);
                let _ = tx.send(a * b);
            });
            recv_on_worker(&rx)
        })
    });
    assert_eq!(got, Some(42));
}

/// Two runs at once with probes on every step, on one worker thread: both finish, and with the
/// same seed their losses and probe records agree step by step.
#[test]
fn two_probed_runs_at_once_on_one_worker_finish_alike() {
    one_thread_pool();
    let train = || {
        let dataset = DatasetSpec::from_name("spirals").unwrap();
        let spec = mlp("mlp-res-4", &dataset, 32, true);
        let config = TrainConfig {
            duration: reslab::spec::Duration::Steps(30),
            probe_every: 1,
            ..TrainConfig::default()
        };
        let mut s = session(&spec, &config, &dataset);
        (0..30)
            .map(|_| {
                let out = s.train_step();
                let probe = out.probe.expect("a probe on every step");
                (
                    out.record.loss,
                    probe.layers.len(),
                    format!("{:?}", probe.layers),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = within(Duration::from_secs(120), move || {
        let other = std::thread::spawn(train);
        let mine = train();
        (mine, other.join().expect("the other run"))
    });
    assert!(
        a.iter()
            .all(|(loss, layers, _)| loss.is_finite() && *layers > 0)
    );
    assert_eq!(a, b);
}
