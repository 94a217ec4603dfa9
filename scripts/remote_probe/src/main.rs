//! Can burn 0.22.1's remote backend carry training (issue 24 item 3)? A server on 127.0.0.1 with
//! the CPU backend (flex); the client trains a linear least-squares model for 5 SGD steps with
//! autodiff on the remote device and on the local one, and compares the weights.
//!
//! ```sh
//! cd scripts/remote_probe && cargo run --release            # local against remote
//! cargo run --release -- serve 47123 &                       # a server in its own process,
//! QUIET=1 cargo run --release -- client 47123               # a client training round after
//! kill %1                                                    # round: kill the server meanwhile
//! ```
//!
//! Measured 2026-12-07 (2 cores): the remote weights equal the local ones exactly after 5 steps
//! (max difference 0); killing the server makes the client's next read fail at once ("Failed to
//! read tensor: RecvError", a panic from `into_scalar`, an `Err` from `try_into_scalar`), no
//! hang. Building burn with the remote features took 11 min 51 s here.
use burn::prelude::{Device, Tensor};
use burn::remote::RemoteHost;
use burn::server::{RemoteServer, WebSocketTransport};

fn train(device: &Device) -> Vec<f32> {
    let x: Vec<f32> = (0..64 * 8).map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0).collect();
    let t: Vec<f32> = (0..64 * 4).map(|i| ((i * 13 % 29) as f32) / 14.0 - 1.0).collect();
    let x = Tensor::<2>::from_data(burn::tensor::TensorData::new(x, [64, 8]), device);
    let t = Tensor::<2>::from_data(burn::tensor::TensorData::new(t, [64, 4]), device);
    let w0: Vec<f32> = (0..8 * 4).map(|i| ((i * 7 % 11) as f32) / 11.0 - 0.5).collect();
    let mut w = Tensor::<2>::from_data(burn::tensor::TensorData::new(w0, [8, 4]), device);
    for step in 0..5 {
        let wg = w.clone().require_grad();
        let y = x.clone().matmul(wg.clone());
        let loss = (y - t.clone()).powf_scalar(2.0).mean();
        let grads = loss.backward();
        let g = wg.grad(&grads).expect("a gradient");
        let l: f32 = loss.into_scalar::<f32>();
        if std::env::var("QUIET").is_err() {
            println!("  step {step}: loss {l}");
        }
        w = (w - g.mul_scalar(0.1)).detach();
    }
    w.into_data().try_to_vec::<f32>().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let listener = std::net::TcpListener::bind(format!("127.0.0.1:{}", args[2])).unwrap();
        RemoteServer::new([Device::flex()]).serve(WebSocketTransport::from_listener(listener));
        return;
    }
    if args.get(1).map(String::as_str) == Some("client") {
        let host = RemoteHost::websocket(&format!("ws://127.0.0.1:{}", args[2]));
        let remote = Device::remote_options(&host).init().expect("a remote device").autodiff();
        let t0 = std::time::Instant::now();
        for round in 0..100000 {
            let r = std::panic::catch_unwind(|| train(&remote));
            if r.is_err() {
                println!("round {round}: panicked after {:?}", t0.elapsed());
                return;
            }
            if round % 20 == 0 {
                println!("round {round} ok at {:?}", t0.elapsed());
            }
        }
        return;
    }
    let local = Device::flex().autodiff();
    println!("local:");
    let a = train(&local);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = RemoteHost::websocket(&format!("ws://{}", listener.local_addr().unwrap()));
    std::thread::spawn(move || {
        RemoteServer::new([Device::flex()]).serve(WebSocketTransport::from_listener(listener))
    });
    let remote = Device::remote_options(&host).init().expect("a remote device").autodiff();
    println!("remote:");
    let b = train(&remote);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    println!("max |w_local - w_remote| after 5 steps: {diff:e}");
}
