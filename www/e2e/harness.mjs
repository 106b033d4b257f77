// The e2e harness: the real salebeacon-sandbox and salebeacon-proxy binaries on free ports with a
// temporary outbox (the proxy serving the built package from pkg/ itself, `--static-dir`),
// salebeacon-testserver in front of it as a shop's web server would be (the site folder at `/`,
// `/salebeacon/` forwarded to the proxy, the instrumentation script injected into every page, a
// log of every request, an offline switch), and one browser engine through engines.mjs.
//
// The engine is SALEBEACON_ENGINE: `chromium` (default), `firefox` or `webkit` (ENGINES.md says
// what each can do). Tests observe the network through the test server's request log
// (`stack.front.requests()`), never through driver events: WebKit's driver has none, Firefox's
// has no POST bodies.
//
// It builds nothing: it expects pkg/ (`cargo xtask build`) and the release binaries
// (`cargo build --release -p salebeacon-proxy -p salebeacon-sandbox -p salebeacon-testserver`).
// `cargo xtask test e2e` builds both first. Environment: SALEBEACON_ENGINE, SALEBEACON_ROOT (repo),
// SALEBEACON_PKG (pkg/), SALEBEACON_BIN_DIR (where the binaries are; default target/release),
// CHROMIUM / FIREFOX / WEBKIT_MINIBROWSER (see engines.mjs), SALEBEACON_E2E_LOGS=1 (echo the
// binaries' logs), SALEBEACON_E2E_KEEP=1 (keep the temporary folder: outbox, logs, site copy).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ENGINES, instrumentationScript, launchEngine, stopOnSignals } from './engines.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = path.resolve(process.env.SALEBEACON_ROOT || path.join(here, '../..'));
export const PKG = path.resolve(process.env.SALEBEACON_PKG || path.join(ROOT, 'pkg'));
export const SITE = path.join(ROOT, 'www', 'demo');
const BIN_DIR = path.resolve(
  process.env.SALEBEACON_BIN_DIR ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'release'),
);
const BASE = '/salebeacon';
/** How long a process may take to print its ready line. */
const START_MS = 15000;
/** The bound of the test files' before/after hooks (starting and stopping a stack and an engine). */
export const HOOK_MS = 120000;

/** The engine this run drives (SALEBEACON_ENGINE). */
export const ENGINE = process.env.SALEBEACON_ENGINE || 'chromium';
if (!ENGINES.includes(ENGINE)) {
  throw new Error(`SALEBEACON_ENGINE=${JSON.stringify(ENGINE)}: one of ${ENGINES.join(', ')}`);
}

const BUILD_HINT =
  'run `cargo build --release -p salebeacon-proxy -p salebeacon-sandbox -p salebeacon-testserver` (cargo xtask test e2e does)';

function bin(name) {
  const p = path.join(BIN_DIR, name);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: ${BUILD_HINT}`);
  return p;
}

/** Throws a helpful error when pkg/ is not built. */
export function requirePkg() {
  for (const f of ['index.js', 'salebeacon.js', 'salebeacon_visit_bg.wasm', 'salebeacon_order_bg.wasm']) {
    if (!fs.existsSync(path.join(PKG, f))) {
      throw new Error(`${path.join(PKG, f)} is missing: run \`cargo xtask build\``);
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (sync or async) until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 15000, intervalMs = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Spawns a binary; resolves when `ready` matches its output (stdout or stderr). `ready` should
 * end with the line's newline: output may arrive in pieces, half a line at a time.
 */
function startProcess(name, file, args, env, ready, logFile) {
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(logFile);
  child.once('exit', () => log.end());
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${START_MS} ms; its log: ${logFile}\n${buffer.slice(-2000)}`));
    }, START_MS);
    const onData = (chunk) => {
      const text = chunk.toString();
      if (!log.writableEnded) log.write(text);
      if (process.env.SALEBEACON_E2E_LOGS) process.stderr.write(`[${name}] ${text}`);
      if (buffer !== null) {
        buffer += text;
        const m = buffer.match(ready);
        if (m) {
          clearTimeout(timer);
          buffer = null;
          resolve({ child, match: m });
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${name} could not start (${file}): ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      if (buffer !== null) {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${buffer.slice(-2000)}`));
      }
    });
  });
}

/** SIGTERM, SIGKILL after 5 s; resolves once the process has exited (it is then reaped). */
function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Stacks still running in this process, stopped on SIGINT / SIGTERM / SIGHUP too. */
const liveStacks = new Set();
stopOnSignals(() => Promise.all([...liveStacks].map((s) => stopStack(s))));

