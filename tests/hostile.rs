//! Hostile input, one test per reproducer of issue 12 (and every hostile-file class): each ran
//! against the binary before the fixes and failed (set `RESLAB_BIN` to run them against another
//! build of `reslab`). Files are written in version 1 (everything in one JSON) so that older
//! builds read them too.

mod common;

use common::cli::{SPIRALS_NET, bin, s, small_run_args, wait_for};

use reslab::runfile::{self, RunFile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with a wall-clock limit (killed past it) and, when `vm_kb` is given, an
/// address-space limit, so that a regression cannot hang the suite or eat the machine.
fn run_limited(args: &[&str], secs: u64, vm_kb: Option<u64>) -> (Option<i32>, String, Duration) {
    run_limited_gb(args, secs, vm_kb, "16")
}

/// [`run_limited`] with `RESLAB_MEMORY_LIMIT_GB` set to `limit_gb`.
fn run_limited_gb(
    args: &[&str],
    secs: u64,
    vm_kb: Option<u64>,
    limit_gb: &str,
) -> (Option<i32>, String, Duration) {
    let mut cmd = match vm_kb {
        Some(kb) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -v {kb}; exec \"$0\" \"$@\""))
                .arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    let start = Instant::now();
    let mut child = cmd
        .args(args)
        .env("RESLAB_MEMORY_LIMIT_GB", limit_gb)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    loop {
        if child.try_wait().unwrap().is_some() || start.elapsed().as_secs() >= secs {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let _ = child.kill();
    let out: Output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("panicked"),
        "{args:?} panicked after {elapsed:?}: {text}"
    );
    (out.status.code(), text, elapsed)
}

fn reslab(args: &[&str]) -> (Option<i32>, String) {
    let (code, text, _) = run_limited(args, 120, None);
    (code, text)
}

/// A small finished run (spirals, mlp-res-2 of width 8), trained by the current build.
fn small_run(dir: &Path, name: &str) -> PathBuf {
    small_run_with(Path::new(env!("CARGO_BIN_EXE_reslab")), dir, name)
}

fn small_run_with(binary: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new(binary)
        .arg("train")
        .args(small_run_args())
        .args(["--out", s(&out)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    dir.join(format!("{name}.reslab.json"))
}

/// Rewrites a run file as version 1 (everything in one JSON), editing it on the way.
fn as_v1(path: &Path, out: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut run: RunFile = runfile::load(path).unwrap().run;
    run.version = 1;
    let mut v = serde_json::to_value(&run).unwrap();
    v["version"] = serde_json::json!(1);
    edit(&mut v);
    std::fs::write(out, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(values);
    v
}

fn mnist_dir(dir: &Path, train_hw: u32, test_hw: u32) {
    let n = 8u32;
    let labels: Vec<u8> = (0..n as u8).map(|i| i % 10).collect();
    let px = |hw: u32| vec![7u8; (n * hw * hw) as usize];
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx(&[n, train_hw, train_hw], &px(train_hw)),
    )
    .unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[n], &labels)).unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx(&[n, test_hw, test_hw], &px(test_hw)),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[n], &labels)).unwrap();
}

fn train_on(dataset: &str, out: &Path) -> (Option<i32>, String) {
    let ds = format!("--dataset={dataset}");
    let (code, text, _) = run_limited(
        &[
            "train",
            "--preset",
            "mlp-res-2",
            "--width",
            "8",
            &ds,
            "--steps",
            "3",
            "--out",
            s(out),
        ],
        60,
        Some(6_000_000),
    );
    (code, text)
}

