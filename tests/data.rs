//! Dataset generation, loading (with crafted bad files), splitting and batching.

mod common;

use reslab::data::*;
use reslab::spec::{DataSource, DatasetSpec, Shape};
use std::io::Write;
use std::path::Path;

fn idx3(n: u32, h: u32, w: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        v.extend(d.to_be_bytes());
    }
    v.extend(pixels);
    v
}

fn idx1(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_mnist(dir: &Path, train: (&[u8], &[u8]), test: (&[u8], &[u8])) {
    std::fs::write(dir.join("train-images-idx3-ubyte"), train.0).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz(train.1)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(test.0)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), test.1).unwrap();
}

#[test]
fn shipped_mnist10k_has_the_documented_class_counts() {
    let d = load(&DatasetSpec::new(DataSource::Mnist10k)).unwrap();
    assert_eq!(d.sample_shape, Shape::Image(1, 28, 28));
    assert_eq!(d.train.len + d.valid.len, 10_000);
    assert_eq!(d.valid.len, 2_000);
    let mut counts = [0usize; 10];
    for split in [&d.train, &d.valid] {
        let Targets::Classes(c) = &split.y else {
            panic!()
        };
        for &l in c {
            counts[l as usize] += 1;
        }
    }
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    // Normalised with training statistics: the training pixels have mean 0 and std 1.
    let n = d.train.x.len() as f64;
    let mean = d.train.x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = d
        .train
        .x
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(mean.abs() < 1e-4, "{mean}");
    assert!((var.sqrt() - 1.0).abs() < 1e-3, "{var}");
}

#[test]
fn idx_folder_loads_plain_and_gzipped_files() {
    let dir = common::temp_dir("test", "idx-ok");
    let train_px: Vec<u8> = (0..3 * 4).map(|i| (i * 20) as u8).collect();
    let test_px: Vec<u8> = vec![255; 2 * 4];
    write_mnist(
        &dir,
        (&idx3(3, 2, 2, &train_px), &idx1(&[1, 2, 3])),
        (&idx3(2, 2, 2, &test_px), &idx1(&[9, 0])),
    );
    let spec = DatasetSpec::new(DataSource::MnistDir { dir: dir.clone() });
    let d = load(&spec).unwrap();
    assert_eq!(d.sample_shape, Shape::Image(1, 2, 2));
    assert_eq!(d.train.len, 3);
    assert_eq!(d.valid.len, 2);
    assert_eq!(d.train.y, Targets::Classes(vec![1, 2, 3]));
    assert_eq!(d.valid.y, Targets::Classes(vec![9, 0]));
}

