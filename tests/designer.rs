//! The network designer driven through egui_kittest: skips made by dragging and by the keyboard
//! path, an invalid skip and its fix, undo/redo, the plain twin, and every preset surviving a
//! trip through the designer.

mod common;

use egui::{Modifiers, Rect};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use reslab::spec::{
    DataSource, DatasetSpec, Duration as Steps, NetSpec, PRESET_EXAMPLES, PresetOptions, SkipSpec,
    preset,
};
use reslab::ui::{LabApp, Tab};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The lab with a small plain MLP (MNIST input, 3 blocks of width 16) in the designer tab.
fn harness(name: &str) -> (Harness<'static, LabApp>, PathBuf) {
    let dir = common::temp_dir("designer", name);
    let d = dir.clone();
    let mut h = Harness::builder()
        .with_size([1500.0, 950.0])
        .with_accessibility_check(false)
        .allow_missing_glyphs()
        .with_max_steps(30)
        .build_eframe(move |cc| LabApp::with_runs_dir(&cc.egui_ctx, d.clone()));
    let s = h.state_mut().settings_mut();
    s.net.family = "mlp-plain".into();
    s.net.depth = 3;
    s.net.width = 16;
    h.state_mut().rebuild_spec();
    h.get_by_label("Designer").click();
    h.run_ok();
    assert_eq!(h.state().tab(), Tab::Designer);
    (h, dir)
}

fn node_rect(h: &Harness<'static, LabApp>, name: &str) -> Rect {
    h.get_by_label_contains(&format!("node {name} |")).rect()
}

/// Selects node `from`, Shift+clicks node `to` and presses "Add skip", as a user would.
fn add_skip_by_selection(h: &mut Harness<'static, LabApp>, from: &str, to: &str) {
    h.get_by_label_contains(&format!("node {from} |")).click();
    h.run_ok();
    h.get_by_label_contains(&format!("node {to} |"))
        .click_modifiers(Modifiers::SHIFT);
    h.run_ok();
    h.get_by_label("Add skip").click();
    h.run_ok();
}

fn spec(h: &Harness<'static, LabApp>) -> NetSpec {
    h.state().designer().spec().clone()
}

fn mnist_opts() -> PresetOptions {
    PresetOptions::for_dataset(&DatasetSpec::new(DataSource::Mnist10k))
}

