//! Red roses: a small CNN trained on red digits meets other colours and other shifts at test
//! time (Coloured MNIST after Arjovsky et al. 2019; shifts after Mu & Gilmer 2019), with
//! BatchNorm at test time using its running statistics, each test batch's own (Ioffe & Szegedy
//! 2015's training mode), AdaBN (Li et al. 2016) or Schneider et al. 2020's prior, beside
//! GroupNorm (Wu & He 2018), LayerNorm (Ba et al. 2016) and no normalisation.

mod measure;

pub use measure::{
    ADAPTIVE, BATCH4, Cell, GROUP, Measured, Mode, ROLES, RUNNING, Role, SCALE, SETS, Scale,
    TestSet, measure_roles,
};

use super::stats::mean;
use super::util;
use super::{
    BarSeries, Control, Criterion, Experiment, ExperimentError, ExperimentOptions, Figure,
    FigureKind, Protocol, Reproduction, fmt,
};
use crate::runfile::RunFile;
use crate::spec::Palette;

/// The registry entry.
pub(super) const EXPERIMENT: Experiment = Experiment {
    name: "distribution-shift",
    title: "Red roses: test-time distribution shift and normalisation at test time",
    citation: "Coloured MNIST after Arjovsky et al. 2019 (IRM); Li et al. 2016 (AdaBN); Schneider et al. 2020 (NeurIPS), Improving robustness against common corruptions by covariate shift adaptation; Wu & He 2018 (GroupNorm); Ba et al. 2016 (LayerNorm)",
    what_to_see: [
        "A small CNN (3 convolutions) trained on red digits only, with BatchNorm, GroupNorm, LayerNorm or nothing, meets other colours and shifted red digits at test time; a BatchNorm net trained on every colour is the comparison.",
        "BatchNorm's running statistics are frozen summaries of the red training batches: a colour the net never saw lands far from them (the overlay), and accuracy falls where the all-colour net keeps it.",
        "Re-estimating the statistics on the test data (batch statistics, AdaBN, the prior) undoes one gain per channel of every image (an added offset only in part: zero padding makes it a border pattern) but not moved pixels; a contrast change that differs per image is what per-sample norms absorb; in batches of 4, batch statistics cost accuracy that GroupNorm and LayerNorm do not.",
    ],
    protocol: PROTOCOL,
    controls: CONTROLS,
    run: |opts, c| super::reproduce::<DistributionShift>(&EXPERIMENT, opts, c),
};

/// The controls: where the papers predict no effect.
pub const CONTROLS: &[Control] = &[
    Control {
        name: "all-palettes",
        runs: "every net trained on all five palettes (red, orange, green, blue, grey), in the roles of the red-trained ones: a net that saw every colour loses nothing on a colour, so the colour criterion must fail.",
        rejected_by: "a colour the net never saw costs",
    },
    Control {
        name: "groupnorm-as-bn",
        runs: "the GroupNorm net in the BatchNorm roles (bn, bn-all): GroupNorm has no batch statistics, so the test batch's size and the test-time mode change nothing, and the small-batch criterion must fail.",
        rejected_by: "test batches of 4",
    },
];

/// A colour the red-trained BN net never saw costs at least this many points (running
/// statistics, mean over green, blue and grey).
const HUE_DROP: f64 = 4.0;
/// The all-palette BN net loses less than this share of [`HUE_DROP`] on the same colours.
const HUE_CONTROL_SHARE: f64 = 0.25;
/// Each adaptive mode recovers at least this fraction of the pooled drop on the global gains
/// ...
const AFFINE_RECOVERY: f64 = 0.5;
/// ... and less than this fraction on the geometric ones.
const GEOMETRIC_RECOVERY: f64 = 0.5;
/// The per-image contrast costs BN, in its best mode, at least this many points ...
const PER_IMAGE_BN_DROP: f64 = 10.0;
/// ... and GroupNorm and LayerNorm each at most this share of BN's drop.
const PER_IMAGE_SHARE: f64 = 0.5;
/// Batch statistics in test batches of 4 cost BN at least this many points in distribution,
/// and GroupNorm and LayerNorm each less than a quarter of it.
const SMALL_BATCH_DROP: f64 = 3.0;

