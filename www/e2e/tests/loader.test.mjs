// The script-tag loader and the npm entry point's contract, in the engine SALEBEACON_ENGINE names,
// against the real proxy behind the test server; and the page instrumentation the other tests
// rely on, checked in that engine.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_MS, ENGINE, startStack, stopStack, land, waitFor, sleep, UUID_V4 } from '../harness.mjs';

const QUIET_PAGE = '/e2e/quiet.html';
const THANKS_PAGE = '/e2e/thanks.html';
const QUIET_NO_LIST = '/e2e/quiet-no-list.html';
const THANKS_WATCHED = '/e2e/thanks-watched.html';
const MARK = 'salebeacon:outbox';
/** The names of the page's origin's IndexedDB databases. */
const databases = (page) => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).sort());
/** The mark's cookie as the page sees it (`sb_wait`), or null. */
const waitCookie = (page) => page.evaluate(() => (document.cookie.match(/(?:^|; )sb_wait=([^;]*)/) || [])[1] ?? null);
/** Runs `body` while requests reach the proxy without Fetch Metadata (as from Safari before
 * 16.4): the proxy then serves the loader that checks the mark itself. */
async function withoutFetchMetadata(body) {
  await stack.front.setFetchMetadata(false);
  try {
    return await body();
  } finally {
    await stack.front.setFetchMetadata(true);
  }
}

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
      // The two-line embed of DESIGN.md and nothing else: no URL parameter the tracker reads, no
      // command, no no-code sale. (The second script only keeps the stub, so the test can tell
      // that the loader has run.)
      [QUIET_PAGE.slice(1)]:
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>a quiet page</title>' +
        '<link rel="icon" href="data:,">\n' +
        '<script>window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)}</script>\n' +
        '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"></script>\n' +
        '<script>window.__stub = window.salebeacon</script>\n' +
        '</head><body><p>A page of the shop: the embed, and nothing for it to do.</p></body></html>\n',
      // The quiet page in an engine whose IndexedDB cannot list its databases (Firefox before
      // 126): the loader falls back to the localStorage mark.
      [QUIET_NO_LIST.slice(1)]:
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>a quiet page</title>' +
        '<link rel="icon" href="data:,">\n' +
        '<script>delete IDBFactory.prototype.databases</script>\n' +
        '<script>window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)}</script>\n' +
        '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"></script>\n' +
        '<script>window.__stub = window.salebeacon</script>\n' +
        '</head><body><p>A page of the shop, in an older engine.</p></body></html>\n',
      // The thank-you page below, with every IndexedDB open and deletion the page makes logged
      // (window.__idb): a sale delivered at once must not touch IndexedDB (mark.js).
      [THANKS_WATCHED.slice(1)]:
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>thank you</title>' +
        '<link rel="icon" href="data:,">\n' +
        '<script>window.__idb = []; for (const k of ["open", "deleteDatabase"]) { const f = IDBFactory.prototype[k];' +
        ' IDBFactory.prototype[k] = function (name) { window.__idb.push(k + " " + name); return f.apply(this, arguments); }; }</script>\n' +
        '<script>window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)}</script>\n' +
        '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"></script>\n' +
        "<script>var q = new URLSearchParams(location.search); salebeacon('sale', { order_id: q.get('order_id'), total: 2500, currency: 'usd' }," +
        " function (e, r) { document.documentElement.dataset.result = e ? 'error:' + e.code : r.status; });</script>\n" +
        '</head><body><p>Thank you!</p></body></html>\n',
      // A thank-you page of the script-tag form: the sale from the URL, its outcome on <html>.
      [THANKS_PAGE.slice(1)]:
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>thank you</title>' +
        '<link rel="icon" href="data:,">\n' +
        '<script>window.salebeacon=window.salebeacon||function(){(salebeacon.q=salebeacon.q||[]).push(arguments)}</script>\n' +
        '<script async src="/salebeacon/salebeacon.js" data-endpoint="/salebeacon"></script>\n' +
        "<script>var q = new URLSearchParams(location.search); salebeacon('sale', { order_id: q.get('order_id'), total: 2500, currency: 'usd' }," +
        " function (e, r) { document.documentElement.dataset.result = e ? 'error:' + e.code : r.status; });</script>\n" +
        '</head><body><p>Thank you!</p></body></html>\n',
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
      await m.init({ windowDays: 0, endpont: '/x', capture: ['ua'] });
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
  assert.deepEqual(r.config, { code: 'invalid_config', fields: ['capture', 'endpont', 'windowDays'] });
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
  await waitFor(async () => (await files()).filter((e) => /\.(wasm|js)$/.test(e.path) && e.status !== null).length >= 4, { what: 'the wasm and the scripts to load' });
  const seen = new Map((await files()).map((e) => [e.path.split('?')[0], e.cache_control]));
  const paths = [...seen.keys()].sort();
  assert.equal(seen.get('/salebeacon/salebeacon.js'), 'no-cache', JSON.stringify([...seen]));
  const hashed = paths.filter((p) => p !== '/salebeacon/salebeacon.js');
  assert.deepEqual(
    hashed.map((p) => p.replace(/\.[0-9a-f]{10}\./, '.<hash>.')),
    // A landing page whose tracker starts (the shop's banner asks for the API with `ready`): the
    // tracker, the rules module that captures and its glue (not the one that records).
    ['/salebeacon/index.<hash>.js', '/salebeacon/salebeacon_visit_bg.<hash>.wasm', '/salebeacon/visit.<hash>.js'],
  );
  for (const p of hashed) assert.equal(seen.get(p), 'public, max-age=31536000, immutable', p);
  await page.close();
});

