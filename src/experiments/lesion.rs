//! Veit, Wilber & Belongie 2016: deleting one block of a trained ResNet at test time costs
//! little, deleting one layer of a trained plain net destroys it; a ResNet behaves like an
//! ensemble of many paths of different lengths.

use super::stats::mean;
use super::{
    BarSeries, Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure,
    FigureKind, LineSeries, fmt, util,
};
use crate::model::Lesion;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "lesion",
    title: "Lesion study: delete one block of a trained residual or plain MLP",
    citation: "Veit, Wilber & Belongie 2016, Residual Networks Behave Like Ensembles of Relatively Shallow Networks (NeurIPS)",
    what_to_see: [
        "Deleting any single block of the trained residual net costs a few points of accuracy at most: the remaining paths still carry the signal.",
        "Deleting a block of the plain net breaks the only path there is, and accuracy collapses towards chance.",
        "The residual net's paths do not all depend on each other: it acts like an ensemble of many shallower networks, which is why it degrades smoothly.",
    ],
    run,
};

const WIDTH: usize = 64;
const BLOCKS: usize = 16;
const STEPS: u64 = 600;

/// The layer range `[fc, bn]` of block `b` (1-based) of an `mlp-*` preset with BN on MNIST:
/// `flatten, input.fc, input.act`, then `fc, bn, act` per block.
fn block_lesion(spec: &crate::spec::NetSpec, b: usize) -> Option<Lesion> {
    let start = spec.index_of(&format!("block{b}.fc"))?;
    let end = spec.index_of(&format!("block{b}.bn"))?;
    Some(Lesion { start, end })
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    let n_seeds = if opts.quick { 1 } else { 3 };
    let seeds = util::seeds(opts.seed, n_seeds);
    let (dataset, data) = util::mnist()?;
    let nets = [format!("mlp-res-{BLOCKS}"), format!("mlp-plain-{BLOCKS}")];
    // drops[net][seed][block] in accuracy points; base[net][seed] in %.
    let mut drops = vec![Vec::new(); 2];
    let mut base = vec![Vec::new(); 2];
    let total = (2 * seeds.len()) as f32;
    let mut k = 0.0;
    for &s in &seeds {
        for (n, name) in nets.iter().enumerate() {
            let span = (k / total, (k + 0.9) / total);
            let t = util::train_mlp(name, WIDTH, STEPS, s, &dataset, &data, opts, span)?;
            k += 1.0;
            let model = t.session.model.valid();
            let shape = t.session.data.sample_shape;
            let split = &t.session.data.valid;
            let (_, full) = util::evaluate(&model, split, shape, None);
            let mut d = Vec::new();
            for b in 1..=BLOCKS {
                opts.check_cancel()?;
                let lesion = block_lesion(&t.run.spec, b);
                let (_, acc) = util::evaluate(&model, split, shape, lesion);
                d.push(100.0 * (full - acc));
            }
            base[n].push(100.0 * full);
            drops[n].push(d);
            file.runs.push(t.run);
        }
    }
    let mean_drop = |n: usize| mean(&drops[n].iter().flatten().copied().collect::<Vec<_>>());
    let (res, plain) = (mean_drop(0), mean_drop(1));
    file.criteria.push(
        Criterion::new(
            "ResNet: mean accuracy drop from deleting one block < 5 points",
            format!(
                "mean drop {} points (full accuracy {}%)",
                fmt(res),
                fmt(mean(&base[0]))
            ),
            res < 5.0,
        )
        .with("ResNet mean drop", res)
        .with("ResNet accuracy %", mean(&base[0])),
    );
    file.criteria.push(
        Criterion::new(
            "plain net: mean drop > 3 × the ResNet's",
            format!(
                "plain {} points vs ResNet {} (ratio {}; plain full accuracy {}%)",
                fmt(plain),
                fmt(res),
                fmt(plain / res),
                fmt(mean(&base[1]))
            ),
            plain > 3.0 * res,
        )
        .with("plain mean drop", plain)
        .with("plain accuracy %", mean(&base[1])),
    );
    let per_block = |n: usize| -> Vec<f64> {
        (0..BLOCKS)
            .map(|b| mean(&drops[n].iter().map(|d| d[b]).collect::<Vec<_>>()))
            .collect()
    };
    file.figures.push(Figure {
        title: "Accuracy drop when one block is deleted at test time (mean over seeds)".into(),
        x_label: "deleted block".into(),
        y_label: "accuracy drop (points)".into(),
        log_y: false,
        variant: String::new(),
        kind: FigureKind::Bars {
            categories: (1..=BLOCKS).map(|b| b.to_string()).collect(),
            series: vec![
                BarSeries {
                    name: nets[0].clone(),
                    values: per_block(0),
                },
                BarSeries {
                    name: nets[1].clone(),
                    values: per_block(1),
                },
            ],
        },
    });
    file.figures.push(Figure::lines(
        "Validation accuracy with one block deleted (mean over seeds)",
        "deleted block",
        "accuracy (%)",
        (0..2)
            .map(|n| LineSeries {
                name: nets[n].clone(),
                points: per_block(n)
                    .iter()
                    .enumerate()
                    .map(|(b, d)| [(b + 1) as f64, mean(&base[n]) - d])
                    .collect(),
            })
            .collect(),
    ));
    file.notes = format!(
        "{BLOCKS}-block MLPs (width {WIDTH}, Linear → BN → (+x) → ReLU) trained {STEPS} steps in the degradation setup (SGD momentum 0.9, lr 0.05, batch 128, MNIST-10k); a deleted block passes its input through (its Linear and BN skipped; the ReLU after it is the identity on its non-negative input), trained running statistics kept; accuracy on the 2000 validation samples; {n_seeds} seed(s). Quick uses 1 seed instead of 3."
    );
    Ok(file)
}