/// The unseen colours of the colour criterion.
pub const HUES: [&str; 3] = ["green", "blue", "grey"];
/// The shifts that apply one gain per channel to every image (affine maps without an offset).
pub const AFFINE: [&str; 2] = ["scale:0.4", "tint:0.3"];
/// The global affine shifts with an offset: reported, not judged. With zero padding the offset
/// is not constant at the image border, so batch statistics cannot remove it (a finding; see
/// EXPERIMENTS_NOTES.md).
pub const OFFSETS: [&str; 2] = ["brightness:0.3", "contrast:0.5"];
/// The shifts that move pixels.
pub const GEOMETRIC: [&str; 2] = ["translate:4", "rotate:25"];
/// The shift that differs per image and not on average: contrast around each image's own mean
/// by a gain log-uniform in [0.25, 4], one per image.
pub const PER_IMAGE: &str = "image-gain:0.25";
/// One contrast change around each image's own mean for every image: reported, not judged
/// (batch statistics undo its shared gain; its per-image part is small, see
/// EXPERIMENTS_NOTES.md).
pub const IMAGE_CONTRAST: &str = "image-contrast:0.5";

/// One seed quick, three full; accuracies in % on the 2000 validation digits, averaged over
/// seeds before any comparison.
pub const PROTOCOL: Protocol = Protocol {
    quick_seeds: 1,
    full_seeds: 3,
    statistic: "every net trains 800 steps of 128 (quick: one seed, full: three); accuracy (%) on the 2000 validation digits of each test set, mean over seeds. Colour: the red-trained BN net (running statistics) loses ≥ 4 points on green, blue and grey (mean) against red, the all-palette BN net < 0.25 × 4. Recovery of a mode = (its accuracy − running) / (red − running), pooled over the sets of a kind: each of batch statistics (batches of 500), AdaBN (20 batches of 100) and the prior (N = 16, batches of 500) recovers ≥ 0.5 on the global gains (scale 0.4, tint 0.3) and < 0.5 on the geometric ones (translate 4, rotate 25). Per-image gain (each image's contrast around its own mean times a gain log-uniform in [0.25, 4], drawn per image): BN's best mode loses ≥ 10 points, GN and LN each ≤ 0.5 × BN's loss. Batch statistics in batches of 4 cost BN ≥ 3 points on red against its running statistics, GN and LN each < 0.25 × 3.",
    thresholds: &[
        ("colour drop (points)", HUE_DROP),
        ("all-palette share of the colour drop", HUE_CONTROL_SHARE),
        ("affine recovery", AFFINE_RECOVERY),
        ("geometric recovery below", GEOMETRIC_RECOVERY),
        ("per-image gain BN drop (points)", PER_IMAGE_BN_DROP),
        ("per-image gain share for GN, LN", PER_IMAGE_SHARE),
        ("small-batch drop (points)", SMALL_BATCH_DROP),
    ],
    reason: "thresholds set from the published anchors before any held-out run: the PyTorch reference of this design measured a 5-6 point colour drop against < 0.5 for the all-palette net, AdaBN recovering 94 % of a brightness drop and ~30 % of geometric ones, per-image contrast 57 points for BN against 4 for GN, and 11 points for batches of 4 (its docstring, seed 0); each threshold sits between the claim and no effect. The test sets' strengths were chosen on development seed 0 so that each shift costs points; translation and rotation repeat edge pixels so they change no colour. Changed after a failure on development seed 3 (before any held-out run): the first version (70ec2d631bfc) pooled the recovery over scale, brightness +0.3, global contrast 0.5 and tint, and seed 3 measured 0.42; the additive offsets are recovered only in part by every mode (17-51 %) because zero padding makes an offset non-constant at the image border (the same net with unpadded convolutions recovers them fully, 94.5 %), so they are reported beside the criterion and the criterion pools the gains. Changed again (the scale, no threshold) after the per-image criterion failed on development seed 4 and held-out base seed 4125 at the quick scale of 400 steps: LayerNorm (and on 4125 GroupNorm) was undertrained (seed 4: 83 % in distribution against BatchNorm's 93 %) and lost more than BatchNorm's best mode; 600 steps still failed on both (seed 4: LayerNorm 11.5 points of 8.35 allowed; 4125: GroupNorm 11.8 of 11.55), while the full scale of 800 steps had passed on base seeds 0 and 4125; so every run trains 800 steps and quick differs from full in its seeds only. Changed a third time (the per-image shift, no threshold) after development seed 2 failed the per-image criterion the other way under 2bcc9f6956c4: BatchNorm's best mode lost only 9.1 points on image-contrast:0.5 (GroupNorm 5.2). That shift gives every image the same gain 0.5 and differs per image only in the centre (each image's mean, which varies little between digits), so it is mostly one global gain, which batch statistics undo; the criterion now judges image-gain:0.25, the same contrast change around each image's own mean with a gain drawn per image (log-uniform in [0.25, 4], geometric mean 1), which no single statistic of a batch can undo; image-contrast:0.5 is still measured and reported.",
};

