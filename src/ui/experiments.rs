//! The Experiments tab: runs one of the reproductions in [`crate::experiments`] on a background
//! thread with progress, and shows its figures, citation, what to see, and each criterion with
//! its measured values. Results are saved as experiment files, which the tab also opens.

use crate::experiments::{
    self, EXPERIMENTS, ExperimentFile, ExperimentOptions, Figure, FigureKind,
};
use crate::numbers::sig;
use crate::ui::plot::{
    color_legend, hover_point, log_axis_label, log10_points, run_color, viridis,
};
use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions, Ui};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotImage, PlotPoint};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

/// What the tab asks the app to do.
#[derive(Debug, PartialEq)]
pub enum ExperimentsAction {
    /// Nothing.
    None,
    /// Put the experiment's training runs into the lab (Compare).
    OpenRuns,
}

struct Running {
    name: String,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<(f32, String)>>,
    rx: Receiver<Result<(ExperimentFile, Option<PathBuf>), String>>,
}

/// State of the tab; the choice of experiment, scale and seed persist.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ExperimentsTab {
    /// The experiment selected.
    pub selected: String,
    /// Run at the quick scale.
    pub quick: bool,
    /// Base seed.
    pub seed: u64,
    /// Where experiment files are written.
    pub out_dir: PathBuf,
    #[serde(skip)]
    running: Option<Running>,
    #[serde(skip)]
    results: Vec<(ExperimentFile, Option<PathBuf>)>,
    #[serde(skip)]
    error: Option<String>,
    #[serde(skip)]
    variant: String,
    #[serde(skip)]
    textures: Vec<(String, TextureHandle)>,
    #[serde(skip)]
    path_field: String,
}

impl Default for ExperimentsTab {
    fn default() -> Self {
        Self {
            selected: EXPERIMENTS[0].name.to_string(),
            quick: true,
            seed: 0,
            out_dir: PathBuf::from("experiments"),
            running: None,
            results: Vec::new(),
            error: None,
            variant: String::new(),
            textures: Vec::new(),
            path_field: String::new(),
        }
    }
}

impl ExperimentsTab {
    /// Whether an experiment is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The latest result of the selected experiment.
    pub fn result(&self) -> Option<&ExperimentFile> {
        self.results
            .iter()
            .find(|(f, _)| f.name == self.selected)
            .map(|(f, _)| f)
    }

