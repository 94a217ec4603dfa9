//! Remote training through burn's remote backend (issue 24 item 3), on loopback: `reslab serve`
//! with the CPU backend on 127.0.0.1, clients with `--device remote:ws://…`. Five steps remote
//! equal five steps local within 1e-4; a server killed mid-run ends the run with a saved file
//! and a failure naming the connection, never a hang; a wrong token and a missing server are
//! clear errors; a sweep over two endpoints, one killed halfway, is finished by the other.

mod common;

use common::cli::{SPIRALS_NET, bin, s, text};
use reslab::runfile::{self, RunStatus};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "loopback-test-token";

/// A `reslab serve` child on a free loopback port; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        Server::start_on("0")
    }

    fn start_on(port: &str) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--device", "cpu", "--port", port])
            .env("RESLAB_REMOTE_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    fn device(&self) -> String {
        format!("remote:{}", self.url)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn reslab_with_token(args: &[&str], token: &str) -> Output {
    Command::new(bin())
        .args(args)
        .env("RESLAB_REMOTE_TOKEN", token)
        .output()
        .unwrap()
}

/// The trained weights (not the optimiser's state) of a run file, by name.
fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = runfile::load(path).unwrap().checkpoint.expect("weights");
    ck.tensors
        .into_iter()
        .filter(|t| !t.name.starts_with("optim."))
        .map(|t| (t.name, t.data))
        .collect()
}

#[test]
fn five_steps_remote_equal_five_steps_local() {
    let server = Server::start();
    let dir = common::temp_dir("remote", "equal");
    let train = |device: &str, name: &str| {
        let out = dir.join(name);
        let mut args = vec!["train"];
        args.extend(SPIRALS_NET);
        args.extend(["--steps", "5", "--probe-every", "1", "--device", device]);
        args.extend(["--out", s(&out)]);
        let o = reslab_with_token(&args, TOKEN);
        assert!(o.status.success(), "{device}: {}", text(&o));
        dir.join(format!("{name}.reslab.json"))
    };
    let local = weights(&train("cpu", "local"));
    let remote_file = train(&server.device(), "remote");
    let remote = weights(&remote_file);
    assert_eq!(local.len(), remote.len());
    let mut worst = 0f32;
    for ((name, a), (name_b, b)) in local.iter().zip(&remote) {
        assert_eq!(name, name_b);
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs());
        }
    }
    eprintln!("max |local - remote| after 5 steps: {worst:e}");
    assert!(worst <= 1e-4, "remote differs from local by {worst}");
    let run = runfile::load(&remote_file).unwrap().run;
    assert_eq!(run.environment.backend, "remote");
    assert_eq!(run.config.device.to_string(), server.device());
    assert_eq!(run.status, RunStatus::Finished);
}

#[test]
fn a_killed_server_ends_the_run_with_a_saved_file_and_the_reason() {
    let mut server = Server::start();
    let dir = common::temp_dir("remote", "killed");
    let out = dir.join("cut");
    let mut args = vec!["train"];
    args.extend(SPIRALS_NET);
    let device = server.device();
    args.extend([
        "--steps",
        "1000000",
        "--autosave-steps",
        "5",
        "--device",
        &device,
    ]);
    args.extend(["--out", s(&out)]);
    let mut child = Command::new(bin())
        .args(&args)
        .env("RESLAB_REMOTE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let file = dir.join("cut.reslab.json");
    assert!(common::cli::wait_for(&file, 120), "no autosave");
    server.kill();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run hung after its server was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let o = child.wait_with_output().unwrap();
    let said = text(&o);
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("connection to the remote device {}", server.url)),
        "{said}"
    );
    let loaded = runfile::load(&file).unwrap();
    assert_eq!(loaded.run.status, RunStatus::Failed);
    assert!(loaded.run.history.last_step >= 5);
    assert!(
        loaded.checkpoint.is_some(),
        "the last autosave's weights are kept"
    );
}

