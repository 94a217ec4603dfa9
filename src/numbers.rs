//! How numbers are written for people, in one place: the panels, the status line, the
//! designer's totals and the experiments' criterion text all go through here. A leaf module:
//! it imports nothing of the crate, so every layer may use it (docs/ARCHITECTURE.md).

/// How many digits [`format`] keeps. Both precisions write fixed-point for
/// 10⁻³ ≤ |v| < 10⁴ with three significant digits, scientific notation outside, and `0`, `NaN`,
/// `inf`, `-inf` as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision {
    /// The most decimals in fixed-point notation.
    pub max_decimals: usize,
    /// Decimals of the mantissa in scientific notation.
    pub exp_decimals: usize,
}

impl Precision {
    /// Three significant digits everywhere (`0.00123`, `12.3`, `1.23e-4`): plots, hover text,
    /// the status line.
    pub const DISPLAY: Precision = Precision {
        max_decimals: 6,
        exp_decimals: 2,
    };
    /// The experiments' criterion text, which experiment files and the README's table keep:
    /// at most four decimals, four digits in scientific notation (`0.0012`, `1.234e-4`).
    pub const CRITERION: Precision = Precision {
        max_decimals: 4,
        exp_decimals: 3,
    };
}

/// Writes `v` with the given precision (see [`Precision`]).
pub fn format(v: f64, p: Precision) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return format!("{v:.0}");
    }
    let a = v.abs();
    if (1e-3..1e4).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, p.max_decimals as i32) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.*e}", p.exp_decimals)
    }
}

/// `v` to three significant digits ([`Precision::DISPLAY`]).
pub fn sig(v: f64) -> String {
    format(v, Precision::DISPLAY)
}

/// `v` as criterion text ([`Precision::CRITERION`]).
pub fn criterion(v: f64) -> String {
    format(v, Precision::CRITERION)
}

/// `n` and the noun, singular for one: `1 skip`, `0 skips`, `3 skips` (regular English plurals).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A count with an SI suffix: `950`, `12.3k`, `4.57M`, `1.2G` (parameters, FLOPs).
pub fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.1}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(super::count(1, "skip"), "1 skip");
        assert_eq!(super::count(0, "skip"), "0 skips");
        assert_eq!(super::count(12, "layer"), "12 layers");
    }

    use super::*;

    #[test]
    fn display_keeps_three_significant_digits() {
        assert_eq!(sig(0.012345), "0.0123");
        assert_eq!(sig(0.0012345), "0.00123");
        assert_eq!(sig(123.456), "123");
        assert_eq!(sig(1234.5), "1234");
        assert_eq!(sig(1.5e-7), "1.50e-7");
        assert_eq!(sig(0.0), "0");
        assert_eq!(sig(f64::NAN), "NaN");
        assert_eq!(sig(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn criterion_text_keeps_its_format() {
        assert_eq!(criterion(0.0012345), "0.0012");
        assert_eq!(criterion(0.97), "0.970");
        assert_eq!(criterion(19.34), "19.3");
        assert_eq!(criterion(12345.0), "1.234e4");
        assert_eq!(criterion(6e-8), "6.000e-8");
        assert_eq!(criterion(0.0), "0");
        assert_eq!(criterion(f64::INFINITY), "inf");
    }

    #[test]
    fn counts_get_si_suffixes() {
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(4_567_000.0), "4.57M");
        assert_eq!(si(1.2e9), "1.2G");
    }
}
