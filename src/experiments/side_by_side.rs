//! Several independent training runs of an experiment at once. On the local CPU one run's step
//! keeps two cores only partly busy (the last profile: 86 % and 75 %), so runs train side by
//! side, each on a rayon pool of its own with its share of the threads. Every kernel gives the
//! same bits on any number of threads, so each run's numbers are the ones it gives alone. On
//! another device (a GPU, a remote server) the runs train one after another.

use super::util::{self, Job, Trained};
use super::{ExperimentError, ExperimentOptions, ProgressFn};
use crate::spec::DeviceChoice;
use std::sync::{Arc, Mutex};

/// Trains every job, as many at once as the pool has threads (each on `threads / k` of them),
/// and hands each finished run to `then` in the jobs' order. A group's progress is reported by
/// its first run over the group's whole span.
pub(crate) fn train_each(
    jobs: &[Job<'_>],
    opts: &mut ExperimentOptions,
    then: impl FnMut(usize, Trained, &mut ExperimentOptions) -> Result<(), ExperimentError>,
) -> Result<(), ExperimentError> {
    run_each(jobs, opts, |job, opts| util::train(job, opts, None), then)
}

/// [`train_each`] with another way to train a job (`kept::train_or_reuse`, say): `train` runs
/// on the job's own thread and pool.
pub(crate) fn run_each<T: Send>(
    jobs: &[Job<'_>],
    opts: &mut ExperimentOptions,
    train: impl Fn(&Job<'_>, &mut ExperimentOptions) -> Result<T, ExperimentError> + Sync,
    mut then: impl FnMut(usize, T, &mut ExperimentOptions) -> Result<(), ExperimentError>,
) -> Result<(), ExperimentError> {
    let threads = rayon::current_num_threads();
    let at_once = match opts.device {
        DeviceChoice::Cpu => threads.max(1),
        DeviceChoice::Gpu | DeviceChoice::Remote(_) => 1,
    };
    let mut done = 0;
    for group in jobs.chunks(at_once) {
        let trained = if group.len() == 1 {
            vec![train(&group[0], opts)]
        } else {
            train_group(group, threads / group.len(), opts, &train)
        };
        for t in trained {
            then(done, t?, opts)?;
            done += 1;
        }
    }
    Ok(())
}

/// The runs of `group` on threads of their own, each with a pool of `threads` workers.
fn train_group<T: Send>(
    group: &[Job<'_>],
    threads: usize,
    opts: &mut ExperimentOptions,
    train: &(impl Fn(&Job<'_>, &mut ExperimentOptions) -> Result<T, ExperimentError> + Sync),
) -> Vec<Result<T, ExperimentError>> {
    let span = (group[0].span.0, group[group.len() - 1].span.1);
    let progress = Arc::new(Mutex::new(opts.progress.take()));
    let results = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .iter()
            .enumerate()
            .map(|(k, job)| {
                let own = sharing(opts, (k == 0).then(|| forward(&progress)));
                s.spawn(move || {
                    let job = Job {
                        span,
                        ..job.clone()
                    };
                    let run = move || {
                        let mut own = own;
                        train(&job, &mut own)
                    };
                    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                        Ok(pool) => pool.install(run),
                        // No pool of its own: the run trains on the global one.
                        Err(_) => run(),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    opts.progress = progress.lock().map(|mut p| p.take()).unwrap_or(None);
    results
}

/// A progress callback that passes reports on to the shared one.
fn forward(progress: &Arc<Mutex<Option<ProgressFn>>>) -> ProgressFn {
    let progress = Arc::clone(progress);
    Box::new(move |fraction, message| {
        if let Ok(mut p) = progress.lock()
            && let Some(p) = p.as_mut()
        {
            p(fraction, message);
        }
    })
}

/// `opts` for one run of a group: the same settings and cancel flag, its own progress callback.
fn sharing(opts: &ExperimentOptions, progress: Option<ProgressFn>) -> ExperimentOptions {
    ExperimentOptions {
        quick: opts.quick,
        seed: opts.seed,
        progress,
        cancel: Arc::clone(&opts.cancel),
        dataset: opts.dataset.clone(),
        keep_runs: opts.keep_runs.clone(),
        device: opts.device.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Norm, PresetOptions};

    /// What a run ended with, as bits: its losses and every trainable value.
    fn bits(t: &Trained) -> (Vec<u32>, Vec<u32>) {
        let losses = t.losses.iter().map(|l| l.to_bits()).collect();
        let params = util::params(&t.session.model)
            .iter()
            .flat_map(|p| p.data.iter().map(|v| v.to_bits()))
            .collect();
        (losses, params)
    }

    /// Runs side by side on one-thread pools (and the odd one alone on the two-thread pool)
    /// end with exactly the numbers each gives alone on the global pool, in the jobs' order,
    /// and the caller's progress callback comes back.
    #[test]
    fn runs_side_by_side_end_as_they_end_alone() {
        let (spec, data) = util::mnist().expect("the shipped MNIST-10k");
        let cnn = |norm| {
            let opts = PresetOptions {
                norm,
                ..PresetOptions::for_dataset(&spec)
            };
            util::preset_spec("cnn-3", &opts).expect("cnn-3")
        };
        let job = |name: &str, net, seed| {
            let mut config = util::sgd_config(12, seed);
            config.probe_every = 4;
            Job {
                name: name.into(),
                spec: net,
                config,
                dataset: &spec,
                data: &data,
                span: (0.0, 1.0),
            }
        };
        let jobs = [
            job("mlp", util::mlp("mlp-res-4", &spec, 32, true).unwrap(), 1),
            job("bn", cnn(Norm::Batch), 2),
            job("gn", cnn(Norm::Group { groups: 4 }), 3),
        ];
        let mut opts = ExperimentOptions::new(true, 0);
        let alone: Vec<_> = jobs
            .iter()
            .map(|j| bits(&util::train(j, &mut opts, None).expect("trains")))
            .collect();
        let reports = Arc::new(Mutex::new(0usize));
        let counted = Arc::clone(&reports);
        opts.progress = Some(Box::new(move |_, _| *counted.lock().unwrap() += 1));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut side = Vec::new();
        pool.install(|| {
            train_each(&jobs, &mut opts, |k, t, _| {
                side.push((k, bits(&t)));
                Ok(())
            })
        })
        .expect("trains");
        let order: Vec<usize> = side.iter().map(|(k, _)| *k).collect();
        assert_eq!(order, [0, 1, 2]);
        for ((_, got), want) in side.iter().zip(&alone) {
            assert!(
                got == want,
                "a run side by side differs from the same run alone"
            );
        }
        assert!(
            opts.progress.is_some(),
            "the progress callback is handed back"
        );
        assert!(
            *reports.lock().unwrap() > 0,
            "the group's first run reports"
        );
    }
}
