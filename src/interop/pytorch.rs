//! `model.py`: a plain `torch.nn.Module` named `Net` written from a valid network description,
//! computing what the lab's forward pass computes (`model::Model::forward`): the layers in
//! order, each skip adding `shortcut(source)` to its target's output scaled by α.
//!
//! The modules sit in three dictionaries keyed by the layer's name with every character that
//! is not a letter, a digit or `_` made `_` ([`Keys`]): `layers` (one per layer with weights),
//! `shortcuts` and `shortcut_norms` (a projection skip's map and its BatchNorm, keyed by the
//! skip's target) and `alphas` (a learnable α, keyed the same way).

use crate::spec::{Activation, LayerOp, Shape, Shortcut, ValidSpec};
use std::collections::HashSet;
use std::fmt::Write;

/// Names a `nn.ModuleDict` or `nn.ParameterDict` already has (its methods and attributes, torch
/// 2.x): a key among them cannot be added, so it gets `_layer` after it.
const TAKEN: &[&str] = &[
    "add_module",
    "apply",
    "bfloat16",
    "buffers",
    "call_super_init",
    "children",
    "clear",
    "compile",
    "copy",
    "cpu",
    "cuda",
    "double",
    "dump_patches",
    "eval",
    "extra_repr",
    "float",
    "forward",
    "fromkeys",
    "get",
    "get_buffer",
    "get_extra_state",
    "get_parameter",
    "get_submodule",
    "half",
    "ipu",
    "items",
    "keys",
    "load_state_dict",
    "modules",
    "mtia",
    "named_buffers",
    "named_children",
    "named_modules",
    "named_parameters",
    "parameters",
    "pop",
    "popitem",
    "register_backward_hook",
    "register_buffer",
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook",
    "register_module",
    "register_parameter",
    "register_state_dict_post_hook",
    "register_state_dict_pre_hook",
    "requires_grad_",
    "set_extra_state",
    "set_submodule",
    "setdefault",
    "share_memory",
    "state_dict",
    "to",
    "to_empty",
    "train",
    "training",
    "type",
    "update",
    "values",
    "xpu",
    "zero_grad",
];

/// Text from the run file (layer and network names) made safe inside a Python comment or
/// docstring: control characters, backslashes and quotes become `_`.
fn py_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\\' || c == '"' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The helpers every generated file starts with (`rows`, `zero_pad`, `PatchEmbed`,
/// `SelfAttention`).
const PRELUDE: &str = include_str!("prelude.py");

/// The key of each layer in the module dictionaries.
#[derive(Clone, Debug, PartialEq)]
pub struct Keys {
    /// One per layer, in order.
    pub layers: Vec<String>,
}

impl Keys {
    /// Keys for `v`'s layers: the name with other characters than letters, digits and `_` as
    /// `_`, made unique with `_2`, `_3`, … where two names meet.
    pub fn of(v: &ValidSpec) -> Keys {
        let mut taken = HashSet::new();
        let layers = v
            .spec
            .layers
            .iter()
            .map(|l| {
                let mut base: String = l
                    .name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                if base.starts_with('_') {
                    base.insert(0, 'l');
                }
                if TAKEN.contains(&base.as_str()) {
                    base.push_str("_layer");
                }
                let key = (1..)
                    .map(|k| match k {
                        1 => base.clone(),
                        k => format!("{base}_{k}"),
                    })
                    .find(|k| !taken.contains(k))
                    .expect("some key is free");
                taken.insert(key.clone());
                key
            })
            .collect();
        Keys { layers }
    }
}

/// The text of `model.py` for `v`.
pub fn model_py(v: &ValidSpec) -> String {
    let keys = Keys::of(v);
    let mut out = String::from(PRELUDE);
    let _ = writeln!(out, "class Net(nn.Module):");
    let _ = writeln!(out, "    \"\"\"{}\"\"\"\n", py_text(&v.spec.name));
    init(&mut out, v, &keys);
    forward(&mut out, v, &keys);
    out.push_str(LOADER);
    out
}

const LOADER: &str = r#"

