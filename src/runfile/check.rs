//! The consistency checks a loaded run must pass: the network, config and dataset are valid,
//! counters are in range, the history matches the network it claims to record, and the
//! weights hold exactly the network's tensors.

use super::{LoadError, RunFile};
use crate::metrics::{Checkpoint, HIST_BINS, History, RunLayout};
use crate::spec::{
    MAX_NAME_LEN, MAX_STEPS, ProbeNames, ValidSpec, expected_tensors, probe_names, validate,
};
use std::collections::{HashMap, HashSet};

/// The largest decision-boundary grid side a run file may hold.
pub const MAX_BOUNDARY_RESOLUTION: usize = 1024;
/// The most training points a decision boundary may hold.
pub const MAX_BOUNDARY_POINTS: usize = 100_000;
/// The longest series name.
const MAX_SERIES_NAME: usize = 64;
/// The longest series layer key: a layer name plus the longest tensor suffix
/// (`.shortcut.bn.running_mean`).
const MAX_SERIES_LAYER: usize = MAX_NAME_LEN + 32;

fn field(field: impl Into<String>, reason: impl Into<String>) -> LoadError {
    LoadError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a parsed run; returns the validated network for the weights check.
pub(super) fn check(run: &mut RunFile) -> Result<ValidSpec, LoadError> {
    let valid = validate(&run.spec).map_err(|e| field("spec", e.to_string()))?;
    run.config
        .validate()
        .map_err(|e| field("config", e.to_string()))?;
    run.dataset
        .validate()
        .map_err(|(f, r)| field(format!("dataset.{f}"), r))?;
    for (name, v) in [
        ("progress.step", run.progress.step),
        ("progress.optimizer_steps", run.progress.optimizer_steps),
        ("history.last_step", run.history.last_step),
    ] {
        if v > MAX_STEPS {
            return Err(field(
                name,
                format!("{v} is more than the {MAX_STEPS} steps a run may take"),
            ));
        }
    }
    run.history.reindex();
    check_layout(&run.history.layout, &probe_names(&valid))?;
    check_data_layout(run)?;
    check_series(&run.history)?;
    check_latest(&run.history)?;
    if run.weights.is_some() && run.history.last_step > run.progress.step {
        return Err(field(
            "progress.step",
            format!(
                "the history reaches step {} but the weights are from step {}",
                run.history.last_step, run.progress.step
            ),
        ));
    }
    Ok(valid)
}

fn check_series(h: &History) -> Result<(), LoadError> {
    let layout = &h.layout;
    let known: HashSet<&str> = layout
        .layers
        .iter()
        .chain(&layout.batch_norms)
        .chain(&layout.skips)
        .chain(&layout.params)
        .chain(&layout.eval_sets)
        .map(String::as_str)
        .chain([""])
        .collect();
    let mut seen = HashSet::new();
    for (key, s) in h.iter() {
        let label = || {
            format!(
                "history series \"{} {}\"",
                key.name,
                key.layer.chars().take(80).collect::<String>()
            )
        };
        if key.name.is_empty() || key.name.len() > MAX_SERIES_NAME {
            return Err(field(
                label(),
                format!(
                    "the series name has {} bytes (1 to {MAX_SERIES_NAME})",
                    key.name.len()
                ),
            ));
        }
        if key.layer.len() > MAX_SERIES_LAYER || !known.contains(key.layer.as_str()) {
            return Err(field(
                label(),
                "names a layer or tensor that is not in the history's layout",
            ));
        }
        if !seen.insert(key) {
            return Err(field(label(), "appears twice"));
        }
        if s.steps.len() != s.values.len() {
            return Err(LoadError::InconsistentHistory {
                series: format!("{} {}", key.name, key.layer).trim().to_string(),
                steps: s.steps.len(),
                values: s.values.len(),
            });
        }
        if s.steps.windows(2).any(|w| w[0] > w[1]) {
            return Err(field(label(), "steps are not in order"));
        }
        if s.steps
            .last()
            .is_some_and(|&st| u64::from(st) > h.last_step)
        {
            return Err(field(
                label(),
                format!("a step is past the history's last step {}", h.last_step),
            ));
        }
    }
    Ok(())
}

/// A history's layout must be empty (nothing probed yet) or exactly the network's.
fn check_layout(layout: &RunLayout, expected: &ProbeNames) -> Result<(), LoadError> {
    if *layout == RunLayout::default() {
        return Ok(());
    }
    // Layouts written before LayerNorm and GroupNorm were probed have neither list.
    let affine = layout.affine_norms.is_empty() && layout.affine_norm_channels.is_empty()
        || layout.affine_norms == expected.affine_norms
            && layout.affine_norm_channels == expected.affine_norm_channels;
    let parts: [(&str, bool); 9] = [
        ("layers", layout.layers == expected.layers),
        ("batch_norms", layout.batch_norms == expected.batch_norms),
        (
            "batch_norm_channels",
            layout.batch_norm_channels == expected.batch_norm_channels,
        ),
        ("skips", layout.skips == expected.skips),
        ("params", layout.params == expected.params),
        ("affine_norms", affine),
        // Layouts written before token sequences were probed have none of these.
        (
            "token_layers",
            layout.token_layers.is_empty() || layout.token_layers == expected.token_layers,
        ),
        (
            "attention",
            layout.attention.is_empty() || layout.attention == expected.attention,
        ),
        (
            "attention_shape",
            layout.attention.is_empty() && layout.attention_shape.is_empty()
                || layout.attention_shape == expected.attention_shape,
        ),
    ];
    match parts.iter().find(|(_, ok)| !ok) {
        None => Ok(()),
        Some((name, _)) => Err(field(
            format!("history.layout.{name}"),
            "does not match the network in the run file",
        )),
    }
}

/// The layout's data fields must fit the run: one finite `[mean, std > 0]` per input channel or
/// feature, and the dataset's evaluation sets by name.
fn check_data_layout(run: &RunFile) -> Result<(), LoadError> {
    let layout = &run.history.layout;
    let inputs = match run.spec.input {
        crate::spec::InputShape::Flat { features } => features,
        crate::spec::InputShape::Image { channels, .. } => channels,
    };
    if !layout.input_norm.is_empty() {
        if layout.input_norm.len() != inputs {
            return Err(field(
                "history.layout.input_norm",
                format!(
                    "{} entries for a network with {inputs} input channels or features",
                    layout.input_norm.len()
                ),
            ));
        }
        if let Some(k) = layout
            .input_norm
            .iter()
            .position(|[m, s]| !(m.is_finite() && s.is_finite() && *s > 0.0))
        {
            return Err(field(
                format!("history.layout.input_norm[{k}]"),
                "needs a finite mean and a finite std > 0",
            ));
        }
    }
    let names: Vec<&String> = run.dataset.eval_sets.iter().map(|s| &s.name).collect();
    if !layout.eval_sets.is_empty() && layout.eval_sets.iter().collect::<Vec<_>>() != names {
        return Err(field(
            "history.layout.eval_sets",
            "does not match the dataset's evaluation sets",
        ));
    }
    Ok(())
}

/// The latest probe and decision boundary must fit the layout (the panels index them by it).
fn check_latest(h: &History) -> Result<(), LoadError> {
    let l = &h.layout;
    // With an empty layout nothing indexes the probe's entries (a history built without one).
    if let Some(p) = h
        .latest_probe
        .as_ref()
        .filter(|_| *l != RunLayout::default())
    {
        let fits = |n: usize, want: usize| n == want || n == 0;
        let ok = fits(p.layers.len(), l.layers.len())
            && p.layers.iter().all(|a| a.hist.len() == HIST_BINS)
            && fits(p.batch_norms.len(), l.batch_norms.len())
            && p.batch_norms
                .iter()
                .zip(&l.batch_norm_channels)
                .all(|(b, &c)| {
                    [&b.running_mean, &b.running_var, &b.gamma, &b.beta]
                        .iter()
                        .all(|v| v.len() == c)
                })
            && fits(p.skips.len(), l.skips.len())
            && fits(p.params.len(), l.params.len())
            && fits(p.token_residual.len(), l.token_layers.len())
            && fits(p.attention.len(), l.attention.len())
            && p.attention
                .iter()
                .zip(&l.attention_shape)
                .all(|(a, &[h, n])| a.weights.len() == h * n * n && a.entropy.len() == h)
            && fits(p.affine_norms.len(), l.affine_norms.len())
            && p.affine_norms
                .iter()
                .zip(&l.affine_norm_channels)
                .all(|(a, &c)| a.gamma.len() == c && a.beta.len() == c);
        if !ok {
            return Err(field(
                "history.latest_probe",
                "its entries do not match the history's layout",
            ));
        }
    }
    if let Some(b) = &h.latest_boundary {
        let cells = b.resolution.checked_mul(b.resolution);
        if b.resolution > MAX_BOUNDARY_RESOLUTION
            || cells != Some(b.classes.len())
            || b.points.len() != b.labels.len()
            || b.points.len() > MAX_BOUNDARY_POINTS
        {
            return Err(field(
                "history.latest_boundary",
                format!(
                    "a {0}×{0} grid with {1} cells and {2} points for {3} labels is not a decision boundary this build draws",
                    b.resolution,
                    b.classes.len(),
                    b.points.len(),
                    b.labels.len()
                ),
            ));
        }
    }
    if let Some(r) = &h.latest_set_bn {
        let ok = r.sets.len() == l.eval_sets.len()
            && r.sets.iter().all(|layers| {
                layers.len() == l.batch_norms.len()
                    && layers
                        .iter()
                        .zip(&l.batch_norm_channels)
                        .all(|(m, &c)| m.mean.len() == c && m.var.len() == c)
            });
        if !ok {
            return Err(field(
                "history.latest_set_bn",
                "its entries do not match the history's evaluation sets and BatchNorm layers",
            ));
        }
    }
    Ok(())
}

/// The most bytes a weights file of this network can take: every tensor, two optimiser moments
/// per trained value, and a generous header (names, shapes, offsets).
pub(super) fn max_weights_bytes(valid: &ValidSpec) -> u64 {
    let tensors = expected_tensors(valid);
    let values: u64 = tensors
        .iter()
        .map(|t| t.numel() * if t.trainable { 3 } else { 1 })
        .sum();
    let header: u64 = tensors.iter().map(|t| 3 * (t.name.len() as u64 + 96)).sum();
    values * 4 + header + 4096
}

/// The weights must hold exactly the network's tensors with their shapes; optimiser state
/// (`optim.m.<name>`, `optim.v.<name>`) may be there for trained tensors, flat.
pub(super) fn check_weights(ck: &Checkpoint, valid: &ValidSpec) -> Result<(), String> {
    let expected = expected_tensors(valid);
    let by_name: HashMap<&str, _> = expected.iter().map(|t| (t.name.as_str(), t)).collect();
    for t in &ck.tensors {
        let moment = t
            .name
            .strip_prefix(Checkpoint::MOMENT1)
            .or_else(|| t.name.strip_prefix(Checkpoint::MOMENT2));
        let base = moment.unwrap_or(&t.name);
        let Some(e) = by_name.get(base) else {
            return Err(format!("tensor \"{}\" is not part of the network", t.name));
        };
        let numel: u64 = t.shape.iter().map(|&d| d as u64).product();
        let fits = match moment {
            Some(_) => e.trainable && numel == e.numel(),
            None => t.shape == e.shape,
        };
        if !fits || numel != t.data.len() as u64 {
            return Err(format!(
                "tensor \"{}\" has shape {:?} but the network needs {:?}",
                t.name, t.shape, e.shape
            ));
        }
    }
    let present: HashSet<&str> = ck.tensors.iter().map(|t| t.name.as_str()).collect();
    if let Some(missing) = expected.iter().find(|e| !present.contains(e.name.as_str())) {
        return Err(format!("the weights have no tensor \"{}\"", missing.name));
    }
    Ok(())
}
