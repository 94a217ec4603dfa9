//! Test-time shifts, each against a hand computation.

use reslab::data::shift::{Shift, ShiftClass, ShiftKind};
use reslab::spec::Shape;

fn shifted(kind: ShiftKind, strength: f32, x: &[f32], shape: Shape) -> Vec<f32> {
    let mut y = x.to_vec();
    Shift { kind, strength }.apply(&mut y, shape, 7);
    y
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-5, "value {i}: {x} vs {y}\n{a:?}\n{b:?}");
    }
}

/// Two 1×2×2 images: [0, 0.2, 0.4, 1] and [0.5, 0.5, 0.5, 0.9].
const TWO: [f32; 8] = [0.0, 0.2, 0.4, 1.0, 0.5, 0.5, 0.5, 0.9];
const SHAPE: Shape = Shape::Image(1, 2, 2);

#[test]
fn brightness_contrast_and_inversion_are_one_map_for_every_image() {
    close(
        &shifted(ShiftKind::Scale, 0.5, &TWO, SHAPE),
        &[0.0, 0.1, 0.2, 0.5, 0.25, 0.25, 0.25, 0.45],
    );
    close(
        &shifted(ShiftKind::Brightness, 0.3, &TWO, SHAPE),
        &[0.3, 0.5, 0.7, 1.3, 0.8, 0.8, 0.8, 1.2],
    );
    // 0.5 + 2·(x − 0.5)
    close(
        &shifted(ShiftKind::Contrast, 2.0, &TWO, SHAPE),
        &[-0.5, -0.1, 0.3, 1.5, 0.5, 0.5, 0.5, 1.3],
    );
    close(
        &shifted(ShiftKind::Invert, 1.0, &TWO, SHAPE),
        &[1.0, 0.8, 0.6, 0.0, 0.5, 0.5, 0.5, 0.1],
    );
    close(&shifted(ShiftKind::Invert, 0.0, &TWO, SHAPE), &TWO);
    for k in [
        ShiftKind::Scale,
        ShiftKind::Brightness,
        ShiftKind::Contrast,
        ShiftKind::Invert,
        ShiftKind::Tint,
    ] {
        assert_eq!(k.class(), ShiftClass::GlobalAffine, "{k:?}");
    }
}

#[test]
fn image_contrast_keeps_each_images_own_mean() {
    // Means 0.4 and 0.6; 0.4 + 0.5·(x − 0.4), 0.6 + 0.5·(x − 0.6).
    close(
        &shifted(ShiftKind::ImageContrast, 0.5, &TWO, SHAPE),
        &[0.2, 0.3, 0.4, 0.7, 0.55, 0.55, 0.55, 0.75],
    );
    assert_eq!(ShiftKind::ImageContrast.class(), ShiftClass::PerImageAffine);
}

#[test]
fn image_gain_changes_each_images_contrast_by_its_own_gain() {
    // Image k keeps its mean μ_k and becomes μ_k + g_k·(x − μ_k): one gain per image, read back
    // from any pixel off the mean, inside [s, 1/s].
    let n = 400;
    let x: Vec<f32> = (0..n).flat_map(|_| TWO[..4].to_vec()).collect();
    let y = shifted(ShiftKind::ImageGain, 0.25, &x, SHAPE);
    let mut logs = Vec::new();
    for (a, b) in x.chunks_exact(4).zip(y.chunks_exact(4)) {
        let mean = |v: &[f32]| v.iter().sum::<f32>() / 4.0;
        let mu = mean(a);
        assert!((mean(b) - mu).abs() < 1e-5, "the mean moved: {a:?} → {b:?}");
        let g = (b[3] - mu) / (a[3] - mu);
        assert!((0.25 - 1e-5..=4.0 + 1e-4).contains(&g), "gain {g}");
        let expect: Vec<f32> = a.iter().map(|v| mu + g * (v - mu)).collect();
        close(b, &expect);
        logs.push(g.ln());
    }
    // Log-uniform on [ln 0.25, ln 4]: mean 0, spread ln 4 / √3 = 0.80; the gains differ.
    let mean = logs.iter().sum::<f32>() / n as f32;
    let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / n as f32).sqrt();
    assert!(mean.abs() < 0.1, "mean log gain {mean}");
    assert!((sd - 4f32.ln() / 3f32.sqrt()).abs() < 0.08, "spread {sd}");
    // Seeded: the same draws again, other draws under another seed; strength 1 changes nothing.
    assert_eq!(y, shifted(ShiftKind::ImageGain, 0.25, &x, SHAPE));
    let mut other = x.clone();
    Shift {
        kind: ShiftKind::ImageGain,
        strength: 0.25,
    }
    .apply(&mut other, SHAPE, 8);
    assert_ne!(y, other);
    close(&shifted(ShiftKind::ImageGain, 1.0, &x, SHAPE), &x);
    assert_eq!(ShiftKind::ImageGain.class(), ShiftClass::PerImageAffine);
    assert!(Shift::parse("image-gain:0").is_err());
    assert!(Shift::parse("image-gain:1.5").is_err());
}

