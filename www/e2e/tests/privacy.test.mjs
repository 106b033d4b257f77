// Consent and Global Privacy Control, on every way in (DESIGN.md: `consent`, `respectGpc`): with
// consent denied, or with `navigator.globalPrivacyControl` true (and `respectGpc` left on), the
// tracker writes no cookie and no storage and sends nothing that identifies the visitor; a sale
// answers `blocked`. Checked on the script tag, the npm entry point and the pixel (which has no
// consent of its own: it can only carry what the tracker stored, so a pixel after a blocked visit
// arrives without attribution and records nothing), in the engine SALEBEACON_ENGINE names.
//
// Forgetting: consent withdrawn at run time, or a visit that starts denied (or with GPC) after an
// earlier visit stored something, removes everything salebeacon kept in the browser: its own
// cookies and storage (waiting sales and the ledger too) and the proxy's HttpOnly copies, which
// only the proxy can expire (`DELETE {endpoint}/touch`, the one request allowed then, carrying no
// sale). Those tests run on shop.test, where the cookies are domain cookies (`Domain=shop.test`),
// as on a real shop with a checkout subdomain. And a pixel request with `Sec-GPC: 1` has its
// tracking cookies ignored by the proxy.
//
// What the browser sent is read from the test server's log (every request of the test, its
// cookies included); what it kept, from the context's cookies (HttpOnly ones too) and the page's
// localStorage. Each test first checks that the tracker did run (it answered), so "nothing
// happened" is never the outcome of a page whose tracker failed to start; a forgetting test first
// checks that there was something to forget.
//
// GPC: none of the three engines here turns it on by itself (Firefox only in private windows or
// by a pref, Chromium and WebKit not at all), so the GPC pages define
// `navigator.globalPrivacyControl` first, as a browser with GPC on does (`/e2e/gpc.js`); the
// same pages with `data-respect-gpc="false"` show that this is what the tracker reads.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { HOOK_MS, ENGINE, startStack, stopStack, sleep, waitFor, UUID_V4 } from '../harness.mjs';

const STUB = '<script>window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)}</script>\n';
/** The page reports on <html>: `data-result` (a sale's status) or `data-seen` (what `ready` saw). */
const REPORT =
  '<script>var q = new URLSearchParams(location.search), h = document.documentElement;\n' +
  "if (q.get('order_id')) salebeacon('sale', { order_id: q.get('order_id'), total: 2500, currency: 'usd', customer_email: 'ann@example.com' }," +
  " function (e, r) { h.dataset.result = e ? 'error:' + e.code : r.status; });\n" +
  "else salebeacon('ready', function (api) { h.dataset.seen = JSON.stringify({ aff: api.attribution(), vid: api.visitorId() }); });</script>\n";
const GPC = '<script src="/e2e/gpc.js"></script>\n';

/** A page of the shop with the script-tag embed: `attrs` on the loader tag, `gpc` first or not. */
function embedPage(title, { attrs = '', gpc = false } = {}) {
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,">\n` +
    (gpc ? GPC : '') +
    STUB +
    `<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"${attrs}></script>\n` +
    REPORT +
    '</head><body><p>A page of the shop.</p></body></html>\n'
  );
}

/** A page without a tracker (the npm tests import it themselves), GPC on or not. */
function barePage(title, { gpc = false } = {}) {
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,">\n` +
    (gpc ? GPC : '') +
    '</head><body><p>A page of the shop; the test loads the tracker.</p></body></html>\n'
  );
}

let stack;
before(async () => {
  stack = await startStack({
    sitePages: {
      'e2e/gpc.js':
        '// A browser with Global Privacy Control on.\n' +
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: function () { return true; }, configurable: true });\n",
      'e2e/granted.html': embedPage('consent granted (the default)'),
      'e2e/denied.html': embedPage('consent denied', { attrs: ' data-consent="denied"' }),
      'e2e/gpc.html': embedPage('GPC on', { gpc: true }),
      'e2e/gpc-ignored.html': embedPage('GPC on, respectGpc false', { gpc: true, attrs: ' data-respect-gpc="false"' }),
      'e2e/bare.html': barePage('no tracker'),
      'e2e/bare-gpc.html': barePage('no tracker, GPC on', { gpc: true }),
      // The pixel form: the sale from the URL, non-personal fields only (DESIGN.md).
      'e2e/pixel.html':
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>pixel</title><link rel="icon" href="data:,">\n' +
        "<script>addEventListener('DOMContentLoaded', function () { var q = new URLSearchParams(location.search), img = new Image(1, 1);\n" +
        "img.onload = function () { document.documentElement.dataset.pixel = 'loaded'; };\n" +
        "img.src = '/salebeacon/pixel.gif?' + new URLSearchParams({ order_id: q.get('order_id'), total: '2500', currency: 'usd' });\n" +
        'document.body.appendChild(img); });</script>\n' +
        '</head><body><p>Thank you (pixel).</p></body></html>\n',
    },
  });
}, { timeout: HOOK_MS });
after(() => stopStack(stack), { timeout: HOOK_MS });
afterEach(() => stack.closePages(), { timeout: HOOK_MS });