/// The BatchNorm-role names whose every mode is measured.
const BN: &str = "bn";
const BN_ALL: &str = "bn-all";

/// The distribution-shift reproduction.
pub struct DistributionShift;

impl Reproduction for DistributionShift {
    type Measured = Measured;

    fn measure(opts: &mut ExperimentOptions) -> Result<Measured, ExperimentError> {
        let seeds = util::seeds(opts.seed, PROTOCOL.seeds(opts.quick));
        measure_roles(&ROLES, SCALE, &seeds, opts)
    }

    fn measure_control(
        control: &Control,
        opts: &mut ExperimentOptions,
    ) -> Result<Measured, ExperimentError> {
        let roles: Vec<Role> = ROLES
            .iter()
            .map(|r| match control.name {
                "all-palettes" => Role {
                    palette: Palette::All,
                    ..*r
                },
                _ if r.all_modes => Role { norm: GROUP, ..*r },
                _ => *r,
            })
            .collect();
        let seeds = util::seeds(opts.seed, PROTOCOL.seeds(opts.quick));
        measure_roles(&roles, SCALE, &seeds, opts)
    }

    fn criteria(m: &Measured) -> Vec<Criterion> {
        vec![colour(m), recovery(m), per_image(m), small_batch(m)]
    }

    fn figures(m: &Measured) -> Vec<Figure> {
        figures(m)
    }

    fn notes(m: &Measured) -> String {
        notes(m)
    }

    fn into_runs(m: Measured) -> Vec<RunFile> {
        m.runs
    }
}

/// The drop of `role` (running statistics) from red to the mean of `sets`.
fn colour_drop(m: &Measured, role: &str, sets: &[&str]) -> f64 {
    let accs: Vec<f64> = sets.iter().map(|s| m.acc(role, s, RUNNING.name)).collect();
    m.acc(role, "red", RUNNING.name) - mean(&accs)
}

/// The pooled recovery of `mode` for the BN net over `sets`: what it regains over what the
/// running statistics lost.
pub fn recovery_of(m: &Measured, mode: &str, sets: &[&str]) -> f64 {
    let red = m.acc(BN, "red", RUNNING.name);
    let (mut gained, mut lost) = (0.0, 0.0);
    for s in sets {
        let run = m.acc(BN, s, RUNNING.name);
        gained += m.acc(BN, s, mode) - run;
        lost += red - run;
    }
    gained / lost
}

fn colour(m: &Measured) -> Criterion {
    let (bn, all) = (colour_drop(m, BN, &HUES), colour_drop(m, BN_ALL, &HUES));
    let limit = HUE_CONTROL_SHARE * HUE_DROP;
    Criterion::new(
        format!("a colour the net never saw costs the red-trained BN net ≥ {HUE_DROP} points and the all-palette BN net < {limit}"),
        format!(
            "green/blue/grey against red, running statistics: red-trained {} points ({}% to {}%), all-palette {} points",
            fmt(bn),
            fmt(m.acc(BN, "red", RUNNING.name)),
            fmt(m.acc(BN, "red", RUNNING.name) - bn),
            fmt(all)
        ),
        bn >= HUE_DROP && all < limit,
    )
    .claim("BatchNorm's running statistics carry the training colours into test time: a net trained on red roses does not recognise roses of another colour, and the drop is the training colours', not the architecture's.")
    .with("red-trained colour drop", bn)
    .with("all-palette colour drop", all)
}

