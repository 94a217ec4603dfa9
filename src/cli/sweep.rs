//! `reslab sweep`: a grid of runs over depth ([`crate::sweep`]) with one progress bar and an ETA,
//! `--jobs N` at a time on each device (this machine's CPU, or `--devices` such as several
//! `reslab serve` endpoints; a cell whose device fails goes to another one); resumable
//! (`reslab sweep FILE.reslab-sweep.json` runs the cells that have not finished). Ctrl-C stops after the current steps: the finished cells
//! are in the sweep file, the unfinished ones run next time.

use super::{CliError, bad_input, runtime};
use crate::data::{self, Dataset};
use crate::runfile;
use crate::spec::{DatasetSpec, DeviceChoice, Norm};
use crate::sweep::{self, Cell, CellError, CellOutcome, Grid, Queue, SweepFile};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::Instant;

/// Arguments of `reslab sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// A sweep file to go on with: its finished cells are skipped (the grid flags are then not
    /// used).
    pub sweep: Option<PathBuf>,
    /// Preset families, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "mlp-plain,mlp-res")]
    pub families: Vec<String>,
    /// Depths (the presets' N), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64")]
    pub depths: Vec<usize>,
    /// Seeds 0, 1, … (this many).
    #[arg(long, default_value_t = 3, value_parser = super::whole_usize)]
    pub seeds: usize,
    /// Learning rates, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.05")]
    pub lrs: Vec<f64>,
    /// Normalisations, comma-separated: none, batch, layer, group:G.
    #[arg(long, value_delimiter = ',', default_value = "batch", value_parser = Norm::parse)]
    pub norms: Vec<Norm>,
    /// Hidden width of MLP presets.
    #[arg(long, default_value_t = 64, value_parser = super::whole_usize)]
    pub width: usize,
    /// Steps of each run (default 400; 200 with --quick).
    #[arg(long, value_parser = super::whole)]
    pub steps: Option<u64>,
    /// The quick scale: 200 steps a run.
    #[arg(long)]
    pub quick: bool,
    /// The data (as `train --dataset`).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Probe every N steps (0: never; probes make runs slower and files larger).
    #[arg(long, default_value_t = 0, value_parser = super::whole)]
    pub probe_every: u64,
    /// Runs trained at the same time on each device.
    #[arg(long, default_value_t = 1, value_parser = super::whole_usize)]
    pub jobs: usize,
    /// Where to train, comma-separated: cpu, gpu, remote:ws://HOST:PORT (`reslab serve`
    /// endpoints; their token from RESLAB_REMOTE_TOKEN). A cell whose device fails or vanishes
    /// runs on another; that device takes no more cells.
    #[arg(long, value_delimiter = ',', default_value = "cpu", value_parser = DeviceChoice::parse)]
    pub devices: Vec<DeviceChoice>,
    /// The sweep: `NAME` writes `NAME.reslab-sweep.json` and the runs into `NAME/`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The sweep file, its runs' folder and the sweep (new from the flags, or read to go on).
fn open(args: &SweepArgs) -> Result<(PathBuf, PathBuf, SweepFile), CliError> {
    if let Some(file) = &args.sweep {
        let sweep = SweepFile::load(file).map_err(bad_input)?;
        check_cells(&sweep.grid).map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
        let (path, dir) = sweep::paths(file);
        return Ok((path, dir, sweep));
    }
    let out = args
        .out
        .as_ref()
        .ok_or_else(|| bad_input("sweep needs --out NAME (or a sweep file to go on with)"))?;
    let (path, dir) = sweep::paths(out);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(bad_input(format!(
            "{}: exists; run `reslab sweep {}` to go on with it, or choose another --out",
            path.display(),
            path.display()
        )));
    }
    let dataset =
        DatasetSpec::from_name(&args.dataset).map_err(|e| bad_input(format!("--dataset: {e}")))?;
    let steps = args.steps.unwrap_or(if args.quick { 200 } else { 400 });
    let grid = Grid {
        families: args.families.clone(),
        depths: args.depths.clone(),
        seeds: (0..args.seeds as u64).collect(),
        lrs: args.lrs.clone(),
        norms: args.norms.clone(),
        width: args.width,
        steps,
        probe_every: args.probe_every,
        dataset,
    };
    grid.check().map_err(bad_input)?;
    check_cells(&grid).map_err(|e| bad_input(format!("--families/--depths/--norms: {e}")))?;
    let name = dir
        .file_name()
        .map_or("sweep".into(), |n| n.to_string_lossy().into_owned());
    Ok((path, dir, SweepFile::new(&name, grid)))
}

