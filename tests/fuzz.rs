//! A stable-toolchain fuzz harness for every loader: run files (version 1 and the version-2
//! JSON + history side file), weights (safetensors), IDX (plain and gzipped), CIFAR-10 batches,
//! network specs, training configs and dataset descriptors (JSON). See FUZZING.md.
//!
//! Each target starts from the seed files in `tests/fuzz_corpus/<target>/` and feeds the loader
//! mutants: bit flips, interesting bytes and integers (biased to the header), inserted,
//! deleted, duplicated and spliced ranges, cuts, and (for JSON) numbers swapped for extreme
//! ones. The generator is seeded, so a run is reproducible. A panic is a crash: the input is
//! written to `target/fuzz-crashes/<target>/` and the test fails; move it into the corpus to keep
//! it as a regression input. An abort (out of memory under `ulimit -v`, a stack overflow) kills
//! the process: rerun with the printed seed and case number to find the input.
//!
//! `cargo test --release --test fuzz` runs 2,000 cases per target (CI). For a long run:
//! `RESLAB_FUZZ_CASES=1000000 nice -n 19 cargo test --release --test fuzz -- --nocapture`
//! (`RESLAB_FUZZ_SEED` picks another sequence).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reslab::data::{parse_cifar_batch, parse_idx_maybe_gz};
use reslab::metrics::Checkpoint;
use reslab::runfile;
use reslab::spec::{
    DataSource, DatasetSpec, MAX_DATASET_VALUES, NetSpec, TrainConfig, diagnose, estimate_memory,
    expected_tensors, probe_names, validate,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

fn cases() -> u64 {
    std::env::var("RESLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn seed() -> u64 {
    std::env::var("RESLAB_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

const INTERESTING_BYTES: &[u8] = b"\x00\x01\x7f\x80\xff\"{}[],:-.0123456789eE\\ntfn";
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    2,
    7,
    255,
    256,
    65_535,
    65_536,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    1 << 40,
    i64::MAX as u64,
    u64::MAX,
];
const INTERESTING_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "1e999",
    "-1e999",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "1.8e19",
    "1e-320",
    "null",
    "\"\"",
    "[]",
    "{}",
    "99999999999",
];

/// One random mutation of `data` (`other` is another corpus input, for splicing).
fn mutate(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8], text: bool) {
    let len = data.len();
    // Half of the positions fall in the first 64 bytes, where the headers are.
    let pos = |rng: &mut ChaCha8Rng, len: usize| {
        if len == 0 {
            0
        } else if rng.random_bool(0.5) {
            rng.random_range(0..len.min(64))
        } else {
            rng.random_range(0..len)
        }
    };
    match rng.random_range(0..10) {
        0 if len > 0 => {
            let i = pos(rng, len);
            data[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = pos(rng, len);
            data[i] = INTERESTING_BYTES[rng.random_range(0..INTERESTING_BYTES.len())];
        }
        2 if len >= 8 => {
            let i = pos(rng, len - 7);
            let v = INTERESTING_INTS[rng.random_range(0..INTERESTING_INTS.len())];
            let bytes = match rng.random_range(0..4) {
                0 => (v as u32).to_le_bytes().to_vec(),
                1 => (v as u32).to_be_bytes().to_vec(),
                2 => v.to_le_bytes().to_vec(),
                _ => v.to_be_bytes().to_vec(),
            };
            let end = (i + bytes.len()).min(len);
            data[i..end].copy_from_slice(&bytes[..end - i]);
        }
        3 => {
            let i = pos(rng, len + 1).min(len);
            let n = rng.random_range(1..9);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(i..i, bytes);
        }
        4 if len > 0 => {
            let i = pos(rng, len);
            let n = rng.random_range(1..=(len - i).min(256));
            data.drain(i..i + n);
        }
        5 if len > 0 => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - i).min(512));
            let chunk = data[i..i + n].to_vec();
            let at = rng.random_range(0..=len);
            data.splice(at..at, chunk);
        }
        6 if !other.is_empty() => {
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        7 if text => replace_number(rng, data),
        8 if text => insert_unknown_key(rng, data),
        _ => {
            let cut = rng.random_range(0..=len);
            data.truncate(cut);
        }
    }
}