/** What a page fetched of the embed (GET /salebeacon/..., JS and wasm), from the test server's log. */
async function embedFiles() {
  return (await stack.front.requests())
    .filter((e) => e.method === 'GET' && /^\/salebeacon\/[^?]*\.(js|wasm)(\?|$)/.test(e.path))
    .map((e) => e.path.split('?')[0]);
}

/**
 * Opens the quiet page in `page` and waits until its loader has run and the page has settled.
 * Returns what the page itself saw: the scripts and modules it loaded (the Resource Timing
 * entries, which also list files taken from the browser's cache) and whether the tracker took
 * over.
 */
async function quietView(page, query = '', path = QUIET_PAGE) {
  await page.goto(`${stack.site}${path}${query}`);
  await page.waitForFunction(() => document.readyState === 'complete' && window.salebeacon !== window.__stub, undefined, {
    timeoutMs: 10000,
  });
  await sleep(700); // anything the loader would start has started by now
  return page.evaluate(() => ({
    resources: performance
      .getEntriesByType('resource')
      .map((e) => new URL(e.name).pathname)
      .filter((p) => /\.(js|wasm)$/.test(p)),
    tracker: window.salebeacon.loaded === true,
  }));
}

const LOADER_ONLY = ['/salebeacon/salebeacon.js'];

