//! `reslab serve`: this machine's CPU or GPU as a device other machines train on, through
//! burn's remote backend (`burn::server::RemoteServer` over a WebSocket). Every session must
//! present the token ([`crate::spec::TOKEN_VAR`]); the server listens on 127.0.0.1 unless given
//! another address, so the safe way in from another machine is an SSH tunnel (README).

use super::{CliError, bad_input, runtime};
use crate::spec::{DeviceChoice, TOKEN_VAR};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpListener};

/// Arguments of `reslab serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The device served: cpu (burn-flex) or gpu (wgpu).
    #[arg(long, default_value = "cpu", value_parser = local_device)]
    pub device: DeviceChoice,
    /// The port (0: any free port; the address is printed either way).
    #[arg(long, default_value_t = 4600)]
    pub port: u16,
    /// The address to listen on. The default, 127.0.0.1, lets only this machine in (and an SSH
    /// tunnel); another address opens the port to the network, guarded by the token alone, sent
    /// unencrypted.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub address: IpAddr,
}

fn local_device(text: &str) -> Result<DeviceChoice, String> {
    match DeviceChoice::parse(text)? {
        DeviceChoice::Remote(_) => Err("a server serves this machine's cpu or gpu".into()),
        d => Ok(d),
    }
}

/// The token clients must present: `RESLAB_REMOTE_TOKEN` when set, else a new random one
/// (128 bits, hexadecimal) that is printed. The flag says whether it came from the environment.
fn token() -> (String, bool) {
    match std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()) {
        Some(t) => (t, true),
        None => {
            use rand::Rng;
            let bytes: [u8; 16] = rand::rng().random();
            (bytes.iter().map(|b| format!("{b:02x}")).collect(), false)
        }
    }
}

/// Runs `reslab serve` until Ctrl-C or SIGTERM.
pub(crate) fn run(args: ServeArgs) -> Result<(), CliError> {
    let listener = TcpListener::bind((args.address, args.port)).map_err(|e| {
        bad_input(format!(
            "--address {} --port {}: cannot listen there: {e}",
            args.address, args.port
        ))
    })?;
    let local = listener.local_addr().map_err(runtime)?;
    let (token, from_env) = token();
    let url = format!("ws://{local}");
    let ready = || {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "serving {} on {url}", args.device.describe());
        if from_env {
            let _ = writeln!(out, "token: the one in {TOKEN_VAR}");
        } else {
            let _ = writeln!(
                out,
                "token: {token}\n  on the client: export {TOKEN_VAR}={token}"
            );
        }
        let _ = writeln!(
            out,
            "train there: reslab train --device remote:{url} … (Ctrl-C stops the server)"
        );
        if !local.ip().is_loopback() {
            let _ = writeln!(
                out,
                "warning: {} is reachable from the network and the token travels unencrypted; \
                 prefer 127.0.0.1 and an SSH tunnel (README)",
                local.ip()
            );
        }
        let _ = out.flush();
    };
    crate::model::serve(&args.device, (listener, &token), ready)
        .map_err(|e| runtime(format!("{url}: {e}")))
}
