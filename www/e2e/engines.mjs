// One small API to drive Chromium, Firefox and WebKit from the end-to-end tests, with only what
// Debian 12 and the npm registry provide (see ENGINES.md for what each engine can and cannot do):
//
//   chromium  /usr/bin/chromium        through playwright-core (CDP)
//   firefox   /usr/bin/firefox-esr     through puppeteer-core (WebDriver BiDi)
//   webkit    WebKitGTK's MiniBrowser  through WebKitWebDriver + selenium-webdriver, under Xvfb
//
//   const engine = await launchEngine('webkit');
//   const context = await engine.newContext();     // own cookies and storage
//   const page = await context.newPage();          // a tab; more tabs share the context's storage
//   await page.goto('http://shop.test:8080/');     // shop.test and *.shop.test → 127.0.0.1
//   await page.close();                            // closes the tab as a user would: pagehide fires
//   await engine.close();                          // stops every process it started, and waits
//
// Every process this module starts is a child of this Node process, stopped by its pid and waited
// for (PID 1 of these machines does not reap orphans promptly). Chromium and WebKit's driver run as
// PID 1 of their own PID namespace (`unshare --pid --fork`, where it works), so the helper
// processes they fork (crash handler, zygotes, MiniBrowser, WebKit web/network processes) go with
// them and are reaped by the kernel. `closeAllEngines()` / `stopOnSignals()` stop whatever is open.
//
// Environment: CHROMIUM (default /usr/bin/chromium), FIREFOX (default /usr/bin/firefox-esr),
// WEBKIT_MINIBROWSER (default /usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser),
// WEBKIT_WEBDRIVER (default WebKitWebDriver), SALEBEACON_ENGINES_DEBUG=1 (echo process output).
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ENGINES = ['chromium', 'firefox', 'webkit'];

/** Host names the tests use; each entry maps the domain and all its subdomains to 127.0.0.1. */
export const DEFAULT_MAPPED_DOMAINS = ['shop.test'];

const DEBUG = !!process.env.SALEBEACON_ENGINES_DEBUG;
const DEFAULT_TIMEOUT_MS = 15000;
const NAV_TIMEOUT_MS = 30000;
/** Playwright's default viewport; Firefox and WebKit windows are sized to match. */
const VIEWPORT = { width: 1280, height: 720 };

// ---------------------------------------------------------------------------------------------
// Console and page errors, engine-independent: a script that runs first in the page.

const INSTRUMENTATION = `(function () {
  if (window.__sbLog) return;
  var log = [];
  Object.defineProperty(window, '__sbLog', { value: log, configurable: true });
  var push = function (type, text) { if (log.length < 1000) log.push({ type: type, text: String(text) }); };
  var show = function (v) {
    if (v instanceof Error) return v.stack && v.stack.indexOf(v.message) >= 0 ? v.message : String(v);
    if (typeof v === 'string') return v;
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  };
  ['error', 'warn', 'info', 'log'].forEach(function (level) {
    var orig = console[level];
    if (typeof orig !== 'function') return;
    console[level] = function () {
      try { push('console.' + level, Array.prototype.map.call(arguments, show).join(' ')); } catch (e) {}
      return orig.apply(this, arguments);
    };
  });
  window.addEventListener('error', function (e) {
    if (!(e instanceof ErrorEvent)) return;
    push('pageerror', e.error instanceof Error ? e.error.message : e.message);
  });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    push('unhandledrejection', r instanceof Error ? r.message : show(r));
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    push('csp', e.violatedDirective + ' ' + e.blockedURI);
  });
})();`;

/**
 * The JavaScript source that records `console.*` calls, uncaught errors, unhandled promise
 * rejections and CSP violations into `window.__sbLog` (`[{ type, text }]`, type one of
 * `console.error`, `console.warn`, `console.info`, `console.log`, `pageerror`,
 * `unhandledrejection`, `csp` with text `<directive> <blocked URI>`). A test server puts it first
 * in every HTML page it serves: `<script>${instrumentationScript()}</script>`, and adds
 * `instrumentationScriptHash()` to the page's CSP script-src when it has one.
 */
export function instrumentationScript() {
  return INSTRUMENTATION;
}

/** The CSP source expression (`'sha256-…'`) that allows the inline instrumentation script. */
export function instrumentationScriptHash() {
  return `'sha256-${crypto.createHash('sha256').update(INSTRUMENTATION).digest('base64')}'`;
}

const ERROR_TYPES = new Set(['console.error', 'pageerror', 'unhandledrejection']);

// ---------------------------------------------------------------------------------------------
// Processes: started as children of this process, stopped by pid and waited for.

const liveEngines = new Set();

