//! `reslab plot`: every panel of the shipped runs and an experiment file's figures as PNG and
//! SVG of the asked size (the PNG decodes and is not one colour, the SVG parses), with the CSV
//! beside them; numbered names instead of overwriting; bad requests named with exit 2.

mod common;

use common::cli::{reslab, s, small_run_args, text};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Checks a PNG: its size, and that it holds a picture (many colours), not a blank.
fn check_png(path: &Path, (w, h): (u32, u32)) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (w, h), "{}", path.display());
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 20,
        "{}: {} colours, not a picture",
        path.display(),
        colours.len()
    );
}

/// Checks an SVG: it parses as XML to the end and says its size.
fn check_svg(path: &Path, (w, h): (u32, u32)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                elements += 1
            }
            Ok(_) => {}
            Err(e) => panic!("{}: not XML: {e}", path.display()),
        }
    }
    assert!(elements > 50, "{}: {elements} elements", path.display());
    assert!(
        text.contains(&format!("width=\"{w}\"")) && text.contains(&format!("height=\"{h}\"")),
        "{}: no {w}×{h}",
        path.display()
    );
}

fn check_csv(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("figure,series,x,y,value\n"),
        "{}",
        path.display()
    );
    assert!(text.lines().count() > 2, "{}: no data", path.display());
}

#[test]
fn every_panel_of_the_shipped_runs_draws_as_png_and_svg() {
    let dir = common::temp_dir("plot", "shipped");
    for run in ["mlp-plain-20-mnist", "mlp-res-20-mnist"] {
        let file = root().join(format!("saved_runs/{run}.reslab.json"));
        for (ext, size) in [("png", "900x600"), ("svg", "1000x700")] {
            // A stem per format: the CSV beside a picture is a file of its own, never overwritten.
            let out = dir.join(format!("{run}-{ext}.{ext}"));
            let o = reslab(&["plot", s(&file), "--out", s(&out), "--size", size]);
            assert!(o.status.success(), "{}", text(&o));
            let wh = if ext == "png" {
                (900, 600)
            } else {
                (1000, 700)
            };
            for panel in ["loss", "activations", "batchnorm", "gradients", "compare"] {
                let pic = dir.join(format!("{run}-{ext}-{panel}.{ext}"));
                assert!(pic.is_file(), "{} missing: {}", pic.display(), text(&o));
                if ext == "png" {
                    check_png(&pic, wh);
                } else {
                    check_svg(&pic, wh);
                }
                check_csv(&pic.with_extension("csv"));
            }
            let said = text(&o);
            assert!(said.contains("boundary: nothing to draw"), "{said}");
            assert!(said.contains("attention: nothing to draw"), "{said}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spirals_run_draws_its_decision_boundary_and_an_experiment_its_figures() {
    let dir = common::temp_dir("plot", "boundary");
    let run = dir.join("spirals");
    let mut args = vec!["train"];
    args.extend(small_run_args());
    args.extend(["--out", s(&run)]);
    let o = reslab(&args);
    assert!(o.status.success(), "{}", text(&o));
    let file = dir.join("spirals.reslab.json");
    let out = dir.join("b.png");
    let o = reslab(&["plot", s(&file), "--panel", "boundary", "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    check_png(&out, (1600, 1000));
    let exp = experiment_file(&dir);
    for ext in ["png", "svg"] {
        let out = dir.join(format!("shift-{ext}.{ext}"));
        let o = reslab(&["plot", s(&exp), "--out", s(&out), "--size", "1200x900"]);
        assert!(o.status.success(), "{}", text(&o));
        if ext == "png" {
            check_png(&out, (1200, 900));
        } else {
            check_svg(&out, (1200, 900));
        }
        check_csv(&out.with_extension("csv"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An experiment file with a figure of each kind: lines, bars, a heatmap with contours and
/// images.
fn experiment_file(dir: &Path) -> PathBuf {
    use reslab::experiments::{self, BarSeries, ExperimentFile, Figure, FigureKind, ImageTile};
    use reslab::figure::LineSeries;
    let mut file = ExperimentFile::new(
        experiments::find("loss-landscape").unwrap(),
        Default::default(),
    );
    let curve = |k: f64| {
        (0..50)
            .map(|i| [i as f64, (-(i as f64) / k).exp()])
            .collect()
    };
    file.figures.push(Figure::lines(
        "two curves",
        "step",
        "loss",
        vec![
            LineSeries::new("fast", curve(5.0)),
            LineSeries::new("slow", curve(20.0)),
        ],
    ));
    file.figures.push(Figure::bars(
        "bars",
        "mode",
        "accuracy",
        vec!["running".into(), "batch".into(), "adabn".into()],
        vec![
            BarSeries::new("red", vec![0.9, 0.8, 0.85]),
            BarSeries::new("green", vec![0.2, 0.6, 0.7]),
        ],
    ));
    let values = (0..121)
        .map(|k| ((k % 11) as f64 - 5.0).powi(2) + ((k / 11) as f64 - 5.0).powi(2) + 1.0)
        .collect();
    file.figures.push(Figure {
        kind: FigureKind::Heatmap {
            x_range: [-1.0, 1.0],
            y_range: [-1.0, 1.0],
            nx: 11,
            ny: 11,
            values,
            contours: vec![5.0, 20.0],
        },
        ..Figure::lines("a landscape", "α", "β", Vec::new()).log_y(true)
    });
    let pixels: Vec<f32> = (0..3 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
    file.figures.push(Figure {
        kind: FigureKind::Images {
            images: vec![ImageTile::from_planes("a digit", &pixels, 3, 8, 8)],
        },
        ..Figure::lines("samples", "", "", Vec::new())
    });
    file.save(dir).unwrap()
}

#[test]
fn plotting_twice_numbers_the_second_picture_and_bad_requests_are_named() {
    let dir = common::temp_dir("plot", "again");
    let file = root().join("saved_runs/mlp-res-20-mnist.reslab.json");
    let out = dir.join("loss.svg");
    for _ in 0..2 {
        let o = reslab(&["plot", s(&file), "--panel", "loss", "--out", s(&out)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    for name in ["loss.svg", "loss.csv", "loss-2.svg", "loss-2.csv"] {
        assert!(dir.join(name).is_file(), "{name}");
    }
    let cases: [(&[&str], &str); 4] = [
        (&["--panel", "weights"], "--panel weights: not a panel"),
        (
            &["--panel", "attention"],
            "nothing to draw in the attention panel",
        ),
        (&["--size", "10x10"], "--size"),
        (&["--out", "x.txt"], "name a .png or .svg file"),
    ];
    for (extra, said) in cases {
        let mut args = vec!["plot", s(&file)];
        if !extra.contains(&"--out") {
            args.extend(["--out", s(&out)]);
        }
        args.extend(extra);
        let o = reslab(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(said), "{extra:?}: {}", text(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