/// Replaces a run of digits in JSON text with an extreme number or another value.
fn replace_number(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let start = rng.random_range(0..data.len());
    let Some(i) = (start..data.len()).find(|&i| data[i].is_ascii_digit()) else {
        return;
    };
    let mut j = i;
    while j < data.len() && (data[j].is_ascii_digit() || b".eE+-".contains(&data[j])) {
        j += 1;
    }
    let with = INTERESTING_NUMBERS[rng.random_range(0..INTERESTING_NUMBERS.len())];
    data.splice(i..j, with.bytes());
}

/// Inserts a key no reader knows (`"zz": 1`) at the start of a JSON object; the loaders must
/// refuse it rather than ignore it.
fn insert_unknown_key(rng: &mut ChaCha8Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    let start = rng.random_range(0..data.len());
    let Some(i) = (start..data.len()).find(|&i| data[i] == b'{') else {
        return;
    };
    let empty = data[i + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let key: &[u8] = if empty { b"\"zz\":1" } else { b"\"zz\":1," };
    data.splice(i + 1..i + 1, key.iter().copied());
}

/// Names a layer of a spec after a tensor another part of the network makes: `<other>.shortcut`
/// (a projection into `<other>`), `<other>.shortcut.bn`, `optim.m.<other>` (the optimiser's
/// state), or `<other>` itself. Not JSON, or no two layers: the generic mutations.
fn rename_layer(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8], text: bool) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return mutate(rng, data, other, text);
    };
    let names: Vec<String> = v["layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if names.len() < 2 {
        return mutate(rng, data, other, text);
    }
    let base = &names[rng.random_range(0..names.len())];
    let name = match rng.random_range(0..5) {
        0 => format!("{base}.shortcut"),
        1 => format!("{base}.shortcut.bn"),
        2 => format!("optim.m.{base}"),
        3 => format!("optim.v.{base}"),
        _ => base.clone(),
    };
    let i = rng.random_range(0..names.len());
    v["layers"][i]["name"] = serde_json::Value::String(name);
    *data = serde_json::to_vec(&v).unwrap();
}

/// Feeds `cases` mutants of the corpus to `run`; panics are collected and reported.
fn fuzz(target: &str, text: bool, run: impl Fn(&[u8], usize)) {
    fuzz_with(target, text, mutate, run);
}

