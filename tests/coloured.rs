//! Coloured MNIST: deterministic per seed, every palette measuring as it says, and the names
//! the command line takes.

use reslab::data::{self, Dataset, Targets};
use reslab::spec::{DataSource, DatasetSpec, InputShape, Palette};

/// The loaded set (normalised with its training split's per-channel statistics).
fn raw(palette: Palette, seed: u64) -> Dataset {
    let mut spec = DatasetSpec::new(DataSource::ColouredMnist { palette });
    spec.seed = seed;
    data::load(&spec).unwrap()
}

/// The mean colour of the digit strokes and of the background, per channel, of raw images.
fn colours(palette: Palette) -> ([f32; 3], [f32; 3]) {
    let grey = reslab::data::coloured::colourise(reslab::data::mnist10k_raw().unwrap(), palette, 3);
    let plane = 28 * 28;
    let (mut fg, mut bg, mut nf, mut nb) = ([0f64; 3], [0f64; 3], 0f64, 0f64);
    let mono = reslab::data::mnist10k_raw().unwrap();
    for (img, m) in grey
        .x
        .chunks_exact(3 * plane)
        .zip(mono.x.chunks_exact(plane))
        .take(2000)
    {
        for (p, &v) in m.iter().enumerate() {
            let (acc, n) = if v > 0.9 {
                (&mut fg, &mut nf)
            } else if v == 0.0 {
                (&mut bg, &mut nb)
            } else {
                continue;
            };
            for c in 0..3 {
                acc[c] += img[c * plane + p] as f64;
            }
            *n += 1.0;
        }
    }
    (fg.map(|v| (v / nf) as f32), bg.map(|v| (v / nb) as f32))
}

#[test]
fn every_palette_measures_as_it_says() {
    let (red, bg) = colours(Palette::Red);
    assert!(red[0] > 0.7 && red[1] < 0.2 && red[2] < 0.2, "{red:?}");
    assert!(
        bg.iter().all(|&v| (v - 0.05).abs() < 1e-5),
        "dark background {bg:?}"
    );
    let (green, _) = colours(Palette::Green);
    assert!(
        green[1] > 0.6 && green[0] < 0.25 && green[2] < 0.3,
        "{green:?}"
    );
    let (blue, _) = colours(Palette::Blue);
    assert!(blue[2] > 0.7 && blue[0] < 0.3 && blue[1] < 0.4, "{blue:?}");
    let (orange, _) = colours(Palette::Orange);
    assert!(
        orange[0] > 0.7 && orange[1] > 0.3 && orange[1] < 0.6 && orange[2] < 0.2,
        "{orange:?}"
    );
    let (grey, _) = colours(Palette::Grey);
    assert!(
        grey.iter().all(|&v| (v - grey[0]).abs() < 0.02 && v > 0.5),
        "{grey:?}"
    );
    // Inverted: 1 − red, a light background.
    let (inv, inv_bg) = colours(Palette::Inverted);
    assert!(
        inv_bg.iter().all(|&v| (v - 0.95).abs() < 1e-5),
        "{inv_bg:?}"
    );
    assert!(inv[0] < 0.3 && inv[1] > 0.8 && inv[2] > 0.8, "{inv:?}");
    // All: each image takes one of the five colours; each is drawn about a fifth of the time.
    let mix =
        reslab::data::coloured::colourise(reslab::data::mnist10k_raw().unwrap(), Palette::All, 3);
    let mono = reslab::data::mnist10k_raw().unwrap();
    let plane = 28 * 28;
    let bases = [
        Palette::Red,
        Palette::Orange,
        Palette::Green,
        Palette::Blue,
        Palette::Grey,
    ]
    .map(reslab::data::coloured::base_colour);
    let mut counts = [0usize; 5];
    for (img, m) in mix
        .x
        .chunks_exact(3 * plane)
        .zip(mono.x.chunks_exact(plane))
        .take(2000)
    {
        // The brightest stroke pixel's colour, up to the shade's brightness.
        let p = (0..plane).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
        let c = [img[p], img[plane + p], img[2 * plane + p]];
        let norm = |v: [f32; 3]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.map(|x| x / n)
        };
        let c = norm(c);
        let nearest = (0..5)
            .max_by(|&a, &b| {
                let dot = |k: usize| {
                    norm(bases[k])
                        .iter()
                        .zip(&c)
                        .map(|(x, y)| x * y)
                        .sum::<f32>()
                };
                dot(a).total_cmp(&dot(b))
            })
            .unwrap();
        counts[nearest] += 1;
    }
    assert!(
        counts.iter().all(|&n| (300..=500).contains(&n)),
        "{counts:?}"
    );
}

#[test]
fn a_set_is_the_same_for_a_seed_and_differs_between_seeds() {
    let a = raw(Palette::Red, 5);
    let b = raw(Palette::Red, 5);
    assert_eq!(a, b);
    let c = raw(Palette::Red, 6);
    assert_ne!(a.train.x, c.train.x);
    assert_eq!(a.sample_shape, reslab::spec::Shape::Image(3, 28, 28));
    assert_eq!(a.train.len + a.valid.len, 10_000);
    let Targets::Classes(labels) = &a.train.y else {
        panic!("classes")
    };
    // The split is shuffled, not by position: every class in the training split.
    for k in 0..10u32 {
        assert!(labels.contains(&k), "class {k}");
    }
}

#[test]
fn names_and_shapes() {
    let d = DatasetSpec::from_name("coloured-mnist").unwrap();
    assert_eq!(
        d.source,
        DataSource::ColouredMnist {
            palette: Palette::Red
        }
    );
    let d = DatasetSpec::from_name("coloured-mnist:green").unwrap();
    assert_eq!(
        d.source,
        DataSource::ColouredMnist {
            palette: Palette::Green
        }
    );
    assert_eq!(d.label(), "Coloured MNIST-10k (green)");
    let err = DatasetSpec::from_name("coloured-mnist:pink")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown palette \"pink\""), "{err}");
    let (input, classes) = d.expected_io();
    assert_eq!(
        input,
        InputShape::Image {
            channels: 3,
            height: 28,
            width: 28
        }
    );
    assert_eq!(classes, 10);
    // A spec file names the palette in snake case, red by default; unknown fields are errors.
    let s: DataSource = serde_json::from_str(r#"{"type": "coloured_mnist"}"#).unwrap();
    assert_eq!(
        s,
        DataSource::ColouredMnist {
            palette: Palette::Red
        }
    );
    assert!(serde_json::from_str::<DataSource>(r#"{"type": "coloured_mnist", "hue": 1}"#).is_err());
}
