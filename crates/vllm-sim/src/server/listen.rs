//! Serving the router on a TCP listener until a stop or a simulated crash.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::routes::app;
use super::state::{SimError, SimState};

/// Binds `addr`; the listener and the address it got (port 0 picks one).
pub async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), SimError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| SimError::LocalAddr {
            addr: addr.to_owned(),
            source,
        })?;
    Ok((listener, local))
}

/// Serves [`app`] on `listener` in a task until `stop` is cancelled or the
/// engine "crashes". Every accepted socket gets TCP_NODELAY, as uvicorn
/// sets for real vLLM: without it, a token written right after another
/// waits for the client's delayed ACK (about 40 ms on Linux) and every
/// measured gap would carry that artefact.
pub fn spawn_server(
    listener: TcpListener,
    state: Arc<SimState>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let crashed = state.crashed.clone();
    let router = app(state);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let shutdown = async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = crashed.cancelled() => {}
            }
        };
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
    })
}