let counter = 0;
const newOrder = (label) => `ORD-PRIV-${label}-${Date.now().toString(36)}-${++counter}-${crypto.randomBytes(2).toString('hex')}`;

/** Opens an embed page and returns what it reported (`data-result` or the parsed `data-seen`). */
async function embedView(page, file, query) {
  await page.goto(`${stack.site}/e2e/${file}${query}`);
  const key = query.includes('order_id=') ? 'result' : 'seen';
  const v = await page.waitForFunction((k) => document.documentElement.dataset[k], key, { timeoutMs: 15000 });
  return key === 'seen' ? JSON.parse(v) : v;
}

/** The pixel page for `orderId`; resolves once the GIF has loaded. */
async function pixelView(page, orderId) {
  await page.goto(`${stack.site}/e2e/pixel.html?order_id=${orderId}`);
  await page.waitForFunction(() => document.documentElement.dataset.pixel, undefined, { timeoutMs: 15000 });
}

/**
 * Since the log's last reset: no sale or touch request, no request carrying a salebeacon cookie;
 * no salebeacon cookie in the context (HttpOnly included), no salebeacon key in the page's
 * storage; and neither the proxy nor the sandbox knows any of `orderIds`.
 */
async function assertNothingKeptOrSent(page, orderIds) {
  await sleep(1500); // anything late (a retry, a beacon) has had its chance
  const log = await stack.front.requests();
  const api = log.filter((e) => /^\/salebeacon\/(sales|touch)(\?|$)/.test(e.path));
  assert.deepEqual(api.map((e) => `${e.method} ${e.path}`), [], 'no sale and no touch request');
  const withCookie = log.filter((e) => /(^|;\s*)sb_/.test(e.headers.cookie || ''));
  assert.deepEqual(withCookie.map((e) => `${e.method} ${e.path}: ${e.headers.cookie}`), [], 'no request carried a salebeacon cookie');
  const cookies = (await page.context.cookies(stack.site)).filter((c) => c.name.startsWith('sb_'));
  assert.deepEqual(cookies.map((c) => c.name), [], 'no salebeacon cookie');
  const keys = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('salebeacon:')));
  assert.deepEqual(keys, [], 'nothing in localStorage');
  for (const id of orderIds) {
    assert.equal(await stack.proxy.sale(id), null, `the proxy has nothing for ${id}`);
  }
  const sales = (await stack.sandbox.sales()).filter((s) => orderIds.includes(s.external_id));
  assert.deepEqual(sales, [], 'the sandbox has none of them');
}

/** The pixel request for `orderId` reached the proxy (a GIF came back) without any cookie of ours. */
async function assertBarePixel(orderId) {
  const pixels = (await stack.front.requests()).filter((e) => e.path.startsWith('/salebeacon/pixel.gif?') && e.path.includes(orderId));
  assert.equal(pixels.length, 1, JSON.stringify(pixels));
  assert.equal(pixels[0].status, 200);
  assert.doesNotMatch(pixels[0].headers.cookie || '', /(^|;\s*)sb_/);
}

for (const [how, file] of [
  ['consent denied (data-consent="denied")', 'denied.html'],
  ['Global Privacy Control on', 'gpc.html'],
]) {
  test(`${ENGINE}: script tag and pixel, ${how}: no cookie, no storage, nothing identifying sent`, async () => {
    const page = await stack.newPage();
    await stack.front.reset();
    // A creator's link: the tracker runs (ready answers) and captures nothing.
    assert.deepEqual(await embedView(page, file, '?ref=creator42'), { aff: null, vid: null });
    // The thank-you page: the sale is blocked, not stored, not sent.
    const orderId = newOrder('TAG');
    assert.equal(await embedView(page, file, `?order_id=${orderId}`), 'blocked');
    // A pixel on the same visit has nothing to carry: the proxy answers its GIF, records nothing.
    const pixelOrder = newOrder('PIXEL');
    await pixelView(page, pixelOrder);
    await assertBarePixel(pixelOrder);
    await assertNothingKeptOrSent(page, [orderId, pixelOrder]);
  });
}