#[test]
fn truncated_idx_names_file_and_offset() {
    let bytes = idx3(3, 2, 2, &[0; 11]);
    let e = parse_idx(Path::new("imgs"), &bytes).unwrap_err();
    match &e {
        DataError::Truncated {
            offset,
            needed,
            available,
            ..
        } => {
            assert_eq!((*offset, *needed, *available), (16, 12, 11));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("imgs") && msg.contains("byte 16"), "{msg}");
    // A header cut inside the dimensions.
    let e = parse_idx(Path::new("x"), &[0, 0, 8, 3, 0, 0]).unwrap_err();
    assert!(matches!(e, DataError::Truncated { offset: 4, .. }));
    let e = parse_idx(Path::new("x"), &[0, 0]).unwrap_err();
    assert!(matches!(e, DataError::Truncated { offset: 0, .. }));
}

#[test]
fn malformed_idx_headers_name_the_field() {
    let e = parse_idx(Path::new("x"), &[1, 2, 8, 1, 0, 0, 0, 0]).unwrap_err();
    assert!(matches!(e, DataError::BadHeader { field: "magic", .. }));
    let e = parse_idx(Path::new("x"), &[0, 0, 0x0D, 1, 0, 0, 0, 0]).unwrap_err();
    assert!(matches!(
        e,
        DataError::BadHeader {
            field: "data type",
            ..
        }
    ));
    let e = parse_idx(Path::new("x"), &[0, 0, 8, 9]).unwrap_err();
    assert!(matches!(
        e,
        DataError::BadHeader {
            field: "number of dimensions",
            ..
        }
    ));
    let mut extra = idx1(&[1, 2]);
    extra.push(7);
    let e = parse_idx(Path::new("x"), &extra).unwrap_err();
    assert!(matches!(
        e,
        DataError::BadHeader {
            field: "dimension sizes",
            ..
        }
    ));
    // A header announcing 4 billion values does not allocate them: it is reported as truncated.
    let mut huge = vec![0, 0, 8, 1];
    huge.extend(u32::MAX.to_be_bytes());
    assert!(matches!(
        parse_idx(Path::new("x"), &huge),
        Err(DataError::Truncated { .. })
    ));
}

#[test]
fn idx_folder_errors_name_files() {
    let dir = common::temp_dir("test", "idx-bad");
    // Labels out of range.
    write_mnist(
        &dir,
        (&idx3(2, 1, 1, &[0, 0]), &idx1(&[3, 12])),
        (&idx3(2, 1, 1, &[0, 0]), &idx1(&[0, 0])),
    );
    let e = load(&DatasetSpec::new(DataSource::MnistDir { dir: dir.clone() })).unwrap_err();
    match e {
        DataError::BadLabel {
            path,
            offset,
            label,
            ..
        } => {
            assert!(path.ends_with("train-labels-idx1-ubyte.gz"));
            assert_eq!((offset, label), (9, 12));
        }
        other => panic!("{other:?}"),
    }
    // Counts disagree.
    write_mnist(
        &dir,
        (&idx3(2, 1, 1, &[0, 0]), &idx1(&[3, 1, 2])),
        (&idx3(2, 1, 1, &[0, 0]), &idx1(&[0, 0])),
    );
    let e = load(&DatasetSpec::new(DataSource::MnistDir { dir: dir.clone() })).unwrap_err();
    assert!(matches!(
        e,
        DataError::CountMismatch {
            image_count: 2,
            label_count: 3,
            ..
        }
    ));
    // A label file with an image header.
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        gz(&idx3(2, 1, 1, &[0, 0])),
    )
    .unwrap();
    let e = load(&DatasetSpec::new(DataSource::MnistDir { dir: dir.clone() })).unwrap_err();
    assert!(matches!(
        e,
        DataError::BadHeader {
            field: "number of dimensions",
            ..
        }
    ));
    // A broken gzip stream.
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        [0x1f, 0x8b, 8, 0, 1, 2, 3],
    )
    .unwrap();
    let e = load(&DatasetSpec::new(DataSource::MnistDir { dir: dir.clone() })).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e}");
    // Missing files.
    let empty = common::temp_dir("test", "idx-empty");
    let e = load(&DatasetSpec::new(DataSource::FashionDir { dir: empty })).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { what: "images", .. }));
    assert!(e.to_string().contains("train-images-idx3-ubyte"));
    // Not a folder.
    let e = load(&DatasetSpec::new(DataSource::MnistDir {
        dir: dir.join("nothing-here"),
    }))
    .unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
}

fn cifar_record(label: u8, px: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend(std::iter::repeat_n(px, 3072));
    r
}

#[test]
fn cifar_batches_load_and_bad_ones_name_the_offset() {
    let dir = common::temp_dir("test", "cifar");
    let mut b1 = cifar_record(3, 255);
    b1.extend(cifar_record(7, 0));
    b1.extend(cifar_record(1, 128));
    std::fs::write(dir.join("data_batch_1.bin"), &b1).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_record(9, 10)).unwrap();
    let d = load(&DatasetSpec::new(DataSource::Cifar10Dir {
        dir: dir.clone(),
    }))
    .unwrap();
    assert_eq!(d.sample_shape, Shape::Image(3, 32, 32));
    assert_eq!((d.train.len, d.valid.len), (3, 1));
    assert_eq!(d.train.y, Targets::Classes(vec![3, 7, 1]));

    let mut trunc = b1.clone();
    trunc.truncate(3073 * 2 + 100);
    let e = parse_cifar_batch(Path::new("b.bin"), &trunc).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Truncated {
                offset: 6146,
                available: 100,
                ..
            }
        ),
        "{e}"
    );
    let mut badlabel = b1.clone();
    badlabel[3073] = 10;
    let e = parse_cifar_batch(Path::new("b.bin"), &badlabel).unwrap_err();
    assert!(matches!(
        e,
        DataError::BadLabel {
            offset: 3073,
            label: 10,
            ..
        }
    ));
    assert!(matches!(
        parse_cifar_batch(Path::new("b.bin"), &[]),
        Err(DataError::Truncated { offset: 0, .. })
    ));
    let empty = common::temp_dir("test", "cifar-empty");
    let e = load(&DatasetSpec::new(DataSource::Cifar10Dir { dir: empty })).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }));
}

