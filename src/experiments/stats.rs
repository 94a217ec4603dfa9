//! The statistics the experiments compute, as plain functions on host data so that each can be
//! checked against a hand computation.

/// Mean of the squares, in `f64`: the mean squared activation (MSA) of De & Smith 2020.
/// Empty input gives NaN.
pub fn mean_square(x: &[f32]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64
}

/// The mean of a slice (NaN when empty).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// The median of a slice (the mean of the two middle values for an even length; NaN when empty
/// or when any value is NaN).
pub fn median(x: &[f64]) -> f64 {
    if x.is_empty() || x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// The trailing moving average over `window` values as `[step, mean]` points, with steps
/// counted from 1: point `i` is the mean of values `max(0, i + 1 − window)..=i`.
pub fn moving_average(x: &[f64], window: usize) -> Vec<[f64; 2]> {
    let window = window.max(1);
    (0..x.len())
        .map(|i| {
            let lo = (i + 1).saturating_sub(window);
            [(i + 1) as f64, mean(&x[lo..=i])]
        })
        .collect()
}

/// The mean of the last `n` values (all of them when there are fewer).
pub fn tail_mean(x: &[f32], n: usize) -> f64 {
    let start = x.len().saturating_sub(n);
    let tail: Vec<f64> = x[start..].iter().map(|&v| v as f64).collect();
    mean(&tail)
}

/// The sample autocorrelation of a sequence at lags `0..=max_lag`:
/// `R(k) = Σ_{i<n−k} (g_i − ḡ)(g_{i+k} − ḡ) / Σ_i (g_i − ḡ)²`, so `R(0) = 1`.
///
/// This is the usual estimator (the one `statsmodels.acf` uses); Balduzzi et al. 2017 plot it for
/// the gradients of a network over evenly spaced inputs. A constant sequence has no variance, so
/// its autocorrelation is undefined: every lag gives NaN (a dead network's zero gradient is not
/// "perfectly correlated", and a criterion on NaN fails). Lags beyond the sequence give NaN.
pub fn autocorrelation(g: &[f64], max_lag: usize) -> Vec<f64> {
    let n = g.len();
    let m = mean(g);
    let centred: Vec<f64> = g.iter().map(|&v| v - m).collect();
    let var: f64 = centred.iter().map(|v| v * v).sum();
    (0..=max_lag)
        .map(|k| {
            if k >= n || var == 0.0 {
                f64::NAN
            } else {
                (0..n - k).map(|i| centred[i] * centred[i + k]).sum::<f64>() / var
            }
        })
        .collect()
}

/// `n` evenly spaced values from `lo` to `hi`, both included (`[lo]` for `n = 1`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..n)
            .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// Filter normalisation of a random direction (Li et al. 2018), in place.
///
/// A "filter" is what produces one output channel: for a Linear weight in burn's `[in, out]`
/// layout it is a column, for a convolution weight `[out, in, k, k]` the `out`-th block. Each
/// filter of `direction` is scaled to the norm of the same filter of `weights`, so that a step of
/// 1 along the direction changes every filter by as much as its own size, and the plot does not
/// depend on the scale invariance that BN gives the weights. Tensors of any other rank (biases,
/// BN γ and β) get a zero direction, as Li et al. do. A filter of zero norm in the direction stays
/// zero.
pub fn filter_normalize(direction: &mut [f32], weights: &[f32], shape: &[usize]) {
    assert_eq!(
        direction.len(),
        weights.len(),
        "direction and weights differ"
    );
    let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| (x as f64).powi(2)).sum::<f64>().sqrt();
    match *shape {
        [rows, cols] => {
            for j in 0..cols {
                let wn = norm(&mut (0..rows).map(|i| weights[i * cols + j]));
                let dn = norm(&mut (0..rows).map(|i| direction[i * cols + j]));
                let s = if dn > 0.0 { (wn / dn) as f32 } else { 0.0 };
                for i in 0..rows {
                    direction[i * cols + j] *= s;
                }
            }
        }
        [out, ..] if shape.len() == 4 => {
            let per = direction.len() / out.max(1);
            for (d, w) in direction.chunks_mut(per).zip(weights.chunks(per)) {
                let wn = norm(&mut w.iter().copied());
                let dn = norm(&mut d.iter().copied());
                let s = if dn > 0.0 { (wn / dn) as f32 } else { 0.0 };
                d.iter_mut().for_each(|x| *x *= s);
            }
        }
        _ => direction.iter_mut().for_each(|x| *x = 0.0),
    }
}

