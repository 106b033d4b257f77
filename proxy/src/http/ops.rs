//! The operators' endpoints: `GET /healthz` and `GET /metrics`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `GET {base}/healthz`.
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
            Json(json!({ "status": "ok", "queue_depth": depth, "sender": sender })).into_response()
        }
        Err(e) => {
            // The reason is safe to show: outbox errors never hold the database URL.
            tracing::error!(error = %e, "health check: outbox unusable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "error": format!("the outbox is unusable: {e}"),
                })),
            )
                .into_response()
        }
    }
}

/// `GET {base}/metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let depth = state.outbox.queue_depth().await.ok();
    let mut r = state.metrics.render(depth).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