function spawnChild(name, file, args, { env = {}, stdio = ['ignore', 'pipe', 'pipe'] } = {}) {
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio });
  child.label = name;
  child.output = '';
  const keep = (chunk) => {
    const text = chunk.toString();
    if (child.output.length < 64 * 1024) child.output += text;
    if (DEBUG) process.stderr.write(`[${name} ${child.pid}] ${text}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('error', (e) => {
    child.spawnError = e;
  });
  return child;
}

function running(child) {
  return child && child.exitCode === null && child.signalCode === null && !child.spawnError && child.pid;
}

/** SIGTERM (or `signal`; null: none), SIGKILL after `graceMs`, then waits for the exit (bounded). */
async function stopChild(child, { signal = 'SIGTERM', graceMs = 3000 } = {}) {
  if (!child || !child.pid) return;
  if (signal && running(child)) {
    try {
      process.kill(child.pid, signal);
    } catch {}
  }
  const killer = setTimeout(() => {
    try {
      if (running(child)) process.kill(child.pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await Promise.race([child.exited, deadline(graceMs + 5000)]);
  clearTimeout(killer);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * A bound for `Promise.race`: resolves after `ms` without keeping the process alive (a plain
 * `sleep` here would hold Node's exit for its whole length after the race is won).
 */
const deadline = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/** Pids of the live processes whose parent is `pid` (from /proc). */
function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(d));
    } catch {}
  }
  return out;
}

let pidNamespaces;
/**
 * Whether `unshare --pid --fork` works here (root, or user namespaces allowed). A browser run as
 * PID 1 of its own PID namespace takes every helper process it forked (crash handler, zygotes,
 * WebKit's web and network processes) with it when it exits, and the kernel reaps them all: none
 * of them is left to this machine's PID 1, which does not reap orphans.
 */
function canUsePidNamespace() {
  if (pidNamespaces === undefined) {
    const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child=SIGKILL', 'true'], { stdio: 'ignore', timeout: 5000 });
    pidNamespaces = r.status === 0;
  }
  return pidNamespaces;
}

/** An executable script that runs `file` as PID 1 of a new PID namespace (or plainly without). */
function pidNamespaceWrapper(dir, name, file) {
  const wrapper = path.join(dir, name);
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec unshare --pid --fork --kill-child=SIGKILL ${JSON.stringify(file)} "$@"\n`, { mode: 0o755 });
  return wrapper;
}

/**
 * Stops a process started through `unshare --pid --fork`: SIGKILL to the namespace's PID 1 (the
 * only signal it cannot ignore), so that unshare reaps it and exits, then waits for unshare.
 */
