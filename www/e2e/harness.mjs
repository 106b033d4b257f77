// The e2e harness: the real salebeacon-sandbox and salebeacon-proxy binaries on free ports with a
// temporary outbox, the demo site (served by the proxy itself when it can, else by serve.mjs in
// front of the proxy), and Chromium through playwright-core.
//
// It builds nothing: it expects pkg/ (`cargo xtask build`) and the release binaries
// (`cargo build --release -p salebeacon-proxy -p salebeacon-sandbox`). `cargo xtask test` builds
// both first. Environment: SALEBEACON_ROOT (repo), SALEBEACON_PKG (pkg/), SALEBEACON_BIN_DIR
// (where the binaries are; default target/release), CHROMIUM (default /usr/bin/chromium),
// SALEBEACON_E2E_FRONT=1 (always serve the site with serve.mjs), SALEBEACON_E2E_LOGS=1 (echo
// the binaries' logs).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startFront } from './serve.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
export const ROOT = path.resolve(process.env.SALEBEACON_ROOT || path.join(here, '../..'));
export const PKG = path.resolve(process.env.SALEBEACON_PKG || path.join(ROOT, 'pkg'));
export const SITE = path.join(ROOT, 'www', 'demo');
const BIN_DIR = path.resolve(
  process.env.SALEBEACON_BIN_DIR ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'release'),
);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BASE = '/salebeacon';

function bin(name) {
  const p = path.join(BIN_DIR, name);
  if (!fs.existsSync(p)) {
    throw new Error(
      `${p} is missing: run \`cargo build --release -p salebeacon-proxy -p salebeacon-sandbox\` (cargo xtask test does)`,
    );
  }
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
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Spawns a binary; resolves when `ready` matches a line of its output (stdout or stderr). */
function startProcess(name, file, args, env, ready, logFile) {
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(logFile);
  let buffer = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within 15 s; its log: ${logFile}\n${buffer.slice(-2000)}`));
    }, 15000);
    const onData = (chunk) => {
      const text = chunk.toString();
      log.write(text);
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
    child.on('exit', (code, signal) => {
      if (buffer !== null) {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${buffer.slice(-2000)}`));
      }
    });
  });
}

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

/** Whether the proxy binary can serve the package and the site itself. */
function proxyServesStatic(proxyBin) {
  if (process.env.SALEBEACON_E2E_FRONT) return false;
  const help = spawnSync(proxyBin, ['--help'], { encoding: 'utf8' }).stdout || '';
  return help.includes('--static-dir') && help.includes('--site-dir');
}

/**
 * Starts sandbox + proxy + site + Chromium. Options: `proxyArgs` (extra flags), `proxyEnv` (extra
 * environment for the proxy, e.g. SALEBEACON_ORDER_TOKEN_SECRET), `sitePages` (`{ 'dir/x.html':
 * '<html>...' }`: extra pages served with the demo site, from a temporary copy of it). Returns the
 * stack: `site` (origin of the shop), `siteFor(host)`, `newPage()`, `sandbox.*`, `proxy.*`
 * (including `proxy.stop()` / `proxy.start()`: the proxy down and up again on the same port with
 * the same outbox), `stop()`.
 */
