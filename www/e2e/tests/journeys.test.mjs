// Shopper journeys through the demo storefront, in the engine SALEBEACON_ENGINE names (Chromium,
// Firefox or WebKit), against the real proxy and sandbox behind the test server. Each ends by
// asking the sandbox (the Growi emulator) what it recorded.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_MS, ENGINE, startStack, stopStack, land, buy, waitFor, UUID_V4 } from '../harness.mjs';
import { buildDemo } from '../build-demo.mjs';

let stack;

before(async () => {
  // The npm journey's thank-you page is a Vite 7 production build of www/demo-npm.
  await buildDemo();
  stack = await startStack();
}, { timeout: HOOK_MS });
after(() => stopStack(stack), { timeout: HOOK_MS });
beforeEach(() => stack.sandbox.reset());
afterEach(() => stack.closePages(), { timeout: HOOK_MS });

/** The sandbox holds exactly this one sale from its API, attributed to creator42. */
async function assertRecorded({ orderId, total, visitor }) {
  const sale = await stack.waitForSale(orderId);
  const all = await stack.sandbox.sales();
  assert.equal(all.length, 1, `exactly one sale in the sandbox, got ${JSON.stringify(all)}`);
  assert.equal(sale.campaign_affiliate_id, 'creator42');
  assert.equal(sale.total, total);
  assert.equal(sale.currency, 'usd');
  assert.match(visitor, UUID_V4);
  assert.equal(sale.visitor_uid, visitor);
  const delivery = await waitFor(
    async () => {
      const d = await stack.proxy.sale(orderId);
      return d && d.state === 'sent' && d;
    },
    { what: `the proxy to mark ${orderId} sent` },
  );
  assert.equal(delivery.growi_id, sale.id);
  return sale;
}

/** No CSP violation and no console error on any page the tab showed. */
async function assertCleanPage(page) {
  assert.deepEqual(await page.cspViolations(), [], 'no CSP violations');
  assert.deepEqual(await page.consoleErrors(), [], 'no console errors');
}

test(`${ENGINE}: script-tag journey: creator link → checkout → salebeacon("sale") thank-you page`, async () => {
  const page = await stack.newPage();
  const { tag, visitor } = await land(page, `${stack.site}/?ref=creator42`);
  assert.equal(tag, 'creator42');
  const { orderId, status, total } = await buy(page, 'script', { quantity: 2 });
  assert.match(orderId, /^ORD-[0-9A-F]{12}$/);
  assert.equal(status, 'sent');
  const sale = await assertRecorded({ orderId, total, visitor });
  assert.equal(sale.customer_email, 'ann@example.com');
  assert.equal(sale.customer_name, 'Ann Example');
  await assertCleanPage(page);

  // A refreshed thank-you page does not make a second sale.
  await page.reload();
  await page.waitForSelector('#result[data-status]', { visible: true });
  assert.equal(await page.getAttribute('#result', 'data-status'), 'duplicate');
  assert.equal((await stack.sandbox.sales()).length, 1);

  // The demo's "Recorded sales" page shows it, read from the sandbox's own API (the proxy carries
  // no demo route), with the proxy's queue from its public /healthz.
  await page.goto(`${stack.site}/sales.html?sandbox=${encodeURIComponent(stack.sandbox.origin)}`);
  await page.waitForSelector(`#sandbox-sales tr[data-order="${orderId}"]`, { visible: true });
  assert.equal(await page.textContent(`#sandbox-sales tr[data-order="${orderId}"] td.state`), 'unpaid');
  await page.waitForSelector('#queue[data-depth="0"]', { visible: true });
  await page.waitForSelector('#attribution:not([hidden])', { visible: true });
  assert.equal(await page.getAttribute('#attribution', 'data-tag'), 'creator42', 'the banner is shown');
  await assertCleanPage(page);
});

test(`${ENGINE}: npm journey: the thank-you page is a Vite 7 build importing the package`, async () => {
  await stack.front.reset();
  const page = await stack.newPage();
  const { visitor } = await land(page, `${stack.site}/?ref=creator42`);
  const { orderId, status, total } = await buy(page, 'npm', { quantity: 3 });
  assert.equal(status, 'sent');
  assert.equal(await page.getAttribute('#result', 'data-visitor'), visitor);
  assert.equal(await page.getAttribute('#result', 'data-tag'), 'creator42');
  await assertRecorded({ orderId, total, visitor });
  // The wasm came from the bundle's own assets, not from /salebeacon/: the module init needs and
  // the one trackSale needs, each once.
  const wasm = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.wasm')),
  );
  assert.equal(wasm.length, 2, JSON.stringify(wasm));
  for (const w of wasm) assert.match(w, /\/npm\/assets\/salebeacon_(visit|order)_bg-[\w-]+\.wasm$/);
  // The server saw both fetched too (the journey's earlier pages load the script-tag embed's
  // modules from /salebeacon/; the performance entries above are the thank-you page's own).
  const wasmGets = (await stack.front.requests())
    .filter((e) => e.method === 'GET' && e.path.split('?')[0].endsWith('.wasm'))
    .map((e) => e.path.split('?')[0]);
  for (const name of ['visit', 'order']) {
    const re = new RegExp(`^/npm/assets/salebeacon_${name}_bg-[\\w-]+\\.wasm$`);
    assert.ok(wasmGets.some((p) => re.test(p)), `${name}: ${JSON.stringify(wasmGets)}`);
  }
  await assertCleanPage(page);
});

