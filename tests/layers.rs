//! The layer rules of DESIGN.md, checked by reading `use` lines and paths in the sources.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

fn mentions(text: &str, krate: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        !l.starts_with("//")
            && (l.contains(&format!("use {krate}::"))
                || l.contains(&format!("{krate}::"))
                || l.contains(&format!("use {krate};")))
    })
}

fn check(module: &str, forbidden: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut files = Vec::new();
    sources(&root, &mut files);
    if root.with_extension("rs").is_file() {
        let p = root.with_extension("rs");
        files.push((
            p.display().to_string(),
            std::fs::read_to_string(&p).unwrap(),
        ));
    }
    for (path, text) in files {
        for f in forbidden {
            assert!(
                !mentions(&text, f),
                "{path} uses {f}, which the layer rules forbid"
            );
        }
    }
}

#[test]
fn plain_data_modules_import_neither_burn_nor_egui() {
    for m in ["spec", "metrics", "runfile"] {
        check(
            m,
            &[
                "burn",
                "egui",
                "eframe",
                "crate::ui",
                "crate::model",
                "crate::train",
            ],
        );
    }
}

#[test]
fn engine_modules_never_import_egui_or_the_ui() {
    for m in ["model", "train", "data", "experiments", "cli"] {
        check(m, &["egui", "eframe", "crate::ui"]);
    }
}

#[test]
fn model_and_data_do_not_reach_up_the_stack() {
    check(
        "model",
        &[
            "crate::train",
            "crate::data",
            "crate::metrics",
            "crate::cli",
        ],
    );
    check(
        "data",
        &[
            "crate::model",
            "crate::train",
            "crate::metrics",
            "crate::cli",
            "burn",
        ],
    );
}

#[test]
fn experiments_build_on_the_engine_and_not_on_the_front_ends() {
    // DESIGN.md: experiments -> {model, train, data, metrics, spec} (and runfile, whose
    // RunFile records the runs an experiment made); never the CLI or the UI.
    check(
        "experiments",
        &["crate::cli", "crate::ui", "egui", "eframe", "rfd"],
    );
}
