//! The views on a small hand-made history: what each figure holds, checked by value.

use super::*;
use crate::figure::{FigureKind, Style};
use crate::metrics::{
    ActStats, AttentionStats, ParamStats, ProbeRecord, RunLayout, StepRecord, series,
};
use crate::spec::{Activation, InputShape, LayerSpec};

fn layer(name: &str, op: LayerOp) -> LayerSpec {
    LayerSpec {
        name: name.into(),
        op,
        init: Default::default(),
        bias_std: 0.0,
    }
}

fn spec() -> NetSpec {
    NetSpec {
        name: "t".into(),
        input: InputShape::Flat { features: 2 },
        layers: vec![
            layer("fc1", LayerOp::Linear { out: 4, bias: true }),
            layer(
                "relu1",
                LayerOp::Activation {
                    function: Activation::Relu,
                },
            ),
            layer("fc2", LayerOp::Linear { out: 4, bias: true }),
            layer(
                "relu2",
                LayerOp::Activation {
                    function: Activation::Relu,
                },
            ),
        ],
        skips: Vec::new(),
    }
}

fn act(std: f32) -> ActStats {
    ActStats {
        mean: 0.0,
        std,
        min: -1.0,
        max: 1.0,
        frac_nonpos: 0.5,
        hist: vec![1, 2, 3, 4],
    }
}

fn param(grad_norm: f32) -> ParamStats {
    ParamStats {
        grad_norm,
        weight_norm: 1.0,
        update_ratio: 1e-3,
    }
}

/// Four steps of loss 1, 2, 3, 4; probes at steps 1 and 2 with relu2's std 1 then 100 and
/// fc2's gradient 1e-8 (vanishing); attention of two heads over two tokens.
fn history() -> History {
    let layout = RunLayout {
        layers: ["fc1", "relu1", "fc2", "relu2"].map(String::from).to_vec(),
        params: ["fc1.weight", "fc1.bias", "fc2.weight"]
            .map(String::from)
            .to_vec(),
        attention: vec!["attn".into()],
        attention_shape: vec![[2, 2]],
        ..RunLayout::default()
    };
    let mut h = History::new(layout);
    for step in 1..=4u64 {
        h.push_step(&StepRecord {
            step,
            loss: step as f32,
            accuracy: 0.5,
            lr: 0.1,
            samples_per_sec: 1.0,
            grad_norm: 1.0,
        });
    }
    for (step, std) in [(1u64, 1.0f32), (2, 100.0)] {
        h.push_probe(ProbeRecord {
            step,
            layers: vec![act(1.0), act(1.0), act(1.0), act(std)],
            batch_norms: Vec::new(),
            skips: Vec::new(),
            params: vec![param(0.5), param(0.1), param(1e-8)],
            token_residual: Vec::new(),
            attention: vec![AttentionStats {
                weights: vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0],
                entropy: vec![0.0, 0.0],
            }],
            affine_norms: Vec::new(),
        });
    }
    h
}

fn input<'a>(h: &'a History, spec: &'a NetSpec) -> Input<'a> {
    let run = RunView {
        name: "run-a",
        history: h,
        spec,
        color: 12,
    };
    Input {
        run: Some(run),
        runs: vec![run],
    }
}

fn lines(fig: &Figure) -> &[crate::figure::LineSeries] {
    match &fig.kind {
        FigureKind::Lines { series } => series,
        other => panic!("{} is not lines: {other:?}", fig.title),
    }
}

#[test]
fn no_run_no_figures() {
    for kind in PanelKind::ALL {
        assert!(
            kind.default_figures(&Input::default()).is_empty(),
            "{kind:?}"
        );
        assert_eq!(PanelKind::from_slug(kind.slug()), Some(kind));
    }
}

