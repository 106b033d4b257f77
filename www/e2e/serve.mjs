// A small static + pass-through server with the layout the proxy serves:
//   /salebeacon/<file>   the package (pkg/: salebeacon.js, index.js, salebeacon_wasm.js glue, .wasm)
//   /salebeacon/...      everything else (sales, pixel.gif, touch, healthz, admin) → the proxy
//   /demo/api/sales      the demo's sales feed (sandbox sales + the proxy's delivery states)
//   /...                 the demo site (www/demo)
// The e2e suite uses it while the proxy cannot serve static files itself; it is also a quick way
// to look at the demo: `node serve.mjs --proxy http://127.0.0.1:8080 --sandbox http://127.0.0.1:4010`.
// Always on 127.0.0.1. `?csp=1` on a page (or `csp: true`) adds the strict CSP header.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
export const STRICT_CSP = "script-src 'self' 'wasm-unsafe-eval'";

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The file under `root` that `rel` names, or null (no traversal, no directories). */
function fileIn(root, rel) {
  let p = decodeURIComponent(rel);
  if (p === '' || p.endsWith('/')) p += 'index.html';
  const full = path.resolve(root, '.' + path.posix.normalize('/' + p));
  if (!full.startsWith(path.resolve(root) + path.sep)) return null;
  try {
    return fs.statSync(full).isFile() ? full : null;
  } catch {
    return null;
  }
}

function sendFile(req, res, file, csp) {
  const type = TYPES[path.extname(file)] || 'application/octet-stream';
  const headers = { 'content-type': type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (csp && type.startsWith('text/html')) headers['content-security-policy'] = STRICT_CSP;
  const body = fs.readFileSync(file);
  headers['content-length'] = body.length;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function pass(req, res, target) {
  const url = new URL(req.url, target);
  const up = http.request(
    url,
    { method: req.method, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy unreachable: ${e.message}`);
  });
  req.pipe(up);
}

async function getJson(url, headers = {}) {
  const r = await fetch(url, { headers });
  if (!r.ok) throw new Error(`${url} answered ${r.status}`);
  return r.json();
}

async function salesFeed(opts) {
  const out = { sandbox: [], proxy: [] };
  if (opts.sandboxUrl) {
    out.sandbox = await getJson(new URL('/_sandbox/sales', opts.sandboxUrl)).catch((e) => {
      out.sandbox_error = e.message;
      return [];
    });
  }
  if (opts.proxyUrl && opts.adminToken) {
    const u = new URL(`${opts.basePath}/admin/sales?state=all&limit=1000`, opts.proxyUrl);
    const list = await getJson(u, { authorization: `Bearer ${opts.adminToken}` }).catch((e) => {
      out.proxy_error = e.message;
      return { jobs: [] };
    });
    out.proxy = (list.jobs || []).map((j) => ({
      order_id: j.order_id,
      kind: j.kind,
      state: j.state,
      attempts: j.attempts,
      last_error: j.last_error ?? null,
      growi_id: j.growi_id ?? null,
    }));
  }
  return out;
}

/**
 * Starts the server. Options: `pkgDir`, `siteDir`, `proxyUrl` (origin of the proxy), `sandboxUrl`
 * (origin of the sandbox, for the sales feed), `adminToken`, `basePath` (default /salebeacon),
 * `csp` (strict CSP header on every page), `port` (default 0: any free port).
 * Resolves `{ url, port, close() }`.
 */
export function startFront(opts) {
  const o = {
    basePath: '/salebeacon',
    pkgDir: path.resolve(here, '../../pkg'),
    siteDir: path.resolve(here, '../demo'),
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const csp = o.csp || url.searchParams.get('csp') === '1';
    try {
      if (url.pathname === '/demo/api/sales') {
        const body = JSON.stringify(await salesFeed(o));
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        return res.end(body);
      }
      if (url.pathname.startsWith(o.basePath + '/')) {
        const rel = url.pathname.slice(o.basePath.length + 1);
        const file = !rel.includes('/') && (req.method === 'GET' || req.method === 'HEAD')
          ? fileIn(o.pkgDir, rel) : null;
        if (file) return sendFile(req, res, file, false);
        if (o.proxyUrl) return pass(req, res, o.proxyUrl);
      } else if (req.method === 'GET' || req.method === 'HEAD') {
        const file = fileIn(o.siteDir, url.pathname.slice(1));
        if (file) return sendFile(req, res, file, csp);
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const front = await startFront({
    port: Number(arg('--port') || 5173),
    proxyUrl: arg('--proxy'),
    sandboxUrl: arg('--sandbox'),
    adminToken: process.env.SALEBEACON_ADMIN_TOKEN,
    pkgDir: arg('--pkg') || process.env.SALEBEACON_PKG || undefined,
    csp: process.argv.includes('--csp'),
  });
  console.log(`demo on ${front.url}/?ref=creator42`);
}