/// A regular grid of values, as [`FigureKind::Heatmap`](super::FigureKind) stores it:
/// `values[j * nx + i]` at `(x_i, y_j)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// `[min, max]` of x.
    pub x_range: [f64; 2],
    /// `[min, max]` of y.
    pub y_range: [f64; 2],
    /// Points along x (≥ 2).
    pub nx: usize,
    /// Points along y (≥ 2).
    pub ny: usize,
    /// `ny × nx` values.
    pub values: Vec<f64>,
}

impl Grid {
    /// Bilinear interpolation at `(x, y)`, clamped to the grid.
    pub fn interpolate(&self, x: f64, y: f64) -> f64 {
        let fx = ((x - self.x_range[0]) / (self.x_range[1] - self.x_range[0])
            * (self.nx - 1) as f64)
            .clamp(0.0, (self.nx - 1) as f64);
        let fy = ((y - self.y_range[0]) / (self.y_range[1] - self.y_range[0])
            * (self.ny - 1) as f64)
            .clamp(0.0, (self.ny - 1) as f64);
        let (i0, j0) = (
            (fx.floor() as usize).min(self.nx - 2),
            (fy.floor() as usize).min(self.ny - 2),
        );
        let (tx, ty) = (fx - i0 as f64, fy - j0 as f64);
        let v = |i: usize, j: usize| self.values[j * self.nx + i];
        (1.0 - ty) * ((1.0 - tx) * v(i0, j0) + tx * v(i0 + 1, j0))
            + ty * ((1.0 - tx) * v(i0, j0 + 1) + tx * v(i0 + 1, j0 + 1))
    }

    /// The mean of the grid on the circle of `radius` around the origin: bilinear interpolation
    /// at `angles` evenly spaced angles (starting at 0), averaged.
    pub fn ring_mean(&self, radius: f64, angles: usize) -> f64 {
        let vals: Vec<f64> = (0..angles)
            .map(|a| {
                let t = 2.0 * std::f64::consts::PI * a as f64 / angles as f64;
                self.interpolate(radius * t.cos(), radius * t.sin())
            })
            .collect();
        mean(&vals)
    }
}

/// The two-sided 95 % quantile of Student's t distribution with `df` degrees of freedom,
/// `t_{0.975, df}`: exact to three decimals from a table up to 30, then `1.96 + 2.5 / df`
/// (within 0.002 of the exact value beyond 30). NaN for `df = 0`.
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => 1.96 + 2.5 / df as f64,
    }
}

/// The sample standard deviation (divisor `n − 1`); NaN for fewer than two values.
pub fn std_dev(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// `mean ± half` in the criteria's number format, or the mean alone where the half-width is
/// not finite (one seed gives no interval).
pub fn describe_ci95(x: &[f64]) -> String {
    let (m, h) = mean_ci95(x);
    if h.is_finite() {
        format!(
            "{} ± {}",
            crate::numbers::criterion(m),
            crate::numbers::criterion(h)
        )
    } else {
        crate::numbers::criterion(m)
    }
}

/// The mean with the half-width of its 95 % confidence interval (Student's t): the interval is
/// `mean ± half`. The half-width is NaN for fewer than two values, and the mean NaN when any
/// value is (a diverged run is not silently dropped).
pub fn mean_ci95(x: &[f64]) -> (f64, f64) {
    if x.iter().any(|v| v.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    let half = t975(x.len().saturating_sub(1)) * std_dev(x) / (x.len() as f64).sqrt();
    (mean(x), half)
}

#[cfg(test)]
mod tests {
    use super::describe_ci95;

    #[test]
    fn one_seed_prints_the_mean_without_an_interval() {
        assert_eq!(describe_ci95(&[0.0883]), "0.0883");
        assert!(describe_ci95(&[1.0, 2.0, 3.0]).contains(" ± "));
        // A diverged run is not hidden: the mean is NaN.
        assert!(describe_ci95(&[1.0, f64::NAN]).contains("NaN"));
    }
}
