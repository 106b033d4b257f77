//! The browser tracker in real headless Chromium (wasm-bindgen-test, `run_in_browser`).
//!
//! `cargo xtask test` starts a recorder server that stands in for the proxy (it answers by the
//! scenario named in the endpoint path: `ok-*` 202, `dup-*` 200 duplicate, `invalid-*` 422,
//! `down-*` 503) and passes its URL at compile time as `SALEBEACON_TEST_SERVER`. Each test uses
//! its own scenario name, so what the recorder holds is what that test sent.
//!
//! Every test starts from a fresh page state: no cookies, empty localStorage, no tracker, and the
//! URL it needs (set with `history.replaceState`, as a landing from an affiliate link would).
#![cfg(target_arch = "wasm32")]

use salebeacon::web;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function setUrl(q) { history.replaceState(null, '', location.pathname + q); }
export function currentSearch() { return location.search; }
export function clearAll() {
  try { localStorage.clear(); } catch (e) {}
  for (const c of document.cookie.split(';')) {
    const name = c.split('=')[0].trim();
    if (name) document.cookie = name + '=; Max-Age=0; Path=/';
  }
}
export function getCookie(name) {
  const m = document.cookie.split(';').map(c => c.trim()).find(c => c.startsWith(name + '='));
  return m ? m.slice(name.length + 1) : null;
}
export function setCookie(raw) { document.cookie = raw; }
export function getItem(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
export function setItem(k, v) { localStorage.setItem(k, v); }
export function setGpc(on) {
  Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => on, configurable: true });
}
const realSetItem = Storage.prototype.setItem;
export function breakStorage(on) {
  Storage.prototype.setItem = on ? function () { throw new DOMException('full', 'QuotaExceededError'); } : realSetItem;
}
export async function recorded(url) {
  const r = await fetch(url);
  return JSON.stringify(await r.json());
}
export function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
export function describeError(e) {
  return JSON.stringify({ isError: e instanceof Error, name: e.name, code: e.code, issues: e.issues, message: e.message });
}
export function json(v) { return JSON.stringify(v); }
export function parse(s) { return JSON.parse(s); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = setUrl)]
    fn set_url(q: &str);
    #[wasm_bindgen(js_name = currentSearch)]
    fn current_search() -> String;
    #[wasm_bindgen(js_name = clearAll)]
    fn clear_all();
    #[wasm_bindgen(js_name = getCookie)]
    fn get_cookie(name: &str) -> Option<String>;
    #[wasm_bindgen(js_name = setCookie)]
    fn set_cookie(raw: &str);
    #[wasm_bindgen(js_name = getItem)]
    fn get_item(k: &str) -> Option<String>;
    #[wasm_bindgen(js_name = setItem)]
    fn set_item(k: &str, v: &str);
    #[wasm_bindgen(js_name = setGpc)]
    fn set_gpc(on: bool);
    #[wasm_bindgen(js_name = breakStorage)]
    fn break_storage(on: bool);
    async fn recorded(url: &str) -> JsValue;
    async fn sleep(ms: u32);
    #[wasm_bindgen(js_name = describeError)]
    fn describe_error(e: &JsValue) -> String;
    fn json(v: &JsValue) -> String;
    fn parse(s: &str) -> JsValue;
}

// `option_env!`, not `env!`: the tests must still compile for clippy without a server; run
// without one, they fail loudly here.
#[allow(clippy::option_env_unwrap)]
fn server() -> &'static str {
    option_env!("SALEBEACON_TEST_SERVER")
        .expect("SALEBEACON_TEST_SERVER is not set: run the browser tests with `cargo xtask test`")
}

/// A fresh page: no tracker, no cookies, no storage, this query string.
fn fresh(query: &str) {
    web::reset();
    clear_all();
    set_gpc(false);
    break_storage(false);
    set_url(query);
}

fn endpoint(scenario: &str) -> String {
    format!("{}/{scenario}", server())
}

fn opts(v: &str) -> JsValue {
    parse(v)
}

async fn init_with(options: String) {
    web::init(opts(&options))
        .await
        .expect("init should succeed");
}

async fn track(sale: &str) -> Result<String, Value> {
    match web::track_sale(parse(sale)).await {
        Ok(r) => Ok(serde_json::from_str::<Value>(&json(&r)).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()),
        Err(e) => Err(serde_json::from_str(&describe_error(&e)).unwrap()),
    }
}