test(`${ENGINE}: script tag, GPC on but respectGpc false (data-respect-gpc="false"): tracked as usual`, async () => {
  // What the GPC test above would have seen had the tracker not read navigator.globalPrivacyControl
  // from the page's gpc.js.
  const page = await stack.newPage();
  const seen = await embedView(page, 'gpc-ignored.html', '?ref=creator42');
  assert.equal(seen.aff.campaign_affiliate_id, 'creator42');
  assert.match(seen.vid, UUID_V4);
  const orderId = newOrder('GPC-OFF');
  assert.equal(await embedView(page, 'gpc-ignored.html', `?order_id=${orderId}`), 'sent');
  await stack.waitForSale(orderId);
  const names = (await page.context.cookies(stack.site)).map((c) => c.name);
  for (const n of ['sb_aff', 'sb_vid']) assert.ok(names.includes(n), `${n} in ${JSON.stringify(names)}`);
  assert.equal(await page.evaluate(() => navigator.globalPrivacyControl), true);
});

/**
 * The npm entry point on a bare page: `init(options)`, what it says, `consent('granted')` (unless
 * consent is denied), what it says then, and a sale's status.
 */
function npmRun(page, options, orderId) {
  return page.evaluate(
    async ({ options, orderId }) => {
      const m = await import('/salebeacon/index.js');
      await m.init(options);
      const out = { aff: m.attribution(), vid: m.visitorId() };
      // Granting consent cannot override GPC.
      if (options.consent !== 'denied') await m.consent('granted');
      out.afterGrant = { aff: m.attribution(), vid: m.visitorId() };
      out.sale = (await m.trackSale({ order_id: orderId, total: 2500, currency: 'usd', customer_email: 'ann@example.com' })).status;
      return out;
    },
    { options, orderId },
  );
}

for (const [how, file, options] of [
  ['consent denied (init({ consent: "denied" }))', 'bare.html', { consent: 'denied' }],
  ['Global Privacy Control on', 'bare-gpc.html', {}],
]) {
  test(`${ENGINE}: npm, ${how}: no cookie, no storage, nothing identifying sent`, async () => {
    const page = await stack.newPage();
    await stack.front.reset();
    await page.goto(`${stack.site}/e2e/${file}?ref=creator42`);
    const orderId = newOrder('NPM');
    const r = await npmRun(page, options, orderId);
    assert.deepEqual(r, { aff: null, vid: null, afterGrant: { aff: null, vid: null }, sale: 'blocked' });
    await assertNothingKeptOrSent(page, [orderId]);
    if (file === 'bare-gpc.html') {
      const lines = await page.consoleLines();
      assert.ok(lines.some((l) => l.startsWith('warn: salebeacon: Global Privacy Control is on')), JSON.stringify(lines));
    }
  });
}

/** The shop under a real-looking host name: the tracker's cookies are `Domain=shop.test` there. */
const shop = () => stack.siteFor('shop.test');

/** The salebeacon cookies the context holds for `origin`, HttpOnly ones marked, sorted. */
async function ourCookies(context, origin = shop()) {
  return (await context.cookies(origin))
    .filter((c) => c.name.startsWith('sb_'))
    .map((c) => `${c.name}${c.httpOnly ? ' (HttpOnly)' : ''}`)
    .sort();
}

const ALL_FOUR = ['sb_aff', 'sb_aff_h (HttpOnly)', 'sb_vid', 'sb_vid_h (HttpOnly)'];

/** Waits until a capture's cookies are all there: the tracker's and the proxy's HttpOnly copies. */
async function waitForAllFour(context) {
  let last;
  await waitFor(async () => JSON.stringify((last = await ourCookies(context))) === JSON.stringify(ALL_FOUR), {
    what: 'the four salebeacon cookies',
  }).catch((e) => {
    throw new Error(`${e.message}; held: ${JSON.stringify(last)}`);
  });
}