#[test]
fn loss_smooths_and_draws_log_by_default() {
    let (h, s) = (history(), spec());
    let figs = LossOptions::default().figures(&input(&h, &s));
    assert_eq!(figs.len(), 2, "loss and accuracy");
    assert!(figs[0].log_y, "loss on log y by default");
    let l = lines(&figs[0]);
    assert_eq!(l[0].style, Style::Faint);
    let raw: Vec<f64> = l[0].points.iter().map(|p| p[1]).collect();
    assert_eq!(raw, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(l[1].points, ema(&l[0].points, 0.8));
    assert_eq!(figs[1].look.y_range, Some([0.0, 1.0]));
    let no_raw = LossOptions {
        show_raw: false,
        ..LossOptions::default()
    };
    assert_eq!(lines(&no_raw.figures(&input(&h, &s))[0]).len(), 1);
}

#[test]
fn heatmap_cells_are_geometric_means_top_row_first() {
    let h = history();
    let names: Vec<String> = ["relu1", "relu2"].map(String::from).to_vec();
    let fig = layer_heatmap("t", &h, series::ACT_STD, &names, HEAT_COLUMNS).expect("a heatmap");
    assert_eq!(fig.look.rows, names);
    let FigureKind::Heatmap { nx, .. } = fig.kind else {
        panic!("not a heatmap")
    };
    assert_eq!(nx, 2, "two probes, two columns");
    assert_eq!(fig.row_value(0, 0), Some(1.0));
    assert_eq!(fig.row_value(1, 0), Some(1.0));
    let last = fig.row_value(1, 1).unwrap();
    assert!((last - 100.0).abs() < 1e-9, "relu2's second probe: {last}");
}

#[test]
fn activations_show_activation_layers_and_the_middle_histogram() {
    let (h, s) = (history(), spec());
    let opts = ActivationsOptions::default();
    let figs = opts.figures(&input(&h, &s));
    let names: Vec<&str> = lines(&figs[0]).iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["relu1", "relu2"], "activation layers only");
    assert!(figs[0].log_y && figs[0].look.depth_colors);
    assert_eq!(opts.histogram_layer(&input(&h, &s).run.unwrap()), "relu2");
    let FigureKind::Bars { series, .. } = &figs[2].kind else {
        panic!("histogram is bars")
    };
    assert_eq!(series[0].values, [1.0, 2.0, 3.0, 4.0]);
    assert!(figs[2].title.contains("relu2") && figs[2].title.contains("step 2"));
}

#[test]
fn gradients_split_vanishing_tensors_into_their_own_colour() {
    let (h, s) = (history(), spec());
    let figs = GradientOptions::default().figures(&input(&h, &s));
    let FigureKind::Bars { categories, series } = &figs[0].kind else {
        panic!("bars")
    };
    assert_eq!(categories, &["fc1.weight", "fc2.weight"], "weights only");
    assert_eq!(series.len(), 2, "normal and vanishing");
    assert_eq!(series[0].values[0], 0.5);
    assert!(series[0].values[1].is_nan());
    assert_eq!(series[1].values[1], 1e-8_f32 as f64);
    assert!(figs[0].log_y && figs[0].look.stacked);
    assert!(figs[0].title.contains("1 vanishing, 0 exploding"));
    let all = GradientOptions { all_tensors: true }.figures(&input(&h, &s));
    let FigureKind::Bars { categories, .. } = &all[0].kind else {
        panic!("bars")
    };
    assert_eq!(categories.len(), 3);
}

#[test]
fn attention_averages_heads_or_shows_one() {
    let (h, s) = (history(), spec());
    let mean = AttentionOptions::default().figures(&input(&h, &s));
    assert_eq!(mean[0].row_value(0, 0), Some(0.5));
    assert_eq!(mean[0].row_value(0, 1), Some(0.5));
    let head2 = AttentionOptions {
        layer: String::new(),
        head: Some(1),
    };
    let figs = head2.figures(&input(&h, &s));
    assert_eq!(figs[0].row_value(0, 0), Some(0.0), "query 0 looks at key 1");
    assert_eq!(figs[0].row_value(0, 1), Some(1.0));
    assert_eq!(figs[1].look.overlay[0].points[0][1], 2f64.ln());
}

#[test]
fn compare_keeps_each_runs_colour_and_relative_depth() {
    let (h, s) = (history(), spec());
    let figs = CompareOptions::default().figures(&input(&h, &s));
    assert_eq!(figs.len(), 3);
    assert_eq!(lines(&figs[0])[0].color, Some(12));
    let depth = &lines(&figs[2])[0].points;
    assert_eq!(depth.first().map(|p| p[0]), Some(0.0));
    assert_eq!(depth.last().map(|p| p[0]), Some(1.0));
}
