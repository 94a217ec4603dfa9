//! The layer rules of `docs/ARCHITECTURE.md`, checked against the sources. The allow-list is
//! read from the page itself (one source of truth): every module has a row, every reslab module
//! and crate a module's code names is in its row, and every entry of a row is still used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One row of the allow-list.
#[derive(Debug, Default)]
struct Allowed {
    modules: BTreeSet<String>,
    crates: BTreeSet<String>,
}

/// The backticked names in a table cell.
fn names(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The lines of the page between `<!-- {marker}` and `<!-- /{marker}`.
fn section(doc: &str, marker: &str) -> Vec<String> {
    let open = format!("<!-- {marker}");
    let close = format!("<!-- /{marker}");
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&open))
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no `{open}` section"));
    let end = lines
        .iter()
        .position(|l| l.starts_with(&close))
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no `{close}`"));
    lines[start + 1..end]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The allow-list: module → what it may import; the `*` row is what every module may use.
fn allow_list() -> BTreeMap<String, Allowed> {
    let doc = read(&root().join("docs/ARCHITECTURE.md"));
    let mut out = BTreeMap::new();
    for line in section(&doc, "allow-list") {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() != 3 {
            continue;
        }
        let module = names(cells[0]);
        let Some(module) = module.into_iter().next() else {
            continue; // the header and its rule
        };
        let row = Allowed {
            modules: names(cells[1]),
            crates: names(cells[2]),
        };
        assert!(
            out.insert(module.clone(), row).is_none(),
            "docs/ARCHITECTURE.md lists `{module}` twice"
        );
    }
    out
}

/// The library's top-level modules (`src/x.rs` or `src/x/`) and `main` (the binary).
fn modules() -> BTreeSet<String> {
    let mut out = BTreeSet::from(["main".to_string()]);
    for e in std::fs::read_dir(root().join("src")).unwrap().flatten() {
        let p = e.path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir()
            || (p.extension().is_some_and(|x| x == "rs") && stem != "lib" && stem != "main")
        {
            out.insert(stem);
        }
    }
    out
}

/// The crates of `[dependencies]` in `Cargo.toml`, as code names them (`-` becomes `_`).
fn dependencies() -> BTreeSet<String> {
    let toml = read(&root().join("Cargo.toml"));
    let mut inside = false;
    let mut out = BTreeSet::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && let Some((name, _)) = line.split_once('=') {
            out.insert(name.trim().replace('-', "_"));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source files of a module.
fn files_of(module: &str) -> Vec<PathBuf> {
    let src = root().join("src");
    let mut out = Vec::new();
    let dir = src.join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut out);
    }
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    out
}

/// The code lines of a file (comment lines dropped).
fn code(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
}

/// Whether `line` names the path `prefix::` (e.g. `crate::spec::`, `burn::`) as a path of its
/// own: not as the tail of a longer one (`eframe::egui::` does not name `egui`).
fn names_path(line: &str, prefix: &str) -> bool {
    let pat = format!("{prefix}::");
    line.match_indices(&pat).any(|(i, _)| {
        line[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    }) || line.contains(&format!("use {prefix};"))
}

/// The first path segments inside each `{prefix}::{ ... }` group (`use crate::{spec, data::X}`
/// names `spec` and `data`), over several lines if rustfmt split the group.
fn grouped(text: &str, prefix: &str) -> BTreeSet<String> {
    let pat = format!("{prefix}::{{");
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(&pat) {
        let (mut depth, mut at_start, mut ident) = (0usize, true, String::new());
        let mut finish = |ident: &mut String| {
            if !ident.is_empty() {
                out.insert(std::mem::take(ident));
            }
        };
        for c in text[i + pat.len()..].chars() {
            match c {
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    finish(&mut ident);
                    at_start = true;
                }
                c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => ident.push(c),
                c if c.is_whitespace() && ident.is_empty() => {}
                c => {
                    finish(&mut ident);
                    at_start = false;
                    if c == '{' {
                        depth += 1;
                    }
                }
            }
        }
        finish(&mut ident);
    }
    out
}

/// What a module's code imports: reslab modules and crates, each with a file that names it.
fn used_by(module: &str, all: &BTreeSet<String>, deps: &BTreeSet<String>) -> Used {
    let own = if module == "main" { "reslab" } else { "crate" };
    let mut used = Used::default();
    for path in files_of(module) {
        let text = read(&path);
        let text: Vec<&str> = code(&text).collect();
        let text = text.join("\n");
        let shown = path.strip_prefix(root()).unwrap().display().to_string();
        let group = grouped(&text, own);
        for m in all.iter().filter(|m| *m != module) {
            if names_path(&text, &format!("{own}::{m}")) || group.contains(m) {
                used.modules
                    .entry(m.clone())
                    .or_insert_with(|| shown.clone());
            }
        }
        for c in deps {
            if names_path(&text, c) {
                used.crates
                    .entry(c.clone())
                    .or_insert_with(|| shown.clone());
            }
        }
    }
    used
}

