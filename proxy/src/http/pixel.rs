//! `GET {base}/pixel.gif`: the conversion pixel for checkout pages that cannot run script.
//!
//! It always answers a 1×1 GIF with `Cache-Control: no-store`, whatever happened: a broken image
//! on a thank-you page helps nobody. The sale takes the same intake pipeline as `POST /sales`,
//! with the attribution from the first-party cookies; a refusal is recorded in the outbox's
//! refused list (`GET /admin/refused`) and counted by reason, because the page never hears it.
//! Personal data has no place in a URL (it lands in access logs and referrers): `customer_email`
//! and `customer_name` are dropped with a warning. A browser that sends Global Privacy Control
//! (`Sec-GPC: 1`) has its tracking cookies ignored: no attribution or visitor id from them.

use super::cookies;
use crate::clock;
use crate::intake::{self, Refusal, Source};
use crate::state::AppState;
use crate::trust::client_ip;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use salebeacon::SaleInput;
use std::time::Instant;

/// A transparent 1×1 GIF.
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Query parameters a pixel URL may carry only to defeat caches; they are not sale fields.
const CACHE_BUSTERS: &[&str] = &["_", "cb", "rnd"];
/// Personal data that has no place in a URL.
const PERSONAL_FIELDS: &[&str] = &["customer_email", "customer_name"];

/// The sale a pixel's query string describes: personal fields dropped (and named), cache
/// busters ignored, digit-only numbers read as numbers.
pub fn sale_from_query(query: &str) -> (SaleInput, Vec<String>) {
    let pairs = salebeacon::attribution::parse_query(query);
    let mut dropped = Vec::new();
    let kept: Vec<_> = pairs
        .into_iter()
        .filter(|(k, _)| {
            if PERSONAL_FIELDS.contains(&k.as_str()) {
                dropped.push(k.clone());
                false
            } else {
                !CACHE_BUSTERS.contains(&k.as_str())
            }
        })
        .collect();
    (SaleInput::from_pairs(kept), dropped)
}

/// The sale fields a pixel URL carries (any of the browser's sale fields; these are the usual).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PixelQuery {
    /// The merchant's order id.
    order_id: Option<String>,
    /// The total in minor units (cents).
    total: Option<String>,
    /// ISO 4217 code.
    currency: Option<String>,
    /// The creator's affiliate tag, when the visitor's cookies do not hold it.
    campaign_affiliate_id: Option<String>,
    /// The merchant's signature over the order, when the proxy requires one.
    order_token: Option<String>,
}

/// `GET {base}/pixel.gif`: always a GIF.
#[utoipa::path(
    get,
    path = "/pixel.gif",
    tag = "browser",
    summary = "Record a sale from an image tag (checkout pages without script)",
    description = "Always a 1x1 GIF, whatever happened; a refused sale is listed by GET \
        /admin/refused. customer_email and customer_name are dropped (personal data does not \
        belong in URLs).",
    params(PixelQuery),
    responses((status = 200, description = "A transparent 1x1 GIF", content_type = "image/gif"))
)]
pub async fn pixel(State(state): State<AppState>, req: Request) -> Response {
    let ip = client_ip(&req, &state.config);
    let (input, dropped) = sale_from_query(req.uri().query().unwrap_or(""));
    if !dropped.is_empty() {
        tracing::warn!(fields = %dropped.join(","), "dropped personal data from a pixel URL: it does not belong in URLs (send it with POST /sales or the admin API)");
    }
    if state.limiter.check(ip, Instant::now()).is_err() {
        tracing::warn!(%ip, "pixel rate limited; sale not recorded");
        intake::refused(&state, &input, Source::Pixel, &Refusal::RateLimited).await;
    } else {
        // Global Privacy Control (`Sec-GPC: 1`): the visitor opted out of tracking, so their
        // tracking cookies are not read; the sale counts only if its URL names the affiliate.
        let gpc = req
            .headers()
            .get("sec-gpc")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
        let found = if gpc {
            intake::Cookies::default()
        } else {
            cookies::read(req.headers(), state.config.window_days, clock::now())
        };
        // The outcome is logged (and a refusal recorded) by the intake.
        let _ = intake::accept(&state, input, Source::Pixel, &found).await;
    }
    gif()
}

fn gif() -> Response {
    let mut r = (StatusCode::OK, GIF).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, max-age=0"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gif_is_a_gif() {
        assert_eq!(&GIF[..6], b"GIF89a");
        assert_eq!(GIF.len(), 43);
        assert_eq!(GIF[GIF.len() - 1], 0x3b);
    }

    #[test]
    fn queries_drop_personal_data_and_cache_busters() {
        let (input, dropped) =
            sale_from_query("order_id=A&total=100&currency=usd&customer_email=a%40b.co&cb=123");
        assert_eq!(dropped, ["customer_email"]);
        assert!(input.get("cb").is_none() && input.get("customer_email").is_none());
        assert_eq!(
            input.get("total"),
            Some(&salebeacon::value::Loose::Int(100))
        );
    }
}
