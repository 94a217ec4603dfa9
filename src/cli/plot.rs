//! `reslab plot`: a run's panels or an experiment's figures as PNG or SVG pictures of any size,
//! with their data as CSV beside them, drawn without a window (`views` → `figure::draw`).

use super::{CliError, bad_input, runtime};
use crate::experiments::{ExperimentFile, SUFFIX as EXPERIMENT_SUFFIX};
use crate::figure::Figure;
use crate::figure::draw::Format;
use crate::figure::files::{parse_size, write_pictures};
use crate::runfile;
use crate::views::{Input, PanelKind};
use std::path::{Path, PathBuf};

/// Arguments of `reslab plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A run file (`.reslab.json`), an experiment file (`.reslab-experiment.json`) or a sweep
    /// file (`.reslab-sweep.json`).
    pub file: PathBuf,
    /// For a run: a panel (loss, activations, batchnorm, gradients, boundary, compare,
    /// attention) or `all`, one picture per panel with something to draw. For an experiment:
    /// a figure number (1, 2, …) or `all`, every figure in one picture.
    #[arg(long, default_value = "all")]
    pub panel: String,
    /// The picture, `FILE.png` or `FILE.svg`; the CSV of its data goes beside it as `FILE.csv`.
    /// With `--panel all` a run's pictures are `FILE-<panel>.png`. An existing file is never
    /// overwritten: the next free number is used (`FILE-2.png`).
    #[arg(long)]
    pub out: PathBuf,
    /// Width x height in pixels.
    #[arg(long, default_value = "1600x1000")]
    pub size: String,
}

/// Runs `reslab plot`.
pub(crate) fn run(args: PlotArgs) -> Result<(), CliError> {
    let size = parse_size(&args.size).map_err(|e| bad_input(format!("--size: {e}")))?;
    let format = Format::of_path(&args.out).ok_or_else(|| {
        bad_input(format!(
            "--out {}: name a .png or .svg file",
            args.out.display()
        ))
    })?;
    let dir = crate::safe_fs::parent_dir(&args.out).to_path_buf();
    let stem = args
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| bad_input(format!("--out {}: no file name", args.out.display())))?
        .to_string();
    let pictures = if is_experiment(&args.file) {
        experiment_pictures(&args.file, &args.panel, &stem)?
    } else if is_sweep(&args.file) {
        sweep_pictures(&args.file, &args.panel, &stem)?
    } else {
        run_pictures(&args.file, &args.panel, &stem)?
    };
    for (stem, title, figures) in pictures {
        let written =
            write_pictures(&dir, &stem, &title, &figures, size, &[format]).map_err(runtime)?;
        for path in written {
            crate::say!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn is_sweep(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.ends_with(crate::sweep::SUFFIX))
}

fn is_experiment(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.ends_with(EXPERIMENT_SUFFIX))
}

/// One picture to write: its file stem, its title and its figures.
type Picture = (String, String, Vec<Figure>);

fn run_pictures(path: &Path, panel: &str, stem: &str) -> Result<Vec<Picture>, CliError> {
    let loaded = runfile::load(path).map_err(bad_input)?;
    let run = &loaded.run;
    let view = crate::views::RunView {
        name: &run.name,
        history: &run.history,
        spec: &run.spec,
        color: 0,
    };
    let input = Input {
        run: Some(view),
        runs: vec![view],
    };
    let title = |k: PanelKind| format!("{}: {}", run.name, k.title());
    if panel == "all" {
        let mut out = Vec::new();
        for k in PanelKind::ALL {
            let figs = k.default_figures(&input);
            if figs.is_empty() {
                crate::say!("{}: nothing to draw for this run", k.slug());
                continue;
            }
            out.push((format!("{stem}-{}", k.slug()), title(k), figs));
        }
        return Ok(out);
    }
    let kind = PanelKind::from_slug(panel).ok_or_else(|| {
        let names: Vec<&str> = PanelKind::ALL.iter().map(|k| k.slug()).collect();
        bad_input(format!(
            "--panel {panel}: not a panel; one of {} or all",
            names.join(", ")
        ))
    })?;
    let figs = kind.default_figures(&input);
    if figs.is_empty() {
        return Err(bad_input(format!(
            "{}: the run has nothing to draw in the {} panel",
            path.display(),
            kind.slug()
        )));
    }
    Ok(vec![(stem.to_string(), title(kind), figs)])
}

fn experiment_pictures(path: &Path, panel: &str, stem: &str) -> Result<Vec<Picture>, CliError> {
    let file = ExperimentFile::load(path).map_err(bad_input)?;
    numbered(file.title.clone(), file.figures, panel, stem)
}

fn sweep_pictures(path: &Path, panel: &str, stem: &str) -> Result<Vec<Picture>, CliError> {
    let sweep = crate::sweep::SweepFile::load(path).map_err(bad_input)?;
    let title = format!("sweep {}: {}", sweep.name, sweep.grid.dataset.label());
    numbered(title, crate::sweep::figures(&sweep), panel, stem)
}

/// All of `figures` in one picture, or the `panel`-th (from 1).
fn numbered(
    title: String,
    figures: Vec<Figure>,
    panel: &str,
    stem: &str,
) -> Result<Vec<Picture>, CliError> {
    if panel == "all" {
        return Ok(vec![(stem.to_string(), title, figures)]);
    }
    let n = figures.len();
    let k: usize = panel
        .parse()
        .ok()
        .filter(|k| (1..=n).contains(k))
        .ok_or_else(|| {
            bad_input(format!(
                "--panel {panel}: a figure is a number from 1 to {n}, or all"
            ))
        })?;
    let fig = figures[k - 1].clone();
    Ok(vec![(stem.to_string(), title, vec![fig])])
}
