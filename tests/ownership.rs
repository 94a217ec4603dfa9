//! A run's files are its own (issue 19): one test per finding of the review (findings 4, 6, 9's
//! unknown fields and 10's gzip message are in `tests/hostile.rs`), the concurrency test and the
//! property test over train / resume / copy / move / rename / export. The tests drive the binary
//! (`RESLAB_BIN` runs them against another build); each finding's test failed against the
//! build before the fix.

mod common;

use common::cli::{SPIRALS_NET, bin, s, small_run_args, wait_for};

use reslab::runfile::{self, RunStatus};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary to its end (killed after two minutes); exit code and stdout + stderr.
fn reslab(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{args:?} panicked: {text}");
    (out.status.code(), text)
}

/// `reslab train` of the small spirals MLP to `out`; exit code and output.
fn train(out: &Path) -> (Option<i32>, String) {
    let mut args = vec!["train"];
    args.extend(small_run_args());
    args.extend(["--out", s(out)]);
    reslab(&args)
}

fn trained(dir: &Path, name: &str) -> PathBuf {
    let (code, text) = train(&dir.join(name));
    assert_eq!(code, Some(0), "{text}");
    dir.join(format!("{name}.reslab.json"))
}

fn loads(path: &Path) -> runfile::LoadedRun {
    runfile::load(path).unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()))
}

/// Every file in `dir`, sorted, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn finding_1_saving_one_run_never_deletes_a_copys_or_a_moved_runs_files() {
    let dir = common::temp_dir("own", "f1");
    let a = trained(&dir, "a");
    let backup = dir.join("backup.reslab.json");
    std::fs::copy(&a, &backup).unwrap();
    let (code, text) = reslab(&["resume", s(&a), "--steps", "3"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(loads(&backup).checkpoint.unwrap().step, 12);
    assert_eq!(loads(&a).checkpoint.unwrap().step, 15);
    let (code, text) = reslab(&["inspect", s(&backup)]);
    assert_eq!(code, Some(0), "{text}");

    // Moved away, and a new run trained under the old name, twice.
    let keep = dir.join("keep.reslab.json");
    std::fs::rename(&a, &keep).unwrap();
    trained(&dir, "a");
    trained(&dir, "a");
    assert_eq!(loads(&keep).checkpoint.unwrap().step, 15);
    loads(&backup);
}

#[test]
fn finding_1_a_run_whose_name_extends_another_keeps_its_weights() {
    // A run file `exp.202611301200` whose weights file is named as older builds named it.
    let dir = common::temp_dir("own", "f1v1");
    let old = trained(&dir, "exp.202611301200");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&old).unwrap()).unwrap();
    let from = dir.join(v["weights"]["path"].as_str().unwrap());
    let legacy = "exp.202611301200.weights.safetensors";
    std::fs::rename(&from, dir.join(legacy)).unwrap();
    v["weights"]["path"] = serde_json::json!(legacy);
    std::fs::write(&old, serde_json::to_vec(&v).unwrap()).unwrap();
    loads(&old);
    trained(&dir, "exp");
    trained(&dir, "exp");
    loads(&old);
}

#[test]
fn finding_2_names_that_sanitise_alike_keep_their_own_files() {
    let dir = common::temp_dir("own", "f2");
    let long_a = format!("{}a", "n".repeat(110));
    let long_b = format!("{}b", "n".repeat(110));
    for (x, y) in [
        ("my_run", "my run"),
        (".a", "a"),
        ("a..b", "a_b"),
        ("données", "donn_es"),
        (long_a.as_str(), long_b.as_str()),
    ] {
        let px = trained(&dir, x);
        let py = trained(&dir, y);
        assert_ne!(px, py);
        assert!(px.exists() && py.exists(), "{x:?} and {y:?} are two files");
        let (code, text) = reslab(&["resume", s(&px), "--steps", "2"]);
        assert_eq!(code, Some(0), "{text}");
        assert_eq!(loads(&py).checkpoint.unwrap().step, 12, "{y:?} after {x:?}");
        assert_eq!(loads(&px).checkpoint.unwrap().step, 14, "{x:?}");
    }
}

