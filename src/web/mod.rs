//! The browser tracker: the JavaScript API of salebeacon, compiled to WebAssembly.
//!
//! Layout (this is the only module tree that touches web APIs; it is compiled for `wasm32` only):
//! - `mod.rs` (here): the exported functions (`init`, `trackSale`, `consent`, `attribution`,
//!   `visitorId`, `toMinorUnits`) and the page's tracker state.
//! - [`options`]: reading `init` options; [`error`]: the `SaleBeaconError` conversion.
//! - [`cookies`], [`storage`]: where attribution and the visitor uid live (cookie + localStorage
//!   mirror); [`outbox`]: sales waiting for the proxy, and the delivered-order ledger.
//! - [`transport`]: the HTTP calls to the proxy; [`browser`]: clock, randomness, console, URL.
//!
//! `trackSale` validates with the core, writes the sale to the outbox, then sends: the outbox is
//! the single path every sale takes, so retries, consent waits and resends on the next page view
//! are all "flush the outbox".

mod browser;
mod cookies;
mod delivery;
pub mod error;
mod lock;
mod options;
mod outbox;
mod storage;
mod transport;

use crate::attribution::{self, Attribution, Referral};
use crate::sale::{Origin, SaleError, SaleInput};
use crate::{money, time, visitor, Issue};
use error::TrackerError;
use js_sys::{Object, Reflect};
use options::{Consent, CookieDomain, Options};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

const AFF_KEY: &str = "aff";
const VID_KEY: &str = "vid";
/// The visitor uid cookie lives this long (browsers cap script-set cookies anyway).
const VISITOR_DAYS: i64 = 400;
/// How long `trackSale` waits for the proxy before it answers `queued`.
const SEND_WAIT_MS: u32 = 4_000;

// The public types are written once, documented field by field, in the npm package's
// `index.d.ts` (www/package/); the glue's own declarations import them from there.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
import type { SaleInput, InitOptions, ConsentState, TrackResult, AttributionInfo } from "./index.js";
"#;

/// The page's tracker, set by `init`.
struct Tracker {
    options: Options,
    consent: Consent,
    /// Global Privacy Control is on and respected: nothing is stored or sent.
    gpc: bool,
    attribution: Option<Attribution>,
    visitor_id: Option<String>,
    /// Resolved cookie domain (`None`: host-only), once something was stored.
    cookie_domain: Option<Option<String>>,
}

impl Tracker {
    fn blocked(&self) -> bool {
        self.gpc || self.consent == Consent::Denied
    }
}

thread_local! {
    static TRACKER: RefCell<Option<Tracker>> = const { RefCell::new(None) };
}

fn with_tracker<R>(f: impl FnOnce(&mut Tracker) -> R) -> Result<R, TrackerError> {
    TRACKER.with(|t| {
        t.borrow_mut()
            .as_mut()
            .map(f)
            .ok_or(TrackerError::NotInitialized)
    })
}

fn read_attribution() -> Option<Attribution> {
    let from_cookie = cookies::get(cookies::AFFILIATION).and_then(|v| Attribution::decode(&v));
    from_cookie.or_else(|| {
        storage::get(AFF_KEY)
            .ok()
            .flatten()
            .and_then(|v| Attribution::decode(&v))
    })
}

fn read_visitor_id() -> Option<String> {
    let valid = |v: &String| visitor::is_uuid_v4(v);
    cookies::get(cookies::VISITOR)
        .filter(valid)
        .or_else(|| storage::get(VID_KEY).ok().flatten().filter(valid))
}

/// Writes attribution and visitor uid to cookies and their localStorage mirror.
fn persist(t: &mut Tracker) {
    if t.blocked() || t.consent != Consent::Granted {
        return;
    }
    let domain = t
        .cookie_domain
        .get_or_insert_with(|| match &t.options.cookie_domain {
            CookieDomain::Auto => cookies::auto_domain(),
            CookieDomain::Fixed(d) => Some(d.clone()),
        })
        .clone();
    let now = browser::now_ms();
    if let Some(a) = &t.attribution {
        let value = a.encode();
        let max_age = (a.expires_at(t.options.window_days) - now) / 1000;
        cookies::set(
            cookies::AFFILIATION,
            &value,
            max_age.max(0),
            domain.as_deref(),
        );
        let _ = storage::set(AFF_KEY, &value);
    }
    if let Some(v) = &t.visitor_id {
        cookies::set(
            cookies::VISITOR,
            v,
            VISITOR_DAYS * 86_400,
            domain.as_deref(),
        );
        let _ = storage::set(VID_KEY, v);
    }
}