/**
 * What the test server puts first in every page: the engines layer's instrumentation (console,
 * errors, rejections, CSP violations into `window.__sbLog`), an id for the document (so the
 * harness can keep the log of every page a tab showed), and where the demo's sandbox is.
 */
function injectedScript(sandboxOrigin) {
  return [
    instrumentationScript(),
    "(function () { try { Object.defineProperty(window, '__sbDoc', { value: Math.random().toString(36).slice(2) + '-' + Date.now() }); } catch (e) {} })();",
    // The demo pages ask the sandbox what "Growi" holds (shop.js, sandboxUrl()).
    `try { localStorage.setItem('demo:sandbox', ${JSON.stringify(sandboxOrigin)}); } catch (e) {}`,
  ].join('\n');
}

/**
 * Starts sandbox + proxy + test server (+ the engine). Options: `proxyArgs` (extra flags),
 * `proxyEnv` (extra environment for the proxy, e.g. SALEBEACON_ORDER_TOKEN_SECRET), `sitePages`
 * (`{ 'dir/x.html': '<html>...' }`: extra pages, served from a temporary copy of the demo site),
 * `siteDir` (serve this folder instead of the demo site), `engine` (false: no browser; the caller
 * drives its own), `inject` (false: pages as they are, without the instrumentation script; for
 * measurements). Returns the stack: `site` (origin of the shop), `siteFor(host)`, `engine`,
 * `newPage()`, `closePages()`, `front.*` (the request log, the offline switch), `sandbox.*`,
 * `proxy.*` (including `proxy.stop()` / `proxy.start()`: the proxy down and up again on the same
 * port with the same outbox), `setOffline()`, `waitForSale()`.
 */