/// Every cell's network builds for the grid's data (before any data is loaded).
fn check_cells(grid: &Grid) -> Result<(), String> {
    grid.cells()
        .iter()
        .try_for_each(|c| sweep::cell_spec(grid, c).map(|_| ()))
}

/// Runs `reslab sweep`.
pub(crate) fn run(args: SweepArgs) -> Result<(), CliError> {
    // Ctrl-C, SIGTERM: the runs stop after their current step; what finished is kept.
    crate::signals::install();
    if args.jobs == 0 {
        return Err(bad_input("--jobs: must be at least 1"));
    }
    if args.devices.is_empty() {
        return Err(bad_input("--devices: name at least one device"));
    }
    let (path, dir, mut sweep) = open(&args)?;
    // What is there is checked first: a refused sweep writes nothing.
    let pending = pending(&mut sweep, &dir)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| bad_input(format!("{}: cannot create it: {e}", dir.display())))?;
    sweep.save(&path).map_err(runtime)?;
    let total = sweep.grid.cells().len();
    crate::say!(
        "{}: {} cells, {} to run ({} at a time on {}), runs in {}",
        path.display(),
        total,
        pending.len(),
        args.jobs,
        names(&args.devices),
        dir.display()
    );
    if !pending.is_empty() {
        let data = data::load(&sweep.grid.dataset).map_err(bad_input)?;
        let workers: Vec<&DeviceChoice> = args
            .devices
            .iter()
            .flat_map(|d| std::iter::repeat_n(d, args.jobs))
            .collect();
        run_cells(&mut sweep, (&path, &dir), pending, &data, &workers)?;
    }
    report(&sweep, total);
    Ok(())
}

/// The run file of a cell, and its name relative to the sweep file.
fn run_path(dir: &Path, cell: &Cell) -> (PathBuf, String) {
    let file = sweep::run_file(dir, cell);
    let part = |p: &Path| {
        p.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    };
    let name = format!("{}/{}", part(dir), part(&file));
    (file, name)
}

/// The cells still to run. A cell whose run file finished but which the sweep file does not list
/// (the process ended between the two saves) is recorded from its run file; a recorded cell
/// whose run file is gone runs again. A file at a cell's place that is not that cell's run
/// (another grid's, another network, data or configuration) is never taken nor overwritten: the
/// sweep stops, naming it.
fn pending(sweep: &mut SweepFile, dir: &Path) -> Result<Vec<Cell>, CliError> {
    let mut out = Vec::new();
    for cell in sweep.grid.cells() {
        let (file, name) = run_path(dir, &cell);
        let on_disk = match std::fs::symlink_metadata(&file) {
            Err(_) => None,
            Ok(_) => {
                let run = runfile::load_without_weights(&file).map_err(bad_input)?;
                if !sweep::is_cells_run(&sweep.grid, &cell, &run) {
                    return Err(bad_input(format!(
                        "{}: is not this sweep's run of {} (its network, data or settings \
                         differ); move it away or choose another --out",
                        file.display(),
                        cell.name()
                    )));
                }
                Some(run).filter(|r| sweep::is_done(r.status))
            }
        };
        match (sweep.result(&cell).is_some(), on_disk) {
            (true, Some(_)) => {}
            (false, Some(run)) => {
                let r = sweep::summary(&cell, &run, &name, Instant::now());
                sweep.record(crate::sweep::CellResult { seconds: 0.0, ..r });
            }
            (_, None) => out.push(cell),
        }
    }
    Ok(out)
}

fn names(devices: &[DeviceChoice]) -> String {
    let names: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    names.join(", ")
}

/// What a worker reports: a cell's outcome, or its device that failed (the cell went back).
enum Report {
    Ran(Cell, Result<CellOutcome, CellError>),
    Lost(DeviceChoice, Cell, String),
}

