//! Every error the sandbox can answer, and how it is answered — in one place.
//!
//! Growi's error bodies are `{"error": "<message>"}` (rate limits add `retry_after` and, for the
//! hourly limit, `reset_time`). Handlers return [`ApiError`]; its [`IntoResponse`] impl is the only
//! code that picks status codes and shapes error bodies, so the wording Growi documents lives
//! here verbatim. Messages never include the API key or anything else from the
//! `Authorization` header.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::limits::Rejection;
use crate::seed::SeedError;
use crate::store::StoreError;

/// The 422 when both ways of attributing a sale are missing.
pub const ATTRIBUTION_REQUIRED: &str =
    "Attribution required: provide campaign_affiliate_id OR both growi_user_id and growi_campaign_id.";

/// An API error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `401`: missing or wrong key.
    #[error("Not Authenticated")]
    NotAuthenticated,
    /// `403`: a read-only key tried to write.
    #[error("This API key is read-only and cannot be used for this request.")]
    ReadOnlyKey,
    /// `404` for PATCH on an unknown id.
    #[error("Sale not found")]
    SaleNotFound,
    /// `404` for a path the API does not have.
    #[error("Not found")]
    RouteNotFound,
    /// `405`.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// `400`: the body is not JSON.
    #[error("{0}")]
    BadRequest(String),
    /// `413`.
    #[error("Request body is too large.")]
    PayloadTooLarge,
    /// `422` with Growi's message.
    #[error("{0}")]
    Unprocessable(String),
    /// `429` from the limiter (or injected).
    #[error("{}", rejection_message(.0))]
    RateLimited(Rejection),
    /// Injected `500` / `503`.
    #[error("{}", if *.0 == 503 { "Service Unavailable" } else { "Internal Server Error" })]
    Injected(u16),
    /// `503` when `down` is set but the request reached the router anyway (only possible
    /// in-process, through [`crate::app`]; over TCP the connection is dropped instead).
    #[error("The sandbox is down (simulated outage).")]
    Down,
    /// `500`: the state file could not be written; nothing was changed.
    #[error("The sandbox could not save its state: {0}")]
    Store(#[from] StoreError),
}

fn rejection_message(r: &Rejection) -> String {
    match r {
        Rejection::MinInterval { interval, .. } => {
            format!("Rate limit exceeded. Please wait {interval} between requests.")
        }
        Rejection::Hourly { limit, .. } => {
            format!("Hourly rate limit of {limit} requests exceeded.")
        }
    }
}

impl ApiError {
    /// A `422` with this message.
    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::Unprocessable(message.into())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotAuthenticated => StatusCode::UNAUTHORIZED,
            ApiError::ReadOnlyKey => StatusCode::FORBIDDEN,
            ApiError::SaleNotFound | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Injected(503) | ApiError::Down => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Injected(_) | ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        let body = match &self {
            ApiError::RateLimited(Rejection::MinInterval { retry_after, .. }) => {
                json!({ "error": message, "retry_after": retry_after })
            }
            ApiError::RateLimited(Rejection::Hourly {
                retry_after,
                reset_time,
                ..
            }) => json!({ "error": message, "retry_after": retry_after, "reset_time": reset_time }),
            _ => json!({ "error": message }),
        };
        (status, Json(body)).into_response()
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The seed is unusable.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The state file is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding or serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<SandboxError> for std::io::Error {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}