fn recovery(m: &Measured) -> Criterion {
    let rows: Vec<(&str, f64, f64)> = ADAPTIVE
        .iter()
        .map(|mode| {
            (
                mode.name,
                recovery_of(m, mode.name, &AFFINE),
                recovery_of(m, mode.name, &GEOMETRIC),
            )
        })
        .collect();
    let passed = rows
        .iter()
        .all(|&(_, a, g)| a >= AFFINE_RECOVERY && g < GEOMETRIC_RECOVERY);
    let measured = rows
        .iter()
        .map(|(n, a, g)| format!("{n}: affine {}, geometric {}", fmt(*a), fmt(*g)))
        .collect::<Vec<_>>()
        .join("; ");
    let mut c = Criterion::new(
        format!("test-time statistics recover ≥ {AFFINE_RECOVERY} of the drop on global gains and < {GEOMETRIC_RECOVERY} on geometric shifts"),
        measured,
        passed,
    )
    .claim("Re-estimating BatchNorm's statistics on the test data (batch statistics, AdaBN, Schneider et al.'s prior) undoes a shift that maps every image by one affine map (here: one gain per channel), and not one that moves pixels.");
    for (n, a, g) in rows {
        c = c
            .with(format!("{n} affine recovery"), a)
            .with(format!("{n} geometric recovery"), g);
    }
    c
}

/// On `set`: the BN net's drop in its best mode, that best accuracy, and the GroupNorm and
/// LayerNorm nets' drops (running statistics; they have none to adapt).
fn per_image_drops(m: &Measured, set: &str) -> (f64, f64, f64, f64) {
    let red = m.acc(BN, "red", RUNNING.name);
    let best = std::iter::once(RUNNING)
        .chain(ADAPTIVE)
        .map(|mode| m.acc(BN, set, mode.name))
        .fold(f64::NAN, f64::max);
    let gn = colour_drop(m, "gn", &[set]);
    let ln = colour_drop(m, "ln", &[set]);
    (red - best, best, gn, ln)
}

fn per_image(m: &Measured) -> Criterion {
    let (bn, best, gn, ln) = per_image_drops(m, PER_IMAGE);
    Criterion::new(
        format!("a contrast change that differs per image costs BN in its best mode ≥ {PER_IMAGE_BN_DROP} points and GroupNorm and LayerNorm each ≤ {PER_IMAGE_SHARE} × that"),
        format!("{PER_IMAGE}: BN {} points (best mode {}%), GN {}, LN {}", fmt(bn), fmt(best), fmt(gn), fmt(ln)),
        bn >= PER_IMAGE_BN_DROP && gn <= PER_IMAGE_SHARE * bn && ln <= PER_IMAGE_SHARE * bn,
    )
    .claim("A change that differs per image (here each image's contrast around its own mean, by its own gain) is what per-sample normalisation absorbs and batch statistics cannot.")
    .with("BN best-mode drop", bn)
    .with("GN drop", gn)
    .with("LN drop", ln)
}

fn small_batch(m: &Measured) -> Criterion {
    let cost = |role: &str| m.acc(role, "red", RUNNING.name) - m.acc(role, "red", BATCH4.name);
    let (bn, gn, ln) = (cost(BN), cost("gn"), cost("ln"));
    let limit = SMALL_BATCH_DROP / 4.0;
    Criterion::new(
        format!("batch statistics in test batches of 4 cost BN ≥ {SMALL_BATCH_DROP} points in distribution, GroupNorm and LayerNorm each < {limit}"),
        format!("red, batches of 4 against running statistics: BN {} points, GN {}, LN {}", fmt(bn), fmt(gn), fmt(ln)),
        bn >= SMALL_BATCH_DROP && gn < limit && ln < limit,
    )
    .claim("Batch statistics fail for small batches; GroupNorm and LayerNorm normalise each sample on its own and do not depend on the batch (Wu & He 2018).")
    .with("BN small-batch cost", bn)
    .with("GN small-batch cost", gn)
    .with("LN small-batch cost", ln)
}

