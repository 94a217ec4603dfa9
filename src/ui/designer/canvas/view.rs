//! The layout of the chain: a list of fixed-height rows (the input, a layer, a collapsed run of
//! identical blocks, or the header of an expanded run) and the arcs of the skips with their
//! lanes, rebuilt only when the spec or the expanded groups change. No egui.

use crate::spec::{
    BranchScale, Diagnosis, INPUT_NODE, Init, LayerOp, NetSpec, Shape, Shortcut, SpecError,
    check_skip, diagnose,
};
use std::collections::{BTreeSet, HashMap};

/// One row of the chain.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    /// The network input.
    Input,
    /// Layer `i`.
    Layer(usize),
    /// Layers `start..=end`, `blocks` identical blocks, drawn as one row.
    Group {
        /// First layer.
        start: usize,
        /// Last layer.
        end: usize,
        /// Number of blocks.
        blocks: usize,
        /// E.g. `stage1.block2-18 x17`.
        label: String,
        /// The group's key (its first block's prefix).
        key: String,
    },
    /// The header row above an expanded group, to collapse it again.
    GroupHeader {
        /// E.g. `stage1.block2-18 x17`.
        label: String,
        /// The group's key.
        key: String,
    },
}

/// One skip as drawn.
#[derive(Clone, Debug)]
pub struct ArcInfo {
    /// Index of the skip.
    pub skip: usize,
    /// Row of the source.
    pub from_row: usize,
    /// Row of the target.
    pub to_row: usize,
    /// Lane (0 is nearest the chain).
    pub lane: usize,
}

/// The layout of one version of the spec, rebuilt only when the spec or the expanded groups
/// change.
#[derive(Clone, Debug)]
pub struct View {
    /// The designer revision this view is of.
    pub revision: u64,
    /// The expanded groups this view is of.
    pub expanded: BTreeSet<String>,
    /// Shapes, parameters and per-skip problems.
    pub diag: Diagnosis,
    /// The rows, top to bottom.
    pub rows: Vec<Row>,
    /// The row of each node position (0 is the input).
    pub row_of: Vec<usize>,
    /// The skips that are drawn (both ends known, in different rows).
    pub arcs: Vec<ArcInfo>,
    /// Number of arc lanes.
    pub lanes: usize,
    /// Per skip: whether it is invalid and a 1×1 projection would make it valid.
    pub fixable: Vec<bool>,
}

/// The width of a layer's op (Linear and Conv2d outputs, Head outputs), if it has one.
pub fn width_mut(op: &mut LayerOp) -> Option<&mut usize> {
    match op {
        LayerOp::Linear { out, .. } | LayerOp::Conv2d { out, .. } => Some(out),
        LayerOp::Head { outputs } => Some(outputs),
        _ => None,
    }
}

/// What makes two blocks the same: their layers (by name suffix) and the skips into them.
#[derive(PartialEq)]
struct Signature {
    layers: Vec<(String, LayerOp, Init, u32)>,
    skips: Vec<(String, String, Shortcut, BranchScale)>,
}

/// A run of layers sharing a dotted prefix.
struct Block {
    prefix: String,
    start: usize,
    end: usize,
}

fn blocks_of(spec: &NetSpec) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        let prefix = l.name.rsplit_once('.').map_or("", |(p, _)| p);
        match out.last_mut() {
            Some(b) if !prefix.is_empty() && b.prefix == prefix && b.end + 1 == i => b.end = i,
            _ => out.push(Block {
                prefix: prefix.to_string(),
                start: i,
                end: i,
            }),
        }
    }
    out
}

fn signature(spec: &NetSpec, b: &Block) -> Signature {
    let names = &spec.layers[b.start..=b.end];
    let before = if b.start == 0 {
        INPUT_NODE
    } else {
        spec.layers[b.start - 1].name.as_str()
    };
    let rel = |name: &str| -> String {
        if name == before {
            "<before>".into()
        } else if names.iter().any(|l| l.name == name) {
            name[b.prefix.len()..].to_string()
        } else {
            format!("@{name}")
        }
    };
    Signature {
        layers: names
            .iter()
            .map(|l| {
                (
                    l.name[b.prefix.len()..].to_string(),
                    l.op.clone(),
                    l.init,
                    l.bias_std.to_bits(),
                )
            })
            .collect(),
        skips: spec
            .skips
            .iter()
            .filter(|s| names.iter().any(|l| l.name == s.to))
            .map(|s| (rel(&s.from), rel(&s.to), s.shortcut, s.scale))
            .collect(),
    }
}

/// `stage1.block3` → (`stage1.`, `block`, 3).
fn numbered(prefix: &str) -> Option<(&str, &str, usize)> {
    let (parent, last) = match prefix.rsplit_once('.') {
        Some((p, l)) => (&prefix[..p.len() + 1], l),
        None => ("", prefix),
    };
    let stem = last.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = last[stem.len()..].parse().ok()?;
    Some((parent, stem, n))
}