def load_trained(path=None):
    """`Net()` with the trained weights of `model.safetensors` (beside this file), in eval mode."""
    import os

    from safetensors.torch import load_file

    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.safetensors")
    net = Net()
    net.load_state_dict(load_file(path))
    return net.eval()
"#;

/// `__init__`: every module with its sizes.
fn init(out: &mut String, v: &ValidSpec, keys: &Keys) {
    let _ = writeln!(out, "    def __init__(self):");
    let _ = writeln!(out, "        super().__init__()");
    let _ = writeln!(out, "        self.layers = nn.ModuleDict()");
    let _ = writeln!(out, "        self.shortcuts = nn.ModuleDict()");
    let _ = writeln!(out, "        self.shortcut_norms = nn.ModuleDict()");
    let _ = writeln!(out, "        self.alphas = nn.ParameterDict()");
    let mut input = v.input;
    for (i, (layer, info)) in v.spec.layers.iter().zip(&v.layers).enumerate() {
        if let Some(m) = layer_module(&layer.op, input) {
            let _ = writeln!(
                out,
                "        self.layers[\"{}\"] = {m}  # {}",
                keys.layers[i],
                py_text(&layer.name)
            );
        }
        input = info.output;
    }
    for (skip, info) in v.spec.skips.iter().zip(&v.skips) {
        let key = &keys.layers[info.to];
        let (cin, cout) = (info.from_shape.channels(), info.to_shape.channels());
        if let Shortcut::Projection { batch_norm } = skip.shortcut {
            let (map, norm) = match info.from_shape {
                Shape::Image(..) => (
                    format!(
                        "nn.Conv2d({cin}, {cout}, 1, stride={}, bias=False)",
                        info.stride
                    ),
                    format!("nn.BatchNorm2d({cout})"),
                ),
                _ => (
                    format!("nn.Linear({cin}, {cout}, bias=False)"),
                    format!("nn.BatchNorm1d({cout})"),
                ),
            };
            let _ = writeln!(out, "        self.shortcuts[\"{key}\"] = {map}");
            if batch_norm {
                let _ = writeln!(out, "        self.shortcut_norms[\"{key}\"] = {norm}");
            }
        }
        if skip.scale.learnable {
            let _ = writeln!(
                out,
                "        self.alphas[\"{key}\"] = nn.Parameter(torch.tensor([{}]))",
                py_float(skip.scale.value)
            );
        }
    }
    out.push('\n');
}

/// The PyTorch module of a layer with weights whose input has shape `input`.
fn layer_module(op: &LayerOp, input: Shape) -> Option<String> {
    let c = input.channels();
    Some(match *op {
        LayerOp::Linear { out, bias } => format!("nn.Linear({c}, {out}, bias={})", py_bool(bias)),
        LayerOp::Head { outputs } => format!("nn.Linear({}, {outputs}, bias=True)", input.numel()),
        LayerOp::Conv2d {
            out,
            kernel,
            stride,
            padding,
            bias,
        } => format!(
            "nn.Conv2d({c}, {out}, {kernel}, stride={stride}, padding={padding}, bias={})",
            py_bool(bias)
        ),
        LayerOp::BatchNorm { momentum, epsilon } => {
            let kind = if matches!(input, Shape::Image(..)) {
                "BatchNorm2d"
            } else {
                "BatchNorm1d"
            };
            format!(
                "nn.{kind}({c}, eps={}, momentum={})",
                py_f64(epsilon),
                py_f64(momentum)
            )
        }
        LayerOp::LayerNorm { epsilon } => format!("nn.GroupNorm(1, {c}, eps={})", py_f64(epsilon)),
        LayerOp::GroupNorm { groups, epsilon } => {
            format!("nn.GroupNorm({groups}, {c}, eps={})", py_f64(epsilon))
        }
        LayerOp::PatchEmbed { patch, dim } => {
            let Shape::Image(_, h, w) = input else {
                return None;
            };
            let tokens = (h / patch) * (w / patch);
            format!("PatchEmbed({c}, {dim}, {patch}, {tokens})")
        }
        LayerOp::SelfAttention { heads } => format!("SelfAttention({c}, {heads})"),
        LayerOp::Activation { .. } | LayerOp::GlobalAvgPool | LayerOp::Flatten => return None,
    })
}