#[test]
fn tint_scales_the_first_channel_up_and_the_last_down() {
    // One 3×1×1 image [0.5, 0.5, 0.5]: gains 1 + 0.2·(1, 0, −1).
    close(
        &shifted(
            ShiftKind::Tint,
            0.2,
            &[0.5, 0.5, 0.5],
            Shape::Image(3, 1, 1),
        ),
        &[0.6, 0.5, 0.4],
    );
    // One channel: a gain of 1 + s.
    close(
        &shifted(ShiftKind::Tint, 0.2, &[0.5, 1.0], Shape::Image(1, 1, 2)),
        &[0.6, 1.2],
    );
}

#[test]
fn translation_moves_pixels_right_and_down_repeating_the_edge() {
    // A 1×3×3 image 1..9 moved by one pixel; the top row and left column coming in repeat
    // the nearest edge pixel.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    close(
        &shifted(ShiftKind::Translate, 1.0, &x, Shape::Image(1, 3, 3)),
        &[1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 4.0, 4.0, 5.0],
    );
    // Moved back up by one: the bottom row and right column repeat.
    close(
        &shifted(ShiftKind::Translate, -1.0, &x, Shape::Image(1, 3, 3)),
        &[5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0],
    );
    close(
        &shifted(ShiftKind::Translate, 0.0, &x, Shape::Image(1, 3, 3)),
        &x,
    );
    assert_eq!(ShiftKind::Translate.class(), ShiftClass::Geometric);
}

#[test]
fn rotation_by_90_degrees_turns_the_image_counter_clockwise() {
    // 1 2 3        3 6 9
    // 4 5 6   ->   2 5 8
    // 7 8 9        1 4 7
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let shape = Shape::Image(1, 3, 3);
    close(
        &shifted(ShiftKind::Rotate, 90.0, &x, shape),
        &[3.0, 6.0, 9.0, 2.0, 5.0, 8.0, 1.0, 4.0, 7.0],
    );
    close(&shifted(ShiftKind::Rotate, 0.0, &x, shape), &x);
    close(&shifted(ShiftKind::Rotate, 360.0, &x, shape), &x);
    // 45°: the centre stays; the top-left output pixel samples the input at x = 1,
    // y = 1 − √2 ≈ −0.414, between the edge pixel repeated above the grid (2) and the 2
    // below it: 2. The top-middle one samples x = 1 + 1/√2 ≈ 1.707, y = 1 − 1/√2 ≈ 0.293:
    // rows 0 and 1 between columns 1 and 2, 2.707·0.707 + 5.707·0.293 ≈ 3.586.
    let r = shifted(ShiftKind::Rotate, 45.0, &x, shape);
    assert!((r[4] - 5.0).abs() < 1e-5, "{r:?}");
    assert!((r[0] - 2.0).abs() < 1e-4, "{r:?}");
    let (fx, fy) = (1.0 / 2f32.sqrt(), 1.0 - 1.0 / 2f32.sqrt());
    let top = 2.0 + fx;
    let middle = 5.0 + fx;
    assert!(
        (r[1] - (top * (1.0 - fy) + middle * fy)).abs() < 1e-4,
        "{r:?}"
    );
}

#[test]
fn noises_are_seeded_and_as_strong_as_asked() {
    let x = vec![0.5f32; 20_000];
    let shape = Shape::Image(1, 100, 200);
    let a = shifted(ShiftKind::GaussianNoise, 0.1, &x, shape);
    assert_eq!(
        a,
        shifted(ShiftKind::GaussianNoise, 0.1, &x, shape),
        "seeded"
    );
    let mean = a.iter().sum::<f32>() / a.len() as f32;
    let sd = (a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32).sqrt();
    assert!(
        (mean - 0.5).abs() < 0.005 && (sd - 0.1).abs() < 0.005,
        "{mean} {sd}"
    );
    let b = shifted(ShiftKind::ImpulseNoise, 0.2, &x, shape);
    let hit = b.iter().filter(|&&v| v != 0.5).count() as f32 / b.len() as f32;
    assert!((hit - 0.2).abs() < 0.01, "{hit}");
    assert!(b.iter().all(|&v| v == 0.5 || v == 0.0 || v == 1.0));
    // Impulse noise hits all channels of a pixel together.
    let rgb = shifted(
        ShiftKind::ImpulseNoise,
        0.5,
        &[0.5; 300],
        Shape::Image(3, 10, 10),
    );
    for p in 0..100 {
        assert!(rgb[p] == rgb[100 + p] && rgb[p] == rgb[200 + p]);
    }
}

#[test]
fn shifts_parse_from_kind_and_strength_and_errors_say_what_is_wrong() {
    assert_eq!(
        Shift::parse("rotate:15").unwrap(),
        Shift {
            kind: ShiftKind::Rotate,
            strength: 15.0
        }
    );
    for k in ShiftKind::ALL {
        assert_eq!(Shift::parse(&format!("{}:0.5", k.name())).unwrap().kind, k);
    }
    let err = |s: &str| Shift::parse(s).unwrap_err();
    assert!(
        err("blur:1").contains("unknown shift \"blur\"") && err("blur:1").contains("brightness")
    );
    assert!(err("brightness").contains("KIND:STRENGTH"));
    assert!(err("noise:abc").contains("not a finite number"));
    assert!(err("noise:NaN").contains("not a finite number"));
    assert!(err("impulse:2").contains("outside [0, 1]"));
}