#[test]
fn finding_2_a_second_writer_of_one_run_file_is_refused() {
    let dir = common::temp_dir("own", "f2lock");
    let out = dir.join("r");
    let mut first = long_train(&out, 1);
    let file = dir.join("r.reslab.json");
    assert!(wait_for(&file, 120), "the first writer saves");
    let (code, text) = train(&out);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("in use by process"), "{text}");
    assert!(text.contains(&first.id().to_string()), "{text}");
    stop(&mut first);
    assert_eq!(loads(&file).run.status, RunStatus::Stopped);
}

#[test]
fn finding_2_the_lock_of_a_killed_writer_is_taken_over() {
    let dir = common::temp_dir("own", "f2stale");
    let out = dir.join("r");
    let mut first = long_train(&out, 5);
    let file = dir.join("r.reslab.json");
    assert!(wait_for(&file, 120), "the first writer saves");
    signal(&first, "-KILL");
    let _ = first.wait();
    assert!(
        dir.join(".r.reslab.json.lock").exists(),
        "kill -9 leaves the lock file behind"
    );
    let (code, text) = reslab(&["resume", s(&file), "--steps", "2"]);
    assert_eq!(
        code,
        Some(0),
        "the dead writer's lock is taken over: {text}"
    );
    loads(&file);
    assert!(
        !dir.join(".r.reslab.json.lock").exists(),
        "and removed after"
    );
}

fn cifar_dir(dir: &Path) -> PathBuf {
    let d = dir.join("cifar");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("data_batch_1.bin"), b"not cifar").unwrap();
    d
}

