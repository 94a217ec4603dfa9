//! Contour lines of a heatmap figure (marching squares), in grid coordinates.

/// A contour line piece in grid coordinates (`i` along x, `j` along y).
pub type Segment = ([f64; 2], [f64; 2]);

/// Marching squares: for each level, the line segments where the bilinear interpolation of the
/// `ny × nx` grid (row-major, `values[j * nx + i]`) crosses the level, in grid coordinates.
/// Saddle cells are split by the cell's mean value.
pub fn contour_segments(
    values: &[f64],
    nx: usize,
    ny: usize,
    levels: &[f64],
) -> Vec<(f64, Vec<Segment>)> {
    let mut out = Vec::new();
    if nx < 2 || ny < 2 || values.len() != nx * ny {
        return out;
    }
    for &level in levels {
        let mut segs = Vec::new();
        for j in 0..ny - 1 {
            for i in 0..nx - 1 {
                // Corners counter-clockwise from bottom-left.
                let c = [
                    (i as f64, j as f64, values[j * nx + i]),
                    ((i + 1) as f64, j as f64, values[j * nx + i + 1]),
                    ((i + 1) as f64, (j + 1) as f64, values[(j + 1) * nx + i + 1]),
                    (i as f64, (j + 1) as f64, values[(j + 1) * nx + i]),
                ];
                if c.iter().any(|p| !p.2.is_finite()) {
                    continue;
                }
                // Crossing points on the four edges.
                let mut pts = Vec::with_capacity(4);
                for e in 0..4 {
                    let (a, b) = (c[e], c[(e + 1) % 4]);
                    if (a.2 < level) != (b.2 < level) {
                        let t = (level - a.2) / (b.2 - a.2);
                        pts.push([a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)]);
                    }
                }
                match pts.len() {
                    2 => segs.push((pts[0], pts[1])),
                    4 => {
                        let centre = c.iter().map(|p| p.2).sum::<f64>() / 4.0;
                        let above0 = c[0].2 >= level;
                        // Which pairs join depends on whether the centre is on the side of
                        // corner 0.
                        if (centre >= level) == above0 {
                            segs.push((pts[0], pts[1]));
                            segs.push((pts[2], pts[3]));
                        } else {
                            segs.push((pts[3], pts[0]));
                            segs.push((pts[1], pts[2]));
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push((level, segs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::contour_segments;

    #[test]
    fn a_contour_of_a_linear_ramp_is_a_straight_line_at_the_right_place() {
        // values = x on a 3 × 2 grid: the level 0.5 crosses each row at x = 0.5.
        let v = [0.0, 1.0, 2.0, 0.0, 1.0, 2.0];
        let c = contour_segments(&v, 3, 2, &[0.5]);
        assert_eq!(c.len(), 1);
        let segs = &c[0].1;
        assert_eq!(segs.len(), 1);
        let (a, b) = segs[0];
        assert!((a[0] - 0.5).abs() < 1e-12 && (b[0] - 0.5).abs() < 1e-12);
        let ys = [a[1].min(b[1]), a[1].max(b[1])];
        assert_eq!(ys, [0.0, 1.0]);
    }

    #[test]
    fn a_level_outside_the_values_has_no_contour() {
        let v = [0.0, 1.0, 2.0, 3.0];
        assert!(contour_segments(&v, 2, 2, &[5.0])[0].1.is_empty());
    }
}
