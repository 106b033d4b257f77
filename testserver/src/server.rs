//! The accept loop: HTTP/1.1 over hyper, with "offline" implemented below HTTP.
//!
//! A page that is offline gets no HTTP answer at all: its `fetch` rejects with a network error.
//! `axum::serve` cannot refuse a request without answering it, so connections are served by a
//! hand-written loop (hyper's HTTP/1 connection driver plus `GracefulShutdown`), as in the
//! sandbox. When the router's answer carries [`DropConnection`] (the offline switch is on and the
//! request is an API call under the base path), the loop sets `SO_LINGER` to 0 on the socket and
//! fails the request: hyper drops the connection without writing anything and the close becomes
//! a TCP reset. To set the option after hyper owns the stream, each connection keeps a duplicate
//! handle of its socket (Unix only; elsewhere the close is a plain FIN).

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

use crate::{app, TestServer};

/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Marks an answer that must not be sent: the connection is reset instead.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The error that makes hyper drop a connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("offline: connection dropped")]
struct Offline;

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

fn serve_connection(stream: TcpStream, router: Router, graceful: &GracefulShutdown) {
    let _ = stream.set_nodelay(true);
    let resetter = Arc::new(Resetter::new(&stream));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let resetter = Arc::clone(&resetter);
        async move {
            let response = match router.oneshot(req.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                resetter.arm();
                return Err(Offline);
            }
            Ok(response)
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

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting, lets requests
/// in flight finish (up to [`SHUTDOWN_GRACE`]) and returns.
pub async fn serve<F>(listener: TcpListener, state: TestServer, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let router = app(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => serve_connection(stream, router.clone(), &graceful),
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
            tracing::warn!("shutdown grace period over; dropping the remaining connections");
        }
    }
    Ok(())
}