export async function startStack({ proxyArgs = [], proxyEnv = {}, sitePages = null, siteDir = null, engine = true, inject = true } = {}) {
  requirePkg();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'salebeacon-e2e-'));
  const apiKey = 'sk_test_' + crypto.randomBytes(12).toString('hex');
  const adminToken = crypto.randomBytes(18).toString('hex');
  const stack = { tmp, adminToken, children: [], contexts: new Set(), pages: [] };
  liveStacks.add(stack);
  try {
    const sandbox = await startProcess(
      'sandbox',
      bin('salebeacon-sandbox'),
      ['--listen', '127.0.0.1:0', '--api-key', apiKey, '--min-interval-ms', '200'],
      {},
      /listening on (http:\/\/\S+)\r?\n/,
      path.join(tmp, 'sandbox.log'),
    );
    stack.children.push(sandbox.child);
    const apiBase = sandbox.match[1];
    const sandboxOrigin = new URL(apiBase).origin;

    let site = siteDir || SITE;
    if (sitePages) {
      site = path.join(tmp, 'site');
      fs.cpSync(siteDir || SITE, site, { recursive: true });
      for (const [rel, text] of Object.entries(sitePages)) {
        const file = path.join(site, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
      }
    }

    const proxyBin = bin('salebeacon-proxy');
    const proxyArgsFor = (listen, extra) => [
      '--listen', listen,
      '--upstream', apiBase,
      '--db', path.join(tmp, 'outbox.sqlite3'),
      '--db-sync', 'normal',
      '--pace-ms', '200',
      '--backoff-base-ms', '200',
      '--rate-limit-per-minute', '0',
      '--static-dir', PKG,
      ...extra,
    ];
    const proxyEnvFor = (extra) => ({
      GROWI_API_KEY: apiKey,
      SALEBEACON_ADMIN_TOKEN: adminToken,
      RUST_LOG: process.env.RUST_LOG || 'info',
      NO_COLOR: '1',
      ...extra,
    });
    const proxyLog = path.join(tmp, 'proxy.log');
    const proxy = await startProcess(
      'proxy',
      proxyBin,
      proxyArgsFor('127.0.0.1:0', proxyArgs),
      proxyEnvFor(proxyEnv),
      /listening on (http:\/\/\S+)\r?\n/,
      proxyLog,
    );
    stack.children.push(proxy.child);
    let proxyChild = proxy.child;
    const proxyOrigin = new URL(proxy.match[1]).origin;
    const proxyListen = new URL(proxyOrigin).host;
    /** Proxy runs so far: run 1 logs to proxy.log, run N to proxy.log.N. */
    let proxyRuns = 1;

    const injectFile = path.join(tmp, 'inject.js');
    fs.writeFileSync(injectFile, injectedScript(sandboxOrigin));
    const front = await startProcess(
      'testserver',
      bin('salebeacon-testserver'),
      ['--site', site, '--proxy', proxyOrigin, ...(inject ? ['--inject', injectFile] : [])],
      { RUST_LOG: process.env.RUST_LOG || 'warn', NO_COLOR: '1' },
      /listening on (http:\/\/\S+)\r?\n/,
      path.join(tmp, 'testserver.log'),
    );
    stack.children.push(front.child);
    const siteOrigin = new URL(front.match[1]).origin;
    const port = new URL(siteOrigin).port;

    if (engine) stack.engine = await launchEngine(ENGINE);

    const control = (p, init) =>
      fetch(`${siteOrigin}/__test/${p}`, { ...init, signal: AbortSignal.timeout(10000) }).then((r) => {
        if (!r.ok) throw new Error(`test server ${init?.method || 'GET'} /__test/${p} answered ${r.status}`);
        return r;
      });

    Object.assign(stack, {
      site: siteOrigin,
      /** The shop under another host name (shop.test and its subdomains map to 127.0.0.1). */
      siteFor: (host) => `http://${host}:${port}`,
      front: {
        origin: siteOrigin,
        /** Every request the test server handled since the last reset, oldest first. */
        requests: async () => (await control('requests')).json(),
        /** Clears the request log. */
        reset: () => control('reset', { method: 'POST' }),
        /** While on, API calls under /salebeacon/ get a reset connection (files still load). */
        setOffline: (on) => control('offline', { method: 'PUT', body: on ? 'true' : 'false' }),
        /** While on, API calls under /salebeacon/ wait unanswered; switched off, they are reset. */
        setHeld: (on) => control('hold', { method: 'PUT', body: on ? 'true' : 'false' }),
        /** While off, requests reach the proxy without Sec-Fetch-* headers (as from Safari before 16.4). */
        setFetchMetadata: (on) => control('no-fetch-metadata', { method: 'PUT', body: on ? 'false' : 'true' }),
        /** The POSTs to /salebeacon/sales that reached the server, mentioning `orderId` if given. */
        salePosts: async (orderId) =>
          (await stack.front.requests()).filter(
            (e) =>
              e.method === 'POST' &&
              e.path.split('?')[0] === `${BASE}/sales` &&
              (orderId === undefined || (e.body || '').includes(orderId)),
          ),
      },
      sandbox: {
        origin: sandboxOrigin,
        api: apiBase,
        /** Every sale the sandbox holds that came through its API (not the seeded ones). */
        sales: async () => {
          const all = await (await fetch(`${sandboxOrigin}/_sandbox/sales`)).json();
          return all.filter((s) => s.platform === 'website');
        },
        requests: async () => (await fetch(`${sandboxOrigin}/_sandbox/requests`)).json(),
        reset: async () => {
          const r = await fetch(`${sandboxOrigin}/_sandbox/reset`, { method: 'POST' });
          if (!r.ok) throw new Error(`sandbox reset answered ${r.status}`);
        },
      },
      proxy: {
        origin: proxyOrigin,
        /** The proxy's delivery record of an order (admin API), or null when it has none. */
        sale: async (orderId) => {
          const r = await fetch(`${proxyOrigin}${BASE}/admin/sales/${encodeURIComponent(orderId)}`, {
            headers: { authorization: `Bearer ${adminToken}` },
          });
          if (r.status === 404) return null;
          if (!r.ok) throw new Error(`admin lookup of ${orderId} answered ${r.status}`);
          return r.json();
        },
        /** The proxy's log (every run since the stack started, oldest first). */
        log: () => {
          let text = '';
          for (let i = 1; i <= proxyRuns; i++) {
            const f = i === 1 ? proxyLog : `${proxyLog}.${i}`;
            if (fs.existsSync(f)) text += fs.readFileSync(f, 'utf8');
          }
          return text;
        },
        /** Whether the proxy process is running. */
        running: () => proxyChild !== null && proxyChild.exitCode === null && proxyChild.signalCode === null,
        /** Stops the proxy (SIGTERM, then SIGKILL after 5 s); its outbox file stays. */
        async stop() {
          const child = proxyChild;
          proxyChild = null;
          await stopProcess(child);
          stack.children = stack.children.filter((c) => c !== child);
        },
        /**
         * Starts the proxy again on the same address with the same outbox database (after
         * `stop()`, or restarts it). `proxyArgs` / `proxyEnv` replace the extra flags and
         * environment given to startStack (default: keep them).
         */
        async start({ proxyArgs: args = proxyArgs, proxyEnv: env = proxyEnv } = {}) {
          if (proxyChild) await stack.proxy.stop();
          let lastError;
          // The port was just released; binding it again may need a moment.
          for (let attempt = 0; attempt < 20; attempt++) {
            proxyRuns += 1;
            try {
              const again = await startProcess(
                'proxy',
                proxyBin,
                proxyArgsFor(proxyListen, args),
                proxyEnvFor(env),
                /listening on (http:\/\/\S+)\r?\n/,
                `${proxyLog}.${proxyRuns}`,
              );
              proxyChild = again.child;
              stack.children.splice(1, 0, again.child);
              return;
            } catch (e) {
              lastError = e;
              await sleep(100);
            }
          }
          throw lastError;
        },
      },
      /**
       * A page in a fresh browser context (its own cookies and storage), or with `{ context }`
       * another tab of an existing context (`page.context`). See `instrument` for what the page
       * offers beyond the engines API.
       */
      async newPage({ context } = {}) {
        if (!stack.engine) throw new Error('startStack({ engine: false }): no browser');
        let ctx = context;
        if (!ctx) {
          ctx = await stack.engine.newContext();
          stack.contexts.add(ctx);
        }
        const page = instrument(await ctx.newPage());
        stack.pages.push(page);
        return page;
      },
      /**
       * After each test: closes every context opened by newPage() (no tab lingers), then fails
       * the test if any of its pages had a problem it did not expect (`page.expectProblems`): a
       * console error, an uncaught error, an unhandled rejection or a CSP violation. Every test
       * that shows a page asserts this way that none happened.
       */
      async closePages() {
        const pages = stack.pages.splice(0);
        const found = [];
        for (const p of pages) {
          for (const problem of await p.unexpectedProblems()) found.push(`${p.label}: ${problem}`);
        }
        const open = [...stack.contexts];
        stack.contexts.clear();
        await Promise.all(open.map((c) => c.close().catch(() => {})));
        if (found.length) throw new Error(`problems on the test's pages:\n  ${found.join('\n  ')}`);
      },
      /**
       * Takes the context's pages offline, or back online. Where the engine's driver can emulate
       * it (`capabilities.offline`: Chromium, Firefox), the browser is offline; where it cannot
       * (WebKit), the test server drops every API connection instead (a network failure for the
       * page) and, on the way back, the test fires `online` in the given pages itself, since
       * nothing in the browser changed. Returns how: 'browser' or 'test server'.
       */
      async setOffline(context, offline, { pages = [] } = {}) {
        if (stack.engine.capabilities.offline) {
          await context.setOffline(offline);
          return 'browser';
        }
        await stack.front.setOffline(offline);
        if (!offline) {
          for (const p of pages) await p.evaluate(() => window.dispatchEvent(new Event('online')));
        }
        return 'test server';
      },
      /** Waits until the sandbox holds a sale for `orderId`; returns it. */
      async waitForSale(orderId, timeoutMs = 20000) {
        return waitFor(
          async () => (await stack.sandbox.sales()).find((s) => s.external_id === orderId),
          { timeoutMs, what: `sale ${orderId} in the sandbox` },
        );
      },
    });
    return stack;
  } catch (e) {
    await stopStack(stack);
    throw e;
  }
}

