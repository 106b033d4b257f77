// Consent and Global Privacy Control, on every way in (DESIGN.md: `consent`, `respectGpc`): with
// consent denied, or with `navigator.globalPrivacyControl` true (and `respectGpc` left on), the
// tracker writes no cookie and no storage and sends nothing that identifies the visitor; a sale
// answers `blocked`. Checked on the script tag, the npm entry point and the pixel (which has no
// consent of its own: it can only carry what the tracker stored, so a pixel after a blocked visit
// arrives without attribution and records nothing), in the engine SALEBEACON_ENGINE names.
//
// What the browser sent is read from the test server's log (every request of the test, its
// cookies included); what it kept, from the context's cookies (HttpOnly ones too) and the page's
// localStorage. Each test first checks that the tracker did run (it answered), so "nothing
// happened" is never the outcome of a page whose tracker failed to start.
//
// GPC: none of the three engines here turns it on by itself (Firefox only in private windows or
// by a pref, Chromium and WebKit not at all), so the GPC pages define
// `navigator.globalPrivacyControl` first, as a browser with GPC on does (`/e2e/gpc.js`); the
// same pages with `data-respect-gpc="false"` show that this is what the tracker reads.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { HOOK_MS, ENGINE, startStack, stopStack, sleep, UUID_V4 } from '../harness.mjs';

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

test(`${ENGINE}: npm, consent withdrawn at run time: the tracker's cookies and storage go, later sales are blocked`, async (t) => {
  const page = await stack.newPage();
  await page.goto(`${stack.site}/e2e/bare.html?ref=creator42`);
  const before = await page.evaluate(async () => {
    const m = await import('/salebeacon/index.js');
    window.__sb = m;
    await m.init({});
    return { tag: m.attribution()?.campaign_affiliate_id, vid: m.visitorId() };
  });
  assert.equal(before.tag, 'creator42');
  assert.match(before.vid, UUID_V4);
  const scriptCookies = async () =>
    (await page.context.cookies(stack.site)).filter((c) => c.name.startsWith('sb_') && !c.httpOnly).map((c) => c.name).sort();
  assert.deepEqual(await scriptCookies(), ['sb_aff', 'sb_vid']);

  await page.evaluate(() => window.__sb.consent('denied'));
  await stack.front.reset();
  const orderId = newOrder('WITHDRAWN');
  const after = await page.evaluate(async (orderId) => {
    const m = window.__sb;
    const out = { aff: m.attribution(), vid: m.visitorId() };
    out.sale = (await m.trackSale({ order_id: orderId, total: 2500, currency: 'usd' })).status;
    out.keys = Object.keys(localStorage).filter((k) => k.startsWith('salebeacon:'));
    return out;
  }, orderId);
  assert.deepEqual(after, { aff: null, vid: null, sale: 'blocked', keys: [] });
  assert.deepEqual(await scriptCookies(), [], "the tracker's own cookies are gone");
  await sleep(1500);
  assert.deepEqual(
    (await stack.front.requests()).filter((e) => /^\/salebeacon\/(sales|touch)/.test(e.path)).map((e) => `${e.method} ${e.path}`),
    [],
    'nothing sent after the withdrawal',
  );
  assert.equal(await stack.proxy.sale(orderId), null);
  // The proxy's HttpOnly copies (set by /touch at capture) are out of the script's reach.
  const httpOnly = (await page.context.cookies(stack.site)).filter((c) => c.httpOnly && c.name.startsWith('sb_')).map((c) => c.name);
  t.diagnostic(`after consent('denied'): HttpOnly cookies still held: ${JSON.stringify(httpOnly.sort())}`);
});
