//! Growi's API as the sender sees it: four calls (create, update, find a sale by `order_id`, a
//! page of the list for reconciliation) and one typed answer, [`Reply`], that says what to do next.
//!
//! Everything about reading an HTTP answer lives here, once: the status is classified with the
//! core's retry policy, a `429`'s wait is read from the `Retry-After` header and the body's
//! `retry_after` / `reset_time` and kept as a [`Duration`], Growi's reason is taken from `error`
//! or `message`. The sender then decides from the variant alone and never re-reads a body.

use crate::config::ProxyConfig;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use salebeacon::retry::{classify, parse_retry_after, Disposition};
use salebeacon::time::parse_rfc3339;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// Largest upstream response body we read.
const MAX_RESPONSE: usize = 256 * 1024;
/// How many sales one look-up page asks for (Growi's maximum).
const PER_PAGE: &str = "100";

/// Builds the HTTP client for the upstream: rustls, timeouts, no redirects, the key as a
/// sensitive default header (so it is never printed by the client's own debug output).
pub fn client(config: &ProxyConfig) -> Result<reqwest::Client, String> {
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.growi_api_key.expose()))
        .map_err(|_| "GROWI_API_KEY cannot be sent in an HTTP header".to_owned())?;
    auth.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("salebeacon-proxy/", env!("CARGO_PKG_VERSION")))
        .timeout(config.upstream_timeout)
        .connect_timeout(config.upstream_timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A sale as Growi shows it (create, update and list answers). Every field but `id` is optional:
/// Growi's examples show only some of them, and the sender must not fail on a sparse answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GrowiSale {
    pub id: i64,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub subtotal: Option<i64>,
    #[serde(default)]
    pub commission: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub due_at: Option<String>,
    #[serde(default)]
    pub customer_email: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
}

/// What one upstream request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `2xx`, with the body's JSON (`Null` when it had none or was not JSON).
    Done { status: u16, body: Value },
    /// `429`: no request at all before `wait` has passed (`None`: Growi did not say).
    RateLimited {
        wait: Option<Duration>,
        reason: String,
    },
    /// `401` / `403`: the key is wrong or read-only; no job can fix that.
    KeyRefused { status: u16, reason: String },
    /// Another `4xx`: refused for good.
    Refused { status: u16, reason: String },
    /// Network error, timeout, `408`, `5xx`: worth trying again.
    Retry { status: Option<u16>, reason: String },
}

/// Growi's API at one base URL.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
}

impl Upstream {
    pub fn new(client: reqwest::Client, base: &str) -> Self {
        Upstream {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `POST /affiliate_sales`.
    pub async fn create(&self, body: String) -> Reply {
        let url = format!("{}/affiliate_sales", self.base);
        send(self.client.post(url).body(body)).await
    }

    /// `PATCH /affiliate_sales/{id}`.
    pub async fn update(&self, growi_id: i64, body: String) -> Reply {
        let url = format!("{}/affiliate_sales/{growi_id}", self.base);
        send(self.client.patch(url).body(body)).await
    }

    /// `GET /affiliate_sales?order_id=..&store_platform=website`: the list filtered to one order.
    pub async fn find(&self, order_id: &str) -> Reply {
        let url = format!("{}/affiliate_sales", self.base);
        let query = [
            ("order_id", order_id),
            ("store_platform", "website"),
            ("per_page", PER_PAGE),
        ];
        send(self.client.get(url).query(&query)).await
    }

    /// `GET /affiliate_sales?..`: one page of the list, with the query as given (reconciliation).
    pub async fn list(&self, query: &[(String, String)]) -> Reply {
        let url = format!("{}/affiliate_sales", self.base);
        send(self.client.get(url).query(query)).await
    }
}

/// The sale for `order_id` in a list answer (`{"data": [...]}`), if Growi has one.
pub fn sale_in_list(body: &Value, order_id: &str) -> Option<GrowiSale> {
    body.get("data")?
        .as_array()?
        .iter()
        .filter_map(|v| serde_json::from_value::<GrowiSale>(v.clone()).ok())
        .find(|s| s.external_id.as_deref() == Some(order_id))
}

/// The sale in a create or update answer (`{"data": {...}}`).
pub fn sale_in_answer(body: &Value) -> Option<GrowiSale> {
    serde_json::from_value(body.get("data")?.clone()).ok()
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let resp = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Reply::Retry {
                status: None,
                reason: format!("network: {}", describe(&e)),
            }
        }
    };
    let status = resp.status().as_u16();
    let header_wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
        .map(Duration::from_millis);
    let text = match read_capped(resp).await {
        Ok(t) => t,
        Err(e) => {
            return Reply::Retry {
                status: Some(status),
                reason: format!("network: {e}"),
            }
        }
    };
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    classify_answer(status, header_wait, body, crate::now_ms())
}

