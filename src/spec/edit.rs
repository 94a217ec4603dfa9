//! Editing operations on a [`NetSpec`], as the network designer uses them: insert and remove
//! skips, the plain twin, batch norm everywhere or nowhere, add / insert / delete / duplicate /
//! move layers with skip fix-up, "repeat block × n" and block templates.
//!
//! Every operation is plain data in, plain data out, so it is unit-tested without a window.
//! Operations keep layer names unique (a copy gets a fresh name) and keep skips pointing at the
//! layers they meant: when a layer goes away, a skip into it moves to the layer before it, the
//! way the presets put a skip into a block's last layer.

use super::blocks::{BlockLayout, two_layer_block};
use super::net::{
    Activation, BranchScale, INPUT_NODE, InputShape, LayerOp, LayerSpec, NetSpec, Shortcut,
    SkipSpec,
};
use super::op::layer_output;
use super::validate::Shape;
use super::vit::{DIM, PATCH, VitLayout, heads_for, patch_for, transformer_block};
use thiserror::Error;

/// Why an edit could not be made. The spec is left unchanged.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum EditError {
    /// A layer index past the end.
    #[error("there is no layer #{0}")]
    NoLayer(usize),
    /// A skip index past the end.
    #[error("there is no skip #{0}")]
    NoSkip(usize),
    /// A node name that names nothing.
    #[error("there is no node named \"{0}\"")]
    UnknownNode(String),
    /// A skip from a node onto itself.
    #[error("a skip needs two different nodes")]
    SameNode,
    /// A move past either end of the chain.
    #[error("the layer cannot move further")]
    CannotMove,
    /// A block range that is empty or out of bounds.
    #[error("layers #{0}..=#{1} are not a block of this network")]
    BadRange(usize, usize),
    /// The shape at the insertion point is unknown (an earlier layer does not fit).
    #[error("the shape before layer #{0} is unknown: fix the layers above first")]
    UnknownShape(usize),
    /// A transformer block where the activation is not a token sequence.
    #[error(
        "a transformer block works on tokens, but layer #{0} gets {1}: add a patch embedding first"
    )]
    NeedsTokens(usize, Shape),
}

/// The position of a node in the chain: 0 is the input, layer `i` is `i + 1`.
pub fn node_position(spec: &NetSpec, name: &str) -> Option<usize> {
    if name == INPUT_NODE {
        Some(0)
    } else {
        spec.index_of(name).map(|i| i + 1)
    }
}

/// The name of the node at a position (0 is the input).
pub fn node_name(spec: &NetSpec, position: usize) -> Option<&str> {
    if position == 0 {
        Some(INPUT_NODE)
    } else {
        spec.layers.get(position - 1).map(|l| l.name.as_str())
    }
}

/// `base` if no layer has that name, else `base-2`, `base-3`, ...
pub fn unique_name(spec: &NetSpec, base: &str) -> String {
    let base = if base.trim().is_empty() || base == INPUT_NODE {
        "layer"
    } else {
        base
    };
    if spec.index_of(base).is_none() {
        return base.to_string();
    }
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|n| spec.index_of(n).is_none())
        .expect("some suffix is free")
}

/// Puts the skips in the order of their targets (the order presets use).
fn sort_skips(spec: &mut NetSpec) {
    let pos = |s: &SkipSpec| node_position(spec, &s.to).unwrap_or(usize::MAX);
    let mut keyed: Vec<(usize, SkipSpec)> =
        spec.skips.iter().map(|s| (pos(s), s.clone())).collect();
    keyed.sort_by_key(|(p, _)| *p);
    spec.skips = keyed.into_iter().map(|(_, s)| s).collect();
}

/// Adds an identity skip between two nodes (given in either order: the earlier one is the
/// source). A skip already going into the target is replaced. Returns the new skip's index.
pub fn add_skip(spec: &mut NetSpec, a: &str, b: &str) -> Result<usize, EditError> {
    let pa = node_position(spec, a).ok_or_else(|| EditError::UnknownNode(a.to_string()))?;
    let pb = node_position(spec, b).ok_or_else(|| EditError::UnknownNode(b.to_string()))?;
    if pa == pb {
        return Err(EditError::SameNode);
    }
    let (from, to) = if pa < pb { (a, b) } else { (b, a) };
    spec.skips.retain(|s| s.to != to);
    spec.skips.push(SkipSpec::identity(from, to));
    sort_skips(spec);
    Ok(spec
        .skips
        .iter()
        .position(|s| s.to == to)
        .expect("just added"))
}

/// Removes skip `k`.
pub fn remove_skip(spec: &mut NetSpec, k: usize) -> Result<SkipSpec, EditError> {
    if k >= spec.skips.len() {
        return Err(EditError::NoSkip(k));
    }
    Ok(spec.skips.remove(k))
}

/// Makes skip `k` a 1×1 projection with batch norm (He et al. option B): the one-click fix for
/// a skip whose shapes differ.
pub fn use_projection(spec: &mut NetSpec, k: usize) -> Result<(), EditError> {
    let s = spec.skips.get_mut(k).ok_or(EditError::NoSkip(k))?;
    s.shortcut = Shortcut::Projection { batch_norm: true };
    Ok(())
}

