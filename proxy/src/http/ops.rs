//! The operators' endpoints: `GET /healthz` and `GET /metrics`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /healthz`'s answer when the outbox answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// Jobs waiting to be sent.
    pub queue_depth: u64,
    /// `running`, `paused: ...`, or `standing by: ...` (another instance sends).
    pub sender: &'static str,
}

/// `GET /healthz`'s answer when the outbox does not.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Unhealthy {
    /// `unavailable`.
    pub status: &'static str,
    /// Why (never the database's URL).
    pub error: String,
}

/// `GET {base}/healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Health: the outbox answers, the queue's depth, the sender's state",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The outbox is unusable", body = Unhealthy),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.outbox.queue_depth().await {
        Ok(depth) => {
            let m = &state.metrics;
            let paused = m.sender_paused.load(std::sync::atomic::Ordering::Relaxed);
            let active = m.sender_active.load(std::sync::atomic::Ordering::Relaxed);
            let sender = match (active, paused) {
                (false, _) => "standing by: another proxy instance sends for this upstream",
                (true, true) => "paused: Growi refused the API key",
                (true, false) => "running",
            };
            Json(Health {
                status: "ok",
                queue_depth: depth,
                sender,
            })
            .into_response()
        }
        Err(e) => {
            // The reason is safe to show: outbox errors never hold the database URL.
            tracing::error!(error = %e, "health check: outbox unusable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Unhealthy {
                    status: "unavailable",
                    error: format!("the outbox is unusable: {e}"),
                }),
            )
                .into_response()
        }
    }
}

/// `GET {base}/metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let depth = state.outbox.queue_depth().await.ok();
    let mut r = state.metrics.render(depth).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
