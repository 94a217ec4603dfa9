//! One network (issue 23): the settings on the left and the designer describe the same network.
//! A family switch starts from that family's defaults; the designer's Load preset goes through
//! the settings; after a designer edit the left side says the network is custom and the run is
//! named for the edit.

mod common;

use common::lab::{harness, step_until};
use egui_kittest::kittest::Queryable;
use reslab::spec::edit::add_skip;

#[test]
fn a_family_switch_gives_that_familys_default_depth() {
    let dir = common::temp_dir("app-network", "family");
    let mut h = harness(&dir);
    h.run_steps(2);
    // MLP of 20 blocks → CNN ResNet: n = 3 (20 layers), not 6·20 + 2 = 122.
    h.get_by_value("MLP, residual").click();
    h.run_steps(2);
    h.get_by_label("CNN, ResNet (He et al. CIFAR)").click();
    h.run_steps(3);
    let net = &h.state().settings().net;
    assert_eq!((net.family.as_str(), net.depth), ("cifar-resnet", 3));
    assert_eq!(h.state().train_spec().unwrap().name, "cifar-resnet-20");
    // And back: the MLP family's 20 blocks of width 64.
    h.get_by_value("CNN, ResNet (He et al. CIFAR)").click();
    h.run_steps(2);
    h.get_by_label("MLP, plain").click();
    h.run_steps(3);
    let net = &h.state().settings().net;
    assert_eq!((net.depth, net.width), (20, 64));
    assert_eq!(h.state().train_spec().unwrap().name, "mlp-plain-20");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_designers_preset_is_the_left_sides_network() {
    let dir = common::temp_dir("app-network", "preset");
    let mut h = harness(&dir);
    h.get_by_label("Designer").click();
    h.run_steps(2);
    h.get_by_label("Load preset").click();
    h.run_steps(2);
    h.get_by_label("cifar-resnet-56").click();
    h.run_steps(3);
    let net = &h.state().settings().net;
    assert_eq!((net.family.as_str(), net.depth), ("cifar-resnet", 9));
    assert_eq!(h.state().train_spec().unwrap().name, "cifar-resnet-56");
    assert!(!h.state().network_is_custom());
    // The designer's MLP is the lab's: width 64, not a second default of 128.
    h.get_by_label("Load preset").click();
    h.run_steps(2);
    h.get_by_label("mlp-res-20").click();
    h.run_steps(3);
    let spec = h.state().train_spec().unwrap().clone();
    let built = h
        .state()
        .settings()
        .net
        .build(&h.state().settings().dataset)
        .unwrap();
    assert_eq!(spec, built);
    assert_eq!(h.state().settings().net.width, 64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn after_a_designer_edit_the_left_side_and_the_run_say_what_trains() {
    let dir = common::temp_dir("app-network", "edit");
    let mut h = harness(&dir);
    {
        let s = h.state_mut().settings_mut();
        s.net.switch_family("mlp-plain");
        s.net.depth = 3;
        s.net.width = 16;
        s.config.duration = reslab::spec::Duration::Steps(5);
    }
    h.state_mut().rebuild_spec();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("edited in the Designer")
            .is_none()
    );
    h.state_mut()
        .designer_mut()
        .edit(|s| add_skip(s, "block1.act", "block2.act"))
        .unwrap();
    h.run_steps(3);
    assert!(h.state().network_is_custom());
    h.get_by_label_contains("Network: mlp-plain-3 + 1 skip, edited in the Designer");
    h.get_by_label("Train").click();
    step_until(&mut h, "the run", |a| !a.registry().is_training());
    let run = h.state().registry().shown().unwrap();
    assert_eq!(
        run.file.spec.skips.len(),
        1,
        "the designer's network trained"
    );
    assert_eq!(run.file.spec.name, "mlp-plain-3 + 1 skip");
    assert!(
        run.file.name.starts_with("mlp-plain-3-plus-1-skip-"),
        "{}",
        run.file.name
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_plain_and_the_residual_twin_train_in_one_click_each() {
    let dir = common::temp_dir("app-network", "twin");
    let mut h = harness(&dir);
    common::lab::small_settings(h.state_mut(), 10);
    h.run_steps(2);
    h.get_by_label("Train the plain twin (mlp-plain-3)").click();
    step_until(&mut h, "the plain twin", |a| {
        a.registry().runs().len() == 1 && !a.registry().is_training()
    });
    let run = &h.state().registry().runs()[0];
    assert!(run.file.spec.skips.is_empty());
    assert!(
        run.file.name.starts_with("mlp-plain-3-"),
        "{}",
        run.file.name
    );
    assert_eq!(
        h.state().train_spec().unwrap().name,
        "mlp-res-3",
        "the left side stays"
    );
    // From a plain preset, its residual twin.
    h.state_mut().settings_mut().net.family = "mlp-plain".into();
    h.state_mut().rebuild_spec();
    h.run_steps(2);
    h.get_by_label("Train the residual twin (mlp-res-3)")
        .click();
    step_until(&mut h, "the residual twin", |a| {
        a.registry().runs().len() == 2 && !a.registry().is_training()
    });
    let run = &h.state().registry().runs()[1];
    assert_eq!(run.file.spec.skips.len(), 3);
    assert!(run.file.name.starts_with("mlp-res-3-"), "{}", run.file.name);
    let _ = std::fs::remove_dir_all(&dir);
}