/// The name of a network's plain twin: `cifar-resnet-N` → `cifar-plain-N`, `mlp-res-N` →
/// `mlp-plain-N` (the presets of the same depth), anything else gets a `-plain` suffix.
pub fn plain_twin_name(name: &str) -> String {
    if let Some(n) = name.strip_prefix("cifar-resnet-") {
        format!("cifar-plain-{n}")
    } else if let Some(n) = name.strip_prefix("mlp-res-") {
        format!("mlp-plain-{n}")
    } else if let Some(n) = name.strip_prefix("vit-res-") {
        format!("vit-plain-{n}")
    } else if name.ends_with("-plain")
        || name.starts_with("cifar-plain-")
        || name.starts_with("mlp-plain-")
        || name.starts_with("vit-plain-")
    {
        name.to_string()
    } else {
        format!("{name}-plain")
    }
}

/// The name of `edited`, a network the designer made from `base`: its own name when it has
/// one other than `base`'s (an imported file, a plain twin), `base`'s while they are the same
/// network, `base + N skip(s)` or `base − N skip(s)` when only skips were added or removed, and
/// `custom (from base)` after any other edit.
pub fn edited_name(base: &NetSpec, edited: &NetSpec) -> String {
    if edited.name != base.name {
        return edited.name.clone();
    }
    if edited.layers != base.layers || edited.input != base.input {
        return format!("custom (from {})", base.name);
    }
    let added = edited
        .skips
        .iter()
        .filter(|s| !base.skips.contains(s))
        .count();
    let removed = base
        .skips
        .iter()
        .filter(|s| !edited.skips.contains(s))
        .count();
    let skips = |n: usize| {
        if n == 1 {
            "1 skip".to_string()
        } else {
            format!("{n} skips")
        }
    };
    match (added, removed) {
        (0, 0) => base.name.clone(),
        (a, 0) => format!("{} + {}", base.name, skips(a)),
        (0, r) => format!("{} − {}", base.name, skips(r)),
        _ => format!("custom (from {})", base.name),
    }
}