export async function startStack({ proxyArgs = [], proxyEnv = {}, sitePages = null } = {}) {
  requirePkg();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'salebeacon-e2e-'));
  const apiKey = 'sk_test_' + crypto.randomBytes(12).toString('hex');
  const adminToken = crypto.randomBytes(18).toString('hex');
  const stack = { tmp, adminToken, children: [], contexts: [] };
  try {
    const sandbox = await startProcess(
      'sandbox',
      bin('salebeacon-sandbox'),
      ['--listen', '127.0.0.1:0', '--api-key', apiKey, '--min-interval-ms', '200'],
      {},
      /listening on (http:\/\/\S+)/,
      path.join(tmp, 'sandbox.log'),
    );
    stack.children.push(sandbox.child);
    const apiBase = sandbox.match[1];
    const sandboxOrigin = new URL(apiBase).origin;

    let siteDir = SITE;
    if (sitePages) {
      siteDir = path.join(tmp, 'site');
      fs.cpSync(SITE, siteDir, { recursive: true });
      for (const [rel, text] of Object.entries(sitePages)) {
        const file = path.join(siteDir, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
      }
    }

    const proxyBin = bin('salebeacon-proxy');
    const direct = proxyServesStatic(proxyBin);
    const proxyArgsFor = (listen, extra) => [
      '--listen', listen,
      '--upstream', apiBase,
      '--db', path.join(tmp, 'outbox.sqlite3'),
      '--db-sync', 'normal',
      '--pace-ms', '200',
      '--backoff-base-ms', '200',
      '--rate-limit-per-minute', '0',
      ...(direct ? ['--static-dir', PKG, '--site-dir', siteDir] : []),
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
      /listening on (http:\/\/\S+)/,
      proxyLog,
    );
    stack.children.push(proxy.child);
    let proxyChild = proxy.child;
    const proxyOrigin = new URL(proxy.match[1]).origin;
    const proxyListen = new URL(proxyOrigin).host;
    /** Proxy runs so far: run 1 logs to proxy.log, run N to proxy.log.N. */
    let proxyRuns = 1;

    let siteOrigin = proxyOrigin;
    if (!direct) {
      stack.front = await startFront({
        pkgDir: PKG,
        siteDir,
        proxyUrl: proxyOrigin,
        sandboxUrl: sandboxOrigin,
        adminToken,
        basePath: BASE,
      });
      siteOrigin = stack.front.url;
    }
    const port = new URL(siteOrigin).port;

    stack.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
        '--host-resolver-rules=MAP *.shop.test 127.0.0.1, MAP shop.test 127.0.0.1',
      ],
    });

    Object.assign(stack, {
      mode: direct ? 'proxy serves the site' : 'serve.mjs in front of the proxy',
      site: siteOrigin,
      /** The shop under another host name (resolved to 127.0.0.1 by Chromium). */
      siteFor: (host) => `http://${host}:${port}`,
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
                /listening on (http:\/\/\S+)/,
                `${proxyLog}.${proxyRuns}`,
              );
              proxyChild = again.child;
              stack.children.splice(1, 0, again.child);
              return;
            } catch (e) {
              lastError = e;
              await new Promise((r) => setTimeout(r, 100));
            }
          }
          throw lastError;
        },
      },
      /**
       * A page in a fresh browser context (its own cookies and storage), or with `{ context }`
       * another tab of an existing context. Console errors and CSP
       * violations are collected in `page.consoleErrors` / `page.cspViolations()`.
       */
      async newPage({ context: shared } = {}) {
        // `context`: another tab of that page's context (same cookies and storage).
        let context = shared;
        if (!context) {
          context = await stack.browser.newContext();
          stack.contexts.push(context);
          // The demo pages ask the sandbox what "Growi" holds; tell them where this one is.
          await context.addInitScript((sandbox) => {
            try {
              localStorage.setItem('demo:sandbox', sandbox);
            } catch (_) {}
          }, sandboxOrigin);
          await context.addInitScript(() => {
            window.__csp = [];
            window.__unhandled = [];
            document.addEventListener('securitypolicyviolation', (e) =>
              window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
            );
            window.addEventListener('unhandledrejection', (e) =>
              window.__unhandled.push(String((e.reason && e.reason.message) || e.reason)),
            );
          });
        }
        const page = await context.newPage();
        page.consoleErrors = [];
        page.consoleLines = [];
        page.on('console', (m) => {
          page.consoleLines.push(`${m.type()}: ${m.text()}`);
          if (m.type() === 'error') page.consoleErrors.push(m.text());
        });
        page.on('pageerror', (e) => page.consoleErrors.push(`uncaught: ${e.message}`));
        page.cspViolations = () => page.evaluate(() => window.__csp || []);
        /** Unhandled promise rejections the page raised (what error monitors report). */
        page.unhandledRejections = () => page.evaluate(() => window.__unhandled || []);
        return page;
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
  if (!stack) return;
  for (const c of stack.contexts || []) await c.close().catch(() => {});
  if (stack.browser) await stack.browser.close().catch(() => {});
  if (stack.front) await stack.front.close().catch(() => {});
  for (const child of [...(stack.children || [])].reverse()) await stopProcess(child);
  if (stack.tmp && !process.env.SALEBEACON_E2E_KEEP) fs.rmSync(stack.tmp, { recursive: true, force: true });
}

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Lands on the shop (`/?ref=...` or plain), waits for the tracker to have captured what it can,
 * and returns `{ tag, visitor }` as the page's banner shows them.
 */
export async function land(page, url) {
  await page.goto(url);
  const banner = page.locator('#attribution:not([hidden])');
  await banner.waitFor({ timeout: 15000 });
  return {
    tag: await banner.getAttribute('data-tag'),
    visitor: await banner.getAttribute('data-visitor'),
  };
}

/**
 * From the landing page: product → checkout → the chosen thank-you page. Returns
 * `{ orderId, status, total }` where status is the thank-you page's `#result[data-status]`.
 */
export async function buy(page, integration, { quantity = 2, email = 'ann@example.com', name = 'Ann Example' } = {}) {
  await page.click('#shop-now');
  await page.waitForURL(/product\.html/);
  await page.click('#buy');
  await page.waitForURL(/checkout\.html/);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=quantity]', String(quantity));
  await page.check(`input[name=integration][value=${integration}]`);
  await page.click('#place-order');
  await page.waitForURL(new RegExp(`thanks-${integration}\\.html\\?order=`));
  const orderId = new URL(page.url()).searchParams.get('order');
  const result = page.locator('#result[data-status]');
  await result.waitFor({ timeout: 15000 });
  return { orderId, status: await result.getAttribute('data-status'), total: 4999 * quantity };
}