/** The page's salebeacon localStorage keys, sorted. */
const ourKeys = (page) => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('salebeacon:')).sort());
/** The salebeacon IndexedDB databases (the waiting mark, mark.js). */
const ourDatabases = (page) =>
  page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith('salebeacon:')));

/**
 * Since the log's last reset: the one request salebeacon made is `DELETE /salebeacon/touch` with
 * the tracker's cookie domain (answered 204, no body, so no sale); nothing else went to the
 * proxy's browser routes. And the context holds no salebeacon cookie at all (HttpOnly included)
 * on shop.test or its checkout subdomain, the page no salebeacon storage.
 */
async function assertForgotten(page) {
  await sleep(1500); // anything late (a retry, a beacon) has had its chance
  const api = (await stack.front.requests()).filter((e) => /^\/salebeacon\/(sales|touch|pixel)/.test(e.path));
  assert.deepEqual(
    api.map((e) => `${e.method} ${e.path} ${e.status} body=${JSON.stringify(e.body ?? null)}`),
    ['DELETE /salebeacon/touch?domain=shop.test 204 body=null'],
    'the DELETE /touch and nothing else',
  );
  assert.deepEqual(await ourCookies(page.context), [], 'no salebeacon cookie on shop.test, HttpOnly included');
  assert.deepEqual(await ourCookies(page.context, stack.siteFor('checkout.shop.test')), [], 'nor on checkout.shop.test');
  assert.deepEqual(await ourKeys(page), [], 'no salebeacon storage');
  await waitFor(async () => (await ourDatabases(page)).length === 0, { what: 'no salebeacon IndexedDB database' });
}

/**
 * A pixel on the thank-you page after the denial: it arrives without any salebeacon cookie, and
 * the proxy records nothing (no attribution to credit).
 */
async function assertLaterPixelUnattributed(page) {
  await stack.front.reset();
  const orderId = newOrder('AFTER');
  await page.goto(`${shop()}/e2e/pixel.html?order_id=${orderId}`);
  await page.waitForFunction(() => document.documentElement.dataset.pixel, undefined, { timeoutMs: 15000 });
  await assertBarePixel(orderId);
  await sleep(500);
  assert.equal(await stack.proxy.sale(orderId), null, 'the proxy recorded nothing for the pixel');
}

/**
 * An earlier visit on shop.test with consent granted leaves what a visit leaves: the four cookies,
 * the storage mirrors, a delivered order in the ledger and a sale still waiting with its mark
 * (the `sb_wait` cookie among them; the proxy was unreachable when the thank-you page sent it,
 * and the tab was closed). Returns the context and the waiting order's id.
 */
async function earlierGrantedVisit() {
  const page = await stack.newPage();
  const context = page.context;
  const seen = await embedViewAt(page, shop(), 'granted.html', '?ref=creator42');
  assert.equal(seen.aff.campaign_affiliate_id, 'creator42');
  assert.match(seen.vid, UUID_V4);
  await waitForAllFour(context);
  const delivered = newOrder('DELIVERED');
  // With the creator's parameter in the URL, the tracker records this one (a sale at the edge,
  // which the loader makes where the tracker is not needed, leaves no ledger entry).
  assert.equal(await embedViewAt(page, shop(), 'granted.html', `?ref=creator42&order_id=${delivered}`), 'sent');
  const waiting = newOrder('WAITING');
  await stack.front.setOffline(true);
  try {
    assert.equal(await embedViewAt(page, shop(), 'granted.html', `?order_id=${waiting}`), 'queued');
    const keys = await ourKeys(page);
    for (const k of ['salebeacon:aff', 'salebeacon:vid', 'salebeacon:outbox', `salebeacon:o:${waiting}`, `salebeacon:d:${delivered}`]) {
      assert.ok(keys.includes(k), `${k} in ${JSON.stringify(keys)}`);
    }
    await waitFor(async () => (await ourDatabases(page)).includes('salebeacon:outbox'), { what: 'the IndexedDB mark' });
    assert.ok((await ourCookies(context)).includes('sb_wait'), 'the mark cookie');
    await page.close(); // the pagehide beacon is dropped too
    await sleep(1000);
  } finally {
    await stack.front.setOffline(false);
  }
  assert.ok((await stack.front.salePosts(waiting)).every((p) => p.status === 0), 'the waiting sale never got through');
  return { context, waiting };
}

