//! The tensors a network holds and the names its probes report on, derived from the spec alone,
//! so that a run file can be checked against its network without building it (`runfile` may
//! not import burn). `tests/runfile_v2.rs` checks that the model builder agrees.

use super::net::{LayerOp, Shortcut};
use super::op::describe;
use super::validate::{Shape, ValidSpec};

/// One tensor of a network's checkpoint, in the module order burn visits them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// The stable name (`block1.fc.weight`, `block1.bn.running_mean`, `b2.shortcut.bn.gamma`).
    pub name: String,
    /// Its shape (Linear weights `[in, out]`, conv weights `[out, in, k, k]`).
    pub shape: Vec<usize>,
    /// Whether the optimiser trains it (BatchNorm running statistics are buffers).
    pub trainable: bool,
    /// What holds it: a layer, or the shortcut of a skip.
    pub owner: TensorOwner,
}

/// What holds a tensor: the layer it belongs to, or the skip whose shortcut (projection, its
/// BatchNorm, a learnable α) it is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorOwner {
    /// The layer with this index.
    Layer(usize),
    /// The skip with this index.
    Skip(usize),
}

impl TensorEntry {
    fn new(name: String, shape: Vec<usize>, trainable: bool, owner: TensorOwner) -> Self {
        Self {
            name,
            shape,
            trainable,
            owner,
        }
    }

    /// Number of values.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

fn batch_norm(out: &mut Vec<TensorEntry>, prefix: &str, channels: usize, owner: TensorOwner) {
    for (field, trainable) in [
        ("gamma", true),
        ("beta", true),
        ("running_mean", false),
        ("running_var", false),
    ] {
        out.push(TensorEntry::new(
            format!("{prefix}.{field}"),
            vec![channels],
            trainable,
            owner,
        ));
    }
}

/// Every tensor of the network (weights and BatchNorm buffers), in module order: the layers in
/// order, then the skips' projections, projection BNs and learnable α.
pub fn expected_tensors(v: &ValidSpec) -> Vec<TensorEntry> {
    let mut out = Vec::new();
    let mut input = v.input;
    for (i, (layer, info)) in v.spec.layers.iter().zip(&v.layers).enumerate() {
        // A valid spec's every layer describes itself.
        if let Ok(facts) = describe(layer, input) {
            out.extend(facts.tensors.into_iter().map(|t| {
                let name = format!("{}.{}", layer.name, t.name);
                TensorEntry::new(name, t.shape, t.trainable, TensorOwner::Layer(i))
            }));
        }
        input = info.output;
    }
    for (k, (skip, info)) in v.spec.skips.iter().zip(&v.skips).enumerate() {
        let to = &v.layers[info.to].name;
        let owner = TensorOwner::Skip(k);
        if let Shortcut::Projection { batch_norm: bn } = skip.shortcut {
            let (cin, cout) = (info.from_shape.channels(), info.to_shape.channels());
            let shape = match info.from_shape {
                Shape::Flat(_) | Shape::Tokens(..) => vec![cin, cout],
                Shape::Image(..) => vec![cout, cin, 1, 1],
            };
            out.push(TensorEntry::new(
                format!("{to}.shortcut.weight"),
                shape,
                true,
                owner,
            ));
            if bn {
                batch_norm(&mut out, &format!("{to}.shortcut.bn"), cout, owner);
            }
        }
        if skip.scale.learnable {
            out.push(TensorEntry::new(
                format!("{to}.alpha"),
                vec![1],
                true,
                owner,
            ));
        }
    }
    out
}

/// The names a run's probes report on (the fields of `metrics::RunLayout`), from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeNames {
    /// Every layer, input to output.
    pub layers: Vec<String>,
    /// The BatchNorm layers (not projection BNs), in order.
    pub batch_norms: Vec<String>,
    /// Channels of each BatchNorm layer.
    pub batch_norm_channels: Vec<usize>,
    /// The layer each skip adds into, in skip order.
    pub skips: Vec<String>,
    /// The trainable tensors, in module order.
    pub params: Vec<String>,
    /// The LayerNorm and GroupNorm layers, in order.
    pub affine_norms: Vec<String>,
    /// Channels of each LayerNorm or GroupNorm layer.
    pub affine_norm_channels: Vec<usize>,
    /// The layers whose output is a token sequence (their token residual is probed).
    pub token_layers: Vec<String>,
    /// The self-attention layers.
    pub attention: Vec<String>,
    /// `[heads, tokens]` of each self-attention layer.
    pub attention_shape: Vec<[usize; 2]>,
}

/// What a run of this network records probes about.
pub fn probe_names(v: &ValidSpec) -> ProbeNames {
    let mut names = ProbeNames {
        layers: v.layers.iter().map(|l| l.name.clone()).collect(),
        ..ProbeNames::default()
    };
    for (layer, info) in v.spec.layers.iter().zip(&v.layers) {
        if let Shape::Tokens(tokens, _) = info.output {
            names.token_layers.push(layer.name.clone());
            if let LayerOp::SelfAttention { heads } = layer.op {
                names.attention.push(layer.name.clone());
                names.attention_shape.push([heads, tokens]);
            }
        }
        if matches!(layer.op, LayerOp::BatchNorm { .. }) {
            names.batch_norms.push(layer.name.clone());
            names.batch_norm_channels.push(info.output.channels());
        }
        if matches!(
            layer.op,
            LayerOp::LayerNorm { .. } | LayerOp::GroupNorm { .. }
        ) {
            names.affine_norms.push(layer.name.clone());
            names.affine_norm_channels.push(info.output.channels());
        }
    }
    names.skips = v
        .skips
        .iter()
        .map(|s| v.layers[s.to].name.clone())
        .collect();
    names.params = expected_tensors(v)
        .into_iter()
        .filter(|t| t.trainable)
        .map(|t| t.name)
        .collect();
    names
}
