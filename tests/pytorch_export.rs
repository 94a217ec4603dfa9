//! `reslab export RUN --pytorch DIR` (issue 24): the state dict's names and shapes are what the
//! generated `model.py` declares, read from its text with PyTorch's rules for each module (for
//! every preset family, each normalisation and shortcut, a learnable α, every activation); the
//! Linear layouts are transposed; bad targets are refused. With `RESLAB_TORCH_PYTHON` (an
//! interpreter with torch and safetensors) the ignored test loads exports in PyTorch and
//! compares the logits with the lab's (`cargo test --release --test pytorch_export -- --ignored`).

mod common;

use reslab::interop::{pytorch, weights};
use reslab::metrics::{Checkpoint, NamedTensor};
use reslab::spec::{
    Activation, BranchScale, InputShape, NetSpec, Norm, PresetOptions, Shortcut, expected_tensors,
    preset, validate,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A checkpoint holding every tensor of `spec` (values `k + index/1000` so layouts can be told
/// apart), as training would leave it, plus an optimiser moment the export must leave out.
fn checkpoint(spec: &NetSpec) -> Checkpoint {
    let valid = validate(spec).unwrap();
    let mut tensors: Vec<NamedTensor> = expected_tensors(&valid)
        .into_iter()
        .enumerate()
        .map(|(k, e)| NamedTensor {
            data: (0..e.shape.iter().product::<usize>())
                .map(|i| k as f32 + i as f32 / 1000.0)
                .collect(),
            name: e.name,
            shape: e.shape,
        })
        .collect();
    let first = tensors[0].clone();
    tensors.push(NamedTensor {
        name: format!("optim.m.{}", first.name),
        ..first
    });
    Checkpoint {
        step: 7,
        tensors,
        ..Checkpoint::default()
    }
}

/// The integers among a constructor's positional arguments.
fn ints(args: &str) -> Vec<usize> {
    args.split(',')
        .map(str::trim)
        .take_while(|a| !a.contains('='))
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// The tensors `model.py` declares, by PyTorch's rules for each module it constructs.
fn declared(model_py: &str) -> BTreeMap<String, Vec<usize>> {
    let mut out = BTreeMap::new();
    for line in model_py.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("self.") else {
            continue;
        };
        let Some((dict, rest)) = rest.split_once("[\"") else {
            continue;
        };
        let (key, rest) = rest.split_once("\"] = ").unwrap();
        let ctor = rest.split("  #").next().unwrap();
        let (name, args) = ctor.split_once('(').unwrap();
        let args = args.rsplit_once(')').unwrap().0;
        let n = ints(args);
        let bias = !args.contains("bias=False");
        let p = format!("{dict}.{key}");
        let mut add = |field: &str, shape: Vec<usize>| {
            out.insert(format!("{p}.{field}"), shape);
        };
        match name {
            "nn.Linear" => {
                add("weight", vec![n[1], n[0]]);
                if bias {
                    add("bias", vec![n[1]]);
                }
            }
            "nn.Conv2d" => {
                add("weight", vec![n[1], n[0], n[2], n[2]]);
                if bias {
                    add("bias", vec![n[1]]);
                }
            }
            "nn.BatchNorm1d" | "nn.BatchNorm2d" => {
                for f in ["weight", "bias", "running_mean", "running_var"] {
                    add(f, vec![n[0]]);
                }
                add("num_batches_tracked", vec![]);
            }
            "nn.GroupNorm" => {
                add("weight", vec![n[1]]);
                add("bias", vec![n[1]]);
            }
            "PatchEmbed" => {
                add("proj.weight", vec![n[1], n[0], n[2], n[2]]);
                add("proj.bias", vec![n[1]]);
                add("position", vec![n[3], n[1]]);
            }
            "SelfAttention" => {
                add("qkv.weight", vec![3 * n[0], n[0]]);
                add("qkv.bias", vec![3 * n[0]]);
                add("out.weight", vec![n[0], n[0]]);
                add("out.bias", vec![n[0]]);
            }
            "nn.Parameter" => {
                out.insert(p, vec![1]);
            }
            other => panic!("model.py constructs an unknown module {other}: {line}"),
        }
    }
    out
}

/// Small networks of every preset family, each normalisation, both parameter-free shortcuts
/// and projections, a learnable α and every activation.
fn networks() -> Vec<NetSpec> {
    let opts = |norm: Norm, shortcut: Shortcut, scale: BranchScale, activation| PresetOptions {
        width: 24,
        norm,
        shortcut,
        scale,
        activation,
        ..PresetOptions::default()
    };
    let learnable = BranchScale {
        value: 0.5,
        learnable: true,
    };
    let fixed = BranchScale::default();
    let projection = Shortcut::Projection { batch_norm: true };
    let mut out = Vec::new();
    for (name, o) in [
        (
            "mlp-res-3",
            opts(Norm::Batch, projection, learnable, Activation::Gelu),
        ),
        (
            "mlp-plain-3",
            opts(Norm::Layer, projection, fixed, Activation::Tanh),
        ),
        (
            "mlp-res-3",
            opts(Norm::None, Shortcut::ZeroPad, fixed, Activation::Sigmoid),
        ),
        (
            "cifar-resnet-8",
            opts(Norm::Batch, projection, fixed, Activation::Relu),
        ),
        (
            "cifar-resnet-8",
            opts(
                Norm::Group { groups: 4 },
                Shortcut::ZeroPad,
                learnable,
                Activation::Relu,
            ),
        ),
        (
            "cifar-resnet-8",
            opts(
                Norm::Layer,
                Shortcut::Projection { batch_norm: false },
                fixed,
                Activation::Relu,
            ),
        ),
        (
            "preact-resnet-8",
            opts(Norm::Batch, projection, fixed, Activation::Relu),
        ),
        (
            "cnn-3",
            opts(Norm::Batch, projection, fixed, Activation::Relu),
        ),
        (
            "vit-res-2",
            opts(Norm::Layer, projection, fixed, Activation::Gelu),
        ),
        (
            "vit-postln-2",
            opts(Norm::Layer, projection, fixed, Activation::Gelu),
        ),
        (
            "vit-plain-2",
            opts(Norm::Batch, projection, fixed, Activation::Gelu),
        ),
    ] {
        let input = if name.starts_with("mlp") {
            InputShape::Flat { features: 6 }
        } else {
            InputShape::Image {
                channels: 3,
                height: 16,
                width: 16,
            }
        };
        let o = PresetOptions {
            input: Some(input),
            ..o
        };
        out.push(preset(name, &o).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    out
}

#[test]
fn the_state_dict_is_what_model_py_declares_for_every_kind_of_network() {
    for spec in networks() {
        let valid = validate(&spec).unwrap();
        let py = pytorch::model_py(&valid);
        let ck = checkpoint(&spec);
        let dict = weights::state_dict(&valid, &ck, ck.step).unwrap();
        let got: BTreeMap<String, Vec<usize>> = dict
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        assert_eq!(got, declared(&py), "{}", spec.name);
        assert!(
            !got.keys().any(|k| k.contains("optim")),
            "no optimiser state"
        );
        // Linear weights are transposed: torch [o][i] holds burn [i][o].
        let lin = spec
            .layers
            .iter()
            .find(|l| matches!(l.op, reslab::spec::LayerOp::Head { .. }))
            .unwrap();
        let burn = ck.get(&format!("{}.weight", lin.name)).unwrap();
        let (i_n, o_n) = (burn.shape[0], burn.shape[1]);
        let torch = dict
            .iter()
            .find(|t| {
                t.name
                    .ends_with(&format!("{}.weight", lin.name.replace('.', "_")))
            })
            .unwrap();
        let weights::TorchData::F32(values) = &torch.data else {
            panic!("f32 weights")
        };
        for (i, o) in [(0, 1), (i_n - 1, 0), (1, o_n - 1)] {
            assert_eq!(values[o * i_n + i], burn.data[i * o_n + o], "{}", spec.name);
        }
    }
}

/// Names from a run file cannot break out of model.py's comments or docstring, and layer names
/// that a `ModuleDict` already uses (`train`, `forward`, …) or that start with `_` get keys of
/// their own.
#[test]
fn names_from_the_run_file_stay_text_and_never_collide_with_torch() {
    let mut spec = networks()[0].clone();
    spec.name = "net \\ \"\"\" x".into();
    let n = spec.layers.len();
    spec.layers[n - 1].name = "train".into();
    spec.layers[0].name = "_x\nimport os; os.system('boom')".into();
    for s in &mut spec.skips {
        if s.from == networks()[0].layers[0].name {
            s.from = spec.layers[0].name.clone();
        }
    }
    let valid = validate(&spec).unwrap();
    let py = pytorch::model_py(&valid);
    // The injected code is only ever inside a comment.
    for line in py.lines().filter(|l| l.contains("os.system")) {
        let code = line.split('#').next().unwrap();
        assert!(!code.contains("os.system"), "{line}");
    }
    assert!(py.contains("self.layers[\"train_layer\"]"), "{py}");
    assert!(
        py.contains("self.layers[\"l_x_import_os__os_system__boom__\"]"),
        "{py}"
    );
    assert!(!py.contains("\\ \"\"\""), "the docstring stays closed");
    let ck = checkpoint(&spec);
    let dict = weights::state_dict(&valid, &ck, 1).unwrap();
    let got: BTreeMap<String, Vec<usize>> = dict
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    assert_eq!(got, declared(&py));
}

#[test]
fn a_missing_or_misshapen_tensor_is_an_error_naming_it() {
    let spec = &networks()[0];
    let valid = validate(spec).unwrap();
    let mut ck = checkpoint(spec);
    let name = ck.tensors[2].name.clone();
    ck.tensors[2].shape.push(1);
    let e = weights::state_dict(&valid, &ck, 1).unwrap_err();
    assert!(e.contains(&name) && e.contains("shape"), "{e}");
    ck.tensors.remove(2);
    let e = weights::state_dict(&valid, &ck, 1).unwrap_err();
    assert!(e.contains(&name), "{e}");
}

fn reslab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reslab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

const SHIPPED: &str = "saved_runs/mlp-res-20-mnist.reslab.json";

#[test]
fn the_shipped_run_exports_and_bad_targets_are_refused() {
    let dir = common::temp_dir("pytorch", "export");
    let out = dir.join("torch");
    let o = reslab(&["export", SHIPPED, "--pytorch", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "model.py",
        "model.safetensors",
        "preprocess.json",
        "samples.safetensors",
        "check.py",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let pre: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("preprocess.json")).unwrap()).unwrap();
    assert_eq!(pre["input_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(pre["class_names"].as_array().unwrap().len(), 10);
    assert!((pre["scale"].as_f64().unwrap() - 1.0 / 255.0).abs() < 1e-12);
    assert_eq!(pre["mean"].as_array().unwrap().len(), 1);
    // A file where the folder should be, and a symlinked file in the folder: refused, exit 2.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = reslab(&["export", SHIPPED, "--pytorch", file.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    let linked = dir.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    let target = dir.join("elsewhere.py");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, linked.join("model.py")).unwrap();
    let o = reslab(&["export", SHIPPED, "--pytorch", linked.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains `what` (a preset or a spec file) for `steps` on `dataset` into `dir` and exports it.
fn trained_export(dir: &Path, name: &str, what: &[&str], dataset: &str, steps: &str) -> PathBuf {
    let run = dir.join(name);
    let mut args = vec![
        "train",
        "--dataset",
        dataset,
        "--steps",
        steps,
        "--probe-every",
        "0",
    ];
    args.extend_from_slice(what);
    args.extend_from_slice(&["--out", run.to_str().unwrap()]);
    let o = reslab(&args);
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = dir.join(format!("{name}-torch"));
    let file = format!("{}.reslab.json", run.display());
    let o = reslab(&["export", &file, "--pytorch", out.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// PyTorch gives the lab's logits (within 1e-4) on 256 validation samples for the shipped run
/// (a file from before version 3), a ResNet with projections, one with zero-padding, GroupNorm
/// and a learnable α, a ViT, and an MLP with every activation, LayerNorm, GroupNorm and skips
/// from the input. Needs `RESLAB_TORCH_PYTHON`.
#[test]
#[ignore = "needs RESLAB_TORCH_PYTHON, a Python with torch and safetensors"]
fn pytorch_computes_the_labs_logits() {
    let python = std::env::var("RESLAB_TORCH_PYTHON")
        .expect("set RESLAB_TORCH_PYTHON to a Python with torch and safetensors");
    let dir = common::temp_dir("pytorch", "logits");
    let spec_file = |spec: &NetSpec, name: &str| {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_vec(spec).unwrap()).unwrap();
        p.to_string_lossy().into_owned()
    };
    let nets = networks();
    let mnist = |spec: &NetSpec| {
        let mut s = spec.clone();
        s.input = InputShape::Image {
            channels: 1,
            height: 28,
            width: 28,
        };
        s
    };
    let (zero_pad, mlp) = (spec_file(&mnist(&nets[4]), "zp.json"), nets[0].clone());
    let mut mlp = mlp;
    mlp.input = InputShape::Flat { features: 2 };
    // A layer named like a ModuleDict method: the export keys it apart.
    let last = mlp.layers.len() - 1;
    mlp.layers[last].name = "train".into();
    if let Some(reslab::spec::LayerOp::Head { outputs }) = mlp.layers.last_mut().map(|l| &mut l.op)
    {
        *outputs = 2;
    }
    let mlp = spec_file(&mlp, "mlp.json");
    let mut exports = vec![dir.join("shipped-torch")];
    let o = reslab(&["export", SHIPPED, "--pytorch", exports[0].to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    exports.push(trained_export(
        &dir,
        "resnet",
        &["--preset", "cifar-resnet-8"],
        "mnist",
        "20",
    ));
    exports.push(trained_export(
        &dir,
        "zero-pad",
        &["--spec", &zero_pad],
        "mnist",
        "20",
    ));
    exports.push(trained_export(
        &dir,
        "vit",
        &["--preset", "vit-res-2"],
        "mnist",
        "20",
    ));
    exports.push(trained_export(
        &dir,
        "mlp",
        &["--spec", &mlp],
        "spirals",
        "100",
    ));
    for out in exports {
        let o = Command::new(&python)
            .arg(out.join("check.py"))
            .arg("1e-4")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{}: {said}{}",
            out.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            said.contains("256 samples") || said.contains(" samples: max"),
            "{said}"
        );
        println!("{}: {said}", out.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