/** Like embedView, on another origin of the shop. */
async function embedViewAt(page, origin, file, query) {
  await page.goto(`${origin}/e2e/${file}${query}`);
  const key = query.includes('order_id=') ? 'result' : 'seen';
  const v = await page.waitForFunction((k) => document.documentElement.dataset[k], key, { timeoutMs: 15000 });
  return key === 'seen' ? JSON.parse(v) : v;
}

for (const [how, start] of [
  ['script tag, consent denied (data-consent="denied")', (page) => embedViewAt(page, shop(), 'denied.html', '')],
  ['script tag, Global Privacy Control on', (page) => embedViewAt(page, shop(), 'gpc.html', '')],
  [
    'npm, consent denied (init({ consent: "denied" }))',
    async (page) => {
      await page.goto(`${shop()}/e2e/bare.html`);
      return page.evaluate(async () => {
        const m = await import('/salebeacon/index.js');
        await m.init({ consent: 'denied' });
        return { aff: m.attribution(), vid: m.visitorId() };
      });
    },
  ],
]) {
  test(`${ENGINE}: ${how}, after an earlier granted visit: everything it left is gone (HttpOnly cookies, waiting sale, ledger), only DELETE /touch sent`, async () => {
    const { context, waiting } = await earlierGrantedVisit();
    await stack.front.reset();
    const page = await stack.newPage({ context });
    assert.deepEqual(await start(page), { aff: null, vid: null }, 'the tracker ran and sees nothing');
    await assertForgotten(page);
    assert.equal(await stack.proxy.sale(waiting), null, 'the waiting sale never reached the proxy');
    assert.deepEqual((await stack.sandbox.sales()).filter((s) => s.external_id === waiting), []);
    await assertLaterPixelUnattributed(page);
  });
}

test(`${ENGINE}: npm, consent withdrawn at run time: every salebeacon cookie goes (HttpOnly included), only DELETE /touch is sent, later sales and pixels record nothing`, async () => {
  const page = await stack.newPage();
  await page.goto(`${shop()}/e2e/bare.html?ref=creator42`);
  const before = await page.evaluate(async () => {
    const m = await import('/salebeacon/index.js');
    window.__sb = m;
    await m.init({});
    return { tag: m.attribution()?.campaign_affiliate_id, vid: m.visitorId() };
  });
  assert.equal(before.tag, 'creator42');
  assert.match(before.vid, UUID_V4);
  await waitForAllFour(page.context);

  await stack.front.reset();
  const orderId = newOrder('WITHDRAWN');
  const after = await page.evaluate(async (orderId) => {
    const m = window.__sb;
    await m.consent('denied');
    const out = { aff: m.attribution(), vid: m.visitorId() };
    out.sale = (await m.trackSale({ order_id: orderId, total: 2500, currency: 'usd' })).status;
    return out;
  }, orderId);
  assert.deepEqual(after, { aff: null, vid: null, sale: 'blocked' });
  await assertForgotten(page);
  assert.equal(await stack.proxy.sale(orderId), null);
  await assertLaterPixelUnattributed(page);
});

test(`${ENGINE}: a pixel with Sec-GPC: 1 has the browser's salebeacon cookies ignored (the same request without it is attributed)`, async () => {
  // The browsers here do not send Sec-GPC themselves (see the top of this file), so the pixel
  // requests come from the test with the cookies a granted visit left in this engine.
  const page = await stack.newPage();
  const seen = await embedViewAt(page, shop(), 'granted.html', '?ref=creator42');
  assert.equal(seen.aff.campaign_affiliate_id, 'creator42');
  await waitForAllFour(page.context);
  const cookie = (await page.context.cookies(shop()))
    .filter((c) => c.name.startsWith('sb_'))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ');
  const pixel = async (orderId, headers) => {
    const r = await fetch(`${stack.site}/salebeacon/pixel.gif?order_id=${orderId}&total=2500&currency=usd`, { headers: { cookie, ...headers } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/gif');
  };
  const withGpc = newOrder('SEC-GPC');
  await pixel(withGpc, { 'sec-gpc': '1' });
  const control = newOrder('NO-GPC');
  await pixel(control, {});
  assert.equal((await stack.waitForSale(control)).campaign_affiliate_id, 'creator42', 'the control pixel is attributed from the cookies');
  assert.equal(await stack.proxy.sale(withGpc), null, 'nothing recorded for the Sec-GPC pixel');
});