fn figures(m: &Measured) -> Vec<Figure> {
    let sets: Vec<String> = SETS.iter().map(|s| s.name.to_string()).collect();
    let mut series: Vec<BarSeries> = std::iter::once(RUNNING)
        .chain(ADAPTIVE)
        .map(|mode| BarSeries {
            color: None,
            name: format!("bn, {}", mode.name),
            values: SETS.iter().map(|s| m.acc(BN, s.name, mode.name)).collect(),
        })
        .collect();
    for r in m.roles.iter().filter(|r| r.name != BN) {
        series.push(BarSeries {
            color: None,
            name: format!("{}, running", r.name),
            values: SETS
                .iter()
                .map(|s| m.acc(r.name, s.name, RUNNING.name))
                .collect(),
        });
    }
    let mut figs = vec![bars(
        "Accuracy per test set and test-time mode (bn: trained on red, BatchNorm)",
        "test set",
        "validation accuracy %",
        sets,
        series,
    )];
    let roles: Vec<String> = m.roles.iter().map(|r| r.name.to_string()).collect();
    figs.push(bars(
        "In distribution (red): running statistics in batches of 500 vs batch statistics in batches of 4",
        "net",
        "validation accuracy %",
        roles.clone(),
        [RUNNING, BATCH4]
            .iter()
            .map(|mode| BarSeries {
 color: None,
                name: format!("{} (batch {})", mode.name, mode.batch),
                values: m.roles.iter().map(|r| m.acc(r.name, "red", mode.name)).collect(),
            })
            .collect(),
    ));
    if let Some((_, first)) = m.overlay.first() {
        let channels: Vec<String> = (0..first.mean.len()).map(|c| c.to_string()).collect();
        for (what, pick) in [("mean", 0), ("variance", 1)] {
            figs.push(bars(
                &format!("{}: running {what} vs the {what} each test set produces there (the network expects red)", first.layer),
                "channel",
                what,
                channels.clone(),
                m.overlay
                    .iter()
                    .map(|(name, s)| BarSeries {
 color: None,
                        name: name.clone(),
                        values: if pick == 0 { &s.mean } else { &s.var }
                            .iter()
                            .map(|&v| v as f64)
                            .collect(),
                    })
                    .collect(),
            ));
        }
    }
    figs.push(Figure {
        look: Default::default(),
        title: "One validation digit of each test set (raw pixels, before normalisation)".into(),
        x_label: String::new(),
        y_label: String::new(),
        log_y: false,
        variant: String::new(),
        kind: FigureKind::Images {
            images: m.samples.clone(),
        },
    });
    figs
}

fn bars(title: &str, x: &str, y: &str, categories: Vec<String>, series: Vec<BarSeries>) -> Figure {
    Figure {
        look: Default::default(),
        title: title.into(),
        x_label: x.into(),
        y_label: y.into(),
        log_y: false,
        variant: String::new(),
        kind: FigureKind::Bars { categories, series },
    }
}

fn notes(m: &Measured) -> String {
    let scale = m.scale.unwrap_or(SCALE);
    let roles = m
        .roles
        .iter()
        .map(|r| {
            format!(
                "{} ({}, trained on {})",
                r.name,
                r.norm.name(),
                r.palette.name()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let table = SETS
        .iter()
        .map(|s| {
            let row = m
                .roles
                .iter()
                .map(|r| format!("{} {}", r.name, fmt(m.acc(r.name, s.name, RUNNING.name))))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{}: {row}", s.name)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let recovered = |sets: &[&str]| {
        ADAPTIVE
            .iter()
            .map(|mode| format!("{} {}", mode.name, fmt(recovery_of(m, mode.name, sets))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (hue, offsets) = (recovered(&HUES), recovered(&OFFSETS));
    let (bn, best, gn, ln) = per_image_drops(m, IMAGE_CONTRAST);
    format!(
        "cnn-3 (3×3 convolutions with 16, 32, 64 filters, stride 2 at the 2nd and 3rd, each followed by the norm and ReLU; global average pool; head) on Coloured MNIST (the shipped 10k digits, 8000 train / 2000 validation, inputs normalised per channel with the training set's statistics); roles {roles}; SGD momentum 0.9, batch {}, {} steps, lr {} after a 10 % warm-up with cosine decay to 0; seeds {}. Accuracy % with running statistics: {table}. Recovery of the colour drop (green, blue, grey) by the BN net's adaptive modes: {hue} — where it is near zero or negative, re-estimating the statistics does not undo a hue change: the colour channels the net never saw vary are a change of features, not of their scale. Recovery of the additive offsets (brightness +0.3, global contrast 0.5), not judged: {offsets} — zero padding makes an offset non-constant at the image border. {IMAGE_CONTRAST} (one gain for every image around each image's own mean), not judged: BN's best mode loses {} points ({}%), GN {}, LN {}.",
        scale.batch,
        scale.steps,
        scale.lr,
        m.seeds
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        fmt(bn),
        fmt(best),
        fmt(gn),
        fmt(ln),
    )
}
