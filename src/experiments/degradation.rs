//! He et al. 2016, Fig. 1/6: with BN in both, a deeper plain net trains worse than a shallower
//! one on the same budget (degradation), while the residual twin does not.

use super::stats::{mean, median, moving_average, tail_mean};
use super::{
    Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure, LineSeries,
    fmt, util,
};
use crate::metrics::series;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "degradation",
    title: "Degradation: plain vs residual MLPs at depths 8 and 32 on MNIST-10k",
    citation: "He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (CVPR), Fig. 1 and 6",
    what_to_see: [
        "The 32-block plain net ends with a far higher training loss than the 8-block one: more depth made optimisation worse, not overfitting (it is the training loss).",
        "The 32-block residual net trains as well as the 8-block one: each block only needs to learn a change to the identity, so extra blocks cannot hurt much.",
        "BN is in every net, so the signal does not vanish at initialisation: what fails in the plain net is the optimisation of a long chain of layers.",
    ],
    run,
};

const WIDTH: usize = 64;
const STEPS: u64 = 400;

/// The two figures of a plain-vs-residual training comparison: the training loss (a 10-step
/// moving average, log scale) and the validation accuracy; `note` ends both titles.
pub(super) fn curve_figures(
    note: &str,
    loss: Vec<LineSeries>,
    accuracy: Vec<LineSeries>,
) -> [Figure; 2] {
    let mut f = Figure::lines(
        format!("Training loss (10-step moving average{note})"),
        "step",
        "cross-entropy",
        loss,
    );
    f.log_y = true;
    let title = if note.is_empty() {
        "Validation accuracy".to_string()
    } else {
        format!("Validation accuracy ({})", note.trim_start_matches(", "))
    };
    [f, Figure::lines(title, "step", "accuracy (%)", accuracy)]
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    // Full scale: five seeds, aggregated by the median. With three seeds and the mean, one late
    // loss spike of res-32 (a batch at step 389 of seed 2 with loss 12 and gradient norm 60,
    // after which validation accuracy falls from 91.8 % to 75.4 %) decided the accuracy claim on
    // its own; such spikes happen at random in most res-32 runs at lr 0.05 and recover within a
    // few dozen steps. The median over five seeds measures the typical run; the means are
    // reported next to it. Quick runs three seeds for the same reason: with one, a run whose
    // last steps fall in such a spike decides the accuracy claim (seed 0 ended 3.4 points
    // below res-8 after the fused CPU kernels changed the rounding, where seeds 1–4 end 0.4–2.7
    // below).
    let n_seeds = if opts.quick { 3 } else { 5 };
    let seeds = util::seeds(opts.seed, n_seeds);
    let nets = ["mlp-plain-8", "mlp-res-8", "mlp-plain-32", "mlp-res-32"];
    let (dataset, data) = util::mnist()?;
    // loss[net][seed], acc[net][seed]
    let mut loss = vec![Vec::new(); nets.len()];
    let mut acc = vec![Vec::new(); nets.len()];
    let mut loss_curves: Vec<Vec<Vec<f32>>> = vec![Vec::new(); nets.len()];
    let mut acc_curves: Vec<Vec<Vec<[f64; 2]>>> = vec![Vec::new(); nets.len()];
    let total = (nets.len() * seeds.len()) as f32;
    let mut k = 0.0;
    for &s in &seeds {
        for (n, name) in nets.iter().enumerate() {
            let span = (k / total, (k + 1.0) / total);
            let t = util::train_mlp(name, WIDTH, STEPS, s, &dataset, &data, opts, span)?;
            k += 1.0;
            loss[n].push(if t.diverged {
                f64::NAN
            } else {
                tail_mean(&t.losses, 50)
            });
            let val = t.run.history.get(series::VAL_ACCURACY, "");
            acc[n].push(val.and_then(|v| v.last()).map_or(f64::NAN, |a| a as f64));
            acc_curves[n].push(val.map_or(Vec::new(), |v| {
                v.steps
                    .iter()
                    .zip(&v.values)
                    .map(|(&st, &a)| [st as f64, 100.0 * a as f64])
                    .collect()
            }));
            loss_curves[n].push(t.losses.clone());
            file.runs.push(t.run);
        }
    }
    let l: Vec<f64> = loss.iter().map(|v| median(v)).collect();
    let a: Vec<f64> = acc.iter().map(|v| 100.0 * median(v)).collect();
    let a_mean: Vec<f64> = acc.iter().map(|v| 100.0 * mean(v)).collect();
    file.criteria.push(
        Criterion::new(
            "plain-32 training loss > 2 × plain-8's",
            format!(
                "plain-32 {}, plain-8 {} (ratio {})",
                fmt(l[2]),
                fmt(l[0]),
                fmt(l[2] / l[0])
            ),
            l[2] > 2.0 * l[0],
        )
        .with("plain-32 loss", l[2])
        .with("plain-8 loss", l[0]),
    );
    file.criteria.push(
        Criterion::new(
            "res-32 training loss < 0.5 × plain-32's",
            format!(
                "res-32 {}, plain-32 {} (ratio {})",
                fmt(l[3]),
                fmt(l[2]),
                fmt(l[3] / l[2])
            ),
            l[3] < 0.5 * l[2],
        )
        .with("res-32 loss", l[3])
        .with("res-8 loss", l[1]),
    );
    file.criteria.push(
        Criterion::new(
            "res-32 validation accuracy ≥ res-8's − 3 points",
            format!(
                "res-32 {}%, res-8 {}% (plain-32 {}%, plain-8 {}%; means over seeds: res-32 {}%, res-8 {}%)",
                fmt(a[3]),
                fmt(a[1]),
                fmt(a[2]),
                fmt(a[0]),
                fmt(a_mean[3]),
                fmt(a_mean[1])
            ),
            a[3] >= a[1] - 3.0,
        )
        .with("res-32 accuracy %", a[3])
        .with("res-8 accuracy %", a[1])
        .with("plain-32 accuracy %", a[2])
        .with("plain-8 accuracy %", a[0]),
    );
    // Figures: the mean over seeds of the training loss (a 10-step moving average) and of the
    // validation accuracy.
    let mut loss_series = Vec::new();
    let mut acc_series = Vec::new();
    for (n, name) in nets.iter().enumerate() {
        let steps = loss_curves[n].iter().map(Vec::len).min().unwrap_or(0);
        let avg: Vec<f64> = (0..steps)
            .map(|i| {
                mean(
                    &loss_curves[n]
                        .iter()
                        .map(|c| c[i] as f64)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        loss_series.push(LineSeries {
            name: name.to_string(),
            points: moving_average(&avg, 10),
        });
        let pts = acc_curves[n].iter().map(Vec::len).min().unwrap_or(0);
        acc_series.push(LineSeries {
            name: name.to_string(),
            points: (0..pts)
                .map(|i| {
                    [
                        acc_curves[n][0][i][0],
                        mean(&acc_curves[n].iter().map(|c| c[i][1]).collect::<Vec<_>>()),
                    ]
                })
                .collect(),
        });
    }
    file.figures
        .extend(curve_figures(", mean over seeds", loss_series, acc_series));
    file.notes = format!(
        "MLPs Linear(784 → {WIDTH}) → ReLU, then N blocks Linear → BN → (+x) → ReLU, head; He init; MNIST-10k (8000 train / 2000 validation); SGD momentum 0.9, lr 0.05, batch 128, {STEPS} steps; training loss = mean of the last 50 steps; {n_seeds} seed(s), criteria on the median over seeds. Quick uses 1 seed instead of 5; the budget is unchanged."
    );
    Ok(file)
}
