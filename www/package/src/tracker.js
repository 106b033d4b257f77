// salebeacon: conversion tracking for Growi creator campaigns (the npm entry point, and the
// script-tag embed's tracker, which the loader imports).
//
// This file is the public API and the page's tracker state. The plumbing lives next to it
// (options, cookies, storage, outbox, delivery, lock) and every rule lives in Rust, in the
// WebAssembly modules rules.js loads: with the script tag, a page downloads the `visit` module
// only when its URL carries a creator's parameters (or it asks for the API with `ready`) and the
// `order` module only when it records a sale.
import { AFF_COOKIE, VID_COOKIE, GROWI_PARAMS, TOUCH_PATH, STATUS_DUPLICATE } from './contract.js';
import { fail, isSaleBeaconError, notInitialized } from './errors.js';
import { parseOptions } from './options.js';
import { getCookie, setCookie, autoDomain } from './cookies.js';
import * as storage from './storage.js';
import * as outbox from './outbox.js';
import * as mark from './mark.js';
import * as delivery from './delivery.js';
import { need, provide, loaded, putFields } from './rules.js';

export { isSaleBeaconError };

/** For the script-tag loader: readies a rules module (`visit` or `order`) for a `ready` callback. */
export const _need = need;
/** For the script-tag loader: takes over `window.salebeacon` (embed.js). */
export { boot as _boot } from './embed.js';

/** How long trackSale waits for the proxy before it answers `queued`. */
const SEND_WAIT_MS = 4000;
const VISITOR_DAYS = 400;
const DAY_MS = 86400000;

/** The page's tracker, set by init. */
let t = null;

const blocked = () => t.gpc || t.consent === 'denied';
const may = () => !blocked() && t.consent === 'granted';
const keepMs = () => t.options.windowDays * DAY_MS;

function randomBytes() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return b;
}

/** Where cookies go: the resolved cookie domain (null: host-only), found once. */
function domain() {
  if (t.domain === undefined) t.domain = t.options.cookieDomain === 'auto' ? autoDomain() : t.options.cookieDomain;
  return t.domain;
}

/** Writes attribution and visitor uid to cookies and their localStorage mirror (consent allowing). */
function persist() {
  if (!may()) return;
  if (t.aff) {
    // Without its description (a thank-you page that loaded only the `order` module) the cookie
    // is left as it is: its lifetime is the attribution's, which only the description knows.
    if (t.info) setCookie(AFF_COOKIE, t.aff, (Date.parse(t.info.expires_at) - Date.now()) / 1000, domain());
    storage.set('aff', t.aff);
    if (t.info) storage.set('aff_info', JSON.stringify(t.info));
  }
  if (t.vid) {
    setCookie(VID_COOKIE, t.vid, VISITOR_DAYS * 86400, domain());
    storage.set('vid', t.vid);
  }
}

/** Removes everything the tracker and the proxy stored in this browser (consent denied). */
function forget() {
  // The cookie domain is found here when this page never wrote a cookie (it started denied): an
  // earlier visit's cookies are on it (`Domain=shop.example`), and so are the proxy's copies.
  const d = domain();
  for (const name of [AFF_COOKIE, VID_COOKIE]) {
    setCookie(name, '', 0, d);
    setCookie(name, '', 0, null);
  }
  for (const k of ['aff', 'aff_info', 'vid']) storage.remove(k);
  outbox.clear();
  t.aff = t.info = t.vid = null;
  // The proxy's HttpOnly copies, which no script can delete.
  const q = d ? `?domain=${encodeURIComponent(d)}` : '';
  fetch(t.options.endpoint + TOUCH_PATH + q, { method: 'DELETE', credentials: 'include', keepalive: true }).catch(() => {});
}

/** Describes the attribution with the `visit` module's rules, loading the module if need be. */
async function describe() {
  if (!t.aff) return (t.info = null);
  return describeWith(await need('visit'));
}

