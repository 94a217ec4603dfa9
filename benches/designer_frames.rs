//! Frame cost of the network designer (issue: a frame builds in < 8 ms, also for
//! cifar-resnet-110).
//!
//! Times building and tessellating one frame of the designer at 1200×900 points for
//! cifar-resnet-110 and mlp-res-20, three ways: 200 frames that change nothing (hovering), 200
//! frames that each scroll the chain (only the visible rows are laid out), and 200 frames that
//! each follow an edit (the layout and the diagnosis are rebuilt), for the collapsed view and
//! with every repeated block expanded.
//!
//! Run: `cargo bench --bench designer_frames`.

use reslab::spec::{DataSource, DatasetSpec, PresetOptions, preset};
use reslab::ui::designer::{Designer, DesignerCtx};
use std::time::Instant;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Static,
    Scroll,
    Edit,
}

fn measure(name: &str, expand: bool, mode: Mode) -> (f64, f64) {
    let io = DatasetSpec::new(DataSource::Mnist10k).expected_io();
    let spec = preset(
        name,
        &PresetOptions {
            input: Some(io.0),
            classes: io.1,
            ..PresetOptions::default()
        },
    )
    .unwrap();
    let mut designer = Designer::new(spec);
    if expand {
        designer.expand_all();
    }
    let ctx = egui::Context::default();
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1200.0, 900.0),
        )),
        ..Default::default()
    };
    let dctx = DesignerCtx {
        running_spec: None,
        io,
    };
    let mut times = Vec::new();
    for frame in 0..220 {
        match mode {
            Mode::Static => {}
            Mode::Scroll => designer.scroll_canvas_to((frame * 97 % 9000) as f32),
            Mode::Edit => {
                // A real edit: the branch scale of the last skip (or the head's width).
                designer.edit(|s| {
                    let v = 1.0 + (frame % 7) as f32 * 0.1;
                    match s.skips.last_mut() {
                        Some(k) => k.scale.value = v,
                        None => s.name = format!("edit{frame}"),
                    }
                });
            }
        }
        let t = Instant::now();
        let out = ctx.run_ui(input(), |ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                let _ = designer.ui(ui, &dctx);
            });
        });
        let prims = ctx.tessellate(out.shapes, out.pixels_per_point);
        std::hint::black_box(prims);
        if frame >= 20 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    (percentile(&mut times, 0.5), percentile(&mut times, 0.99))
}

fn main() {
    println!("designer frame time (build + tessellate), 1200×900 points, 200 frames each:");
    println!(
        "{:<18} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "network", "blocks", "stat p50", "stat p99", "scrl p50", "scrl p99", "edit p50", "edit p99"
    );
    let mut worst = 0.0f64;
    for name in ["cifar-resnet-110", "mlp-res-20"] {
        for expand in [false, true] {
            let s = measure(name, expand, Mode::Static);
            let c = measure(name, expand, Mode::Scroll);
            let e = measure(name, expand, Mode::Edit);
            worst = worst.max(s.1).max(c.1).max(e.1);
            println!(
                "{:<18} {:<9} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms",
                name,
                if expand { "expanded" } else { "collapsed" },
                s.0,
                s.1,
                c.0,
                c.1,
                e.0,
                e.1
            );
        }
    }
    println!("\nworst p99: {worst:.2} ms (target < 8 ms)");
}