/// `forward`: the layers in order; a layer's output that a skip reads is kept under its own
/// variable; a skip's target adds the shortcut to its (α-scaled) output.
fn forward(out: &mut String, v: &ValidSpec, keys: &Keys) {
    let _ = writeln!(out, "    def forward(self, x):");
    let kept: HashSet<Option<usize>> = v.skips.iter().map(|s| s.from).collect();
    if kept.contains(&None) {
        let _ = writeln!(out, "        x_input = x");
    }
    for (i, (layer, info)) in v.spec.layers.iter().zip(&v.layers).enumerate() {
        let key = &keys.layers[i];
        let input = if i == 0 {
            v.input
        } else {
            v.layers[i - 1].output
        };
        let line = layer_line(&layer.op, key, input);
        let _ = writeln!(out, "        {line}  # {}", py_text(&layer.name));
        if let Some(k) = info.skip_in {
            let _ = writeln!(out, "        {}", skip_line(v, keys, k));
        }
        if kept.contains(&Some(i)) {
            let _ = writeln!(out, "        x_{key} = x");
        }
    }
    let _ = writeln!(out, "        return x");
}

/// One layer's statement.
fn layer_line(op: &LayerOp, key: &str, input: Shape) -> String {
    let module = format!("self.layers[\"{key}\"]");
    match op {
        LayerOp::Linear { .. }
        | LayerOp::Head { .. }
        | LayerOp::Conv2d { .. }
        | LayerOp::PatchEmbed { .. }
        | LayerOp::SelfAttention { .. } => format!("x = {module}(x)"),
        LayerOp::BatchNorm { .. } | LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. } => {
            format!("x = rows({module}, x)")
        }
        LayerOp::Activation { function } => match function {
            Activation::Relu => "x = torch.relu(x)".into(),
            Activation::Tanh => "x = torch.tanh(x)".into(),
            Activation::Sigmoid => "x = torch.sigmoid(x)".into(),
            Activation::Gelu => "x = F.gelu(x)".into(),
            Activation::Identity => "x = x".into(),
        },
        LayerOp::GlobalAvgPool => match input {
            Shape::Tokens(..) => "x = x.mean(dim=1)".into(),
            _ => "x = x.mean(dim=(2, 3))".into(),
        },
        LayerOp::Flatten => "x = x.flatten(1)".into(),
    }
}

/// Skip `k`'s statement: `x = α·x + shortcut(source)`.
fn skip_line(v: &ValidSpec, keys: &Keys, k: usize) -> String {
    let (skip, info) = (&v.spec.skips[k], &v.skips[k]);
    let key = &keys.layers[info.to];
    let source = match info.from {
        None => "x_input".to_string(),
        Some(f) => format!("x_{}", keys.layers[f]),
    };
    let shortcut = match skip.shortcut {
        Shortcut::Identity => source,
        Shortcut::ZeroPad => format!(
            "zero_pad({source}, {}, {})",
            info.to_shape.channels(),
            info.stride
        ),
        Shortcut::Projection { batch_norm } => {
            let map = format!("self.shortcuts[\"{key}\"]({source})");
            if batch_norm {
                format!("rows(self.shortcut_norms[\"{key}\"], {map})")
            } else {
                map
            }
        }
    };
    let branch = if skip.scale.learnable {
        format!("self.alphas[\"{key}\"] * x")
    } else if skip.scale.value == 1.0 {
        "x".to_string()
    } else {
        format!("{} * x", py_float(skip.scale.value))
    };
    format!(
        "x = {branch} + {shortcut}  # skip {} -> {}",
        py_text(&skip.from),
        py_text(&skip.to)
    )
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// An `f32` as Python reads it back to the same `f32` (Rust's shortest round-trip form).
fn py_float(x: f32) -> String {
    let s = format!("{x:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn py_f64(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}