function describeWith(m) {
  t.info = JSON.parse(m.describe(t.aff, t.options.windowDays, Date.now()));
  if (!t.info) t.aff = null; // expired or unreadable
  return t.info;
}

/** Tells the proxy about a capture so it keeps HttpOnly copies (they outlive Safari's cap). */
function touch() {
  const body = JSON.stringify({ aff: t.aff, vid: t.vid, domain: t.domain || undefined });
  fetch(t.options.endpoint + TOUCH_PATH, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain;charset=UTF-8' },
    credentials: 'include',
    keepalive: true,
  }).catch(() => {});
}

/**
 * Loads both WebAssembly rules modules (once; later calls share the same promise). `init()` and
 * `trackSale()` load what they need; call it yourself only to start the downloads early or to
 * load the modules from elsewhere: `{ visit, order }`, each a URL, a Response, bytes or a
 * compiled WebAssembly.Module.
 */
export function load(sources) {
  if (sources) {
    provide('visit', sources.visit);
    provide('order', sources.order);
  }
  return Promise.all([need('visit'), need('order')]).then(() => undefined);
}

/**
 * Starts the tracker on this page: reads the options, captures attribution from the URL, and
 * sends any sale still waiting from an earlier page. `hints` (the loader's): which rules the page
 * will need right away (`{ order: true }`), and where the modules are.
 */
export async function init(options, hints) {
  const opts = parseOptions(options);
  const jar = document.cookie; // read once: each read may ask the browser process
  const next = {
    options: opts,
    consent: opts.consent,
    gpc: opts.respectGpc && navigator.globalPrivacyControl === true,
    aff: getCookie(AFF_COOKIE, jar) || storage.get('aff'),
    info: storage.getJson('aff_info') || null,
    vid: getCookie(VID_COOKIE, jar) || storage.get('vid'),
    domain: undefined,
  };
  if (hints) {
    // Started with no rules to fetch: the loader found the waiting mark (or a command that does
    // not need them), so the mark's database may exist (mark.js).
    if (!(hints.need || []).length) mark.found();
    provide('visit', hints.visit);
    provide('order', hints.order);
  }
  // The npm form readies what its synchronous calls need after init (toMinorUnits, attribution,
  // visitorId: the `visit` module); the loader asks only for what the page needs.
  const eager = hints ? hints.need || [] : ['visit'];
  const loads = eager.map(need);
  // The npm form also fetches the `order` module in the background, so trackSale has its rules at
  // hand even if the network or the proxy goes away before the sale.
  if (!hints) need('order').catch(() => {});
  t = next;
  if (t.info && t.info.expires_at && Date.parse(t.info.expires_at) <= Date.now()) t.info = null;
  // The recognised URL parameters present, in priority order: the Growi pair, then the tag
  // parameters as configured. What they are worth is the `visit` module's call.
  const q = new URLSearchParams(location.search);
  const found = [...GROWI_PARAMS, ...opts.params].filter((p, i, all) => q.has(p) && all.indexOf(p) === i);
  let changed = false;
  if (found.length && !blocked()) {
    const m = await need('visit');
    putFields(m, Object.fromEntries(found.map((p) => [p, q.get(p)])));
    const r = JSON.parse(m.capture(t.aff || '', opts.model, opts.windowDays, Date.now()));
    for (const w of r.warnings) console.warn(`salebeacon: ${w}`);
    changed = r.changed;
    t.aff = r.aff;
    if (opts.cleanUrl && r.present.length) {
      const u = new URL(location.href);
      for (const p of r.present) u.searchParams.delete(p);
      history.replaceState(history.state, '', u);
    }
  }
  await Promise.all(loads);
  if (!blocked()) {
    // Described when the `visit` module is here anyway; a thank-you page that needs only the
    // `order` module does not download `visit` for it (the sale reads the attribution itself).
    if (t.aff && (changed || !t.info) && loaded('visit')) await describe();
    const v = loaded('visit');
    if (v) t.vid = v.visitor(t.vid || '', randomBytes());
    persist();
    if (changed && t.aff && may()) touch();
  }
  if (blocked()) {
    delivery.stop();
    // Denied (or Global Privacy Control) on this visit: what an earlier visit stored goes too,
    // so no later request (a pixel, a sale) carries it.
    if (t.aff || t.vid || outbox.waiting().length) forget();
  } else {
    delivery.start(target());
    if (may()) {
      delivery.flush(true);
      setTimeout(() => outbox.prune(keepMs()), 2000);
    }
  }
  if (opts.capture[0]) {
    // GA4, the one capture there is so far. A file of its own (pkg/ga4.js): only pages that
    // ask for GA4 capture download it.
    import('./ga4.js').then((g) => g.watch(trackSale, need), console.error);
  }
}