/// A network's name as the start of a run's name (and file name): `mlp-res-20 + 1 skip` →
/// `mlp-res-20-plus-1-skip`, `custom (from cnn-3)` → `custom-from-cnn-3`.
pub fn run_stem(name: &str) -> String {
    let words = name.replace(" + ", " plus ").replace(" − ", " minus ");
    let mut out = String::new();
    for c in words.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Removes every skip: the plain twin, renamed by [`plain_twin_name`] (a network without skips
/// keeps its name). Returns how many skips went.
///
/// Projection shortcuts live in the skips, so the twin has no projection layers: the residual
/// presets and their plain twins have the very same layers.
pub fn remove_all_skips(spec: &mut NetSpec) -> usize {
    let n = spec.skips.len();
    if n > 0 {
        spec.skips.clear();
        spec.name = plain_twin_name(&spec.name);
    }
    n
}

/// Removes layer `i`. A skip into it moves to the layer before (and goes when there is none, or
/// when that would make it loop or doubly target a node); a skip from it starts at the layer
/// before (or the input).
pub fn delete_layer(spec: &mut NetSpec, i: usize) -> Result<LayerSpec, EditError> {
    if i >= spec.layers.len() {
        return Err(EditError::NoLayer(i));
    }
    let prev = if i == 0 {
        INPUT_NODE.to_string()
    } else {
        spec.layers[i - 1].name.clone()
    };
    let removed = spec.layers.remove(i);
    let mut targets: Vec<String> = Vec::new();
    let mut kept = Vec::with_capacity(spec.skips.len());
    for mut s in std::mem::take(&mut spec.skips) {
        if s.from == removed.name {
            s.from = prev.clone();
        }
        if s.to == removed.name {
            s.to = prev.clone();
        }
        let loops = s.from == s.to || s.to == INPUT_NODE;
        if loops || targets.contains(&s.to) {
            continue;
        }
        targets.push(s.to.clone());
        kept.push(s);
    }
    spec.skips = kept;
    Ok(removed)
}

/// Inserts a layer at position `at` (0 = first), renaming it if its name is taken. Returns its
/// index.
pub fn insert_layer(spec: &mut NetSpec, at: usize, mut layer: LayerSpec) -> usize {
    let at = at.min(spec.layers.len());
    layer.name = unique_name(spec, &layer.name);
    spec.layers.insert(at, layer);
    at
}

/// Inserts a copy of layer `i` right after it (under a fresh name; skips are not copied).
/// Returns the copy's index.
pub fn duplicate_layer(spec: &mut NetSpec, i: usize) -> Result<usize, EditError> {
    let layer = spec.layers.get(i).ok_or(EditError::NoLayer(i))?.clone();
    Ok(insert_layer(spec, i + 1, layer))
}

/// Moves layer `i` up (`delta` < 0) or down by `|delta|` places. Skips keep their endpoints by
/// name; a skip that would then go backward (or onto itself) is removed. Returns the layer's new
/// index and how many skips were removed.
pub fn move_layer(spec: &mut NetSpec, i: usize, delta: isize) -> Result<(usize, usize), EditError> {
    if i >= spec.layers.len() {
        return Err(EditError::NoLayer(i));
    }
    let j = i as isize + delta;
    if j < 0 || j as usize >= spec.layers.len() || delta == 0 {
        return Err(EditError::CannotMove);
    }
    let j = j as usize;
    let layer = spec.layers.remove(i);
    spec.layers.insert(j, layer);
    let before = spec.skips.len();
    let pos: Vec<(Option<usize>, Option<usize>)> = spec
        .skips
        .iter()
        .map(|s| (node_position(spec, &s.from), node_position(spec, &s.to)))
        .collect();
    let mut k = 0;
    spec.skips.retain(|_| {
        let keep = matches!(pos[k], (Some(f), Some(t)) if f < t);
        k += 1;
        keep
    });
    sort_skips(spec);
    Ok((j, before - spec.skips.len()))
}

/// `block1.fc` → `block1.bn`, `stage1.block2.conv2` → `stage1.block2.bn2`, `x` → `x.bn`.
fn bn_name_for(name: &str) -> String {
    let (prefix, last) = match name.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    };
    let stem = last.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &last[stem.len()..];
    match (prefix, stem) {
        (Some(p), "conv" | "fc" | "linear") => format!("{p}.bn{digits}"),
        _ => format!("{name}.bn"),
    }
}

/// Puts a batch norm right after every Linear and Conv2d layer that has none (not after the
/// head). A skip into such a layer moves to its new batch norm, so the sum comes after the
/// normalisation as in He et al.'s blocks: on a CIFAR preset built without BN this gives
/// exactly the preset with BN. Returns how many batch norms were added.
pub fn batch_norm_everywhere(spec: &mut NetSpec) -> usize {
    let mut added = 0;
    let mut i = 0;
    while i < spec.layers.len() {
        let is_weight = matches!(
            spec.layers[i].op,
            LayerOp::Linear { .. } | LayerOp::Conv2d { .. }
        );
        let followed = matches!(
            spec.layers.get(i + 1).map(|l| &l.op),
            Some(LayerOp::BatchNorm { .. })
        );
        if is_weight && !followed {
            let name = spec.layers[i].name.clone();
            let bn = unique_name(spec, &bn_name_for(&name));
            spec.layers.insert(i + 1, LayerSpec::batch_norm(&bn));
            for s in spec.skips.iter_mut().filter(|s| s.to == name) {
                s.to = bn.clone();
            }
            added += 1;
            i += 1;
        }
        i += 1;
    }
    added
}

/// Removes every batch-norm layer (skips fixed up as in [`delete_layer`]). Projection shortcuts
/// keep their own batch-norm setting. Returns how many layers went.
pub fn batch_norm_nowhere(spec: &mut NetSpec) -> usize {
    let mut removed = 0;
    while let Some(i) = spec
        .layers
        .iter()
        .position(|l| matches!(l.op, LayerOp::BatchNorm { .. }))
    {
        delete_layer(spec, i).expect("index found");
        removed += 1;
    }
    removed
}

/// Shape of the sample entering layer `at` (the input for 0), if inference gets that far.
pub fn shape_before(spec: &NetSpec, at: usize) -> Option<Shape> {
    let mut shape: Shape = spec.input.into();
    for layer in spec.layers.iter().take(at) {
        shape = layer_output(layer, shape).ok()?.0;
    }
    Some(shape)
}

/// The kinds of layer the designer can add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewLayer {
    /// Linear with bias, as wide as its input.
    Linear,
    /// 3×3 convolution, stride 1, padding 1, as many channels as its input.
    Conv3x3,
    /// Batch normalisation.
    BatchNorm,
    /// Layer normalisation.
    LayerNorm,
    /// Group normalisation with the largest of 32, 16, 8, 4, 2 groups that divides the channels.
    GroupNorm,
    /// ReLU.
    Relu,
    /// Global average pooling.
    GlobalAvgPool,
    /// Flatten.
    Flatten,
    /// Classifier head with 10 outputs.
    Head,
    /// Patch embedding: patches of 7 (or the first of 8, 4, 2, 1 dividing the image) to 64
    /// features, as the transformer presets'.
    PatchEmbed,
    /// Self-attention with 4 heads (or the most of 2 and 1 dividing the features).
    SelfAttention,
    /// GELU.
    Gelu,
}