#[test]
fn reproducer_1_test_images_of_another_size_exit_2_naming_the_file() {
    let dir = common::temp_dir("hostile", "r1");
    mnist_dir(&dir, 28, 5);
    let (code, text) = train_on(&format!("mnist:{}", s(&dir)), &dir.join("out"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("t10k-images-idx3-ubyte"), "{text}");
}

#[test]
fn reproducer_2_a_step_counter_near_u64_max_is_refused_not_replayed() {
    let dir = common::temp_dir("hostile", "r2");
    let good = small_run(&dir, "good");
    let bad = dir.join("wrapped.reslab.json");
    as_v1(&good, &bad, |v| {
        v["progress"]["step"] = serde_json::json!(u64::MAX);
    });
    let (code, text, took) = run_limited(&["resume", s(&bad), "--steps", "2"], 20, None);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("progress.step"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn reproducer_3_resume_steps_past_the_limit_is_refused_and_the_file_kept() {
    let dir = common::temp_dir("hostile", "r3");
    let file = small_run_with(&bin(), &dir, "r3");
    let before = std::fs::read(&file).unwrap();
    let (code, text) = reslab(&["resume", s(&file), "--steps", &u64::MAX.to_string()]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("100000000"), "{text}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the run file is untouched"
    );
}

#[test]
fn reproducer_4_a_ten_megabyte_series_name_is_refused_before_export() {
    let dir = common::temp_dir("hostile", "r4");
    let good = small_run(&dir, "good");
    let bad = dir.join("longname.reslab.json");
    as_v1(&good, &bad, |v| {
        v["history"]["series"][0][0]["layer"] = serde_json::json!("x".repeat(10 << 20));
    });
    let csv = dir.join("h.csv");
    for args in [
        vec!["inspect", s(&bad)],
        vec!["export", s(&bad), "--csv", s(&csv)],
    ] {
        let (code, text, _) = run_limited(&args, 60, Some(3_000_000));
        assert_eq!(code, Some(2), "{args:?}: {}", &text[..text.len().min(400)]);
        assert!(
            text.contains("history series"),
            "{}",
            &text[..400.min(text.len())]
        );
    }
    assert!(!csv.exists());
}

#[test]
fn reproducer_5_a_network_too_large_for_memory_is_refused_with_the_estimate() {
    let dir = common::temp_dir("hostile", "r5");
    let spec = serde_json::json!({
        "name": "wide-conv",
        "input": {"kind": "image", "channels": 1, "height": 28, "width": 28},
        "layers": [
            {"name": "conv", "op": {"type": "conv2d", "out": 65536, "kernel": 3, "padding": 1}},
            {"name": "pool", "op": {"type": "global_avg_pool"}},
            {"name": "head", "op": {"type": "head", "outputs": 10}}
        ],
        "skips": []
    });
    let spec_path = dir.join("wide.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let (code, text, took) = run_limited(
        &[
            "train",
            "--spec",
            s(&spec_path),
            "--dataset",
            "mnist",
            "--steps",
            "2",
            "--out",
            s(&dir.join("wide")),
        ],
        60,
        Some(8_000_000),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("needs about") && text.contains("GB"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10));
}

#[test]
fn reproducer_6_symlinks_and_devices_at_the_target_are_refused_not_written_through() {
    let dir = common::temp_dir("hostile", "r6");
    let file = small_run_with(&bin(), &dir, "r6");
    let outside = common::temp_dir("hostile", "r6-outside");
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = dir.join("h.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let (code, text) = reslab(&["export", s(&file), "--csv", s(&link)]);
    // A target that cannot be written as a file is a bad argument (exit 2), refused before
    // anything is written.
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("symbolic link"), "{text}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A device node (a copy of /dev/null made here, so that no system file is at risk) stays one.
    let dev = dir.join("nulldev");
    let made = Command::new("mknod")
        .args([s(&dev), "c", "1", "3"])
        .status()
        .is_ok_and(|st| st.success());
    if made {
        let (code, text) = reslab(&["export", s(&file), "--csv", s(&dev)]);
        assert_eq!(code, Some(2), "{text}");
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(&dev)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
}

#[test]
fn reproducer_7_resuming_a_copy_saves_the_copy_and_leaves_the_original() {
    let dir = common::temp_dir("hostile", "r7");
    let a = small_run_with(&bin(), &dir, "a");
    let b = dir.join("b.reslab.json");
    std::fs::copy(&a, &b).unwrap();
    let (code, text) = reslab(&["resume", s(&b), "--steps", "3"]);
    assert_eq!(code, Some(0), "{text}");
    let la = runfile::load(&a).expect("the original still loads");
    let lb = runfile::load(&b).expect("the copy loads");
    assert_eq!(la.checkpoint.unwrap().step, 12);
    assert_eq!(lb.checkpoint.unwrap().step, 15);
    assert!(lb.run.weights.unwrap().path.starts_with("b."));
}

#[test]
fn reproducer_8_devices_fifos_and_folders_are_refused_without_reading() {
    let dir = common::temp_dir("hostile", "r8");
    let fifo = dir.join("pipe.reslab.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let folder = dir.join("folder.reslab.json");
    std::fs::create_dir(&folder).unwrap();
    for target in [Path::new("/dev/zero"), fifo.as_path(), folder.as_path()] {
        let (code, text, took) = run_limited(&["inspect", s(target)], 20, Some(3_000_000));
        assert_eq!(code, Some(2), "{}: {text}", target.display());
        assert!(text.contains("not a regular file"), "{text}");
        assert!(
            took < Duration::from_secs(5),
            "{}: {took:?}",
            target.display()
        );
    }
}

/// A gzip stream of `header` followed by `zeros` zero bytes, written without holding them.
fn gzip_bomb(path: &Path, header: &[u8], zeros: u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    e.write_all(header).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        e.write_all(&block).unwrap();
    }
    e.finish().unwrap();
}

#[test]
fn reproducer_8_a_gzip_bomb_stops_at_the_size_its_header_announces() {
    let dir = common::temp_dir("hostile", "r8gz");
    mnist_dir(&dir, 28, 28);
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte")).unwrap();
    gzip_bomb(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &idx(&[8], &[0, 1, 2, 3, 4, 5, 6, 7]),
        512 << 20,
    );
    let (code, text) = train_on(&format!("mnist:{}", s(&dir)), &dir.join("out"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("train-labels-idx1-ubyte.gz"), "{text}");
    assert!(
        text.contains("more bytes than the dimensions announce"),
        "{text}"
    );
}

#[test]
fn reproducer_8_huge_sparse_data_files_are_refused_before_reading() {
    let dir = common::temp_dir("hostile", "r8sparse");
    mnist_dir(&dir, 28, 28);
    // A 3 GiB IDX file (sparse: it takes no disk space).
    let f = std::fs::File::create(dir.join("train-images-idx3-ubyte")).unwrap();
    f.set_len(3 << 30).unwrap();
    let (code, text, took) = run_limited(
        &[
            "train",
            "--preset",
            "mlp-res-2",
            "--width",
            "8",
            "--dataset",
            &format!("mnist:{}", s(&dir)),
            "--steps",
            "2",
            "--out",
            s(&dir.join("o")),
        ],
        60,
        Some(6_000_000),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("train-images-idx3-ubyte"), "{text}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // A "valid" 1 GB CIFAR batch (all zeros: label 0, black pixels), also sparse.
    let cifar = common::temp_dir("hostile", "r8cifar");
    let f = std::fs::File::create(cifar.join("data_batch_1.bin")).unwrap();
    f.set_len(3073 * 350_000).unwrap();
    let (code, text) = train_on(&format!("cifar10:{}", s(&cifar)), &cifar.join("o"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("data_batch_1.bin"), "{text}");
}

#[test]
fn reproducer_9_a_run_file_that_contradicts_its_network_is_refused() {
    let dir = common::temp_dir("hostile", "r9");
    let good = small_run(&dir, "good");
    let layout = dir.join("layout.reslab.json");
    as_v1(&good, &layout, |v| {
        v["history"]["layout"]["layers"][0] = serde_json::json!("not-a-layer");
    });
    let fraction = dir.join("fraction.reslab.json");
    as_v1(&good, &fraction, |v| {
        v["dataset"]["validation_fraction"] = serde_json::json!(1.8e19);
    });
    // Weights of another network: rename a layer in the spec and its history (hash and size
    // still match the weights file).
    let renamed = dir.join("renamed.reslab.json");
    as_v1(&good, &renamed, |v| {
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace("block1.fc", "block1.xx");
        *v = serde_json::from_str(&text).unwrap();
    });
    for (file, expect) in [
        (&layout, "history.layout"),
        (&fraction, "validation_fraction"),
        (&renamed, "block1."),
    ] {
        let (code, text) = reslab(&["inspect", s(file)]);
        assert_eq!(code, Some(2), "{}: {text}", file.display());
        assert!(text.contains(expect), "{text}");
    }
}

#[test]
fn reproducer_10_bad_datasets_exit_2_and_name_the_file() {
    let dir = common::temp_dir("hostile", "r10");
    // A folder without the files, a folder reached through a file, a CIFAR batch of 1 record.
    let empty = common::temp_dir("hostile", "r10-empty");
    let (code, text) = train_on(&format!("mnist:{}", s(&empty)), &dir.join("o1"));
    assert_eq!(code, Some(2), "{text}");
    let plain = dir.join("plain-file");
    std::fs::write(&plain, b"x").unwrap();
    let (code, text) = train_on(&format!("fashion:{}/sub", s(&plain)), &dir.join("o2"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("plain-file"), "{text}");
    let cifar = common::temp_dir("hostile", "r10-cifar");
    std::fs::write(cifar.join("data_batch_1.bin"), vec![3u8; 3073]).unwrap();
    let (code, text) = train_on(&format!("cifar10:{}", s(&cifar)), &dir.join("o3"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("data_batch_1.bin"), "{text}");
}

#[test]
fn reproducer_10_an_unusable_output_folder_fails_before_training() {
    let (code, text, took) = run_limited(
        &[
            "train",
            "--preset",
            "mlp-res-2",
            "--width",
            "8",
            "--dataset",
            "mnist",
            "--steps",
            "100000",
            "--out",
            "/proc/nope/x",
        ],
        60,
        None,
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("/proc/nope"), "{text}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn reproducer_10_negative_numbers_are_read_as_numbers() {
    let (code, text) = reslab(&["train", "--lr", "-1", "--out", "/tmp/x"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("lr") && text.contains("> 0"), "{text}");
    assert!(!text.contains("unexpected argument"), "{text}");
}

fn long_train(out: &Path) -> std::process::Child {
    Command::new(bin())
        .args([
            "train",
            "--preset",
            "mlp-res-2",
            "--width",
            "16",
            "--dataset",
            "mnist",
            "--steps",
            "1000000",
            "--probe-every",
            "50",
            "--autosave-steps",
            "20",
            "--autosave-secs",
            "0",
            "--out",
            s(out),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn reproducer_10_sigterm_and_sighup_stop_and_save_like_ctrl_c() {
    for signal in ["-TERM", "-HUP"] {
        let dir = common::temp_dir("hostile", &format!("sig{signal}"));
        let child = long_train(&dir.join("run"));
        let file = dir.join("run.reslab.json");
        assert!(wait_for(&file, 120), "an autosave appears");
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let start = Instant::now();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{signal}: {text}");
        assert!(text.contains("stopped after"), "{text}");
        assert!(start.elapsed() < Duration::from_secs(20));
        let loaded = runfile::load(&file).unwrap();
        assert_eq!(loaded.run.status, runfile::RunStatus::Stopped);
    }
}

#[test]
fn reproducer_10_temporary_files_of_dead_processes_are_cleaned_on_the_next_save() {
    let dir = common::temp_dir("hostile", "r10tmp");
    // Left by a process that no longer exists (pid beyond the kernel's limit) in both naming
    // schemes, and one of a live process (this test), which must stay.
    let dead = [
        ".r.reslab.json.tmp-4194999-0",
        ".r.0123456789ab.weights.safetensors.tmp-4194999-00ff00ff00ff00ff",
    ];
    for n in dead {
        std::fs::write(dir.join(n), b"partial").unwrap();
    }
    let live = format!(".r.reslab.json.tmp-{}-7", std::process::id());
    std::fs::write(dir.join(&live), b"in flight").unwrap();
    small_run_with(&bin(), &dir, "r");
    for n in dead {
        assert!(!dir.join(n).exists(), "{n} was cleaned");
    }
    assert!(dir.join(&live).exists(), "a live process's file stays");
}

#[test]
fn reproducer_11_autosaves_append_instead_of_rewriting_the_history() {
    let dir = common::temp_dir("hostile", "r11");
    let (code, text) = reslab(&[
        "train",
        "--preset",
        "mlp-res-2",
        "--width",
        "8",
        "--dataset",
        "spirals",
        "--steps",
        "400",
        "--probe-every",
        "10",
        "--autosave-steps",
        "20",
        "--autosave-secs",
        "0",
        "--out",
        s(&dir.join("r11")),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let json = dir.join("r11.reslab.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let side = &v["history"]["file"];
    // The 19 autosaves (steps 20 … 380) and the end-of-run snapshot each appended one chunk to
    // one side file (the final save after it has no new point).
    assert_eq!(side["chunks"].as_u64(), Some(20), "{side}");
    let side_len = std::fs::metadata(dir.join(side["path"].as_str().unwrap()))
        .unwrap()
        .len();
    assert_eq!(side["bytes"].as_u64(), Some(side_len));
    // The JSON holds no points: it stays far smaller than the history.
    assert!(
        std::fs::metadata(&json).unwrap().len() < side_len,
        "{side_len}"
    );
    let loaded = runfile::load(&json).unwrap();
    assert_eq!(loaded.run.history.get("loss", "").unwrap().len(), 400);
}

#[test]
fn every_loader_refuses_a_fifo_without_blocking() {
    let dir = common::temp_dir("hostile", "fifos");
    let fifo = dir.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let e = reslab::experiments::ExperimentFile::load(&fifo).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let e = runfile::load(&fifo).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    for name in ["train-images-idx3-ubyte", "data_batch_1.bin"] {
        let d = dir.join(name.replace('-', "_"));
        std::fs::create_dir_all(&d).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(d.join(name))
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(d.join("train-labels-idx1-ubyte"), b"x").unwrap();
        let kind = if name.starts_with("data") {
            "cifar10"
        } else {
            "mnist"
        };
        let spec = reslab::spec::DatasetSpec::from_name(&format!("{kind}:{}", s(&d))).unwrap();
        let e = reslab::data::load(&spec).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    let (code, text) = reslab(&["train", "--spec", s(&fifo), "--out", s(&dir.join("o"))]);
    assert_eq!(code, Some(2), "{text}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn intervals_as_large_as_u64_allows_do_not_overflow() {
    let dir = common::temp_dir("hostile", "intervals");
    let max = u64::MAX.to_string();
    let big = (1u64 << 62).to_string();
    let (code, text) = reslab(&[
        "train",
        "--preset",
        "mlp-res-2",
        "--width",
        "8",
        "--dataset",
        "spirals",
        "--steps",
        "30",
        "--probe-every",
        &big,
        "--autosave-steps",
        &max,
        "--out",
        s(&dir.join("r")),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("finished after 30 steps"), "{text}");
    let (code, text) = reslab(&[
        "resume",
        s(&dir.join("r.reslab.json")),
        "--steps",
        "1",
        "--autosave-steps",
        &max,
    ]);
    assert_eq!(code, Some(0), "{text}");
}

fn write_json(path: &Path, v: &serde_json::Value) -> PathBuf {
    std::fs::write(path, v.to_string()).unwrap();
    path.to_path_buf()
}

/// `reslab train --spec <spec> --dataset <dataset> --steps 3` with more arguments, to `dir/out`.
fn train_spec(dir: &Path, spec: &Path, dataset: &str, more: &[&str]) -> (Option<i32>, String) {
    let out = dir.join("out");
    let mut args = vec![
        "train",
        "--spec",
        s(spec),
        "--dataset",
        dataset,
        "--steps",
        "3",
        "--out",
        s(&out),
    ];
    args.extend_from_slice(more);
    let (code, text, _) = run_limited(&args, 60, Some(4_000_000));
    (code, text)
}

#[test]
fn issue19_finding_4_layers_whose_tensor_names_collide_are_refused_naming_both() {
    let dir = common::temp_dir("hostile", "i19f4");
    let flat = serde_json::json!({"kind": "flat", "features": 2});
    // `optim.m.fc.weight` is also the name of `fc.weight`'s momentum buffer.
    let moment = serde_json::json!({
        "name": "moment", "input": flat,
        "layers": [
            {"name": "fc", "op": {"type": "linear", "out": 8}},
            {"name": "optim.m.fc", "op": {"type": "linear", "out": 8}},
            {"name": "head", "op": {"type": "head", "outputs": 2}}]});
    // A layer `b.shortcut` and the projection of a skip into `b` both make `b.shortcut.weight`.
    let shortcut = serde_json::json!({
        "name": "shortcut", "input": flat,
        "layers": [
            {"name": "a", "op": {"type": "linear", "out": 8}},
            {"name": "b", "op": {"type": "linear", "out": 16}},
            {"name": "b.shortcut", "op": {"type": "linear", "out": 16}},
            {"name": "head", "op": {"type": "head", "outputs": 2}}],
        "skips": [{"from": "a", "to": "b", "shortcut": {"type": "projection"}}]});
    for (name, spec, expect) in [
        ("moment", moment, vec!["\"optim.m.fc\"", "optim."]),
        (
            "shortcut",
            shortcut,
            vec!["\"b.shortcut\"", "into \"b\"", "b.shortcut.weight"],
        ),
    ] {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let path = write_json(&sub.join("spec.json"), &spec);
        let (code, text) = train_spec(&sub, &path, "spirals", &[]);
        assert_eq!(code, Some(2), "{name}: {text}");
        for e in expect {
            assert!(text.contains(e), "{name}: {e} in {text}");
        }
        assert!(!sub.join("out.reslab.json").exists(), "{name}");
    }
}

#[test]
fn issue19_finding_6_the_memory_estimate_counts_evaluation_chunks_and_the_data() {
    let dir = common::temp_dir("hostile", "i19f6");
    // A 1,024-channel conv at batch 1: a step needs 16 MB, evaluating 500 samples at once 4.7 GB.
    let spec = write_json(
        &dir.join("wide.json"),
        &serde_json::json!({
            "name": "wide", "input": {"kind": "image", "channels": 1, "height": 28, "width": 28},
            "layers": [
                {"name": "conv", "op": {"type": "conv2d", "out": 1024, "kernel": 3, "padding": 1}},
                {"name": "pool", "op": {"type": "global_avg_pool"}},
                {"name": "head", "op": {"type": "head", "outputs": 10}}]}),
    );
    let config = write_json(
        &dir.join("batch1.json"),
        &serde_json::json!({"batch_size": 1}),
    );
    let out = dir.join("wide");
    let args = [
        "train",
        "--spec",
        s(&spec),
        "--config",
        s(&config),
        "--dataset",
        "mnist",
        "--steps",
        "2",
        "--out",
        s(&out),
    ];
    let (code, text, took) = run_limited_gb(&args, 120, Some(3_000_000), "1");
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("needs about") && text.contains("evaluation"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // 1,000,000 gaussians of 4,096 dimensions are 16 GB: refused naming the field, not loaded.
    let good = small_run(&dir, "good");
    let big = dir.join("big.reslab.json");
    as_v1(&good, &big, |v| {
        v["dataset"]["source"] = serde_json::json!({
            "type": "gaussians", "samples": 1_000_000, "classes": 2, "dim": 4096, "spread": 1.0});
    });
    let (code, text, took) = run_limited(&["resume", s(&big), "--steps", "1"], 60, Some(4_000_000));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("dataset.source.samples"), "{text}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn issue19_finding_9_unknown_fields_are_refused_naming_the_field() {
    let dir = common::temp_dir("hostile", "i19f9");
    // A config with a misspelt field used to train at the default learning rate.
    let config = write_json(
        &dir.join("config.json"),
        &serde_json::json!({"learning_rate": 5}),
    );
    let out = dir.join("c");
    let mut args = vec!["train"];
    args.extend(SPIRALS_NET);
    args.extend(["--steps", "3", "--config", s(&config), "--out", s(&out)]);
    let (code, text) = reslab(&args);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("learning_rate"), "{text}");
    // Specs: a typo in a struct variant, in a unit variant of a tagged enum, in a layer.
    let layers = |op: serde_json::Value, extra: (&str, serde_json::Value)| {
        let mut fc = serde_json::json!({"name": "fc", "op": op});
        fc[extra.0] = extra.1;
        serde_json::json!({
            "name": "typo", "input": {"kind": "flat", "features": 2},
            "layers": [fc, {"name": "head", "op": {"type": "head", "outputs": 2}}]})
    };
    let none = ("init", serde_json::json!("he"));
    for (name, spec, field) in [
        (
            "bais",
            layers(
                serde_json::json!({"type": "linear", "out": 8, "bais": false}),
                none.clone(),
            ),
            "bais",
        ),
        (
            "unit",
            layers(
                serde_json::json!({"type": "flatten", "start_dim": 1}),
                none.clone(),
            ),
            "start_dim",
        ),
        (
            "layer",
            layers(
                serde_json::json!({"type": "linear", "out": 8}),
                ("bias_sd", serde_json::json!(0.1)),
            ),
            "bias_sd",
        ),
    ] {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let path = write_json(&sub.join("spec.json"), &spec);
        let (code, text) = train_spec(&sub, &path, "spirals", &[]);
        assert_eq!(code, Some(2), "{name}: {text}");
        assert!(text.contains(field), "{name}: {text}");
    }
    // Run files: version 2 as saved, and version 1 with a misspelt field deep inside.
    let good = small_run(&dir, "good");
    let v1_path = dir.join("v1.reslab.json");
    as_v1(&good, &v1_path, |v| {
        v["dataset"]["validation_fraktion"] = serde_json::json!(0.5);
    });
    // Edited in place: the history side file belongs to this run file's name.
    let mut v2: serde_json::Value = serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    v2["progress"]["stepz"] = serde_json::json!(3);
    let v2_path = write_json(&good, &v2);
    for (file, field) in [(&v2_path, "stepz"), (&v1_path, "validation_fraktion")] {
        let (code, text) = reslab(&["inspect", s(file)]);
        assert_eq!(code, Some(2), "{}: {text}", file.display());
        assert!(text.contains(field), "{text}");
    }
}

#[test]
fn issue19_finding_10_multi_member_gzip_idx_files_load_in_full() {
    let dir = common::temp_dir("hostile", "i19f10");
    mnist_dir(&dir, 28, 28);
    // The training images as two gzip members (`cat a.gz b.gz`, pigz): header and half the
    // pixels in the first, the rest in the second.
    let plain = dir.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&plain).unwrap();
    std::fs::remove_file(&plain).unwrap();
    let half = 16 + (bytes.len() - 16) / 2;
    let mut gz = Vec::new();
    for part in [&bytes[..half], &bytes[half..]] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        gz.extend(e.finish().unwrap());
    }
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz).unwrap();
    let (code, text) = train_on(&format!("mnist:{}", s(&dir)), &dir.join("out"));
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("truncated"), "{text}");
}