#[test]
fn dragging_from_one_node_to_another_puts_the_skip_in_the_spec() {
    let (mut h, dir) = harness("drag");
    assert!(spec(&h).skips.is_empty());
    let a = node_rect(&h, "input.act").right_center() - egui::vec2(20.0, 0.0);
    let b = node_rect(&h, "block1.bn").center();
    h.hover_at(a);
    h.step();
    h.drag_at(a);
    h.step();
    h.hover_at(a + egui::vec2(0.0, 12.0));
    h.step();
    h.hover_at(b);
    h.step();
    h.drop_at(b);
    h.step();
    h.run_ok();
    let s = spec(&h);
    assert_eq!(s.skips, vec![SkipSpec::identity("input.act", "block1.bn")]);
    // The edge is what Train uses (named for the edit), and it is drawn.
    let trained = h.state().train_spec().unwrap().clone();
    assert_eq!(trained.name, "mlp-plain-3 + 1 skip");
    assert_eq!(
        NetSpec {
            name: s.name.clone(),
            ..trained
        },
        s
    );
    h.get_by_label("skip input.act to block1.bn");
    assert!(h.state().train_blocker().is_none());

    // The keyboard path: select two nodes, then "Add skip".
    add_skip_by_selection(&mut h, "block1.act", "block2.bn");
    assert_eq!(
        spec(&h).skips,
        vec![
            SkipSpec::identity("input.act", "block1.bn"),
            SkipSpec::identity("block1.act", "block2.bn"),
        ]
    );

    // The same with the keyboard only: focus, Space, focus, Shift+Space, Enter on the button.
    h.get_by_label_contains("node block2.act |").focus();
    h.run_ok();
    h.key_press(egui::Key::Space);
    h.run_ok();
    h.get_by_label_contains("node block3.bn |").focus();
    h.run_ok();
    h.key_press_modifiers(Modifiers::SHIFT, egui::Key::Space);
    h.run_ok();
    h.get_by_label("Add skip").focus();
    h.run_ok();
    h.key_press(egui::Key::Enter);
    h.run_ok();
    assert_eq!(
        spec(&h).skips.last(),
        Some(&SkipSpec::identity("block2.act", "block3.bn"))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_invalid_skip_shows_its_error_and_train_is_disabled_with_the_reason() {
    let (mut h, dir) = harness("invalid");
    // The flattened input has 784 features, block1.bn 16: an identity skip cannot add them.
    add_skip_by_selection(&mut h, "flatten", "block1.bn");
    assert_eq!(
        spec(&h).skips,
        vec![SkipSpec::identity("flatten", "block1.bn")]
    );
    let reason = "flatten has shape 784 but block1.bn has 16";
    assert!(
        h.query_all_by_label_contains(reason).count() >= 1,
        "the error is shown"
    );
    let train = h.get_by_label("Train");
    assert!(train.accesskit_node().is_disabled(), "Train is disabled");
    let why = h.state().train_blocker().expect("a reason");
    assert!(why.contains(reason), "{why}");
    assert!(why.contains("use a projection"), "{why}");

    // The one-click fix.
    h.get_by_label("Use a projection").click();
    h.run_ok();
    assert!(h.state().train_blocker().is_none());
    assert!(!h.get_by_label("Train").accesskit_node().is_disabled());
    assert_eq!(h.query_all_by_label_contains(reason).count(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn undo_restores_the_previous_spec_and_redo_reapplies() {
    let (mut h, dir) = harness("undo");
    let before = spec(&h);
    h.get_by_label("BN nowhere").click();
    h.run_ok();
    let after = spec(&h);
    assert_ne!(before, after);
    assert!(after.layers.len() < before.layers.len());

    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::Z);
    h.run_ok();
    assert_eq!(spec(&h), before, "Ctrl+Z");
    assert_eq!(h.state().train_spec().unwrap(), &before);
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, egui::Key::Z);
    h.run_ok();
    assert_eq!(spec(&h), after, "Ctrl+Shift+Z");
    let trained = h.state().train_spec().unwrap().clone();
    assert_eq!(trained.name, "custom (from mlp-plain-3)");
    assert_eq!(
        NetSpec {
            name: after.name.clone(),
            ..trained
        },
        after
    );

    h.get_by_label("Undo").click();
    h.run_ok();
    assert_eq!(spec(&h), before, "the Undo button");
    h.get_by_label("Redo").click();
    h.run_ok();
    assert_eq!(spec(&h), after, "the Redo button");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn remove_all_skips_on_cifar_resnet_20_gives_cifar_plain_20() {
    let (mut h, dir) = harness("plain");
    // Load the preset through the designer's own menu.
    h.get_by_label("Load preset").click();
    h.run_ok();
    h.get_by_label("cifar-resnet-20").click();
    h.run_ok();
    // The menu goes through the settings on the left: the lab's CIFAR shortcut (zero-pad).
    let opts = PresetOptions {
        shortcut: PresetOptions::LAB_SHORTCUT,
        ..mnist_opts()
    };
    assert_eq!(h.state().settings().net.family, "cifar-resnet");
    assert_eq!(spec(&h), preset("cifar-resnet-20", &opts).unwrap());
    assert_eq!(spec(&h).skips.len(), 9);
    h.get_by_label("Remove all skips").click();
    h.run_ok();
    assert_eq!(spec(&h), preset("cifar-plain-20", &opts).unwrap());
    assert_eq!(
        h.state().train_spec().unwrap(),
        &preset("cifar-plain-20", &opts).unwrap()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_preset_survives_spec_to_designer_to_spec_unchanged() {
    let (mut h, dir) = harness("presets");
    let opts = mnist_opts();
    for name in PRESET_EXAMPLES {
        let original = preset(name, &opts).unwrap();
        h.state_mut().designer_mut().load(original.clone());
        h.run_ok();
        // Select a layer and its skip so that the inspector's editors are drawn too.
        let first = original.layers[1].name.clone();
        h.get_by_label_contains(&format!("node {first} |")).click();
        h.run_ok();
        if let Some(s) = original.skips.first() {
            h.get_by_label(&format!("skip {} to {}", s.from, s.to))
                .click();
            h.run_ok();
        }
        h.run_steps(2);
        assert_eq!(spec(&h), original, "{name} through the designer");
        assert_eq!(
            h.state().train_spec().unwrap(),
            &original,
            "{name} trains as is"
        );
        // Export and import go through JSON.
        let json = serde_json::to_string_pretty(h.state().designer().spec()).unwrap();
        let back: NetSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original, "{name} through JSON");
    }
    // The loop ended on the last example.
    assert_eq!(spec(&h).name, *PRESET_EXAMPLES.last().unwrap());
    // The deepest preset: repeated blocks collapse into one row each.
    h.state_mut()
        .designer_mut()
        .load(preset("cifar-resnet-110", &opts).unwrap());
    h.run_ok();
    // Stage 1's blocks are all alike; in stages 2 and 3 the first block (stride 2, projection)
    // differs, so the run starts at block 2.
    h.get_by_label_contains("[+] stage2.block3-18 x16");
    h.get_by_label_contains("[+] stage1.block2-18 x17").click();
    h.run_ok();
    h.get_by_label_contains("[-] stage1.block2-18 x17");
    h.get_by_label_contains("node stage1.block2.conv1 |");
    assert!(
        h.query_by_label_contains("[+] stage1.block2-18 x17")
            .is_none()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn editing_while_a_run_trains_leaves_the_run_alone() {
    let (mut h, dir) = harness("live");
    let s = h.state_mut().settings_mut();
    s.dataset = DatasetSpec::new(DataSource::Spirals {
        samples: 400,
        classes: 2,
        noise: 0.05,
    });
    s.config.duration = Steps::Steps(100_000);
    s.config.batch_size = 32;
    h.state_mut().rebuild_spec();
    h.run_ok();
    let started = spec(&h);
    h.get_by_label("Train").click();
    let t = Instant::now();
    while !h.state().registry().is_training() {
        assert!(t.elapsed() < Duration::from_secs(60));
        h.step();
    }
    h.step();
    assert!(h.query_by_label_contains("spec changed since").is_none());
    h.get_by_label("BN nowhere").click();
    h.step();
    h.step();
    assert_ne!(spec(&h), started);
    h.get_by_label_contains("The spec changed since the running run started");
    let run = h.state().registry().shown().unwrap();
    assert_eq!(
        run.file.spec, started,
        "the run keeps the spec it started with"
    );
    h.get_by_label("Stop").click();
    let t = Instant::now();
    while h.state().registry().is_training() {
        assert!(t.elapsed() < Duration::from_secs(60));
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_spec_exported_as_json_imports_unchanged() {
    let (mut h, dir) = harness("json");
    let original = preset("cifar-resnet-20", &mnist_opts()).unwrap();
    h.state_mut().designer_mut().load(original.clone());
    h.run_ok();
    let path = dir.join("net.json");
    h.get_by_label("Spec file").focus();
    h.get_by_label("Spec file")
        .type_text(path.to_str().unwrap());
    h.run_ok();
    h.get_by_label("Export to path").click();
    h.run_ok();
    let t = Instant::now();
    let exported = |a: &LabApp| a.messages().iter().any(|m| m.text.starts_with("exported"));
    while !exported(h.state()) {
        assert!(t.elapsed() < Duration::from_secs(20), "the export");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    let written: NetSpec = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(written, original);
    h.get_by_label("Remove all skips").click();
    h.run_ok();
    assert_ne!(spec(&h), original);
    h.get_by_label("Import from path").click();
    h.run_ok();
    assert_eq!(spec(&h), original);
    assert_eq!(h.state().train_spec().unwrap(), &original);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn blocks_repeat_and_templates_insert_through_the_inspector() {
    let (mut h, dir) = harness("blocks");
    let opts = mnist_opts();
    h.state_mut()
        .designer_mut()
        .load(preset("cifar-resnet-8", &opts).unwrap());
    h.run_ok();
    // Selecting one layer of stage1.block1 makes the whole block the one to repeat.
    h.get_by_label_contains("node stage1.block1.conv1 |")
        .click();
    h.run_ok();
    h.get_by_label("Repeat block x 1").click();
    h.run_ok();
    let s = spec(&h);
    assert!(s.index_of("stage1.block2.bn2").is_some());
    assert!(s.skips.contains(&SkipSpec::identity(
        "stage1.block1.act2",
        "stage1.block2.bn2"
    )));
    // A pre-activation block after the stem.
    h.get_by_label_contains("node stem.act |").click();
    h.run_ok();
    h.get_by_label("block template").click();
    h.run_ok();
    h.get_by_label("pre-activation block").click();
    h.run_ok();
    h.get_by_label("Insert block").click();
    h.run_ok();
    let s = spec(&h);
    let at = s.index_of("stem.act").unwrap();
    assert_eq!(s.layers[at + 1].name, "block1.bn1");
    assert!(
        s.skips
            .contains(&SkipSpec::identity("stem.act", "block1.conv2"))
    );
    assert!(h.state().train_blocker().is_none(), "still valid");
    // Delete and duplicate keep the spec valid.
    h.get_by_label_contains("node block1.conv2 |").click();
    h.run_ok();
    h.get_by_label("Duplicate").click();
    h.run_ok();
    assert!(spec(&h).index_of("block1.conv2-2").is_some());
    h.get_by_label("Delete").click();
    h.run_ok();
    assert!(spec(&h).index_of("block1.conv2-2").is_none());
    assert!(h.state().train_blocker().is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_selected_layer_width_is_edited_in_its_node_and_undone_in_one_step() {
    let (mut h, dir) = harness("inline");
    let before = spec(&h);
    h.get_by_label_contains("node block1.fc |").click();
    h.run_ok();
    // The node's own number field (the inspector's says "out 16").
    let field = h.get_by_value("linear 16");
    field.set_value_accesskit(24.0);
    h.run_ok();
    let s = spec(&h);
    let i = s.index_of("block1.fc").unwrap();
    assert_eq!(
        s.layers[i].op,
        reslab::spec::LayerOp::Linear {
            out: 24,
            bias: true
        }
    );
    // block1.bn now normalises 24 features: the spec stays valid (no skips).
    assert!(h.state().train_blocker().is_none());
    h.get_by_label("Undo").click();
    h.run_ok();
    assert_eq!(spec(&h), before);
    let _ = std::fs::remove_dir_all(dir);
}

/// LayerNorm and GroupNorm come from the palette like any layer: chosen in the kind menu and
/// added below the selection, sized for the channels there, and the network stays valid.
#[test]
fn layer_and_group_norm_are_added_from_the_palette() {
    let (mut h, dir) = harness("norms");
    let first = spec(&h).layers[0].name.clone();
    for (kind, op) in [("layer norm", "layernorm"), ("group norm", "groupnorm 16")] {
        h.get_by_label_contains(&format!("node {first} |")).click();
        h.run_ok();
        h.get_by_label("kind of layer to add").click();
        h.run_ok();
        h.get_by_label(kind).click();
        h.run_ok();
        h.get_by_label("Add below").click();
        h.run_ok();
        let s = spec(&h);
        assert_eq!(s.layers[1].op_label(), op, "{:?}", s.layers[1]);
        assert!(reslab::spec::validate(&s).is_ok());
        // The new layer is selected and the inspector shows its fields.
        h.get_by_label("Epsilon");
    }
    h.get_by_label("Groups");
    let _ = std::fs::remove_dir_all(&dir);
}
