//! [`AppError`]: every way a request can fail, and the one place that turns it into a response.
//!
//! Handlers return `Result<_, AppError>` and never build error responses themselves, so the
//! shapes stay uniform (`{"error": ...}`, plus `issues` for bad input) and nothing internal leaks:
//! an [`AppError::Internal`] is logged with its detail and answered with "internal error" only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use salebeacon::Issue;
use serde_json::json;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not a JSON object (or not UTF-8, or of a type we do not read): 400.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing usable in the body: 400 with every issue.
    #[error("{message}")]
    Unusable { message: String, issues: Vec<Issue> },
    /// The input breaks rules: 422 with every issue.
    #[error("invalid {what}")]
    Invalid {
        what: &'static str,
        issues: Vec<Issue>,
    },
    /// 413.
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 415.
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// 403: a cross-origin call from an origin that is not configured.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// 403: a dashboard request that fails the CSRF checks, or the like.
    #[error("{0}")]
    Forbidden(String),
    /// 401: missing or wrong admin token.
    #[error("unauthorized")]
    Unauthorized,
    /// 503: the admin API has no token configured.
    #[error("admin API disabled")]
    AdminDisabled,
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// 503 with `Retry-After: 2`: the outbox is not usable (its database is down or restarting).
    #[error("outbox unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure. The detail is logged, never answered.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) | AppError::Unusable { .. } => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::OriginNotAllowed | AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::AdminDisabled | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 422 for a sale.
    pub fn invalid_sale(issues: Vec<Issue>) -> Self {
        AppError::Invalid {
            what: "sale",
            issues,
        }
    }
}

impl From<crate::verdict::Refusal> for AppError {
    fn from(r: crate::verdict::Refusal) -> Self {
        use crate::verdict::Refusal;
        match r {
            Refusal::Invalid(issues) | Refusal::Unattributed(issues) => {
                AppError::invalid_sale(issues)
            }
            Refusal::OrderToken(issue) => AppError::invalid_sale(vec![issue]),
            Refusal::RateLimited => AppError::RateLimited {
                retry_after_secs: 1,
            },
            Refusal::Unavailable(e) => AppError::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            AppError::Invalid { what, issues } => {
                json!({ "error": format!("invalid {what}"), "issues": issues })
            }
            AppError::Unusable { message, issues } => json!({ "error": message, "issues": issues }),
            AppError::BadRequest(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::Forbidden(m) => {
                json!({ "error": m })
            }
            AppError::TooLarge { limit } => {
                json!({ "error": format!("request body is larger than {limit} bytes") })
            }
            AppError::UnsupportedMediaType => json!({
                "error": "send the body as application/json or text/plain (JSON text)"
            }),
            AppError::RateLimited { .. } => {
                json!({ "error": "too many requests from this address; retry later" })
            }
            AppError::OriginNotAllowed => json!({
                "error": "this origin is not allowed to call the proxy (configure allowed_origins)"
            }),
            AppError::Unauthorized => {
                json!({ "error": "missing or wrong admin token (Authorization: Bearer ...)" })
            }
            AppError::AdminDisabled => json!({
                "error": "the admin API is disabled: set SALEBEACON_ADMIN_TOKEN and restart"
            }),
            AppError::Unavailable(detail) => {
                tracing::error!(%detail, "outbox unavailable");
                json!({ "error": "the outbox is unavailable; retry later" })
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                json!({ "error": "internal error" })
            }
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            AppError::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // The database is restarting or unreachable: ask for a retry in a moment.
            AppError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(2u64));
            }
            AppError::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"salebeacon-admin\""),
                );
            }
            _ => {}
        }
        response
    }
}