async fn received(scenario: &str) -> Vec<Value> {
    let text = recorded(&format!("{}/_recorded", endpoint(scenario)))
        .await
        .as_string()
        .unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

async fn received_touches(scenario: &str) -> Vec<Value> {
    let text = recorded(&format!("{}/_recorded_touch", endpoint(scenario)))
        .await
        .as_string()
        .unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn attribution_json() -> Value {
    serde_json::from_str(&json(&web::attribution().unwrap())).unwrap()
}

fn issue_fields(err: &Value) -> Vec<String> {
    let mut f: Vec<String> = err["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["field"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

fn is_uuid_v4(s: &str) -> bool {
    salebeacon::visitor::is_uuid_v4(s)
}

#[wasm_bindgen_test]
async fn ref_param_is_captured_into_cookie_storage_and_attribution() {
    fresh("?utm_source=ig&ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-capture"))).await;
    let a = attribution_json();
    assert_eq!(a["campaign_affiliate_id"], "creator42");
    assert_eq!(a["model"], "last_click");
    let cookie = get_cookie("sb_aff").expect("sb_aff cookie set");
    assert!(cookie.ends_with("~t~creator42"), "{cookie}");
    assert_eq!(get_item("salebeacon:aff").as_deref(), Some(cookie.as_str()));
    let vid = web::visitor_id().unwrap().expect("a visitor id");
    assert!(is_uuid_v4(&vid), "{vid}");
    assert_eq!(get_cookie("sb_vid").as_deref(), Some(vid.as_str()));
    // The capture is told to the proxy so it can re-set the cookies server-side.
    sleep(300).await;
    let touches = received_touches("ok-capture").await;
    assert_eq!(touches.len(), 1, "{touches:?}");
    assert_eq!(touches[0]["body"]["aff"], cookie.as_str());
    assert_eq!(touches[0]["body"]["vid"], vid.as_str());
}

#[wasm_bindgen_test]
async fn visitor_id_and_attribution_persist_across_page_views() {
    fresh("?aff=ana_lifestyle");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-persist"))).await;
    let vid = web::visitor_id().unwrap();
    // The next page view: no parameters in the URL.
    web::reset();
    set_url("");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-persist"))).await;
    assert_eq!(web::visitor_id().unwrap(), vid);
    assert_eq!(attribution_json()["campaign_affiliate_id"], "ana_lifestyle");
}

#[wasm_bindgen_test]
async fn growi_id_pair_is_captured() {
    fresh("?growi_user_id=42&growi_campaign_id=7");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-pair"))).await;
    let a = attribution_json();
    assert_eq!(a["growi_user_id"], 42);
    assert_eq!(a["growi_campaign_id"], 7);
    assert!(a.get("campaign_affiliate_id").is_none());
}

#[wasm_bindgen_test]
async fn invalid_url_values_are_never_stored() {
    fresh("?ref=%3Cscript%3Ealert(1)%3C%2Fscript%3E&growi_user_id=42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-bad-url"))).await;
    assert!(web::attribution().unwrap().is_null());
    assert_eq!(get_cookie("sb_aff"), None);
    assert_eq!(get_item("salebeacon:aff"), None);
}

#[wasm_bindgen_test]
async fn custom_params_replace_the_defaults() {
    fresh("?partner=zed&ref=ignored");
    init_with(format!(
        r#"{{"endpoint":"{}","params":["partner"]}}"#,
        endpoint("ok-params")
    ))
    .await;
    assert_eq!(attribution_json()["campaign_affiliate_id"], "zed");
}

#[wasm_bindgen_test]
async fn last_click_replaces_and_first_click_keeps() {
    fresh("?ref=first_creator");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-model"))).await;
    web::reset();
    set_url("?ref=second_creator");
    init_with(format!(
        r#"{{"endpoint":"{}","model":"first_click"}}"#,
        endpoint("ok-model")
    ))
    .await;
    assert_eq!(attribution_json()["campaign_affiliate_id"], "first_creator");
    web::reset();
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-model"))).await;
    assert_eq!(
        attribution_json()["campaign_affiliate_id"],
        "second_creator"
    );
}

