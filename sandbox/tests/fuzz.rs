//! Fuzz harness of the sandbox's request validation: any body, path id, query and key at the
//! emulated Growi API, in-process through the real router (`tower::ServiceExt::oneshot`, the same
//! gate, handlers and error answers as over TCP).
//!
//! `fuzz_sandbox_requests` holds it to: no panic; never a `5xx` unless a fault is injected (and
//! then only the injected `500` / `503`); every answer is Growi's JSON; a `201` create names the
//! order it was given, a `200` update the sale it was sent to. Half the updates go to a sale
//! created just before, so the PATCH rules behind the id look-up are reached; the state is reset
//! every few thousand inputs so the list endpoint's full scan stays cheap on a long run.
//!
//! Driver and generators: `tests/support/fuzzing.rs` at the workspace root (case count, time
//! budget and seed from the environment; `cargo xtask fuzz` for the long run).

#[macro_use]
#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

use axum::body::Body as HttpBody;
use axum::http::{Method, Request};
use fuzzing::*;
use proptest::prelude::*;
use salebeacon_sandbox::{app, Faults, SandboxConfig, SandboxState};
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

const KEY: &str = "sk_test_sandbox";
const READ_ONLY: &str = "sk_test_read_only";
const API: &str = "/api/public/v1/affiliate_sales";
/// Inputs between two resets of the sandbox's state.
const RESET_EVERY: u64 = 5_000;

#[derive(Debug, Clone)]
enum Target {
    /// A sale created just before (a website sale, so every PATCH rule applies).
    Fresh,
    /// The seeded Shopify sale (PATCH refuses it).
    Seeded,
    /// Any path segment, percent-encoded.
    Raw(String),
}

#[derive(Debug, Clone)]
enum Call {
    Create {
        content_type: Option<&'static str>,
        body: Body,
    },
    Update {
        target: Target,
        body: Body,
    },
    List {
        query: String,
    },
    Other {
        method: &'static str,
        path: &'static str,
        body: Body,
    },
}

#[derive(Debug, Clone)]
struct Case {
    auth: Option<&'static str>,
    /// Sent to the sandbox that injects faults.
    faulty: bool,
    call: Call,
}

fn auth() -> BoxedStrategy<Option<&'static str>> {
    prop_oneof![
        12 => Just(Some("Bearer sk_test_sandbox")),
        1 => prop::sample::select(
            &[
                None,
                Some("Bearer "),
                Some("bearer sk_test_sandbox"),
                Some("Bearer sk_test_read_only"),
                Some("Bearer wrong"),
                Some("Basic c2s6"),
                Some("Bearer sk_test_sandbox "),
                Some("Bearer  sk_test_sandbox"),
            ][..]
        ),
    ]
    .boxed()
}

fn create_body() -> BoxedStrategy<Body> {
    prop_oneof![
        8 => sale_fields().prop_map(|f| Body::from(object_text(&f))),
        2 => json_text().prop_map(Body::from),
        2 => body_bytes(),
        1 => prop::sample::select(&["", " ", "\n\t ", "null", "[]", "\"x\""][..]).prop_map(|s| Body::from(s.to_owned())),
    ]
    .boxed()
}

fn update_body() -> BoxedStrategy<Body> {
    prop_oneof![
        8 => update_fields().prop_map(|f| Body::from(object_text(&f))),
        2 => json_text().prop_map(Body::from),
        1 => body_bytes(),
        1 => prop::sample::select(&["", "{}", "null"][..]).prop_map(|s| Body::from(s.to_owned())),
    ]
    .boxed()
}

fn target() -> BoxedStrategy<Target> {
    prop_oneof![
        6 => Just(Target::Fresh),
        1 => Just(Target::Seeded),
        3 => prop_oneof![
            "[0-9]{1,25}",
            prop::sample::select(&["0", "-1", "1.5", "1e3", "0x10", "+5", " 5", "18446744073709551616"][..]).prop_map(str::to_owned),
            hostile_string(),
        ]
        .prop_map(|s| Target::Raw(percent_encode(&s, false))),
    ]
    .boxed()
}