export async function stopStack(stack) {
  if (!stack || stack.stopping) return stack?.stopping;
  stack.stopping = (async () => {
    if (stack.engine) await stack.engine.close().catch(() => {});
    for (const child of [...(stack.children || [])].reverse()) await stopProcess(child);
    liveStacks.delete(stack);
    if (stack.tmp && !process.env.SALEBEACON_E2E_KEEP) fs.rmSync(stack.tmp, { recursive: true, force: true });
  })();
  return stack.stopping;
}

/**
 * Adds to an engines page what the tests read from the instrumentation script, over every
 * document the tab has shown (the script's log lives in one document; the harness reads it before
 * each goto, reload and click, which may leave the page):
 *
 * - `consoleErrors()`: `console.error` texts, `uncaught: <message>` for uncaught errors,
 *   `unhandled rejection: <message>` for unhandled rejections;
 * - `consoleLines()`: every console call and error as `<type>: <text>`;
 * - `cspViolations()`: `<directive> <blocked URI>` per violation;
 * - `unhandledRejections()`: their messages;
 * - `expectProblems(...patterns)`: problems this test causes on purpose (each a RegExp or a
 *   substring, matched against the lines below); `unexpectedProblems()`: every console error,
 *   uncaught error, unhandled rejection (as consoleErrors shows them) and CSP violation
 *   (`csp: <directive> <blocked URI>`) that no pattern matches. `stack.closePages()` fails the
 *   test on any.
 *
 * `goto(url, { keepLog: false })` and `close({ keepLog: false })` skip the read, for tests where
 * the step must follow the previous one at once. A document that leaves by its own script (a
 * `location.href` set inside `evaluate`) is read only up to the harness's previous step.
 */
