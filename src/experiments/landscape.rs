//! Li, Xu, Taylor, Studer & Goldstein 2018: along filter-normalised random directions, the loss
//! surface of a deep plain net is rough and steep, that of its residual twin smooth and wide.

use super::stats::{Grid, filter_normalize, linspace};
use super::{
    Criterion, Experiment, ExperimentError, ExperimentFile, ExperimentOptions, Figure, FigureKind,
    LineSeries, fmt, util,
};
use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "loss-landscape",
    title: "Loss landscape: a 2-D slice around trained plain-32 and res-32",
    citation: "Li, Xu, Taylor, Studer & Goldstein 2018, Visualizing the Loss Landscape of Neural Nets (NeurIPS)",
    what_to_see: [
        "Around the trained residual net the loss rises slowly and evenly in every direction: a wide, convex-looking basin.",
        "Around the trained plain net of the same depth the loss rises much faster: the minimum sits in a narrow, rough region, which is why it is hard to reach.",
        "The directions are filter-normalised, so the comparison is not an artefact of weight scale (BN makes weights scale-invariant).",
    ],
    run,
};

const WIDTH: usize = 64;
const STEPS: u64 = 400;
const SUBSET: usize = 512;
const RADIUS: f64 = 0.5;

/// The loss over the grid around one trained net, and the ring statistic.
struct Surface {
    grid: Grid,
    centre: f64,
    ring: f64,
}

fn surface(
    t: &util::Trained,
    n: usize,
    seed: u64,
    opts: &mut ExperimentOptions,
    span: (f32, f32),
) -> Result<Surface, ExperimentError> {
    let model = t.session.model.valid();
    let theta = util::params(&model);
    // Two directions: N(0, 1) per entry, filter-normalised, zero on biases and BN parameters.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x10_55_1A_0D);
    let mut dir = || -> Vec<Vec<f32>> {
        theta
            .iter()
            .map(|p| {
                let mut d: Vec<f32> = (0..p.data.len())
                    .map(|_| crate::rng::normal(&mut rng))
                    .collect();
                // Only Linear / conv weights have filters; the BN γ of `nodes.k.bn.gamma` is
                // 1-D and is zeroed like every bias.
                filter_normalize(&mut d, &p.data, &p.shape);
                d
            })
            .collect()
    };
    let (delta, eta) = (dir(), dir());
    let split = &t.session.data.train;
    let idx: Vec<usize> = (0..SUBSET.min(split.len)).collect();
    let (x, labels) = util::batch(split, &idx, t.session.data.sample_shape, &Device::flex());
    let coords = linspace(-1.0, 1.0, n);
    let mut values = Vec::with_capacity(n * n);
    for (j, &b) in coords.iter().enumerate() {
        opts.check_cancel()?;
        opts.report(
            span.0 + (span.1 - span.0) * j as f32 / n as f32,
            "loss-landscape: grid",
        );
        for &a in &coords {
            let shifted: Vec<Vec<f32>> = theta
                .iter()
                .zip(delta.iter().zip(&eta))
                .map(|(p, (d, e))| {
                    p.data
                        .iter()
                        .zip(d.iter().zip(e))
                        .map(|(&w, (&d, &e))| w + a as f32 * d + b as f32 * e)
                        .collect()
                })
                .collect();
            let m = util::with_params(&model, &shifted);
            let logits = m.forward(x.clone());
            let l = util::cross_entropy(logits, &labels)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap_or_default();
            values.push(l.first().copied().unwrap_or(f32::NAN) as f64);
        }
    }
    let grid = Grid {
        x_range: [-1.0, 1.0],
        y_range: [-1.0, 1.0],
        nx: n,
        ny: n,
        values,
    };
    let centre = grid.interpolate(0.0, 0.0);
    let ring = grid.ring_mean(RADIUS, 64);
    Ok(Surface { grid, centre, ring })
}

fn run(opts: &mut ExperimentOptions) -> Result<ExperimentFile, ExperimentError> {
    let mut file = ExperimentFile::new(&EXPERIMENT, opts.settings());
    let n = if opts.quick { 11 } else { 21 };
    let seed = opts.seed;
    let (dataset, data) = util::mnist()?;
    let nets = ["mlp-plain-32", "mlp-res-32"];
    let mut surfaces = Vec::new();
    for (k, name) in nets.iter().enumerate() {
        let base = k as f32 / 2.0;
        let t = util::train_mlp(
            name,
            WIDTH,
            STEPS,
            seed,
            &dataset,
            &data,
            opts,
            (base, base + 0.3),
        )?;
        surfaces.push(surface(&t, n, seed, opts, (base + 0.3, base + 0.5))?);
        file.runs.push(t.run);
    }
    let rise = |s: &Surface| s.ring - s.centre;
    let (p, r) = (rise(&surfaces[0]), rise(&surfaces[1]));
    file.criteria.push(
        Criterion::new(
            "mean loss rise on the ring of radius 0.5: plain > residual",
            format!(
                "plain-32 {} (centre {}), res-32 {} (centre {})",
                fmt(p),
                fmt(surfaces[0].centre),
                fmt(r),
                fmt(surfaces[1].centre)
            ),
            p > r,
        )
        .with("plain-32 ring rise", p)
        .with("res-32 ring rise", r)
        .with("plain-32 centre loss", surfaces[0].centre)
        .with("res-32 centre loss", surfaces[1].centre),
    );
    for (name, s) in nets.iter().zip(&surfaces) {
        // Contours at the centre loss plus fixed steps, shared by both nets so they compare.
        let contours = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
            .iter()
            .map(|d| s.centre + d)
            .collect();
        file.figures.push(Figure {
            title: format!("{name}: training loss L(θ + αδ + βη) on {SUBSET} samples"),
            x_label: "α".into(),
            y_label: "β".into(),
            log_y: false,
            variant: String::new(),
            kind: FigureKind::Heatmap {
                x_range: s.grid.x_range,
                y_range: s.grid.y_range,
                nx: s.grid.nx,
                ny: s.grid.ny,
                values: s.grid.values.clone(),
                contours,
            },
        });
    }
    // A 1-D cut through both surfaces along α (β = 0) for a direct comparison.
    let coords = linspace(-1.0, 1.0, 41);
    file.figures.push(Figure::lines(
        "Cut along α at β = 0",
        "α",
        "loss",
        nets.iter()
            .zip(&surfaces)
            .map(|(name, s)| LineSeries {
                name: name.to_string(),
                points: coords
                    .iter()
                    .map(|&a| [a, s.grid.interpolate(a, 0.0)])
                    .collect(),
            })
            .collect(),
    ));
    file.notes = format!(
        "plain-32 and res-32 (width {WIDTH}, BN) trained {STEPS} steps in the degradation setup, seed {seed}; directions δ, η with N(0, 1) entries, filter-normalised per output unit (Linear weights, head included), zero on biases and BN parameters; loss in inference mode on the first {SUBSET} training samples on a {n}×{n} grid over [-1, 1]²; ring mean: bilinear interpolation at 64 angles on the circle of radius {RADIUS}, minus the loss at the centre. Quick uses an 11×11 grid instead of 21×21."
    );
    Ok(file)
}
