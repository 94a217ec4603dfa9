//! Serving this machine's device to remote clients: burn's `RemoteServer` over a WebSocket on a
//! listener the caller bound, opening only the sessions that present the token.

use super::make_device;
use crate::spec::DeviceChoice;
use burn::tensor::server::{RemoteServer, TokenAuthorizer, WebSocketTransport};
use std::net::TcpListener;

/// Serves `device` (this machine's CPU or GPU; burn refuses a remote one) on `listener` until Ctrl-C or SIGTERM, to the
/// clients that present `token` (not empty); `ready` runs once the device works, before the
/// first session is taken. An error says why it could not start or stopped.
pub fn serve(
    device: &DeviceChoice,
    (listener, token): (TcpListener, &str),
    ready: impl FnOnce(),
) -> Result<(), String> {
    let device = make_device(device, false).map_err(|e| e.to_string())?;
    let authorizer = TokenAuthorizer::new(token.to_string()).map_err(|e| e.to_string())?;
    ready();
    RemoteServer::new([device])
        .with_authorizer(authorizer)
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|e| format!("the server stopped: {e}"))
}
