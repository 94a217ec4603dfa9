//! The CNN version of the degradation experiment: He et al. 2016's CIFAR networks, plain-20
//! against ResNet-20, on MNIST-10k or a dataset the user names (CIFAR-10 from a folder).

use super::stats::{moving_average, tail_mean};
use super::{
    Experiment, ExperimentError, ExperimentFile, ExperimentOptions, LineSeries, fmt, util,
};
use crate::data;
use crate::metrics::series;
use crate::spec::{DataSource, DatasetSpec, PresetOptions, Shortcut, preset};

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "degradation-cnn",
    title: "Degradation, CNN version: cifar-plain-20 vs cifar-resnet-20",
    citation: "He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (CVPR), Fig. 6",
    what_to_see: [
        "Both nets have the same 20 weight layers, BN after every convolution and the same budget; only the identity shortcuts (option A: zero-padding where the width doubles) differ.",
        "He et al. (Fig. 6) find ResNet-20's training error below plain-20's throughout CIFAR-10 training; at 20 layers the gap is small, and it grows with depth (their plain-56 is worse than plain-20).",
        "The quick scale (20 steps) shows only the very start, where either net can be ahead; the full scale takes about 20 minutes per net on two CPU cores.",
    ],
    run,
};

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    // A CNN step costs ~2 s per 128 samples on two cores, so quick is a short look (a few
    // hundred samples per net) and full is the MLP experiment's budget.
    let (steps, batch) = if opts.quick { (20, 16) } else { (400, 128) };
    let dataset = opts
        .dataset
        .clone()
        .unwrap_or_else(|| DatasetSpec::new(DataSource::Mnist10k));
    let data = data::load(&dataset)?;
    let nets = ["cifar-plain-20", "cifar-resnet-20"];
    let mut loss = Vec::new();
    let mut acc = Vec::new();
    let mut loss_series = Vec::new();
    let mut acc_series = Vec::new();
    for (n, name) in nets.iter().enumerate() {
        let spec = preset(
            name,
            &PresetOptions {
                shortcut: Shortcut::ZeroPad,
                ..PresetOptions::for_dataset(&dataset)
            },
        )
        .map_err(|e| ExperimentError::Train(crate::train::TrainError::Mismatch(e.to_string())))?;
        let mut config = util::sgd_config(steps, opts.seed);
        config.batch_size = batch;
        // Validation is 2000 forward passes of a CNN: at the quick scale, only once at the end.
        config.eval_every = if opts.quick { steps } else { 50 };
        let n_f = nets.len() as f32;
        let t = util::train(
            name,
            &spec,
            &config,
            &dataset,
            data.clone(),
            opts,
            (n as f32 / n_f, (n + 1) as f32 / n_f),
            None,
        )?;
        let tail = (steps as usize / 5).max(5);
        loss.push(if t.diverged {
            f64::NAN
        } else {
            tail_mean(&t.losses, tail)
        });
        let val = t.run.history.get(series::VAL_ACCURACY, "");
        acc.push(
            val.and_then(|v| v.last())
                .map_or(f64::NAN, |a| 100.0 * a as f64),
        );
        let losses: Vec<f64> = t.losses.iter().map(|&l| l as f64).collect();
        loss_series.push(LineSeries {
            name: name.to_string(),
            points: moving_average(&losses, 10),
        });
        acc_series.push(LineSeries {
            name: name.to_string(),
            points: val.map_or(Vec::new(), |v| {
                v.steps
                    .iter()
                    .zip(&v.values)
                    .map(|(&s, &a)| [s as f64, 100.0 * a as f64])
                    .collect()
            }),
        });
        file.runs.push(t.run);
    }
    // No PASS/FAIL here: the issue asks for this view without a criterion, and a quick budget
    // is far too short to judge (after 20 steps either net can be ahead). The values go into
    // the notes.
    file.figures.extend(super::degradation::curve_figures(
        "",
        loss_series,
        acc_series,
    ));
    file.notes = format!(
        "Training loss (mean of the last {} steps): resnet-20 {}, plain-20 {}; final validation accuracy: resnet-20 {}%, plain-20 {}%. No criterion: a view of the two CNNs, not a test. He et al.'s CIFAR layout (3×3 conv 16, three stages of 3 basic blocks with 16/32/64 filters, stride 2 at stages 2 and 3, global average pool, linear), BN after every conv, option-A shortcuts; {}; SGD momentum 0.9, lr 0.05, batch {batch}, {steps} steps, seed {}. Quick: 20 steps of batch 16 instead of 400 of 128.",
        (steps as usize / 5).max(5),
        fmt(loss[1]),
        fmt(loss[0]),
        fmt(acc[1]),
        fmt(acc[0]),
        dataset.label(),
        opts.seed
    );
    Ok(file)
}