#[test]
fn a_wrong_token_and_a_missing_server_are_clear_errors() {
    let server = Server::start();
    let dir = common::temp_dir("remote", "refused");
    let out = dir.join("r");
    let mut args = vec!["train"];
    args.extend(SPIRALS_NET);
    let device = server.device();
    args.extend(["--steps", "3", "--device", &device, "--out", s(&out)]);
    let o = reslab_with_token(&args, "not-the-token");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refused the token"), "{}", text(&o));
    assert!(!dir.join("r.reslab.json").exists());

    // A port nobody listens on: the listener is bound, read and closed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let nobody = format!("remote:ws://127.0.0.1:{port}");
    let mut args = vec!["train"];
    args.extend(SPIRALS_NET);
    args.extend(["--steps", "3", "--device", &nobody, "--out", s(&out)]);
    let started = Instant::now();
    let o = reslab_with_token(&args, TOKEN);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no reslab serve answered"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let o = reslab_with_token(&["train", "--device", "remote:http://x:1"], TOKEN);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ws://"), "{}", text(&o));
}

#[test]
fn serve_listens_on_loopback_unless_told_and_refuses_a_remote_device() {
    let server = Server::start();
    assert!(server.url.starts_with("ws://127.0.0.1:"));
    let o = reslab_with_token(&["serve", "--device", "remote:ws://a:1"], TOKEN);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_sweep_over_two_endpoints_is_finished_by_the_one_left() {
    let mut a = Server::start();
    let b = Server::start();
    let dir = common::temp_dir("remote", "sweep");
    let name = dir.join("two");
    let devices = format!("{},{}", a.device(), b.device());
    let child = Command::new(bin())
        .args([
            "sweep",
            "--families",
            "mlp-plain,mlp-res",
            "--depths",
            "2,3",
        ])
        .args([
            "--seeds",
            "2",
            "--width",
            "8",
            "--steps",
            "40",
            "--dataset",
            "spirals",
        ])
        .args(["--devices", &devices, "--out", s(&name)])
        .env("RESLAB_REMOTE_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sweep_file = dir.join("two.reslab-sweep.json");
    let start = Instant::now();
    loop {
        let done = reslab::sweep::SweepFile::load(&sweep_file)
            .map(|f| f.results.len())
            .unwrap_or(0);
        if done >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "no cell finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill();
    let o = child.wait_with_output().unwrap();
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    assert!(
        said.contains(&format!("{}: ", a.device())) && said.contains("goes to another device"),
        "{said}"
    );
    let sweep = reslab::sweep::SweepFile::load(&sweep_file).unwrap();
    assert_eq!(sweep.results.len(), 8, "every cell finished");
    let on_b = sweep
        .results
        .iter()
        .filter(|r| {
            let run = runfile::load_without_weights(&dir.join(&r.run)).unwrap();
            run.config.device.to_string() == b.device()
        })
        .count();
    assert!(on_b >= 5, "the endpoint left ran the rest ({on_b} of 8)");
}

/// burn 0.22.1 keeps a process's first session with an address and token for the life of the
/// process (its endpoint registry), so a server restarted at the same address answers only a new
/// process: the lab's Connect says so instead of a bare read error. The minimal reproduction of
/// that behaviour: connect, kill the server, start another on the same port, connect again. When
/// burn reconnects, this test fails and the message can go.
#[test]
fn a_restarted_server_needs_a_new_process_and_says_so() {
    use reslab::model::remote_device;
    use reslab::spec::Endpoint;
    let mut first = Server::start();
    let endpoint = Endpoint::parse(&first.url).unwrap();
    assert!(remote_device(&endpoint, Some(TOKEN)).is_ok());
    first.kill();
    let gone = remote_device(&endpoint, Some(TOKEN));
    assert!(gone.is_err(), "a killed server still answered");
    let port = first.url.rsplit(':').next().unwrap().to_string();
    let _second = Server::start_on(&port);
    let again = remote_device(&endpoint, Some(TOKEN))
        .map(|_| ())
        .unwrap_err();
    assert!(again.to_string().contains("restart this reslab"), "{again}");
    // A new process reaches it.
    let o = Command::new(bin())
        .args([
            "bench",
            "--models",
            "mlp-res-20",
            "--steps",
            "2",
            "--device",
        ])
        .arg(format!("remote:{}", first.url))
        .env("RESLAB_REMOTE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}
