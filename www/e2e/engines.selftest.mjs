// Self-test of engines.mjs: `node engines.selftest.mjs [chromium|firefox|webkit ...]` (default:
// all three). A tiny HTTP server on 127.0.0.1, reached as http://shop.test:PORT/,
// http://checkout.shop.test:PORT/ and http://elsewhere.shop.test:PORT/ through each engine's host
// mapping, and one line per check. Exits non-zero when a check fails. Every wait is bounded and
// every process started is stopped, on failure and on Ctrl-C too.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  ENGINES,
  closeAllEngines,
  instrumentationScript,
  instrumentationScriptHash,
  launchEngine,
  stopOnSignals,
} from './engines.mjs';

const CHECK_TIMEOUT_MS = 60000;
/** SALEBEACON_E2E_KEEP=1 keeps the temporary folder (the screenshots). */
const KEEP = !!process.env.SALEBEACON_E2E_KEEP;
const ARRIVE_MS = 10000;

// A module exporting `answer() -> i32` returning 42.
const WASM = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type section: () -> i32
  0x03, 0x02, 0x01, 0x00, // function section
  0x07, 0x0a, 0x01, 0x06, 0x61, 0x6e, 0x73, 0x77, 0x65, 0x72, 0x00, 0x00, // export "answer"
  0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b, // code: i32.const 42
]);

// ---------------------------------------------------------------------------------------------
// The server.

const received = []; // { kind, id, body, cookie, host }
const CSP = [
  "default-src 'self'",
  `script-src 'self' ${instrumentationScriptHash()} 'wasm-unsafe-eval'`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
].join('; ');

