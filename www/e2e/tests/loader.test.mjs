// The script-tag loader and the npm entry point's contract, in the engine SALEBEACON_ENGINE names,
// against the real proxy behind the test server; and the page instrumentation the other tests
// rely on, checked in that engine.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_MS, ENGINE, startStack, stopStack, waitFor, sleep, UUID_V4 } from '../harness.mjs';

let stack;
before(async () => {
  stack = await startStack({
    sitePages: {
      // A page under the demo's strict policy whose own code, on a click, raises each kind of
      // problem the instrumentation must see, the way a shop's scripts would.
      'e2e/probe.html':
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
        `<meta http-equiv="Content-Security-Policy" content="script-src 'self' 'wasm-unsafe-eval'">` +
        '<title>instrumentation probe</title><link rel="icon" href="data:,">' +
        '<script src="/e2e/probe.js"></script></head><body><button id="boom">problems</button></body></html>\n',
      'e2e/probe.js': `document.addEventListener('DOMContentLoaded', function () {
  document.getElementById('boom').addEventListener('click', function () {
    console.error('probe: console.error', { n: 1 });
    console.warn('probe: console.warn');
    setTimeout(function () { throw new Error('probe: thrown'); }, 0);
    Promise.reject(new Error('probe: rejected'));
    var s = document.createElement('script');
    s.textContent = 'window.__probeInline = true';
    document.head.appendChild(s);
    if (new URLSearchParams(location.search).get('second')) console.error('probe: second page');
  });
});
`,
    },
  });
}, { timeout: HOOK_MS });
after(() => stopStack(stack), { timeout: HOOK_MS });
afterEach(() => stack.closePages(), { timeout: HOOK_MS });

test(`${ENGINE}: the page instrumentation sees console errors, uncaught errors, rejections and CSP violations, across pages`, async () => {
  // Every "no console errors" / "no CSP violations" assertion in this suite reads what the script
  // the test server injects recorded: it must see each kind of problem in this engine, or those
  // assertions would pass for nothing.
  const page = await stack.newPage();
  await page.goto(`${stack.site}/e2e/probe.html`);
  await page.click('#boom');
  await sleep(300);
  assert.equal(await page.evaluate(() => window.__probeInline === true), false, 'the inline script was blocked');
  // The next page view starts a new document; the harness keeps the first one's log.
  await page.goto(`${stack.site}/e2e/probe.html?second=1`);
  await page.click('#boom');
  await sleep(300);
  const errors = (await page.consoleErrors()).filter((e) => e.includes('probe'));
  const once = ['probe: console.error {"n":1}', 'uncaught: probe: thrown', 'unhandled rejection: probe: rejected'];
  assert.deepEqual(errors.sort(), [...once, ...once, 'probe: second page'].sort(), JSON.stringify(errors));
  assert.equal((await page.consoleLines()).filter((l) => l === 'warn: probe: console.warn').length, 2);
  assert.deepEqual(await page.unhandledRejections(), ['probe: rejected', 'probe: rejected']);
  const csp = await page.cspViolations();
  assert.equal(csp.length, 2, JSON.stringify(csp));
  for (const v of csp) assert.match(v, /^script-src(-elem)? inline$/);
  // The check after every test (stack.closePages) fails a test on each of these, unless the test
  // said it expects them.
  assert.deepEqual(
    (await page.unexpectedProblems()).sort(),
    [...errors, ...csp.map((v) => `csp: ${v}`)].sort(),
  );
  page.expectProblems(/^(uncaught: |unhandled rejection: )?probe: /, /^csp: script-src(-elem)? inline$/);
  assert.deepEqual(await page.unexpectedProblems(), []);
});

