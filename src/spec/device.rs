//! Where a run trains, as data: this machine's CPU, its GPU, or a `reslab serve` endpoint that
//! burn's remote backend reaches over a WebSocket.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The environment variable holding the token a `reslab serve` asks for (read by the server and
/// by every client; never written into a run file).
pub const TOKEN_VAR: &str = "RESLAB_REMOTE_TOKEN";

/// The longest endpoint address taken (`ws://` + host + `:` + port).
pub const MAX_ENDPOINT: usize = 300;

/// Where a run trains. Stored in run files as `"cpu"`, `"gpu"` or `{"remote": "ws://host:port"}`
/// (the token a server asks for is never stored: it comes from `RESLAB_REMOTE_TOKEN`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// burn-flex on the CPU.
    #[default]
    Cpu,
    /// wgpu (Vulkan, Metal or DirectX) when an adapter is available.
    Gpu,
    /// The device a `reslab serve` at this address hosts, through burn's remote backend.
    Remote(Endpoint),
}

/// A `reslab serve` address: `ws://HOST:PORT`, checked when made and when read from a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint(String);

impl Endpoint {
    /// Checks `url` (`ws://HOST:PORT`: a host of letters, digits, `.`, `-`, `_` or a bracketed
    /// IPv6 address; a port 1–65535; nothing after it).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| format!("remote endpoint \"{url}\": {why}; write ws://HOST:PORT");
        if url.len() > MAX_ENDPOINT {
            return Err(bad(&format!("longer than {MAX_ENDPOINT} characters")));
        }
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| bad("it must start with ws://"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("the port is missing"))?;
        let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
        if !port_ok {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        let plain = |h: &str| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let v6 = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
        if !(plain(host) || v6) {
            return Err(bad("the host has characters a host name cannot have"));
        }
        Ok(Endpoint(url.to_string()))
    }

    /// The address, `ws://HOST:PORT`.
    pub fn url(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Endpoint::parse(&s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DeviceChoice {
    /// Reads `cpu`, `gpu` or `remote:ws://HOST:PORT` (the command line's spelling).
    pub fn parse(text: &str) -> Result<DeviceChoice, String> {
        match text {
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            _ => match text.strip_prefix("remote:") {
                Some(url) => Endpoint::parse(url).map(DeviceChoice::Remote),
                None => Err(format!(
                    "unknown device \"{text}\"; use cpu, gpu or remote:ws://HOST:PORT"
                )),
            },
        }
    }

    /// Whether the tensors live on this machine's CPU, where the fused kernels and the streamed
    /// statistics run.
    pub fn is_local_cpu(&self) -> bool {
        matches!(self, DeviceChoice::Cpu)
    }

    /// The backend's name for run files: `flex`, `wgpu` or `remote`.
    pub fn backend(&self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "flex",
            DeviceChoice::Gpu => "wgpu",
            DeviceChoice::Remote(_) => "remote",
        }
    }

    /// The device in words, for run files and status bars.
    pub fn describe(&self) -> String {
        match self {
            DeviceChoice::Cpu => "CPU (burn-flex)".into(),
            DeviceChoice::Gpu => "GPU (wgpu)".into(),
            DeviceChoice::Remote(e) => format!("the server at {e}"),
        }
    }
}

impl fmt::Display for DeviceChoice {
    /// The command line's spelling, which [`DeviceChoice::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Gpu => f.write_str("gpu"),
            DeviceChoice::Remote(e) => write!(f, "remote:{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_each_device() {
        for text in [
            "cpu",
            "gpu",
            "remote:ws://127.0.0.1:4600",
            "remote:ws://gpu-box.lan:80",
        ] {
            let d = DeviceChoice::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
        }
        assert!(DeviceChoice::parse("remote:ws://[::1]:4600").is_ok());
    }

    #[test]
    fn refuses_bad_endpoints_with_the_reason() {
        for (text, why) in [
            ("tpu", "unknown device"),
            ("remote:http://a:1", "ws://"),
            ("remote:ws://a", "port is missing"),
            ("remote:ws://a:0", "1 to 65535"),
            ("remote:ws://a:99999", "1 to 65535"),
            ("remote:ws://a b:1", "characters"),
            ("remote:ws://a/path:1", "characters"),
            ("remote:ws://:1", "characters"),
        ] {
            let e = DeviceChoice::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        let long = format!("remote:ws://{}:1", "a".repeat(400));
        assert!(DeviceChoice::parse(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn old_files_read_and_remote_round_trips() {
        let cpu: DeviceChoice = serde_json::from_str("\"cpu\"").unwrap();
        assert_eq!(cpu, DeviceChoice::Cpu);
        let gpu: DeviceChoice = serde_json::from_str("\"gpu\"").unwrap();
        assert_eq!(gpu, DeviceChoice::Gpu);
        let r = DeviceChoice::parse("remote:ws://h:5").unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"remote":"ws://h:5"}"#);
        assert_eq!(serde_json::from_str::<DeviceChoice>(&text).unwrap(), r);
        let bad = serde_json::from_str::<DeviceChoice>(r#"{"remote":"http://h:5"}"#);
        assert!(bad.unwrap_err().to_string().contains("ws://"));
    }
}