test(`${ENGINE}: a quiet page (the two-line embed, no parameter, nothing stored) fetches the loader only`, async () => {
  const page = await stack.newPage();
  await stack.front.reset();
  const first = await quietView(page);
  assert.deepEqual(await embedFiles(), LOADER_ONLY, 'the server served the loader and nothing else of the embed');
  assert.deepEqual(first.resources.filter((p) => p.startsWith('/salebeacon/')), LOADER_ONLY, 'nor did the page take anything from its cache');
  assert.equal(first.tracker, false, 'the tracker did not start');
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('salebeacon:'))), [], 'nothing stored');
  assert.deepEqual(await databases(page), [], 'no database');
  assert.equal(await waitCookie(page), null, 'no mark cookie');
  // On the proxy's own origin with no mark cookie, the loader served knows that no sale waits: it
  // checks no browser storage (the page asks for it as its script tag does).
  const served = await page.evaluate(() => fetch('/salebeacon/salebeacon.js').then((r) => r.text()));
  assert.ok(served.includes('/touch') && !served.includes('indexedDB') && !served.includes('localStorage'), served);

  // A returning visitor (attribution and visitor id in cookies and storage, nothing waiting): a
  // quiet page is still the loader alone.
  await land(page, `${stack.site}/?ref=creator42`);
  assert.equal(await page.evaluate(() => localStorage.getItem('salebeacon:outbox')), null);
  await stack.front.reset();
  const again = await quietView(page);
  assert.deepEqual(await embedFiles(), LOADER_ONLY);
  assert.deepEqual(again.resources.filter((p) => p.startsWith('/salebeacon/')), LOADER_ONLY);
  assert.equal(again.tracker, false);

  // The same page with a creator's parameter, for a new visitor, has work, done at the edge: the
  // loader hands the parameter to the proxy on this origin (POST /touch), which captures with the
  // core's rules and sets the cookies; no tracker, no module is downloaded.
  const fresh = await stack.newPage();
  await stack.front.reset();
  const working = await quietView(fresh, '?ref=creator42');
  assert.deepEqual(await embedFiles(), LOADER_ONLY, 'a landing page captured at the edge fetches the loader only');
  assert.deepEqual(working.resources.filter((p) => p.startsWith('/salebeacon/') && !p.endsWith('/touch')), LOADER_ONLY);
  assert.equal(working.tracker, false);
  const touches = (await stack.front.requests()).filter((e) => e.method === 'POST' && e.path === '/salebeacon/touch');
  assert.equal(touches.length, 1, JSON.stringify(touches));
  assert.deepEqual(JSON.parse(touches[0].body).url_params, [['ref', 'creator42']]);
  const cookies = await fresh.evaluate(() => document.cookie);
  assert.match(cookies, /(^|; )sb_aff=1~l~\d+~t~creator42(;|$)/, 'the tracker\'s cookie, readable by its script');
  assert.match(cookies, /(^|; )sb_vid=[0-9a-f-]{36}(;|$)/);
  assert.doesNotMatch(cookies, /sb_aff_h/, 'the proxy\'s copy is HttpOnly');
  // A tag the core refuses is named on the console, as the tracker would.
  await quietView(fresh, '?ref=bad%20tag!');
  await waitFor(async () => (await fresh.consoleLines()).some((l) => l.startsWith('warn') && l.includes('ignored ref="bad tag!"')), {
    what: 'the warning about the refused tag',
  });
  // The thank-you page that follows records a sale credited to the creator the edge captured.
  const orderId = `ORD-EDGE-${Date.now().toString(36)}`;
  await fresh.goto(`${stack.site}${THANKS_PAGE}?order_id=${orderId}`);
  await fresh.waitForFunction(() => document.documentElement.dataset.result, undefined, { timeoutMs: 15000 });
  assert.equal(await fresh.evaluate(() => document.documentElement.dataset.result), 'sent');
  assert.equal((await stack.waitForSale(orderId)).campaign_affiliate_id, 'creator42');
});

/** The page's salebeacon localStorage keys, sorted. */
const ourKeys = (page) => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('salebeacon:')).sort());
/** The sale at the edge's file, content-hashed. */
const SALE_FILE = /^\/salebeacon\/sale\.[0-9a-f]{10}\.js$/;

/** A visitor who came from creator42: the landing page captured at the edge (the loader alone). */
async function fromCreator(page) {
  await quietView(page, '?ref=creator42');
  await waitFor(() => page.evaluate(() => document.cookie.includes('sb_aff=')), { what: 'the edge to set sb_aff' });
}

/** The thank-you page for `orderId`; returns the status (or `error:<code>`) its callback saw. */
async function thankYou(page, orderId, path = THANKS_PAGE) {
  await page.goto(`${stack.site}${path}?order_id=${orderId}`);
  await page.waitForFunction(() => document.documentElement.dataset.result, undefined, { timeoutMs: 15000 });
  return page.evaluate(() => document.documentElement.dataset.result);
}