/// Removes everything the tracker stored (consent denied).
fn forget(t: &mut Tracker) {
    let domain = t.cookie_domain.clone().flatten();
    for name in [cookies::AFFILIATION, cookies::VISITOR] {
        cookies::set(name, "", 0, domain.as_deref());
        cookies::set(name, "", 0, None);
    }
    storage::remove(AFF_KEY);
    storage::remove(VID_KEY);
    outbox::clear();
    outbox::clear_ledger();
    t.attribution = None;
    t.visitor_id = None;
}

/// Starts the tracker on this page: reads options, captures attribution from the URL, and sends
/// any sale still waiting from an earlier page.
#[wasm_bindgen]
pub async fn init(
    #[wasm_bindgen(unchecked_param_type = "InitOptions | undefined")] options: JsValue,
) -> Result<(), JsValue> {
    let options = options::parse(&options).map_err(TrackerError::InvalidConfig)?;
    let gpc = options.respect_gpc && browser::global_privacy_control();
    let mut t = Tracker {
        consent: options.consent,
        gpc,
        attribution: None,
        visitor_id: None,
        cookie_domain: None,
        options,
    };
    let pairs = attribution::parse_query(&browser::search());
    let captured = attribution::capture(&pairs, &t.options.params);
    for r in &captured.rejected {
        browser::warn(&crate::text::concat(&[
            "ignored ", &r.param, "=\"", &r.value, "\": ", r.reason,
        ]));
    }
    let mut touched = false;
    if !t.blocked() {
        let now = browser::now_ms();
        let stored = read_attribution();
        let new = captured.referral.clone();
        t.attribution = attribution::apply(
            stored.clone(),
            new,
            t.options.model,
            now,
            t.options.window_days,
        );
        touched = t.attribution.is_some() && t.attribution != stored;
        t.visitor_id =
            Some(read_visitor_id().unwrap_or_else(|| visitor::uuid_v4(browser::random_bytes())));
        persist(&mut t);
    }
    if t.options.clean_url && !captured.present.is_empty() {
        browser::remove_params(&captured.present);
    }
    let endpoint = t.options.endpoint.clone();
    let touch = (touched && t.consent == Consent::Granted && !t.blocked())
        .then(|| touch_body(&t))
        .flatten();
    let flush_now = t.consent == Consent::Granted && !t.blocked();
    if t.blocked() {
        delivery::stop();
    } else {
        delivery::start(target_of(&t));
    }
    TRACKER.with(|cell| *cell.borrow_mut() = Some(t));
    if let Some(body) = touch {
        wasm_bindgen_futures::spawn_local(
            async move { transport::post_touch(&endpoint, &body).await },
        );
    }
    if flush_now {
        wasm_bindgen_futures::spawn_local(delivery::flush(true));
    }
    Ok(())
}

fn touch_body(t: &Tracker) -> Option<String> {
    let o = Object::new();
    Reflect::set(&o, &"aff".into(), &t.attribution.as_ref()?.encode().into()).ok()?;
    if let Some(v) = &t.visitor_id {
        Reflect::set(&o, &"vid".into(), &v.as_str().into()).ok()?;
    }
    // The domain `cookieDomain` resolved to, so the proxy's HttpOnly copies are shared the same
    // way (it checks the domain against the request's host).
    if let Some(Some(d)) = &t.cookie_domain {
        Reflect::set(&o, &"domain".into(), &d.as_str().into()).ok()?;
    }
    js_sys::JSON::stringify(&o).ok()?.as_string()
}