test(`${ENGINE}: the loader replays queued commands in order, fires ready, and reads the no-code JSON sale`, async () => {
  const page = await stack.newPage();
  // Every refusal below is reported on the console, as it should be.
  page.expectProblems(
    /^salebeacon: (invalid sale|invalid command|dropped an invalid sale|the data-salebeacon-sale JSON is not valid)/,
  );
  const stamp = Date.now();
  const a = `ORD-Q-A-${stamp}`;
  const b = `ORD-Q-B-${stamp}`;
  const c = `ORD-Q-C-${stamp}`;
  await page.goto(`${stack.site}/dev/queue.html?ref=creator42&a=${a}&b=${b}`);
  const events = await waitFor(
    async () => {
      const ev = await page.evaluate(() => window.__events);
      return ev.length >= 6 && ev;
    },
    { what: 'the queued commands to settle' },
  );
  // Callbacks settle asynchronously; what each saw shows the order the commands ran in.
  assert.deepEqual([...events].sort(), [
    'consent:ok',
    'invalid:invalid_sale',
    // ready runs after init: the queued init's params (ref) merged over data-model (first_click)
    'ready1:creator42:first_click',
    'ready2:function',
    // the sale ran after consent('pending'), so it waits in the outbox instead of being sent
    'sale:queued',
    'unknown:invalid_command',
  ]);
  assert.ok(events.indexOf('ready1:creator42:first_click') < events.indexOf('ready2:function'));
  const state = await page.evaluate(() => ({
    q: window.salebeacon.q,
    loaded: window.salebeacon.loaded,
  }));
  assert.deepEqual(state, { q: [], loaded: true }, 'the stub was replaced by the dispatcher');

  // The dispatcher: direct calls, returning the tracker's promise.
  const direct = await page.evaluate(
    (order) => window.salebeacon('sale', { order_id: order, total: 700, currency: 'usd' }),
    c,
  );
  assert.deepEqual(direct, { status: 'sent' });

  // consent('granted') sent the queued sale; the JSON element's sale went out too.
  for (const id of [a, b, c]) await stack.waitForSale(id);
  const sales = (await stack.sandbox.sales()).filter((s) => [a, b, c].includes(s.external_id));
  assert.equal(sales.length, 3);
  for (const s of sales) assert.equal(s.campaign_affiliate_id, 'creator42');
  assert.equal(sales.find((s) => s.external_id === b).total, 2000);
  assert.ok((await page.consoleErrors()).some((e) => e.includes('data-salebeacon-sale JSON is not valid')));
  assert.deepEqual(await page.cspViolations(), []);

  // Refused commands, queued or direct, with or without a callback, never surface as unhandled
  // rejections (error monitors would report one on every thank-you page); a caller that awaits
  // still gets the SaleBeaconError.
  const caught = await page.evaluate(async () => {
    window.salebeacon('sale', { order_id: 'BAD', total: 'ten', currency: 'usd' });
    window.salebeacon('sale', { order_id: 'BAD2', total: 1.5, currency: 'usd' }, () => {});
    window.salebeacon('nope');
    try {
      await window.salebeacon('frobnicate');
    } catch (e) {
      return { name: e.name, code: e.code, field: e.issues[0].field };
    }
  });
  assert.deepEqual(caught, { name: 'SaleBeaconError', code: 'invalid_command', field: 'command' });
  await sleep(300);
  assert.deepEqual(await page.unhandledRejections(), []);
  const errors = await page.consoleErrors();
  assert.ok(!errors.some((e) => /uncaught|unhandled/i.test(e)), errors.join('\n'));
});

test(`${ENGINE}: trackSale of an object whose fields cannot be read rejects with invalid_sale, never hangs`, async () => {
  const page = await stack.newPage();
  await page.goto(`${stack.site}/dev/blank.html?ref=creator42`);
  const r = await page.evaluate(async () => {
    const m = await import('/salebeacon/index.js');
    await m.init({ endpoint: '/salebeacon' });
    const attempt = (sale) =>
      Promise.race([
        m.trackSale(sale).then(
          (v) => ({ resolved: v }),
          (e) => ({ name: e.name, code: e.code, fields: e.issues.map((i) => i.field) }),
        ),
        new Promise((res) => setTimeout(() => res('hung'), 3000)),
      ]);
    const getter = { order_id: 'G-1', currency: 'usd', get total() { throw new Error('boom'); } };
    const trap = new Proxy({}, { ownKeys() { throw new Error('trap'); } });
    const field = new Proxy({ order_id: 'P-1', total: 1, currency: 'usd' }, {
      get(t, k) { if (k === 'total') throw new Error('no'); return t[k]; },
    });
    return [await attempt(getter), await attempt(trap), await attempt(field)];
  });
  for (const out of r) {
    assert.notEqual(out, 'hung');
    assert.equal(out.name, 'SaleBeaconError');
    assert.equal(out.code, 'invalid_sale');
  }
  assert.ok(r[0].fields.includes('total'), JSON.stringify(r[0]));
  assert.ok(r[2].fields.includes('total'), JSON.stringify(r[2]));
  assert.deepEqual(await page.unhandledRejections(), []);
  const errors = await page.consoleErrors();
  assert.ok(!errors.some((e) => e.startsWith('uncaught')), errors.join('\n'));
});