test(`${ENGINE}: a thank-you page after a creator's link records the sale at the edge: no tracker, one POST as the page handed it, sent and credited; a reload answers duplicate`, async () => {
  const page = await stack.newPage();
  await fromCreator(page);
  await stack.front.reset();
  const orderId = `ORD-EDGE-SALE-${Date.now().toString(36)}`;
  assert.equal(await thankYou(page, orderId), 'sent');
  // The loader and the small sale file; no tracker, no rules module.
  const files = await embedFiles();
  assert.equal(files[0], '/salebeacon/salebeacon.js', JSON.stringify(files));
  assert.match(files[1] || '', SALE_FILE, JSON.stringify(files));
  assert.equal(files.length, 2, JSON.stringify(files));
  assert.equal(await page.evaluate(() => window.salebeacon.loaded === true), false, 'the tracker did not start');
  // The proxy got the sale as the page handed it, and credited it from the visitor's cookies.
  const posts = await stack.front.salePosts(orderId);
  assert.deepEqual(posts.map((p) => p.status), [202]);
  assert.deepEqual(JSON.parse(posts[0].body), { order_id: orderId, total: 2500, currency: 'usd' });
  const sale = await stack.waitForSale(orderId);
  assert.equal(sale.campaign_affiliate_id, 'creator42');
  assert.equal(sale.total, 2500);
  // Reported on the console as the tracker reports a sale; nothing kept, nothing marked.
  assert.ok((await page.consoleLines()).includes(`info: salebeacon: order ${orderId}: sent`), (await page.consoleLines()).join('\n'));
  assert.deepEqual(await ourKeys(page), [], 'nothing stored');
  assert.deepEqual(await databases(page), [], 'no mark');
  // The reload: the proxy knows the order id.
  await stack.front.reset();
  assert.equal(await thankYou(page, orderId), 'duplicate');
  assert.deepEqual((await stack.front.salePosts(orderId)).map((p) => p.status), [200]);
  assert.equal((await stack.sandbox.sales()).filter((s) => s.external_id === orderId).length, 1, 'one sale at Growi');
});

test(`${ENGINE}: a thank-you page without a creator's cookie goes the tracker's way: unattributed, nothing sent`, async () => {
  const page = await stack.newPage();
  await stack.front.reset();
  const orderId = `ORD-ORGANIC-${Date.now().toString(36)}`;
  assert.equal(await thankYou(page, orderId), 'unattributed');
  const files = await embedFiles();
  assert.ok(files.some((p) => /^\/salebeacon\/index\.[0-9a-f]{10}\.js$/.test(p)), JSON.stringify(files));
  assert.ok(!files.some((p) => SALE_FILE.test(p)), JSON.stringify(files));
  assert.deepEqual(await stack.front.salePosts(orderId), [], 'no sale request');
});

test(`${ENGINE}: a sale at the edge the proxy refuses goes to the tracker, whose error names every bad field`, async () => {
  const page = await stack.newPage();
  page.expectProblems(/^salebeacon: invalid sale/);
  await fromCreator(page);
  await quietView(page); // a page of the shop without the creator's parameter
  await stack.front.reset();
  const out = await page.evaluate(
    () =>
      new Promise((resolve) => {
        window.salebeacon('sale', { order_id: 'EDGE-BAD', total: 'ten', currency: 'usd', customer_email: 'nope' }, (e, r) =>
          resolve(e ? { name: e.name, code: e.code, fields: e.issues.map((i) => i.field).sort() } : r),
        );
      }),
  );
  assert.deepEqual(out, { name: 'SaleBeaconError', code: 'invalid_sale', fields: ['customer_email', 'total'] });
  // The proxy's rules refused it first (422); the tracker's said why, and sent nothing more.
  assert.deepEqual((await stack.front.salePosts('EDGE-BAD')).map((p) => p.status), [422]);
  assert.equal(await page.evaluate(() => window.salebeacon.loaded === true), true, 'the tracker took over');
  assert.deepEqual(await ourKeys(page).then((k) => k.filter((x) => x.includes(':r:') || x.includes(':o:'))), [], 'nothing left waiting');
  assert.deepEqual(await page.unhandledRejections(), []);
});

