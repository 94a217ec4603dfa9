//! Panel pictures: the panels asked for are queued, one screenshot of the window is taken for
//! all of them, and each panel is cropped from it by the rectangle it was drawn in and written
//! as PNG into `exports/` by a background job.

use super::super::panels::PanelKind;
use super::super::runs::ShownRun;
use egui::{ColorImage, Rect};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// A screenshot and the panels to cut from it.
type Shot = (Vec<PanelKind>, Arc<ColorImage>);

/// A panel's picture and the file it goes to, or why there is none.
pub(super) type Cut = Result<(PathBuf, ColorImage), String>;

/// The panel-picture pipeline.
pub(super) struct PanelExport {
    /// Where each panel was drawn this frame (its visible part), by [`PanelKind::index`].
    rects: Vec<Option<Rect>>,
    tx: Sender<Shot>,
    rx: Receiver<Shot>,
    queue: VecDeque<PanelKind>,
    /// A screenshot has been asked for and has not arrived.
    pending: bool,
}

impl PanelExport {
    pub(super) fn new() -> Self {
        let (tx, rx) = channel();
        Self {
            rects: vec![None; PanelKind::ALL.len()],
            tx,
            rx,
            queue: VecDeque::new(),
            pending: false,
        }
    }

    /// Queues a panel's picture.
    pub(super) fn request(&mut self, kind: PanelKind) {
        self.queue.push_back(kind);
    }

    /// Forgets where panels were drawn (a frame draws them again).
    pub(super) fn clear_rects(&mut self) {
        self.rects.iter_mut().for_each(|r| *r = None);
    }

    /// Records where a panel was drawn (only what is on screen can be exported).
    pub(super) fn set_rect(&mut self, kind: PanelKind, rect: Rect) {
        self.rects[kind.index()] = Some(rect);
    }

    /// Takes one screenshot for all queued panel pictures; each panel is cropped from it. One
    /// screenshot is in flight at a time, and panels asked for meanwhile wait for the next.
    pub(super) fn next(&mut self, ctx: &egui::Context) {
        if self.pending || self.queue.is_empty() {
            return;
        }
        let mut kinds: Vec<PanelKind> = self.queue.drain(..).collect();
        kinds.dedup();
        self.pending = true;
        let tx = self.tx.clone();
        let c = ctx.clone();
        ctx.request_screenshot(move |img| {
            let _ = tx.send((kinds, img));
            c.request_repaint();
        });
        // The picture is taken when this frame is painted; make sure one is.
        ctx.request_repaint();
    }

    /// The pictures cut from screenshots that arrived: for each panel, where to write it and
    /// the picture, or why there is none. The file is named after the panel, the shown run and
    /// its step.
    pub(super) fn take_shots(
        &mut self,
        ctx: &egui::Context,
        runs_dir: &Path,
        shown: Option<&ShownRun>,
    ) -> Vec<(PanelKind, Cut)> {
        let mut out = Vec::new();
        while let Ok((kinds, image)) = self.rx.try_recv() {
            self.pending = false;
            for kind in kinds {
                let Some(rect) = self.rects[kind.index()] else {
                    continue;
                };
                let step = shown.map_or(0, |r| r.history().last_step);
                let run = shown.map_or("no-run", |r| r.file.name.as_str());
                let path =
                    exports_dir(runs_dir).join(format!("{}-{run}-step{step}.png", kind.slug()));
                let cut = crop(&image, rect, ctx.pixels_per_point())
                    .map(|img| (path, img))
                    .ok_or_else(|| "is not on screen".to_string());
                out.push((kind, cut));
            }
        }
        out
    }
}

/// The part of a screenshot inside `rect` (in points), or `None` when it is off the picture.
fn crop(image: &ColorImage, rect: Rect, ppp: f32) -> Option<ColorImage> {
    let full = Rect::from_min_size(
        egui::Pos2::ZERO,
        egui::vec2(image.size[0] as f32 / ppp, image.size[1] as f32 / ppp),
    );
    let rect = rect.intersect(full);
    (rect.width() >= 1.0 && rect.height() >= 1.0).then(|| image.region(&rect, Some(ppp)))
}

/// Where exported pictures go: `exports/` next to the runs folder.
pub fn exports_dir(runs_dir: &Path) -> PathBuf {
    runs_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("exports"), |p| p.join("exports"))
}

/// Writes an image as PNG (creating the folder).
pub fn write_png(path: &Path, image: &ColorImage) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let [w, h] = image.size;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "the picture has the wrong size".to_string())?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    crate::runfile::write_atomic(path, &out).map_err(|e| e.to_string())
}