/// Trains `cells` with one worker per entry of `workers` (a device named twice trains two cells
/// at a time), recording each result in the sweep file as it arrives. A device that fails gives
/// its cell back and takes no more; cells left when every device failed are an error.
fn run_cells(
    sweep: &mut SweepFile,
    (path, dir): (&Path, &Path),
    cells: Vec<Cell>,
    data: &Dataset,
    workers: &[&DeviceChoice],
) -> Result<(), CliError> {
    let bar = progress_bar((cells.len() as u64).saturating_mul(sweep.grid.steps));
    let queue = Queue::new(cells);
    let dead = Mutex::new(Vec::<DeviceChoice>::new());
    let grid = sweep.grid.clone();
    let (tx, rx) = channel();
    std::thread::scope(|scope| {
        for &device in workers {
            let w = Worker {
                grid: &grid,
                data,
                dir,
                bar: &bar,
                queue: &queue,
                dead: &dead,
            };
            let tx = tx.clone();
            scope.spawn(move || w.run(device, tx));
        }
        drop(tx);
        let mut failed = Vec::new();
        for report in rx {
            match report {
                Report::Ran(_, Ok(CellOutcome::Done(r))) => {
                    sweep.record(r);
                    if let Err(e) = sweep.save(path) {
                        failed.push(e);
                    }
                }
                Report::Ran(_, Ok(CellOutcome::Stopped)) => {}
                Report::Ran(cell, Err(e)) => failed.push(format!("{}: {e}", cell.name())),
                Report::Lost(device, cell, why) => {
                    let line = format!(
                        "{device}: {why}; {} goes to another device, {device} takes no more \
                         cells",
                        cell.name()
                    );
                    if bar.is_hidden() {
                        crate::say!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
            }
        }
        bar.finish_and_clear();
        let left = queue.left();
        if !left.is_empty() && !crate::signals::stop_requested() {
            failed.push(format!(
                "{} cells not run: no device left ({} failed); run `reslab sweep {}` to go on",
                left.len(),
                names(&dead.lock().map(|d| d.clone()).unwrap_or_default()),
                path.display()
            ));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(runtime(failed.join("\n")))
        }
    })
}

/// What one worker shares with the others.
struct Worker<'a> {
    grid: &'a Grid,
    data: &'a Dataset,
    dir: &'a Path,
    bar: &'a ProgressBar,
    queue: &'a Queue,
    dead: &'a Mutex<Vec<DeviceChoice>>,
}

impl Worker<'_> {
    fn is_dead(&self, device: &DeviceChoice) -> bool {
        self.dead.lock().map_or(true, |d| d.contains(device))
    }

    /// Takes cells and trains them on `device` until none is left, a stop, or the device fails.
    fn run(&self, device: &DeviceChoice, tx: Sender<Report>) {
        let stop = crate::signals::stop_requested;
        while !stop() && !self.is_dead(device) {
            let Some(cell) = self.queue.take() else { break };
            if self.is_dead(device) {
                self.queue.give_back(cell);
                break;
            }
            let (file, name) = run_path(self.dir, &cell);
            self.bar.set_message(cell.name());
            let mut steps = 0;
            let out = sweep::run_cell(
                self.grid,
                (&cell, device),
                self.data,
                (&file, &name),
                &mut || {
                    steps += 1;
                    self.bar.inc(1);
                },
                &stop,
            );
            let report = match out {
                Err(CellError::Device(why)) => {
                    if let Ok(mut d) = self.dead.lock() {
                        d.push(device.clone());
                    }
                    self.bar.dec(steps);
                    self.queue.give_back(cell.clone());
                    Report::Lost(device.clone(), cell, why)
                }
                out => {
                    self.queue.finish();
                    Report::Ran(cell, out)
                }
            };
            if tx.send(report).is_err() {
                break;
            }
        }
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    use std::io::IsTerminal;
    let bar = if std::io::stdout().is_terminal() {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps · {per_sec} · ETA {eta} · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// What the sweep measured, one line per family and depth (medians over seeds).
fn report(sweep: &SweepFile, total: usize) {
    let done = sweep.results.len();
    if done < total {
        crate::say!(
            "{done} of {total} cells done; run `reslab sweep FILE.reslab-sweep.json` to go on"
        );
    }
    for fig in sweep::figures(sweep).iter().take(2) {
        crate::say!("{}:", fig.title);
        if let crate::figure::FigureKind::Lines { series } = &fig.kind {
            for s in series {
                let points: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| format!("{} → {}", p[0], crate::numbers::sig(p[1])))
                    .collect();
                crate::say!("  {}: {}", s.name, points.join(", "));
            }
        }
    }
}
