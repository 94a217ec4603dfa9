//! Skips: resolving their ends, checking what can be checked without shapes, and what a
//! shortcut between two shapes costs (or why it cannot join them).

use super::{Shape, SkipInfo, SpecError};
use crate::spec::net::{INPUT_NODE, NetSpec, Shortcut};

/// Resolves skip `k`'s ends to layer indices (`None`: the input) and checks what can be checked
/// without shapes: both ends exist, the edge goes forward, no earlier skip has the same target
/// (`earlier_target(to)` names it), and α is finite. `validate` and [`check_skip`] share it.
pub(super) fn resolve_skip(
    spec: &NetSpec,
    k: usize,
    index_of: impl Fn(&str) -> Option<usize>,
    earlier_target: impl Fn(usize) -> Option<usize>,
) -> Result<(Option<usize>, usize), SpecError> {
    let skip = &spec.skips[k];
    let from = if skip.from == INPUT_NODE {
        None
    } else {
        Some(
            index_of(&skip.from).ok_or_else(|| SpecError::UnknownSkipNode {
                index: k,
                name: skip.from.clone(),
            })?,
        )
    };
    let to = index_of(&skip.to).ok_or_else(|| SpecError::UnknownSkipNode {
        index: k,
        name: skip.to.clone(),
    })?;
    if from == Some(to) {
        return Err(SpecError::SkipOntoItself {
            index: k,
            node: skip.to.clone(),
        });
    }
    if let Some(f) = from
        && f > to
    {
        return Err(SpecError::SkipBackward {
            index: k,
            from: skip.from.clone(),
            to: skip.to.clone(),
        });
    }
    if let Some(other) = earlier_target(to) {
        return Err(SpecError::DuplicateSkipTarget {
            index: k,
            to: skip.to.clone(),
            other,
        });
    }
    if !skip.scale.value.is_finite() {
        return Err(SpecError::BadScale {
            index: k,
            to: skip.to.clone(),
            value: skip.scale.value,
        });
    }
    Ok((from, to))
}

/// Checks skip `k` on its own, given the layers' output shapes (`None` where unknown); returns
/// its facts when both shapes are known.
pub fn check_skip(
    spec: &NetSpec,
    k: usize,
    input: Shape,
    shapes: &[Option<Shape>],
) -> Result<Option<SkipInfo>, SpecError> {
    let skip = &spec.skips[k];
    let (from, to) = resolve_skip(
        spec,
        k,
        |name| spec.index_of(name),
        |_| spec.skips[..k].iter().position(|s| s.to == skip.to),
    )?;
    let from_shape = match from {
        None => Some(input),
        Some(f) => shapes.get(f).copied().flatten(),
    };
    let to_shape = shapes.get(to).copied().flatten();
    match (from_shape, to_shape) {
        (Some(a), Some(b)) => skip_info(spec, k, from, to, a, b).map(Some),
        _ => Ok(None),
    }
}

/// The facts of skip `k` from layer `from` (`None`: the input) into layer `to`, or why its
/// shortcut cannot join the two shapes.
pub(super) fn skip_info(
    spec: &NetSpec,
    k: usize,
    from: Option<usize>,
    to: usize,
    from_shape: Shape,
    to_shape: Shape,
) -> Result<SkipInfo, SpecError> {
    let skip = &spec.skips[k];
    let joined = match (from_shape, to_shape) {
        (Shape::Flat(a), Shape::Flat(b)) => flat_shortcut(skip.shortcut, a, b),
        (Shape::Image(..), Shape::Image(..)) => image_shortcut(skip.shortcut, from_shape, to_shape),
        (Shape::Tokens(n1, a), Shape::Tokens(n2, b)) if n1 == n2 => {
            // Each token's features as a flat vector's; FLOPs for every token.
            flat_shortcut(skip.shortcut, a, b).map(|(s, p, f)| (s, p, f * n1 as u64))
        }
        (Shape::Tokens(..), Shape::Tokens(..)) => {
            Err("the two sequences have different numbers of tokens")
        }
        _ => Err("the two sides have different kinds (flat vector, image, tokens)"),
    };
    let (stride, params, flops) = joined.map_err(|reason| SpecError::SkipShapeMismatch {
        index: k,
        from: skip.from.clone(),
        to: skip.to.clone(),
        from_shape,
        to_shape,
        reason,
    })?;
    let alpha_params = u64::from(skip.scale.learnable);
    let add = to_shape.numel() as u64 * if skip.scale.value == 1.0 { 1 } else { 2 };
    Ok(SkipInfo {
        from,
        to,
        from_shape,
        to_shape,
        stride,
        params: params + alpha_params,
        flops: flops + add,
    })
}

/// A shortcut between flat vectors of `a` and `b` features: (stride, parameters, FLOPs), or
/// why it does not fit.
fn flat_shortcut(
    shortcut: Shortcut,
    a: usize,
    b: usize,
) -> Result<(usize, u64, u64), &'static str> {
    match shortcut {
        Shortcut::Identity if a == b => Ok((1, 0, 0)),
        Shortcut::Identity => Err(
            "an identity shortcut needs equal shapes: use a projection (or zero-pad when the target is wider)",
        ),
        Shortcut::ZeroPad if b >= a => Ok((1, 0, 0)),
        Shortcut::ZeroPad => Err("zero-padding cannot shrink the features: use a projection"),
        Shortcut::Projection { batch_norm } => Ok((
            1,
            (a * b) as u64 + if batch_norm { 2 * b as u64 } else { 0 },
            2 * (a * b) as u64 + if batch_norm { 4 * b as u64 } else { 0 },
        )),
    }
}

/// A shortcut between two images: (stride, parameters, FLOPs), or why it does not fit.
fn image_shortcut(
    shortcut: Shortcut,
    from_shape: Shape,
    to_shape: Shape,
) -> Result<(usize, u64, u64), &'static str> {
    let (Shape::Image(c1, h1, w1), Shape::Image(c2, h2, w2)) = (from_shape, to_shape) else {
        return Err("the two sides have different kinds (flat vector, image, tokens)");
    };
    // The spatial stride that maps the source onto the target grid.
    let stride = if h1 == h2 && w1 == w2 {
        Some(1)
    } else if h2 > 0 && h1.div_ceil(h2) == w1.div_ceil(w2.max(1)) {
        let s = h1.div_ceil(h2);
        ((h1 - 1) / s + 1 == h2 && (w1 - 1) / s + 1 == w2).then_some(s)
    } else {
        None
    };
    match (shortcut, stride) {
        (Shortcut::Identity, _) if from_shape == to_shape => Ok((1, 0, 0)),
        (Shortcut::Identity, _) => {
            Err("an identity shortcut needs equal shapes: use a 1×1 projection or zero-pad")
        }
        (_, None) => Err("the spatial sizes are not related by an integer stride"),
        (Shortcut::ZeroPad, Some(s)) if c2 >= c1 => Ok((s, 0, 0)),
        (Shortcut::ZeroPad, Some(_)) => {
            Err("zero-padding cannot remove channels: use a 1×1 projection")
        }
        (Shortcut::Projection { batch_norm }, Some(s)) => Ok((
            s,
            (c1 * c2) as u64 + if batch_norm { 2 * c2 as u64 } else { 0 },
            2 * (c1 * c2 * h2 * w2) as u64
                + if batch_norm {
                    4 * to_shape.numel() as u64
                } else {
                    0
                },
        )),
    }
}