test(`${ENGINE}: a sale at the edge whose page goes before the answer is kept, and the next page delivers it once`, async () => {
  const page = await stack.newPage();
  const context = page.context;
  await fromCreator(page);
  await stack.front.reset();
  const orderId = `ORD-EDGE-GONE-${Date.now().toString(36)}`;
  // The proxy stops answering: the sale's request waits, and the visitor leaves.
  await stack.front.setHeld(true);
  try {
    await page.goto(`${stack.site}${THANKS_PAGE}?order_id=${orderId}`);
    await waitFor(async () => (await stack.front.salePosts(orderId)).length === 1, { what: 'the sale request' });
    await page.close();
    await sleep(500);
    // The request that waited fails: its connection is reset (and so is any retry of it).
    await stack.front.setOffline(true);
    await stack.front.setHeld(false);
    await sleep(1000);
  } finally {
    await stack.front.setHeld(false);
    await stack.front.setOffline(false);
  }
  // (status 0: reset by the server; none: the browser gave up on it first)
  const held = await stack.front.salePosts(orderId);
  assert.ok(held.length >= 1 && held.every((p) => !p.status), JSON.stringify(held));
  assert.equal(await stack.proxy.sale(orderId), null, 'the proxy never got it');
  // Kept: the sale as the page handed it, under the tracker's key for unchecked sales, and the
  // mark. (Seen from a page of the shop without the embed.)
  const next = await stack.newPage({ context });
  await next.goto(`${stack.site}/dev/blank.html`);
  const keys = await ourKeys(next);
  const raw = keys.filter((k) => k.startsWith('salebeacon:r:'));
  assert.equal(raw.length, 1, JSON.stringify(keys));
  assert.ok(keys.includes(MARK), JSON.stringify(keys));
  assert.deepEqual(JSON.parse(await next.evaluate((k) => localStorage.getItem(k), raw[0])).sale, { order_id: orderId, total: 2500, currency: 'usd' });
  // The mark's cookie, written as the page went (synchronously: an IndexedDB open made during
  // unload, by a page that had not touched IndexedDB before, is not completed, so the mark's
  // database may be missing): the proxy serves the next quiet page a loader that starts the
  // tracker.
  assert.equal(await waitCookie(next), '1');
  await stack.front.reset();
  const view = await quietView(next);
  assert.equal(view.tracker, true, 'the mark started the tracker');
  const sale = await stack.waitForSale(orderId);
  assert.equal(sale.campaign_affiliate_id, 'creator42');
  assert.deepEqual((await stack.front.salePosts(orderId)).map((p) => p.status), [202]);
  await waitFor(async () => (await ourKeys(next)).filter((k) => k.includes(':r:') || k.includes(':o:')).length === 0, {
    what: 'nothing left waiting',
  });
  await waitFor(async () => (await waitCookie(next)) === null, { what: 'the mark cookie to be removed' });
  assert.equal((await stack.sandbox.sales()).filter((s) => s.external_id === orderId).length, 1);
});