/// Asks the proxy for the attribution its own cookies hold; adopts and stores it when it is live.
async fn recover_attribution() -> Option<Referral> {
    let endpoint = with_tracker(|t| t.options.endpoint.clone()).ok()?;
    let encoded = transport::get_touched(&endpoint).await?;
    let found = Attribution::decode(&encoded)?;
    with_tracker(|t| {
        let live = attribution::apply(
            Some(found),
            None,
            t.options.model,
            browser::now_ms(),
            t.options.window_days,
        )?;
        let referral = live.referral.clone();
        t.attribution = Some(live);
        persist(t);
        Some(referral)
    })
    .ok()
    .flatten()
}

/// Reads a JavaScript object's own fields as a sale input; `None` when it is not an object.
fn sale_input(v: &JsValue) -> Option<SaleInput> {
    use crate::value::Loose;
    if !v.is_object() || js_sys::Array::is_array(v) {
        return None;
    }
    let loose = |x: JsValue| {
        if x.is_null() || x.is_undefined() {
            Loose::Null
        } else if let Some(b) = x.as_bool() {
            Loose::Bool(b)
        } else if let Some(n) = x.as_f64() {
            Loose::from_f64(n)
        } else if let Some(s) = x.as_string() {
            Loose::Str(s)
        } else if js_sys::Array::is_array(&x) {
            Loose::Composite("a list")
        } else {
            Loose::Composite("an object")
        }
    };
    let fields = Object::entries(v.unchecked_ref())
        .iter()
        .filter_map(|pair| {
            let pair: js_sys::Array = pair.unchecked_into();
            Some((pair.get(0).as_string()?, loose(pair.get(1))))
        })
        .collect();
    Some(SaleInput::from_fields(fields))
}

fn result(status: &str) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"status".into(), &status.into());
    o.into()
}

/// Records a sale: resolves `{ status }` with `sent`, `queued`, `duplicate`, `unattributed` or
/// `blocked`; rejects with a `SaleBeaconError` listing every problem of an invalid sale.
#[wasm_bindgen(js_name = trackSale, unchecked_return_type = "TrackResult")]
pub async fn track_sale(
    #[wasm_bindgen(unchecked_param_type = "SaleInput")] sale: JsValue,
) -> Result<JsValue, JsValue> {
    let (referral, vid, blocked, pending) = with_tracker(|t| {
        (
            t.attribution.as_ref().map(|a| a.referral.clone()),
            t.visitor_id.clone(),
            t.blocked(),
            t.consent == Consent::Pending,
        )
    })?;
    let mut input = sale_input(&sale).ok_or_else(|| {
        TrackerError::InvalidSale(vec![Issue::new(
            "sale",
            "must be an object like { order_id, total, currency }",
        )])
    })?;
    let order_token = input.order_token().map(str::to_owned);
    input.fill_in(referral.as_ref(), vid.as_deref());
    let mut checked = input.validate(Origin::Browser);
    if checked == Err(SaleError::Unattributed) && !blocked && !pending && referral.is_none() {
        // This browser's storage lost it (Safari's 7-day cap on script cookies); the proxy's
        // HttpOnly copy may still hold it. One request, only on an unattributed sale.
        if let Some(referral) = recover_attribution().await {
            input.fill_in(Some(&referral), None);
            checked = input.validate(Origin::Browser);
        }
    }
    let sale = match checked {
        Ok(sale) => sale,
        Err(SaleError::Invalid(issues)) => return Err(TrackerError::InvalidSale(issues).into()),
        Err(SaleError::Unattributed) if blocked => return Ok(result("blocked")),
        Err(SaleError::Unattributed) => return Ok(result("unattributed")),
    };
    if blocked {
        return Ok(result("blocked"));
    }
    if outbox::was_delivered(&sale.order_id) {
        return Ok(result("duplicate"));
    }
    let mut body = crate::json::ObjectWriter::new();
    sale.write_fields(&mut body);
    if let Some(token) = &order_token {
        body.str("order_token", token);
    }
    let entry = outbox::Entry {
        order_id: sale.order_id,
        body: body.finish(),
        created_at: browser::now_ms(),
        attempts: 0,
        next_at: 0,
    };
    outbox::push(entry.clone());
    if pending {
        return Ok(result("queued"));
    }
    let target = with_tracker(|t| target_of(t))?;
    match delivery::with_timeout(delivery::deliver(entry, target), SEND_WAIT_MS)
        .await
        .flatten()
    {
        Some(Ok(status)) => Ok(result(status)),
        Some(Err(e)) => Err(e.into()),
        None => Ok(result("queued")),
    }
}

