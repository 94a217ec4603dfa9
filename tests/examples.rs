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

/// The model core names its tensors as it always did: the shipped version-1 runs' weights go
/// into today's model and give the validation accuracy and loss those runs recorded.
#[test]
fn shipped_runs_weights_load_into_the_model_and_give_their_recorded_accuracy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("saved_runs");
    for name in ["mlp-plain-20-mnist", "mlp-res-20-mnist"] {
        let loaded = runfile::load(&dir.join(format!("{name}.reslab.json"))).unwrap();
        let run = &loaded.run;
        let valid = reslab::spec::validate(&run.spec).unwrap();
        let data = reslab::data::load(&run.dataset).unwrap();
        let device = burn::tensor::Device::flex().autodiff();
        let mut s = reslab::train::Session::new(&valid, &run.config, data, device).unwrap();
        s.restore(loaded.checkpoint.as_ref().unwrap()).unwrap();
        let e = s.evaluate();
        let last = |k: &str| run.history.get(k, "").unwrap().last().unwrap();
        let (acc, loss) = (last(series::VAL_ACCURACY), last(series::VAL_LOSS));
        assert!(
            (e.accuracy - acc).abs() <= 0.001,
            "{name}: accuracy {} against the recorded {acc}",
            e.accuracy
        );
        assert!(
            (e.loss - loss).abs() <= 1e-3 * loss.abs().max(1.0),
            "{name}: loss {} against the recorded {loss}",
            e.loss
        );
    }
}