async function stopNamespaced(child) {
  if (!running(child)) return stopChild(child);
  for (const pid of childPids(child.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await stopChild(child, { signal: null, graceMs: 3000 });
}

/** Rejects with `what timed out` after `ms`; `onTimeout` runs first (to unblock what hangs). */
async function withTimeout(promise, ms, what, onTimeout) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(async () => {
      try {
        await onTimeout?.();
      } catch {}
      reject(new Error(`${what} timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => srv.listen(0, '127.0.0.1', resolve).once('error', reject));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function waitForPort(port, timeoutMs, child) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (child && !running(child)) throw new Error(`${child.label} exited before it listened: ${child.output.slice(-1500)}`);
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function mappedHost(domains) {
  return (host) => {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    return domains.some((d) => h === d || h.endsWith(`.${d}`));
  };
}

/** Whether a cookie (Playwright/CDP shape: a leading dot on domain cookies) is sent to `url`. */
export function cookieMatchesUrl(cookie, url) {
  const u = new URL(url);
  const host = u.hostname.toLowerCase();
  const domain = String(cookie.domain || '').toLowerCase();
  const hostOnly = cookie.hostOnly ?? !domain.startsWith('.');
  const bare = domain.replace(/^\./, '');
  if (hostOnly ? host !== bare : !(host === bare || host.endsWith(`.${bare}`))) return false;
  const cpath = cookie.path || '/';
  const upath = u.pathname || '/';
  if (!(upath === cpath || (upath.startsWith(cpath) && (cpath.endsWith('/') || upath[cpath.length] === '/')))) return false;
  if (cookie.secure && u.protocol !== 'https:' && host !== 'localhost' && host !== '127.0.0.1') return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The page API every engine shares. Engine adapters implement the methods marked "primitive".

class Page {
  constructor(context) {
    this.context = context;
    this.engine = context.engine;
    this.closed = false;
  }

  // primitive: goto(url, {timeoutMs}), reload({timeoutMs}), url(), evaluate(fn, arg),
  // click(selector, {timeoutMs}), fill(selector, text, {timeoutMs}), _screenshot() → Buffer,
  // close()

  /** Polls `fn(arg)` in the page until it returns a truthy value; returns that value. */
  async waitForFunction(fn, arg, { timeoutMs = DEFAULT_TIMEOUT_MS, intervalMs = 100 } = {}) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        const v = await this.evaluate(fn, arg);
        if (v) return v;
        last = v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) {
        const why = last instanceof Error ? last.message : JSON.stringify(last);
        throw new Error(`waitForFunction timed out after ${timeoutMs} ms (last: ${why}) on ${this.engine.name}`);
      }
      await sleep(intervalMs);
    }
  }

  /** Waits until `selector` matches an element (a visible one with `{ visible: true }`). */
  async waitForSelector(selector, { timeoutMs = DEFAULT_TIMEOUT_MS, visible = false } = {}) {
    try {
      await this.waitForFunction(
        ({ selector, visible }) => {
          const el = document.querySelector(selector);
          if (!el) return false;
          if (!visible) return true;
          const style = getComputedStyle(el);
          const r = el.getBoundingClientRect();
          return style.visibility !== 'hidden' && style.display !== 'none' && r.width > 0 && r.height > 0;
        },
        { selector, visible },
        { timeoutMs },
      );
    } catch (e) {
      throw new Error(`waitForSelector(${JSON.stringify(selector)}${visible ? ', visible' : ''}) timed out after ${timeoutMs} ms on ${this.engine.name}`);
    }
  }

  /** The attribute of the first element matching `selector` (waits for it), or null. */
  async getAttribute(selector, name, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    await this.waitForSelector(selector, { timeoutMs });
    return this.evaluate(({ selector, name }) => document.querySelector(selector)?.getAttribute(name) ?? null, { selector, name });
  }

  /** The textContent of the first element matching `selector` (waits for it). */
  async textContent(selector, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    await this.waitForSelector(selector, { timeoutMs });
    return this.evaluate((selector) => document.querySelector(selector)?.textContent ?? null, selector);
  }

  /** Clicks a checkbox or radio button unless it is already checked. */
  async check(selector, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    await this.waitForSelector(selector, { timeoutMs, visible: true });
    const checked = () => this.evaluate((s) => !!document.querySelector(s)?.checked, selector);
    if (!(await checked())) await this.click(selector, { timeoutMs });
    if (!(await checked())) throw new Error(`check(${JSON.stringify(selector)}): still not checked on ${this.engine.name}`);
  }

  /** Waits until the URL matches (RegExp, or string equality) and the document has loaded. */
  async waitForURL(pattern, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const end = Date.now() + timeoutMs;
    const matches = (u) => (pattern instanceof RegExp ? pattern.test(u) : u === String(pattern));
    let last = '';
    for (;;) {
      try {
        last = await this.url();
        if (matches(last)) {
          const state = await this.evaluate(() => document.readyState);
          if (state === 'complete') return;
        }
      } catch {}
      if (Date.now() > end) throw new Error(`waitForURL(${pattern}) timed out after ${timeoutMs} ms on ${this.engine.name} (at ${last})`);
      await sleep(100);
    }
  }

  /** Writes a PNG of the viewport to `file`, after two animation frames (fresh paint). */
  async screenshot(file) {
    await this.evaluate(() =>
      Promise.race([
        new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))),
        new Promise((r) => setTimeout(() => r(false), 1000)),
      ]),
    ).catch(() => {});
    const png = await this._screenshot();
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fs.writeFileSync(file, png);
    return file;
  }

  /**
   * Every `window.__sbLog` entry of the current document (`[]` without instrumentation). The log
   * lives in the document: a navigation starts a new one (read it before leaving a page).
   */
  async consoleLog() {
    return (await this.evaluate(() => (Array.isArray(window.__sbLog) ? window.__sbLog.slice() : []))) || [];
  }

  /** console.error calls, uncaught errors and unhandled rejections of the current document. */
  async consoleErrors() {
    return (await this.consoleLog()).filter((e) => ERROR_TYPES.has(e.type));
  }

  /** CSP violations of the current document, `'<directive> <blocked URI>'` each. */
  async cspViolations() {
    return (await this.consoleLog()).filter((e) => e.type === 'csp').map((e) => e.text);
  }

  /** Native console messages `{type, text}` since the page opened (capabilities.consoleEvents). */
  nativeConsole() {
    unsupported(this.engine, 'consoleEvents', 'native console events');
  }

  /** Calls `cb({ method, url, postData })` for every request (capabilities.requestEvents). */
  onRequest() {
    unsupported(this.engine, 'requestEvents', 'request events');
  }
}

/**
 * Something that starts processes or sessions and must stop them: `track(fn)` registers a
 * cleanup; `close()` (idempotent, awaitable) runs the cleanups, last first. When close() comes
 * while it is still starting (`ready` not settled), it stops what has started, then waits for the
 * start to give up; a cleanup registered after close() runs at once and the start fails.
 */
class Owner {
  constructor() {
    this.cleanups = [];
    this.finally = []; // run once everything has stopped (e.g. removing a profile folder)
    this.closed = false;
    this.ready = null;
  }

  async track(fn) {
    if (this.closed) {
      await Promise.resolve().then(fn).catch(() => {});
      throw new Error(`${this.label} was closed while it started`);
    }
    this.cleanups.push(fn);
  }

  async _runCleanups() {
    while (this.cleanups.length) {
      const fn = this.cleanups.pop();
      try {
        await fn();
      } catch {}
    }
  }

  close() {
    this._closing ??= (async () => {
      this.closed = true;
      await this._beforeCleanups?.();
      await this._runCleanups();
      if (this.ready) await Promise.race([this.ready.catch(() => {}), deadline(90000)]);
      await this._runCleanups();
      for (const fn of this.finally) {
        try {
          await fn();
        } catch {}
      }
      this._afterClose?.();
    })();
    return this._closing;
  }
}

class Context extends Owner {
  constructor(engine) {
    super();
    this.engine = engine;
    this.label = `a ${engine.name} context`;
    this.pages = new Set();
  }

  // Set by the engine: newPage(), cookies(url), addCookies(cookies); where supported
  // setOffline(bool), addInitScript(fn | string).

  setOffline() {
    unsupported(this.engine, 'offline', 'offline emulation');
  }

  addInitScript() {
    unsupported(this.engine, 'initScripts', 'init scripts');
  }

  _afterClose() {
    this.engine.contexts.delete(this);
  }
}

function unsupported(engine, capability, what) {
  throw new Error(`${engine.name}: ${what} not supported by this engine's driver (capabilities.${capability} is false)`);
}

class Engine extends Owner {
  constructor(name) {
    super();
    this.name = name;
    this.label = name;
    this.capabilities = {};
    this.hostMapping = null;
    this.contexts = new Set();
    this.version = null;
    this.startupMs = null;
    liveEngines.add(this);
  }

  /** A fresh, isolated profile: its own cookies, storage and cache. */
  async newContext() {
    if (this.closed) throw new Error(`${this.name} is closed`);
    const context = new Context(this);
    this.contexts.add(context);
    context.ready = this._startContext(context);
    try {
      await context.ready;
    } catch (e) {
      await context.close();
      throw e;
    }
    return context;
  }

  async _beforeCleanups() {
    await Promise.all([...this.contexts].map((c) => c.close()));
  }

  _afterClose() {
    liveEngines.delete(this);
  }
}

// ---------------------------------------------------------------------------------------------
// Chromium: playwright-core over CDP.

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

// Signals are handled by whoever uses this module (see stopOnSignals), not by the driver
// libraries: theirs would exit the process before the other engines are stopped.
const NO_SIGNAL_HANDLERS = { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false };

async function launchChromium(engine, { domains }) {
  const { chromium } = await import('playwright-core');
  const rules = domains.flatMap((d) => [`MAP *.${d} 127.0.0.1`, `MAP ${d} 127.0.0.1`]).join(', ');
  engine.capabilities = Object.freeze({
    multipleTabs: true, cookiesApi: true, addCookies: true, requestEvents: true, offline: true,
    initScripts: true, consoleEvents: true, cdp: true,
  });
  engine.hostMapping = `--host-resolver-rules=${rules}`;
  const binary = process.env.CHROMIUM || '/usr/bin/chromium';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-chromium-'));
  engine.finally.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  engine.pidNamespace = canUsePidNamespace();
  const browser = await chromium.launch({
    executablePath: engine.pidNamespace ? pidNamespaceWrapper(tmp, 'chromium', binary) : binary,
    headless: true,
    timeout: 60000,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=${rules}`],
    ...NO_SIGNAL_HANDLERS,
  });
  // Playwright closes the browser and waits for its process (SIGKILL after its own timeout).
  await engine.track(() => withTimeout(browser.close(), 20000, 'closing chromium'));
  engine.version = `Chromium ${browser.version()}`;
  engine.native = browser;
  engine._startContext = async (context) => {
    const pw = await browser.newContext();
    await context.track(() => pw.close());
    context.native = pw;
    context.newPage = async () => wrapPlaywrightPage(context, await pw.newPage());
    context.cookies = async (url) => normCookies(await pw.cookies(url ? [url] : undefined));
    context.addCookies = (cookies) => pw.addCookies(cookies);
    context.setOffline = (offline) => pw.setOffline(!!offline);
    context.addInitScript = (script) => pw.addInitScript(script);
  };
}

function wrapPlaywrightPage(context, pw) {
  const page = new Page(context);
  page.native = pw;
  context.pages.add(page);
  const consoleLines = [];
  pw.on('console', (m) => consoleLines.push({ type: m.type(), text: m.text() }));
  pw.on('pageerror', (e) => consoleLines.push({ type: 'pageerror', text: e.message }));
  pw.on('close', () => {
    page.closed = true;
    context.pages.delete(page);
  });
  Object.assign(page, {
    goto: async (url, { timeoutMs = NAV_TIMEOUT_MS } = {}) => {
      await pw.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    },
    reload: async ({ timeoutMs = NAV_TIMEOUT_MS } = {}) => {
      await pw.reload({ waitUntil: 'load', timeout: timeoutMs });
    },
    url: async () => pw.url(),
    evaluate: (fn, arg) => pw.evaluate(fn, arg),
    click: (selector, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => pw.click(selector, { timeout: timeoutMs }),
    fill: (selector, text, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => pw.fill(selector, String(text), { timeout: timeoutMs }),
    _screenshot: () => pw.screenshot({ type: 'png' }),
    // Playwright's close() (CDP Target.closeTarget) runs the page's unload steps: pagehide and
    // visibilitychange fire; runBeforeUnload is not needed for them.
    close: async () => {
      if (page.closed) return;
      page.closed = true;
      context.pages.delete(page);
      await withTimeout(pw.close(), 15000, 'closing a chromium tab');
    },
    nativeConsole: () => consoleLines.slice(),
    onRequest: (cb) =>
      pw.on('request', (r) => cb({ method: r.method(), url: r.url(), postData: r.postData() ?? undefined })),
  });
  return page;
}

// ---------------------------------------------------------------------------------------------
// Firefox: puppeteer-core over WebDriver BiDi.

async function launchFirefox(engine, { domains, hosts }) {
  const { default: puppeteer } = await import('puppeteer-core');
  // network.dns.localDomains resolves the listed names to loopback: exact names, no wildcards.
  const names = [...new Set([...domains, ...hosts])];
  const capabilities = {
    multipleTabs: true, cookiesApi: true, addCookies: true, requestEvents: true, offline: true,
    initScripts: true, consoleEvents: true, cdp: false,
  };
  engine.capabilities = Object.freeze({ ...capabilities });
  engine.hostMapping = `network.dns.localDomains=${names.join(',')}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-firefox-'));
  engine.finally.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: profile,
    timeout: 60000,
    protocolTimeout: 60000,
    dumpio: DEBUG,
    defaultViewport: { width: VIEWPORT.width, height: VIEWPORT.height },
    ...NO_SIGNAL_HANDLERS,
    extraPrefsFirefox: {
      'network.dns.localDomains': names.join(','),
      // No IPv6 answer for the mapped names: the test servers listen on 127.0.0.1 only.
      'network.dns.disableIPv6': true,
      'app.update.enabled': false,
      'browser.shell.checkDefaultBrowser': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
    },
  });
  const proc = browser.process();
  await engine.track(async () => {
    await withTimeout(browser.close(), 20000, 'closing firefox').catch(() => {});
    if (running(proc)) {
      proc.kill('SIGKILL');
      await Promise.race([new Promise((r) => proc.once('exit', r)), deadline(10000)]);
    }
  });
  engine.version = await browser.version();
  // emulation.setNetworkConditions (offline) is in Firefox ESR 153 and not in ESR 140 (the
  // firefox-esr Debian 12 installs on some machines: "unknown command"); below 153 the tests go
  // offline the WebKit way, through the test server.
  const major = Number((/(\d+)\./.exec(engine.version) || [])[1]) || 0;
  engine.capabilities = Object.freeze({ ...capabilities, offline: major >= 153 });
  engine.native = browser;
  engine._startContext = async (context) => {
    const pc = await browser.createBrowserContext();
    await context.track(() => withTimeout(pc.close(), 15000, 'closing a firefox context'));
    context.native = pc;
    context.offline = false;
    context.initScripts = [];
    context.newPage = async () => {
      const pp = await pc.newPage();
      for (const s of context.initScripts) await pp.evaluateOnNewDocument(s);
      if (context.offline) await pp.setOfflineMode(true);
      return wrapPuppeteerPage(context, pp);
    };
    context.cookies = async (url) => {
      const all = normCookies(await pc.cookies());
      return url ? all.filter((c) => cookieMatchesUrl(c, url)) : all;
    };
    context.addCookies = async (cookies) =>
      pc.setCookie(
        ...cookies.map((c) => {
          const out = { ...c };
          if (c.url && !c.domain) {
            out.domain = new URL(c.url).hostname;
            out.path = c.path || '/';
          }
          delete out.url;
          return out;
        }),
      );
    // WebDriver BiDi emulation.setNetworkConditions, per tab: applied to every tab of the
    // context, and to the tabs it opens later.
    context.setOffline = async (offline) => {
      context.offline = !!offline;
      for (const p of context.pages) await p.native.setOfflineMode(context.offline);
    };
    context.addInitScript = async (script) => {
      context.initScripts.push(script);
      for (const p of context.pages) await p.native.evaluateOnNewDocument(script);
    };
  };
}

function wrapPuppeteerPage(context, pp) {
  const page = new Page(context);
  page.native = pp;
  context.pages.add(page);
  pp.setDefaultTimeout(DEFAULT_TIMEOUT_MS);
  pp.setDefaultNavigationTimeout(NAV_TIMEOUT_MS);
  const consoleLines = [];
  pp.on('console', (m) => consoleLines.push({ type: m.type(), text: m.text() }));
  pp.on('pageerror', (e) => consoleLines.push({ type: 'pageerror', text: e?.message ?? String(e) }));
  pp.on('close', () => {
    page.closed = true;
    context.pages.delete(page);
  });
  Object.assign(page, {
    goto: async (url, { timeoutMs = NAV_TIMEOUT_MS } = {}) => {
      await pp.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    },
    reload: async ({ timeoutMs = NAV_TIMEOUT_MS } = {}) => {
      await pp.reload({ waitUntil: 'load', timeout: timeoutMs });
    },
    url: async () => pp.url(),
    evaluate: (fn, arg) => (arg === undefined ? pp.evaluate(fn) : pp.evaluate(fn, arg)),
    click: async (selector, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => {
      await page.waitForSelector(selector, { timeoutMs, visible: true });
      await pp.click(selector);
    },
    fill: async (selector, text, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => {
      await page.waitForSelector(selector, { timeoutMs, visible: true });
      // Focused and selected in the page, then typed as keys: puppeteer's locator fill() never
      // settles in Firefox ESR 140 (Debian 12's firefox-esr on some machines).
      await pp.$eval(selector, (el) => (el.focus(), el.select && el.select()));
      await pp.type(selector, String(text));
    },
    _screenshot: async () => Buffer.from(await pp.screenshot({ type: 'png' })),
    // BiDi browsingContext.close: the tab goes as if the user closed it; pagehide fires.
    close: async () => {
      if (page.closed) return;
      page.closed = true;
      context.pages.delete(page);
      await withTimeout(pp.close(), 15000, 'closing a firefox tab');
    },
    nativeConsole: () => consoleLines.slice(),
    onRequest: (cb) =>
      pp.on('request', (r) => {
        let postData;
        try {
          postData = r.postData();
        } catch {}
        cb({ method: r.method(), url: r.url(), postData });
      }),
  });
  return page;
}

// ---------------------------------------------------------------------------------------------
// WebKit: WebKitGTK's MiniBrowser through WebKitWebDriver (W3C WebDriver classic), under Xvfb.
// One driver process (PID 1 of its own PID namespace) and one WebDriver session per context.

const MINIBROWSER = process.env.WEBKIT_MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const WEBKIT_DRIVER = process.env.WEBKIT_WEBDRIVER || 'WebKitWebDriver';

/** An HTTP proxy on 127.0.0.1 that sends requests for the mapped names to 127.0.0.1 (same port). */
async function startMappingProxy(isMapped) {
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let target;
    try {
      target = new URL(req.url);
    } catch {
      res.writeHead(400).end('engines proxy: absolute URL expected');
      return;
    }
    if (DEBUG) process.stderr.write(`[engines proxy] ${req.method} ${req.url}\n`);
    if (target.protocol !== 'http:' || !isMapped(target.hostname)) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`engines proxy: ${target.host} is not mapped`);
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const up = http.request(
      {
        host: '127.0.0.1',
        port: Number(target.port || 80),
        method: req.method,
        path: target.pathname + target.search,
        headers,
        agent: false,
      },
      (ur) => {
        const raw = [];
        for (let i = 0; i < ur.rawHeaders.length; i += 2) {
          const k = ur.rawHeaders[i].toLowerCase();
          if (k === 'connection' || k === 'keep-alive') continue;
          raw.push(ur.rawHeaders[i], ur.rawHeaders[i + 1]);
        }
        res.writeHead(ur.statusCode, ur.statusMessage, raw);
        ur.pipe(res);
      },
    );
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`engines proxy: ${e.message}`);
    });
    req.pipe(up);
  });
  server.on('connect', (req, sock, head) => {
    const m = /^(.*):(\d+)$/.exec(req.url || '');
    if (!m || !isMapped(m[1])) {
      sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    const up = net.connect(Number(m[2]), '127.0.0.1', () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head?.length) up.write(head);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  return {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startXvfb(owner) {
  const child = spawnChild('Xvfb', 'Xvfb', ['-displayfd', '1', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp']);
  await owner.track(() => stopChild(child));
  const display = await withTimeout(
    new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
        const m = /^(\d+)\s*$/m.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', () => reject(new Error(`Xvfb exited: ${child.output.slice(-1500)}`)));
      child.once('error', reject);
    }),
    15000,
    'starting Xvfb',
  );
  return `:${display}`;
}

async function launchWebKit(engine, { domains }) {
  const { Builder, By } = await import('selenium-webdriver');
  engine.capabilities = Object.freeze({
    multipleTabs: true, cookiesApi: true, addCookies: true, requestEvents: false, offline: false,
    initScripts: false, consoleEvents: false, cdp: false,
  });
  engine.By = By;
  const display = await startXvfb(engine);
  const proxy = await startMappingProxy(mappedHost(domains));
  await engine.track(() => proxy.close());
  engine.hostMapping = `MiniBrowser --proxy=http://127.0.0.1:${proxy.port} (a Node proxy in this process that sends ${domains.map((d) => `${d}, *.${d}`).join(', ')} to 127.0.0.1)`;
  engine.display = display;
  engine.pidNamespace = canUsePidNamespace();
  const driverEnv = { DISPLAY: display, GDK_BACKEND: 'x11', NO_AT_BRIDGE: '1' };

  engine._startContext = async (context) => {
    const port = await freePort();
    const driverArgs = [`--port=${port}`, '--host=127.0.0.1'];
    const driverChild = engine.pidNamespace
      ? spawnChild('WebKitWebDriver', 'unshare', ['--pid', '--fork', '--kill-child=SIGKILL', WEBKIT_DRIVER, ...driverArgs], { env: driverEnv })
      : spawnChild('WebKitWebDriver', WEBKIT_DRIVER, driverArgs, { env: driverEnv });
    const stopDriver = () => (engine.pidNamespace ? stopNamespaced(driverChild) : stopChild(driverChild));
    await context.track(stopDriver);
    await waitForPort(port, 15000, driverChild);
    const builder = new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities({
      browserName: 'MiniBrowser',
      pageLoadStrategy: 'normal',
      'webkitgtk:browserOptions': {
        binary: MINIBROWSER,
        args: [
          '--automation',
          `--proxy=http://127.0.0.1:${proxy.port}`,
          // A string-array option: one flag per host. Loopback addresses go direct.
          '--ignore-host=localhost',
          '--ignore-host=127.0.0.1',
          '--ignore-host=::1',
        ],
      },
    });
    // The driver hangs (instead of failing) when MiniBrowser cannot start: bound it.
    const driver = await withTimeout(builder.build(), 30000, 'creating a WebKit session', stopDriver);
    await context.track(() => withTimeout(driver.quit(), 15000, 'ending the WebKit session'));
    await driver.manage().setTimeouts({ script: 30000, pageLoad: NAV_TIMEOUT_MS, implicit: 0 });
    if (!engine.version) {
      const caps = await driver.getCapabilities();
      engine.version = `WebKitGTK ${caps.get('browserVersion')} (MiniBrowser)`;
    }
    context.native = driver;
    context.spare = [await driver.getWindowHandle()]; // open windows that are no page (yet)
    context.current = context.spare[0];
    // WebDriver has one "current window" per session: run commands one at a time, each after
    // switching to its page's window.
    let queue = Promise.resolve();
    context.run = (handle, fn) => {
      const job = queue.then(async () => {
        if (context.closed) throw new Error('webkit: the context is closed');
        if (handle && context.current !== handle) {
          await driver.switchTo().window(handle);
          context.current = handle;
        }
        return fn(driver);
      });
      queue = job.catch(() => {});
      return job;
    };
    context.newPage = async () => {
      const handle = await context.run(null, async (d) => {
        if (context.spare.length) return context.spare.shift();
        await d.switchTo().newWindow('tab');
        context.current = await d.getWindowHandle();
        return context.current;
      });
      // Each MiniBrowser tab is a window of its own: give its page the common viewport size.
      await context
        .run(handle, async (d) => {
          const chrome = await d.executeScript('return [outerWidth - innerWidth, outerHeight - innerHeight]');
          await d.manage().window().setRect({ width: VIEWPORT.width + chrome[0], height: VIEWPORT.height + chrome[1] });
        })
        .catch(() => {});
      return wrapWebDriverPage(context, handle);
    };
    // WebDriver classic reads and writes cookies through a document: a page of this context on
    // the URL's origin when there is one, else a probe tab on that origin (which requests
    // `<directory of the URL>/__sb_cookie_probe` from the server).
    const onOrigin = async (url, fn) => {
      const u = new URL(url);
      for (const p of context.pages) {
        const at = await context.run(p.handle, (d) => d.getCurrentUrl()).catch(() => '');
        if (at.startsWith('http') && new URL(at).origin === u.origin) return context.run(p.handle, fn);
      }
      return context.run(null, async (d) => {
        const back = context.current;
        await d.switchTo().newWindow('tab');
        context.current = await d.getWindowHandle();
        try {
          const dir = u.pathname.replace(/[^/]*$/, '');
          await d.get(`${u.origin}${dir}__sb_cookie_probe`);
          return await fn(d);
        } finally {
          await d.close().catch(() => {});
          await d.switchTo().window(back).catch(() => {});
          context.current = back;
        }
      });
    };
    context.cookies = async (url) => {
      if (!url) throw new Error('webkit: context.cookies() needs a URL (WebDriver reads cookies through a document)');
      const list = await onOrigin(url, (d) => d.manage().getCookies());
      return normCookies(list).filter((c) => cookieMatchesUrl(c, url));
    };
    context.addCookies = async (cookies) => {
      for (const c of cookies) {
        const url = c.url || `http://${String(c.domain).replace(/^\./, '')}${c.path || '/'}`;
        await onOrigin(url, (d) =>
          d.manage().addCookie({
            name: c.name,
            value: c.value,
            path: c.path || '/',
            ...(c.domain ? { domain: c.domain } : {}),
            ...(c.httpOnly !== undefined ? { httpOnly: c.httpOnly } : {}),
            ...(c.secure !== undefined ? { secure: c.secure } : {}),
            ...(c.sameSite ? { sameSite: c.sameSite } : {}),
            ...(c.expires && c.expires > 0 ? { expiry: Math.floor(c.expires) } : {}),
          }),
        );
      }
    };
  };
}

function wrapWebDriverPage(context, handle) {
  const page = new Page(context);
  page.handle = handle;
  page.native = context.native;
  context.pages.add(page);
  const run = (fn) => {
    if (page.closed) return Promise.reject(new Error('webkit: the page is closed'));
    return context.run(handle, fn);
  };
  // The function's source goes into the script itself (no eval: pages under a CSP without
  // 'unsafe-eval' run it too); its argument and result cross as JSON.
  const exec = (d, fn, arg) =>
    d.executeAsyncScript(
      `var __done = arguments[arguments.length - 1];
       var __arg = JSON.parse(arguments[0]);
       Promise.resolve().then(function () { return (${fn.toString()})(__arg); }).then(
         function (v) { __done(v === undefined ? { u: 1 } : { v: JSON.stringify(v) }); },
         function (e) { __done({ e: (e && e.message) || String(e) || 'error' }); });`,
      JSON.stringify(arg === undefined ? null : arg),
    );
  const By = context.engine.By;
  Object.assign(page, {
    goto: (url, { timeoutMs = NAV_TIMEOUT_MS } = {}) =>
      withTimeout(run((d) => d.get(url)), timeoutMs + 5000, `webkit goto ${url}`),
    reload: ({ timeoutMs = NAV_TIMEOUT_MS } = {}) =>
      withTimeout(run((d) => d.navigate().refresh()), timeoutMs + 5000, 'webkit reload'),
    url: () => run((d) => d.getCurrentUrl()),
    evaluate: async (fn, arg) => {
      if (typeof fn !== 'function') throw new Error('evaluate: pass a function');
      const r = await run((d) => exec(d, fn, arg));
      if (r && 'e' in r) throw new Error(`evaluate failed in webkit: ${r.e}`);
      if (!r || 'u' in r) return undefined;
      return JSON.parse(r.v);
    },
    click: async (selector, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => {
      await page.waitForSelector(selector, { timeoutMs, visible: true });
      await run(async (d) => (await d.findElement(By.css(selector))).click());
    },
    fill: async (selector, text, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) => {
      await page.waitForSelector(selector, { timeoutMs, visible: true });
      await run(async (d) => {
        const el = await d.findElement(By.css(selector));
        await el.clear();
        await el.sendKeys(String(text));
      });
    },
    _screenshot: async () => Buffer.from(await run((d) => d.takeScreenshot()), 'base64'),
    // WebDriver's Close Window closes the tab as a user would: its unload steps run (pagehide
    // fires). Closing the last window would end the session, so a blank spare window is opened
    // first; the context's next newPage() uses it.
    close: async () => {
      if (page.closed) return;
      await context.run(null, async (d) => {
        const handles = await d.getAllWindowHandles();
        let spare = null;
        if (handles.length <= 1) {
          await d.switchTo().newWindow('tab');
          spare = await d.getWindowHandle();
          context.spare.push(spare);
        }
        await d.switchTo().window(handle);
        await d.close();
        const next = spare || context.spare[0] || (await d.getAllWindowHandles())[0];
        if (next) await d.switchTo().window(next);
        context.current = next;
      });
      page.closed = true;
      context.pages.delete(page);
    },
  });
  return page;
}

// ---------------------------------------------------------------------------------------------

function normCookies(list) {
  return list.map((c) => ({
    name: c.name,
    value: c.value,
    domain: c.domain,
    path: c.path ?? '/',
    httpOnly: !!c.httpOnly,
    secure: !!c.secure,
    sameSite: c.sameSite ?? undefined,
    expires: c.expires ?? c.expiry ?? -1,
  }));
}

const LAUNCHERS = { chromium: launchChromium, firefox: launchFirefox, webkit: launchWebKit };

/**
 * Starts `name` ('chromium' | 'firefox' | 'webkit'). Options: `mapDomains` (default
 * ['shop.test']: each domain and its subdomains resolve to 127.0.0.1; Firefox maps exact names
 * only: the domains themselves and `hosts`, default `checkout.`, `elsewhere.` and `www.` of each).
 */
export async function launchEngine(name, { mapDomains = DEFAULT_MAPPED_DOMAINS, hosts } = {}) {
  if (!LAUNCHERS[name]) throw new Error(`unknown engine ${JSON.stringify(name)}: one of ${ENGINES.join(', ')}`);
  const domains = mapDomains.map((d) => d.toLowerCase());
  const hostNames = hosts || domains.flatMap((d) => [`checkout.${d}`, `elsewhere.${d}`, `www.${d}`]);
  const engine = new Engine(name);
  const t0 = Date.now();
  engine.ready = LAUNCHERS[name](engine, { domains, hosts: hostNames });
  try {
    await engine.ready;
  } catch (e) {
    await engine.close();
    throw e;
  }
  engine.startupMs = Date.now() - t0;
  return engine;
}

/** Closes every engine still open (for exit and signal handlers). */
export async function closeAllEngines() {
  await Promise.all([...liveEngines].map((e) => e.close().catch(() => {})));
}

/**
 * On SIGINT, SIGTERM or SIGHUP: `before()` (optional), close every engine (each process stopped
 * and waited for), then exit with 130. A second signal exits at once.
 */
export function stopOnSignals(before) {
  let stopping = false;
  const onSignal = async (sig) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`\n${sig}: stopping the browsers\n`);
    try {
      await before?.();
    } catch {}
    await closeAllEngines();
    process.exit(130);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, onSignal);
}