impl NewLayer {
    /// Every kind, for menus.
    pub const ALL: [NewLayer; 12] = [
        NewLayer::Linear,
        NewLayer::Conv3x3,
        NewLayer::BatchNorm,
        NewLayer::LayerNorm,
        NewLayer::GroupNorm,
        NewLayer::Relu,
        NewLayer::GlobalAvgPool,
        NewLayer::Flatten,
        NewLayer::Head,
        NewLayer::PatchEmbed,
        NewLayer::SelfAttention,
        NewLayer::Gelu,
    ];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            NewLayer::Linear => "linear",
            NewLayer::Conv3x3 => "conv 3x3",
            NewLayer::BatchNorm => "batch norm",
            NewLayer::LayerNorm => "layer norm",
            NewLayer::GroupNorm => "group norm",
            NewLayer::Relu => "relu",
            NewLayer::GlobalAvgPool => "global avg pool",
            NewLayer::Flatten => "flatten",
            NewLayer::Head => "head",
            NewLayer::PatchEmbed => "patch embedding",
            NewLayer::SelfAttention => "self-attention",
            NewLayer::Gelu => "gelu",
        }
    }

    /// The layer, sized for an input of shape `shape` (when known).
    pub fn build(self, shape: Option<Shape>) -> LayerSpec {
        let width = shape.map_or(64, |s| s.channels());
        match self {
            NewLayer::Linear => LayerSpec::linear("fc", width),
            NewLayer::Conv3x3 => LayerSpec::conv("conv", width, 3, 1, 1),
            NewLayer::BatchNorm => LayerSpec::batch_norm("bn"),
            NewLayer::LayerNorm => LayerSpec::layer_norm("ln"),
            NewLayer::GroupNorm => {
                let groups = [32, 16, 8, 4, 2]
                    .into_iter()
                    .find(|g| width.is_multiple_of(*g))
                    .unwrap_or(1);
                LayerSpec::group_norm("gn", groups)
            }
            NewLayer::Relu => LayerSpec::relu("act"),
            NewLayer::GlobalAvgPool => LayerSpec::new("pool", LayerOp::GlobalAvgPool),
            NewLayer::Flatten => LayerSpec::new("flatten", LayerOp::Flatten),
            NewLayer::Head => LayerSpec::new("head", LayerOp::Head { outputs: 10 }),
            NewLayer::PatchEmbed => {
                let patch = match shape {
                    Some(Shape::Image(_, h, w)) => patch_for(h, w),
                    _ => PATCH,
                };
                LayerSpec::new("embed", LayerOp::PatchEmbed { patch, dim: DIM })
            }
            NewLayer::SelfAttention => LayerSpec::new(
                "attn",
                LayerOp::SelfAttention {
                    heads: heads_for(width),
                },
            ),
            NewLayer::Gelu => LayerSpec::activation("act", Activation::Gelu),
        }
    }
}

/// Inserts a new layer of `kind` at `at`, sized for the shape there. Returns its index.
pub fn add_layer(spec: &mut NetSpec, at: usize, kind: NewLayer) -> usize {
    let at = at.min(spec.layers.len());
    let layer = kind.build(shape_before(spec, at));
    insert_layer(spec, at, layer)
}

/// Block templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// He et al. 2016: `conv-BN-ReLU-conv-BN (+x) -ReLU`.
    BasicPost,
    /// He et al. 2016b: `BN-ReLU-conv-BN-ReLU-conv (+x)`.
    PreAct,
    /// `conv-BN-ReLU-conv-BN-ReLU` without a skip.
    PlainPair,
    /// Xiong et al. 2020's pre-LN transformer block: `x + Attn(LN(x))`, `x + MLP(LN(x))`.
    PreLn,
    /// Vaswani et al. 2017's post-LN transformer block: `LN(x + Attn(x))`, `LN(x + MLP(x))`.
    PostLn,
}

impl Template {
    /// Every template, for menus.
    pub const ALL: [Template; 5] = [
        Template::BasicPost,
        Template::PreAct,
        Template::PlainPair,
        Template::PreLn,
        Template::PostLn,
    ];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Template::BasicPost => "basic block (post-activation)",
            Template::PreAct => "pre-activation block",
            Template::PlainPair => "plain pair",
            Template::PreLn => "transformer block (pre-LN)",
            Template::PostLn => "transformer block (post-LN)",
        }
    }
}

/// A free `blockN` prefix.
fn free_block_prefix(spec: &NetSpec) -> String {
    (1..)
        .map(|k| format!("block{k}"))
        .find(|p| {
            let dotted = format!("{p}.");
            !spec.layers.iter().any(|l| l.name.starts_with(&dotted))
        })
        .expect("some prefix is free")
}

/// Inserts a block from a template at `at`, as wide as its input (3×3 convolutions on images,
/// Linear layers on flat vectors), with an identity skip from the node before it where the
/// template has one. Returns the range of the new layers.
pub fn insert_template(
    spec: &mut NetSpec,
    at: usize,
    template: Template,
) -> Result<std::ops::Range<usize>, EditError> {
    let at = at.min(spec.layers.len());
    let shape = shape_before(spec, at).ok_or(EditError::UnknownShape(at))?;
    let p = free_block_prefix(spec);
    let before = node_name(spec, at).unwrap_or(INPUT_NODE).to_string();
    let vit = match template {
        Template::PreLn => Some(VitLayout::PreLn),
        Template::PostLn => Some(VitLayout::PostLn),
        _ => None,
    };
    let (layers, skips) = match vit {
        Some(layout) => {
            let Shape::Tokens(_, dim) = shape else {
                return Err(EditError::NeedsTokens(at, shape));
            };
            let b = transformer_block(&p, layout, (dim, 2 * dim), &before, BranchScale::default());
            (b.layers, b.skips)
        }
        None => conv_or_dense_block(&p, shape, template, &before),
    };
    let n = layers.len();
    for (k, l) in layers.into_iter().enumerate() {
        spec.layers.insert(at + k, l);
    }
    if !skips.is_empty() {
        spec.skips.extend(skips);
        sort_skips(spec);
    }
    Ok(at..at + n)
}

