//! The accept loop: HTTP/1.1 over hyper, with `down` implemented below HTTP.
//!
//! `axum::serve` cannot refuse a request without answering it, but a faithful outage must look
//! like one to the client: no HTTP response at all. So connections are served by a hand-written
//! loop (hyper's HTTP/1 connection driver plus `GracefulShutdown`), and each request first passes
//! a tiny service that, while `down` is set and the path is under `/api/`, logs the request with
//! status 0, sets `SO_LINGER` to 0 on the socket and fails the request: hyper then drops the
//! connection without writing anything and the close becomes a TCP reset. The control API on the
//! same port keeps answering. To set the option after hyper owns the stream, the loop keeps a
//! duplicate handle of each socket (Unix only; elsewhere the close is a plain FIN).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::api::{app, is_api_path, logged_order_id, MAX_BODY_BYTES};
use crate::state::{RecordedRequest, SandboxState};
use crate::timefmt;

/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The error that makes hyper drop a connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("simulated outage: connection dropped")]
struct SimulatedOutage;

/// A second handle on a connection's socket, to turn its close into a reset.
struct Resetter {
    #[cfg(unix)]
    socket: Option<socket2::Socket>,
}

impl Resetter {
    fn new(stream: &TcpStream) -> Resetter {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            let socket = stream
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(socket2::Socket::from);
            Resetter { socket }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            Resetter {}
        }
    }

    fn arm(&self) {
        #[cfg(unix)]
        if let Some(s) = &self.socket {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
    }
}

async fn drop_request(state: &SandboxState, req: hyper::Request<Incoming>) {
    let received_at_ms = timefmt::now_ms();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let order_id = logged_order_id(state, &parts.method, &parts.uri, &body);
    tracing::info!(method = %parts.method, path = %parts.uri.path(), "api request dropped (down)");
    state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        order_id,
        status: 0,
        received_at_ms,
    });
}

fn serve_connection(
    stream: TcpStream,
    router: Router,
    state: SandboxState,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let resetter = Arc::new(Resetter::new(&stream));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let state = state.clone();
        let resetter = Arc::clone(&resetter);
        async move {
            if is_api_path(req.uri().path()) && state.faults().down {
                drop_request(&state, req).await;
                resetter.arm();
                return Err(SimulatedOutage);
            }
            match router.oneshot(req.map(Body::new)).await {
                Ok(response) => Ok(response),
                Err(never) => match never {},
            }
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed with an error");
        }
    });
}

/// Serves the sandbox on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to [`SHUTDOWN_GRACE`]) and returns.
pub async fn serve<F>(
    listener: TcpListener,
    state: SandboxState,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let router = app(state.clone());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                serve_connection(stream, router.clone(), state.clone(), &graceful)
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over; dropping remaining connections");
        }
    }
    Ok(())
}
