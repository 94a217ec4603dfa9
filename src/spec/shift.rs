//! Test-time distribution shifts as plain data: what a shift is, its strength, how it is
//! written (`KIND:STRENGTH`) and what kind of change it is. `data::shift` applies them.

use serde::{Deserialize, Serialize};

/// A kind of shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftKind {
    /// `s·x`: dimmer (s < 1) or brighter, the dark background staying dark.
    Scale,
    /// `x + s`.
    Brightness,
    /// `0.5 + s·(x − 0.5)`: one contrast change for every image.
    Contrast,
    /// `μ + s·(x − μ)` with μ each image's own mean: lifts a dark background unevenly.
    ImageContrast,
    /// `μ + g·(x − μ)` with μ each image's own mean and a gain `g` drawn for each image,
    /// log-uniform between `s` and `1/s` (0 < s ≤ 1), seeded: the contrast changes by a
    /// different amount in every image and, in the geometric mean, not at all.
    ImageGain,
    /// Channel `k` of `c` scaled by `1 + s·(1 − 2k/(c − 1))` (warmer for s > 0; one channel:
    /// `1 + s`).
    Tint,
    /// `x + N(0, s²)` per value, seeded.
    GaussianNoise,
    /// A fraction `s` of the pixels (all channels) set to 0 or 1 at random, seeded.
    ImpulseNoise,
    /// `(1 − s)·x + s·(1 − x)`: s = 1 inverts.
    Invert,
    /// Moved `round(s)` pixels right and down; the pixels coming in repeat the nearest edge
    /// pixel (the background, for digits), so that pixels move and no colour changes.
    Translate,
    /// Rotated by `s` degrees (counter-clockwise) about the centre, bilinear; outside the
    /// image the nearest edge pixel, as for translation.
    Rotate,
}

/// What kind of change a shift is, for the question of what test-time normalisation undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShiftClass {
    /// One affine map (per channel) for every image: batch statistics can undo it.
    GlobalAffine,
    /// An affine map that differs per image: per-sample normalisation can undo it.
    PerImageAffine,
    /// Random noise.
    Noise,
    /// Pixels move.
    Geometric,
}

impl ShiftKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [ShiftKind; 11] = [
        ShiftKind::Scale,
        ShiftKind::Brightness,
        ShiftKind::Contrast,
        ShiftKind::ImageContrast,
        ShiftKind::ImageGain,
        ShiftKind::Tint,
        ShiftKind::GaussianNoise,
        ShiftKind::ImpulseNoise,
        ShiftKind::Invert,
        ShiftKind::Translate,
        ShiftKind::Rotate,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ShiftKind::Scale => "scale",
            ShiftKind::Brightness => "brightness",
            ShiftKind::Contrast => "contrast",
            ShiftKind::ImageContrast => "image-contrast",
            ShiftKind::ImageGain => "image-gain",
            ShiftKind::Tint => "tint",
            ShiftKind::GaussianNoise => "noise",
            ShiftKind::ImpulseNoise => "impulse",
            ShiftKind::Invert => "invert",
            ShiftKind::Translate => "translate",
            ShiftKind::Rotate => "rotate",
        }
    }

    /// What kind of change it is.
    pub fn class(self) -> ShiftClass {
        match self {
            ShiftKind::Scale
            | ShiftKind::Brightness
            | ShiftKind::Contrast
            | ShiftKind::Tint
            | ShiftKind::Invert => ShiftClass::GlobalAffine,
            ShiftKind::ImageContrast | ShiftKind::ImageGain => ShiftClass::PerImageAffine,
            ShiftKind::GaussianNoise | ShiftKind::ImpulseNoise => ShiftClass::Noise,
            ShiftKind::Translate | ShiftKind::Rotate => ShiftClass::Geometric,
        }
    }
}

/// A shift and its strength.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shift {
    /// Which.
    pub kind: ShiftKind,
    /// How much (see [`ShiftKind`]).
    pub strength: f32,
}

impl Shift {
    /// Parses `KIND:STRENGTH`, e.g. `brightness:0.3`, `rotate:15`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Shift, String> {
        let names = || {
            ShiftKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("\"{text}\": a shift is KIND:STRENGTH, e.g. brightness:0.3"))?;
        let kind = ShiftKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| format!("unknown shift \"{name}\"; shifts: {}", names()))?;
        let strength: f32 = value
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite())
            .ok_or_else(|| format!("{name}: strength \"{value}\" is not a finite number"))?;
        let bounded = |lo: f32, hi: f32| {
            if (lo..=hi).contains(&strength) {
                Ok(())
            } else {
                Err(format!(
                    "{name}: strength {strength} is outside [{lo}, {hi}]"
                ))
            }
        };
        match kind {
            ShiftKind::ImpulseNoise | ShiftKind::Invert => bounded(0.0, 1.0)?,
            ShiftKind::ImageGain => bounded(0.01, 1.0)?,
            ShiftKind::GaussianNoise => bounded(0.0, 10.0)?,
            ShiftKind::Translate => bounded(-64.0, 64.0)?,
            ShiftKind::Rotate => bounded(-360.0, 360.0)?,
            _ => bounded(-10.0, 10.0)?,
        }
        Ok(Shift { kind, strength })
    }

    /// The written form, `KIND:STRENGTH`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind.name(), self.strength)
    }
}

impl TryFrom<String> for Shift {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Shift::parse(&text)
    }
}

impl From<Shift> for String {
    fn from(s: Shift) -> String {
        s.label()
    }
}
