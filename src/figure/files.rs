//! Writing a picture of figures to disk with its data beside it: `<stem>.png` and/or
//! `<stem>.svg` and `<stem>.csv`, under the next free number (`<stem>-2.png`, …) instead of
//! overwriting anything, each file created new and atomically (never through a symlink).

use super::Figure;
use super::csv::to_csv;
use super::draw::{Format, render};
use std::path::{Path, PathBuf};

/// Numbered names tried at most before giving up.
const MAX_NUMBER: usize = 10_000;

/// Draws `figures` under `title` at `size` in each of `formats` and writes them with the CSV of
/// their data under the first free name `stem`, `stem-2`, … in `dir` (created if missing).
/// Returns the files written.
pub fn write_pictures(
    dir: &Path,
    stem: &str,
    title: &str,
    figures: &[Figure],
    size: (u32, u32),
    formats: &[Format],
) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for &f in formats {
        let ext = match f {
            Format::Svg => "svg",
            Format::Png => "png",
        };
        files.push((ext, render(title, figures, size, f)?));
    }
    files.push(("csv", to_csv(figures).into_bytes()));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for n in 1..=MAX_NUMBER {
        let name = if n == 1 {
            stem.to_string()
        } else {
            format!("{stem}-{n}")
        };
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(ext, _)| dir.join(format!("{name}.{ext}")))
            .collect();
        if paths.iter().any(|p| p.symlink_metadata().is_ok()) {
            continue;
        }
        return write_all(&paths, &files);
    }
    Err(format!(
        "{}: {stem}-2 to {stem}-{MAX_NUMBER} are all taken",
        dir.display()
    ))
}

/// Writes each file new; a file that appeared meanwhile is an error naming it.
fn write_all(paths: &[PathBuf], files: &[(&str, Vec<u8>)]) -> Result<Vec<PathBuf>, String> {
    for (path, (_, bytes)) in paths.iter().zip(files) {
        crate::safe_fs::write_new_atomic(path, bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(paths.to_vec())
}

/// A picture size from `WxH` (e.g. `1600x1000`), within [`super::draw::SIZE_LIMITS`].
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let [lo, hi] = super::draw::SIZE_LIMITS;
    let bad = || format!("size \"{s}\" must be WIDTHxHEIGHT in pixels, each {lo} to {hi}");
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if (lo..=hi).contains(&w) && (lo..=hi).contains(&h) {
        Ok((w, h))
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::LineSeries;

    #[test]
    fn sizes_parse_within_limits() {
        assert_eq!(parse_size("1600x1000"), Ok((1600, 1000)));
        assert_eq!(parse_size("800×600"), Ok((800, 600)));
        for bad in ["", "1600", "0x100", "100x9000", "ax b", "-5x300"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_second_picture_takes_the_next_number() {
        let dir = std::env::temp_dir().join(format!("reslab-figfiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let fig = Figure::lines("t", "x", "y", vec![LineSeries::new("a", vec![[0.0, 1.0]])]);
        let size = (300, 200);
        let first = write_pictures(
            &dir,
            "p",
            "T",
            std::slice::from_ref(&fig),
            size,
            &[Format::Svg],
        )
        .unwrap();
        let second = write_pictures(&dir, "p", "T", &[fig], size, &[Format::Svg]).unwrap();
        assert_eq!(first, [dir.join("p.svg"), dir.join("p.csv")]);
        assert_eq!(second, [dir.join("p-2.svg"), dir.join("p-2.csv")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