/// A residual, pre-activation or plain two-layer block `p.*` for an input of `shape`, its skip
/// (if any) from `before`.
fn conv_or_dense_block(
    p: &str,
    shape: Shape,
    template: Template,
    before: &str,
) -> (Vec<LayerSpec>, Vec<SkipSpec>) {
    let weight = |k: usize| match shape {
        Shape::Image(c, _, _) => LayerSpec::conv(format!("{p}.conv{k}"), c, 3, 1, 1),
        Shape::Flat(d) | Shape::Tokens(_, d) => LayerSpec::linear(format!("{p}.fc{k}"), d),
    };
    let (layout, residual) = match template {
        Template::PreAct => (BlockLayout::PreActivation, true),
        Template::PlainPair => (BlockLayout::PostActivation, false),
        _ => (BlockLayout::PostActivation, true),
    };
    let block = two_layer_block(layout, p, super::Norm::Batch, Activation::Relu, weight);
    let skips = if residual {
        vec![SkipSpec::identity(before, block.skip_to)]
    } else {
        Vec::new()
    };
    (block.layers, skips)
}

/// The common dotted prefix of a block's names (`stage1.block2` for its layers), if any.
fn common_prefix(names: &[&str]) -> Option<String> {
    let first: Vec<&str> = names.first()?.split('.').collect();
    let mut k = first.len().saturating_sub(1);
    for n in names {
        let segs: Vec<&str> = n.split('.').collect();
        let same = first.iter().zip(&segs).take_while(|(a, b)| a == b).count();
        k = k.min(same).min(segs.len().saturating_sub(1));
    }
    (k > 0).then(|| first[..k].join("."))
}

/// `block3` → (`block`, 3).
fn split_number(seg: &str) -> Option<(&str, usize)> {
    let stem = seg.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = seg[stem.len()..].parse().ok()?;
    Some((stem, n))
}