test(`${ENGINE}: a sale left waiting in the outbox (proxy unreachable) goes out on the next view of a quiet page`, async () => {
  const page = await stack.newPage();
  const context = page.context;
  await land(page, `${stack.site}/?ref=creator42`);
  const orderId = `ORD-WAIT-${Date.now().toString(36)}`;
  // The proxy's API is unreachable (the test server drops its connections; the embed's files
  // still load): the thank-you page stores the sale and answers queued.
  await stack.front.setOffline(true);
  try {
    await page.goto(`${stack.site}${THANKS_PAGE}?order_id=${orderId}`);
    await page.waitForFunction(() => document.documentElement.dataset.result, undefined, { timeoutMs: 15000 });
    assert.equal(await page.evaluate(() => document.documentElement.dataset.result), 'queued');
    const stored = await page.evaluate((id) => ({
      marker: localStorage.getItem('salebeacon:outbox'),
      entry: JSON.parse(localStorage.getItem(`salebeacon:o:${id}`)),
    }), orderId);
    assert.equal(stored.marker, '1', 'the marker says a sale waits');
    assert.equal(stored.entry.body.order_id, orderId);
    // The mark: an IndexedDB database's name (what a loader that checks for itself asks for,
    // without blocking) and the cookie (what tells the proxy, from the loader's request).
    await waitFor(async () => (await databases(page)).includes(MARK), { what: 'the IndexedDB mark' });
    assert.equal(await waitCookie(page), '1', 'the mark cookie');
    const dropped = await stack.front.salePosts(orderId);
    assert.ok(dropped.length >= 1 && dropped.every((p) => p.status === 0), `every attempt failed: ${JSON.stringify(dropped)}`);
    // The visitor leaves; the pagehide beacon (sent as the tab closes) is dropped too.
    await page.close();
    await sleep(1000);
    const all = await stack.front.salePosts(orderId);
    assert.ok(all.every((p) => p.status === 0), `nothing got through: ${JSON.stringify(all)}`);
  } finally {
    await stack.front.setOffline(false);
  }
  assert.equal(await stack.proxy.sale(orderId), null, 'the proxy never got it');

  // Later, a quiet page of the same shop: the loader sees the marker and starts the tracker,
  // which sends the waiting sale.
  await stack.front.reset();
  const next = await stack.newPage({ context });
  const view = await quietView(next);
  assert.equal(view.tracker, true, 'the tracker started for the waiting sale');
  // (from the browser's cache: this visitor's earlier pages fetched it)
  assert.ok(view.resources.some((p) => /^\/salebeacon\/index\.[0-9a-f]{10}\.js$/.test(p)), JSON.stringify(view.resources));
  const sale = await stack.waitForSale(orderId);
  assert.equal(sale.campaign_affiliate_id, 'creator42');
  assert.equal((await stack.sandbox.sales()).filter((s) => s.external_id === orderId).length, 1);
  const posts = await stack.front.salePosts(orderId);
  assert.deepEqual(posts.map((p) => p.status), [202], 'one request, accepted');
  await waitFor(() => next.evaluate(() => localStorage.getItem('salebeacon:outbox') === null), {
    what: 'the marker to be cleared',
  });
  await waitFor(async () => !(await databases(next)).includes(MARK), { what: 'the IndexedDB mark to be removed' });
  assert.equal(await waitCookie(next), null, 'the mark cookie is removed with it');
  // Nothing waits any more: the next quiet page is the loader alone again.
  await stack.front.reset();
  const after = await quietView(next);
  assert.deepEqual(await embedFiles(), LOADER_ONLY);
  assert.equal(after.tracker, false);
});

test(`${ENGINE}: after a sale is sent, nothing is marked as waiting: the next quiet page is the loader alone`, async () => {
  const page = await stack.newPage();
  await land(page, `${stack.site}/?ref=creator42`);
  const orderId = `ORD-SENT-${Date.now().toString(36)}`;
  await page.goto(`${stack.site}${THANKS_WATCHED}?order_id=${orderId}`);
  await page.waitForFunction(() => document.documentElement.dataset.result, undefined, { timeoutMs: 15000 });
  assert.equal(await page.evaluate(() => document.documentElement.dataset.result), 'sent');
  assert.equal((await stack.waitForSale(orderId)).campaign_affiliate_id, 'creator42');
  // Settled before the callback ran: the localStorage mark is gone, and the database was never
  // made (a sale delivered by its own page does not need it, and IndexedDB costs the page time).
  assert.equal(await page.evaluate(() => localStorage.getItem('salebeacon:outbox')), null, 'the localStorage mark is gone');
  assert.deepEqual(await page.evaluate(() => window.__idb), [], 'the page neither opened nor deleted an IndexedDB database');
  assert.deepEqual(await databases(page), [], 'no database');
  assert.equal(await waitCookie(page), null, 'no mark cookie');
  // The reload of the thank-you page answers duplicate from the ledger, and marks nothing either.
  await page.goto(`${stack.site}${THANKS_PAGE}?order_id=${orderId}`);
  await page.waitForFunction(() => document.documentElement.dataset.result, undefined, { timeoutMs: 15000 });
  assert.equal(await page.evaluate(() => document.documentElement.dataset.result), 'duplicate');
  assert.equal(await page.evaluate(() => localStorage.getItem('salebeacon:outbox')), null, 'no mark after the duplicate');
  await waitFor(async () => !(await databases(page)).includes(MARK), { what: 'no IndexedDB mark after the duplicate' });
  await stack.front.reset();
  const after = await quietView(page);
  assert.deepEqual(await embedFiles(), LOADER_ONLY, 'the page after the purchase fetched the loader only');
  assert.equal(after.tracker, false);
});