let pageCount = 0;
function instrument(page) {
  const docs = new Map(); // document id → its log, in the order the documents were first seen
  const snapshot = async () => {
    try {
      const s = await page.evaluate(() => ({
        doc: window.__sbDoc || null,
        log: Array.isArray(window.__sbLog) ? window.__sbLog.slice() : [],
      }));
      if (s && s.doc) docs.set(s.doc, s.log);
    } catch {
      // A page that is navigating or gone: its log was read at the previous step.
    }
  };
  for (const name of ['goto', 'reload', 'click', 'close']) {
    const original = page[name].bind(page);
    page[name] = async (...args) => {
      const opts = name === 'goto' || name === 'click' ? args[1] : args[0];
      if (opts?.keepLog !== false) await snapshot();
      return name === 'close' ? original() : original(...args);
    };
  }
  const all = async () => {
    if (!page.closed) await snapshot();
    return [...docs.values()].flat();
  };
  const show = (e) =>
    e.type === 'pageerror' ? `uncaught: ${e.text}` : e.type === 'unhandledrejection' ? `unhandled rejection: ${e.text}` : e.text;
  page.consoleErrors = async () =>
    (await all()).filter((e) => ['console.error', 'pageerror', 'unhandledrejection'].includes(e.type)).map(show);
  page.consoleLines = async () => (await all()).map((e) => `${e.type.replace(/^console\./, '')}: ${e.text}`);
  page.cspViolations = async () => (await all()).filter((e) => e.type === 'csp').map((e) => e.text);
  page.unhandledRejections = async () => (await all()).filter((e) => e.type === 'unhandledrejection').map((e) => e.text);
  const expected = [];
  page.expectProblems = (...patterns) => expected.push(...patterns);
  page.unexpectedProblems = async () => {
    const problems = [...(await page.consoleErrors()), ...(await page.cspViolations()).map((v) => `csp: ${v}`)];
    return problems.filter((p) => !expected.some((x) => (x instanceof RegExp ? x.test(p) : p.includes(x))));
  };
  page.label = `tab ${++pageCount}`;
  return page;
}

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Lands on the shop (`/?ref=...` or plain), waits for the tracker to have captured what it can,
 * and returns `{ tag, visitor }` as the page's banner shows them.
 */
export async function land(page, url) {
  await page.goto(url);
  const banner = '#attribution:not([hidden])';
  await page.waitForSelector(banner, { timeoutMs: 15000, visible: true });
  return {
    tag: await page.getAttribute(banner, 'data-tag'),
    visitor: await page.getAttribute(banner, 'data-visitor'),
  };
}

/**
 * From the landing page: product → checkout → the chosen thank-you page. Returns
 * `{ orderId, status, total }` where status is the thank-you page's `#result[data-status]`.
 */
export async function buy(page, integration, { quantity = 2, email = 'ann@example.com', name = 'Ann Example' } = {}) {
  // On each page the creator banner appears once the tracker is ready, and moves what is below it:
  // click only after it is there (WebKit's WebDriver clicks where the element was; a click that
  // lands as the layout shifts misses the link).
  const banner = () => page.waitForSelector('#attribution:not([hidden])', { timeoutMs: 15000, visible: true });
  await banner();
  await page.click('#shop-now');
  await page.waitForURL(/product\.html/);
  await banner();
  await page.click('#buy');
  await page.waitForURL(/checkout\.html/);
  await banner();
  await page.fill('input[name=email]', email);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=quantity]', String(quantity));
  await page.check(`input[name=integration][value=${integration}]`);
  await page.click('#place-order');
  await page.waitForURL(new RegExp(`thanks-${integration}\\.html\\?order=`));
  const orderId = new URL(await page.url()).searchParams.get('order');
  await page.waitForSelector('#result[data-status]', { timeoutMs: 15000, visible: true });
  return { orderId, status: await page.getAttribute('#result', 'data-status'), total: 4999 * quantity };
}