#[wasm_bindgen_test]
async fn attribution_outside_the_window_is_ignored() {
    fresh("");
    let forty_days_ago = js_sys::Date::now() as i64 - 40 * 86_400_000;
    set_cookie(&format!(
        "sb_aff=1~l~{forty_days_ago}~t~old_creator; Path=/"
    ));
    init_with(format!(
        r#"{{"endpoint":"{}","windowDays":30}}"#,
        endpoint("ok-window")
    ))
    .await;
    assert!(web::attribution().unwrap().is_null());
    // A 60-day window still holds it.
    web::reset();
    set_cookie(&format!(
        "sb_aff=1~l~{forty_days_ago}~t~old_creator; Path=/"
    ));
    init_with(format!(
        r#"{{"endpoint":"{}","windowDays":60}}"#,
        endpoint("ok-window")
    ))
    .await;
    assert_eq!(attribution_json()["campaign_affiliate_id"], "old_creator");
}

#[wasm_bindgen_test]
async fn clean_url_removes_only_the_captured_parameters() {
    fresh("?ref=creator42&utm_source=ig&growi_user_id=1&growi_campaign_id=2");
    init_with(format!(
        r#"{{"endpoint":"{}","cleanUrl":true}}"#,
        endpoint("ok-clean")
    ))
    .await;
    assert_eq!(current_search(), "?utm_source=ig");
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-clean"))).await;
    assert_eq!(
        current_search(),
        "?ref=creator42",
        "cleanUrl defaults to false"
    );
}

#[wasm_bindgen_test]
async fn bad_options_reject_with_every_issue() {
    fresh("");
    let err = web::init(opts(
        r#"{"endpont":"/x","windowDays":0,"model":"linear","consent":"maybe"}"#,
    ))
    .await
    .expect_err("bad options must reject");
    let err: Value = serde_json::from_str(&describe_error(&err)).unwrap();
    assert_eq!(err["isError"], true);
    assert_eq!(err["name"], "SaleBeaconError");
    assert_eq!(err["code"], "invalid_config");
    assert_eq!(
        issue_fields(&err),
        ["consent", "endpont", "model", "windowDays"]
    );
    let typo = err["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["field"] == "endpont")
        .unwrap();
    assert!(
        typo["message"]
            .as_str()
            .unwrap()
            .contains("did you mean endpoint"),
        "{typo}"
    );
    let err = web::init(parse("42"))
        .await
        .expect_err("a number is not options");
    let err: Value = serde_json::from_str(&describe_error(&err)).unwrap();
    assert_eq!(err["code"], "invalid_config");
}

#[wasm_bindgen_test]
async fn track_sale_before_init_rejects_not_initialized() {
    fresh("");
    let err = track(r#"{"order_id":"X","total":1,"currency":"usd"}"#)
        .await
        .expect_err("must reject");
    assert_eq!(err["code"], "not_initialized");
    assert_eq!(err["name"], "SaleBeaconError");
}

#[wasm_bindgen_test]
async fn track_sale_posts_attribution_and_visitor_uid() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-send"))).await;
    let status = track(
        r#"{"order_id":"ORD-1001","total":12999,"currency":"USD","customer_email":"ann@example.com"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, "sent");
    let got = received("ok-send").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let body = &got[0]["body"];
    assert_eq!(body["order_id"], "ORD-1001");
    assert_eq!(body["total"], 12999);
    assert_eq!(body["currency"], "usd");
    assert_eq!(body["campaign_affiliate_id"], "creator42");
    assert_eq!(
        body["visitor_uid"].as_str(),
        web::visitor_id().unwrap().as_deref()
    );
    assert_eq!(body["customer_email"], "ann@example.com");
    assert!(got[0]["content_type"]
        .as_str()
        .unwrap()
        .starts_with("text/plain"));
    // Delivered orders leave the outbox.
    let outbox = get_item("salebeacon:outbox").unwrap_or_else(|| "[]".into());
    assert_eq!(outbox, "[]");
}

#[wasm_bindgen_test]
async fn a_sale_with_three_bad_fields_rejects_with_three_issues() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-invalid3"))).await;
    let err = track(
        r#"{"order_id":"ORD-2","total":"129.99","currency":"xyz","customer_email":"not-an-email"}"#,
    )
    .await
    .expect_err("must reject");
    assert_eq!(err["name"], "SaleBeaconError");
    assert_eq!(err["code"], "invalid_sale");
    assert_eq!(issue_fields(&err), ["currency", "customer_email", "total"]);
    assert!(received("ok-invalid3").await.is_empty());
}

#[wasm_bindgen_test]
async fn merchant_decisions_and_unknown_fields_are_refused() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-refuse"))).await;
    let err = track(
        r#"{"orderId":"A","total":100,"currency":"usd","commission":5,"due_at":"2030-01-01T00:00:00Z","status":"paid"}"#,
    )
    .await
    .expect_err("must reject");
    assert_eq!(
        issue_fields(&err),
        ["commission", "due_at", "orderId", "order_id", "status"]
    );
    let msg = err["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["field"] == "orderId")
        .unwrap()["message"]
        .clone();
    assert!(msg.as_str().unwrap().contains("did you mean order_id"));
    assert!(received("ok-refuse").await.is_empty());
}

#[wasm_bindgen_test]
async fn a_delivered_order_is_a_duplicate_the_second_time() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-dup"))).await;
    let sale = r#"{"order_id":"ORD-DUP","total":500,"currency":"eur"}"#;
    assert_eq!(track(sale).await.unwrap(), "sent");
    // The thank-you page is reloaded.
    web::reset();
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-dup"))).await;
    assert_eq!(track(sale).await.unwrap(), "duplicate");
    assert_eq!(received("ok-dup").await.len(), 1);
}

