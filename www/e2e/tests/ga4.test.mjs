// GA4 capture, zero code (`data-capture="ga4"` on the loader tag, `capture: ['ga4']` with npm),
// in the engine SALEBEACON_ENGINE names: thank-you pages shaped like a Google Tag Manager shop
// (`dataLayer.push({ event: 'purchase', ecommerce })`, pushed before the loader arrives) and a
// gtag.js shop (`gtag('event', 'purchase', params)`, called after the tracker has started), each
// after a landing page with a creator's link; a reload of the thank-you page (one sale); a
// purchase that cannot make a sale (reported on the console, every issue named, nothing thrown);
// and a page of a GA4 shop with no purchase, which stays quiet (no tracker, no wasm).
//
// The pages report nothing themselves: the outcome is read where a merchant would look, the
// console (`salebeacon: GA4 purchase <order>: sent`), the proxy and the sandbox.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { HOOK_MS, ENGINE, startStack, stopStack, land, waitFor } from '../harness.mjs';

const HEAD = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">\n';
const LOADER = '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon" data-capture="ga4"></script>\n';
/** The order, value and currency of the page's purchase come from its query string. */
const QUERY = "var q = new URLSearchParams(location.search);\n";

const PAGES = {
  // GTM: the data layer is filled by the page's own script, before the container (and the loader).
  'e2e/ga4-gtm.html':
    HEAD +
    '<title>Thank you (GTM shop)</title>\n<script>\n' +
    QUERY +
    'window.dataLayer = window.dataLayer || [];\n' +
    'dataLayer.push({ ecommerce: null });\n' +
    "dataLayer.push({ event: 'purchase', ecommerce: { transaction_id: q.get('order_id'), value: Number(q.get('value')), tax: 2.1, shipping: 5,\n" +
    "  currency: q.get('currency'), items: [{ item_id: 'SKU-1', item_name: 'Mug', price: Number(q.get('value')), quantity: 1 }] } });\n" +
    '</script>\n' +
    LOADER +
    '</head><body><p>Thank you for your order.</p></body></html>\n',
  // gtag.js: the loader first, the purchase once the page has loaded (the tracker is running).
  'e2e/ga4-gtag.html':
    HEAD +
    '<title>Thank you (gtag shop)</title>\n' +
    LOADER +
    '<script>\nwindow.dataLayer = window.dataLayer || [];\nfunction gtag() { dataLayer.push(arguments); }\n' +
    "gtag('js', new Date());\ngtag('config', 'G-TEST000000');\n" +
    QUERY +
    "addEventListener('load', function () { setTimeout(function () {\n" +
    "  gtag('event', 'purchase', { transaction_id: q.get('order_id'), value: q.get('value'), currency: q.get('currency'), tax: 0, shipping: 0 });\n" +
    '}, 300); });\n</script>\n' +
    '</head><body><p>Thank you for your order.</p></body></html>\n',
  // A page of the same shop without a purchase (GTM's own events only).
  'e2e/ga4-browse.html':
    HEAD +
    '<title>Browsing (GA4 shop)</title>\n<script>window.dataLayer = window.dataLayer || []; dataLayer.push({ event: "gtm.js" });</script>\n' +
    LOADER +
    "<script>addEventListener('load', function () { dataLayer.push({ event: 'page_view' }); document.documentElement.dataset.loaded = '1'; });</script>\n" +
    '</head><body><p>A product.</p></body></html>\n',
};

let stack;
before(async () => {
  stack = await startStack({ sitePages: PAGES });
}, { timeout: HOOK_MS });
after(() => stopStack(stack), { timeout: HOOK_MS });
afterEach(() => stack.closePages(), { timeout: HOOK_MS });

let counter = 0;
const newOrder = (label) => `ORD-GA4-${label}-${Date.now().toString(36)}-${++counter}-${crypto.randomBytes(2).toString('hex')}`;

/**
 * Waits for the console line the GA4 capture writes for `orderId` (the `nth`, counting from 1,
 * over every document the tab showed); returns it.
 */