test(`${ENGINE}: npm entry: sync calls before load, not_initialized rejections, then the real API`, async () => {
  const page = await stack.newPage();
  // A page without a tracker of its own: a clean slate for importing the package.
  await page.goto(`${stack.site}/dev/blank.html?ref=creator42`);
  const r = await page.evaluate(async () => {
    const m = await import('/salebeacon/index.js');
    const out = { visitorBefore: m.visitorId(), attributionBefore: m.attribution() };
    try {
      m.toMinorUnits('1', 'usd');
    } catch (e) {
      out.sync = { guard: m.isSaleBeaconError(e), name: e.name, code: e.code, field: e.issues[0].field };
    }
    try {
      await m.trackSale({ order_id: 'X', total: 1, currency: 'usd' });
    } catch (e) {
      out.early = { guard: m.isSaleBeaconError(e), code: e.code };
    }
    out.loadedButNotInit = m.visitorId();
    try {
      await m.init({ windowDays: 0, endpont: '/x' });
    } catch (e) {
      out.config = { code: e.code, fields: e.issues.map((i) => i.field).sort() };
    }
    await m.init({ endpoint: '/salebeacon' });
    out.visitor = m.visitorId();
    out.tag = m.attribution()?.campaign_affiliate_id;
    out.minor = [m.toMinorUnits('19.99', 'usd'), m.toMinorUnits('1500', 'jpy'), m.toMinorUnits('1.234', 'kwd')];
    try {
      m.toMinorUnits('1.999', 'usd');
    } catch (e) {
      out.amount = e.code;
    }
    try {
      await m.trackSale({ order_id: '', currency: 'usd', commission: 5 });
    } catch (e) {
      out.invalid = { code: e.code, n: e.issues.length };
    }
    out.notError = m.isSaleBeaconError(new Error('x'));
    return out;
  });
  assert.equal(r.visitorBefore, null);
  assert.equal(r.attributionBefore, null);
  assert.deepEqual(r.sync, { guard: true, name: 'SaleBeaconError', code: 'not_initialized', field: 'init' });
  assert.deepEqual(r.early, { guard: true, code: 'not_initialized' });
  assert.equal(r.loadedButNotInit, null);
  assert.deepEqual(r.config, { code: 'invalid_config', fields: ['endpont', 'windowDays'] });
  assert.match(r.visitor, UUID_V4);
  assert.equal(r.tag, 'creator42');
  assert.deepEqual(r.minor, [1999, 1500, 1234]);
  assert.equal(r.amount, 'invalid_amount');
  assert.equal(r.invalid.code, 'invalid_sale');
  assert.ok(r.invalid.n >= 2, 'every problem is listed');
  assert.equal(r.notError, false);
});

test(`${ENGINE}: the site serves the embed files with the right types`, async () => {
  const types = {};
  for (const f of ['salebeacon.js', 'index.js', 'salebeacon_visit_bg.wasm', 'salebeacon_order_bg.wasm']) {
    const res = await fetch(`${stack.site}/salebeacon/${f}`);
    assert.equal(res.status, 200, f);
    types[f] = res.headers.get('content-type').split(';')[0].replace('application/javascript', 'text/javascript');
  }
  assert.deepEqual(types, {
    'salebeacon.js': 'text/javascript',
    'index.js': 'text/javascript',
    'salebeacon_visit_bg.wasm': 'application/wasm',
    'salebeacon_order_bg.wasm': 'application/wasm',
  });
});

test(`${ENGINE}: the embed loads content-hashed files cached for a year; only the loader revalidates`, async () => {
  const page = await stack.newPage();
  // What the browser fetched and the answers it got, from the test server's log (WebKit's driver
  // reports no network events).
  await stack.front.reset();
  await page.goto(`${stack.site}/?ref=creator42`);
  await waitFor(() => page.evaluate(() => !!(window.salebeacon && window.salebeacon.q && document.cookie.includes('sb_aff='))),
    { what: 'the tracker to start' });
  const files = async () =>
    (await stack.front.requests()).filter((e) => {
      const p = e.path.split('?')[0];
      return e.method === 'GET' && p.startsWith('/salebeacon/') && /\.(js|wasm)$/.test(p);
    });
  await waitFor(async () => (await files()).some((e) => e.path.endsWith('.wasm') && e.status !== null), { what: 'the wasm to load' });
  const seen = new Map((await files()).map((e) => [e.path.split('?')[0], e.cache_control]));
  const paths = [...seen.keys()].sort();
  assert.equal(seen.get('/salebeacon/salebeacon.js'), 'no-cache', JSON.stringify([...seen]));
  const hashed = paths.filter((p) => p !== '/salebeacon/salebeacon.js');
  assert.deepEqual(
    hashed.map((p) => p.replace(/\.[0-9a-f]{10}\./, '.<hash>.')),
    // A landing page: the tracker and the rules module that captures (not the one that records).
    ['/salebeacon/index.<hash>.js', '/salebeacon/salebeacon_visit_bg.<hash>.wasm'],
  );
  for (const p of hashed) assert.equal(seen.get(p), 'public, max-age=31536000, immutable', p);
  await page.close();
});