/// [`fuzz`] with another mutation (`mutator` takes the role of [`mutate`]).
fn fuzz_with(
    target: &str,
    text: bool,
    mutator: fn(&mut ChaCha8Rng, &mut Vec<u8>, &[u8], bool),
    run: impl Fn(&[u8], usize),
) {
    let seeds = corpus(target);
    let total = cases();
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ (target.len() as u64 * 0x9E37_79B9));
    let mut crashes = Vec::new();
    let started = Instant::now();
    // Every seed as it is first.
    for (i, (p, b)) in seeds.iter().enumerate() {
        if catch_unwind(AssertUnwindSafe(|| run(b, i))).is_err() {
            crashes.push(format!("seed {}", p.display()));
        }
    }
    for case in 0..total {
        let k = rng.random_range(0..seeds.len());
        let other = &seeds[rng.random_range(0..seeds.len())].1;
        let mut data = seeds[k].1.clone();
        for _ in 0..rng.random_range(1..=4) {
            mutator(&mut rng, &mut data, other, text);
        }
        if catch_unwind(AssertUnwindSafe(|| run(&data, k))).is_err() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/fuzz-crashes")
                .join(target);
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("case-{case}"));
            let _ = std::fs::write(&path, &data);
            crashes.push(path.display().to_string());
        }
        if (case + 1) % 100_000 == 0 {
            eprintln!(
                "fuzz {target}: {} cases, {} crashes, {:.0} s",
                case + 1,
                crashes.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "fuzz {target}: {total} cases (seed {}), {} crashes, {:.1} s",
        seed(),
        crashes.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(crashes.is_empty(), "{target} crashed on: {crashes:#?}");
}

/// A run file's JSON and history side file, where the seed has them.
type JsonAndSide = (Option<Vec<u8>>, Option<Vec<u8>>);

#[test]
fn fuzz_run_files() {
    // Inline files (`*.json` without a side file) go through `parse`; a version-2 pair
    // (`x.json` + `x.side`) through `parse_split`, with either half mutated.
    let seeds = corpus("runfile");
    let side_of = |i: usize| -> Option<Vec<u8>> {
        let p = seeds[i].0.with_extension("side");
        seeds.iter().find(|(q, _)| *q == p).map(|(_, b)| b.clone())
    };
    let halves: Vec<JsonAndSide> = seeds
        .iter()
        .enumerate()
        .map(|(i, (p, _))| {
            let json = p.with_extension("json");
            let json = seeds
                .iter()
                .find(|(q, _)| *q == json)
                .map(|(_, b)| b.clone());
            (json, side_of(i))
        })
        .collect();
    fuzz("runfile", true, |data, k| {
        let (json, side) = &halves[k];
        let is_side = seeds[k].0.extension().is_some_and(|e| e == "side");
        let result = match (is_side, json, side) {
            (true, Some(json), _) => runfile::parse_split(json, data),
            (false, _, Some(side)) => runfile::parse_split(data, side),
            _ => runfile::parse(data),
        };
        if let Ok(run) = result {
            for (_, s) in run.history.iter() {
                assert_eq!(s.steps.len(), s.values.len());
            }
            let _ = serde_json::to_vec(&run).unwrap();
        }
    });
}

#[test]
fn fuzz_weights() {
    fuzz("weights", false, |data, _| {
        if let Ok(ck) = runfile::decode_weights(data) {
            for t in &ck.tensors {
                assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
            }
            let again = runfile::decode_weights(&runfile::encode_weights(&ck).unwrap()).unwrap();
            assert_eq!(again.tensors.len(), ck.tensors.len());
        }
    });
}

#[test]
fn fuzz_idx() {
    fuzz("idx", false, |data, _| {
        if let Ok(a) = parse_idx_maybe_gz(Path::new("fuzz.idx"), data) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    });
}

#[test]
fn fuzz_cifar() {
    fuzz("cifar", false, |data, _| {
        if let Ok(r) = parse_cifar_batch(Path::new("fuzz.bin"), data) {
            assert_eq!(r.x.len(), r.len * 3072);
        }
    });
}

/// Mostly the generic mutations, a third of the time a layer renamed after a tensor name.
fn mutate_spec(rng: &mut ChaCha8Rng, data: &mut Vec<u8>, other: &[u8], text: bool) {
    if rng.random_range(0..3) == 0 {
        rename_layer(rng, data, other, text);
    } else {
        mutate(rng, data, other, text);
    }
}

#[test]
fn fuzz_specs() {
    fuzz_with("spec", true, mutate_spec, |data, _| {
        let Ok(spec) = serde_json::from_slice::<NetSpec>(data) else {
            return;
        };
        // What the lab writes, it reads back (every field it writes is one it knows). Not
        // compared for equality: serde_json's parser may round a long mantissa one ulp off.
        let _: NetSpec = serde_json::from_slice(&serde_json::to_vec(&spec).unwrap()).unwrap();
        let _ = diagnose(&spec);
        if let Ok(v) = validate(&spec) {
            let tensors = expected_tensors(&v);
            let trained: u64 = tensors
                .iter()
                .filter(|t| t.trainable)
                .map(|t| t.numel())
                .sum();
            assert_eq!(trained, v.total_params());
            assert_eq!(probe_names(&v).layers.len(), spec.layers.len());
            // Every name a weight file would hold, optimiser state included, is unique.
            let mut names = std::collections::HashSet::new();
            for t in &tensors {
                assert!(names.insert(t.name.clone()), "{} twice", t.name);
            }
            for t in tensors.iter().filter(|t| t.trainable) {
                for prefix in [Checkpoint::MOMENT1, Checkpoint::MOMENT2] {
                    assert!(names.insert(format!("{prefix}{}", t.name)), "{}", t.name);
                }
            }
            let mnist = DatasetSpec::new(DataSource::Mnist10k);
            let _ = estimate_memory(&v, &Default::default(), &mnist);
        }
    });
}

#[test]
fn fuzz_configs() {
    // Training configs and dataset descriptors, as `--config` files and run files hold them.
    let specs = corpus("spec");
    let mlp = specs.iter().find(|(p, _)| p.ends_with("mlp.json")).unwrap();
    let valid = validate(&serde_json::from_slice(&mlp.1).unwrap()).unwrap();
    fuzz("config", true, |data, _| {
        if let Ok(c) = serde_json::from_slice::<TrainConfig>(data) {
            let _: TrainConfig = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
            if c.validate().is_ok() {
                let total = c.total_steps(60_000);
                let _ = c.lr_at(total / 2, total);
                let mnist = DatasetSpec::new(DataSource::Mnist10k);
                let _ = estimate_memory(&valid, &c, &mnist);
            }
        }
        if let Ok(d) = serde_json::from_slice::<DatasetSpec>(data) {
            let _: DatasetSpec = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
            let _ = d.label();
            if d.validate().is_ok() {
                let (samples, features) = d.expected_size();
                assert!(samples as u64 * features as u64 <= MAX_DATASET_VALUES);
                let _ = estimate_memory(&valid, &TrainConfig::default(), &d);
            }
        }
    });
}

/// The seeds themselves: the lab's own files load, the hostile ones of issue 19 are refused.
#[test]
fn the_seeds_written_by_the_lab_load_and_the_hostile_ones_are_refused() {
    let runs = corpus("runfile");
    let bytes = |name: &str| &runs.iter().find(|(p, _)| p.ends_with(name)).unwrap().1;
    runfile::parse(bytes("v1.json")).unwrap();
    runfile::parse_split(bytes("v2.json"), bytes("v2.side")).unwrap();
    for (path, data) in corpus("spec") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let read = serde_json::from_slice::<NetSpec>(&data).map_err(|e| e.to_string());
        let valid = read.and_then(|s| validate(&s).map_err(|e| e.to_string()));
        let hostile = name.starts_with("clash") || name.starts_with("unknown");
        assert_eq!(valid.is_err(), hostile, "{name}: {valid:?}");
    }
    for (path, data) in corpus("config") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let read = if name.starts_with("dataset") || name.starts_with("typo-dataset") {
            serde_json::from_slice::<DatasetSpec>(&data).map(|_| ())
        } else {
            serde_json::from_slice::<TrainConfig>(&data).map(|_| ())
        };
        assert_eq!(read.is_err(), name.starts_with("typo"), "{name}: {read:?}");
    }
}