/** Asks the proxy for the attribution its HttpOnly cookies hold (Safari's 7-day cap). */
async function recover() {
  try {
    const r = await fetch(t.options.endpoint + TOUCH_PATH, { credentials: 'include' });
    const aff = r.ok && (await r.json()).aff;
    if (!aff) return false;
    t.aff = aff;
    if (!(await describe())) return false;
    persist();
    return true;
  } catch (_) {
    return false;
  }
}

/**
 * A plain copy of the sale's own fields, each read once. A shop's object can be anything (a
 * getter that throws, a Proxy): whatever throws while it is read is an invalid sale naming the
 * field, never thrown into the page and never left hanging.
 */
function readSale(sale) {
  if (sale === null || typeof sale !== 'object' || Array.isArray(sale)) {
    throw fail('invalid_sale', 'invalid sale', [{ field: 'sale', message: 'must be an object like { order_id, total, currency }' }]);
  }
  const why = (field, e) => ({ field, message: `could not be read (${(e && e.message) || e})` });
  let names;
  try {
    names = Object.keys(sale);
  } catch (e) {
    throw fail('invalid_sale', 'invalid sale', [why('sale', e)]);
  }
  const copy = {};
  const issues = [];
  for (const k of names) {
    try {
      const v = sale[k];
      // Kept as JSON can carry it (the copy is stored): nested values only ever get a "must be a
      // number / string" answer, so their kind is enough.
      copy[k] = typeof v === 'bigint' ? Number(v) : v !== null && typeof v === 'object' ? (Array.isArray(v) ? [] : {}) : v;
    } catch (e) {
      issues.push(why(k, e));
    }
  }
  if (issues.length) throw fail('invalid_sale', 'invalid sale', issues);
  return copy;
}

/** The rules' verdict on a sale (the `order` module's `sale`), with this page's attribution. */
function check(m, plain) {
  putFields(m, plain);
  return JSON.parse(m.sale(t.aff || '', t.vid || '', t.options.windowDays, Date.now()));
}

/** Resolves after `p`, or with undefined after `ms` (p still runs to the end). */
const within = (p, ms) => Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

/** What delivery needs of the tracker: where, for how long, and how to check unchecked sales. */
const target = () => ({
  endpoint: t.options.endpoint,
  keepMs: keepMs(),
  prepare: async () => outbox.raw().length && checkRaw(await need('order')),
});

/** Checks the sales stored before their rules arrived (a page closed early, a module that did
 * not load); called once the `order` module is there. */