#[test]
fn synthetic_sets_are_deterministic_per_seed_and_balanced() {
    let spec = DatasetSpec::from_name("spirals").unwrap();
    let a = load(&spec).unwrap();
    let b = load(&spec).unwrap();
    assert_eq!(a, b);
    let mut other = spec.clone();
    other.seed = 1;
    assert_ne!(load(&other).unwrap().train.x, a.train.x);
    assert_eq!(a.train.len + a.valid.len, 2000);
    assert_eq!(a.valid.len, 400);
    for name in [
        "circles",
        "moons",
        "xor",
        "checkerboard",
        "gaussians",
        "regression",
    ] {
        let d = load(&DatasetSpec::from_name(name).unwrap()).unwrap();
        assert!(d.train.x.iter().all(|v| v.is_finite()), "{name}");
        assert!(d.train.len > d.valid.len, "{name}");
    }
    let g = load(&DatasetSpec::from_name("gaussians").unwrap()).unwrap();
    assert_eq!(g.sample_shape, Shape::Flat(10));
    assert_eq!(g.task, Task::Classification { classes: 5 });
    let r = load(&DatasetSpec::from_name("regression").unwrap()).unwrap();
    assert_eq!(r.task, Task::Regression { outputs: 1 });
}

#[test]
fn generator_parameters_are_checked() {
    let bad = [
        DataSource::Spirals {
            samples: 100,
            classes: 1,
            noise: 0.1,
        },
        DataSource::Circles {
            samples: 0,
            noise: 0.1,
        },
        DataSource::Moons {
            samples: 100,
            noise: f32::NAN,
        },
        DataSource::Checkerboard {
            samples: 100,
            tiles: 0,
            noise: 0.0,
        },
        DataSource::Gaussians {
            samples: 100,
            classes: 3,
            dim: 0,
            spread: 1.0,
        },
    ];
    for source in bad {
        let e = load(&DatasetSpec::new(source.clone())).unwrap_err();
        assert!(matches!(e, DataError::BadParameter { .. }), "{source:?}");
    }
    let mut s = DatasetSpec::from_name("xor").unwrap();
    s.validation_fraction = 1.5;
    assert!(matches!(
        load(&s),
        Err(DataError::BadParameter {
            field: "validation_fraction",
            ..
        })
    ));
}

#[test]
fn normalisation_uses_training_statistics_per_channel() {
    let mut train = Split {
        x: vec![1.0, 10.0, 3.0, 30.0],
        y: Targets::Classes(vec![0, 1]),
        len: 2,
    };
    let mut valid = Split {
        x: vec![2.0, 20.0],
        y: Targets::Classes(vec![0]),
        len: 1,
    };
    normalize(&mut train, &mut valid, Shape::Image(2, 1, 1));
    // channel 0: mean 2, std 1; channel 1: mean 20, std 10.
    assert_eq!(train.x, vec![-1.0, -1.0, 1.0, 1.0]);
    assert_eq!(valid.x, vec![0.0, 0.0]);
}

#[test]
fn batch_sampler_covers_each_epoch_once_and_depends_on_the_seed() {
    let mut s = BatchSampler::new(10, 3, 7);
    assert_eq!(s.batches_per_epoch(), 3);
    let mut seen: Vec<usize> = Vec::new();
    for _ in 0..3 {
        seen.extend(s.next_batch());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 9);
    assert_eq!(s.epoch(), 1);
    s.next_batch();
    assert_eq!(s.epoch(), 2);
    let first: Vec<usize> = BatchSampler::new(10, 3, 7).next_batch().to_vec();
    let again: Vec<usize> = BatchSampler::new(10, 3, 7).next_batch().to_vec();
    let other: Vec<usize> = BatchSampler::new(10, 3, 8).next_batch().to_vec();
    assert_eq!(first, again);
    assert_ne!(first, other);
    let mut skipped = BatchSampler::new(10, 3, 7);
    skipped.skip(4);
    let mut stepped = BatchSampler::new(10, 3, 7);
    for _ in 0..4 {
        stepped.next_batch();
    }
    assert_eq!(skipped.next_batch(), stepped.next_batch());
}