#[derive(Default)]
struct Used {
    modules: BTreeMap<String, String>,
    crates: BTreeMap<String, String>,
}

#[test]
fn every_module_imports_exactly_what_the_architecture_page_allows() {
    let list = allow_list();
    let all = modules();
    let deps = dependencies();
    let listed: BTreeSet<String> = list.keys().filter(|k| *k != "*").cloned().collect();
    assert_eq!(
        listed, all,
        "docs/ARCHITECTURE.md's allow-list must have one row per module of src/ (and `main`)"
    );
    let everywhere = &list.get("*").expect("a `*` row").crates;
    let mut problems = Vec::new();
    for m in &all {
        let row = &list[m];
        let used = used_by(m, &all, &deps);
        for (dep, file) in &used.modules {
            if !row.modules.contains(dep) {
                problems.push(format!(
                    "{file} imports `{dep}`, which `{m}`'s row does not allow"
                ));
            }
        }
        for (c, file) in &used.crates {
            if !row.crates.contains(c) && !everywhere.contains(c) {
                problems.push(format!(
                    "{file} uses the crate `{c}`, which `{m}`'s row does not allow"
                ));
            }
        }
        for dep in row
            .modules
            .difference(&used.modules.keys().cloned().collect())
        {
            problems.push(format!(
                "`{m}`'s row allows `{dep}`, which it no longer imports"
            ));
        }
        for c in row
            .crates
            .difference(&used.crates.keys().cloned().collect())
        {
            problems.push(format!(
                "`{m}`'s row allows the crate `{c}`, which it no longer uses"
            ));
        }
        for c in &row.crates {
            assert!(
                deps.contains(c),
                "`{m}`'s row names `{c}`, not a dependency"
            );
        }
    }
    assert!(
        problems.is_empty(),
        "the code and docs/ARCHITECTURE.md disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_allowed_arrows_have_no_cycle() {
    let list = allow_list();
    // Peel off modules whose allowed imports are all peeled already; a cycle is what remains.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let next: Vec<&str> = list
            .iter()
            .filter(|(m, _)| !done.contains(m.as_str()))
            .filter(|(_, row)| row.modules.iter().all(|d| done.contains(d.as_str())))
            .map(|(m, _)| m.as_str())
            .collect();
        if next.is_empty() {
            break;
        }
        done.extend(next);
    }
    let left: Vec<&String> = list.keys().filter(|m| !done.contains(m.as_str())).collect();
    assert!(
        left.is_empty(),
        "the allowed arrows form a cycle among {left:?}"
    );
}

#[test]
fn the_plain_logic_files_of_the_ui_use_no_egui() {
    let doc = read(&root().join("docs/ARCHITECTURE.md"));
    let files: Vec<String> = section(&doc, "no-egui")
        .iter()
        .filter_map(|l| names(l).into_iter().next())
        .collect();
    assert!(
        files.len() >= 5,
        "the no-egui list was not found: {files:?}"
    );
    for f in files {
        let path = root().join("src").join(&f);
        let text = read(&path);
        for line in code(&text) {
            for c in ["egui", "eframe", "egui_plot", "rfd"] {
                assert!(!names_path(line, c), "src/{f} uses {c}: {line}");
            }
        }
    }
}

/// The layer rules the page states in words, checked on its allow-list (so that a row cannot
/// quietly grant them) and on the code.
fn check(module: &str, forbidden: &[&str]) {
    let list = allow_list();
    let row = list
        .get(module)
        .unwrap_or_else(|| panic!("no row for {module}"));
    let all = modules();
    let used = used_by(module, &all, &dependencies());
    for f in forbidden {
        let name = f.trim_start_matches("crate::");
        let granted = row.modules.contains(name) || row.crates.contains(name);
        assert!(!granted, "docs/ARCHITECTURE.md allows {module} -> {name}");
        let file = used.modules.get(name).or(used.crates.get(name));
        assert!(
            file.is_none(),
            "{} uses {f}, which the layer rules forbid",
            file.map_or("", |s| s.as_str())
        );
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
    check(
        "experiments",
        &["crate::cli", "crate::ui", "egui", "eframe", "rfd"],
    );
}

#[test]
fn the_path_scanner_sees_what_it_must() {
    assert!(names_path("use crate::spec::NetSpec;", "crate::spec"));
    assert!(names_path(
        "    let x = burn::tensor::Tensor::zeros();",
        "burn"
    ));
    assert!(names_path("use libc;", "libc"));
    assert!(!names_path("use eframe::egui::Ui;", "egui"));
    assert!(!names_path("use rand_chacha::ChaCha8Rng;", "rand"));
    assert!(!names_path("use crate::specs::X;", "crate::spec"));
    let group = grouped(
        "use crate::{\n    spec::{A, B},\n    data::X, rng,\n};",
        "crate",
    );
    assert_eq!(
        group,
        BTreeSet::from(["spec", "data", "rng"].map(String::from))
    );
}