function checkRaw(m) {
  for (const [key, { sale }] of outbox.raw()) {
    const r = check(m, sale);
    if (r.issues) console.error(`salebeacon: dropped an invalid sale: ${r.issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
    else if (r.unattributed) console.warn(`salebeacon: dropped sale ${sale.order_id}: no creator to credit`);
    else if (!outbox.wasDelivered(r.order_id) && !outbox.entry(r.order_id)) {
      outbox.put(r.order_id, { body: r.body, created_at: Date.now(), attempts: 0, next_at: 0 });
    }
    outbox.removeRaw(key);
  }
}

/**
 * Records a sale: resolves `{ status }` with `sent`, `queued`, `duplicate`, `unattributed` or
 * `blocked`; rejects with a SaleBeaconError listing every problem of an invalid sale.
 */
export async function trackSale(sale) {
  if (!t) throw notInitialized('call init() (or salebeacon(\'init\')) before this');
  const plain = readSale(sale);
  // The state when the shop called, whatever changes while the rules load.
  const isBlocked = blocked();
  const pending = t.consent === 'pending';
  // In storage before any network call (the rules' module may still have to be fetched).
  const key = isBlocked ? null : outbox.putRaw(plain);
  let m;
  try {
    m = await within(need('order'), SEND_WAIT_MS);
  } catch (_) {
    // The module did not load (offline, proxy down): the sale waits, unchecked, for a later page.
  }
  if (!m) {
    // The raw sale waits for a later page: its mark must outlast this one.
    if (key) outbox.settle();
    return { status: isBlocked ? 'blocked' : 'queued' };
  }
  let r = check(m, plain);
  if (r.unattributed && !isBlocked && !pending && !t.aff && (await recover())) {
    // This browser's storage lost it (Safari's 7-day cap on script cookies); the proxy's
    // HttpOnly copy still had it. One request, only for an unattributed sale.
    r = check(m, plain);
  }
  if (key) outbox.removeRaw(key);
  if (r.issues) {
    outbox.settle();
    throw fail('invalid_sale', 'invalid sale', r.issues);
  }
  if (isBlocked) return { status: 'blocked' };
  let status = r.unattributed ? 'unattributed' : outbox.wasDelivered(r.order_id) && STATUS_DUPLICATE;
  if (!status) {
    if (!outbox.entry(r.order_id)) outbox.put(r.order_id, { body: r.body, created_at: Date.now(), attempts: 0, next_at: 0 });
    status = (!pending && (await within(delivery.deliver(r.order_id, true), SEND_WAIT_MS))) || 'queued';
  }
  // The mark goes unless a sale still waits (this one, queued, or another): after a purchase
  // the next quiet page stays quiet.
  outbox.settle();
  return { status };
}

/** Changes consent at run time: 'granted' | 'pending' | 'denied'. */
export async function consent(state) {
  if (!t) throw notInitialized('call init() (or salebeacon(\'init\')) before this');
  if (!['granted', 'pending', 'denied'].includes(state)) {
    throw fail('invalid_config', 'invalid consent', [{ field: 'consent', message: 'must be "granted", "pending" or "denied"' }]);
  }
  t.consent = state;
  if (state === 'denied') {
    forget();
    delivery.stop();
  } else if (state === 'granted') {
    if (t.gpc) return console.warn('salebeacon: Global Privacy Control is on: nothing is stored or sent (respectGpc)');
    if (t.aff && !t.info) await describe();
    persist();
    delivery.start(target());
    await delivery.flush(true);
  }
}

/** The current attribution, or null (none, or before init() resolved). */
export function attribution() {
  if (!t || blocked()) return null;
  const m = loaded('visit');
  if (t.aff && !t.info && m) describeWith(m);
  return t.info && Date.parse(t.info.expires_at) > Date.now() ? { ...t.info } : null;
}

/** The visitor uid (a UUID v4), or null (nothing may be stored, or before init() resolved). */
export function visitorId() {
  return t && !blocked() ? t.vid || null : null;
}

/** Decimal amount → integer minor units of the currency, exactly ('19.99', 'usd' → 1999). */
export function toMinorUnits(amount, currency) {
  const m = loaded('visit');
  if (!m) throw notInitialized('the module is still loading: await init() (or load()) before toMinorUnits()');
  // A JavaScript number as its own shortest form: 0.29 is "0.29", never 0.28999...
  const r = JSON.parse(m.minorUnits(typeof amount === 'number' ? String(amount) : typeof amount === 'string' ? amount : '', String(currency)));
  if (r.issues) throw fail('invalid_amount', 'invalid amount', r.issues);
  return r.value;
}