test(`${ENGINE}: a mark database left with nothing waiting: a quiet page on the proxy's origin ignores it; a loader that checks for itself pays one view`, async () => {
  const page = await stack.newPage();
  // What one tab can leave when it delivered another tab's sale: the database, no key, no sale.
  await page.goto(`${stack.site}${QUIET_PAGE}`);
  await page.evaluate((name) => new Promise((r, j) => {
    const q = indexedDB.open(name);
    q.onsuccess = () => (q.result.close(), r());
    q.onerror = () => j(q.error);
  }), MARK);
  assert.deepEqual(await databases(page), [MARK]);
  assert.equal(await page.evaluate(() => localStorage.getItem('salebeacon:outbox')), null);
  // The proxy sees no mark cookie on the loader's request: its loader checks nothing.
  await stack.front.reset();
  const quiet = await quietView(page, '?stale=0');
  assert.equal(quiet.tracker, false, 'no tracker: the proxy knows that no sale waits');
  assert.deepEqual(await embedFiles(), LOADER_ONLY);
  // A browser that sends no Fetch Metadata gets the loader that checks: it finds the database,
  // and the tracker removes it.
  const view = await withoutFetchMetadata(() => quietView(page, '?stale=1'));
  assert.equal(view.tracker, true, 'the loader found the database and started the tracker');
  await waitFor(async () => !(await databases(page)).includes(MARK), { what: 'the stale database to be removed' });
  await stack.front.reset();
  const after = await withoutFetchMetadata(() => quietView(page));
  assert.deepEqual(await embedFiles(), LOADER_ONLY);
  assert.equal(after.tracker, false);
});

test(`${ENGINE}: a mark cookie left with nothing waiting costs one view: the tracker removes it, the next quiet page is the loader alone`, async () => {
  const page = await stack.newPage();
  // What a visitor who cleared this site's storage but not its cookies leaves: the cookie alone.
  await page.goto(`${stack.site}${QUIET_PAGE}`);
  await page.evaluate(() => (document.cookie = 'sb_wait=1; Path=/; Max-Age=600; SameSite=Lax'));
  await stack.front.reset();
  const view = await quietView(page, '?stale=1');
  assert.equal(view.tracker, true, 'the proxy served the loader that starts the tracker');
  await waitFor(async () => (await waitCookie(page)) === null, { what: 'the stale cookie to be removed' });
  await stack.front.reset();
  const after = await quietView(page);
  assert.deepEqual(await embedFiles(), LOADER_ONLY);
  assert.equal(after.tracker, false);
});

test(`${ENGINE}: where IndexedDB cannot list its databases, a quiet page finds a waiting sale by the localStorage mark`, async () => {
  const page = await stack.newPage();
  const orderId = `ORD-LIST-${Date.now().toString(36)}`;
  // A sale waiting in the tracker's layout (outbox.js), marked in localStorage only, as an engine
  // without indexedDB.databases() leaves it.
  await page.goto(`${stack.site}${QUIET_NO_LIST}`);
  await page.evaluate((id) => {
    const body = { order_id: id, total: 2500, currency: 'usd', campaign_affiliate_id: 'creator42', visitor_uid: crypto.randomUUID() };
    localStorage.setItem(`salebeacon:o:${id}`, JSON.stringify({ body, created_at: Date.now(), attempts: 0, next_at: 0 }));
    localStorage.setItem('salebeacon:outbox', '1');
  }, orderId);
  assert.equal(await page.evaluate(() => typeof indexedDB.databases), 'undefined', 'the page has no databases()');
  // (Without Fetch Metadata, so that the proxy serves the loader that checks: such an engine is
  // older than both.)
  const view = await withoutFetchMetadata(() => quietView(page, '?again=1', QUIET_NO_LIST));
  assert.equal(view.tracker, true, 'the loader read the localStorage mark and started the tracker');
  const sale = await stack.waitForSale(orderId);
  assert.equal(sale.campaign_affiliate_id, 'creator42');
  await waitFor(() => page.evaluate(() => localStorage.getItem('salebeacon:outbox') === null), { what: 'the mark to be cleared' });
});