    /// The last error (a failed run or a file that could not be opened).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Starts the selected experiment on a background thread. `dataset` is used by the
    /// experiments that can run on another dataset (the CNN degradation).
    pub fn start(&mut self, ctx: &egui::Context, dataset: Option<crate::spec::DatasetSpec>) {
        if self.running.is_some() {
            return;
        }
        let name = self.selected.clone();
        let (quick, seed, out_dir) = (self.quick, self.seed, self.out_dir.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new((0.0, "starting".to_string())));
        let (tx, rx) = channel();
        let (c, p, ctx2) = (cancel.clone(), progress.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("reslab-experiment".into())
            .spawn(move || {
                let mut opts = ExperimentOptions::new(quick, seed);
                opts.cancel = c;
                opts.dataset = dataset;
                let (p2, ctx3) = (p.clone(), ctx2.clone());
                opts.progress = Some(Box::new(move |f, msg| {
                    if let Ok(mut g) = p2.lock() {
                        *g = (f, msg.to_string());
                    }
                    ctx3.request_repaint_after(std::time::Duration::from_millis(100));
                }));
                let result = experiments::run(&name, &mut opts)
                    .map_err(|e| e.to_string())
                    .map(|file| {
                        // Saving happens here too, off the UI thread; a failed save still
                        // shows the result.
                        let path = file.save(&out_dir).ok();
                        (file, path)
                    });
                let _ = tx.send(result);
                ctx2.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.error = None;
                self.running = Some(Running {
                    name: self.selected.clone(),
                    cancel,
                    progress,
                    rx,
                });
            }
            Err(e) => self.error = Some(format!("could not start: {e}")),
        }
    }

    /// Opens an experiment file in the background.
    pub fn open(&mut self, path: PathBuf, ctx: &egui::Context) {
        if self.running.is_some() {
            self.error = Some("wait for the running experiment to end".into());
            return;
        }
        let (tx, rx) = channel();
        let ctx2 = ctx.clone();
        let p = path.clone();
        let spawned = std::thread::Builder::new()
            .name("reslab-open-experiment".into())
            .spawn(move || {
                let r = ExperimentFile::load(&p)
                    .map(|f| (f, Some(p.clone())))
                    .map_err(|e| e.to_string());
                let _ = tx.send(r);
                ctx2.request_repaint();
            });
        if spawned.is_ok() {
            self.running = Some(Running {
                name: format!("opening {}", path.display()),
                cancel: Arc::new(AtomicBool::new(false)),
                progress: Arc::new(Mutex::new((0.0, "reading".into()))),
                rx,
            });
        }
    }

    fn poll(&mut self) {
        let Some(r) = &self.running else {
            return;
        };
        match r.rx.try_recv() {
            Ok(Ok((file, path))) => {
                self.selected = file.name.clone();
                self.textures
                    .retain(|(k, _)| !k.contains(&format!("-{}-", file.name)));
                self.variant.clear();
                self.results.retain(|(f, _)| f.name != file.name);
                self.results.push((file, path));
                self.running = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.running = None;
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the experiment thread ended without a result".into());
                self.running = None;
            }
        }
    }

    /// Draws the tab. `lab_dataset` is the dataset chosen in the Lab: image datasets (MNIST,
    /// Fashion-MNIST, CIFAR-10 from a folder) are offered to the CNN degradation experiment.
    pub fn ui(&mut self, ui: &mut Ui, lab_dataset: &crate::spec::DatasetSpec) -> ExperimentsAction {
        let image_dataset = matches!(
            lab_dataset.expected_io().0,
            crate::spec::InputShape::Image { .. }
        )
        .then(|| lab_dataset.clone());
        self.poll();
        let mut action = ExperimentsAction::None;
        egui::Panel::left("experiment-list")
            .resizable(false)
            .default_size(250.0)
            .show(ui, |ui| {
                ui.heading("Experiments");
                for e in EXPERIMENTS {
                    ui.selectable_value(&mut self.selected, e.name.to_string(), e.name)
                        .on_hover_text(e.title);
                }
                ui.separator();
                ui.checkbox(&mut self.quick, "quick scale")
                    .on_hover_text("fewer seeds or a coarser grid: each under a minute");
                ui.horizontal(|ui| {
                    ui.label("seed");
                    ui.add(egui::DragValue::new(&mut self.seed).range(0..=1_000_000));
                });
                let running = self.running.is_some();
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(!running, egui::Button::new("Run experiment"))
                        .clicked()
                    {
                        let dataset = image_dataset.clone();
                        self.start(ui.ctx(), dataset);
                    }
                    if running
                        && ui.button("Cancel").clicked()
                        && let Some(r) = &self.running
                    {
                        r.cancel.store(true, Ordering::SeqCst);
                    }
                });
                if self.selected == "degradation-cnn" {
                    ui.label(
                        RichText::new(format!(
                            "dataset: {} (the Lab's dataset when it is an image set)",
                            image_dataset
                                .as_ref()
                                .map_or("MNIST-10k".to_string(), |d| d.label())
                        ))
                        .small(),
                    );
                }
                if let Some(r) = &self.running {
                    let (f, msg) = r.progress.lock().map(|g| g.clone()).unwrap_or_default();
                    ui.label(format!("{}: {msg}", r.name));
                    ui.add(egui::ProgressBar::new(f).show_percentage());
                    ui.ctx()
                        .request_repaint_after(std::time::Duration::from_millis(200));
                }
                ui.separator();
                ui.label("Open an experiment file:");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.path_field)
                            .hint_text("experiments/NAME.reslab-experiment.json")
                            .desired_width(150.0),
                    );
                    if ui.button("Open").clicked() && !self.path_field.trim().is_empty() {
                        let p = PathBuf::from(self.path_field.trim());
                        self.open(p, ui.ctx());
                    }
                });
                ui.label(
                    RichText::new(format!(
                        "Results are saved in {}/ (drop a file on the window to open it).",
                        self.out_dir.display()
                    ))
                    .small()
                    .weak(),
                );
            });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("experiment-scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    action = self.details(ui);
                });
        });
        action
    }

    fn details(&mut self, ui: &mut Ui) -> ExperimentsAction {
        let mut action = ExperimentsAction::None;
        let Some(e) = experiments::find(&self.selected) else {
            return action;
        };
        ui.heading(e.title);
        ui.label(RichText::new(e.citation).italics());
        ui.add_space(4.0);
        ui.label(RichText::new("What to see, and why").strong());
        for line in e.what_to_see {
            ui.label(format!("• {line}"));
        }
        ui.label(RichText::new(e.protocol.describe()).small().weak());
        if let Some(err) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
        let Some(i) = self
            .results
            .iter()
            .position(|(f, _)| f.name == self.selected)
        else {
            ui.add_space(8.0);
            ui.label(RichText::new("Press Run experiment to measure it on this machine.").weak());
            return action;
        };
        // Borrowed out of `self` while drawing (figures need `&mut self` for their textures);
        // put back below. Cloning would copy every run's history each frame.
        let results = std::mem::take(&mut self.results);
        action = self.result_ui(ui, &results[i].0, results[i].1.as_ref());
        self.results = results;
        action
    }

    fn result_ui(
        &mut self,
        ui: &mut Ui,
        file: &ExperimentFile,
        path: Option<&PathBuf>,
    ) -> ExperimentsAction {
        let mut action = ExperimentsAction::None;
        ui.separator();
        ui.horizontal(|ui| {
            let verdict = if file.criteria.is_empty() {
                RichText::new("no criteria: a view, not a test")
            } else if file.passed() {
                RichText::new("all criteria PASS").color(Color32::from_rgb(60, 180, 75))
            } else {
                RichText::new("some criteria FAIL").color(ui.visuals().error_fg_color)
            };
            ui.label(verdict.strong());
            ui.label(format!(
                "{} scale, seed {}, {:.1} s",
                if file.options.quick { "quick" } else { "full" },
                file.options.seed,
                file.seconds
            ));
            if let Some(p) = path {
                ui.label(RichText::new(format!("saved {}", p.display())).small());
            }
            if !file.runs.is_empty()
                && ui
                    .button(format!("Open its {} runs in the lab", file.runs.len()))
                    .clicked()
            {
                action = ExperimentsAction::OpenRuns;
            }
        });
        for c in &file.criteria {
            ui.horizontal_wrapped(|ui| {
                let (word, color) = if c.passed {
                    ("PASS", Color32::from_rgb(60, 180, 75))
                } else {
                    ("FAIL", ui.visuals().error_fg_color)
                };
                ui.label(RichText::new(word).color(color).strong());
                ui.label(format!("{}: {}", c.name, c.measured));
            });
            if !c.claim.is_empty() {
                ui.label(
                    RichText::new(format!("      claim: {}", c.claim))
                        .small()
                        .weak(),
                );
            }
        }
        if !file.notes.is_empty() {
            ui.label(RichText::new(&file.notes).small().weak());
        }
        let variants: Vec<String> = {
            let mut v: Vec<String> = file
                .figures
                .iter()
                .map(|f| f.variant.clone())
                .filter(|v| !v.is_empty())
                .collect();
            v.dedup();
            v.sort();
            v.dedup();
            v
        };
        if !variants.is_empty() {
            if !variants.contains(&self.variant) {
                self.variant = variants[0].clone();
            }
            ui.horizontal(|ui| {
                ui.label("show:");
                for v in &variants {
                    ui.selectable_value(&mut self.variant, v.clone(), v.as_str());
                }
            });
        }
        let figures: Vec<Figure> = file
            .figures
            .iter()
            .filter(|f| f.variant.is_empty() || f.variant == self.variant)
            .cloned()
            .collect();
        let width = ui.available_width();
        let columns = if width > 900.0 { 2 } else { 1 };
        let fig_w = width / columns as f32 - 10.0;
        for (row, chunk) in figures.chunks(columns).enumerate() {
            ui.horizontal_top(|ui| {
                for (k, fig) in chunk.iter().enumerate() {
                    ui.allocate_ui_with_layout(
                        egui::vec2(fig_w, 330.0),
                        egui::Layout::top_down(egui::Align::Min),
                        |ui| {
                            ui.set_width(fig_w);
                            self.figure(ui, fig, row * columns + k);
                        },
                    );
                }
            });
        }
        action
    }

    fn figure(&mut self, ui: &mut Ui, fig: &Figure, index: usize) {
        ui.label(RichText::new(&fig.title).strong());
        let id = format!("exp-fig-{}-{index}-{}", self.selected, fig.variant);
        // On a heatmap `log_y` asks for a log colour scale, not a log axis.
        let log_y = fig.log_y && !matches!(fig.kind, FigureKind::Heatmap { .. });
        let mut plot = Plot::new(id.as_str())
            .height(290.0)
            .allow_scroll(false)
            .legend(Legend::default().position(egui_plot::Corner::LeftTop))
            .x_axis_label(fig.x_label.as_str())
            .y_axis_label(fig.y_label.as_str());
        if log_y {
            plot = plot.y_axis_formatter(log_axis_label);
        }
        plot = plot.label_formatter(move |pos| {
            let (name, p) = hover_point(pos);
            let y = if log_y { 10f64.powf(p.y) } else { p.y };
            Some(format!("{name}\nx {}\ny {}", sig(p.x), sig(y)))
        });
        match &fig.kind {
            FigureKind::Lines { series } => {
                plot.show(ui, |p| {
                    for (i, s) in series.iter().enumerate() {
                        let pts = if log_y {
                            log10_points(&s.points)
                        } else {
                            s.points.clone()
                        };
                        p.line(
                            Line::new(s.name.as_str(), pts)
                                .color(run_color(i))
                                .width(1.6),
                        );
                    }
                });
            }
            FigureKind::Bars { categories, series } => {
                let groups = series.len().max(1) as f64;
                let w = 0.8 / groups;
                plot.show(ui, |p| {
                    for (g, s) in series.iter().enumerate() {
                        let bars: Vec<Bar> = s
                            .values
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| {
                                let y = if log_y {
                                    if v > 0.0 { v.log10() } else { f64::NAN }
                                } else {
                                    v
                                };
                                Bar::new(i as f64 - 0.4 + w * (g as f64 + 0.5), y)
                                    .width(w * 0.95)
                                    .name(format!(
                                        "{}: {}",
                                        categories.get(i).map_or("", String::as_str),
                                        sig(v)
                                    ))
                            })
                            .collect();
                        p.bar_chart(BarChart::new(s.name.as_str(), bars).color(run_color(g)));
                    }
                });
            }
            FigureKind::Heatmap {
                x_range,
                y_range,
                nx,
                ny,
                values,
                contours,
            } => {
                let (nx, ny) = (*nx, *ny);
                if nx < 2 || ny < 2 || values.len() != nx * ny {
                    ui.label("malformed heatmap");
                    return;
                }
                let (lo, hi) = finite_range(values);
                // A log colour scale when asked for and possible (positive values), so that a
                // few huge values at the edge of a landscape do not flatten the basin.
                let log = fig.log_y && lo > 0.0;
                let tex = self.heat_texture(ui.ctx(), &id, nx, ny, values, log);
                let (w, h) = (x_range[1] - x_range[0], y_range[1] - y_range[0]);
                // Cell centres sit on the grid points: the picture extends half a cell out.
                let (cw, ch) = (w / (nx - 1) as f64, h / (ny - 1) as f64);
                let segments = contour_segments(values, nx, ny, contours);
                let to_plot = |i: f64, j: f64| [x_range[0] + i * cw, y_range[0] + j * ch];
                ui.horizontal_top(|ui| {
                    let plot_w = (ui.available_width() - if log { 64.0 } else { 0.0 }).max(80.0);
                    plot.data_aspect(1.0).width(plot_w).show(ui, |p| {
                        p.image(PlotImage::new(
                            "value",
                            tex,
                            PlotPoint::new(x_range[0] + w / 2.0, y_range[0] + h / 2.0),
                            [(w + cw) as f32, (h + ch) as f32],
                        ));
                        for (_, segs) in segments {
                            for (a, b) in segs {
                                p.line(
                                    Line::new(
                                        "contours",
                                        vec![to_plot(a[0], a[1]), to_plot(b[0], b[1])],
                                    )
                                    .color(Color32::from_white_alpha(170))
                                    .width(1.0),
                                );
                            }
                        }
                    });
                    if log {
                        color_legend(ui, (lo.log10() as f32, hi.log10() as f32), 270.0);
                    }
                });
                let levels: Vec<String> = contours.iter().map(|&c| sig(c)).collect();
                ui.label(
                    RichText::new(format!(
                        "colour{}: {} (dark) to {} (yellow); contours at {}",
                        if log { " (log scale)" } else { "" },
                        sig(lo),
                        sig(hi),
                        levels.join(", ")
                    ))
                    .small(),
                );
            }
        }
    }

    fn heat_texture(
        &mut self,
        ctx: &egui::Context,
        id: &str,
        nx: usize,
        ny: usize,
        values: &[f64],
        log: bool,
    ) -> egui::TextureId {
        if let Some((_, t)) = self.textures.iter().find(|(k, _)| k == id) {
            return t.id();
        }
        let (lo, hi) = finite_range(values);
        let map = |v: f64| if log { v.log10() } else { v };
        let (lo, hi) = (map(lo), map(hi));
        let span = (hi - lo).max(1e-12);
        let mut pixels = Vec::with_capacity(nx * ny);
        // Image rows go top-down; the data's y grows upwards.
        for j in (0..ny).rev() {
            for i in 0..nx {
                let v = map(values[j * nx + i]);
                pixels.push(viridis(((v - lo) / span) as f32));
            }
        }
        let t = ctx.load_texture(
            id,
            ColorImage::new([nx, ny], pixels),
            TextureOptions::NEAREST,
        );
        let tid = t.id();
        self.textures.push((id.to_string(), t));
        tid
    }
}

fn finite_range(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

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
