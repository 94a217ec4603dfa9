//! The colours every figure uses, in the lab and in files: one colour per line or run (ten
//! distinct hues, then the same hues dashed), viridis for depth and for heatmap values.

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Ten distinct hues (matplotlib's tab10), for lines, runs and classes.
pub const CATEGORICAL: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The `i`-th line's colour (repeats after ten; see [`dashed`]).
pub fn categorical(i: usize) -> Rgb {
    CATEGORICAL[i % CATEGORICAL.len()]
}

/// Whether the `i`-th line is drawn dashed so that it differs from the one ten before, which
/// has the same colour: any number of lines stay distinct.
pub fn dashed(i: usize) -> bool {
    (i / CATEGORICAL.len()) % 2 == 1
}

const VIRIDIS: [Rgb; 6] = [
    [68, 1, 84],
    [65, 68, 135],
    [42, 120, 142],
    [34, 168, 132],
    [122, 209, 81],
    [253, 231, 37],
];

/// Viridis at `t` in `[0, 1]` (clamped); NaN is grey.
pub fn viridis(t: f32) -> Rgb {
    if t.is_nan() {
        return [110, 110, 110];
    }
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f32;
    let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// The colour of item `i` of `n` by depth: dark (first) to yellow (last).
pub fn depth(i: usize, n: usize) -> Rgb {
    viridis(0.05 + 0.9 * i as f32 / (n.max(2) - 1) as f32)
}

/// A heatmap's colour range in plotted units (log10 of the values when `log`): the 2nd to the
/// 98th percentile of the values it can show, so that a few extreme cells do not flatten the
/// rest; `(0, 1)` when there are none, widened by ½ when all are equal.
pub fn heat_range(values: &[f64], log: bool) -> (f64, f64) {
    let mut v: Vec<f64> = values
        .iter()
        .filter_map(|&x| super::hover::plotted(x, log))
        .collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.02), q(0.98));
    if hi - lo < 1e-9 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

/// The colour of a heatmap value on the range of [`heat_range`] (viridis; `None` for a value
/// the scale cannot show).
pub fn heat_colour(v: f64, (lo, hi): (f64, f64), log: bool) -> Option<Rgb> {
    let p = super::hover::plotted(v, log)?;
    Some(viridis(((p - lo) / (hi - lo)) as f32))
}

/// A class's colour on a class map: its line colour, lightened.
pub fn class_colour(class: usize) -> Rgb {
    let c = categorical(class);
    c.map(|x| ((x as u16 + 2 * 255) / 3) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_lines_differ_by_colour_or_dash() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20 {
            assert!(
                seen.insert((categorical(i), dashed(i))),
                "line {i} repeats one"
            );
        }
    }

    #[test]
    fn depth_runs_dark_to_light() {
        let sum = |c: Rgb| c.iter().map(|&v| v as u32).sum::<u32>();
        assert!(sum(depth(0, 10)) < sum(depth(9, 10)));
        assert_eq!(viridis(f32::NAN), [110, 110, 110]);
    }

    #[test]
    fn heat_range_ignores_a_few_extremes() {
        let mut v: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        v[99] = 1e9;
        let (lo, hi) = heat_range(&v, false);
        assert!(
            (2.0..=3.0).contains(&lo) && (97.0..=99.0).contains(&hi),
            "{lo} {hi}"
        );
        assert_eq!(
            heat_range(&[5.0, 5.0], true),
            (5f64.log10() - 0.5, 5f64.log10() + 0.5)
        );
        assert_eq!(heat_colour(-1.0, (0.0, 1.0), true), None);
    }
}