/// Writes the seed corpus (run once by hand after a format change:
/// `cargo test --release --test fuzz -- --ignored write_seed_corpus`).
#[test]
#[ignore]
fn write_seed_corpus() {
    use reslab::metrics::History;
    use reslab::spec::*;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    // A tiny run: mlp-res-1 of width 4 on spirals, 6 steps, probes every 2.
    let dataset = DatasetSpec::from_name("spirals").unwrap();
    let opts = PresetOptions {
        width: 4,
        ..PresetOptions::for_dataset(&dataset)
    };
    let spec = preset("mlp-res-1", &opts).unwrap();
    let config = TrainConfig {
        batch_size: 16,
        duration: Duration::Steps(6),
        probe_every: 2,
        eval_every: 3,
        ..TrainConfig::default()
    };
    let valid = validate(&spec).unwrap();
    let mut s = reslab::train::Session::new(
        &valid,
        &config,
        reslab::data::load(&dataset).unwrap(),
        burn::tensor::Device::flex().autodiff(),
    )
    .unwrap();
    let mut h = History::new(s.layout.clone());
    for _ in 0..6 {
        let o = s.train_step();
        // Fixed throughput, so that the corpus does not depend on the machine's speed.
        let mut r = o.record;
        r.samples_per_sec = 1000.0;
        h.push_step(&r);
        if let Some(p) = o.probe {
            h.push_probe(p);
        }
    }
    h.push_eval(&s.evaluate());
    let env = runfile::Environment {
        backend: "flex".into(),
        device: "cpu".into(),
        reslab_version: "fuzz".into(),
    };
    let mut run = runfile::RunFile::new("seed", spec.clone(), config, dataset, env);
    run.history = h;
    let dir = common::temp_dir("fuzz", "seed");
    let ck = s.checkpoint();
    let path = runfile::save(&dir, &run, Some(&ck)).unwrap();
    let json = std::fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let side = std::fs::read(dir.join(v["history"]["file"]["path"].as_str().unwrap())).unwrap();
    put("runfile", "v2.json", &json);
    put("runfile", "v2.side", &side);
    let mut inline = serde_json::to_value(&run).unwrap();
    inline["version"] = serde_json::json!(1);
    put("runfile", "v1.json", &serde_json::to_vec(&inline).unwrap());
    put(
        "weights",
        "seed.safetensors",
        &runfile::encode_weights(&ck).unwrap(),
    );
    // IDX: 3 images of 4×4, their labels, and both gzipped.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    images.extend((0..48).map(|i| (i * 5) as u8));
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 3, 1, 7, 9];
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    put("idx", "images.idx3", &images);
    put("idx", "labels.idx1", &labels);
    put("idx", "images.idx3.gz", &gz(&images));
    put("idx", "labels.idx1.gz", &gz(&labels));
    // CIFAR: two records.
    let mut cifar = Vec::new();
    for label in [3u8, 9] {
        cifar.push(label);
        cifar.extend((0..3072).map(|i| (i % 251) as u8));
    }
    put("cifar", "two.bin", &cifar);
    // Specs: an MLP, a CIFAR ResNet with projections, a pre-activation net with SkipInit.
    put("spec", "mlp.json", &serde_json::to_vec(&spec).unwrap());
    let cifar_ds = DatasetSpec::from_name("cifar10:/x").unwrap();
    let c = PresetOptions {
        width: 4,
        shortcut: Shortcut::Projection { batch_norm: true },
        ..PresetOptions::for_dataset(&cifar_ds)
    };
    put(
        "spec",
        "cifar-resnet-8.json",
        &serde_json::to_vec(&preset("cifar-resnet-8", &c).unwrap()).unwrap(),
    );
    let p = PresetOptions {
        width: 4,
        scale: BranchScale::skip_init(),
        ..PresetOptions::for_dataset(&cifar_ds)
    };
    put(
        "spec",
        "preact-resnet-8.json",
        &serde_json::to_vec(&preset("preact-resnet-8", &p).unwrap()).unwrap(),
    );
    // Specs of issue 19: tensor names that collide, and fields no version knows.
    let flat = serde_json::json!({"kind": "flat", "features": 2});
    let clashes = [
        (
            "clash-moment.json",
            serde_json::json!({"name": "clash", "input": flat, "layers": [
                {"name": "fc", "op": {"type": "linear", "out": 4}},
                {"name": "optim.m.fc", "op": {"type": "linear", "out": 4}},
                {"name": "head", "op": {"type": "head", "outputs": 2}}]}),
        ),
        (
            "clash-shortcut.json",
            serde_json::json!({"name": "clash", "input": flat, "layers": [
                {"name": "a", "op": {"type": "linear", "out": 4}},
                {"name": "b", "op": {"type": "linear", "out": 8}},
                {"name": "b.shortcut", "op": {"type": "linear", "out": 8}},
                {"name": "head", "op": {"type": "head", "outputs": 2}}],
                "skips": [{"from": "a", "to": "b", "shortcut": {"type": "projection"}}]}),
        ),
        (
            "unknown-fields.json",
            serde_json::json!({"name": "typo", "input": flat, "layers": [
                {"name": "fc", "op": {"type": "linear", "out": 4, "bais": false}},
                {"name": "flat", "op": {"type": "flatten", "start_dim": 1}},
                {"name": "head", "op": {"type": "head", "outputs": 2}, "bias_sd": 0.1}]}),
        ),
    ];
    for (name, v) in clashes {
        put("spec", name, &serde_json::to_vec(&v).unwrap());
    }
    // Configs and dataset descriptors: the defaults, Adam with a cosine schedule, a step
    // schedule in epochs, every dataset kind, and two with fields no version knows.
    put(
        "config",
        "default.json",
        &serde_json::to_vec(&TrainConfig::default()).unwrap(),
    );
    let adam = TrainConfig {
        optimizer: OptimizerSpec::adamw(),
        schedule: Schedule::Cosine {
            final_fraction: 0.1,
        },
        warmup_steps: 10,
        ..TrainConfig::default()
    };
    put(
        "config",
        "adamw-cosine.json",
        &serde_json::to_vec(&adam).unwrap(),
    );
    let step = TrainConfig {
        schedule: Schedule::Step {
            every: 5,
            gamma: 0.5,
        },
        duration: Duration::Epochs(3),
        device: DeviceChoice::Gpu,
        ..TrainConfig::default()
    };
    put(
        "config",
        "step-epochs.json",
        &serde_json::to_vec(&step).unwrap(),
    );
    for kind in DataKind::ALL {
        let d = DatasetSpec::new(kind.default_source(PathBuf::from("/data")));
        let dir = if kind.needs_folder() { "-dir" } else { "" };
        let slug = format!("{}{dir}", kind.name());
        put(
            "config",
            &format!("dataset-{slug}.json"),
            &serde_json::to_vec(&d).unwrap(),
        );
    }
    put(
        "config",
        "typo-config.json",
        br#"{"learning_rate": 5, "schedule": {"type": "constant", "x": 1}}"#,
    );
    put(
        "config",
        "typo-dataset.json",
        br#"{"source": {"type": "mnist10k", "x": 1}, "validation_fraktion": 0.1}"#,
    );
}
