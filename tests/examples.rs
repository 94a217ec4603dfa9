//! The example runs shipped in `saved_runs/` load, and tell the lab's story.

use reslab::metrics::series;
use reslab::runfile::{self, RunStatus};
use std::path::Path;

#[test]
fn shipped_example_runs_load_and_the_residual_one_trains_better() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("saved_runs");
    let load = |name: &str| runfile::load(&dir.join(format!("{name}.reslab.json"))).unwrap();
    let plain = load("mlp-plain-20-mnist");
    let res = load("mlp-res-20-mnist");
    let mut total = 0;
    for run in [&plain, &res] {
        assert_eq!(run.run.status, RunStatus::Finished);
        assert_eq!(run.checkpoint.as_ref().unwrap().step, 400);
        total += std::fs::metadata(&run.path).unwrap().len();
        total += run.run.weights.as_ref().unwrap().bytes;
    }
    assert!(total < 3_000_000, "examples take {total} bytes");
    let last = |r: &runfile::LoadedRun, s: &str| r.run.history.get(s, "").unwrap().last().unwrap();
    assert!(last(&res, series::VAL_ACCURACY) > last(&plain, series::VAL_ACCURACY) + 0.05);
}