function html(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<script>${instrumentationScript()}</script>
<script src="/page.js"></script>
<style>body{font:16px sans-serif;background:#fff8e0} #hero{background:#c33;color:#fff;padding:20px}</style>
</head><body>${body}</body></html>`;
}

const PAGE = html(
  'sb selftest',
  `<h1 id="hero">salebeacon engines self-test</h1>
<button id="btn">click me</button>
<input id="text" type="text">
<label><input id="agree" type="checkbox"> agree</label>
<button id="boom">errors</button>
<p id="late" hidden>late</p>`,
);

const PAGE_JS = `
document.addEventListener('DOMContentLoaded', function () {
  document.getElementById('btn') && document.getElementById('btn').addEventListener('click', function (e) {
    e.target.setAttribute('data-clicked', 'yes');
  });
  var t = document.getElementById('text');
  t && t.addEventListener('input', function () { t.setAttribute('data-typed', t.value); });
  var boom = document.getElementById('boom');
  boom && boom.addEventListener('click', function () {
    console.error('sb-console-error', { n: 1 });
    setTimeout(function () { throw new Error('sb-thrown'); }, 0);
    Promise.reject(new Error('sb-rejected'));
    new Image().src = 'http://127.0.0.1:9/blocked-by-csp.png';
  });
  setTimeout(function () { var l = document.getElementById('late'); if (l) l.hidden = false; }, 300);
});
`;

function startServer() {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const host = req.headers.host || '';
    let body = '';
    req.on('data', (c) => {
      if (body.length < 100000) body += c;
    });
    req.on('end', () => {
      const send = (status, type, text, headers = {}) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
        res.end(text);
      };
      switch (u.pathname) {
        case '/page.html':
        case '/':
          return send(200, 'text/html; charset=utf-8', PAGE, { 'content-security-policy': CSP });
        case '/away.html':
          return send(200, 'text/html; charset=utf-8', html('away', '<p id="away">away</p>'));
        case '/frame-host.html':
          return send(200, 'text/html; charset=utf-8', `<!doctype html><title>frame host</title>
<script>addEventListener('message', function (e) { window.__frame = e.data; });</script>
<iframe src="${u.searchParams.get('src')}"></iframe>`);
        case '/frame.html':
          return send(200, 'text/html; charset=utf-8', `<!doctype html><title>frame</title><script>
document.cookie = 'sb_3p=${u.searchParams.get('v')}; Path=/; Max-Age=600';
var ls = 'error';
try { localStorage.setItem('sb_3p_ls', '1'); ls = localStorage.getItem('sb_3p_ls') === '1' ? 'works' : 'no'; } catch (e) { ls = 'throws ' + e.name; }
parent.postMessage({ cookie: document.cookie, ls: ls }, '*');
</script>`);
        case '/page.js':
          return send(200, 'text/javascript', PAGE_JS);
        case '/mod.wasm':
          res.writeHead(200, { 'content-type': 'application/wasm', 'cache-control': 'no-store' });
          return res.end(Buffer.from(WASM));
        case '/beacon':
          received.push({ kind: u.searchParams.get('kind'), id: u.searchParams.get('id'), body, method: req.method, host, cookie: req.headers.cookie || '' });
          return send(204, 'text/plain', '');
        case '/set-httponly':
          return send(200, 'text/html; charset=utf-8', html('cookie', '<p id="set">set</p>'), {
            'set-cookie': [`sb_http=${u.searchParams.get('v')}; Path=/; HttpOnly; SameSite=Lax`],
          });
        case '/echo-cookies':
          return send(200, 'application/json', JSON.stringify({ cookie: req.headers.cookie || '' }));
        default:
          return send(404, 'text/plain', 'not found');
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function arrived(kind, id, timeoutMs = ARRIVE_MS) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = received.find((x) => x.kind === kind && x.id === id);
    if (r) return r;
    if (Date.now() > end) throw new Error(`no ${kind} request for ${id} reached the server within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

class Unsupported extends Error {}

// ---------------------------------------------------------------------------------------------
// The checks.

function checks({ port }) {
  const site = (host = 'shop.test') => `http://${host}:${port}`;
  const page1 = () => `${site()}/page.html`;
  const newId = () => crypto.randomBytes(6).toString('hex');
  return [
    ['a. goto, evaluate, click, fill, check, getAttribute, textContent, waits (page under a strict CSP)', async ({ context }) => {
      const page = await context.newPage();
      await page.goto(page1());
      assert((await page.url()) === page1(), `url() is ${await page.url()}`);
      assert((await page.evaluate(() => document.title)) === 'sb selftest', 'document.title');
      const sum = await page.evaluate(async ({ a, b }) => {
        await new Promise((r) => setTimeout(r, 10));
        return { sum: a + b, list: [a, b] };
      }, { a: 2, b: 3 });
      assert(JSON.stringify(sum) === '{"sum":5,"list":[2,3]}', `async evaluate gave ${JSON.stringify(sum)}`);
      assert((await page.evaluate(() => undefined)) === undefined, 'undefined result');
      let threw = false;
      await page.evaluate(() => {
        throw new Error('sb-eval-error');
      }).catch((e) => {
        threw = /sb-eval-error/.test(e.message);
      });
      assert(threw, 'an error thrown in evaluate rejects with its message');
      await page.click('#btn');
      assert((await page.getAttribute('#btn', 'data-clicked')) === 'yes', 'click did not reach the handler');
      await page.fill('#text', 'hello');
      assert((await page.getAttribute('#text', 'data-typed')) === 'hello', 'fill did not fire input');
      await page.fill('#text', 'bye');
      assert((await page.evaluate(() => document.getElementById('text').value)) === 'bye', 'fill replaces the value');
      await page.check('#agree');
      assert(await page.evaluate(() => document.getElementById('agree').checked), 'check');
      await page.waitForSelector('#late', { visible: true, timeoutMs: 5000 });
      assert((await page.textContent('#late')) === 'late', 'textContent');
      assert((await page.getAttribute('#btn', 'data-nothing')) === null, 'missing attribute is null');
      await page.waitForFunction((n) => document.querySelectorAll('button').length === n, 2, { timeoutMs: 5000 });
      let timedOut = false;
      const t0 = Date.now();
      await page.waitForSelector('#never', { timeoutMs: 500 }).catch(() => (timedOut = true));
      assert(timedOut && Date.now() - t0 < 5000, 'waitForSelector is bounded');
      await page.evaluate((u) => {
        setTimeout(() => (location.href = u), 50);
      }, `${site()}/away.html?x=1`);
      await page.waitForURL(/away\.html\?x=1$/, { timeoutMs: 10000 });
      assert((await page.textContent('#away')) === 'away', 'page after waitForURL');
      await page.close();
      return 'ok';
    }],

    ['b. localStorage + document.cookie survive a reload, are shared by a 2nd tab, not by a new context', async ({ engine, context }) => {
      const v = newId();
      const page = await context.newPage();
      await page.goto(page1());
      await page.evaluate((v) => {
        localStorage.setItem('sb_ls', v);
        document.cookie = `sb_c=${v}; Path=/; SameSite=Lax; Max-Age=600`;
      }, v);
      await page.reload();
      const read = () => page.evaluate(() => ({ ls: localStorage.getItem('sb_ls'), c: document.cookie }));
      let r = await read();
      assert(r.ls === v && r.c.includes(`sb_c=${v}`), `after reload: ${JSON.stringify(r)}`);
      const tab2 = await context.newPage();
      await tab2.goto(page1());
      r = await tab2.evaluate(() => ({ ls: localStorage.getItem('sb_ls'), c: document.cookie }));
      assert(r.ls === v && r.c.includes(`sb_c=${v}`), `second tab: ${JSON.stringify(r)}`);
      const jar = await context.cookies(site());
      assert(jar.some((c) => c.name === 'sb_c' && c.value === v), `context.cookies: ${JSON.stringify(jar)}`);
      await tab2.close();
      assert((await page.evaluate(() => localStorage.getItem('sb_ls'))) === v, 'first tab still works after the second closed');
      const other = await engine.newContext();
      try {
        const p = await other.newPage();
        await p.goto(page1());
        r = await p.evaluate(() => ({ ls: localStorage.getItem('sb_ls'), c: document.cookie }));
        assert(r.ls === null && !r.c.includes('sb_c='), `a new context sees ${JSON.stringify(r)}`);
        const jar2 = await other.cookies(site());
        assert(!jar2.some((c) => c.name === 'sb_c'), `a new context's cookies: ${JSON.stringify(jar2)}`);
      } finally {
        await other.close();
      }
      await page.close();
      return 'ok';
    }],

    ['c. WebAssembly: instantiate from bytes and instantiateStreaming of application/wasm', async ({ context }) => {
      const page = await context.newPage();
      await page.goto(page1());
      const r = await page.evaluate(async (bytes) => {
        const empty = await WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
        const fromBytes = await WebAssembly.instantiate(new Uint8Array(bytes));
        const streamed = await WebAssembly.instantiateStreaming(fetch('/mod.wasm'));
        return {
          empty: empty.instance instanceof WebAssembly.Instance,
          bytes: fromBytes.instance.exports.answer(),
          streaming: streamed.instance.exports.answer(),
        };
      }, [...WASM]);
      assert(r.empty && r.bytes === 42 && r.streaming === 42, JSON.stringify(r));
      await page.close();
      return 'ok';
    }],

    ['d. fetch keepalive POST right before location.href = other origin reaches the server', async ({ context }) => {
      const page = await context.newPage();
      await page.goto(page1());
      const id = newId();
      const away = `${site('elsewhere.shop.test')}/away.html?from=keepalive`;
      await page
        .evaluate(({ id, away }) => {
          fetch(`/beacon?kind=keepalive&id=${id}`, { method: 'POST', keepalive: true, body: `ka:${id}`, headers: { 'content-type': 'text/plain' } });
          location.href = away;
        }, { id, away })
        .catch(() => {});
      await page.waitForURL(away, { timeoutMs: 15000 });
      const r = await arrived('keepalive', id);
      assert(r.body === `ka:${id}` && r.method === 'POST', JSON.stringify(r));
      await page.close();
      return 'ok';
    }],

    ['e. sendBeacon from pagehide reaches the server: on navigation away, on page.close(), on goto(about:blank)', async ({ context }) => {
      const install = (page, kind, id) =>
        page.evaluate(({ kind, id }) => {
          addEventListener('pagehide', () => navigator.sendBeacon(`/beacon?kind=${kind}&id=${id}`, `b:${id}`));
        }, { kind, id });
      const page = await context.newPage();
      await page.goto(page1());
      const id1 = newId();
      await install(page, 'pagehide-nav', id1);
      const away = `${site('elsewhere.shop.test')}/away.html?from=beacon`;
      await page.evaluate((away) => { location.href = away; }, away).catch(() => {});
      await page.waitForURL(away, { timeoutMs: 15000 });
      const r1 = await arrived('pagehide-nav', id1);
      assert(r1.body === `b:${id1}`, JSON.stringify(r1));
      await page.close();
      const tab = await context.newPage();
      await tab.goto(page1());
      const id2 = newId();
      await install(tab, 'pagehide-close', id2);
      await tab.close();
      const r2 = await arrived('pagehide-close', id2);
      assert(r2.body === `b:${id2}`, JSON.stringify(r2));
      const tab3 = await context.newPage();
      await tab3.goto(page1());
      const id3 = newId();
      await install(tab3, 'pagehide-blank', id3);
      await tab3.goto('about:blank');
      await tab3.waitForURL('about:blank', { timeoutMs: 5000 });
      const r3 = await arrived('pagehide-blank', id3);
      assert(r3.body === `b:${id3}`, JSON.stringify(r3));
      await tab3.close();
      return 'ok';
    }],

    ['f. host mapping: a Domain=shop.test cookie set on shop.test is visible on checkout.shop.test', async ({ context }) => {
      const v = newId();
      const page = await context.newPage();
      await page.goto(page1());
      await page.evaluate((v) => {
        document.cookie = `sb_dom=${v}; Domain=shop.test; Path=/; SameSite=Lax`;
      }, v);
      await page.goto(`${site('checkout.shop.test')}/page.html`);
      const c = await page.evaluate(() => document.cookie);
      assert(c.includes(`sb_dom=${v}`), `checkout.shop.test sees ${JSON.stringify(c)}`);
      const jar = await context.cookies(`${site('checkout.shop.test')}/`);
      const hit = jar.find((x) => x.name === 'sb_dom');
      assert(hit && hit.value === v, `context.cookies(checkout): ${JSON.stringify(jar)}`);
      await page.close();
      return `ok (${context.engine.hostMapping})`;
    }],

    ['g. the instrumentation script records console.error, a thrown error, an unhandled rejection, a CSP violation', async ({ context }) => {
      const page = await context.newPage();
      await page.goto(page1());
      assert((await page.consoleErrors()).length === 0, 'no errors before');
      await page.click('#boom');
      await page.waitForFunction(() => (window.__sbLog || []).length >= 3, undefined, { timeoutMs: 5000 });
      const errors = await page.consoleErrors();
      const has = (type, text) => errors.some((e) => e.type === type && e.text.includes(text));
      assert(has('console.error', 'sb-console-error') && has('pageerror', 'sb-thrown') && has('unhandledrejection', 'sb-rejected'), JSON.stringify(errors));
      await page.waitForFunction(() => (window.__sbLog || []).some((e) => e.type === 'csp'), undefined, { timeoutMs: 5000 });
      const csp = await page.cspViolations();
      assert(csp.some((v) => v.startsWith('img-src') && v.includes('blocked-by-csp')), `CSP violations: ${JSON.stringify(csp)}`);
      let native = 'no native console events';
      if (context.engine.capabilities.consoleEvents) {
        const lines = page.nativeConsole();
        native = `native console events: ${lines.length} (${lines.some((l) => l.text.includes('sb-console-error')) ? 'has' : 'lacks'} the console.error)`;
      }
      await page.close();
      return `ok; ${native}`;
    }],

    ['h. report: navigator.locks, navigator.globalPrivacyControl, offline emulation', async ({ engine, context }) => {
      const page = await context.newPage();
      const probe = () =>
        page.evaluate(() => ({
          secure: window.isSecureContext,
          locks: !!(navigator.locks && navigator.locks.request),
          gpc: 'globalPrivacyControl' in navigator ? navigator.globalPrivacyControl : 'absent',
        }));
      await page.goto(page1());
      const onShop = await probe();
      await page.goto(`http://127.0.0.1:${port}/page.html`);
      const onLoopback = await probe();
      let offline = 'unsupported by the driver';
      if (engine.capabilities.offline) {
        await page.goto(page1());
        await context.setOffline(true);
        const off = await page.evaluate(() => fetch('/echo-cookies').then(() => 'fetched', () => 'failed'));
        await context.setOffline(false);
        const on = await page.evaluate(() => fetch('/echo-cookies').then(() => 'fetched', () => 'failed'));
        offline = off === 'failed' && on === 'fetched' ? 'works' : `claimed but offline fetch ${off}, online fetch ${on}`;
        if (offline !== 'works') throw new Error(`offline emulation: ${offline}`);
      }
      await page.close();
      const show = (r) => `secure=${r.secure} locks=${r.locks} gpc=${r.gpc}`;
      return `info: http://shop.test: ${show(onShop)}; http://127.0.0.1: ${show(onLoopback)}; offline emulation: ${offline}`;
    }],

    ['i. a PNG screenshot is written and not empty', async ({ context, tmp }) => {
      const page = await context.newPage();
      await page.goto(page1());
      const file = path.join(tmp, `${context.engine.name}.png`);
      await page.screenshot(file);
      const png = fs.readFileSync(file);
      assert(png.length > 1000 && png.subarray(1, 4).toString() === 'PNG', `${png.length} bytes`);
      const w = png.readUInt32BE(16);
      const h = png.readUInt32BE(20);
      await page.close();
      return `ok (${w}x${h}, ${png.length} bytes${KEEP ? `, ${file}` : ''})`;
    }],

    ['j. an HttpOnly Set-Cookie goes back to the server and is invisible to document.cookie', async ({ context }) => {
      const v = newId();
      const page = await context.newPage();
      await page.goto(`${site()}/set-httponly?v=${v}`);
      const r = await page.evaluate(async () => ({ doc: document.cookie, server: (await (await fetch('/echo-cookies')).json()).cookie }));
      assert(r.server.includes(`sb_http=${v}`), `the server got ${JSON.stringify(r.server)}`);
      assert(!r.doc.includes('sb_http'), `document.cookie shows it: ${r.doc}`);
      await page.goto(page1());
      const id = newId();
      await page.evaluate((id) => navigator.sendBeacon(`/beacon?kind=cookie&id=${id}`, 'x'), id);
      const got = await arrived('cookie', id);
      assert(got.cookie.includes(`sb_http=${v}`), `a beacon carries ${JSON.stringify(got.cookie)}`);
      const jar = await context.cookies(`${site()}/page.html`);
      const c = jar.find((x) => x.name === 'sb_http');
      assert(c && c.value === v && c.httpOnly === true, `context.cookies: ${JSON.stringify(jar)}`);
      await page.close();
      return 'ok';
    }],

    ['k. report: cookie rules (2-year document.cookie expiry; a cookie and localStorage in a cross-site iframe)', async ({ context }) => {
      const v = newId();
      const page = await context.newPage();
      await page.goto(page1());
      await page.evaluate(() => {
        document.cookie = 'sb_long=1; Path=/; Max-Age=63072000; SameSite=Lax';
      });
      const jar = await context.cookies(site());
      const long = jar.find((c) => c.name === 'sb_long');
      const days = long && long.expires > 0 ? Math.round((long.expires - Date.now() / 1000) / 86400) : 'session';
      const frameSrc = `http://127.0.0.1:${port}/frame.html?v=${v}`;
      await page.goto(`${site()}/frame-host.html?src=${encodeURIComponent(frameSrc)}`);
      const f = await page.waitForFunction(() => window.__frame, undefined, { timeoutMs: 10000 });
      const inFrame = f.cookie.includes(`sb_3p=${v}`);
      await page.goto(`http://127.0.0.1:${port}/away.html`);
      const topLevel = (await page.evaluate(() => document.cookie)).includes(`sb_3p=${v}`);
      await page.close();
      return `info: Max-Age of 2 years kept as ${days} days; cross-site iframe (shop.test embeds 127.0.0.1): cookie ${inFrame ? 'set and readable in the frame' : 'not set'}${inFrame ? `, ${topLevel ? 'also' : 'not'} visible to 127.0.0.1 as first party (${topLevel ? 'unpartitioned' : 'partitioned'})` : ''}; localStorage ${f.ls}`;
    }],

    ['l. context.addCookies, and context.addInitScript where supported', async ({ engine, context }) => {
      const v = newId();
      await context.addCookies([{ name: 'sb_added', value: v, url: `${site('checkout.shop.test')}/` }]);
      const page = await context.newPage();
      await page.goto(`${site('checkout.shop.test')}/page.html`);
      const c = await page.evaluate(() => document.cookie);
      assert(c.includes(`sb_added=${v}`), `addCookies: checkout.shop.test sees ${JSON.stringify(c)}`);
      let init = 'unsupported';
      if (engine.capabilities.initScripts) {
        await context.addInitScript(`window.__sbInit = (window.__sbInit || 0) + 1;`);
        const tab = await context.newPage();
        await tab.goto(page1());
        const n = await tab.evaluate(() => window.__sbInit);
        assert(n === 1, `init script ran ${n} times`);
        await tab.close();
        init = 'runs before the page';
      }
      await page.close();
      return `ok; init scripts: ${init}`;
    }],

    ['m. request events (capabilities.requestEvents)', async ({ engine, context }) => {
      if (!engine.capabilities.requestEvents) throw new Unsupported('the driver has no network events');
      const page = await context.newPage();
      const seen = [];
      page.onRequest((r) => seen.push(r));
      await page.goto(page1());
      const id = newId();
      await page.evaluate((id) => fetch(`/beacon?kind=req&id=${id}`, { method: 'POST', body: `rq:${id}` }), id);
      await arrived('req', id);
      const hit = seen.find((r) => r.method === 'POST' && r.url.includes(id));
      assert(hit, `no POST among ${seen.map((r) => r.url).join(', ')}`);
      await page.close();
      return `ok (post body ${hit.postData === `rq:${id}` ? 'visible' : `not visible: ${JSON.stringify(hit.postData)}`})`;
    }],
  ];
}

// ---------------------------------------------------------------------------------------------

async function runEngine(name, server, tmp) {
  const port = server.address().port;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let engine;
  let context;
  const t0 = Date.now();
  try {
    engine = await launchEngine(name);
    const t1 = Date.now();
    context = await engine.newContext();
    const t2 = Date.now();
    console.log(`${name}   ${engine.version}; engine up in ${t1 - t0} ms, first context in ${t2 - t1} ms`);
    console.log(`${name}   capabilities ${JSON.stringify(engine.capabilities)}`);
  } catch (e) {
    console.log(`${name}   FAIL launch: ${e.message}`);
    await engine?.close().catch(() => {});
    console.log(`${name}: 0 passed, 1 failed`);
    return { passed: 0, failed: 1 };
  }
  for (const [label, fn] of checks({ port })) {
    const started = Date.now();
    try {
      const note = await Promise.race([
        fn({ engine, context, tmp }),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`check timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)),
      ]);
      passed++;
      console.log(`${name}   ok          ${label}${note && note !== 'ok' ? ` — ${note}` : ''} [${Date.now() - started} ms]`);
    } catch (e) {
      if (e instanceof Unsupported) {
        skipped++;
        console.log(`${name}   unsupported ${label} — ${e.message}`);
      } else {
        failed++;
        console.log(`${name}   FAIL        ${label} — ${e.message.split('\n')[0]} [${Date.now() - started} ms]`);
      }
      // A failed check may leave a context in a bad state: start the next one fresh.
      await context.close().catch(() => {});
      context = await engine.newContext().catch(() => null);
      if (!context) break;
    }
  }
  const tc = Date.now();
  await engine.close();
  console.log(`${name}   closed in ${Date.now() - tc} ms`);
  console.log(`${name}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return { passed, failed, skipped };
}

async function main() {
  const wanted = process.argv.slice(2);
  const names = wanted.length ? wanted : ENGINES;
  for (const n of names) {
    if (!ENGINES.includes(n)) {
      console.error(`unknown engine ${n}: one of ${ENGINES.join(', ')}`);
      process.exit(2);
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-engines-selftest-'));
  const server = await startServer();
  let cleaning = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await closeAllEngines();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(() => r()));
      if (KEEP) console.log(`kept ${tmp}`);
      else fs.rmSync(tmp, { recursive: true, force: true });
    })());
  let interrupted = false;
  stopOnSignals(() => {
    interrupted = true;
    return cleanup();
  });
  let total = { passed: 0, failed: 0, skipped: 0 };
  try {
    for (const n of names) {
      const r = await runEngine(n, server, tmp);
      total.passed += r.passed;
      total.failed += r.failed;
      total.skipped += r.skipped || 0;
    }
  } finally {
    await cleanup();
  }
  if (interrupted) process.exit(130);
  console.log(`all: ${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
  process.exit(total.failed ? 1 : 0);
}

main().catch(async (e) => {
  console.error(e);
  await closeAllEngines();
  process.exit(1);
});
