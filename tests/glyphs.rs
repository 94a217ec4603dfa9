//! Every character the window can show has a glyph in the window's fonts (issue 23: "→" drew as
//! an empty box). Scans the string literals of the code that puts text on screen (the lab, the
//! views' figures, the experiments' protocols and notes) and the panels' figures of the shipped
//! runs, and looks each non-ASCII character up in the fonts `reslab::ui::fonts` gives egui.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The non-ASCII characters inside string literals of a source file (comments skipped).
fn literal_chars(text: &str) -> BTreeSet<char> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut inside = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                inside = !inside;
            } else if inside && !c.is_ascii() {
                out.insert(c);
            }
            prev = c;
        }
    }
    out
}

#[test]
fn every_character_on_screen_has_a_glyph() {
    use ab_glyph::Font;
    // The proportional family of the window's fonts, in fallback order.
    let defs = reslab::ui::fonts();
    let fonts: Vec<ab_glyph::FontVec> = defs.families[&egui::FontFamily::Proportional]
        .iter()
        .map(|name| {
            ab_glyph::FontVec::try_from_vec((*defs.font_data[name].font).as_ref().to_vec()).unwrap()
        })
        .collect();
    let covered = |c: char| fonts.iter().any(|f| f.glyph_id(c).0 != 0);
    let mut chars = BTreeSet::new();
    let mut files = Vec::new();
    for dir in ["src/ui", "src/views", "src/experiments", "src/figure"] {
        rs_files(&root().join(dir), &mut files);
    }
    for f in &files {
        chars.extend(literal_chars(&std::fs::read_to_string(f).unwrap()));
    }
    let missing: Vec<char> = chars.iter().copied().filter(|&c| !covered(c)).collect();
    assert!(
        missing.is_empty(),
        "no glyph for {missing:?} (U+{:04X}…) in the window's fonts",
        missing.first().map_or(0, |&c| c as u32)
    );
    assert!(
        chars.contains(&'→') && covered('→'),
        "the arrow the issue found"
    );
}

/// Text people read is at body size (issue 23: captions and notes ≥ 12 px): no `RichText` in the
/// window is made small; small buttons (`small_button`, `Button::…small()`) stay allowed.
#[test]
fn no_text_in_the_window_is_small() {
    let mut files = Vec::new();
    rs_files(&root().join("src/ui"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut joined = String::new();
        for line in text.lines() {
            joined.push_str(line.trim());
        }
        for (i, _) in joined.match_indices(".small()") {
            let before = &joined[..i];
            let button = before
                .rfind("Button::new(")
                .is_some_and(|b| !before[b..].contains(';'));
            if !button {
                found.push(format!(
                    "{}: …{}",
                    f.display(),
                    &before[before.len().saturating_sub(60)..]
                ));
            }
        }
    }
    assert!(found.is_empty(), "small text:\n{}", found.join("\n"));
}