/// Appends `n` copies of layers `start..=end` right after them, with the skips that end inside
/// the block. A block named like `stage1.block3.*` gets copies `stage1.block4.*`, ... (the next
/// free numbers); other blocks get fresh names. A skip into the block from the node just before
/// it starts, in each copy, at the node just before that copy: repeating a residual block gives
/// a chain of residual blocks. Returns the range of the new layers.
pub fn repeat_block(
    spec: &mut NetSpec,
    start: usize,
    end: usize,
    n: usize,
) -> Result<std::ops::Range<usize>, EditError> {
    if start > end || end >= spec.layers.len() {
        return Err(EditError::BadRange(start, end));
    }
    let block: Vec<LayerSpec> = spec.layers[start..=end].to_vec();
    let names: Vec<String> = block.iter().map(|l| l.name.clone()).collect();
    let before = node_name(spec, start).unwrap_or(INPUT_NODE).to_string();
    let skips: Vec<SkipSpec> = spec
        .skips
        .iter()
        .filter(|s| names.contains(&s.to))
        .cloned()
        .collect();
    let prefix = common_prefix(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut next_number = prefix
        .as_deref()
        .and_then(|p| split_number(p.rsplit('.').next().unwrap_or(p)))
        .map(|(_, k)| k + 1);
    let mut prev_last = names.last().expect("non-empty").clone();
    let mut at = end + 1;
    for _ in 0..n {
        // The new names for this copy.
        let mut rename: Vec<(String, String)> = Vec::with_capacity(names.len());
        let fresh_prefix = match (&prefix, next_number.as_mut()) {
            (Some(p), Some(k)) => Some(next_free_prefix(spec, p, k)),
            _ => None,
        };
        for name in &names {
            let new = match (&fresh_prefix, &prefix) {
                (Some(fp), Some(p)) => format!("{fp}{}", &name[p.len()..]),
                _ => name.clone(),
            };
            rename.push((name.clone(), new));
        }
        for (k, l) in block.iter().enumerate() {
            let mut copy = l.clone();
            copy.name = rename[k].1.clone();
            let idx = insert_layer(spec, at + k, copy);
            rename[k].1 = spec.layers[idx].name.clone();
        }
        let map = |name: &str| -> String {
            if name == before {
                return prev_last.clone();
            }
            rename
                .iter()
                .find(|(o, _)| o == name)
                .map_or_else(|| name.to_string(), |(_, n)| n.clone())
        };
        for s in &skips {
            let mut c = s.clone();
            c.from = map(&s.from);
            c.to = map(&s.to);
            spec.skips.push(c);
        }
        prev_last = rename.last().expect("non-empty").1.clone();
        at += block.len();
    }
    sort_skips(spec);
    Ok(end + 1..at)
}

/// The next free numbered prefix after `prefix` (`stage1.block3` → `stage1.block4`, or a later
/// number where that one is taken), counting on from `*k`.
fn next_free_prefix(spec: &NetSpec, prefix: &str, k: &mut usize) -> String {
    let (head, last) = match prefix.rsplit_once('.') {
        Some((h, l)) => (Some(h), l),
        None => (None, prefix),
    };
    let (stem, _) = split_number(last).expect("numbered");
    loop {
        let candidate = match head {
            Some(h) => format!("{h}.{stem}{k}"),
            None => format!("{stem}{k}"),
        };
        *k += 1;
        let dotted = format!("{candidate}.");
        if !spec.layers.iter().any(|l| l.name.starts_with(&dotted)) {
            return candidate;
        }
    }
}

/// Adapts a network to a dataset: the input shape, the head's outputs, and a leading flatten
/// where an MLP meets images (or none where it meets flat vectors).
pub fn adapt_io(spec: &mut NetSpec, input: InputShape, classes: usize) {
    spec.input = input;
    if let Some(l) = spec
        .layers
        .iter_mut()
        .rev()
        .find(|l| matches!(l.op, LayerOp::Head { .. }))
    {
        l.op = LayerOp::Head { outputs: classes };
    }
    let first_flat = matches!(
        spec.layers.first().map(|l| &l.op),
        Some(LayerOp::Linear { .. } | LayerOp::Head { .. })
    );
    let first_flatten = matches!(spec.layers.first().map(|l| &l.op), Some(LayerOp::Flatten));
    match input {
        InputShape::Image { .. } if first_flat => {
            insert_layer(spec, 0, LayerSpec::new("flatten", LayerOp::Flatten));
        }
        InputShape::Flat { .. } if first_flatten => {
            let _ = delete_layer(spec, 0);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BranchScale, PresetOptions, preset, validate};

    fn opts(batch_norm: bool) -> PresetOptions {
        PresetOptions {
            norm: if batch_norm {
                super::super::Norm::Batch
            } else {
                super::super::Norm::None
            },
            ..PresetOptions::default()
        }
    }

    #[test]
    fn an_edited_network_is_named_for_its_edits() {
        let base = preset("mlp-plain-4", &opts(true)).unwrap();
        let mut e = base.clone();
        assert_eq!(edited_name(&base, &e), "mlp-plain-4");
        add_skip(&mut e, "block1.act", "block2.act").unwrap();
        assert_eq!(edited_name(&base, &e), "mlp-plain-4 + 1 skip");
        add_skip(&mut e, "block2.act", "block3.act").unwrap();
        assert_eq!(edited_name(&base, &e), "mlp-plain-4 + 2 skips");
        let res = preset("mlp-res-4", &opts(true)).unwrap();
        let mut fewer = res.clone();
        remove_skip(&mut fewer, 0).unwrap();
        assert_eq!(edited_name(&res, &fewer), "mlp-res-4 − 1 skip");
        let mut deeper = base.clone();
        duplicate_layer(&mut deeper, 1).unwrap();
        assert_eq!(edited_name(&base, &deeper), "custom (from mlp-plain-4)");
        let mut twin = res.clone();
        remove_all_skips(&mut twin);
        assert_eq!(
            edited_name(&res, &twin),
            "mlp-plain-4",
            "a twin keeps its own name"
        );
    }

    #[test]
    fn transformer_templates_insert_a_block_with_its_two_adds_on_tokens_only() {
        let mut spec = preset("vit-res-1", &PresetOptions::default()).unwrap();
        let at = spec.index_of("block1.fc2").unwrap() + 1;
        let range = insert_template(&mut spec, at, Template::PostLn).unwrap();
        assert_eq!(spec.layers[range.start].name, "block2.attn");
        assert_eq!(spec.layers[range.end - 1].name, "block2.ln2");
        let into = |to: &str| {
            spec.skips
                .iter()
                .find(|s| s.to == to)
                .map(|s| s.from.clone())
        };
        assert_eq!(into("block2.attn").as_deref(), Some("block1.fc2"));
        assert_eq!(into("block2.fc2").as_deref(), Some("block2.ln1"));
        validate(&spec).unwrap();
        let at = spec.index_of("block2.ln2").unwrap() + 1;
        insert_template(&mut spec, at, Template::PreLn).unwrap();
        assert_eq!(spec.skips.len(), 6);
        validate(&spec).unwrap();
        // On images or flat vectors there are no tokens to attend over.
        let mut mlp = preset("mlp-res-2", &opts(true)).unwrap();
        let err = insert_template(&mut mlp, 2, Template::PreLn).unwrap_err();
        assert!(
            matches!(err, EditError::NeedsTokens(2, Shape::Flat(128))),
            "{err}"
        );
        assert!(err.to_string().contains("add a patch embedding first"));
    }

    #[test]
    fn removing_all_skips_gives_the_plain_preset() {
        for (res, plain) in [
            ("cifar-resnet-20", "cifar-plain-20"),
            ("cifar-resnet-56", "cifar-plain-56"),
            ("mlp-res-20", "mlp-plain-20"),
            ("vit-res-12", "vit-plain-12"),
        ] {
            for o in [opts(true), opts(false)] {
                let mut spec = preset(res, &o).unwrap();
                let n = remove_all_skips(&mut spec);
                assert!(n > 0);
                assert_eq!(spec, preset(plain, &o).unwrap(), "{res}");
            }
        }
        // Post-LN's adds sit elsewhere: its twin is no preset.
        let mut post = preset("vit-postln-2", &opts(true)).unwrap();
        assert_eq!(remove_all_skips(&mut post), 4);
        assert_eq!(post.name, "vit-postln-2-plain");
        let mut pre = preset("preact-resnet-20", &opts(true)).unwrap();
        remove_all_skips(&mut pre);
        assert_eq!(pre.name, "preact-resnet-20-plain");
        assert!(pre.skips.is_empty());
        // A plain network stays as it is.
        let mut plain = preset("mlp-plain-8", &opts(true)).unwrap();
        assert_eq!(remove_all_skips(&mut plain), 0);
        assert_eq!(plain, preset("mlp-plain-8", &opts(true)).unwrap());
    }

    #[test]
    fn batch_norm_everywhere_on_a_plain_mlp_follows_every_linear() {
        let mut spec = preset("mlp-plain-4", &opts(false)).unwrap();
        // 784·128+128 + 4·(128·128+128) + 128·10+10
        assert_eq!(validate(&spec).unwrap().total_params(), 167_818);
        assert_eq!(batch_norm_everywhere(&mut spec), 5);
        for (i, l) in spec.layers.iter().enumerate() {
            if matches!(l.op, LayerOp::Linear { .. }) {
                assert!(
                    matches!(spec.layers[i + 1].op, LayerOp::BatchNorm { .. }),
                    "{} is followed by {}",
                    l.name,
                    spec.layers[i + 1].name
                );
            }
        }
        let names: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["input.fc", "input.bn", "input.act", "block1.fc"]
        );
        // Five BNs of 128 features: 2·128 parameters each.
        assert_eq!(validate(&spec).unwrap().total_params(), 167_818 + 5 * 256);
        // Idempotent.
        assert_eq!(batch_norm_everywhere(&mut spec), 0);
    }

    #[test]
    fn batch_norm_toggles_match_the_presets() {
        for name in ["cifar-resnet-20", "cifar-plain-20"] {
            let mut spec = preset(name, &opts(false)).unwrap();
            batch_norm_everywhere(&mut spec);
            assert_eq!(spec, preset(name, &opts(true)).unwrap(), "{name} + BN");
            let mut spec = preset(name, &opts(true)).unwrap();
            assert!(batch_norm_nowhere(&mut spec) > 0);
            assert_eq!(spec, preset(name, &opts(false)).unwrap(), "{name} - BN");
        }
        // The MLP presets put the skip into the block's last layer: after BN goes, the skip
        // goes into the Linear, as in the preset without BN.
        let mut spec = preset("mlp-res-8", &opts(true)).unwrap();
        batch_norm_nowhere(&mut spec);
        assert_eq!(spec, preset("mlp-res-8", &opts(false)).unwrap());
    }

    #[test]
    fn add_skip_orders_the_ends_and_replaces_a_skip_into_the_same_node() {
        let mut spec = preset("mlp-plain-4", &opts(true)).unwrap();
        let k = add_skip(&mut spec, "block2.bn", "input.act").unwrap();
        assert_eq!(spec.skips[k], SkipSpec::identity("input.act", "block2.bn"));
        add_skip(&mut spec, "input", "block1.bn").unwrap();
        assert_eq!(
            spec.skips[0].to, "block1.bn",
            "skips are kept in target order"
        );
        add_skip(&mut spec, "block1.act", "block2.bn").unwrap();
        assert_eq!(spec.skips.len(), 2);
        assert_eq!(spec.skips[1].from, "block1.act");
        assert_eq!(
            add_skip(&mut spec, "head", "head"),
            Err(EditError::SameNode)
        );
        assert!(matches!(
            add_skip(&mut spec, "nope", "head"),
            Err(EditError::UnknownNode(_))
        ));
        // input (784) into block1.bn (128): invalid until it is a projection.
        assert!(validate(&spec).is_err());
        use_projection(&mut spec, 0).unwrap();
        assert!(validate(&spec).is_ok());
    }

    #[test]
    fn deleting_and_moving_layers_fixes_up_the_skips() {
        let mut spec = preset("mlp-res-4", &opts(true)).unwrap();
        // The skip into block2.bn moves to block2.fc.
        let i = spec.index_of("block2.bn").unwrap();
        delete_layer(&mut spec, i).unwrap();
        assert!(spec.skips.iter().any(|s| s.to == "block2.fc"));
        assert!(validate(&spec).is_ok());
        // The skip from block1.act now starts at block1.bn.
        let i = spec.index_of("block1.act").unwrap();
        delete_layer(&mut spec, i).unwrap();
        assert!(
            spec.skips
                .iter()
                .any(|s| s.from == "block1.bn" && s.to == "block2.fc")
        );
        // Moving block3.fc above its skip's source drops that skip.
        let mut spec = preset("mlp-res-4", &opts(true)).unwrap();
        let i = spec.index_of("block3.bn").unwrap();
        let (j, dropped) = move_layer(&mut spec, i, -3).unwrap();
        assert_eq!(spec.layers[j].name, "block3.bn");
        assert_eq!(dropped, 1);
        assert_eq!(move_layer(&mut spec, 0, -1), Err(EditError::CannotMove));
        // A duplicate gets a fresh name.
        let d = duplicate_layer(&mut spec, 0).unwrap();
        assert_eq!(spec.layers[d].name, "input.fc-2");
        assert_eq!(spec.layers[d].op, spec.layers[0].op);
    }

    #[test]
    fn repeating_a_residual_block_builds_the_deeper_stage() {
        let o = opts(true);
        let mut spec = preset("cifar-resnet-8", &o).unwrap();
        let start = spec.index_of("stage1.block1.conv1").unwrap();
        let end = spec.index_of("stage1.block1.act2").unwrap();
        let range = repeat_block(&mut spec, start, end, 2).unwrap();
        assert_eq!(range.len(), 12);
        let deep = preset("cifar-resnet-20", &o).unwrap();
        let stage1_end = deep.index_of("stage1.block3.act2").unwrap();
        assert_eq!(spec.layers[..=stage1_end], deep.layers[..=stage1_end]);
        assert_eq!(spec.skips[..3], deep.skips[..3]);
        assert!(validate(&spec).is_ok());
    }

    #[test]
    fn templates_insert_valid_blocks() {
        let mut spec = preset("mlp-plain-4", &opts(true)).unwrap();
        let at = spec.index_of("head").unwrap();
        let r = insert_template(&mut spec, at, Template::BasicPost).unwrap();
        assert_eq!(spec.layers[r.start].name, "block5.fc1");
        let v = validate(&spec).unwrap();
        // Two 128×128 Linear layers with bias and two BNs of 128.
        let before = validate(&preset("mlp-plain-4", &opts(true)).unwrap())
            .unwrap()
            .total_params();
        assert_eq!(v.total_params(), before + 2 * (128 * 128 + 128) + 2 * 256);
        assert_eq!(
            spec.skips,
            vec![SkipSpec {
                from: "block4.act".into(),
                to: "block5.bn2".into(),
                shortcut: Shortcut::Identity,
                scale: BranchScale::default(),
            }]
        );
        let mut cnn = preset("cifar-plain-8", &opts(true)).unwrap();
        let at = cnn.index_of("pool").unwrap();
        insert_template(&mut cnn, at, Template::PreAct).unwrap();
        insert_template(&mut cnn, at, Template::PlainPair).unwrap();
        assert!(validate(&cnn).is_ok());
    }

    #[test]
    fn diagnose_reports_every_bad_skip_and_the_shapes() {
        use crate::spec::{SpecError, diagnose};
        let mut spec = preset("mlp-plain-4", &opts(true)).unwrap();
        add_skip(&mut spec, "input", "block1.bn").unwrap(); // 784 -> 128
        add_skip(&mut spec, "block1.act", "block2.bn").unwrap(); // fine
        add_skip(&mut spec, "input", "head").unwrap(); // 784 -> 10
        let d = diagnose(&spec);
        assert!(d.result.is_err());
        assert!(matches!(
            d.skips[0],
            Some(SpecError::SkipShapeMismatch { .. })
        ));
        assert_eq!(d.skips[1], None);
        assert!(matches!(
            d.skips[2],
            Some(SpecError::SkipShapeMismatch { .. })
        ));
        // The layers' shapes and parameters are all known.
        assert!(d.layers.iter().all(Option::is_some));
        assert_eq!(d.layers[0].unwrap().output, Shape::Flat(128));
        // A layer that does not fit stops shape inference there.
        let mut broken = preset("mlp-plain-4", &opts(true)).unwrap();
        insert_layer(&mut broken, 2, LayerSpec::conv("conv", 8, 3, 1, 1));
        let d = diagnose(&broken);
        assert!(d.layers[..2].iter().all(Option::is_some));
        assert!(d.layers[2..].iter().all(Option::is_none));
        assert_eq!(d.result.unwrap_err().node(), Some("conv"));
    }

    #[test]
    fn adapting_to_a_dataset_adds_or_removes_the_flatten() {
        let image = InputShape::Image {
            channels: 1,
            height: 28,
            width: 28,
        };
        let mut spec = preset("mlp-res-4", &opts(true)).unwrap();
        adapt_io(&mut spec, image, 7);
        let want = preset(
            "mlp-res-4",
            &PresetOptions {
                input: Some(image),
                classes: 7,
                ..opts(true)
            },
        )
        .unwrap();
        assert_eq!(spec, want);
        adapt_io(&mut spec, InputShape::Flat { features: 784 }, 10);
        assert_eq!(spec, preset("mlp-res-4", &opts(true)).unwrap());
    }
}
