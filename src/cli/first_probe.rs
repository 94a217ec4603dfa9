//! `reslab bench --first-probe`: how soon the lab's CNN run shows its first numbers.
//!
//! The lab's Train button calls [`spawn_run`] with the lab's settings; this starts the same
//! worker with the same settings (the left side's defaults: MNIST-10k as shipped,
//! [`TrainConfig::lab_default`]: batch 128, probes every 10 steps, on the CPU) and the network
//! the preset picker builds for "CNN, ResNet" with n = 3 (cifar-resnet-20 on 1×28×28 inputs,
//! the picker's zero-padding shortcut), and times, from the call, the
//! run's start (data loaded, model built), its first step and its first probe. The window draws
//! what arrives on its next frame: the worker wakes it after the first event and then at most
//! every 30 ms.

use super::{CliError, runtime};
use crate::experiments::stats::median;
use crate::spec::{DataSource, DatasetSpec, PresetOptions, TrainConfig, preset};
use crate::train::{Autosave, RunRequest, TrainEvent, spawn_run};
use std::time::{Duration, Instant};

/// Seconds from [`spawn_run`] to three events of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// `Started`: the data loaded and the model built.
    pub started: f64,
    /// The first step's record.
    pub first_step: f64,
    /// The first probe record.
    pub first_probe: f64,
}

/// The lab's CNN run: its default settings with the "CNN, ResNet" preset, n = 3.
fn lab_cnn_request() -> Result<RunRequest, CliError> {
    let dataset = DatasetSpec::new(DataSource::Mnist10k);
    let opts = PresetOptions {
        shortcut: PresetOptions::LAB_SHORTCUT,
        ..PresetOptions::for_dataset(&dataset)
    };
    Ok(RunRequest {
        spec: preset("cifar-resnet-20", &opts).map_err(runtime)?,
        config: TrainConfig::lab_default(),
        dataset,
        resume: None,
        autosave: Autosave::default(),
    })
}

/// Starts the lab's CNN run, waits for its first probe and stops it.
fn measure_once() -> Result<Latency, CliError> {
    let t0 = Instant::now();
    let handle = spawn_run(lab_cnn_request()?, Box::new(|| {})).map_err(runtime)?;
    let (mut started, mut first_step) = (None, None);
    let secs = || t0.elapsed().as_secs_f64();
    let limit = Duration::from_secs(600);
    let result = loop {
        let event = match handle.events().recv_timeout(limit) {
            Ok(e) => e,
            Err(e) => break Err(runtime(format!("no probe within 10 minutes: {e}"))),
        };
        match event {
            TrainEvent::Started { .. } => started = Some(secs()),
            TrainEvent::Step(_) => {
                first_step.get_or_insert_with(secs);
            }
            TrainEvent::Probe(_) => {
                break Ok(Latency {
                    started: started.unwrap_or(f64::NAN),
                    first_step: first_step.unwrap_or(f64::NAN),
                    first_probe: secs(),
                });
            }
            TrainEvent::Failed(msg) => break Err(runtime(msg)),
            TrainEvent::Finished { .. } => break Err(runtime("the run ended without a probe")),
            _ => {}
        }
    };
    handle.stop();
    let _ = handle.join();
    result
}

/// Runs `repeat` measurements and prints each and their medians.
pub fn run(repeat: u32) -> Result<(), CliError> {
    crate::say!(
        "the lab's CNN run (cifar-resnet-20, MNIST-10k, batch 128, probes every 10 steps):"
    );
    crate::say!(
        "{:>5} {:>10} {:>12} {:>13}",
        "run",
        "started",
        "first step",
        "first probe"
    );
    let mut all = Vec::new();
    for i in 1..=repeat {
        let l = measure_once()?;
        crate::say!(
            "{i:>5} {:>9.2}s {:>11.2}s {:>12.2}s",
            l.started,
            l.first_step,
            l.first_probe
        );
        all.push(l);
    }
    let med = |f: fn(&Latency) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
    crate::say!(
        "{:>5} {:>9.2}s {:>11.2}s {:>12.2}s",
        "median",
        med(|l| l.started),
        med(|l| l.first_step),
        med(|l| l.first_probe)
    );
    Ok(())
}
