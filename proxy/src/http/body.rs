//! Request bodies: a JSON object sent as `application/json`, `text/plain` (what `sendBeacon`
//! sends without a CORS preflight) or without a type, read as raw bytes so every way it can be
//! wrong gets a `400` that says what was wrong.

use crate::error::AppError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};

/// Reads a JSON object from a body sent as `application/json`, `text/plain` or without a type.
pub fn parse_json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, AppError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(essence.as_str(), "application/json" | "text/plain" | "") {
            return Err(AppError::UnsupportedMediaType);
        }
    }
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge { limit }
        } else {
            AppError::BadRequest(format!("could not read the body: {}", r.body_text()))
        }
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| AppError::BadRequest("the body is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Err(AppError::BadRequest(
            "the body is empty: send the sale as a JSON object".into(),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        AppError::BadRequest(match e.classify() {
            Category::Data => format!("the body must be a JSON object: {e}"),
            Category::Syntax | Category::Eof => format!("the body is not valid JSON: {e}"),
            Category::Io => "could not read the body".into(),
        })
    })
}