#[wasm_bindgen_test]
async fn the_proxy_saying_duplicate_resolves_duplicate() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("dup-proxy"))).await;
    let status = track(r#"{"order_id":"ORD-KNOWN","total":500,"currency":"eur"}"#)
        .await
        .unwrap();
    assert_eq!(status, "duplicate");
}

#[wasm_bindgen_test]
async fn no_attribution_means_unattributed_and_nothing_sent() {
    fresh("");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-unattr"))).await;
    let status = track(r#"{"order_id":"ORD-U","total":500,"currency":"usd"}"#)
        .await
        .unwrap();
    assert_eq!(status, "unattributed");
    assert!(received("ok-unattr").await.is_empty());
    // A tag given with the sale itself is attribution enough.
    let status = track(
        r#"{"order_id":"ORD-U2","total":500,"currency":"usd","campaign_affiliate_id":"creator42"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, "sent");
}

#[wasm_bindgen_test]
async fn consent_denied_blocks_and_stores_nothing() {
    fresh("?ref=creator42");
    init_with(format!(
        r#"{{"endpoint":"{}","consent":"denied"}}"#,
        endpoint("ok-denied")
    ))
    .await;
    assert_eq!(get_cookie("sb_aff"), None);
    assert_eq!(get_cookie("sb_vid"), None);
    assert!(web::visitor_id().unwrap().is_none());
    let status = track(
        r#"{"order_id":"ORD-D","total":500,"currency":"usd","campaign_affiliate_id":"creator42"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, "blocked");
    sleep(200).await;
    assert!(received("ok-denied").await.is_empty());
    assert!(received_touches("ok-denied").await.is_empty());
}

#[wasm_bindgen_test]
async fn global_privacy_control_blocks_even_with_consent() {
    fresh("?ref=creator42");
    set_gpc(true);
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-gpc"))).await;
    assert_eq!(get_cookie("sb_aff"), None);
    assert_eq!(get_item("salebeacon:aff"), None);
    let status = track(
        r#"{"order_id":"ORD-G","total":500,"currency":"usd","campaign_affiliate_id":"creator42"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, "blocked");
    web::consent(JsValue::from_str("granted")).await.unwrap();
    assert_eq!(get_cookie("sb_aff"), None, "GPC wins over consent");
    assert!(received("ok-gpc").await.is_empty());
    // respectGpc: false opts out of honouring it.
    fresh("?ref=creator42");
    set_gpc(true);
    init_with(format!(
        r#"{{"endpoint":"{}","respectGpc":false}}"#,
        endpoint("ok-gpc-off")
    ))
    .await;
    assert!(get_cookie("sb_aff").is_some());
    set_gpc(false);
}

#[wasm_bindgen_test]
async fn pending_consent_waits_then_granted_sends() {
    fresh("?ref=creator42");
    init_with(format!(
        r#"{{"endpoint":"{}","consent":"pending"}}"#,
        endpoint("ok-pending")
    ))
    .await;
    assert_eq!(get_cookie("sb_aff"), None, "nothing stored while pending");
    let status = track(r#"{"order_id":"ORD-P","total":700,"currency":"usd"}"#)
        .await
        .unwrap();
    assert_eq!(status, "queued");
    assert!(received("ok-pending").await.is_empty());
    web::consent(JsValue::from_str("granted")).await.unwrap();
    let got = received("ok-pending").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["body"]["order_id"], "ORD-P");
    assert_eq!(got[0]["body"]["campaign_affiliate_id"], "creator42");
    assert!(get_cookie("sb_aff").is_some(), "granted stores attribution");
}

#[wasm_bindgen_test]
async fn pending_consent_then_denied_discards() {
    fresh("?ref=creator42");
    init_with(format!(
        r#"{{"endpoint":"{}","consent":"pending"}}"#,
        endpoint("ok-pending-denied")
    ))
    .await;
    let status = track(r#"{"order_id":"ORD-PD","total":700,"currency":"usd"}"#)
        .await
        .unwrap();
    assert_eq!(status, "queued");
    web::consent(JsValue::from_str("denied")).await.unwrap();
    assert_eq!(get_item("salebeacon:outbox"), None);
    sleep(200).await;
    assert!(received("ok-pending-denied").await.is_empty());
    let err = web::consent(JsValue::from_str("yes"))
        .await
        .expect_err("bad state");
    let err: Value = serde_json::from_str(&describe_error(&err)).unwrap();
    assert_eq!(err["code"], "invalid_config");
}

#[wasm_bindgen_test]
async fn proxy_422_rejects_with_its_issues_and_is_not_kept() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("invalid-proxy"))).await;
    let err = track(r#"{"order_id":"ORD-422","total":700,"currency":"usd"}"#)
        .await
        .expect_err("the proxy's 422 rejects");
    assert_eq!(err["code"], "invalid_sale");
    assert_eq!(issue_fields(&err), ["total"]);
    assert_eq!(get_item("salebeacon:outbox").as_deref(), Some("[]"));
}

#[wasm_bindgen_test]
async fn proxy_down_queues_and_the_next_page_view_resends() {
    fresh("?ref=creator42");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("down-proxy"))).await;
    let status = track(r#"{"order_id":"ORD-503","total":700,"currency":"usd"}"#)
        .await
        .unwrap();
    assert_eq!(status, "queued");
    let outbox = get_item("salebeacon:outbox").unwrap();
    assert!(outbox.contains("ORD-503"), "{outbox}");
    // The proxy is back (here: another endpoint) and the visitor opens any page.
    web::reset();
    set_url("");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-back"))).await;
    sleep(500).await;
    let got = received("ok-back").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["body"]["order_id"], "ORD-503");
    assert_eq!(get_item("salebeacon:outbox").as_deref(), Some("[]"));
}

#[wasm_bindgen_test]
async fn storage_that_throws_still_sends() {
    fresh("?ref=creator42");
    break_storage(true);
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-nostorage"))).await;
    let status = track(r#"{"order_id":"ORD-NS","total":700,"currency":"usd"}"#)
        .await
        .unwrap();
    break_storage(false);
    assert_eq!(status, "sent");
    assert_eq!(received("ok-nostorage").await.len(), 1);
}

#[wasm_bindgen_test]
async fn corrupt_stored_data_is_discarded_not_fatal() {
    fresh("?ref=creator42");
    set_item("salebeacon:outbox", "{not json");
    set_item("salebeacon:delivered", "[[1,2,3]]");
    set_cookie("sb_vid=not-a-uuid; Path=/");
    init_with(format!(r#"{{"endpoint":"{}"}}"#, endpoint("ok-corrupt"))).await;
    let vid = web::visitor_id().unwrap().unwrap();
    assert!(is_uuid_v4(&vid), "a corrupt visitor id is replaced");
    let status = track(r#"{"order_id":"ORD-C","total":700,"currency":"usd"}"#)
        .await
        .unwrap();
    assert_eq!(status, "sent");
}

#[wasm_bindgen_test]
fn to_minor_units_is_exact() {
    let m = |a: JsValue, c: &str| web::to_minor_units(a, c).unwrap();
    assert_eq!(m("19.99".into(), "usd"), 1999.0);
    assert_eq!(m(JsValue::from_f64(0.29), "usd"), 29.0);
    assert_eq!(m(JsValue::from_f64(1.005), "kwd"), 1005.0);
    assert_eq!(m("1500".into(), "jpy"), 1500.0);
    assert_eq!(m("1.234".into(), "KWD"), 1234.0);
    let err = web::to_minor_units("1.234".into(), "usd").unwrap_err();
    let err: Value = serde_json::from_str(&describe_error(&err)).unwrap();
    assert_eq!(err["name"], "SaleBeaconError");
    assert_eq!(err["code"], "invalid_amount");
    assert_eq!(issue_fields(&err), ["amount"]);
    let err = web::to_minor_units("1".into(), "zzz").unwrap_err();
    let err: Value = serde_json::from_str(&describe_error(&err)).unwrap();
    assert_eq!(issue_fields(&err), ["currency"]);
}