fn list_query() -> BoxedStrategy<String> {
    let key = prop_oneof![
        4 => prop::sample::select(&[
            "page", "per_page", "order_id", "status", "affiliate_tag", "store_platform",
            "campaign_id", "creator_id", "search", "start_date", "end_date",
        ][..])
        .prop_map(str::to_owned),
        1 => hostile_string(),
    ];
    let value = prop_oneof![
        3 => prop::sample::select(&[
            "1", "0", "-1", "100", "101", "18446744073709551615", "18446744073709551616",
            "paid", "due", "unpaid", "canceled", "refunded", "x", "09/30/2025", "02/30/2025",
            "2025-09-30", "creator42", "website", "",
        ][..])
        .prop_map(str::to_owned),
        1 => hostile_string(),
    ];
    query_text(prop::collection::vec((key, value), 0..5))
}

fn case() -> BoxedStrategy<Case> {
    let call = prop_oneof![
        6 => (
            prop::sample::select(&[Some("application/json"), None, Some("text/plain"), Some("multipart/form-data")][..]),
            create_body(),
        )
            .prop_map(|(content_type, body)| Call::Create { content_type, body }),
        5 => (target(), update_body()).prop_map(|(target, body)| Call::Update { target, body }),
        1 => list_query().prop_map(|query| Call::List { query }),
        1 => (
            prop::sample::select(&["PUT", "DELETE", "HEAD", "OPTIONS", "GET", "POST", "PATCH"][..]),
            prop::sample::select(&[
                "/api/public/v1/affiliate_sales/1947000",
                "/api/public/v1/affiliate_sales/",
                "/api/public/v1/",
                "/api/public/v1/affiliate_sales/1/x",
                "/api/",
                "/api/public/v2/affiliate_sales",
            ][..]),
            body_bytes(),
        )
            .prop_map(|(method, path, body)| Call::Other { method, path, body }),
    ];
    (auth(), prop::bool::weighted(0.2), call)
        .prop_map(|(auth, faulty, call)| Case { auth, faulty, call })
        .boxed()
}

/// Two sandboxes, one calm and one injecting faults, called in-process.
struct Harness {
    rt: tokio::runtime::Runtime,
    calm: SandboxState,
    faulty: SandboxState,
    inputs: u64,
    fresh: u64,
    outcomes: Tally,
}

fn state(faults: Faults) -> SandboxState {
    SandboxState::new(SandboxConfig {
        read_only_key: Some(READ_ONLY.to_owned()),
        min_interval: Duration::ZERO,
        faults,
        fault_seed: 11,
        ..SandboxConfig::default()
    })
    .expect("a sandbox state")
}

impl Harness {
    fn new() -> Harness {
        Harness {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            calm: state(Faults::default()),
            faulty: state(Faults {
                error_rate: 0.3,
                rate_limit_rate: 0.2,
                ..Faults::default()
            }),
            inputs: 0,
            fresh: 0,
            outcomes: Tally::default(),
        }
    }

