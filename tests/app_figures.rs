//! The lab's figures (issue 23): hovering a bar names the tensor with its measured value (not its
//! logarithm), and a panel scrolled out of view exports as a full picture of the export size,
//! PNG and SVG with the CSV of its data, under numbered names.

mod common;

use common::lab::{harness, small_settings, step_until};
use egui_kittest::kittest::{NodeT, Queryable};
use reslab::numbers::sig;
use reslab::ui::LabApp;
use reslab::ui::panels::PanelKind;
use std::collections::HashSet;

fn trained(dir: &std::path::Path) -> egui_kittest::Harness<'static, LabApp> {
    let mut h = harness(dir);
    small_settings(h.state_mut(), 40);
    h.get_by_label("Train").click();
    step_until(&mut h, "the run's end", |a| {
        !a.registry().is_training() && common::lab::last_step(a) >= 40
    });
    h
}

#[test]
fn hovering_a_gradient_bar_names_the_tensor_and_its_norm() {
    let dir = common::temp_dir("app-figures", "hover");
    let mut h = trained(&dir);
    h.state_mut().set_panels(&[PanelKind::Gradients], 1);
    h.step();
    let run = h.state().registry().shown().unwrap();
    let h_ = run.history();
    let probe = h_.latest_probe.as_ref().unwrap();
    let expected: Vec<(String, String)> = h_
        .layout
        .params
        .iter()
        .zip(&probe.params)
        .filter(|(n, _)| n.ends_with(".weight"))
        .map(|(n, p)| (n.clone(), sig(p.grad_norm as f64)))
        .collect();
    // Sweep the pointer over the panel until a tooltip names a tensor.
    let mut found = None;
    'sweep: for y in (150..900).step_by(15) {
        for x in (300..1400).step_by(12) {
            h.hover_at(egui::pos2(x as f32, y as f32));
            h.step();
            h.step();
            if let Some(node) = h.query_by_label_contains(".weight\n") {
                let n = node.accesskit_node();
                found = n.value().or_else(|| n.label());
                break 'sweep;
            }
        }
    }
    let text = found.expect("no tooltip over the gradient bars");
    let (name, value) = expected
        .iter()
        .find(|(n, _)| text.starts_with(&format!("{n}\n")))
        .unwrap_or_else(|| panic!("the tooltip names no tensor: {text:?}"));
    assert!(
        text.contains(&format!("gradient norm {value}")),
        "{name}'s tooltip lacks its norm {value}: {text:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panel_out_of_view_exports_a_full_picture() {
    let dir = common::temp_dir("app-figures", "export");
    let mut h = trained(&dir);
    // Every panel in one column: Compare and Attention are far below the window's bottom.
    h.state_mut().set_panels(&PanelKind::ALL, 1);
    h.step();
    h.get_by_label("PNG (all)").click();
    step_until(&mut h, "the export", |a| {
        a.messages()
            .iter()
            .any(|m| m.text.contains("compare-") && m.text.contains(".svg"))
    });
    let exports = reslab::ui::app::exports_dir(&dir);
    let pngs: Vec<_> = std::fs::read_dir(&exports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    let compare = pngs
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("compare-")
        })
        .expect("the Compare panel's picture");
    let img = image::open(compare).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), reslab::ui::app::EXPORT_SIZE);
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 20, "{} colours", colours.len());
    assert!(compare.with_extension("svg").is_file());
    assert!(compare.with_extension("csv").is_file());
    // A second export does not overwrite the first.
    let before = pngs.len();
    h.get_by_label("PNG (all)").click();
    step_until(&mut h, "the second export", |a| {
        a.messages()
            .iter()
            .filter(|m| m.text.contains("-2.png"))
            .count()
            >= 1
    });
    let after = std::fs::read_dir(&exports)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|e| e == "png"))
        .count();
    assert!(
        after > before,
        "{after} pictures after a second export, {before} before"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