/// Turns a status, the `Retry-After` header's wait and the body into a [`Reply`].
pub fn classify_answer(status: u16, header_wait: Option<Duration>, body: Value, now: i64) -> Reply {
    match status {
        429 => {
            let body_wait = rate_limit_wait(&body, now);
            let wait = match (header_wait, body_wait) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Reply::RateLimited {
                wait,
                reason: reason(&body, status),
            }
        }
        401 | 403 => Reply::KeyRefused {
            status,
            reason: reason(&body, status),
        },
        _ => match classify(status) {
            Disposition::Delivered => Reply::Done { status, body },
            Disposition::Retry => Reply::Retry {
                status: Some(status),
                reason: reason(&body, status),
            },
            Disposition::Rejected => Reply::Refused {
                status,
                reason: reason(&body, status),
            },
        },
    }
}

/// How long a 429 body asks us to wait: the longer of `retry_after` (seconds) and `reset_time`.
pub fn rate_limit_wait(body: &Value, now: i64) -> Option<Duration> {
    let retry = body.get("retry_after").and_then(|v| match v {
        // A number of seconds; a fractional one (not documented, but harmless to honour) rounds
        // up to the millisecond.
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| (s.min(86_400.0) * 1000.0).ceil() as u64),
        Value::String(s) => parse_retry_after(s),
        _ => None,
    });
    let reset = body
        .get("reset_time")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .map(|t| {
            u64::try_from(t.saturating_sub(now))
                .unwrap_or(0)
                .min(86_400_000)
        });
    match (retry, reset) {
        (None, None) => None,
        (a, b) => Some(Duration::from_millis(a.unwrap_or(0).max(b.unwrap_or(0)))),
    }
}

/// Growi's reason: its `error` or `message` field, or the status.
fn reason(body: &Value, status: u16) -> String {
    body.get("error")
        .and_then(Value::as_str)
        .or_else(|| body.get("message").and_then(Value::as_str))
        .map(|s| s.chars().take(500).collect())
        .unwrap_or_else(|| format!("HTTP {status}"))
}

async fn read_capped(mut resp: reqwest::Response) -> Result<String, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        let room = MAX_RESPONSE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rate_limit_waits() {
        let now = 1_000_000;
        let wait = |b: Value| rate_limit_wait(&b, now);
        assert_eq!(
            wait(json!({"retry_after": 2})),
            Some(Duration::from_secs(2))
        );
        let reset = salebeacon::time::format_utc(now + 30_000);
        assert_eq!(
            wait(json!({"retry_after": 2, "reset_time": reset})),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait(json!({"error": "x"})), None);
        assert_eq!(
            wait(json!({"retry_after": 0.5})),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            wait(json!({"retry_after": "3"})),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn answers_are_classified_once() {
        let r = classify_answer(
            429,
            Some(Duration::from_secs(5)),
            json!({"retry_after": 2}),
            0,
        );
        assert_eq!(
            r,
            Reply::RateLimited {
                wait: Some(Duration::from_secs(5)),
                reason: "HTTP 429".into()
            },
            "the longer of the header and the body"
        );
        let r = classify_answer(429, None, Value::Null, 0);
        assert!(matches!(r, Reply::RateLimited { wait: None, .. }));
        assert!(matches!(
            classify_answer(403, None, json!({"error": "read only"}), 0),
            Reply::KeyRefused { status: 403, .. }
        ));
        assert_eq!(
            classify_answer(
                422,
                None,
                json!({"error": "Campaign affiliate not found."}),
                0
            ),
            Reply::Refused {
                status: 422,
                reason: "Campaign affiliate not found.".into()
            }
        );
        assert_eq!(
            classify_answer(422, None, json!({"message": "m"}), 0),
            Reply::Refused {
                status: 422,
                reason: "m".into()
            }
        );
        assert!(matches!(
            classify_answer(503, None, Value::Null, 0),
            Reply::Retry {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            classify_answer(201, None, json!({"data": {"id": 1}}), 0),
            Reply::Done { status: 201, .. }
        ));
    }

    #[test]
    fn sales_are_found_by_order_id() {
        let body = json!({"data": [
            {"id": 1, "external_id": "A", "status": "unpaid"},
            {"id": 2, "external_id": "B", "status": "cancelled", "total": 5},
            {"no": "id"}
        ]});
        assert_eq!(sale_in_list(&body, "B").map(|s| s.id), Some(2));
        assert_eq!(sale_in_list(&body, "C"), None);
        assert_eq!(sale_in_list(&json!({"data": {}}), "A"), None);
        let one = sale_in_answer(&json!({"data": {"id": 7, "external_id": "Z"}})).unwrap();
        assert_eq!((one.id, one.external_id.as_deref()), (7, Some("Z")));
    }
}