/// Runs of at least three identical, consecutively numbered blocks: all but the first collapse.
fn groups(spec: &NetSpec) -> Vec<Row> {
    let blocks = blocks_of(spec);
    let sigs: Vec<Option<Signature>> = blocks
        .iter()
        .map(|b| numbered(&b.prefix).map(|_| signature(spec, b)))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let mut j = i + 1;
        if let (Some(si), Some((pi, ti, ni))) = (&sigs[i], numbered(&blocks[i].prefix)) {
            while j < blocks.len() {
                let same = sigs[j].as_ref() == Some(si)
                    && numbered(&blocks[j].prefix)
                        .is_some_and(|(p, t, n)| p == pi && t == ti && n == ni + (j - i));
                if !same {
                    break;
                }
                j += 1;
            }
            if j - i >= 3 {
                let first = &blocks[i + 1];
                let last = &blocks[j - 1];
                let (p, t, n0) = numbered(&first.prefix).expect("numbered");
                let n1 = numbered(&last.prefix).expect("numbered").2;
                out.push(Row::Group {
                    start: first.start,
                    end: last.end,
                    blocks: j - i - 1,
                    label: format!("{p}{t}{n0}-{n1} x{}", j - i - 1),
                    key: first.prefix.clone(),
                });
            }
        }
        i = j;
    }
    out
}

/// The keys of every group of repeated blocks in `spec`.
pub fn group_keys(spec: &NetSpec) -> Vec<String> {
    groups(spec)
        .into_iter()
        .filter_map(|r| match r {
            Row::Group { key, .. } => Some(key),
            _ => None,
        })
        .collect()
}

impl View {
    /// Lays out `spec` with the groups in `expanded` open.
    pub fn build(spec: &NetSpec, revision: u64, expanded: &BTreeSet<String>) -> View {
        let diag = diagnose(spec);
        let (rows, row_of) = rows_of(spec, expanded);
        let (arcs, lanes) = arcs_of(spec, &row_of);
        View {
            fixable: fixable_skips(spec, &diag),
            revision,
            expanded: expanded.clone(),
            diag,
            rows,
            row_of,
            arcs,
            lanes,
        }
    }
}

/// The rows top to bottom, and the row of each node position (0 is the input): a collapsed
/// group is one row for all its layers.
fn rows_of(spec: &NetSpec, expanded: &BTreeSet<String>) -> (Vec<Row>, Vec<usize>) {
    let groups = groups(spec);
    let mut rows = vec![Row::Input];
    let mut row_of = vec![0; spec.layers.len() + 1];
    let mut g = groups.iter().peekable();
    let mut i = 0;
    while i < spec.layers.len() {
        if let Some(Row::Group {
            start,
            end,
            label,
            key,
            ..
        }) = g.peek().copied()
            && *start == i
        {
            let group = g.next().expect("peeked").clone();
            if expanded.contains(key) {
                rows.push(Row::GroupHeader {
                    label: label.clone(),
                    key: key.clone(),
                });
            } else {
                for r in &mut row_of[start + 1..=end + 1] {
                    *r = rows.len();
                }
                rows.push(group);
                i = end + 1;
                continue;
            }
        }
        row_of[i + 1] = rows.len();
        rows.push(Row::Layer(i));
        i += 1;
    }
    (rows, row_of)
}

/// The skips drawn as arcs (both ends known, in different rows) with their lanes, and the
/// number of lanes.
fn arcs_of(spec: &NetSpec, row_of: &[usize]) -> (Vec<ArcInfo>, usize) {
    let pos: HashMap<&str, usize> = std::iter::once((INPUT_NODE, 0))
        .chain(
            spec.layers
                .iter()
                .enumerate()
                .map(|(i, l)| (l.name.as_str(), i + 1)),
        )
        .collect();
    let mut arcs: Vec<ArcInfo> = spec
        .skips
        .iter()
        .enumerate()
        .filter_map(|(k, s)| {
            let (a, b) = (*pos.get(s.from.as_str())?, *pos.get(s.to.as_str())?);
            let (ra, rb) = (row_of[a], row_of[b]);
            (ra != rb).then(|| ArcInfo {
                skip: k,
                from_row: ra.min(rb),
                to_row: ra.max(rb),
                lane: 0,
            })
        })
        .collect();
    // Lanes: shorter arcs first, each one lane outside every arc it overlaps, so that an arc
    // nested in another is drawn inside it (arcs that only touch share a lane).
    arcs.sort_by_key(|a| (a.to_row - a.from_row, a.from_row));
    for k in 0..arcs.len() {
        let (f, t) = (arcs[k].from_row, arcs[k].to_row);
        arcs[k].lane = arcs[..k]
            .iter()
            .filter(|b| b.from_row < t && f < b.to_row)
            .map(|b| b.lane + 1)
            .max()
            .unwrap_or(0);
    }
    let lanes = arcs.iter().map(|a| a.lane + 1).max().unwrap_or(0);
    (arcs, lanes)
}

/// Per skip: whether its shapes do not fit and a 1×1 projection (with BN) would make it valid.
fn fixable_skips(spec: &NetSpec, diag: &Diagnosis) -> Vec<bool> {
    let shapes: Vec<Option<Shape>> = diag.layers.iter().map(|l| l.map(|f| f.output)).collect();
    diag.skips
        .iter()
        .enumerate()
        .map(|(k, e)| {
            matches!(e, Some(SpecError::SkipShapeMismatch { .. })) && {
                let mut trial = spec.clone();
                trial.skips[k].shortcut = Shortcut::Projection { batch_norm: true };
                matches!(check_skip(&trial, k, diag.input, &shapes), Ok(Some(_)))
            }
        })
        .collect()
}