/// The delivery settings of the current tracker.
fn target_of(t: &Tracker) -> delivery::Target {
    delivery::Target {
        endpoint: t.options.endpoint.clone(),
        keep_ms: i64::from(t.options.window_days) * 86_400_000,
    }
}

/// Changes consent at run time: `granted` stores attribution and sends waiting sales, `denied`
/// discards them and everything the tracker stored.
#[wasm_bindgen]
pub async fn consent(
    #[wasm_bindgen(unchecked_param_type = "ConsentState")] state: JsValue,
) -> Result<(), JsValue> {
    let Some(c) = state.as_string().as_deref().and_then(Consent::parse) else {
        return Err(TrackerError::InvalidConfig(vec![Issue::new(
            "consent",
            "must be \"granted\", \"pending\" or \"denied\"",
        )])
        .into());
    };
    let flush_now = with_tracker(|t| {
        t.consent = c;
        match c {
            Consent::Denied => {
                forget(t);
                delivery::stop();
                false
            }
            Consent::Granted if t.gpc => {
                browser::warn(
                    "Global Privacy Control is on: nothing is stored or sent (respectGpc)",
                );
                false
            }
            Consent::Granted => {
                persist(t);
                delivery::start(target_of(t));
                true
            }
            Consent::Pending => false,
        }
    })?;
    if flush_now {
        delivery::flush(true).await;
    }
    Ok(())
}

/// The current attribution, or `null`.
#[wasm_bindgen(unchecked_return_type = "AttributionInfo | null")]
pub fn attribution() -> Result<JsValue, JsValue> {
    let (attr, window) = with_tracker(|t| (t.attribution.clone(), t.options.window_days))?;
    let Some(a) = attr else {
        return Ok(JsValue::NULL);
    };
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&o, &k.into(), &v);
    };
    match &a.referral {
        Referral::Tag(tag) => set("campaign_affiliate_id", tag.as_str().into()),
        Referral::Growi {
            user_id,
            campaign_id,
        } => {
            set("growi_user_id", (*user_id as f64).into());
            set("growi_campaign_id", (*campaign_id as f64).into());
        }
    }
    set("model", a.model.as_str().into());
    set("captured_at", time::format_utc(a.captured_at).into());
    set("expires_at", time::format_utc(a.expires_at(window)).into());
    Ok(o.into())
}

/// The visitor uid (a UUID v4), or `null` when nothing may be stored.
#[wasm_bindgen(js_name = visitorId)]
pub fn visitor_id() -> Result<Option<String>, JsValue> {
    Ok(with_tracker(|t| t.visitor_id.clone())?)
}

/// Converts a decimal amount (string or number) into integer minor units, exactly.
#[wasm_bindgen(js_name = toMinorUnits)]
pub fn to_minor_units(
    #[wasm_bindgen(unchecked_param_type = "string | number")] amount: JsValue,
    currency: &str,
) -> Result<f64, JsValue> {
    let text = match (amount.as_string(), amount.as_f64()) {
        (Some(s), _) => s,
        // JavaScript's own shortest form: 0.29 is "0.29", never 0.28999...
        (None, Some(n)) => String::from(
            js_sys::Number::from(n)
                .to_string_with_radix(10)
                .unwrap_or_default(),
        ),
        _ => String::new(),
    };
    money::to_minor_units(&text, currency)
        .map(|v| v as f64)
        .map_err(|e| {
            let field = match e {
                money::MoneyError::UnknownCurrency(_) => "currency",
                _ => "amount",
            };
            TrackerError::InvalidAmount(vec![Issue::new(field, e.message())]).into()
        })
}

/// Forgets the page's tracker, as a new page view would. For tests; not exported to JavaScript.
#[doc(hidden)]
pub fn reset() {
    TRACKER.with(|t| *t.borrow_mut() = None);
    delivery::stop();
    outbox::reset_memory();
}
