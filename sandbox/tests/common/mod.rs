//! Helpers shared by the HTTP tests: spawn a sandbox on a free port and talk to it.
#![allow(dead_code)]

use std::time::Duration;

use salebeacon_sandbox::{spawn, RunningSandbox, SandboxConfig};
use serde_json::Value;

pub const KEY: &str = "sk_test_sandbox";

/// A config without pacing, so tests can fire requests back to back.
pub fn fast() -> SandboxConfig {
    SandboxConfig {
        min_interval: Duration::ZERO,
        ..SandboxConfig::default()
    }
}

pub async fn start(config: SandboxConfig) -> RunningSandbox {
    spawn(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sandbox starts")
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub root: String,
}

impl Client {
    pub fn new(sandbox: &RunningSandbox) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
            base: sandbox.base_url(),
            root: sandbox.root_url(),
        }
    }

    async fn decode(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        Self::decode(
            req.send()
                .await
                .expect("request succeeds at the HTTP level"),
        )
        .await
    }

    pub fn sales_url(&self) -> String {
        format!("{}/affiliate_sales", self.base)
    }

    pub async fn create(&self, body: Value) -> (u16, Value) {
        self.send(
            self.http
                .post(self.sales_url())
                .bearer_auth(KEY)
                .json(&body),
        )
        .await
    }

    pub async fn create_raw(&self, body: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(self.sales_url())
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    pub async fn patch(&self, id: impl std::fmt::Display, body: Value) -> (u16, Value) {
        self.send(
            self.http
                .patch(format!("{}/{id}", self.sales_url()))
                .bearer_auth(KEY)
                .json(&body),
        )
        .await
    }

    pub async fn list(&self, query: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(format!("{}?{query}", self.sales_url()))
                .bearer_auth(KEY),
        )
        .await
    }

    pub async fn control_get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}/_sandbox/{path}", self.root)))
            .await
    }

    pub async fn control_put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.http
                .put(format!("{}/_sandbox/{path}", self.root))
                .json(&body),
        )
        .await
    }

    pub async fn control_post(&self, path: &str) -> (u16, Value) {
        self.send(self.http.post(format!("{}/_sandbox/{path}", self.root)))
            .await
    }
}

/// A minimal valid create body for the default seed.
pub fn sale(order_id: &str, total: i64) -> Value {
    serde_json::json!({
        "order_id": order_id,
        "total": total,
        "currency": "usd",
        "campaign_affiliate_id": "creator42",
    })
}