test(`${ENGINE}: pixel journey: <img> on the thank-you page, attribution from the cookies`, async () => {
  const page = await stack.newPage();
  const { visitor } = await land(page, `${stack.site}/?ref=creator42`);
  const { orderId, status, total } = await buy(page, 'pixel', { quantity: 1 });
  // First the page says only what a pixel can know ('pixel'); then it sees the sale arrive at the
  // sandbox (the harness told the demo where it is). Either may be showing already.
  assert.ok(['pixel', 'recorded'].includes(status), status);
  await page.waitForSelector('#result[data-status="recorded"]', { timeoutMs: 20000, visible: true });
  await page.waitForSelector('#attribution:not([hidden])', { visible: true });
  assert.equal(await page.getAttribute('#attribution', 'data-tag'), 'creator42', 'the banner is shown');
  const src = await page.getAttribute('#pixel', 'src');
  assert.doesNotMatch(src, /email|name|%40/, 'no personal data in the pixel URL');
  const sale = await assertRecorded({ orderId, total, visitor });
  assert.equal(sale.customer_email, null);
  await assertCleanPage(page);
});

test(`${ENGINE}: attribution captured on shop.test is used on checkout.shop.test`, async () => {
  const page = await stack.newPage();
  const { tag, visitor } = await land(page, `${stack.siteFor('shop.test')}/?ref=creator42`);
  assert.equal(tag, 'creator42');
  const orderId = `ORD-SUB-${Date.now()}`;
  await page.goto(
    `${stack.siteFor('checkout.shop.test')}/thanks-script.html?order_id=${orderId}&total=2500&currency=usd`,
  );
  await page.waitForSelector('#result[data-status]', { timeoutMs: 15000, visible: true });
  assert.equal(await page.getAttribute('#result', 'data-status'), 'sent');
  await assertRecorded({ orderId, total: 2500, visitor });
  const cookies = await page.context.cookies(stack.siteFor('checkout.shop.test'));
  const aff = cookies.find((c) => c.name === 'sb_aff' && !c.httpOnly);
  assert.ok(aff, 'the tracker cookie is visible on the checkout host');
  assert.notEqual(aff.domain, 'shop.test', 'a domain cookie, not a host-only one');
});

test(`${ENGINE}: strict CSP (script-src 'self' 'wasm-unsafe-eval'): tracker works, nothing is blocked`, async () => {
  const page = await stack.newPage();
  // ?csp=1 makes the test server send the policy as a header too; every demo page carries it as a
  // <meta>. (Both also allow the test server's own instrumentation script, by its hash.)
  const { visitor } = await land(page, `${stack.site}/?ref=creator42&csp=1`);
  // An inline script is what the policy forbids: it must not run (and is reported).
  const inlineState = () =>
    page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__inlineRan = true';
      document.head.appendChild(s);
      return window.__inlineRan ? 'inline script ran' : 'inline script blocked';
    });
  assert.deepEqual(await page.cspViolations(), []);
  const { orderId, status, total } = await buy(page, 'script', { quantity: 1 });
  assert.equal(status, 'sent');
  assert.deepEqual(await page.cspViolations(), [], 'the embed needs nothing the policy forbids');
  // From here on, the one violation is the test's own inline script.
  page.expectProblems(/^csp: script-src(-elem)? inline$/);
  assert.equal(await inlineState(), 'inline script blocked', 'the policy is in force on the page');
  assert.equal((await page.cspViolations()).length, 1);
  await assertRecorded({ orderId, total, visitor });
});

test(`${ENGINE}: a visitor without a creator link produces no sale`, async () => {
  const page = await stack.newPage();
  const { tag, visitor } = await land(page, `${stack.site}/`);
  assert.equal(tag, '');
  assert.match(visitor, UUID_V4);
  const { orderId, status } = await buy(page, 'script');
  assert.equal(status, 'unattributed');
  assert.equal(await stack.proxy.sale(orderId), null, 'nothing reached the proxy');

  // The pixel form on the same visit: the proxy answers its GIF and records nothing.
  const pixelOrder = `ORD-NOAFF-${Date.now()}`;
  await page.goto(`${stack.site}/thanks-pixel.html?order_id=${pixelOrder}&total=4999&currency=usd&wait=2`);
  await page.waitForSelector('#result[data-status="pixel"]', { visible: true });
  // A refused pixel is not shown as a success: the page watches Growi and says it never came.
  await page.waitForSelector('#result[data-status="missing"]', { timeoutMs: 10000, visible: true });
  assert.equal(await stack.proxy.sale(pixelOrder), null);
  assert.deepEqual(await stack.sandbox.sales(), []);
  const creates = (await stack.sandbox.requests()).filter((r) => r.method === 'POST');
  assert.deepEqual(creates, []);
});