async function outcome(page, orderId, nth = 1) {
  return waitFor(
    async () => (await page.consoleLines()).filter((l) => l.includes(`GA4 purchase ${orderId}`))[nth - 1],
    { what: `GA4 capture's console line ${nth} for ${orderId}` },
  );
}

for (const [shape, file, value, total] of [
  ['GTM dataLayer.push (before the loader)', 'ga4-gtm.html', '42.5', 4250],
  ['gtag("event", "purchase") (after the tracker started)', 'ga4-gtag.html', '19.99', 1999],
]) {
  test(`${ENGINE}: GA4 capture, ${shape}: the purchase is one attributed sale, and a reload of the thank-you page adds none`, async () => {
    const page = await stack.newPage();
    const { tag, visitor } = await land(page, `${stack.site}/?ref=creator42`);
    assert.equal(tag, 'creator42');
    const orderId = newOrder(file.includes('gtm') ? 'GTM' : 'GTAG');
    const url = `${stack.site}/e2e/${file}?order_id=${orderId}&value=${value}&currency=USD`;
    await page.goto(url);
    assert.match(await outcome(page, orderId), /^info: salebeacon: GA4 purchase \S+: sent$/);
    const sale = await stack.waitForSale(orderId);
    assert.equal(sale.total, total, 'value is the total, in minor units');
    assert.equal(sale.currency, 'usd');
    assert.equal(sale.campaign_affiliate_id, 'creator42');
    assert.equal(sale.visitor_uid, visitor);

    await page.reload();
    assert.match(await outcome(page, orderId, 2), /^info: salebeacon: GA4 purchase \S+: duplicate$/, 'the reload is recognised');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await stack.sandbox.sales()).filter((s) => s.external_id === orderId).length, 1, 'one sale for the order');
    assert.equal((await stack.front.salePosts(orderId)).length, 1, 'the reload sent nothing');
  });
}

test(`${ENGINE}: GA4 capture: a purchase that cannot make a sale is reported on the console with every issue, nothing thrown, nothing sent`, async () => {
  const page = await stack.newPage();
  await land(page, `${stack.site}/?ref=creator42`);
  const orderId = newOrder('BAD');
  page.expectProblems(new RegExp(`^salebeacon: GA4 purchase ${orderId}: cannot make a sale`));
  await page.goto(`${stack.site}/e2e/ga4-gtm.html?order_id=${orderId}&value=12.5&currency=XYZ`);
  const line = await outcome(page, orderId);
  assert.match(line, /^console\.error: |^error: /);
  assert.match(line, /ecommerce\.currency/, line);
  assert.match(line, /XYZ/, line);
  // No total issue on top of the currency's: the value was fine, the currency was not.
  assert.doesNotMatch(line, /ecommerce\.value/, line);
  assert.deepEqual(await page.unhandledRejections(), []);

  const noId = await stack.newPage({ context: page.context });
  noId.expectProblems(/^salebeacon: GA4 purchase: cannot make a sale/);
  await noId.goto(`${stack.site}/e2e/ga4-gtm.html?value=abc&currency=usd`);
  const bad = await waitFor(async () => (await noId.consoleErrors()).find((l) => l.includes('GA4 purchase')), { what: 'the error' });
  assert.match(bad, /ecommerce\.transaction_id/, bad);
  assert.match(bad, /ecommerce\.value/, bad);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await stack.front.salePosts(orderId)).length, 0, 'nothing sent');
});

test(`${ENGINE}: GA4 capture: a page of the shop without a purchase loads the loader only`, async () => {
  const page = await stack.newPage();
  await stack.front.reset();
  await page.goto(`${stack.site}/e2e/ga4-browse.html`);
  await page.waitForFunction(() => document.documentElement.dataset.loaded);
  await new Promise((r) => setTimeout(r, 500));
  const fetched = (await stack.front.requests()).map((e) => e.path).filter((p) => p.startsWith('/salebeacon/'));
  assert.deepEqual(fetched, ['/salebeacon/salebeacon.js'], 'no tracker, no wasm, no GA4 file');
});