#[test]
fn finding_3_a_train_that_fails_before_its_first_step_writes_nothing() {
    let dir = common::temp_dir("own", "f3");
    let b = trained(&dir, "b");
    let cifar = cifar_dir(&dir);
    let before = snapshot(&dir);
    let ds = format!("cifar10:{}", cifar.display());
    let (code, text) = reslab(&[
        "train",
        "--preset",
        "mlp-res-2",
        "--dataset",
        &ds,
        "--out",
        s(&dir.join("b")),
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(snapshot(&dir), before, "the folder is as it was");
    assert_eq!(loads(&b).run.status, RunStatus::Finished);

    // A fresh name in a folder that does not exist yet: nothing is left behind either.
    let out = dir.join("new-folder").join("c");
    let (code, text) = reslab(&["train", "--dataset", &ds, "--out", s(&out)]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn finding_3_a_refused_resume_leaves_the_run_untouched() {
    let dir = common::temp_dir("own", "f3resume");
    let a = trained(&dir, "a");
    // The same run, now pointing at a data folder that is not there.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let missing = dir.join("gone");
    v["dataset"]["source"] = serde_json::json!({"type": "cifar10_dir", "dir": missing});
    let refused = dir.join("refused.reslab.json");
    std::fs::write(&refused, serde_json::to_vec(&v).unwrap()).unwrap();
    let before = snapshot(&dir);
    let (code, text) = reslab(&["resume", s(&refused), "--steps", "3"]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(snapshot(&dir), before, "nothing rewritten");
}

/// A child whose stdout is a pipe nobody reads (its read end closed at once).
fn closed_stdout(args: &[&str]) -> Child {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn finding_5_a_closed_pipe_ends_quietly() {
    let dir = common::temp_dir("own", "f5");
    let a = trained(&dir, "a");
    for args in [
        vec!["presets"],
        vec!["experiment", "--list"],
        vec!["inspect", s(&a)],
    ] {
        let (code, err) = finish(closed_stdout(&args));
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(code, Some(0) | Some(141)),
            "{args:?}: {code:?} {err}"
        );
    }
    let mut args = vec!["train"];
    args.extend(small_run_args());
    let out = dir.join("piped");
    args.extend(["--out", s(&out)]);
    let (code, err) = finish(closed_stdout(&args));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        loads(&dir.join("piped.reslab.json")).run.status,
        RunStatus::Finished
    );
}

#[test]
fn finding_5_a_signal_save_with_a_closed_pipe_ends_quietly() {
    let dir = common::temp_dir("own", "f5hup");
    let out = dir.join("r");
    let mut child = long_train_with(&out, 20, true);
    let file = dir.join("r.reslab.json");
    assert!(wait_for(&file, 120), "an autosave appears");
    signal(&child, "-HUP");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(loads(&file).run.status, RunStatus::Stopped);
}

/// A child process killed when dropped, so that a failing test leaves no writer running.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn long_train(out: &Path, autosave_steps: u64) -> Running {
    long_train_with(out, autosave_steps, false)
}

/// A training that runs until stopped, autosaving every `autosave_steps` steps.
fn long_train_with(out: &Path, autosave_steps: u64, close_stdout: bool) -> Running {
    let every = autosave_steps.to_string();
    let mut args = vec!["train"];
    args.extend(SPIRALS_NET);
    args.extend([
        "--steps",
        "10000000",
        "--probe-every",
        "5",
        "--autosave-steps",
        &every,
        "--autosave-secs",
        "0",
        "--out",
        s(out),
    ]);
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if close_stdout {
        drop(child.stdout.take());
    }
    Running(child)
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn stop(child: &mut Running) {
    signal(child, "-TERM");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn finding_7_readers_never_see_a_hole_while_a_run_autosaves_every_step() {
    let dir = common::temp_dir("own", "f7");
    let a = trained(&dir, "a");
    let mut writer = Running(
        Command::new(bin())
            .args([
                "resume",
                s(&a),
                "--steps",
                "10000000",
                "--autosave-steps",
                "1",
                "--autosave-secs",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let csv = dir.join("out.csv");
    let weights = dir.join("out.safetensors");
    let mut failures = Vec::new();
    for i in 0..60 {
        for args in [
            vec!["inspect", s(&a)],
            vec!["export", s(&a), "--csv", s(&csv), "--weights", s(&weights)],
        ] {
            let (code, text) = reslab(&args);
            if code != Some(0) {
                failures.push(format!("read {i} {args:?}: {text}"));
            }
        }
    }
    // A second writer is refused and changes nothing.
    let (code, text) = reslab(&["resume", s(&a), "--steps", "1"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("in use by process"), "{text}");
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the writer still runs"
    );
    stop(&mut writer);
    assert!(
        failures.is_empty(),
        "{} of 120 reads failed: {failures:?}",
        failures.len()
    );
    let loaded = loads(&a);
    assert_eq!(loaded.run.status, RunStatus::Stopped);
    assert!(loaded.checkpoint.unwrap().step > 12);
}

#[test]
fn finding_7_resumes_racing_for_one_run_file_never_lose_a_step() {
    let dir = common::temp_dir("own", "f7race");
    let a = trained(&dir, "a");
    let done: Vec<u64> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    (0..15)
                        .filter(|_| reslab(&["resume", s(&a), "--steps", "1"]).0 == Some(0))
                        .count() as u64
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: u64 = done.iter().sum();
    assert!(won > 0);
    assert_eq!(
        loads(&a).checkpoint.unwrap().step,
        12 + won,
        "every resume that said it saved a step added one ({done:?})"
    );
}

#[test]
fn finding_8_export_never_writes_over_its_input_and_encodes_deterministically() {
    let dir = common::temp_dir("own", "f8");
    let a = trained(&dir, "a");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let b = trained(&sub, "b");
    let before = snapshot(&dir);
    let before_sub = snapshot(&sub);
    let side = |p: &Path, key: &str| {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        let name = v.pointer(key).unwrap().as_str().unwrap().to_string();
        p.parent().unwrap().join(name)
    };
    let weights = side(&a, "/weights/path");
    let history = side(&a, "/history/file/path");
    // Another run's side files, in another folder, and a lock file.
    let other_history = side(&b, "/history/file/path");
    let other_weights = side(&b, "/weights/path");
    let lock = dir.join(".a.reslab.json.lock");
    for args in [
        vec!["export", s(&a), "--weights", s(&weights)],
        vec!["export", s(&a), "--csv", s(&a)],
        vec!["export", s(&a), "--csv", s(&history)],
        vec!["export", s(&a), "--csv", s(&other_history)],
        vec!["export", s(&a), "--weights", s(&other_weights)],
        vec!["export", s(&a), "--csv", s(&lock)],
    ] {
        let (code, text) = reslab(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains("refusing to write over"), "{text}");
    }
    assert_eq!(snapshot(&dir), before);
    assert_eq!(snapshot(&sub), before_sub);
    loads(&a);
    loads(&b);
    let out = dir.join("x.safetensors");
    let mut hashes = Vec::new();
    for _ in 0..4 {
        let (code, text) = reslab(&["export", s(&a), "--weights", s(&out)]);
        assert_eq!(code, Some(0), "{text}");
        hashes.push(std::fs::read(&out).unwrap());
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "four exports, one encoding"
    );
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        hashes[0],
        "the run's own encoding"
    );
}

#[test]
fn finding_9_out_must_name_a_file_and_configs_must_be_objects() {
    let dir = common::temp_dir("own", "f9");
    for out in ["/", ".", "..", &format!("{}/", dir.display())] {
        let (code, text) = train(Path::new(out));
        assert_eq!(code, Some(2), "--out {out}: {text}");
        assert!(text.contains("names"), "{text}");
    }
    assert!(!Path::new("run.reslab.json").exists());
    let config = dir.join("config.json");
    std::fs::write(&config, "[]").unwrap();
    let mut args = vec!["train"];
    args.extend(small_run_args());
    let out = dir.join("x");
    args.extend(["--config", s(&config), "--out", s(&out)]);
    let (code, text) = reslab(&args);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("JSON object"), "{text}");
}

#[test]
fn finding_9_inspect_shows_escapes_instead_of_sending_them() {
    let dir = common::temp_dir("own", "f9esc");
    let mut args = vec!["train"];
    args.extend(small_run_args());
    let out = dir.join("a");
    args.extend([
        "--notes",
        "hello\u{1b}[2J\u{1b}]0;owned\u{7}",
        "--out",
        s(&out),
    ]);
    let (code, text) = reslab(&args);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = reslab(&["inspect", s(&dir.join("a.reslab.json"))]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("hello\\u{1b}[2J"), "{text}");
}

#[test]
fn finding_10_negative_numbers_are_refused_with_the_reason() {
    for (flag, value) in [("--seed", "-1"), ("--width", "-1"), ("--lr", "-inf")] {
        let (code, text) = reslab(&["train", flag, value, "--out", "/tmp/reslab-never"]);
        assert_eq!(code, Some(2), "{flag} {value}: {text}");
        assert!(!text.contains("unexpected argument"), "{text}");
        assert!(
            text.contains("negative") || text.contains("> 0"),
            "{flag} {value}: {text}"
        );
    }
}

#[test]
fn finding_10_messages_name_the_field_and_the_side_file() {
    let dir = common::temp_dir("own", "f10");
    let a = trained(&dir, "a");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let good = v.clone();
    v["status"] = serde_json::json!("exploded");
    std::fs::write(&a, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, text) = reslab(&["inspect", s(&a)]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("status"), "{text}");
    assert!(!text.contains("(structure)"), "{text}");

    let mut v = good.clone();
    v["history"]["file"]["bytes"] = serde_json::json!(1u64 << 40);
    std::fs::write(&a, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, text) = reslab(&["inspect", s(&a)]);
    assert_eq!(code, Some(2), "{text}");
    let side = good["history"]["file"]["path"].as_str().unwrap();
    assert!(text.contains(side), "the side file is named: {text}");

    let (code, text) = reslab(&["inspect", s(&dir.join("missing.reslab.json"))]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(text.matches("cannot read").count(), 1, "one prefix: {text}");
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn reslab_cp_and_mv_carry_the_side_files_to_another_folder() {
    let dir = common::temp_dir("own", "cpmv");
    let a = trained(&dir, "a");
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let (code, text) = reslab(&["cp", s(&a), s(&other)]);
    assert_eq!(code, Some(0), "{text}");
    let copy = other.join("a.reslab.json");
    // Compared as JSON: NaN (update ratios at step 1) is not equal to itself.
    let json = |p: &Path| serde_json::to_string(&loads(p).run.history).unwrap();
    assert!(json(&copy) == json(&a), "the copy has the same history");
    let (code, text) = reslab(&["cp", s(&a), s(&other)]);
    assert_eq!(code, Some(2), "an existing destination is refused: {text}");
    let (code, text) = reslab(&["cp", s(&a), &format!("{}/", dir.join("new").display())]);
    assert_eq!(
        code,
        Some(0),
        "a folder named with a final / is made: {text}"
    );
    loads(&dir.join("new").join("a.reslab.json"));
    let (code, text) = reslab(&["mv", s(&dir.join("gone.reslab.json")), s(&other)]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no such run file"), "{text}");
    let (code, text) = reslab(&["mv", s(&a), s(&other.join("moved"))]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!a.exists());
    let moved = loads(&other.join("moved.reslab.json"));
    assert_eq!(moved.checkpoint.unwrap().step, 12);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "other" && n != "new")
        .collect();
    assert!(left.is_empty(), "mv took the side files along: {left:?}");
    loads(&copy);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Train(usize),
    Resume(usize),
    Copy(usize, usize),
    Move(usize, usize),
    ReslabCopy(usize, usize),
    ReslabMove(usize, usize),
    Export(usize, usize),
}

const NAMES: [&str; 3] = ["a", "b", "a b"];

fn run_op(dir: &Path, op: &Op) {
    let file = |i: usize| dir.join(format!("{}.reslab.json", NAMES[i]));
    match *op {
        Op::Train(i) => {
            let (code, text) = train(&dir.join(NAMES[i]));
            assert_eq!(code, Some(0), "{op:?}: {text}");
        }
        Op::Resume(i) => {
            let (code, text) = reslab(&["resume", s(&file(i)), "--steps", "2"]);
            assert!(file(i).exists() || code == Some(2), "{op:?}: {text}");
        }
        // `cp a a` refuses; std::fs::copy would truncate the file first.
        Op::Copy(i, j) if i != j => {
            let _ = std::fs::copy(file(i), file(j));
        }
        Op::Copy(..) => {}
        Op::Move(i, j) => {
            let _ = std::fs::rename(file(i), file(j));
        }
        Op::ReslabCopy(i, j) | Op::ReslabMove(i, j) => {
            let verb = if matches!(op, Op::ReslabCopy(..)) {
                "cp"
            } else {
                "mv"
            };
            let (code, text) = reslab(&[verb, s(&file(i)), s(&file(j))]);
            assert!(code == Some(0) || code == Some(2), "{op:?}: {text}");
        }
        Op::Export(i, j) => {
            // Onto another run's file as often as onto a CSV of its own.
            let out = if j == i { dir.join("out.csv") } else { file(j) };
            let (code, text) = reslab(&["export", s(&file(i)), "--csv", s(&out)]);
            assert!(code == Some(0) || code == Some(2), "{op:?}: {text}");
        }
    }
}

/// Every run file in `dir` loads, and its history ends at its weights' step.
fn all_consistent(dir: &Path, after: &[Op]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".reslab.json") {
            continue;
        }
        let loaded = runfile::load(&p)
            .unwrap_or_else(|e| panic!("after {after:?}: {} does not load: {e}", p.display()));
        let step = loaded.checkpoint.map(|c| c.step).unwrap_or(0);
        assert_eq!(
            loaded.run.history.last_step,
            step,
            "after {after:?}: {}",
            p.display()
        );
    }
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let i = 0..NAMES.len();
    prop_oneof![
        2 => i.clone().prop_map(Op::Train),
        2 => i.clone().prop_map(Op::Resume),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Copy(a, b)),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::Move(a, b)),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::ReslabCopy(a, b)),
        1 => (i.clone(), i.clone()).prop_map(|(a, b)| Op::ReslabMove(a, b)),
        1 => (i.clone(), i).prop_map(|(a, b)| Op::Export(a, b)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("RESLAB_OWNERSHIP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(50),
        max_shrink_iters: 8,
        ..Default::default()
    })]
    #[test]
    fn any_sequence_of_file_operations_leaves_every_run_file_whole(
        ops in proptest::collection::vec(op_strategy(), 4..9)
    ) {
        let dir = common::temp_dir("own", "prop");
        for (k, op) in ops.iter().enumerate() {
            run_op(&dir, op);
            all_consistent(&dir, &ops[..=k]);
        }
    }
}