    fn send(&self, state: &SandboxState, req: Request<HttpBody>) -> (u16, Value, String) {
        self.rt.block_on(async {
            let resp = app(state.clone())
                .oneshot(req)
                .await
                .unwrap_or_else(|never| match never {});
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                text,
            )
        })
    }

    /// Creates a website sale on the calm sandbox and returns its id.
    fn fresh_sale(&mut self) -> Result<u64, String> {
        self.fresh += 1;
        let body = format!(
            r#"{{"order_id":"FUZZ-FRESH-{}","total":12999,"currency":"usd","campaign_affiliate_id":"creator42"}}"#,
            self.fresh
        );
        let req = request(
            "POST",
            API,
            Some(KEY),
            Some("application/json"),
            body.into_bytes(),
        )?;
        let (status, v, text) = self.send(&self.calm, req);
        ensure!(status == 201, "a plain create answered {status}: {text}");
        v["data"]["id"]
            .as_u64()
            .ok_or_else(|| format!("no id in {text}"))
    }

    fn run(&mut self, c: &Case) -> Result<(), String> {
        self.inputs += 1;
        if self.inputs.is_multiple_of(RESET_EVERY) {
            self.calm.reset().map_err(|e| e.to_string())?;
            self.faulty.reset().map_err(|e| e.to_string())?;
        }
        let (req, expect_id, expect_order) = match &c.call {
            Call::Create { content_type, body } => {
                let order = serde_json::from_slice::<Value>(&body.0)
                    .ok()
                    .and_then(|v| v.get("order_id").cloned());
                (
                    request_with(c.auth, "POST", API, *content_type, body.0.clone())?,
                    None,
                    order,
                )
            }
            Call::Update { target, body } => {
                let (segment, id) = match target {
                    Target::Fresh if !c.faulty => {
                        let id = self.fresh_sale()?;
                        (id.to_string(), Some(id))
                    }
                    Target::Fresh | Target::Seeded => ("1947000".to_owned(), Some(1_947_000)),
                    Target::Raw(s) => (s.clone(), s.parse::<u64>().ok()),
                };
                let path = format!("{API}/{segment}");
                (
                    request_with(
                        c.auth,
                        "PATCH",
                        &path,
                        Some("application/json"),
                        body.0.clone(),
                    )?,
                    id,
                    None,
                )
            }
            Call::List { query } => (
                request_with(c.auth, "GET", &format!("{API}?{query}"), None, Vec::new())?,
                None,
                None,
            ),
            Call::Other { method, path, body } => (
                request_with(
                    c.auth,
                    method,
                    path,
                    Some("application/json"),
                    body.0.clone(),
                )?,
                None,
                None,
            ),
        };
        let state = if c.faulty { &self.faulty } else { &self.calm };
        let method = req.method().clone();
        let (status, v, text) = self.send(state, req);
        let kind = match &c.call {
            Call::Create { .. } => "create",
            Call::Update { .. } => "update",
            Call::List { .. } => "list",
            Call::Other { .. } => "other",
        };
        self.outcomes.count(format!(
            "{}:{kind}:{status}",
            if c.faulty { "faulty" } else { "calm" }
        ));
        if status >= 500 {
            // A HEAD answer has no body to say which fault it was.
            let head = method == Method::HEAD;
            ensure!(
                c.faulty
                    && ((status == 500 && (head || v["error"] == "Internal Server Error"))
                        || (status == 503 && (head || v["error"] == "Service Unavailable"))),
                "{status} without an injected fault: {text}"
            );
            return Ok(());
        }
        ensure!(
            [200, 201, 400, 401, 403, 404, 405, 413, 422, 429].contains(&status),
            "status {status}: {text}"
        );
        if method != Method::HEAD {
            ensure!(
                v.is_object(),
                "the answer is not a JSON object ({status}): {text:?}"
            );
        }
        if status >= 400 && method != Method::HEAD {
            ensure!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "an error without a message ({status}): {text}"
            );
        }
        if status == 429 && method != Method::HEAD {
            ensure!(
                v["retry_after"].is_u64(),
                "a 429 without retry_after: {text}"
            );
        }
        if status == 201 {
            let order =
                expect_order.ok_or_else(|| format!("201 for a body without order_id: {text}"))?;
            ensure!(
                Some(&v["data"]["external_id"]) == order.as_str().map(Value::from).as_ref(),
                "201 names {} for order {order}",
                v["data"]["external_id"]
            );
        }
        if status == 200 && matches!(c.call, Call::Update { .. }) {
            ensure!(
                v["data"]["id"].as_u64().is_some() && v["data"]["id"].as_u64() == expect_id,
                "200 for sale {expect_id:?} answers {}",
                v["data"]["id"]
            );
        }
        Ok(())
    }
}

fn request(
    method: &str,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Request<HttpBody>, String> {
    let auth = key.map(|k| format!("Bearer {k}"));
    request_with(auth.as_deref(), method, path, content_type, body)
}

fn request_with(
    auth: Option<&str>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Request<HttpBody>, String> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(HttpBody::from(body))
        .map_err(|e| format!("the harness built a bad request for {path:?}: {e}"))
}

#[test]
fn fuzz_sandbox_requests() {
    let mut h = Harness::new();
    fuzz("sandbox_requests", case(), |c| h.run(c));
    h.outcomes.print("sandbox_requests");
}
